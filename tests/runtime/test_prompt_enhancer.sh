#!/usr/bin/env bash
# tests/runtime/test_prompt_enhancer.sh — --prompt_enhancer of a real binary against a model server that speaks
# the OpenAI chat-completions protocol: tests/runtime/enhancer_server.py on 127.0.0.1 (a free port), which
# checks each request and answers by the model name it is asked for. The binary is tiny_df, run the way the
# demo runs it (./build.sh: random weights, the tiny umT5 tokenizer), so the enhanced prompt really goes
# through the tokenizer and the text encoder.
#   - success (with the key from $SKY_PROMPT_ENHANCER_API_KEY; with the URL from $SKY_PROMPT_ENHANCER_URL): the
#     run's metadata, in the latents file and in the mp4, holds the enhanced prompt as "prompt" and the one
#     given as "original_prompt", byte for byte for a prompt with quotes, backslashes, a tab, a newline and
#     non-ASCII text (the expected text is computed here, in Python, from the server's rule);
#   - failures (HTTP 500, 401 without the key, 404 for an unknown model, an answer slower than
#     --prompt_enhancer_timeout, not JSON, no content, empty, invalid UTF-8, over 1 MiB, a closed port): exit 1,
#     a message naming the cause, nothing written (not even the output's directory), and the checkpoint never
#     opened (the weights path given does not exist);
#   - usage errors (exit 2): the enhancer's flags without it, a bad URL (flag or variable), a bad timeout, and
#     the runs it cannot serve (--image, --prompt_embeds, --resume_dir).
# Needs python3. Takes a few seconds (one of them the timeout case).
set -uo pipefail
cd "$(dirname "$0")/../.." || exit 1
tmp=$(mktemp -d)
server=
trap '[ -n "$server" ] && kill "$server" 2> /dev/null; rm -rf "$tmp"' EXIT
# The loopback server must be reached directly, and only the variables a case sets apply.
unset http_proxy https_proxy HTTP_PROXY HTTPS_PROXY all_proxy ALL_PROXY SKY_PROMPT_ENHANCER_URL SKY_PROMPT_ENHANCER_API_KEY
pass=0 fail=0
command -v python3 > /dev/null || { echo "FAIL python3 not found (apt-get install -y python3)"; echo "0 passed, 1 failed"; exit 1; }
./build.sh gen tiny_df > "$tmp/gen.log" 2>&1 || { cat "$tmp/gen.log"; echo "0 passed, 1 failed"; exit 1; }
B=out/tiny_df/skyreels-tiny_df
$B random-weights --output "$tmp/dit.safetensors" --seed 1 > /dev/null
$B random-weights --program vae --output "$tmp/vae.safetensors" --seed 2 > /dev/null
$B random-weights --program t5 --output "$tmp/t5.safetensors" --seed 3 > /dev/null

python3 tests/runtime/enhancer_server.py "$tmp/port" 2> "$tmp/server.log" &
server=$!
for _ in $(seq 200); do [ -s "$tmp/port" ] && break; sleep 0.05; done
port=$(cat "$tmp/port" 2> /dev/null) || { echo "FAIL the test server did not start: $(cat "$tmp/server.log")"; echo "0 passed, 1 failed"; exit 1; }
URL="http://127.0.0.1:$port/v1"
closed=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()')

PROMPT=$'A "quoted" cat \\ on a back\\slash,\ttab and\nnew line: caf\xc3\xa9, \xe4\xb8\x80\xe5\x8f\xaa\xe7\x8c\xab \xf0\x9f\x90\x88 </script>'
RUN=(--dit_weights "$tmp/dit.safetensors" --t5_weights "$tmp/t5.safetensors"
     --tokenizer tests/fixtures/tokenizer/tiny_umt5.model --num_frames 1 --inference_steps 1 --seed 1)
