/* runtime/cuda/cuda_ctx.h — the CUDA device context, fatal-error checks, device memory, the one
 * stream, and the CUDA Graph cache.
 *
 * Which API. The driver API (cu*) throughout: generated kernels are compiled by NVRTC into
 * cubins and launched with cuModuleLoadData / cuLaunchKernel, which only the driver API
 * has, so the context, memory, stream and graphs use it too and one error type covers
 * them. sky_cuda_open() retains the device's *primary* context and makes it current; the
 * runtime API (used inside cuBLASLt, and by anyone calling cuda*) uses that same primary
 * context, so the two APIs share pointers and streams (CUstream == cudaStream_t).
 *
 * Errors, in two kinds (shared/style.md §7):
 *   - Input errors (no device, not enough memory, a bad cache directory) return SKY_ERR
 *     with a message: what, where, what to do. Out of memory is one of these: the request
 *     is checked against free memory first, and both numbers are in the message.
 *   - CUDA failures after validation go through the check macros below. They print the
 *     error name and string, the device, the failing statement, function and file:line,
 *     then call exit(1): an illegal address or a launch failure poisons the context for
 *     good ("sticky"), so nothing after it can be trusted. Failures a void entry point of
 *     the plugin cannot return (a graph that fails to capture, a slot too small) stop
 *     through SKY_CUDA_FATAL the same way. This is the only place the library prints or
 *     exits. Re-run with --sync-check to name the op that failed.
 *
 * Threads: sky_cuda_open() makes the device's context current on the calling thread; a thread
 * that uses a sky_cuda later (another thread, or after using another device) calls
 * sky_cuda_bind() first. One thread at a time per sky_cuda; several devices may run at once
 * from several threads (--use_cfg_parallel: one transformer per GPU).
 */
#ifndef SKY_CUDA_H
#define SKY_CUDA_H

#include <stddef.h>

#include <cuda.h>
#include <cuda_runtime_api.h>

#include "core/status.h"

/* ---- fatal checks (ggml's CUDA_CHECK_GEN: one helper, one macro per library) ---------- */

/* Print "<library> error: NAME (string)", the current device, the statement, function and
 * file:line, then `extra` when not NULL (an NVRTC log, the op a sync check followed), and
 * exit(1). Shared by SKY_CU_CHECK, SKY_CUDA_CHECK, SKY_CUBLAS_CHECK (gemm.h) and
 * SKY_NVRTC_CHECK (nvrtc.h). */
_Noreturn void sky_gpu_fatal_(const char *library, const char *err_name, const char *err_string, const char *stmt,
                              const char *func, const char *file, int line, const char *extra);

/* Stop on a failure an entry point cannot return as a status (the ABI's void calls: forward, vae_chunk,
 * enc_run, the trace hook): print the formatted message, the current device, function and file:line,
 * then exit(1), as the checks above do. For CUDA results use the check macros. */
_Noreturn void sky_cuda_fatal_(const char *func, const char *file, int line, const char *fmt, ...) SKY_PRINTF(4, 5);
#define SKY_CUDA_FATAL(...) sky_cuda_fatal_(__func__, __FILE__, __LINE__, __VA_ARGS__)

/* Name and description of a driver-API result; never NULL, also when the driver cannot
 * say (the stub libcuda.so answers every call with CUDA_ERROR_STUB_LIBRARY). */
const char *sky_cu_error_name(CUresult r);
const char *sky_cu_error_string(CUresult r);

_Noreturn void sky_cu_fail_(CUresult r, const char *stmt, const char *func, const char *file, int line);
_Noreturn void sky_cudart_fail_(cudaError_t r, const char *stmt, const char *func, const char *file, int line);

static inline void sky_cu_check_(CUresult r, const char *stmt, const char *func, const char *file, int line)
{
    if (r != CUDA_SUCCESS) sky_cu_fail_(r, stmt, func, file, line);
}

static inline void sky_cudart_check_(cudaError_t r, const char *stmt, const char *func, const char *file, int line)
{
    if (r != cudaSuccess) sky_cudart_fail_(r, stmt, func, file, line);
}

