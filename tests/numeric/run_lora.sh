#!/usr/bin/env bash
# tests/numeric/run_lora.sh — --lora on the CPU backend against diffusers (tests/fixtures/lora/, README there).
#
# For each case of tests/fixtures/lora/expected_*.safetensors (its LoRA files and scales in the metadata key
# lora_args) on tiny_df:
#   1. the fused weights: `lora-merge` of the BF16 original-layout base, written with the diffusers names,
#      against the weights diffusers' load_lora_weights + fuse_lora left (sttool compare-fused: every changed
#      tensor per tensor, every other one equal to the base bit for bit). Bound 2.4e-7 = 4 u (u = 2^-24): we
#      round once from double, diffusers rounds its fp32 product of rank 4 (a few ulp of the delta, which is
#      at most ~0.7 of the weight here) and the sum; measured: <= 3e-8. The .diff case's reference is W + s diff
#      computed in float64 and rounded once, as we do: bound 0.
#   2. the transformer output: program dit_forward with the F32 diffusers-layout base and the same --lora
#      values on the f4b1 inputs, against diffusers' fused transformer: bound 2e-6, the bound of
#      tests/numeric/run.sh for the same model and reason (fp32 roundings of the peer carried through the
#      network; the fused weights differ by far less). Measured: ~4.3e-7.
# Then the refusals that need a real model: a LoRA of tiny_df128 (twice as wide) on tiny_df, also with
# --lora_unknown_keys warn (a shape is never skipped), and a truncated file.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
L=tests/fixtures/lora
B=tests/fixtures/dit/tiny_df
ST=build/tools/sttool
D=out/tiny_df/skyreels-tiny_df
bash tests/numeric/build_sttool.sh || exit 1
./build.sh gen tiny_df > "$tmp/gen.log" 2>&1 || { cat "$tmp/gen.log"; exit 1; }

pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

for ref in "$L"/expected_*.safetensors; do
    c=$(basename "$ref" .safetensors)
    c=${c#expected_}
    lora=()
    for a in $($ST meta "$ref" lora_args); do lora+=(--lora "$L/$a"); done
    bound=2.4e-7
    [ "$c" = diff ] && bound=0
    if "$D" lora-merge --weights "$B/weights_original.safetensors" "${lora[@]}" --layout diffusers \
            --output "$tmp/m_$c.safetensors" 2> "$tmp/m_$c.log" &&
       $ST compare-fused "$tmp/m_$c.safetensors" "$ref" "$B/weights_diffusers.safetensors" "$bound" > "$tmp/cmp.txt"; then
        ok "$c: fused weights vs diffusers ($($ST meta "$ref" lora_args)): $(tail -1 "$tmp/cmp.txt" | cut -c8-)"
    else cat "$tmp/m_$c.log" "$tmp/cmp.txt" 2> /dev/null; bad "$c: fused weights vs diffusers"; fi
    if "$D" program dit_forward -q --weights "$B/weights_diffusers.safetensors" "${lora[@]}" --inputs "$B/f4b1.safetensors" \
            --output "$tmp/v_$c.safetensors" &&
       $ST compare "$tmp/v_$c.safetensors" "$ref" v 2e-6 > "$tmp/cmp.txt"; then
        ok "$c: transformer output vs diffusers' fused transformer: $(grep -o 'rel_l2 [^ ]*' "$tmp/cmp.txt"), bound 2e-6"
    else cat "$tmp/cmp.txt"; bad "$c: transformer output vs diffusers' fused transformer"; fi
done

# refused before any weight is read, naming the file, the key and the tensor
expect1() {   # message -- command...
    local want=$1 out rc
    shift 2
    out=$("$@" 2>&1 > /dev/null); rc=$?
    if [ "$rc" -eq 1 ] && [[ "$out" == *"$want"* ]]; then ok "refused (exit 1): ${out#*error: }"
    else bad "$*: exit $rc, message: $out (want: $want)"; fi
}
set +e
expect1 "df128.safetensors: 'diffusion_model.blocks.0.ffn.2.lora_down.weight' [4, 512] and 'diffusion_model.blocks.0.ffn.2.lora_up.weight' [256, 4] do not fit weight 'blocks.0.ffn.2.weight' [128, 256] of tiny_df" -- \
    "$D" program dit_forward -q --weights "$B/weights_diffusers.safetensors" --lora "$L/df128.safetensors" \
    --inputs "$B/f4b1.safetensors" --output "$tmp/x.safetensors"
expect1 "is the LoRA for another model size?" -- "$D" program dit_forward -q --weights "$B/weights_diffusers.safetensors" \
    --lora "$L/df128.safetensors" --lora_unknown_keys warn --inputs "$B/f4b1.safetensors" --output "$tmp/x.safetensors"
head -c 1000 "$L/peft.safetensors" > "$tmp/cut.safetensors"
expect1 "--lora: $tmp/cut.safetensors: header length" -- "$D" lora-merge --weights "$B/weights_original.safetensors" \
    --lora "$tmp/cut.safetensors" --output "$tmp/x.safetensors"
[ ! -e "$tmp/x.safetensors" ] && ok "nothing written by the refused runs" || bad "a refused run wrote its output"
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
