/* tests/emu/nccl_double.c — the NCCL calls of runtime/cuda/usp_nccl.c, over MPI between the rank processes of an
 * emulated run (README.md): one emulated GPU per rank process, as on a machine with one GPU per rank.
 *
 * Linked into the emulated plugin in place of libnccl (as driver.c replaces libcuda), with nccl.h's own
 * declarations, so a signature that drifts from NCCL's does not compile. What it does, and checks:
 *   - ncclGetUniqueId: a marker, the MPI world rank that made it and a serial number (no network address);
 *   - ncclCommInitRank: every world rank initialises a communicator at the same call (as the runtime does: one per
 *     rank, or one per CFG group), which is an MPI_Comm_split of MPI_COMM_WORLD by the id's maker, ordered by the
 *     NCCL rank; refused when the resulting group's size or this rank's place in it differ from nranks and rank
 *     (ids mixed up between ranks), or the id is not one the double made. The communicator keeps the device
 *     current at init: a later call from another device is refused (as NCCL would fail to launch there);
 *   - ncclSend / ncclRecv, inside ncclGroupStart / ncclGroupEnd (or alone): each buffer must lie inside one
 *     allocation of the current emulated GPU (count x the type's bytes); at ncclGroupEnd the group (one
 *     communicator, one stream) becomes one step of the emulated stream (driver.c sky_emu_stream_host): run now,
 *     or, inside a stream capture, when the captured graph is replayed, as NCCL's kernels would. The step posts
 *     every receive and send (MPI_Irecv / MPI_Isend, in the order given: MPI's non-overtaking order pairs them as
 *     NCCL does) and waits; a receive whose byte count differs from what the peer sent stops the run with exit
 *     code 3 and a message naming both ranks and counts (NCCL would corrupt or hang);
 *   - ncclAllGather: the same checks, then MPI_Allgather (MPI_IN_PLACE when send is recv + rank count) at the
 *     stream's point;
 *   - ncclCommDestroy frees the MPI communicator; error strings as NCCL's; ncclGetLastError says what was refused;
 *   - test only: SKY_EMU_NCCL_FLIP=1 corrupts one bit of every group's first receive (a negative control).
 * Not modelled: asynchronous errors, other collectives, several communicators or streams in one group.
 * MPI must be running (the binary starts it for --use_usp; tests/emu/nccl_test.c does for itself).
 */
#include <mpi.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>
#include <nccl.h>

/* driver.c */
CUresult sky_emu_stream_host(CUstream s, void (*fn)(void *ctx), const void *ctx, size_t ctx_bytes);
int      sky_emu_driver_owns(const void *p, size_t n);

#define ID_MAGIC "sky-emu-nccl-id"
#define MAX_OPS  64 /* sends and receives in one group: an all-to-all of 32 ranks */

struct ncclComm {
    MPI_Comm mpi;
    int      rank, size, device;
};

typedef struct p2p {
    int       recv; /* 1 ncclRecv, 0 ncclSend */
    int       peer;
    void     *buf;
    long long bytes;
} p2p;

typedef struct group_step { /* flat: copied into the stream's step */
    MPI_Comm mpi;
    int      rank, n;
    p2p      op[MAX_OPS];
} group_step;

typedef struct gather_step {
    MPI_Comm    mpi;
    const void *send;
    void       *recv;
    long long   bytes;
    int         in_place;
} gather_step;

static char              last_error[512];
static _Thread_local int group_depth;
static _Thread_local struct {
    ncclComm_t   comm;
    cudaStream_t stream;
    group_step   step;
} pending;

static ncclResult_t refuse(ncclResult_t r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static ncclResult_t refuse(ncclResult_t r, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_error, sizeof last_error, fmt, ap);
    va_end(ap);
    return r;
}

static int mpi_running(void)
{
    int up = 0, down = 0;
    MPI_Initialized(&up);
    MPI_Finalized(&down);
    return up && !down;
}

