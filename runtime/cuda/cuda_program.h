/* runtime/cuda/cuda_program.h — what generated CUDA host code (out/<variant>/gen/<program>_cuda.c) uses.
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

#include "cuda/gemm.h"       /* sky_gemm_desc, the GEMM table's rows */
#include "models/cuda_abi.h" /* sky_cuda_plugin; program.h: sky_slot */

struct sky_cuda_offload; /* dit_forward's block offload (cuda/offload.h) */

/* dit_forward_usp's ranks (--use_usp on CUDA): this rank and the rank count (gen/programs/dit.lua's symbols P and
 * tok0 read them, as `comm->size` and `comm->rank`), and the collectives over the ranks' communicator, queued on
 * stream s so that a captured CUDA Graph records them (the plugin's: NCCL, cuda/usp_nccl.h). alltoall: block p of
 * send (count values at send + p count) to rank p, rank p's block into recv + p count; allgather: every rank's count
 * values of send, in rank order, into recv. dtype: SKY_TRACE_BF16 or SKY_TRACE_F32. A failure ends the process, as
 * a failed launch does (the runtime checked everything before the forward). */
typedef struct sky_cuda_usp {
    int   rank, size;
    void *ctx;
    void (*alltoall)(const struct sky_cuda_usp *u, CUstream s, CUdeviceptr send, CUdeviceptr recv, long long count,
                     int dtype);
    void (*allgather)(const struct sky_cuda_usp *u, CUstream s, CUdeviceptr send, CUdeviceptr recv, long long count,
                      int dtype);
} sky_cuda_usp;

/* The state a generated program's launches read. */
typedef struct sky_cuda_program {
    CUdeviceptr        arena;         /* the plan's arena */
    CUdeviceptr        prompt;        /* dit_forward: the prompt arena of the call's prompt (0 elsewhere) */
    const CUdeviceptr *w;             /* one device pointer per weights-table entry */
    const CUfunction  *fn;            /* one function per kernel name, table order */
    void              *gemm;          /* the runtime's GEMM set (runtime/cuda/gemm.h) */
    int                sync_check;    /* --sync-check: synchronise after each launch */
    int                attn_sm90;     /* 1: the Hopper attention kernel (TMA, wgmma), else the sm_80 one */
    int                fault_kernel;  /* test only: 1 + the index of the kernel whose launches are dropped, 0 none */
    struct sky_cuda_offload *offload; /* dit_forward with --offload_blocks: the slots' copies (NULL: all resident) */
    const sky_cuda_usp *usp;          /* dit_forward_usp: the ranks (NULL for every other program) */
    /* --trace: called after every op with the op's output at device address p (never while capturing) */
    void (*trace)(const struct sky_cuda_program *st, CUstream s, const char *name, CUdeviceptr p, int dtype,
                  long long n, int cl);
    void *trace_ctx;
} sky_cuda_program;

/* One compile-time constant of a kernel instance: its key and its value as the template got it ("1536",
 * "bf16", "1e-06f"). */
typedef struct sky_kernel_const {
    const char *key, *value;
} sky_kernel_const;

/* A kernel of a generated program as data (gen/emit/cuda.lua: kernel_info): its name, its template
 * (templates/cuda/<template>.cu.in) and its constants in key order, the per-channel lists left out. */
typedef struct sky_kernel_info {
    const char             *name;
    const char             *template_name;
    int                     n_consts;
    const sky_kernel_const *consts;
} sky_kernel_info;

/* What the generated gen/dit_forward_cuda.c describes: the kernels (their source for NVRTC and their
 * names, table order), the GEMM table, each weight's device dtype, the CUDA plan's arena and input
 * slots, and the launch sequence of one forward. */
