/* runtime/pipeline/pipeline.c — T2V, I2V and diffusion-forcing pipelines (pipeline.h).
 *
 * Latents are [C, F, h, w] fp32, channels first (C = 16). A DF window keeps one sampler per latent
 * frame; frame f of a latent is gathered into a contiguous [C, h, w] buffer to step it. Pixels are
 * [3, T, H, W] in [-1, 1]. The mp4 is written as windows finish, so memory is bounded by one
 * window, not by the length of the video.
 */
#include "pipeline/pipeline.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "models/dit.h"
#include "core/dtype.h"
#include "models/encoders.h"
#include "pipeline/forcing.h"
#include "pipeline/noise.h"
#include "pipeline/resume.h"
#include "formats/safetensors.h"
#include "pipeline/sampler.h"
#include "text/text.h"
#include "models/vae.h"
#include "video/video.h"

/* ---- progress on stderr ------------------------------------------------------------------ */

typedef struct progress {
    const char *what;
    int         total, done, quiet, tty;
    double      start;
} progress;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static void fmt_time(char *buf, size_t n, double s)
{
    int t = (int)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%d:%02d:%02d", t / 3600, t / 60 % 60, t % 60);
    else
        snprintf(buf, n, "%02d:%02d", t / 60, t % 60);
}

/* "denoise  40%|████      | 12/30 [01:02<01:33,  5.18s/it]"; redrawn in place on a terminal,
 * one line per step otherwise. */
static void progress_show(progress *p)
{
    if (p->quiet) return;
    const double el = now_s() - p->start;
    const double rate = p->done > 0 ? el / p->done : 0.0;
    char         e[16], left[16], speed[32], bar[64] = "";
    fmt_time(e, sizeof e, el);
    fmt_time(left, sizeof left, rate * (p->total - p->done));
    if (rate > 0 && rate < 1.0)
        snprintf(speed, sizeof speed, "%.2fit/s", 1.0 / rate);
    else
        snprintf(speed, sizeof speed, "%.2fs/it", rate);
    const int width = 20, fill = p->total ? p->done * width / p->total : width;
    size_t    k = 0;
    for (int i = 0; i < width; i++) k += (size_t)snprintf(bar + k, sizeof bar - k, "%s", i < fill ? "#" : " ");
    fprintf(stderr, "%s%s %3d%%|%s| %d/%d [%s<%s, %s]%s", p->tty ? "\r" : "", p->what,
            p->total ? 100 * p->done / p->total : 100, bar, p->done, p->total, e, left, speed, p->tty ? "" : "\n");
    if (p->tty && p->done == p->total) fputc('\n', stderr);
    fflush(stderr);
}

/* ---- small helpers -------------------------------------------------------------------------- */

/* Copy frames [f0, f0+n) of latent a [C, Fa, hw] into b [C, Fb, hw] at frame g0. */
static void copy_latent_frames(float *b, int Fb, int g0, const float *a, int Fa, int f0, int n, int C, size_t hw)
{
    for (int c = 0; c < C; c++)
        memcpy(b + ((size_t)c * Fb + g0) * hw, a + ((size_t)c * Fa + f0) * hw, (size_t)n * hw * sizeof(float));
}

/* A safetensors tensor as fp32, checked to have `want` elements. */
static sky_status read_tensor(const sky_safetensors *f, const char *name, size_t want, float *dst, sky_err *err)
{
    const sky_st_tensor *t = sky_safetensors_find(f, name);
    if (!t) return sky_fail(err, "%s: tensor '%s' is missing", sky_safetensors_path(f), name);
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    if (n != want)
        return sky_fail(err, "%s: tensor '%s' has %zu elements, this variant needs %zu", sky_safetensors_path(f), name,
                        n, want);
    return sky_dtype_to_f32(dst, t->data, t->dtype, n, err);
}

/* An image as [3, H, W] in [-1, 1]: center-cropped to H:W, resized to W x H with swscale
 * (`lanczos` for I2V as the original's VideoProcessor, else bicubic as its DF PIL resize; at the
 * target size both are the identity; other sizes differ from PIL's filters in the last bits). */
static sky_status load_image(const char *path, int H, int W, int lanczos, float *dst, sky_err *err)
{
    sky_image img;
    if (sky_image_read(path, &img, err)) return SKY_ERR;
    /* Crop box (reference §7.3 step 1): keep the full width or height, centered. */
    int cw = img.width, ch = img.height;
    if ((double)img.height / img.width > (double)H / W)
        ch = (int)((double)img.width * H / W);
    else
        cw = (int)((double)img.height * W / H);
    const int x0 = (int)floor((img.width - cw) / 2.0 + 0.5), y0 = (int)floor((img.height - ch) / 2.0 + 0.5);
    uint8_t  *rgb = malloc((size_t)W * H * 3);
    if (!rgb) {
        sky_image_free(&img);
        return sky_fail(err, "out of host memory");
    }
    const uint8_t *src = img.data + ((size_t)y0 * img.width + x0) * 3;
    if (cw == W && ch == H) {
        for (int y = 0; y < H; y++) memcpy(rgb + (size_t)y * W * 3, src + (size_t)y * img.width * 3, (size_t)W * 3);
    } else if (sky_image_resize_rgb24(src, img.width * 3, cw, ch, rgb, W, H, lanczos, err)) {
        char why[sizeof err->msg];
        snprintf(why, sizeof why, "%s", err->msg);
        free(rgb);
        sky_image_free(&img);
        return sky_fail(err, "%s: %s", path, why);
    }
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < (size_t)W * H; i++) dst[(size_t)c * W * H + i] = rgb[i * 3 + c] / 127.5f - 1.0f;
    free(rgb);
    sky_image_free(&img);
    return SKY_OK;
}

/* ---- the run's state -------------------------------------------------------------------------- */

