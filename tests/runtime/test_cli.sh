#!/usr/bin/env bash
# tests/runtime/test_cli.sh — the generation command line: every refused flag or combination
# exits 2 with a message naming the flag and the rule (checked here), before any weight is read;
# a few runs succeed (exit 0, outputs written). Uses the tiny specs' binaries.
set -uo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for v in tiny_t2v tiny_i2v tiny_df tiny_flf2v; do ./build.sh gen "$v" > "$tmp/gen-$v.log" 2>&1 || { cat "$tmp/gen-$v.log"; exit 1; }; done
T=out/tiny_t2v/skyreels-tiny_t2v I=out/tiny_i2v/skyreels-tiny_i2v D=out/tiny_df/skyreels-tiny_df
FL=out/tiny_flf2v/skyreels-tiny_flf2v
$T random-embeds --output "$tmp/pe_t.safetensors" > /dev/null
$D random-embeds --output "$tmp/pe_d.safetensors" > /dev/null
$T random-weights --output "$tmp/w_t.safetensors" > /dev/null
$D random-weights --output "$tmp/w_d.safetensors" > /dev/null
$D random-weights --program vae --output "$tmp/vae.safetensors" > /dev/null
: > "$tmp/img.png"
pass=0 fail=0

# expect CODE "message substring" -- command...
expect() {
    local code=$1 want=$2
    shift 3
    local out rc
    out=$("$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -eq "$code" ] && [[ "$out" == *"$want"* ]]; then
        pass=$((pass + 1)); echo "ok   exit $rc: $want"
    else
        fail=$((fail + 1)); echo "FAIL $*: exit $rc (want $code), message: $out (want: $want)"
    fi
}
W_T=(--dit_weights "$tmp/w_t.safetensors" --prompt_embeds "$tmp/pe_t.safetensors" --output_latents "$tmp/l.safetensors")
W_D=(--dit_weights "$tmp/w_d.safetensors" --prompt_embeds "$tmp/pe_d.safetensors" --output_latents "$tmp/l.safetensors")

expect 2 "no text encoder found" -- $T --dit_weights "$tmp/w_t.safetensors" --output_latents "$tmp/l.st"
expect 2 "--image needs an image-to-video (I2V) or diffusion-forcing variant" -- $T "${W_T[@]}" --image "$tmp/img.png"
expect 2 "--ar_step is a diffusion-forcing flag" -- $T "${W_T[@]}" --ar_step 1
expect 2 "--num_frames 33 gives 9 latent frames; this binary's window is 5" -- $T "${W_T[@]}" --num_frames 33
expect 2 "--shift 0: must be a number > 0" -- $T "${W_T[@]}" --shift 0
expect 2 "--guidance_scale -1: must be a number >= 0" -- $T "${W_T[@]}" --guidance_scale -1
expect 2 "--inference_steps 0: must be an integer from 1" -- $T "${W_T[@]}" --inference_steps 0
expect 2 "--num_frames x: must be an integer" -- $T "${W_T[@]}" --num_frames x
expect 2 "--seed -2: must be an integer from 0 to 2^64-1" -- $T "${W_T[@]}" --seed -2
# --use_usp without mpirun: one rank (MPI's singleton), refused (tests/runtime/test_usp.sh runs it under mpirun)
expect 2 "--use_usp: 1 rank: the rank count must divide the 2 attention heads" -- $T "${W_T[@]}" --seed 1 --use_usp
expect 2 "--teacache_thresh applies only with --teacache" -- $T "${W_T[@]}" --teacache_thresh 0.3
expect 2 "--use_ret_steps applies only with --teacache" -- $T "${W_T[@]}" --use_ret_steps
expect 2 "--teacache_thresh 0: must be a number > 0" -- $T "${W_T[@]}" --teacache --teacache_thresh 0
expect 2 "--resolution 720P is 720x1280; this binary was generated for 64x64" -- $T "${W_T[@]}" --resolution 720P
expect 2 "unknown flag --foo" -- $T "${W_T[@]}" --foo
expect 2 "--num_frames given twice" -- $T "${W_T[@]}" --num_frames 9 --num_frames 9
expect 2 "--model_id /nonexistent/dir: no such directory" -- $T --model_id /nonexistent/dir --prompt_embeds "$tmp/pe_t.safetensors"
expect 2 "no VAE found" -- $T --dit_weights "$tmp/w_t.safetensors" --prompt_embeds "$tmp/pe_t.safetensors"
expect 2 "--backend cuda: tiny_t2v was generated for the cpu target only (its spec's targets)" -- $T "${W_T[@]}" --backend cuda
expect 2 "--image is required: tiny_i2v is an image-to-video variant" -- $I --dit_weights x --prompt_embeds y
# --end_image: the last frame of a first-last-frame (FLF2V) binary (required there), refused by plain I2V
expect 2 "--end_image is a diffusion-forcing and first-last-frame (FLF2V) flag; this is the i2v variant tiny_i2v" -- \
    $I --dit_weights x --prompt_embeds y --image "$tmp/img.png" --end_image "$tmp/img.png"
expect 2 "--end_image is required: tiny_flf2v is a first-last-frame (FLF2V) variant" -- \
    $FL --dit_weights x --prompt_embeds y --image "$tmp/img.png"
help_fl=$($FL --help) help_i=$($I --help)     # whole outputs first: grep -q would cut the pipe (pipefail)
if [[ "$help_fl" == *"--end_image S            FLF2V: the last frame (required)"* && "$help_i" != *"--end_image"* ]]; then
    pass=$((pass + 1)); echo "ok   --help: --end_image listed by the FLF2V binary, not by the I2V one"
else
    fail=$((fail + 1)); echo "FAIL --help and --end_image: $(grep -- --end_image <<< "$help_fl")"
fi
expect 2 "for longer videos use --overlap_history" -- $D "${W_D[@]}" --num_frames 41
expect 2 "--causal_attention: DF: block-causal mask; not supported" -- $D "${W_D[@]}" --causal_attention
expect 2 "gives a last window of 5 latent frames, not divisible by --causal_block_size 4" -- \
    $D "${W_D[@]}" --num_frames 41 --base_num_frames 21 --overlap_history 9 --causal_block_size 4
expect 2 "--overlap_history 21 (6 latent frames) must be shorter than --base_num_frames 21" -- \
    $D "${W_D[@]}" --num_frames 41 --base_num_frames 21 --overlap_history 21
expect 2 "--base_num_frames 37 gives windows of 10 latent frames; this binary's window is 9" -- \
    $D "${W_D[@]}" --num_frames 41 --base_num_frames 37 --overlap_history 9
expect 2 "--end_image" -- $D "${W_D[@]}" --num_frames 17 --end_image "$tmp/img.png" --causal_block_size 5
expect 2 "/tmp/does-not-exist.png: no such file" -- $D "${W_D[@]}" --image /tmp/does-not-exist.png
expect 2 "--addnoise_condition 70 is above 60" -- $D "${W_D[@]}" --addnoise_condition 70 --num_frames 21 --model_id /nonexistent
# TeaCache in the pipelines (the numbers of the skipping itself: tests/numeric/run_teacache.sh, against the
# original). With a threshold no distance stays under, every call runs its blocks: the latents equal a run
# without TeaCache bit for bit (the forward in parts is the same arithmetic). With one every distance
# stays under, only the warm-up window computes: 4 steps x (cond, uncond) = 8 calls, the counter wraps at 4
# (the original's num_steps = --inference_steps), so calls 0, 1, 4, 5 compute and 4 skip.
bash tests/numeric/build_sttool.sh > /dev/null || exit 1
TC=(--dit_weights "$tmp/w_t.safetensors" --prompt_embeds "$tmp/pe_t.safetensors" --num_frames 5 --inference_steps 4 --seed 3)
expect 0 "done in" -- $T "${TC[@]}" --output_latents "$tmp/plain.safetensors"
# The prompt part of the transformer runs once per prompt (runtime/models/prompt_cache.h): 4 steps x (cond, uncond)
# run it twice and reuse it 6 times (the numbers against diffusers with it: tests/numeric/run_pipeline.sh).
expect 0 "cross-attention keys and values): run by 2 forwards, reused by 6" -- \
    $T "${TC[@]}" --output_latents "$tmp/plain2.safetensors"
# program dit_forward on an I2V batch whose samples 1 and 3 share a prompt (context and CLIP features:
# random-inputs --prompts 2) and 2 has another: 3 reuses 1's prompt arena, 1 and 2 run the prompt part.
$I random-weights --output "$tmp/w_i.safetensors" > /dev/null
$I random-inputs --output "$tmp/in_i.safetensors" --batch 3 --prompts 2 > /dev/null
$I program dit_forward --weights "$tmp/w_i.safetensors" --inputs "$tmp/in_i.safetensors" --output "$tmp/v_i.safetensors" \
    2> "$tmp/pi.log" > /dev/null
if [ "$(grep -o 'sample [0-9]/3.*prompt part [a-z]*' "$tmp/pi.log" | sed 's/ ([^)]*)//; s/,.*prompt part / /')" = \
     "$(printf 'sample 1/3 run\nsample 2/3 run\nsample 3/3 reused')" ]; then
    pass=$((pass + 1)); echo "ok   program dit_forward (I2V): prompts A, B, A run, run, reuse the prompt part"
else fail=$((fail + 1)); echo "FAIL program dit_forward prompt reuse: $(cat "$tmp/pi.log")"; fi
expect 2 "--prompts 3: more than --batch" -- $T random-inputs --output "$tmp/x.safetensors" --batch 2 --prompts 3
expect 0 "teacache: 0 of 8 DiT calls skipped the blocks (threshold 1e-09, e)" -- \
    $T "${TC[@]}" --output_latents "$tmp/tc0.safetensors" --teacache --teacache_thresh 1e-9
if build/tools/sttool compare "$tmp/tc0.safetensors" "$tmp/plain.safetensors" latents 0 > "$tmp/cmp.txt"; then
    pass=$((pass + 1)); echo "ok   --teacache with nothing skipped: latents equal the plain run's bit for bit"
else fail=$((fail + 1)); echo "FAIL --teacache with nothing skipped differs from the plain run: $(head -1 "$tmp/cmp.txt")"; fi
expect 0 "teacache: 4 of 8 DiT calls skipped the blocks (threshold 1e+09, e)" -- \
    $T "${TC[@]}" --output_latents "$tmp/tc1.safetensors" --teacache --teacache_thresh 1e9
expect 0 "teacache: 0 of 8 DiT calls skipped the blocks (threshold 1e+09, e0, use_ret_steps)" -- \
    $T "${TC[@]}" --output_latents "$tmp/tc2.safetensors" --teacache --teacache_thresh 1e9 --use_ret_steps
expect 0 "the SkyReels-V2 maintainers say DF models are not compatible with TeaCache" -- \
    $D "${W_D[@]}" --num_frames 9 --inference_steps 2 --teacache

# --offload: each model is loaded for each use and freed after it. A DF long video of three windows
# (VAE-encoded prefixes, decoded windows) gives the same latents and frames bit for bit as without it, and
# loads the transformer once per window; a bad checkpoint is still refused before the first step. The
# transformer's prompt part then runs for each prompt in each window (3 x 2) instead of twice in all: the
# prompt arenas' reuse changes no bit.
LONG=(--dit_weights "$tmp/w_d.safetensors" --vae_weights "$tmp/vae.safetensors" --prompt_embeds "$tmp/pe_d.safetensors"
      --num_frames 37 --base_num_frames 21 --overlap_history 9 --inference_steps 2 --seed 5)
expect 0 "run by 2 forwards, reused by" -- $D "${LONG[@]}" -o "$tmp/long.mp4" --output_latents "$tmp/long.safetensors"
# Progress (issue 19 item 1): each stage labelled as it starts, each window counted, the table at the end; with
# --progress json every line of stderr is one JSON object, and the events cover the same run.
$D "${LONG[@]}" -o "$tmp/long_p.mp4" --json "$tmp/long_p.json" 2> "$tmp/long_p.log" > /dev/null
miss=""
for want in "[encoding] encoding: reading --prompt_embeds" "[loading] loading the transformer" \
            "[loading] loading the VAE decoder" "[denoising] window 1/3: 6 latent frames" "[denoising] window 3/3" \
            "[vae_decode] VAE decode: 6 latent frames to 21 frames" "[vae_encode] VAE encode: 9 frames" \
            "[writing] writing 21 frames" "[writing] writing the outputs" "stage         seconds  share" \
            "total   " "steps/s; peak host memory (RSS)"; do
    grep -qF -- "$want" "$tmp/long_p.log" || miss="$miss '$want'"
done
for st in loading encoding denoising vae_decode vae_encode writing; do
    grep -qE "^$st +[0-9]+\.[0-9]+ +[0-9]+%$" "$tmp/long_p.log" || miss="$miss 'table row $st'"
done
if [ -z "$miss" ]; then pass=$((pass + 1)); echo "ok   progress: every stage labelled, windows 1/3 .. 3/3, the table of stages at the end"
else fail=$((fail + 1)); echo "FAIL progress labels or table, missing:$miss"; cat "$tmp/long_p.log"; fi
$D "${LONG[@]}" -o "$tmp/long_j.mp4" --progress=json --json="$tmp/long_j.json" 2> "$tmp/long_j.log" > /dev/null
if python3 - "$tmp/long_j.log" <<'PY'; then
import json, sys
ev = [json.loads(line) for line in open(sys.argv[1])]   # every line one JSON object, or this fails
kinds = [e["event"] for e in ev]
assert kinds[0] == "start" and kinds[-1] == "done" and isinstance(ev[0]["seed"], int), kinds
steps = [e for e in ev if e["event"] == "step"]
assert [e["done"] for e in steps] == list(range(len(steps))) and steps[-1]["done"] == steps[-1]["total"] == 6, steps
assert all(e["eta"] >= 0 and e["windows"] == 3 for e in steps), steps
labels = [e["label"] for e in ev if e["event"] == "stage"]
assert "window 3/3: 4 latent frames" in labels and any(l.startswith("VAE decode") for l in labels), labels
done = ev[-1]
assert set(done["seconds"]) == {"loading", "encoding", "denoising", "vae_decode", "vae_encode", "writing"}, done
assert abs(sum(done["seconds"].values()) - done["total"]) < 0.05 and done["evaluations"] == 6 and done["peak_rss_mib"] > 0, done
# The ETA (denoise.c's eta(): the FLOPs left of the transformer, the VAE decode and encode, each over the rate it
# ran at so far) at the first step of window 2, against the time the run actually had left then (the same clock:
# "elapsed" and "total" both count from the run's start). By then every kind of work has run once, so the
# estimate's own error is small: a decode's first latent frame (1 video frame, not 4) counted as a full one, in
# every window alike; the VAE is ~80% of this run. The bound, 1/3x to 3x, is for the machine: other processes on
# a shared 2-core machine slow one window's stages and not the next's by up to 2x. It still catches a kind of
# work left out or taken at another's rate (the VAE at the transformer's rate: the first window's ETA, 2-4x high here).
first = {w: next(e for e in steps if e["window"] == w) for w in (2, 3)}
left = done["total"] - first[2]["elapsed"]
assert left / 3 <= first[2]["eta"] <= 3 * left, ("ETA at window 2", first[2], "actually left", left)
# and it comes down to 0: window 3's below window 2's, the last stage's below both, 0 when done
last_stage = [e for e in ev if e["event"] == "stage"][-1]
assert first[2]["eta"] > first[3]["eta"] > last_stage["eta"] >= 0 and done["eta"] == 0, (first, last_stage, done)
print("eta at window 2's first step %.2f s, actually left %.2f s (ratio %.2f)" % (first[2]["eta"], left, first[2]["eta"] / left))
PY
    pass=$((pass + 1)); echo "ok   --progress json: every stderr line parses; start, stages, 6 steps with ETAs (by FLOPs left, within 1/3x..3x of the time left at window 2), done with the stages' times"
else fail=$((fail + 1)); echo "FAIL --progress json:"; head -5 "$tmp/long_j.log"; fi
# --json FILE (issue 19 item 2) of the two runs above: every field, the checkpoints' header hashes, the same
# parameters, the same latents hash (16 hex digits, the mp4's latents_xxh64) and resolution (width x height) in both; no temp file left.
if python3 - "$tmp/long_p.json" "$tmp/long_j.json" "$tmp/w_d.safetensors" <<'PY' && [ -z "$(ls "$tmp" | grep '\.json\.tmp\.')" ]; then
import json, sys
a, b = (json.load(open(p)) for p in sys.argv[1:3])
keys = {"engine_version", "variant", "spec_xxh64", "generator_xxh64", "backend", "device", "outputs", "args",
        "resolution", "num_frames", "seed", "windows", "checkpoints", "loras", "seconds", "total_seconds",
        "evaluations", "steps_per_s", "peak_rss_mib", "latents_xxh64", "driver", "peak_device_bytes"}
assert keys <= set(a) and keys <= set(b), keys - set(a)
assert a["driver"] is None and a["peak_device_bytes"] is None and a["device"], a   # the CPU backend: no device memory
assert a["variant"] == "tiny_df" and a["backend"] == "cpu" and a["windows"] == 3 and a["seed"] == 5, a
assert a["resolution"] == "48x64" == a["args"]["resolution"] and a["num_frames"] == 37 and a["outputs"]["mp4"].endswith("long_p.mp4"), a
assert a["args"] == b["args"] and a["args"]["overlap_history"] == 9 and a["latents_xxh64"] == b["latents_xxh64"]
assert isinstance(a["latents_xxh64"], str) and len(a["latents_xxh64"]) == 16 and int(a["latents_xxh64"], 16) != 0, a
assert set(a["seconds"]) == {"loading", "encoding", "denoising", "vae_decode", "vae_encode", "writing"}
roles = {c["role"]: c for c in a["checkpoints"]}
assert roles["transformer"]["path"] == sys.argv[3] and len(roles["transformer"]["files"][0]["header_xxh64"]) == 16
assert a["checkpoints"] == b["checkpoints"] and a["evaluations"] == 6 and a["peak_rss_mib"] > 0
PY
    pass=$((pass + 1)); echo "ok   --json: every field, the same parameters, checkpoint header hashes and latents hash in two runs"
else fail=$((fail + 1)); echo "FAIL --json:"; head -c 600 "$tmp/long_p.json"; fi
$D "${LONG[@]}" -o "$tmp/long_off.mp4" --output_latents "$tmp/long_off.safetensors" --offload 2> "$tmp/off.log" > /dev/null
loads=$(grep -c "tensors of dit_forward" "$tmp/off.log")
if build/tools/sttool compare "$tmp/long_off.safetensors" "$tmp/long.safetensors" video 0 > "$tmp/cmp.txt" &&
   build/tools/sttool compare "$tmp/long_off.safetensors" "$tmp/long.safetensors" latents.w2 0 >> "$tmp/cmp.txt" &&
   [ "$loads" -eq 3 ] && grep -q "run by 6 forwards" "$tmp/off.log"; then
    pass=$((pass + 1)); echo "ok   --offload: a 3-window DF video equals the run without it bit for bit; the transformer loaded 3 times, its prompt part run 6 times (twice without --offload)"
else fail=$((fail + 1)); echo "FAIL --offload: $(cat "$tmp/cmp.txt"); transformer loads: $loads (want 3); $(grep "prompt part" "$tmp/off.log")"; fi
expect 1 "w_d.safetensors: no tensor of this model found (looked for 'decoder.head.2.bias'" -- \
    $D "${LONG[@]/$tmp\/vae.safetensors/$tmp/w_d.safetensors}" --offload -o "$tmp/x2.mp4"
# --offload_blocks on the CPU backend: accepted (its weights are host memory already) and nothing changes, bit for
# bit (the CUDA backend's check is tests/emu/run.sh 3b2); a value that is neither a count nor auto is refused
$D "${LONG[@]}" -o "$tmp/long_ob.mp4" --output_latents "$tmp/long_ob.safetensors" --offload_blocks 1 2> "$tmp/ob.log" > /dev/null
if build/tools/sttool compare "$tmp/long_ob.safetensors" "$tmp/long.safetensors" video 0 > "$tmp/cmp.txt" &&
   build/tools/sttool compare "$tmp/long_ob.safetensors" "$tmp/long.safetensors" latents.w2 0 >> "$tmp/cmp.txt"; then
    pass=$((pass + 1)); echo "ok   --offload_blocks 1 (cpu backend): a 3-window DF video equals the run without it bit for bit"
else fail=$((fail + 1)); echo "FAIL --offload_blocks 1 (cpu backend): $(cat "$tmp/cmp.txt"); $(tail -n 2 "$tmp/ob.log")"; fi
expect 2 "--offload_blocks two: want a block count (0: off) or auto" -- $D "${W_D[@]}" --offload_blocks two

# --use_cfg_parallel: the uncond passes on a second transformer, in a thread of their own at the same time as
# the cond passes (on the CPU backend both share the cores; on CUDA the second is on GPU 1: tests/emu/run.sh
# checks that routing on two emulated GPUs). The same numbers bit for bit: the 3-window DF video, also with
# --offload (both transformers loaded per window: 6 loads), and a T2V run; DF at guidance <= 1 has no uncond
# pass and says so.
$D "${LONG[@]}" -o "$tmp/long_cfg.mp4" --output_latents "$tmp/long_cfg.safetensors" --use_cfg_parallel 2> "$tmp/cfg.log" > /dev/null
$D "${LONG[@]}" -o "$tmp/long_cfg_off.mp4" --output_latents "$tmp/long_cfg_off.safetensors" --use_cfg_parallel --offload \
    2> "$tmp/cfg_off.log" > /dev/null
$T "${TC[@]}" --output_latents "$tmp/cfg_t.safetensors" --use_cfg_parallel 2> "$tmp/cfg_t.log" > /dev/null
loads=$(grep -c "tensors of dit_forward" "$tmp/cfg_off.log")
if build/tools/sttool compare "$tmp/long_cfg.safetensors" "$tmp/long.safetensors" video 0 > "$tmp/cmp.txt" &&
   build/tools/sttool compare "$tmp/long_cfg.safetensors" "$tmp/long.safetensors" latents.w2 0 >> "$tmp/cmp.txt" &&
   build/tools/sttool compare "$tmp/long_cfg_off.safetensors" "$tmp/long.safetensors" video 0 >> "$tmp/cmp.txt" &&
   build/tools/sttool compare "$tmp/long_cfg_off.safetensors" "$tmp/long.safetensors" latents.w2 0 >> "$tmp/cmp.txt" &&
   build/tools/sttool compare "$tmp/cfg_t.safetensors" "$tmp/plain.safetensors" latents 0 >> "$tmp/cmp.txt" &&
   cmp -s "$tmp/long_cfg.mp4" "$tmp/long.mp4" && [ "$loads" -eq 6 ] &&
   grep -q "cfg parallel: the unconditional passes on a second transformer" "$tmp/cfg.log" &&
   [ "$(grep -c "tensors of dit_forward" "$tmp/cfg.log")" -eq 2 ]; then
    pass=$((pass + 1)); echo "ok   --use_cfg_parallel: a 3-window DF video (also with --offload: $loads loads) and a T2V run equal the runs without it bit for bit"
else fail=$((fail + 1)); echo "FAIL --use_cfg_parallel: $(cat "$tmp/cmp.txt"); loads with --offload: $loads (want 6); $(tail -n 2 "$tmp/cfg.log")"; fi
# ... with TeaCache: both passes decide on one state in the order of a one-transformer run (cond, then uncond),
# each transformer keeping the residuals of its own calls: the same decisions and latents bit for bit, with 4
# steps (the counter wraps at 4: 4 of 8 calls skip), with 5 (an odd count: after the wrap the uncond pass has
# the even parity, as in the original) and on the 3-window DF video (windows of two sizes).
tc_same() {   # name, tensor to compare, then the run's flags (both runs get them; the second --use_cfg_parallel)
    local name=$1 tensor=$2
    shift 2
    "$@" --output_latents "$tmp/$name.1.safetensors" 2> "$tmp/$name.1.log" > /dev/null &&
    "$@" --output_latents "$tmp/$name.2.safetensors" --use_cfg_parallel 2> "$tmp/$name.2.log" > /dev/null &&
    [ "$(grep '^teacache:' "$tmp/$name.1.log")" = "$(grep '^teacache:' "$tmp/$name.2.log")" ] &&
    build/tools/sttool compare "$tmp/$name.2.safetensors" "$tmp/$name.1.safetensors" "$tensor" 0 > /dev/null &&
    grep '^teacache:' "$tmp/$name.2.log" | sed 's/ DiT calls.*//'
}
if s4=$(tc_same tc4 latents $T "${TC[@]}" --teacache --teacache_thresh 1e9) &&
   s5=$(tc_same tc5 latents $T "${TC[@]:0:6}" --inference_steps 5 --seed 3 --teacache --teacache_thresh 1e9) &&
   sd=$(tc_same tcd latents.w2 $D "${LONG[@]:0:12}" --inference_steps 4 --seed 5 -o "$tmp/tcd.mp4" --teacache \
        --teacache_thresh 1e9) &&
   [ "$s4" = "teacache: 4 of 8" ] && [ "$s5" = "teacache: 6 of 10" ]; then
    pass=$((pass + 1)); echo "ok   --use_cfg_parallel --teacache: the decisions and latents of the one-transformer run ($s4; 5 steps: ${s5#teacache: }; DF 3 windows: ${sd#teacache: })"
else fail=$((fail + 1)); echo "FAIL --use_cfg_parallel --teacache: $(tail -n 2 "$tmp"/tc[45d].2.log)"; fi
expect 0 "warning: --use_cfg_parallel: guidance_scale 1 <= 1 skips the unconditional pass" -- \
    $D "${W_D[@]}" --num_frames 9 --inference_steps 2 --guidance_scale 1 --use_cfg_parallel

# --sample_solver euler and --lora (issue 18; the merge against diffusers: tests/numeric/run_lora.sh; Euler against
# diffusers' scheduler: tests/runtime/test_euler.c). End to end, the step-distillation recipe: a DF video of 4 Euler
# steps at guidance 1 (no unconditional pass: 4 forwards, the prompt part run once) and shift 5, with two LoRAs
# (tests/fixtures/lora/: original at 0.8, diff at 1.0) on the tiny_df fixture weights, equals bit for bit the run
# on the checkpoint with both merged by hand (e2e_merged.safetensors: numpy, float64); its latents are finite, differ
# from the run without the LoRAs, and the run's parameters (the mp4's comment, --output_latents' args) name the
# solver and the LoRAs with their scales. T2V at guidance 1 runs no unconditional pass either.
LF=tests/fixtures/lora
BW=tests/fixtures/dit/tiny_df/weights_original.safetensors
EU=(--prompt_embeds "$tmp/pe_d.safetensors" --num_frames 9 --inference_steps 4 --sample_solver euler --guidance_scale 1
    --shift 5 --seed 9)
expect 2 "--sample_solver dpm++: unknown solver (unipc or euler)" -- $D "${W_D[@]}" --sample_solver dpm++
expect 2 "--lora /nonexistent.safetensors:0.5: no such file" -- $D "${W_D[@]}" --lora /nonexistent.safetensors:0.5
expect 2 "--lora_unknown_keys applies only with --lora" -- $D "${W_D[@]}" --lora_unknown_keys warn
expect 2 "--lora_unknown_keys maybe: must be error or warn" -- $D "${W_D[@]}" --lora $LF/diff.safetensors --lora_unknown_keys maybe
expect 1 "df128.safetensors: 'diffusion_model.blocks.0.ffn.2.lora_down.weight' [4, 512] and" -- \
    $D --dit_weights "$BW" "${EU[@]}" --lora $LF/df128.safetensors --output_latents "$tmp/eu_x.safetensors"
# docs/cli.md is what the binary prints (regenerate: out/tiny_df/skyreels-tiny_df --help-markdown > docs/cli.md),
# and every flag --help lists for either family is in it.
if $D --help-markdown | cmp -s - docs/cli.md; then
    pass=$((pass + 1)); echo "ok   docs/cli.md is the binary's --help-markdown"
else fail=$((fail + 1)); echo "FAIL docs/cli.md differs from $D --help-markdown (regenerate it)"; fi
missing=$( { $T --help; $D --help; } | sed -n 's/^  \(--*[a-z_0-9]*\).*/\1/p' | sort -u |
           while read -r f; do grep -q -- "| \`$f[ \`]" docs/cli.md || echo "$f"; done)
if [ -z "$missing" ] && [ "$( { $T --help; $D --help; } | grep -c '^  --')" -gt 30 ]; then
    pass=$((pass + 1)); echo "ok   every flag of --help (T2V and DF) is in docs/cli.md"
else fail=$((fail + 1)); echo "FAIL flags of --help missing from docs/cli.md: $missing"; fi
help=$($D --help)
if grep -q -- "--sample_solver S .*(default: unipc)" <<< "$help" && grep -q -- "--lora S .*(default: none)" <<< "$help" &&
   grep -q -- "--lora_unknown_keys S .*(default: error)" <<< "$help"; then
    pass=$((pass + 1)); echo "ok   --help lists --sample_solver, --lora and --lora_unknown_keys with their defaults"
else fail=$((fail + 1)); echo "FAIL --help: the new flags or their defaults are missing"; fi
$D --dit_weights "$BW" "${EU[@]}" --lora $LF/original.safetensors:0.8 --lora $LF/diff.safetensors \
    --output_latents "$tmp/eu_lora.safetensors" 2> "$tmp/eu_lora.log" > /dev/null
$D --dit_weights $LF/e2e_merged.safetensors "${EU[@]}" --output_latents "$tmp/eu_merged.safetensors" > /dev/null 2>&1
$D --dit_weights "$BW" "${EU[@]}" --output_latents "$tmp/eu_base.safetensors" > /dev/null 2>&1
want_args='"sample_solver": "euler", "lora": [{"file": "tests/fixtures/lora/original.safetensors", "scale": 0.8}, {"file": "tests/fixtures/lora/diff.safetensors", "scale": 1}]'
if build/tools/sttool compare "$tmp/eu_lora.safetensors" "$tmp/eu_merged.safetensors" latents 0 > "$tmp/cmp.txt" &&
   ! build/tools/sttool compare "$tmp/eu_lora.safetensors" "$tmp/eu_base.safetensors" latents 1e-2 > /dev/null &&
   [[ "$(build/tools/sttool meta "$tmp/eu_lora.safetensors" args)" == *"$want_args"* ]] &&
   grep -q "lora: tests/fixtures/lora/original.safetensors (scale 0.8): 6 weights changed (5 low-rank, 1 full deltas)" "$tmp/eu_lora.log" &&
   grep -q "74 tensors of dit_forward, 16 changed by 2 LoRAs" "$tmp/eu_lora.log" &&
   grep -q "run by 1 forwards, reused by 3" "$tmp/eu_lora.log"; then
    pass=$((pass + 1)); echo "ok   DF, 4 Euler steps at guidance 1 with two LoRAs: the latents equal the run on the checkpoint merged by hand bit for bit ($(grep -o 'rel_l2 [^ ]*' "$tmp/cmp.txt")), 4 forwards, the args name the solver and the LoRAs"
else fail=$((fail + 1)); echo "FAIL DF Euler + LoRA end to end: $(cat "$tmp/cmp.txt"); $(tail -n 4 "$tmp/eu_lora.log"); args: $(build/tools/sttool meta "$tmp/eu_lora.safetensors" args)"; fi
expect 0 "run by 1 forwards, reused by 3" -- $T "${TC[@]}" --output_latents "$tmp/t_g1.safetensors" --guidance_scale 1 --sample_solver euler

# --resume_dir: a DF run keeps each finished window (runtime/pipeline/resume.h). The same 3-window video (with
# addnoise_condition, so that the noise state matters) is made three ways and must equal the plain run's
# latents, frames and mp4 bit for bit: (1) a run that kept its windows, then lost the last one and ran
# again without --seed (the seed comes from the kept windows); (2) a run stopped by SIGINT once its first
# window is kept, then run again. Another run's arguments in the directory are refused, naming the field.
RES=(--dit_weights "$tmp/w_d.safetensors" --vae_weights "$tmp/vae.safetensors" --prompt_embeds "$tmp/pe_d.safetensors"
     --num_frames 37 --base_num_frames 21 --overlap_history 9 --addnoise_condition 20)
same_as_plain() {   # $1 latents file, $2 mp4: equal to the plain run's
    for n in video latents.w0 latents.w1 latents.w2; do
        build/tools/sttool compare "$1" "$tmp/res_plain.safetensors" "$n" 0 > "$tmp/cmp.txt" || return 1
    done
    cmp -s "$2" "$tmp/res_plain.mp4"
}
expect 0 "done in" -- $D "${RES[@]}" --inference_steps 2 --seed 11 -o "$tmp/res_plain.mp4" --output_latents "$tmp/res_plain.safetensors"
expect 0 "done in" -- $D "${RES[@]}" --inference_steps 2 --seed 11 -o "$tmp/res1.mp4" --resume_dir "$tmp/rd1"
rm -f "$tmp/rd1/window_0002.safetensors"
$D "${RES[@]}" --inference_steps 2 -o "$tmp/res2.mp4" --output_latents "$tmp/res2.safetensors" --resume_dir "$tmp/rd1" \
    2> "$tmp/res2.log" > /dev/null
if grep -q "seed: 11 (the seed of the run kept in" "$tmp/res2.log" && grep -q "resume: 2 of 3 windows kept" "$tmp/res2.log" &&
   same_as_plain "$tmp/res2.safetensors" "$tmp/res2.mp4"; then
    pass=$((pass + 1)); echo "ok   --resume_dir: 2 of 3 windows kept, rerun without --seed: the same latents, frames and mp4 bit for bit"
else fail=$((fail + 1)); echo "FAIL --resume_dir rerun: $(cat "$tmp/res2.log" "$tmp/cmp.txt")"; fi
expect 1 "window_0000.safetensors was written by another run: \"guidance_scale\": 6 (this run: \"guidance_scale\": 5)" -- \
    $D "${RES[@]}" --inference_steps 2 --guidance_scale 5 -o "$tmp/res3.mp4" --resume_dir "$tmp/rd1"
expect 2 "--resume_dir with --teacache: not supported" -- $D "${RES[@]}" --teacache -o "$tmp/res3.mp4" --resume_dir "$tmp/rd1"
# SIGINT once window 0 is kept (more steps, so that the run is still going), then the same command again.
$D "${RES[@]}" --inference_steps 2 --seed 11 -o "$tmp/res4.mp4" --output_latents "$tmp/res4.safetensors" \
    --resume_dir "$tmp/rd4" > /dev/null 2>&1 &
pid=$!
for _ in $(seq 600); do [ -e "$tmp/rd4/window_0000.safetensors" ] && break; sleep 0.05; done
kill -INT "$pid" 2> /dev/null; wait "$pid"; rc=$?
kept=$(ls "$tmp/rd4" | grep -c '^window_')
$D "${RES[@]}" --inference_steps 2 --seed 11 -o "$tmp/res4.mp4" --output_latents "$tmp/res4.safetensors" \
    --resume_dir "$tmp/rd4" > /dev/null 2> "$tmp/res4.log"
if same_as_plain "$tmp/res4.safetensors" "$tmp/res4.mp4"; then
    pass=$((pass + 1)); echo "ok   --resume_dir after SIGINT (exit $rc, $kept of 3 windows kept): the rerun gives the plain run's video bit for bit"
else fail=$((fail + 1)); echo "FAIL --resume_dir after SIGINT (exit $rc, $kept kept): $(cat "$tmp/res4.log" "$tmp/cmp.txt")"; fi

# A build without FFmpeg (cmake -DSKY_FFMPEG=OFF, for machines that cannot install it: tests/gpu/run.sh), as a
# variant of its own so that it overwrites nothing: the programs and latents-only runs work, an mp4 is refused
# before the first step and nothing is written. It is also built without libcurl (-DSKY_CURL=OFF): it refuses
# --prompt_enhancer saying what is missing (the enhancer itself: tests/runtime/test_prompt_enhancer.sh).
mkdir -p "$tmp/specs"
sed 's/variant = "tiny_t2v"/variant = "noav_t2v"/' specs/tiny_t2v.lua > "$tmp/specs/noav_t2v.lua"
if SKY_CMAKE_ARGS="-DSKY_FFMPEG=OFF -DSKY_CURL=OFF" ./build.sh gen "$tmp/specs/noav_t2v.lua" > "$tmp/noav.log" 2>&1 &&
   ! ldd out/noav_t2v/skyreels-noav_t2v | grep -q -E 'libavformat|libcurl'; then
    pass=$((pass + 1)); echo "ok   -DSKY_FFMPEG=OFF -DSKY_CURL=OFF builds a binary that links neither FFmpeg nor libcurl"
    N=out/noav_t2v/skyreels-noav_t2v
    if $N program dit_forward -q --weights tests/fixtures/dit/tiny_t2v/weights_original.safetensors \
           --inputs tests/fixtures/dit/tiny_t2v/f5b2.safetensors --output "$tmp/noav.safetensors" &&
       build/tools/sttool compare "$tmp/noav.safetensors" tests/fixtures/dit/tiny_t2v/f5b2.safetensors v 2e-6 > /dev/null; then
        pass=$((pass + 1)); echo "ok   without FFmpeg: program dit_forward matches the diffusers fixture"
    else fail=$((fail + 1)); echo "FAIL without FFmpeg: program dit_forward"; fi
    expect 0 "done in" -- $N "${TC[@]}" --output_latents "$tmp/noav_l.safetensors"
    expect 2 "--prompt_enhancer: this binary was built without libcurl (cmake -DSKY_CURL=OFF, or libcurl was not found); install it (apt-get install -y libcurl4-openssl-dev)" -- \
        $N "${TC[@]}" --output_latents "$tmp/noav_l2.safetensors" --prompt_enhancer
    expect 1 "noav.mp4: this binary was built without FFmpeg (cmake -DSKY_FFMPEG=OFF)" -- \
        $N "${TC[@]}" --vae_weights "$tmp/vae.safetensors" -o "$tmp/noav.mp4"
    if [ ! -e "$tmp/noav.mp4" ] && [ -z "$(ls -A "$tmp" | grep '^\.noav\.mp4')" ]; then pass=$((pass + 1)); echo "ok   no mp4 left"
    else fail=$((fail + 1)); echo "FAIL an mp4 was left by the FFmpeg-less build"; fi
else
    fail=$((fail + 1)); echo "FAIL -DSKY_FFMPEG=OFF build: $(tail -5 "$tmp/noav.log")"
fi

# Command-line habits (issue 19 item 4): --name=value as argparse takes it, and its refusals; --seed -1 draws a
# seed and prints it; an absolute --outdir is used as given (the original's name under it, no result/).
expect 2 "--num_frames x: must be an integer" -- $T "${W_T[@]}" --num_frames=x
expect 2 "--teacache takes no value (--teacache=1)" -- $T "${W_T[@]}" --teacache=1
expect 2 "unknown flag --foo=1" -- $T "${W_T[@]}" --foo=1
expect 2 "--seed given twice" -- $T "${W_T[@]}" --seed=1 --seed 2
expect 0 "seed: 7" -- $T --dit_weights="$tmp/w_t.safetensors" --prompt_embeds="$tmp/pe_t.safetensors" \
    --output_latents="$tmp/l.safetensors" --num_frames=5 --inference_steps=1 --seed=7
s1=$($T "${W_T[@]}" --num_frames 5 --inference_steps 1 --seed -1 2>&1 >/dev/null | sed -n 's/^seed: \([0-9][0-9]*\)$/\1/p')
s2=$($T "${W_T[@]}" --num_frames 5 --inference_steps 1 --seed=-1 2>&1 >/dev/null | sed -n 's/^seed: \([0-9][0-9]*\)$/\1/p')
if [ -n "$s1" ] && [ -n "$s2" ] && [ "$s1" != "$s2" ]; then pass=$((pass + 1)); echo "ok   --seed -1 draws a seed and prints it ($s1, $s2)"
else fail=$((fail + 1)); echo "FAIL --seed -1: seeds '$s1' '$s2'"; fi
$D --dit_weights "$tmp/w_d.safetensors" --vae_weights "$tmp/vae.safetensors" --prompt_embeds "$tmp/pe_d.safetensors" \
    --num_frames 5 --inference_steps 1 --seed 4 --prompt "a/b" --outdir "$tmp/abs out" -q > /dev/null 2>&1
if ls "$tmp/abs out"/ab_4_*.mp4 > /dev/null 2>&1; then pass=$((pass + 1)); echo "ok   absolute --outdir: $tmp/abs out/ab_4_<time>.mp4"
else fail=$((fail + 1)); echo "FAIL absolute --outdir: $(ls -R "$tmp/abs out" 2>&1)"; fi
# --help names every environment variable the engine reads (getenv in runtime/, bar the system's own and the
# test-only switches), with
# the engine's prefix SKY_.
miss="" n_env=0 help_t=$($T --help)
for v in $(grep -rhoE 'getenv\("[A-Z_]+"\)|getenv\(SKY_[A-Z_]+\)' runtime | sed -E 's/getenv\("?([A-Z_]+)"?\)/\1/' | sort -u); do
    case $v in HOME | XDG_CACHE_HOME | CUDA_HOME | CUDA_PATH | CUDA_VISIBLE_DEVICES | HF_HOME | HF_HUB_CACHE | SKYREELS_CACHE | TMPDIR) continue ;; esac
    # test-only switches, documented where they are read (denoise.h, video.h, selftest_cuda.c), not for users
    case $v in SKY_TEST_* | SKY_SELFTEST_FAULT) continue ;; esac
    case $v in *_ENV) v=$(grep -rhoE "define $v \"[A-Z_]+\"" runtime | sed -E 's/.*"(.*)"/\1/') ;; esac
    n_env=$((n_env + 1))
    grep -qE "^  $v +--" <<<"$help_t" || miss="$miss $v"
