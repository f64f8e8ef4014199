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
    static const char *names[SKY_DEVICE_PARTS] = {"the text encoder",
                                                  "the image encoder",
                                                  "the transformer",
                                                  "TeaCache's buffers",
                                                  "the VAE decoder",
                                                  "the VAE encoder",
                                                  "the transformer as it opens (dit_forward)"};
    return part >= 0 && part < SKY_DEVICE_PARTS ? names[part] : "?";
}

/* Whether c counts the transformer as --use_usp holds it: dit_forward as it opens, then dit_forward_usp. */
static int usp_of(const sky_variant_desc *v, const sky_device_config *c)
{
    return c->usp && v->has_cuda && v->dit->usp != NULL;
}

const char *sky_device_part_label(const sky_variant_desc *v, int part, const sky_device_config *c)
{
    if (part == SKY_DEVICE_DIT && usp_of(v, c)) return "the transformer (dit_forward_usp)";
    return sky_device_part_name(part);
}

const char *sky_device_plan_gpu(const sky_device_config *c, char *buf, size_t n)
{
    if (c->ranks > 0) /* --use_usp: every rank checks its own GPU; the lines say whose */
        snprintf(buf, n, "rank %d's GPU %d", c->rank, c->device);
    else
        snprintf(buf, n, "GPU %d", c->device);
    return buf;
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

/* --weight_dtype fp8's bf16 block slots (runtime/cuda/dit_cuda.c upload): --offload_blocks N where it is on, else 2
 * (at most the blocks). */
static int fp8_slots(const sky_dit_program *p, const sky_device_config *c)
{
    if (c->offload_blocks > 0 && c->offload_blocks < p->cuda_blocks) return c->offload_blocks;
    return p->cuda_blocks < 2 ? p->cuda_blocks : 2;
}

/* Each part's bytes in configuration c (0 where c does not use it). */
static void part_bytes(const sky_variant_desc *v, const sky_device_config *c, size_t *b)
{
    const sky_dit_program *p = v->dit;
    memset(b, 0, SKY_DEVICE_PARTS * sizeof *b);
    if (!v->has_cuda) return;
    size_t weights = p->cuda_weight_bytes;
    if (c->weight_fp8 && p->cuda_blocks > 0) /* the linear weights as fp8, N bf16 slots of them (dit_cuda.c upload) */
        weights += p->cuda_fp8_bytes - p->cuda_fp8_bf16_bytes + (size_t)fp8_slots(p, c) * p->cuda_fp8_block_bytes;
    else if (c->offload_blocks > 0 && c->offload_blocks < p->cuda_blocks) /* --offload_blocks: N slots of the blocks */
        weights -= (size_t)(p->cuda_blocks - c->offload_blocks) * p->cuda_block_bytes;
    /* --use_usp: the weights uploaded once for both programs; dit_forward's arena while it opens, then (use_comm
     * frees it first) dit_forward_usp's, whose tokens slot TeaCache's buffers copy (teacache_open runs after) */
    const sky_dit_program *run = usp_of(v, c) ? p->usp : p;
    b[SKY_DEVICE_DIT] =
        program_bytes(weights, run->cuda_arena_bytes, SKY_PROMPT_SLOTS * pad256(run->cuda_prompt_bytes));
    if (run != p)
        b[SKY_DEVICE_DIT_OPEN] =
            program_bytes(weights, p->cuda_arena_bytes, SKY_PROMPT_SLOTS * pad256(p->cuda_prompt_bytes));
    if (c->teacache) b[SKY_DEVICE_TEACACHE] = run->cuda_teacache_bytes;
    const sky_encoder_program *e[2] = {c->text ? v->text_encode : NULL, c->clip ? v->clip_encode : NULL};
    for (int i = 0; i < 2; i++)
        if (e[i]) b[SKY_DEVICE_TEXT + i] = program_bytes(e[i]->cuda_weight_bytes, e[i]->cuda_arena_bytes, 0);
    const sky_vae_program *dec = c->vae_tiled && v->vae_decode_tile ? v->vae_decode_tile : v->vae_decode;
    const sky_vae_program *enc = c->vae_tiled && v->vae_encode_tile ? v->vae_encode_tile : v->vae_encode;
    const sky_vae_program *vp[2] = {c->vae_decode ? dec : NULL, c->vae_encode ? enc : NULL};
    for (int i = 0; i < 2; i++)
        if (vp[i]) b[SKY_DEVICE_VAE_DECODE + i] = program_bytes(vp[i]->cuda_weight_bytes, vp[i]->cuda_arena_bytes, 0);
}

void sky_device_plan_make(const sky_variant_desc *v, const sky_device_config *c, sky_device_plan *out)
{
    memset(out, 0, sizeof *out);
    part_bytes(v, c, out->bytes);
    const sky_dit_program *p = v->dit;
    if (v->has_cuda && !c->weight_fp8 && c->offload_blocks > 0 && c->offload_blocks < p->cuda_blocks)
        out->host_pinned = (size_t)p->cuda_blocks * p->cuda_block_bytes;
    /* the sets held at once, as bit masks of parts: the encoders alone, then the rest together (or, under
     * --offload, the transformer with TeaCache's buffers, and each VAE program alone); with --use_usp before them
     * the transformer as it opens, alone (0 bytes without) */
    const unsigned dit = 1u << SKY_DEVICE_DIT | 1u << SKY_DEVICE_TEACACHE;
    const unsigned vae_dec = 1u << SKY_DEVICE_VAE_DECODE, vae_enc = 1u << SKY_DEVICE_VAE_ENCODE;
    unsigned       sets[6] = {1u << SKY_DEVICE_TEXT, 1u << SKY_DEVICE_CLIP, 1u << SKY_DEVICE_DIT_OPEN};
    int            n_sets = 3;
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
                                     sky_device_part_label(v, i, c));
}

