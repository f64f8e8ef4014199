#!/usr/bin/env bash
# tests/numeric/run_fp8.sh — --weight_dtype fp8 (runtime/models/fp8_quant.h) on the CPU backend against diffusers
# (tests/fixtures/fp8/dit_fp8.safetensors, made by tests/fixtures/make_fp8_quant_fixtures.py).
#
#   1. program dit_forward --weight_dtype fp8 on tiny_df's BF16 checkpoint (both layouts) on the f4b1 inputs,
#      against diffusers' transformer with the same weights quantised by torch: bound 2e-6, the bound of
#      tests/numeric/run.sh for this model (the quantised weights are torch's bit for bit: test_fp8.c).
#   2. The error fp8 weights cost: the same run against the unquantised model's v (f4b1.safetensors), reported
#      and bounded by what the peer measured for its own fp8 model (the fixture's rel_l2_vs_unquantised, r)
#      plus the bound of 1 carried through the triangle inequality: |ours - v0| <= |ours - vq| + |vq - v0|
#      <= 2e-6 |vq| + r |v0| and |vq| <= (1 + r) |v0|, so rel <= r + 2e-6 (1 + r).
#   2b. `lora-merge --weight_dtype fp8` writes the per-channel fp8 file (20 F8_E4M3 weights, each with its
#      .weight_scale), in both layouts; it loads to exactly the weights --weight_dtype fp8 computes, so its v equals
#      the flag's bit for bit.
#   3. Generation: DF, 4 Euler steps with --weight_dtype fp8 runs, says how many tensors it quantised, its
#      latents differ from the unquantised run's, and the run's parameters name the weight dtype.
#   4. A value other than checkpoint or fp8 is refused by both commands, naming the flag.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
F=tests/fixtures/fp8
B=tests/fixtures/dit/tiny_df
ST=build/tools/sttool
D=out/tiny_df/skyreels-tiny_df
bash tests/numeric/build_sttool.sh || exit 1
./build.sh gen tiny_df > "$tmp/gen.log" 2>&1 || { cat "$tmp/gen.log"; exit 1; }

pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

for layout in diffusers original; do
    if "$D" program dit_forward --weights "$B/weights_$layout.safetensors" --weight_dtype fp8 --inputs "$B/f4b1.safetensors" \
            --output "$tmp/v_$layout.safetensors" 2> "$tmp/run.log" &&
       grep -q "74 tensors of dit_forward, 20 quantised to fp8 e4m3 per row" "$tmp/run.log" &&
       $ST compare "$tmp/v_$layout.safetensors" "$F/dit_fp8.safetensors" v 2e-6 > "$tmp/cmp.txt"; then
        ok "$layout layout: 20 block linear weights quantised; v vs diffusers' fp8-quantised transformer: $(grep -o 'rel_l2 [^ ]*' "$tmp/cmp.txt"), bound 2e-6"
    else cat "$tmp/run.log" "$tmp/cmp.txt" 2> /dev/null; bad "$layout layout: v vs diffusers' fp8-quantised transformer"; fi
done

r=$($ST meta "$F/dit_fp8.safetensors" rel_l2_vs_unquantised)
bound=$(awk -v r="$r" 'BEGIN { printf "%.9g", r + 2e-6 * (1 + r) }')
if $ST compare "$tmp/v_diffusers.safetensors" "$B/f4b1.safetensors" v "$bound" > "$tmp/cmp.txt"; then
    ok "fp8 against the unquantised model: $(grep -o 'rel_l2 [^ ]*' "$tmp/cmp.txt") (diffusers' own: $r), bound $bound"
else cat "$tmp/cmp.txt"; bad "fp8 against the unquantised model (bound $bound)"; fi

for layout in original diffusers; do
    if "$D" lora-merge --weights "$B/weights_original.safetensors" --weight_dtype fp8 --layout "$layout" \
            --output "$tmp/q_$layout.safetensors" 2> "$tmp/merge.log" &&
       [ "$(grep -a -o '"dtype":"F8_E4M3"' "$tmp/q_$layout.safetensors" | wc -l)" -eq 20 ] &&
       [ "$(grep -a -o 'weight_scale"' "$tmp/q_$layout.safetensors" | wc -l)" -eq 20 ] &&
       "$D" program dit_forward -q --weights "$tmp/q_$layout.safetensors" --inputs "$B/f4b1.safetensors" \
            --output "$tmp/vq.safetensors" &&
       $ST compare "$tmp/vq.safetensors" "$tmp/v_diffusers.safetensors" v 0 > /dev/null; then
        ok "lora-merge --weight_dtype fp8 ($layout layout): 20 F8_E4M3 weights with per-row scales; v equals --weight_dtype fp8's bit for bit"
    else cat "$tmp/merge.log"; bad "lora-merge --weight_dtype fp8 ($layout layout)"; fi
done

EU=(--dit_weights "$B/weights_original.safetensors" --prompt_embeds "$tmp/pe.safetensors" --num_frames 9
    --inference_steps 4 --sample_solver euler --guidance_scale 1 --shift 5 --seed 9)
"$D" random-embeds --output "$tmp/pe.safetensors" > /dev/null
if "$D" "${EU[@]}" --weight_dtype fp8 --output_latents "$tmp/l8.safetensors" 2> "$tmp/gen8.log" > /dev/null &&
   "$D" "${EU[@]}" --output_latents "$tmp/l.safetensors" > /dev/null 2>&1 &&
   grep -q "20 quantised to fp8 e4m3 per row" "$tmp/gen8.log" &&
   ! $ST compare "$tmp/l8.safetensors" "$tmp/l.safetensors" latents 1e-4 > /dev/null &&
   [[ "$($ST meta "$tmp/l8.safetensors" args)" == *'"weight_dtype": "fp8"'* ]]; then
    ok "generation with --weight_dtype fp8: quantised at load, latents differ from the unquantised run's, args name it"
else tail -n 5 "$tmp/gen8.log"; bad "generation with --weight_dtype fp8"; fi

expect() {   # code message -- command...
    local code=$1 want=$2 out rc
    shift 3
    set +e
    out=$("$@" 2>&1 > /dev/null); rc=$?
    set -e
    if [ "$rc" -eq "$code" ] && [[ "$out" == *"$want"* ]]; then ok "refused (exit $rc): $want"
    else bad "$*: exit $rc, message: $out (want: $want)"; fi
}
expect 2 "--weight_dtype fp16: must be checkpoint or fp8" -- "$D" "${EU[@]}" --weight_dtype fp16 --output_latents "$tmp/x.safetensors"
expect 2 "--weight_dtype fp16: must be checkpoint or fp8" -- "$D" program dit_forward --weights "$B/weights_original.safetensors" \
    --weight_dtype fp16 --inputs "$B/f4b1.safetensors" --output "$tmp/x.safetensors"
[ ! -e "$tmp/x.safetensors" ] && ok "nothing written by the refused runs" || bad "a refused run wrote its output"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
