/* runtime/cuda/vae_cuda.c — the CUDA backend of vae_decode, vae_encode, vae_decode_tile and vae_encode_tile (the
 * tiled decode's and encode's programs), in the plugin with the generated
 * gen/vae_{decode,encode,decode_tile,encode_tile}_cuda.c (cuda_program.h, models/cuda_abi.h).
 *
 * Open: the device, the program's kernels (NVRTC, cached), every weight uploaded as fp32 into one
 * buffer (convolution kernels with their input channel moved last, as the generated layout table
 * says), the arena the plan sized (activations and the per-layer caches), the cuBLASLt GEMM table,
 * the graph cache. A chunk: the input is copied into its arena slot (the CPU program's channels-first
 * layout; the first kernel converts), the launch sequence is replayed from a CUDA Graph captured once
 * per (first chunk or not, H x W: the orientation, or a tile's size), the output slot is read back. Reset zeroes
 * the caches.
 *
 * STATUS: compiled in CI and run there on the CPU emulator of tests/emu/ against the CPU backend and
 * diffusers; not yet run on a GPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "cuda/cuda_ctx.h"
#include "cuda/cuda_program.h"

/* Defined in the generated gen/vae_{decode,encode}_cuda.c when the variant has a VAE,
 * gen/vae_{decode,encode}_tile_cuda.c when its frame is larger than a tile. */
extern const sky_vae_cuda_desc vae_decode_cuda __attribute__((weak));
extern const sky_vae_cuda_desc vae_encode_cuda __attribute__((weak));
extern const sky_vae_cuda_desc vae_decode_tile_cuda __attribute__((weak));
extern const sky_vae_cuda_desc vae_encode_tile_cuda __attribute__((weak));

typedef struct vae_cuda {
    sky_cuda_prog            pr; /* device, kernels, weights, arena, GEMMs, st, trace */
    const sky_vae_cuda_desc *desc;
    const sky_vae_program   *p;
    sky_graph_cache         *graphs;
    int                      H, W, first; /* the call being recorded */
} vae_cuda;

void sky_vae_cuda_close(void *opaque)
{
    vae_cuda *v = opaque;
    if (!v) return;
    sky_cuda_prog_bind(&v->pr);
    sky_graph_cache_free(v->graphs);
    sky_cuda_prog_close(&v->pr);
    free(v);
}

/* Weight i's device form: fp32, a convolution kernel with its input channel moved last and padded
 * ([cout][cin][taps] -> [cout][taps][cin_pad], the padding zero), as the generated layout table says, and
 * rounded to tf32 (the conv kernel hands its weights to the tensor cores unrounded: conv_tf32.cu.in). */
typedef struct vae_form {
    const sky_weight_layout *lay;
    const size_t            *count;
} vae_form;

static void form_vae(void *ctx, int i, const float *src, void *dst_)
{
    const vae_form          *f = ctx;
    const sky_weight_layout *l = &f->lay[i];
    float                   *dst = dst_;
    if (!l->cout) {
        memcpy(dst, src, f->count[i] * sizeof(float));
        return;
    }
    const int cout = l->cout, cin = l->cin, taps = l->taps, cp = l->cin_pad;
    memset(dst, 0, (size_t)cout * taps * cp * sizeof(float));
    for (int co = 0; co < cout; co++)
        for (int ci = 0; ci < cin; ci++)
            for (int t = 0; t < taps; t++)
                dst[((size_t)co * taps + t) * cp + ci] = sky_f32_round_tf32(src[((size_t)co * cin + ci) * taps + t]);
}

static sky_status upload_weights(vae_cuda *v, const sky_weight_reader *w, sky_err *err)
{
    const sky_vae_program   *p = v->p;
    const sky_weight_layout *lay = v->desc->weight_layout;
    const size_t             nw = (size_t)(p->n_weights > 0 ? p->n_weights : 1);
    size_t                  *count = calloc(nw, sizeof *count), *bytes = calloc(nw, sizeof *bytes);
    sky_status               st = SKY_ERR;
    if (!count || !bytes) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    for (int i = 0; i < p->n_weights; i++) {
        size_t n = 1;
        for (int k = 0; k < p->weights[i].ndim; k++) n *= (size_t)p->weights[i].shape[k];
        count[i] = n;
        if (lay[i].cout) {
            if ((size_t)lay[i].cout * (size_t)lay[i].cin * (size_t)lay[i].taps != n || lay[i].cin_pad < lay[i].cin) {
                sky_fail(err,
                         "%s: weight %s has %zu values, its layout says %d x %d x %d: rebuild the plugin with "
                         "the binary",
                         v->pr.name, p->weights[i].name, n, lay[i].cout, lay[i].cin, lay[i].taps);
                goto done;
            }
            n = (size_t)lay[i].cout * (size_t)lay[i].taps * (size_t)lay[i].cin_pad;
        }
        bytes[i] = n * sizeof(float);
    }
    st = sky_cuda_prog_weights(&v->pr, p->n_weights, count, bytes, form_vae, &(vae_form){lay, count}, w, err);
done:
    free(count);
    free(bytes);
    return st;
}

