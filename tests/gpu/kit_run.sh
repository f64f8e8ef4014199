#!/usr/bin/env bash
# tests/gpu/kit_run.sh — the GPU checks from the prebuilt carry kit (tests/gpu/kit.sh): no cmake, no nvcc, no
# download. The rows come in the order of the GPU verification issue (13), each appended to $OUT/table.txt as it
# finishes, each under its own time limit so that the first three rows end within 5 minutes and all within 9 on
# an H200:
#
#   row           limit   what
#   attention       60 s  attention_test: the sm_80 / sm_90a schedules vs fp32, TFLOP/s at 51,000 tokens each
#   cuda tiny       60 s  tiny_df128 on tests/fixtures/cuda/ vs diffusers fp32 (bound 2 x its bf16 error),
#                         default cuda, TeaCache's 60 decisions of the original, --weight_dtype fp8 (equal to
#                         the fp8 checkpoint lora-merge writes, within the bound of the CPU's fp8 run)
#   diffusers 540p  75 s  diffusers' DF-1.3B-540P forward, batch 2 (tests/bench/diffusers_dit.py)
#   cuda 540p      120 s  random bf16 weights written once, then bench --parts dit: our steady state (sm_90a
#                         attention), the breakdown, ours / diffusers (2 samples over its batch-2 forward)
#                         -- 315 s at most so far --
#   cuda 540p sm80  45 s  the same with the sm_80 attention
#   runtime         30 s  runtime_test (cuda_ctx, cuBLASLt epilogues, NVRTC cache, graphs)
#   vae 540p       100 s  diffusers' VAE decode of 25 latent frames at 540P and ours against it (time, error)
#   bench 540p      60 s  bench --parts t5,vae: the text encoder and the VAE decode, timed
#                         -- 550 s at most in all --
#
#   bash tests/gpu/kit_run.sh [--kit DIR] [--dry-run] [ROW ...]      ROW: attention tiny 540p runtime vae rest
#
# --dry-run (here, without a GPU; CI: tests/gpu/kit_test.sh): every file of the MANIFEST present with its hash,
# every binary and plugin resolves its libraries (ldd, DIR/lib first), each binary loads (--version), the plugin
# without a driver fails as it should (exit 1, the error names the driver), the test programs say "no GPU"
# (exit 77), sttool reads a fixture, the wheel is a readable zip holding diffusers, the kit is under 64 MiB.
set -uo pipefail
cd "$(dirname "$0")/../.."
K=.gpukit dry=0 rows_wanted=""
while [ $# -gt 0 ]; do
    case $1 in
        --kit) K=${2:?--kit needs a folder}; shift ;;
        --dry-run) dry=1 ;;
        attention|tiny|540p|runtime|vae|rest) rows_wanted="$rows_wanted $1" ;;
        *) echo "usage: bash tests/gpu/kit_run.sh [--kit DIR] [--dry-run] [attention tiny 540p runtime vae rest]" >&2
           exit 2 ;;
    esac
    shift
done
[ -f "$K/MANIFEST" ] || { echo "error: $K/MANIFEST missing: build the kit first (bash tests/gpu/kit.sh)" >&2; exit 1; }
K=$(cd "$K" && pwd)
export LD_LIBRARY_PATH=$K/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
unset SKY_CUDA_PLUGIN   # each binary takes the plugin beside it
OUT=${OUT:-build/gpu-results}
mkdir -p "$OUT"
ST=$K/bin/sttool T=$K/bin/skyreels-tiny_df128 B=$K/bin/skyreels-df_1.3b_540p
want() { [ -z "$rows_wanted" ] || [[ " $rows_wanted " == *" $1 "* ]]; }
row() { printf '%-15s %-8s %s\n' "$1" "$2" "$3" | tee -a "$OUT/table.txt"; }
lim() { local s=$1; shift; timeout -k 5 "$s" "$@"; }   # a row's time limit; 124 when it ran past