done
if [ -z "$miss" ] && [ "$n_env" -ge 6 ]; then pass=$((pass + 1)); echo "ok   --help lists the $n_env SKY_ environment variables, each beside its flag"
else fail=$((fail + 1)); echo "FAIL --help misses:$miss ($n_env found in runtime/)"; fi

# A Hugging Face cache as huggingface_hub lays it out (issue 19 item 3): models--Org--Name/{blobs,refs/main,
# snapshots/<rev>/ of links to blobs}, two snapshots each, refs/main naming the newer; the original layout
# (config.json, the transformer at the top) under HF_HUB_CACHE, the diffusers one (transformer/) under HF_HOME/hub.
# The configs: tiny_df's sizes (specs/tiny_df.lua: dim 128, 2 layers, in_dim 16), or a 14B one (dim 5120).
hf_repo() {   # hf_repo DIR SUBDIR CONFIG_OLD CONFIG_NEW (DIR: models--Org--Name, SUBDIR: "" or transformer/)
    mkdir -p "$1/blobs" "$1/refs" "$1/snapshots/0a0a/$2" "$1/snapshots/0b0b/$2"
    cp "$tmp/w_d.safetensors" "$1/blobs/w"
    printf '%s' "$3" > "$1/blobs/c0"; printf '%s' "$4" > "$1/blobs/c1"
    local up; up=$(printf '%s' "$2" | sed 's|[^/]*/|../|g')
    ln -s "../../${up}blobs/w" "$1/snapshots/0a0a/$2diffusion_pytorch_model.safetensors"
    ln -s "../../${up}blobs/w" "$1/snapshots/0b0b/$2diffusion_pytorch_model.safetensors"
    ln -s "../../${up}blobs/c0" "$1/snapshots/0a0a/$2config.json"
    ln -s "../../${up}blobs/c1" "$1/snapshots/0b0b/$2config.json"
    printf '0b0b' > "$1/refs/main"
}
ORIG_OK='{"_class_name": "WanModel", "model_type": "t2v", "dim": 128, "num_layers": 2, "in_dim": 16}'
ORIG_14B='{"_class_name": "WanModel", "model_type": "t2v", "dim": 5120, "num_layers": 40, "in_dim": 16}'
DIFF_OK='{"_class_name": "SkyReelsV2Transformer3DModel", "num_attention_heads": 2, "attention_head_dim": 64, "num_layers": 2, "in_channels": 16}'
DIFF_I2V='{"_class_name": "SkyReelsV2Transformer3DModel", "num_attention_heads": 2, "attention_head_dim": 64, "num_layers": 2, "in_channels": 36}'
hf_repo "$tmp/hubc/models--Org--Tiny-DF" "" "$ORIG_14B" "$ORIG_OK"
hf_repo "$tmp/hfhome/hub/models--Org--Tiny-DF-Diffusers" "transformer/" "$DIFF_I2V" "$DIFF_OK"
HF=(--prompt_embeds "$tmp/pe_d.safetensors" --output_latents "$tmp/hf.safetensors" --num_frames 5 --inference_steps 1 --seed 2)
expect 0 "--model_id Org/Tiny-DF: the Hugging Face cache's snapshot 0b0b ($tmp/hubc/models--Org--Tiny-DF/snapshots/0b0b)" -- \
    env -u HF_HOME HF_HUB_CACHE="$tmp/hubc" $D --model_id Org/Tiny-DF "${HF[@]}"
