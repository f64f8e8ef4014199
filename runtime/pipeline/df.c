/* runtime/pipeline/df.c — the diffusion-forcing pipeline (reference dit-and-sampling.md §7.4): the run's
 * schedule (windows and step matrices, forcing.h) made once, then window by window: noise with its prefix (a
 * start image, or the VAE encoding of the output's last overlap_history frames) and end frame, the rows of the
 * window's step matrix (one sampler per latent frame), decode, emit the new frames. A window kept in
 * --resume_dir is read back instead of denoised.
 *
 * Frame f of a latent [C, F, h, w] is gathered into a contiguous [C, h, w] buffer to step it.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/latent.h"
#include "pipeline/denoise.h"
#include "pipeline/forcing.h"
#include "pipeline/resume.h"
#include "pipeline/sampler.h"

/* A DF run's state beside the shared one. */
typedef struct df_run {
    sky_denoise    *r;
    sky_df_schedule s;              /* the windows and the step matrix of each */
    sky_frames      input;          /* --video_path's frames at the video size */
    sky_sampler     proto;          /* the sampler's schedule: every window's timesteps */
    float          *end_z;          /* --end_image's latent [C, 1, h, w] */
    float          *history;        /* the output's last overlap_history frames [3, n, H, W] */
    int             history_frames; /* n */
    int             resumed;        /* windows taken from --resume_dir */
    char           *key;            /* --resume_dir's key: the run's parameters */
} df_run;

/* Copy frames [f0, f0+n) of latent a [C, Fa, hw] into b [C, Fb, hw] at frame g0. */
static void copy_latent_frames(float *b, int Fb, int g0, const float *a, int Fa, int f0, int n, int C, size_t hw)
{
    for (int c = 0; c < C; c++)
        memcpy(b + ((size_t)c * Fb + g0) * hw, a + ((size_t)c * Fa + f0) * hw, (size_t)n * hw * sizeof(float));
}

/* ---- the schedule --------------------------------------------------------------------------- */

/* printf into a new string (NULL when out of memory). */
static char *format(const char *fmt, ...)
{
    va_list ap, again;
    va_start(ap, fmt);
    va_copy(again, ap);
    const int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *s = n >= 0 ? malloc((size_t)n + 1) : NULL;
    if (s) vsnprintf(s, (size_t)n + 1, fmt, again);
    va_end(again);
    return s;
}

/* The key of --resume_dir's window files (resume.h): the run's parameters, the backend and the input files. */
static char *resume_key(const sky_gen_args *a)
{
#define OR_NONE(s) ((s) ? (s) : "none")
    char *key =
        format("%s; backend %s; image %s; end_image %s; video_path %s; noise %s; prompt_embeds %s",
               a->args_json ? a->args_json : "{}", a->backend == SKY_BACKEND_CUDA ? "cuda" : "cpu", OR_NONE(a->image),
               OR_NONE(a->end_image), OR_NONE(a->video_path), OR_NONE(a->noise_file), OR_NONE(a->prompt_embeds));
#undef OR_NONE
    return key;
}

/* The windows kept in --resume_dir by an interrupted run of the same parameters (d->resumed). */
static sky_status resume_start(df_run *d, int windows, sky_err *err)
{
    const sky_gen_args *a = d->r->a;
    if (!a->resume_dir) return SKY_OK;
    if (!(d->key = resume_key(a))) return sky_fail(err, "out of host memory");
    if (sky_resume_count(a->resume_dir, d->key, windows, &d->resumed, err)) return SKY_ERR;
    if (d->resumed && !a->quiet)
        fprintf(stderr, "resume: %d of %d windows kept in %s (decoded again)%s\n", d->resumed, windows, a->resume_dir,
                d->resumed < windows ? ", denoising the rest" : ", nothing left to denoise");
    return SKY_OK;
}

/* The run's work for the ETA (denoise.h): the rows left of each window at its frames, every window's decode
 * (a resumed one is decoded again), the encodes of the prefixes denoised and of the end image. */
