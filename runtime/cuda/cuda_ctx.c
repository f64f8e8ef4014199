/* runtime/cuda/cuda_ctx.c — device context, fatal checks, device memory, graph cache (cuda_ctx.h). */
#include "cuda/cuda_ctx.h"

#include <pthread.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- error names and the fatal path -------------------------------------------------- */

/* Names for results the driver may be unable to describe itself: the stub libcuda.so
 * answers cuGetErrorName with CUDA_ERROR_STUB_LIBRARY too. */
static const struct {
    CUresult    r;
    const char *name, *string;
} cu_known[] = {
    {CUDA_ERROR_INVALID_VALUE, "CUDA_ERROR_INVALID_VALUE", "invalid argument"},
    {CUDA_ERROR_OUT_OF_MEMORY, "CUDA_ERROR_OUT_OF_MEMORY", "out of memory"},
    {CUDA_ERROR_NOT_INITIALIZED, "CUDA_ERROR_NOT_INITIALIZED", "initialization error"},
    {CUDA_ERROR_STUB_LIBRARY, "CUDA_ERROR_STUB_LIBRARY",
     "the stub libcuda.so was loaded instead of the NVIDIA driver's"},
    {CUDA_ERROR_DEVICE_UNAVAILABLE, "CUDA_ERROR_DEVICE_UNAVAILABLE", "device unavailable"},
    {CUDA_ERROR_NO_DEVICE, "CUDA_ERROR_NO_DEVICE", "no CUDA-capable device is detected"},
    {CUDA_ERROR_INVALID_DEVICE, "CUDA_ERROR_INVALID_DEVICE", "invalid device ordinal"},
    {CUDA_ERROR_SYSTEM_DRIVER_MISMATCH, "CUDA_ERROR_SYSTEM_DRIVER_MISMATCH",
     "system has unsupported display driver / cuda driver combination"},
};

const char *sky_cu_error_name(CUresult r)
{
    const char *s = NULL;
    if (cuGetErrorName(r, &s) == CUDA_SUCCESS && s != NULL) return s;
    for (size_t i = 0; i < sizeof cu_known / sizeof cu_known[0]; i++)
        if (cu_known[i].r == r) return cu_known[i].name;
    return "CUresult (unknown)";
}

const char *sky_cu_error_string(CUresult r)
{
    const char *s = NULL;
    if (cuGetErrorString(r, &s) == CUDA_SUCCESS && s != NULL) return s;
    for (size_t i = 0; i < sizeof cu_known / sizeof cu_known[0]; i++)
        if (cu_known[i].r == r) return cu_known[i].string;
    return "no description from the driver";
}

/* "0 (NVIDIA H100 80GB HBM3)" for the current context's device, as far as it can be told. */
static void current_device(char *buf, size_t size)
{
    CUdevice dev;
    char     name[256];
    if (cuCtxGetDevice(&dev) != CUDA_SUCCESS) {
        snprintf(buf, size, "unknown (no current context)");
        return;
    }
    if (cuDeviceGetName(name, (int)sizeof name, dev) != CUDA_SUCCESS) snprintf(name, sizeof name, "?");
    snprintf(buf, size, "%d (%s)", (int)dev, name);
}

/* The second line of every fatal message: "  current device: 0 (NVIDIA H100 ...), in function f at file:line". */
static void print_where(const char *func, const char *file, int line)
{
    char dev[300];
    current_device(dev, sizeof dev);
    fprintf(stderr, "  current device: %s, in function %s at %s:%d\n", dev, func, file, line);
}