expect 0 "--model_id Org/Tiny-DF-Diffusers: the Hugging Face cache's snapshot 0b0b" -- \
    env -u HF_HUB_CACHE HF_HOME="$tmp/hfhome" $D --model_id=Org/Tiny-DF-Diffusers "${HF[@]}"
printf '0a0a\n' > "$tmp/hubc/models--Org--Tiny-DF/refs/main"
printf '0a0a\n' > "$tmp/hfhome/hub/models--Org--Tiny-DF-Diffusers/refs/main"
expect 2 "snapshots/0a0a/config.json is another model's (dim 5120, 40 layers, in_dim 16: 14B T2V or DF checkpoint); this binary is tiny_df (dim 128, 2 layers, in_dim 16: df)" -- \
    env -u HF_HOME HF_HUB_CACHE="$tmp/hubc" $D --model_id Org/Tiny-DF "${HF[@]}"
expect 2 "transformer/config.json is another model's (dim 128, 2 layers, in_dim 36: I2V checkpoint); this binary is tiny_df" -- \
    env -u HF_HUB_CACHE HF_HOME="$tmp/hfhome" $D --model_id Org/Tiny-DF-Diffusers "${HF[@]}"
expect 2 "--model_id Org/Missing: not a directory, and not in the Hugging Face cache ($tmp/hubc/models--Org--Missing: no refs/main and not exactly one snapshot); nothing is downloaded: run huggingface-cli download Org/Missing" -- \
    env HF_HUB_CACHE="$tmp/hubc" $D --model_id Org/Missing "${HF[@]}"

