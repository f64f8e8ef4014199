/* runtime/cli/checkpoints.c — a run's checkpoints under --model_id or from the flags (checkpoints.h). */
#include "cli/checkpoints.h"

#include <stdio.h>
#include <sys/stat.h>

int sky_cli_path_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

int sky_cli_path_is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* dir/name into buf (SKY_CLI_PATH_MAX bytes); 0 when it does not fit (then nothing is looked for there). */
static int join(char *buf, const char *dir, const char *name)
{
    return snprintf(buf, SKY_CLI_PATH_MAX, "%s/%s", dir, name) < SKY_CLI_PATH_MAX;
}

/* The transformer: --dit_weights, else <model_id>/transformer (diffusers), else <model_id> itself. */
static int find_dit(const char *argv0, const sky_cli_flags *f, sky_gen_args *a, sky_cli_paths *paths)
{
    a->dit_weights = sky_cli_flag(f, "--dit_weights");
    if (a->dit_weights) return SKY_CLI_GO_ON;
    if (!paths->model_dir[0]) return sky_cli_usage(argv0, "give --model_id DIR (or --dit_weights)");
    const int fits = join(paths->dit, paths->model_dir, "transformer");
    a->dit_weights = fits && sky_cli_path_is_dir(paths->dit) ? paths->dit : paths->model_dir;
    return SKY_CLI_GO_ON;
}

/* The VAE: --vae_weights, else <model_id>/vae, else <model_id>/Wan2.1_VAE.pth; none is an error unless the run
 * stops at the latents (--output_latents). */
static int find_vae(const char *argv0, const sky_cli_flags *f, sky_gen_args *a, sky_cli_paths *paths)
{
    const char *dir = paths->model_dir;
    a->vae_weights = sky_cli_flag(f, "--vae_weights");
    if (!a->vae_weights && dir[0] && sky_variant.vae_decode) {
        if (join(paths->vae, dir, "vae") && sky_cli_path_is_dir(paths->vae))
            a->vae_weights = paths->vae;
        else if (join(paths->vae, dir, "Wan2.1_VAE.pth") && sky_cli_path_exists(paths->vae))
            a->vae_weights = paths->vae;
    }
    if (!a->vae_weights && !a->output_latents)
        return sky_cli_usage(argv0,
                             "no VAE found (looked for %s/vae and %s/Wan2.1_VAE.pth): give --vae_weights, or "
                             "--output_latents to stop before the VAE",
                             dir[0] ? dir : "<model_id>", dir[0] ? dir : "<model_id>");
    return SKY_CLI_GO_ON;
}

/* The encoders' files: flags first, then the original layout, then the diffusers layout; without the text
 * encoder the run needs --prompt_embeds. */
static int find_encoders(const char *argv0, const sky_cli_flags *f, sky_gen_args *a, sky_cli_paths *paths)
{
    struct {
        const char  *flag;
        const char **dst;
        char        *buf;
        const char  *orig, *diff;
    } enc[] = {
        {"--t5_weights", &a->text_weights, paths->t5, "models_t5_umt5-xxl-enc-bf16.pth", "text_encoder"},
        {"--tokenizer", &a->tokenizer, paths->tokenizer, "google/umt5-xxl", "tokenizer"},
        {"--clip_weights", &a->clip_weights, paths->clip, "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth",
         "image_encoder"},
    };
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        *enc[i].dst = sky_cli_flag(f, enc[i].flag);
        if (*enc[i].dst || !paths->model_dir[0]) continue;
        if (join(enc[i].buf, paths->model_dir, enc[i].orig) && sky_cli_path_exists(enc[i].buf))
            *enc[i].dst = enc[i].buf;
        else if (join(enc[i].buf, paths->model_dir, enc[i].diff) && sky_cli_path_exists(enc[i].buf))
            *enc[i].dst = enc[i].buf;
    }
    if (!a->prompt_embeds && (!a->text_weights || !a->tokenizer || !sky_variant.text_encode))
        return sky_cli_usage(argv0,
                             "no text encoder found (the umT5 weights and tokenizer under --model_id, or --t5_weights "
                             "and --tokenizer); --prompt_embeds FILE gives the embeddings instead (context and "
                             "context_null [%d, %d]%s)",
                             sky_variant.dit->text_len, sky_variant.dit->text_dim,
                             sky_variant.dit->y_channels > 0 ? " and clip_fea" : "");
    return SKY_CLI_GO_ON;
}

int sky_cli_checkpoints_find(const char *argv0, const sky_cli_flags *f, sky_gen_args *a, sky_cli_paths *paths)
{
    const char *model_id = sky_cli_flag(f, "--model_id");
    paths->model_dir[0] = 0;
    if (model_id) {
        if (!sky_cli_path_is_dir(model_id))
            return sky_cli_usage(argv0,
                                 "--model_id %s: no such directory (download the checkpoint, e.g. huggingface-cli "
                                 "download <repo> --local-dir DIR, and pass DIR)",
                                 model_id);
        snprintf(paths->model_dir, sizeof paths->model_dir, "%s", model_id);
    }
    int rc = find_dit(argv0, f, a, paths);
    if (rc == SKY_CLI_GO_ON) rc = find_vae(argv0, f, a, paths);
    if (rc == SKY_CLI_GO_ON) rc = find_encoders(argv0, f, a, paths);
    return rc;
}
