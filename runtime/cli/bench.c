/* runtime/cli/bench.c — `skyreels-<variant> bench` (bench.h; the JSON's fields: docs/bench.md).
 *
 * The steady state is what a denoising loop sees: the transformer's prompt part runs once, every later
 * forward reuses the prompt arena (on the CUDA backend each part replays its CUDA Graph). The breakdown
 * comes from one eager forward with the op hook of program.h set (what --trace uses): each op is charged
 * the time since the previous op's hook call. On the CPU backend that is the op itself; on the CUDA
 * backend the hook runs after the op's output was copied to the host, so each op's time includes that
 * copy and the launch's synchronisation (the breakdown's shares, not its sum, are what it shows there).
 * FLOPs and bytes per group come from the program's shapes (a GEMM reads its weight and input once and
 * writes its output once; attention reads q, k, v and writes its output once; an elementwise op moves
 * three times its output): a traffic floor, so GB/s are lower bounds of what the kernels move.
 */
#include "cli/bench.h"
#include "core/json.h"
#include "cli/counts.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/status.h"
#include "models/backend.h"
#include "models/dit.h"
#include "models/encoders.h"
#include "models/program.h"
#include "models/prompt_cache.h"
#include "models/random_weights.h"
#include "models/vae.h"
#include "models/cuda_abi.h"
#include "models/cuda_plugin.h"
#include "models/device_plan.h"

enum { G_SELF, G_CROSS, G_GEMM_SELF, G_GEMM_CROSS, G_GEMM_FFN, G_ELEM, G_EMBED, G_N };
static const char *const group_key[G_N] = {"self_attention", "cross_attention",    "gemm_self_attn", "gemm_cross_attn",
                                           "gemm_ffn",       "norm_rope_residual", "embed_head"};
static const char *const group_label[G_N] = {"self-attention",      "cross-attention",  "GEMM self-attn q/k/v/o",
                                             "GEMM cross-attn q/o", "GEMM FFN (+GELU)", "norms/RoPE/residuals",
                                             "embed/head"};

typedef struct group {
    double s, flops, bytes;
    int    ops;
} group;

typedef struct bench_opts {
    int         iters, warmup, quiet, backend_given;
    sky_backend backend;
    const char *weights, *vae_weights, *t5_weights, *json;
    int         do_dit, do_t5, do_vae;
    double      peak_tflops, peak_gbs; /* 0: from the device's table entry (none on the CPU) */
} bench_opts;

typedef struct stats {
    int    n;
    double mean, median, min, max; /* seconds */
} stats;

/* What the run measured; -1 where not measured. */
typedef struct bench_result {
    char   device[256], driver[64], plugin[1024], plugin_hash[24], schedule[64], peak_source[64];
    char   clock[16]; /* the breakdown's clock: "cuda events" or "host clock" */
    double peak_tflops, peak_gbs;
    int    L, F, H, W;
    stats  dit, t5, vae;
    double eager_s, attributed_s;
    group  g[G_N];
    double flops_model, device_used_bytes, planned_device_bytes, peak_device_bytes, host_peak_bytes;
} bench_result;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static stats summarise(double *t, int n)
{
    stats s = {.n = n, .mean = -1, .median = -1, .min = -1, .max = -1};
    if (n <= 0) return s;
    qsort(t, (size_t)n, sizeof *t, cmp_double);
    double sum = 0;
    for (int i = 0; i < n; i++) sum += t[i];
    s.mean = sum / n, s.min = t[0], s.max = t[n - 1];
    s.median = n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
    return s;
}

/* Deterministic fill, roughly standard normal (sum of uniforms). */
static void fill_random(float *x, size_t n, uint64_t seed)
{
    for (size_t i = 0; i < n; i++) {
        double acc = 0;
        for (int k = 0; k < 4; k++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            acc += (double)(seed >> 11) / 9007199254740992.0;
        }
        x[i] = (float)((acc - 2.0) * 1.7320508);
    }
}

/* ---- the op hook: time since the previous op, by group ---- */

typedef struct op_clock {
    bench_result *r;
    double        last;
    int           elem; /* bytes per activation value of the backend */
} op_clock;

static int has_any(const char *name, const char *const *keys)
{
    for (; *keys; keys++)
        if (strstr(name, *keys)) return 1;
    return 0;
}

