#!/usr/bin/env bash
# tests/gpu/build_attention_test.sh — render templates/cuda/attention_sm80.cu.in for a few
# schedules, and attention_sm90.cu.in with 2, 1 and 3 stages, and build tests/gpu/attention_test.cu
# against them.
#
#   bash tests/gpu/build_attention_test.sh                   build build/gpu/attention_test
#   bash tests/gpu/build_attention_test.sh --run [CONFIG]    build, then run it (a GPU machine)
#   bash tests/gpu/build_attention_test.sh --render-only DIR write DIR/attention_kernels.cu and
#                                                            DIR/attention_configs.inc only
#
# attention_kernels.cu is templates/cuda/ptx.cuh and common.cuh followed by one rendered kernel per
# (schedule, NH): the text a generated program holds, and the text tests/compile/ compiles with
# nvcc and NVRTC. attention_configs.inc is the harness's table of those kernels. Rendering is a
# plain sed of the ${...} placeholders (the generator uses gen/lib/render.lua); a placeholder
# left over is an error. Schedules: "BLOCK_M,BLOCK_N,STAGES,THREADS", overridable with
# ATTENTION_CONFIGS="128,64,2,128 ..."; SMEM comes from the formula in the template's header.
# --run exits with the harness's status; 77 means there was no GPU ("not run (no GPU)").
set -euo pipefail
cd "$(dirname "$0")/../.."

CONFIGS=${ATTENTION_CONFIGS:-"128,64,1,128 128,64,2,128 128,64,2,256 128,128,1,256 64,64,2,128"}
HEADS="12 40"          # DF/T2V-1.3B and 14B
D=128
TEMPLATE=templates/cuda/attention_sm80.cu.in

# Renders one kernel: render NAME NH BLOCK_M BLOCK_N STAGES THREADS
render() {
    local smem=$(( ($3 + 2 * $5 * $4) * (D + 8) * 2 ))
    sed -e "s/\${name}/$1/g" -e "s/\${NH}/$2/g" -e "s/\${D}/$D/g" -e "s/\${BLOCK_M}/$3/g" \
        -e "s/\${BLOCK_N}/$4/g" -e "s/\${STAGES}/$5/g" -e "s/\${THREADS}/$6/g" \
        -e "s/\${SMEM}/$smem/g" "$TEMPLATE"
}

# The sm_90a kernel (templates/cuda/attention_sm90.cu.in): render90 NAME NH STAGES
render90() {
    local smem=$(( 1024 + 32768 * (1 + 2 * $3) + 64 ))
    sed -e "s/\${name}/$1/g" -e "s/\${NH}/$2/g" -e "s/\${D}/$D/g" -e "s/\${STAGES}/$3/g" \
        -e "s/\${SMEM}/$smem/g" templates/cuda/attention_sm90.cu.in
}
STAGES90=${ATTENTION90_STAGES:-"2 1 3"}

# Writes attention_kernels.cu and attention_configs.inc into $1.
render_all() {
    local dir=$1 kernels=$1/attention_kernels.cu table=$1/attention_configs.inc
    mkdir -p "$dir"
    {
        echo "// attention_kernels.cu: rendered by tests/gpu/build_attention_test.sh; do not edit"
        cat templates/cuda/ptx.cuh templates/cuda/common.cuh
    } > "$kernels.tmp"
    echo "// attention_configs.inc: rendered by tests/gpu/build_attention_test.sh; do not edit" > "$table.tmp"
    local cfg bm bn st th nh name
    for cfg in $CONFIGS; do
        IFS=, read -r bm bn st th <<< "$cfg"
        for nh in $HEADS; do
            name="attention_h${nh}_m${bm}n${bn}s${st}t${th}"
            { echo; render "$name" "$nh" "$bm" "$bn" "$st" "$th"; } >> "$kernels.tmp"
            echo "{\"m${bm}n${bn}s${st}t${th}\", $nh, $name, nullptr, $bm, $bn, $st, $th, $(( (bm + 2 * st * bn) * (D + 8) * 2 ))}," >> "$table.tmp"
        done
    done
    for st in $STAGES90; do
        for nh in $HEADS; do
            name="attention_sm90_h${nh}_s${st}"
            { echo; render90 "$name" "$nh" "$st"; } >> "$kernels.tmp"
            echo "{\"sm90s${st}\", $nh, nullptr, $name, 128, 128, $st, 384, $(( 1024 + 32768 * (1 + 2 * st) + 64 ))}," >> "$table.tmp"
        done
    done
    if grep -n '\${' "$kernels.tmp" >&2; then
        echo "error: placeholders left in the rendered kernels (above)" >&2
        exit 1
    fi
    mv "$kernels.tmp" "$kernels"
    mv "$table.tmp" "$table"
}

if [ "${1:-}" = "--render-only" ]; then
    [ $# -eq 2 ] || { echo "usage: $0 --render-only DIR" >&2; exit 2; }
    render_all "$2"
    exit 0
fi

NVCC=${NVCC:-$(command -v nvcc || echo /usr/local/cuda/bin/nvcc)}
[ -x "$NVCC" ] || { echo "error: nvcc not found (set NVCC=/path/to/nvcc)" >&2; exit 1; }
out=build/gpu
render_all "$out"
echo "== nvcc -> $out/attention_test (sm_80 + sm_90a; ptxas report in $out/ptxas.txt)"
"$NVCC" -O3 -std=c++17 -lineinfo -Werror all-warnings \
    -gencode=arch=compute_80,code=sm_80 -gencode=arch=compute_90a,code=sm_90a \
    -Xptxas -v -I"$out" -o "$out/attention_test" tests/gpu/attention_test.cu 2> "$out/ptxas.txt" ||
    { cat "$out/ptxas.txt" >&2; exit 1; }

if [ "${1:-}" = "--run" ]; then
    shift
    rc=0
    "$out/attention_test" "$@" || rc=$?
    [ "$rc" -eq 77 ] && echo "attention_test: not run (no GPU)"
    exit "$rc"
fi