_Noreturn void sky_gpu_fatal_(const char *library, const char *err_name, const char *err_string, const char *stmt,
                              const char *func, const char *file, int line, const char *extra)
{
    fflush(stdout);
    fprintf(stderr, "%s error: %s (%s)\n", library, err_name, err_string);
    print_where(func, file, line);
    fprintf(stderr, "  %s\n", stmt);
    if (extra != NULL && extra[0] != '\0') fprintf(stderr, "%s\n", extra);
    fprintf(stderr, "fatal: the GPU state cannot be trusted after this error; stopping. "
                    "--sync-check names the failing op; CUDA_LAUNCH_BLOCKING=1 or compute-sanitizer "
                    "narrow it further.\n");
    fflush(stderr);
    exit(1);
}

_Noreturn void sky_cuda_fatal_(const char *func, const char *file, int line, const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    print_where(func, file, line);
    fflush(stderr);
    exit(1);
}

_Noreturn void sky_cu_fail_(CUresult r, const char *stmt, const char *func, const char *file, int line)
{
    sky_gpu_fatal_("CUDA driver", sky_cu_error_name(r), sky_cu_error_string(r), stmt, func, file, line, NULL);
}

_Noreturn void sky_cudart_fail_(cudaError_t r, const char *stmt, const char *func, const char *file, int line)
{
    sky_gpu_fatal_("CUDA runtime", cudaGetErrorName(r), cudaGetErrorString(r), stmt, func, file, line, NULL);
}

/* ---- the device context -------------------------------------------------------------- */

const char *sky_bytes_fmt(char *buf, size_t size, size_t bytes)
{
    const double gib = 1024.0 * 1024.0 * 1024.0, mib = 1024.0 * 1024.0;
    if ((double)bytes >= gib)
        snprintf(buf, size, "%.1f GiB", (double)bytes / gib);
    else if ((double)bytes >= mib)
        snprintf(buf, size, "%.1f MiB", (double)bytes / mib);
    else
        snprintf(buf, size, "%zu bytes", bytes);
    return buf;
}

static int attr(CUdevice dev, CUdevice_attribute a)
{
    int v = 0;
    SKY_CU_CHECK(cuDeviceGetAttribute(&v, a, dev));
    return v;
}

sky_status sky_cuda_open(sky_cuda **out, int device, sky_err *err)
{
    *out = NULL;
    CUresult r = cuInit(0);
    if (r != CUDA_SUCCESS)
        return sky_fail(err,
                        "no usable NVIDIA driver: cuInit failed with %s (%s); check nvidia-smi, or run "
                        "with --backend cpu",
                        sky_cu_error_name(r), sky_cu_error_string(r));
    int driver = 0, count = 0;
    SKY_CU_CHECK(cuDriverGetVersion(&driver));
    if (driver / 1000 < CUDA_VERSION / 1000)
        return sky_fail(err,
                        "the NVIDIA driver supports CUDA %d.%d, this program was built with CUDA %d.%d; "
                        "update the driver",
                        driver / 1000, driver % 1000 / 10, CUDA_VERSION / 1000, CUDA_VERSION % 1000 / 10);
    r = cuDeviceGetCount(&count);
    if (r != CUDA_SUCCESS || count == 0)
        return sky_fail(err,
                        "no CUDA device found (%s); check nvidia-smi and CUDA_VISIBLE_DEVICES, or run with "
                        "--backend cpu",
                        r != CUDA_SUCCESS ? sky_cu_error_name(r) : "device count 0");
    if (device < 0 || device >= count)
        return sky_fail(err, "GPU %d does not exist: %d CUDA device%s visible (0..%d); check CUDA_VISIBLE_DEVICES",
                        device, count, count == 1 ? " is" : "s are", count - 1);

    sky_cuda *c = calloc(1, sizeof *c);
    if (c == NULL) return sky_fail(err, "out of host memory opening GPU %d", device);
    c->device = device;
    c->driver_version = driver;
    SKY_CU_CHECK(cuDeviceGet(&c->dev, device));
    SKY_CU_CHECK(cuDeviceGetName(c->name, (int)sizeof c->name, c->dev));
    c->cc_major = attr(c->dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MAJOR);
    c->cc_minor = attr(c->dev, CU_DEVICE_ATTRIBUTE_COMPUTE_CAPABILITY_MINOR);
    c->sm_count = attr(c->dev, CU_DEVICE_ATTRIBUTE_MULTIPROCESSOR_COUNT);
    c->l2_bytes = (size_t)attr(c->dev, CU_DEVICE_ATTRIBUTE_L2_CACHE_SIZE);
    c->smem_optin_bytes = (size_t)attr(c->dev, CU_DEVICE_ATTRIBUTE_MAX_SHARED_MEMORY_PER_BLOCK_OPTIN);
    SKY_CU_CHECK(cuDeviceTotalMem(&c->total_bytes, c->dev));

    r = cuDevicePrimaryCtxRetain(&c->ctx, c->dev);
    if (r != CUDA_SUCCESS) {
        sky_fail(err,
                 "cannot create a context on GPU %d (%s): %s (%s); is the GPU in exclusive mode and used "
                 "by another process (nvidia-smi)?",
                 device, c->name, sky_cu_error_name(r), sky_cu_error_string(r));
        free(c);
        return SKY_ERR;
    }
    SKY_CU_CHECK(cuCtxSetCurrent(c->ctx));
    /* The runtime API (ours and cuBLASLt's) binds to the same primary context. */
    SKY_CUDA_CHECK(cudaSetDevice(device));
    SKY_CU_CHECK(cuStreamCreate(&c->stream, CU_STREAM_NON_BLOCKING));
    *out = c;
    return SKY_OK;
}

