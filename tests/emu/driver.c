/* tests/emu/driver.c — the CUDA driver, runtime, cuBLASLt and NVRTC calls of runtime/, over host
 * memory and the emulated GPU of emu.c (README.md).
 *
 * Only what the runtime calls is here, each with the documented semantics it relies on, and each
 * checking its arguments the way the real library does where a wrong one is a likely bug:
 *   - device memory is host memory; every allocation is tracked, and copies, memsets and cp.async
 *     reads must fall inside one allocation;
 *   - a kernel launch checks grid and block limits, __launch_bounds__, and dynamic shared memory
 *     against 48 KiB or the opt-in set by cuFuncSetAttribute (at most 227 KiB, as on Hopper);
 *   - the stream is synchronous; stream capture records launches, GEMMs (their parameters copied, as the
 *     driver does) and async host-to-device copies from pinned memory, with their dependencies: a second
 *     stream joins a capture by waiting for an event recorded in it and must be joined back before it ends
 *     (else CUDA_ERROR_STREAM_CAPTURE_UNJOINED); a graph launch replays them in capture order, or with
 *     SKY_EMU_COPY_ORDER=late|early the copies, and the kernels of a stream that joined the capture, as late or as
 *     early as their dependencies allow (graph_run), so a missing wait changes the result; anything else on a capturing stream fails as the driver's
 *     THREAD_LOCAL capture mode would;
 *   - cuBLASLt: column-major layouts with any ld, transposes, fp32 and bf16 types, the BIAS and
 *     GELU_BIAS epilogues (GELU in the tanh form: see runtime/cuda/gemm.h; a GPU run measures which form
 *     cuBLASLt uses), fp32 accumulation;
 *   - NVRTC "compiles" a source by finding the emulated module registered for its file name and
 *     checking that the text is the one the module was built from (xxh64), so the runtime's kernel
 *     cache and module loading run as on a GPU; with SKY_EMU_NVRTC=no-headers it fails as NVRTC does
 *     without the toolkit's headers;
 *   - cuModuleLoadData also takes a real fat binary (nvcc -fatbin, built into the plugin: runtime/cuda/
 *     fatbin.h): its layout is checked, and its bytes map to the host-compiled kernels of the text it was
 *     compiled from (load_fatbin below says what that checks and what it cannot).
 *   - another emulated library's step on a stream (sky_emu_stream_host: the NCCL double, nccl_double.c) runs at
 *     once (after the stream's queued copies), or, on a capturing stream, is captured as a node with its
 *     dependencies and runs where they allow when the graph is replayed;
 *   - events complete when recorded (the stream is synchronous; with SKY_EMU_COPY_ORDER=late, when their
 *     record, queued behind a copy, runs): their elapsed time is the host's; cuStreamWaitEvent orders
 *     streams (and, in a capture, nodes);
 * The device reports compute capability 9.0 and 132 SMs, so the runtime picks its sm_90a paths.
 * SKY_EMU_DEVICES=N (1 to 8, default 1) makes N such devices, for --use_cfg_parallel: each thread has its
 * current device (cuCtxSetCurrent, cudaSetDevice; none until it sets one, as in the driver), each
 * allocation belongs to the device current at cuMemAlloc, and a copy, memset, GEMM operand or cp.async read
 * on another device's memory fails (device memory is not shared without peer access, which the runtime
 * never enables). Calls from several threads are served one at a time (one lock around every call).
 * SKY_EMU_DEVICE_BYTES=N (bytes, default 80 GiB) is each device's total memory: cuMemGetInfo's total, its free
 * (the total less what is allocated on it), cuDeviceTotalMem, and where cuMemAlloc runs out of memory; N0,N1,...
 * gives device d the d-th (the last for the devices after), so that one rank's GPU can be the small one.
 */
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cublasLt.h>
#include <cuda.h>
#include <cuda_runtime_api.h>
#include <nvrtc.h>
#include <xxhash.h>

#include "emu.h"

#define TOTAL_BYTES(d) total_bytes[d]       /* SKY_EMU_DEVICE_BYTES */
#define SMEM_DEFAULT  (48u << 10)
#define SMEM_OPTIN    232448u                  /* 227 KiB: H100 / H200 */

/* ---- one call at a time, devices --------------------------------------------------------------- */

/* Every entry point below starts with EMU_SERIAL(): the lock is held until it returns (recursive: an
 * entry point may call another). */
static pthread_mutex_t serial = PTHREAD_RECURSIVE_MUTEX_INITIALIZER_NP;
static void serial_end(int *unused) { (void)unused; pthread_mutex_unlock(&serial); }
#define EMU_SERIAL() int emu_serial_ __attribute__((cleanup(serial_end), unused)) = (pthread_mutex_lock(&serial), 0)

#define MAX_DEVICES 8
static int n_devices = 1;                      /* SKY_EMU_DEVICES */
static size_t total_bytes[MAX_DEVICES];        /* SKY_EMU_DEVICE_BYTES, per device (cuInit) */
static int primary_ctx[MAX_DEVICES];           /* device d's primary context is &primary_ctx[d] */
static _Thread_local int current = -1;         /* this thread's current device; -1: none yet */

/* ---- allocations ------------------------------------------------------------------------------ */

typedef struct alloc { unsigned char *p; size_t n; int device; } alloc;
static alloc *allocs;
static int n_allocs, cap_allocs;
static size_t allocated[MAX_DEVICES];

/* The allocation holding [p, p + n) on the current device; NULL (and a line saying so when the bytes are
 * another device's) when there is none. */
static const alloc *find_alloc(const void *p, size_t n)
{
    const unsigned char *c = p;
    for (int i = 0; i < n_allocs; i++)
        if (c >= allocs[i].p && c + n <= allocs[i].p + allocs[i].n && c + n >= c) {
            if (allocs[i].device == current) return &allocs[i];
            fprintf(stderr, "cuda emulator: device %d used %zu bytes of device %d's memory\n", current, n,
                    allocs[i].device);
            return NULL;
        }
    return NULL;
}

int sky_emu_driver_owns(const void *p, size_t n)
{
    return find_alloc(p, n) != NULL;
}

static CUresult mem_alloc(CUdeviceptr *out, size_t n)
{
    if (!out || n == 0) return CUDA_ERROR_INVALID_VALUE;
    if (current < 0) return CUDA_ERROR_INVALID_CONTEXT;
    if (n > TOTAL_BYTES(current) - allocated[current]) return CUDA_ERROR_OUT_OF_MEMORY;
    if (n_allocs == cap_allocs) {
        cap_allocs = cap_allocs ? 2 * cap_allocs : 64;
        alloc *a = realloc(allocs, (size_t)cap_allocs * sizeof *a);
        if (!a) return CUDA_ERROR_OUT_OF_MEMORY;
        allocs = a;
    }
    unsigned char *p = aligned_alloc(256, (n + 255) / 256 * 256);
    if (!p) return CUDA_ERROR_OUT_OF_MEMORY;
    memset(p, 0xa5, n);                        /* device memory is not zeroed */
    allocs[n_allocs++] = (alloc){ p, n, current };
    allocated[current] += n;
    *out = (CUdeviceptr)(uintptr_t)p;
    return CUDA_SUCCESS;
}

/* ---- streams, capture, graphs ------------------------------------------------------------------ */

typedef struct lt_desc {
    cublasComputeType_t compute;
    cudaDataType_t      scale;
    int32_t             transa, transb;
    uint32_t            epilogue;
    const void         *bias;
    int32_t             bias_type;
} lt_desc;

typedef struct lt_layout {
    cudaDataType_t type;
    uint64_t       rows, cols;
    int64_t        ld;
} lt_layout;

typedef struct gemm_args {
    lt_desc     d;
    lt_layout   a, b, c, dd;
    float       alpha, beta;
    const void *A, *B, *C;
    void       *D;
} gemm_args;

static void run_gemm(const gemm_args *g);

/* A captured op: a kernel, a GEMM or (is_copy) an async host-to-device copy from pinned memory; deps: the nodes it
 * waits for (the capturing stream's last nodes when it was captured, joined through events). second: a kernel
 * captured on a stream that joined the capture (not the one it began on: the copy stream's fp8 expansions,
 * runtime/cuda/offload.h), which SKY_EMU_COPY_ORDER moves as it moves the copies. */
typedef struct node {
    int                   is_gemm, is_copy, second;
    const sky_emu_kernel *k;
    unsigned              grid[3], block[3], smem;
    unsigned char        *argbuf;              /* the parameters, copied */
    void                **args;
    gemm_args            *gemm;
    void                 *dst;                 /* is_copy: n bytes from src to dst */
    const void           *src;
    size_t                n;
    int                  *deps, ndeps;
    void                (*host)(void *ctx);     /* a host step (sky_emu_stream_host): host(argbuf) */
    size_t                host_bytes;           /* its context's bytes, in argbuf */
} node;

typedef struct graph { node *n; int count, cap; } graph;

/* SKY_EMU_COPY_ORDER: when an async host-to-device copy runs relative to the kernels it does not wait for (and
 * that do not wait for it). Unset: in issue order (eagerly: at once; a graph: its capture order). late: as late as
 * the dependencies allow (eagerly: a copy waits in its stream's queue until something waits for it, an op of
 * its own stream runs, or the stream is synchronised; a graph: a copy node runs only when no kernel node is
 * ready), so a kernel that reads a copy's destination without waiting for it reads what was there before. early:
 * as early as they allow (a graph: a ready copy node runs before any ready kernel node), so a copy that does not
 * wait for the kernels still reading its destination overwrites it under them. Eagerly, early is the same as
 * unset: the kernels issued before a copy have run when it is issued (the stream is synchronous). In a graph, a
 * kernel node of a stream that joined the capture (node.second: --weight_dtype fp8's expansions into the block
 * slots on the copy stream) moves as a copy does; eagerly such a kernel runs when launched, in issue order. */
