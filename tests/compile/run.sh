#!/usr/bin/env bash
# tests/compile/run.sh — the compile tier (COMPILE-ONLY: no GPU, no numbers checked).
#
# For one 1.3B and one 14B variant (all shipped variants with SKY_COMPILE_ALL=1): generate, then
#   - nvcc compiles gen/dit_forward_kernels.cu for sm_90a and sm_80 (-Xptxas -v): no register spill
#     and no stack frame in any kernel;
#   - NVRTC compiles the same text (tests/compile/nvrtc_compile.c) for sm_90a;
#   - the generated host code (gen/dit_forward_cuda.c) compiles as C11 against cuda.h with -Werror;
#   - two nvcc builds of the same file (-objtemp -frandom-seed=<path>) give identical objects.
# Skips with "compile tier: not run (no nvcc)" where the CUDA toolkit is missing; ends with
# "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if [ ! -x "$NVCC" ]; then
    echo "compile tier: not run (no nvcc; install the CUDA toolkit)"
    echo "0 passed, 0 failed"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
variants="df_1.3b_540p t2v_14b_540p"
[ -n "${SKY_COMPILE_ALL:-}" ] && variants="df_1.3b_540p df_14b_540p df_14b_720p t2v_14b_540p t2v_14b_720p i2v_1.3b_540p i2v_14b_540p i2v_14b_720p"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

cc -std=c11 -O2 -Wall -Wextra -Werror -I"$CUDA_HOME/include" tests/compile/nvrtc_compile.c \
   -L"$CUDA_HOME/lib64" -lnvrtc -Wl,-rpath,"$CUDA_HOME/lib64" -o "$tmp/nvrtc_compile" 2>"$tmp/nvrtc_build.log" ||
    { bad "tests/compile/nvrtc_compile.c does not build"; cat "$tmp/nvrtc_build.log"; }

for v in $variants; do
    out=$tmp/$v
    lua5.4 gen/main.lua "specs/$v.lua" "$out" 2>/dev/null || { bad "$v: generation failed"; continue; }
    cu=$out/gen/dit_forward_kernels.cu
    for arch in "compute_90a,code=sm_90a" "compute_80,code=sm_80"; do
        tag=${arch##*=}
        if "$NVCC" -std=c++17 -O3 -gencode=arch=$arch -Xptxas -v -objtemp -frandom-seed="$v/$tag" \
                -c "$cu" -o "$out/k_$tag.o" > "$out/ptxas_$tag.log" 2>&1; then
            spills=$(grep -E "[1-9][0-9]* bytes spill (stores|loads)" "$out/ptxas_$tag.log" | wc -l)
            stacks=$(grep -E "[1-9][0-9]* bytes stack frame" "$out/ptxas_$tag.log" | wc -l)
            nk=$(grep -c "Compiling entry function" "$out/ptxas_$tag.log")
            if [ "$spills" -eq 0 ] && [ "$stacks" -eq 0 ]; then
                ok "$v: nvcc $tag compiles $nk kernels, no spills, no stack frames (compile-only)"
            else
                bad "$v: nvcc $tag: $spills spilling and $stacks stack-frame kernels:"
                grep -B3 -E "[1-9][0-9]* bytes (spill|stack)" "$out/ptxas_$tag.log" | head -20
            fi
        else
            bad "$v: nvcc $tag does not compile $cu:"; head -30 "$out/ptxas_$tag.log"
        fi
    done
    # Reproducible objects: a second build of the same text in another directory.
    mkdir -p "$out/again"
    cp "$cu" "$out/again/"
    if "$NVCC" -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -objtemp -frandom-seed="$v/sm_90a" \
            -c "$out/again/dit_forward_kernels.cu" -o "$out/again/k_sm_90a.o" > /dev/null 2>&1 &&
       cmp -s "$out/k_sm_90a.o" "$out/again/k_sm_90a.o"; then
        ok "$v: two nvcc builds give identical objects"
    else
        bad "$v: two nvcc builds differ (or the second failed)"
    fi
    if [ -x "$tmp/nvrtc_compile" ]; then
        if "$tmp/nvrtc_compile" "$cu" sm_90a > "$out/nvrtc.log" 2>&1; then ok "$v: NVRTC compiles the same text for sm_90a"
        else bad "$v: NVRTC:"; head -30 "$out/nvrtc.log"; fi
    fi
    if cc -std=c11 -O2 -Wall -Wextra -Werror -Iruntime -I"$CUDA_HOME/include" -c "$out/gen/dit_forward_cuda.c" \
          -o "$out/host.o" 2> "$out/host.log"; then ok "$v: generated host code compiles (C11, -Werror)"
    else bad "$v: host code:"; head -20 "$out/host.log"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
