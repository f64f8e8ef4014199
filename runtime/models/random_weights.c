/* runtime/models/random_weights.c — random weights, inputs and prompt embeddings (random_weights.h). */
#include "models/random_weights.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "core/str.h"
#include "formats/safetensors_write.h"

/* splitmix64: a small, well-mixed, reproducible generator. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* Standard normal (Box-Muller). */
static float next_normal(uint64_t *s)
{
    double u1 = ((double)(next_u64(s) >> 11) + 1.0) / 9007199254740993.0;
    double u2 = (double)(next_u64(s) >> 11) / 9007199254740992.0;
    return (float)(sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2));
}

sky_status sky_write_random_weights(const sky_weight_desc *const *tables, const int *counts, int n_tables,
                                    const char *path, const char *layout, int bf16, uint64_t seed, const char *variant,
                                    sky_err *err)
{
    int diffusers = 0;
    if (strcmp(layout, "diffusers") == 0)
        diffusers = 1;
    else if (strcmp(layout, "original") != 0)
        return sky_fail(err, "--layout %s: must be original or diffusers", layout);
    int total = 0;
    for (int t = 0; t < n_tables; t++) total += counts[t];
    sky_st_entry *e = calloc((size_t)total, sizeof *e);
    void        **bufs = calloc((size_t)total, sizeof *bufs);
    sky_status    st = SKY_ERR;
    int           i = 0;
    if (!e || !bufs) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    for (int t = 0; t < n_tables; t++)
        for (int j = 0; j < counts[t]; j++, i++) {
            const sky_weight_desc *d = &tables[t][j];
            size_t                 n = 1, fan_in = 1;
            for (int k = 0; k < d->ndim; k++) n *= (size_t)d->shape[k];
            for (int k = 1; k < d->ndim; k++) fan_in *= (size_t)d->shape[k];
            bufs[i] = malloc(n * 4 + 1);
            if (!bufs[i]) {
                sky_fail(err, "out of host memory for '%s'", d->name);
                goto done;
            }
            /* Norm weights near 1; matrices and conv kernels ~ N(0, 1/fan_in) so activations stay
             * O(1) through the layers; biases and tables small. */
            const int is_norm =
                (strstr(d->name, "norm") || strstr(d->name, "gamma") || strstr(d->name, "img_emb.proj.0.") ||
                 strstr(d->name, "img_emb.proj.4.") || strstr(d->name, ".head.0.")) &&
                !sky_str_ends_with(d->name, ".bias");
            const float std = (d->ndim >= 2 && !is_norm) ? (float)(1.0 / sqrt((double)fan_in)) : 0.05f;
            for (size_t k = 0; k < n; k++) {
                float x = next_normal(&seed) * std;
                if (is_norm) x = 1.0f + 0.1f * next_normal(&seed);
                if (bf16) {
                    uint16_t h = sky_f32_to_bf16(x);
                    memcpy((unsigned char *)bufs[i] + 2 * k, &h, 2);
                } else {
                    memcpy((unsigned char *)bufs[i] + 4 * k, &x, 4);
                }
            }
            e[i].name = diffusers ? d->alias : d->name;
            e[i].dtype = bf16 ? SKY_DTYPE_BF16 : SKY_DTYPE_F32;
            e[i].ndim = d->ndim;
            memcpy(e[i].shape, d->shape, sizeof e[i].shape);
            e[i].data = bufs[i];
        }
    const char *meta[] = {"made_by", "skyreels random-weights (random values: the model's output is noise)",
                          "variant", variant,
                          "format",  "pt",
                          NULL};
    st = sky_safetensors_write(path, e, total, meta, err);
done:
    if (bufs)
        for (int k = 0; k < total; k++) free(bufs[k]);
    free(bufs);
    free(e);
    return st;
}

