#!/usr/bin/env bash
# tests/runtime/test_checks.sh — checks before a run, numbers and reproducibility (issue 15 items 5, 6, 9),
# on tiny_df:
#   - every checkpoint checked before any model runs, naming the model; a too-small image refused; a
#     transposed --resolution gives the portrait video;
#   - a NaN or Inf in a checkpoint, --prompt_embeds, --noise or a --resume_dir window is refused before any
#     model runs, naming the file and tensor; latents that stop being finite stop the run naming the window
#     and step, and so does a VAE decode that is not finite; each exits non-zero and leaves no mp4;
#   - two runs with the same seed store the same latents_xxh64 in the mp4 (and in --output_latents) and
#     decode to the same frames; another seed gives another hash.
# The files are poked with Python's standard library (safetensors: 8-byte header length, JSON header, data).
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
./build.sh gen tiny_df > "$tmp/gen.log" 2>&1 || { cat "$tmp/gen.log"; exit 1; }
D=out/tiny_df/skyreels-tiny_df
$D random-embeds --output "$tmp/pe.safetensors" > /dev/null
$D random-weights --output "$tmp/w.safetensors" > /dev/null
$D random-weights --program vae --output "$tmp/vae.safetensors" > /dev/null
cc -std=c11 -O2 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime tests/runtime/mp4probe.c runtime/video/video.c \
   runtime/video/video_frame.c runtime/core/fs.c runtime/core/status.c $(pkg-config --cflags --libs libavformat libavcodec libswscale libavutil) \
   -lpthread -lm -o "$tmp/mp4probe" || exit 1
pass=0 fail=0

