/* runtime/models/dit.h — run the generated dit_forward program on a file of inputs.
 *
 * Inputs are named as in shared/reference/dit-and-sampling.md §2 (batch first):
 *   x         [B, x_channels, F, H, W]  noisy latent (any float dtype)
 *   t         [B] (one timestep per sample) or [B, F] (per frame, diffusion forcing); int or float
 *   context   [B, text_len, text_dim]   text encoder output
 *   y         [B, y_channels, F, H, W]  I2V only: mask + conditioning latent
 *   clip_fea  [B, image_len, image_dim] I2V only: CLIP features
 *   fps       [B] integer 0 or 1        inject_sample_info variants only (0 means 16 fps)
 * F may be any count from 1 to the spec's window; H x W is the spec's latent size or its
 * transpose (portrait). Output: v [B, out_dim, F, H, W] F32, the velocity prediction.
 * A tensor named v in the inputs file (an expected output kept beside the inputs, as the test
 * fixtures do) is ignored; any other name that is not an input of the variant is an error.
 * Every input is checked (presence, rank, each dim, dtype, value ranges) before any work.
 */
#ifndef SKY_DIT_H
#define SKY_DIT_H

#include "models/program.h"
#include "core/status.h"
#include "models/lora.h"
#include "models/teacache.h"

/* Where dit_forward runs: the CPU reference, or the CUDA plugin beside the binary (plugin_abi.h). */
typedef enum sky_backend { SKY_BACKEND_CPU = 0, SKY_BACKEND_CUDA = 1 } sky_backend;

/* "cpu" or "cuda" into *b; SKY_ERR (naming the flag) for anything else. */
sky_status sky_backend_parse(const char *s, sky_backend *b, sky_err *err);

/* The backend of a run that gives no --backend: $SKY_BACKEND (cpu or cuda) when set; else cuda where the
 * variant `who` has a CUDA target (has_cuda), the driver reports a device and the variant's plugin loads;
 * else cpu. *note: one line on the choice for the log ("" when there is nothing to say: a cpu-only
 * variant, or $SKY_BACKEND); *warn: 1 when a GPU is present but unusable here (the note says why). SKY_ERR
 * for a bad $SKY_BACKEND, or SKY_BACKEND=cuda for a cpu-only variant. */
sky_status sky_backend_default(const char *who, int has_cuda, sky_backend *b, char *note, size_t n, int *warn,
                               sky_err *err);

typedef struct sky_dit_run_opts {
    const char *weights; /* checkpoint: file, sharded index or directory */
    const char *inputs;  /* .safetensors with the tensors above */
    const char *output;  /* .safetensors to write (v) */
    int         quiet;   /* 1: no progress lines on stderr */
    sky_backend backend;
    /* TeaCache over the samples as one sequence of calls (teacache.h): threshold (0: off), the
     * original's num_steps, e0 as the probe; the output gains teacache_computed [B] I64. */
    double teacache;
    int    teacache_steps, use_ret_steps;
    /* LoRAs merged into the weights as they load (lora.h); keys matching no weight skipped when
     * lora_skip_unknown, else refused. */
    const sky_lora_spec *loras;
    int                  n_loras, lora_skip_unknown;
} sky_dit_run_opts;

/* A bound dit_forward program: weights as fp32 and the CPU arena, or the CUDA plugin's state. */
typedef struct sky_dit sky_dit;

/* Bind program p to the checkpoint at `weights` (file, index or directory; original or diffusers
 * names) with the deltas of `lora` (NULL: none; opened by sky_lora_open for p's weights table and open
 * until sky_dit_open returns) merged in as each tensor is converted to fp32, on backend b (for
 * SKY_BACKEND_CUDA on GPU `device`, 0 .. sky_cuda_devices_visible - 1); `who` names the variant in
 * messages (and the plugin to load for SKY_BACKEND_CUDA); unless quiet, a line about the weights (and the
 * device) on stderr. Two transformers may run their forwards at once, each from its own thread
 * (--use_cfg_parallel); one is used by one thread at a time. */
