#!/usr/bin/env bash
# tests/compile/run.sh — the compile tier (COMPILE-ONLY: no GPU, no numbers checked).
#
# For one 1.3B and one 14B variant (every shipped variant with SKY_TEST_ALL=1: ./build.sh test-all): generate, then for
# each CUDA program (dit_forward, dit_forward_usp, vae_decode, vae_encode, vae_decode_tile, vae_encode_tile, the encoders)
#   - nvcc compiles gen/<program>_kernels.cu for sm_90a and sm_80 (-Xptxas -v): no register spill in
#     any kernel, no stack frame in the attention and convolution kernels; with cuobjdump, the VAE convs'
#     main loops spend >= 25 % of a step's instructions on the tensor cores (tests/compile/sass_loop.py), and
#     dit_forward's row and elementwise kernels read and write global memory 16 bytes at a time with no 64-bit
#     integer division left in any kernel but the attention's (tests/compile/sass_mem.py);
#   - NVRTC compiles the same text (tests/compile/nvrtc_compile.c) for sm_90a;
#   - the generated host code (gen/<program>_cuda.c) compiles as C11 against cuda.h with -Werror;
#   - two nvcc builds of the same file (-objtemp -frandom-seed=<path>) give identical objects;
# and the variant's CUDA plugin (runtime/*_cuda.c + the generated host code) links, nothing undefined. For the
# first variant's dit_forward, the kernels built into the plugin (CMakeLists.txt's SKY_CUDA_ARCHS=all): the
# build's nvcc -fatbin command run twice in two directories gives identical bytes, runtime/cuda/embed_fatbin.lua the same
# C file, which compiles (-Werror) into identical objects, and the plugin links with it.
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
# ./build.sh test: one shipped variant (the kernels are the same templates at other sizes); test-all: all of them
variants="df_1.3b_540p"
[ -n "${SKY_TEST_ALL:-}" ] && variants="df_1.3b_540p df_1.3b_720p df_14b_540p df_14b_720p t2v_14b_540p t2v_14b_720p i2v_1.3b_540p i2v_14b_540p i2v_14b_720p flf2v_1.3b_540p"
# CMakeLists.txt's SKY_CUDA_ARCHS=all (keep the two lists the same)
ALL_ARCHS="sm_80 sm_86 sm_89 sm_90a compute_90"
# the fat binary's reproducibility check: the two architectures this tier compiles for (all five under test-all)
FATBIN_ARCHS="sm_80 sm_90a"
[ -n "${SKY_TEST_ALL:-}" ] && FATBIN_ARCHS=$ALL_ARCHS
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

cc -std=c11 -O2 -Wall -Wextra -Werror -I"$CUDA_HOME/include" tests/compile/nvrtc_compile.c \
   -L"$CUDA_HOME/lib64" -lnvrtc -Wl,-rpath,"$CUDA_HOME/lib64" -o "$tmp/nvrtc_compile" 2>"$tmp/nvrtc_build.log" ||
    { bad "tests/compile/nvrtc_compile.c does not build"; cat "$tmp/nvrtc_build.log"; }

