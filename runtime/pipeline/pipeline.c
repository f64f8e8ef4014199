/* runtime/pipeline/pipeline.c — the entry of the pipelines (pipeline.h): check every input and open what the
 * run needs (the prompts' embeddings through the tokenizer and umT5, the I2V image's CLIP features, the
 * transformer(s), TeaCache, the VAE, the mp4), run T2V/I2V (t2v_i2v.c) or DF (df.c) over the shared state
 * (denoise.h), then write the outputs and the run's summary.
 */
#include "pipeline/pipeline.h"

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "formats/safetensors.h"
#include "models/cuda_plugin.h"
#include "models/device_plan.h"
#include "models/encoders.h"
#include "models/latent.h"
#include "pipeline/denoise.h"
#include "text/text.h"

static int is_df(const sky_variant_desc *v) { return v->family == SKY_FAMILY_DF; }

/* Whether the run encodes images or frames with the VAE: I2V, DF start/end images, --video_path, long DF. */
static int needs_vae_encoder(const sky_denoise *r)
{
    const sky_gen_args *a = r->a;
    return a->image || a->end_image || a->video_path ||
           (a->overlap_history > 0 && a->num_frames > a->base_num_frames && is_df(r->v));
}

sky_status sky_pipeline_df_plan(const sky_variant_desc *v, const sky_gen_args *a, int video_frames, sky_df_plan *plan,
                                sky_err *err)
{
    const sky_df_request req = {.num_frames = a->num_frames,
                                .base_num_frames = a->base_num_frames,
                                .overlap_history = a->overlap_history,
                                .causal_block_size = a->causal_block_size,
                                .has_image = a->image != NULL,
                                .has_end_image = a->end_image != NULL,
                                .video_frames = video_frames,
                                .vae_stride_t = v->vae_stride_t};
    return sky_df_plan_make(&req, plan, err);
}

/* ---- the encoders (reference vae-text-image-files.md §2, §3) ------------------------------ */

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
    if (sky_dtype_to_f32(dst, t->data, t->dtype, n, err)) return SKY_ERR;
    const size_t bad = sky_f32_nonfinite(dst, n);
    if (bad < n)
        return sky_fail(err, "%s: tensor '%s' holds NaN or Inf at element %zu; the embeddings must be finite",
                        sky_safetensors_path(f), name, bad);
    return SKY_OK;
}

/* The prompt and the negative prompt through the tokenizer and umT5 (§2.4, §2.5). */
static sky_status encode_prompts(sky_denoise *r, sky_err *err)
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
    sky_denoise_work_plan(r, SKY_WORK_TEXT, 2 * tp->flops); /* the ETA's work (denoise.h) */
    for (int i = 0; i < 2; i++) {
        int n = 0;
        if (sky_tokenizer_encode(tok, texts[i], tp->rows, ids32, mask, &n, err)) goto done;
        for (int k = 0; k < n; k++) ids[k] = ids32[k];
        if (sky_text_encode(enc, ids, n, outs[i], err) || sky_denoise_phase(r, "encode", err)) goto done;
        sky_denoise_work_done(r, SKY_WORK_TEXT, tp->flops);
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
 * normalised, through the visual tower. FLF2V: the first image's tokens, then the last image's
 * (--end_image), prepared the same way (round2-features.md §3.3: diffusers instead preprocesses the raw
 * images with CLIPImageProcessor). */
static sky_status encode_image(sky_denoise *r, sky_err *err)
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
    if (sky_encoder_open(&enc, cp, 0, a->clip_weights, r->v->name, a->backend, err)) goto done;
    const char *paths[2] = {a->image, a->end_image};
    for (int k = 0; k < r->v->dit->num_images; k++) {
        if (sky_denoise_load_image(paths[k], H, W, 1, img, err)) goto done;
        for (size_t i = 0; i < (size_t)3 * H * W; i++) img[i] = sky_bf16_to_f32(sky_f32_to_bf16(img[i]));
        sky_clip_preprocess(img, H, W, S, px);
        sky_clip_encode(enc, px, r->clip + (size_t)k * cp->rows * cp->dim);
    }
    st = sky_denoise_phase(r, "encode", err);
done:
    sky_encoder_close(enc);
    free(img);
    free(px);
    return st;
}

/* ---- before the first step: every input checked, what the run needs opened --------------------- */

