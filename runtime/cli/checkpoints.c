/* runtime/cli/checkpoints.c — a run's checkpoints under --model_id or from the flags (checkpoints.h): a
 * directory, or a Hugging Face repo id looked up in the local Hugging Face cache; a directory whose config is
 * another model's is refused. */
#include "cli/checkpoints.h"

#include <dirent.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/fs.h"
#include "core/json.h"
#include "models/program.h"

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

/* A path into buf (SKY_CLI_PATH_MAX bytes) from fmt; 0 when it does not fit. */
static int SKY_PRINTF(2, 3) pathf(char *buf, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    const int n = vsnprintf(buf, SKY_CLI_PATH_MAX, fmt, ap);
    va_end(ap);
    return n >= 0 && n < SKY_CLI_PATH_MAX;
}

/* "Org/Name" (one '/', neither part empty nor a dot path): a Hugging Face repo id. */
static int is_repo_id(const char *s)
{
    const char *slash = strchr(s, '/');
    return slash && slash != s && slash[1] && !strchr(slash + 1, '/') && s[0] != '.' && s[0] != '~';
}

/* The Hugging Face hub cache: $HF_HUB_CACHE, else $HF_HOME/hub, else ~/.cache/huggingface/hub (huggingface_hub's
 * order). */
static void hub_dir(char *buf)
{
    const char *v = getenv("HF_HUB_CACHE");
    if (v && *v)
        snprintf(buf, SKY_CLI_PATH_MAX, "%s", v);
    else if ((v = getenv("HF_HOME")) && *v)
        snprintf(buf, SKY_CLI_PATH_MAX, "%s/hub", v);
    else
        snprintf(buf, SKY_CLI_PATH_MAX, "%s/.cache/huggingface/hub", getenv("HOME") ? getenv("HOME") : "");
}

/* The revision refs/main names (its first line), into rev (64 bytes); 0 when there is none. */
static int read_ref(const char *repo, char *rev)
{
    char  path[SKY_CLI_PATH_MAX];
    FILE *fp = pathf(path, "%s/refs/main", repo) ? fopen(path, "r") : NULL;
    if (!fp) return 0;
    const int ok = fscanf(fp, "%63s", rev) == 1;
    fclose(fp);
    return ok;
}

/* The name of the one directory in dir (not starting with '.') into name (64 bytes); 0 when none or several. */
static int only_subdir(const char *dir, char *name)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    int            n = 0;
    struct dirent *de;
    char           path[SKY_CLI_PATH_MAX];
    while ((de = readdir(d)) != NULL) {
        if (de->d_name[0] == '.' || strlen(de->d_name) >= 64) continue;
        if (!pathf(path, "%s/%s", dir, de->d_name) || !sky_cli_path_is_dir(path)) continue;
        if (n++ == 0) snprintf(name, 64, "%s", de->d_name);
    }
    closedir(d);
    return n == 1;
}

/* An integer member of a config (0 when absent or not an integer). */
static long cfg_int(const sky_json *o, const char *key)
{
    const sky_json *v = sky_json_get(o, key);
    return v && v->type == SKY_JSON_NUMBER && v->is_u64 ? (long)v->u64 : 0;
}

/* The released size a transformer width names ("14B ", "1.3B ", or "" for another). */
static const char *size_name(long dim) { return dim == 5120 ? "14B " : dim == 1536 ? "1.3B " : ""; }

/* The transformer's config under dir: the original's config.json (dim, num_layers, in_dim, model_type) or the
 * diffusers' transformer/config.json (num_attention_heads x attention_head_dim, num_layers, in_channels),
 * compared with this binary's; a config of another model is refused naming both. No config: nothing checked. */