# Runs that succeed: latents only (no VAE), and a whole DF video to mp4.
expect 0 "seed: 7" -- $T "${W_T[@]}" --num_frames 5 --inference_steps 2 --seed 7
expect 0 "done in" -- $D --dit_weights "$tmp/w_d.safetensors" --vae_weights "$tmp/vae.safetensors" \
    --prompt_embeds "$tmp/pe_d.safetensors" --num_frames 9 --inference_steps 2 -o "$tmp/x.mp4" --seed 1
if [ -f "$tmp/x.mp4" ] && [ -z "$(ls -A "$tmp" | grep '^\.x\.mp4')" ]; then pass=$((pass + 1)); echo "ok   mp4 written, no temp file left"
else fail=$((fail + 1)); echo "FAIL mp4 missing or temp file left"; fi
# The demo of ./build.sh (a DF long video of 3 windows from random weights) gives an mp4 that decodes
# back with the asked frame count, size and fps.
cc -std=c11 -O2 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime tests/runtime/mp4probe.c runtime/video/video.c runtime/video/video_frame.c runtime/core/fs.c \
   runtime/core/status.c $(pkg-config --cflags --libs libavformat libavcodec libswscale libavutil) -lpthread -lm \
   -o "$tmp/mp4probe"
if ./build.sh > "$tmp/demo.log" 2>&1 && [ "$("$tmp/mp4probe" out/demo.mp4)" = "37 48 64 24/1" ]; then
    pass=$((pass + 1)); echo "ok   ./build.sh demo: out/demo.mp4 decodes to 37 frames of 48x64 at 24 fps"