static void plan_work(df_run *d)
{
    sky_denoise        *r = d->r;
    const sky_gen_args *a = r->a;
    const int           passes = a->guidance_scale <= 1.0 ? 1 : 2; /* sky_denoise_guided's skip_uncond */
    if (a->end_image) sky_denoise_work_plan(r, SKY_WORK_ENCODE, sky_denoise_flops_vae(r, 0, 1));
    for (int k = 0; k < d->s.plan.windows; k++) {
        const sky_df_window w = d->s.window[k];
        if (r->has_vae) sky_denoise_work_plan(r, SKY_WORK_DECODE, sky_denoise_flops_vae(r, 1, w.frames));
        if (k < d->resumed) continue;
        sky_denoise_work_plan(r, SKY_WORK_DIT,
                              d->s.matrix[k]->rows * sky_denoise_flops_dit(r, w.frames + w.end_frame, passes));
        if (w.prefix_from_video)
            sky_denoise_work_plan(
                r, SKY_WORK_ENCODE,
                sky_denoise_flops_vae(r, 0, sky_latent_frames(a->overlap_history, r->v->vae_stride_t)));
        else if (w.prefix == 1 && a->image)
            sky_denoise_work_plan(r, SKY_WORK_ENCODE, sky_denoise_flops_vae(r, 0, 1));
    }
}

/* The run's plan (the one the command line checked, or made here: with --video_path once the video is read, its length
 * deciding the windows), the sampler's timesteps, the windows kept in --resume_dir, the schedule, and the
 * progress bar over the rows left to denoise. */
static sky_status schedule(df_run *d, sky_err *err)
{
    sky_denoise        *r = d->r;
    const sky_gen_args *a = r->a;
    sky_df_plan         plan;
    /* a first pass counts the frames (decoded, not kept: the windows depend on the count); read_inputs streams them */
    if (a->video_path && sky_video_each(a->video_path, 0, a->width, a->height, NULL, NULL, &d->input, err))
        return SKY_ERR;
    if (a->df_plan && !a->video_path)
        plan = *a->df_plan;
    else if (sky_pipeline_df_plan(r->v, a, d->input.count, &plan, err))
        return SKY_ERR;
    if (sky_sampler_init(&d->proto, a->solver, a->inference_steps, a->shift, 1, err) ||
        resume_start(d, plan.windows, err) ||
        sky_df_schedule_make(&plan, d->proto.timesteps, a->inference_steps, a->ar_step, &d->s, err))
        return SKY_ERR;
    r->windows = plan.windows;
    plan_work(d);
    sky_denoise_progress_start(r, sky_df_schedule_rows(&d->s, d->resumed));
    return SKY_OK;
}

/* ---- the inputs: images, the video to extend ---------------------------------------------- */

/* The VAE latent of one image (start or end frame, §7.4.3): PIL-bicubic-style resize to W x H,
 * /127.5 - 1, encoded alone -> [C, 1, h, w]. */
static sky_status image_latent(sky_denoise *r, const char *path, float *z, sky_err *err)
{
    const int H = r->a->height, W = r->a->width;
    float    *img = malloc((size_t)3 * H * W * sizeof(float));
    if (!img) return sky_fail(err, "out of host memory");
    sky_status st = sky_denoise_load_image(path, H, W, 0, img, err);
    if (st == SKY_OK) st = sky_denoise_vae_encode(r, img, 1, z, err);
    free(img);
    return st;
}

/* Keep in *hist the last n frames of [*hist (hn frames) ++ frames [t0, T) of px]: the frames a
 * long video's next prefix is encoded from are the last overlap_history frames of the OUTPUT so far
 * (the original's), which reach back into earlier windows when a window adds fewer frames. */
static sky_status keep_history(float **hist, int *hn, int n, const float *px, int T, int t0, size_t phw, sky_err *err)
{
    const int add = T - t0, total = *hn + add, keep = total < n ? total : n;
    float    *out = malloc((size_t)3 * (keep ? keep : 1) * phw * sizeof(float));
    if (!out) return sky_fail(err, "out of host memory");
    for (int j = 0; j < keep; j++) {
        const int src = total - keep + j; /* index in the concatenation */
        for (int c = 0; c < 3; c++) {
            const float *from =
                src < *hn ? *hist + ((size_t)c * *hn + src) * phw : px + ((size_t)c * T + t0 + (src - *hn)) * phw;
            memcpy(out + ((size_t)c * keep + j) * phw, from, phw * sizeof(float));
        }
    }
    free(*hist);
    *hist = out;
    *hn = keep;
    return SKY_OK;
}