for v in $variants; do
    out=$tmp/$v
    lua5.4 gen/main.lua "specs/$v.lua" "$out" 2>/dev/null || { bad "$v: generation failed"; continue; }
    for prog in dit_forward dit_forward_usp vae_decode vae_encode vae_decode_tile vae_encode_tile text_encode clip_encode; do
    [ -f "$out/gen/${prog}_kernels.cu" ] || continue
    cu=$out/gen/${prog}_kernels.cu
    for arch in "compute_90a,code=sm_90a" "compute_80,code=sm_80"; do
        tag=${arch##*=}
        # relative paths from the file's directory: the object embeds the names it was given
        if (cd "$out/gen" && "$NVCC" -std=c++17 -O3 -gencode=arch=$arch -Xptxas -v -objtemp \
                -frandom-seed="$v/$prog/$tag" -c "${prog}_kernels.cu" -o "${prog}_$tag.o") > "$out/ptxas_${prog}_$tag.log" 2>&1; then
            log=$out/ptxas_${prog}_$tag.log
            spills=$(grep -E "[1-9][0-9]* bytes spill (stores|loads)" "$log" | wc -l)
            # the attention and conv kernels must not even have a stack frame (a local array in their hot
            # loops); others may (rope_table's float64 pow/sincos runs once per forward)
            hot_stack=$(grep -A2 -E "Function properties for (attention|conv_tf32)" "$log" |
                        grep -cE "[1-9][0-9]* bytes stack frame")
            nk=$(grep -c "Compiling entry function" "$log")
            regs=$(grep -E "Used [0-9]+ registers" "$log" | sed -n 's/.*Used \([0-9]*\) registers.*/\1/p' | sort -n | tail -1)
            # ptxas's info line when it serialises a wgmma pipeline (sm_90a attention)
            serial=$(grep -c "Potential Performance Loss" "$log")
            if [ "$spills" -eq 0 ] && [ "$hot_stack" -eq 0 ] && [ "$serial" -eq 0 ]; then
                ok "$v $prog: nvcc $tag compiles $nk kernels, no spills, attention/conv without stack frame, no wgmma serialised (most registers: $regs) (compile-only)"
            else
                bad "$v $prog: nvcc $tag: $spills kernels spill, attention/conv stack frames: $hot_stack, serialised wgmma: $serial"
                grep "Potential Performance Loss" "$log" | head -3
                grep -B3 -E "[1-9][0-9]* bytes (spill|stack)" "$log" | head -20
            fi
        else
            bad "$v $prog: nvcc $tag does not compile $cu:"; head -30 "$out/ptxas_${prog}_$tag.log"
        fi
    done
    # The VAE conv's main loop (issue 20 item 3): tensor-core instructions >= 25 % of a step's path in the
    # sm_90a and sm_80 SASS, for the convs of 64 or more output channels (the 3- and 32-channel outputs run
    # 16- and 32-column tiles: fewer mma per step by design) and 16 or more input channels (the video's 4
    # channels make one step per tap, so the per-tap decode the step path leaves out runs every step).
    # Needs cuobjdump (CUOBJDUMP, PATH or the toolkit).
    if [ "$prog" = vae_decode ] || [ "$prog" = vae_encode ]; then
        cuobjdump=${CUOBJDUMP:-$(command -v cuobjdump || echo "$CUDA_HOME/bin/cuobjdump")}
        if [ ! -x "$cuobjdump" ]; then
            echo "     $v $prog: conv SASS share not run (no cuobjdump; set CUOBJDUMP)"
        else
            for tag in sm_90a sm_80; do
                if "$cuobjdump" -sass "$out/gen/${prog}_$tag.o" > "$out/${prog}_$tag.sass" 2>&1 &&
                   python3 tests/compile/sass_loop.py "$out/${prog}_$tag.sass" conv_tf32 > "$out/${prog}_$tag.share"; then
                    low=$(awk '{ split($1, a, "to"); c = a[2] + 0; n = split(a[1], b, "_"); i = b[n] + 0 }
                               c >= 64 && i >= 16 && $0 ~ /step path/ {
                               p = $0; sub(/.*step path [0-9]+ \(/, "", p); sub(/%.*/, "", p); if (p + 0 < 25) print $1 }' \
                              "$out/${prog}_$tag.share")
                    worst=$(awk '{ split($1, a, "to"); n = split(a[1], b, "_"); if (a[2] + 0 >= 64 && b[n] + 0 >= 16) print }' \
                                "$out/${prog}_$tag.share" |
                            sed 's/.*step path [0-9]* (\([0-9.]*\)%.*/\1/' | sort -g | head -1)
                    if [ -z "$low" ]; then ok "$v $prog: $tag conv main loops: mma >= 25 % of a step's instructions (lowest $worst %)"
                    else bad "$v $prog: $tag conv main loops under 25 % mma: $low"; cat "$out/${prog}_$tag.share"; fi
                else
                    bad "$v $prog: cuobjdump / sass_loop.py on ${prog}_$tag.o"
                fi
            done
        fi
    fi
    # dit_forward's global accesses (issue 20 item 2): the row kernels' loads and stores and the elementwise ones 16
    # bytes each (rms_factor stores one float per row), no 64-bit division (tests/compile/sass_mem.py).
    if [ "$prog" = dit_forward ] || [ "$prog" = dit_forward_usp ]; then
        cuobjdump=${CUOBJDUMP:-$(command -v cuobjdump || echo "$CUDA_HOME/bin/cuobjdump")}
        if [ ! -x "$cuobjdump" ]; then
            echo "     $v $prog: SASS access widths not run (no cuobjdump; set CUOBJDUMP)"
        else
            for tag in sm_90a sm_80; do
                if "$cuobjdump" -sass "$out/gen/${prog}_$tag.o" > "$out/${prog}_$tag.sass" 2>&1 &&
                   python3 tests/compile/sass_mem.py "$out/${prog}_$tag.sass" \
                       --wide-loads '^(layernorm|rmsnorm|rms_factor|resnorm|gated_residual|add_row|modulation|teacache)' \
                       --wide-stores '^(layernorm|rmsnorm|resnorm|gated_residual|add_row|modulation|teacache)' \
                       > "$out/${prog}_$tag.mem"; then
                    ok "$v $prog: $tag row and elementwise kernels 16 bytes per global access, no 64-bit division ($(tail -1 "$out/${prog}_$tag.mem" | sed 's/^total: //; s/;.*//'))"
                else
                    bad "$v $prog: $tag SASS access widths (tests/compile/sass_mem.py)"; tail -4 "$out/${prog}_$tag.mem" 2>/dev/null || head -5 "$out/${prog}_$tag.sass"
                fi
            done
        fi
    fi
    # Reproducible objects: a second build of the same text in another directory.
    mkdir -p "$out/again"
    cp "$cu" "$out/again/"
    if (cd "$out/again" && "$NVCC" -std=c++17 -O3 -gencode=arch=compute_90a,code=sm_90a -Xptxas -v -objtemp \
            -frandom-seed="$v/$prog/sm_90a" -c "${prog}_kernels.cu" -o "${prog}_sm_90a.o") > /dev/null 2>&1 &&
       cmp -s "$out/gen/${prog}_sm_90a.o" "$out/again/${prog}_sm_90a.o"; then
        ok "$v $prog: two nvcc builds give identical objects"
    else
        bad "$v $prog: two nvcc builds differ (or the second failed)"
    fi
    if [ -x "$tmp/nvrtc_compile" ]; then
        if "$tmp/nvrtc_compile" "$cu" --gpu-architecture=sm_90a -std=c++17 --include-path="$CUDA_HOME/include" \
                > "$out/nvrtc_$prog.log" 2>&1; then ok "$v $prog: NVRTC compiles the same text for sm_90a"
        else bad "$v $prog: NVRTC:"; head -30 "$out/nvrtc_$prog.log"; fi
    fi
    if cc -std=c11 -O2 -Wall -Wextra -Werror -iquote runtime -I"$CUDA_HOME/include" -c "$out/gen/${prog}_cuda.c" \
          -o "$out/host_$prog.o" 2> "$out/host_$prog.log"; then ok "$v $prog: generated host code compiles (C11, -Werror)"
    else bad "$v $prog: host code:"; head -20 "$out/host_$prog.log"; fi
    done
    # The kernels built into the plugin, for the first variant's dit_forward (the build's own commands:
    # CMakeLists.txt's SKY_CUDA_ARCHS=all targets, nvcc run from gen/ on the file's relative name).
    fatbin_c=()
    if [ "$v" = "${variants%% *}" ]; then
        gencode=()
        for a in $FATBIN_ARCHS; do
            case $a in sm_*) gencode+=("-gencode=arch=compute_${a#sm_},code=$a") ;; *) gencode+=("-gencode=arch=$a,code=$a") ;; esac
        done
        mkdir -p "$out/fb1" "$out/fb2"
        t0=$(date +%s)
        if (cd "$out/gen" && "$NVCC" -fatbin -std=c++17 -O3 --threads 0 "${gencode[@]}" -o "../fb1/dit_forward_kernels.fatbin" \
                dit_forward_kernels.cu) > "$out/fb1.log" 2>&1 && t1=$(date +%s) &&
           cp "$out/gen/dit_forward_kernels.cu" "$out/again/" &&
           (cd "$out/again" && "$NVCC" -fatbin -std=c++17 -O3 --threads 0 "${gencode[@]}" -o "../fb2/dit_forward_kernels.fatbin" \
                dit_forward_kernels.cu) > "$out/fb2.log" 2>&1 &&
           cmp -s "$out/fb1/dit_forward_kernels.fatbin" "$out/fb2/dit_forward_kernels.fatbin"; then
            ok "$v dit_forward: two nvcc -fatbin builds for $FATBIN_ARCHS give identical bytes ($(wc -c < "$out/fb1/dit_forward_kernels.fatbin") bytes, $((t1 - t0)) s here)"
        else bad "$v dit_forward: two nvcc -fatbin builds differ (or one failed)"; cat "$out/fb1.log" "$out/fb2.log" 2>/dev/null | head -20; fi
        for i in 1 2; do
            lua5.4 runtime/cuda/embed_fatbin.lua "$out/gen/dit_forward_kernels.cu" "$out/fb$i/dit_forward_kernels.fatbin" "$FATBIN_ARCHS" \
                "$out/fb$i/dit_forward_kernels_fatbin.c" &&
            cc -std=c11 -O2 -Wall -Wextra -Werror -fPIC -iquote runtime -I"$CUDA_HOME/include" \
                -c "$out/fb$i/dit_forward_kernels_fatbin.c" -o "$out/fb$i/fatbin.o" 2> "$out/fb$i/cc.log" || cat "$out/fb$i/cc.log"
        done
        if cmp -s "$out/fb1/dit_forward_kernels_fatbin.c" "$out/fb2/dit_forward_kernels_fatbin.c" &&
           cmp -s "$out/fb1/fatbin.o" "$out/fb2/fatbin.o"; then
            ok "$v dit_forward: runtime/cuda/embed_fatbin.lua makes the same C file twice, which compiles (-Werror) into identical objects"
            fatbin_c=("$out/fb1/dit_forward_kernels_fatbin.c")
        else bad "$v dit_forward: the embedded fat binary's C file or object differs between two runs (or does not compile)"; fi
    fi
    # The CUDA plugin of the variant links with nothing undefined (as CMakeLists.txt builds it; with --use_usp's
    # collectives over NCCL when the toolkit has nccl.h: runtime/cuda/usp_nccl.c, which opens libnccl.so.2 when needed).
    nccl=(runtime/cuda/usp_nccl_none.c)
    [ -f "$CUDA_HOME/include/nccl.h" ] && nccl=(runtime/cuda/usp_nccl.c -ldl -lpthread)
    if cc -std=c11 -O2 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -fPIC -shared -fvisibility=hidden \
          -DSKY_PLUGIN_VARIANT="\"$v\"" -iquote runtime -I"$CUDA_HOME/include" runtime/cuda/cuda_ctx.c runtime/cuda/cuda_program.c \
          runtime/cuda/dit_cuda.c runtime/core/dtype.c runtime/cuda/enc_cuda.c runtime/cuda/fatbin.c runtime/cuda/gemm.c \
          runtime/cuda/nvrtc_cache.c runtime/cuda/offload.c runtime/cuda/selftest_cuda.c runtime/cuda/selftest_families.c runtime/core/status.c runtime/cuda/vae_cuda.c runtime/models/fp8_quant.c \
          "$out"/gen/*_cuda.c "$out"/gen/*_kernels_src.c "${fatbin_c[@]}" -Wl,--no-undefined -L"$CUDA_HOME/lib64/stubs" \
          -L"$CUDA_HOME/lib64" "${nccl[@]}" -lcuda -lcudart -lcublasLt -lnvrtc -lxxhash -lm -o "$out/plugin.so" 2> "$out/plugin.log"; then
        ok "$v: the CUDA plugin links (--no-undefined, ${nccl[0]#runtime/cuda/})${fatbin_c[*]:+, with the kernels of dit_forward built in} (compile-only)"
    else bad "$v: plugin:"; head -20 "$out/plugin.log"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
