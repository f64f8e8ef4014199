#!/usr/bin/env bash
# tests/runtime/test_permissions.sh — a generation that may not read an input or write an output, run as an
# unprivileged user (tests/runtime/unprivileged.sh: CI runs as root, which reads and writes through any mode
# bits): an unreadable checkpoint (a file, a shard in a checkpoint folder), an unreadable tokenizer (a .model
# file, a tokenizer folder's spiece.model), an unreadable start image, and -o, --output_latents and
# --resume_dir in a folder it may not write. Each must exit non-zero with a message naming the file or folder
# and leave nothing at the output path (no temporary file either); the outputs that cannot be written are
# refused before any weight is read. Uses the tiny DF binary. Ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
. tests/runtime/unprivileged.sh
export SKY_BACKEND=cpu
./build.sh gen tiny_df > /dev/null 2>&1 || { ./build.sh gen tiny_df; echo "0 passed, 1 failed"; exit 1; }
tmp=$(mktemp -d)
trap 'chmod -R u+rwX "$tmp"; rm -rf "$tmp"' EXIT
chmod 755 "$tmp"
pass=0 fail=0

unprivileged_setup
if [ -n "$UNPRIVILEGED_NOT_RUN" ]; then
    echo "FAIL permissions: cannot run as an unprivileged user ($UNPRIVILEGED_NOT_RUN)"
    echo "0 passed, 1 failed"
    exit 1
fi
if ! unprivileged_probe "$tmp"; then
    # not root, yet a mode 000 file is readable (a capability such as CAP_DAC_OVERRIDE): nothing to check here
    echo "permissions: NOT RUN (a file of mode 000 is readable to this user: $(id -un), capabilities)"
    echo "0 passed, 0 failed"
    exit 0
fi
echo "== as: $([ "$(id -u)" = 0 ] && echo "nobody (${UNPRIVILEGED_CMD[0]})" || id -un)"

