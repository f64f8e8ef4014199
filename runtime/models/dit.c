/* runtime/models/dit.c — a bound dit_forward program on either backend, and `program dit_forward` on a file
 * of inputs (dit.h). */
#include "models/dit.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "core/dtype.h"
#include "models/fp8_quant.h"
#include "models/latent.h"
#include "models/prompt_cache.h"
#include "formats/safetensors.h"
#include "formats/safetensors_write.h"
#include "formats/weights.h"
#include "models/cuda_plugin.h"
#include "models/prompt_cache.h"

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
    const sky_dit_program *p;
    sky_cpu_state          s;    /* CPU: fp32 weights, arena; CUDA: the checkpoint until uploaded */
    const sky_cuda_plugin *cuda; /* the CUDA plugin's table and state */
    void                  *cuda_state;
    float                 *tc_tokens, *tc_res[2];          /* CPU TeaCache: the tokens, a residual per parity */
    sky_prompt_cache       prompts;                        /* which prompt arena holds which prompt (both backends) */
    unsigned char         *prompt_arena[SKY_PROMPT_SLOTS]; /* CPU: the prompt arenas */
    const sky_comm        *comm;                           /* dit_forward_usp: the ranks' collectives */
};

sky_status sky_dit_usp_check(const sky_dit_program *p, int ranks, sky_err *err)
{
    if (!p->usp) return sky_fail(err, "--use_usp: this variant was generated without dit_forward_usp");
    p = p->usp;
    int    ok = 0;
    char   list[128] = "";
    size_t used = 0;
    for (int i = 0; i < 16 && p->usp_ranks[i]; i++) {
        ok |= p->usp_ranks[i] == ranks;
        used += (size_t)snprintf(list + used, sizeof list - used, "%s%d", i ? ", " : "", p->usp_ranks[i]);
        if (used >= sizeof list) break;
    }
    if (!ok)
        return sky_fail(err,
                        "--use_usp: %d rank%s: the rank count must divide the %d attention heads (each rank computes "
                        "heads / ranks of them) and be at least 2; run with %s ranks (mpirun -np N)",
                        ranks, ranks == 1 ? "" : "s", p->num_heads, list);
    return SKY_OK;
}

sky_status sky_dit_use_comm(sky_dit *d, const sky_comm *comm, void *nccl, sky_err *err)
{
    SKY_ASSERT(d->p->embed_usp && (!d->cuda || nccl));
    for (int i = 0; i < 16 && d->p->usp_ranks[i]; i++)
        if (d->p->usp_ranks[i] == comm->size) {
            if (d->cuda) return d->cuda->use_comm(d->cuda_state, nccl, err); /* the forwards in the plugin */
            d->comm = comm;
            return SKY_OK;
        }
    return sky_fail(err, "--use_usp: %d ranks: not a rank count of this program (sky_dit_usp_check first)", comm->size);
}