enum { ORDER_ISSUE = 0, ORDER_LATE, ORDER_EARLY };
static int copy_order;

/* An op queued on a stream (copy_order late, eager): a copy, an event's record, a wait for an event. */
typedef struct queued {
    int                 kind;              /* Q_COPY, Q_RECORD, Q_WAIT */
    void               *dst;
    const void         *src;
    size_t              n;
    struct CUevent_st  *e;
    long                seq;               /* Q_RECORD: the event's record number */
} queued;
enum { Q_COPY, Q_RECORD, Q_WAIT };

struct CUstream_st {
    int     capturing;                     /* in a capture (begun on it, or joined through an event) */
    graph  *g;                             /* the capture's graph (shared by the streams that joined it) */
    long    cap_id;                        /* the capture's number */
    int     origin;                        /* the capture was begun on this stream */
    int    *tail, ntail, cap_tail;         /* capturing: the nodes the next captured op depends on */
    queued *q;                             /* eager, copy_order late: ops not yet run, in order */
    int     qhead, qn, qcap;
};

/* Events: the stream is synchronous, so an event recorded on it completes at once, at the host's monotonic
 * clock; cuEventElapsedTime is the host time between two records (what the emulated kernels took to run here,
 * not a GPU's). A record queued behind a copy (copy_order late) completes when it runs (pending until then).
 * Recorded on a capturing stream, it holds the capture's current nodes, which a stream waiting for it depends on
 * (joining the capture if it was not in it). */
struct CUevent_st {
    int                 recorded;
    double              t;
    struct CUstream_st *pending;           /* its last record is queued on this stream */
    long                seq;               /* its records so far */
    long                cap_id;            /* recorded in capture cap_id (0: not) */
    int                *nodes, nnodes;     /* ... after these nodes */
};

static struct CUstream_st default_stream;
static struct CUstream_st **streams;      /* every stream made (for the end of a capture) */
static int n_streams, cap_streams;
static long captures_begun;

static struct CUstream_st *stream_of(CUstream s)
{
    return s ? (struct CUstream_st *)s : &default_stream;
}

static CUresult graph_add(graph *g, node n)
{
    if (g->count == g->cap) {
        g->cap = g->cap ? 2 * g->cap : 64;
        node *m = realloc(g->n, (size_t)g->cap * sizeof *m);
        if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
        g->n = m;
    }
    g->n[g->count++] = n;
    return CUDA_SUCCESS;
}

/* n captured on st: it depends on st's tail, and becomes the tail. */
static CUresult capture_add(struct CUstream_st *st, node n)
{
    n.ndeps = st->ntail;
    n.deps = malloc((size_t)(st->ntail > 0 ? st->ntail : 1) * sizeof *n.deps);
    if (!n.deps) return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(n.deps, st->tail, (size_t)st->ntail * sizeof *n.deps);
    if (graph_add(st->g, n) != CUDA_SUCCESS) return CUDA_ERROR_OUT_OF_MEMORY;
    if (st->cap_tail < 1) {
        st->tail = realloc(st->tail, 16 * sizeof *st->tail);
        if (!st->tail) return CUDA_ERROR_OUT_OF_MEMORY;
        st->cap_tail = 16;
    }
    st->tail[0] = st->g->count - 1, st->ntail = 1;
    return CUDA_SUCCESS;
}

/* st's tail gains nodes[n] (a wait for an event recorded in the same capture). */
static CUresult tail_join(struct CUstream_st *st, const int *nodes, int n)
{
    for (int i = 0; i < n; i++) {
        int seen = 0;
        for (int k = 0; k < st->ntail; k++) seen |= st->tail[k] == nodes[i];
        if (seen) continue;
        if (st->ntail == st->cap_tail) {
            const int c = st->cap_tail ? 2 * st->cap_tail : 16;
            int *t = realloc(st->tail, (size_t)c * sizeof *t);
            if (!t) return CUDA_ERROR_OUT_OF_MEMORY;
            st->tail = t, st->cap_tail = c;
        }
        st->tail[st->ntail++] = nodes[i];
    }
    return CUDA_SUCCESS;
}

static void graph_free(graph *g)
{
    if (!g) return;
    for (int i = 0; i < g->count; i++) {
        free(g->n[i].argbuf);
        free(g->n[i].args);
        free(g->n[i].gemm);
        free(g->n[i].deps);
    }
    free(g->n);
    free(g);
}

static void node_run(const node *n)
{
    if (n->is_copy) memcpy(n->dst, n->src, n->n);
    else if (n->host) n->host(n->argbuf);
    else if (n->is_gemm) run_gemm(n->gemm);
    else sky_emu_launch(n->k, n->grid[0], n->grid[1], n->grid[2], n->block[0], n->block[1], n->block[2], n->smem,
                        n->args);
}

/* A graph's nodes in an order its dependencies allow: capture order, or (copy_order) the copies as late or as
 * early as they can run. */
static void graph_run(const graph *g)
{
    if (copy_order == ORDER_ISSUE) {
        for (int i = 0; i < g->count; i++) node_run(&g->n[i]);
        return;
    }
    char *done = calloc((size_t)(g->count > 0 ? g->count : 1), 1);
    if (!done) { fprintf(stderr, "cuda emulator: out of memory running a graph\n"); exit(3); }
    for (int left = g->count; left > 0; left--) {
        int pick = -1, other = -1;
        for (int i = 0; i < g->count && pick < 0; i++) {
            int ready = !done[i];
            for (int d = 0; ready && d < g->n[i].ndeps; d++) ready = done[g->n[i].deps[d]];
            if (!ready) continue;
            if ((g->n[i].is_copy || g->n[i].second) == (copy_order == ORDER_EARLY)) pick = i;
            else if (other < 0) other = i;
        }
        if (pick < 0) pick = other;
        node_run(&g->n[pick]);
        done[pick] = 1;
    }
    free(done);
}

/* ---- the eager queue (copy_order late) ---------------------------------------------------------------------- */

static void queue_drain(struct CUstream_st *st, const struct CUevent_st *until, long seq);