typedef struct sky_dit_cuda_desc {
    const char            *kernels_src;
    int                    n_kernels;
    const char *const     *kernel_names;
    const sky_kernel_info *kernel_info; /* one per kernel, table order */
    int                    n_gemms;
    const sky_gemm_desc   *gemms;
    int                    n_weights;
    const unsigned char   *weight_bf16;  /* 1: uploaded as bf16, 0: fp32 */
    const int             *weight_place; /* each weight's place in the device buffer (sky_cuda_prog.place) */
    const short           *weight_block; /* each weight's block, -1 for none (--offload_blocks: cuda/offload.h) */
    int                    n_blocks;
    size_t                 arena_bytes;
    size_t                 prompt_bytes;     /* one prompt arena: the cross-attention keys and values */
    int                    attention_smem;   /* dynamic shared memory of the sm_80 attention kernels */
    int                    attention90_smem; /* and of the sm_90a ones */
    sky_slot               x, y, t, context, clip_fea, fps, v; /* bytes 0 where absent */
    sky_slot               tokens, hidden, e, e0;              /* what TeaCache reads between the parts (program.h) */
    /* the forward in its four parts (gen/programs/dit.lua): context (once per prompt: it writes the prompt
     * arena st->prompt), embed, blocks, head (apart for TeaCache); a step: embed, blocks and head */
    void (*record_part[4])(const struct sky_cuda_program *st, CUstream s, int F, int H, int W, int Ft);
    void (*record_step)(const struct sky_cuda_program *st, CUstream s, int F, int H, int W, int Ft);
    /* TeaCache on the [L, dim] bf16 tokens of an F x H x W call: y = a + b (apply) or y = a - b */
    void (*teacache)(const struct sky_cuda_program *st, CUstream s, int F, int H, int W, int apply, CUdeviceptr y,
                     CUdeviceptr a, CUdeviceptr b);
    /* --weight_dtype fp8 (cuda/offload.h): y [rows, cols] bf16 = the e4m3 codes x each row's fp32 scale */
    void (*fp8_expand)(const struct sky_cuda_program *st, CUstream s, CUdeviceptr y, CUdeviceptr codes,
                       CUdeviceptr scale, long long rows, long long cols);
} sky_dit_cuda_desc;

/* What a generated gen/text_encode_cuda.c or gen/clip_encode_cuda.c describes: the kernels, the GEMM
 * table, each weight's device dtype, the arena, the input slot (text: the n token ids as int64; clip: the
 * preprocessed pixels, fp32) and the output slot (fp32 [rows, dim], as the CPU program's), and the launch
 * sequence of one call (n: the prompt's real tokens; unused by clip_encode). */
typedef struct sky_enc_cuda_desc {
    const char            *kernels_src;
    const char            *kernels_file;
    int                    n_kernels;
    const char *const     *kernel_names;
    const sky_kernel_info *kernel_info; /* one per kernel, table order */
    int                    n_gemms;
    const sky_gemm_desc   *gemms;
    int                    n_weights;
    const unsigned char   *weight_bf16;
    size_t                 arena_bytes;
    sky_slot               in, out;
    void (*record)(const struct sky_cuda_program *st, CUstream s, int n);
} sky_enc_cuda_desc;

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
    const char              *kernels_src;
    const char              *kernels_file; /* the name NVRTC compiles it under */
    int                      n_kernels;
    const char *const       *kernel_names;
    const sky_kernel_info   *kernel_info; /* one per kernel, table order */
    int                      n_gemms;
    const sky_gemm_desc     *gemms;
    int                      n_weights;
    const sky_weight_layout *weight_layout;
    size_t                   arena_bytes;
    int                      conv_smem; /* dynamic shared memory of the conv kernels */
    sky_slot                 in, out;
    int                      n_states;
    const sky_slot          *states;
    void (*record)(const struct sky_cuda_program *st, CUstream s, int H, int W, int first);
} sky_vae_cuda_desc;

/* --trace in a plugin program: the binary's hook and a host staging buffer; or, with timing set (bench's
 * breakdown), an event recorded after each op instead of a copy: between sky_cuda_timing_begin and _end
 * the ops' names and events are kept (ev[0] the start), and _end hands the hook each op's device time. */
