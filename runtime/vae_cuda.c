/* runtime/vae_cuda.c — the CUDA backend of vae_decode and vae_encode, in the plugin with the generated
 * gen/vae_{decode,encode}_cuda.c (cuda_program.h, dit_plugin.h).
 *
 * Open: the device, the program's kernels (NVRTC, cached), every weight uploaded as fp32 into one
 * buffer (convolution kernels with their input channel moved last, as the generated layout table
 * says), the arena the plan sized (activations and the per-layer caches), the cuBLASLt GEMM table,
 * the graph cache. A chunk: the input is copied into its arena slot (the CPU program's channels-first
 * layout; the first kernel converts), the launch sequence is replayed from a CUDA Graph captured once
 * per (first chunk or not, orientation), the output slot is read back. Reset zeroes the caches.
 *
 * STATUS: compiled in CI and run there on the CPU emulator of tests/emu/ against the CPU backend and
 * diffusers; not yet run on a GPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_ctx.h"
#include "cuda_program.h"

/* Defined in the generated gen/vae_{decode,encode}_cuda.c when the variant has a VAE. */
extern const sky_vae_cuda_desc vae_decode_cuda __attribute__((weak));
extern const sky_vae_cuda_desc vae_encode_cuda __attribute__((weak));

typedef struct vae_cuda {
    const sky_vae_cuda_desc *desc;
    const sky_vae_program   *p;
    const char              *name;           /* vae_decode or vae_encode */
    int                      landscape_h;    /* H of a landscape call */
    sky_cuda                *c;
    CUmodule                 module;
    CUfunction              *fn;
    CUdeviceptr              weights;
    CUdeviceptr             *w;
    CUdeviceptr              arena;
    void                    *workspace;
    sky_gemm_set            *gemm;
    sky_graph_cache         *graphs;
    sky_cuda_program         st;
    int                      H, W, first;    /* the call being recorded */
    sky_cuda_trace           trace;
    char                     device[320];
} vae_cuda;

void sky_vae_cuda_close(void *opaque)
{
    vae_cuda *v = opaque;
    if (!v) return;
    if (v->c) {
        sky_graph_cache_free(v->graphs);
        sky_gemm_free(v->gemm);
        if (v->workspace) sky_cuda_arena_free(v->c, v->workspace);
        if (v->arena) sky_cuda_arena_free(v->c, (void *)(uintptr_t)v->arena);
        if (v->weights) sky_cuda_arena_free(v->c, (void *)(uintptr_t)v->weights);
        if (v->module) cuModuleUnload(v->module);
        sky_cuda_close(v->c);
    }
    free(v->fn);
    free(v->w);
    free(v->trace.host);
    free(v);
}

/* Every weight as fp32, in the layout the generated table gives, into one buffer. */
static sky_status upload_weights(vae_cuda *v, const float *const *w, sky_err *err)
{
    const sky_vae_program *p = v->p;
    const sky_weight_layout *lay = v->desc->weight_layout;
    size_t total = 0, *off = calloc((size_t)p->n_weights, sizeof *off), *count = calloc((size_t)p->n_weights, sizeof *count);
    sky_status st = SKY_ERR;
    float *host = NULL;
    if (!off || !count) { sky_fail(err, "out of host memory"); goto done; }
    for (int i = 0; i < p->n_weights; i++) {
        size_t n = 1;
        for (int k = 0; k < p->weights[i].ndim; k++) n *= (size_t)p->weights[i].shape[k];
        if (lay[i].cout) {
            if ((size_t)lay[i].cout * (size_t)lay[i].cin * (size_t)lay[i].taps != n || lay[i].cin_pad < lay[i].cin) {
                sky_fail(err, "%s: weight %s has %zu values, its layout says %d x %d x %d: rebuild the plugin with "
                         "the binary", v->name, p->weights[i].name, n, lay[i].cout, lay[i].cin, lay[i].taps);
                goto done;
            }
            n = (size_t)lay[i].cout * (size_t)lay[i].taps * (size_t)lay[i].cin_pad;
        }
        count[i] = n;
        off[i] = total;
        total += (n * sizeof(float) + 255) / 256 * 256;
    }
    host = calloc(total ? total / sizeof(float) : 1, sizeof(float));
    if (!host) { sky_fail(err, "out of host memory staging %zu bytes of VAE weights", total); goto done; }
    for (int i = 0; i < p->n_weights; i++) {
        float *dst = host + off[i] / sizeof(float);
        if (!lay[i].cout) {
            memcpy(dst, w[i], count[i] * sizeof(float));
            continue;
        }
        const int cout = lay[i].cout, cin = lay[i].cin, taps = lay[i].taps, cp = lay[i].cin_pad;
        for (int co = 0; co < cout; co++)               /* [cout][cin][taps] -> [cout][taps][cin_pad] */
            for (int ci = 0; ci < cin; ci++)
                for (int t = 0; t < taps; t++)
                    dst[((size_t)co * taps + t) * cp + ci] = w[i][((size_t)co * cin + ci) * taps + t];
    }
    void *dev;
    if (sky_cuda_arena_alloc(v->c, total, &dev, "the VAE weights", err)) goto done;
    v->weights = (CUdeviceptr)(uintptr_t)dev;
    SKY_CU_CHECK(cuMemcpyHtoD(v->weights, host, total));
    for (int i = 0; i < p->n_weights; i++) v->w[i] = v->weights + off[i];
    st = SKY_OK;
done:
    free(off); free(count); free(host);
    return st;
}