/* Driver API (cuLaunchKernel, cuMemcpyHtoDAsync, ...). */
#define SKY_CU_CHECK(call)   sky_cu_check_((call), #call, __func__, __FILE__, __LINE__)
/* Runtime API (cudaGetLastError, ...). */
#define SKY_CUDA_CHECK(call) sky_cudart_check_((call), #call, __func__, __FILE__, __LINE__)

/* ---- the device context -------------------------------------------------------------- */

/* Read-only after sky_cuda_open(), except through sky_cuda_set_debug(). */
typedef struct sky_cuda {
    int       device;             /* ordinal, as in CUDA_VISIBLE_DEVICES order */
    char      name[256];          /* e.g. "NVIDIA H100 80GB HBM3" */
    int       cc_major, cc_minor; /* compute capability, 9.0 for Hopper */
    int       sm_count;           /* multiprocessors (H100 SXM 132, PCIe 114) */
    size_t    total_bytes;        /* device memory */
    size_t    l2_bytes;
    size_t    smem_optin_bytes; /* shared memory a block may opt in to */
    int       driver_version;   /* cuDriverGetVersion, e.g. 13000 */
    CUdevice  dev;
    CUcontext ctx;        /* the primary context, retained */
    CUstream  stream;     /* the one stream every launch goes to (non-blocking) */
    int       no_graph;   /* --no-graph: sky_graph_run() runs record() eagerly */
    int       sync_check; /* --sync-check: SKY_CUDA_SYNC_CHECK synchronises */
} sky_cuda;

/* Initialise the driver, retain device `device`'s primary context and make it current on
 * this thread, read the properties above, create the stream. Fails (no exit) when there is
 * no driver, no such device, or the driver is older than this build's CUDA. */
sky_status sky_cuda_open(sky_cuda **out, int device, sky_err *err);

/* Make c's device and context current on this thread, for the driver API and the runtime API
 * (cuBLASLt) alike. Every entry point of the plugin starts with it (cuda_program.h). */
void sky_cuda_bind(const sky_cuda *c);

/* Debug switches (shared/style.md §7): no_graph runs graph steps eagerly; sync_check
 * synchronises after each SKY_CUDA_SYNC_CHECK and implies eager steps (a stream that is
 * being captured cannot be synchronised). */
void sky_cuda_set_debug(sky_cuda *c, int no_graph, int sync_check);

/* GPU `device`'s free and total memory now, opening (and closing) a sky_cuda on it: the plugin's mem_free
 * (models/cuda_abi.h). */
sky_status sky_cuda_mem_free(int device, size_t *free_bytes, size_t *total_bytes, sky_err *err);

/* Make GPU `device`'s primary context current on this thread (and the runtime API's device), with
 * sky_cuda_open's checks and messages: the plugin's set_device (models/cuda_abi.h). The context stays
 * retained until the process ends, so it is still current when the DiT opened next retains it too. */
sky_status sky_cuda_set_device(int device, sky_err *err);

/* The GPU of the programs opened without one (the VAE's and the encoders'): 0, or the last that
 * sky_cuda_set_device made current (a --use_usp rank's own GPU). */
int sky_cuda_process_device(void);

/* Free and total device memory now (cuMemGetInfo). */
void sky_cuda_mem_info(const sky_cuda *c, size_t *free_bytes, size_t *total_bytes);

/* Fail unless `bytes` fit in free device memory now, with both numbers in the message:
 * "dit_forward needs 47.3 GiB (50790883328 bytes) on GPU 0 (NVIDIA H100 80GB HBM3), 31.2 GiB
 * (33500000000 bytes) free; ...". `what` names the user (a program, "weights"). Call it
 * with the plan's peak (arena + weights) before the first kernel. */
sky_status sky_cuda_require(const sky_cuda *c, size_t bytes, const char *what, sky_err *err);

/* One device allocation (a program's arena, its weights): sky_cuda_require() first, then
 * cuMemAlloc. Out of memory is not fatal: it returns SKY_ERR with the byte counts (and
 * leaves the context usable). *dptr is 256-byte aligned. Free with sky_cuda_arena_free(). */
sky_status sky_cuda_arena_alloc(sky_cuda *c, size_t bytes, void **dptr, const char *what, sky_err *err);
void       sky_cuda_arena_free(sky_cuda *c, void *dptr);