/* read_inputs' pass over --video_path: each frame to the outputs as it is decoded, the last n kept (ring). */
typedef struct {
    sky_denoise *r;
    float       *frame; /* [3, H, W] in [-1, 1] */
    uint8_t     *rgb;   /* the writer's scratch */
    uint8_t     *ring;  /* the last n frames, RGB24, frame i at i % n */
    int          n;
} input_pass;

/* One RGB24 frame px (phw pixels) as the pipeline's floats in [-1, 1]: channel c at out + c * stride. */
static void frame_to_planes(const uint8_t *px, size_t phw, float *out, size_t stride)
{
    for (int c = 0; c < 3; c++)
        for (size_t k = 0; k < phw; k++) out[c * stride + k] = px[k * 3 + c] / 127.5f - 1.0f;
}

static sky_status input_frame(void *ctx, const uint8_t *px, int width, int height, int i, sky_err *err)
{
    input_pass  *p = ctx;
    const size_t phw = (size_t)width * height;
    frame_to_planes(px, phw, p->frame, phw);
    if (p->n) memcpy(p->ring + (size_t)(i % p->n) * 3 * phw, px, 3 * phw);
    return sky_denoise_emit_frame(p->r, p->frame, p->rgb, err);
}

/* The end image's latent (--end_image), and the input video (--video_path): it is the start of the output,
 * emitted as it is, its tail kept as the first prefix's history. The video is streamed: whatever its length,
 * memory holds one frame and the last overlap_history. */
static sky_status read_inputs(df_run *d, sky_err *err)
{
    sky_denoise        *r = d->r;
    const sky_gen_args *a = r->a;
    const int           count = d->input.count, n = a->overlap_history > 0 ? a->overlap_history : 0;
    const size_t        phw = (size_t)a->height * a->width;
    if (a->end_image) {
        if (!(d->end_z = malloc((size_t)r->v->dit->out_dim * r->hw * sizeof(float))))
            return sky_fail(err, "out of host memory");
        if (image_latent(r, a->end_image, d->end_z, err)) return SKY_ERR;
    }
    if (!count) return SKY_OK;
    input_pass p = {r, malloc(3 * phw * sizeof(float)), malloc(3 * phw), n ? malloc((size_t)n * 3 * phw) : NULL, n};
    const int  k = count < n ? count : n; /* the history's frames */
    float     *tail = malloc((size_t)3 * (k ? k : 1) * phw * sizeof(float));
    sky_status st = p.frame && p.rgb && (p.ring || !n) && tail ? SKY_OK : sky_fail(err, "out of host memory");
    sky_frames info;
    if (st == SKY_OK) {
        const sky_stage prev = sky_denoise_stage(r, SKY_STAGE_WRITE, r->writer ? "writing the %d frames of %s" : NULL,
                                                 count, a->video_path);
        st = sky_video_each(a->video_path, 0, a->width, a->height, input_frame, &p, &info, err);
        sky_denoise_stage(r, prev, NULL);
    }
    if (st == SKY_OK && info.count != count)
        st = sky_fail(err, "%s: %d frames on the second reading, %d on the first: was the file changed during the run?",
                      a->video_path, info.count, count);
    if (st == SKY_OK) { /* the last k frames, oldest first, as [3, k, H, W] */
        for (int j = 0; j < k; j++)
            frame_to_planes(p.ring + (size_t)((count - k + j) % n) * 3 * phw, phw, tail + (size_t)j * phw,
                            (size_t)k * phw);
        st = keep_history(&d->history, &d->history_frames, a->overlap_history, tail, k, 0, phw, err);
    }
    free(tail);
    free(p.frame);
    free(p.rgb);
    free(p.ring);
    return st;
}

/* ---- one window ------------------------------------------------------------------------------ */

/* The prefix of window w in Z [C, Ftot, h, w]: the VAE encoding of the output's last overlap_history frames
 * (§7.4.4 step 1), or the start image's latent. */