void sky_cuda_bind(const sky_cuda *c)
{
    SKY_CU_CHECK(cuCtxSetCurrent(c->ctx));
    SKY_CUDA_CHECK(cudaSetDevice(c->device));
}

void sky_cuda_set_debug(sky_cuda *c, int no_graph, int sync_check)
{
    c->no_graph = no_graph != 0;
    c->sync_check = sync_check != 0;
}

void sky_cuda_mem_info(const sky_cuda *c, size_t *free_bytes, size_t *total_bytes)
{
    size_t f = 0, t = 0;
    (void)c; /* the context is current on this thread */
    SKY_CU_CHECK(cuMemGetInfo(&f, &t));
    if (free_bytes != NULL) *free_bytes = f;
    if (total_bytes != NULL) *total_bytes = t;
}

sky_status sky_cuda_mem_free(int device, size_t *free_bytes, size_t *total_bytes, sky_err *err)
{
    sky_cuda *c;
    *free_bytes = *total_bytes = 0;
    if (sky_cuda_open(&c, device, err)) return SKY_ERR;
    sky_cuda_mem_info(c, free_bytes, total_bytes);
    sky_cuda_close(c);
    return SKY_OK;
}

static int process_device; /* sky_cuda_process_device */

sky_status sky_cuda_set_device(int device, sky_err *err)
{
    sky_cuda *c;
    CUcontext ctx;
    if (sky_cuda_open(&c, device, err)) return SKY_ERR;
    SKY_CU_CHECK(cuDevicePrimaryCtxRetain(&ctx, c->dev)); /* held past sky_cuda_close's release */
    sky_cuda_close(c);
    process_device = device;
    return SKY_OK;
}

int sky_cuda_process_device(void) { return process_device; }

sky_status sky_cuda_require(const sky_cuda *c, size_t bytes, const char *what, sky_err *err)
{
    size_t free_bytes = 0, total = 0;
    sky_cuda_mem_info(c, &free_bytes, &total);
    if (bytes <= free_bytes) return SKY_OK;
    char need[32], have[32], all[32];
    return sky_fail(err,
                    "%s needs %s (%zu bytes) on GPU %d (%s), %s (%zu bytes) free of %s; close other "
                    "programs on this GPU (nvidia-smi) or use fewer frames per window (--base_num_frames)",
                    what, sky_bytes_fmt(need, sizeof need, bytes), bytes, c->device, c->name,
                    sky_bytes_fmt(have, sizeof have, free_bytes), free_bytes, sky_bytes_fmt(all, sizeof all, total));
}

