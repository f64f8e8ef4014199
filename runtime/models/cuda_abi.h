/* runtime/models/cuda_abi.h — the CUDA backend (dit_forward, the VAE programs, the encoders) as a plugin.
 *
 * libskyreels-<variant>-cuda.so (built beside the binary when the CUDA toolkit is found; see
 * CMakeLists.txt) holds runtime/cuda/dit_cuda.c, vae_cuda.c, enc_cuda.c and the generated
 * gen/{dit_forward,vae_decode,vae_encode,text_encode,clip_encode}_cuda.c. The binary dlopen's it only for
 * --backend cuda (the loader: runtime/models/cuda_plugin.h), so the CPU binary starts on machines without a
 * CUDA driver. The binary checks the checkpoint against the program's table (weights.h) and hands the
 * plugin a reader; the plugin reads one tensor at a time as fp32, converts it to its device form and
 * uploads it, so host memory never holds the whole model. Plain C types only: this header needs no CUDA header.
 */
#ifndef SKY_PLUGIN_ABI_H
#define SKY_PLUGIN_ABI_H

#include <stddef.h>
#include <stdint.h>

#include "models/program.h"
#include "models/prompt_cache.h"
#include "core/status.h"
#include "models/teacache.h" /* sky_dit_skip */

/* One row of the kernel selftest (runtime/cuda/selftest_cuda.c): a kernel of the plugin run at a small
 * shape on the device against a CPU reference computed from the same bf16-rounded inputs. */
typedef struct sky_selftest_row {
    char   family[32];   /* e.g. "attention" */
    char   kernel[128];  /* the kernel's full name in the generated source */
    char   fallback[32]; /* the family member that replaces it when it fails ("" when none) */
    double max_err;      /* max |gpu - cpu| over the output */
    double bound;        /* derived from bf16 rounding (selftest_cuda.c) */
    int    pass;         /* max_err <= bound, and every value finite */
} sky_selftest_row;

#define SKY_SELFTEST_MAX_ROWS 64

/* The verdict of one device for this plugin: cached beside the NVRTC cache (selftest_cuda.c). */
typedef struct sky_selftest_table {
    int              n;
    sky_selftest_row rows[SKY_SELFTEST_MAX_ROWS];
    int              cached;      /* 1: read from the cache file, not run now */
    char             device[320]; /* the device, as sky_cuda_plugin.device */
    char             path[1024];  /* the cache file */
} sky_selftest_table;