static sky_status fill_prefix(df_run *d, sky_df_window w, float *Z, int Ftot, sky_err *err)
{
    sky_denoise *r = d->r;
    const int    C = r->v->dit->out_dim, st_t = r->v->vae_stride_t;
    const size_t phw = (size_t)r->a->height * r->a->width;
    if (w.prefix_from_video) {
        /* the VAE takes 1 + 4k of the n frames: lat latent frames, at least the prefix */
        const int n = r->a->overlap_history, lat = sky_latent_frames(n, st_t),
                  used = sky_latent_video_frames(lat, st_t);
        SKY_ASSERT(d->history_frames == n && lat >= w.prefix);
        float *tail = malloc((size_t)3 * used * phw * sizeof(float));
        float *pz = malloc((size_t)C * lat * r->hw * sizeof(float));
        if (!tail || !pz) {
            free(tail);
            free(pz);
            return sky_fail(err, "out of host memory");
        }
        for (int c = 0; c < 3; c++)
            memcpy(tail + (size_t)c * used * phw, d->history + (size_t)c * d->history_frames * phw,
                   (size_t)used * phw * sizeof(float));
        sky_status es = sky_denoise_vae_encode(r, tail, used, pz, err);
        if (es == SKY_OK) copy_latent_frames(Z, Ftot, 0, pz, lat, 0, w.prefix, C, r->hw);
        free(tail);
        free(pz);
        return es;
    }
    if (w.prefix == 1 && r->a->image) {
        float *iz = malloc((size_t)C * r->hw * sizeof(float));
        if (!iz) return sky_fail(err, "out of host memory");
        sky_status is = image_latent(r, r->a->image, iz, err);
        if (is == SKY_OK) copy_latent_frames(Z, Ftot, 0, iz, 1, 0, 1, C, r->hw);
        free(iz);
        return is;
    }
    return SKY_OK;
}

/* Window w's latents before its first row (§7.4.2): fresh noise, the prefix, the end frame appended. */
static sky_status fill_window(df_run *d, sky_df_window w, float *Z, int Ftot, sky_err *err)
{
    sky_denoise  *r = d->r;
    const int     C = r->v->dit->out_dim;
    const int64_t shape[4] = {C, w.frames, r->h, r->w};
    float        *fresh = malloc((size_t)C * w.frames * r->hw * sizeof(float));
    if (!fresh) return sky_fail(err, "out of host memory");
    if (sky_noise_draw(&r->noise, fresh, 4, shape, "window noise", err)) {
        free(fresh);
        return SKY_ERR;
    }
    copy_latent_frames(Z, Ftot, 0, fresh, w.frames, 0, w.frames, C, r->hw);
    free(fresh);
    if (fill_prefix(d, w, Z, Ftot, err)) return SKY_ERR;
    if (w.end_frame) copy_latent_frames(Z, Ftot, w.frames, d->end_z, 1, 0, 1, C, r->hw);
    return SKY_OK;
}

/* The rows of the window's step matrix m over Z [C, Ftot, h, w] (§7.4.2): each row feeds every frame at its
 * timestep (the prefix noised a little with addnoise_condition) and steps the frames the row updates. */