static int op_group(const char *name)
{
    static const char *const self_gemm[] = {"self_attn.q.out", "self_attn.k.out", "self_attn.v.out", "self_attn.o.out",
                                            NULL};
    static const char *const cross_gemm[] = {"cross_attn.q.out",
                                             "cross_attn.o.out",
                                             "cross_attn.k.out",
                                             "cross_attn.v.out",
                                             "cross_attn.k_img.out",
                                             "cross_attn.v_img.out",
                                             NULL};
    static const char *const ffn_gemm[] = {"ffn.0.out", "ffn.1.out", "ffn.2.out", NULL}; /* CUDA: GELU fused */
    if (strstr(name, "self_attn.attn")) return G_SELF;
    if (strstr(name, "cross_attn.attn")) return G_CROSS;
    if (has_any(name, self_gemm)) return G_GEMM_SELF;
    if (has_any(name, cross_gemm)) return G_GEMM_CROSS;
    if (has_any(name, ffn_gemm)) return G_GEMM_FFN;
    return strncmp(name, "blocks.", 7) == 0 ? G_ELEM : G_EMBED;
}

/* Each op charged to its group: on the CUDA backend its device time (SKY_TRACE_SECONDS, the plugin's events
 * around its kernels); on the CPU the host time since the previous op's call. */
static void op_hook(void *ctx, const char *name, const void *data, int dtype, long long n, int cl)
{
    (void)cl;
    op_clock    *c = ctx;
    const double t = now_s();
    group       *g = &c->r->g[op_group(name)];
    g->s += dtype == SKY_TRACE_SECONDS ? *(const double *)data : t - c->last;
    g->ops++;
    if (g == &c->r->g[G_ELEM] || g == &c->r->g[G_EMBED]) g->bytes += 3.0 * (double)n * c->elem;
    c->last = now_s(); /* the hook's own time is nobody's */
}

/* The analytic FLOPs and GEMM/attention bytes of one forward at L tokens (gen/ops.lua's counting rules). */
static void model_groups(const sky_dit_program *p, double L, int elem, bench_result *r)
{
    const double d = p->dim, f = p->ffn_dim, nl = p->num_layers, Lc = p->text_len + p->image_len, e = elem;
    const double patch = (double)p->patch_t * p->patch_h * p->patch_w;
    r->g[G_SELF].flops = nl * 4 * L * L * d;
    r->g[G_SELF].bytes = nl * 4 * L * d * e;
    r->g[G_CROSS].flops = nl * 4 * L * Lc * d;
    r->g[G_CROSS].bytes = nl * (2 * L * d + 2 * Lc * d) * e;
    r->g[G_GEMM_SELF].flops = nl * 4 * 2 * L * d * d;
    r->g[G_GEMM_SELF].bytes = nl * 4 * (d * d + 2 * L * d) * e;
    r->g[G_GEMM_CROSS].flops = nl * 2 * 2 * L * d * d;
    r->g[G_GEMM_CROSS].bytes = nl * 2 * (d * d + 2 * L * d) * e;
    r->g[G_GEMM_FFN].flops = nl * 2 * 2 * L * d * f;
    r->g[G_GEMM_FFN].bytes = nl * (2 * d * f + 2 * L * d + 2 * L * f) * e;
    /* patch embedding and head; the time embedding's GEMMs are per frame row and counted with them */
    const double Ft = p->max_frames, six = 6 * d;
    r->g[G_EMBED].flops = 2 * L * (p->x_channels + p->y_channels) * patch * d + 2 * L * d * p->out_dim * patch +
                          2 * Ft * (p->freq_dim * d + d * d + d * six);
    double sum = 0;
    for (int i = 0; i < G_N; i++) sum += r->g[i].flops;
    r->flops_model = sum;
}

/* ---- the device ---- */

/* Device memory in use on GPU 0 (the plugin's mem_free: cuMemGetInfo in its primary context), -1 without a
 * plugin or a driver. */
static double device_used(void)
{
    size_t  free_b = 0, total_b = 0;
    sky_err e;
    if (sky_cuda_device_memory(sky_variant.name, 0, &free_b, &total_b, &e)) return -1;
    return (double)(total_b - free_b);
}

