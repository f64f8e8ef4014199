/* runtime/cuda/dit_cuda.c — the CUDA backend of dit_forward, built as a plugin with the generated
 * gen/dit_forward_cuda.c (libskyreels-<variant>-cuda.so; see cuda_program.h).
 *
 * Open: the device, the kernels (NVRTC, cached on disk by xxh64; nvrtc_cache.h), every weight
 * converted to its device dtype and uploaded into one buffer, the arena the plan sized, the prompt
 * arenas (prompt_cache.h), the cuBLASLt GEMM table with its workspace, the graph cache. Forward: for a
 * new prompt, the context (as bf16, as the plan stores it) and the CLIP features are uploaded and the
 * prompt part writes the slot's prompt arena (eagerly: it runs once per prompt); then the inputs are
 * uploaded into their arena slots, the step is replayed from a CUDA Graph captured once per (frames,
 * timestep rows, orientation, prompt slot), the velocity is read back. Nothing is allocated inside a
 * forward.
 *
 * STATUS: compiled in CI (tests/compile/) and run there on the CPU emulator of tests/emu/ against
 * diffusers; not yet run on a GPU (tests/gpu/run.sh holds those checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_ctx.h"
#include "cuda/cuda_program.h"
#include "cuda/offload.h"
#include "cuda/selftest_cuda.h"
#include "cuda/usp_nccl.h"
#include "core/dtype.h"

/* Defined in the generated gen/dit_forward_cuda.c linked into the same plugin; dit_forward_usp_cuda in
 * gen/dit_forward_usp_cuda.c, where the generator made one (weak: a variant without it refuses --use_usp). */
extern const sky_dit_cuda_desc dit_forward_cuda;
extern const sky_dit_cuda_desc dit_forward_usp_cuda __attribute__((weak));

typedef struct dit_cuda {
    sky_cuda_prog            pr; /* device, kernels, weights, arena, GEMMs, st, trace */
    const sky_dit_cuda_desc *desc;
    const sky_dit_program   *p;
    sky_graph_cache         *graphs;
    sky_cuda_offload        *offload;  /* --offload_blocks (NULL: every weight on the device) */
    uint16_t                *ctx_bf16; /* pinned host staging for the context */
    /* pinned host staging of every call's copies (sky_cuda_host_alloc), each at the largest window: x, y,
     * t, fps in; v out (the caller's buffers are pageable: one host memcpy each, then DMA at full speed) */
    void       *pin;
    float      *pin_x, *pin_y, *pin_v;
    double     *pin_t;
    int64_t    *pin_fps;
    CUdeviceptr prompt[SKY_PROMPT_SLOTS]; /* the prompt arenas (kept in the program's arena) */
    int         F, H, W, Ft;              /* the call being recorded */
    int         part;                     /* -1: a step (embed, blocks, head), else the part (PART_*) */
    /* TeaCache (teacache_open): the tokens entering the blocks, the residual of each parity, the probe */
    void       *tc_mem;
    CUdeviceptr tc_tokens, tc_res[2];
    float      *tc_probe;
    sky_cuda_usp usp; /* --use_usp (use_comm): the ranks over the NCCL communicator usp.ctx; st.usp points here */
} dit_cuda;

void sky_dit_cuda_close(void *opaque)
{
    dit_cuda *d = opaque;
    if (!d) return;
    sky_cuda_prog_bind(&d->pr);
    sky_graph_cache_free(d->graphs);
    sky_cuda_offload_close(d->offload);
    if (d->tc_mem) sky_cuda_arena_free(d->pr.c, d->tc_mem);
    sky_cuda_host_free(d->ctx_bf16);
    sky_cuda_host_free(d->pin);
    sky_cuda_host_free(d->tc_probe);
    sky_cuda_prog_close(&d->pr);
    free(d);
}