static sky_status denoise_window(sky_denoise *r, const sky_forcing_matrix *m, float *Z, int Ftot, int prefix, int k,
                                 int windows, sky_err *err)
{
    const sky_gen_args *a = r->a;
    const int           C = r->v->dit->out_dim;
    const size_t        n = (size_t)C * Ftot * r->hw, fn = (size_t)C * r->hw;
    sky_sampler        *s = calloc((size_t)Ftot, sizeof *s);
    float     *inp = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float)), *tmp = malloc(n * sizeof(float));
    float     *xf = malloc(fn * sizeof(float)), *vf = malloc(fn * sizeof(float));
    float     *an = malloc((size_t)C * (prefix ? prefix : 1) * r->hw * sizeof(float));
    double    *tt = malloc((size_t)Ftot * sizeof(double));
    sky_status st = SKY_ERR;
    if (!s || !inp || !v || !tmp || !xf || !vf || !an || !tt) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    for (int f = 0; f < Ftot; f++)
        if (sky_sampler_init(&s[f], a->solver, a->inference_steps, a->shift, fn, err)) goto done;
    const float A = 0.001f * (float)a->addnoise_condition;
    r->step_flops = sky_denoise_flops_dit(r, Ftot, a->guidance_scale <= 1.0 ? 1 : 2);
    for (int row = 0; row < m->rows; row++) {
        if (sky_denoise_phase(r, "step", err)) goto done;
        memcpy(inp, Z, n * sizeof(float));
        for (int f = 0; f < Ftot; f++) tt[f] = m->timestep[(size_t)row * m->frames + f];
        if (a->addnoise_condition > 0 && prefix > 0) {
            /* Noise the clean prefix a little and tell the model so (t = addnoise_condition). */
            int64_t shape[4] = {C, prefix, r->h, r->w};
            if (sky_noise_draw(&r->noise, an, 4, shape, "addnoise_condition noise", err)) goto done;
            for (int c = 0; c < C; c++)
                for (int f = 0; f < prefix; f++)
                    for (size_t i = 0; i < r->hw; i++) {
                        const size_t zi = ((size_t)c * Ftot + f) * r->hw + i, ni = ((size_t)c * prefix + f) * r->hw + i;
                        inp[zi] = inp[zi] * (1.0f - A) + an[ni] * A;
                    }
            for (int f = 0; f < prefix; f++) tt[f] = (double)a->addnoise_condition;
        }
        sky_denoise_guided(r, Ftot, inp, NULL, tt, Ftot, v, tmp, a->guidance_scale <= 1.0);
        for (int f = 0; f < Ftot; f++) {
            if (!m->update[(size_t)row * m->frames + f]) continue;
            copy_latent_frames(xf, 1, 0, Z, Ftot, f, 1, C, r->hw);
            copy_latent_frames(vf, 1, 0, v, Ftot, f, 1, C, r->hw);
            sky_sampler_step(&s[f], vf, xf);
            /* The original's quirk, reproduced: its DF loop writes each frame's step result into the
             * latent in place (`latents[0][:, idx] = scheduler.step(..., latents[0][:, idx])`), and
             * the scheduler's first step keeps that very view as last_sample; so the corrector of the
             * second step sees the frame's current sample as the "last" one. (T2V/I2V rebind the
             * tensor instead, so they do not have it; diffusers' DF pipeline has it too.) */
            if (s[f].solver == SKY_SOLVER_UNIPC && s[f].done == 1) memcpy(s[f].unipc.last, xf, fn * sizeof(float));
            copy_latent_frames(Z, Ftot, f, xf, 1, 0, 1, C, r->hw);
        }
        sky_denoise_progress_step(r);
        if (sky_denoise_check_latents(Z, n, row + 1, m->rows, k, windows, err)) goto done;
    }
    st = SKY_OK;
done:
    if (s)
        for (int f = 0; f < Ftot; f++) sky_sampler_free(&s[f]);
    free(s);
    free(inp);
    free(v);
    free(tmp);
    free(xf);
    free(vf);
    free(an);
    free(tt);
    return st;
}

/* TeaCache's step count of a later long-video window with ar_step > 0, as the original sets it (reference
 * §8): N + ((Fw - Fo) / cbs - 1) ar_step. */
static void teacache_window_steps(df_run *d, int k, sky_df_window w)
{
    const sky_gen_args *a = d->r->a;
    if (!d->r->tcp || a->ar_step <= 0 || k == 0 || a->video_path) return;
    const int Fo = d->s.plan.overlap_latent;
    sky_teacache_set_steps(d->r->tcp, a->inference_steps + ((w.frames - Fo) / a->causal_block_size - 1) * a->ar_step);
}

