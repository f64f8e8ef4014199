#!/usr/bin/env bash
# tests/runtime/test_life_cycle.sh — a generation's life cycle against hostile input (issue 15 items 1-4), with
# the tiny DF binary:
#   1. special files: a FIFO (and a device, a directory) given as each kind of input the engine reads (a
#      checkpoint, a shard named by an index, a .pth, a tokenizer model and tokenizer.json, an image, a video,
#      --noise, --prompt_embeds, a --resume_dir window, a LoRA) is refused naming the path, never waited on
#      (each run under `timeout 20`: a hang fails the case with exit 124);
#   2. signals: SIGINT, SIGTERM and SIGHUP at each phase of the run (loading, encoding, a denoising step, the
#      VAE decode, before the outputs, before the mp4 is finalised, after everything was written) exit 130 or
#      143 and leave nothing at the output paths, a second SIGINT too; a stale temporary file of a killed run
#      beside the output is removed at start, one of a live process kept. The signals come from the binary
#      itself at the phase named by SKY_TEST_SIGNAL_AT (test only, pipeline/denoise.h), so nothing here
#      depends on timing;
#   3. outputs: a failed mp4 finalise (SKY_TEST_FAIL_AT=mp4_rename, test only, video/video.h: the rename
#      fails as on a full disk) fails the run, keeps the --output_latents file (readable), leaves no mp4;
#   4. prompts: a prompt or negative prompt that is not valid UTF-8 (ending in a truncated sequence) is refused
#      naming the flag before anything is made; a 128 KiB prompt (the most one argument can hold: Linux's
#      MAX_ARG_STRLEN), emoji, tabs, controls and DEL give an mp4 whose metadata parses as JSON in strict UTF-8
#      and holds the prompt byte for byte; the default output name never takes a '/' from the prompt.
# Ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
export SKY_BACKEND=cpu
./build.sh gen tiny_df > /dev/null 2>&1 || { ./build.sh gen tiny_df; echo "0 passed, 1 failed"; exit 1; }
B=$PWD/out/tiny_df/skyreels-tiny_df
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
no() { fail=$((fail + 1)); echo "FAIL $1"; }

"$B" random-weights --output "$tmp/dit.safetensors" --seed 1 > /dev/null
"$B" random-weights --program vae --output "$tmp/vae.safetensors" --seed 2 > /dev/null
"$B" random-weights --program t5 --output "$tmp/t5.safetensors" --seed 3 > /dev/null
cp tests/fixtures/tokenizer/tiny_umt5.model "$tmp/tok.model"
cp tests/fixtures/pipeline/df_image_start.png "$tmp/start.png"
mkdir -p "$tmp/out"
BASE=(--vae_weights "$tmp/vae.safetensors" --t5_weights "$tmp/t5.safetensors" --num_frames 5 --inference_steps 1 --seed 1)
RUN=("${BASE[@]}" --dit_weights "$tmp/dit.safetensors" --tokenizer "$tmp/tok.model")
O=$tmp/out

