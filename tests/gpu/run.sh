#!/usr/bin/env bash
# tests/gpu/run.sh — every GPU check in one call, a short table last (design.md §6 tier 5).
#
#   bash tests/gpu/run.sh                 on a machine with an NVIDIA GPU and the CUDA toolkit: every check
#   bash tests/gpu/run.sh 540p vae-540p   only those (attention runtime diffusers tiny 540p vae-tiny enc-tiny
#                                         vae-540p); rows go to $OUT/table.txt as they finish
#
# On a machine without a GPU it prints "GPU tier: not run (no GPU)" and exits 0: never "passed".
# Checks (each a row of the table):
#   attention      templates/cuda/attention_sm80.cu.in and attention_sm90.cu.in vs an fp32 reference kernel, shapes of
#                  DF-1.3B 540P (self and cross attention), odd sizes; TFLOP/s at 51,000 tokens
#   runtime        runtime/cuda/cuda_ctx, gemm (cuBLASLt epilogues vs a CPU reference), nvrtc_cache, graphs
#   diffusers      the peer's dit_forward time at full size (DF-1.3B 540P, 51,000 tokens, CFG batch 2),
#                  random weights, bf16 (tests/bench/diffusers_dit.py; needs diffusers: a carried wheel
#                  in .whl/ is installed when present)
#   cuda tiny      the CUDA plugin (libskyreels-tiny_df128-cuda.so, its kernels built in for this GPU by nvcc:
#                  SKY_CUDA_ARCHS=native, loaded by the driver from the fat binary) on the cases of tests/fixtures/cuda/
#                  (plain and per-frame timesteps, 1 to 6 frames, portrait, a batch of two) against
#                  diffusers fp32, bound 2 x diffusers' own bf16 error on the same weights and inputs
#                  (issue 3's rule); tests/emu/run.sh runs the same cases on the CPU emulator in CI
#   teacache       the CUDA plugin under TeaCache on the original code's call sequence (tests/fixtures/teacache/
#                  tiny_df128_e): the decisions exactly, v within 2x diffusers' bf16 error of cuda/tiny_df128_f3frames
#   cuda 540p      the CUDA plugin's dit_forward time at full size (df_1.3b_540p, the full window of latent frames),
#                  random bf16 weights, per-frame timesteps, two prompts alternating, the steady-state (graph
#                  replay, prompt arenas reused) time per sample, and the ratio to diffusers: 2 samples
#                  (cond + uncond) over its batch-2 forward
#   default cuda   a run without --backend takes the CUDA backend on this machine
#   selftest       `selftest` of tiny_df128 with a fresh cache: every kernel passes, each of its 12 families, < 60 s
#   fp8 device     --weight_dtype fp8 with the blocks' linear weights kept as fp8 on the GPU, expanded into bf16 block
#                  slots on the copy stream (runtime/cuda/offload.h): TeaCache's 60 calls (graphs) and their v bit for
#                  bit those of the fp8 checkpoint lora-merge writes, run resident, with 2 slots and with 1
#   cfg parallel   with two GPUs: --use_cfg_parallel (the uncond passes on GPU 1) gives the latents of a one-GPU run
#                  bit for bit; "not run" with one GPU
#   usp            with two GPUs, mpirun and NCCL: --use_usp --backend cuda on 2 ranks gives the latents of one GPU bit
#                  for bit (and on 4 ranks with the CFG axis where there are 4 GPUs); "not run" otherwise
#   usp 540p       likewise: the 540p forward on 2 GPUs, its time per sample against one GPU's and docs/usp.md's model
#   vae tiny       the CUDA VAE on the cases of tests/fixtures/vae/ against diffusers fp32, bound 2 x
#                  diffusers' own error with tf32 convolutions (tests/fixtures/cuda/vae_*)
#   enc tiny       the CUDA encoders on tests/fixtures/encoders/: umT5 (bf16) within 2x transformers' bf16
#                  error (tests/fixtures/cuda/umt5_*), CLIP (fp32) within 1e-5
#   vae 540p       vae_decode of 25 latent frames at 540P (97 frames), random weights: our time and error
#                  against diffusers in true fp32, beside diffusers' own time, memory and tf32 error
#                  (tests/bench/diffusers_vae.py)
# Record the figures in tests/bench/RESULTS.md (device, date, sizes, error, time, ratio).
# The GPU machine cannot download: before the call, run tests/gpu/carry_debs.sh and tests/gpu/carry_wheels.sh
# here and carry .deb and .whl (checked here on a machine without lua5.4, libxxhash-dev, libsentencepiece and
# FFmpeg: the binaries and the CUDA plugin build, the runtime test links).
set -uo pipefail
cd "$(dirname "$0")/../.."
if ! command -v nvidia-smi > /dev/null 2>&1 || ! nvidia-smi -L > /dev/null 2>&1; then
    echo "GPU tier: not run (no GPU)"
    exit 0
