/* tests/emu/nccl_test.c — --use_usp's device collectives (runtime/cuda/usp_nccl.c) between emulated GPUs, one per
 * rank process, through the NCCL double (nccl_double.c) over MPI; run by nccl_test.sh under mpirun -np 2 and 3.
 *
 * The communicator is made as the binary makes it (dist/usp_cuda.c over a plugin table holding the module's calls:
 * the local GPU from the launcher's local rank, the id from rank 0 broadcast with MPI), then on device buffers:
 *   - all-to-all of F32 (5 per block) and BF16 (3 per block; bit patterns) blocks: rank r's block p holds values
 *     naming (r, p, i), so a block sent to the wrong rank, landing at the wrong place, or cut short shows;
 *   - all-gather of F32, out of place and in place (send = recv + rank count);
 *   - an all-to-all captured into a CUDA Graph: nothing moves at capture; after the send buffer changes, each
 *     replay carries the buffer's values at that point of the stream;
 *   - refusals: a host (not device) buffer, an element type other than F32 / BF16.
 * Usage: nccl_test            (every rank prints "ok ..." / "FAIL ..." lines, exit 1 on a failure)
 *        nccl_test open       (only the communicator: the no-GPU refusal, nccl_test.sh)
 *        nccl_test plugin SO  (the communicator through the ABI of an emulated plugin, SO: cuda_program.c's nccl_*)
 *        nccl_test cfg        (on 2 N ranks: the CFG axis's two groups of N, dist/usp.h sky_usp_split_cfg, each with
 *                              its own communicator; every test above within each group)
 *        nccl_test mismatch   (an all-to-all whose block size differs per rank: the double stops the run, exit 3)
 */
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

#include "cuda/usp_nccl.h"
#include "dist/usp_cuda.h"

static int rank, size, failed;
static int world; /* this process's MPI world rank: its GPU (one machine) */
static int group; /* the CFG group (cfg mode), else 0: offsets every value, so a block from the other group shows */

#define CHECK(cond, ...)                                \
    do {                                                \
        if (cond) {                                     \
            printf("ok   rank %d of %d: ", rank, size); \
        } else {                                        \
            printf("FAIL rank %d of %d: ", rank, size); \
            failed = 1;                                 \
        }                                               \
        printf(__VA_ARGS__);                            \
        printf("\n");                                   \
    } while (0)

#define CU(call)                                       \
    do {                                               \
        if ((call) != CUDA_SUCCESS) {                  \
            printf("FAIL rank %d: %s\n", rank, #call); \
            exit(1);                                   \
        }                                              \
    } while (0)

/* The plugin's table as far as dist/usp_cuda.c uses it (runtime/cuda/cuda_program.c holds the same calls). */
static int devices(void)
{
    int n = 0;
    return cuInit(0) == CUDA_SUCCESS && cuDeviceGetCount(&n) == CUDA_SUCCESS ? n : 0;
}

static sky_status open_comm(void **out, int device, int r, int n, const unsigned char *id, sky_err *err)
{
    sky_nccl        *c = NULL;
    const sky_status s = sky_nccl_open(&c, device, r, n, id, err);
    *out = c;
    return s;
}

static void close_comm(void *c) { sky_nccl_close(c); }

static sky_status set_device(int device, sky_err *err)
{
    CUdevice  d;
    CUcontext ctx;
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGet(&d, device) != CUDA_SUCCESS ||
        cuDevicePrimaryCtxRetain(&ctx, d) != CUDA_SUCCESS || cuCtxSetCurrent(ctx) != CUDA_SUCCESS)
        return sky_fail(err, "no emulated GPU %d", device);
    return SKY_OK;
}

static float value(int from, int block, int i) { return (float)(group * 50000 + from * 1000 + block * 100 + i); }

static CUdeviceptr dev_alloc(size_t bytes)
{
    CUdeviceptr p = 0;
    CU(cuMemAlloc(&p, bytes));
    return p;
}

static void test_alltoall_f32(sky_nccl *c, CUstream s)
{
    enum { COUNT = 5 };
    const size_t n = (size_t)size * COUNT;
    float       *h = malloc(n * sizeof *h), *back = malloc(n * sizeof *back);
    for (int p = 0; p < size; p++)
        for (int i = 0; i < COUNT; i++) h[p * COUNT + i] = value(rank, p, i);
    CUdeviceptr send = dev_alloc(n * 4), recv = dev_alloc(n * 4);
    CU(cuMemcpyHtoD(send, h, n * 4));
    sky_err          err;
    const sky_status st = sky_nccl_alltoall(c, (void *)send, (void *)recv, COUNT, SKY_DTYPE_F32, s, &err);
    CU(cuStreamSynchronize(s));
    CU(cuMemcpyDtoHAsync(back, recv, n * 4, s));
    int bad = st != SKY_OK;
    for (int p = 0; p < size && !bad; p++)
        for (int i = 0; i < COUNT; i++) bad |= back[p * COUNT + i] != value(p, rank, i);
    CHECK(!bad, "all-to-all F32, %d blocks of %d: block p = rank p's block %d%s%s", size, COUNT, rank, st ? ": " : "",
          st ? err.msg : "");
    free(h), free(back);
    cuMemFree(send), cuMemFree(recv);
}

