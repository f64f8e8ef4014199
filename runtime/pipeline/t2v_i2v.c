/* runtime/pipeline/t2v_i2v.c — the T2V and I2V pipelines (reference dit-and-sampling.md §7.2, §7.3): noise,
 * N UniPC steps with classifier-free guidance over the whole video (one timestep per step), VAE decode. I2V
 * adds the conditioning y = [mask, VAE(image, then zero frames)] (and the image's CLIP features, pipeline.c);
 * first-last-frame (FLF2V) variants end those frames with the last image (round2-features.md §3.4). */
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "models/latent.h"
#include "pipeline/denoise.h"
#include "pipeline/sampler.h"

/* Pixel frame t of video [3, T, H, W] from the image at path, rounded to bf16: the original casts the image to
 * the transformer's dtype before the VAE encodes it (image2video_pipeline.py; not in reference §7.3). */
static sky_status put_frame(const char *path, int t, int T, int H, int W, float *img, float *video, sky_err *err)
{
    if (sky_denoise_load_image(path, H, W, 1, img, err)) return SKY_ERR;
    for (size_t i = 0; i < (size_t)3 * H * W; i++) img[i] = sky_bf16_to_f32(sky_f32_to_bf16(img[i]));
    for (int c = 0; c < 3; c++)
        memcpy(video + ((size_t)c * T + t) * H * W, img + (size_t)c * H * W, (size_t)H * W * sizeof(float));
    return SKY_OK;
}

/* I2V's y [y_channels, F, h, w] (§7.3): a 4-channel mask, 1 at latent frame 0, then the VAE encoding of the
 * image followed by num_frames - 1 zero frames. FLF2V (--end_image; round2-features.md §3.4): the last of
 * those frames is the last image, and the mask of the last latent frame is [0, 0, 0, 1] (its 4th pixel
 * frame is the real one). */
static sky_status i2v_condition(sky_denoise *r, int F, float *y, sky_err *err)
{
    const sky_gen_args *a = r->a;
    const int           H = a->height, W = a->width, T = a->num_frames;
    float              *video = calloc((size_t)3 * T * H * W, sizeof(float));
    float              *img = malloc((size_t)3 * H * W * sizeof(float));
    sky_status          st = SKY_ERR;
    if (!video || !img) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    if (put_frame(a->image, 0, T, H, W, img, video, err) ||
        (a->end_image && put_frame(a->end_image, T - 1, T, H, W, img, video, err)))
        goto done;
    for (int c = 0; c < 4; c++)
        for (size_t i = 0; i < r->hw; i++) y[(size_t)c * F * r->hw + i] = 1.0f;
    if (a->end_image)
        for (size_t i = 0; i < r->hw; i++) y[((size_t)3 * F + F - 1) * r->hw + i] = 1.0f;
    st = sky_denoise_vae_encode(r, video, T, y + (size_t)4 * F * r->hw, err);
done:
    free(img);
    free(video);
    return st;
}

/* The steps: x [C, F, h, w] from noise to the sample, one guided evaluation per step. */
static sky_status denoise(sky_denoise *r, int F, float *x, const float *y, sky_err *err)
{
    const sky_gen_args *a = r->a;
    const size_t        n = (size_t)r->v->dit->out_dim * F * r->hw;
    sky_sampler         u = {0};
    float              *v = malloc(n * sizeof(float)), *tmp = malloc(n * sizeof(float));
    sky_status          st = SKY_ERR;
    if (!v || !tmp) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    if (sky_sampler_init(&u, a->solver, a->inference_steps, a->shift, n, err)) goto done;
    if (sky_denoise_use_dit(r, err)) goto done;
    r->step_flops = sky_denoise_flops_dit(r, F, a->guidance_scale == 1.0 ? 1 : 2);
    sky_denoise_work_plan(r, SKY_WORK_DIT, a->inference_steps * r->step_flops);
    sky_denoise_progress_start(r, a->inference_steps);
    for (int i = 0; i < a->inference_steps; i++) {
        if (sky_denoise_phase(r, "step", err)) goto done;
        const double t = (double)u.timesteps[i];
        sky_denoise_guided(r, F, x, y, &t, 1, v, tmp, a->guidance_scale == 1.0);
        sky_sampler_step(&u, v, x);
        sky_denoise_progress_step(r);
        if (sky_denoise_check_latents(x, n, i + 1, a->inference_steps, -1, 0, err)) goto done;
    }
    sky_denoise_done_dit(r);
    st = SKY_OK;
done:
    sky_sampler_free(&u);
    free(v);
    free(tmp);
    return st;
}

sky_status sky_pipeline_t2v_i2v(sky_denoise *r, sky_err *err)
{
    const sky_dit_program *p = r->v->dit;
    const int              C = p->out_dim, F = sky_latent_frames(r->a->num_frames, r->v->vae_stride_t);
    const size_t           n = (size_t)C * F * r->hw;
    const int64_t          shape[4] = {C, F, r->h, r->w};
    float                 *x = malloc(n * sizeof(float)), *y = NULL;
    sky_status             st = SKY_ERR;
    if (!x) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    /* the ETA's work (denoise.h): the steps (denoise()), the decode, I2V's encode of F latent frames */
    if (r->has_vae) sky_denoise_work_plan(r, SKY_WORK_DECODE, sky_denoise_flops_vae(r, 1, F));
    if (p->y_channels) sky_denoise_work_plan(r, SKY_WORK_ENCODE, sky_denoise_flops_vae(r, 0, F));
    if (sky_noise_draw(&r->noise, x, 4, shape, "initial latent noise", err)) goto done;
    if (p->y_channels) {
        y = calloc((size_t)p->y_channels * F * r->hw, sizeof(float));
        if (!y) {
            sky_fail(err, "out of host memory");
            goto done;
        }
        if (i2v_condition(r, F, y, err)) goto done;
    }
    if (denoise(r, F, x, y, err) || sky_denoise_keep(r, "latents", x, 4, shape, err)) goto done;
    sky_denoise_hash_latents(r, x, (size_t)p->out_dim * F * r->hw);
    if (sky_denoise_decode_and_emit(r, x, F, 0, err)) goto done;
    st = SKY_OK;
done:
    free(x);
    free(y);
    return st;
}