/* Device name, driver version and the stated peak. */
static void describe_device(const bench_opts *o, bench_result *r)
{
    snprintf(r->device, sizeof r->device, "cpu");
    snprintf(r->driver, sizeof r->driver, "none");
    if (o->backend == SKY_BACKEND_CPU) {
        FILE *f = fopen("/proc/cpuinfo", "r");
        char  line[512];
        while (f && fgets(line, sizeof line, f))
            if (strncmp(line, "model name", 10) == 0 && strchr(line, ':')) {
                line[strcspn(line, "\n")] = 0;
                snprintf(r->device, sizeof r->device, "cpu: %.200s (%ld cores)", strchr(line, ':') + 2,
                         sysconf(_SC_NPROCESSORS_ONLN));
                break;
            }
        if (f) fclose(f);
    } else { /* the plugin's own driver calls, as the run record's (pipeline/denoise.c) */
        sky_err e;
        if (sky_cuda_device_describe(sky_variant.name, r->device, sizeof r->device, r->driver, sizeof r->driver, &e)) {
            snprintf(r->device, sizeof r->device, "cuda (no device name: %.200s)", e.msg);
            snprintf(r->driver, sizeof r->driver, "none");
        }
    }
    /* dense BF16 tensor-core peak and memory bandwidth, as the vendor states them */
    static const struct {
        const char *key;
        double      tflops, gbs;
    } table[] = {{"H200", 989, 4800}, {"H100 SXM", 989, 3350}, {"H100 NVL", 835, 3900}, {"H100", 756, 2000},
                 {"A100", 312, 2039}, {"L40S", 362, 864},      {"RTX 4090", 165, 1008}};
    r->peak_tflops = o->peak_tflops, r->peak_gbs = o->peak_gbs;
    snprintf(r->peak_source, sizeof r->peak_source, o->peak_tflops > 0 ? "--peak_tflops/--peak_gbs" : "none");
    for (size_t i = 0; o->peak_tflops <= 0 && o->backend == SKY_BACKEND_CUDA && i < sizeof table / sizeof *table; i++)
        if (strstr(r->device, table[i].key)) {
            r->peak_tflops = table[i].tflops, r->peak_gbs = table[i].gbs;
            snprintf(r->peak_source, sizeof r->peak_source, "vendor table: %s", table[i].key);
            break;
        }
}

/* The plugin's path, its FNV-1a 64 hash and the attention schedule (cuda only). */
static void describe_plugin(const bench_opts *o, bench_result *r)
{
    snprintf(r->plugin, sizeof r->plugin, "none"), snprintf(r->plugin_hash, sizeof r->plugin_hash, "none");
    snprintf(r->schedule, sizeof r->schedule, "none (cpu)");
    if (o->backend != SKY_BACKEND_CUDA) return;
    const char *env = getenv("SKY_CUDA_PLUGIN");
    char        exe[900] = "";
    ssize_t     n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    exe[n > 0 ? n : 0] = 0;
    char *slash = strrchr(exe, '/');
    if (slash) *slash = 0;
    if (env && *env)
        snprintf(r->plugin, sizeof r->plugin, "%s", env);
    else
        snprintf(r->plugin, sizeof r->plugin, "%s/libskyreels-%s-cuda.so", exe, sky_variant.name);
    FILE *f = fopen(r->plugin, "rb");
    if (f) {
        uint64_t      h = 1469598103934665603ULL;
        unsigned char buf[65536];
        for (size_t k; (k = fread(buf, 1, sizeof buf, f)) > 0;)
            for (size_t i = 0; i < k; i++) h = (h ^ buf[i]) * 1099511628211ULL;
        fclose(f);
        snprintf(r->plugin_hash, sizeof r->plugin_hash, "%016llx", (unsigned long long)h);
    }
    const char *s = getenv("SKY_ATTENTION");
    snprintf(r->schedule, sizeof r->schedule, "%s", s && *s ? s : "default (sm90 on cc 9.0, else sm80)");
}

/* ---- the runs ---- */

/* Random weights for tables of the variant into dir/name unless a path was given; *path the file. */
static sky_status weights_for(const char *given, const char *dir, const char *name, const sky_weight_desc *const *t,
                              const int *n, int nt, char *path, size_t cap, int quiet, sky_err *err)
{
    if (given) {
        snprintf(path, cap, "%s", given);
        return SKY_OK;
    }
    snprintf(path, cap, "%s/%s", dir, name);
    if (!quiet) fprintf(stderr, "bench: writing random weights %s\n", path);
    return sky_write_random_weights(t, n, nt, path, "original", 1, 1, sky_variant.name, err);
}

typedef struct dit_io {
    float *x, *y, *ctx, *clip, *v;
    double t;
    int    F, H, W;
} dit_io;

static void dit_io_free(dit_io *io) { free(io->x), free(io->y), free(io->ctx), free(io->clip), free(io->v); }