# Failing runs name a transformer checkpoint that does not exist: the enhancer must fail first.
BAD=(--dit_weights "$tmp/none.safetensors" --vae_weights "$tmp/vae.safetensors" --t5_weights "$tmp/t5.safetensors"
     --tokenizer tests/fixtures/tokenizer/tiny_umt5.model --num_frames 1 --inference_steps 1 --seed 1
     -o "$tmp/o/sub/x.mp4" --output_latents "$tmp/o/sub/l.safetensors" --prompt "$PROMPT" --prompt_enhancer)

ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# metadata_has FILE.safetensors FILE.mp4|- MODEL: the args in both hold the enhanced prompt and the original one.
metadata_has() {
    PROMPT="$PROMPT" python3 - "$@" << 'PY'
import json, os, re, struct, sys
latents, mp4, model = sys.argv[1:4]
given = os.environb[b"PROMPT"].decode("utf-8")
want = re.sub(r"[ \t\n\v\f\r]+", " ", "Enhanced: " + given).strip(" ")  # the server's rule, then the client's
with open(latents, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    header = json.loads(f.read(n))
args_text = header["__metadata__"]["args"]
args = json.loads(args_text)
problems = []
for key, value in (("prompt", want), ("original_prompt", given), ("prompt_enhancer_model", model)):
    if args.get(key) != value:
        problems.append("%s is %r, want %r" % (key, args.get(key), value))
if mp4 != "-":
    with open(mp4, "rb") as f:
        if args_text.encode("utf-8") not in f.read():  # the mp4's comment tag (video.c)
            problems.append("the mp4 does not hold the same args")
print("; ".join(problems))
sys.exit(1 if problems else 0)
PY
}

# Success with the key, the URL from the flag; the printed enhanced prompt is the one in the metadata.
SKY_PROMPT_ENHANCER_API_KEY=test-key $B "${RUN[@]}" --vae_weights "$tmp/vae.safetensors" --prompt "$PROMPT" --prompt_enhancer --prompt_enhancer_url "$URL" \
    --prompt_enhancer_model key -o "$tmp/ok/x.mp4" --output_latents "$tmp/ok/l.safetensors" > "$tmp/ok.out" 2> "$tmp/ok.log"
rc=$?
if [ "$rc" -eq 0 ] && why=$(metadata_has "$tmp/ok/l.safetensors" "$tmp/ok/x.mp4" key) &&
   grep -q '^enhanced prompt: Enhanced: A "quoted" cat \\ on a back\\slash, tab and new line: caf' "$tmp/ok.log" &&
   [ "$(cat "$tmp/ok.out")" = "$tmp/ok/x.mp4" ]; then
    ok "with \$SKY_PROMPT_ENHANCER_API_KEY: the enhanced prompt (quotes, backslashes, tab, newline, UTF-8) is printed and in the latents' and the mp4's metadata with the original"
else bad "enhancer with a key: exit $rc; $why; $(tail -n 4 "$tmp/ok.log")"; fi
# ... with the URL from $SKY_PROMPT_ENHANCER_URL (the server refuses an Authorization header here: none is sent);
# latents only.
mkdir -p "$tmp/ok2"
SKY_PROMPT_ENHANCER_URL="$URL/" $B "${RUN[@]}" --prompt "$PROMPT" --prompt_enhancer --prompt_enhancer_model echo -q \
    --output_latents "$tmp/ok2/l.safetensors" > /dev/null 2> "$tmp/ok2.log"
rc=$?
if [ "$rc" -eq 0 ] && why=$(metadata_has "$tmp/ok2/l.safetensors" - echo) && [ ! -s "$tmp/ok2.log" ]; then
    ok "with \$SKY_PROMPT_ENHANCER_URL and no key: the same metadata; nothing printed with -q"
else bad "enhancer with \$SKY_PROMPT_ENHANCER_URL: exit $rc; $why; $(tail -n 4 "$tmp/ok2.log")"; fi
# docs/prompt_enhancer.md shows the system message the server received, in the form its script reads it back.
if python3 - "$tmp/port.system" << 'PY'
import sys
doc = open("docs/prompt_enhancer.md", encoding="utf-8").read()
shown = doc.split("```text\n")[1].split("```")[0].replace("\n", " ").strip()  # as the doc's own script reads it
sys.exit(shown != open(sys.argv[1], encoding="utf-8").read())
PY
then ok "docs/prompt_enhancer.md shows the system message the server received, word for word"
else bad "docs/prompt_enhancer.md's system message differs from the one sent: $(cat "$tmp/port.system")"; fi

# expect_fail "message substring" [VAR=value ...] -- flags...: exit 1, the message, nothing written.
expect_fail() {
    local want=$1 envs=()
    shift
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    local out rc
    out=$(env ${envs[@]+"${envs[@]}"} $B "${BAD[@]}" "$@" 2>&1 > "$tmp/fail.out"); rc=$?
    if [ "$rc" -eq 1 ] && [[ "$out" == *"$want"* ]] && [ ! -e "$tmp/o" ] && [ ! -s "$tmp/fail.out" ] &&
       [[ "$out" != *none.safetensors* ]]; then
        ok "exit 1, nothing written: $want"
    else
        bad "$*: exit $rc (want 1), message: $out (want: $want); written: $(find "$tmp/o" 2> /dev/null)"
        rm -rf "$tmp/o"
    fi
}
expect_fail "/v1/chat/completions answered HTTP 500: {\"error\": {\"message\": \"the model crashed (test)\"" -- \
    --prompt_enhancer_url "$URL" --prompt_enhancer_model fail500
expect_fail "answered HTTP 401: {\"error\": {\"message\": \"invalid or missing API key\", \"code\": 401}}; the server wants a key: set \$SKY_PROMPT_ENHANCER_API_KEY" -- \
    --prompt_enhancer_url "$URL" --prompt_enhancer_model key
expect_fail "answered HTTP 401: {\"error\": {\"message\": \"invalid or missing API key\", \"code\": 401}}; the server refused the key in \$SKY_PROMPT_ENHANCER_API_KEY" \
    SKY_PROMPT_ENHANCER_API_KEY=wrong -- --prompt_enhancer_url "$URL" --prompt_enhancer_model key
expect_fail "answered HTTP 404: {\"error\": {\"message\": \"The model \`Qwen/Qwen2.5-32B-Instruct\` does not exist.\", \"code\": 404}}; is the URL the server's OpenAI base" -- \
    --prompt_enhancer_url "$URL"
start=$(date +%s.%N)
expect_fail "/v1/chat/completions: no complete answer within 1 s (" -- \
    --prompt_enhancer_url "$URL" --prompt_enhancer_model slow --prompt_enhancer_timeout 1
secs=$(python3 -c "print(round($(date +%s.%N) - $start, 1))")
if python3 -c "import sys; sys.exit(not $secs < 3)"; then ok "the timeout case gave up after ${secs} s, before the server's answer at 3 s (limit 1 s)"
else bad "the timeout case took ${secs} s (limit 1 s, server 3 s)"; fi
expect_fail "is unusable: it is not JSON (byte 0:" -- --prompt_enhancer_url "$URL" --prompt_enhancer_model garbage
expect_fail "is unusable: it has no choices[0].message.content" -- --prompt_enhancer_url "$URL" --prompt_enhancer_model nocontent
expect_fail "is unusable: the model's answer is empty" -- --prompt_enhancer_url "$URL" --prompt_enhancer_model empty
expect_fail "is unusable: it is not valid UTF-8 (byte" -- --prompt_enhancer_url "$URL" --prompt_enhancer_model badutf8
expect_fail "the answer is larger than 1048576 bytes; transfer stopped" -- --prompt_enhancer_url "$URL" --prompt_enhancer_model huge
expect_fail "(Connection refused); is the model server running?" -- --prompt_enhancer_url "http://127.0.0.1:$closed/v1"
expect_fail "http://127.0.0.1:$closed/v1/chat/completions: " SKY_PROMPT_ENHANCER_URL="http://127.0.0.1:$closed/v1" --

# expect_usage "message substring" [VAR=value ...] -- flags...: exit 2 before anything else.
expect_usage() {
    local want=$1 envs=()
    shift
    while [ "$1" != "--" ]; do envs+=("$1"); shift; done
    shift
    local out rc
    out=$(env ${envs[@]+"${envs[@]}"} $B "$@" 2>&1 > /dev/null); rc=$?
    if [ "$rc" -eq 2 ] && [[ "$out" == *"$want"* ]]; then ok "exit 2: $want"
    else bad "$*: exit $rc (want 2), message: $out (want: $want)"; fi
}
expect_usage "--prompt_enhancer_url applies only with --prompt_enhancer" -- "${RUN[@]}" --prompt_enhancer_url "$URL"
expect_usage "--prompt_enhancer_model applies only with --prompt_enhancer" -- "${RUN[@]}" --prompt_enhancer_model m
expect_usage "prompt enhancer URL 'ftp://h/v1': must start with http:// or https://" -- \
    "${RUN[@]}" --prompt_enhancer --prompt_enhancer_url ftp://h/v1
expect_usage "\$SKY_PROMPT_ENHANCER_URL: prompt enhancer URL '127.0.0.1:8000': must start with http://" \
    SKY_PROMPT_ENHANCER_URL=127.0.0.1:8000 -- "${RUN[@]}" --prompt_enhancer
expect_usage "--prompt_enhancer_timeout 0: must be an integer from 1 to 3600" -- "${RUN[@]}" --prompt_enhancer --prompt_enhancer_timeout 0
expect_usage "\$SKY_PROMPT_ENHANCER_API_KEY: byte 3 of the key" $'SKY_PROMPT_ENHANCER_API_KEY=abc\ndef' -- "${RUN[@]}" --prompt_enhancer
expect_usage "--prompt_enhancer with --image: the model would rewrite the prompt without seeing the image" -- \
    "${RUN[@]}" --prompt_enhancer --image "$tmp/dit.safetensors"
expect_usage "--prompt_enhancer with --prompt_embeds" -- "${RUN[@]}" --prompt_enhancer --prompt_embeds "$tmp/dit.safetensors"
expect_usage "--prompt_enhancer with --resume_dir" -- "${RUN[@]}" --prompt_enhancer --resume_dir "$tmp/rd"
if [ ! -e "$tmp/rd" ]; then ok "--resume_dir with --prompt_enhancer: the directory is not created"
else bad "--resume_dir with --prompt_enhancer created the directory"; fi
help=$($B --help)     # whole, then grep: grep -q would cut the pipe, which pipefail counts as a failure
if grep -q -- "--prompt_enhancer_url S  the server's base URL (/chat/completions is appended); a key goes in \$SKY_PROMPT_ENHANCER_API_KEY (default: http://127.0.0.1:8000/v1 or \$SKY_PROMPT_ENHANCER_URL)" <<<"$help" &&
   grep -q -- "--prompt_enhancer_model S the model the server serves (default: Qwen/Qwen2.5-32B-Instruct)" <<<"$help" &&
   grep -q -- "--prompt_enhancer_timeout N seconds to wait for the server's answer, 1 .. 3600 (default: 120)" <<<"$help"; then
    ok "--help lists the enhancer's flags with their defaults"
else bad "--help: $(grep prompt_enhancer <<<"$help")"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