sky_status sky_dit_write_random_inputs(const sky_variant_desc *v, const char *path, int batch, int frames,
                                       int per_frame, int prompts, uint64_t seed, sky_err *err)
{
    const sky_dit_program *p = v->dit;
    if (batch < 1 || batch > 64) return sky_fail(err, "--batch %d: must be 1 to 64", batch);
    if (prompts < 1 || prompts > batch) return sky_fail(err, "--prompts %d: must be 1 to --batch (%d)", prompts, batch);
    if (frames < 1 || frames > p->max_frames)
        return sky_fail(err, "--frames %d: must be 1 to %d latent frames (this variant's window)", frames,
                        p->max_frames);
    const size_t lat = (size_t)frames * (size_t)p->lat_h * (size_t)p->lat_w;
    const size_t n_x = (size_t)batch * (size_t)p->x_channels * lat;
    const size_t n_y = (size_t)batch * (size_t)p->y_channels * lat;
    const size_t n_ctx = (size_t)batch * (size_t)p->text_len * (size_t)p->text_dim;
    const size_t n_img = (size_t)batch * (size_t)p->image_len * (size_t)p->image_dim;
    const int    ft = per_frame ? frames : 1;
    float       *x = malloc(n_x * 4), *y = malloc(n_y * 4 + 4), *ctx = malloc(n_ctx * 4), *img = malloc(n_img * 4 + 4);
    int64_t     *t = malloc((size_t)batch * (size_t)ft * 8), *fps = malloc((size_t)batch * 8);
    sky_status   st = SKY_ERR;
    if (!x || !y || !ctx || !img || !t || !fps) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    for (size_t i = 0; i < n_x; i++) x[i] = next_normal(&seed);
    for (size_t i = 0; i < n_y; i++) y[i] = next_normal(&seed);
    /* the first `prompts` samples' contexts and images are drawn, the others repeat them */
    const size_t per_ctx = n_ctx / (size_t)batch, per_img = n_img / (size_t)batch;
    for (size_t i = 0; i < per_ctx * (size_t)prompts; i++) ctx[i] = next_normal(&seed);
    for (size_t i = 0; i < per_img * (size_t)prompts; i++) img[i] = next_normal(&seed);
    for (int b = prompts; b < batch; b++) {
        memcpy(ctx + (size_t)b * per_ctx, ctx + (size_t)(b % prompts) * per_ctx, per_ctx * sizeof(float));
        memcpy(img + (size_t)b * per_img, img + (size_t)(b % prompts) * per_img, per_img * sizeof(float));
    }
    for (size_t i = 0; i < (size_t)batch * (size_t)ft; i++) t[i] = (int64_t)(next_u64(&seed) % 1000);
    for (int b = 0; b < batch; b++) fps[b] = b % 2;

    sky_st_entry e[6];
    int          n = 0;
    e[n++] = (sky_st_entry){"x", SKY_DTYPE_F32, 5, {batch, p->x_channels, frames, p->lat_h, p->lat_w}, x};
    e[n++] = per_frame ? (sky_st_entry){"t", SKY_DTYPE_I64, 2, {batch, frames}, t}
                       : (sky_st_entry){"t", SKY_DTYPE_I64, 1, {batch}, t};
    e[n++] = (sky_st_entry){"context", SKY_DTYPE_F32, 3, {batch, p->text_len, p->text_dim}, ctx};
    if (p->y_channels) {
        e[n++] = (sky_st_entry){"y", SKY_DTYPE_F32, 5, {batch, p->y_channels, frames, p->lat_h, p->lat_w}, y};
        e[n++] = (sky_st_entry){"clip_fea", SKY_DTYPE_F32, 3, {batch, p->image_len, p->image_dim}, img};
    }
    if (p->inject_sample_info) e[n++] = (sky_st_entry){"fps", SKY_DTYPE_I64, 1, {batch}, fps};
    const char *meta[] = {"made_by", "skyreels random-inputs", "variant", v->name, NULL};
    st = sky_safetensors_write(path, e, n, meta, err);
done:
    free(x);
    free(y);
    free(ctx);
    free(img);
    free(t);
    free(fps);
    return st;
}

sky_status sky_dit_write_random_embeds(const sky_variant_desc *v, const char *path, uint64_t seed, sky_err *err)
{
    const sky_dit_program *p = v->dit;
    const size_t n_ctx = (size_t)p->text_len * (size_t)p->text_dim, n_img = (size_t)p->image_len * (size_t)p->image_dim;
    float       *c = malloc(n_ctx * 4), *u = malloc(n_ctx * 4), *img = malloc(n_img * 4 + 4);
    sky_status   st = SKY_ERR;
    if (!c || !u || !img) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    for (size_t i = 0; i < n_ctx; i++) c[i] = next_normal(&seed);
    for (size_t i = 0; i < n_ctx; i++) u[i] = next_normal(&seed);
    for (size_t i = 0; i < n_img; i++) img[i] = next_normal(&seed);
    sky_st_entry e[3] = {
        {"context", SKY_DTYPE_F32, 2, {p->text_len, p->text_dim}, c},
        {"context_null", SKY_DTYPE_F32, 2, {p->text_len, p->text_dim}, u},
        {"clip_fea", SKY_DTYPE_F32, 2, {p->image_len, p->image_dim}, img},
    };
    const char *meta[] = {"made_by", "skyreels random-embeds (random values, not a real prompt)", "variant", v->name,
                          NULL};
    st = sky_safetensors_write(path, e, p->y_channels ? 3 : 2, meta, err);
done:
    free(c);
    free(u);
    free(img);
    return st;
}