# left: what is in $O (hidden files too), then $O emptied
left() { ls -A "$O"; rm -rf "${O:?}"/* "$O"/.[!.]* 2> /dev/null; }

# ---- 1. special files ------------------------------------------------------------------------
mkfifo "$tmp/fifo.safetensors" "$tmp/fifo.pth" "$tmp/fifo.model" "$tmp/fifo.json" "$tmp/fifo.png" "$tmp/fifo.mp4"
mkdir -p "$tmp/ck" "$tmp/rd"
cp "$tmp/dit.safetensors" "$tmp/ck/model-00001-of-00002.safetensors"
mkfifo "$tmp/ck/model-00002-of-00002.safetensors"
python3 - "$tmp/ck" << 'EOF'
import json, struct, sys
d = sys.argv[1]
with open(d + "/model-00001-of-00002.safetensors", "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    names = [k for k in json.loads(f.read(n)) if k != "__metadata__"]
wm = {k: "model-00001-of-00002.safetensors" for k in names}
wm[names[0]] = "model-00002-of-00002.safetensors"
json.dump({"metadata": {}, "weight_map": wm}, open(d + "/model.safetensors.index.json", "w"))
EOF
mkfifo "$tmp/rd/window_0000.safetensors"

# special NAME WANT ARGS...: under timeout 20 the binary exits non-zero (not 124) naming WANT, nothing in $O
special() {
    local name=$1 want=$2 out rc=0
    shift 2
    out=$(timeout 20 "$B" "$@" 2>&1 < /dev/null) || rc=$?
    local l
    l=$(left)
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 124 ] && [[ $out == *"$want"* ]] && [ -z "$l" ]; then
        ok "$name: exit $rc, \"$(grep -m1 'error:' <<< "$out" | sed 's/^[^:]*: error: //' | cut -c1-150)\""
    else
        no "$name: exit $rc$([ "$rc" = 124 ] && echo ' (hung: killed by timeout)'), message must hold \"$want\"; left: ${l:-nothing}"
        tail -n 3 <<< "$out"
    fi
}
F="is a FIFO (named pipe)"
special "checkpoint FIFO" "$tmp/fifo.safetensors: $F" "${BASE[@]}" --dit_weights "$tmp/fifo.safetensors" \
    --tokenizer "$tmp/tok.model" -o "$O/x.mp4"
special "shard FIFO named by an index" "$tmp/ck/model-00002-of-00002.safetensors: $F" "${BASE[@]}" \
    --dit_weights "$tmp/ck" --tokenizer "$tmp/tok.model" -o "$O/x.mp4"
special ".pth FIFO" "$tmp/fifo.pth: $F" --dit_weights "$tmp/dit.safetensors" --vae_weights "$tmp/fifo.pth" \
    --t5_weights "$tmp/t5.safetensors" --tokenizer "$tmp/tok.model" --num_frames 5 --inference_steps 1 -o "$O/x.mp4"
special "tokenizer model FIFO" "$tmp/fifo.model: $F" "${BASE[@]}" --dit_weights "$tmp/dit.safetensors" \
    --tokenizer "$tmp/fifo.model" -o "$O/x.mp4"
special "tokenizer.json FIFO" "$tmp/fifo.json: $F" "${BASE[@]}" --dit_weights "$tmp/dit.safetensors" \
    --tokenizer "$tmp/fifo.json" -o "$O/x.mp4"
special "image FIFO" "$tmp/fifo.png: $F" "${RUN[@]}" --image "$tmp/fifo.png" -o "$O/x.mp4"
special "video FIFO" "$tmp/fifo.mp4: $F" "${RUN[@]}" --video_path "$tmp/fifo.mp4" --overlap_history 1 -o "$O/x.mp4"
special "--noise FIFO" "$tmp/fifo.safetensors: $F" "${RUN[@]}" --noise "$tmp/fifo.safetensors" -o "$O/x.mp4"
special "--prompt_embeds FIFO" "$tmp/fifo.safetensors: $F" "${BASE[@]}" --dit_weights "$tmp/dit.safetensors" \
    --prompt_embeds "$tmp/fifo.safetensors" -o "$O/x.mp4"
special "--resume_dir window FIFO" "$tmp/rd/window_0000.safetensors: $F" "${RUN[@]}" --resume_dir "$tmp/rd" -o "$O/x.mp4"
special "LoRA FIFO" "$tmp/fifo.safetensors: $F" "${RUN[@]}" --lora "$tmp/fifo.safetensors" -o "$O/x.mp4"
special "checkpoint a character device" "/dev/null: is a character device" "${BASE[@]}" --dit_weights /dev/null \
    --tokenizer "$tmp/tok.model" -o "$O/x.mp4"
special "--noise a directory" "$tmp/ck: is a directory" "${RUN[@]}" --noise "$tmp/ck" -o "$O/x.mp4"

# ---- 2. signals ---------------------------------------------------------------------------------
# interrupted NAME PHASE[:SIG[:TIMES]] WANT_RC [ARGS...]: exit WANT_RC, "interrupted; nothing was written", $O empty
interrupted() {
    local name=$1 at=$2 want=$3 out rc=0
    shift 3
    out=$(SKY_TEST_SIGNAL_AT=$at timeout 60 "$B" "${RUN[@]}" -o "$O/x.mp4" --output_latents "$O/l.safetensors" \
        "$@" 2>&1) || rc=$?
    local l
    l=$(left)
    if [ "$rc" -eq "$want" ] && [[ $out == *"interrupted; nothing was written"* ]] && [ -z "$l" ]; then
        ok "$name ($at): exit $rc, nothing left"
    else
        no "$name ($at): exit $rc (want $want), the message must say 'interrupted; nothing was written'; left: ${l:-nothing}"
        tail -n 3 <<< "$out"
    fi
}
interrupted "SIGINT while loading" load 130
interrupted "SIGINT while encoding the prompts" encode 130
interrupted "SIGINT at a denoising step" step 130
interrupted "SIGINT during the VAE decode" vae_decode 130
interrupted "SIGINT during the VAE encode" vae_encode 130 --image "$tmp/start.png"
interrupted "SIGINT after the last step, before the outputs" finish 130
interrupted "SIGINT before the mp4 is finalised (latents written)" mp4 130
interrupted "SIGINT after everything was written" done 130
interrupted "SIGTERM during the VAE decode" vae_decode:15 143
interrupted "SIGHUP during the VAE decode" vae_decode:1 143
interrupted "two SIGINTs during the VAE decode" vae_decode:2:2 130

# a stale temporary file of a killed run (its process is gone) is removed at start; a live process's is kept
sh -c 'exit 0' &
dead=$!
wait "$dead"
touch "$O/.x.mp4.sky-$dead.Ab12Cd" "$O/.l.safetensors.sky-$dead.xyzXYZ" "$O/.x.mp4.sky-$$.Ef34Gh" "$O/.other.mp4.sky-$dead.Ab12Cd"
out=$("$B" "${RUN[@]}" -o "$O/x.mp4" --output_latents "$O/l.safetensors" 2>&1)
l=$(ls -A "$O" | sort | tr '\n' ' ')
want=$(printf '%s\n' ".other.mp4.sky-$dead.Ab12Cd" ".x.mp4.sky-$$.Ef34Gh" l.safetensors x.mp4 | sort | tr '\n' ' ')
if [ "$l" = "$want" ] && [[ $out == *"removed 1 temporary file left by an earlier run"* ]]; then
    ok "stale temporary files of this run's outputs removed, a live process's and another output's kept"
else
    no "stale temporary files: left '$l', want '$want'"
    grep -i "removed\|error" <<< "$out"
fi
left > /dev/null

# ---- 3. outputs: a failed mp4 finalise keeps the latents, leaves no mp4 ---------------------------
out=$(SKY_TEST_FAIL_AT=mp4_rename "$B" "${RUN[@]}" -o "$O/x.mp4" --output_latents "$O/l.safetensors" 2>&1)
rc=$?
l=$(ls -A "$O" | tr '\n' ' ')
if [ "$rc" = 1 ] && [ "$l" = "l.safetensors " ] && [[ $out == *"the latents were written to $O/l.safetensors"* ]] &&
    python3 -c '
import json, struct, sys
f = open(sys.argv[1], "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n))
assert "latents" in "".join(h), h.keys()' "$O/l.safetensors"; then
    ok "a failed mp4 finalise: exit 1, the latents kept and readable, no mp4 nor temporary file"
else
    no "a failed mp4 finalise: exit $rc (want 1), left '$l' (want only l.safetensors)"
    tail -n 3 <<< "$out"
fi
left > /dev/null

# ---- 4. prompts ---------------------------------------------------------------------------------
refused_text() {
    local name=$1 want=$2 out rc=0
    shift 2
    out=$(cd "$tmp" && "$B" "${RUN[@]}" "$@" 2>&1) || rc=$?
    if [ "$rc" = 2 ] && [[ $out == *"$want"* ]] && [ ! -e "$tmp/result" ] && [ -z "$(left)" ]; then
        ok "$name: exit 2, \"$(grep -m1 'error:' <<< "$out" | sed 's/^[^:]*: error: //')\""
    else
        no "$name: exit $rc (want 2), message must hold \"$want\", nothing made"
        tail -n 3 <<< "$out"
    fi
}
refused_text "a prompt ending in a truncated UTF-8 sequence" "--prompt: not valid UTF-8 (byte 9 of 10" \
    --prompt $'a cat /x\xe2\x82'
refused_text "a negative prompt with a lone continuation byte" "--negative_prompt: not valid UTF-8" \
    --negative_prompt $'blur \x80 noise' -o "$O/x.mp4"

# prompt_ok NAME PROMPT: the run writes $O/x.mp4 whose comment (the data atom of its metadata) parses as
# strict JSON from strict UTF-8 and holds the prompt unchanged
prompt_ok() {
    local name=$1 prompt=$2 out rc=0
    out=$("$B" -q "${RUN[@]}" --prompt "$prompt" -o "$O/x.mp4" 2>&1) || rc=$?
    if [ "$rc" = 0 ] && python3 - "$O/x.mp4" "$prompt" << 'EOF'; then
import json, sys
b = open(sys.argv[1], "rb").read()
# the comment's value: the payload of the 'data' atom (size, "data", type, locale, value) that holds the run's
# JSON, wherever the muxer put it (an (c)cmt item, or a "comment" key with movflags use_metadata_tags)
i = b.index(b'{"prompt": ')
assert b[i - 12:i - 8] == b"data", "the JSON is not the value of a data atom"
size = int.from_bytes(b[i - 16:i - 12], "big")
args = json.loads(b[i:i - 16 + size].decode("utf-8", "strict"), strict=True)
assert args["prompt"] == sys.argv[2].encode("utf-8", "surrogateescape").decode("utf-8"), "prompt differs"
EOF
        ok "$name: the mp4's metadata is valid JSON and UTF-8 and holds the prompt"
    else
        no "$name: exit $rc, or the mp4's metadata does not parse / hold the prompt"
        tail -n 3 <<< "$out"
    fi
    left > /dev/null
}
long=$(python3 -c '
import sys
b = ("a red fox 🦊 jumps\tover \"the\" lazy dog\\ 狐狸 " * 3000).encode()[:131071]
sys.stdout.write(b.decode("utf-8", "ignore"))')
prompt_ok "a $(printf %s "$long" | wc -c)-byte prompt of emoji, CJK, tabs, quotes, backslashes" "$long"
prompt_ok "a prompt of controls and DEL" $'bell\a esc\e del\x7f nl\n cr\r 🎬'

# the default output name: the prompt without '/', no folder made from it, the name cut on a character boundary
out=$(cd "$tmp" && "$B" "${RUN[@]}" --prompt $'a/b 🦊/../c' 2>&1)
made=$(cd "$tmp" && find result -type f)
if [[ $made == result/diffusion_forcing/ab\ 🦊..c_1_*.mp4 ]] && [ "$(cd "$tmp" && find result -type d | wc -l)" = 2 ]; then
    ok "default output name without the prompt's '/': $made"
else
    no "default output name: made '$made'"
    tail -n 3 <<< "$out"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