/* d's pinned host staging (dit_cuda.pin, ctx_bf16) at the largest window of its program. */
static sky_status pinned_open(dit_cuda *d, sky_err *err)
{
    const sky_dit_program *p = d->p;
    const size_t           lat = (size_t)p->max_frames * p->lat_h * p->lat_w;
    const size_t           nx = (size_t)p->x_channels * lat * 4, ny = (size_t)p->y_channels * lat * 4,
                 nv = (size_t)p->out_dim * lat * 4;
    const size_t nt = ((size_t)p->max_frames * 8 + 15) / 16 * 16, a = 256;
    const size_t off_y = (nx + a - 1) / a * a, off_v = off_y + (ny + a - 1) / a * a,
                 off_t = off_v + (nv + a - 1) / a * a;
    if (sky_cuda_host_alloc(d->pr.c, (size_t)p->text_len * p->text_dim * sizeof(uint16_t), (void **)&d->ctx_bf16,
                            "dit_forward's context staging", err) ||
        sky_cuda_host_alloc(d->pr.c, off_t + nt + 16, &d->pin, "dit_forward's input and output staging", err))
        return SKY_ERR;
    unsigned char *b = d->pin;
    d->pin_x = (float *)b, d->pin_y = (float *)(b + off_y), d->pin_v = (float *)(b + off_v);
    d->pin_t = (double *)(b + off_t), d->pin_fps = (int64_t *)(b + off_t + nt);
    return SKY_OK;
}

/* The attention kernel: the sm_90a one (TMA, wgmma, warp specialisation) on a cc 9.0 GPU, the sm_80
 * one (mma.sync) elsewhere; $SKY_ATTENTION = sm80 or sm90 overrides (sm90 only where it can run). Unless
 * $SKY_SELFTEST is 0, the kernel selftest's verdict of this device (cached; selftest_cuda.c) decides too:
 * a failed sm_90a kernel gives way to the sm_80 one (the binary warns: runtime/cli/selftest.c), a failed
 * sm_80 kernel refuses the run. The chosen kernels get their dynamic shared memory limit raised. */
static sky_status choose_attention(dit_cuda *d, sky_err *err)
{
    const sky_cuda *c = d->pr.c;
    const int       hopper = c->cc_major == 9 && c->cc_minor == 0;
    const char     *env = getenv("SKY_ATTENTION");
    int             sm90 = hopper;
    if (env && *env) {
        if (strcmp(env, "sm80") == 0)
            sm90 = 0;
        else if (strcmp(env, "sm90") == 0 && hopper)
            sm90 = 1;
        else if (strcmp(env, "sm90") == 0)
            return sky_fail(err,
                            "SKY_ATTENTION=sm90: the sm_90a attention kernel needs a cc 9.0 GPU, this is sm_%d%d "
                            "(unset it, or use sm80)",
                            c->cc_major, c->cc_minor);
        else
            return sky_fail(err, "SKY_ATTENTION=%s: expected sm80 or sm90", env);
    }
    if (sky_selftest_enabled()) {
        sky_selftest_table t;
        if (sky_cuda_selftest_on(d->pr.c, 0, &t, err)) return SKY_ERR;
        /* the rows of this program's attention kernels (dit_forward's, or under --use_usp dit_forward_usp's of every
         * head count a rank may hold): one failed sm_90a kernel sends all to sm_80, one failed sm_80 one refuses */
        const sky_selftest_row *r80 = NULL;
        for (int k = 0; k < d->desc->n_kernels; k++) {
            const char             *name = d->desc->kernel_names[k];
            const sky_selftest_row *r = sky_selftest_find(&t, name);
            if (r && !r->pass && strncmp(name, "attention_sm90", 14) == 0) sm90 = 0;
            if (r && !r->pass && strncmp(name, "attention_sm80", 14) == 0 && !r80) r80 = r;
        }
        if (!sm90 && r80)
            return sky_fail(err,
                            "%s failed the kernel selftest on %s (max error %.3g, bound %.3g; %s) and has no "
                            "fallback: run `selftest` to see the table; SKY_SELFTEST=0 runs it anyway",
                            r80->kernel, t.device, r80->max_err, r80->bound, t.path);
    }
    d->pr.st.attn_sm90 = sm90;
    sky_cuda_smem_limit(d->desc->n_kernels, d->desc->kernel_names, d->pr.fn, sm90 ? "attention_sm90" : "attention_sm80",
                        sm90 ? d->desc->attention90_smem : d->desc->attention_smem);
    return SKY_OK;
}

/* The weights: all on the device, or with 1 <= n_slots < the block count, the blocks offloaded (offload.h); with
 * weight_fp8, the blocks' linear weights as fp8 expanded into n_slots bf16 slots (2 without --offload_blocks). */