typedef struct run {
    const sky_variant_desc *v;
    const sky_gen_args     *a;
    sky_dit                *dit;            /* NULL while released (--offload) */
    sky_dit                *dit_u;          /* --use_cfg_parallel: the uncond pass's transformer on
                                                         * GPU 1 (NULL otherwise, or while released) */
    int                     cfg_parallel;   /* --use_cfg_parallel and the run has uncond passes */
    sky_teacache            tc;             /* --teacache */
    sky_teacache           *tcp;            /* &tc, or NULL without --teacache */
    sky_dit_skip            skip;           /* TeaCache's decision on tc, for one transformer */
    struct tc_order        *order;          /* with --use_cfg_parallel: the decisions in order */
    long long               prompt_runs[2]; /* forwards of closed transformers that ran / reused
                                                         * the prompt part (sky_dit_prompt_counts) */
    sky_vae                *dec, *enc;      /* NULL while released (--offload) or not needed */
    int                     has_vae;        /* VAE weights given: decode to an mp4 */
    sky_noise               noise;
    float                  *ctx, *ctx_null, *clip; /* prompt embeddings (and CLIP features) */
    int                     h, w;                  /* latent size of this run */
    size_t                  hw;
    sky_video_writer       *writer;
    sky_st_entry            keep[64]; /* tensors for --output_latents */
    int                     n_keep;
    float                  *video; /* all frames, only for --output_latents */
    int                     video_frames;
    progress                prog;
} run;

/* ---- the models' lifetimes (--offload) ------------------------------------------------------ */

/* Without --offload every model the run needs is opened before the first step and kept to the end.
 * With --offload (the original moves each model to the CPU between stages), a model is opened for each
 * use and closed after it, so only one of the transformer, the VAE decoder and the VAE encoder holds its
 * weights (and, on the GPU, its arena) at a time; each use reloads it from its checkpoint, which was
 * checked before the first step. */

/* Opening a transformer, as a thread's job. */
typedef struct open_job {
    run       *r;
    sky_dit  **out;
    int        device;
    sky_status st;
    sky_err    err;
} open_job;

static void *open_job_run(void *arg)
{
    open_job           *j = arg;
    const sky_gen_args *a = j->r->a;
    j->st = sky_dit_open(j->out, j->r->v->dit, a->dit_weights, j->r->v->name, a->quiet, (sky_backend)a->backend,
                         j->device, &j->err);
    return NULL;
}

/* The transformer; with --use_cfg_parallel also the uncond passes' one (GPU 1), both loading at once. */
static sky_status open_dits(run *r, sky_err *err)
{
    open_job  c = {r, &r->dit, 0, SKY_OK, {""}}, u = {r, &r->dit_u, 1, SKY_OK, {""}};
    pthread_t th;
    const int started = r->cfg_parallel && pthread_create(&th, NULL, open_job_run, &u) == 0;
    open_job_run(&c);
    if (started)
        pthread_join(th, NULL);
    else if (r->cfg_parallel)
        open_job_run(&u);
    if (c.st) return sky_fail(err, "%s", c.err.msg);
    if (u.st)
        return sky_fail(err, "--use_cfg_parallel: the transformer of the unconditional pass%s: %s",
                        r->a->backend == SKY_BACKEND_CUDA ? " (GPU 1)" : "", u.err.msg);
    return SKY_OK;
}

static sky_status use_dit(run *r, sky_err *err)
{
    if (r->dit) return SKY_OK;
    if (open_dits(r, err)) return SKY_ERR;
    if (r->tcp) {
        if (sky_dit_teacache_open(r->dit, err) || (r->dit_u && sky_dit_teacache_open(r->dit_u, err))) return SKY_ERR;
        /* a reopened transformer has no residuals: the next call of each parity runs its blocks */
        r->tcp->res_tokens[0] = r->tcp->res_tokens[1] = 0;
    }
    return SKY_OK;
}

/* Close the transformer (both under --use_cfg_parallel), keeping their prompt-part counts. */
static void close_dit(run *r)
{
    sky_dit **ds[2] = {&r->dit, &r->dit_u};
    for (int i = 0; i < 2; i++) {
        if (!*ds[i]) continue;
        long long computed, reused;
        sky_dit_prompt_counts(*ds[i], &computed, &reused);
        r->prompt_runs[0] += computed;
        r->prompt_runs[1] += reused;
        sky_dit_close(*ds[i]);
        *ds[i] = NULL;
    }
}

static void done_dit(run *r)
{
    if (r->a->offload) close_dit(r);
}

/* The VAE decoder (decode = 1) or encoder. */
static sky_status use_vae(run *r, int decode, sky_err *err)
{
    sky_vae **m = decode ? &r->dec : &r->enc;
    if (*m) return SKY_OK;
    return sky_vae_open(m, decode ? r->v->vae_decode : r->v->vae_encode, decode, r->a->vae_weights, r->v->name,
                        r->a->backend, err);
}

static void done_vae(run *r, int decode)
{
    if (!r->a->offload) return;
    sky_vae **m = decode ? &r->dec : &r->enc;
    sky_vae_close(*m);
    *m = NULL;
}

/* Decode L latent frames with the VAE decoder (opened for it under --offload). */
static sky_status vae_decode(run *r, const float *z, int L, float *px, sky_err *err)
{
    if (use_vae(r, 1, err)) return SKY_ERR;
    const sky_status st = sky_vae_decode(r->dec, z, L, r->h, r->w, px, err);
    done_vae(r, 1);
    return st;
}

/* Encode T video frames with the VAE encoder (opened for it under --offload). */
static sky_status vae_encode(run *r, const float *video, int T, float *z, sky_err *err)
{
    if (use_vae(r, 0, err)) return SKY_ERR;
    const sky_status st = sky_vae_encode(r->enc, video, T, r->a->height, r->a->width, z, err);
    done_vae(r, 0);
    return st;
}

/* TeaCache under --use_cfg_parallel: the two passes of a step decide on the one state in the order of a run
 * on one GPU (cond, then uncond), each from its own thread, so the decisions are the same. Each transformer
 * keeps the residuals of the calls it ran. That is enough: every wrap of TeaCache's counter starts with a call
 * of each parity running its blocks (ret_steps >= 2), and until the next wrap one parity is always the same
 * pass (they alternate), so a skip finds a residual its own transformer made; owner[] asserts it. */