sky_status sky_vae_cuda_open(void **out, const sky_vae_program *p, int decode, const sky_weight_reader *w, sky_err *err)
{
    *out = NULL;
    const sky_vae_cuda_desc *g = p->tile  ? decode ? &vae_decode_tile_cuda : &vae_encode_tile_cuda
                                 : decode ? &vae_decode_cuda
                                          : &vae_encode_cuda;
    const char *name = p->tile ? decode ? "vae_decode_tile" : "vae_encode_tile" : decode ? "vae_decode" : "vae_encode";
    if (!g)
        return sky_fail(err,
                        "--backend cuda: this plugin has no CUDA %s (the variant's spec has no vae section, or "
                        "the plugin was built from another generation than the binary: rebuild both)",
                        name);
    vae_cuda *v = calloc(1, sizeof *v);
    if (!v) return sky_fail(err, "out of host memory");
    v->desc = g, v->p = p;
    if (g->n_weights != p->n_weights) {
        sky_fail(err, "the CUDA plugin's %s has %d weights, the binary's %d: rebuild both", name, g->n_weights,
                 p->n_weights);
        goto fail;
    }
    if (sky_cuda_prog_begin(&v->pr, name, sky_cuda_process_device(), g->kernels_src, g->kernels_file, g->n_kernels,
                            g->kernel_names, "conv_tf32", g->conv_smem, p->n_weights, g->arena_bytes, 0, err) ||
        upload_weights(v, w, err) || sky_cuda_prog_end(&v->pr, g->gemms, g->n_gemms, err) ||
        sky_graph_cache_init(&v->graphs, v->pr.c, 16, err))
        goto fail;
    *out = v;
    return SKY_OK;
fail:
    sky_vae_cuda_close(v);
    return SKY_ERR;
}

void sky_vae_cuda_reset(void *opaque)
{
    vae_cuda *v = opaque;
    sky_cuda_prog_bind(&v->pr);
    for (int i = 0; i < v->desc->n_states; i++)
        SKY_CU_CHECK(cuMemsetD8(v->pr.arena + v->desc->states[i].offset, 0, v->desc->states[i].bytes));
}

static void record(void *opaque, CUstream s)
{
    vae_cuda *v = opaque;
    v->desc->record(&v->pr.st, s, v->H, v->W, v->first);
}

void sky_vae_cuda_chunk(void *opaque, int H, int W, int first, const float *in, size_t n_in, float *out, size_t n_out)
{
    vae_cuda                *v = opaque;
    const sky_vae_cuda_desc *g = v->desc;
    const CUstream           s = v->pr.c->stream;
    sky_cuda_prog_bind(&v->pr);
    if (n_in * sizeof(float) > g->in.bytes || n_out * sizeof(float) > g->out.bytes)
        SKY_CUDA_FATAL("%s (cuda): a chunk of %zu -> %zu values does not fit the program's slots (%zu -> %zu bytes)",
                       v->pr.name, n_in, n_out, g->in.bytes, g->out.bytes);
    SKY_CU_CHECK(cuMemcpyHtoDAsync(v->pr.arena + g->in.offset, in, n_in * sizeof(float), s));
    v->H = H, v->W = W, v->first = first != 0;
    sky_err err;
    /* the launch parameters differ between these: the orientation of a frame, the size of a tile (at most 4 of
     * them: the full tile and the last row's and column's) */
    const int key = v->first + 2 * (H * 65536 + W);
    if (v->pr.trace.fn) {
        record(v, s);
    } else if (sky_graph_run(v->graphs, key, record, v, &err)) {
        SKY_CUDA_FATAL("%s (cuda): %s", v->pr.name, err.msg);
    }
    SKY_CU_CHECK(cuMemcpyDtoHAsync(out, v->pr.arena + g->out.offset, n_out * sizeof(float), s));
    SKY_CU_CHECK(cuStreamSynchronize(s));
}

void sky_vae_cuda_set_trace(void *opaque, sky_trace_fn fn, void *ctx)
{
    sky_cuda_prog_set_trace(&((vae_cuda *)opaque)->pr, fn, ctx);
}

const char *sky_vae_cuda_device(void *opaque) { return ((vae_cuda *)opaque)->pr.device; }