else
    fail=$((fail + 1)); echo "FAIL ./build.sh demo: $(tail -3 "$tmp/demo.log"); probe: $("$tmp/mp4probe" out/demo.mp4 2>&1)"
fi
# Video extension (--video_path, reference §7.4.5) of the demo's 37 frames: --num_frames 41 gives
# F = 11, Fb = 6, Fo = 3, three windows of 6, 6 and 5 latent frames, each adding 4(Fw-1)+1 - 9 new
# frames (12, 12, 8): 37 + 32 = 69 frames, at the input's size.
D=out/demo
if out/tiny_df/skyreels-tiny_df -q --dit_weights "$D/dit.safetensors" --vae_weights "$D/vae.safetensors" \
       --t5_weights "$D/t5.safetensors" --tokenizer tests/fixtures/tokenizer/tiny_umt5.model \
       --video_path out/demo.mp4 --num_frames 41 --base_num_frames 21 --overlap_history 9 --inference_steps 2 \
       --seed 3 -o "$tmp/ext.mp4" > /dev/null 2>&1 && [ "$("$tmp/mp4probe" "$tmp/ext.mp4")" = "69 48 64 24/1" ]; then
    pass=$((pass + 1)); echo "ok   video extension: 37 input frames + 3 windows = 69 frames of 48x64"