static void test_alltoall_bf16(sky_nccl *c, CUstream s)
{
    enum { COUNT = 3 };
    const size_t n = (size_t)size * COUNT;
    uint16_t    *h = malloc(n * 2), *back = malloc(n * 2);
    for (int p = 0; p < size; p++)
        for (int i = 0; i < COUNT; i++) h[p * COUNT + i] = (uint16_t)(0x3f00 + group * 0x400 + rank * 64 + p * 8 + i);
    CUdeviceptr send = dev_alloc(n * 2), recv = dev_alloc(n * 2);
    CU(cuMemcpyHtoD(send, h, n * 2));
    sky_err          err;
    const sky_status st = sky_nccl_alltoall(c, (void *)send, (void *)recv, COUNT, SKY_DTYPE_BF16, s, &err);
    CU(cuMemcpyDtoHAsync(back, recv, n * 2, s));
    int bad = st != SKY_OK;
    for (int p = 0; p < size && !bad; p++)
        for (int i = 0; i < COUNT; i++)
            bad |= back[p * COUNT + i] != (uint16_t)(0x3f00 + group * 0x400 + p * 64 + rank * 8 + i);
    CHECK(!bad, "all-to-all BF16, %d blocks of %d: the bits of rank p's block %d%s%s", size, COUNT, rank,
          st ? ": " : "", st ? err.msg : "");
    free(h), free(back);
    cuMemFree(send), cuMemFree(recv);
}

static void test_allgather(sky_nccl *c, CUstream s, int in_place)
{
    enum { COUNT = 4 };
    const size_t n = (size_t)size * COUNT;
    float        mine[COUNT], *back = malloc(n * 4);
    for (int i = 0; i < COUNT; i++) mine[i] = value(rank, 7, i);
    CUdeviceptr recv = dev_alloc(n * 4), send = in_place ? recv + (size_t)rank * COUNT * 4 : dev_alloc(COUNT * 4);
    CU(cuMemcpyHtoD(send, mine, sizeof mine));
    sky_err          err;
    const sky_status st = sky_nccl_allgather(c, (void *)send, (void *)recv, COUNT, SKY_DTYPE_F32, s, &err);
    CU(cuMemcpyDtoHAsync(back, recv, n * 4, s));
    int bad = st != SKY_OK;
    for (int p = 0; p < size && !bad; p++)
        for (int i = 0; i < COUNT; i++) bad |= back[p * COUNT + i] != value(p, 7, i);
    CHECK(!bad, "all-gather F32%s, %d x %d: block p = rank p's%s%s", in_place ? " in place" : "", size, COUNT,
          st ? ": " : "", st ? err.msg : "");
    free(back);
    if (!in_place) cuMemFree(send);
    cuMemFree(recv);
}

