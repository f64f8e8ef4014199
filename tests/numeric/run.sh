#!/usr/bin/env bash
# tests/numeric/run.sh — the CPU backend's dit_forward against diffusers fixtures (tests/fixtures/).
#
# For every configuration under tests/fixtures/dit/: build its binary (the spec is specs/<config>.lua,
# or, when no such spec exists, the text the fixture carries in its metadata key spec_lua: that spec
# is written to a temporary directory and lives nowhere in the repository), run every case with the
# weights in both layouts (original names as BF16, diffusers names as F32), and compare v.
#
# Bound on ||ours - ref|| / ||ref||: 2e-6. Both sides compute in fp32 from the same bf16-exact
# weights and inputs; the peer rounds every op's output to fp32 (unit roundoff u = 6e-8) and we
# accumulate in double, so the difference is the peer's rounding carried through the network:
# about u * sqrt(number of rounding points), with ~30 points per block and 2-3 blocks plus the
# embeddings, i.e. ~6e-7. 2e-6 leaves a 3x margin and still fails on the smallest semantic
# difference we know of (an fp32 instead of float64 timestep sinusoid moves v by 3e-6; a wrong
# index or a missed op moves it by 1e-2 or more). Measured: 3e-7 to 4.3e-7.
set -euo pipefail
cd "$(dirname "$0")/../.."
BOUND=2e-6
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bash tests/numeric/build_sttool.sh || exit 1
st=build/tools/sttool

pass=0 fail=0
for dir in tests/fixtures/dit/*/; do
    config=$(basename "$dir")
    spec=specs/$config.lua
    first_case=$(ls "$dir" | grep -v '^weights_' | head -n 1 || true)
    # a folder of weights only (tiny_flf2v: the pipeline tier's model) has no transformer case to run here
    [ -n "$first_case" ] || { echo "== $config: weights only (used by tests/numeric/run_pipeline.sh)"; continue; }
    if [ ! -f "$spec" ]; then
        mkdir -p "$tmp/specs"
        spec=$tmp/specs/$config.lua
        $st meta "$dir/$first_case" spec_lua > "$spec"
        echo "== $config: spec taken from the fixture's metadata (not in specs/)"
    fi
    ./build.sh gen "$spec" > "$tmp/gen-$config.log" 2>&1 || { cat "$tmp/gen-$config.log"; fail=$((fail + 1)); continue; }
    bin=out/$config/skyreels-$config
    for case_file in "$dir"/*.safetensors; do
        case $(basename "$case_file") in weights_*) continue ;; esac
        for layout in original diffusers; do
            out=$tmp/$config-$(basename "$case_file" .safetensors)-$layout.safetensors
            if "$bin" program dit_forward -q --weights "$dir/weights_$layout.safetensors" --inputs "$case_file" \
                      --output "$out" && $st compare "$out" "$case_file" v $BOUND | sed "s|$tmp/||"; then
                pass=$((pass + 1))
            else
                fail=$((fail + 1))
            fi
        done
    done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