typedef struct tc_order {
    sky_teacache   *tc;
    pthread_mutex_t m;
    pthread_cond_t  turn;
    int             next;     /* the pass whose decision comes next: 0 cond, 1 uncond */
    int             owner[2]; /* the pass that ran the blocks of each parity last (-1: none) */
    struct tc_pass {
        struct tc_order *o;
        int              pass;
    } of[2];
    sky_dit_skip skip[2]; /* the decision of each pass (a sky_dit_skip on of[pass]) */
} tc_order;

static int decide_in_order(void *ctx, const float *probe, size_t n, long long tokens, int *parity)
{
    const struct tc_pass *q = ctx;
    tc_order             *o = q->o;
    pthread_mutex_lock(&o->m);
    while (o->next != q->pass) pthread_cond_wait(&o->turn, &o->m);
    const int calc = sky_teacache_decide(o->tc, probe, n, tokens, parity);
    if (calc)
        o->owner[*parity] = q->pass;
    else
        SKY_ASSERT(o->owner[*parity] == q->pass);
    o->next = 1 - q->pass;
    pthread_cond_broadcast(&o->turn);
    pthread_mutex_unlock(&o->m);
    return calc;
}

static sky_status tc_order_init(run *r, sky_err *err)
{
    tc_order *o = r->order = calloc(1, sizeof *o);
    if (!o) return sky_fail(err, "out of host memory");
    o->tc = r->tcp;
    o->owner[0] = o->owner[1] = -1;
    pthread_mutex_init(&o->m, NULL);
    pthread_cond_init(&o->turn, NULL);
    for (int i = 0; i < 2; i++) {
        o->of[i] = (struct tc_pass){o, i};
        o->skip[i] = (sky_dit_skip){r->tcp->use_ret_steps, decide_in_order, &o->of[i]};
    }
    return SKY_OK;
}

static void tc_order_free(tc_order *o)
{
    if (!o) return;
    pthread_mutex_destroy(&o->m);
    pthread_cond_destroy(&o->turn);
    free(o);
}

/* One forward pass, as a thread's job (--use_cfg_parallel). */
typedef struct pass {
    sky_dit            *dit;
    int                 F, h, w, Ft;
    const float        *x, *y, *ctx, *clip;
    const double       *t;
    int64_t             fps;
    float              *v;
    const sky_dit_skip *skip;
} pass;

static void *run_pass(void *arg)
{
    const pass *q = arg;
    sky_dit_forward(q->dit, q->F, q->h, q->w, q->x, q->y, q->t, q->Ft, q->ctx, q->clip, q->fps, q->v, q->skip);
    return NULL;
}

/* One model evaluation with classifier-free guidance: v = v_u + g (v_c - v_u). The uncond pass
 * always runs for T2V/I2V and is skipped for DF when g <= 1 (reference §7.1). With --use_cfg_parallel
 * the uncond pass runs on the second transformer in a thread of its own while this thread runs the cond
 * pass: the same two forwards on the same inputs, so the same numbers. */
static void guided(run *r, int F, const float *x, const float *y, const double *t, int Ft, float *v, float *tmp,
                   int skip_uncond)
{
    const sky_dit_program *p = r->v->dit;
    const int64_t          fps_index = r->a->fps == 16 ? 0 : 1;
    const size_t           n = (size_t)p->out_dim * F * r->hw;
    if (r->dit_u && !skip_uncond) {
        pass u = {r->dit_u, F, r->h, r->w, Ft, x, y, r->ctx_null, r->clip, t, fps_index, tmp, NULL};
        if (r->order) u.skip = &r->order->skip[1];
        pthread_t th;
        const int started = pthread_create(&th, NULL, run_pass, &u) == 0;
        sky_dit_forward(r->dit, F, r->h, r->w, x, y, t, Ft, r->ctx, r->clip, fps_index, v,
                        r->order ? &r->order->skip[0] : NULL);
        if (started)
            pthread_join(th, NULL);
        else
            run_pass(&u); /* no thread to be had: one after the other */
    } else {
        const sky_dit_skip *sk = r->tcp ? &r->skip : NULL;
        sky_dit_forward(r->dit, F, r->h, r->w, x, y, t, Ft, r->ctx, r->clip, fps_index, v, sk);
        if (skip_uncond) return;
        sky_dit_forward(r->dit, F, r->h, r->w, x, y, t, Ft, r->ctx_null, r->clip, fps_index, tmp, sk);
    }
    const float g = (float)r->a->guidance_scale;
    for (size_t i = 0; i < n; i++) v[i] = tmp[i] + g * (v[i] - tmp[i]);
}

/* Keep a copy of a tensor for --output_latents (written at the end). */
static sky_status keep_tensor(run *r, const char *name, const float *data, int ndim, const int64_t *shape, sky_err *err)
{
    if (!r->a->output_latents) return SKY_OK;
    SKY_ASSERT(r->n_keep < 64);
    size_t n = 1;
    for (int i = 0; i < ndim; i++) n *= (size_t)shape[i];
    float *copy = malloc(n * sizeof(float) + 1);
    char  *nm = malloc(strlen(name) + 1);
    if (!copy || !nm) {
        free(copy);
        free(nm);
        return sky_fail(err, "out of host memory");
    }
    memcpy(copy, data, n * sizeof(float));
    strcpy(nm, name);
    sky_st_entry *e = &r->keep[r->n_keep++];
    e->name = nm;
    e->dtype = SKY_DTYPE_F32;
    e->ndim = ndim;
    memcpy(e->shape, shape, (size_t)ndim * sizeof(int64_t));
    e->data = copy;
    return SKY_OK;
}

/* Hand decoded frames [3, T, H, W] (frames [t0, T)) to the mp4 writer and, for
 * --output_latents, to the kept video. */