# poke SRC DST TENSOR VALUE [SCALE]: copy SRC to DST with element 0 of TENSOR (F32) set to VALUE, or every
# element multiplied by SCALE when VALUE is "scale".
poke() {
    python3 - "$@" <<'PY'
import json, struct, sys, math
src, dst, name, value = sys.argv[1:5]
b = bytearray(open(src, "rb").read())
n = struct.unpack("<Q", b[:8])[0]
t = json.loads(b[8:8 + n])[name]
assert t["dtype"] == "F32", t["dtype"]
lo, hi = (8 + n + o for o in t["data_offsets"])
if value == "scale":
    k = float(sys.argv[5])
    vals = struct.unpack("<%df" % ((hi - lo) // 4), b[lo:hi])
    b[lo:hi] = struct.pack("<%df" % len(vals), *[max(-3e38, min(3e38, v * k)) for v in vals])
else:
    b[lo:lo + 4] = struct.pack("<f", float(value))
open(dst, "wb").write(b)
PY
}

# expect CODE "message substring" -- command...: the exit code, the message, and no mp4 at $tmp/o.mp4.
expect() {
    local code=$1 want=$2 out rc
    shift 3
    rm -f "$tmp/o.mp4"
    out=$("$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -eq "$code" ] && [[ "$out" == *"$want"* ]] && { [ "$code" -eq 0 ] || [ ! -e "$tmp/o.mp4" ]; }; then
        pass=$((pass + 1)); echo "ok   exit $rc: $want"
    else
        fail=$((fail + 1)); echo "FAIL $*: exit $rc (want $code), mp4 $( [ -e "$tmp/o.mp4" ] && echo left || echo none), message: $out (want: $want)"
    fi
}
RUN=(--num_frames 9 --inference_steps 2 -q)
O=(--vae_weights "$tmp/vae.safetensors" -o "$tmp/o.mp4")

# NaN/Inf in inputs: refused before any model runs, naming file and tensor.
poke "$tmp/w.safetensors" "$tmp/w_nan.safetensors" head.head.bias nan
expect 1 "w_nan.safetensors: tensor 'head.head.bias' holds NaN at element 0; the checkpoint is corrupt" -- \
    $D --dit_weights "$tmp/w_nan.safetensors" --prompt_embeds "$tmp/pe.safetensors" "${RUN[@]}" "${O[@]}"
poke "$tmp/vae.safetensors" "$tmp/vae_inf.safetensors" decoder.head.2.bias inf
expect 1 "vae_inf.safetensors: tensor 'decoder.head.2.bias' holds Inf at element 0" -- \
    $D --dit_weights "$tmp/w.safetensors" --prompt_embeds "$tmp/pe.safetensors" "${RUN[@]}" \
    --vae_weights "$tmp/vae_inf.safetensors" -o "$tmp/o.mp4"
poke "$tmp/pe.safetensors" "$tmp/pe_nan.safetensors" context_null nan
expect 1 "pe_nan.safetensors: tensor 'context_null' holds NaN or Inf at element 0; the embeddings must be finite" -- \
    $D --dit_weights "$tmp/w.safetensors" --prompt_embeds "$tmp/pe_nan.safetensors" "${RUN[@]}" "${O[@]}"
python3 - "$tmp/noise.safetensors" <<'PY'
import json, struct, sys
h = json.dumps({"noise.0": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}).encode()
open(sys.argv[1], "wb").write(struct.pack("<Q", len(h)) + h + struct.pack("<2f", 0.5, float("nan")))
PY
expect 1 "noise.safetensors: tensor 'noise.0' holds NaN or Inf at element 1; --noise must be finite" -- \
    $D --dit_weights "$tmp/w.safetensors" --prompt_embeds "$tmp/pe.safetensors" "${RUN[@]}" "${O[@]}" --noise "$tmp/noise.safetensors"
# A resume window with a NaN (window 0 as a run keeps it in --resume_dir, its latents poked).
mkdir -p "$tmp/res"
LONG=(--dit_weights "$tmp/w.safetensors" --prompt_embeds "$tmp/pe.safetensors" "${RUN[@]}" --seed 5)
$D "${LONG[@]}" --resume_dir "$tmp/res" --output_latents "$tmp/res.safetensors" > /dev/null 2>&1
win=$(ls "$tmp/res"/window_0000*.safetensors 2>/dev/null | head -1)
if [ -n "$win" ]; then
    poke "$win" "$win.tmp" latents nan && mv "$win.tmp" "$win"
    expect 1 "window 0's 'latents' hold NaN or Inf at element 0" -- $D "${LONG[@]}" "${O[@]}" --resume_dir "$tmp/res"
else
    fail=$((fail + 1)); echo "FAIL no window file in --resume_dir: $(ls "$tmp/res")"
fi
# Latents that overflow during the run (the output layer saturated at +-3e38: finite weights, infinite
# velocities): the run stops after the first step of window 1, no video.
poke "$tmp/w.safetensors" "$tmp/w_big.safetensors" head.head.weight scale 1e40
expect 1 "after step 1 of 2 of window 1 of 1: the model's output is not finite" -- \
    $D --dit_weights "$tmp/w_big.safetensors" --prompt_embeds "$tmp/pe.safetensors" "${RUN[@]}" "${O[@]}"

# A VAE that overflows (its first decoder convolution saturated at +-3e38: finite weights, a NaN video from finite
# latents) stops the run instead of writing a black video with exit 0.
poke "$tmp/vae.safetensors" "$tmp/vae_big.safetensors" decoder.conv1.weight scale 1e40
expect 1 "the VAE decode of window 1 of 1 gave NaN in frame 0 (element 0) from finite latents" -- \
    $D --dit_weights "$tmp/w.safetensors" --prompt_embeds "$tmp/pe.safetensors" "${RUN[@]}" \
    --vae_weights "$tmp/vae_big.safetensors" -o "$tmp/o.mp4"

# Every checkpoint checked before any model runs, the message naming the model (issue 15 item 5): a VAE
# given as the transformer is found before the text encoder runs (no "text_encode:" line).
$D random-weights --program t5 --output "$tmp/t5.safetensors" > /dev/null
TXT=(--t5_weights "$tmp/t5.safetensors" --tokenizer tests/fixtures/tokenizer/tiny_umt5.model --prompt "a cat")
out=$($D --dit_weights "$tmp/vae.safetensors" "${TXT[@]}" --num_frames 9 --inference_steps 2 "${O[@]}" 2>&1); rc=$?
if [ $rc = 1 ] && [[ "$out" == *"the transformer's checkpoint: $tmp/vae.safetensors: no tensor of this model found"* ]] &&
   [[ "$out" != *text_encode:* ]] && [ ! -e "$tmp/o.mp4" ]; then
    pass=$((pass + 1)); echo "ok   a VAE as --dit_weights: refused before the text encoder ran"
else
    fail=$((fail + 1)); echo "FAIL a VAE as --dit_weights: exit $rc: $out"
fi
expect 1 "the VAE's checkpoint: $tmp/w.safetensors: no tensor of this model found" -- \
    $D --dit_weights "$tmp/w.safetensors" "${TXT[@]}" "${RUN[@]}" --vae_weights "$tmp/w.safetensors" -o "$tmp/o.mp4"
expect 1 "the text encoder (umT5)'s checkpoint: $tmp/vae.safetensors: no tensor of this model found" -- \
    $D --dit_weights "$tmp/w.safetensors" --t5_weights "$tmp/vae.safetensors" "${TXT[@]:2}" "${RUN[@]}" "${O[@]}"

# Inputs that cannot work are refused before any model runs: a 1x1 image (its crop to the 4:3 video keeps
# 1x0 pixels). A transposed --resolution HxW makes the portrait video (tiny_df is 48x64: 64x48 gives 48 wide).
printf 'P6\n1 1\n255\n\x64\x64\x64' > "$tmp/dot.ppm"
expect 1 "dot.ppm: the image is 1x1 (WxH); cropped to the video's aspect (64x48) it keeps 1x0 pixels, nothing to resize" -- \
    $D --dit_weights "$tmp/w.safetensors" --prompt_embeds "$tmp/pe.safetensors" "${RUN[@]}" "${O[@]}" --image "$tmp/dot.ppm"
if $D --dit_weights "$tmp/w.safetensors" --prompt_embeds "$tmp/pe.safetensors" "${RUN[@]}" --resolution 64x48 \
       --vae_weights "$tmp/vae.safetensors" -o "$tmp/portrait.mp4" > /dev/null 2>&1 &&
   [ "$("$tmp/mp4probe" "$tmp/portrait.mp4")" = "9 48 64 24/1" ]; then
    pass=$((pass + 1)); echo "ok   --resolution 64x48 on a 48x64 binary: a portrait video, 48 wide and 64 high"
else
    fail=$((fail + 1)); echo "FAIL --resolution 64x48: $("$tmp/mp4probe" "$tmp/portrait.mp4" 2>&1)"
fi

# Reproducibility: same seed -> same latents_xxh64 and same decoded frames; another seed -> another hash.
ok=1
for i in 1 2 3; do
    seed=7; [ $i = 3 ] && seed=8
    $D --dit_weights "$tmp/w.safetensors" --prompt_embeds "$tmp/pe.safetensors" "${RUN[@]}" --seed $seed \
        --vae_weights "$tmp/vae.safetensors" -o "$tmp/r$i.mp4" --output_latents "$tmp/r$i.safetensors" > /dev/null 2>&1 || ok=0
done
p1=$("$tmp/mp4probe" "$tmp/r1.mp4" latents_xxh64) p2=$("$tmp/mp4probe" "$tmp/r2.mp4" latents_xxh64)
p3=$("$tmp/mp4probe" "$tmp/r3.mp4" latents_xxh64)
lh=$(python3 -c 'import json,struct,sys; b=open(sys.argv[1],"rb").read(); n=struct.unpack("<Q",b[:8])[0]; print(json.loads(b[8:8+n])["__metadata__"]["latents_xxh64"])' "$tmp/r1.safetensors")
if [ $ok = 1 ] && [ "$p1" = "$p2" ] && [[ "$p1" =~ ^[0-9a-f]{16}\ [0-9a-f]{16}$ ]] && [ "${p1%% *}" = "$lh" ] &&
   [ "${p3%% *}" != "${p1%% *}" ]; then
    pass=$((pass + 1)); echo "ok   same seed: same latents_xxh64 ($lh, also in --output_latents) and decoded frames; seed 8: another"
else
    fail=$((fail + 1)); echo "FAIL reproducibility: runs ok=$ok; '$p1' '$p2' '$p3'; --output_latents: '$lh'"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