/* ---- device memory ------------------------------------------------------------------------ */

/* What sky_cuda_arena_alloc holds, over every GPU of the process: each allocation's pointer and size (so that
 * a free knows its size), the bytes held now and the most held at once. */
static struct {
    pthread_mutex_t m;
    struct held {
        void  *p;
        size_t bytes;
    } * held;
    int    n, cap;
    size_t live, peak;
} mem = {.m = PTHREAD_MUTEX_INITIALIZER};

/* Count an allocation; 0 when out of host memory for the table. */
static int mem_count(void *p, size_t bytes)
{
    pthread_mutex_lock(&mem.m);
    int ok = 1;
    if (mem.n == mem.cap) {
        const int    cap = mem.cap ? 2 * mem.cap : 64;
        struct held *grown = realloc(mem.held, (size_t)cap * sizeof *grown);
        if (grown)
            mem.held = grown, mem.cap = cap;
        else
            ok = 0;
    }
    if (ok) {
        mem.held[mem.n++] = (struct held){p, bytes};
        mem.live += bytes;
        if (mem.live > mem.peak) mem.peak = mem.live;
    }
    pthread_mutex_unlock(&mem.m);
    return ok;
}

static void mem_uncount(void *p)
{
    pthread_mutex_lock(&mem.m);
    for (int i = 0; i < mem.n; i++)
        if (mem.held[i].p == p) {
            mem.live -= mem.held[i].bytes;
            mem.held[i] = mem.held[--mem.n];
            break;
        }
    pthread_mutex_unlock(&mem.m);
}

void sky_cuda_mem_bytes(size_t *live, size_t *peak)
{
    pthread_mutex_lock(&mem.m);
    if (live) *live = mem.live;
    if (peak) *peak = mem.peak;
    pthread_mutex_unlock(&mem.m);
}

sky_status sky_cuda_device_info(int device, char *name, size_t n, int *driver, sky_err *err)
{
    CUdevice dev;
    int      count = 0;
    CUresult r = cuInit(0);
    if (r == CUDA_SUCCESS) r = cuDriverGetVersion(driver);
    if (r == CUDA_SUCCESS) r = cuDeviceGetCount(&count);
    if (r == CUDA_SUCCESS && device >= count) r = CUDA_ERROR_INVALID_DEVICE;
    if (r == CUDA_SUCCESS) r = cuDeviceGet(&dev, device);
    if (r == CUDA_SUCCESS) r = cuDeviceGetName(name, (int)n, dev);
    if (r != CUDA_SUCCESS)
        return sky_fail(err, "GPU %d: no name from the driver: %s (%s); check nvidia-smi", device, sky_cu_error_name(r),
                        sky_cu_error_string(r));
    return SKY_OK;
}

sky_status sky_cuda_arena_alloc(sky_cuda *c, size_t bytes, void **dptr, const char *what, sky_err *err)
{
    *dptr = NULL;
    if (sky_cuda_require(c, bytes, what, err) != SKY_OK) return SKY_ERR;
    CUdeviceptr p = 0;
    CUresult    r = cuMemAlloc(&p, bytes > 0 ? bytes : 1);
    if (r != CUDA_SUCCESS) {
        char need[32];
        /* Free memory is fragmented or was taken meanwhile; the context stays usable. */
        return sky_fail(err,
                        "%s: allocating %s (%zu bytes) on GPU %d (%s) failed: %s (%s); close other "
                        "programs on this GPU (nvidia-smi) or use fewer frames per window",
                        what, sky_bytes_fmt(need, sizeof need, bytes), bytes, c->device, c->name, sky_cu_error_name(r),
                        sky_cu_error_string(r));
    }
    if (!mem_count((void *)(uintptr_t)p, bytes)) {
        SKY_CU_CHECK(cuMemFree(p));
        return sky_fail(err, "%s: out of host memory counting a device allocation", what);
    }
    *dptr = (void *)(uintptr_t)p;
    return SKY_OK;
}