static sky_status upload(dit_cuda *d, int n_slots, int weight_fp8, const sky_weight_reader *w, sky_err *err)
{
    const sky_dit_cuda_desc *g = d->desc;
    const sky_dit_program   *p = d->p;
    if (weight_fp8 && g->n_blocks > 0) {
        if (n_slots <= 0 || n_slots >= g->n_blocks) n_slots = g->n_blocks < 2 ? g->n_blocks : 2;
        return sky_cuda_prog_upload_fp8(&d->pr, p->weights, p->n_weights, g->weight_bf16, g->weight_block, g->n_blocks,
                                        n_slots, g->fp8_expand, &d->offload, w, err);
    }
    if (n_slots <= 0 || n_slots >= g->n_blocks)
        return sky_cuda_prog_upload(&d->pr, p->weights, p->n_weights, g->weight_bf16, w, err);
    return sky_cuda_prog_upload_blocks(&d->pr, p->weights, p->n_weights, g->weight_bf16, g->weight_block, g->n_blocks,
                                       n_slots, &d->offload, w, err);
}

sky_status sky_dit_cuda_open(void **out, const sky_dit_program *p, const sky_weight_reader *w, int device,
                             int offload_blocks, int weight_fp8, sky_err *err)
{
    *out = NULL;
    dit_cuda *d = calloc(1, sizeof *d);
    if (!d) return sky_fail(err, "out of host memory");
    const sky_dit_cuda_desc *g = d->desc = &dit_forward_cuda;
    d->p = p;
    if (g->n_weights != p->n_weights) {
        sky_fail(err, "the CUDA plugin was generated for %d weights, the binary for %d: rebuild both", g->n_weights,
                 p->n_weights);
        goto fail;
    }
    /* the prompt arenas are kept in the program's one allocation, after the plan's arena and the workspace */
    const size_t prompt_each = (g->prompt_bytes + 255) / 256 * 256;
    d->pr.place = g->weight_place; /* each self-attention's q, k and v weights adjacent: one GEMM */
    if (sky_cuda_prog_begin(&d->pr, "dit_forward", device, g->kernels_src, "gen/dit_forward_kernels.cu", g->n_kernels,
                            g->kernel_names, NULL, 0, p->n_weights, g->arena_bytes, SKY_PROMPT_SLOTS * prompt_each,
                            err) ||
        upload(d, offload_blocks, weight_fp8, w, err) || pinned_open(d, err) ||
        sky_cuda_prog_end(&d->pr, g->gemms, g->n_gemms, err) || choose_attention(d, err) ||
        sky_graph_cache_init(&d->graphs, d->pr.c, 64, err))
        goto fail;
    for (int i = 0; i < SKY_PROMPT_SLOTS; i++) d->prompt[i] = d->pr.kept + (CUdeviceptr)i * prompt_each;
    d->pr.st.offload = d->offload;
    if (d->offload) {
        const size_t used = strlen(d->pr.device);
        sky_cuda_offload_fill(d->offload, &d->pr.st, d->pr.c->stream);
        if (d->offload->fp8)
            snprintf(d->pr.device + used, sizeof d->pr.device - used,
                     ", the blocks' linear weights in fp8, %d of %d blocks expanded to bf16 at a time (--weight_dtype fp8)",
                     d->offload->n_slots, d->offload->n_blocks);
        else
            snprintf(d->pr.device + used, sizeof d->pr.device - used,
                     ", %d of %d blocks on the device (--offload_blocks)", d->offload->n_slots, d->offload->n_blocks);
    }
    *out = d;
    return SKY_OK;
fail:
    sky_dit_cuda_close(d);
    return SKY_ERR;
}

void sky_dit_cuda_set_trace(void *opaque, sky_trace_fn fn, void *ctx)
{
    sky_cuda_prog_set_trace(&((dit_cuda *)opaque)->pr, fn, ctx);
}

void sky_dit_cuda_set_timing(void *opaque, sky_trace_fn fn, void *ctx)
{
    sky_cuda_prog_set_timing(&((dit_cuda *)opaque)->pr, fn, ctx);
}

sky_status sky_dit_cuda_teacache_open(void *opaque, sky_err *err)
{
    dit_cuda                *d = opaque;
    const sky_dit_cuda_desc *g = d->desc;
    if (d->tc_mem) return SKY_OK;
    sky_cuda_prog_bind(&d->pr);
    /* the probe: e0 [Ft, 6 dim] at most, fp32 */
    if (sky_cuda_host_alloc(d->pr.c, (size_t)d->p->max_frames * 6 * (size_t)d->p->dim * sizeof(float),
                            (void **)&d->tc_probe, "TeaCache's probe", err))
        return SKY_ERR;
    const size_t each = (g->tokens.bytes + 255) / 256 * 256;
    if (sky_cuda_arena_alloc(d->pr.c, 3 * each, &d->tc_mem, "TeaCache (two residuals and the tokens)", err))
        return SKY_ERR;
    d->tc_tokens = (CUdeviceptr)d->tc_mem;
    d->tc_res[0] = d->tc_tokens + each;
    d->tc_res[1] = d->tc_tokens + 2 * each;
    return SKY_OK;
}