int sky_device_plan_fit_blocks(const sky_variant_desc *v, const sky_device_config *c, size_t free_bytes)
{
    sky_device_config o = *c;
    sky_device_plan   plan;
    o.offload_blocks = 0;
    sky_device_plan_make(v, &o, &plan);
    if (plan.peak <= free_bytes) return 0;
    for (int n = v->dit->cuda_blocks - 1; n >= 1; n--) {
        o.offload_blocks = n;
        sky_device_plan_make(v, &o, &plan);
        if (plan.peak <= free_bytes) return n;
    }
    return 0;
}

int sky_device_plan_tile_vae(const sky_variant_desc *v, const sky_device_config *c, size_t free_bytes)
{
    if (!c->vae_decode || c->vae_tiled || !v->vae_decode_tile) return 0;
    sky_device_plan   plan;
    sky_device_config t = *c;
    sky_device_plan_make(v, c, &plan);
    if (plan.peak <= free_bytes) return 0;
    t.vae_tiled = 1;
    sky_device_plan_make(v, &t, &plan);
    return plan.peak <= free_bytes;
}

sky_status sky_device_plan_check(const sky_variant_desc *v, const sky_device_config *c, size_t free_bytes,
                                 size_t total_bytes, sky_err *err)
{
    sky_device_plan plan;
    sky_device_plan_make(v, c, &plan);
    if (plan.peak <= free_bytes) return SKY_OK;
    char need[32], have[32], all[32], fix[560], gpu[48];
    /* the options that lower the peak, cheapest first, alone then together: the tiled VAE decoder (where the variant
     * has one and the decode is not tiled already), --offload (each model on the GPU only for its stage), then the
     * same with --offload_blocks N (N: the largest that fits; where the transformer has more than one block) */
    const int tile = c->vae_decode && !c->vae_tiled && v->vae_decode_tile != NULL;
    const int blocks = v->has_cuda && v->dit->cuda_blocks > 1;
    sky_device_plan   best = {0};
    sky_device_config o = *c;
    int               found = 0;
    for (int i = 1; i < 8 && !found; i++) {
        const int tiled = i & 1, offload = i >> 1 & 1, by_block = i >> 2 & 1;
        if ((tiled && !tile) || (offload && c->offload) || (by_block && !blocks)) continue;
        o = *c;
        o.offload |= offload, o.vae_tiled |= tiled;
        if (by_block) {
            o.offload_blocks = sky_device_plan_fit_blocks(v, &o, free_bytes);
            if (!o.offload_blocks) o.offload_blocks = 1; /* none fits: the lowest peak, for the message */
        }
        sky_device_plan_make(v, &o, &best);
        found = best.peak <= free_bytes;
    }
    char flags[96];
    snprintf(flags, sizeof flags, "%s%s%s", o.offload && !c->offload ? " --offload" : "",
             o.vae_tiled && !c->vae_tiled ? " --vae_tiling" : "",
             o.offload_blocks != c->offload_blocks ? " --offload_blocks" : "");
    if (found && o.offload_blocks != c->offload_blocks && c->weight_fp8)
        snprintf(fix, sizeof fix,
                 "run with %s %d (%d bf16 slots of the blocks' fp8 linear weights; docs/offload.md): its peak is %s (%zu "
                 "bytes, %s)",
                 flags + 1, o.offload_blocks, o.offload_blocks, sky_device_bytes_fmt(need, sizeof need, best.peak),
                 best.peak, best.at_peak);
    else if (found && o.offload_blocks != c->offload_blocks)
        snprintf(fix, sizeof fix,
                 "run with %s %d (%d of the transformer's %d blocks on the GPU at a time, all of them in %s of pinned "
                 "host memory; docs/offload.md): its peak is %s (%zu bytes, %s)",
                 flags + 1, o.offload_blocks, o.offload_blocks, v->dit->cuda_blocks,
                 sky_device_bytes_fmt(all, sizeof all, best.host_pinned),
                 sky_device_bytes_fmt(need, sizeof need, best.peak), best.peak, best.at_peak);
    else if (found)
        snprintf(fix, sizeof fix, "run with %s%s: its peak is %s (%zu bytes, %s)", flags + 1,
                 o.offload && !c->offload && !o.vae_tiled ? " (each model on the GPU only for its stage)"
                 : o.vae_tiled && !o.offload              ? " (the VAE decoder's arena one tile's)"
                                                          : "",
                 sky_device_bytes_fmt(need, sizeof need, best.peak), best.peak, best.at_peak);
    else if (best.peak)
        snprintf(fix, sizeof fix,
                 "even with every option of this build (%s%s) it needs %s (%s); no option of this build makes it fit: "
                 "use a GPU with that much free memory, or --backend cpu",
                 flags[0] ? flags + 1 : "none left to add", o.offload_blocks != c->offload_blocks ? " 1" : "",
                 sky_device_bytes_fmt(need, sizeof need, best.peak), best.at_peak);
    else
        snprintf(fix, sizeof fix,
                 "no option of this build makes it fit: use a GPU with that much free memory, or --backend cpu");
    sky_device_plan_gpu(c, gpu, sizeof gpu);
    return sky_fail(err,
                    "%s needs %s (%zu bytes) of device memory at its peak (%s; the plan: --info), %s has %s "
                    "(%zu bytes) free of %s; %s",
                    v->name, sky_device_bytes_fmt(need, sizeof need, plan.peak), plan.peak, plan.at_peak, gpu,
                    sky_device_bytes_fmt(have, sizeof have, free_bytes), free_bytes,
                    sky_device_bytes_fmt(all, sizeof all, total_bytes), fix);
}
