/* runtime/cuda_program.h — what generated CUDA host code (out/<variant>/gen/<program>_cuda.c) uses.
 *
 * The generated launch sequence reads device pointers from a sky_cuda_program (the arena and the
 * uploaded weights, both allocated once by the runtime), launches kernels by index into the
 * program's CUfunction table, and runs GEMMs by index into its cuBLASLt descriptor table (built once
 * at start-up: no descriptor, heuristic or allocation inside a step). The macros below keep the
 * generated code one readable statement per op.
 */
#ifndef SKY_CUDA_PROGRAM_H
#define SKY_CUDA_PROGRAM_H

#include <cuda.h>
#include <stddef.h>
#include <stdint.h>

#include "gemm.h"               /* sky_gemm_desc, the GEMM table's rows */
#include "dit_plugin.h"         /* sky_dit_cuda_plugin; program.h: sky_slot */

/* The state a generated program's launches read. */
typedef struct sky_cuda_program {
    CUdeviceptr         arena;          /* the plan's arena */
    const CUdeviceptr  *w;              /* one device pointer per weights-table entry */
    const CUfunction   *fn;             /* one function per kernel name, table order */
    void               *gemm;           /* the runtime's GEMM set (runtime/gemm.h) */
    int                 sync_check;     /* --sync-check: synchronise after each launch */
    /* --trace: called after every op with the op's output in the arena (never while capturing) */
    void (*trace)(const struct sky_cuda_program *st, CUstream s, const char *name, size_t off, int dtype,
                  long long n, int cl);
    void               *trace_ctx;
} sky_cuda_program;

/* What the generated gen/dit_forward_cuda.c describes: the kernels (their source for NVRTC and their
 * names, table order), the GEMM table, each weight's device dtype, the CUDA plan's arena and input
 * slots, and the launch sequence of one forward. */
typedef struct sky_dit_cuda_desc {
    const char                *kernels_src;
    int                        n_kernels;
    const char *const         *kernel_names;
    int                        n_gemms;
    const sky_gemm_desc       *gemms;
    int                        n_weights;
    const unsigned char       *weight_bf16;     /* 1: uploaded as bf16, 0: fp32 */
    size_t                     arena_bytes;
    int                        attention_smem;  /* dynamic shared memory of the attention kernels */
    sky_slot                   x, y, t, context, clip_fea, fps, v;   /* bytes 0 where absent */
    void (*record)(const struct sky_cuda_program *st, CUstream s, int F, int H, int W, int Ft);
} sky_dit_cuda_desc;

/* How the plugin uploads one weight of a VAE program: a convolution kernel with its input channel moved
 * last ([cout][cin][taps] -> [cout][taps][cin_pad], zeros for the channels past cin), or, when cout is
 * 0, as stored. */
typedef struct sky_weight_layout {
    int cout, cin, taps, cin_pad;
} sky_weight_layout;

/* What a generated gen/vae_decode_cuda.c or gen/vae_encode_cuda.c describes: the kernels, the GEMM table,
 * each weight's upload layout (all fp32), the arena, the input and output slots (channels-first, as the
 * CPU program's), the caches to zero at the start of a sequence, and the launch sequence of one call
 * (one chunk: H x W of this call, first = 1 for the sequence's first chunk). */
typedef struct sky_vae_cuda_desc {
    const char                *kernels_src;
    const char                *kernels_file;    /* the name NVRTC compiles it under */
    int                        n_kernels;
    const char *const         *kernel_names;
    int                        n_gemms;
    const sky_gemm_desc       *gemms;
    int                        n_weights;
    const sky_weight_layout   *weight_layout;
    size_t                     arena_bytes;
    int                        conv_smem;       /* dynamic shared memory of the conv kernels */
    sky_slot                   in, out;
    int                        n_states;
    const sky_slot            *states;
    void (*record)(const struct sky_cuda_program *st, CUstream s, int H, int W, int first);
} sky_vae_cuda_desc;

/* --trace in a plugin program: the binary's hook and a host staging buffer. */
typedef struct sky_cuda_trace {
    sky_trace_fn fn;
    void        *ctx;
    void        *host;
    size_t       cap;
} sky_cuda_trace;

