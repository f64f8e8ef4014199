/* runtime/dit_cuda.c — the CUDA backend of dit_forward, built as a plugin with the generated
 * gen/dit_forward_cuda.c (libskyreels-<variant>-cuda.so; see cuda_program.h).
 *
 * Open: the device, the kernels (NVRTC, cached on disk by xxh64; nvrtc_cache.h), every weight
 * converted to its device dtype and uploaded into one buffer, the arena the plan sized, the cuBLASLt
 * GEMM table with its workspace, the graph cache. Forward: the inputs are uploaded into their arena
 * slots (the context as bf16, as the plan stores it), the launch sequence is replayed from a CUDA
 * Graph captured once per (frames, timestep rows), the velocity is read back. Nothing is allocated
 * inside a forward.
 *
 * STATUS: compiled in CI (tests/compile/) and run there on the CPU emulator of tests/emu/ against
 * diffusers; not yet run on a GPU (tests/gpu/run.sh holds those checks).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_ctx.h"
#include "cuda_program.h"
#include "dtype.h"

/* Defined in the generated gen/dit_forward_cuda.c linked into the same plugin. */
extern const sky_dit_cuda_desc dit_forward_cuda;

typedef struct dit_cuda {
    const sky_dit_cuda_desc *desc;
    const sky_dit_program   *p;
    sky_cuda                *c;
    CUmodule                 module;
    CUfunction              *fn;
    CUdeviceptr              weights;        /* one buffer, each tensor 256-byte aligned */
    CUdeviceptr             *w;
    CUdeviceptr              arena;
    void                    *workspace;
    sky_gemm_set            *gemm;
    sky_graph_cache         *graphs;
    sky_cuda_program         st;             /* what the launch sequence reads */
    uint16_t                *ctx_bf16;       /* host staging for the context */
    int                      F, H, W, Ft;    /* the call being recorded */
    sky_cuda_trace           trace;          /* --trace: the binary's hook (fn NULL when off) */
    char                     device[320];
} dit_cuda;

void sky_dit_cuda_close(void *opaque)
{
    dit_cuda *d = opaque;
    if (!d) return;
    if (d->c) {
        sky_graph_cache_free(d->graphs);
        sky_gemm_free(d->gemm);
        if (d->workspace) sky_cuda_arena_free(d->c, d->workspace);
        if (d->arena) sky_cuda_arena_free(d->c, (void *)(uintptr_t)d->arena);
        if (d->weights) sky_cuda_arena_free(d->c, (void *)(uintptr_t)d->weights);
        if (d->module) cuModuleUnload(d->module);
        sky_cuda_close(d->c);
    }
    free(d->fn);
    free(d->w);
    free(d->ctx_bf16);
    free(d->trace.host);
    free(d);
}

/* Convert every weight to its device dtype and upload all of them into one buffer. */
static sky_status upload_weights(dit_cuda *d, const float *const *w, sky_err *err)
{
    const sky_dit_program *p = d->p;
    size_t total = 0, *off = calloc((size_t)p->n_weights, sizeof *off), *bytes = calloc((size_t)p->n_weights, sizeof *bytes);
    sky_status st = SKY_ERR;
    unsigned char *host = NULL;
    if (!off || !bytes) { sky_fail(err, "out of host memory"); goto done; }
    for (int i = 0; i < p->n_weights; i++) {
        size_t n = 1;
        for (int k = 0; k < p->weights[i].ndim; k++) n *= (size_t)p->weights[i].shape[k];
        bytes[i] = n * (d->desc->weight_bf16[i] ? 2 : 4);
        off[i] = total;
        total += (bytes[i] + 255) / 256 * 256;
    }
    host = malloc(total ? total : 1);
    if (!host) { sky_fail(err, "out of host memory staging %zu bytes of weights", total); goto done; }
    for (int i = 0; i < p->n_weights; i++) {
        const size_t n = bytes[i] / (d->desc->weight_bf16[i] ? 2 : 4);
        if (d->desc->weight_bf16[i]) {
            uint16_t *dst = (uint16_t *)(host + off[i]);
            for (size_t k = 0; k < n; k++) dst[k] = sky_f32_to_bf16(w[i][k]);
        } else {
            memcpy(host + off[i], w[i], n * sizeof(float));
        }
    }
    void *dev;
    if (sky_cuda_arena_alloc(d->c, total, &dev, "the weights of dit_forward", err)) goto done;
    d->weights = (CUdeviceptr)(uintptr_t)dev;
    SKY_CU_CHECK(cuMemcpyHtoD(d->weights, host, total));
    for (int i = 0; i < p->n_weights; i++) d->w[i] = d->weights + off[i];
    st = SKY_OK;
done:
    free(off); free(bytes); free(host);
    return st;
}

