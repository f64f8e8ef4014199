#!/usr/bin/env bash
# tests/compile/attention_compile.sh — compile-only checks of templates/cuda/attention_sm80.cu.in and
# attention_sm90.cu.in (no GPU needed; no numbers are checked here: tests/gpu/attention_test.cu does that on
# a GPU, tests/emu/kernel_test.c on the CPU emulator).
#
# 1. Render the templates with the schedules of tests/gpu/build_attention_test.sh (for sm_90a: every
#    schedule of gen/schedule_sm90.lua, and one stage; each for 12 and 40 heads, all in one file after
#    templates/cuda/common.cuh: what a generated program holds, so it also checks that several
#    instances coexist in one file).
# 2. nvcc -c for sm_80 and sm_90a with -Xptxas -v -Werror all-warnings; every kernel must
#    report 0 bytes stack frame, 0 bytes spill stores and 0 bytes spill loads.
# 3. The same file through NVRTC (tests/compile/nvrtc_compile.c) for sm_80 and sm_90a with
#    --include-path, and for sm_90a with the four bf16/fp16 headers passed in memory; NVRTC's
#    ptxas report (-Xptxas=-v) is held to the same no-spill rule and a cubin must come out.
# 4. The GPU harness (tests/gpu/attention_test.cu) builds.
# Ends with "N passed, M failed"; exits non-zero on any failure.
set -uo pipefail
cd "$(dirname "$0")/../.."

CUDA=${CUDA_HOME:-/usr/local/cuda}
NVCC=${NVCC:-$CUDA/bin/nvcc}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok()  { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }

echo "attention: compile-only checks (nvcc $("$NVCC" --version | sed -n 's/.*release \([0-9.]*\).*/\1/p'))"

# Per-kernel lines "ARCH KERNEL REGS STACK SPILL_STORES SPILL_LOADS" from a ptxas -v report
# (nvcc's stderr or NVRTC's program log).
ptxas_table() {
    awk '
        /Compiling entry function/ { split($0, a, "'\''"); fn = a[2]; arch = a[4] }
        /bytes stack frame/        { for (i = 2; i <= NF; i++) {     # nvcc: "  0 bytes ...", NVRTC: "ptxas . 0 bytes ..."
                                         if ($i == "bytes" && $(i + 1) == "stack") stack = $(i - 1)
                                         if ($i == "bytes" && $(i + 2) == "stores,") st = $(i - 1)
                                         if ($i == "bytes" && $(i + 2) == "loads") ld = $(i - 1) } }
        /Used [0-9]+ registers/    { for (i = 1; i <= NF; i++) if ($i == "Used") regs = $(i + 1)
                                     if (fn != "") print arch, fn, regs, stack, st, ld; fn = "" }
    ' "$1"
}

# Every attention kernel in report $2 (from compiler $1) has no stack frame and no spills.
check_report() {
    local who=$1 report=$2 n=0 arch fn regs stack st ld
    while read -r arch fn regs stack st ld; do
        case "$fn" in attention_*) ;; *) continue ;; esac
        n=$((n + 1))
        if [ "$stack" = 0 ] && [ "$st" = 0 ] && [ "$ld" = 0 ]; then
            ok "$(printf '%-6s %-7s %-30s %3s registers, no stack, no spills' "$who" "$arch" "$fn" "$regs")"
        else
            bad "$(printf '%-6s %-7s %-30s %3s registers, %s B stack, %s B spill stores, %s B spill loads' \
                "$who" "$arch" "$fn" "$regs" "$stack" "$st" "$ld")"
        fi
    done < <(ptxas_table "$report")
    [ "$n" -gt 0 ] || bad "$who: no attention kernel in the ptxas report $report"
}

# 1. render
if bash tests/gpu/build_attention_test.sh --render-only "$tmp" 2> "$tmp/render.log"; then
    ok "render: $(grep -c '^extern "C" __global__' "$tmp/attention_kernels.cu") kernels, no \${ left"
else
    cat "$tmp/render.log"
    bad "render"
    echo "$pass passed, $fail failed"
    exit 1
fi
src=$tmp/attention_kernels.cu

# 2. nvcc
for gencode in arch=compute_80,code=sm_80 arch=compute_90a,code=sm_90a; do
    arch=${gencode##*=}
    if "$NVCC" -c -O3 -std=c++17 -Werror all-warnings -gencode="$gencode" -Xptxas -v \
        "$src" -o "$tmp/attention_$arch.o" 2> "$tmp/nvcc_$arch.log"; then
        check_report nvcc "$tmp/nvcc_$arch.log"
        # ptxas says so (an info line, not a warning) when it has to serialise the wgmma pipeline: an
        # accumulator or A register touched while its wgmma may be in flight, or a wait it cannot place.
        if grep -q "Potential Performance Loss" "$tmp/nvcc_$arch.log"; then
            grep "Potential Performance Loss" "$tmp/nvcc_$arch.log" | head -n 3
            bad "nvcc $arch: ptxas serialises the wgmma of an attention kernel"
        elif [ "$arch" = sm_90a ]; then
            ok "nvcc   sm_90a  no wgmma serialised by ptxas (no 'Potential Performance Loss')"
        fi
    else
        grep -v '^ptxas' "$tmp/nvcc_$arch.log" | head -n 30
        bad "nvcc $arch: compilation failed"
    fi
done

# 3. NVRTC, the same text
if cc -std=c11 -O2 -Wall -Wextra -Werror -I"$CUDA/include" tests/compile/nvrtc_compile.c \
    -L"$CUDA/lib64" -lnvrtc -Wl,-rpath,"$CUDA/lib64" -o "$tmp/nvrtc_compile" 2> "$tmp/cc.log"; then
    for arch in sm_80 sm_90a; do
        if "$tmp/nvrtc_compile" "$src" --gpu-architecture=$arch -std=c++17 \
            --include-path="$CUDA/include" -Xptxas=-v > "$tmp/nvrtc_$arch.log" 2>&1; then
            check_report nvrtc "$tmp/nvrtc_$arch.log"
            ok "nvrtc  $arch  cubin made ($(sed -n 's/.*cubin \([0-9]*\) bytes.*/\1/p' "$tmp/nvrtc_$arch.log") bytes, --include-path=$CUDA/include)"
        else
            grep -v '^ptxas' "$tmp/nvrtc_$arch.log" | head -n 30
            bad "nvrtc $arch: compilation failed"
        fi
    done
    if "$tmp/nvrtc_compile" "$src" --gpu-architecture=sm_90a -std=c++17 \
        --embed-headers="$CUDA/include" > "$tmp/nvrtc_embed.log" 2>&1; then
        ok "nvrtc  sm_90a  cubin made with cuda_bf16.h(pp), cuda_fp16.h(pp) in memory, no include path"
    else
        head -n 30 "$tmp/nvrtc_embed.log"
        bad "nvrtc sm_90a with in-memory headers: compilation failed"
    fi
else
    cat "$tmp/cc.log"
    bad "tests/compile/nvrtc_compile.c does not build"
fi

# 4. the GPU harness builds (it is run only where a GPU is lent)
if bash tests/gpu/build_attention_test.sh > "$tmp/harness.log" 2>&1; then
    ok "tests/gpu/attention_test.cu builds (sm_80 + sm_90a; not run: compile-only)"
else
    tail -n 30 "$tmp/harness.log"
    bad "tests/gpu/attention_test.cu does not build"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
