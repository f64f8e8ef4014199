#!/usr/bin/env bash
# tests/numeric/run_vae.sh — the CPU backend's vae_decode and vae_encode against diffusers'
# AutoencoderKLWan fixtures (tests/fixtures/vae/, made by tests/fixtures/make_vae_fixtures.py).
#
# Each fixture configuration carries its vae section in the metadata key spec_lua; the test wraps it
# in a spec (the tiny T2V DiT, the fixture's video size) that exists only in a temporary directory,
# builds that variant, and runs every case with the diffusers-layout weights (BF16 on disk) and, where
# the fixture has one, the original-layout .pth (read by runtime/formats/pth.c, as the real Wan2.1_VAE.pth is).
#
# Bound on ||ours - ref|| / ||ref||: 1e-5. Both sides compute in fp32 from the same bf16-exact
# weights and inputs; the peer rounds every conv output to fp32 and sums each output's 27*C (up to
# 864 here) products in fp32, while we accumulate in double: per conv the peer's error is about
# u*sqrt(27*C) ~ 2e-6 relative (u = 6e-8), and about 30 convs in sequence add up to a few 1e-6 in
# the worst case. The fixture script's own float64 reference puts diffusers within 8.1e-7 of exact
# math. 1e-5 is above that and far below the 1e-2 or more that a wrong tap, a wrong cache frame or a
# misplaced clamp produces. Measured: 2.5e-7 to 8.3e-7.
#
# The tiled decode (program vae_decode --vae_tiling TILE:STRIDE, models/vae.h) against diffusers' tiled_decode
# (tests/fixtures/vae_tiled/, made by tests/fixtures/make_vae_tiled_fixtures.py: the same weights and latents,
# tiles of 24 px at a stride of 16 so that the tiny latents split into 2x3 and 3x2 tiles), same bound: each
# tile is the same computation at a smaller size, and the blend (two products and a sum in fp32, as PyTorch
# does them) and the clamp add at most an fp32 rounding. The same input decoded untiled must miss the tiled
# reference by far more (diffusers' own tiled vs untiled outputs differ by ~0.7 relative here), so the test
# sees the tiling. Each configuration with a tiled fixture is generated with vae.tile_px = the fixture's tile, so
# its tiled decode runs vae_decode_tile, the decoder generated at the tile's size (its arena the tile's; the
# variant's vae_decode at the frame's size is what the untiled cases run); the test checks the variant has it.
# The tiled encode (program vae_encode --vae_tiling TILE:STRIDE) against diffusers' tiled_encode likewise
# (tiles of 24 px at a stride of 8: 4x6 and 6x4 tiles, blended over 2 latents), same bound and reasoning (the
# blend is in latent space; ours blends the normalised mean, diffusers the mean before normalising: an affine map
# per channel with blend weights summing to 1, so an fp32 rounding apart), run by vae_encode_tile.
set -euo pipefail
cd "$(dirname "$0")/../.."
BOUND=1e-5
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

bash tests/numeric/build_sttool.sh || exit 1
st=build/tools/sttool

pass=0 fail=0
for dir in tests/fixtures/vae/*/; do
    config=$(basename "$dir")
    first=$(ls "$dir" | grep -E '^(decode|encode)_' | head -n 1)
    # video size from the first case's video tensor: [1, 3, T, H, W]
    H=$($st shape "$dir/$first" video 3)
    W=$($st shape "$dir/$first" video 4)
    # the tile of this configuration's tiled fixture, if any: the spec's vae.tile_px (vae_decode_tile's size)
    tile=
    for f in tests/fixtures/vae_tiled/"$config"_decode_*_tiled.safetensors; do
        [ -f "$f" ] && tile="tile_px = $($st meta "$f" tile_min_px), "
    done
    mkdir -p "$tmp/specs"
    spec=$tmp/specs/$config.lua
    {
        echo "-- made by tests/numeric/run_vae.sh from $dir$first (spec_lua) and specs/tiny_t2v.lua"
        echo "return {"
        echo "    variant = \"$config\", family = \"t2v\","
        sed -n '/^    dit = {/,/^    },/p' specs/tiny_t2v.lua
        echo "    $($st meta "$dir/$first" spec_lua | tr '\n' ' ' | sed "s/^vae = { /vae = { $tile/")"
        echo "    video = { height = $H, width = $W, base_num_frames = 17 },"
        echo "    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },"
        echo "}"
    } > "$spec"
    ./build.sh gen "$spec" > "$tmp/gen-$config.log" 2>&1 || { cat "$tmp/gen-$config.log" "$spec"; fail=$((fail + 1)); continue; }
    bin=out/$config/skyreels-$config
    weights=("$dir/weights_diffusers.safetensors")
    [ -f "$dir/weights_original.pth" ] && weights+=("$dir/weights_original.pth")
    for case_file in "$dir"/decode_*.safetensors "$dir"/encode_*.safetensors; do
        [ -f "$case_file" ] || continue
        case_name=$(basename "$case_file" .safetensors)
        case $case_name in decode_*) prog=vae_decode; want=video ;; *) prog=vae_encode; want=z ;; esac
        for w in "${weights[@]}"; do
            out=$tmp/$config-$case_name-$(basename "$w" | sed 's/\..*//').safetensors
            if "$bin" program $prog -q --weights "$w" --inputs "$case_file" --output "$out" &&
               $st compare "$out" "$case_file" $want $BOUND | sed "s|$tmp/||"; then
                pass=$((pass + 1))
            else
                fail=$((fail + 1))
            fi
        done
    done
done
for f in tests/fixtures/vae_tiled/*.safetensors; do
    config=$($st meta "$f" source | sed 's|^tests/fixtures/vae/\([^/]*\)/.*|\1|')
    case $(basename "$f") in *_decode_*) prog=vae_decode; want=video ;; *) prog=vae_encode; want=z ;; esac
    bin=out/$config/skyreels-$config
    tiling="$($st meta "$f" tile_min_px):$($st meta "$f" tile_stride_px)"
    out=$tmp/tiled-$(basename "$f")
    if [ -f "out/$config/gen/${prog}_tile_cpu.c" ]; then
        echo "ok   $config: has ${prog}_tile ($(grep -o "${prog}_tile: arena peak [^(]*" "$tmp/gen-$config.log"))"
        pass=$((pass + 1))
    else
        echo "FAIL $config: no ${prog}_tile generated (the spec's vae.tile_px is the fixture's tile)"; fail=$((fail + 1))
    fi
    if "$bin" program $prog -q --weights "tests/fixtures/vae/$config/weights_diffusers.safetensors" --inputs "$f" \
            --vae_tiling "$tiling" --output "$out" && $st compare "$out" "$f" $want $BOUND | sed "s|$tmp/||"; then
        pass=$((pass + 1))
    else
        echo "FAIL $(basename "$f"): --vae_tiling $tiling vs diffusers' tiled ${prog#vae_}"; fail=$((fail + 1))
    fi
    "$bin" program $prog -q --weights "tests/fixtures/vae/$config/weights_diffusers.safetensors" --inputs "$f" \
        --output "$out" && if $st compare "$out" "$f" $want 1e-2 > "$tmp/untiled.txt"; then
        echo "FAIL $(basename "$f"): the untiled ${prog#vae_} is within 1e-2 of the tiled reference: $(cat "$tmp/untiled.txt")"
        fail=$((fail + 1))
    else
        echo "ok   $(basename "$f"): untiled, the same input is $(grep -o 'rel_l2 [^ ]*' "$tmp/untiled.txt") from the tiled reference"
        pass=$((pass + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