/* --use_cfg_parallel: a second transformer for the uncond passes, where the run has any (DF skips them at
 * guidance <= 1, T2V and I2V at guidance 1), on GPU 1 for the CUDA backend. */
static sky_status check_cfg_parallel(sky_denoise *r, sky_err *err)
{
    const sky_gen_args *a = r->a;
    const int           has_uncond = is_df(r->v) ? a->guidance_scale > 1.0 : a->guidance_scale != 1.0;
    if (a->cfg_parallel && has_uncond) {
        r->cfg_parallel = 1;
        int gpus = 0;
        if (a->backend == SKY_BACKEND_CUDA && sky_cuda_devices_visible(r->v->name, &gpus, err)) return SKY_ERR;
        if (a->backend == SKY_BACKEND_CUDA && gpus < 2)
            return sky_fail(err,
                            "--use_cfg_parallel runs the unconditional pass on a second GPU: %d CUDA device%s visible "
                            "(check nvidia-smi and CUDA_VISIBLE_DEVICES, or drop the flag)",
                            gpus, gpus == 1 ? " is" : "s are");
        if (!a->quiet)
            fprintf(stderr,
                    "cfg parallel: the unconditional passes on a second transformer (%s), at the same time as "
                    "the conditional ones\n",
                    a->backend == SKY_BACKEND_CUDA ? "GPU 1" : "cpu: for tests, the cores are shared");
    } else if (a->cfg_parallel && !a->quiet) {
        fprintf(stderr, "warning: --use_cfg_parallel: guidance_scale %g %s; one transformer runs\n", a->guidance_scale,
                is_df(r->v) ? "<= 1 skips the unconditional pass of a diffusion-forcing model"
                            : "skips the unconditional pass");
    }
    return SKY_OK;
}

/* --lora: the LoRAs, mapped and checked once for the run; merged into every transformer as it loads. */
static sky_status open_loras(sky_denoise *r, sky_err *err)
{
    const sky_gen_args    *a = r->a;
    const sky_dit_program *p = r->v->dit;
    if (a->n_loras == 0) return SKY_OK;
    if (sky_lora_open(&r->lora, a->loras, a->n_loras, p->weights, p->n_weights, a->lora_skip_unknown, r->v->name, err))
        return SKY_ERR;
    for (int k = 0; k < a->n_loras; k++) {
        char line[8192];
        if (sky_lora_describe(r->lora, k, &a->loras[k], line, sizeof line) || !a->quiet) fprintf(stderr, "%s\n", line);
    }
    return SKY_OK;
}

/* The prompts' embeddings (umT5, or --prompt_embeds) and, for I2V, the image's CLIP features (CLIP, or
 * clip_fea in --prompt_embeds). */
static sky_status read_prompts(sky_denoise *r, sky_err *err)
{
    const sky_gen_args    *a = r->a;
    const sky_dit_program *p = r->v->dit;
    const size_t           n_ctx = (size_t)p->text_len * p->text_dim, n_img = (size_t)p->image_len * p->image_dim;
    sky_safetensors       *pe = NULL;
    sky_status             st = SKY_ERR;
    r->ctx = malloc(n_ctx * sizeof(float));
    r->ctx_null = malloc(n_ctx * sizeof(float));
    r->clip = malloc(n_img * sizeof(float) + 1);
    if (!r->ctx || !r->ctx_null || !r->clip) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    if (a->prompt_embeds) {
        /* Debugging input: the embeddings (and CLIP features) from a file. */
        if (sky_safetensors_open(&pe, a->prompt_embeds, err) || read_tensor(pe, "context", n_ctx, r->ctx, err) ||
            read_tensor(pe, "context_null", n_ctx, r->ctx_null, err))
            goto done;
    } else if (encode_prompts(r, err)) {
        goto done;
    }
    if (p->y_channels) {
        if (pe && sky_safetensors_find(pe, "clip_fea")) {
            if (read_tensor(pe, "clip_fea", n_img, r->clip, err)) goto done;
        } else if (encode_image(r, err)) {
            goto done;
        }
    }
    st = SKY_OK;
done:
    sky_safetensors_close(pe);
    return st;
}

/* TeaCache over the original's count of calls before its counter wraps (reference §8): the steps, plus the
 * asynchronous schedule's extra rows for DF with ar_step > 0 (df.c sets it again per later long-video window). */
