#!/usr/bin/env bash
# tests/numeric/run_teacache.sh — TeaCache on the CPU backend against the ORIGINAL SkyReels-V2 code.
#
# Every case of tests/fixtures/teacache/ (tests/fixtures/make_teacache_fixtures.py: the original
# transformer.py with its own TeaCache, fp32 on CPU) is one sequence of model calls as a pipeline makes them
# (cond, uncond, per step). `program dit_forward --teacache THRESH --teacache_steps N [--use_ret_steps]` runs
# the same sequence through our CPU backend; asserted:
#   - the decisions (blocks run or skipped, per call) equal the original's exactly. The fixture script made
#     sure every decision taken on a distance is >= 5 % away from the threshold;
#   - v within 2e-6 (relative L2) of the original's, the bound of tests/numeric/run.sh (fp32 on both
#     sides; skipped calls add the cached residual in fp32 as the fp32 original does);
#   - the same sequence without TeaCache does NOT match (relative L2 above 1e-3): the fixture's skips change v.
# The weights: tiny_t2v's from tests/fixtures/dit/, tiny_df128's regenerated (random-weights --seed 1,
# original layout) and checked against the sha256 the fixture records. Ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
BOUND=2e-6
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash tests/numeric/build_sttool.sh || exit 1
st=build/tools/sttool
pass=0 fail=0
ok()  { pass=$((pass + 1)); }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

for fx in tests/fixtures/teacache/*.safetensors; do
    case_name=$(basename "$fx" .safetensors)
    config=$($st meta "$fx" config)
    thresh=$($st meta "$fx" teacache_thresh)
    steps=$($st meta "$fx" num_steps)
    ret=$($st meta "$fx" use_ret_steps)
    ./build.sh gen "specs/$config.lua" > "$tmp/gen-$config.log" 2>&1 || { cat "$tmp/gen-$config.log"; bad "gen $config"; continue; }
    bin=out/$config/skyreels-$config
    if [ "$config" = tiny_df128 ]; then
        w=$tmp/$config-weights.safetensors
        [ -f "$w" ] || "$bin" random-weights --layout original --seed 1 --output "$w" > /dev/null
    else
        w=tests/fixtures/dit/$config/weights_original.safetensors
    fi
    want=$($st meta "$fx" weights_sha256)
    if [ "$(sha256sum "$w" | cut -d' ' -f1)" != "$want" ]; then
        bad "$case_name: the weights are not those the fixture was made with (sha256 of $w); rerun make_teacache_fixtures.py"
        continue
    fi
    flags=(--teacache "$thresh" --teacache_steps "$steps")
    [ "$ret" = 1 ] && flags+=(--use_ret_steps)
    echo "== $case_name: $config, $($st meta "$fx" calls) calls, threshold $thresh, num_steps $steps, use_ret_steps $ret"
    out=$tmp/$case_name.safetensors
    if "$bin" program dit_forward -q --weights "$w" --inputs "$fx" --output "$out" "${flags[@]}"; then
        if $st equal "$out" "$fx" teacache_computed; then ok; else bad "$case_name: decisions"; fi
        if $st compare "$out" "$fx" v $BOUND | sed "s|$tmp/||"; then ok; else bad "$case_name: v"; fi
    else
        bad "$case_name: program dit_forward --teacache failed"
    fi
    plain=$tmp/$case_name-plain.safetensors
    if "$bin" program dit_forward -q --weights "$w" --inputs "$fx" --output "$plain" &&
       ! $st compare "$plain" "$fx" v 1e-3 > "$tmp/plain.txt"; then
        ok; echo "ok     without TeaCache the output differs: $(grep -o 'rel_l2 [^ ]*' "$tmp/plain.txt")"
    else
        bad "$case_name: the run without TeaCache matches the fixture (or failed): $(head -1 "$tmp/plain.txt")"
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