void sky_cuda_arena_free(sky_cuda *c, void *dptr)
{
    (void)c;
    if (dptr == NULL) return;
    mem_uncount(dptr);
    SKY_CU_CHECK(cuMemFree((CUdeviceptr)(uintptr_t)dptr));
}

sky_status sky_cuda_host_alloc(sky_cuda *c, size_t bytes, void **p, const char *what, sky_err *err)
{
    *p = NULL;
    const CUresult r = cuMemAllocHost(p, bytes > 0 ? bytes : 1);
    if (r != CUDA_SUCCESS) {
        *p = NULL;
        return sky_fail(err,
                        "%s: allocating %zu bytes of pinned host memory for GPU %d failed: %s; free host memory "
                        "or use fewer frames per window",
                        what, bytes, c->device, sky_cu_error_name(r));
    }
    return SKY_OK;
}

void sky_cuda_host_free(void *p)
{
    if (p) SKY_CU_CHECK(cuMemFreeHost(p));
}

void sky_cuda_sync(sky_cuda *c) { SKY_CU_CHECK(cuStreamSynchronize(c->stream)); }

void sky_cuda_sync_check_(sky_cuda *c, const char *what, const char *func, const char *file, int line)
{
    if (!c->sync_check) return;
    CUstreamCaptureStatus cs = CU_STREAM_CAPTURE_STATUS_NONE;
    SKY_CU_CHECK(cuStreamIsCapturing(c->stream, &cs));
    if (cs != CU_STREAM_CAPTURE_STATUS_NONE) return;
    CUresult r = cuStreamSynchronize(c->stream);
    if (r == CUDA_SUCCESS) return;
    char extra[512];
    snprintf(extra, sizeof extra, "  --sync-check: the stream failed after op '%s'", what);
    sky_gpu_fatal_("CUDA driver", sky_cu_error_name(r), sky_cu_error_string(r), "cuStreamSynchronize(c->stream)", func,
                   file, line, extra);
}

void sky_cuda_close(sky_cuda *c)
{
    if (c == NULL) return;
    if (c->stream != NULL) {
        SKY_CU_CHECK(cuStreamSynchronize(c->stream));
        SKY_CU_CHECK(cuStreamDestroy(c->stream));
    }
    if (c->ctx != NULL) SKY_CU_CHECK(cuDevicePrimaryCtxRelease(c->dev));
    free(c);
}

/* ---- CUDA Graph cache ---------------------------------------------------------------- */

typedef struct graph_slot {
    int         used;
    int         key;
    CUgraphExec exec;     /* NULL until the key's second run */
    uint64_t    last_use; /* for least-recently-used eviction */
} graph_slot;

struct sky_graph_cache {
    sky_cuda  *c;
    int        max_keys;
    int        captures;
    uint64_t   clock;
    graph_slot slot[64];
};

sky_status sky_graph_cache_init(sky_graph_cache **out, sky_cuda *c, int max_keys, sky_err *err)
{
    *out = NULL;
    int cap = (int)(sizeof((sky_graph_cache *)0)->slot / sizeof((sky_graph_cache *)0)->slot[0]);
    if (max_keys < 1 || max_keys > cap)
        return sky_fail(err, "graph cache: max_keys = %d, must be in 1..%d", max_keys, cap);
    sky_graph_cache *g = calloc(1, sizeof *g);
    if (g == NULL) return sky_fail(err, "out of host memory for the graph cache");
    g->c = c;
    g->max_keys = max_keys;
    *out = g;
    return SKY_OK;
}

/* The slot of key, or NULL. */
static graph_slot *find_slot(sky_graph_cache *g, int key)
{
    for (int i = 0; i < g->max_keys; i++)
        if (g->slot[i].used && g->slot[i].key == key) return &g->slot[i];
    return NULL;
}