static sky_status start_teacache(sky_denoise *r, sky_err *err)
{
    const sky_gen_args *a = r->a;
    int                 steps = a->inference_steps;
    if (is_df(r->v) && a->ar_step > 0) {
        const int Fb = sky_latent_frames(a->base_num_frames, r->v->vae_stride_t);
        steps += (Fb / a->causal_block_size - 1) * a->ar_step;
    }
    if (sky_denoise_teacache_start(r, steps, err)) return SKY_ERR;
    if (is_df(r->v) && !a->quiet)
        fprintf(stderr, "warning: --teacache with a diffusion-forcing model: the SkyReels-V2 maintainers say DF "
                        "models are not compatible with TeaCache (SkyworkAI/SkyReels-V2#123); expect lower quality\n");
    return SKY_OK;
}

/* The VAE: its decoder (with --vae_weights: the run ends in an mp4) and, for runs that encode images or
 * frames, its encoder (its weights, and on the GPU its arena). Under --offload only checked here. */
static sky_status open_vae(sky_denoise *r, sky_err *err)
{
    const sky_gen_args *a = r->a;
    const int           needs_encoder = needs_vae_encoder(r);
    if (a->vae_weights) {
        if (!r->v->vae_decode) return sky_fail(err, "variant %s has no VAE; drop --vae_weights", r->v->name);
        r->has_vae = 1;
        const sky_vae_program *de = r->v->vae_decode, *en = r->v->vae_encode;
        const sky_backend      b = (sky_backend)a->backend;
        if (a->offload ? sky_weights_check(de->weights, de->n_weights, a->vae_weights, r->v->name, b, err) ||
                             (needs_encoder &&
                              sky_weights_check(en->weights, en->n_weights, a->vae_weights, r->v->name, b, err))
                       : sky_denoise_use_vae(r, 1, err) || (needs_encoder && sky_denoise_use_vae(r, 0, err)))
            return SKY_ERR;
    }
    if (needs_encoder && !r->has_vae)
        return sky_fail(err, "this run encodes images or video frames with the VAE: give the VAE weights (--model_id "
                             "with a VAE, or --vae_weights)");
    return SKY_OK;
}

/* The checkpoint at path checked lazily against a program's weights table (names, shapes, dtypes; nothing
 * converted), the message naming the model. */
static sky_status check_one(const sky_denoise *r, const sky_weight_desc *t, int n, const char *path, const char *model,
                            sky_err *err)
{
    sky_err e;
    if (!path || !sky_weights_check(t, n, path, r->v->name, (sky_backend)r->a->backend, &e)) return SKY_OK;
    return sky_fail(err, "the %s's checkpoint: %s", model, e.msg);
}

/* Every checkpoint the run will read, checked before any model runs (issue 15 item 5): a VAE given as the
 * transformer is found here, not after the text encoder ran. The tokenizer is opened before umT5 loads. */
static sky_status check_checkpoints(const sky_denoise *r, sky_err *err)
{
    const sky_gen_args     *a = r->a;
    const sky_variant_desc *v = r->v;
    const sky_dit_program  *p = v->dit;
    if (check_one(r, p->weights, p->n_weights, a->dit_weights, "transformer", err)) return SKY_ERR;
    if (v->vae_decode && check_one(r, v->vae_decode->weights, v->vae_decode->n_weights, a->vae_weights, "VAE", err))
        return SKY_ERR;
    if (v->vae_encode && needs_vae_encoder(r) &&
        check_one(r, v->vae_encode->weights, v->vae_encode->n_weights, a->vae_weights, "VAE encoder", err))
        return SKY_ERR;
    if (!a->prompt_embeds && v->text_encode &&
        check_one(r, v->text_encode->weights, v->text_encode->n_weights, a->text_weights, "text encoder (umT5)", err))
        return SKY_ERR;
    if (!a->prompt_embeds && p->y_channels && v->clip_encode &&
        check_one(r, v->clip_encode->weights, v->clip_encode->n_weights, a->clip_weights, "image encoder (CLIP)", err))
        return SKY_ERR;
    return SKY_OK;
}

/* The CUDA backend: the plan's device memory peak of this run (models/device_plan.h), printed, and checked
 * against GPU 0's free memory before any model loads (--use_usp: each rank's own plan against its own GPU, a->device;
 * with more than one rank per group the transformer as dit_forward while it opens, then as dit_forward_usp).
 * Where the VAE decoder at the frame's size would not fit and the variant has vae_decode_tile, the decode (and the
 * encode) is tiled (r->vae_tiled; said on stderr), as with --vae_tiling; with --offload_blocks auto also where the
 * rest then needs block offload (tiling costs less time than copying blocks).
 * --offload_blocks auto is then resolved into r->offload_blocks (the largest block count that fits, none when
 * everything does). */