static sky_status emit_frames(run *r, const float *px, int T, int t0, sky_err *err)
{
    const int    H = r->a->height, W = r->a->width;
    const size_t phw = (size_t)H * W;
    float       *frame = malloc(3 * phw * sizeof(float));
    uint8_t     *rgb = malloc(3 * phw);
    if (!frame || !rgb) {
        free(frame);
        free(rgb);
        return sky_fail(err, "out of host memory");
    }
    sky_status st = SKY_OK;
    for (int t = t0; t < T && st == SKY_OK; t++) {
        for (int c = 0; c < 3; c++) memcpy(frame + c * phw, px + ((size_t)c * T + t) * phw, phw * sizeof(float));
        if (r->writer) {
            sky_video_frame_from_float(rgb, frame, W, H);
            st = sky_video_writer_add(r->writer, rgb, err);
        }
        if (st == SKY_OK && r->a->output_latents) {
            float *grown = realloc(r->video, (size_t)(r->video_frames + 1) * 3 * phw * sizeof(float));
            if (!grown) {
                st = sky_fail(err, "out of host memory");
                break;
            }
            r->video = grown;
            memcpy(r->video + (size_t)r->video_frames * 3 * phw, frame, 3 * phw * sizeof(float));
            r->video_frames++;
        }
    }
    free(frame);
    free(rgb);
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

/* Decode latents [C, F, h, w] and emit frames [drop, T). */
static sky_status decode_and_emit(run *r, const float *z, int F, int drop, sky_err *err)
{
    if (!r->has_vae) return SKY_OK;
    const int T = 1 + 4 * (F - 1);
    float    *px = malloc((size_t)3 * T * r->a->height * r->a->width * sizeof(float));
    if (!px) return sky_fail(err, "out of host memory for %d decoded frames", T);
    sky_status st = vae_decode(r, z, F, px, err);
    if (st == SKY_OK) st = emit_frames(r, px, T, drop, err);
    free(px);
    return st;
}

/* Stop between steps when a signal asked for it. */
static sky_status check_interrupt(const run *r, sky_err *err)
{
    if (r->a->interrupted && *r->a->interrupted) return sky_fail(err, "interrupted");
    return SKY_OK;
}

/* ---- T2V and I2V (reference §7.2, §7.3) ---------------------------------------------------- */

static sky_status run_t2v_i2v(run *r, sky_err *err)
{
    const sky_gen_args    *a = r->a;
    const sky_dit_program *p = r->v->dit;
    const int              C = p->out_dim, F = (a->num_frames - 1) / 4 + 1;
    const size_t           n = (size_t)C * F * r->hw;
    sky_status             st = SKY_ERR;
    sky_unipc              u = {0};
    float *x = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float)), *tmp = malloc(n * sizeof(float));
    float *y = NULL, *video = NULL;
    if (!x || !v || !tmp) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    int64_t shape[4] = {C, F, r->h, r->w};
    if (sky_noise_draw(&r->noise, x, 4, shape, "initial latent noise", err)) goto done;

    if (p->y_channels) {
        /* y = [mask: 4 channels, 1 at latent frame 0; VAE(image, zeros x (num_frames - 1))] */
        const int H = a->height, W = a->width, T = a->num_frames;
        y = calloc((size_t)p->y_channels * F * r->hw, sizeof(float));
        video = calloc((size_t)3 * T * H * W, sizeof(float));
        float *img = malloc((size_t)3 * H * W * sizeof(float));
        if (!y || !video || !img) {
            free(img);
            sky_fail(err, "out of host memory");
            goto done;
        }
        if (load_image(a->image, H, W, 1, img, err)) {
            free(img);
            goto done;
        }
        /* The original casts the image to the transformer's dtype (bf16) before the VAE encodes it
         * (image2video_pipeline.py; not in reference §7.3): round it the same way. */
        for (size_t i = 0; i < (size_t)3 * H * W; i++) img[i] = sky_bf16_to_f32(sky_f32_to_bf16(img[i]));
        for (int c = 0; c < 3; c++) memcpy(video + (size_t)c * T * H * W, img + (size_t)c * H * W, (size_t)H * W * 4);
        free(img);
        for (int c = 0; c < 4; c++)
            for (size_t i = 0; i < r->hw; i++) y[(size_t)c * F * r->hw + i] = 1.0f;
        if (vae_encode(r, video, T, y + (size_t)4 * F * r->hw, err)) goto done;
    }

    if (sky_unipc_init(&u, a->inference_steps, a->shift, n, 0, err)) goto done;
    if (use_dit(r, err)) goto done;
    r->prog = (progress){"denoise", a->inference_steps, 0, a->quiet, isatty(2), now_s()};
    progress_show(&r->prog);
    for (int i = 0; i < a->inference_steps; i++) {
        if (check_interrupt(r, err)) goto done;
        const double t = (double)u.timesteps[i];
        guided(r, F, x, y, &t, 1, v, tmp, 0);
        sky_unipc_step(&u, v, x);
        r->prog.done++;
        progress_show(&r->prog);
    }
    done_dit(r);
    if (keep_tensor(r, "latents", x, 4, shape, err)) goto done;
    if (decode_and_emit(r, x, F, 0, err)) goto done;
    st = SKY_OK;
done:
    sky_unipc_free(&u);
    free(x);
    free(v);
    free(tmp);
    free(y);
    free(video);
    return st;
}

/* ---- diffusion forcing (reference §7.4) -------------------------------------------------- */

