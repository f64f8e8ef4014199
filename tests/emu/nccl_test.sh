#!/usr/bin/env bash
# tests/emu/nccl_test.sh — --use_usp's device collectives (runtime/cuda/usp_nccl.c) between emulated GPUs, one per
# rank process, through the NCCL double (tests/emu/nccl_double.c: NCCL's calls over MPI), with the communicator
# made as the binary makes it (runtime/dist/usp_cuda.c: the local GPU, rank 0's id broadcast with MPI):
#   - nccl_test.c under mpirun -np 2 and -np 3: all-to-all (F32, BF16) and all-gather (out of place, in place)
#     against the expected blocks, an all-to-all captured into a CUDA Graph and replayed, a host buffer and an
#     unsupported element type refused with their messages;
#   - the CFG axis: 4 ranks as two groups of 2, one communicator per group, the same checks within each group;
#   - an all-to-all whose block size differs between the ranks stops the run (exit 3, both counts named);
#   - a rank without a GPU (two ranks on a machine with one emulated GPU) is refused, naming the rank and the host,
#     and the other rank stops too;
#   - the communicator made through the ABI of the emulated tiny_df128 plugin (cuda_program.c nccl_id, nccl_open,
#     nccl_close), when build/emu/tiny_df128 holds one.
# Skipped (0 passed, 0 failed) without mpicc / mpirun or the CUDA headers. Ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
CUDA=${CUDA_HOME:-/usr/local/cuda}
if ! command -v mpicc > /dev/null 2>&1 || ! command -v mpirun > /dev/null 2>&1 || [ ! -f "$CUDA/include/nccl.h" ]; then
    echo "nccl test: not run (needs mpicc and mpirun: apt-get install -y libopenmpi-dev openmpi-bin; and $CUDA/include/nccl.h)"
    echo "0 passed, 0 failed"
    exit 0
fi
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
mpi() { local n=$1; shift; timeout 120 mpirun --oversubscribe -np "$n" "$@"; }
T=build/emu/nccl_test
mkdir -p "$T"
if ! mpicc -std=c11 -O1 -g -Wall -Wextra -Werror -D_GNU_SOURCE -DSKY_NCCL_LINKED -Iruntime -Itests/emu -I"$CUDA/include" \
        tests/emu/nccl_test.c tests/emu/nccl_double.c tests/emu/driver.c tests/emu/emu.c runtime/cuda/usp_nccl.c \
        runtime/dist/usp_cuda.c runtime/dist/usp_device.c runtime/dist/usp_mpi.c runtime/core/dtype.c \
        runtime/core/status.c -lxxhash -lstdc++ -ldl -lm -o "$T/nccl_test" 2> "$tmp/build.log"; then
    cat "$tmp/build.log"
    bad "building tests/emu/nccl_test.c"
    echo "$pass passed, $fail failed"
    exit 1
fi
for n in 2 3; do
    SKY_EMU_DEVICES=$n mpi "$n" "$T/nccl_test" > "$tmp/out.txt" 2>&1
    rc=$?
    checks=$(grep -c '^ok' "$tmp/out.txt")
    if [ "$rc" -eq 0 ] && ! grep -q '^FAIL' "$tmp/out.txt" && [ "$checks" -eq $((10 * n)) ]; then
        ok "$n ranks: $checks checks ($(grep '^ok   rank 0' "$tmp/out.txt" | sed 's/^ok   rank 0 of [0-9]*: //; s/:.*//' | tr '\n' ';' | cut -c1-200))"
    else
        cat "$tmp/out.txt"
        bad "$n ranks: exit $rc, $checks checks passed (want $((10 * n)))"
    fi
done
# through an emulated plugin's ABI (runtime/cuda/cuda_program.c nccl_id / nccl_open / nccl_close), when one is built
# (tests/emu/build.sh tiny_df128; run.sh runs this file right after building it)
PL=build/emu/tiny_df128/libskyreels-tiny_df128-cuda-emu.so
if [ -f "$PL" ]; then
    SKY_EMU_DEVICES=2 mpi 2 "$T/nccl_test" plugin "$PL" > "$tmp/out.txt" 2>&1
    rc=$?
    if [ "$rc" -eq 0 ] && [ "$(grep -c '^ok.*through the plugin' "$tmp/out.txt")" -eq 2 ]; then
        ok "the communicator through $PL's ABI, 2 ranks"
    else cat "$tmp/out.txt"; bad "the communicator through $PL's ABI: exit $rc"; fi
else
    echo "(no $PL yet: the communicator through a plugin's ABI not checked)"
fi
# the CFG axis: 4 ranks as two groups of 2 (sky_usp_split_cfg), one communicator per group (each group's rank 0 makes
# its id), every collective within its group (the groups' values differ: a block from the other group shows)
SKY_EMU_DEVICES=4 mpi 4 "$T/nccl_test" cfg > "$tmp/out.txt" 2>&1
rc=$?
checks=$(grep -c '^ok' "$tmp/out.txt")
if [ "$rc" -eq 0 ] && ! grep -q '^FAIL' "$tmp/out.txt" && [ "$checks" -eq 40 ] && [ "$(grep -c 'group 1 (NCCL' "$tmp/out.txt")" -eq 2 ]; then
    ok "the CFG axis, 4 ranks as 2 groups of 2: $checks checks, each group on its own communicator"
else cat "$tmp/out.txt"; bad "the CFG axis, 4 ranks: exit $rc, $checks checks passed (want 40)"; fi
SKY_EMU_DEVICES=2 mpi 2 "$T/nccl_test" mismatch > "$tmp/out.txt" 2>&1
rc=$?
if [ "$rc" -eq 3 ] && grep -q "nccl double: fault: rank 1's ncclRecv from rank 0 expected 12 bytes, rank 0 sent 8" "$tmp/out.txt"; then
    ok "mismatched all-to-all blocks stop the run (exit 3): $(grep -m1 'nccl double: fault' "$tmp/out.txt")"
else
    cat "$tmp/out.txt"
    bad "mismatched all-to-all blocks: exit $rc (want 3 and the double's message)"
fi
SKY_EMU_DEVICES=1 mpi 2 "$T/nccl_test" open > "$tmp/out.txt" 2>&1
rc=$?
host=$(hostname)
if [ "$rc" -eq 2 ] && grep -q "refused rank 1 of 2: --use_usp with --backend cuda: rank 1 on host $host has no GPU: it is local rank 1 there (OMPI_COMM_WORLD_LOCAL_RANK) and the host shows 1 GPU" "$tmp/out.txt" &&
   grep -q "refused rank 0 of 2: .*another rank failed to find its GPU" "$tmp/out.txt"; then
    ok "a rank without a GPU is refused, naming it and its host; the other rank stops"
else
    cat "$tmp/out.txt"
    bad "a rank without a GPU: exit $rc (want 2 and both ranks' messages)"
fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