static sky_status dit_io_alloc(const sky_dit_program *p, dit_io *io, sky_err *err)
{
    const size_t vol = (size_t)p->max_frames * p->lat_h * p->lat_w;
    io->F = p->max_frames, io->H = p->lat_h, io->W = p->lat_w, io->t = 500.0;
    io->x = malloc(vol * p->x_channels * sizeof(float));
    io->y = p->y_channels ? malloc(vol * p->y_channels * sizeof(float)) : NULL;
    io->ctx = malloc((size_t)p->text_len * p->text_dim * sizeof(float));
    io->clip = p->image_len ? malloc((size_t)p->image_len * p->image_dim * sizeof(float)) : NULL;
    io->v = malloc(vol * p->out_dim * sizeof(float));
    if (!io->x || !io->ctx || !io->v || (p->y_channels && !io->y) || (p->image_len && !io->clip))
        return sky_fail(err, "bench: out of host memory for dit_forward's inputs (%zu latents)", vol);
    fill_random(io->x, vol * p->x_channels, 1);
    if (io->y) fill_random(io->y, vol * p->y_channels, 2);
    fill_random(io->ctx, (size_t)p->text_len * p->text_dim, 3);
    if (io->clip) fill_random(io->clip, (size_t)p->image_len * p->image_dim, 4);
    return SKY_OK;
}

static void dit_call(sky_dit *d, const dit_io *io)
{
    sky_dit_forward(d, io->F, io->H, io->W, io->x, io->y, &io->t, 1, io->ctx, io->clip, 0, io->v, NULL);
}

/* A first call (the prompt part runs there, and the CUDA Graphs are made), the warm-up calls, the timed ones. */
static sky_status dit_steady(sky_dit *d, const dit_io *io, const bench_opts *o, bench_result *r, sky_err *err)
{
    double *t = malloc((size_t)o->iters * sizeof *t);
    if (!t) return sky_fail(err, "bench: out of memory");
    for (int i = 0; i < 1 + o->warmup; i++) dit_call(d, io);
    for (int i = 0; i < o->iters; i++) {
        const double t0 = now_s();
        dit_call(d, io);
        t[i] = now_s() - t0;
    }
    r->dit = summarise(t, o->iters);
    free(t);
    return SKY_OK;
}

/* One eager forward with the op hook set: on the CUDA backend the plugin's timing (events around each op's
 * kernels, handed over after the forward), on the CPU the trace hook clocking each op on the host. */
static sky_status dit_breakdown(sky_dit **d, const dit_io *io, const bench_opts *o, bench_result *r)
{
    static op_clock c; /* the hook's context outlives this call only while the hook is set */
    c = (op_clock){.r = r, .elem = o->backend == SKY_BACKEND_CUDA ? 2 : 4};
    const int events = sky_dit_set_timing(*d, op_hook, &c) == 0;
    if (!events) sky_trace_hook = op_hook, sky_trace_ctx = &c;
    snprintf(r->clock, sizeof r->clock, events ? "cuda events" : "host clock");
    for (int i = 0; i < G_N; i++) r->g[i].s = 0, r->g[i].ops = 0, r->g[i].bytes = 0;
    model_groups(sky_variant.dit, r->L, c.elem, r);
    const double t0 = now_s();
    c.last = t0;
    dit_call(*d, io);
    r->eager_s = now_s() - t0;
    if (events) sky_dit_set_timing(*d, NULL, NULL);
    sky_trace_hook = NULL, sky_trace_ctx = NULL;
    r->attributed_s = 0;
    for (int i = 0; i < G_N; i++) r->attributed_s += r->g[i].s;
    return SKY_OK;
}

static sky_status bench_dit(const char *dir, const bench_opts *o, bench_result *r, sky_err *err)
{
    const sky_dit_program *p = sky_variant.dit;
    const sky_weight_desc *t[] = {p->weights};
    const int              n[] = {p->n_weights};
    char                   w[4096];
    dit_io                 io = {0};
    sky_dit               *d = NULL;
    sky_status             st = weights_for(o->weights, dir, "dit.safetensors", t, n, 1, w, sizeof w, o->quiet, err);
    if (st == SKY_OK) st = dit_io_alloc(p, &io, err);
    r->F = io.F, r->H = io.H, r->W = io.W;
    r->L = (int)((long long)io.F * io.H * io.W / ((long long)p->patch_t * p->patch_h * p->patch_w));
    const double used0 = o->backend == SKY_BACKEND_CUDA ? device_used() : -1;
    if (st == SKY_OK) st = sky_dit_open(&d, p, w, NULL, 0, sky_variant.name, o->quiet, o->backend, 0, 0, err);
    if (st == SKY_OK) st = dit_steady(d, &io, o, r, err);
    const double used1 = o->backend == SKY_BACKEND_CUDA ? device_used() : -1;
    r->device_used_bytes = used0 >= 0 && used1 >= 0 ? used1 - used0 : -1;
    if (st == SKY_OK) st = dit_breakdown(&d, &io, o, r);
    sky_dit_close(d);
    dit_io_free(&io);
    return st;
}