sky_status sky_dit_cuda_open(void **out, const sky_dit_program *p, const float *const *w, sky_err *err)
{
    *out = NULL;
    dit_cuda *d = calloc(1, sizeof *d);
    if (!d) return sky_fail(err, "out of host memory");
    d->desc = &dit_forward_cuda;
    d->p = p;
    const sky_dit_cuda_desc *g = d->desc;
    if (g->n_weights != p->n_weights) {
        sky_fail(err, "the CUDA plugin was generated for %d weights, the binary for %d: rebuild both", g->n_weights,
                 p->n_weights);
        goto fail;
    }
    d->fn = calloc((size_t)g->n_kernels, sizeof *d->fn);
    d->w = calloc((size_t)p->n_weights, sizeof *d->w);
    d->ctx_bf16 = malloc((size_t)p->text_len * (size_t)p->text_dim * sizeof(uint16_t));
    if (!d->fn || !d->w || !d->ctx_bf16) { sky_fail(err, "out of host memory"); goto fail; }
    if (sky_cuda_open(&d->c, 0, err)) goto fail;
    snprintf(d->device, sizeof d->device, "%s, sm_%d%d, %d SMs", d->c->name, d->c->cc_major, d->c->cc_minor,
             d->c->sm_count);
    /* Everything the plan and the weights need, checked against free memory before any allocation. */
    if (sky_cuda_require(d->c, g->arena_bytes + SKY_GEMM_WORKSPACE_BYTES, "dit_forward's arena", err)) goto fail;
    if (sky_cuda_kernels_load(d->c, g->kernels_src, "gen/dit_forward_kernels.cu", g->n_kernels, g->kernel_names,
                              "attention", g->attention_smem, &d->module, d->fn, err))
        goto fail;
    if (upload_weights(d, w, err)) goto fail;
    void *dev;
    if (sky_cuda_arena_alloc(d->c, g->arena_bytes, &dev, "dit_forward's arena", err)) goto fail;
    d->arena = (CUdeviceptr)(uintptr_t)dev;
    SKY_CU_CHECK(cuMemsetD8(d->arena, 0, g->arena_bytes));
    if (sky_cuda_arena_alloc(d->c, SKY_GEMM_WORKSPACE_BYTES, &d->workspace, "the cuBLASLt workspace", err)) goto fail;
    if (sky_gemm_init(&d->gemm, d->c, g->gemms, g->n_gemms, d->workspace, SKY_GEMM_WORKSPACE_BYTES, err)) goto fail;
    if (sky_graph_cache_init(&d->graphs, d->c, 16, err)) goto fail;
    d->st = (sky_cuda_program){ .arena = d->arena, .w = d->w, .fn = d->fn, .gemm = d->gemm,
                                .sync_check = d->c->sync_check };
    *out = d;
    return SKY_OK;
fail:
    sky_dit_cuda_close(d);
    return SKY_ERR;
}

/* --trace: one op's output to the binary's hook. */
static void trace_op(const sky_cuda_program *st, CUstream s, const char *name, size_t off, int dtype, long long n,
                     int cl)
{
    sky_cuda_trace_copy(&((dit_cuda *)st->trace_ctx)->trace, st, s, name, off, dtype, n, cl);
}

void sky_dit_cuda_set_trace(void *opaque, sky_trace_fn fn, void *ctx)
{
    dit_cuda *d = opaque;
    d->trace.fn = fn;
    d->trace.ctx = ctx;
    d->st.trace = fn ? trace_op : NULL;
    d->st.trace_ctx = fn ? d : NULL;
}

/* The launch sequence of the call in d (for the graph cache). */
static void record(void *opaque, CUstream s)
{
    dit_cuda *d = opaque;
    d->desc->record(&d->st, s, d->F, d->H, d->W, d->Ft);
}

void sky_dit_cuda_forward(void *opaque, int F, int H, int W, const float *x, const float *y, const double *t, int Ft,
                          const float *context, const float *clip_fea, int64_t fps, float *v)
{
    dit_cuda *d = opaque;
    const sky_dit_program *p = d->p;
    const sky_dit_cuda_desc *g = d->desc;
    const CUstream s = d->c->stream;
    const size_t lat = (size_t)F * H * W;
    const size_t n_ctx = (size_t)p->text_len * p->text_dim;
    for (size_t i = 0; i < n_ctx; i++) d->ctx_bf16[i] = sky_f32_to_bf16(context[i]);
    SKY_CU_CHECK(cuMemcpyHtoDAsync(d->arena + g->x.offset, x, (size_t)p->x_channels * lat * sizeof(float), s));
    SKY_CU_CHECK(cuMemcpyHtoDAsync(d->arena + g->t.offset, t, (size_t)Ft * sizeof(double), s));
    SKY_CU_CHECK(cuMemcpyHtoDAsync(d->arena + g->context.offset, d->ctx_bf16, n_ctx * sizeof(uint16_t), s));
    if (p->y_channels) {
        SKY_CU_CHECK(cuMemcpyHtoDAsync(d->arena + g->y.offset, y, (size_t)p->y_channels * lat * sizeof(float), s));
        SKY_CU_CHECK(cuMemcpyHtoDAsync(d->arena + g->clip_fea.offset, clip_fea,
                                       (size_t)p->image_len * p->image_dim * sizeof(float), s));
    }
    if (p->inject_sample_info) SKY_CU_CHECK(cuMemcpyHtoDAsync(d->arena + g->fps.offset, &fps, sizeof fps, s));
    d->F = F, d->H = H, d->W = W, d->Ft = Ft;
    sky_err err;
    /* One graph per (frames, timestep rows, orientation): the launch parameters differ between them. */
    const int key = (F * 2 + (Ft == 1)) * 2 + (H != p->lat_h);
    if (d->trace.fn) {
        record(d, s);                        /* traced: eagerly, the hook reads every output */
    } else if (sky_graph_run(d->graphs, key, record, d, &err)) {
        fprintf(stderr, "dit_forward (cuda): %s\n", err.msg);
        exit(1);
    }
    SKY_CU_CHECK(cuMemcpyDtoHAsync(v, d->arena + g->v.offset, (size_t)p->out_dim * lat * sizeof(float), s));
    SKY_CU_CHECK(cuStreamSynchronize(s));
}

const char *sky_dit_cuda_device(void *opaque)
{
    return ((dit_cuda *)opaque)->device;
}