sky_status sky_dit_open(sky_dit **out, const sky_dit_program *p, const char *weights, const sky_lora *lora,
                        int weight_fp8, const char *who, int quiet, sky_backend b, int device, int offload_blocks,
                        sky_err *err)
{
    *out = NULL;
    sky_dit *d = calloc(1, sizeof *d);
    if (!d) return sky_fail(err, "out of host memory");
    d->p = p;
    double t0 = now_s();
    /* The plugin first: a missing plugin is reported before minutes of weight loading. */
    if (b == SKY_BACKEND_CUDA && sky_cuda_plugin_get(&d->cuda, who, err)) goto fail;
    /* The CUDA backend checks the checkpoint now and reads it tensor by tensor while uploading; either
     * backend merges the LoRAs into each tensor as it is converted to fp32 and then quantises it (fp8_quant.h): the
     * CPU backend here, the CUDA plugin itself, which keeps the codes and scales on the device (cuda_abi.h open). */
    const sky_weight_patch lora_patch = sky_lora_patch(lora);
    sky_fp8_patch          fp8;
    const sky_weight_patch patch =
        weight_fp8 && !d->cuda ? sky_fp8_patch_make(&fp8, &lora_patch, p->weights, p->n_weights) : lora_patch;
    if (d->cuda ? sky_cpu_state_open_lazy(&d->s, p->weights, p->n_weights, weights, &patch, who, err)
                : sky_cpu_state_open(&d->s, p->weights, p->n_weights, p->arena_bytes, weights, &patch, who, err))
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
        char merged[64] = "", quant[64] = "";
        if (lora)
            snprintf(merged, sizeof merged, ", %d changed by %d LoRA%s", sky_lora_weights_changed(lora),
                     sky_lora_count(lora), sky_lora_count(lora) == 1 ? "" : "s");
        if (weight_fp8) {
            int nq = 0;
            for (int i = 0; i < p->n_weights; i++) nq += sky_fp8_quantised(&p->weights[i]);
            snprintf(quant, sizeof quant, ", %d quantised to fp8 e4m3 per row", nq);
        }
        fprintf(stderr, "weights: %d tensors of dit_forward%s%s, %s layout, from %s (%.2f s)\n", d->s.w.n, merged,
                quant, sky_layout_name(d->s.w.layout), weights, now_s() - t0);
        if (d->s.w.unused)
            fprintf(stderr, "warning: %d checkpoint tensors are not used by dit_forward (first '%s')\n", d->s.w.unused,
                    d->s.w.first_unused);
    }
    if (d->cuda) {
        t0 = now_s();
        const sky_weight_reader r = sky_cpu_state_reader(&d->s);
        if (d->cuda->open(&d->cuda_state, p, &r, device, offload_blocks, weight_fp8, err)) goto fail;
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

int sky_dit_set_timing(sky_dit *d, sky_trace_fn fn, void *ctx)
{
    if (!d->cuda) return -1;
    d->cuda->set_timing(d->cuda_state, fn, ctx);
    return 0;
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

/* dit_forward_usp's embed, blocks and head on this rank (TeaCache as in sky_dit_forward, on this rank's Ls tokens:
 * the decision reads e or e0, the same on every rank, so every rank runs or skips the blocks alike). */
static void forward_usp(sky_dit *d, unsigned char *prompt, const float *const *w, int F, int H, int W, int Ft,
                        const sky_dit_skip *skip)
{
    const sky_dit_program *p = d->p;
    const sky_comm        *c = d->comm;
    p->embed_usp(d->s.arena, prompt, w, F, H, W, Ft, c);
    int    run = 1, par = 0;
    size_t n_tok = 0;
    if (skip) {
        SKY_ASSERT(d->tc_tokens);
        const size_t L = (size_t)sky_latent_tokens(p, F, H, W), Ls = (L + (size_t)c->size - 1) / (size_t)c->size;
        n_tok = Ls * (size_t)p->dim;
        SKY_ASSERT(n_tok * sizeof(float) <= p->tokens.bytes);
        const size_t   n = (size_t)Ft * (size_t)p->dim * (skip->use_e0 ? 6u : 1u);
        const sky_slot probe = skip->use_e0 ? p->e0 : p->e;
        memcpy(d->tc_tokens, d->s.arena + p->tokens.offset, n_tok * sizeof(float));
        run = skip->decide(skip->ctx, (const float *)(d->s.arena + probe.offset), n, (long long)L, &par);
    }
    float *hidden = (float *)(d->s.arena + p->hidden.offset);
    if (run) {
        p->blocks_usp(d->s.arena, prompt, w, F, H, W, Ft, c);
        for (size_t i = 0; i < n_tok; i++) d->tc_res[par][i] = hidden[i] - d->tc_tokens[i];
    } else {
        for (size_t i = 0; i < n_tok; i++) hidden[i] = d->tc_tokens[i] + d->tc_res[par][i];
    }
    p->head_usp(d->s.arena, prompt, w, F, H, W, Ft, c);
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
        if (d->comm)
            p->context_usp(d->s.arena, prompt, w, F, H, W, Ft, d->comm);
        else
            p->context_cpu(d->s.arena, prompt, w, F, H, W, Ft);
    }
    if (d->comm) {
        forward_usp(d, prompt, w, F, H, W, Ft, skip);
    } else if (!skip) {
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
    const sky_dit_program *p = o->comm ? v->dit->usp : v->dit;
    sky_status             st = SKY_ERR;
    sky_safetensors       *in_file = NULL;
    sky_dit               *d = NULL;
    float                 *out = NULL, *x = NULL, *y = NULL, *ctx = NULL, *clip = NULL;
    int64_t               *computed = NULL;
    double                 t[4096];
    inputs                 in;
    sky_teacache           tcs = {0}, *tc = NULL;
    sky_lora              *lora = NULL;

    if (o->comm && sky_dit_usp_check(v->dit, o->comm->size, err)) return SKY_ERR;
    if (sky_safetensors_open(&in_file, o->inputs, err)) goto done;
    if (read_inputs(&in, in_file, p, err)) goto done;
    if (o->n_loras > 0 &&
        sky_lora_open(&lora, o->loras, o->n_loras, p->weights, p->n_weights, o->lora_skip_unknown, v->name, err))
        goto done;
    for (int k = 0; k < sky_lora_count(lora); k++) {
        char line[8192];
        if (sky_lora_describe(lora, k, &o->loras[k], line, sizeof line) || !o->quiet) fprintf(stderr, "%s\n", line);
    }
    const sky_status opened =
        sky_dit_open(&d, p, o->weights, lora, o->weight_fp8, v->name, o->quiet, o->backend, o->device,
                     o->offload_blocks, err);
    sky_lora_close(lora);
    if (opened || (o->comm && sky_dit_use_comm(d, o->comm, o->nccl, err))) goto done;
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
    if ((!o->comm || o->comm->rank == 0) && sky_safetensors_write(o->output, e, tc ? 2 : 1, meta, err)) goto done;
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
