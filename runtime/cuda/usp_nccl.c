/* runtime/cuda/usp_nccl.c — the device collectives of --use_usp over NCCL (usp_nccl.h). */
#include "cuda/usp_nccl.h"

#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <nccl.h>

#include "core/dtype.h"

_Static_assert(SKY_NCCL_ID_BYTES == NCCL_UNIQUE_ID_BYTES, "usp_nccl.h: SKY_NCCL_ID_BYTES differs from nccl.h's");

struct sky_nccl {
    ncclComm_t comm;
    int        rank, size, device;
};

int sky_nccl_built(void) { return 1; }

int sky_nccl_version(void)
{
    int v = 0;
    return ncclGetVersion(&v) == ncclSuccess ? v : 0;
}

/* The message of a failed NCCL call: its name, NCCL's error string, and NCCL's last error (what went wrong in
 * detail, often the transport's words), the rank and GPU when known. */
static sky_status nccl_failed(sky_err *err, ncclResult_t r, const char *call, const sky_nccl *c, ncclComm_t comm)
{
    const char *last = ncclGetLastError(comm);
    if (c)
        return sky_fail(err, "--use_usp: %s failed on rank %d of %d (GPU %d): %s%s%s", call, c->rank, c->size,
                        c->device, ncclGetErrorString(r), last && *last ? ": " : "", last ? last : "");
    return sky_fail(err, "--use_usp: %s failed: %s%s%s", call, ncclGetErrorString(r), last && *last ? ": " : "",
                    last ? last : "");
}

sky_status sky_nccl_make_id(unsigned char id[SKY_NCCL_ID_BYTES], sky_err *err)
{
    ncclUniqueId       u;
    const ncclResult_t r = ncclGetUniqueId(&u);
    if (r != ncclSuccess) return nccl_failed(err, r, "ncclGetUniqueId", NULL, NULL);
    memcpy(id, u.internal, SKY_NCCL_ID_BYTES);
    return SKY_OK;
}

sky_status sky_nccl_open(sky_nccl **out, int device, int rank, int size, const unsigned char id[SKY_NCCL_ID_BYTES],
                         sky_err *err)
{
    *out = NULL;
    if (size < 1 || rank < 0 || rank >= size)
        return sky_fail(err, "--use_usp: NCCL rank %d of %d: not a rank of the communicator", rank, size);
    const cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess)
        return sky_fail(err, "--use_usp: rank %d of %d: cudaSetDevice(%d) failed: %s (%s)", rank, size, device,
                        cudaGetErrorName(e), cudaGetErrorString(e));
    sky_nccl *c = calloc(1, sizeof *c);
    if (!c) return sky_fail(err, "out of host memory");
    c->rank = rank, c->size = size, c->device = device;
    ncclUniqueId u;
    memcpy(u.internal, id, SKY_NCCL_ID_BYTES);
    const ncclResult_t r = ncclCommInitRank(&c->comm, size, u, rank);
    if (r != ncclSuccess) {
        const sky_status s = nccl_failed(err, r, "ncclCommInitRank", c, NULL);
        free(c);
        return s;
    }
    *out = c;
    return SKY_OK;
}

int sky_nccl_rank(const sky_nccl *c) { return c->rank; }

int sky_nccl_size(const sky_nccl *c) { return c->size; }

static int nccl_type(sky_dtype t, ncclDataType_t *out, size_t *bytes)
{
    if (t == SKY_DTYPE_F32) return *out = ncclFloat32, *bytes = 4, 1;
    if (t == SKY_DTYPE_BF16) return *out = ncclBfloat16, *bytes = 2, 1;
    return 0;
}

#define NCCL_TRY(call)                                                         \
    do {                                                                       \
        const ncclResult_t r_ = (call);                                        \
        if (r_ != ncclSuccess) return nccl_failed(err, r_, #call, c, c->comm); \
    } while (0)

sky_status sky_nccl_alltoall(sky_nccl *c, const void *send, void *recv, size_t count, sky_dtype t, void *stream,
                             sky_err *err)
{
    ncclDataType_t nt;
    size_t         eb;
    if (!nccl_type(t, &nt, &eb))
        return sky_fail(err, "--use_usp: all-to-all of %s elements (F32 or BF16 only)", sky_dtype_name(t));
    const cudaStream_t s = (cudaStream_t)stream;
    NCCL_TRY(ncclGroupStart());
    for (int p = 0; p < c->size; p++) {
        const ncclResult_t r1 = ncclSend((const char *)send + (size_t)p * count * eb, count, nt, p, c->comm, s);
        const ncclResult_t r2 =
            r1 == ncclSuccess ? ncclRecv((char *)recv + (size_t)p * count * eb, count, nt, p, c->comm, s) : r1;
        if (r2 != ncclSuccess) {
            ncclGroupEnd(); /* close the group; the failure reported is the first one */
            return nccl_failed(err, r2, r1 != ncclSuccess ? "ncclSend" : "ncclRecv", c, c->comm);
        }
    }
    NCCL_TRY(ncclGroupEnd());
    return SKY_OK;
}

sky_status sky_nccl_allgather(sky_nccl *c, const void *send, void *recv, size_t count, sky_dtype t, void *stream,
                              sky_err *err)
{
    ncclDataType_t nt;
    size_t         eb;
    if (!nccl_type(t, &nt, &eb))
        return sky_fail(err, "--use_usp: all-gather of %s elements (F32 or BF16 only)", sky_dtype_name(t));
    NCCL_TRY(ncclAllGather(send, recv, count, nt, c->comm, (cudaStream_t)stream));
    return SKY_OK;
}

void sky_nccl_close(sky_nccl *c)
{
    if (!c) return;
    ncclCommDestroy(c->comm);
    free(c);
}