static sky_status check_device_memory(sky_denoise *r, sky_err *err)
{
    const sky_gen_args     *a = r->a;
    const sky_variant_desc *v = r->v;
    r->offload_blocks = a->offload_blocks > 0 ? a->offload_blocks : 0;
    if (a->backend != SKY_BACKEND_CUDA) return SKY_OK;
    /* --use_usp: every rank plans its own GPU; the ranks among all of them (a CFG group's rank is its number within
     * the group, group g holding ranks g N .. g N + N - 1) */
    const sky_comm   *cm = a->comm;
    const int         groups = cm && cm->cfg_group >= 0 ? 2 : 1, group = cm && cm->cfg_group >= 0 ? cm->cfg_group : 0;
    sky_device_config c = {.offload = a->offload,
                           .offload_blocks = r->offload_blocks,
                           .teacache = a->teacache,
                           .text = !a->prompt_embeds && v->text_encode,
                           .clip = !a->prompt_embeds && v->dit->y_channels && v->clip_encode,
                           .vae_decode = a->vae_weights != NULL,
                           .vae_encode = a->vae_weights != NULL && needs_vae_encoder(r),
                           .vae_tiled = r->vae_tiled,
                           .weight_fp8 = a->weight_fp8,
                           /* as denoise.c opens the transformer (open_job_run) */
                           .usp = a->comm && a->comm->size > 1,
                           .ranks = cm ? groups * cm->size : 0,
                           .rank = cm ? group * cm->size + cm->rank : 0,
                           .device = cm ? a->device : 0};
    size_t            free_bytes, total;
    char              gpu[48]; /* the GPU checked, in the lines printed */
    sky_device_plan_gpu(&c, gpu, sizeof gpu);
    if (sky_cuda_device_memory(v->name, c.device, &free_bytes, &total, err)) return SKY_ERR;
    sky_device_plan plan;
    sky_device_plan_make(v, &c, &plan);
    const sky_vae_tiling tiling = {a->vae_tile_px, a->vae_tile_stride_px};
    const int            auto_blocks = a->offload_blocks < 0;
    if (sky_vae_tiled_program(v, &tiling) == v->vae_decode_tile &&
        (sky_device_plan_tile_vae(v, &c, free_bytes) ||
         (auto_blocks && c.vae_decode && !c.vae_tiled && v->vae_decode_tile && plan.peak > free_bytes))) {
        const size_t frame = plan.bytes[SKY_DEVICE_VAE_DECODE];
        char         fb[32], tb[32], have[32];
        r->vae_tiled = c.vae_tiled = 1;
        sky_device_plan_make(v, &c, &plan);
        if (!a->quiet && !a->progress_json)
            fprintf(stderr,
                    "device memory: the VAE decoder at the frame's size (%s) does not fit beside the rest (%s free on "
                    "%s): decoding in tiles of %d:%d pixels (vae_decode_tile, %s)%s, as --vae_tiling does\n",
                    sky_device_bytes_fmt(fb, sizeof fb, frame), sky_device_bytes_fmt(have, sizeof have, free_bytes),
                    gpu, a->vae_tile_px, a->vae_tile_stride_px,
                    sky_device_bytes_fmt(tb, sizeof tb, plan.bytes[SKY_DEVICE_VAE_DECODE]),
                    c.vae_encode && v->vae_encode_tile ? " and encoding too (vae_encode_tile)" : "");
    }
    if (auto_blocks) {
        c.offload_blocks = r->offload_blocks = sky_device_plan_fit_blocks(v, &c, free_bytes);
        sky_device_plan_make(v, &c, &plan);
    }
    if (!a->quiet && !a->progress_json) {
        char need[32], have[32], pin[32] = "";
        if (plan.host_pinned) snprintf(pin, sizeof pin, "%d of %d", r->offload_blocks, v->dit->cuda_blocks);
        fprintf(stderr, "device memory: %s (%zu bytes) planned at the peak (%s), %s free on %s",
                sky_device_bytes_fmt(need, sizeof need, plan.peak), plan.peak, plan.at_peak,
                sky_device_bytes_fmt(have, sizeof have, free_bytes), gpu);
        if (plan.host_pinned)
            fprintf(stderr, "; --offload_blocks: %s blocks on the GPU, all in %s (%zu bytes) of pinned host memory",
                    pin, sky_device_bytes_fmt(need, sizeof need, plan.host_pinned), plan.host_pinned);
        if (c.weight_fp8 && v->dit->cuda_blocks > 0)
            fprintf(stderr, "; --weight_dtype fp8: the blocks' linear weights in fp8 on the GPU, expanded to bf16 a block "
                            "at a time");
        fputc('\n', stderr);
    }
    return sky_device_plan_check(v, &c, free_bytes, total, err);
}