typedef struct sky_cuda_trace {
    sky_trace_fn fn;
    void        *ctx;
    void        *host;
    size_t       cap;
    int          timing, active; /* timing mode; between begin and end */
    int          n, cap_ev;      /* ops recorded; events created */
    CUevent     *ev;             /* cap_ev events: the start, then one after each op */
    const char **names;          /* the ops' names (the generated code's literals) */
    long long   *counts;         /* their outputs' element counts */
} sky_cuda_trace;

/* Copy one op's output (n values of dtype at device address p) to the host and hand it to t->fn. */
void sky_cuda_trace_copy(sky_cuda_trace *t, CUstream s, const char *name, CUdeviceptr p, int dtype, long long n,
                         int cl);

/* The kernels among fn (n of them, named names) whose names start with prefix (none when NULL) may use
 * smem bytes of dynamic shared memory. */
void sky_cuda_smem_limit(int n, const char *const *names, const CUfunction *fn, const char *prefix, int smem);

/* A program's kernels: built into the plugin when they cover the GPU (fatbin.h), else through NVRTC (cached);
 * module and one function per name; sky_cuda_smem_limit for smem_prefix. Which of the two into how[how_size]. */
struct sky_cuda;
sky_status sky_cuda_kernels_load(struct sky_cuda *c, const char *src, const char *file, int n, const char *const *names,
                                 const char *smem_prefix, int smem, CUmodule *module, CUfunction *fn, char *how,
                                 size_t how_size, sky_err *err);

/* What every program of the plugin holds (dit_cuda.c, vae_cuda.c, enc_cuda.c; cuda_program.c): the
 * device, the kernels, the weights in one buffer, the arena, the GEMM table and its workspace, what the
 * launch sequence reads, the --trace hook. Opened in three steps, for the weights come in between:
 *   sky_cuda_prog_begin   the device, the kernels; the arena checked against free memory
 *   (the weights)         sky_cuda_prog_upload (per-weight dtypes) or sky_cuda_prog_weights (any device
 *                         form), one tensor at a time from the binary's reader
 *   sky_cuda_prog_end     the arena (zeroed), the GEMM table, st
 * The arena is one device allocation: the plan's arena, the cuBLASLt workspace, then what the program keeps
 * between calls beside the plan (kept_bytes: dit_forward's prompt arenas). The program lives on GPU `device`
 * (0, or 1 for the second transformer of --use_cfg_parallel); every entry point of the plugin binds it to the
 * calling thread first (sky_cuda_prog_bind), so a program may be used from any thread, one at a time. */
typedef struct sky_cuda_prog {
    const char      *name; /* the program, for messages */
    struct sky_cuda *c;
    CUmodule         module;
    CUfunction      *fn;
    CUdeviceptr      weights; /* one buffer, each tensor 256-byte aligned */
    CUdeviceptr     *w;
    const int       *place;       /* NULL: the weights in index order in it; else weight i is the place[i]-th (a
                               permutation: dit_forward's q, k and v weights adjacent, one GEMM's [3C, C]) */
    size_t           arena_bytes; /* the plan's arena */
    size_t           kept_bytes;  /* and what the program keeps beside it */
    CUdeviceptr      arena;       /* the one allocation: plan arena, workspace, kept */
    CUdeviceptr      workspace;   /* the cuBLASLt workspace, inside it */
    CUdeviceptr      kept;        /* kept_bytes inside it (0 when none) */
    sky_gemm_set    *gemm;
    sky_cuda_program st;
    sky_cuda_trace   trace;
    char             device[320];
    int              fault_kernel; /* sky_cuda_fault_kernel of its kernels (test only) */
} sky_cuda_prog;

sky_status sky_cuda_prog_begin(sky_cuda_prog *pr, const char *name, int device, const char *src, const char *file,
                               int n_kernels, const char *const *kernel_names, const char *smem_prefix, int smem,
                               int n_weights, size_t arena_bytes, size_t kept_bytes, sky_err *err);
