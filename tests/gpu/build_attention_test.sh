#!/usr/bin/env bash
# tests/gpu/build_attention_test.sh — render templates/cuda/attention_sm80.cu.in for a few
# schedules, and attention_sm90.cu.in with every schedule of gen/schedule_sm90.lua (and with one
# stage), and build tests/gpu/attention_test.cu against them.
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

# The sm_90a kernel (templates/cuda/attention_sm90.cu.in): render90 NAME NH BLOCK_N STAGES DESC_INC KV_SPLIT
smem90() { echo $(( 1024 + 32768 + 2 * $2 * 256 * $1 + 8 * (1 + 4 * $2) )); }   # BLOCK_N STAGES (the template's formula)
render90() {
    sed -e "s/\${name}/$1/g" -e "s/\${NH}/$2/g" -e "s/\${D}/$D/g" -e "s/\${BLOCK_N}/$3/g" -e "s/\${STAGES}/$4/g" \
        -e "s/\${DESC_INC}/$5/g" -e "s/\${KV_SPLIT}/$6/g" -e "s/\${SMEM}/$(smem90 "$3" "$4")/g" \
        templates/cuda/attention_sm90.cu.in
}
# Its schedules: "NAME BLOCK_N STAGES DESC_INC KV_SPLIT" per line, every one of gen/schedule_sm90.lua (the default
# first), then sm90_s1 (one stage: the barriers' parity flips every tile). ATTENTION90_SCHEDULES="sm90_s2 ..."
# keeps only those.
schedules90() {
    lua5.4 -e 'package.path = "gen/?.lua;" .. package.path
        local s = require("schedule_sm90")
        local names = { s.attention90_default }
        for _, n in ipairs(s.attention90_names()) do if n ~= s.attention90_default then names[#names + 1] = n end end
        for _, n in ipairs(names) do
            local a = s.attention90_schedules[n]
            print(n, a.block_n, a.stages, a.desc_inc, a.kv_split)
        end
        print("sm90_s1", 128, 1, 0, 0)' |
    while read -r n rest; do
        if [ -z "${ATTENTION90_SCHEDULES:-}" ] || [[ " $ATTENTION90_SCHEDULES " == *" $n "* ]]; then echo "$n $rest"; fi
    done
}

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
    local sched bn inc split
    schedules90 > "$dir/schedules90.txt"
    [ -s "$dir/schedules90.txt" ] || { echo "error: no sm_90a schedule (lua5.4 and gen/schedule_sm90.lua?)" >&2; exit 1; }
    while read -r sched bn st inc split; do
        for nh in $HEADS; do
            name="attention_${sched}_h${nh}"
            { echo; render90 "$name" "$nh" "$bn" "$st" "$inc" "$split"; } >> "$kernels.tmp"
            echo "{\"$sched\", $nh, nullptr, $name, 128, $bn, $st, 384, $(smem90 "$bn" "$st")}," >> "$table.tmp"
        done
    done < "$dir/schedules90.txt"
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
