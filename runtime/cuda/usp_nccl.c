/* runtime/cuda/usp_nccl.c — the device collectives of --use_usp over NCCL (usp_nccl.h).
 *
 * NCCL is loaded when --use_usp first needs it (dlopen of libnccl.so.2, or of the file SKY_NCCL_LIBRARY names, e.g.
 * the one of a pip-installed nvidia-nccl; every function this module calls looked up at once), not linked: a plugin built where NCCL was found still loads, and runs single-GPU, on a machine without
 * it; only --use_usp then fails, saying which library or function is missing. Built with SKY_NCCL_LINKED (the
 * emulator's plugin, with tests/emu/nccl_double.c in place of libnccl), the table takes the linked functions. */
#include "cuda/usp_nccl.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#include <nccl.h>

#ifndef SKY_NCCL_LINKED
#include <dlfcn.h>
#endif

#include "core/dtype.h"

_Static_assert(SKY_NCCL_ID_BYTES == NCCL_UNIQUE_ID_BYTES, "usp_nccl.h: SKY_NCCL_ID_BYTES differs from nccl.h's");

/* The NCCL functions this module calls, with nccl.h's signatures. */
#define NCCL_FUNCTIONS(X)                                                                                \
    X(ncclGetVersion, ncclResult_t, (int *))                                                             \
    X(ncclGetErrorString, const char *, (ncclResult_t))                                                  \
    X(ncclGetLastError, const char *, (ncclComm_t))                                                      \
    X(ncclGetUniqueId, ncclResult_t, (ncclUniqueId *))                                                   \
    X(ncclCommInitRank, ncclResult_t, (ncclComm_t *, int, ncclUniqueId, int))                            \
    X(ncclCommDestroy, ncclResult_t, (ncclComm_t))                                                       \
    X(ncclGroupStart, ncclResult_t, (void))                                                              \
    X(ncclGroupEnd, ncclResult_t, (void))                                                                \
    X(ncclSend, ncclResult_t, (const void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t))     \
    X(ncclRecv, ncclResult_t, (void *, size_t, ncclDataType_t, int, ncclComm_t, cudaStream_t))           \
    X(ncclAllGather, ncclResult_t, (const void *, void *, size_t, ncclDataType_t, ncclComm_t, cudaStream_t))

static struct {
#define FIELD(name, ret, args) ret(*name) args;
    NCCL_FUNCTIONS(FIELD)
#undef FIELD
} api;
static pthread_once_t api_once = PTHREAD_ONCE_INIT;
static char           api_error[512]; /* empty once every function is found */

static void api_load(void)
{
#ifdef SKY_NCCL_LINKED
#define LINKED(name, ret, args) api.name = name;
    NCCL_FUNCTIONS(LINKED)
#undef LINKED
#else
    const char *path = getenv("SKY_NCCL_LIBRARY");
    if (!path || !*path) path = "libnccl.so.2";
    void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!lib) {
        const char *why = dlerror();
        snprintf(api_error, sizeof api_error,
                 "--use_usp with --backend cuda: NCCL could not be loaded: %s (install NCCL, e.g. libnccl2, put the "
                 "directory of libnccl.so.2 in LD_LIBRARY_PATH, or name the library in SKY_NCCL_LIBRARY)",
                 why ? why : path);
        return;
    }
