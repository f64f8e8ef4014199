/* runtime/cli/checkpoints.h — where a run's checkpoints are (internal to runtime/cli/): each flag first, then
 * the original repository's layout under --model_id (transformer files at the top, Wan2.1_VAE.pth,
 * models_t5_umt5-xxl-enc-bf16.pth, google/umt5-xxl, models_clip_...pth), then the diffusers layout
 * (transformer/, vae/, text_encoder/, tokenizer/, image_encoder/).
 */
#ifndef SKY_CLI_CHECKPOINTS_H
#define SKY_CLI_CHECKPOINTS_H

#include "cli/args.h"
#include "pipeline/pipeline.h"

enum { SKY_CLI_PATH_MAX = 4096 };

/* The paths found under --model_id (what sky_gen_args points to). */
typedef struct sky_cli_paths {
    char model_dir[SKY_CLI_PATH_MAX];
    char dit[SKY_CLI_PATH_MAX], vae[SKY_CLI_PATH_MAX], t5[SKY_CLI_PATH_MAX], tokenizer[SKY_CLI_PATH_MAX];
    char clip[SKY_CLI_PATH_MAX];
} sky_cli_paths;

/* Set a's dit_weights, vae_weights, text_weights, tokenizer and clip_weights (pointing into *paths or argv)
 * from the flags f and --model_id: a directory, or a Hugging Face repo id Org/Name found in the local cache
 * ($HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub: models--Org--Name/snapshots/<rev>, rev the
 * one refs/main names, else the only one; which is printed unless -q; nothing is downloaded). Without
 * --dit_weights, the directory's config.json (original) or transformer/config.json (diffusers) must describe
 * this binary's transformer (width, layers, input channels, model_type), else a usage error names both. a->output_latents and a->prompt_embeds are set: without a VAE the run must
 * stop at the latents, without a text encoder it needs the embeddings. Returns SKY_CLI_GO_ON, or the exit code
 * of the usage error it printed: --model_id neither a directory nor cached, another model's config, no transformer, no VAE, no text encoder. */
int sky_cli_checkpoints_find(const char *argv0, const sky_cli_flags *f, sky_gen_args *a, sky_cli_paths *paths);

/* 1 when path exists (stat), or is a directory. */
int sky_cli_path_exists(const char *path);
int sky_cli_path_is_dir(const char *path);

#endif /* SKY_CLI_CHECKPOINTS_H */