static sky_status bench_t5(const char *dir, const bench_opts *o, bench_result *r, sky_err *err)
{
    const sky_encoder_program *p = sky_variant.text_encode;
    const sky_weight_desc     *t[] = {p->weights};
    const int                  n[] = {p->n_weights};
    char                       w[4096];
    sky_encoder               *e = NULL;
    int64_t                   *ids = malloc((size_t)p->rows * sizeof *ids);
    float                     *out = malloc((size_t)p->rows * p->dim * sizeof *out);
    const int                  iters = o->iters < 3 ? o->iters : 3;
    double                     times[3];
    sky_status                 st = ids && out ? SKY_OK : sky_fail(err, "bench: out of memory for the text encoder");
    for (int i = 0; st == SKY_OK && i < p->rows; i++) ids[i] = 1 + (int64_t)((i * 7919LL) % (p->vocab - 1));
    if (st == SKY_OK) st = weights_for(o->t5_weights, dir, "t5.safetensors", t, n, 1, w, sizeof w, o->quiet, err);
    if (st == SKY_OK) st = sky_encoder_open(&e, p, 1, w, sky_variant.name, (int)o->backend, err);
    if (st == SKY_OK && o->warmup) st = sky_text_encode(e, ids, p->rows, out, err); /* one warm-up */
    for (int i = 0; st == SKY_OK && i < iters; i++) {
        const double t0 = now_s();
        st = sky_text_encode(e, ids, p->rows, out, err);
        times[i] = now_s() - t0;
    }
    if (st == SKY_OK) r->t5 = summarise(times, iters);
    sky_encoder_close(e);
    free(ids), free(out);
    return st;
}

static sky_status bench_vae(const char *dir, const bench_opts *o, bench_result *r, sky_err *err)
{
    const sky_vae_program *p = sky_variant.vae_decode;
    const sky_weight_desc *t[] = {p->weights, sky_variant.vae_encode->weights};
    const int              n[] = {p->n_weights, sky_variant.vae_encode->n_weights};
    const int              L = sky_variant.dit->max_frames, st_t = p->stride_t, st_s = p->stride_s;
    const size_t           zn = (size_t)p->z_dim * L * p->lat_h * p->lat_w;
    const size_t vn = (size_t)3 * (1 + st_t * (L - 1)) * (size_t)(st_s * p->lat_h) * (size_t)(st_s * p->lat_w);
    const int    iters = o->iters < 2 ? o->iters : 2;
    char         w[4096];
    double       times[2];
    sky_vae     *v = NULL;
    float       *z = malloc(zn * sizeof *z), *video = malloc(vn * sizeof *video);
    sky_status   st = z && video ? SKY_OK : sky_fail(err, "bench: out of memory for the VAE decode (%zu values)", vn);
    if (st == SKY_OK) fill_random(z, zn, 5);
    if (st == SKY_OK) st = weights_for(o->vae_weights, dir, "vae.safetensors", t, n, 2, w, sizeof w, o->quiet, err);
    if (st == SKY_OK) st = sky_vae_open(&v, p, 1, w, sky_variant.name, (int)o->backend, err);
    if (st == SKY_OK && o->warmup) st = sky_vae_decode(v, z, L, p->lat_h, p->lat_w, video, err); /* one warm-up */
    for (int i = 0; st == SKY_OK && i < iters; i++) {
        const double t0 = now_s();
        st = sky_vae_decode(v, z, L, p->lat_h, p->lat_w, video, err);
        times[i] = now_s() - t0;
    }
    if (st == SKY_OK) r->vae = summarise(times, iters);
    sky_vae_close(v);
    free(z), free(video);
    return st;
}

/* ---- the report ---- */

static double per_s(double x, double s) { return s > 0 ? x / s : -1; }

static void print_stats(const char *what, const stats *s, const char *unit)
{
    if (s->n <= 0) return;
    printf("%-32s %10.3f %10.3f %10.3f %10.3f  %d runs%s\n", what, 1e3 * s->mean, 1e3 * s->median, 1e3 * s->min,
           1e3 * s->max, s->n, unit);
}