/* One DF window (§7.4.2): Z [C, Ftot, h, w] holds noise with the prefix (and end frame) filled. */
static sky_status df_window(run *r, float *Z, int Ftot, int prefix, int end_frame, const sky_unipc *proto, sky_err *err)
{
    const sky_gen_args *a = r->a;
    const int           C = r->v->dit->out_dim;
    const size_t        n = (size_t)C * Ftot * r->hw, fn = (size_t)C * r->hw;
    sky_forcing_matrix  m = {0};
    sky_unipc          *s = calloc((size_t)Ftot, sizeof *s);
    float     *inp = malloc(n * sizeof(float)), *v = malloc(n * sizeof(float)), *tmp = malloc(n * sizeof(float));
    float     *xf = malloc(fn * sizeof(float)), *vf = malloc(fn * sizeof(float));
    float     *an = malloc((size_t)C * (prefix ? prefix : 1) * r->hw * sizeof(float));
    double    *tt = malloc((size_t)Ftot * sizeof(double));
    sky_status st = SKY_ERR;
    if (!s || !inp || !v || !tmp || !xf || !vf || !an || !tt) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    if (sky_forcing_step_matrix(Ftot, proto->timesteps, a->inference_steps, Ftot, a->ar_step, prefix,
                                a->causal_block_size, &m, err))
        goto done;
    if (end_frame) sky_forcing_matrix_pin_end(&m, 1);
    for (int f = 0; f < Ftot; f++)
        if (sky_unipc_init(&s[f], a->inference_steps, a->shift, fn, 0, err)) goto done;
    const float A = 0.001f * (float)a->addnoise_condition;
    for (int row = 0; row < m.rows; row++) {
        if (check_interrupt(r, err)) goto done;
        memcpy(inp, Z, n * sizeof(float));
        for (int f = 0; f < Ftot; f++) tt[f] = (double)m.timestep[(size_t)row * m.frames + f];
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
        guided(r, Ftot, inp, NULL, tt, Ftot, v, tmp, a->guidance_scale <= 1.0);
        for (int f = 0; f < Ftot; f++) {
            if (!m.update[(size_t)row * m.frames + f]) continue;
            copy_latent_frames(xf, 1, 0, Z, Ftot, f, 1, C, r->hw);
            copy_latent_frames(vf, 1, 0, v, Ftot, f, 1, C, r->hw);
            sky_unipc_step(&s[f], vf, xf);
            /* The original's quirk, reproduced: its DF loop writes each frame's step result into the
             * latent in place (`latents[0][:, idx] = scheduler.step(..., latents[0][:, idx])`), and
             * the scheduler's first step keeps that very view as last_sample; so the corrector of the
             * second step sees the frame's current sample as the "last" one. (T2V/I2V rebind the
             * tensor instead, so they do not have it; diffusers' DF pipeline has it too.) */
            if (s[f].done == 1) memcpy(s[f].last, xf, fn * sizeof(float));
            copy_latent_frames(Z, Ftot, f, xf, 1, 0, 1, C, r->hw);
        }
        r->prog.done++;
        progress_show(&r->prog);
    }
    st = SKY_OK;
done:
    if (s)
        for (int f = 0; f < Ftot; f++) sky_unipc_free(&s[f]);
    free(s);
    sky_forcing_matrix_free(&m);
    free(inp);
    free(v);
    free(tmp);
    free(xf);
    free(vf);
    free(an);
    free(tt);
    return st;
}

/* The VAE latent of one image (start or end frame, §7.4.3): PIL-bicubic-style resize to W x H,
 * /127.5 - 1, encoded alone -> [C, 1, h, w]. */
static sky_status image_latent(run *r, const char *path, float *z, sky_err *err)
{
    const int H = r->a->height, W = r->a->width;
    float    *img = malloc((size_t)3 * H * W * sizeof(float));
    if (!img) return sky_fail(err, "out of host memory");
    sky_status st = load_image(path, H, W, 0, img, err);
    if (st == SKY_OK) st = vae_encode(r, img, 1, z, err);
    free(img);
    return st;
}

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
static char *resume_key(const run *r)
{
    const sky_gen_args *a = r->a;
#define OR_NONE(s) ((s) ? (s) : "none")
    char *key =
        format("%s; backend %s; image %s; end_image %s; video_path %s; noise %s; prompt_embeds %s",
               a->args_json ? a->args_json : "{}", a->backend == SKY_BACKEND_CUDA ? "cuda" : "cpu", OR_NONE(a->image),
               OR_NONE(a->end_image), OR_NONE(a->video_path), OR_NONE(a->noise_file), OR_NONE(a->prompt_embeds));
#undef OR_NONE
    return key;
}