/* Everything that can fail on input, checked before the first model pass; the models the run keeps opened. */
static sky_status prepare(sky_denoise *r, sky_err *err)
{
    const sky_gen_args    *a = r->a;
    const sky_dit_program *p = r->v->dit;
    if (p->num_images == 2 && (!a->image || !a->end_image))
        return sky_fail(err,
                        "%s is a first-last-frame (FLF2V) variant: give the first frame (--image) and the last "
                        "(--end_image)",
                        r->v->name);
    if (a->end_image && p->num_images != 2 && !is_df(r->v))
        return sky_fail(err, "--end_image needs a diffusion-forcing or first-last-frame (FLF2V) variant; %s is %s",
                        r->v->name, sky_family_name(r->v->family));
    if (sky_denoise_phase(r, "load", err) || check_checkpoints(r, err) || check_cfg_parallel(r, err) ||
        check_device_memory(r, err) || open_loras(r, err))
        return SKY_ERR;
    if ((a->image && sky_denoise_check_image(a->image, a->height, a->width, err)) ||
        (a->end_image && sky_denoise_check_image(a->end_image, a->height, a->width, err)))
        return SKY_ERR;
    if (a->noise_file) {
        if (sky_noise_open_file(&r->noise, a->noise_file, err)) return SKY_ERR;
    } else
        sky_noise_seed(&r->noise, a->seed);
    sky_denoise_stage(r, SKY_STAGE_ENCODE, "encoding: %s%s",
                      a->prompt_embeds ? "reading --prompt_embeds" : "the prompts",
                      r->v->dit->y_channels > 0 && !a->prompt_embeds ? " and the image (CLIP)" : "");
    if (read_prompts(r, err)) return SKY_ERR;
    sky_denoise_stage(r, SKY_STAGE_LOAD, "%s",
                      a->offload ? "checking the transformer's weights (--offload)" : "loading the transformer");
    /* Under --offload the checkpoints are only checked here (opened for each use later). */
    if (a->offload
            ? sky_weights_check(p->weights, p->n_weights, a->dit_weights, r->v->name, (sky_backend)a->backend, err)
            : sky_denoise_open_dits(r, err))
        return SKY_ERR;
    if (sky_denoise_phase(r, "load", err)) return SKY_ERR;
    if (a->teacache && start_teacache(r, err)) return SKY_ERR;
    if (open_vae(r, err) || sky_denoise_phase(r, "load", err)) return SKY_ERR;
    if (a->output && r->has_vae)
        return sky_video_writer_open(&r->writer, a->output, a->width, a->height, a->fps, SKY_VIDEO_DEFAULT_CRF,
                                     a->args_json, err);
    return SKY_OK;
}

/* ---- after the last step --------------------------------------------------------------------- */

/* --output_latents: the kept tensors, and the frames kept as [T][3][H][W] stored [3, T, H, W] like the
 * decoder's output. */
static sky_status write_latents(sky_denoise *r, sky_err *err)
{
    const sky_gen_args *a = r->a;
    if (r->video_frames) {
        const size_t phw = (size_t)a->height * a->width;
        float       *chw = malloc((size_t)3 * r->video_frames * phw * sizeof(float));
        if (!chw) return sky_fail(err, "out of host memory");
        for (int t = 0; t < r->video_frames; t++)
            for (int c = 0; c < 3; c++)
                memcpy(chw + ((size_t)c * r->video_frames + t) * phw, r->video + ((size_t)t * 3 + c) * phw,
                       phw * sizeof(float));
        const int64_t    vs[4] = {3, r->video_frames, a->height, a->width};
        const sky_status st = sky_denoise_keep(r, "video", chw, 4, vs, err);
        free(chw);
        if (st) return SKY_ERR;
    }
    char hash[17];
    snprintf(hash, sizeof hash, "%016" PRIx64, r->latents_hash);
    const char *meta[] = {"made_by", "skyreels pipeline --output_latents", "variant",       r->v->name,
                          "args",    a->args_json ? a->args_json : "{}",   "latents_xxh64", hash,
                          NULL};
    return sky_safetensors_write(a->output_latents, r->keep, r->n_keep, meta, err);
}