static void print_table(const bench_opts *o, const bench_result *r)
{
    const sky_dit_program *p = sky_variant.dit;
    const char            *lab = o->backend == SKY_BACKEND_CUDA ? "CUDA" : "CPU";
    printf("bench %s on %s (%s; %s times)\n", sky_variant.name, r->device, r->driver, lab);
    printf("plugin %s (fnv1a64 %s), attention %s\n", r->plugin, r->plugin_hash, r->schedule);
    printf("window %d latent frames of %dx%d = %d tokens; %.4g TFLOP per forward (spec)\n", r->F, r->H, r->W, r->L,
           p->flops / 1e12);
    printf("%-32s %10s %10s %10s %10s\n", "ms", "mean", "median", "min", "max");
    print_stats("dit_forward (steady state)", &r->dit, "");
    print_stats("text_encode (full prompt)", &r->t5, "");
    print_stats("vae_decode (full window)", &r->vae, "");
    if (r->dit.n > 0 && r->peak_tflops > 0) {
        const double floor_s = p->flops / (r->peak_tflops * 1e12);
        printf("floor %.3f ms at %.0f TFLOP/s (%s): forward / floor = %.2f; achieved %.1f TFLOP/s\n", 1e3 * floor_s,
               r->peak_tflops, r->peak_source, r->dit.median / floor_s, p->flops / r->dit.median / 1e12);
    } else if (r->dit.n > 0)
        printf("achieved %.4g TFLOP/s (no stated peak for this device: --peak_tflops gives one)\n",
               p->flops / r->dit.median / 1e12);
    if (r->dit.n <= 0) return;
    printf("\none eager forward, instrumented: %.3f ms (%.3f ms in ops, by %s)\n", 1e3 * r->eager_s,
           1e3 * r->attributed_s, r->clock);
    printf("%-26s %5s %10s %6s %12s %10s %10s\n", "group", "ops", "ms", "share", "GFLOP", "TFLOP/s", "GB/s");
    for (int i = 0; i < G_N; i++) {
        const group *g = &r->g[i];
        printf("%-26s %5d %10.3f %5.1f%% %12.4g %10.4g %10.4g\n", group_label[i], g->ops, 1e3 * g->s,
               r->attributed_s > 0 ? 100 * g->s / r->attributed_s : 0, g->flops / 1e9, per_s(g->flops, g->s) / 1e12,
               per_s(g->bytes, g->s) / 1e9);
    }
    if (r->device_used_bytes >= 0)
        printf("device memory held by the transformer: %.1f MiB\n", r->device_used_bytes / 1048576.0);
    if (r->planned_device_bytes >= 0)
        printf("planned device memory (models/device_plan.h): %.1f MiB; ", r->planned_device_bytes / 1048576.0);
    if (r->peak_device_bytes >= 0)
        printf("peak device memory (the plugin's allocations): %.1f MiB; ", r->peak_device_bytes / 1048576.0);
    printf("host peak RSS %.1f MiB\n", r->host_peak_bytes / 1048576.0);
}

static void json_num(FILE *f, const char *k, double v, int last)
{
    if (v < 0)
        fprintf(f, "  \"%s\": null%s\n", k, last ? "" : ",");
    else
        fprintf(f, "  \"%s\": %.9g%s\n", k, v, last ? "" : ",");
}

static void json_str(FILE *f, const char *k, const char *v)
{
    fprintf(f, "  \"%s\": ", k);
    sky_json_write_str(f, v);
    fprintf(f, ",\n");
}

static void json_stats(FILE *f, const char *k, const stats *s)
{
    if (s->n <= 0) {
        fprintf(f, "  \"%s\": null,\n", k);
        return;
    }
    fprintf(f, "  \"%s\": {\"runs\": %d, \"mean_s\": %.9g, \"median_s\": %.9g, \"min_s\": %.9g, \"max_s\": %.9g},\n", k,
            s->n, s->mean, s->median, s->min, s->max);
}

