#!/usr/bin/env bash
# tests/runtime/test_usp.sh — --use_usp (issue 17 items 1, 3, 4): Ulysses sequence parallelism on the CPU backend
# over MPI, every run under `mpirun -np N` (oversubscribed, loopback) against the single-process run of the same
# command line, which it must equal bit for bit (the latents; dit_forward's v):
#   - program dit_forward on tiny_usp (12 heads) with 2, 3 and 4 ranks: 3 latent frames of 3 tokens (9 tokens: 2
#     and 4 ranks pad them), per-frame and plain timesteps, a batch of 2 with its prompt part reused;
#   - DF on tiny_usp, synchronous, one window of 5 latent frames (15 tokens), 2, 3 and 4 ranks;
#   - DF on tiny_usp, asynchronous (--ar_step 1), two windows (the second conditioned on the first's decoded and
#     re-encoded frames), 2 ranks; T2V on tiny_t2v (2 heads) and I2V on tiny_i2v (from a prompt and an image) with
#     2 ranks; DF on tiny_df with TeaCache, 2 ranks;
#   - the CFG axis (--use_cfg_parallel, issue 17 item 2): T2V on 2 ranks (1 + 1) and 4 (2 + 2), DF on 6 (3 + 3);
#     T2V with TeaCache on 2 and 4 (the decisions replayed in the one-process order);
#   - refusals, each with its message: a rank count that does not divide the heads (the counts that work listed),
#     one rank alone, other arguments on one rank, --backend cuda (a cpu-only variant), no --seed,
#     an odd count for the CFG axis, and a build
#     without MPI (runtime/dist/usp_none.c); a rank that cannot read a file stops every rank (no hang).
# Skipped (0 passed, 0 failed) without mpirun.
set -uo pipefail
cd "$(dirname "$0")/../.."
if ! command -v mpirun > /dev/null 2>&1; then
    echo "skipped: no mpirun (apt-get install -y libopenmpi-dev openmpi-bin)"
    echo "0 passed, 0 failed"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for v in tiny_usp tiny_t2v tiny_df tiny_i2v; do ./build.sh gen "$v" > "$tmp/gen-$v.log" 2>&1 || { cat "$tmp/gen-$v.log"; exit 1; }; done
U=out/tiny_usp/skyreels-tiny_usp T=out/tiny_t2v/skyreels-tiny_t2v D=out/tiny_df/skyreels-tiny_df
I=out/tiny_i2v/skyreels-tiny_i2v
# as root (CI containers) OpenMPI wants both; --oversubscribe: more ranks than cores
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
# one OpenMP thread per rank: N ranks x all cores of OpenMP threads, polling MPI, would crowd 2 cores (the
# results do not depend on the thread count: templates/cpu/common.h.in)
export OMP_NUM_THREADS=1
mpi() { local n=$1; shift; timeout 120 mpirun --oversubscribe -np "$n" "$@"; }
for b in U T D; do
    ${!b} random-weights --output "$tmp/w_$b.safetensors" > /dev/null
    ${!b} random-embeds --output "$tmp/pe_$b.safetensors" > /dev/null
done
$U random-weights --program vae --output "$tmp/vae_U.safetensors" > /dev/null
for prog in dit_forward vae t5 clip; do $I random-weights --program $prog --output "$tmp/i_$prog.safetensors" > /dev/null; done
$U random-inputs --output "$tmp/in_pf.safetensors" --batch 2 --frames 3 --per-frame --prompts 1 --seed 1 > /dev/null
$U random-inputs --output "$tmp/in_plain.safetensors" --batch 2 --frames 3 --prompts 1 --seed 2 > /dev/null
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; }

# same NAME A B: files A and B are equal byte for byte
same() {
    if [ -s "$2" ] && cmp -s "$2" "$3"; then ok "$1: equal bit for bit"; else bad "$1: $2 and $3 differ (or are missing)"; fi
}

# program dit_forward: v of every rank count equals the single process's
for inp in pf plain; do
    $U program dit_forward --weights "$tmp/w_U.safetensors" --inputs "$tmp/in_$inp.safetensors" \
        --output "$tmp/v1_$inp.safetensors" --backend cpu -q
    for n in 2 3 4; do
        mpi "$n" $U program dit_forward --weights "$tmp/w_U.safetensors" --inputs "$tmp/in_$inp.safetensors" \
            --output "$tmp/v${n}_$inp.safetensors" --use_usp -q
        same "dit_forward ($inp timesteps, 9 tokens) on $n ranks" "$tmp/v1_$inp.safetensors" "$tmp/v${n}_$inp.safetensors"
    done
done