/* The parts of dit_forward, in the order of desc->record_part. */
enum { PART_CONTEXT = 0, PART_EMBED = 1, PART_BLOCKS = 2, PART_HEAD = 3, N_PARTS = 4 };

/* The launch sequence of the call in d (for the graph cache): a step or one part. */
static void record(void *opaque, CUstream s)
{
    dit_cuda *d = opaque;
    if (d->part < 0)
        d->desc->record_step(&d->pr.st, s, d->F, d->H, d->W, d->Ft);
    else
        d->desc->record_part[d->part](&d->pr.st, s, d->F, d->H, d->W, d->Ft);
}

/* Run a step (part -1) or one part for the call in d: from its CUDA Graph, or eagerly while traced.
 * key: the call's shape and prompt slot (the graph holds the slot's prompt arena address). */
static void run_part(dit_cuda *d, int key, int part)
{
    sky_err err;
    d->part = part;
    if (d->pr.trace.fn) {
        record(d, d->pr.c->stream); /* traced: eagerly, the hook reads every output */
    } else if (sky_graph_run(d->graphs, key * (N_PARTS + 1) + part + 1, record, d, &err)) {
        SKY_CUDA_FATAL("dit_forward (cuda): %s", err.msg);
    }
}

void sky_dit_cuda_forward(void *opaque, int F, int H, int W, const float *x, const float *y, const double *t, int Ft,
                          const float *context, const float *clip_fea, int slot, int fresh, int64_t fps, float *v,
                          const sky_dit_skip *skip)
{
    dit_cuda                *d = opaque;
    const sky_dit_program   *p = d->p;
    const sky_dit_cuda_desc *g = d->desc;
    const CUstream           s = d->pr.c->stream;
    const size_t             lat = (size_t)F * H * W;
    SKY_ASSERT(slot >= 0 && slot < SKY_PROMPT_SLOTS);
    sky_cuda_prog_bind(&d->pr);
    d->pr.st.prompt = d->prompt[slot];
    d->F = F, d->H = H, d->W = W, d->Ft = Ft;
    if (fresh) {
        /* A new prompt for this slot: its keys and values, eagerly (once per prompt, no graph). */
        const size_t n_ctx = (size_t)p->text_len * p->text_dim;
        for (size_t i = 0; i < n_ctx; i++) d->ctx_bf16[i] = sky_f32_to_bf16(context[i]);
        SKY_CU_CHECK(cuMemcpyHtoDAsync(d->pr.arena + g->context.offset, d->ctx_bf16, n_ctx * sizeof(uint16_t), s));
        if (p->y_channels)
            SKY_CU_CHECK(cuMemcpyHtoDAsync(d->pr.arena + g->clip_fea.offset, clip_fea,
                                           (size_t)p->image_len * p->image_dim * sizeof(float), s));
        d->part = PART_CONTEXT;
        record(d, s);
    }
    /* the inputs through the pinned staging (the previous call's copies are done: it synchronised) */
    SKY_ASSERT(F <= p->max_frames && Ft <= p->max_frames && (size_t)H * W == (size_t)p->lat_h * p->lat_w);
    const size_t nx = (size_t)p->x_channels * lat * sizeof(float), ny = (size_t)p->y_channels * lat * sizeof(float);
    memcpy(d->pin_x, x, nx);
    memcpy(d->pin_t, t, (size_t)Ft * sizeof(double));
    *d->pin_fps = fps;
    SKY_CU_CHECK(cuMemcpyHtoDAsync(d->pr.arena + g->x.offset, d->pin_x, nx, s));
    SKY_CU_CHECK(cuMemcpyHtoDAsync(d->pr.arena + g->t.offset, d->pin_t, (size_t)Ft * sizeof(double), s));
    if (p->y_channels) {
        memcpy(d->pin_y, y, ny);
        SKY_CU_CHECK(cuMemcpyHtoDAsync(d->pr.arena + g->y.offset, d->pin_y, ny, s));
    }
    if (p->inject_sample_info) SKY_CU_CHECK(cuMemcpyHtoDAsync(d->pr.arena + g->fps.offset, d->pin_fps, sizeof fps, s));
    /* One graph per (frames, timestep rows, orientation, prompt slot) and part: the launch parameters
     * differ. */
    const int key = (((F * 2 + (Ft == 1)) * 2 + (H != p->lat_h)) * SKY_PROMPT_SLOTS) + slot;
    sky_cuda_timing_begin(&d->pr, s); /* with timing set (bench): the step's ops, not the prompt's part */
    if (!skip) {
        run_part(d, key, -1);
    } else {
        /* TeaCache (teacache.h): the embeddings, the decision on the probe, then the blocks (keeping the
         * residual) or the residual, then the head. */
        SKY_ASSERT(d->tc_mem);
        const long long L = (long long)F * (H / 2) * (W / 2);
        /* the tokens this rank holds: all L, or under --use_usp its ceil(L / P) (dit_forward_usp's Ls) */
        const long long rows = d->pr.st.usp ? (L + d->usp.size - 1) / d->usp.size : L;
        const size_t    n = (size_t)Ft * (size_t)p->dim * (skip->use_e0 ? 6u : 1u);
        const size_t    tok_bytes = (size_t)rows * (size_t)p->dim * sizeof(uint16_t);
        SKY_ASSERT(tok_bytes <= g->tokens.bytes);
        run_part(d, key, PART_EMBED);
        SKY_CU_CHECK(cuMemcpyDtoHAsync(d->tc_probe, d->pr.arena + (skip->use_e0 ? g->e0.offset : g->e.offset),
                                       n * sizeof(float), s));
        SKY_CU_CHECK(cuMemcpyDtoDAsync(d->tc_tokens, d->pr.arena + g->tokens.offset, tok_bytes, s));
        SKY_CU_CHECK(cuStreamSynchronize(s));
        int                     parity = 0;
        const sky_cuda_program *st = &d->pr.st;
        if (skip->decide(skip->ctx, d->tc_probe, n, L, &parity)) {
            run_part(d, key, PART_BLOCKS);
            g->teacache(st, s, F, H, W, 0, d->tc_res[parity], d->pr.arena + g->hidden.offset, d->tc_tokens);
        } else {
            g->teacache(st, s, F, H, W, 1, d->pr.arena + g->hidden.offset, d->tc_tokens, d->tc_res[parity]);
        }
        run_part(d, key, PART_HEAD);
    }
    const size_t nv = (size_t)p->out_dim * lat * sizeof(float);
    SKY_CU_CHECK(cuMemcpyDtoHAsync(d->pin_v, d->pr.arena + g->v.offset, nv, s));
    SKY_CU_CHECK(cuStreamSynchronize(s));
    memcpy(v, d->pin_v, nv);
    sky_cuda_timing_end(&d->pr);
}