/* Make pr's device current on this thread (sky_cuda_bind); nothing for a program that never opened one. */
void sky_cuda_prog_bind(const sky_cuda_prog *pr);
/* n weights read through r, tensor i uploaded as bf16 where bf16[i], else as fp32. */
sky_status sky_cuda_prog_upload(sky_cuda_prog *pr, const sky_weight_desc *wd, int n, const unsigned char *bf16,
                                const sky_weight_reader *r, sky_err *err);
/* The same with the blocks' weights offloaded (cuda/offload.h) into *o with n_slots slots (1 .. n_blocks - 1);
 * block[i] is weight i's block, -1 for a weight kept on the device. */
sky_status sky_cuda_prog_upload_blocks(sky_cuda_prog *pr, const sky_weight_desc *wd, int n, const unsigned char *bf16,
                                       const short *block, int n_blocks, int n_slots, struct sky_cuda_offload **o,
                                       const sky_weight_reader *r, sky_err *err);
/* The same for --weight_dtype fp8 (cuda/offload.h): the blocks' linear weights (models/fp8_quant.h, bf16 on the
 * device) kept as fp8 and expanded by expand into n_slots bf16 slots (1 .. n_blocks); the rest resident. */
sky_status sky_cuda_prog_upload_fp8(sky_cuda_prog *pr, const sky_weight_desc *wd, int n, const unsigned char *bf16,
                                    const short *block, int n_blocks, int n_slots,
                                    void (*expand)(const sky_cuda_program *st, CUstream s, CUdeviceptr y,
                                                   CUdeviceptr codes, CUdeviceptr scale, long long rows,
                                                   long long cols),
                                    struct sky_cuda_offload **o, const sky_weight_reader *r, sky_err *err);
/* n weights in their device form: tensor i is read through r as src_count[i] fp32 values, turned into
 * dev_bytes[i] bytes by form(ctx, i, src, dst), and uploaded at its own 256-byte aligned offset, in the
 * order pr->place gives (index order without it). The device buffer is allocated first; the host holds one
 * tensor (both forms) at a time. */
typedef void (*sky_weight_form_fn)(void *ctx, int i, const float *src, void *dst);
sky_status sky_cuda_prog_weights(sky_cuda_prog *pr, int n, const size_t *src_count, const size_t *dev_bytes,
                                 sky_weight_form_fn form, void *ctx, const sky_weight_reader *r, sky_err *err);
sky_status sky_cuda_prog_end(sky_cuda_prog *pr, const sky_gemm_desc *gemms, int n_gemms, sky_err *err);
/* Everything of pr freed (not pr itself); a partly opened pr is fine. */
void sky_cuda_prog_close(sky_cuda_prog *pr);
void sky_cuda_prog_set_trace(sky_cuda_prog *pr, sky_trace_fn fn, void *ctx);
/* The ops' device times to fn (NULL: off): while set, the program runs eagerly; after each call that starts with
 * sky_cuda_timing_begin and ends with sky_cuda_timing_end (after the stream is synchronised), fn gets each op in
 * order: its name, data pointing to one double (the seconds from the previous op's event, or from the start, to
 * its own), dtype SKY_TRACE_SECONDS, n its output's element count. */
void sky_cuda_prog_set_timing(sky_cuda_prog *pr, sky_trace_fn fn, void *ctx);
void sky_cuda_timing_begin(sky_cuda_prog *pr, CUstream s);
void sky_cuda_timing_end(sky_cuda_prog *pr);

/* The plugin's entry points (dit_cuda.c, vae_cuda.c, enc_cuda.c; the table is in cuda_program.c). */
sky_status  sky_dit_cuda_open(void **out, const sky_dit_program *p, const sky_weight_reader *w, int device,
                              int offload_blocks, int weight_fp8, sky_err *err);