# gen NAME BINARY N ARGS...: the run on N ranks (N = 1: one process, no --use_usp) writing $tmp/NAME-N.safetensors
gen() {
    local name=$1 bin=$2 n=$3
    shift 3
    if [ "$n" = 1 ]; then
        $bin "$@" --output_latents "$tmp/$name-1.safetensors" -q > /dev/null 2> "$tmp/$name-1.log"
    else
        mpi "$n" $bin "$@" --output_latents "$tmp/$name-$n.safetensors" -q --use_usp > /dev/null 2> "$tmp/$name-$n.log"
    fi || { cat "$tmp/$name-$n.log"; }
}
SYNC=(--dit_weights "$tmp/w_U.safetensors" --prompt_embeds "$tmp/pe_U.safetensors" --seed 11 --inference_steps 2
      --num_frames 17)
gen df_sync "$U" 1 "${SYNC[@]}"
for n in 2 3 4; do
    gen df_sync "$U" "$n" "${SYNC[@]}"
    same "DF synchronous, 15 tokens, $n ranks" "$tmp/df_sync-1.safetensors" "$tmp/df_sync-$n.safetensors"
done
ASYNC=(--dit_weights "$tmp/w_U.safetensors" --vae_weights "$tmp/vae_U.safetensors" --prompt_embeds
       "$tmp/pe_U.safetensors" --seed 5 --inference_steps 2 --num_frames 21 --base_num_frames 13 --overlap_history 5
       --ar_step 1 --causal_block_size 2 -o "$tmp/df_async.mp4")
gen df_async "$U" 1 "${ASYNC[@]}"
gen df_async "$U" 2 "${ASYNC[@]}"
same "DF asynchronous, 2 windows, 2 ranks" "$tmp/df_async-1.safetensors" "$tmp/df_async-2.safetensors"
T2V=(--dit_weights "$tmp/w_T.safetensors" --prompt_embeds "$tmp/pe_T.safetensors" --seed 3 --inference_steps 3)
gen t2v "$T" 1 "${T2V[@]}"
gen t2v "$T" 2 "${T2V[@]}"
same "T2V, guidance (cond and uncond passes), 2 ranks" "$tmp/t2v-1.safetensors" "$tmp/t2v-2.safetensors"
# the CFG axis (--use_cfg_parallel): 2 N ranks, the cond passes on N, the uncond ones on the other N
gen t2v_cfg "$T" 2 "${T2V[@]}" --use_cfg_parallel
same "T2V, CFG axis on 2 ranks (1 + 1: no token split)" "$tmp/t2v-1.safetensors" "$tmp/t2v_cfg-2.safetensors"
gen t2v_cfg "$T" 4 "${T2V[@]}" --use_cfg_parallel
same "T2V, CFG axis on 4 ranks (2 + 2)" "$tmp/t2v-1.safetensors" "$tmp/t2v_cfg-4.safetensors"
# ... with TeaCache: every rank replays both passes' decisions in the one-process order (runtime/pipeline/denoise.c
# decide_cfg_axis). A threshold no distance reaches skips every call past the warm-up; 5 steps (odd) make the counter
# wrap between a cond and an uncond call, so the parities change passes there. The run must skip (its latents
# differ from the plain run's) and equal the one-process TeaCache run bit for bit.
T2V_TC=(--dit_weights "$tmp/w_T.safetensors" --prompt_embeds "$tmp/pe_T.safetensors" --seed 3 --inference_steps 5
        --num_frames 5)
gen t2v_plain5 "$T" 1 "${T2V_TC[@]}"
gen t2v_tc "$T" 1 "${T2V_TC[@]}" --teacache --teacache_thresh 1e9
if [ -s "$tmp/t2v_tc-1.safetensors" ] && ! cmp -s "$tmp/t2v_tc-1.safetensors" "$tmp/t2v_plain5-1.safetensors"; then
    ok "T2V with TeaCache (5 steps, every call past the warm-up skipped): differs from the plain run"
else bad "T2V with TeaCache: no skip seen (equal to the plain run, or missing)"; fi
for n in 2 4; do
    gen t2v_tc_cfg "$T" "$n" "${T2V_TC[@]}" --teacache --teacache_thresh 1e9 --use_cfg_parallel
    same "T2V with TeaCache, CFG axis on $n ranks ($((n / 2)) + $((n / 2)))" "$tmp/t2v_tc-1.safetensors" "$tmp/t2v_tc_cfg-$n.safetensors"