else
    fail=$((fail + 1)); echo "FAIL video extension: $("$tmp/mp4probe" "$tmp/ext.mp4" 2>&1)"
fi
# --video_path is streamed (issue 15: memory bounded whatever the input's length): extending a video of 3000
# frames peaks within 16 MiB of extending one of 40 (at 64x48 the input's frames as RGB and as floats are 131 MiB;
# the reader held them all before: +131 MiB measured), and the output starts with all 3000 frames.
"$tmp/mp4probe" --make "$tmp/in40.mp4" 40 64 48 && "$tmp/mp4probe" --make "$tmp/in3000.mp4" 3000 64 48
for n in 40 3000; do
    out/tiny_df/skyreels-tiny_df -q --dit_weights "$D/dit.safetensors" --vae_weights "$D/vae.safetensors" \
        --t5_weights "$D/t5.safetensors" --tokenizer tests/fixtures/tokenizer/tiny_umt5.model \
        --video_path "$tmp/in$n.mp4" --num_frames 41 --base_num_frames 21 --overlap_history 9 --inference_steps 1 \
        --seed 3 -o "$tmp/ext$n.mp4" --json "$tmp/ext$n.json" > /dev/null 2>&1
done
rss40=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["peak_rss_mib"])' "$tmp/ext40.json" 2>/dev/null)
rss3000=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["peak_rss_mib"])' "$tmp/ext3000.json" 2>/dev/null)
if [ -n "$rss40" ] && [ -n "$rss3000" ] && python3 -c "import sys; sys.exit(not float('$rss3000') - float('$rss40') < 16)" &&
   [ "$("$tmp/mp4probe" "$tmp/ext3000.mp4")" = "3032 64 48 24/1" ]; then
    pass=$((pass + 1)); echo "ok   --video_path streamed: 3000 input frames peak at $rss3000 MiB, 40 at $rss40 MiB; 3032 frames out"
