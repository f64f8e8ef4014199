/* runtime/dist/usp.h — the ranks of a --use_usp run (Ulysses sequence parallelism, issue 17), over MPI.
 *
 * Launched as `mpirun -np N skyreels-<variant> ... --use_usp` (or `srun`): the rank and the rank count come from
 * MPI. This module starts MPI, hands the generated programs their collectives (models/program.h sky_comm, over
 * MPI_Alltoall and MPI_Allgather on MPI_COMM_WORLD), checks that every rank was given the same arguments, and
 * ends a run on every rank. Built over MPI only when CMake finds it (dist/usp_mpi.c); otherwise dist/usp_none.c,
 * whose sky_usp_start says what is missing. MPI's errors are fatal (its default handler ends the job).
 */
#ifndef SKY_DIST_USP_H
#define SKY_DIST_USP_H

#include "core/status.h"
#include "models/program.h"

typedef struct sky_usp sky_usp;

/* 1 when built with MPI (usp_mpi.c), else 0. */
int sky_usp_built(void);

/* Start MPI (MPI_Init with argc/argv) and join the ranks; *out holds this rank's collectives. Refused without
 * MPI ("built without MPI: install libopenmpi-dev and rebuild"). */
sky_status sky_usp_start(sky_usp **out, int *argc, char ***argv, sky_err *err);

/* The CFG axis: split the 2 N ranks into two groups of N (ranks 0 .. N-1 the conditional passes, N .. 2N-1 the
 * unconditional ones); sky_usp_comm's collectives then run within this rank's group, and its cfg_swap exchanges
 * with the other group's rank of the same number. Refused for an odd rank count. Every rank calls it. */
sky_status sky_usp_split_cfg(sky_usp *u, sky_err *err);

/* This rank's collectives (valid until sky_usp_end). */
const sky_comm *sky_usp_comm(const sky_usp *u);

/* This rank's number among all ranks, and their count (before or after sky_usp_split_cfg). */
int sky_usp_world_rank(const sky_usp *u);
int sky_usp_world_size(const sky_usp *u);

/* Check, on every rank together, that every rank has the same arguments (a hash of argv): refused on every rank,
 * naming the first rank whose arguments differ from rank 0's. */
sky_status sky_usp_check_same_args(const sky_usp *u, int argc, char **argv, sky_err *err);

/* Every rank together: 1 when every rank's ok is 1, else 0 (a step that may fail on some ranks only). */
int sky_usp_all_ok(const sky_usp *u, int ok);

/* Every rank together: rank 0's v (MPI_Bcast). */
int sky_usp_root_int(const sky_usp *u, int v);

/* Every rank of this rank's group together (the whole run without the CFG axis): the group's rank 0's n bytes of
 * buf into every rank's buf (MPI_Bcast; e.g. the NCCL unique id of the group's communicator). */
void sky_usp_group_bytes(const sky_usp *u, void *buf, int n);

/* The GPU of this rank on its machine (no MPI call): its local rank, from OMPI_COMM_WORLD_LOCAL_RANK (mpirun),
 * SLURM_LOCALID (srun) or MPI_LOCALRANKID (MPICH), else world_rank (one machine). Refused when the machine shows
 * fewer GPUs (n_devices) than that, naming the rank, the host and the count, and what to do. */
sky_status sky_usp_local_device(int world_rank, int n_devices, int *device, sky_err *err);

/* End the whole job from one rank with exit code `code` (after that rank printed why): MPI_Abort, which stops
 * every rank; no rank waits for a collective that will not come. Does not return. */
void sky_usp_abort(const sky_usp *u, int code);

/* Leave MPI (MPI_Finalize) and free u (NULL is fine); every rank calls it at the end of a run. */
void sky_usp_end(sky_usp *u);

#endif /* SKY_DIST_USP_H */