int         sky_cuda_devices(void);
void        sky_dit_cuda_forward(void *d, int F, int H, int W, const float *x, const float *y, const double *t, int Ft,
                                 const float *context, const float *clip_fea, int slot, int fresh, int64_t fps, float *v,
                                 const sky_dit_skip *skip);
sky_status  sky_dit_cuda_teacache_open(void *d, sky_err *err);
const char *sky_dit_cuda_device(void *d);
void        sky_dit_cuda_close(void *d);
void        sky_dit_cuda_set_trace(void *d, sky_trace_fn fn, void *ctx);
void        sky_dit_cuda_set_timing(void *d, sky_trace_fn fn, void *ctx);
sky_status  sky_dit_cuda_use_comm(void *d, void *comm, sky_err *err);
sky_status  sky_vae_cuda_open(void **out, const sky_vae_program *p, int decode, const sky_weight_reader *w,
                              sky_err *err);
void        sky_vae_cuda_reset(void *v);
void sky_vae_cuda_chunk(void *v, int H, int W, int first, const float *in, size_t n_in, float *out, size_t n_out);
void sky_vae_cuda_set_trace(void *v, sky_trace_fn fn, void *ctx);
const char *sky_vae_cuda_device(void *v);
void        sky_vae_cuda_close(void *v);
sky_status  sky_enc_cuda_open(void **out, const sky_encoder_program *p, int text, const sky_weight_reader *w,
                              sky_err *err);
void        sky_enc_cuda_run(void *e, int n, const void *in, size_t in_bytes, float *out, size_t n_out);
void        sky_enc_cuda_set_trace(void *e, sky_trace_fn fn, void *ctx);
const char *sky_enc_cuda_device(void *e);
void        sky_enc_cuda_close(void *e);

/* TEST ONLY: $SKY_SELFTEST_FAULT names a kernel (a prefix of its generated name, e.g. attention_sm90)
 * whose launches sky_cuda_launch drops, so that the selftest's fallback can be tested on the emulator
 * (tests/emu/run.sh). Inert when unset. Returns 1 + the index of the first of names it matches, else 0. */
int sky_cuda_fault_kernel(int n, const char *const *names);

/* Launch f on stream s with the kernel parameters args (checked; on failure the runtime reports the
 * kernel's index and the CUDA error and ends the process: a failed launch after validation means a
 * bug or a lost device). Nothing when st->fault_kernel names it (test only). */
void sky_cuda_launch(const sky_cuda_program *st, int kernel, unsigned gx, unsigned gy, unsigned bx, unsigned smem,
                     CUstream s, void **args);

/* A TMA tensor map over the bf16 matrix [rows, cols] at p (rows contiguous), read in boxes of 64 columns
 * (128 bytes) by box_rows rows into shared memory with the 128-byte swizzle; elements past the matrix
 * read as zeros. A map the driver refuses ends the process with the shapes in the message (the
 * generator checked them: a refusal means a bug). */
void sky_cuda_tmap_bf16(CUtensorMap *m, CUdeviceptr p, long long rows, long long cols, int box_rows);
/* The same for a [rows, cols] view of rows ld values apart (ld >= cols: the v of a fused [L, 3C] q|k|v). */
void sky_cuda_tmap_bf16_ld(CUtensorMap *m, CUdeviceptr p, long long rows, long long cols, long long ld, int box_rows);

/* GEMM number i of the program's table on m rows (and, _dims, n columns and depth k). */
void sky_cuda_gemm(const sky_cuda_program *st, int i, int m, CUdeviceptr x, CUdeviceptr w, CUdeviceptr bias,
                   CUdeviceptr y, CUstream s);
void sky_cuda_gemm_dims(const sky_cuda_program *st, int i, int m, int n, int k, CUdeviceptr x, CUdeviceptr w,
                        CUdeviceptr y, CUstream s);

/* Macros of the generated launch sequence (st and s are in scope there). */
#define PTR(off) \
    &(CUdeviceptr) { st->arena + (CUdeviceptr)(off) }
#define PROMPT_PTR(off) \
    &(CUdeviceptr) { st->prompt + (CUdeviceptr)(off) } /* in the prompt arena */