/* Page-locked (pinned) host memory of `bytes` for the copies of every call (cuMemAllocHost on c's context):
 * the DMA engines read and write it directly, so an async copy runs at the bus's speed and does not stage
 * through a driver buffer. Out of memory is a SKY_ERR naming `what`. Free with sky_cuda_host_free(). */
sky_status sky_cuda_host_alloc(sky_cuda *c, size_t bytes, void **p, const char *what, sky_err *err);
void       sky_cuda_host_free(void *p);

/* The device memory sky_cuda_arena_alloc holds (weights, arenas and the cuBLASLt workspace in them, TeaCache's
 * buffers, the selftest's cases), summed over every GPU of the process: now (*live) and the most at once since
 * the process started (*peak). Not the CUDA context's own memory nor cuBLASLt's internal allocations. Either
 * pointer may be NULL. Thread-safe. */
void sky_cuda_mem_bytes(size_t *live, size_t *peak);

/* GPU `device`'s name (cuDeviceGetName, e.g. "NVIDIA H200") into name[n], and the driver's CUDA version
 * (cuDriverGetVersion, 13000 for 13.0) into *driver; SKY_ERR without a driver or such a device. */
sky_status sky_cuda_device_info(int device, char *name, size_t n, int *driver, sky_err *err);

/* Synchronise the stream (checked, fatal on error). */
void sky_cuda_sync(sky_cuda *c);

/* Destroy the stream and release the primary context. NULL is fine. */
void sky_cuda_close(sky_cuda *c);

/* --sync-check: after a launch, synchronise and name the op when it failed. Does nothing
 * unless c->sync_check, and nothing while the stream is being captured. */
void sky_cuda_sync_check_(sky_cuda *c, const char *what, const char *func, const char *file, int line);
#define SKY_CUDA_SYNC_CHECK(c, what) sky_cuda_sync_check_((c), (what), __func__, __FILE__, __LINE__)

/* "47.3 GiB" / "12.0 MiB" / "512 bytes" into buf (at least 32 bytes); returns buf. */
const char *sky_bytes_fmt(char *buf, size_t size, size_t bytes);

/* ---- CUDA Graph cache ---------------------------------------------------------------- */

/* One denoising step is recorded once per distinct key (the latent frame count of the
 * window, say) by stream capture, instantiated, and replayed from then on. The first run
 * of a key is eager: kernels that load lazily (CUDA_MODULE_LOADING=LAZY, the default) and
 * any first-call setup inside cuBLASLt happen outside the capture. The second run
 * captures and launches; later runs replay. A key stands for one exact sequence of
 * launches: the same kernels, the same device pointers, the same sizes. Everything the
 * step reads that changes between replays (latents, timestep, noise level) must live in
 * device memory that the launches point to; host values passed as kernel arguments are
 * frozen into the graph at capture. */
typedef struct sky_graph_cache sky_graph_cache;

/* Enqueue one step's launches on stream s. Use the check macros for failures. It must not
 * allocate, synchronise, or copy to or from pageable host memory (not capturable). */
typedef void (*sky_graph_record_fn)(void *ctx, CUstream s);

/* A cache of at most max_keys keys and their graphs (1..64); when full, the least
 * recently used key and its graph are dropped to make room. */
sky_status sky_graph_cache_init(sky_graph_cache **out, sky_cuda *c, int max_keys, sky_err *err);

/* Run the step for key on c->stream: eagerly on the key's first run, captured and
 * launched on its second, replayed after that. With c->no_graph or c->sync_check, always
 * eagerly. Asynchronous like a launch. Fails (no exit) when the capture or the
 * instantiation fails, naming the key and suggesting --no-graph --sync-check. */
sky_status sky_graph_run(sky_graph_cache *g, int key, sky_graph_record_fn record, void *ctx, sky_err *err);

/* Graphs captured so far (instantiations, eviction included) and graphs held now. */
int sky_graph_cache_captures(const sky_graph_cache *g);
int sky_graph_cache_size(const sky_graph_cache *g);

/* Destroy every graph. NULL is fine. */
void sky_graph_cache_free(sky_graph_cache *g);

#endif /* SKY_CUDA_H */