fi
OUT=${OUT:-build/gpu-results}
mkdir -p "$OUT"
# Build dependencies the GPU machine's image lacks and cannot download: the Debian packages in .deb/
# (tests/gpu/carry_debs.sh: lua5.4, libxxhash, libsentencepiece) unpacked into a private root on the search
# paths. FFmpeg is too large to carry: without it the binaries are built with -DSKY_FFMPEG=OFF (no check
# here reads or writes a video).
if ls .deb/*.deb > /dev/null 2>&1; then
    root=/tmp/sky-root
    mkdir -p "$root"
    for f in .deb/*.deb; do
        if command -v dpkg > /dev/null; then dpkg -x "$f" "$root"
        else (cd "$root" && ar p "$OLDPWD/$f" data.tar.xz | tar xJ); fi
    done
    lib=$root/usr/lib/x86_64-linux-gnu
    export PATH=$root/usr/bin:$PATH LD_LIBRARY_PATH=$lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
    export CPATH=$root/usr/include${CPATH:+:$CPATH} LIBRARY_PATH=$lib${LIBRARY_PATH:+:$LIBRARY_PATH}
    export CMAKE_PREFIX_PATH=$root/usr${CMAKE_PREFIX_PATH:+:$CMAKE_PREFIX_PATH}
    echo "carried packages unpacked into $root: $(ls .deb | tr '\n' ' ')"
fi
if ! pkg-config --exists libavformat libavcodec libswscale libavutil 2> /dev/null; then
    export SKY_CMAKE_ARGS="-DSKY_FFMPEG=OFF"
    echo "no FFmpeg here: building with $SKY_CMAKE_ARGS"
fi
# Kernels: every variant here compiles them with NVRTC at run time (SKY_CUDA_ARCHS=none: nvcc for a whole variant
# costs device time), but tiny_df128, whose plugin has them built in for this GPU (SKY_CUDA_ARCHS=native: the
# driver loads the fat binary; the "cuda tiny" row checks the plugin says so).
export SKY_CMAKE_ARGS="${SKY_CMAKE_ARGS:-} -DSKY_CUDA_ARCHS=none"
nvidia-smi -L | tee "$OUT/device.txt"
# Which checks: the arguments (attention runtime diffusers tiny 540p vae-tiny enc-tiny vae-540p), all by default in
# that order (the transformer's first: the tiny VAE and encoder checks build several variants), so that a second
# call can finish what a first one had no time for.
CHECKS="$*"
want() { [ -z "$CHECKS" ] || [[ " $CHECKS " == *" $1 "* ]]; }
rows=()
# Each row is also appended to $OUT/table.txt as soon as it is known: a call stopped by its time limit keeps
# the rows it finished.
# --use_usp needs two GPUs, mpirun and NCCL: usp_ready says whether this machine has them, and usp_why what it has.
usp_ready() {
    local n nccl=missing mpi=missing
    n=$(nvidia-smi -L | grep -c '^GPU')
    if [ -n "${SKY_NCCL_LIBRARY:-}" ] || ldconfig -p 2> /dev/null | grep -q 'libnccl.so.2'; then nccl=found; fi
    command -v mpirun > /dev/null 2>&1 && mpi=found
    usp_why="$n GPU(s), mpirun $mpi, NCCL $nccl: --use_usp needs 2 GPUs, mpirun and NCCL"
    export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
    [ "$n" -ge 2 ] && [ "$mpi" = found ] && [ "$nccl" = found ]
}
row() { rows+=("$(printf '%-14s %-8s %s' "$1" "$2" "$3")"); printf '%-14s %-8s %s\n' "$1" "$2" "$3" >> "$OUT/table.txt"; }

# 1. attention kernel
if ! want attention; then :
elif bash tests/gpu/build_attention_test.sh --run > "$OUT/attention.log" 2>&1; then
    row attention ok "$(grep -E 'TFLOP' "$OUT/attention.log" | tail -1)"
else
    row attention FAIL "see $OUT/attention.log"
fi
[ -f "$OUT/attention.log" ] && tail -25 "$OUT/attention.log"

# 2. CUDA runtime modules
if ! want runtime; then :
elif bash tests/compile/runtime_cuda_compile.sh > "$OUT/runtime_build.log" 2>&1 &&
   build/tests/gpu/runtime_test > "$OUT/runtime.log" 2>&1; then
    row runtime ok "$(tail -1 "$OUT/runtime.log")"
else
    row runtime FAIL "see $OUT/runtime.log / runtime_build.log"
fi
[ -f "$OUT/runtime.log" ] && tail -25 "$OUT/runtime.log"

# 3. the peer's time
if ls .whl/*.whl > /dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
fi
if ! want diffusers; then :
elif python3 tests/bench/diffusers_dit.py --variant df_1.3b_540p > "$OUT/diffusers.json" 2> "$OUT/diffusers.log"; then
    row diffusers ok "$(cat "$OUT/diffusers.json")"
else
    row diffusers FAIL "see $OUT/diffusers.log"
fi

# 4. ours: CUDA vs CPU on a tiny spec, then the full-size time
bash tests/numeric/build_sttool.sh > "$OUT/sttool.log" 2>&1 || row sttool FAIL "see $OUT/sttool.log"
# tiny_df128 against diffusers fp32 with the bound of tests/fixtures/cuda/ (2 x diffusers' own bf16
# error on the same weights and inputs), as tests/emu/run.sh does on the CPU emulator.
mkdir -p "$OUT/tiny_df128"
if ! want tiny; then :
elif SKY_CMAKE_ARGS="$SKY_CMAKE_ARGS -DSKY_CUDA_ARCHS=native" ./build.sh gen tiny_df128 > "$OUT/tiny_build.log" 2>&1 &&
   [ -f out/tiny_df128/libskyreels-tiny_df128-cuda.so ] &&
   out/tiny_df128/skyreels-tiny_df128 random-weights --layout diffusers --seed 1 \
       --output "$OUT/tiny_df128/w.safetensors" >> "$OUT/tiny_build.log" 2>&1; then
    : > "$OUT/cuda_vs_cpu.log"
    fails=0 cases=0
    for f in tests/fixtures/cuda/tiny_df128_*.safetensors; do
        cases=$((cases + 1))
        peer=$(build/tools/sttool meta "$f" peer_bf16_rel_l2)
        bound=$(awk -v p="$peer" 'BEGIN { printf "%.3e", 2 * p }')
        out/tiny_df128/skyreels-tiny_df128 program dit_forward --weights "$OUT/tiny_df128/w.safetensors" \
            --inputs "$f" --output "$OUT/tiny_df128/cuda.safetensors" --backend cuda >> "$OUT/cuda_vs_cpu.log" 2>&1 &&
        build/tools/sttool compare "$OUT/tiny_df128/cuda.safetensors" "$f" v "$bound" >> "$OUT/cuda_vs_cpu.log" 2>&1 ||
            fails=$((fails + 1))
    done
    builtin=$(grep -o 'kernels built in ([^)]*)' "$OUT/cuda_vs_cpu.log" | head -1)
    if [ "$fails" -eq 0 ] && [ -n "$builtin" ]; then row "cuda tiny" ok "$cases cases vs diffusers fp32 within 2x its bf16 error, worst $(
        grep -o 'rel_l2 [0-9.e+-]*' "$OUT/cuda_vs_cpu.log" | sort -k2 -g | tail -1), $builtin"
    else row "cuda tiny" FAIL "$fails of $cases cases; kernels: ${builtin:-not the built-in ones}; see $OUT/cuda_vs_cpu.log"; fi
    tail -12 "$OUT/cuda_vs_cpu.log"
    # Without --backend (and $SKY_BACKEND) a machine with a GPU runs the CUDA backend, and says so.
    if env -u SKY_BACKEND out/tiny_df128/skyreels-tiny_df128 program dit_forward --weights "$OUT/tiny_df128/w.safetensors" \
           --inputs "$f" --output "$OUT/tiny_df128/default.safetensors" > "$OUT/default.log" 2>&1 &&
       grep -q "backend: cuda (the default where a GPU is present" "$OUT/default.log"; then
        row "default cuda" ok "no --backend: $(grep -o 'cuda: [^;]*' "$OUT/default.log" | head -1)"
    else
        row "default cuda" FAIL "see $OUT/default.log"
    fi
    # The kernel selftest on this GPU (a fresh cache: it runs now): every row passes, a row of each family, in
    # well under a minute (runtime/cuda/selftest_cuda.c: small shapes).
    t0=$(date +%s.%N)
    SKY_CACHE="$OUT/selftest-cache" out/tiny_df128/skyreels-tiny_df128 selftest > "$OUT/selftest.log" 2>&1; rc=$?
    secs=$(awk -v a="$t0" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    fams=$(awk 'NR > 2 && $NF == "pass" { print $1 }' "$OUT/selftest.log" | sort -u | tr '\n' ' ')
    if [ "$rc" -eq 0 ] && [ "$(echo "$fams" | wc -w)" -ge 12 ] && awk -v s="$secs" 'BEGIN { exit !(s < 60) }'; then
        row selftest ok "$(grep -c ' pass$' "$OUT/selftest.log") kernels pass in $secs s (NVRTC included), families: $fams"
    else
        row selftest FAIL "exit $rc, $secs s, families passing: ${fams:-none}; see $OUT/selftest.log"
    fi
    # TeaCache: the original SkyReels-V2 code's 60-call sequence (tests/fixtures/teacache/tiny_df128_e): its
    # decisions exactly, v within 2 x diffusers' bf16 error of the 3-frame per-frame case (as tests/emu/run.sh).
    f=tests/fixtures/teacache/tiny_df128_e.safetensors
    tb=$(awk -v p="$(build/tools/sttool meta tests/fixtures/cuda/tiny_df128_f3frames.safetensors peer_bf16_rel_l2)" \
        'BEGIN { printf "%.3e", 2 * p }')
    if out/tiny_df128/skyreels-tiny_df128 random-weights --layout original --seed 1 --output "$OUT/tiny_df128/wo.safetensors" \
           > "$OUT/teacache.log" 2>&1 &&
       out/tiny_df128/skyreels-tiny_df128 program dit_forward -q --backend cuda --weights "$OUT/tiny_df128/wo.safetensors" \
           --inputs "$f" --output "$OUT/tiny_df128/tc.safetensors" --teacache "$(build/tools/sttool meta "$f" teacache_thresh)" \
           --teacache_steps "$(build/tools/sttool meta "$f" num_steps)" >> "$OUT/teacache.log" 2>&1 &&
       build/tools/sttool equal "$OUT/tiny_df128/tc.safetensors" "$f" teacache_computed >> "$OUT/teacache.log" 2>&1 &&
       build/tools/sttool compare "$OUT/tiny_df128/tc.safetensors" "$f" v "$tb" >> "$OUT/teacache.log" 2>&1; then
        row teacache ok "tiny_df128_e: the original's 60 decisions, $(grep -o 'rel_l2 [0-9.e+-]*' "$OUT/teacache.log"), bound $tb"
    else
        row teacache FAIL "see $OUT/teacache.log"
    fi
    # --weight_dtype fp8 on the device: the same 60 calls with the blocks' linear weights as fp8 on the GPU, expanded
    # into 2 block slots (the default) and 1 (--offload_blocks 1) on the copy stream, bit for bit the fp8 checkpoint's
    # resident run (the expansions' values are the checkpoint's bf16 exactly; a missing event shows as a difference).
    tc=(--teacache "$(build/tools/sttool meta "$f" teacache_thresh)" --teacache_steps "$(build/tools/sttool meta "$f" num_steps)")
    fp8ok=1
    out/tiny_df128/skyreels-tiny_df128 lora-merge --weights "$OUT/tiny_df128/wo.safetensors" --weight_dtype fp8 \
        --output "$OUT/tiny_df128/fp8.safetensors" > "$OUT/fp8.log" 2>&1 &&
    out/tiny_df128/skyreels-tiny_df128 program dit_forward -q --backend cuda --weights "$OUT/tiny_df128/fp8.safetensors" \
        --inputs "$f" --output "$OUT/tiny_df128/f8base.safetensors" "${tc[@]}" >> "$OUT/fp8.log" 2>&1 || fp8ok=0
    for n in 0 1; do
        [ "$fp8ok" -eq 1 ] || break
        out/tiny_df128/skyreels-tiny_df128 program dit_forward --backend cuda --weights "$OUT/tiny_df128/wo.safetensors" \
            --weight_dtype fp8 --offload_blocks "$n" --inputs "$f" --output "$OUT/tiny_df128/f8.safetensors" "${tc[@]}" \
            >> "$OUT/fp8.log" 2>&1 &&
        build/tools/sttool compare "$OUT/tiny_df128/f8.safetensors" "$OUT/tiny_df128/f8base.safetensors" v 0 >> "$OUT/fp8.log" 2>&1 &&
        build/tools/sttool equal "$OUT/tiny_df128/f8.safetensors" "$OUT/tiny_df128/f8base.safetensors" teacache_computed \
            >> "$OUT/fp8.log" 2>&1 || fp8ok=0
    done
    if [ "$fp8ok" -eq 1 ] && grep -q "linear weights in fp8, 1 of 2 blocks" "$OUT/fp8.log"; then
        row "fp8 device" ok "60 calls with 2 and 1 bf16 block slots expanded from fp8: v bit for bit the fp8 checkpoint's resident run"
    else
        row "fp8 device" FAIL "see $OUT/fp8.log"
    fi
    # --use_cfg_parallel: the uncond passes on a second transformer on GPU 1; a short guided DF run gives the
    # latents of the same run on GPU 0 alone bit for bit (same kernels, same inputs; on two GPUs of one model).
    ngpu=$(nvidia-smi -L | grep -c '^GPU')
    if [ "$ngpu" -lt 2 ]; then
        row "cfg parallel" "not run" "$ngpu GPU here, --use_cfg_parallel needs two (tests/emu/run.sh checks it on two emulated GPUs)"
    else
        tb=out/tiny_df128/skyreels-tiny_df128
        CF=(--dit_weights "$OUT/tiny_df128/w.safetensors" --prompt_embeds "$OUT/tiny_df128/pe.safetensors" --num_frames 17
            --inference_steps 3 --seed 7 --backend cuda)
        if "$tb" random-embeds --output "$OUT/tiny_df128/pe.safetensors" > "$OUT/cfg.log" 2>&1 &&
           "$tb" "${CF[@]}" --output_latents "$OUT/tiny_df128/cf1.safetensors" >> "$OUT/cfg.log" 2>&1 &&
           "$tb" "${CF[@]}" --use_cfg_parallel --output_latents "$OUT/tiny_df128/cf2.safetensors" >> "$OUT/cfg.log" 2>&1 &&
           build/tools/sttool compare "$OUT/tiny_df128/cf2.safetensors" "$OUT/tiny_df128/cf1.safetensors" latents 0 \
               >> "$OUT/cfg.log" 2>&1; then
            row "cfg parallel" ok "GPUs 0 and 1: the latents of GPU 0 alone, bit for bit"
        else
            row "cfg parallel" FAIL "see $OUT/cfg.log"
        fi
    fi
    # --use_usp --backend cuda over NCCL (issue 17): 2 ranks, one GPU each, give the latents of the same guided DF run
    # on one GPU bit for bit; then the same on 4 ranks with the CFG axis (2 + 2) where there are 4 GPUs. "not run"
    # with one GPU, without mpirun or without NCCL (libnccl.so.2, or SKY_NCCL_LIBRARY).
    if ! usp_ready; then
        row "usp" "not run" "$usp_why (tests/emu/run.sh step 2d checks it on emulated GPUs)"
    else
        tb=out/tiny_df128/skyreels-tiny_df128
        CF=(--dit_weights "$OUT/tiny_df128/w.safetensors" --prompt_embeds "$OUT/tiny_df128/pe.safetensors" --num_frames 17
            --inference_steps 3 --seed 7 --backend cuda)
        uspmsg=""
        if [ -f "$OUT/tiny_df128/cf1.safetensors" ] &&
           mpirun -np 2 "$tb" "${CF[@]}" --use_usp --output_latents "$OUT/tiny_df128/usp2.safetensors" > "$OUT/usp.log" 2>&1 &&
           build/tools/sttool compare "$OUT/tiny_df128/usp2.safetensors" "$OUT/tiny_df128/cf1.safetensors" latents 0 \
               >> "$OUT/usp.log" 2>&1; then
            uspmsg="2 ranks: the latents of one GPU, bit for bit"
            if [ "$ngpu" -ge 4 ]; then
                if mpirun -np 4 "$tb" "${CF[@]}" --use_usp --use_cfg_parallel --output_latents "$OUT/tiny_df128/usp4.safetensors" \
                       >> "$OUT/usp.log" 2>&1 &&
                   build/tools/sttool compare "$OUT/tiny_df128/usp4.safetensors" "$OUT/tiny_df128/cf1.safetensors" latents 0 \
                       >> "$OUT/usp.log" 2>&1; then
                    uspmsg="$uspmsg; 4 ranks with the CFG axis (2 + 2): the same"
                else
                    uspmsg="FAIL: 4 ranks with the CFG axis differ or failed"
                fi
            fi
        else
            uspmsg="FAIL: 2 ranks differ from one GPU or failed"
        fi
        if [[ "$uspmsg" == FAIL* ]]; then row "usp" FAIL "${uspmsg#FAIL: }; see $OUT/usp.log"; else row "usp" ok "$uspmsg"; fi
    fi
else
    row "cuda tiny" FAIL "tiny_df128 or its CUDA plugin did not build; see $OUT/tiny_build.log"
fi
d=$OUT/df_1.3b_540p
mkdir -p "$d"
b=out/df_1.3b_540p/skyreels-df_1.3b_540p
built=0
if want 540p || want vae-540p; then ./build.sh gen df_1.3b_540p > "$d/build.log" 2>&1 && built=1; fi
# Our forward at full size: 6 samples of 25 latent frames with per-frame timesteps and two prompts alternating
# (cond, uncond, cond, ...), one at a time as a guided run calls it: samples 1 and 2 run the prompt part into
# their prompt arenas and the step eagerly, 3 and 4 reuse the prompt arenas and are captured into a CUDA Graph
# each (one per prompt arena), 5 and 6 replay them; the time per sample is the mean of 5 and 6, and the ratio
# to diffusers is 2 of ours (cond + uncond) over one of its batch-2 forwards.
steady() { grep -o 'sample [56]/6.*: [0-9.]* s' "$1" | awk '{ t += $(NF - 1) } END { if (NR == 2) printf "%.3f", t / 2 }'; }
ratio() {   # our seconds per sample -> "ours 2 x S s vs diffusers D s: R x"
    python3 -c "import json, sys; d = json.load(open('$OUT/diffusers.json'))['seconds']; o = float(sys.argv[1])
print('ours 2 x %.3f s vs diffusers %.3f s per CFG step: %.2fx' % (o, d, 2 * o / d))" "$1" 2> /dev/null ||
        echo "ours $1 s per sample (no diffusers time to divide by)"
}
if ! want 540p; then :
elif [ "$built" = 1 ] &&
   "$b" random-weights --output "$d/w.safetensors" --bf16 --seed 1 >> "$d/build.log" 2>&1 &&
   "$b" random-inputs --output "$d/in.safetensors" --batch 6 --prompts 2 --per-frame --seed 3 >> "$d/build.log" 2>&1 &&
   "$b" program dit_forward --weights "$d/w.safetensors" --inputs "$d/in.safetensors" --output "$d/cuda.safetensors" \
       --backend cuda > "$d/run.log" 2>&1 && [ -n "$(steady "$d/run.log")" ]; then
    row "cuda 540p" ok "$(ratio "$(steady "$d/run.log")") (sm_90a attention; first sample $(grep -o 'sample 1/6.*' "$d/run.log"))"
    # the same forward with the sm_80 attention kernel: its time, and how far the two outputs are apart
    # (reported; the bound 1 only catches garbage: each kernel's error is bounded in the attention row)
    if SKY_ATTENTION=sm80 "$b" program dit_forward --weights "$d/w.safetensors" --inputs "$d/in.safetensors" \
           --output "$d/cuda80.safetensors" --backend cuda > "$d/run80.log" 2>&1 &&
       build/tools/sttool compare "$d/cuda80.safetensors" "$d/cuda.safetensors" v 1 > "$d/cmp80.log" 2>&1; then
        row "cuda 540p sm80" ok "$(ratio "$(steady "$d/run80.log")"); vs the sm_90a run's output $(grep -o 'rel_l2 [^ ]*' "$d/cmp80.log")"
    else
        row "cuda 540p sm80" FAIL "see $d/run80.log and $d/cmp80.log"
    fi
    # --use_usp on 2 GPUs (issue 17 item 6): the same 6 samples, each rank half of the tokens; the steady time per
    # sample against the one-GPU run's above and docs/usp.md's model (1.95x for df_1.3b_540p on 2 GPUs), and how far
    # the output is from the one-GPU run's (reported: the GEMMs run on half the rows, where cuBLASLt may choose other
    # algorithms; the bound 1 only catches garbage, the tiny usp row above checks the values)
    if ! usp_ready; then
        row "usp 540p" "not run" "$usp_why"
    elif mpirun -np 2 "$b" program dit_forward --weights "$d/w.safetensors" --inputs "$d/in.safetensors" \
             --output "$d/usp.safetensors" --backend cuda --use_usp > "$d/usp.log" 2>&1 && [ -n "$(steady "$d/usp.log")" ] &&
         build/tools/sttool compare "$d/usp.safetensors" "$d/cuda.safetensors" v 1 > "$d/cmpusp.log" 2>&1; then
        row "usp 540p" ok "$(awk -v u="$(steady "$d/usp.log")" -v o="$(steady "$d/run.log")" 'BEGIN { printf "2 GPUs %.3f s per sample vs 1 GPU %.3f s: %.2fx (model 1.95x)", u, o, o / u }'); vs one GPU's output $(grep -o 'rel_l2 [^ ]*' "$d/cmpusp.log")"
    else
        row "usp 540p" FAIL "see $d/usp.log and $d/cmpusp.log"
    fi
else
    row "cuda 540p" FAIL "see $d/build.log and $d/run.log"
fi
rm -f "$d/w.safetensors"

if want vae-tiny; then
# The VAE on tiny configurations: the cases of tests/fixtures/vae/ against diffusers fp32, bound 2 x the error
# of diffusers with tf32 convolutions (tests/fixtures/cuda/vae_*), as tests/emu/run.sh does on the emulator.
: > "$OUT/vae_tiny.log"
vfails=0 vcases=0
for dir in tests/fixtures/vae/*/; do
    config=$(basename "$dir")
    first=$(ls "$dir" | grep -E '^(decode|encode)_' | head -n 1)
    H=$(build/tools/sttool shape "$dir/$first" video 3)
    W=$(build/tools/sttool shape "$dir/$first" video 4)
    v=gpu_$config
    mkdir -p "$OUT/specs"
    {
        echo "return {"
        echo "    variant = \"$v\", family = \"t2v\","
        sed -n '/^    dit = {/,/^    },/p' specs/tiny_df128.lua | sed 's/inject_sample_info = true/inject_sample_info = false/'
        echo "    $(build/tools/sttool meta "$dir/$first" spec_lua | tr '\n' ' ')"
        echo "    video = { height = $H, width = $W, base_num_frames = 17 },"
        echo "    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },"
        echo "}"
    } > "$OUT/specs/$v.lua"
    ./build.sh gen "$OUT/specs/$v.lua" >> "$OUT/vae_tiny.log" 2>&1 || { vfails=$((vfails + 1)); continue; }
    for f in "$dir"/decode_*.safetensors "$dir"/encode_*.safetensors; do
        [ -f "$f" ] || continue
        c=$(basename "$f" .safetensors)
        case $c in decode_*) prog=vae_decode; want=video ;; *) prog=vae_encode; want=z ;; esac
        vcases=$((vcases + 1))
        bound=$(awk -v p="$(build/tools/sttool meta "tests/fixtures/cuda/vae_${config}_$c.safetensors" peer_tf32_rel_l2)" \
                'BEGIN { printf "%.3e", 2 * p }')
        "out/$v/skyreels-$v" program $prog -q --weights "$dir/weights_diffusers.safetensors" --inputs "$f" \
            --output "$OUT/vae.safetensors" --backend cuda >> "$OUT/vae_tiny.log" 2>&1 &&
        build/tools/sttool compare "$OUT/vae.safetensors" "$f" $want "$bound" >> "$OUT/vae_tiny.log" 2>&1 ||
            vfails=$((vfails + 1))
    done