static int type_bytes(ncclDataType_t t)
{
    switch (t) {
    case ncclInt8:
    case ncclUint8: return 1;
    case ncclFloat16:
    case ncclBfloat16: return 2;
    case ncclInt32:
    case ncclUint32:
    case ncclFloat32: return 4;
    case ncclInt64:
    case ncclUint64:
    case ncclFloat64: return 8;
    default: return 0;
    }
}

/* The current device (driver.c keeps it per thread). */
static int current_device(void)
{
    CUdevice d = -1;
    return cuCtxGetDevice(&d) == CUDA_SUCCESS ? (int)d : -1;
}

ncclResult_t ncclGetVersion(int *version)
{
    if (!version) return ncclInvalidArgument;
    *version = NCCL_VERSION_CODE;
    return ncclSuccess;
}

const char *ncclGetErrorString(ncclResult_t r)
{
    switch (r) {
    case ncclSuccess: return "no error";
    case ncclUnhandledCudaError: return "unhandled cuda error (run with NCCL_DEBUG=INFO for details)";
    case ncclSystemError: return "unhandled system error (run with NCCL_DEBUG=INFO for details)";
    case ncclInternalError: return "internal error - please report this issue to the NCCL developers";
    case ncclInvalidArgument: return "invalid argument (run with NCCL_DEBUG=WARN for details)";
    case ncclInvalidUsage: return "invalid usage (run with NCCL_DEBUG=WARN for details)";
    case ncclRemoteError: return "remote process exited or there was a network error";
    case ncclInProgress: return "NCCL operation in progress";
    default: return "unknown result code";
    }
}

const char *ncclGetLastError(ncclComm_t comm)
{
    (void)comm;
    return last_error;
}

ncclResult_t ncclGetUniqueId(ncclUniqueId *id)
{
    static int serial;
    if (!id) return refuse(ncclInvalidArgument, "ncclGetUniqueId: NULL id");
    if (!mpi_running()) return refuse(ncclSystemError, "the NCCL double needs MPI started (the binary's --use_usp)");
    int world = 0;
    MPI_Comm_rank(MPI_COMM_WORLD, &world);
    memset(id, 0, sizeof *id);
    memcpy(id->internal, ID_MAGIC, sizeof ID_MAGIC);
    memcpy(id->internal + 32, &world, sizeof world);
    ++serial;
    memcpy(id->internal + 36, &serial, sizeof serial);
    return ncclSuccess;
}

ncclResult_t ncclCommInitRank(ncclComm_t *out, int nranks, ncclUniqueId id, int rank)
{
    if (!out) return refuse(ncclInvalidArgument, "ncclCommInitRank: NULL comm");
    *out = NULL;
    if (!mpi_running()) return refuse(ncclSystemError, "the NCCL double needs MPI started (the binary's --use_usp)");
    if (memcmp(id.internal, ID_MAGIC, sizeof ID_MAGIC) != 0)
        return refuse(ncclInvalidArgument, "ncclCommInitRank: not a unique id from ncclGetUniqueId");
    const int device = current_device();
    if (device < 0) return refuse(ncclUnhandledCudaError, "ncclCommInitRank: no current CUDA device");
    int maker = 0;
    memcpy(&maker, id.internal + 32, sizeof maker);
    struct ncclComm *c = calloc(1, sizeof *c);
    if (!c) return refuse(ncclSystemError, "out of host memory");
    /* every world rank is here (see above): the ranks of one id form one MPI communicator */
    if (MPI_Comm_split(MPI_COMM_WORLD, maker, rank, &c->mpi) != MPI_SUCCESS) {
        free(c);
        return refuse(ncclSystemError, "ncclCommInitRank: MPI_Comm_split failed");
    }
    MPI_Comm_set_errhandler(c->mpi, MPI_ERRORS_RETURN); /* a count mismatch: run_group's message, not MPI's */
    MPI_Comm_rank(c->mpi, &c->rank);
    MPI_Comm_size(c->mpi, &c->size);
    if (c->size != nranks || c->rank != rank) {
        const int size = c->size, got = c->rank;
        MPI_Comm_free(&c->mpi);
        free(c);
        return refuse(ncclInvalidArgument,
                      "ncclCommInitRank: rank %d of %d, but %d ranks joined this id (this one as rank %d)", rank,
                      nranks, size, got);
    }
    c->device = device;
    *out = c;
    return ncclSuccess;
}

