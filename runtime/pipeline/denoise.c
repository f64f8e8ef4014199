/* runtime/pipeline/denoise.c — what the pipelines share: progress, the models' lifetimes, guidance, TeaCache's
 * order under --use_cfg_parallel, images in, frames and tensors out (denoise.h). */
#include "pipeline/denoise.h"

#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/json.h"
#include "core/dtype.h"

#define XXH_INLINE_ALL /* header-only: the CPU-only build does not link libxxhash */
#include <xxhash.h>
#include "models/cuda_plugin.h"
#include "models/latent.h"

/* ---- progress on stderr ------------------------------------------------------------------ */

double sky_denoise_now(void)
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

static const char *const stage_names[SKY_STAGE_N] = {"loading",    "encoding",   "denoising",
                                                     "vae_decode", "vae_encode", "writing"};

const char *sky_stage_name(sky_stage s) { return stage_names[s]; }

/* The seconds of stage s so far, the running one's included. */
static double stage_seconds(const sky_denoise *r, sky_stage s)
{
    return r->stats.seconds[s] + (r->stage == s ? sky_denoise_now() - r->stage_t0 : 0.0);
}

static double eta(const sky_denoise *r);

sky_stage sky_denoise_stage(sky_denoise *r, sky_stage s, const char *fmt, ...)
{
    const double    now = sky_denoise_now();
    const sky_stage prev = r->stage;
    r->stats.seconds[prev] += now - r->stage_t0;
    r->stage = s;
    r->stage_t0 = now;
    if (!fmt || (r->a->quiet && !r->a->progress_json)) return prev;
    char    label[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(label, sizeof label, fmt, ap);
    va_end(ap);
    if (r->a->progress_json) {
        fprintf(stderr, "{\"event\": \"stage\", \"stage\": \"%s\", \"label\": ", stage_names[s]);
        sky_json_write_str(stderr, label);
        fprintf(stderr, ", \"elapsed\": %.3f, \"eta\": %.3f}\n", now - r->t0, eta(r));
    } else
        fprintf(stderr, "%s[%s] %s\n", r->prog.tty && r->prog.done < r->prog.total ? "\n" : "", stage_names[s], label);
    fflush(stderr);
    return prev;
}

double sky_denoise_flops_dit(const sky_denoise *r, int F, int passes)
{
    const sky_dit_program *p = r->v->dit;
    const double           tokens = (double)(F / p->patch_t) * (r->h / p->patch_h) * (r->w / p->patch_w);
    return passes * sky_dit_flops_at(p, tokens);
}

double sky_denoise_flops_vae(const sky_denoise *r, int decode, int F)
{
    const sky_vae_program *p = decode ? r->v->vae_decode : r->v->vae_encode;
    return p ? F * p->flops : 0.0;
}

void sky_denoise_work_plan(sky_denoise *r, sky_work k, double flops) { r->work_planned[k] += flops; }

void sky_denoise_work_done(sky_denoise *r, sky_work k, double flops) { r->work_done[k] += flops; }

/* Seconds left: of each kind of work (sky_work), the FLOPs left over the FLOP rate that kind ran at so far (its
 * FLOPs done over its stage's seconds); a kind that has not run yet is taken at the transformer's rate (the one
 * measure there is; the VAE's convolutions run at a different rate, so the first window's ETA is rougher);
 * before the first step, 0 (nothing measured). Writing (no FLOPs) is taken at its seconds per DF window so
 * far for the windows left; a run's first window has no such measure yet. */
static double eta(const sky_denoise *r)
{
    static const sky_stage timed_by[SKY_WORK_N] = {SKY_STAGE_ENCODE, SKY_STAGE_DENOISE, SKY_STAGE_VAE_DECODE,
                                                   SKY_STAGE_VAE_ENCODE};
    const double           dit_s = stage_seconds(r, SKY_STAGE_DENOISE);
    if (r->work_done[SKY_WORK_DIT] <= 0 || dit_s <= 0) return 0.0;
    const double dit_rate = r->work_done[SKY_WORK_DIT] / dit_s;
    double       left = 0.0;
    for (int k = 0; k < SKY_WORK_N; k++) {
        const double rest = r->work_planned[k] - r->work_done[k], s = stage_seconds(r, timed_by[k]);
        if (rest <= 0) continue;
        left += rest / (r->work_done[k] > 0 && s > 0 ? r->work_done[k] / s : dit_rate);
    }
    if (r->windows_done > 0 && r->windows > r->windows_done)
        left += stage_seconds(r, SKY_STAGE_WRITE) / r->windows_done * (r->windows - r->windows_done);
    return left;
}

/* "denoise  40%|████      | 12/30 [01:02<01:33,  5.18s/it]"; redrawn in place on a terminal,
 * one line per step otherwise; with --progress json {"event": "step", ...}. */
static void progress_show(const sky_denoise *r)
{
    const sky_progress *p = &r->prog;
    if (p->quiet && !r->a->progress_json) return;
    const double el = sky_denoise_now() - p->start;
    const double rate = p->done > 0 ? stage_seconds(r, SKY_STAGE_DENOISE) / p->done : 0.0;
    if (r->a->progress_json) {
        fprintf(stderr,
                "{\"event\": \"step\", \"done\": %d, \"total\": %d, \"window\": %d, \"windows\": %d, "
                "\"elapsed\": %.3f, \"eta\": %.3f}\n",
                p->done, p->total, r->windows_done + 1 > r->windows ? r->windows : r->windows_done + 1, r->windows,
                sky_denoise_now() - r->t0, eta(r));
        fflush(stderr);
        return;
    }
    char e[16], left[16], speed[32], bar[64] = "";
    fmt_time(e, sizeof e, el);
    fmt_time(left, sizeof left, eta(r));
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

void sky_denoise_progress_start(sky_denoise *r, int total)
{
    r->prog = (sky_progress){"denoise", total, 0, r->a->quiet, isatty(2), sky_denoise_now()};
    if (r->windows < 1) r->windows = 1;
    if (r->windows == 1)
        sky_denoise_stage(r, SKY_STAGE_DENOISE, "denoising: %d steps", total);
    else
        sky_denoise_stage(r, SKY_STAGE_DENOISE, NULL); /* df.c labels each window */
    progress_show(r);
}

void sky_denoise_progress_step(sky_denoise *r)
{
    r->prog.done++;
    r->stats.evaluations++;
    r->work_done[SKY_WORK_DIT] += r->step_flops;
    progress_show(r);
}

/* --backend cuda: the plugin's peak device memory, GPU 0's name and the driver into r->stats (pipeline.h). */
static void device_stats(sky_denoise *r)
{
    sky_run_stats *st = &r->stats;
    sky_err        e;
    st->peak_device_bytes = -1;
    if (r->a->backend != SKY_BACKEND_CUDA) return;
    st->peak_device_bytes = sky_cuda_peak_device_bytes(r->v->name);
    sky_cuda_device_describe(r->v->name, st->device, sizeof st->device, st->driver, sizeof st->driver, &e);
}

void sky_denoise_stats_end(sky_denoise *r)
{
    sky_denoise_stage(r, r->stage, NULL);
    r->stats.total = sky_denoise_now() - r->t0;
    r->stats.windows = r->windows;
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0) r->stats.peak_rss_kib = ru.ru_maxrss; /* KiB on Linux */
    device_stats(r);
    const sky_run_stats *st = &r->stats;
    const double         den = st->seconds[SKY_STAGE_DENOISE];
    const double         steps_s = den > 0 ? (double)st->evaluations / den : 0.0;
    if (r->a->progress_json) {
        fprintf(stderr, "{\"event\": \"done\", \"seconds\": {");
        for (int i = 0; i < SKY_STAGE_N; i++)
            fprintf(stderr, "%s\"%s\": %.3f", i ? ", " : "", stage_names[i], st->seconds[i]);
        fprintf(stderr,
                "}, \"total\": %.3f, \"eta\": 0, \"evaluations\": %lld, \"steps_per_s\": %.4f, \"peak_rss_mib\": %.1f",
                st->total, st->evaluations, steps_s, st->peak_rss_kib / 1024.0);
        if (st->peak_device_bytes >= 0) fprintf(stderr, ", \"peak_device_bytes\": %.0f", st->peak_device_bytes);
        fputs("}\n", stderr);
    } else if (!r->a->quiet) {
        fprintf(stderr, "stage         seconds  share\n");
        for (int i = 0; i < SKY_STAGE_N; i++)
            fprintf(stderr, "%-12s %8.2f  %4.0f%%%s\n", stage_names[i], st->seconds[i],
                    st->total > 0 ? 100.0 * st->seconds[i] / st->total : 0.0, i == SKY_STAGE_DENOISE ? "" : "");
        fprintf(stderr, "%-12s %8.2f\n", "total", st->total);
        fprintf(stderr, "denoising: %lld steps, %.3f steps/s; peak host memory (RSS) %.1f MiB", st->evaluations,
                steps_s, st->peak_rss_kib / 1024.0);
        if (st->peak_device_bytes >= 0)
            fprintf(stderr, "; peak device memory %.1f MiB (the plugin's allocations)",
                    st->peak_device_bytes / 1048576.0);
        fputc('\n', stderr);
    }
    fflush(stderr);
}

sky_status sky_denoise_check_interrupt(const sky_denoise *r, sky_err *err)
{
    if (r->a->interrupted && *r->a->interrupted) return sky_fail(err, "interrupted");
    return SKY_OK;
}

void sky_denoise_hash_latents(sky_denoise *r, const float *x, size_t n)
{
    r->latents_hash = XXH64(x, n * sizeof *x, r->latents_hash);
}

sky_status sky_denoise_check_latents(const float *x, size_t n, int step, int steps, int window, int windows,
                                     sky_err *err)
{
    const size_t j = sky_f32_nonfinite(x, n);
    if (j == n) return SKY_OK;
    char where[64] = "";
    if (window >= 0) snprintf(where, sizeof where, " of window %d of %d", window + 1, windows);
    return sky_fail(err,
                    "the latents hold %s at element %zu after step %d of %d%s: the model's output is not finite "
                    "(its weights or inputs, or an overflow); the run stops, no video is written",
                    isnan(x[j]) ? "NaN" : "Inf", j, step, steps, where);
}

sky_status sky_denoise_phase(const sky_denoise *r, const char *phase, sky_err *err)
{
    const char *at = getenv("SKY_TEST_SIGNAL_AT"); /* test only (denoise.h) */
    if (at != NULL) {
        const size_t n = strcspn(at, ":");
        if (strlen(phase) == n && strncmp(at, phase, n) == 0) {
            char     *end = NULL;
            const int sig = at[n] ? (int)strtol(at + n + 1, &end, 10) : SIGINT;
            const int times = end && *end == ':' ? atoi(end + 1) : 1;
            for (int i = 0; i < times; i++) raise(sig);
        }
    }
    return sky_denoise_check_interrupt(r, err);
}

/* ---- the models' lifetimes (--offload) ------------------------------------------------------ */

/* Opening a transformer, as a thread's job. */
typedef struct open_job {
    sky_denoise *r;
    sky_dit    **out;
    int          device;
    sky_status   st;
    sky_err      err;
} open_job;

static void *open_job_run(void *arg)
{
    open_job           *j = arg;
    const sky_gen_args *a = j->r->a;
    /* --use_usp: the Ulysses form of the program, this rank's part of every forward (models/dit.h); the plain one
     * where the CFG axis leaves one rank per group. Either way on the rank's own GPU (a->device). */
    const int usp = a->comm && a->comm->size > 1;
    j->st = sky_dit_open(j->out, usp ? j->r->v->dit->usp : j->r->v->dit, a->dit_weights, j->r->lora, a->weight_fp8,
                         j->r->v->name, a->quiet, (sky_backend)a->backend, a->comm ? a->device : j->device,
                         j->r->offload_blocks, &j->err);
    if (j->st == SKY_OK && usp) j->st = sky_dit_use_comm(*j->out, a->comm, a->nccl, &j->err);
    return NULL;
}

sky_status sky_denoise_open_dits(sky_denoise *r, sky_err *err)
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

sky_status sky_denoise_use_dit(sky_denoise *r, sky_err *err)
{
    if (r->dit) return SKY_OK;
    const sky_stage  prev = sky_denoise_stage(r, SKY_STAGE_LOAD, "loading the transformer%s",
                                             r->cfg_parallel ? "s (cond and uncond passes)" : "");
    const sky_status st = sky_denoise_open_dits(r, err);
    sky_denoise_stage(r, prev, NULL);
    if (st) return SKY_ERR;
    if (r->tcp) {
        if (sky_dit_teacache_open(r->dit, err) || (r->dit_u && sky_dit_teacache_open(r->dit_u, err))) return SKY_ERR;
        /* a reopened transformer has no residuals: the next call of each parity runs its blocks */
        r->tcp->res_tokens[0] = r->tcp->res_tokens[1] = 0;
    }
    return SKY_OK;
}

void sky_denoise_close_dits(sky_denoise *r)
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

void sky_denoise_done_dit(sky_denoise *r)
{
    if (r->a->offload) sky_denoise_close_dits(r);
}

/* --vae_tiling's tiles, and whether the decode and the encode are tiled: where the latent is larger than a tile, as
 * diffusers' decode chooses (and its encode: the video larger than a tile, the same frames). */
static int vae_tiled(const sky_denoise *r, sky_vae_tiling *t)
{
    const sky_gen_args *a = r->a;
    const int           tl = a->vae_tile_px / r->v->vae_stride_s;
    *t = (sky_vae_tiling){a->vae_tile_px, a->vae_tile_stride_px};
    return r->vae_tiled && (r->h > tl || r->w > tl);
}

sky_status sky_denoise_use_vae(sky_denoise *r, int decode, sky_err *err)
{
    sky_vae **m = decode ? &r->dec : &r->enc;
    if (*m) return SKY_OK;
    sky_vae_tiling         t;
    const sky_vae_program *p = !vae_tiled(r, &t) ? decode ? r->v->vae_decode : r->v->vae_encode
                               : decode          ? sky_vae_tiled_program(r->v, &t)
                                                 : sky_vae_encode_tiled_program(r->v, &t);
    const sky_stage        prev = sky_denoise_stage(r, SKY_STAGE_LOAD, "loading the VAE %scoder", decode ? "de" : "en");
    const sky_status       st = sky_vae_open(m, p, decode, r->a->vae_weights, r->v->name, r->a->backend, err);
    sky_denoise_stage(r, prev, NULL);
    return st;
}

static void done_vae(sky_denoise *r, int decode)
{
    if (!r->a->offload) return;
    sky_vae **m = decode ? &r->dec : &r->enc;
    sky_vae_close(*m);
    *m = NULL;
}

/* The decoded frames px [3, T, H, W] are finite. The latents were (checked after each step), so a NaN or Inf here
 * is the VAE's own overflow; an all-NaN video would otherwise be written as a black one with exit 0. One pass over
 * the frames, small beside the decode. Then the phase hook (SKY_TEST_SIGNAL_AT). */
static sky_status decoded_finite(sky_denoise *r, const float *px, int T, sky_err *err)
{
    const size_t phw = (size_t)r->a->height * r->a->width, n = 3 * (size_t)T * phw, j = sky_f32_nonfinite(px, n);
    if (j < n) {
        const int windows = r->windows > 0 ? r->windows : 1,
                  w = r->windows_done + 1 < windows ? r->windows_done + 1 : windows;
        return sky_fail(err,
                        "the VAE decode of window %d of %d gave %s in frame %zu (element %zu) from finite latents: "
                        "its output is not finite, so no video is written; check the VAE checkpoint (--vae_weights)",
                        w, windows, isnan(px[j]) ? "NaN" : "Inf", j / phw % (size_t)T, j);
    }
    return sky_denoise_phase(r, "vae_decode", err);
}

sky_status sky_denoise_vae_decode(sky_denoise *r, const float *z, int F, float *px, sky_err *err)
{
    if (sky_denoise_check_interrupt(r, err) || sky_denoise_use_vae(r, 1, err)) return SKY_ERR;
    const sky_stage  prev = sky_denoise_stage(r, SKY_STAGE_VAE_DECODE, "VAE decode: %d latent frames to %d frames", F,
                                              sky_latent_video_frames(F, r->v->vae_stride_t));
    sky_vae_tiling   t;
    const sky_status st = vae_tiled(r, &t) ? sky_vae_decode_tiled(r->dec, z, F, r->h, r->w, &t, px, err)
                                           : sky_vae_decode(r->dec, z, F, r->h, r->w, px, err);
    sky_denoise_work_done(r, SKY_WORK_DECODE, sky_denoise_flops_vae(r, 1, F));
    sky_denoise_stage(r, prev, NULL);
    done_vae(r, 1);
    return st ? st : decoded_finite(r, px, sky_latent_video_frames(F, r->v->vae_stride_t), err);
}

sky_status sky_denoise_vae_encode(sky_denoise *r, const float *video, int T, float *z, sky_err *err)
{
    if (sky_denoise_check_interrupt(r, err) || sky_denoise_use_vae(r, 0, err)) return SKY_ERR;
    const sky_stage  prev = sky_denoise_stage(r, SKY_STAGE_VAE_ENCODE, "VAE encode: %d frames", T);
    sky_vae_tiling   t;
    const sky_status st = vae_tiled(r, &t)
                              ? sky_vae_encode_tiled(r->enc, video, T, r->a->height, r->a->width, &t, z, err)
                              : sky_vae_encode(r->enc, video, T, r->a->height, r->a->width, z, err);
    sky_denoise_work_done(r, SKY_WORK_ENCODE, sky_denoise_flops_vae(r, 0, sky_latent_frames(T, r->v->vae_stride_t)));
    sky_denoise_stage(r, prev, NULL);
    done_vae(r, 0);
    return st ? st : sky_denoise_phase(r, "vae_encode", err);
}

/* ---- TeaCache in order under --use_cfg_parallel ---------------------------------------------- */

/* The two passes of a step decide on the one state in the order of a run on one GPU (cond, then uncond), each
 * from its own thread, so the decisions are the same. Each transformer keeps the residuals of the calls it
 * ran. That is enough: every wrap of TeaCache's counter starts with a call of each parity running its blocks
 * (ret_steps >= 2), and until the next wrap one parity is always the same pass (they alternate), so a skip
 * finds a residual its own transformer made; owner[] asserts it. */
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

static sky_status tc_order_init(sky_denoise *r, sky_err *err)
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

sky_status sky_denoise_teacache_start(sky_denoise *r, int num_steps, sky_err *err)
{
    const sky_gen_args *a = r->a;
    if (sky_teacache_init(&r->tc, r->v->dit, r->v->name, a->teacache_thresh, a->use_ret_steps, num_steps, err) ||
        (r->dit && sky_dit_teacache_open(r->dit, err)) || (r->dit_u && sky_dit_teacache_open(r->dit_u, err)))
        return SKY_ERR;
    r->tcp = &r->tc;
    r->skip = (sky_dit_skip){a->use_ret_steps, sky_teacache_decide, &r->tc};
    return r->cfg_parallel ? tc_order_init(r, err) : SKY_OK;
}

/* ---- TeaCache on the CFG axis (--use_usp --use_cfg_parallel) ----------------------------------- */

/* Each group runs one pass of every guided step, while TeaCache's state must see both calls in the order of a run on
 * one GPU (cond, then uncond). The probe is the time embedding (e, or e0), which does not depend on the prompt: both
 * passes of a step have the same one. So every rank makes both decisions with its own probe, in that order, and
 * keeps the one of its group's pass: every rank holds the same state, as one GPU would. Each group's transformer keeps
 * the residuals of the calls it ran, which is enough for the reason tc_order's comment gives (a wrap starts with
 * both parities running their blocks). */
static int decide_cfg_axis(void *ctx, const float *probe, size_t n, long long tokens, int *parity)
{
    const sky_denoise *r = ctx;
    int                p[2], calc[2];
    for (int pass = 0; pass < 2; pass++) calc[pass] = sky_teacache_decide(r->tcp, probe, n, tokens, &p[pass]);
    const int mine = r->a->comm->cfg_group;
    *parity = p[mine];
    return calc[mine];
}

/* ---- guidance ------------------------------------------------------------------------------ */

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

void sky_denoise_guided(sky_denoise *r, int F, const float *x, const float *y, const double *t, int Ft, float *v,
                        float *tmp, int skip_uncond)
{
    const sky_dit_program *p = r->v->dit;
    const int64_t          fps_index = r->a->fps == 16 ? 0 : 1;
    const size_t           n = (size_t)p->out_dim * F * r->hw;
    const sky_comm        *c = r->a->comm;
    if (c && c->cfg_group >= 0 && !skip_uncond) {
        /* The CFG axis (--use_usp --use_cfg_parallel): group 0 runs the conditional pass, group 1 the unconditional
         * one, each over its N ranks; each rank then swaps its result with the other group's rank of its number */
        float             *mine = c->cfg_group == 0 ? v : tmp, *theirs = c->cfg_group == 0 ? tmp : v;
        const sky_dit_skip sk = {r->a->use_ret_steps, decide_cfg_axis, r};
        sky_dit_forward(r->dit, F, r->h, r->w, x, y, t, Ft, c->cfg_group == 0 ? r->ctx : r->ctx_null, r->clip,
                        fps_index, mine, r->tcp ? &sk : NULL);
        c->cfg_swap(c, mine, theirs, (long long)n);
    } else if (r->dit_u && !skip_uncond) {
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

/* ---- inputs and outputs ---------------------------------------------------------------------- */

/* The crop box of an iw x ih image for an H x W video (reference §7.3 step 1): the full width or height,
 * the other side cut to the video's aspect. */
static void crop_box(int iw, int ih, int H, int W, int *cw, int *ch)
{
    *cw = iw, *ch = ih;
    if ((double)ih / iw > (double)H / W)
        *ch = (int)((double)iw * H / W);
    else
        *cw = (int)((double)ih * W / H);
}

sky_status sky_denoise_check_image(const char *path, int H, int W, sky_err *err)
{
    sky_image img;
    if (sky_image_read(path, &img, err)) return SKY_ERR;
    int cw, ch;
    crop_box(img.width, img.height, H, W, &cw, &ch);
    const int iw = img.width, ih = img.height;
    sky_image_free(&img);
    if (cw >= 1 && ch >= 1) return SKY_OK;
    return sky_fail(err,
                    "%s: the image is %dx%d (WxH); cropped to the video's aspect (%dx%d) it keeps %dx%d pixels, "
                    "nothing to resize: give a larger image",
                    path, iw, ih, W, H, cw, ch);
}

sky_status sky_denoise_load_image(const char *path, int H, int W, int lanczos, float *dst, sky_err *err)
{
    sky_image img;
    if (sky_image_read(path, &img, err)) return SKY_ERR;
    int cw, ch;
    crop_box(img.width, img.height, H, W, &cw, &ch);
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

sky_status sky_denoise_keep(sky_denoise *r, const char *name, const float *data, int ndim, const int64_t *shape,
                            sky_err *err)
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

sky_status sky_denoise_emit_frame(sky_denoise *r, const float *frame, uint8_t *rgb, sky_err *err)
{
    const int    H = r->a->height, W = r->a->width;
    const size_t phw = (size_t)H * W;
    if (r->writer) {
        sky_video_frame_from_float(rgb, frame, W, H);
        if (sky_video_writer_add(r->writer, rgb, err)) return SKY_ERR;
    }
    if (r->a->output_latents) {
        float *grown = realloc(r->video, (size_t)(r->video_frames + 1) * 3 * phw * sizeof(float));
        if (!grown) return sky_fail(err, "out of host memory");
        r->video = grown;
        memcpy(r->video + (size_t)r->video_frames * 3 * phw, frame, 3 * phw * sizeof(float));
        r->video_frames++;
    }
    return SKY_OK;
}

sky_status sky_denoise_emit_frames(sky_denoise *r, const float *px, int T, int t0, sky_err *err)
{
    const size_t phw = (size_t)r->a->height * r->a->width;
    float       *frame = malloc(3 * phw * sizeof(float));
    uint8_t     *rgb = malloc(3 * phw);
    if (!frame || !rgb) {
        free(frame);
        free(rgb);
        return sky_fail(err, "out of host memory");
    }
    sky_status      st = SKY_OK;
    const sky_stage prev = sky_denoise_stage(r, SKY_STAGE_WRITE, r->writer ? "writing %d frames" : NULL, T - t0);
    for (int t = t0; t < T && st == SKY_OK; t++) {
        for (int c = 0; c < 3; c++) memcpy(frame + c * phw, px + ((size_t)c * T + t) * phw, phw * sizeof(float));
        st = sky_denoise_emit_frame(r, frame, rgb, err);
    }
    sky_denoise_stage(r, prev, NULL);
    free(frame);
    free(rgb);
    return st;
}

sky_status sky_denoise_decode_and_emit(sky_denoise *r, const float *z, int F, int drop, sky_err *err)
{
    if (!r->has_vae) return SKY_OK;
    const int T = sky_latent_video_frames(F, r->v->vae_stride_t);
    float    *px = malloc((size_t)3 * T * r->a->height * r->a->width * sizeof(float));
    if (!px) return sky_fail(err, "out of host memory for %d decoded frames", T);
    sky_status st = sky_denoise_vae_decode(r, z, F, px, err);
    if (st == SKY_OK) st = sky_denoise_emit_frames(r, px, T, drop, err);
    free(px);
    return st;
}

void sky_denoise_free(sky_denoise *r)
{
    sky_video_writer_abort(r->writer);
    r->writer = NULL;
    for (int i = 0; i < r->n_keep; i++) {
        free((void *)r->keep[i].name);
        free((void *)r->keep[i].data);
    }
    r->n_keep = 0;
    free(r->video);
    r->video = NULL;
    sky_noise_close(&r->noise);
    sky_denoise_close_dits(r);
    sky_lora_close(r->lora);
    r->lora = NULL;
    sky_teacache_free(&r->tc);
    tc_order_free(r->order);
    r->order = NULL;
    sky_vae_close(r->dec);
    sky_vae_close(r->enc);
    r->dec = r->enc = NULL;
    free(r->ctx);
    free(r->ctx_null);
    free(r->clip);
    r->ctx = r->ctx_null = r->clip = NULL;
}