/* Copy one op's output (n values of dtype at arena offset off) to the host and hand it to t->fn. */
void sky_cuda_trace_copy(sky_cuda_trace *t, const sky_cuda_program *st, CUstream s, const char *name, size_t off,
                         int dtype, long long n, int cl);

/* A program's kernels through NVRTC (cached): module and one function per name; the kernels whose
 * names start with smem_prefix (or none when NULL) may use smem bytes of dynamic shared memory. */
struct sky_cuda;
sky_status sky_cuda_kernels_load(struct sky_cuda *c, const char *src, const char *file, int n,
                                 const char *const *names, const char *smem_prefix, int smem, CUmodule *module,
                                 CUfunction *fn, sky_err *err);

/* The plugin's entry points (dit_cuda.c, vae_cuda.c; the table is in cuda_program.c). */
sky_status sky_dit_cuda_open(void **out, const sky_dit_program *p, const float *const *w, sky_err *err);
void sky_dit_cuda_forward(void *d, int F, int H, int W, const float *x, const float *y, const double *t, int Ft,
                          const float *context, const float *clip_fea, int64_t fps, float *v);
const char *sky_dit_cuda_device(void *d);
void sky_dit_cuda_close(void *d);
void sky_dit_cuda_set_trace(void *d, sky_trace_fn fn, void *ctx);
sky_status sky_vae_cuda_open(void **out, const sky_vae_program *p, int decode, const float *const *w, sky_err *err);
void sky_vae_cuda_reset(void *v);
void sky_vae_cuda_chunk(void *v, int H, int W, int first, const float *in, size_t n_in, float *out, size_t n_out);
void sky_vae_cuda_set_trace(void *v, sky_trace_fn fn, void *ctx);
const char *sky_vae_cuda_device(void *v);
void sky_vae_cuda_close(void *v);

/* Launch f on stream s with the kernel parameters args (checked; on failure the runtime reports the
 * kernel's index and the CUDA error and ends the process: a failed launch after validation means a
 * bug or a lost device). */
void sky_cuda_launch(const sky_cuda_program *st, int kernel, unsigned gx, unsigned gy, unsigned bx,
                     unsigned smem, CUstream s, void **args);

/* GEMM number i of the program's table on m rows. */
void sky_cuda_gemm(const sky_cuda_program *st, int i, int m, CUdeviceptr x, CUdeviceptr w, CUdeviceptr bias,
                   CUdeviceptr y, CUstream s);

/* Macros of the generated launch sequence (st and s are in scope there). */
#define PTR(off)   &(CUdeviceptr){ st->arena + (CUdeviceptr)(off) }
#define WPTR(i)    &(CUdeviceptr){ st->w[i] }
#define INT(v)     &(int){ (int)(v) }
#define LL(v)      &(long long){ (long long)(v) }
#define FLT(v)     &(float){ (v) }
#define CDIV(a, b) ((unsigned)(((long long)(a) + (b) - 1) / (b)))
#define LAUNCH(k, gx, gy, bx, smem, ...) \
    sky_cuda_launch(st, (k), (unsigned)(gx), (unsigned)(gy), (unsigned)(bx), (unsigned)(smem), s, (void *[]){ __VA_ARGS__ })
#define TRACE(name, off, dtype, n, cl) \
    do { if (st->trace) st->trace(st, s, (name), (off), (dtype), (long long)(n), (cl)); } while (0)
/* A GEMM whose W is an activation (the VAE attention's K and V), no bias: arena byte offsets. */
#define GEMM_ACT(i, m, x_off, w_off, y_off) \
    sky_cuda_gemm(st, (i), (m), st->arena + (x_off), st->arena + (w_off), 0, st->arena + (y_off), s)
#define GEMM(i, m, x_off, w_i, b_i, y_off) \
    sky_cuda_gemm(st, (i), (m), st->arena + (x_off), st->w[w_i], st->w[b_i], st->arena + (y_off), s)

#endif /* SKY_CUDA_PROGRAM_H */