const char *sky_dit_cuda_device(void *opaque) { return ((dit_cuda *)opaque)->pr.device; }

/* The collectives of dit_forward_usp (cuda_program.h sky_cuda_usp) over NCCL on the step's stream; a failure ends
 * the process, as a failed launch does. */
static sky_dtype usp_dtype(int trace_dtype) { return trace_dtype == SKY_TRACE_BF16 ? SKY_DTYPE_BF16 : SKY_DTYPE_F32; }

static void usp_alltoall(const sky_cuda_usp *u, CUstream s, CUdeviceptr send, CUdeviceptr recv, long long count,
                         int dtype)
{
    sky_err err;
    if (sky_nccl_alltoall(u->ctx, (const void *)(uintptr_t)send, (void *)(uintptr_t)recv, (size_t)count,
                          usp_dtype(dtype), s, &err))
        SKY_CUDA_FATAL("dit_forward_usp (cuda): %s", err.msg);
}

static void usp_allgather(const sky_cuda_usp *u, CUstream s, CUdeviceptr send, CUdeviceptr recv, long long count,
                          int dtype)
{
    sky_err err;
    if (sky_nccl_allgather(u->ctx, (const void *)(uintptr_t)send, (void *)(uintptr_t)recv, (size_t)count,
                           usp_dtype(dtype), s, &err))
        SKY_CUDA_FATAL("dit_forward_usp (cuda): %s", err.msg);
}

/* Whether n ranks is one of the counts dit_forward_usp takes (program.h usp_ranks; p is dit_forward, or the
 * dit_forward_usp the binary opened the DiT on). */
static int usp_takes(const sky_dit_program *p, int n)
{
    const sky_dit_program *u = p->usp ? p->usp : p;
    for (int i = 0; i < 16 && u->usp_ranks[i]; i++)
        if (u->usp_ranks[i] == n) return 1;
    return 0;
}