/* Window k's latents zw [C, frames, h, w]: denoised (and kept in --resume_dir), or read back from it. */
static sky_status run_window(df_run *d, int k, float *zw, sky_err *err)
{
    sky_denoise        *r = d->r;
    const sky_gen_args *a = r->a;
    const sky_df_window w = d->s.window[k];
    const int           C = r->v->dit->out_dim, Ftot = w.frames + w.end_frame;
    const int64_t       zshape[4] = {C, w.frames, r->h, r->w};
    if (k < d->resumed) {
        /* A window the interrupted run finished: its latents, and after the last one the noise state. */
        uint64_t ns;
        int      nn;
        if (sky_resume_load(a->resume_dir, k, d->key, zshape, zw, &ns, &nn, err)) return SKY_ERR;
        if (k == d->resumed - 1) r->noise.state = ns, r->noise.next = nn;
        return SKY_OK;
    }
    float *Z = malloc((size_t)C * Ftot * r->hw * sizeof(float));
    if (!Z) return sky_fail(err, "out of host memory");
    sky_status st = fill_window(d, w, Z, Ftot, err);
    if (st == SKY_OK) {
        teacache_window_steps(d, k, w);
        st = sky_denoise_use_dit(r, err);
    }
    if (st == SKY_OK) st = denoise_window(r, d->s.matrix[k], Z, Ftot, w.prefix, k, d->s.plan.windows, err);
    if (st == SKY_OK) {
        sky_denoise_done_dit(r);
        copy_latent_frames(zw, w.frames, 0, Z, Ftot, 0, w.frames, C, r->hw);
        if (a->resume_dir)
            st = sky_resume_save(a->resume_dir, k, d->key, a->seed, zshape, zw, r->noise.state, r->noise.next, err);
    }
    free(Z);
    return st;
}

/* Window k's outputs: its latents for --output_latents; decoded, its new frames emitted and the output's tail
 * kept for the next prefix. */
static sky_status output_window(df_run *d, int k, const float *zw, sky_err *err)
{
    sky_denoise        *r = d->r;
    const sky_gen_args *a = r->a;
    const sky_df_window w = d->s.window[k];
    const int64_t       zshape[4] = {r->v->dit->out_dim, w.frames, r->h, r->w};
    char                name[32];
    snprintf(name, sizeof name, "latents.w%d", k);
    if (sky_denoise_keep(r, name, zw, 4, zshape, err)) return SKY_ERR;
    if (d->s.plan.windows == 1 && sky_denoise_keep(r, "latents", zw, 4, zshape, err)) return SKY_ERR;
    sky_denoise_hash_latents(r, zw, (size_t)zshape[0] * w.frames * r->hw);
    if (!r->has_vae) return SKY_OK;
    const int    T = sky_latent_video_frames(w.frames, r->v->vae_stride_t);
    const size_t phw = (size_t)a->height * a->width;
    float       *px = malloc((size_t)3 * T * phw * sizeof(float));
    if (!px) return sky_fail(err, "out of host memory");
    sky_status st = sky_denoise_vae_decode(r, zw, w.frames, px, err);
    if (st == SKY_OK) st = sky_denoise_emit_frames(r, px, T, w.drop_pixels, err);
    if (st == SKY_OK && a->overlap_history > 0)
        st = keep_history(&d->history, &d->history_frames, a->overlap_history, px, T, w.drop_pixels, phw, err);
    free(px);
    return st;
}

/* ---- the run ----------------------------------------------------------------------------------- */

sky_status sky_pipeline_df(sky_denoise *r, sky_err *err)
{
    df_run     d = {.r = r};
    float     *zw = NULL; /* the window's latents */
    sky_status st = SKY_ERR;
    if (schedule(&d, err) || read_inputs(&d, err)) goto done;
    for (int k = 0; k < d.s.plan.windows; k++) {
        free(zw);
        zw = malloc((size_t)r->v->dit->out_dim * d.s.window[k].frames * r->hw * sizeof(float));
        if (!zw) {
            sky_fail(err, "out of host memory");
            goto done;
        }
        sky_denoise_stage(r, SKY_STAGE_DENOISE, "window %d/%d: %d latent frames%s", k + 1, d.s.plan.windows,
                          d.s.window[k].frames, k < d.resumed ? " (kept in --resume_dir)" : "");
        if (run_window(&d, k, zw, err) || output_window(&d, k, zw, err)) goto done;
        r->windows_done = k + 1;
    }
    st = SKY_OK;
done:
    free(zw);
    sky_df_schedule_free(&d.s);
    sky_sampler_free(&d.proto);
    sky_frames_free(&d.input);
    free(d.end_z);
    free(d.history);
    free(d.key);
    return st;
}