done
gen df_sync_cfg "$U" 6 "${SYNC[@]}" --use_cfg_parallel
same "DF synchronous, CFG axis on 6 ranks (3 + 3)" "$tmp/df_sync-1.safetensors" "$tmp/df_sync_cfg-6.safetensors"
# I2V from a prompt and an image: every rank tokenizes and encodes the prompt (umT5) and the image (CLIP, VAE)
I2V=(--dit_weights "$tmp/i_dit_forward.safetensors" --vae_weights "$tmp/i_vae.safetensors" --t5_weights
     "$tmp/i_t5.safetensors" --clip_weights "$tmp/i_clip.safetensors" --tokenizer tests/fixtures/tokenizer/tiny_umt5.model
     --image tests/fixtures/pipeline/df_image_start.png --prompt "A cat walks on the grass" --num_frames 5
     --inference_steps 2 --seed 2 -o "$tmp/i2v.mp4")
gen i2v "$I" 1 "${I2V[@]}"
gen i2v "$I" 2 "${I2V[@]}"
same "I2V (prompt and image encoded on every rank), 2 ranks" "$tmp/i2v-1.safetensors" "$tmp/i2v-2.safetensors"
TC=(--dit_weights "$tmp/w_D.safetensors" --prompt_embeds "$tmp/pe_D.safetensors" --seed 4 --inference_steps 6
    --num_frames 17 --teacache --teacache_thresh 1e9)   # 8 of 12 calls skip: every one past the warm-up
gen teacache "$D" 1 "${TC[@]}"
gen teacache "$D" 2 "${TC[@]}"
same "DF with TeaCache, 2 ranks" "$tmp/teacache-1.safetensors" "$tmp/teacache-2.safetensors"

# expect CODE "message substring" -- command...: the exit code and the message (stderr) of a refused run
expect() {
    local code=$1 want=$2
    shift 3
    local out rc
    out=$("$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -eq "$code" ] && [[ "$out" == *"$want"* ]]; then
        ok "exit $rc: $want"
    else
        bad "$*: exit $rc (want $code), message: $out (want: $want)"
    fi
}
R=(--dit_weights "$tmp/w_U.safetensors" --prompt_embeds "$tmp/pe_U.safetensors" --seed 1 --num_frames 17
   --output_latents "$tmp/refused.safetensors" --use_usp)
expect 2 "--use_usp: 5 ranks: the rank count must divide the 12 attention heads (each rank computes heads / ranks of them) and be at least 2; run with 2, 3, 4, 6, 12 ranks" -- mpi 5 $U "${R[@]}"
expect 2 "--use_usp: 1 rank: the rank count must divide the 12 attention heads" -- mpi 1 $U "${R[@]}"
expect 2 "--use_usp: 3 ranks: the rank count must divide the 2 attention heads (each rank computes heads / ranks of them) and be at least 2; run with 2 ranks" -- \
    mpi 3 $D program dit_forward --weights "$tmp/w_D.safetensors" --inputs x --output y --use_usp
expect 2 "--use_usp: rank 1 was given other arguments than rank 0" -- \
    timeout 120 mpirun -np 1 $U "${R[@]}" : -np 1 $U "${R[@]}" --inference_steps 3
expect 2 "--backend cuda: tiny_usp was generated for the cpu target only" -- mpi 2 $U "${R[@]}" --backend cuda
expect 2 "--use_usp needs --seed" -- mpi 2 $U "${R[@]/--seed/--shift}"
expect 2 "--use_usp with --resume_dir: not supported yet (one rank would have to keep the windows for all)" -- \
    mpi 2 $U "${R[@]}" --resume_dir "$tmp/resume"
expect 2 "--use_usp --use_cfg_parallel: 3 ranks; the CFG axis needs an even count, 2 N" -- \
    mpi 3 $U "${R[@]}" --use_cfg_parallel
# a file only one rank cannot read: that rank's message with its number, every rank stopped (MPI_Abort), no hang
mkdir -p "$tmp/rank0" "$tmp/rank1"
cp "$tmp/w_U.safetensors" "$tmp/rank0/w.safetensors"          # rank 1's folder has none
printf '#!/bin/sh\ncd "%s/rank$OMPI_COMM_WORLD_RANK" && exec "$@"\n' "$tmp" > "$tmp/in_rank_dir.sh"
chmod +x "$tmp/in_rank_dir.sh"
expect 1 "error (rank 1 of 2): w.safetensors: cannot open" -- mpi 2 "$tmp/in_rank_dir.sh" "$PWD/$U" program dit_forward \
    --weights w.safetensors --inputs "$tmp/in_pf.safetensors" --output "$tmp/one_rank.safetensors" --use_usp -q
# a build without MPI: what is missing
if cc -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime tests/runtime/usp_none_test.c \
      runtime/dist/usp_none.c runtime/core/status.c -lm -o "$tmp/usp_none"; then
    expect 0 "--use_usp: built without MPI: install libopenmpi-dev and rebuild" -- sh -c "$tmp/usp_none >&2"
else
    bad "tests/runtime/usp_none_test.c does not build"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
