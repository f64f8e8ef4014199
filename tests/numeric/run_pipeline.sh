#!/usr/bin/env bash
# tests/numeric/run_pipeline.sh — the T2V, I2V and diffusion-forcing pipelines on the CPU backend
# against diffusers' SkyReels-V2 pipelines set up to follow the original (tests/fixtures/pipeline/,
# made by tests/fixtures/make_pipeline_fixtures.py; the README there lists every patch).
#
# Each fixture names its variant, weights and flags; its draws noise.0, noise.1, ... go in through
# --noise and its prompt embeddings through --prompt_embeds; the final latents come back through
# --output_latents and are compared with the fixture's `latents` / `latents.w<k>` (and, for long
# videos, the decoded `video`).
#
# Bounds on ||ours - ref|| / ||ref||: latents 1e-5. The peer is fp32 throughout and we accumulate in
# double; rerunning the peer in float64 puts its own fp32 error at 6e-7 to 2.1e-6 on these latents
# (fixture README), so 1e-5 is ~5x the largest while a wrong step, draw, prefix or timestep moves
# them by 1e-2 or more. The long videos' `video` is stored as F16 (its quantisation alone is 1.9e-4
# relative): bound 5e-4.
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash tests/numeric/build_sttool.sh || exit 1
st=build/tools/sttool
dir=tests/fixtures/pipeline
pass=0 fail=0
declare -A built
for f in "$dir"/*.safetensors; do
    case_name=$(basename "$f" .safetensors)
    variant=$($st meta "$f" variant)
    if [ -z "${built[$variant]:-}" ]; then
        ./build.sh gen "$variant" > "$tmp/gen-$variant.log" 2>&1 || { cat "$tmp/gen-$variant.log"; fail=$((fail + 1)); continue; }
        built[$variant]=1
    fi
    # The fixture's flags (JSON) as command-line arguments; an image is a file beside the fixture.
    mapfile -t flags < <($st meta "$f" args | python3 -c '
import json, sys
for k, v in sorted(json.load(sys.stdin).items()):
    print("--" + k)
    print(("'"$dir"'/" + v) if k in ("image", "end_image") else (repr(v) if isinstance(v, float) else str(v)))')
    vae=()
    v_w=$($st meta "$f" vae_weights 2>/dev/null) && vae=(--vae_weights "$v_w")
    out=$tmp/$case_name.safetensors
    if ! out/$variant/skyreels-$variant -q --dit_weights "$($st meta "$f" dit_weights)" "${vae[@]}" \
            --prompt_embeds "$f" --noise "$f" --output_latents "$out" -o "$tmp/$case_name.mp4" "${flags[@]}" \
            > "$tmp/$case_name.log" 2>&1; then
        fail=$((fail + 1)); echo "FAIL $case_name: the run failed:"; tail -5 "$tmp/$case_name.log"; continue
    fi
    for name in latents latents.w0 latents.w1 latents.w2 video; do
        $st shape "$f" "$name" 0 > /dev/null 2>&1 || continue
        bound=1e-5; [ "$name" = video ] && bound=5e-4
        if $st compare "$out" "$f" "$name" $bound | sed "s|$tmp/||; s|^\(OK    \|NOT OK\) *\([^ ]*\)|\1 \2:$name|"; then
            pass=$((pass + 1))
        else
            fail=$((fail + 1))
        fi
    done
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
