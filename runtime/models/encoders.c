/* runtime/models/encoders.c — the text and image encoders over whole inputs (encoders.h). */
#include "models/encoders.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/backend.h"
#include "models/cuda_plugin.h"
#include "core/dtype.h"
#include "formats/safetensors.h"
#include "formats/safetensors_write.h"
#include "formats/weights.h"

struct sky_encoder {
    const sky_encoder_program *p;
    sky_cpu_state              s;    /* fp32 weights and the arena (CPU backend) */
    const sky_cuda_plugin     *cuda; /* the CUDA backend: the plugin and its state */
    void                      *cuda_state;
};

sky_status sky_encoder_open(sky_encoder **out, const sky_encoder_program *p, int text, const char *weights,
                            const char *who, int b, sky_err *err)
{
    *out = NULL;
    sky_encoder *e = calloc(1, sizeof *e);
    if (!e) return sky_fail(err, "out of host memory");
    e->p = p;
    const int cuda = b == SKY_BACKEND_CUDA;
    if (cuda && sky_cuda_plugin_get(&e->cuda, who, err)) goto fail;
    if (cuda ? sky_cpu_state_open_lazy(&e->s, p->weights, p->n_weights, weights, NULL, who, err)
             : sky_cpu_state_open(&e->s, p->weights, p->n_weights, p->arena_bytes, weights, NULL, who, err))
        goto fail;
    if (cuda) {
        const sky_weight_reader r = sky_cpu_state_reader(&e->s);
        if (e->cuda->enc_open(&e->cuda_state, p, text, &r, err)) goto fail;
        sky_cpu_state_release(&e->s);
        if (sky_trace_hook) e->cuda->enc_set_trace(e->cuda_state, sky_trace_hook, sky_trace_ctx);
    }
    *out = e;
    return SKY_OK;
fail:
    sky_encoder_close(e);
    return SKY_ERR;
}

void sky_encoder_close(sky_encoder *e)
{
    if (!e) return;
    if (e->cuda && e->cuda_state) e->cuda->enc_close(e->cuda_state);
    sky_cpu_state_free(&e->s);
    free(e);
}

sky_status sky_text_encode(sky_encoder *e, const int64_t *ids, int n, float *out, sky_err *err)
{
    const sky_encoder_program *p = e->p;
    if (n < 1 || n > p->rows) return sky_fail(err, "text_encode: %d tokens; it takes 1 to %d", n, p->rows);
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= p->vocab)
            return sky_fail(err, "text_encode: token %d has id %lld, outside the vocabulary of %d", i,
                            (long long)ids[i], p->vocab);
    if (e->cuda) {
        e->cuda->enc_run(e->cuda_state, n, ids, (size_t)n * sizeof *ids, out, (size_t)p->rows * p->dim);
        return SKY_OK;
    }
    memcpy(e->s.arena + p->in.offset, ids, (size_t)n * sizeof *ids);
    p->forward_cpu(e->s.arena, (const float *const *)e->s.w.data, n);
    memcpy(out, e->s.arena + p->out.offset, (size_t)p->rows * p->dim * sizeof(float));
    return SKY_OK;
}

void sky_clip_encode(sky_encoder *e, const float *pixels, float *out)
{
    const sky_encoder_program *p = e->p;
    const size_t               in_bytes = (size_t)3 * p->image_size * p->image_size * sizeof(float);
    if (e->cuda) {
        e->cuda->enc_run(e->cuda_state, 0, pixels, in_bytes, out, (size_t)p->rows * p->dim);
        return;
    }
    memcpy(e->s.arena + p->in.offset, pixels, in_bytes);
    p->forward_cpu(e->s.arena, (const float *const *)e->s.w.data, 0);
    memcpy(out, e->s.arena + p->out.offset, (size_t)p->rows * p->dim * sizeof(float));
}

/* torch's cubic convolution weight with A = -0.75 (upsample_bicubic2d). */
static double cubic(double x)
{
    const double A = -0.75;
    x = fabs(x);
    if (x <= 1.0) return ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0;
    if (x < 2.0) return ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A;
    return 0.0;
}

void sky_clip_preprocess(const float *img, int h, int w, int S, float *out)
{
    static const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    static const double std[3] = {0.26862954, 0.26130258, 0.27577711};
    const double        sy = (double)h / S, sx = (double)w / S;
    for (int c = 0; c < 3; c++)
        for (int oy = 0; oy < S; oy++)
            for (int ox = 0; ox < S; ox++) {
                /* align_corners=False: source coordinate of the output pixel's centre */
                const double fy = (oy + 0.5) * sy - 0.5, fx = (ox + 0.5) * sx - 0.5;
                const int    iy = (int)floor(fy), ix = (int)floor(fx);
                const double ty = fy - iy, tx = fx - ix;
                double       acc = 0.0;
                for (int m = -1; m <= 2; m++) {
                    const int yy = iy + m < 0 ? 0 : (iy + m >= h ? h - 1 : iy + m);
                    double    row = 0.0;
                    for (int n = -1; n <= 2; n++) {
                        const int xx = ix + n < 0 ? 0 : (ix + n >= w ? w - 1 : ix + n);
                        row += cubic(n - tx) * img[((size_t)c * h + yy) * w + xx];
                    }
                    acc += cubic(m - ty) * row;
                }
                out[((size_t)c * S + oy) * S + ox] = (float)(((float)acc * 0.5f + 0.5f - mean[c]) / std[c]);
            }
}