sky_status sky_dit_open(sky_dit **out, const sky_dit_program *p, const char *weights, const sky_lora *lora,
                        const char *who, int quiet, sky_backend b, int device, sky_err *err);

/* The CUDA devices the plugin of variant `who` sees (0 without a driver); SKY_ERR when the plugin does
 * not load. */
sky_status sky_cuda_devices_visible(const char *who, int *n, sky_err *err);
void       sky_dit_close(sky_dit *d);

/* Check what sky_dit_open or sky_vae_open would bind (the checkpoint at `weights` against a program's
 * weights table of n entries; the CUDA plugin for SKY_BACKEND_CUDA) without reading or converting any
 * weight: for --offload, which opens later. */
sky_status sky_weights_check(const sky_weight_desc *table, int n, const char *weights, const char *who, sky_backend b,
                             sky_err *err);

/* One forward pass of one sample (shapes as above without the batch): x [x_channels, F, H, W],
 * y and clip_fea for I2V (else ignored), t [Ft] with Ft 1 or F, context [text_len, text_dim],
 * fps the embedding index (inject_sample_info only); v [out_dim, F, H, W]. Inputs were checked by
 * the caller (asserts only). skip: NULL, or TeaCache's decision (teacache.h: the call may skip the
 * blocks; after sky_dit_teacache_open), usually { use_ret_steps, sky_teacache_decide, &state }. The prompt part (text and image embeddings, the cross-attention keys and
 * values) runs only when no prompt arena holds this context and clip_fea (runtime/models/prompt_cache.h). */
void sky_dit_forward(sky_dit *d, int F, int H, int W, const float *x, const float *y, const double *t, int Ft,
                     const float *context, const float *clip_fea, int64_t fps, float *v, const sky_dit_skip *skip);

/* Forwards so far that ran the prompt part (a prompt no prompt arena held: runtime/models/prompt_cache.h) and
 * forwards that reused a prompt arena. */
void sky_dit_prompt_counts(const sky_dit *d, long long *computed, long long *reused);

/* Allocate what TeaCache keeps (two residuals and a copy of the tokens at the largest window): once,
 * before the first forward with a tc. */
sky_status sky_dit_teacache_open(sky_dit *d, sky_err *err);

/* Run dit_forward of variant v on o->backend, one sample at a time. */
sky_status sky_dit_run(const sky_variant_desc *v, const sky_dit_run_opts *o, sky_err *err);

/* Write random weights for the tensors of n_tables weights tables (e.g. a variant's vae_decode
 * and vae_encode tables, which share one checkpoint) in the given layout ("original" or
 * "diffusers"), F32 (or BF16 when bf16 != 0): matrices and kernels ~ N(0, 1/fan_in), norm
 * weights near 1, the rest N(0, 0.05). For demos and tests: a model with these weights makes noise. */
sky_status sky_write_random_weights(const sky_weight_desc *const *tables, const int *counts, int n_tables,
                                    const char *path, const char *layout, int bf16, uint64_t seed, const char *variant,
                                    sky_err *err);

/* Write random inputs for v: B samples of F latent frames, per-frame timesteps when
 * per_frame != 0; `prompts` distinct contexts (and CLIP features), sample b having those of b % prompts
 * (prompts = batch: each its own; 2: cond and uncond alternating, as a guided run calls the transformer). */
sky_status sky_dit_write_random_inputs(const sky_variant_desc *v, const char *path, int batch, int frames,
                                       int per_frame, int prompts, uint64_t seed, sky_err *err);

/* Write random prompt embeddings for --prompt_embeds: context and context_null [text_len,
 * text_dim] (and clip_fea for I2V), standard normal. For the demo: not a real prompt. */
sky_status sky_dit_write_random_embeds(const sky_variant_desc *v, const char *path, uint64_t seed, sky_err *err);

#endif /* SKY_DIT_H */