ncclResult_t ncclCommDestroy(ncclComm_t comm)
{
    if (!comm) return ncclSuccess;
    if (mpi_running()) MPI_Comm_free(&comm->mpi);
    free(comm);
    return ncclSuccess;
}

/* A call on comm from the current device with a buffer of bytes at p: refused unless p lies inside one
 * allocation of that device (driver.c) and the device is the communicator's. */
static ncclResult_t check(const char *call, ncclComm_t comm, const void *p, long long bytes, const char *which)
{
    if (!comm) return refuse(ncclInvalidArgument, "%s: NULL communicator", call);
    const int d = current_device();
    if (d != comm->device)
        return refuse(ncclInvalidUsage, "%s: rank %d's communicator is on GPU %d, the current device is %d", call,
                      comm->rank, comm->device, d);
    if (bytes > 0 && !sky_emu_driver_owns(p, (size_t)bytes))
        return refuse(ncclInvalidArgument, "%s: %s buffer %p (%lld bytes) is not inside one allocation of GPU %d", call,
                      which, p, bytes, d);
    return ncclSuccess;
}

static void run_group(void *ctx)
{
    const group_step *g = ctx;
    MPI_Request       req[MAX_OPS];
    MPI_Status        st[MAX_OPS];
    for (int i = 0; i < g->n; i++) {
        const p2p *o = &g->op[i];
        if (o->recv)
            MPI_Irecv(o->buf, (int)o->bytes, MPI_BYTE, o->peer, 0, g->mpi, &req[i]);
        else
            MPI_Isend(o->buf, (int)o->bytes, MPI_BYTE, o->peer, 0, g->mpi, &req[i]);
    }
    const int all = MPI_Waitall(g->n, req, st);
    /* TEST ONLY (tests/emu/run.sh's negative control of --use_usp): SKY_EMU_NCCL_FLIP=1 flips the lowest bit of the
     * first byte each group receives, as a transport that corrupts a block would */
    const char *flip = getenv("SKY_EMU_NCCL_FLIP");
    for (int i = 0; flip && strcmp(flip, "1") == 0 && i < g->n; i++)
        if (g->op[i].recv && g->op[i].bytes > 0) {
            ((unsigned char *)g->op[i].buf)[0] ^= 1;
            break;
        }
    for (int i = 0; i < g->n; i++) {
        int got = 0;
        if (!g->op[i].recv) continue;
        if (all != MPI_SUCCESS && st[i].MPI_ERROR != MPI_SUCCESS) { /* MPI_ERR_TRUNCATE: the peer sent more */
            fprintf(stderr,
                    "nccl double: fault: rank %d's ncclRecv from rank %d expected %lld bytes, rank %d sent "
                    "more\n",
                    g->rank, g->op[i].peer, g->op[i].bytes, g->op[i].peer);
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
        MPI_Get_count(&st[i], MPI_BYTE, &got);
        if (got != g->op[i].bytes) {
            fprintf(stderr,
                    "nccl double: fault: rank %d's ncclRecv from rank %d expected %lld bytes, rank %d sent %d\n",
                    g->rank, g->op[i].peer, g->op[i].bytes, g->op[i].peer, got);
            MPI_Abort(MPI_COMM_WORLD, 3);
        }
    }
}

/* Queue the pending group on its stream (now, or into the capture) and clear it. */
static ncclResult_t flush_group(void)
{
    if (pending.step.n == 0) return ncclSuccess;
    const CUresult r = sky_emu_stream_host((CUstream)pending.stream, run_group, &pending.step, sizeof pending.step);
    pending.step.n = 0;
    pending.comm = NULL;
    return r == CUDA_SUCCESS ? ncclSuccess
                             : refuse(ncclUnhandledCudaError, "ncclGroupEnd: the stream refused the step");
}

static ncclResult_t add_p2p(const char *call, int recv, void *buf, size_t count, ncclDataType_t t, int peer,
                            ncclComm_t comm, cudaStream_t stream)
{
    const int eb = type_bytes(t);
    if (!eb) return refuse(ncclInvalidArgument, "%s: unknown datatype %d", call, (int)t);
    const long long bytes = (long long)count * eb;
    if (bytes > INT32_MAX)
        return refuse(ncclInvalidArgument, "%s: %lld bytes: more than the double carries", call, bytes);
    ncclResult_t r = check(call, comm, buf, bytes, recv ? "receive" : "send");
    if (r != ncclSuccess) return r;
    if (peer < 0 || peer >= comm->size)
        return refuse(ncclInvalidArgument, "%s: peer %d of a communicator of %d ranks", call, peer, comm->size);
    if (pending.step.n > 0 && (pending.comm != comm || pending.stream != stream))
        return refuse(ncclInvalidUsage, "%s: one communicator and one stream per group (the double's limit)", call);
    if (pending.step.n == MAX_OPS)
        return refuse(ncclInvalidUsage, "%s: more than %d calls in one group", call, MAX_OPS);
    pending.comm = comm, pending.stream = stream;
    pending.step.mpi = comm->mpi, pending.step.rank = comm->rank;
    pending.step.op[pending.step.n++] = (p2p){recv, peer, buf, bytes};
    return group_depth > 0 ? ncclSuccess : flush_group();
}

ncclResult_t ncclSend(const void *sendbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream)
{
    return add_p2p("ncclSend", 0, (void *)sendbuff, count, datatype, peer, comm, stream);
}

ncclResult_t ncclRecv(void *recvbuff, size_t count, ncclDataType_t datatype, int peer, ncclComm_t comm,
                      cudaStream_t stream)
{
    return add_p2p("ncclRecv", 1, recvbuff, count, datatype, peer, comm, stream);
}

ncclResult_t ncclGroupStart(void)
{
    ++group_depth;
    return ncclSuccess;
}

ncclResult_t ncclGroupEnd(void)
{
    if (group_depth == 0) return refuse(ncclInvalidUsage, "ncclGroupEnd without ncclGroupStart");
    return --group_depth > 0 ? ncclSuccess : flush_group();
}

static void run_gather(void *ctx)
{
    const gather_step *g = ctx;
    MPI_Allgather(g->in_place ? MPI_IN_PLACE : g->send, (int)g->bytes, MPI_BYTE, g->recv, (int)g->bytes, MPI_BYTE,
                  g->mpi);
}

ncclResult_t ncclAllGather(const void *sendbuff, void *recvbuff, size_t sendcount, ncclDataType_t datatype,
                           ncclComm_t comm, cudaStream_t stream)
{
    const int eb = type_bytes(datatype);
    if (!eb) return refuse(ncclInvalidArgument, "ncclAllGather: unknown datatype %d", (int)datatype);
    if (group_depth > 0) return refuse(ncclInvalidUsage, "ncclAllGather inside a group (the double's limit)");
    const long long bytes = (long long)sendcount * eb;
    ncclResult_t    r = check("ncclAllGather", comm, sendbuff, bytes, "send");
    if (r == ncclSuccess) r = check("ncclAllGather", comm, recvbuff, bytes * comm->size, "receive");
    if (r != ncclSuccess) return r;
    if ((long long)comm->size * bytes > INT32_MAX)
        return refuse(ncclInvalidArgument, "ncclAllGather: %lld bytes: more than the double carries", bytes);
    const char *s = sendbuff, *rv = recvbuff;
    const int   in_place = s == rv + (size_t)comm->rank * (size_t)bytes;
    if (!in_place && bytes > 0 && s < rv + comm->size * bytes && rv < s + bytes)
        return refuse(ncclInvalidArgument, "ncclAllGather: send overlaps receive other than at rank %d's block",
                      comm->rank);
    const gather_step g = {comm->mpi, sendbuff, recvbuff, bytes, in_place};
    return sky_emu_stream_host((CUstream)stream, run_gather, &g, sizeof g) == CUDA_SUCCESS
               ? ncclSuccess
               : refuse(ncclUnhandledCudaError, "ncclAllGather: the stream refused the step");
}