else
    fail=$((fail + 1)); echo "FAIL --video_path memory: 3000 frames $rss3000 MiB, 40 frames $rss40 MiB (bound +16); $("$tmp/mp4probe" "$tmp/ext3000.mp4" 2>&1)"
fi

# Image to video from a prompt and an image (issue 6's end-to-end check): the tiny I2V variant with
# random weights tokenizes and encodes the prompt (umT5) and the image (CLIP), and writes an mp4 of
# 9 frames at the spec's 64x48 (landscape image).
I=out/tiny_i2v/skyreels-tiny_i2v
for prog in dit_forward vae t5 clip; do $I random-weights --program $prog --output "$tmp/i_$prog.safetensors" > /dev/null; done
python3 - "$tmp/start.ppm" <<'PY' 2>/dev/null || printf 'P6\n64 48\n255\n' > "$tmp/start.ppm"
import sys
with open(sys.argv[1], "wb") as f:
    f.write(b"P6\n64 48\n255\n" + bytes((x * 4 + y * 5 + c * 60) % 256 for y in range(48) for x in range(64) for c in range(3)))
PY
[ "$(wc -c < "$tmp/start.ppm")" -gt 100 ] || head -c 9216 /dev/urandom >> "$tmp/start.ppm"
if $I -q --dit_weights "$tmp/i_dit_forward.safetensors" --vae_weights "$tmp/i_vae.safetensors" \
       --t5_weights "$tmp/i_t5.safetensors" --clip_weights "$tmp/i_clip.safetensors" \
       --tokenizer tests/fixtures/tokenizer/tiny_umt5.model --image "$tmp/start.ppm" \
       --prompt "A cat walks on the grass, 一只猫在草地上" --num_frames 9 --inference_steps 3 --seed 1 \
       -o "$tmp/i2v.mp4" > /dev/null 2>&1 && [ "$("$tmp/mp4probe" "$tmp/i2v.mp4")" = "9 64 48 24/1" ]; then
    pass=$((pass + 1)); echo "ok   I2V from --prompt and --image (tokenizer, umT5, CLIP, DiT, VAE) -> 9 frames of 64x48"
else
    fail=$((fail + 1)); echo "FAIL I2V from --prompt and --image: $("$tmp/mp4probe" "$tmp/i2v.mp4" 2>&1)"
fi
# --vae_tiling on I2V: the image's encode is tiled too (models/vae.h sky_vae_encode_tiled, held to diffusers'
# tiled_encode by tests/numeric/run_vae.sh): with tiles of 32 px at a stride of 16 the run writes its 9 frames, and
# its latents differ from the untiled run's (the conditioning latent is the tiled encode's)
IT=(-q --dit_weights "$tmp/i_dit_forward.safetensors" --vae_weights "$tmp/i_vae.safetensors"
    --t5_weights "$tmp/i_t5.safetensors" --clip_weights "$tmp/i_clip.safetensors"
    --tokenizer tests/fixtures/tokenizer/tiny_umt5.model --image "$tmp/start.ppm" --prompt "a cat" --num_frames 9
    --inference_steps 2 --seed 1 --backend cpu)
if $I "${IT[@]}" -o "$tmp/i2v_u.mp4" --output_latents "$tmp/i2v_u.safetensors" > /dev/null 2>&1 &&
   $I "${IT[@]}" -o "$tmp/i2v_t.mp4" --output_latents "$tmp/i2v_t.safetensors" --vae_tiling --vae_tile_size 32:16 \
       > /dev/null 2>&1 && [ "$("$tmp/mp4probe" "$tmp/i2v_t.mp4")" = "9 64 48 24/1" ] &&
   python3 - "$tmp/i2v_u.safetensors" "$tmp/i2v_t.safetensors" <<'PY'; then