typedef struct sky_cuda_plugin {
    int         abi;     /* SKY_CUDA_PLUGIN_ABI */
    const char *variant; /* the variant it was generated for */
    /* dit_forward on GPU `device` (0; 1 for the second transformer of --use_cfg_parallel). Every entry point
     * makes its program's device current on the calling thread, so programs on different GPUs can run at
     * once from different threads (one thread per program at a time).
     * offload_blocks: 0 keeps every weight on the device; N >= 1 keeps the blocks' weights in pinned host memory
     * and N of them on the device at a time, the next copied while one computes (--offload_blocks; N at least
     * the block count is the same as 0).
     * weight_fp8 (--weight_dtype fp8): w reads the block linear weights unquantised (LoRAs merged); the plugin
     * quantises them per row as models/fp8_quant.h does and keeps them on the device as fp8 (e4m3 codes and fp32
     * row scales), expanding each block's to bf16 right before its GEMMs (runtime/cuda/offload.h); the GEMMs read
     * the same bf16 values as the CPU path's fp32 ones rounded.
     */
    sky_status (*open)(void **out, const sky_dit_program *p, const sky_weight_reader *w, int device, int offload_blocks,
                       int weight_fp8, sky_err *err);
    /* One forward of one sample; arguments as sky_dit_forward's (dit.h); skip NULL or as above (after
     * teacache_open). The prompt's keys and values are kept in prompt arena `slot` (0 to
     * SKY_PROMPT_SLOTS - 1, runtime/models/prompt_cache.h): fresh = 1 runs the prompt part from context and clip_fea
     * into it, fresh = 0 uses what it holds (context and clip_fea are then not read). */
    void (*forward)(void *d, int F, int H, int W, const float *x, const float *y, const double *t, int Ft,
                    const float *context, const float *clip_fea, int slot, int fresh, int64_t fps, float *v,
                    const sky_dit_skip *skip);
    /* Allocate what TeaCache keeps on the device (two residuals and a copy of the tokens, at the largest
     * window): once, before the first forward with a skip. */
    sky_status (*teacache_open)(void *d, sky_err *err);
    const char *(*device)(void *d); /* e.g. "GPU 0: NVIDIA H100 80GB HBM3, sm_90, 132 SMs" */
    int (*devices)(void);           /* CUDA devices visible to the driver (0 when none or no driver) */
    void (*close)(void *d);
    /* --trace: hand every op's output of later forwards to fn (program.h); NULL stops. Forwards
     * run without CUDA Graphs while a trace is set. */
    void (*set_trace)(void *d, sky_trace_fn fn, void *ctx);
    /* bench's breakdown: after each later forward, every op's device time (events around each op's kernels) to
     * fn as SKY_TRACE_SECONDS (program.h); NULL stops. Forwards run without CUDA Graphs while it is set. */
    void (*set_timing)(void *d, sky_trace_fn fn, void *ctx);

    /* vae_decode (decode = 1), vae_decode_tile (p->tile > 0, decode = 1), vae_encode or vae_encode_tile (p->tile > 0,
     * decode = 0) of the variant: one chunk per call, the caches kept on the device; vae_reset zeroes them (the start
     * of a sequence). in and out are the CPU program's slots ([C, frames, H*W] floats: n_in and n_out of them); H x W
     * is the call's size, as for forward_cpu. */
    sky_status (*vae_open)(void **out, const sky_vae_program *p, int decode, const sky_weight_reader *w, sky_err *err);
    void (*vae_reset)(void *v);
    void (*vae_chunk)(void *v, int H, int W, int first, const float *in, size_t n_in, float *out, size_t n_out);
    void (*vae_set_trace)(void *v, sky_trace_fn fn, void *ctx);
    const char *(*vae_device)(void *v);
    void (*vae_close)(void *v);

    /* text_encode (text = 1) or clip_encode: in holds in_bytes of the CPU program's input slot (the n
     * token ids as int64, or the pixels), out receives n_out floats ([rows, dim]). */
    sky_status (*enc_open)(void **out, const sky_encoder_program *p, int text, const sky_weight_reader *w,
                           sky_err *err);
    void (*enc_run)(void *e, int n, const void *in, size_t in_bytes, float *out, size_t n_out);
    void (*enc_set_trace)(void *e, sky_trace_fn fn, void *ctx);
    const char *(*enc_device)(void *e);
    void (*enc_close)(void *e);

    /* The kernel selftest of GPU `device`: force = 1 runs it now (and rewrites the cache), force = 0 reads
     * the cached verdict of this device and plugin, running it first when there is none. Fails only when
     * it cannot run (no device, no cache directory); a failed kernel is a row with pass = 0. */
    sky_status (*selftest)(int device, int force, sky_selftest_table *t, sky_err *err);

    /* The device memory of the plugin's own allocations (weights, arenas with their workspaces, TeaCache's
     * buffers; not the CUDA context's nor cuBLASLt's internal ones), summed over its GPUs: held now (*live)
     * and the most held at once since the plugin was loaded (*peak). Either pointer may be NULL. */
    void (*mem_bytes)(size_t *live, size_t *peak);
    /* GPU `device`'s name (e.g. "NVIDIA H200") into name[n] and the driver's CUDA version (13000 for 13.0)
     * into *driver; fails without a driver or such a device. */
    sky_status (*device_info)(int device, char *name, size_t n, int *driver, sky_err *err);
    /* GPU `device`'s free and total memory now (cuMemGetInfo in its primary context, which this creates when
     * no program has yet): what a run's planned peak (models/device_plan.h) is checked against before any
     * model loads. Fails without a driver or such a device. */
    sky_status (*mem_free)(int device, size_t *free_bytes, size_t *total_bytes, sky_err *err);

    /* --use_usp's device collectives over NCCL (runtime/cuda/usp_nccl.h). nccl_id: a new NCCL unique id into
     * id[SKY_PLUGIN_NCCL_ID_BYTES], on rank 0 only (the binary broadcasts the bytes with MPI: dist/usp.h).
     * nccl_open: join the communicator of size ranks named by id as rank, on GPU device (every rank at once).
     * nccl_close: leave it (NULL is fine). A plugin built without NCCL fails them, saying what is missing. */
    sky_status (*nccl_id)(unsigned char *id, sky_err *err);
    sky_status (*nccl_open)(void **out, int device, int rank, int size, const unsigned char *id, sky_err *err);
    void (*nccl_close)(void *comm);
    /* set_device: make GPU device's primary context current on the calling thread (a --use_usp rank's own GPU,
     * before nccl_open and open; fails without a driver or such a device), and the GPU of the VAE and encoders
     * opened after it (vae_open and enc_open take none). use_comm: hand an opened DiT (open's
     * *out) the communicator nccl_open made (NULL: none), so that its forward runs dit_forward_usp over it: the
     * communicator's rank holds its slice of the tokens and the collectives run on the DiT's stream. Fails when
     * the plugin's variant has no dit_forward_usp for the communicator's size (the head count not divisible),
     * or when the DiT and the communicator are on different GPUs. The DiT does not own the communicator. */
    sky_status (*set_device)(int device, sky_err *err);
    sky_status (*use_comm)(void *dit, void *comm, sky_err *err);
} sky_cuda_plugin;

/* The table's layout and meaning: the loader refuses a plugin whose abi differs (rebuild both).
 * 10: mem_bytes and device_info added. 11: the selftest table holds SKY_SELFTEST_MAX_ROWS 32 rows.
 * 12: set_timing added. 13: mem_free added. 14: open takes offload_blocks. 15: vae_open takes vae_decode_tile
 * (sky_vae_program.tile). 16: nccl_id, nccl_open and nccl_close added. 17: open takes weight_fp8.
 * 18: use_comm and set_device. 19: vae_open takes vae_encode_tile (a tile program with decode 0).
 * 20: the selftest table holds SKY_SELFTEST_MAX_ROWS 64 rows (dit_forward_usp's kernels checked too). */
#define SKY_CUDA_PLUGIN_ABI 20

/* The bytes of an NCCL unique id (nccl.h's NCCL_UNIQUE_ID_BYTES; the plugin checks they agree). */
#define SKY_PLUGIN_NCCL_ID_BYTES 128

/* The one symbol the plugin exports: its sky_cuda_plugin table. */
#define SKY_CUDA_PLUGIN_SYMBOL "sky_cuda_plugin_v1"

/* The cuBLASLt workspace of every CUDA program, inside its arena (cuBLAS recommends 32 MiB on Hopper).
 * Fixed: the heuristic's choice of algorithm depends on it. */
#define SKY_GEMM_WORKSPACE_BYTES ((size_t)32 << 20)

#endif /* SKY_PLUGIN_ABI_H */
