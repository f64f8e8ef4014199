#!/usr/bin/env bash
# tests/compile/run.sh — the compile tier (COMPILE-ONLY: no GPU, no numbers checked).
#
# For one 1.3B and one 14B variant (all shipped variants with SKY_COMPILE_ALL=1): generate, then
#   - nvcc compiles gen/dit_forward_kernels.cu for sm_90a and sm_80 (-Xptxas -v): no register spill
#     and no stack frame in any kernel;
#   - NVRTC compiles the same text (tests/compile/nvrtc_compile.c) for sm_90a;
#   - the generated host code (gen/dit_forward_cuda.c) compiles as C11 against cuda.h with -Werror;
#   - two nvcc builds of the same file (-objtemp -frandom-seed=<path>) give identical objects;
#   - the variant's CUDA plugin (runtime/dit_cuda.c + the generated host code) links, nothing undefined.
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
        # relative paths from the file's directory: the object embeds the names it was given
        if (cd "$out/gen" && "$NVCC" -std=c++17 -O3 -gencode=arch=$arch -Xptxas -v -objtemp -frandom-seed="$v/$tag" \
                -c dit_forward_kernels.cu -o "k_$tag.o") > "$out/ptxas_$tag.log" 2>&1; then
            spills=$(grep -E "[1-9][0-9]* bytes spill (stores|loads)" "$out/ptxas_$tag.log" | wc -l)
            # the attention kernel must not even have a stack frame (a local array in its hot loop);
            # others may (rope_table's float64 pow/sincos runs once per forward)
            attn_stack=$(grep -A2 "Function properties for attention" "$out/ptxas_$tag.log" |
                         grep -cE "[1-9][0-9]* bytes stack frame")
            nk=$(grep -c "Compiling entry function" "$out/ptxas_$tag.log")
            regs=$(grep -A1 "Compiling entry function 'attention" "$out/ptxas_$tag.log" >/dev/null;
                   grep -E "Used [0-9]+ registers" "$out/ptxas_$tag.log" | sed -n 's/.*Used \([0-9]*\) registers.*/\1/p' | sort -n | tail -1)
            if [ "$spills" -eq 0 ] && [ "$attn_stack" -eq 0 ]; then
                ok "$v: nvcc $tag compiles $nk kernels, no spills, attention without stack frame (most registers: $regs) (compile-only)"
            else
                bad "$v: nvcc $tag: $spills kernels spill, attention stack frame: $attn_stack"
                grep -B3 -E "[1-9][0-9]* bytes (spill|stack)" "$out/ptxas_$tag.log" | head -20
            fi
        else
            bad "$v: nvcc $tag does not compile $cu:"; head -30 "$out/ptxas_$tag.log"
        fi
    done
    # Reproducible objects: a second build of the same text in another directory.
    mkdir -p "$out/again"
    cp "$cu" "$out/again/"
    if (cd "$out/again" && "$NVCC" -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -objtemp \
            -frandom-seed="$v/sm_90a" -c dit_forward_kernels.cu -o k_sm_90a.o) > /dev/null 2>&1 &&
       cmp -s "$out/gen/k_sm_90a.o" "$out/again/k_sm_90a.o"; then
        ok "$v: two nvcc builds give identical objects"
    else
        bad "$v: two nvcc builds differ (or the second failed)"; cmp "$out/gen/k_sm_90a.o" "$out/again/k_sm_90a.o" | head -2
    fi
    if [ -x "$tmp/nvrtc_compile" ]; then
        if "$tmp/nvrtc_compile" "$cu" --gpu-architecture=sm_90a -std=c++17 --include-path="$CUDA_HOME/include" \
                > "$out/nvrtc.log" 2>&1; then ok "$v: NVRTC compiles the same text for sm_90a"
        else bad "$v: NVRTC:"; head -30 "$out/nvrtc.log"; fi
    fi
    if cc -std=c11 -O2 -Wall -Wextra -Werror -iquote runtime -I"$CUDA_HOME/include" -c "$out/gen/dit_forward_cuda.c" \
          -o "$out/host.o" 2> "$out/host.log"; then ok "$v: generated host code compiles (C11, -Werror)"
    else bad "$v: host code:"; head -20 "$out/host.log"; fi
    # The CUDA plugin of the variant links with nothing undefined (as CMakeLists.txt builds it).
    if cc -std=c11 -O2 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -fPIC -shared -fvisibility=hidden \
          -DSKY_PLUGIN_VARIANT="\"$v\"" -iquote runtime -I"$CUDA_HOME/include" runtime/cuda_ctx.c runtime/dit_cuda.c \
          runtime/dtype.c runtime/gemm.c runtime/nvrtc_cache.c runtime/status.c "$out/gen/dit_forward_cuda.c" \
          "$out/gen/dit_forward_kernels_src.c" -Wl,--no-undefined -L"$CUDA_HOME/lib64/stubs" -L"$CUDA_HOME/lib64" \
          -lcuda -lcudart -lcublasLt -lnvrtc -lxxhash -lm -o "$out/plugin.so" 2> "$out/plugin.log"; then
        ok "$v: the CUDA plugin links (--no-undefined) (compile-only)"
    else bad "$v: plugin:"; head -20 "$out/plugin.log"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