dry_run() {
    local pass=0 fail=0 f
    ok() { echo "ok   $*"; pass=$((pass + 1)); }
    bad() { echo "FAIL $*"; fail=$((fail + 1)); }
    local size; size=$(du -sb "$K" | cut -f1)
    [ "$size" -le $((64 * 1024 * 1024)) ] && ok "kit size $size bytes, under 64 MiB" || bad "kit size $size bytes, over 64 MiB"
    local n=0 missing=0
    while read -r h s f; do
        n=$((n + 1))
        if [ ! -f "$K/$f" ] || [ "$(sha256sum "$K/$f" | cut -c1-16)" != "$h" ] || [ "$(stat -c %s "$K/$f")" != "$s" ]; then
            bad "$f: missing or changed since the MANIFEST"; missing=$((missing + 1))
        fi
    done < <(grep -v '^#' "$K/MANIFEST")
    [ "$missing" -eq 0 ] && ok "$n files of the MANIFEST present, sizes and hashes equal"
    # libcuda.so.1 is the driver's: present only where a GPU is, so the one library allowed to be missing here
    for f in "$K"/bin/*; do
        if ldd "$f" > "$OUT/ldd.txt" 2>&1 && ! grep 'not found' "$OUT/ldd.txt" | grep -qv 'libcuda\.so\.1 '; then
            ok "$(basename "$f"): ldd resolves $(grep -c '=> /' "$OUT/ldd.txt") libraries ($(grep -c "$K/lib" "$OUT/ldd.txt") from the kit)$(
                grep -q 'libcuda.so.1 => not found' "$OUT/ldd.txt" && echo '; libcuda.so.1 (the driver) absent here')"
        else grep 'not found' "$OUT/ldd.txt"; bad "$(basename "$f"): unresolved libraries"; fi
    done
    # the plugin itself through dlopen: with the driver, it loads; without, dlopen refuses naming libcuda.so.1
    for p in "$K"/bin/lib*-cuda.so; do
        python3 -c "import ctypes, sys; ctypes.CDLL(sys.argv[1])" "$p" > "$OUT/dl.txt" 2>&1; rc=$?
        if [ "$rc" -eq 0 ]; then ok "$(basename "$p"): dlopen loads it (a driver is here)"
        elif grep -q 'libcuda.so.1: cannot open shared object file' "$OUT/dl.txt"; then
            ok "$(basename "$p"): dlopen without a driver fails as expected: $(grep -o 'libcuda.so.1: cannot open[^"]*' "$OUT/dl.txt" | head -1)"
        else cat "$OUT/dl.txt"; bad "$(basename "$p"): dlopen failed otherwise than for the missing driver"; fi
    done
    for b in "$K"/bin/skyreels-*; do
        [ -x "$b" ] || continue
        if "$b" --version > "$OUT/ver.txt" 2>&1; then ok "$(basename "$b") loads: $(cut -c1-60 "$OUT/ver.txt")"
        else cat "$OUT/ver.txt"; bad "$(basename "$b") --version"; fi
        # the plugin without a GPU driver: a clean refusal (exit 1, the driver named), never a crash
        "$b" bench --backend cuda --parts dit --iters 1 -q > "$OUT/nodrv.txt" 2>&1; rc=$?
        if [ "$rc" -eq 1 ] && grep -qi 'driver\|libcuda\|no cuda device\|cuInit' "$OUT/nodrv.txt"; then
            ok "$(basename "$b") --backend cuda without a driver: exit 1, $(grep -i 'error' "$OUT/nodrv.txt" | head -1 | cut -c1-150)"
        else cat "$OUT/nodrv.txt"; bad "$(basename "$b") --backend cuda without a driver: exit $rc (want 1, naming the driver)"; fi
    done
    for t in attention_test runtime_test; do
        [ -f "$K/bin/$t" ] || continue
        "$K/bin/$t" > "$OUT/$t.txt" 2>&1; rc=$?
        # 77: no GPU; runtime_test links the driver itself, so here the loader refuses it naming libcuda.so.1
        if [ "$rc" -eq 77 ]; then ok "$t: loads, exit 77 (no GPU)"
        elif [ "$rc" -eq 127 ] && grep -q 'libcuda.so.1: cannot open' "$OUT/$t.txt" && ldd "$K/bin/$t" | grep -q 'libcuda.so.1 => not found'
        then ok "$t: links the driver, which is absent here: the loader refuses it naming libcuda.so.1 (exit 127)"
        else tail -3 "$OUT/$t.txt"; bad "$t: exit $rc (want 77: no GPU, or 127 for the missing driver alone)"; fi
    done
    if v=$("$ST" meta tests/fixtures/cuda/tiny_df128_f1plain.safetensors peer_bf16_rel_l2 2> "$OUT/st.txt") && [ -n "$v" ]; then
        ok "sttool reads the fixtures (peer_bf16_rel_l2 $v)"
    else cat "$OUT/st.txt"; bad "sttool meta"; fi
    for w in "$K"/whl/*.whl; do
        [ -f "$w" ] || { echo "note: no diffusers wheel in the kit: the diffusers rows need one on the GPU machine"; break; }
        if python3 -c "import sys, zipfile; z = zipfile.ZipFile(sys.argv[1]); assert z.testzip() is None; \
assert 'diffusers/__init__.py' in z.namelist()" "$w" 2> "$OUT/whl.txt"; then ok "$(basename "$w"): a readable wheel holding diffusers"
        else cat "$OUT/whl.txt"; bad "$(basename "$w")"; fi
    done
    bash -n "$0" && ok "kit_run.sh parses"
    echo "$pass passed, $fail failed"
    [ "$fail" -eq 0 ]
}
if [ "$dry" = 1 ]; then dry_run; exit; fi

if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
    echo "GPU tier: not run (no GPU); --dry-run checks the kit here"
    exit 0
fi
start=$(date +%s)
el() { echo "$(( $(date +%s) - start ))s"; }
echo "# $(date -u +%FT%TZ) $(nvidia-smi -L | head -1); kit $(head -1 "$K/MANIFEST" | cut -c3-)" >> "$OUT/table.txt"
if ls "$K"/whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site "$K"/whl/*.whl > "$OUT/pip.log" 2>&1 &&
        export PYTHONPATH=/tmp/site${PYTHONPATH:+:$PYTHONPATH}
fi

# 1. attention
if want attention && [ -x "$K/bin/attention_test" ]; then
    lim 60 "$K/bin/attention_test" > "$OUT/attention.log" 2>&1; rc=$?
    if [ "$rc" -eq 0 ]; then row attention ok "$(grep -E 'TFLOP' "$OUT/attention.log" | tr '\n' ';' | cut -c1-600) [$(el)]"
    else row attention FAIL "exit $rc; see $OUT/attention.log [$(el)]"; fi
    tail -30 "$OUT/attention.log"
fi

# 2. cuda tiny: the fixtures vs diffusers fp32, the default backend, TeaCache (as tests/gpu/run.sh)
tiny() {
    local w=$OUT/tiny f c peer bound fails=0 cases=0
    mkdir -p "$w"
    "$T" random-weights --layout diffusers --seed 1 --output "$w/w.safetensors" > "$w/log" 2>&1 || return 1
    for f in tests/fixtures/cuda/tiny_df128_*.safetensors; do
        cases=$((cases + 1))
        peer=$("$ST" meta "$f" peer_bf16_rel_l2)
        bound=$(awk -v p="$peer" 'BEGIN { printf "%.3e", 2 * p }')
        "$T" program dit_forward -q --backend cuda --weights "$w/w.safetensors" --inputs "$f" --output "$w/o.safetensors" \
            >> "$w/log" 2>&1 && "$ST" compare "$w/o.safetensors" "$f" v "$bound" >> "$w/log" 2>&1 || fails=$((fails + 1))
    done
    if [ "$fails" -eq 0 ]; then row "cuda tiny" ok "$cases cases within 2x diffusers' bf16 error, worst $(
        grep -o 'rel_l2 [0-9.e+-]*' "$w/log" | sort -k2 -g | tail -1) [$(el)]"
    else row "cuda tiny" FAIL "$fails of $cases cases; see $w/log [$(el)]"; fi
    if env -u SKY_BACKEND "$T" program dit_forward --weights "$w/w.safetensors" --inputs "$f" --output "$w/d.safetensors" \
        > "$w/default.log" 2>&1 && grep -q "backend: cuda" "$w/default.log"; then row "default cuda" ok "no --backend takes cuda"
    else row "default cuda" FAIL "see $w/default.log"; fi
    f=tests/fixtures/teacache/tiny_df128_e.safetensors
    bound=$(awk -v p="$("$ST" meta tests/fixtures/cuda/tiny_df128_f3frames.safetensors peer_bf16_rel_l2)" 'BEGIN { printf "%.3e", 2 * p }')
    if "$T" random-weights --layout original --seed 1 --output "$w/wo.safetensors" > "$w/tc.log" 2>&1 &&
       "$T" program dit_forward -q --backend cuda --weights "$w/wo.safetensors" --inputs "$f" --output "$w/tc.safetensors" \
           --teacache "$("$ST" meta "$f" teacache_thresh)" --teacache_steps "$("$ST" meta "$f" num_steps)" >> "$w/tc.log" 2>&1 &&
       "$ST" equal "$w/tc.safetensors" "$f" teacache_computed >> "$w/tc.log" 2>&1 &&
       "$ST" compare "$w/tc.safetensors" "$f" v "$bound" >> "$w/tc.log" 2>&1; then
        row teacache ok "the original's 60 decisions, $(grep -o 'rel_l2 [0-9.e+-]*' "$w/tc.log") (bound $bound) [$(el)]"
    else row teacache FAIL "see $w/tc.log [$(el)]"; fi
    f=tests/fixtures/cuda/tiny_df128_f3frames.safetensors
    if "$T" lora-merge --weights "$w/w.safetensors" --weight_dtype fp8 --output "$w/f8.safetensors" > "$w/fp8.log" 2>&1 &&
       "$T" program dit_forward -q --backend cuda --weights "$w/w.safetensors" --weight_dtype fp8 --inputs "$f" \
           --output "$w/q.safetensors" >> "$w/fp8.log" 2>&1 &&
       "$T" program dit_forward -q --backend cuda --weights "$w/f8.safetensors" --inputs "$f" --output "$w/f8v.safetensors" \
           >> "$w/fp8.log" 2>&1 &&
       "$T" program dit_forward -q --backend cpu --weights "$w/w.safetensors" --weight_dtype fp8 --inputs "$f" \
           --output "$w/qc.safetensors" >> "$w/fp8.log" 2>&1 &&
       "$ST" compare "$w/q.safetensors" "$w/f8v.safetensors" v 0 >> "$w/fp8.log" 2>&1 &&
       "$ST" compare "$w/q.safetensors" "$w/qc.safetensors" v "$bound" >> "$w/fp8.log" 2>&1; then
        row fp8 ok "--weight_dtype fp8 = the fp8 checkpoint bit for bit; vs cpu fp8 $(grep -o 'rel_l2 [0-9.e+-]*' "$w/fp8.log" | tail -1) (bound $bound) [$(el)]"
    else row fp8 FAIL "see $w/fp8.log [$(el)]"; fi
}
if want tiny; then
    export -f tiny row; export T ST OUT start K
    lim 60 bash -c 'el() { echo "$(( $(date +%s) - start ))s"; }; tiny' || row "cuda tiny" FAIL "ran past 60 s or failed; see $OUT/tiny/ [$(el)]"
fi

# 3. DF-1.3B-540P: diffusers' forward, ours (bench), the ratio, the breakdown
if want 540p; then
    if lim 75 python3 tests/bench/diffusers_dit.py --variant df_1.3b_540p --iters 3 > "$OUT/diffusers.json" 2> "$OUT/diffusers.log"
    then row "diffusers 540p" ok "$(cat "$OUT/diffusers.json") [$(el)]"
    else row "diffusers 540p" FAIL "exit $?; see $OUT/diffusers.log [$(el)]"; fi
    bench540() {   # schedule, time limit: the random weights written once (part of the first's limit)
        local s=$1 l=$2 j=$OUT/bench540_$1.json w=$OUT/w540.safetensors t0=$(date +%s)
        if [ ! -f "$w" ]; then
            lim "$l" "$B" random-weights --bf16 --seed 1 --output "$w.tmp" > "$OUT/w540.log" 2>&1 && mv "$w.tmp" "$w"
            l=$(( l - ($(date +%s) - t0) )); [ "$l" -gt 5 ] || l=5
        fi
        if SKY_ATTENTION=$s lim $l "$B" bench --backend cuda --weights "$w" --parts dit --iters 5 --warmup 1 --json "$j" \
            > "$OUT/bench540_$s.txt" 2> "$OUT/bench540_$s.log"; then
            r=$(python3 - "$j" "$OUT/diffusers.json" <<'EOF'
import json, sys
b = json.load(open(sys.argv[1])); m = b["dit_forward"]["median_s"]
try: d = json.load(open(sys.argv[2]))["seconds"]; ratio = "ours 2 x %.3f s vs diffusers %.3f s: %.2fx" % (m, d, 2 * m / d)
except Exception: ratio = "ours %.3f s per forward (no diffusers time)" % m
g = b["groups"]; tot = b["attributed_s"] or 1
shares = ", ".join("%s %.0f%%" % (k, 100 * v["s"] / tot) for k, v in g.items())
print("%s; %.0f TFLOP/s, %.2fx the floor; %s" % (ratio, b["achieved_tflops"], b["forward_over_floor"] or 0, shares))
EOF
)
            row "cuda 540p $s" ok "$r [$(el)]"
        else row "cuda 540p $s" FAIL "exit $?; see $OUT/bench540_$s.log [$(el)]"; fi
        cat "$OUT/bench540_$s.txt"
    }
    bench540 sm90 120
fi

# 4. the rest: the sm_80 attention at 540P, runtime, the VAE at 540P against diffusers, the encoders' and VAE's times
if want 540p && [ -f "$OUT/w540.safetensors" ]; then bench540 sm80 45; fi
rm -f "$OUT/w540.safetensors"
if want runtime && [ -x "$K/bin/runtime_test" ]; then
    lim 30 "$K/bin/runtime_test" > "$OUT/runtime.log" 2>&1 && row runtime ok "$(tail -1 "$OUT/runtime.log") [$(el)]" ||
        row runtime FAIL "see $OUT/runtime.log [$(el)]"
fi
if want vae; then
    d=$OUT/vae540
    mkdir -p "$d"
    vae540() {
        "$B" random-weights --program vae --layout diffusers --seed 2 --output "$d/vae.safetensors" > "$d/log" 2>&1 &&
        python3 tests/bench/diffusers_vae.py --weights "$d/vae.safetensors" --out "$d" --iters 1 > "$d/diffusers.json" 2>> "$d/log" &&
        "$B" program vae_decode --weights "$d/vae.safetensors" --inputs "$d/z.safetensors" --output "$d/ours.safetensors" \
            --backend cuda > "$d/run.log" 2>&1 &&
        "$ST" compare "$d/ours.safetensors" "$d/ref.safetensors" video \
            "$(python3 -c "import json; print('%.3e' % (2 * json.load(open('$d/diffusers.json'))['peer_tf32_rel_l2']))")" > "$d/cmp.log"
    }
    export -f vae540; export B ST d
    if lim 100 bash -c vae540; then
        row "vae 540p" ok "$(grep -o 'decode.*' "$d/run.log" | tail -1); $(grep -o 'rel_l2 [^ ]*' "$d/cmp.log"); diffusers $(cat "$d/diffusers.json") [$(el)]"
    else row "vae 540p" FAIL "see $d/log, $d/run.log, $d/cmp.log [$(el)]"; fi
    rm -f "$d/vae.safetensors" "$d/ref.safetensors" "$d/ours.safetensors"
fi
if want rest; then
    if lim 60 "$B" bench --backend cuda --parts t5,vae --iters 2 --warmup 1 --json "$OUT/bench540_rest.json" \
        > "$OUT/bench540_rest.txt" 2> "$OUT/bench540_rest.log"; then
        row "bench 540p" ok "$(grep -E 'text_encode|vae_decode' "$OUT/bench540_rest.txt" | tr -s ' ' | tr '\n' ';') [$(el)]"
    else row "bench 540p" FAIL "exit $?; see $OUT/bench540_rest.log [$(el)]"; fi
fi
echo
cat "$OUT/table.txt"