/* Every draw of --noise used, then the outputs: the latents first, so that a failed mp4 finalise (disk full,
 * permission) does not lose them (the run fails, the latents stay, no mp4 is left: the writer unlinks its
 * temporary file); then the mp4, closed and renamed onto its name. A signal at any point up to the end
 * (a->interrupted) removes what was written: an interrupted run leaves nothing at its output paths. */
static sky_status finish(sky_denoise *r, sky_err *err)
{
    const sky_gen_args *a = r->a;
    int                 latents = 0, mp4 = 0;
    sky_status          st = SKY_ERR;
    if (sky_noise_check_used(&r->noise, err) || sky_denoise_phase(r, "finish", err)) return SKY_ERR;
    sky_denoise_stage(r, SKY_STAGE_WRITE, r->writer || a->output_latents ? "writing the outputs" : NULL);
    if (a->output_latents) {
        if (write_latents(r, err)) return SKY_ERR;
        latents = 1;
    }
    if (r->writer) {
        if (sky_denoise_phase(r, "mp4", err)) goto done;
        char hash[17];
        snprintf(hash, sizeof hash, "%016" PRIx64, r->latents_hash);
        sky_status closed = sky_video_writer_set_tag(r->writer, "latents_xxh64", hash, err);
        if (closed == SKY_OK)
            closed = sky_video_writer_close(r->writer, err);
        else
            sky_video_writer_abort(r->writer);
        r->writer = NULL;
        if (closed) {
            if (latents && !(a->interrupted && *a->interrupted)) {
                const size_t k = strlen(err->msg);
                snprintf(err->msg + k, sizeof err->msg - k, " (the latents were written to %s)", a->output_latents);
                latents = 0; /* kept */
            }
            goto done;
        }
        mp4 = 1;
    }
    st = sky_denoise_phase(r, "done", err);
done:
    if (st != SKY_OK && a->interrupted && *a->interrupted) {
        if (latents) unlink(a->output_latents);
        if (mp4) unlink(a->output);
    }
    return st;
}

/* The run's summary on stderr: the prompt part's reuse, TeaCache's skips, the time and the outputs. */
static void report(const sky_denoise *r, double seconds)
{
    const sky_gen_args *a = r->a;
    if (a->quiet) return;
    if (r->prompt_runs[0] + r->prompt_runs[1] > 0)
        fprintf(stderr,
                "prompt part of the transformer (text embedding, cross-attention keys and values): run by %lld "
                "forwards, reused by %lld\n",
                r->prompt_runs[0], r->prompt_runs[1]);
    if (r->tcp) {
        char line[256];
        sky_teacache_summary(r->tcp, line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
    fprintf(stderr, "done in %.1f s%s%s%s%s\n", seconds, a->output && r->has_vae ? ": " : "",
            a->output && r->has_vae ? a->output : "", a->output_latents ? "; latents: " : "",
            a->output_latents ? a->output_latents : "");
}

/* ---- entry ----------------------------------------------------------------------------- */

sky_status sky_pipeline_run(const sky_variant_desc *v, const sky_gen_args *a, sky_err *err)
{
    sky_denoise r = {.v = v, .a = a, .stage = SKY_STAGE_LOAD, .vae_tiled = a->vae_tiling};
    r.t0 = r.stage_t0 = sky_denoise_now();
    r.h = sky_latent_size(a->height, v->vae_stride_s);
    r.w = sky_latent_size(a->width, v->vae_stride_s);
    r.hw = (size_t)r.h * r.w;
    sky_status st = prepare(&r, err);
    if (st == SKY_OK) {
        const double t0 = sky_denoise_now();
        st = is_df(v) ? sky_pipeline_df(&r, err) : sky_pipeline_t2v_i2v(&r, err);
        if (st == SKY_OK) st = finish(&r, err);
        sky_denoise_close_dits(&r);
        if (st == SKY_OK) {
            report(&r, sky_denoise_now() - t0);
            sky_denoise_stats_end(&r);
            r.stats.latents_xxh64 = r.latents_hash;
            if (a->stats) *a->stats = r.stats;
        }
    }
    sky_denoise_free(&r);
    return st;
}