import json, struct, sys
def latents(path):
    f = open(path, "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); d = f.read()
    o = h["latents"]["data_offsets"]; return d[o[0]:o[1]]
assert latents(sys.argv[1]) != latents(sys.argv[2]), "the tiled I2V run's latents equal the untiled run's"
PY
    pass=$((pass + 1)); echo "ok   I2V --vae_tiling --vae_tile_size 32:16: 9 frames of 64x48, latents not the untiled run's (tiled encode)"
else
    fail=$((fail + 1)); echo "FAIL I2V --vae_tiling: $("$tmp/mp4probe" "$tmp/i2v_t.mp4" 2>&1)"
fi

# Ctrl-C between steps: exit 130, and neither the mp4 nor its temporary file is left.
mkdir -p "$tmp/intr"
out/tiny_df/skyreels-tiny_df -q --dit_weights "$D/dit.safetensors" --vae_weights "$D/vae.safetensors" \
    --t5_weights "$D/t5.safetensors" --tokenizer tests/fixtures/tokenizer/tiny_umt5.model --num_frames 37 \
    --base_num_frames 21 --overlap_history 9 --inference_steps 30 --seed 1 -o "$tmp/intr/x.mp4" > /dev/null 2>&1 &
pid=$!
sleep 2
kill -INT "$pid"
wait "$pid"
rc=$?
if [ "$rc" -eq 130 ] && [ -z "$(ls -A "$tmp/intr")" ]; then
    pass=$((pass + 1)); echo "ok   SIGINT: exit 130, nothing left in the output directory"
else
    fail=$((fail + 1)); echo "FAIL SIGINT: exit $rc, left: $(ls -A "$tmp/intr")"
fi

# --vae_tiling (models/vae.h sky_vae_decode_tiled, held to diffusers' tiled decode by tests/numeric/run_vae.sh):
# a T2V run with tiles of 32 px at a stride of 16 (the 8x8 latent splits into 4x4 tiles) writes the video that
# `program vae_decode --vae_tiling 32:16` makes of its latents, bit for bit, and not the untiled run's;
# --vae_tile_size without --vae_tiling is refused
$T random-weights --program vae --output "$tmp/vae_t.safetensors" > /dev/null
VT=(--dit_weights "$tmp/w_t.safetensors" --prompt_embeds "$tmp/pe_t.safetensors" --vae_weights "$tmp/vae_t.safetensors"
    --inference_steps 2 --num_frames 5 --seed 1 -q)
if $T "${VT[@]}" --backend cpu -o "$tmp/vt0.mp4" --output_latents "$tmp/vt0.safetensors" > /dev/null 2>&1 &&
   $T "${VT[@]}" --backend cpu -o "$tmp/vt1.mp4" --output_latents "$tmp/vt1.safetensors" --vae_tiling --vae_tile_size 32:16 \
       > /dev/null 2>&1 &&
   python3 - "$tmp/vt1.safetensors" "$tmp/vtz.safetensors" <<'PY' &&
import json, struct, sys
def read(path):
    f = open(path, "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); return h, f.read()
h, data = read(sys.argv[1])
z = h["latents"]
b = data[z["data_offsets"][0]:z["data_offsets"][1]]
head = json.dumps({"z": {"dtype": z["dtype"], "shape": [1] + z["shape"], "data_offsets": [0, len(b)]}}).encode()
open(sys.argv[2], "wb").write(struct.pack("<Q", len(head)) + head + b)
PY
   $T program vae_decode -q --weights "$tmp/vae_t.safetensors" --inputs "$tmp/vtz.safetensors" --vae_tiling 32:16 \
       --output "$tmp/vtp.safetensors" &&
   python3 - "$tmp/vt1.safetensors" "$tmp/vtp.safetensors" "$tmp/vt0.safetensors" <<'PY'; then
import json, struct, sys
def video(path):
    f = open(path, "rb"); n = struct.unpack("<Q", f.read(8))[0]; h = json.loads(f.read(n)); d = f.read()
    o = h["video"]["data_offsets"]; return d[o[0]:o[1]]
tiled, program, plain = video(sys.argv[1]), video(sys.argv[2]), video(sys.argv[3])
assert tiled == program, "the run's tiled video differs from program vae_decode --vae_tiling"
assert tiled != plain, "the tiled video equals the untiled one"
PY
    pass=$((pass + 1)); echo "ok   --vae_tiling --vae_tile_size 32:16: the run's video is program vae_decode --vae_tiling's of its latents, bit for bit, not the untiled one"
else fail=$((fail + 1)); echo "FAIL --vae_tiling: the run's tiled video (see $tmp/vt1.safetensors)"; fi
expect 2 "--vae_tile_size applies only with --vae_tiling" -- $T "${VT[@]}" --vae_tile_size 32:16 -o "$tmp/x.mp4"

# A released variant builds into a binary (compile and link, no weights) and reports its plan: the FLOPs of
# a forward (611.948 TFLOP in all, tests/gen/test_graph.lua checks it against the reference's count) split
# into a step's 611.794 and the prompt part's 0.154 (text embedding, 30 blocks' cross-attention K and V).
# (--info's whole output first, then grep: grep -q would cut the pipe, which pipefail counts as a failure)
if ./build.sh gen df_1.3b_540p > "$tmp/gen-real.log" 2>&1 && info=$(out/df_1.3b_540p/skyreels-df_1.3b_540p --info) &&
   grep -q "611.794 TFLOP per forward at the full window (GEMMs + attention), and 0.154 once per prompt" <<<"$info"; then
    pass=$((pass + 1)); echo "ok   df_1.3b_540p builds; --info reports 611.794 TFLOP per forward and 0.154 per prompt"
    # and the CUDA plan's arena peak and prompt arena, as plan_cuda.txt (the generator's own listing) has them
    peak=$(sed -n 's/^# arena dit_forward (cuda[^)]*): peak \([0-9,]*\) B.*/\1/p' out/df_1.3b_540p/plan_cuda.txt | tr -d ,)
    prompt=$(sed -n 's/^# prompt arena dit_forward: \([0-9,]*\) B.*/\1/p' out/df_1.3b_540p/plan_cuda.txt | tr -d ,)
    if [ -n "$peak" ] && grep -q "cuda arena peak $peak bytes (.*) + 2 prompt arenas of $(awk -v b="$prompt" 'BEGIN { printf "%.2f", b / 1048576 }') MiB" <<<"$info"; then
        pass=$((pass + 1)); echo "ok   --info: dit_forward's cuda arena peak $peak bytes and prompt arenas of $prompt bytes, as plan_cuda.txt"
    else fail=$((fail + 1)); echo "FAIL --info cuda arena: want $peak and $prompt; $(out/df_1.3b_540p/skyreels-df_1.3b_540p --info)"; fi
    # and the generator's counts of the CUDA lowering (gen/count.lua; tests/gen/test_count.lua checks them
    # against a hand count): a forward is 282 kernels (the residuals fused with their norms) and 187 GEMMs (q, k
    # and v one), its FLOPs the 611.794 TFLOP above, and
    # its roofline on the H200 is printed next to the math's floor (611.794 TFLOP / 989 TFLOP/s = 618.6 ms)
    floor=$(awk 'BEGIN { printf "%.3f", 611793.758e9 / 989e12 * 1e3 }')
    if grep -Eq "^ +total +282 +187 +[0-9.]+ +611793\.758 " <<<"$info" &&
       grep -q "dit_forward, per forward; a step is 2 forwards with CFG (x2)" <<<"$info" &&
       grep -Eq "roofline [0-9.]+ ms \(the groups' sum\) vs the math's floor $floor ms" <<<"$info"; then
        pass=$((pass + 1)); echo "ok   --info counts: 282 kernels + 187 GEMMs per forward, 611793.758 GFLOP, floor $floor ms on H200"
    else fail=$((fail + 1)); echo "FAIL --info counts: want 282 + 187 launches and floor $floor ms; $(grep -A16 '^counts' <<<"$info")"; fi
    # and the device memory the CUDA plugin will allocate (models/device_plan.h), recomputed from the generated
    # tables the plugin reads (check_device_plan.py; the emulator tier checks the plan against the plugin's
    # measured peak to the byte)
    printf '%s\n' "$info" > "$tmp/info.txt"
    if python3 tests/runtime/check_device_plan.py out/df_1.3b_540p "$tmp/info.txt" > "$tmp/devplan.txt" 2>&1; then
        pass=$((pass + 1)); echo "ok   --info device memory: $(cat "$tmp/devplan.txt")"
    else fail=$((fail + 1)); echo "FAIL --info device memory: $(cat "$tmp/devplan.txt")"; fi
    # Without a GPU the full-size variant is refused on the CPU backend unless asked for, with the time its
    # FLOPs give: 611.794 TFLOP per forward x 30 steps x 2 (guidance) at the assumed 100 GFLOP/s.
    R=out/df_1.3b_540p/skyreels-df_1.3b_540p
    hours=$(awk 'BEGIN { printf "%.0f", 611.794e12 * 60 / 100e9 / 3600 }')
    msg=$(env -u SKY_BACKEND $R --dit_weights x --prompt_embeds y 2>&1)
    if [[ "$msg" == *"backend: cuda"* ]] ||
       { [[ "$msg" == *"no GPU: df_1.3b_540p on the CPU backend would take about $hours hours"*"pass --backend cpu"* ]] &&
         [[ "$(env -u SKY_BACKEND $R --backend=cpu --dit_weights x --prompt_embeds y 2>&1)" != *"no GPU"* ]]; }; then
        pass=$((pass + 1)); echo "ok   no GPU: df_1.3b_540p refused on the CPU backend ($hours hours) unless --backend cpu"
    else fail=$((fail + 1)); echo "FAIL CPU refusal of df_1.3b_540p: $msg"; fi
else
    fail=$((fail + 1)); echo "FAIL df_1.3b_540p build or --info:"; tail -5 "$tmp/gen-real.log"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