done
if [ "$vfails" -eq 0 ]; then row "vae tiny" ok "$vcases cases vs diffusers fp32 within 2x its tf32-conv error, worst $(
    grep -o 'rel_l2 [0-9.e+-]*' "$OUT/vae_tiny.log" | sort -k2 -g | tail -1)"
else row "vae tiny" FAIL "$vfails failures; see $OUT/vae_tiny.log"; fi
fi

if want enc-tiny; then
# The encoders on tiny configurations, as tests/emu/run.sh does on the emulator: umT5 (bf16) within 2x
# transformers' own bf16 error, CLIP (fp32) within 1e-5.
EF=tests/fixtures/encoders
mkdir -p "$OUT/specs"
: > "$OUT/enc_tiny.log"
efails=0 ecases=0
for S in 16 40; do
    v=gpu_enc_s$S
    {
        echo "return {"
        echo "    variant = \"$v\", family = \"i2v\","
        echo "    dit = { dim = 256, ffn_dim = 512, num_heads = 2, num_layers = 1, freq_dim = 256, text_dim = 64,"
        echo "            text_len = $S, in_dim = 36, out_dim = 16, eps = 1e-6, inject_sample_info = false,"
        echo "            image_dim = 64, image_len = 17 },"
        echo "    $(build/tools/sttool meta "$EF/umt5_tiny/short_n5.safetensors" spec_lua | grep -o 't5 = {.*}' | sed 's/, *text_len = [0-9]*//'),"
        echo "    $(build/tools/sttool meta "$EF/clip_tiny/pixels.safetensors" spec_lua | grep -o 'clip = {.*}'),"
        echo "    video = { height = 64, width = 64, base_num_frames = 5 },"
        echo "    sampler = { steps = 30, shift = 8.0, guidance = 6.0 },"
        echo "}"
    } > "$OUT/specs/$v.lua"
    ./build.sh gen "$OUT/specs/$v.lua" >> "$OUT/enc_tiny.log" 2>&1 || { efails=$((efails + 1)); continue; }
    for f in "$EF"/umt5_tiny/*.safetensors; do
        c=$(basename "$f" .safetensors)
        case $c in weights_*) continue ;; esac
        [ "$(build/tools/sttool shape "$f" ids 0)" = "$S" ] || continue
        ecases=$((ecases + 1))
        bound=$(awk -v p="$(build/tools/sttool meta "tests/fixtures/cuda/umt5_tiny_$c.safetensors" peer_bf16_rel_l2)" \
                'BEGIN { printf "%.3e", 2 * p }')
        "out/$v/skyreels-$v" program text_encode -q --weights "$EF/umt5_tiny/weights_hf.safetensors" --inputs "$f" \
            --output "$OUT/enc.safetensors" --backend cuda >> "$OUT/enc_tiny.log" 2>&1 &&
        build/tools/sttool compare "$OUT/enc.safetensors" "$f" context "$bound" out >> "$OUT/enc_tiny.log" 2>&1 &&
        build/tools/sttool zero_rows "$OUT/enc.safetensors" context "$(build/tools/sttool meta "$f" n_tokens)" \
            >> "$OUT/enc_tiny.log" 2>&1 || efails=$((efails + 1))
    done
    if [ "$S" = 16 ]; then
        ecases=$((ecases + 1))
        "out/$v/skyreels-$v" program clip_encode -q --weights "$EF/clip_tiny/weights_hf.safetensors" \
            --inputs "$EF/clip_tiny/pixels.safetensors" --output "$OUT/enc.safetensors" --backend cuda \
            >> "$OUT/enc_tiny.log" 2>&1 &&
        build/tools/sttool compare "$OUT/enc.safetensors" "$EF/clip_tiny/pixels.safetensors" clip_fea 1e-5 out \
            >> "$OUT/enc_tiny.log" 2>&1 || efails=$((efails + 1))
    fi
done
if [ "$efails" -eq 0 ]; then row "enc tiny" ok "$ecases cases (umT5 within 2x transformers' bf16 error, CLIP within 1e-5)"
else row "enc tiny" FAIL "$efails failures; see $OUT/enc_tiny.log"; fi
fi

# The VAE at 540P: 25 latent frames -> 97 frames of 544x960, random weights, ours and diffusers' on this GPU.
if ! want vae-540p; then :
elif [ "$built" = 1 ] && "$b" random-weights --program vae --layout diffusers --seed 2 --output "$d/vae.safetensors" >> "$d/build.log" 2>&1 &&
   python3 tests/bench/diffusers_vae.py --weights "$d/vae.safetensors" --out "$d/vae" > "$d/vae_diffusers.json" \
       2> "$d/vae_diffusers.log"; then
    row "vae diffusers" ok "$(cat "$d/vae_diffusers.json")"
    vb=$(python3 -c "import json; print('%.3e' % (2 * json.load(open('$d/vae_diffusers.json'))['peer_tf32_rel_l2']))")
    if "$b" program vae_decode --weights "$d/vae.safetensors" --inputs "$d/vae/z.safetensors" \
           --output "$d/vae/ours.safetensors" --backend cuda > "$d/vae_run.log" 2>&1 &&
       build/tools/sttool compare "$d/vae/ours.safetensors" "$d/vae/ref.safetensors" video "$vb" > "$d/vae_cmp.log"; then
        row "vae 540p" ok "$(grep -o 'decode.*' "$d/vae_run.log" | tail -1); $(grep -o 'rel_l2 [^ ]*' "$d/vae_cmp.log") (bound $vb)"
    else
        row "vae 540p" FAIL "see $d/vae_run.log and $d/vae_cmp.log"
    fi
else
    row "vae diffusers" FAIL "see $d/vae_diffusers.log"
fi
rm -rf "$d/vae" "$d/vae.safetensors"

echo
echo "check          result   detail"
for r in "${rows[@]}"; do echo "$r"; done
