#!/usr/bin/env bash
# tests/gpu/kit_test.sh — CI's check of the carry kit (tests/gpu/kit.sh, kit_run.sh) without a GPU:
#   1. a small kit (--small: tiny_df128 with its CUDA plugin, sttool; FFmpeg and curl off) builds under 64 MiB;
#   2. kit_run.sh --dry-run passes on it: the MANIFEST's files and hashes, ldd, the binary loads, the plugin
#      refuses cleanly without a driver, sttool reads a fixture;
#   3. the dry run fails on a kit with a changed file (it checks, not just lists).
# The full kit (df_1.3b_540p, nvcc's attention_test, runtime_test, the wheel) takes many minutes on two cores:
# ./build.sh test-all ($SKY_TEST_ALL=1) builds and dry-runs it too.
set -uo pipefail
cd "$(dirname "$0")/../.."
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
if [ ! -f "${CUDA_HOME:-/usr/local/cuda}/include/cuda.h" ]; then
    echo "carry kit: not run (no CUDA toolkit here: the kit holds CUDA plugins)"; echo "0 passed, 0 failed"; exit 0
fi
kits="build/kit-small:--small"
[ "${SKY_TEST_ALL:-0}" = 1 ] && kits="$kits build/kit-full:"
for k in $kits; do
    dir=${k%%:*} flag=${k#*:}
    # shellcheck disable=SC2086
    # the small kit leaves its kernels to NVRTC (no nvcc time here); the full one builds them in, as a GPU run needs
    archs=none; [ -z "$flag" ] && archs=sm_90a
    if SKY_KIT_ARCHS=$archs bash tests/gpu/kit.sh $flag --out "$dir" > "$tmp/kit.log" 2>&1; then ok "kit.sh $flag: $(tail -2 "$tmp/kit.log" | head -1 | sed 's/^== //')"
    else tail -20 "$tmp/kit.log"; bad "kit.sh $flag --out $dir"; continue; fi
    if OUT=$tmp/out bash tests/gpu/kit_run.sh --kit "$dir" --dry-run > "$tmp/dry.txt" 2>&1; then
        ok "kit_run.sh --dry-run on $dir: $(grep -c '^ok' "$tmp/dry.txt") checks; $(grep -o 'without a driver: exit 1.*' "$tmp/dry.txt" | head -1 | cut -c1-120)"
    else cat "$tmp/dry.txt"; bad "kit_run.sh --dry-run on $dir"; fi
done
cp -r build/kit-small "$tmp/broken"
printf 'x' >> "$tmp/broken/bin/sttool"
if OUT=$tmp/out bash tests/gpu/kit_run.sh --kit "$tmp/broken" --dry-run > "$tmp/dry.txt" 2>&1; then
    bad "the dry run passed a kit whose sttool changed"
elif grep -q 'bin/sttool: missing or changed' "$tmp/dry.txt"; then ok "the dry run refuses a kit with a changed file (bin/sttool)"
else cat "$tmp/dry.txt"; bad "the dry run failed, but not on the changed file"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