static sky_status write_json(const char *path, const bench_opts *o, const bench_result *r, sky_err *err)
{
    const sky_dit_program *p = sky_variant.dit;
    char                   tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    if (!f) return sky_fail(err, "--json %s: cannot write %s (check the folder exists and is writable)", path, tmp);
    fprintf(f, "{\n");
    json_str(f, "variant", sky_variant.name);
    json_str(f, "backend", o->backend == SKY_BACKEND_CUDA ? "cuda" : "cpu");
    json_str(f, "device", r->device), json_str(f, "driver", r->driver);
    json_str(f, "plugin", r->plugin), json_str(f, "plugin_hash", r->plugin_hash);
    json_str(f, "attention_schedule", r->schedule), json_str(f, "peak_source", r->peak_source);
    json_str(f, "weights", o->weights ? o->weights : "random");
    json_num(f, "peak_tflops", r->peak_tflops > 0 ? r->peak_tflops : -1, 0);
    json_num(f, "peak_gbs", r->peak_gbs > 0 ? r->peak_gbs : -1, 0);
    fprintf(f, "  \"iters\": %d,\n  \"warmup\": %d,\n", o->iters, o->warmup);
    fprintf(f, "  \"window\": {\"frames\": %d, \"height\": %d, \"width\": %d, \"tokens\": %d},\n", r->F, r->H, r->W,
            r->L);
    json_num(f, "flops_spec", p->flops, 0), json_num(f, "flops_model", r->flops_model, 0);
    json_stats(f, "dit_forward", &r->dit), json_stats(f, "text_encode", &r->t5), json_stats(f, "vae_decode", &r->vae);
    const double floor_s = r->peak_tflops > 0 ? p->flops / (r->peak_tflops * 1e12) : -1;
    json_num(f, "floor_s", floor_s, 0);
    json_num(f, "forward_over_floor", floor_s > 0 && r->dit.n > 0 ? r->dit.median / floor_s : -1, 0);
    json_num(f, "achieved_tflops", r->dit.n > 0 ? p->flops / r->dit.median / 1e12 : -1, 0);
    json_num(f, "eager_s", r->dit.n > 0 ? r->eager_s : -1, 0);
    json_num(f, "attributed_s", r->dit.n > 0 ? r->attributed_s : -1, 0);
    json_str(f, "breakdown_clock", r->dit.n > 0 ? r->clock : "none");
    fprintf(f, "  \"groups\": {");
    for (int i = 0; i < G_N; i++) {
        const group *g = &r->g[i];
        fprintf(f, "%s\n    \"%s\": {\"ops\": %d, \"s\": %.9g, \"flops\": %.9g, \"bytes\": %.9g, ", i ? "," : "",
                group_key[i], g->ops, g->s, g->flops, g->bytes);
        const double tf = per_s(g->flops, g->s), gb = per_s(g->bytes, g->s);
        if (tf >= 0)
            fprintf(f, "\"tflops\": %.9g, \"gbs\": %.9g}", tf / 1e12, gb / 1e9);
        else
            fprintf(f, "\"tflops\": null, \"gbs\": null}");
    }
    fprintf(f, "\n  },\n");
    sky_cli_json_counts(f, sky_variant.counts);
    json_num(f, "device_used_bytes", r->device_used_bytes, 0);
    json_num(f, "planned_device_bytes", r->planned_device_bytes, 0);
    json_num(f, "peak_device_bytes", r->peak_device_bytes, 0);
    json_num(f, "host_peak_bytes", r->host_peak_bytes, 1);
    fprintf(f, "}\n");
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        remove(tmp);
        return sky_fail(err, "--json %s: writing failed (disk full?)", path);
    }
    return SKY_OK;
}

/* ---- the command ---- */

static int usage(const char *argv0, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: error: bench: ", argv0);
    fprintf(stderr, fmt, arg);
    fprintf(stderr,
            "\n(usage: %s bench [--backend cpu|cuda] [--iters N] [--warmup N] [--weights PATH] "
            "[--vae_weights PATH] [--t5_weights PATH] [--parts dit,t5,vae] [--json FILE] "
            "[--peak_tflops X --peak_gbs X] [-q]; docs/bench.md)\n",
            argv0);
    return 2;
}

static int int_arg(const char *s, int lo, int hi, int *out)
{
    char      *end;
    const long v = s ? strtol(s, &end, 10) : 0;
    if (!s || !*s || *end || v < lo || v > hi) return 0;
    *out = (int)v;
    return 1;
}

/* -1 to go on, else the exit code of the usage error printed. */
static int parse(int argc, char **argv, bench_opts *o)
{
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!strcmp(a, "-q") || !strcmp(a, "--quiet")) {
            o->quiet = 1;
            continue;
        }
        if (!val) return usage(argv[0], "%s: unknown, or needs a value", a);
        i++;
        if (!strcmp(a, "--iters")) {
            if (!int_arg(val, 1, 100000, &o->iters)) return usage(argv[0], "--iters %s: must be 1 to 100000", val);
        } else if (!strcmp(a, "--warmup")) {
            if (!int_arg(val, 0, 100000, &o->warmup)) return usage(argv[0], "--warmup %s: must be 0 to 100000", val);
        } else if (!strcmp(a, "--weights"))
            o->weights = val;
        else if (!strcmp(a, "--vae_weights"))
            o->vae_weights = val;
        else if (!strcmp(a, "--t5_weights"))
            o->t5_weights = val;
        else if (!strcmp(a, "--json"))
            o->json = val;
        else if (!strcmp(a, "--peak_tflops") || !strcmp(a, "--peak_gbs")) {
            char  *end;
            double v = strtod(val, &end);
            if (*end || !(v > 0)) return usage(argv[0], "peak %s: must be a number > 0", val);
            *(a[7] == 't' ? &o->peak_tflops : &o->peak_gbs) = v;
        } else if (!strcmp(a, "--parts")) {
            o->do_dit = strstr(val, "dit") != NULL, o->do_t5 = strstr(val, "t5") != NULL;
            o->do_vae = strstr(val, "vae") != NULL;
            if (!o->do_dit && !o->do_t5 && !o->do_vae) return usage(argv[0], "--parts %s: a list of dit, t5, vae", val);
        } else if (!strcmp(a, "--backend")) {
            sky_err e;
            if (sky_backend_parse(val, &o->backend, &e)) return usage(argv[0], "%s", e.msg);
            if (o->backend == SKY_BACKEND_CUDA && !sky_variant.has_cuda)
                return usage(argv[0], "--backend %s: this variant was generated for the cpu target only", val);
            o->backend_given = 1;
        } else
            return usage(argv[0], "unknown option %s", a);
    }
    if (!o->backend_given) {
        char    note[1200];
        int     warn;
        sky_err e;
        if (sky_backend_default(sky_variant.name, sky_variant.has_cuda, &o->backend, note, sizeof note, &warn, &e))
            return usage(argv[0], "%s", e.msg);
        if (note[0] && (!o->quiet || warn)) fprintf(stderr, "%s%s\n", warn ? "warning: " : "", note);
    }
    return -1;
}

