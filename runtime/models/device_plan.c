/* runtime/models/device_plan.c — the CUDA backend's device memory from the generator's constants
 * (device_plan.h). */
#include <stdio.h>
#include <string.h>

#include "models/cuda_abi.h" /* SKY_GEMM_WORKSPACE_BYTES */
#include "models/device_plan.h"
#include "models/prompt_cache.h" /* SKY_PROMPT_SLOTS */

static size_t pad256(size_t n) { return (n + 255) / 256 * 256; }

/* One program as the plugin opens it: its weights' allocation (at least 256 bytes: cuda_program.c) and its
 * arena's (the plan's peak, the cuBLASLt workspace, the kept bytes). */
static size_t program_bytes(size_t weights, size_t arena, size_t kept)
{
    return (weights ? weights : 256) + arena + SKY_GEMM_WORKSPACE_BYTES + kept;
}

const char *sky_device_part_name(int part)
{
    static const char *names[SKY_DEVICE_PARTS] = {"the text encoder",   "the image encoder", "the transformer",
                                                  "TeaCache's buffers", "the VAE decoder",   "the VAE encoder"};
    return part >= 0 && part < SKY_DEVICE_PARTS ? names[part] : "?";
}

const char *sky_device_bytes_fmt(char *buf, size_t n, size_t bytes)
{
    const double mib = 1024.0 * 1024.0;
    if ((double)bytes >= 1024.0 * mib)
        snprintf(buf, n, "%.2f GiB", (double)bytes / (1024.0 * mib));
    else
        snprintf(buf, n, "%.2f MiB", (double)bytes / mib);
    return buf;
}

/* Each part's bytes in configuration c (0 where c does not use it). */
static void part_bytes(const sky_variant_desc *v, const sky_device_config *c, size_t *b)
{
    const sky_dit_program *p = v->dit;
    memset(b, 0, SKY_DEVICE_PARTS * sizeof *b);
    if (!v->has_cuda) return;
    b[SKY_DEVICE_DIT] =
        program_bytes(p->cuda_weight_bytes, p->cuda_arena_bytes, SKY_PROMPT_SLOTS * pad256(p->cuda_prompt_bytes));
    if (c->teacache) b[SKY_DEVICE_TEACACHE] = p->cuda_teacache_bytes;
    const sky_encoder_program *e[2] = {c->text ? v->text_encode : NULL, c->clip ? v->clip_encode : NULL};
    for (int i = 0; i < 2; i++)
        if (e[i]) b[SKY_DEVICE_TEXT + i] = program_bytes(e[i]->cuda_weight_bytes, e[i]->cuda_arena_bytes, 0);
    const sky_vae_program *vp[2] = {c->vae_decode ? v->vae_decode : NULL, c->vae_encode ? v->vae_encode : NULL};
    for (int i = 0; i < 2; i++)
        if (vp[i]) b[SKY_DEVICE_VAE_DECODE + i] = program_bytes(vp[i]->cuda_weight_bytes, vp[i]->cuda_arena_bytes, 0);
}

void sky_device_plan_make(const sky_variant_desc *v, const sky_device_config *c, sky_device_plan *out)
{
    memset(out, 0, sizeof *out);
    part_bytes(v, c, out->bytes);
    /* the sets held at once, as bit masks of parts: the encoders alone, then the rest together (or, under
     * --offload, the transformer with TeaCache's buffers, and each VAE program alone) */
    const unsigned dit = 1u << SKY_DEVICE_DIT | 1u << SKY_DEVICE_TEACACHE;
    const unsigned vae_dec = 1u << SKY_DEVICE_VAE_DECODE, vae_enc = 1u << SKY_DEVICE_VAE_ENCODE;
    unsigned       sets[5] = {1u << SKY_DEVICE_TEXT, 1u << SKY_DEVICE_CLIP};
    int            n_sets = 2;
    if (c->offload)
        sets[n_sets++] = dit, sets[n_sets++] = vae_dec, sets[n_sets++] = vae_enc;
    else
        sets[n_sets++] = dit | vae_dec | vae_enc;
    unsigned best = 0;
    for (int s = 0; s < n_sets; s++) {
        size_t sum = 0;
        for (int i = 0; i < SKY_DEVICE_PARTS; i++)
            if (sets[s] >> i & 1) sum += out->bytes[i];
        if (sum > out->peak) out->peak = sum, best = sets[s];
    }
    size_t used = 0;
    for (int i = 0; i < SKY_DEVICE_PARTS; i++)
        if ((best >> i & 1) && out->bytes[i] && used < sizeof out->at_peak)
            used += (size_t)snprintf(out->at_peak + used, sizeof out->at_peak - used, "%s%s", used ? " + " : "",
                                     sky_device_part_name(i));
}

sky_status sky_device_plan_check(const sky_variant_desc *v, const sky_device_config *c, size_t free_bytes,
                                 size_t total_bytes, sky_err *err)
{
    sky_device_plan plan;
    sky_device_plan_make(v, c, &plan);
    if (plan.peak <= free_bytes) return SKY_OK;
    char need[32], have[32], all[32], fix[320];
    if (!c->offload) {
        sky_device_config o = *c;
        sky_device_plan   off;
        o.offload = 1;
        sky_device_plan_make(v, &o, &off);
        if (off.peak <= free_bytes)
            snprintf(fix, sizeof fix,
                     "run with --offload (each model on the GPU only for its stage): its peak is %s (%zu bytes, %s)",
                     sky_device_bytes_fmt(need, sizeof need, off.peak), off.peak, off.at_peak);
        else
            snprintf(fix, sizeof fix,
                     "even --offload needs %s (%s); no option of this build makes it fit: use a GPU with that much "
                     "free memory, or --backend cpu",
                     sky_device_bytes_fmt(need, sizeof need, off.peak), off.at_peak);
    } else {
        snprintf(fix, sizeof fix,
                 "no option of this build makes it fit: use a GPU with that much free memory, or --backend cpu");
    }
    return sky_fail(err,
                    "%s needs %s (%zu bytes) of device memory at its peak (%s; the plan: --info), GPU 0 has %s "
                    "(%zu bytes) free of %s; %s",
                    v->name, sky_device_bytes_fmt(need, sizeof need, plan.peak), plan.peak, plan.at_peak,
                    sky_device_bytes_fmt(have, sizeof have, free_bytes), free_bytes,
                    sky_device_bytes_fmt(all, sizeof all, total_bytes), fix);
}