static sky_status run_df(run *r, sky_err *err)
{
    const sky_gen_args    *a = r->a;
    const sky_dit_program *p = r->v->dit;
    const int              C = p->out_dim, H = a->height, W = a->width;
    const size_t           phw = (size_t)H * W;
    sky_df_request         req = {a->num_frames,
                                  a->base_num_frames,
                                  a->overlap_history,
                                  a->causal_block_size,
                                  a->image != NULL,
                                  a->end_image != NULL,
                                  0,
                                  r->v->vae_stride_t};
    sky_frames             input = {0};
    sky_df_plan            plan;
    sky_unipc              proto = {0};
    float                 *Z = NULL, *zw = NULL, *end_z = NULL; /* zw: the window's latents */
    float                 *history = NULL; /* the output's last overlap_history frames [3, n, H, W] */
    int                    history_frames = 0;
    int                    resumed = 0; /* windows taken from --resume_dir */
    char                  *key = NULL;
    sky_status             st = SKY_ERR;

    if (a->video_path) {
        if (sky_video_read(a->video_path, 0, W, H, &input, err)) goto done;
        req.video_frames = input.count;
    }
    if (sky_df_plan_make(&req, &plan, err)) goto done;
    if (sky_unipc_init(&proto, a->inference_steps, a->shift, 1, 0, err)) goto done;
    if (a->resume_dir) {
        if (!(key = resume_key(r))) {
            sky_fail(err, "out of host memory");
            goto done;
        }
        if (sky_resume_count(a->resume_dir, key, plan.windows, &resumed, err)) goto done;
        if (resumed && !a->quiet)
            fprintf(stderr, "resume: %d of %d windows kept in %s (decoded again)%s\n", resumed, plan.windows,
                    a->resume_dir, resumed < plan.windows ? ", denoising the rest" : ", nothing left to denoise");
    }

    /* Count the model passes of every window for the progress bar (cheap: matrices only). */
    int total = 0, skipped = 0;
    for (int k = 0; k < plan.windows; k++) {
        sky_df_window      win = sky_df_plan_window(&plan, k);
        sky_forcing_matrix m;
        if (sky_forcing_step_matrix(win.frames + win.end_frame, proto.timesteps, a->inference_steps,
                                    win.frames + win.end_frame, a->ar_step, win.prefix, a->causal_block_size, &m, err))
            goto done;
        total += m.rows;
        if (k < resumed) skipped += m.rows;
        sky_forcing_matrix_free(&m);
    }
    r->prog = (progress){"denoise", total - skipped, 0, a->quiet, isatty(2), now_s()};
    progress_show(&r->prog);

    if (a->end_image) {
        end_z = malloc((size_t)C * r->hw * sizeof(float));
        if (!end_z) {
            sky_fail(err, "out of host memory");
            goto done;
        }
        if (image_latent(r, a->end_image, end_z, err)) goto done;
    }
    if (input.count) {
        /* The input video is the start of the output: emit it and keep its tail as history. */
        history = malloc((size_t)3 * input.count * phw * sizeof(float));
        if (!history) {
            sky_fail(err, "out of host memory");
            goto done;
        }
        for (int t = 0; t < input.count; t++)
            for (int c = 0; c < 3; c++)
                for (size_t i = 0; i < phw; i++)
                    history[((size_t)c * input.count + t) * phw + i] =
                        sky_frames_at(&input, t)[i * 3 + c] / 127.5f - 1.0f;
        history_frames = input.count;
        if (emit_frames(r, history, input.count, 0, err)) goto done;
        float *all = history; /* keep only the tail the prefix needs */
        history = NULL;
        history_frames = 0;
        sky_status hs = keep_history(&history, &history_frames, a->overlap_history, all, input.count, 0, phw, err);
        free(all);
        if (hs) goto done;
    }

    for (int k = 0; k < plan.windows; k++) {
        sky_df_window win = sky_df_plan_window(&plan, k);
        const int     Ftot = win.frames + win.end_frame;
        int64_t       zshape[4] = {C, win.frames, r->h, r->w};
        free(zw);
        zw = malloc((size_t)C * win.frames * r->hw * sizeof(float));
        if (!zw) {
            sky_fail(err, "out of host memory");
            goto done;
        }
        if (k < resumed) {
            /* A window the interrupted run finished: its latents, and after the last one the noise state. */
            uint64_t ns;
            int      nn;
            if (sky_resume_load(a->resume_dir, k, key, zshape, zw, &ns, &nn, err)) goto done;
            if (k == resumed - 1) r->noise.state = ns, r->noise.next = nn;
        } else {
            free(Z);
            Z = malloc((size_t)C * Ftot * r->hw * sizeof(float));
            float *fresh = malloc((size_t)C * win.frames * r->hw * sizeof(float));
            if (!Z || !fresh) {
                free(fresh);
                sky_fail(err, "out of host memory");
                goto done;
            }
            if (sky_noise_draw(&r->noise, fresh, 4, zshape, "window noise", err)) {
                free(fresh);
                goto done;
            }
            copy_latent_frames(Z, Ftot, 0, fresh, win.frames, 0, win.frames, C, r->hw);
            free(fresh);
            if (win.prefix_from_video) {
                /* Prefix: the VAE encoding of the last overlap_history frames so far (§7.4.4 step 1). */
                const int n = a->overlap_history, used = 1 + 4 * ((n - 1) / 4), lat = (used - 1) / 4 + 1;
                SKY_ASSERT(history_frames == n && lat >= win.prefix);
                float *tail = malloc((size_t)3 * used * phw * sizeof(float));
                float *pz = malloc((size_t)C * lat * r->hw * sizeof(float));
                if (!tail || !pz) {
                    free(tail);
                    free(pz);
                    sky_fail(err, "out of host memory");
                    goto done;
                }
                for (int c = 0; c < 3; c++)
                    memcpy(tail + (size_t)c * used * phw, history + (size_t)c * history_frames * phw,
                           (size_t)used * phw * sizeof(float));
                sky_status es = vae_encode(r, tail, used, pz, err);
                if (es == SKY_OK) copy_latent_frames(Z, Ftot, 0, pz, lat, 0, win.prefix, C, r->hw);
                free(tail);
                free(pz);
                if (es) goto done;
            } else if (win.prefix == 1 && a->image) {
                float *iz = malloc((size_t)C * r->hw * sizeof(float));
                if (!iz) {
                    sky_fail(err, "out of host memory");
                    goto done;
                }
                sky_status is = image_latent(r, a->image, iz, err);
                if (is == SKY_OK) copy_latent_frames(Z, Ftot, 0, iz, 1, 0, 1, C, r->hw);
                free(iz);
                if (is) goto done;
            }
            if (win.end_frame) copy_latent_frames(Z, Ftot, win.frames, end_z, 1, 0, 1, C, r->hw);
            if (r->tcp && a->ar_step > 0 && k > 0 && !a->video_path) {
                /* the original's TeaCache step count of a later long-video window (reference §8) */
                const int Fo = (a->overlap_history - 1) / 4 + 1;
                sky_teacache_set_steps(r->tcp, a->inference_steps +
                                                   ((win.frames - Fo) / a->causal_block_size - 1) * a->ar_step);
            }

            if (use_dit(r, err) || df_window(r, Z, Ftot, win.prefix, win.end_frame, &proto, err)) goto done;
            done_dit(r);
            copy_latent_frames(zw, win.frames, 0, Z, Ftot, 0, win.frames, C, r->hw);
            if (a->resume_dir &&
                sky_resume_save(a->resume_dir, k, key, a->seed, zshape, zw, r->noise.state, r->noise.next, err))
                goto done;
        }
        char name[32];
        snprintf(name, sizeof name, "latents.w%d", k);
        sky_status ks = keep_tensor(r, name, zw, 4, zshape, err);
        if (ks == SKY_OK && plan.windows == 1) ks = keep_tensor(r, "latents", zw, 4, zshape, err);
        if (ks == SKY_OK && r->has_vae) {
            /* Decode, emit the new frames, keep the output's tail for the next prefix. */
            const int T = 1 + 4 * (win.frames - 1);
            float    *px = malloc((size_t)3 * T * phw * sizeof(float));
            if (!px) ks = sky_fail(err, "out of host memory");
            if (ks == SKY_OK) ks = vae_decode(r, zw, win.frames, px, err);
            if (ks == SKY_OK) ks = emit_frames(r, px, T, win.drop_pixels, err);
            if (ks == SKY_OK && a->overlap_history > 0)
                ks = keep_history(&history, &history_frames, a->overlap_history, px, T, win.drop_pixels, phw, err);
            free(px);
        }
        if (ks) goto done;
    }
    st = SKY_OK;
done:
    sky_unipc_free(&proto);
    sky_frames_free(&input);
    free(Z);
    free(zw);
    free(end_z);
    free(history);
    free(key);
    return st;
}

/* ---- the encoders (reference vae-text-image-files.md §2, §3) ------------------------------ */