/* --use_usp (models/cuda_abi.h use_comm): the communicator's rank runs its slice of dit_forward_usp from now on: its
 * kernels, its arena (with the prompt arenas and the workspace) and its GEMM table replace dit_forward's, the weights
 * (the same table, the same device dtypes and blocks) stay. Before the first forward (no prompt is kept across it).
 * NULL: nothing (the DiT stays as it is). */
sky_status sky_dit_cuda_use_comm(void *opaque, void *comm, sky_err *err)
{
    dit_cuda *d = opaque;
    if (comm == NULL) return SKY_OK;
    if (sky_nccl_device(comm) != d->pr.c->device)
        return sky_fail(err, "--use_usp: the NCCL communicator is on GPU %d, the transformer on GPU %d",
                        sky_nccl_device(comm), d->pr.c->device);
    const int size = sky_nccl_size(comm);
    if (!&dit_forward_usp_cuda || !usp_takes(d->p, size))
        return sky_fail(err, "--use_usp with --backend cuda: this plugin has no CUDA dit_forward_usp for %d ranks",
                        size);
    const sky_dit_cuda_desc *u = &dit_forward_usp_cuda, *g = d->desc;
    if (d->pr.st.usp) return sky_fail(err, "--use_usp: the transformer already runs over a communicator");
    if (u->n_weights != g->n_weights || memcmp(u->weight_bf16, g->weight_bf16, (size_t)g->n_weights) != 0 ||
        memcmp(u->weight_block, g->weight_block, (size_t)g->n_weights * sizeof *g->weight_block) != 0 ||
        u->n_blocks != g->n_blocks)
        return sky_fail(err, "--use_usp: the plugin's dit_forward_usp keeps its weights unlike dit_forward; this is a "
                             "bug in the generated plugin, please report it");
    sky_cuda_prog_bind(&d->pr);
    CUfunction *fn = calloc((size_t)u->n_kernels, sizeof *fn);
    CUmodule    module = NULL;
    char        how[160];
    if (!fn) return sky_fail(err, "out of host memory");
    if (sky_cuda_kernels_load(d->pr.c, u->kernels_src, "gen/dit_forward_usp_kernels.cu", u->n_kernels,
                              u->kernel_names, NULL, 0, &module, fn, how, sizeof how, err)) {
        free(fn);
        return SKY_ERR;
    }
    /* dit_forward's arena, GEMM table and kernels go; sky_cuda_prog_end makes the usp program's (st anew) */
    SKY_CU_CHECK(cuStreamSynchronize(d->pr.c->stream));
    sky_graph_cache_free(d->graphs);
    d->graphs = NULL;
    sky_gemm_free(d->pr.gemm);
    d->pr.gemm = NULL;
    sky_cuda_arena_free(d->pr.c, (void *)(uintptr_t)d->pr.arena);
    d->pr.arena = 0;
    cuModuleUnload(d->pr.module);
    free(d->pr.fn);
    d->pr.module = module, d->pr.fn = fn;
    d->pr.fault_kernel = sky_cuda_fault_kernel(u->n_kernels, u->kernel_names);
    const size_t prompt_each = (u->prompt_bytes + 255) / 256 * 256;
    d->pr.arena_bytes = (u->arena_bytes + 255) / 256 * 256;
    d->pr.kept_bytes = SKY_PROMPT_SLOTS * prompt_each;
    const sky_cuda_program keep = d->pr.st; /* what sky_cuda_prog_end resets and the DiT set */
    d->desc = u;
    if (sky_cuda_prog_end(&d->pr, u->gemms, u->n_gemms, err)) return SKY_ERR;
    d->pr.st.offload = keep.offload;
    d->pr.st.trace = keep.trace, d->pr.st.trace_ctx = keep.trace_ctx;
    if (choose_attention(d, err) || sky_graph_cache_init(&d->graphs, d->pr.c, 64, err)) return SKY_ERR;
    for (int i = 0; i < SKY_PROMPT_SLOTS; i++) d->prompt[i] = d->pr.kept + (CUdeviceptr)i * prompt_each;
    d->usp = (sky_cuda_usp){.rank = sky_nccl_rank(comm), .size = size, .ctx = comm, .alltoall = usp_alltoall,
                            .allgather = usp_allgather};
    d->pr.st.usp = &d->usp;
    const size_t used = strlen(d->pr.device);
    snprintf(d->pr.device + used, sizeof d->pr.device - used, ", rank %d of %d (--use_usp, NCCL)", d->usp.rank,
             d->usp.size);
    return SKY_OK;
}