# The inputs, readable by that user; out/ is writable by it, ro/ is not.
cp out/tiny_df/skyreels-tiny_df "$tmp/"
B=$tmp/skyreels-tiny_df
"$B" random-weights --output "$tmp/dit.safetensors" --seed 1 > /dev/null
"$B" random-weights --program vae --output "$tmp/vae.safetensors" --seed 2 > /dev/null
"$B" random-weights --program t5 --output "$tmp/t5.safetensors" --seed 3 > /dev/null
cp tests/fixtures/tokenizer/tiny_umt5.model "$tmp/tok.model"
cp tests/fixtures/pipeline/df_image_start.png "$tmp/start.png"
mkdir -p "$tmp/ckpt" "$tmp/tokdir" "$tmp/out" "$tmp/ro"
cp "$tmp/dit.safetensors" "$tmp/ckpt/model.safetensors"
cp "$tmp/tok.model" "$tmp/tokdir/spiece.model"
chmod 644 "$tmp"/*.safetensors "$tmp"/tok.model "$tmp"/start.png "$tmp"/ckpt/* "$tmp"/tokdir/*
chmod 755 "$B" "$tmp/ckpt" "$tmp/tokdir" "$tmp/ro"
chmod 777 "$tmp/out"
BASE=(--vae_weights "$tmp/vae.safetensors" --t5_weights "$tmp/t5.safetensors" --num_frames 5 --inference_steps 1 --seed 1)
RUN=("${BASE[@]}" --dit_weights "$tmp/dit.safetensors" --tokenizer "$tmp/tok.model")

# the run itself may write, as that user: the baseline the refusals below differ from
if as_unprivileged "$B" "${RUN[@]}" -o "$tmp/out/ok.mp4" > /dev/null 2>&1 && [ -s "$tmp/out/ok.mp4" ]; then
    pass=$((pass + 1)); echo "ok   the same run writes its mp4 when it may"
else
    fail=$((fail + 1)); echo "FAIL the baseline run as that user: no $tmp/out/ok.mp4"
fi
rm -f "$tmp/out/ok.mp4"

# refused NAME WANT EARLY FOLDER -- ARGS...: as that user, the binary with ARGS exits non-zero, its message
# holds WANT, FOLDER (the output's) is empty afterwards; EARLY=1: refused before any weight is read.
refused() {
    local name=$1 want=$2 early=$3 folder=$4
    shift 5
    local out rc=0
    out=$(as_unprivileged "$B" "$@" 2>&1) || rc=$?
    local left
    left=$(ls -A "$folder")
    if [ "$rc" -ne 0 ] && [[ $out == *"$want"* ]] && [ -z "$left" ] &&
        { [ "$early" = 0 ] || [[ $out != *"weights:"* ]]; }; then
        pass=$((pass + 1)); echo "ok   $name: exit $rc, \"$(grep -m1 'error:' <<< "$out" | sed 's/^[^:]*: error: //')\""
    else
        fail=$((fail + 1))
        echo "FAIL $name: exit $rc (want non-zero), message must hold \"$want\"$([ "$early" = 1 ] && echo ", before any weight is read"); left in $folder: ${left:-nothing}"
        echo "$out" | grep -v '^denoise' | tail -n 5
    fi
    rm -rf "${folder:?}"/* "$folder"/.[!.]* 2> /dev/null
}

chmod 000 "$tmp/dit.safetensors"
refused "unreadable checkpoint" "$tmp/dit.safetensors: cannot open: Permission denied" 0 "$tmp/out" -- \
    "${RUN[@]}" -o "$tmp/out/x.mp4"
chmod 644 "$tmp/dit.safetensors"
chmod 000 "$tmp/ckpt/model.safetensors"
refused "unreadable shard in a checkpoint folder" "$tmp/ckpt/model.safetensors: cannot open: Permission denied" 0 \
    "$tmp/out" -- "${BASE[@]}" --dit_weights "$tmp/ckpt" --tokenizer "$tmp/tok.model" -o "$tmp/out/x.mp4"
chmod 000 "$tmp/tok.model"
refused "unreadable tokenizer" "$tmp/tok.model: cannot open: Permission denied" 0 "$tmp/out" -- \
    "${RUN[@]}" -o "$tmp/out/x.mp4"
chmod 000 "$tmp/tokdir/spiece.model"
refused "unreadable tokenizer folder's spiece.model" "$tmp/tokdir/spiece.model: cannot open: Permission denied" 0 \
    "$tmp/out" -- "${BASE[@]}" --dit_weights "$tmp/dit.safetensors" --tokenizer "$tmp/tokdir" -o "$tmp/out/x.mp4"
chmod 000 "$tmp/start.png"
refused "unreadable start image" "$tmp/start.png" 0 "$tmp/out" -- \
    "${BASE[@]}" --dit_weights "$tmp/dit.safetensors" --tokenizer "$tmp/tokdir" --image "$tmp/start.png" -o "$tmp/out/x.mp4"
chmod 644 "$tmp/tok.model" "$tmp/tokdir/spiece.model" "$tmp/start.png"

refused "-o in a read-only folder" "-o $tmp/ro/x.mp4: cannot write into $tmp/ro: Permission denied" 1 "$tmp/ro" -- \
    "${RUN[@]}" -o "$tmp/ro/x.mp4"
refused "--output_latents in a read-only folder" "--output_latents $tmp/ro/l.safetensors: cannot write into $tmp/ro" 1 \
    "$tmp/ro" -- "${RUN[@]}" -o "$tmp/out/x.mp4" --output_latents "$tmp/ro/l.safetensors"
[ -z "$(ls -A "$tmp/out")" ] || { fail=$((fail + 1)); echo "FAIL --output_latents refused, yet $tmp/out holds: $(ls -A "$tmp/out")"; }
refused "--resume_dir read-only" "--resume_dir $tmp/ro: cannot write into it: Permission denied" 1 "$tmp/ro" -- \
    "${RUN[@]}" -o "$tmp/out/x.mp4" --resume_dir "$tmp/ro"
refused "--resume_dir inside a read-only folder" "--resume_dir $tmp/ro/sub: cannot create the folder $tmp/ro/sub: Permission denied" 1 \
    "$tmp/ro" -- "${RUN[@]}" -o "$tmp/out/x.mp4" --resume_dir "$tmp/ro/sub"

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