#define LOOKUP(name, ret, args)                                                                                \
    if (!api_error[0] && !(*(void **)&api.name = dlsym(lib, #name)))                                         \
        snprintf(api_error, sizeof api_error,                                                                 \
                 "--use_usp with --backend cuda: the NCCL loaded (%s) lacks " #name " (too old: "   \
                 "NCCL 2.13 or later is needed)", path);
    NCCL_FUNCTIONS(LOOKUP)
#undef LOOKUP
    if (api_error[0]) dlclose(lib); /* else kept for the process's life */
#endif
}

/* NCCL's functions in api, loaded on first use; SKY_ERR with what is missing. */
static sky_status api_ready(sky_err *err)
{
    pthread_once(&api_once, api_load);
    return api_error[0] ? sky_fail(err, "%s", api_error) : SKY_OK;
}

struct sky_nccl {
    ncclComm_t comm;
    int        rank, size, device;
};

int sky_nccl_built(void) { return 1; }

int sky_nccl_version(void)
{
    sky_err err;
    int     v = 0;
    return api_ready(&err) == SKY_OK && api.ncclGetVersion(&v) == ncclSuccess ? v : 0;
}

/* The message of a failed NCCL call: its name, NCCL's error string, and NCCL's last error (what went wrong in
 * detail, often the transport's words), the rank and GPU when known. */
static sky_status nccl_failed(sky_err *err, ncclResult_t r, const char *call, const sky_nccl *c, ncclComm_t comm)
{
    const char *last = api.ncclGetLastError(comm);
    if (c)
        return sky_fail(err, "--use_usp: %s failed on rank %d of %d (GPU %d): %s%s%s", call, c->rank, c->size,
                        c->device, api.ncclGetErrorString(r), last && *last ? ": " : "", last ? last : "");
    return sky_fail(err, "--use_usp: %s failed: %s%s%s", call, api.ncclGetErrorString(r), last && *last ? ": " : "",
                    last ? last : "");
}

sky_status sky_nccl_make_id(unsigned char id[SKY_NCCL_ID_BYTES], sky_err *err)
{
    if (api_ready(err)) return SKY_ERR;
    ncclUniqueId       u;
    const ncclResult_t r = api.ncclGetUniqueId(&u);
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
    if (api_ready(err)) return SKY_ERR;
    const cudaError_t e = cudaSetDevice(device);
    if (e != cudaSuccess)
        return sky_fail(err, "--use_usp: rank %d of %d: cudaSetDevice(%d) failed: %s (%s)", rank, size, device,
                        cudaGetErrorName(e), cudaGetErrorString(e));
    sky_nccl *c = calloc(1, sizeof *c);
    if (!c) return sky_fail(err, "out of host memory");
    c->rank = rank, c->size = size, c->device = device;
    ncclUniqueId u;
    memcpy(u.internal, id, SKY_NCCL_ID_BYTES);
    const ncclResult_t r = api.ncclCommInitRank(&c->comm, size, u, rank);
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

int sky_nccl_device(const sky_nccl *c) { return c ? c->device : -1; }

static int nccl_type(sky_dtype t, ncclDataType_t *out, size_t *bytes)
{
    if (t == SKY_DTYPE_F32) return *out = ncclFloat32, *bytes = 4, 1;
    if (t == SKY_DTYPE_BF16) return *out = ncclBfloat16, *bytes = 2, 1;
    return 0;
}

#define NCCL_TRY(name, args)                                                  \
    do {                                                                      \
        const ncclResult_t r_ = api.name args;                                \
        if (r_ != ncclSuccess) return nccl_failed(err, r_, #name, c, c->comm); \
    } while (0)

sky_status sky_nccl_alltoall(sky_nccl *c, const void *send, void *recv, size_t count, sky_dtype t, void *stream,
                             sky_err *err)
{
    ncclDataType_t nt;
    size_t         eb;
    if (!nccl_type(t, &nt, &eb))
        return sky_fail(err, "--use_usp: all-to-all of %s elements (F32 or BF16 only)", sky_dtype_name(t));
    const cudaStream_t s = (cudaStream_t)stream;
    NCCL_TRY(ncclGroupStart, ());
    for (int p = 0; p < c->size; p++) {
        const ncclResult_t r1 = api.ncclSend((const char *)send + (size_t)p * count * eb, count, nt, p, c->comm, s);
        const ncclResult_t r2 =
            r1 == ncclSuccess ? api.ncclRecv((char *)recv + (size_t)p * count * eb, count, nt, p, c->comm, s) : r1;
        if (r2 != ncclSuccess) {
            api.ncclGroupEnd(); /* close the group; the failure reported is the first one */
            return nccl_failed(err, r2, r1 != ncclSuccess ? "ncclSend" : "ncclRecv", c, c->comm);
        }
    }
    NCCL_TRY(ncclGroupEnd, ());
    return SKY_OK;
}

sky_status sky_nccl_allgather(sky_nccl *c, const void *send, void *recv, size_t count, sky_dtype t, void *stream,
                              sky_err *err)
{
    ncclDataType_t nt;
    size_t         eb;
    if (!nccl_type(t, &nt, &eb))
        return sky_fail(err, "--use_usp: all-gather of %s elements (F32 or BF16 only)", sky_dtype_name(t));
    NCCL_TRY(ncclAllGather, (send, recv, count, nt, c->comm, (cudaStream_t)stream));
    return SKY_OK;
}

void sky_nccl_close(sky_nccl *c)
{
    if (!c) return;
    api.ncclCommDestroy(c->comm);
    free(c);
}