/* A free slot, or the least recently used one emptied. */
static graph_slot *take_slot(sky_graph_cache *g)
{
    graph_slot *lru = &g->slot[0];
    for (int i = 0; i < g->max_keys; i++) {
        if (!g->slot[i].used) return &g->slot[i];
        if (g->slot[i].last_use < lru->last_use) lru = &g->slot[i];
    }
    /* A graph still running is freed by the driver when it completes. */
    if (lru->exec != NULL) SKY_CU_CHECK(cuGraphExecDestroy(lru->exec));
    memset(lru, 0, sizeof *lru);
    return lru;
}

/* Capture record() on the stream into a new executable graph for key. */
static sky_status capture(sky_graph_cache *g, int key, sky_graph_record_fn record, void *ctx, CUgraphExec *exec,
                          sky_err *err)
{
    CUstream s = g->c->stream;
    CUgraph  graph = NULL;
    /* THREAD_LOCAL: an unsafe call (an allocation, a synchronisation) made by record() on
     * this thread fails the capture instead of going unnoticed. */
    SKY_CU_CHECK(cuStreamBeginCapture(s, CU_STREAM_CAPTURE_MODE_THREAD_LOCAL));
    record(ctx, s);
    CUresult r = cuStreamEndCapture(s, &graph);
    if (r != CUDA_SUCCESS || graph == NULL) {
        if (graph != NULL) cuGraphDestroy(graph);
        return sky_fail(err,
                        "capturing the CUDA Graph of the step for key %d failed: %s (%s); a launch in the "
                        "step is not capturable or failed; run with --no-graph --sync-check to name it",
                        key, sky_cu_error_name(r), sky_cu_error_string(r));
    }
    r = cuGraphInstantiate(exec, graph, 0);
    SKY_CU_CHECK(cuGraphDestroy(graph)); /* the executable graph keeps what it needs */
    if (r != CUDA_SUCCESS) {
        *exec = NULL;
        return sky_fail(err,
                        "instantiating the CUDA Graph of the step for key %d failed: %s (%s); run with "
                        "--no-graph to go on without graphs",
                        key, sky_cu_error_name(r), sky_cu_error_string(r));
    }
    SKY_CU_CHECK(cuGraphUpload(*exec, s));
    g->captures++;
    return SKY_OK;
}

sky_status sky_graph_run(sky_graph_cache *g, int key, sky_graph_record_fn record, void *ctx, sky_err *err)
{
    sky_cuda *c = g->c;
    if (c->no_graph || c->sync_check) {
        record(ctx, c->stream);
        return SKY_OK;
    }
    graph_slot *sl = find_slot(g, key);
    if (sl == NULL) { /* first run of key: eager, as a warm-up */
        sl = take_slot(g);
        sl->used = 1;
        sl->key = key;
        sl->last_use = ++g->clock;
        record(ctx, c->stream);
        return SKY_OK;
    }
    if (sl->exec == NULL && capture(g, key, record, ctx, &sl->exec, err) != SKY_OK) return SKY_ERR;
    sl->last_use = ++g->clock;
    SKY_CU_CHECK(cuGraphLaunch(sl->exec, c->stream));
    return SKY_OK;
}

int sky_graph_cache_captures(const sky_graph_cache *g) { return g->captures; }

int sky_graph_cache_size(const sky_graph_cache *g)
{
    int n = 0;
    for (int i = 0; i < g->max_keys; i++) n += g->slot[i].exec != NULL;
    return n;
}

void sky_graph_cache_free(sky_graph_cache *g)
{
    if (g == NULL) return;
    for (int i = 0; i < g->max_keys; i++)
        if (g->slot[i].exec != NULL) SKY_CU_CHECK(cuGraphExecDestroy(g->slot[i].exec));
    free(g);
}
