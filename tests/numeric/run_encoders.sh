#!/usr/bin/env bash
# tests/numeric/run_encoders.sh — the CPU backend's text_encode (umT5) and clip_encode (CLIP ViT)
# against transformers' UMT5EncoderModel and CLIPVisionModelWithProjection (hidden_states[-2]),
# fixtures in tests/fixtures/encoders/ (made by tests/fixtures/make_encoder_fixtures.py; the same
# weights loaded into the original SkyReels classes give the same outputs, see its README).
#
# Each fixture carries its encoder's spec section (metadata spec_lua); the test wraps it in a spec with
# a tiny DiT whose text/image sizes fit, which exists only in a temporary directory, and runs every case
# with the Hugging Face weights (safetensors, F32) and the original .pth (umT5 BF16, CLIP F32).
#
# Bounds on ||ours - ref|| / ||ref||: 1e-5 (fp32 peer, double accumulation here; the fixture script's
# float64 re-implementation puts the peer within 5e-7 of exact math; a wrong bucket, a missing
# pre-norm or an extra block moves the output by 1e-2 or more). Rows after the real tokens must be
# exactly 0 (the DiT reads all of them). CLIP preprocessing: 1e-5: torch evaluates the 16 bicubic
# taps, their weights and the normalisation in fp32 (about ten roundings of values near 1, then the
# 1/std ~ 3.7 of the normalisation: a few 1e-6; measured 2e-6 to 3.3e-6) where we use double; an
# antialiased or otherwise different filter moves the pixels by up to 1 (fixture README).
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
bash tests/numeric/build_sttool.sh || exit 1
st=build/tools/sttool
pass=0 fail=0
check() { if "$@" | sed "s|$tmp/||"; then pass=$((pass + 1)); else fail=$((fail + 1)); fi; }

# A spec around an encoder section: a tiny DiT whose text_dim / image sizes fit the encoder.
make_spec() {   # name family text_len section_text image_dim image_len
    {
        echo "return {"
        echo "    variant = \"$1\", family = \"$2\","
        echo "    dit = { dim = 128, ffn_dim = 256, num_heads = 2, num_layers = 1, freq_dim = 256, text_dim = 64,"
        echo "            text_len = $3, in_dim = $([ "$2" = i2v ] && echo 36 || echo 16), out_dim = 16, eps = 1e-6,"
        echo "            inject_sample_info = false$([ "$2" = i2v ] && echo ", image_dim = $5, image_len = $6") },"
        echo "    $4"
        echo "    video = { height = 64, width = 64, base_num_frames = 5 },"
        echo "    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },"
        echo "}"
    } > "$tmp/$1.lua"
}

# umT5: one variant per text length (the output has text_len rows).
for f in tests/fixtures/encoders/umt5_tiny/*.safetensors; do
    case $(basename "$f") in weights_*) continue ;; esac
    S=$($st shape "$f" ids 0)
    name=t5_s$S
    if [ ! -x "out/$name/skyreels-$name" ]; then
        section=$($st meta "$f" spec_lua | grep -o 't5 = {.*}' | sed 's/, *text_len = [0-9]*//')
        make_spec "$name" t2v "$S" "$section,"
        ./build.sh gen "$tmp/$name.lua" > "$tmp/gen-$name.log" 2>&1 || { cat "$tmp/gen-$name.log"; fail=$((fail + 1)); continue; }
    fi
    n=$($st meta "$f" n_tokens)
    for w in tests/fixtures/encoders/umt5_tiny/weights_hf.safetensors tests/fixtures/encoders/umt5_tiny/weights_original.pth; do
        out=$tmp/$(basename "$f" .safetensors)-$(basename "$w" | sed 's/\..*//').safetensors
        if "out/$name/skyreels-$name" program text_encode -q --weights "$w" --inputs "$f" --output "$out"; then
            check $st compare "$out" "$f" context 1e-5 out
            check $st zero_rows "$out" context "$n"
        else
            fail=$((fail + 1)); echo "FAIL text_encode $f with $w"
        fi
    done
done

# CLIP.
f=tests/fixtures/encoders/clip_tiny/pixels.safetensors
section=$($st meta "$f" spec_lua | grep -o 'clip = {.*}')
make_spec clip_t i2v 16 "$section," 64 17
if ./build.sh gen "$tmp/clip_t.lua" > "$tmp/gen-clip.log" 2>&1; then
    for w in tests/fixtures/encoders/clip_tiny/weights_hf.safetensors tests/fixtures/encoders/clip_tiny/weights_original.pth; do
        out=$tmp/clip-$(basename "$w" | sed 's/\..*//').safetensors
        if out/clip_t/skyreels-clip_t program clip_encode -q --weights "$w" --inputs "$f" --output "$out"; then
            check $st compare "$out" "$f" clip_fea 1e-5 out
        else
            fail=$((fail + 1)); echo "FAIL clip_encode with $w"
        fi
    done
else
    cat "$tmp/gen-clip.log"; fail=$((fail + 1))
fi
for f in tests/fixtures/encoders/clip_tiny/preprocess_*.safetensors; do
    out=$tmp/$(basename "$f")
    if $st clip_preprocess "$f" "$out" 56; then check $st compare "$out" "$f" pixels 1e-5
    else fail=$((fail + 1)); echo "FAIL clip_preprocess $f"; fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
