/* runtime/models/dit.c — run dit_forward on a file of inputs; random weights and inputs (dit.h). */
#include "models/dit.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "cuda/plugin_abi.h"
#include "core/dtype.h"
#include "models/latent.h"
#include "models/prompt_cache.h"
#include "formats/safetensors.h"
#include "formats/weights.h"

/* One input as the program expects it: name, whether this variant has it, expected dims
 * (-1: any, checked against another input afterwards). */
typedef struct expect {
    const char *name;
    int         present;
    int         ndim;
    int64_t     dims[5];
} expect;

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static const char *shape_fmt(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* Check tensor t against e: rank and every fixed dim. */
static sky_status check_dims(const char *path, const sky_st_tensor *t, const expect *e, sky_err *err)
{
    char got[128], want[128];
    int  ok = t->ndim == e->ndim;
    for (int i = 0; ok && i < e->ndim; i++) ok = e->dims[i] < 0 || e->dims[i] == t->shape[i];
    if (ok) return SKY_OK;
    size_t used = (size_t)snprintf(want, sizeof want, "[");
    for (int i = 0; i < e->ndim; i++)
        used += (size_t)(e->dims[i] < 0 ? snprintf(want + used, sizeof want - used, "%s*", i ? ", " : "")
                                        : snprintf(want + used, sizeof want - used, "%s%lld", i ? ", " : "",
                                                   (long long)e->dims[i]));
    snprintf(want + used, sizeof want - used, "]");
    return sky_fail(err, "%s: input '%s' has shape %s, this variant expects %s (* = any)", path, e->name,
                    shape_fmt(got, sizeof got, t->ndim, t->shape), want);
}

/* Float inputs: F32, BF16, F16, F64. */
static sky_status check_float(const char *path, const sky_st_tensor *t, sky_err *err)
{
    if (t->dtype == SKY_DTYPE_F32 || t->dtype == SKY_DTYPE_BF16 || t->dtype == SKY_DTYPE_F16 ||
        t->dtype == SKY_DTYPE_F64)
        return SKY_OK;
    return sky_fail(err, "%s: input '%s' has dtype %s; it must be F32, BF16, F16 or F64", path, t->name,
                    sky_dtype_name(t->dtype));
}

/* Element i of an integer or float tensor as double (t, fps). */
static double number_at(const sky_st_tensor *t, size_t i)
{
    const unsigned char *p = t->data;
    switch (t->dtype) {
    case SKY_DTYPE_I64: {
        int64_t v;
        memcpy(&v, p + 8 * i, 8);
        return (double)v;
    }
    case SKY_DTYPE_I32: {
        int32_t v;
        memcpy(&v, p + 4 * i, 4);
        return (double)v;
    }
    case SKY_DTYPE_F64: {
        double v;
        memcpy(&v, p + 8 * i, 8);
        return v;
    }
    case SKY_DTYPE_F32: {
        float v;
        memcpy(&v, p + 4 * i, 4);
        return (double)v;
    }
    default: SKY_ASSERT(!"number_at: dtype checked before");
    }
    return 0.0;
}

static sky_status check_number(const char *path, const sky_st_tensor *t, sky_err *err)
{
    if (t->dtype == SKY_DTYPE_I64 || t->dtype == SKY_DTYPE_I32 || t->dtype == SKY_DTYPE_F64 ||
        t->dtype == SKY_DTYPE_F32)
        return SKY_OK;
    return sky_fail(err, "%s: input '%s' has dtype %s; it must be I64, I32, F64 or F32", path, t->name,
                    sky_dtype_name(t->dtype));
}

/* The validated inputs of one call. */
typedef struct inputs {
    const sky_st_tensor *x, *t, *context, *y, *clip_fea, *fps;
    int                  B, F, H, W, Ft;
} inputs;

/* Find and check every input before any work. */
static sky_status read_inputs(inputs *in, const sky_safetensors *f, const sky_dit_program *p, sky_err *err)
{
    const char *path = sky_safetensors_path(f);
    memset(in, 0, sizeof *in);
    const int                has_image = p->y_channels > 0;
    static const char *const known[] = {"x", "t", "context", "y", "clip_fea", "fps"};
    const int                present[] = {1, 1, 1, has_image, has_image, p->inject_sample_info};
    for (int i = 0; i < sky_safetensors_count(f); i++) {
        const char *name = sky_safetensors_at(f, i)->name;
        int         ok = strcmp(name, "v") == 0 || /* an expected output beside the inputs is ignored */
                 strcmp(name, "teacache_computed") == 0;
        for (int k = 0; k < 6; k++) ok |= present[k] && strcmp(name, known[k]) == 0;
        if (!ok)
            return sky_fail(err,
                            "%s: input '%s' is not an input of this variant's dit_forward (it takes x, t, "
                            "context%s%s)",
                            path, name, has_image ? ", y, clip_fea" : "", p->inject_sample_info ? ", fps" : "");
    }
    for (int k = 0; k < 6; k++)
        if (present[k] && !sky_safetensors_find(f, known[k]))
            return sky_fail(err, "%s: input '%s' is missing (see `program --help` for the inputs)", path, known[k]);

    in->x = sky_safetensors_find(f, "x");
    expect ex = {"x", 1, 5, {-1, p->x_channels, -1, -1, -1}};
    if (check_dims(path, in->x, &ex, err) || check_float(path, in->x, err)) return SKY_ERR;
    in->B = (int)in->x->shape[0];
    in->F = (int)in->x->shape[2];
    in->H = (int)in->x->shape[3];
    in->W = (int)in->x->shape[4];
    if (in->B < 1 || in->x->shape[0] > 4096)
        return sky_fail(err, "%s: input 'x' has batch %lld; it must be 1 to 4096", path, (long long)in->x->shape[0]);
    if (in->x->shape[2] < 1 || in->x->shape[2] > p->max_frames)
        return sky_fail(err, "%s: input 'x' has %lld latent frames; this variant takes 1 to %d (its window)", path,
                        (long long)in->x->shape[2], p->max_frames);
    if (!((in->H == p->lat_h && in->W == p->lat_w) || (in->H == p->lat_w && in->W == p->lat_h)))
        return sky_fail(err,
                        "%s: input 'x' has latent size %dx%d; this variant was generated for %dx%d "
                        "(or %dx%d portrait)",
                        path, in->H, in->W, p->lat_h, p->lat_w, p->lat_w, p->lat_h);

    in->t = sky_safetensors_find(f, "t");
    if (check_number(path, in->t, err)) return SKY_ERR;
    if (in->t->ndim == 1 && in->t->shape[0] == in->B)
        in->Ft = 1;
    else if (in->t->ndim == 2 && in->t->shape[0] == in->B && in->t->shape[1] == in->F)
        in->Ft = in->F;
    else {
        char got[128];
        return sky_fail(err,
                        "%s: input 't' has shape %s; it must be [%d] (one timestep per sample) or [%d, %d] "
                        "(one per frame)",
                        path, shape_fmt(got, sizeof got, in->t->ndim, in->t->shape), in->B, in->B, in->F);
    }
    for (size_t i = 0; i < (size_t)in->B * (size_t)in->Ft; i++) {
        double v = number_at(in->t, i);
        if (!(v >= 0.0 && v <= 1000.0))
            return sky_fail(err, "%s: input 't' element %zu is %g; timesteps must be in [0, 1000]", path, i, v);
    }

    in->context = sky_safetensors_find(f, "context");
    expect ec = {"context", 1, 3, {in->B, p->text_len, p->text_dim}};
    if (check_dims(path, in->context, &ec, err) || check_float(path, in->context, err)) return SKY_ERR;

    if (has_image) {
        in->y = sky_safetensors_find(f, "y");
        expect ey = {"y", 1, 5, {in->B, p->y_channels, in->F, in->H, in->W}};
        if (check_dims(path, in->y, &ey, err) || check_float(path, in->y, err)) return SKY_ERR;
        in->clip_fea = sky_safetensors_find(f, "clip_fea");
        expect ei = {"clip_fea", 1, 3, {in->B, p->image_len, p->image_dim}};
        if (check_dims(path, in->clip_fea, &ei, err) || check_float(path, in->clip_fea, err)) return SKY_ERR;
    }
    if (p->inject_sample_info) {
        in->fps = sky_safetensors_find(f, "fps");
        expect ef = {"fps", 1, 1, {in->B}};
        if (check_dims(path, in->fps, &ef, err) || check_number(path, in->fps, err)) return SKY_ERR;
        for (int b = 0; b < in->B; b++) {
            double v = number_at(in->fps, (size_t)b);
            if (v != 0.0 && v != 1.0)
                return sky_fail(err,
                                "%s: input 'fps' element %d is %g; it is the fps embedding index, 0 (16 fps) "
                                "or 1 (any other fps)",
                                path, b, v);
        }
    }
    return SKY_OK;
}

struct sky_dit {
    const sky_dit_program     *p;
    sky_cpu_state              s;    /* CPU: fp32 weights, arena; CUDA: the checkpoint until uploaded */
    const sky_dit_cuda_plugin *cuda; /* the CUDA plugin's table and state */
    void                      *cuda_state;
    float                     *tc_tokens, *tc_res[2]; /* CPU TeaCache: the tokens, a residual per parity */
    sky_prompt_cache           prompts;               /* which prompt arena holds which prompt (both backends) */
    unsigned char             *prompt_arena[SKY_PROMPT_SLOTS]; /* CPU: the prompt arenas */
};

sky_status sky_backend_parse(const char *s, sky_backend *b, sky_err *err)
{
    if (strcmp(s, "cpu") == 0)
        *b = SKY_BACKEND_CPU;
    else if (strcmp(s, "cuda") == 0)
        *b = SKY_BACKEND_CUDA;
    else
        return sky_fail(err, "--backend %s: unknown backend (cpu or cuda)", s);
    return SKY_OK;
}

sky_status sky_backend_default(const char *who, int has_cuda, sky_backend *b, char *note, size_t n, int *warn,
                               sky_err *err)
{
    *b = SKY_BACKEND_CPU;
    *warn = 0;
    note[0] = 0;
    const char *env = getenv("SKY_BACKEND");
    if (env && *env) {
        if (strcmp(env, "cpu") == 0) return SKY_OK;
        if (strcmp(env, "cuda") != 0) return sky_fail(err, "SKY_BACKEND=%s: expected cpu or cuda", env);
        if (!has_cuda)
            return sky_fail(err, "SKY_BACKEND=cuda: %s was generated for the cpu target only (its spec's targets)",
                            who);
        *b = SKY_BACKEND_CUDA;
        return SKY_OK;
    }
    if (!has_cuda) return SKY_OK;
    char why[256];
    if (sky_cuda_device_count(why, sizeof why) < 1) {
        snprintf(note, n, "backend: cpu (%s; the CUDA backend needs a GPU)", why);
        return SKY_OK;
    }
    const sky_dit_cuda_plugin *plugin;
    sky_err                    perr;
    if (sky_cuda_plugin_get(&plugin, who, &perr)) {
        snprintf(note, n,
                 "a GPU is present but the CUDA backend cannot be used (%s); running on the CPU backend, "
                 "which is slow",
                 perr.msg);
        *warn = 1;
        return SKY_OK;
    }
    *b = SKY_BACKEND_CUDA;
    snprintf(note, n, "backend: cuda (the default where a GPU is present; --backend cpu for the CPU reference)");
    return SKY_OK;
}

sky_status sky_dit_open(sky_dit **out, const sky_dit_program *p, const char *weights, const char *who, int quiet,
                        sky_backend b, int device, sky_err *err)
{
    *out = NULL;
    sky_dit *d = calloc(1, sizeof *d);
    if (!d) return sky_fail(err, "out of host memory");
    d->p = p;
    double t0 = now_s();
    /* The plugin first: a missing plugin is reported before minutes of weight loading. */
    if (b == SKY_BACKEND_CUDA && sky_cuda_plugin_get(&d->cuda, who, err)) goto fail;
    /* The CUDA backend checks the checkpoint now and reads it tensor by tensor while uploading. */
    if (d->cuda ? sky_cpu_state_open_lazy(&d->s, p->weights, p->n_weights, weights, who, err)
                : sky_cpu_state_open(&d->s, p->weights, p->n_weights, p->arena_bytes, weights, who, err))
        goto fail;
    if (sky_prompt_cache_init(&d->prompts, (size_t)p->text_len * (size_t)p->text_dim,
                              (size_t)p->image_len * (size_t)p->image_dim, err))
        goto fail;
    for (int i = 0; !d->cuda && i < SKY_PROMPT_SLOTS; i++) {
        d->prompt_arena[i] = aligned_alloc(64, (p->prompt_bytes + 63) / 64 * 64 + 64);
        if (!d->prompt_arena[i]) {
            sky_fail(err, "out of host memory for the prompt arenas of dit_forward (%d x %zu bytes)", SKY_PROMPT_SLOTS,
                     p->prompt_bytes);
            goto fail;
        }
    }
    if (!quiet) {
        fprintf(stderr, "weights: %d tensors of dit_forward, %s layout, from %s (%.2f s)\n", d->s.w.n,
                sky_layout_name(d->s.w.layout), weights, now_s() - t0);
        if (d->s.w.unused)
            fprintf(stderr, "warning: %d checkpoint tensors are not used by dit_forward (first '%s')\n", d->s.w.unused,
                    d->s.w.first_unused);
    }
    if (d->cuda) {
        t0 = now_s();
        const sky_weight_reader r = sky_cpu_state_reader(&d->s);
        if (d->cuda->open(&d->cuda_state, p, &r, device, err)) goto fail;
        sky_cpu_state_release(&d->s);
        if (sky_trace_hook) d->cuda->set_trace(d->cuda_state, sky_trace_hook, sky_trace_ctx);
        if (!quiet)
            fprintf(stderr, "cuda: %s; weights uploaded, kernels ready (%.2f s)\n", d->cuda->device(d->cuda_state),
                    now_s() - t0);
    }
    *out = d;
    return SKY_OK;
fail:
    sky_dit_close(d);
    return SKY_ERR;
}

sky_status sky_cuda_devices_visible(const char *who, int *n, sky_err *err)
{
    const sky_dit_cuda_plugin *plugin;
    *n = 0;
    if (sky_cuda_plugin_get(&plugin, who, err)) return SKY_ERR;
    *n = plugin->devices();
    return SKY_OK;
}

sky_status sky_weights_check(const sky_weight_desc *table, int n, const char *weights, const char *who, sky_backend b,
                             sky_err *err)
{
    const sky_dit_cuda_plugin *plugin;
    if (b == SKY_BACKEND_CUDA && sky_cuda_plugin_get(&plugin, who, err)) return SKY_ERR;
    sky_cpu_state s;
    if (sky_cpu_state_open_lazy(&s, table, n, weights, who, err)) return SKY_ERR;
    sky_cpu_state_free(&s);
    return SKY_OK;
}

void sky_dit_close(sky_dit *d)
{
    if (!d) return;
    if (d->cuda && d->cuda_state) d->cuda->close(d->cuda_state);
    sky_cpu_state_free(&d->s);
    free(d->tc_tokens);
    free(d->tc_res[0]);
    free(d->tc_res[1]);
    sky_prompt_cache_free(&d->prompts);
    for (int i = 0; i < SKY_PROMPT_SLOTS; i++) free(d->prompt_arena[i]);
    free(d);
}

void sky_dit_prompt_counts(const sky_dit *d, long long *computed, long long *reused)
{
    *computed = d->prompts.computed;
    *reused = d->prompts.reused;
}

sky_status sky_dit_teacache_open(sky_dit *d, sky_err *err)
{
    if (d->cuda) return d->cuda->teacache_open(d->cuda_state, err);
    if (d->tc_tokens) return SKY_OK;
    const size_t bytes = d->p->tokens.bytes; /* [L, dim] fp32 at the largest window */
    d->tc_tokens = malloc(bytes);
    d->tc_res[0] = malloc(bytes);
    d->tc_res[1] = malloc(bytes);
    if (!d->tc_tokens || !d->tc_res[0] || !d->tc_res[1])
        return sky_fail(err, "out of host memory for TeaCache (3 x %zu bytes)", bytes);
    return SKY_OK;
}

void sky_dit_forward(sky_dit *d, int F, int H, int W, const float *x, const float *y, const double *t, int Ft,
                     const float *context, const float *clip_fea, int64_t fps, float *v, const sky_dit_skip *skip)
{
    const sky_dit_program *p = d->p;
    const size_t           lat = (size_t)F * (size_t)H * (size_t)W;
    SKY_ASSERT(F >= 1 && F <= p->max_frames && (Ft == 1 || Ft == F));
    /* The prompt part runs only for a prompt no prompt arena holds (prompt_cache.h). */
    int       fresh;
    const int slot = sky_prompt_cache_slot(&d->prompts, context, p->y_channels ? clip_fea : NULL, &fresh);
    if (d->cuda) {
        d->cuda->forward(d->cuda_state, F, H, W, x, y, t, Ft, context, clip_fea, slot, fresh, fps, v, skip);
        return;
    }
    SKY_ASSERT((size_t)p->x_channels * lat * sizeof(float) <= p->x.bytes);
    memcpy(d->s.arena + p->x.offset, x, (size_t)p->x_channels * lat * sizeof(float));
    memcpy(d->s.arena + p->t.offset, t, (size_t)Ft * sizeof(double));
    if (p->y_channels) memcpy(d->s.arena + p->y.offset, y, (size_t)p->y_channels * lat * sizeof(float));
    if (p->inject_sample_info) memcpy(d->s.arena + p->fps.offset, &fps, sizeof fps);
    const float *const *w = (const float *const *)d->s.w.data;
    unsigned char      *prompt = d->prompt_arena[slot];
    if (fresh) {
        memcpy(d->s.arena + p->context.offset, context, (size_t)p->text_len * (size_t)p->text_dim * sizeof(float));
        if (p->y_channels)
            memcpy(d->s.arena + p->clip_fea.offset, clip_fea,
                   (size_t)p->image_len * (size_t)p->image_dim * sizeof(float));
        p->context_cpu(d->s.arena, prompt, w, F, H, W, Ft);
    }
    if (!skip) {
        p->embed_cpu(d->s.arena, prompt, w, F, H, W, Ft);
        p->blocks_cpu(d->s.arena, prompt, w, F, H, W, Ft);
        p->head_cpu(d->s.arena, prompt, w, F, H, W, Ft);
    } else {
        /* TeaCache (teacache.h): the embeddings, the decision on the probe, then the blocks (keeping the
         * residual) or the residual in their place, then the head. The tokens are copied first: their
         * slot may be reused by the blocks' tensors and the hidden slot may overlap it. */
        SKY_ASSERT(d->tc_tokens);
        const size_t L = (size_t)sky_latent_tokens(p, F, H, W), n_tok = L * (size_t)p->dim;
        SKY_ASSERT(n_tok * sizeof(float) <= p->tokens.bytes);
        p->embed_cpu(d->s.arena, prompt, w, F, H, W, Ft);
        const size_t   n = (size_t)Ft * (size_t)p->dim * (skip->use_e0 ? 6u : 1u);
        const sky_slot probe = skip->use_e0 ? p->e0 : p->e;
        memcpy(d->tc_tokens, d->s.arena + p->tokens.offset, n_tok * sizeof(float));
        int    par = 0;
        float *hidden = (float *)(d->s.arena + p->hidden.offset);
        if (skip->decide(skip->ctx, (const float *)(d->s.arena + probe.offset), n, (long long)L, &par)) {
            p->blocks_cpu(d->s.arena, prompt, w, F, H, W, Ft);
            for (size_t i = 0; i < n_tok; i++) d->tc_res[par][i] = hidden[i] - d->tc_tokens[i];
        } else {
            for (size_t i = 0; i < n_tok; i++) hidden[i] = d->tc_tokens[i] + d->tc_res[par][i];
        }
        p->head_cpu(d->s.arena, prompt, w, F, H, W, Ft);
    }
    memcpy(v, d->s.arena + p->v.offset, (size_t)p->out_dim * lat * sizeof(float));
}

/* Sample b of float tensor t (n elements per sample) as fp32 into dst. */
static sky_status sample_f32(float *dst, const sky_st_tensor *t, int b, size_t n, sky_err *err)
{
    const size_t esize = (size_t)sky_dtype_bits(t->dtype) / 8;
    return sky_dtype_to_f32(dst, (const unsigned char *)t->data + (size_t)b * n * esize, t->dtype, n, err);
}

sky_status sky_dit_run(const sky_variant_desc *v, const sky_dit_run_opts *o, sky_err *err)
{
    const sky_dit_program *p = v->dit;
    sky_status             st = SKY_ERR;
    sky_safetensors       *in_file = NULL;
    sky_dit               *d = NULL;
    float                 *out = NULL, *x = NULL, *y = NULL, *ctx = NULL, *clip = NULL;
    int64_t               *computed = NULL;
    double                 t[4096];
    inputs                 in;
    sky_teacache           tcs = {0}, *tc = NULL;

    if (sky_safetensors_open(&in_file, o->inputs, err)) goto done;
    if (read_inputs(&in, in_file, p, err)) goto done;
    if (sky_dit_open(&d, p, o->weights, v->name, o->quiet, o->backend, 0, err)) goto done;
    if (o->teacache > 0) {
        if (sky_teacache_init(&tcs, p, v->name, o->teacache, o->use_ret_steps, o->teacache_steps, err) ||
            sky_dit_teacache_open(d, err))
            goto done;
        tc = &tcs;
    }

    const size_t lat = (size_t)in.F * (size_t)in.H * (size_t)in.W;
    const size_t per_v = (size_t)p->out_dim * lat;
    const size_t n_ctx = (size_t)p->text_len * (size_t)p->text_dim, n_img = (size_t)p->image_len * (size_t)p->image_dim;
    out = malloc((size_t)in.B * per_v * sizeof(float));
    x = malloc((size_t)p->x_channels * lat * sizeof(float));
    y = malloc((size_t)p->y_channels * lat * sizeof(float) + 1);
    ctx = malloc(n_ctx * sizeof(float));
    clip = malloc(n_img * sizeof(float) + 1);
    computed = calloc((size_t)in.B, sizeof *computed);
    if (!out || !x || !y || !ctx || !clip || !computed) {
        sky_fail(err, "out of host memory for %d samples of %d latent frames", in.B, in.F);
        goto done;
    }
    for (int b = 0; b < in.B; b++) {
        double ts = now_s();
        if (sample_f32(x, in.x, b, (size_t)p->x_channels * lat, err)) goto done;
        for (int i = 0; i < in.Ft; i++) t[i] = number_at(in.t, (size_t)b * (size_t)in.Ft + (size_t)i);
        if (sample_f32(ctx, in.context, b, n_ctx, err)) goto done;
        if (in.y &&
            (sample_f32(y, in.y, b, (size_t)p->y_channels * lat, err) || sample_f32(clip, in.clip_fea, b, n_img, err)))
            goto done;
        const int64_t   fps = in.fps ? (int64_t)number_at(in.fps, (size_t)b) : 0;
        const long long skipped = tc ? tc->skipped : 0;
        long long       prompt_runs, prompt_reuses;
        sky_dit_prompt_counts(d, &prompt_runs, &prompt_reuses);
        sky_dit_forward(d, in.F, in.H, in.W, x, y, t, in.Ft, ctx, clip, fps, out + (size_t)b * per_v,
                        tc ? &(sky_dit_skip){tc->use_ret_steps, sky_teacache_decide, tc} : NULL);
        computed[b] = tc ? (tc->skipped == skipped) : 1;
        const long long runs_before = prompt_runs;
        sky_dit_prompt_counts(d, &prompt_runs, &prompt_reuses);
        if (!o->quiet)
            fprintf(stderr,
                    "dit_forward: sample %d/%d, %d latent frames (%d x %d), %s timesteps, prompt part %s%s: "
                    "%.3f s\n",
                    b + 1, in.B, in.F, in.H, in.W, in.Ft == 1 ? "plain" : "per-frame",
                    prompt_runs > runs_before ? "run" : "reused",
                    tc ? (computed[b] ? ", teacache: blocks run" : ", teacache: blocks skipped") : "", now_s() - ts);
    }

    sky_st_entry e[2] = {{"v", SKY_DTYPE_F32, 5, {in.B, p->out_dim, in.F, in.H, in.W}, out},
                         {"teacache_computed", SKY_DTYPE_I64, 1, {in.B}, computed}};
    const char  *meta[] = {"made_by", "skyreels program dit_forward",
                           "variant", v->name,
                           "backend", o->backend == SKY_BACKEND_CUDA ? "cuda" : "cpu",
                           NULL};
    if (sky_safetensors_write(o->output, e, tc ? 2 : 1, meta, err)) goto done;
    st = SKY_OK;
done:
    free(out);
    free(x);
    free(y);
    free(ctx);
    free(clip);
    free(computed);
    sky_dit_close(d);
    sky_teacache_free(&tcs);
    sky_safetensors_close(in_file);
    return st;
}

/* ---- random weights and inputs (demo and tests) ----------------------------------------- */

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

/* 1 if the tensor name ends with suffix. */
static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
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
                !ends_with(d->name, ".bias");
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