/* The prompt and the negative prompt through the tokenizer and umT5 (§2.4, §2.5). */
static sky_status encode_prompts(run *r, sky_err *err)
{
    const sky_gen_args        *a = r->a;
    const sky_encoder_program *tp = r->v->text_encode;
    if (!tp || !a->text_weights || !a->tokenizer)
        return sky_fail(err, "no text encoder: give --model_id with the umT5 weights and tokenizer (or "
                             "--t5_weights and --tokenizer), or the embeddings with --prompt_embeds");
    sky_tokenizer *tok = NULL;
    sky_encoder   *enc = NULL;
    int32_t       *ids32 = malloc((size_t)tp->rows * sizeof *ids32);
    int64_t       *ids = malloc((size_t)tp->rows * sizeof *ids);
    uint8_t       *mask = malloc((size_t)tp->rows);
    sky_status     st = SKY_ERR;
    if (!ids32 || !ids || !mask) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    if (sky_tokenizer_open(&tok, a->tokenizer, err) ||
        sky_encoder_open(&enc, tp, 1, a->text_weights, r->v->name, a->backend, err))
        goto done;
    const char *texts[2] = {a->prompt, a->negative_prompt};
    float      *outs[2] = {r->ctx, r->ctx_null};
    for (int i = 0; i < 2; i++) {
        int n = 0;
        if (sky_tokenizer_encode(tok, texts[i], tp->rows, ids32, mask, &n, err)) goto done;
        for (int k = 0; k < n; k++) ids[k] = ids32[k];
        if (sky_text_encode(enc, ids, n, outs[i], err)) goto done;
        if (!a->quiet) fprintf(stderr, "text_encode: %s prompt, %d tokens\n", i ? "negative" : "the", n);
    }
    st = SKY_OK;
done:
    sky_encoder_close(enc);
    sky_tokenizer_close(tok);
    free(ids32);
    free(ids);
    free(mask);
    return st;
}

/* The I2V image's CLIP features (§3.2, §3.3): the image at the video size in [-1, 1], rounded to
 * bf16 as the original's pipeline holds it, squashed to 224 x 224 by torch-style bicubic,
 * normalised, through the visual tower. */
static sky_status encode_image(run *r, sky_err *err)
{
    const sky_gen_args        *a = r->a;
    const sky_encoder_program *cp = r->v->clip_encode;
    if (!cp || !a->clip_weights)
        return sky_fail(err, "no image encoder: give --model_id with the CLIP weights (or --clip_weights), or the "
                             "features as clip_fea in --prompt_embeds");
    const int    H = a->height, W = a->width, S = cp->image_size;
    float       *img = malloc((size_t)3 * H * W * sizeof(float)), *px = malloc((size_t)3 * S * S * sizeof(float));
    sky_encoder *enc = NULL;
    sky_status   st = SKY_ERR;
    if (!img || !px) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    if (load_image(a->image, H, W, 1, img, err)) goto done;
    for (size_t i = 0; i < (size_t)3 * H * W; i++) img[i] = sky_bf16_to_f32(sky_f32_to_bf16(img[i]));
    sky_clip_preprocess(img, H, W, S, px);
    if (sky_encoder_open(&enc, cp, 0, a->clip_weights, r->v->name, a->backend, err)) goto done;
    sky_clip_encode(enc, px, r->clip);
    st = SKY_OK;
done:
    sky_encoder_close(enc);
    free(img);
    free(px);
    return st;
}

/* ---- entry ----------------------------------------------------------------------------- */