static void remove_dir(const char *dir)
{
    const char *names[] = {"dit.safetensors", "t5.safetensors", "vae.safetensors"};
    char        p[4200];
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s/%s", dir, names[i]);
        remove(p);
    }
    rmdir(dir);
}

static sky_status run_parts(const char *dir, const bench_opts *o, bench_result *r, sky_err *err)
{
    sky_status st = SKY_OK;
    if (o->do_dit) st = bench_dit(dir, o, r, err);
    if (st == SKY_OK && o->do_t5 && sky_variant.text_encode) st = bench_t5(dir, o, r, err);
    if (st == SKY_OK && o->do_vae && sky_variant.vae_decode) st = bench_vae(dir, o, r, err);
    /* the programs are opened one after the other, each closed before the next: as under --offload */
    const sky_device_config dc = {
        .offload = 1, .text = o->do_t5 && sky_variant.text_encode, .vae_decode = o->do_vae && sky_variant.vae_decode};
    sky_device_plan plan;
    sky_device_plan_make(&sky_variant, &dc, &plan);
    size_t peak = o->do_dit ? plan.bytes[SKY_DEVICE_DIT] : 0;
    if (plan.bytes[SKY_DEVICE_TEXT] > peak) peak = plan.bytes[SKY_DEVICE_TEXT];
    if (plan.bytes[SKY_DEVICE_VAE_DECODE] > peak) peak = plan.bytes[SKY_DEVICE_VAE_DECODE];
    r->planned_device_bytes = (double)peak;
    if (o->backend != SKY_BACKEND_CUDA) r->planned_device_bytes = -1;
    if (o->backend == SKY_BACKEND_CUDA) r->peak_device_bytes = sky_cuda_peak_device_bytes(sky_variant.name);
    struct rusage ru;
    r->host_peak_bytes = getrusage(RUSAGE_SELF, &ru) == 0 ? 1024.0 * (double)ru.ru_maxrss : -1;
    return st;
}

int sky_cli_bench(int argc, char **argv)
{
    bench_opts o = {.iters = 10, .warmup = 2, .do_dit = 1, .do_t5 = 1, .do_vae = 1};
    int        rc = parse(argc, argv, &o);
    if (rc >= 0) return rc;
    bench_result r = {
        .device_used_bytes = -1, .planned_device_bytes = -1, .peak_device_bytes = -1, .host_peak_bytes = -1};
    const char *tmpdir = getenv("TMPDIR");
    char        dir[1024];
    snprintf(dir, sizeof dir, "%s/skyreels-bench-XXXXXX", tmpdir && *tmpdir ? tmpdir : "/tmp");
    sky_err err;
    if (!mkdtemp(dir)) {
        fprintf(stderr, "%s: error: bench: cannot create %s for the random weights (set TMPDIR)\n", argv[0], dir);
        return 1;
    }
    describe_device(&o, &r);
    describe_plugin(&o, &r);
    sky_status st = run_parts(dir, &o, &r, &err);
    remove_dir(dir);
    if (st == SKY_OK) print_table(&o, &r);
    if (st == SKY_OK && o.json) st = write_json(o.json, &o, &r, &err);
    if (st != SKY_OK) {
        fprintf(stderr, "%s: error: %s\n", argv[0], err.msg);
        return 1;
    }
    return 0;
}