sky_status sky_encoder_run_file(const sky_variant_desc *v, int text, const char *weights, const char *inputs,
                                const char *output, int quiet, int backend, sky_err *err)
{
    const sky_encoder_program *p = text ? v->text_encode : v->clip_encode;
    if (!p)
        return sky_fail(err, "variant %s has no %s (its spec has no %s section)", v->name,
                        text ? "text encoder" : "image encoder", text ? "t5" : "clip");
    sky_status       st = SKY_ERR;
    sky_safetensors *f = NULL;
    sky_encoder     *e = NULL;
    float           *in = NULL, *out = NULL;
    int64_t         *ids = NULL;
    if (sky_safetensors_open(&f, inputs, err) || sky_encoder_open(&e, p, text, weights, v->name, backend, err))
        goto done;
    out = malloc((size_t)p->rows * p->dim * sizeof(float));
    if (!out) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    if (text) {
        const sky_st_tensor *ti = sky_safetensors_find(f, "ids"), *tm = sky_safetensors_find(f, "mask");
        if (!ti || ti->ndim != 1 || !tm || tm->ndim != 1 || tm->shape[0] != ti->shape[0]) {
            sky_fail(err, "%s: needs 'ids' [S] and 'mask' [S] (1 for the real tokens)", inputs);
            goto done;
        }
        const size_t S = (size_t)ti->shape[0];
        float       *fi = malloc(S * sizeof(float) + 4), *fm = malloc(S * sizeof(float) + 4);
        ids = malloc(S * sizeof *ids + 8);
        if (!fi || !fm || !ids) {
            free(fi);
            free(fm);
            sky_fail(err, "out of host memory");
            goto done;
        }
        sky_status cs = sky_dtype_to_f32(fi, ti->data, ti->dtype, S, err);
        if (cs == SKY_OK)
            cs = tm->dtype == SKY_DTYPE_U8 || tm->dtype == SKY_DTYPE_BOOL
                     ? SKY_OK
                     : sky_dtype_to_f32(fm, tm->data, tm->dtype, S, err);
        int n = 0;
        for (size_t i = 0; cs == SKY_OK && i < S; i++) {
            const int m = (tm->dtype == SKY_DTYPE_U8 || tm->dtype == SKY_DTYPE_BOOL)
                              ? ((const unsigned char *)tm->data)[i] != 0
                              : fm[i] != 0.0f;
            if (m && (size_t)n != i) { cs = sky_fail(err, "%s: the mask must be 1 on a prefix of the tokens", inputs); }
            n += m;
            ids[i] = (int64_t)fi[i];
        }
        free(fi);
        free(fm);
        if (cs || sky_text_encode(e, ids, n, out, err)) goto done;
    } else {
        const sky_st_tensor *tp = sky_safetensors_find(f, "pixels");
        if (!tp || tp->ndim != 3 || tp->shape[0] != 3 || tp->shape[1] != p->image_size ||
            tp->shape[2] != p->image_size) {
            sky_fail(err, "%s: needs 'pixels' [3, %d, %d] (preprocessed)", inputs, p->image_size, p->image_size);
            goto done;
        }
        const size_t np = (size_t)3 * p->image_size * p->image_size;
        in = malloc(np * sizeof(float));
        if (!in) {
            sky_fail(err, "out of host memory");
            goto done;
        }
        if (sky_dtype_to_f32(in, tp->data, tp->dtype, np, err)) goto done;
        sky_clip_encode(e, in, out);
    }
    if (!quiet) fprintf(stderr, "%s: [%d, %d]\n", text ? "text_encode" : "clip_encode", p->rows, p->dim);
    sky_st_entry en = {text ? "context" : "clip_fea", SKY_DTYPE_F32, 2, {p->rows, p->dim}, out};
    const char  *meta[] = {"made_by", text ? "skyreels program text_encode" : "skyreels program clip_encode",
                           "variant", v->name,
                           "backend", backend == SKY_BACKEND_CUDA ? "cuda" : "cpu",
                           NULL};
    st = sky_safetensors_write(output, &en, 1, meta, err);
done:
    free(in);
    free(out);
    free(ids);
    sky_encoder_close(e);
    sky_safetensors_close(f);
    return st;
}