sky_status sky_pipeline_run(const sky_variant_desc *v, const sky_gen_args *a, sky_err *err)
{
    const sky_dit_program *p = v->dit;
    run                    r = {.v = v, .a = a};
    r.h = a->height / 8;
    r.w = a->width / 8;
    r.hw = (size_t)r.h * r.w;
    sky_status       st = SKY_ERR;
    sky_safetensors *pe = NULL;
    const size_t     n_ctx = (size_t)p->text_len * p->text_dim, n_img = (size_t)p->image_len * p->image_dim;

    /* Everything that can fail on input is checked before the first model pass. First --use_cfg_parallel: a
     * second transformer for the uncond passes, where the run has any (DF skips them at guidance <= 1), on GPU 1
     * for the CUDA backend. */
    if (a->cfg_parallel && (strcmp(v->family, "df") != 0 || a->guidance_scale > 1.0)) {
        r.cfg_parallel = 1;
        int gpus = 0;
        if (a->backend == SKY_BACKEND_CUDA && sky_cuda_devices_visible(v->name, &gpus, err)) goto done;
        if (a->backend == SKY_BACKEND_CUDA && gpus < 2) {
            sky_fail(err,
                     "--use_cfg_parallel runs the unconditional pass on a second GPU: %d CUDA device%s visible "
                     "(check nvidia-smi and CUDA_VISIBLE_DEVICES, or drop the flag)",
                     gpus, gpus == 1 ? " is" : "s are");
            goto done;
        }
        if (!a->quiet)
            fprintf(stderr,
                    "cfg parallel: the unconditional passes on a second transformer (%s), at the same time as "
                    "the conditional ones\n",
                    a->backend == SKY_BACKEND_CUDA ? "GPU 1"
                                                   : "cpu: for tests, the cores "
                                                     "are shared");
    } else if (a->cfg_parallel && !a->quiet) {
        fprintf(stderr,
                "warning: --use_cfg_parallel: guidance_scale %g <= 1 skips the unconditional pass of a "
                "diffusion-forcing model; one transformer runs\n",
                a->guidance_scale);
    }
    if (a->noise_file) {
        if (sky_noise_open_file(&r.noise, a->noise_file, err)) goto done;
    } else
        sky_noise_seed(&r.noise, a->seed);
    r.ctx = malloc(n_ctx * sizeof(float));
    r.ctx_null = malloc(n_ctx * sizeof(float));
    r.clip = malloc(n_img * sizeof(float) + 1);
    if (!r.ctx || !r.ctx_null || !r.clip) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    if (a->prompt_embeds) {
        /* Debugging input: the embeddings (and CLIP features) from a file. */
        if (sky_safetensors_open(&pe, a->prompt_embeds, err) || read_tensor(pe, "context", n_ctx, r.ctx, err) ||
            read_tensor(pe, "context_null", n_ctx, r.ctx_null, err))
            goto done;
    } else if (encode_prompts(&r, err)) {
        goto done;
    }
    if (p->y_channels) {
        if (pe && sky_safetensors_find(pe, "clip_fea")) {
            if (read_tensor(pe, "clip_fea", n_img, r.clip, err)) goto done;
        } else if (encode_image(&r, err)) {
            goto done;
        }
    }
    /* Under --offload the checkpoints are only checked here (opened for each use later). */
    if (a->offload ? sky_weights_check(p->weights, p->n_weights, a->dit_weights, v->name, (sky_backend)a->backend, err)
                   : open_dits(&r, err))
        goto done;
    if (a->teacache) {
        /* The original's count of calls before TeaCache's counter wraps (reference §8): the steps, plus
         * the asynchronous schedule's extra rows for DF with ar_step > 0. */
        const int df = strcmp(v->family, "df") == 0;
        int       steps = a->inference_steps;
        if (df && a->ar_step > 0) steps += (((a->base_num_frames - 1) / 4 + 1) / a->causal_block_size - 1) * a->ar_step;
        if (sky_teacache_init(&r.tc, p, v->name, a->teacache_thresh, a->use_ret_steps, steps, err) ||
            (r.dit && sky_dit_teacache_open(r.dit, err)) || (r.dit_u && sky_dit_teacache_open(r.dit_u, err)))
            goto done;
        r.tcp = &r.tc;
        r.skip = (sky_dit_skip){a->use_ret_steps, sky_teacache_decide, &r.tc};
        if (r.cfg_parallel && tc_order_init(&r, err)) goto done;
        if (df && !a->quiet)
            fprintf(stderr,
                    "warning: --teacache with a diffusion-forcing model: the SkyReels-V2 maintainers say DF "
                    "models are not compatible with TeaCache (SkyworkAI/SkyReels-V2#123); expect lower quality\n");
    }
    /* The VAE encoder (its weights, and on the GPU its arena) only for runs that encode images or frames. */
    const int needs_encoder =
        a->image || a->end_image || a->video_path ||
        (a->overlap_history > 0 && a->num_frames > a->base_num_frames && !strcmp(v->family, "df"));
    if (a->vae_weights) {
        if (!v->vae_decode) {
            sky_fail(err, "variant %s has no VAE; drop --vae_weights", v->name);
            goto done;
        }
        r.has_vae = 1;
        const sky_vae_program *de = v->vae_decode, *en = v->vae_encode;
        const sky_backend      b = (sky_backend)a->backend;
        if (a->offload
                ? sky_weights_check(de->weights, de->n_weights, a->vae_weights, v->name, b, err) ||
                      (needs_encoder && sky_weights_check(en->weights, en->n_weights, a->vae_weights, v->name, b, err))
                : use_vae(&r, 1, err) || (needs_encoder && use_vae(&r, 0, err)))
            goto done;
    }
    if (needs_encoder && !r.has_vae) {
        sky_fail(err, "this run encodes images or video frames with the VAE: give the VAE weights (--model_id with "
                      "a VAE, or --vae_weights)");
        goto done;
    }
    if (a->output && r.has_vae) {
        if (sky_video_writer_open(&r.writer, a->output, a->width, a->height, a->fps, SKY_VIDEO_DEFAULT_CRF,
                                  a->args_json, err))
            goto done;
    }

    double t0 = now_s();
    st = strcmp(v->family, "df") == 0 ? run_df(&r, err) : run_t2v_i2v(&r, err);
    if (st == SKY_OK) st = sky_noise_check_used(&r.noise, err);
    if (st == SKY_OK && r.writer) {
        st = sky_video_writer_close(r.writer, err);
        r.writer = NULL;
    }
    if (st == SKY_OK && a->output_latents) {
        if (r.video_frames) {
            /* frames were kept as [T][3][H][W]; store [3, T, H, W] like the decoder's output */
            const size_t phw = (size_t)a->height * a->width;
            float       *chw = malloc((size_t)3 * r.video_frames * phw * sizeof(float));
            if (!chw) st = sky_fail(err, "out of host memory");
            for (int t = 0; chw && t < r.video_frames; t++)
                for (int c = 0; c < 3; c++)
                    memcpy(chw + ((size_t)c * r.video_frames + t) * phw, r.video + ((size_t)t * 3 + c) * phw,
                           phw * sizeof(float));
            int64_t vs[4] = {3, r.video_frames, a->height, a->width};
            if (chw && st == SKY_OK) st = keep_tensor(&r, "video", chw, 4, vs, err);
            free(chw);
        }
        const char *meta[] = {"made_by", "skyreels pipeline --output_latents", "variant", v->name,
                              "args",    a->args_json ? a->args_json : "{}",   NULL};
        if (st == SKY_OK) st = sky_safetensors_write(a->output_latents, r.keep, r.n_keep, meta, err);
    }
    close_dit(&r);
    if (st == SKY_OK && !a->quiet && r.prompt_runs[0] + r.prompt_runs[1] > 0)
        fprintf(stderr,
                "prompt part of the transformer (text embedding, cross-attention keys and values): run by %lld "
                "forwards, reused by %lld\n",
                r.prompt_runs[0], r.prompt_runs[1]);
    if (st == SKY_OK && r.tcp && !a->quiet) {
        char line[256];
        sky_teacache_summary(r.tcp, line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
    if (st == SKY_OK && !a->quiet)
        fprintf(stderr, "done in %.1f s%s%s%s%s\n", now_s() - t0, a->output && r.has_vae ? ": " : "",
                a->output && r.has_vae ? a->output : "", a->output_latents ? "; latents: " : "",
                a->output_latents ? a->output_latents : "");
done:
    sky_video_writer_abort(r.writer);
    for (int i = 0; i < r.n_keep; i++) {
        free((void *)r.keep[i].name);
        free((void *)r.keep[i].data);
    }
    free(r.video);
    sky_noise_close(&r.noise);
    sky_safetensors_close(pe);
    close_dit(&r);
    sky_teacache_free(&r.tc);
    tc_order_free(r.order);
    sky_vae_close(r.dec);
    sky_vae_close(r.enc);
    free(r.ctx);
    free(r.ctx_null);
    free(r.clip);
    return st;
}