/* Captured: the graph moves the send buffer's values at replay, not at capture. */
static void test_captured(sky_nccl *c, CUstream s)
{
    enum { COUNT = 2 };
    const size_t n = (size_t)size * COUNT;
    float       *h = malloc(n * 4), *back = malloc(n * 4);
    CUdeviceptr  send = dev_alloc(n * 4), recv = dev_alloc(n * 4);
    for (size_t i = 0; i < n; i++) h[i] = -1.0f;
    CU(cuMemcpyHtoD(send, h, n * 4));
    CU(cuMemcpyHtoD(recv, h, n * 4));
    CU(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
    sky_err          err;
    const sky_status st = sky_nccl_alltoall(c, (void *)send, (void *)recv, COUNT, SKY_DTYPE_F32, s, &err);
    CUgraph          g;
    CUgraphExec      e;
    CU(cuStreamEndCapture(s, &g));
    CU(cuGraphInstantiate(&e, g, 0));
    CU(cuMemcpyDtoHAsync(back, recv, n * 4, s));
    int untouched = st == SKY_OK;
    for (size_t i = 0; i < n; i++) untouched &= back[i] == -1.0f;
    CHECK(untouched, "captured all-to-all: nothing moves at capture%s%s", st ? ": " : "", st ? err.msg : "");
    for (int round = 1; round <= 2; round++) {
        for (int p = 0; p < size; p++)
            for (int i = 0; i < COUNT; i++) h[p * COUNT + i] = value(rank, p, i) + (float)(round * 10000);
        CU(cuMemcpyHtoD(send, h, n * 4));
        CU(cuGraphLaunch(e, s));
        CU(cuMemcpyDtoHAsync(back, recv, n * 4, s));
        int bad = 0;
        for (int p = 0; p < size; p++)
            for (int i = 0; i < COUNT; i++) bad |= back[p * COUNT + i] != value(p, rank, i) + (float)(round * 10000);
        CHECK(!bad, "captured all-to-all, replay %d: the blocks the send buffer held at the replay", round);
    }
    cuGraphExecDestroy(e), cuGraphDestroy(g);
    free(h), free(back);
    cuMemFree(send), cuMemFree(recv);
}

static void test_refusals(sky_nccl *c, CUstream s)
{
    float       host[16] = {0};
    sky_err     err;
    CUdeviceptr recv = dev_alloc(sizeof host);
    sky_status  st = sky_nccl_alltoall(c, host, (void *)recv, 1, SKY_DTYPE_F32, s, &err);
    CHECK(st == SKY_ERR && strstr(err.msg, "ncclSend failed on rank") && strstr(err.msg, "not inside one allocation"),
          "a host buffer is refused: %s", st ? err.msg : "(accepted)");
    st = sky_nccl_allgather(c, (void *)recv, (void *)recv, 1, SKY_DTYPE_F16, s, &err);
    CHECK(st == SKY_ERR && strstr(err.msg, "F32 or BF16 only"), "F16 is refused: %s", st ? err.msg : "(accepted)");
    cuMemFree(recv);
}

int main(int argc, char **argv)
{
    sky_usp *u = NULL;
    sky_err  err;
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (sky_usp_start(&u, &argc, &argv, &err)) {
        printf("FAIL %s\n", err.msg);
        return 1;
    }
    rank = world = sky_usp_world_rank(u), size = sky_usp_world_size(u);
    if (argc >= 2 && strcmp(argv[1], "cfg") == 0) {
        if (sky_usp_split_cfg(u, &err)) {
            printf("FAIL rank %d: %s\n", rank, err.msg);
            return 1;
        }
        rank = sky_usp_comm(u)->rank, size = sky_usp_comm(u)->size, group = sky_usp_comm(u)->cfg_group;
    }
    const sky_cuda_plugin table = {.devices = devices,
                                   .nccl_id = sky_nccl_make_id,
                                   .nccl_open = open_comm,
                                   .nccl_close = close_comm,
                                   .set_device = set_device};
    int   device = -1;
    void *comm = NULL;
    if (argc >= 3 && strcmp(argv[1], "plugin") == 0) { /* the same through an emulated plugin's table */
        void                  *so = dlopen(argv[2], RTLD_NOW | RTLD_LOCAL);
        const sky_cuda_plugin *pl = so ? dlsym(so, SKY_CUDA_PLUGIN_SYMBOL) : NULL;
        if (!pl || pl->abi != SKY_CUDA_PLUGIN_ABI) {
            printf("FAIL rank %d: %s: no plugin table of ABI %d (%s)\n", rank, argv[2], SKY_CUDA_PLUGIN_ABI,
                   so ? "wrong ABI" : dlerror());
            return 1;
        }
        const sky_status st = sky_usp_cuda_open(u, pl, &device, &comm, &err);
        /* set_device (called by sky_usp_cuda_open) refuses a GPU the rank does not have, naming it */
        sky_err   e2;
        const int refused = pl->set_device(size, &e2) == SKY_ERR && strstr(e2.msg, "does not exist") != NULL;
        CHECK(st == SKY_OK && device == rank && comm && refused && pl->use_comm,
              "through the plugin's ABI %d (set_device, nccl_id, nccl_open; GPU %d refused: %s): GPU %d%s%s", pl->abi,
              size, refused ? "yes" : "no", device, st ? ": " : "", st ? err.msg : "");
        if (comm) pl->nccl_close(comm);
        const int all = sky_usp_all_ok(u, !failed);
        sky_usp_end(u);
        return all ? 0 : 1;
    }
    if (sky_usp_cuda_open(u, &table, &device, &comm, &err)) {
        printf("refused rank %d of %d: %s\n", rank, size, err.msg);
        sky_usp_end(u);
        return 2;
    }
    sky_nccl *c = comm;
    CHECK(device == world && sky_nccl_rank(c) == rank && sky_nccl_size(c) == size,
          "communicator on GPU %d, NCCL rank %d of %d, group %d (NCCL %d)", device, sky_nccl_rank(c), sky_nccl_size(c),
          group, sky_nccl_version());
    if (argc >= 2 && strcmp(argv[1], "mismatch") == 0) {
        CUstream    s;
        CUdeviceptr send = dev_alloc(64 * 4), recv = dev_alloc(64 * 4);
        CU(cuStreamCreate(&s, 0));
        CU(cuMemsetD8(send, 0, 64 * 4));
        const sky_status st =
            sky_nccl_alltoall(c, (void *)send, (void *)recv, 2 + (size_t)rank, SKY_DTYPE_F32, s, &err);
        CHECK(0, "the mismatched all-to-all was not stopped (%s)", st ? err.msg : "accepted");
    } else if (argc < 2 || strcmp(argv[1], "open") != 0) {
        CUstream s;
        CU(cuStreamCreate(&s, 0));
        test_alltoall_f32(c, s);
        test_alltoall_bf16(c, s);
        test_allgather(c, s, 0);
        test_allgather(c, s, 1);
        test_captured(c, s);
        test_refusals(c, s);
        cuStreamDestroy(s);
    }
    sky_nccl_close(c);
    const int all = sky_usp_all_ok(u, !failed);
    sky_usp_end(u);
    return all ? 0 : 1;
}