/* Run op q (a wait first runs the stream its event's record is queued on, up to that record). */
static void queued_run(const queued *q)
{
    struct timespec ts;
    switch (q->kind) {
    case Q_COPY: memcpy(q->dst, q->src, q->n); break;
    case Q_RECORD:
        if (q->e->pending && q->e->seq == q->seq) q->e->pending = NULL;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        q->e->recorded = 1, q->e->t = (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
        break;
    case Q_WAIT:
        if (q->e->pending) queue_drain(q->e->pending, q->e, q->e->seq);
        break;
    }
}

/* Run st's queued ops in order: all, or up to the record number seq of event until. */
static void queue_drain(struct CUstream_st *st, const struct CUevent_st *until, long seq)
{
    while (st->qhead < st->qn) {
        const queued q = st->q[st->qhead++];
        queued_run(&q);
        if (until && q.kind == Q_RECORD && q.e == until && q.seq == seq) break;
    }
    if (st->qhead == st->qn) st->qhead = st->qn = 0;
}

/* Op q on stream st, eagerly: queued when copy_order is late and it is a copy or st has ops queued, else run. */
static CUresult queue_op(struct CUstream_st *st, queued q)
{
    if (q.kind == Q_RECORD) q.seq = ++q.e->seq, q.e->pending = NULL;
    if (copy_order != ORDER_LATE || (q.kind != Q_COPY && st->qhead == st->qn)) {
        queued_run(&q);
        return CUDA_SUCCESS;
    }
    if (st->qn == st->qcap) {
        st->qcap = st->qcap ? 2 * st->qcap : 64;
        queued *m = realloc(st->q, (size_t)st->qcap * sizeof *m);
        if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
        st->q = m;
    }
    if (q.kind == Q_RECORD) q.e->pending = st;
    st->q[st->qn++] = q;
    return CUDA_SUCCESS;
}

/* Every stream's queued ops run (a synchronous call on the legacy default stream). */
static void queue_drain_all(void)
{
    queue_drain(&default_stream, NULL, 0);
    for (int i = 0; i < n_streams; i++) queue_drain(streams[i], NULL, 0);
}

/* ---- the driver API ------------------------------------------------------------------------------ */

static int initialised;
/* SKY_EMU_DRY=1: launches and GEMMs are checked (limits, shapes) and counted, never executed: how
 * tests/emu/launch_check.c walks the launch sequence of a full-size variant without its memory. */
static int dry;
static unsigned long long dry_launches, dry_gemms;

void sky_emu_dry_counts(unsigned long long *launches, unsigned long long *gemms)
{
    *launches = dry_launches;
    *gemms = dry_gemms;
}

CUresult cuInit(unsigned int flags)
{
    EMU_SERIAL();
    if (flags != 0) return CUDA_ERROR_INVALID_VALUE;
    initialised = 1;
    const char *d = getenv("SKY_EMU_DRY");
    dry = d && strcmp(d, "1") == 0;
    const char *nd = getenv("SKY_EMU_DEVICES");
    n_devices = nd && atoi(nd) >= 1 && atoi(nd) <= MAX_DEVICES ? atoi(nd) : 1;
    const char *tb = getenv("SKY_EMU_DEVICE_BYTES");
    const char *at = tb;
    for (int d = 0; d < MAX_DEVICES; d++) { /* "N" or "N0,N1,...": the last one for the devices after */
        char *end = NULL;
        const unsigned long long n = at && *at ? strtoull(at, &end, 10) : 0;
        total_bytes[d] = n > 0 ? (size_t)n : d > 0 ? total_bytes[d - 1] : (size_t)80 << 30;
        at = end && *end == ',' ? end + 1 : NULL;
    }
    const char *co = getenv("SKY_EMU_COPY_ORDER");
    copy_order = co && strcmp(co, "late") == 0 ? ORDER_LATE : co && strcmp(co, "early") == 0 ? ORDER_EARLY : ORDER_ISSUE;
    if (co && *co && copy_order == ORDER_ISSUE) {
        fprintf(stderr, "cuda emulator: SKY_EMU_COPY_ORDER=%s: expected late or early\n", co);
        return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

#define NEED_INIT() do { if (!initialised) return CUDA_ERROR_NOT_INITIALIZED; } while (0)

CUresult cuDriverGetVersion(int *v)
{
    EMU_SERIAL();
    if (!v) return CUDA_ERROR_INVALID_VALUE;
    *v = CUDA_VERSION;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetCount(int *n)
{
    EMU_SERIAL();
    NEED_INIT();
    *n = n_devices;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGet(CUdevice *d, int ordinal)
{
    EMU_SERIAL();
    NEED_INIT();
    if (ordinal < 0 || ordinal >= n_devices) return CUDA_ERROR_INVALID_DEVICE;
    *d = ordinal;
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetName(char *name, int len, CUdevice d)
{
    EMU_SERIAL();
    if (d < 0 || d >= n_devices || len < 1) return CUDA_ERROR_INVALID_VALUE;
    snprintf(name, (size_t)len, "CPU emulator (tests/emu), sm_90 semantics");
    return CUDA_SUCCESS;
}

CUresult cuDeviceGetAttribute(int *v, CUdevice_attribute a, CUdevice d)
{
    EMU_SERIAL();
    if (d < 0 || d >= n_devices) return CUDA_ERROR_INVALID_DEVICE;
    switch (a) {
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR: *v = 9; break;
    case CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR: *v = 0; break;
    case CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT: *v = 132; break;
    case CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE: *v = 50 << 20; break;
    case CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN: *v = (int)SMEM_OPTIN; break;
    case CU_DEVICE_ATTRIBUTE_MAX_THREADS_PER_BLOCK: *v = 1024; break;
    default:
        fprintf(stderr, "cuda emulator: cuDeviceGetAttribute(%d) is not emulated\n", (int)a);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    return CUDA_SUCCESS;
}

CUresult cuDeviceTotalMem(size_t *bytes, CUdevice d)
{
    EMU_SERIAL();
    if (d < 0 || d >= n_devices) return CUDA_ERROR_INVALID_DEVICE;
    *bytes = TOTAL_BYTES(d);
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRetain(CUcontext *ctx, CUdevice d)
{
    EMU_SERIAL();
    NEED_INIT();
    if (d < 0 || d >= n_devices) return CUDA_ERROR_INVALID_DEVICE;
    *ctx = (CUcontext)&primary_ctx[d];
    return CUDA_SUCCESS;
}

CUresult cuDevicePrimaryCtxRelease(CUdevice d)
{
    EMU_SERIAL();
    return d >= 0 && d < n_devices ? CUDA_SUCCESS : CUDA_ERROR_INVALID_DEVICE;
}

CUresult cuCtxSetCurrent(CUcontext ctx)
{
    EMU_SERIAL();
    for (int d = 0; d < n_devices; d++)
        if (ctx == (CUcontext)&primary_ctx[d]) {
            current = d;
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_INVALID_CONTEXT;
}

CUresult cuCtxGetDevice(CUdevice *d)
{
    EMU_SERIAL();
    if (!initialised) return CUDA_ERROR_NOT_INITIALIZED;
    if (current < 0) return CUDA_ERROR_INVALID_CONTEXT;
    *d = current;
    return CUDA_SUCCESS;
}

CUresult cuGetErrorName(CUresult r, const char **s)
{
    EMU_SERIAL();
    switch (r) {
    case CUDA_SUCCESS: *s = "CUDA_SUCCESS"; break;
    case CUDA_ERROR_INVALID_VALUE: *s = "CUDA_ERROR_INVALID_VALUE"; break;
    case CUDA_ERROR_OUT_OF_MEMORY: *s = "CUDA_ERROR_OUT_OF_MEMORY"; break;
    case CUDA_ERROR_NOT_INITIALIZED: *s = "CUDA_ERROR_NOT_INITIALIZED"; break;
    case CUDA_ERROR_INVALID_HANDLE: *s = "CUDA_ERROR_INVALID_HANDLE"; break;
    case CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES: *s = "CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES"; break;
    case CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED: *s = "CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED"; break;
    case CUDA_ERROR_NOT_FOUND: *s = "CUDA_ERROR_NOT_FOUND"; break;
    case CUDA_ERROR_INVALID_IMAGE: *s = "CUDA_ERROR_INVALID_IMAGE"; break;
    default: *s = NULL; return CUDA_ERROR_INVALID_VALUE;
    }
    return CUDA_SUCCESS;
}

CUresult cuGetErrorString(CUresult r, const char **s)
{
    EMU_SERIAL();
    return cuGetErrorName(r, s);
}

CUresult cuMemGetInfo(size_t *free_bytes, size_t *total)
{
    EMU_SERIAL();
    if (current < 0) return CUDA_ERROR_INVALID_CONTEXT;
    *free_bytes = TOTAL_BYTES(current) - allocated[current];
    *total = TOTAL_BYTES(current);
    return CUDA_SUCCESS;
}

CUresult cuMemAlloc(CUdeviceptr *p, size_t n)
{
    EMU_SERIAL();
    NEED_INIT();
    return mem_alloc(p, n);
}

CUresult cuMemFree(CUdeviceptr p)
{
    EMU_SERIAL();
    for (int i = 0; i < n_allocs; i++)
        if ((uintptr_t)allocs[i].p == (uintptr_t)p) {
            allocated[allocs[i].device] -= allocs[i].n;
            free(allocs[i].p);
            allocs[i] = allocs[--n_allocs];
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_INVALID_VALUE;
}

/* Pinned host memory: plain host memory here, each block listed (so that cuMemFreeHost refuses what
 * cuMemAllocHost did not give) and the async copies counted by their host side, pinned or pageable
 * (SKY_EMU_REPORT=1 prints both at exit: tests/emu/run.sh wants a DiT call's copies all pinned). */
static struct host_block {
    void  *p;
    size_t n;
} *host_blocks;
static int       n_host_blocks, cap_host_blocks;
static long long async_pinned, async_pageable;

static int is_pinned(const void *h, size_t n)
{
    for (int i = 0; i < n_host_blocks; i++)
        if ((const char *)h >= (const char *)host_blocks[i].p &&
            (const char *)h + n <= (const char *)host_blocks[i].p + host_blocks[i].n)
            return 1;
    return 0;
}

CUresult cuMemAllocHost(void **p, size_t n)
{
    EMU_SERIAL();
    NEED_INIT();
    if (current < 0) return CUDA_ERROR_INVALID_CONTEXT;
    if (n_host_blocks == cap_host_blocks) {
        const int          c = cap_host_blocks ? 2 * cap_host_blocks : 16;
        struct host_block *b = realloc(host_blocks, (size_t)c * sizeof *b);
        if (!b) return CUDA_ERROR_OUT_OF_MEMORY;
        host_blocks = b, cap_host_blocks = c;
    }
    *p = malloc(n ? n : 1);
    if (!*p) return CUDA_ERROR_OUT_OF_MEMORY;
    host_blocks[n_host_blocks++] = (struct host_block){ *p, n };
    return CUDA_SUCCESS;
}

CUresult cuMemFreeHost(void *p)
{
    EMU_SERIAL();
    for (int i = 0; i < n_host_blocks; i++)
        if (host_blocks[i].p == p) {
            free(p);
            host_blocks[i] = host_blocks[--n_host_blocks];
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_INVALID_VALUE;
}

static CUresult copy(void *dst, const void *src, size_t n, int dst_device, CUstream s)
{
    if (stream_of(s)->capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    if (!find_alloc(dst_device ? dst : src, n)) return CUDA_ERROR_INVALID_VALUE;
    queue_drain(stream_of(s), NULL, 0);
    memcpy(dst, src, n);
    return CUDA_SUCCESS;
}

CUresult cuMemcpyHtoD(CUdeviceptr dst, const void *src, size_t n)
{
    EMU_SERIAL();
    queue_drain_all();
    return copy((void *)(uintptr_t)dst, src, n, 1, NULL);
}

/* Host to device on stream s: captured as a copy node when s is capturing (the host side must be pinned then, as
 * the driver requires), queued (copy_order late) or run now. */
CUresult cuMemcpyHtoDAsync(CUdeviceptr dst, const void *src, size_t n, CUstream s)
{
    EMU_SERIAL();
    const int pinned = is_pinned(src, n);
    ++*(pinned ? &async_pinned : &async_pageable);
    struct CUstream_st *st = stream_of(s);
    if (!find_alloc((void *)(uintptr_t)dst, n)) return CUDA_ERROR_INVALID_VALUE;
    if (st->capturing) {
        if (!pinned) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
        return capture_add(st, (node){ .is_copy = 1, .dst = (void *)(uintptr_t)dst, .src = src, .n = n });
    }
    if (!pinned) queue_drain(st, NULL, 0); /* pageable: staged by the driver at once */
    return queue_op(st, (queued){ .kind = Q_COPY, .dst = (void *)(uintptr_t)dst, .src = src, .n = n });
}

CUresult cuMemcpyDtoHAsync(void *dst, CUdeviceptr src, size_t n, CUstream s)
{
    EMU_SERIAL();
    ++*(is_pinned(dst, n) ? &async_pinned : &async_pageable);
    return copy(dst, (const void *)(uintptr_t)src, n, 0, s);
}

CUresult cuMemcpyDtoDAsync(CUdeviceptr dst, CUdeviceptr src, size_t n, CUstream s)
{
    EMU_SERIAL();
    if (stream_of(s)->capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    if (!find_alloc((void *)(uintptr_t)dst, n) || !find_alloc((void *)(uintptr_t)src, n)) return CUDA_ERROR_INVALID_VALUE;
    queue_drain(stream_of(s), NULL, 0);
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, n);
    return CUDA_SUCCESS;
}

CUresult cuMemsetD8(CUdeviceptr dst, unsigned char v, size_t n)
{
    EMU_SERIAL();
    if (!find_alloc((void *)(uintptr_t)dst, n)) return CUDA_ERROR_INVALID_VALUE;
    queue_drain_all();
    memset((void *)(uintptr_t)dst, v, n);
    return CUDA_SUCCESS;
}

CUresult cuStreamCreate(CUstream *s, unsigned int flags)
{
    EMU_SERIAL();
    (void)flags;
    struct CUstream_st *st = calloc(1, sizeof *st);
    if (!st) return CUDA_ERROR_OUT_OF_MEMORY;
    if (n_streams == cap_streams) {
        cap_streams = cap_streams ? 2 * cap_streams : 16;
        struct CUstream_st **m = realloc(streams, (size_t)cap_streams * sizeof *m);
        if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
        streams = m;
    }
    streams[n_streams++] = st;
    *s = st;
    return CUDA_SUCCESS;
}

CUresult cuStreamDestroy(CUstream s)
{
    EMU_SERIAL();
    if (!s) return CUDA_ERROR_INVALID_HANDLE;
    queue_drain(s, NULL, 0);
    for (int i = 0; i < n_streams; i++)
        if (streams[i] == s) streams[i] = streams[--n_streams];
    if (s->origin) graph_free(s->g);
    free(s->tail);
    free(s->q);
    free(s);
    return CUDA_SUCCESS;
}

CUresult cuStreamSynchronize(CUstream s)
{
    EMU_SERIAL();
    if (stream_of(s)->capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    queue_drain(stream_of(s), NULL, 0);
    return CUDA_SUCCESS;
}

CUresult cuEventCreate(CUevent *e, unsigned int flags)
{
    EMU_SERIAL();
    (void)flags;
    struct CUevent_st *ev = calloc(1, sizeof *ev);
    if (!ev) return CUDA_ERROR_OUT_OF_MEMORY;
    *e = ev;
    return CUDA_SUCCESS;
}

CUresult cuEventDestroy(CUevent e)
{
    EMU_SERIAL();
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    if (e->pending) queue_drain(e->pending, e, e->seq);
    free(e->nodes);
    free(e);
    return CUDA_SUCCESS;
}

CUresult cuEventRecord(CUevent e, CUstream s)
{
    EMU_SERIAL();
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    struct CUstream_st *st = stream_of(s);
    if (st->capturing) {
        int *nodes = realloc(e->nodes, (size_t)(st->ntail > 0 ? st->ntail : 1) * sizeof *nodes);
        if (!nodes) return CUDA_ERROR_OUT_OF_MEMORY;
        memcpy(nodes, st->tail, (size_t)st->ntail * sizeof *nodes);
        e->nodes = nodes, e->nnodes = st->ntail, e->cap_id = st->cap_id;
        return CUDA_SUCCESS;
    }
    e->cap_id = 0;
    return queue_op(st, (queued){ .kind = Q_RECORD, .e = e });
}

/* The capture numbered id is still being captured (on some stream). */
static int capture_live(long id)
{
    if (id == 0) return 0;
    if (default_stream.capturing && default_stream.cap_id == id) return 1;
    for (int i = 0; i < n_streams; i++)
        if (streams[i]->capturing && streams[i]->cap_id == id) return 1;
    return 0;
}

/* Stream s waits for event e: in a capture, s's next nodes depend on e's (s joins e's capture if it was not in
 * one); eagerly, for e's record to have run (queued: it runs now, with what is before it on its stream), or
 * queued behind s's own queued ops. */
CUresult cuStreamWaitEvent(CUstream s, CUevent e, unsigned int flags)
{
    EMU_SERIAL();
    if (!e || flags != 0) return CUDA_ERROR_INVALID_VALUE;
    struct CUstream_st *st = stream_of(s);
    if (capture_live(e->cap_id)) {
        if (!st->capturing) {
            graph *g = NULL;
            for (int i = 0; i < n_streams && !g; i++)
                if (streams[i]->capturing && streams[i]->cap_id == e->cap_id) g = streams[i]->g;
            if (!g) g = default_stream.g;
            queue_drain(st, NULL, 0);
            st->capturing = 1, st->origin = 0, st->g = g, st->cap_id = e->cap_id, st->ntail = 0;
        } else if (st->cap_id != e->cap_id) {
            return CUDA_ERROR_STREAM_CAPTURE_ISOLATION;
        }
        return tail_join(st, e->nodes, e->nnodes);
    }
    if (st->capturing) return CUDA_ERROR_STREAM_CAPTURE_ISOLATION; /* an event from outside the capture */
    return queue_op(st, (queued){ .kind = Q_WAIT, .e = e });
}

CUresult cuEventSynchronize(CUevent e)
{
    EMU_SERIAL();
    if (!e) return CUDA_ERROR_INVALID_HANDLE;
    if (e->pending) queue_drain(e->pending, e, e->seq);
    return CUDA_SUCCESS;
}

CUresult cuEventElapsedTime(float *ms, CUevent start, CUevent end)
{
    EMU_SERIAL();
    if (!ms || !start || !end || !start->recorded || !end->recorded) return CUDA_ERROR_INVALID_HANDLE;
    *ms = (float)((end->t - start->t) * 1e3);
    return CUDA_SUCCESS;
}

CUresult cuStreamBeginCapture(CUstream s, CUstreamCaptureMode mode)
{
    EMU_SERIAL();
    (void)mode;
    struct CUstream_st *st = stream_of(s);
    if (!s || st->capturing) return CUDA_ERROR_INVALID_VALUE;
    queue_drain(st, NULL, 0);
    st->g = calloc(1, sizeof *st->g);
    if (!st->g) return CUDA_ERROR_OUT_OF_MEMORY;
    st->capturing = 1, st->origin = 1, st->cap_id = ++captures_begun, st->ntail = 0;
    return CUDA_SUCCESS;
}

/* Every node of g is st's tail or before it (the streams that joined the capture joined back into st). */
static int capture_joined(const graph *g, const struct CUstream_st *st)
{
    char *seen = calloc((size_t)(g->count > 0 ? g->count : 1), 1);
    int  *stack = malloc((size_t)(g->count > 0 ? g->count : 1) * sizeof *stack), top = 0, all = 1;
    if (!seen || !stack) { fprintf(stderr, "cuda emulator: out of memory ending a capture\n"); exit(3); }
    for (int i = 0; i < st->ntail; i++)
        if (!seen[st->tail[i]]) seen[st->tail[i]] = 1, stack[top++] = st->tail[i];
    while (top > 0) {
        const node *n = &g->n[stack[--top]];
        for (int d = 0; d < n->ndeps; d++)
            if (!seen[n->deps[d]]) seen[n->deps[d]] = 1, stack[top++] = n->deps[d];
    }
    for (int i = 0; i < g->count; i++) all &= seen[i];
    free(seen);
    free(stack);
    return all;
}

/* The capture ends on the stream it began on; the streams that joined it leave it. A stream whose nodes were
 * not joined back (through an event the origin waited for) fails it, as the driver's
 * CUDA_ERROR_STREAM_CAPTURE_UNJOINED. */
CUresult cuStreamEndCapture(CUstream s, CUgraph *out)
{
    EMU_SERIAL();
    struct CUstream_st *st = stream_of(s);
    if (!st->capturing || !st->origin) return CUDA_ERROR_ILLEGAL_STATE;
    const int joined = capture_joined(st->g, st);
    for (int i = 0; i < n_streams; i++)
        if (streams[i] != st && streams[i]->capturing && streams[i]->cap_id == st->cap_id)
            streams[i]->capturing = 0, streams[i]->g = NULL, streams[i]->cap_id = 0;
    st->capturing = 0, st->origin = 0, st->cap_id = 0;
    if (!joined) {
        graph_free(st->g);
        st->g = NULL;
        *out = NULL;
        return CUDA_ERROR_STREAM_CAPTURE_UNJOINED;
    }
    *out = (CUgraph)st->g;
    st->g = NULL;
    return CUDA_SUCCESS;
}

CUresult cuStreamIsCapturing(CUstream s, CUstreamCaptureStatus *status)
{
    EMU_SERIAL();
    *status = stream_of(s)->capturing ? CU_STREAM_CAPTURE_STATUS_ACTIVE : CU_STREAM_CAPTURE_STATUS_NONE;
    return CUDA_SUCCESS;
}

CUresult cuGraphInstantiate(CUgraphExec *exec, CUgraph g, unsigned long long flags)
{
    EMU_SERIAL();
    (void)flags;
    if (!g) return CUDA_ERROR_INVALID_VALUE;
    /* The executable graph owns a copy of the nodes. */
    const graph *src = (const graph *)g;
    graph *e = calloc(1, sizeof *e);
    if (!e) return CUDA_ERROR_OUT_OF_MEMORY;
    for (int i = 0; i < src->count; i++) {
        node n = src->n[i];
        n.deps = malloc((size_t)(n.ndeps > 0 ? n.ndeps : 1) * sizeof *n.deps);
        if (!n.deps) return CUDA_ERROR_OUT_OF_MEMORY;
        memcpy(n.deps, src->n[i].deps, (size_t)n.ndeps * sizeof *n.deps);
        if (n.is_copy) {
            /* nothing more: the copy's pointers */
        } else if (n.host) {
            n.argbuf = malloc(n.host_bytes ? n.host_bytes : 1);
            if (!n.argbuf) return CUDA_ERROR_OUT_OF_MEMORY;
            memcpy(n.argbuf, src->n[i].argbuf, n.host_bytes);
        } else if (n.is_gemm) {
            n.gemm = malloc(sizeof *n.gemm);
            memcpy(n.gemm, src->n[i].gemm, sizeof *n.gemm);
        } else {
            const int na = n.k->nargs;
            size_t total = 0;
            for (int a = 0; a < na; a++) total += n.k->arg_sizes[a];
            n.argbuf = malloc(total ? total : 1);
            n.args = calloc(na > 0 ? (size_t)na : 1, sizeof *n.args);
            memcpy(n.argbuf, src->n[i].argbuf, total);
            size_t off = 0;
            for (int a = 0; a < na; a++) {
                n.args[a] = n.argbuf + off;
                off += n.k->arg_sizes[a];
            }
        }
        if (graph_add(e, n) != CUDA_SUCCESS) return CUDA_ERROR_OUT_OF_MEMORY;
    }
    *exec = (CUgraphExec)e;
    return CUDA_SUCCESS;
}

CUresult cuGraphDestroy(CUgraph g)
{
    EMU_SERIAL();
    graph_free((graph *)g);
    return CUDA_SUCCESS;
}

CUresult cuGraphExecDestroy(CUgraphExec e)
{
    EMU_SERIAL();
    graph_free((graph *)e);
    return CUDA_SUCCESS;
}

CUresult cuGraphUpload(CUgraphExec e, CUstream s)
{
    EMU_SERIAL();
    (void)s;
    return e ? CUDA_SUCCESS : CUDA_ERROR_INVALID_VALUE;
}

CUresult cuGraphLaunch(CUgraphExec e, CUstream s)
{
    EMU_SERIAL();
    if (!e) return CUDA_ERROR_INVALID_VALUE;
    if (stream_of(s)->capturing) return CUDA_ERROR_STREAM_CAPTURE_UNSUPPORTED;
    queue_drain(stream_of(s), NULL, 0);
    graph_run((const graph *)e);
    return CUDA_SUCCESS;
}

/* ---- modules and launches ---------------------------------------------------------------------------- */

/* The "cubin" the emulated NVRTC makes: a marker, the file name, the source's xxh64. */
#define CUBIN_MAGIC "\177ELF sky-emu cubin\n"

typedef struct func {
    const sky_emu_kernel *k;
    unsigned              max_dynamic_smem;
} func;

typedef struct module {
    const sky_emu_module_def *def;
    func                     *f;
} module;

/* How the runtime's modules were made, on stderr at exit with SKY_EMU_REPORT=1 (tests/emu/run.sh). */
static int fatbin_loads, nvrtc_compiles;

__attribute__((destructor)) static void report(void)
{
    const char *v = getenv("SKY_EMU_REPORT");
    if (v && strcmp(v, "1") == 0)
        fprintf(stderr, "cuda emulator: %d modules loaded from fat binaries, %d NVRTC compilations; %lld async copies "
                "to or from pinned host memory, %lld pageable\n", fatbin_loads, nvrtc_compiles, async_pinned,
                async_pageable);
}

/* A fat binary as nvcc -fatbin writes it (the layout cuobjdump reads; the toolkit documents none): a 16-byte
 * header (magic 0xBA55ED50, version 1, header size 16, the size of what follows), then entries, each a header
 * (kind 1 PTX or 2 ELF cubin, its header size, its payload size, the arch at byte 28, flags at byte 40: 0x100000
 * an arch-specific "a" target) and its payload. Checked here as the driver must read it: the header, every
 * entry within the declared size and summing to it, a cubin payload that is an ELF file or compressed (zstd).
 * The emulated GPU is a cc 9.0 one running the sm_90a code paths, so it loads a fat binary only through an sm_90a
 * cubin: a plain sm_90 cubin or PTX would run other code there (the Hopper attention traps outside sm_90a), so
 * those get CUDA_ERROR_NO_BINARY_FOR_GPU, as would a fat binary without an arch-9.0 image on a real driver (the
 * driver would also JIT older PTX; the runtime never asks it to on cc 9.0: fatbin.c). Then the bytes (header
 * and entries) must be exactly those of a fat binary tests/emu/build.sh registered (its xxh64, prepare.lua):
 * the kernels run are the host-compiled ones of the text nvcc compiled. What this cannot check: the cubins'
 * code (the emulator runs the host-compiled source, never SASS), and the driver's own image choice beyond the
 * rule above. */
#define FATBIN_MAGIC 0xBA55ED50u
#define FATBIN_ARCH_SPECIFIC 0x100000ull

static CUresult load_fatbin(CUmodule *out, const unsigned char *p)
{
    uint32_t magic;
    uint16_t version, header;
    uint64_t size;
    memcpy(&magic, p, 4), memcpy(&version, p + 4, 2), memcpy(&header, p + 6, 2), memcpy(&size, p + 8, 8);
    if (magic != FATBIN_MAGIC || version != 1 || header != 16 || size < 64 || size > ((uint64_t)1 << 31)) {
        fprintf(stderr, "cuda emulator: cuModuleLoadData: a fat binary header that is not nvcc's (version %u, "
                "header %u bytes, %llu bytes of entries)\n", version, header, (unsigned long long)size);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    int sm90a = 0, images = 0;
    uint64_t off = 16;
    const uint64_t end = 16 + size;
    while (off < end) {
        uint16_t kind;
        uint32_t eh, arch;
        uint64_t payload, flags;
        if (end - off < 64) break;
        memcpy(&kind, p + off, 2), memcpy(&eh, p + off + 4, 4), memcpy(&payload, p + off + 8, 8);
        memcpy(&arch, p + off + 28, 4), memcpy(&flags, p + off + 40, 8);
        if ((kind != 1 && kind != 2) || eh < 64 || eh > end - off || payload > end - off - eh) break;
        const unsigned char *data = p + off + eh;
        if (kind == 2 && memcmp(data, "\177ELF", 4) != 0 && memcmp(data, "\x28\xb5\x2f\xfd", 4) != 0) break;
        sm90a |= kind == 2 && arch == 90 && (flags & FATBIN_ARCH_SPECIFIC);
        images++;
        off += eh + payload;
    }
    if (off != end || images == 0) {
        fprintf(stderr, "cuda emulator: cuModuleLoadData: fat binary entry at byte %llu is malformed (or the "
                "entries do not add up to the header's %llu bytes)\n", (unsigned long long)off,
                (unsigned long long)size);
        return CUDA_ERROR_INVALID_IMAGE;
    }
    if (!sm90a) return CUDA_ERROR_NO_BINARY_FOR_GPU;
    const sky_emu_module_def *def = sky_emu_find_module_by_fatbin(XXH64(p, (size_t)end, 0));
    if (!def) {
        fprintf(stderr, "cuda emulator: cuModuleLoadData: no emulated kernels were built from this fat binary "
                "(xxh64 %016llx): rebuild the emulator plugin (tests/emu/build.sh) after the variant\n",
                (unsigned long long)XXH64(p, (size_t)end, 0));
        return CUDA_ERROR_INVALID_IMAGE;
    }
    module *m = calloc(1, sizeof *m);
    if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
    m->def = def;
    m->f = calloc((size_t)def->n, sizeof *m->f);
    for (int i = 0; i < def->n; i++) m->f[i].k = &def->kernels[i];
    *out = (CUmodule)m;
    fatbin_loads++;
    return CUDA_SUCCESS;
}

CUresult cuModuleLoadData(CUmodule *out, const void *image)
{
    EMU_SERIAL();
    const char *s = image;
    uint32_t magic;
    memcpy(&magic, image, 4);
    if (magic == FATBIN_MAGIC) return load_fatbin(out, image);
    if (strncmp(s, CUBIN_MAGIC, strlen(CUBIN_MAGIC)) != 0) return CUDA_ERROR_INVALID_IMAGE;
    char file[512];
    unsigned long long hash;
    if (sscanf(s + strlen(CUBIN_MAGIC), "%511s %llx", file, &hash) != 2) return CUDA_ERROR_INVALID_IMAGE;
    const sky_emu_module_def *def = sky_emu_find_module(file);
    if (!def || def->source_xxh64 != hash) return CUDA_ERROR_INVALID_IMAGE;
    module *m = calloc(1, sizeof *m);
    if (!m) return CUDA_ERROR_OUT_OF_MEMORY;
    m->def = def;
    m->f = calloc((size_t)def->n, sizeof *m->f);
    for (int i = 0; i < def->n; i++) m->f[i].k = &def->kernels[i];
    *out = (CUmodule)m;
    return CUDA_SUCCESS;
}

CUresult cuModuleUnload(CUmodule mod)
{
    EMU_SERIAL();
    module *m = (module *)mod;
    if (!m) return CUDA_ERROR_INVALID_HANDLE;
    free(m->f);
    free(m);
    return CUDA_SUCCESS;
}

CUresult cuModuleGetFunction(CUfunction *out, CUmodule mod, const char *name)
{
    EMU_SERIAL();
    module *m = (module *)mod;
    for (int i = 0; i < m->def->n; i++)
        if (strcmp(m->def->kernels[i].name, name) == 0) {
            *out = (CUfunction)&m->f[i];
            return CUDA_SUCCESS;
        }
    return CUDA_ERROR_NOT_FOUND;
}

/* cuTensorMapEncodeTiled for the 2-D bf16 / fp32 maps the kernels use, with the driver's documented
 * checks (address 16-byte aligned, row stride a multiple of 16 below 2^40, box sides 1..256, a
 * swizzled box's inner side at most the swizzle span, element strides 1); the map holds a
 * sky_emu_tmap (emu.h) that the emulated cp.async.bulk.tensor reads. */
CUresult cuTensorMapEncodeTiled(CUtensorMap *map, CUtensorMapDataType type, cuuint32_t rank, void *addr,
                                const cuuint64_t *dims, const cuuint64_t *strides, const cuuint32_t *box,
                                const cuuint32_t *elem_strides, CUtensorMapInterleave interleave,
                                CUtensorMapSwizzle swizzle, CUtensorMapL2promotion l2, CUtensorMapFloatOOBfill oob)
{
    EMU_SERIAL();
    (void)l2;
    if (!map || !addr || !dims || !strides || !box || !elem_strides) return CUDA_ERROR_INVALID_VALUE;
    unsigned elem = type == CU_TENSOR_MAP_DATA_TYPE_BFLOAT16 ? 2 : type == CU_TENSOR_MAP_DATA_TYPE_FLOAT32 ? 4 : 0;
    if (!elem || rank != 2) {
        fprintf(stderr, "cuda emulator: cuTensorMapEncodeTiled: only 2-D bf16 or fp32 maps are emulated\n");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (interleave != CU_TENSOR_MAP_INTERLEAVE_NONE || oob != CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE ||
        (swizzle != CU_TENSOR_MAP_SWIZZLE_NONE && swizzle != CU_TENSOR_MAP_SWIZZLE_128B)) {
        fprintf(stderr, "cuda emulator: cuTensorMapEncodeTiled: interleave, NaN fill or a 32/64-byte swizzle\n");
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if ((uintptr_t)addr % 16 || strides[0] % 16 || strides[0] >= (1ull << 40) || dims[0] == 0 || dims[1] == 0 ||
        dims[0] > (1ull << 32) || dims[1] > (1ull << 32) || box[0] == 0 || box[0] > 256 || box[1] == 0 ||
        box[1] > 256 || elem_strides[0] != 1 || elem_strides[1] != 1 || box[0] * elem % 16 ||
        (swizzle == CU_TENSOR_MAP_SWIZZLE_128B && box[0] * elem > 128) || strides[0] < dims[0] * elem)
        return CUDA_ERROR_INVALID_VALUE;
    sky_emu_tmap t = { SKY_EMU_TMAP_MAGIC, elem, swizzle == CU_TENSOR_MAP_SWIZZLE_128B ? 128u : 0u, { box[0], box[1] },
                       0, (uint64_t)(uintptr_t)addr, { dims[0], dims[1] }, strides[0] };
    memset(map, 0, sizeof *map);
    memcpy(map, &t, sizeof t);
    return CUDA_SUCCESS;
}

CUresult cuFuncSetAttribute(CUfunction fn, CUfunction_attribute attr, int v)
{
    EMU_SERIAL();
    func *f = (func *)fn;
    if (attr != CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES) {
        fprintf(stderr, "cuda emulator: cuFuncSetAttribute(%d) is not emulated\n", (int)attr);
        return CUDA_ERROR_NOT_SUPPORTED;
    }
    if (v < 0 || (unsigned)v > SMEM_OPTIN) return CUDA_ERROR_INVALID_VALUE;
    f->max_dynamic_smem = (unsigned)v;
    return CUDA_SUCCESS;
}

CUresult cuLaunchKernel(CUfunction fn, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by, unsigned bz,
                        unsigned smem, CUstream s, void **params, void **extra)
{
    EMU_SERIAL();
    const func *f = (const func *)fn;
    if (!f) return CUDA_ERROR_INVALID_HANDLE;
    const sky_emu_kernel *k = f->k;
    if (extra) return CUDA_ERROR_INVALID_VALUE;
    if (gx == 0 || gy == 0 || gz == 0 || gx > 0x7fffffffu || gy > 65535 || gz > 65535) {
        fprintf(stderr, "cuda emulator: %s: grid (%u,%u,%u) outside the limits\n", k->name, gx, gy, gz);
        return CUDA_ERROR_INVALID_VALUE;
    }
    const unsigned long long threads = (unsigned long long)bx * by * bz;
    if (threads == 0 || threads > 1024 || bz > 64) {
        fprintf(stderr, "cuda emulator: %s: block (%u,%u,%u) outside the limits\n", k->name, bx, by, bz);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (k->max_threads > 0 && threads > (unsigned long long)k->max_threads) {
        fprintf(stderr, "cuda emulator: %s: block of %llu threads, __launch_bounds__(%d)\n", k->name, threads,
                k->max_threads);
        return CUDA_ERROR_LAUNCH_OUT_OF_RESOURCES;
    }
    if (smem > (f->max_dynamic_smem > SMEM_DEFAULT ? f->max_dynamic_smem : SMEM_DEFAULT)) {
        fprintf(stderr, "cuda emulator: %s: %u bytes of dynamic shared memory, %u allowed (set "
                "CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES)\n", k->name, smem,
                f->max_dynamic_smem > SMEM_DEFAULT ? f->max_dynamic_smem : SMEM_DEFAULT);
        return CUDA_ERROR_INVALID_VALUE;
    }
    if (k->nargs > 0 && !params) return CUDA_ERROR_INVALID_VALUE;
    if (dry) {
        dry_launches++;
        return CUDA_SUCCESS;
    }
    struct CUstream_st *st = stream_of(s);
    if (!st->capturing) {
        queue_drain(st, NULL, 0);
        sky_emu_launch(k, gx, gy, gz, bx, by, bz, smem, params);
        return CUDA_SUCCESS;
    }
    /* Captured: the parameters are copied now, as the driver does. */
    node n = { .is_gemm = 0, .second = !st->origin, .k = k, .grid = { gx, gy, gz }, .block = { bx, by, bz },
               .smem = smem };
    size_t total = 0;
    for (int a = 0; a < k->nargs; a++) total += k->arg_sizes[a];
    n.argbuf = malloc(total ? total : 1);
    n.args = calloc(k->nargs > 0 ? (size_t)k->nargs : 1, sizeof *n.args);
    if (!n.argbuf || !n.args) return CUDA_ERROR_OUT_OF_MEMORY;
    size_t off = 0;
    for (int a = 0; a < k->nargs; a++) {
        memcpy(n.argbuf + off, params[a], k->arg_sizes[a]);
        n.args[a] = n.argbuf + off;
        off += k->arg_sizes[a];
    }
    return capture_add(st, n);
}

/* A step of another emulated library on stream s (the NCCL double, nccl_double.c): run fn(ctx) now, or, while s
 * is capturing, record it (ctx_bytes copied, as a launch's parameters are) to run where it sits when the graph is
 * replayed. ctx must be flat (no pointers to memory it owns). */
CUresult sky_emu_stream_host(CUstream s, void (*fn)(void *ctx), const void *ctx, size_t ctx_bytes)
{
    EMU_SERIAL();
    struct CUstream_st *st = stream_of(s);
    if (!st->capturing) {
        void *c = malloc(ctx_bytes ? ctx_bytes : 1);
        if (!c) return CUDA_ERROR_OUT_OF_MEMORY;
        memcpy(c, ctx, ctx_bytes);
        queue_drain(st, NULL, 0);
        fn(c);
        free(c);
        return CUDA_SUCCESS;
    }
    node n = { .host = fn, .host_bytes = ctx_bytes };
    n.argbuf = malloc(ctx_bytes ? ctx_bytes : 1);
    if (!n.argbuf) return CUDA_ERROR_OUT_OF_MEMORY;
    memcpy(n.argbuf, ctx, ctx_bytes);
    return capture_add(st, n);
}

/* ---- the runtime API ------------------------------------------------------------------------------------ */

cudaError_t cudaSetDevice(int device)
{
    EMU_SERIAL();
    if (device < 0 || device >= n_devices) return cudaErrorInvalidDevice;
    current = device;                          /* and its primary context, as the runtime API does */
    return cudaSuccess;
}

const char *cudaGetErrorName(cudaError_t e)
{
    return e == cudaSuccess ? "cudaSuccess" : "cudaError (emulated)";
}

const char *cudaGetErrorString(cudaError_t e)
{
    return e == cudaSuccess ? "no error" : "error (emulated runtime)";
}

/* ---- cuBLASLt ---------------------------------------------------------------------------------------------- */

static int lt_handle;

cublasStatus_t cublasLtCreate(cublasLtHandle_t *h)
{
    EMU_SERIAL();
    *h = (cublasLtHandle_t)&lt_handle;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtDestroy(cublasLtHandle_t h)
{
    EMU_SERIAL();
    return h == (cublasLtHandle_t)&lt_handle ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_INVALID_VALUE;
}

size_t cublasLtGetVersion(void)
{
    return 0;                                   /* "no real cuBLASLt" */
}

const char *cublasLtGetStatusName(cublasStatus_t s)
{
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    default: return "CUBLAS_STATUS (emulated)";
    }
}

const char *cublasLtGetStatusString(cublasStatus_t s)
{
    return cublasLtGetStatusName(s);
}

cublasStatus_t cublasLtMatmulDescCreate(cublasLtMatmulDesc_t *out, cublasComputeType_t compute, cudaDataType_t scale)
{
    EMU_SERIAL();
    if ((compute != CUBLAS_COMPUTE_32F && compute != CUBLAS_COMPUTE_32F_FAST_TF32) || scale != CUDA_R_32F)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    lt_desc *d = calloc(1, sizeof *d);
    if (!d) return CUBLAS_STATUS_ALLOC_FAILED;
    d->compute = compute;
    d->scale = scale;
    d->transa = d->transb = CUBLAS_OP_N;
    d->epilogue = CUBLASLT_EPILOGUE_DEFAULT;
    d->bias_type = -1;
    *out = (cublasLtMatmulDesc_t)d;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescDestroy(cublasLtMatmulDesc_t desc)
{
    EMU_SERIAL();
    free(desc);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulDescSetAttribute(cublasLtMatmulDesc_t desc, cublasLtMatmulDescAttributes_t attr,
                                              const void *buf, size_t size)
{
    EMU_SERIAL();
    lt_desc *d = (lt_desc *)desc;
    switch (attr) {
    case CUBLASLT_MATMUL_DESC_TRANSA: if (size != 4) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->transa, buf, 4); break;
    case CUBLASLT_MATMUL_DESC_TRANSB: if (size != 4) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->transb, buf, 4); break;
    case CUBLASLT_MATMUL_DESC_EPILOGUE: if (size != 4) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->epilogue, buf, 4); break;
    case CUBLASLT_MATMUL_DESC_BIAS_POINTER:
        if (size != sizeof(void *)) return CUBLAS_STATUS_INVALID_VALUE;
        memcpy(&d->bias, buf, sizeof(void *));
        break;
    case CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE: if (size != 4) return CUBLAS_STATUS_INVALID_VALUE; memcpy(&d->bias_type, buf, 4); break;
    default:
        fprintf(stderr, "cuda emulator: cublasLtMatmulDescSetAttribute(%d) is not emulated\n", (int)attr);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutCreate(cublasLtMatrixLayout_t *out, cudaDataType type, uint64_t rows,
                                          uint64_t cols, int64_t ld)
{
    EMU_SERIAL();
    if (type != CUDA_R_32F && type != CUDA_R_16BF) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (ld < (int64_t)rows || ld < 1) return CUBLAS_STATUS_INVALID_VALUE;
    lt_layout *l = calloc(1, sizeof *l);
    if (!l) return CUBLAS_STATUS_ALLOC_FAILED;
    *l = (lt_layout){ type, rows, cols, ld };
    *out = (cublasLtMatrixLayout_t)l;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutDestroy(cublasLtMatrixLayout_t l)
{
    EMU_SERIAL();
    free(l);
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatrixLayoutSetAttribute(cublasLtMatrixLayout_t layout, cublasLtMatrixLayoutAttribute_t attr,
                                                const void *buf, size_t size)
{
    EMU_SERIAL();
    lt_layout *l = (lt_layout *)layout;
    if (size != 8) return CUBLAS_STATUS_INVALID_VALUE;
    switch (attr) {
    case CUBLASLT_MATRIX_LAYOUT_ROWS: memcpy(&l->rows, buf, 8); break;
    case CUBLASLT_MATRIX_LAYOUT_COLS: memcpy(&l->cols, buf, 8); break;
    case CUBLASLT_MATRIX_LAYOUT_LD: memcpy(&l->ld, buf, 8); break;
    default:
        fprintf(stderr, "cuda emulator: cublasLtMatrixLayoutSetAttribute(%d) is not emulated\n", (int)attr);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    return CUBLAS_STATUS_SUCCESS;
}

static int lt_pref;

cublasStatus_t cublasLtMatmulPreferenceCreate(cublasLtMatmulPreference_t *p)
{
    EMU_SERIAL();
    *p = (cublasLtMatmulPreference_t)&lt_pref;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceDestroy(cublasLtMatmulPreference_t p)
{
    EMU_SERIAL();
    (void)p;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulPreferenceSetAttribute(cublasLtMatmulPreference_t p, cublasLtMatmulPreferenceAttributes_t a,
                                                    const void *buf, size_t size)
{
    EMU_SERIAL();
    (void)p, (void)a, (void)buf, (void)size;
    return CUBLAS_STATUS_SUCCESS;
}

/* Shapes of D = op(A) op(B): M x K times K x N. */
static cublasStatus_t check_shapes(const lt_desc *d, const lt_layout *a, const lt_layout *b, const lt_layout *c,
                                   const lt_layout *dd)
{
    const uint64_t M = d->transa == CUBLAS_OP_T ? a->cols : a->rows, K = d->transa == CUBLAS_OP_T ? a->rows : a->cols;
    const uint64_t Kb = d->transb == CUBLAS_OP_T ? b->cols : b->rows, N = d->transb == CUBLAS_OP_T ? b->rows : b->cols;
    if (K != Kb || dd->rows != M || dd->cols != N || c->rows != M || c->cols != N) return CUBLAS_STATUS_INVALID_VALUE;
    if (a->type != b->type || c->type != dd->type) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (a->type == CUDA_R_32F && dd->type != CUDA_R_32F) return CUBLAS_STATUS_NOT_SUPPORTED;
    if (d->epilogue != CUBLASLT_EPILOGUE_DEFAULT && d->epilogue != CUBLASLT_EPILOGUE_BIAS &&
        d->epilogue != CUBLASLT_EPILOGUE_GELU_BIAS)
        return CUBLAS_STATUS_NOT_SUPPORTED;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoGetHeuristic(cublasLtHandle_t h, cublasLtMatmulDesc_t op, cublasLtMatrixLayout_t A,
                                              cublasLtMatrixLayout_t B, cublasLtMatrixLayout_t C,
                                              cublasLtMatrixLayout_t D, cublasLtMatmulPreference_t pref, int requested,
                                              cublasLtMatmulHeuristicResult_t results[], int *count)
{
    EMU_SERIAL();
    (void)h, (void)pref;
    if (requested < 1) return CUBLAS_STATUS_INVALID_VALUE;
    cublasStatus_t s = check_shapes((lt_desc *)op, (lt_layout *)A, (lt_layout *)B, (lt_layout *)C, (lt_layout *)D);
    if (s != CUBLAS_STATUS_SUCCESS) return s;
    /* One candidate, as a GPU's first; SKY_EMU_HEURISTICS=N offers N (each computes the same here), so that
     * the runtime's choice by measurement and its cache are exercised (runtime/cuda/gemm.h sky_gemm_tune). */
    const char *env = getenv("SKY_EMU_HEURISTICS");
    int         n = env ? atoi(env) : 1;
    n = n < 1 ? 1 : n > requested ? requested : n;
    for (int i = 0; i < n; i++) {
        memset(&results[i], 0, sizeof results[i]);
        results[i].algo.data[0] = (uint64_t)i; /* its ALGO_CONFIG_ID */
        results[i].state = CUBLAS_STATUS_SUCCESS;
        results[i].wavesCount = 1.0f;
    }
    *count = n;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasLtMatmulAlgoConfigGetAttribute(const cublasLtMatmulAlgo_t *algo,
                                                    cublasLtMatmulAlgoConfigAttributes_t attr, void *buf, size_t size,
                                                    size_t *written)
{
    EMU_SERIAL();
    memset(buf, 0, size);
    if (attr == CUBLASLT_ALGO_CONFIG_ID && size >= sizeof(int32_t)) { /* the candidate's index (heuristic above) */
        const int32_t id = (int32_t)algo->data[0];
        memcpy(buf, &id, sizeof id);
    }
    *written = size;
    return CUBLAS_STATUS_SUCCESS;
}

static float load(cudaDataType_t t, const void *base, size_t i)
{
    if (t == CUDA_R_32F) return ((const float *)base)[i];
    return sky_emu_bf16_to_f32(((const uint16_t *)base)[i]);
}

static void store(cudaDataType_t t, void *base, size_t i, float v)
{
    if (t == CUDA_R_32F) ((float *)base)[i] = v;
    else ((uint16_t *)base)[i] = sky_emu_f32_to_bf16(v);
}

static size_t type_bytes(cudaDataType_t t)
{
    return t == CUDA_R_32F ? 4 : 2;
}

static int layout_owned(const lt_layout *l, const void *p)
{
    if (l->cols == 0) return 1;
    return sky_emu_driver_owns(p, ((size_t)l->ld * (l->cols - 1) + l->rows) * type_bytes(l->type));
}

static void run_gemm(const gemm_args *g)
{
    const lt_desc *d = &g->d;
    const int ta = d->transa == CUBLAS_OP_T, tb = d->transb == CUBLAS_OP_T;
    const uint64_t M = g->dd.rows, N = g->dd.cols, K = ta ? g->a.rows : g->a.cols;
    const int tf32 = d->compute == CUBLAS_COMPUTE_32F_FAST_TF32;
    if (!layout_owned(&g->a, g->A) || !layout_owned(&g->b, g->B) || !layout_owned(&g->dd, g->D) ||
        (g->beta != 0.0f && !layout_owned(&g->c, g->C)))
        sky_emu_fault("cublasLtMatmul: an operand is outside every device allocation (M %llu N %llu K %llu)",
                      (unsigned long long)M, (unsigned long long)N, (unsigned long long)K);
    const int has_bias = d->epilogue != CUBLASLT_EPILOGUE_DEFAULT;
    const cudaDataType_t bias_type = d->bias_type >= 0 ? (cudaDataType_t)d->bias_type : g->dd.type;
    if (has_bias && !sky_emu_driver_owns(d->bias, M * type_bytes(bias_type)))
        sky_emu_fault("cublasLtMatmul: the bias (%llu values) is outside every device allocation", (unsigned long long)M);
    for (uint64_t n = 0; n < N; n++)
        for (uint64_t m = 0; m < M; m++) {
            double s = 0.0;
            for (uint64_t k = 0; k < K; k++) {
                float av = load(g->a.type, g->A, ta ? k + m * (uint64_t)g->a.ld : m + k * (uint64_t)g->a.ld);
                float bv = load(g->b.type, g->B, tb ? n + k * (uint64_t)g->b.ld : k + n * (uint64_t)g->b.ld);
                if (tf32) {                           /* FAST_TF32: operands rounded to tf32 */
                    const unsigned ua = sky_emu_f32_to_tf32(av), ub = sky_emu_f32_to_tf32(bv);
                    memcpy(&av, &ua, 4);
                    memcpy(&bv, &ub, 4);
                }
                s += (double)av * (double)bv;
            }
            float v = g->alpha * (float)s;
            if (g->beta != 0.0f) v += g->beta * load(g->c.type, g->C, m + n * (uint64_t)g->c.ld);
            if (has_bias) v += load(bias_type, d->bias, m);
            if (d->epilogue == CUBLASLT_EPILOGUE_GELU_BIAS)
                v = 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
            store(g->dd.type, g->D, m + n * (uint64_t)g->dd.ld, v);
        }
}

cublasStatus_t cublasLtMatmul(cublasLtHandle_t h, cublasLtMatmulDesc_t op, const void *alpha, const void *A,
                              cublasLtMatrixLayout_t Ad, const void *B, cublasLtMatrixLayout_t Bd, const void *beta,
                              const void *C, cublasLtMatrixLayout_t Cd, void *D, cublasLtMatrixLayout_t Dd,
                              const cublasLtMatmulAlgo_t *algo, void *ws, size_t ws_bytes, cudaStream_t s)
{
    EMU_SERIAL();
    (void)h, (void)algo, (void)ws, (void)ws_bytes;
    gemm_args g = { .d = *(lt_desc *)op, .a = *(lt_layout *)Ad, .b = *(lt_layout *)Bd, .c = *(lt_layout *)Cd,
                    .dd = *(lt_layout *)Dd, .alpha = *(const float *)alpha, .beta = *(const float *)beta,
                    .A = A, .B = B, .C = C, .D = D };
    cublasStatus_t st = check_shapes(&g.d, &g.a, &g.b, &g.c, &g.dd);
    if (st != CUBLAS_STATUS_SUCCESS) return st;
    if (dry) {
        dry_gemms++;
        return CUBLAS_STATUS_SUCCESS;
    }
    struct CUstream_st *str = stream_of((CUstream)s);
    if (!str->capturing) {
        queue_drain(str, NULL, 0);
        run_gemm(&g);
        return CUBLAS_STATUS_SUCCESS;
    }
    node n = { .is_gemm = 1, .gemm = malloc(sizeof g) };
    if (!n.gemm) return CUBLAS_STATUS_ALLOC_FAILED;
    *n.gemm = g;
    return capture_add(str, n) == CUDA_SUCCESS ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_ALLOC_FAILED;
}

/* ---- NVRTC -------------------------------------------------------------------------------------------------- */

typedef struct program {
    char   *src, *name, *cubin, *log;
    size_t  cubin_size;
} program;

const char *nvrtcGetErrorString(nvrtcResult r)
{
    return r == NVRTC_SUCCESS ? "NVRTC_SUCCESS" : "NVRTC_ERROR (emulated)";
}

nvrtcResult nvrtcVersion(int *major, int *minor)
{
    EMU_SERIAL();
    *major = CUDA_VERSION / 1000;
    *minor = CUDA_VERSION % 1000 / 10;
    return NVRTC_SUCCESS;
}

static const int archs[] = { 75, 80, 86, 87, 89, 90, 100, 120 };

nvrtcResult nvrtcGetNumSupportedArchs(int *n)
{
    EMU_SERIAL();
    *n = (int)(sizeof archs / sizeof archs[0]);
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetSupportedArchs(int *list)
{
    EMU_SERIAL();
    memcpy(list, archs, sizeof archs);
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcCreateProgram(nvrtcProgram *out, const char *src, const char *name, int n_headers,
                               const char *const *headers, const char *const *include_names)
{
    EMU_SERIAL();
    (void)headers, (void)include_names;
    if (n_headers != 0 || !src || !name) return NVRTC_ERROR_INVALID_INPUT;
    program *p = calloc(1, sizeof *p);
    if (!p || !(p->src = strdup(src)) || !(p->name = strdup(name))) return NVRTC_ERROR_OUT_OF_MEMORY;
    *out = (nvrtcProgram)p;
    return NVRTC_SUCCESS;
}

/* SKY_EMU_NVRTC=no-headers: NVRTC on a machine without the CUDA toolkit's headers: a source that includes
 * cuda_bf16.h fails as the real NVRTC fails then, whatever --include-path says (tests/emu/run.sh: the kernels
 * built into the plugin need no compilation at all). */
static int no_toolkit_headers(void)
{
    const char *v = getenv("SKY_EMU_NVRTC");
    return v && strcmp(v, "no-headers") == 0;
}

nvrtcResult nvrtcCompileProgram(nvrtcProgram prog, int n, const char *const *opts)
{
    EMU_SERIAL();
    program *p = (program *)prog;
    int arch_ok = 0;
    for (int i = 0; i < n; i++) arch_ok |= strcmp(opts[i], "--gpu-architecture=sm_90a") == 0;
    const sky_emu_module_def *def = sky_emu_find_module(p->name);
    const uint64_t h = XXH64(p->src, strlen(p->src), 0);
    char log[1024];
    nvrtc_compiles++;
    if (no_toolkit_headers() && strstr(p->src, "#include <cuda_bf16.h>"))
        snprintf(log, sizeof log, "%s: catastrophic error: could not open source file \"cuda_bf16.h\" (no directories "
                 "in search list)\n1 catastrophic error detected in the compilation of \"%s\".", p->name, p->name);
    else if (!arch_ok) snprintf(log, sizeof log, "cuda emulator: asked for another architecture than sm_90a");
    else if (!def) snprintf(log, sizeof log, "cuda emulator: no emulated kernels for %s in this plugin", p->name);
    else if (def->source_xxh64 != h)
        snprintf(log, sizeof log, "cuda emulator: %s differs from the text the emulated kernels were built from "
                 "(xxh64 %016llx, built from %016llx): rebuild the emulator plugin", p->name,
                 (unsigned long long)h, (unsigned long long)def->source_xxh64);
    else log[0] = '\0';
    p->log = strdup(log);
    if (log[0]) return NVRTC_ERROR_COMPILATION;
    char head[700];
    int len = snprintf(head, sizeof head, "%s%s %016llx\n", CUBIN_MAGIC, p->name, (unsigned long long)h);
    p->cubin = malloc((size_t)len + 1);
    memcpy(p->cubin, head, (size_t)len + 1);
    p->cubin_size = (size_t)len + 1;
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetProgramLogSize(nvrtcProgram prog, size_t *n)
{
    EMU_SERIAL();
    program *p = (program *)prog;
    *n = p->log ? strlen(p->log) + 1 : 1;
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetProgramLog(nvrtcProgram prog, char *log)
{
    EMU_SERIAL();
    program *p = (program *)prog;
    strcpy(log, p->log ? p->log : "");
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetCUBINSize(nvrtcProgram prog, size_t *n)
{
    EMU_SERIAL();
    program *p = (program *)prog;
    if (!p->cubin) return NVRTC_ERROR_INVALID_PROGRAM;
    *n = p->cubin_size;
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcGetCUBIN(nvrtcProgram prog, char *out)
{
    EMU_SERIAL();
    program *p = (program *)prog;
    if (!p->cubin) return NVRTC_ERROR_INVALID_PROGRAM;
    memcpy(out, p->cubin, p->cubin_size);
    return NVRTC_SUCCESS;
}

nvrtcResult nvrtcDestroyProgram(nvrtcProgram *prog)
{
    EMU_SERIAL();
    program *p = (program *)*prog;
    if (p) {
        free(p->src);
        free(p->name);
        free(p->cubin);
        free(p->log);
        free(p);
    }
    *prog = NULL;
    return NVRTC_SUCCESS;
}