static int check_config(const char *argv0, const char *model_id, const char *dir)
{
    char      path[SKY_CLI_PATH_MAX], *text = NULL;
    size_t    len;
    sky_err   e;
    const int diffusers = join(path, dir, "transformer/config.json") && sky_cli_path_exists(path);
    if (!diffusers && !(join(path, dir, "config.json") && sky_cli_path_exists(path))) return SKY_CLI_GO_ON;
    sky_json_doc *doc = NULL;
    if (sky_fs_read_small(path, 1 << 20, "a config.json", &text, &len, &e) ||
        sky_json_parse(&doc, text, len, NULL, &e)) {
        free(text);
        return sky_cli_usage(argv0, "--model_id %s: %s", model_id, e.msg);
    }
    const sky_json *o = sky_json_root(doc);
    const long      dim =
        diffusers ? cfg_int(o, "num_attention_heads") * cfg_int(o, "attention_head_dim") : cfg_int(o, "dim");
    const long             layers = cfg_int(o, "num_layers"), in_dim = cfg_int(o, diffusers ? "in_channels" : "in_dim");
    const sky_json        *mt = sky_json_get(o, "model_type");
    const int              i2v_type = mt && mt->type == SKY_JSON_STRING && strcmp(mt->str, "i2v") == 0;
    const sky_dit_program *d = sky_variant.dit;
    const int              want_in = d->x_channels + d->y_channels;
    const int bad = (dim && dim != d->dim) || (layers && layers != d->num_layers) || (in_dim && in_dim != want_in) ||
                    (mt && i2v_type != (d->y_channels > 0));
    sky_json_free(doc);
    free(text);
    if (!bad) return SKY_CLI_GO_ON;
    return sky_cli_usage(argv0,
                         "--model_id %s: %s is another model's (dim %ld, %ld layers, in_dim %ld: %s%s); this binary "
                         "is %s (dim %d, %d layers, in_dim %d: %s); use the binary of that checkpoint's variant, or "
                         "the checkpoint of this one",
                         model_id, path, dim, layers, in_dim, size_name(dim),
                         in_dim == 36 || i2v_type ? "I2V checkpoint" : "T2V or DF checkpoint", sky_variant.name, d->dim,
                         d->num_layers, want_in, d->y_channels > 0 ? "I2V" : sky_family_name(sky_variant.family));
}

/* Repo id id in the hub cache: models--Org--Name/snapshots/<rev>, rev the one refs/main names, else the only
 * snapshot there is. Into dir; SKY_CLI_GO_ON or the usage error (not cached, several snapshots and no ref). */
static int resolve_repo_id(const char *argv0, const char *id, const sky_cli_flags *f, char *dir)
{
    char hub[SKY_CLI_PATH_MAX], repo[SKY_CLI_PATH_MAX], rev[64] = "";
    hub_dir(hub);
    const char *slash = strchr(id, '/');
    if (!pathf(repo, "%s/models--%.*s--%s", hub, (int)(slash - id), id, slash + 1))
        return sky_cli_usage(argv0, "--model_id %s: the path in the Hugging Face cache is too long", id);
    if (!read_ref(repo, rev)) {
        char snaps[SKY_CLI_PATH_MAX];
        if (!pathf(snaps, "%s/snapshots", repo) || !only_subdir(snaps, rev))
            return sky_cli_usage(argv0,
                                 "--model_id %s: not a directory, and not in the Hugging Face cache (%s: no refs/main "
                                 "and not exactly one snapshot); nothing is downloaded: run huggingface-cli download "
                                 "%s (the cache: $HF_HUB_CACHE, $HF_HOME/hub or ~/.cache/huggingface/hub), or pass a "
                                 "directory",
                                 id, repo, id);
    }
    if (!pathf(dir, "%s/snapshots/%s", repo, rev) || !sky_cli_path_is_dir(dir))
        return sky_cli_usage(argv0,
                             "--model_id %s: refs/main names snapshot %s, not in %s/snapshots (an interrupted "
                             "download?): run huggingface-cli download %s",
                             id, rev, repo, id);
    if (!sky_cli_quiet(f)) fprintf(stderr, "--model_id %s: the Hugging Face cache's snapshot %s (%s)\n", id, rev, dir);
    return SKY_CLI_GO_ON;
}

int sky_cli_checkpoints_find(const char *argv0, const sky_cli_flags *f, sky_gen_args *a, sky_cli_paths *paths)
{
    const char *model_id = sky_cli_flag(f, "--model_id");
    paths->model_dir[0] = 0;
    if (model_id && !sky_cli_path_is_dir(model_id) && is_repo_id(model_id)) {
        const int rc = resolve_repo_id(argv0, model_id, f, paths->model_dir);
        if (rc != SKY_CLI_GO_ON) return rc;
    } else if (model_id) {
        if (!sky_cli_path_is_dir(model_id))
            return sky_cli_usage(argv0,
                                 "--model_id %s: no such directory (download the checkpoint, e.g. huggingface-cli "
                                 "download <repo> --local-dir DIR, and pass DIR)",
                                 model_id);
        snprintf(paths->model_dir, sizeof paths->model_dir, "%s", model_id);
    }
    if (paths->model_dir[0] && !sky_cli_flag(f, "--dit_weights")) {
        const int rc = check_config(argv0, model_id, paths->model_dir);
        if (rc != SKY_CLI_GO_ON) return rc;
    }
    int rc = find_dit(argv0, f, a, paths);
    if (rc == SKY_CLI_GO_ON) rc = find_vae(argv0, f, a, paths);
    if (rc == SKY_CLI_GO_ON) rc = find_encoders(argv0, f, a, paths);
    return rc;
}
