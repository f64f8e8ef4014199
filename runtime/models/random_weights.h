/* runtime/models/random_weights.h — random weights, inputs and prompt embeddings, for demos and tests.
 *
 * A model with these weights makes noise: they exist so that the whole engine runs end to end (the
 * demo of ./build.sh, the CLI and emulator tests) without a downloaded checkpoint. Every value comes
 * from the seed (splitmix64 + Box-Muller), so a seed gives the same file on every machine.
 */
#ifndef SKY_RANDOM_WEIGHTS_H
#define SKY_RANDOM_WEIGHTS_H

#include <stdint.h>

#include "core/status.h"
#include "formats/weights.h"
#include "models/program.h"

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

#endif /* SKY_RANDOM_WEIGHTS_H */