#define WPTR(i) \
    &(CUdeviceptr) { st->w[i] }
#define INT(v) \
    &(int) { (int)(v) }
#define LL(v) \
    &(long long) { (long long)(v) }
#define FLT(v) \
    &(float) { (v) }
#define CDIV(a, b) ((unsigned)(((long long)(a) + (b)-1) / (b)))
#define LAUNCH(k, gx, gy, bx, smem, ...)                                                          \
    sky_cuda_launch(st, (k), (unsigned)(gx), (unsigned)(gy), (unsigned)(bx), (unsigned)(smem), s, \
                    (void *[]){__VA_ARGS__})
#define TRACE(name, off, dtype, n, cl)                                                                          \
    do {                                                                                                        \
        if (st->trace) st->trace(st, s, (name), st->arena + (CUdeviceptr)(off), (dtype), (long long)(n), (cl)); \
    } while (0)

/* dit_forward's block b starts and ends (cuda/offload.h: with --offload_blocks, the wait for the block's weights
 * in its slot, and the copy of the next block of that slot once it is done; nothing when all are resident). */
void sky_cuda_block_begin(const sky_cuda_program *st, CUstream s, int b);
void sky_cuda_block_end(const sky_cuda_program *st, CUstream s, int b);
#define BLOCK_BEGIN(b) sky_cuda_block_begin(st, s, (b))
#define BLOCK_END(b)   sky_cuda_block_end(st, s, (b))

/* An op's output: where the op writes it, and what --trace records of it once the op has run (the graph's
 * name, the dtype, the element count; cl as for sky_trace_fn). OUT in the arena, OUT_PROMPT in the prompt
 * arena, OUT_CL a channels-last fp32 tensor (the VAE's) of cl channels. */