sky_status sky_vae_cuda_open(void **out, const sky_vae_program *p, int decode, const float *const *w, sky_err *err)
{
    *out = NULL;
    const sky_vae_cuda_desc *g = decode ? &vae_decode_cuda : &vae_encode_cuda;
    const char *name = decode ? "vae_decode" : "vae_encode";
    if (!g) return sky_fail(err, "--backend cuda: this plugin has no CUDA %s (the variant's spec has no vae section)",
                            name);
    vae_cuda *v = calloc(1, sizeof *v);
    if (!v) return sky_fail(err, "out of host memory");
    v->desc = g, v->p = p, v->name = name;
    v->landscape_h = decode ? p->lat_h : p->height;
    if (g->n_weights != p->n_weights) {
        sky_fail(err, "the CUDA plugin's %s has %d weights, the binary's %d: rebuild both", name, g->n_weights,
                 p->n_weights);
        goto fail;
    }
    v->fn = calloc((size_t)g->n_kernels, sizeof *v->fn);
    v->w = calloc((size_t)p->n_weights, sizeof *v->w);
    if (!v->fn || !v->w) { sky_fail(err, "out of host memory"); goto fail; }
    if (sky_cuda_open(&v->c, 0, err)) goto fail;
    snprintf(v->device, sizeof v->device, "%s, sm_%d%d, %d SMs", v->c->name, v->c->cc_major, v->c->cc_minor,
             v->c->sm_count);
    if (sky_cuda_require(v->c, g->arena_bytes + SKY_GEMM_WORKSPACE_BYTES, name, err)) goto fail;
    if (sky_cuda_kernels_load(v->c, g->kernels_src, g->kernels_file, g->n_kernels, g->kernel_names, "conv_tf32",
                              g->conv_smem, &v->module, v->fn, err))
        goto fail;
    if (upload_weights(v, w, err)) goto fail;
    void *dev;
    if (sky_cuda_arena_alloc(v->c, g->arena_bytes, &dev, name, err)) goto fail;
    v->arena = (CUdeviceptr)(uintptr_t)dev;
    SKY_CU_CHECK(cuMemsetD8(v->arena, 0, g->arena_bytes));
    if (sky_cuda_arena_alloc(v->c, SKY_GEMM_WORKSPACE_BYTES, &v->workspace, "the cuBLASLt workspace", err)) goto fail;
    if (sky_gemm_init(&v->gemm, v->c, g->gemms, g->n_gemms, v->workspace, SKY_GEMM_WORKSPACE_BYTES, err)) goto fail;
    if (sky_graph_cache_init(&v->graphs, v->c, 4, err)) goto fail;
    v->st = (sky_cuda_program){ .arena = v->arena, .w = v->w, .fn = v->fn, .gemm = v->gemm,
                                .sync_check = v->c->sync_check };
    *out = v;
    return SKY_OK;
fail:
    sky_vae_cuda_close(v);
    return SKY_ERR;
}

void sky_vae_cuda_reset(void *opaque)
{
    vae_cuda *v = opaque;
    for (int i = 0; i < v->desc->n_states; i++)
        SKY_CU_CHECK(cuMemsetD8(v->arena + v->desc->states[i].offset, 0, v->desc->states[i].bytes));
}

static void record(void *opaque, CUstream s)
{
    vae_cuda *v = opaque;
    v->desc->record(&v->st, s, v->H, v->W, v->first);
}

void sky_vae_cuda_chunk(void *opaque, int H, int W, int first, const float *in, size_t n_in, float *out, size_t n_out)
{
    vae_cuda *v = opaque;
    const sky_vae_cuda_desc *g = v->desc;
    const CUstream s = v->c->stream;
    if (n_in * sizeof(float) > g->in.bytes || n_out * sizeof(float) > g->out.bytes) {
        fprintf(stderr, "%s (cuda): a chunk of %zu -> %zu values does not fit the program's slots (%zu -> %zu "
                "bytes)\n", v->name, n_in, n_out, g->in.bytes, g->out.bytes);
        exit(1);
    }
    SKY_CU_CHECK(cuMemcpyHtoDAsync(v->arena + g->in.offset, in, n_in * sizeof(float), s));
    v->H = H, v->W = W, v->first = first != 0;
    sky_err err;
    const int key = v->first * 2 + (H != v->landscape_h);   /* the launch parameters differ between these */
    if (v->trace.fn) {
        record(v, s);
    } else if (sky_graph_run(v->graphs, key, record, v, &err)) {
        fprintf(stderr, "%s (cuda): %s\n", v->name, err.msg);
        exit(1);
    }
    SKY_CU_CHECK(cuMemcpyDtoHAsync(out, v->arena + g->out.offset, n_out * sizeof(float), s));
    SKY_CU_CHECK(cuStreamSynchronize(s));
}

static void trace_op(const sky_cuda_program *st, CUstream s, const char *name, size_t off, int dtype, long long n,
                     int cl)
{
    sky_cuda_trace_copy(&((vae_cuda *)st->trace_ctx)->trace, st, s, name, off, dtype, n, cl);
}

void sky_vae_cuda_set_trace(void *opaque, sky_trace_fn fn, void *ctx)
{
    vae_cuda *v = opaque;
    v->trace.fn = fn;
    v->trace.ctx = ctx;
    v->st.trace = fn ? trace_op : NULL;
    v->st.trace_ctx = fn ? v : NULL;
}

const char *sky_vae_cuda_device(void *opaque)
{
    return ((vae_cuda *)opaque)->device;
}
