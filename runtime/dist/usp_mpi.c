/* runtime/dist/usp_mpi.c — the ranks of a --use_usp run over MPI (usp.h). */
#include "dist/usp.h"

#include <limits.h>
#include <mpi.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct sky_usp {
    sky_comm comm;
    MPI_Comm group; /* the ranks the programs' collectives run over: MPI_COMM_WORLD, or a CFG group */
    int      world_rank, world_size;
    int      partner; /* the CFG axis: the other group's rank of the same number (-1 without) */
};

int sky_usp_built(void) { return 1; }

/* MPI counts are int: a collective of more floats goes in pieces of at most INT_MAX / 2 (never for the shapes of
 * the released models: 14B-720P's largest all-to-all block is 10 M floats). */
enum { CHUNK = INT_MAX / 2 };

static void usp_alltoall(const sky_comm *c, const float *send, float *recv, long long count)
{
    const sky_usp *u = c->ctx;
    SKY_ASSERT(count >= 0 && count <= CHUNK);
    MPI_Alltoall(send, (int)count, MPI_FLOAT, recv, (int)count, MPI_FLOAT, u->group);
}

static void usp_allgather(const sky_comm *c, const float *send, float *recv, long long count)
{
    const sky_usp *u = c->ctx;
    SKY_ASSERT(count >= 0 && count <= CHUNK);
    MPI_Allgather(send, (int)count, MPI_FLOAT, recv, (int)count, MPI_FLOAT, u->group);
}

/* The CFG axis: this rank's count floats to its partner, the partner's into recv, in pieces of at most CHUNK
 * (a whole velocity: 14B-720P's is 16 x 31 x 90 x 160 floats, far below it; pieces anyway). */
static void usp_cfg_swap(const sky_comm *c, const float *send, float *recv, long long count)
{
    const sky_usp *u = c->ctx;
    SKY_ASSERT(u->partner >= 0);
    for (long long done = 0; done < count; done += CHUNK) {
        const int n = (int)(count - done < CHUNK ? count - done : CHUNK);
        MPI_Sendrecv(send + done, n, MPI_FLOAT, u->partner, 17, recv + done, n, MPI_FLOAT, u->partner, 17,
                     MPI_COMM_WORLD, MPI_STATUS_IGNORE);
    }
}

sky_status sky_usp_start(sky_usp **out, int *argc, char ***argv, sky_err *err)
{
    *out = NULL;
    int started = 0;
    MPI_Initialized(&started);
    if (!started && MPI_Init(argc, argv) != MPI_SUCCESS)
        return sky_fail(err, "--use_usp: MPI_Init failed (launch with mpirun -np N or srun)");
    sky_usp *u = calloc(1, sizeof *u);
    if (!u) return sky_fail(err, "out of host memory");
    MPI_Comm_rank(MPI_COMM_WORLD, &u->comm.rank);
    MPI_Comm_size(MPI_COMM_WORLD, &u->comm.size);
    u->group = MPI_COMM_WORLD;
    u->world_rank = u->comm.rank;
    u->world_size = u->comm.size;
    u->partner = -1;
    u->comm.cfg_group = -1;
    u->comm.ctx = u;
    u->comm.alltoall = usp_alltoall;
    u->comm.allgather = usp_allgather;
    *out = u;
    return SKY_OK;
}

sky_status sky_usp_split_cfg(sky_usp *u, sky_err *err)
{
    const int world = u->comm.size, n = world / 2;
    if (world % 2 != 0 || n < 1)
        return sky_fail(err,
                        "--use_usp --use_cfg_parallel: %d rank%s; the CFG axis needs an even count, 2 N (N ranks for "
                        "the conditional passes, N for the unconditional ones)",
                        world, world == 1 ? "" : "s");
    const int group = u->world_rank / n;
    if (MPI_Comm_split(MPI_COMM_WORLD, group, u->world_rank, &u->group) != MPI_SUCCESS)
        return sky_fail(err, "--use_usp --use_cfg_parallel: MPI_Comm_split failed");
    MPI_Comm_rank(u->group, &u->comm.rank);
    MPI_Comm_size(u->group, &u->comm.size);
    u->partner = (u->world_rank + n) % world;
    u->comm.cfg_group = group;
    u->comm.cfg_swap = usp_cfg_swap;
    return SKY_OK;
}

const sky_comm *sky_usp_comm(const sky_usp *u) { return &u->comm; }

int sky_usp_world_rank(const sky_usp *u) { return u->world_rank; }

int sky_usp_world_size(const sky_usp *u) { return u->world_size; }

/* FNV-1a over the arguments after the program name, each with its terminating NUL. */
static uint64_t args_hash(int argc, char **argv)
{
    uint64_t h = 1469598103934665603ull;
    for (int i = 1; i < argc; i++)
        for (const unsigned char *p = (const unsigned char *)argv[i];; p++) {
            h = (h ^ *p) * 1099511628211ull;
            if (!*p) break;
        }
    return h;
}

sky_status sky_usp_check_same_args(const sky_usp *u, int argc, char **argv, sky_err *err)
{
    const int           n = u->comm.size;
    unsigned long long  mine = args_hash(argc, argv);
    unsigned long long *all = malloc((size_t)n * sizeof *all);
    if (!all) return sky_fail(err, "out of host memory");
    MPI_Allgather(&mine, 1, MPI_UNSIGNED_LONG_LONG, all, 1, MPI_UNSIGNED_LONG_LONG, MPI_COMM_WORLD);
    int differs = -1;
    for (int r = 1; r < n && differs < 0; r++)
        if (all[r] != all[0]) differs = r;
    free(all);
    if (differs >= 0)
        return sky_fail(err,
                        "--use_usp: rank %d was given other arguments than rank 0 (every rank must run the same "
                        "command line: one `mpirun -np N binary args...`)",
                        differs);
    return SKY_OK;
}

int sky_usp_all_ok(const sky_usp *u, int ok)
{
    (void)u;
    int all = 0;
    MPI_Allreduce(&ok, &all, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    return all;
}

int sky_usp_root_int(const sky_usp *u, int v)
{
    (void)u;
    MPI_Bcast(&v, 1, MPI_INT, 0, MPI_COMM_WORLD);
    return v;
}

void sky_usp_group_bytes(const sky_usp *u, void *buf, int n) { MPI_Bcast(buf, n, MPI_BYTE, 0, u->group); }

void sky_usp_abort(const sky_usp *u, int code)
{
    (void)u;
    MPI_Abort(MPI_COMM_WORLD, code);
    exit(code); /* not reached */
}

void sky_usp_end(sky_usp *u)
{
    if (!u) return;
    if (u->group != MPI_COMM_WORLD) MPI_Comm_free(&u->group);
    free(u);
    MPI_Finalize();
}