typedef struct sky_cuda_out {
    CUdeviceptr p;
    const char *name;
    int         dtype;
    long long   n;
    int         cl;
} sky_cuda_out;
#define OUT(name, off, dtype, n) \
    (&(sky_cuda_out){st->arena + (CUdeviceptr)(off), (name), SKY_TRACE_##dtype, (long long)(n), 0})
#define OUT_PROMPT(name, off, dtype, n) \
    (&(sky_cuda_out){st->prompt + (CUdeviceptr)(off), (name), SKY_TRACE_##dtype, (long long)(n), 0})
#define OUT_CL(name, off, n, cl) \
    (&(sky_cuda_out){st->arena + (CUdeviceptr)(off), (name), SKY_TRACE_F32, (long long)(n), (cl)})

/* y to --trace, when tracing (the hook copies it to the host; never while a graph is captured). */
static inline void sky_cuda_trace_out(const sky_cuda_program *st, CUstream s, const sky_cuda_out *y)
{
    if (st->trace) st->trace(st, s, y->name, y->p, y->dtype, y->n, y->cl);
}

/* Kernel k writing y, y's address its first parameter (args[0] is set here), then y to --trace. */
static inline void sky_cuda_launch_op(const sky_cuda_program *st, sky_cuda_out *y, int k, unsigned gx, unsigned gy,
                                      unsigned bx, unsigned smem, CUstream s, void **args)
{
    args[0] = &y->p;
    sky_cuda_launch(st, k, gx, gy, bx, smem, s, args);
    sky_cuda_trace_out(st, s, y);
}

/* Kernel k writing y2 and y, their addresses its first two parameters (args[0] and args[1] are set here), then
 * y2 and y to --trace (a fused op's two outputs, in the unfused ops' order: lower.lua's residual_norm). */
static inline void sky_cuda_launch_op2(const sky_cuda_program *st, sky_cuda_out *y, sky_cuda_out *y2, int k,
                                       unsigned gx, unsigned gy, unsigned bx, unsigned smem, CUstream s, void **args)
{
    args[0] = &y->p, args[1] = &y2->p;
    sky_cuda_launch(st, k, gx, gy, bx, smem, s, args);
    sky_cuda_trace_out(st, s, y2);
    sky_cuda_trace_out(st, s, y);
}

/* GEMM number i writing y, then y to --trace. */
static inline void sky_cuda_gemm_op(const sky_cuda_program *st, int i, int m, CUdeviceptr x, CUdeviceptr w,
                                    CUdeviceptr bias, const sky_cuda_out *y, CUstream s)
{
    sky_cuda_gemm(st, i, m, x, w, bias, y->p, s);
    sky_cuda_trace_out(st, s, y);
}

/* An op of one launch: kernel k on a gx x gy grid of bx threads with smem bytes of dynamic shared memory,
 * writing y (OUT...: the kernel's first parameter), reading the other parameters. */
#define OP(k, gx, gy, bx, smem, y, ...)                                                                   \
    sky_cuda_launch_op(st, (y), (k), (unsigned)(gx), (unsigned)(gy), (unsigned)(bx), (unsigned)(smem), s, \
                       (void *[]){NULL, __VA_ARGS__})
/* The same writing two outputs, y (the kernel's first parameter) and y2 (its second). */
#define OP2(k, gx, gy, bx, smem, y, y2, ...)                                                                     \
    sky_cuda_launch_op2(st, (y), (y2), (k), (unsigned)(gx), (unsigned)(gy), (unsigned)(bx), (unsigned)(smem), s, \
                        (void *[]){NULL, NULL, __VA_ARGS__})
/* dit_forward_usp's collectives writing y (OUT...), then y to --trace: the all-to-all of P blocks of count values
 * from arena offset x_off, and the all-gather of count values from it (sky_cuda_usp). */
static inline void sky_cuda_alltoall_op(const sky_cuda_program *st, CUstream s, size_t x_off, const sky_cuda_out *y,
                                        long long count)
{
    st->usp->alltoall(st->usp, s, st->arena + (CUdeviceptr)x_off, y->p, count, y->dtype);
    sky_cuda_trace_out(st, s, y);
}
static inline void sky_cuda_allgather_op(const sky_cuda_program *st, CUstream s, size_t x_off, const sky_cuda_out *y,
                                         long long count)
{
    st->usp->allgather(st->usp, s, st->arena + (CUdeviceptr)x_off, y->p, count, y->dtype);
    sky_cuda_trace_out(st, s, y);
}
#define ALLTOALL(x_off, y, count)  sky_cuda_alltoall_op(st, s, (x_off), (y), (long long)(count))
#define ALLGATHER(x_off, y, count) sky_cuda_allgather_op(st, s, (x_off), (y), (long long)(count))
/* An op of one GEMM: x at arena offset x_off, weight w_i (and bias b_i), writing y (OUT...). */
#define GEMM(i, m, x_off, w_i, b_i, y) \
    sky_cuda_gemm_op(st, (i), (m), st->arena + (x_off), st->w[w_i], st->w[b_i], (y), s)
/* The same without bias (the epilogue NONE). */
#define GEMM_NB(i, m, x_off, w_i, y) sky_cuda_gemm_op(st, (i), (m), st->arena + (x_off), st->w[w_i], 0, (y), s)
/* A GEMM of activations whose n and k also change per call (the encoders' attention over the prompt's
 * tokens): arena byte offsets, no bias; part of an op (traced after it). */
#define GEMM_DIMS(i, m, n, k, x_off, w_off, y_off) \
    sky_cuda_gemm_dims(st, (i), (m), (n), (k), st->arena + (x_off), st->arena + (w_off), st->arena + (y_off), s)
/* A GEMM whose W is an activation (the VAE attention's K and V), no bias: arena byte offsets; part of an op. */
#define GEMM_ACT(i, m, x_off, w_off, y_off) \
    sky_cuda_gemm(st, (i), (m), st->arena + (x_off), st->arena + (w_off), 0, st->arena + (y_off), s)

#endif /* SKY_CUDA_PROGRAM_H */
