/* runtime/cli/summary.c — the run summary of --json FILE (summary.h). */
#include "cli/summary.h"

#include <errno.h>
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "core/json.h"
#include "core/fs.h"
#include "models/program.h"

#ifndef SKY_ENGINE_VERSION
#define SKY_ENGINE_VERSION "unknown"
#endif

enum { HEAD_BYTES = 64 * 1024, MAX_ST_HEADER = 100 * 1024 * 1024 };

static int ends_with(const char *s, const char *suffix)
{
    const size_t a = strlen(s), b = strlen(suffix);
    return a >= b && strcmp(s + a - b, suffix) == 0;
}

/* The xxh64 (seed 0) of a file's header: a .safetensors file's 8-byte length and JSON header, another file's
 * first 64 KiB; 0 and *ok = 0 when it cannot be read. */
static uint64_t header_xxh64(const char *path, int *ok)
{
    *ok = 0;
    FILE *fp = fopen(path, "rb");
    if (!fp) return 0;
    size_t        want = HEAD_BYTES;
    unsigned char len8[8];
    if (ends_with(path, ".safetensors") && fread(len8, 1, 8, fp) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--) n = n << 8 | len8[i];
        if (n <= MAX_ST_HEADER) want = 8 + (size_t)n;
    }
    rewind(fp);
    unsigned char *buf = malloc(want);
    const size_t   got = buf ? fread(buf, 1, want, fp) : 0;
    fclose(fp);
    const uint64_t h = XXH64(buf, got, 0);
    free(buf);
    *ok = buf != NULL;
    return h;
}

/* {"file": path, "header_xxh64": "..."} onto out. */
static void file_entry(FILE *out, const char *path)
{
    int            ok;
    const uint64_t h = header_xxh64(path, &ok);
    fputs("{\"file\": ", out);
    sky_json_write_str(out, path);
    if (ok)
        fprintf(out, ", \"header_xxh64\": \"%016llx\"}", (unsigned long long)h);
    else
        fputs(", \"header_xxh64\": null}", out);
}

/* One checkpoint: its role, path and files (a directory: its .safetensors, .pth, .json and .model files). */
static void checkpoint(FILE *out, int *first, const char *role, const char *path)
{
    if (!path) return;
    fprintf(out, "%s{\"role\": \"%s\", \"path\": ", *first ? "" : ", ", role);
    sky_json_write_str(out, path);
    fputs(", \"files\": [", out);
    *first = 0;
    struct stat st;
    if (stat(path, &st) == 0 && S_ISDIR(st.st_mode)) {
        static const char *const kinds[] = {".safetensors", ".pth", ".json", ".model"};
        int                      k = 0;
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
            char  **names = NULL;
            int     n = 0;
            sky_err e;
            (void)sky_fs_list_dir(path, kinds[i], &names, &n, &e);
            for (int j = 0; j < n; j++) {
                char *full = sky_fs_join(path, names[j]);
                if (!full) continue;
                fputs(k++ ? ", " : "", out);
                file_entry(out, full);
                free(full);
            }
            sky_fs_free_names(names, n);
        }
    } else
        file_entry(out, path);
    fputs("]}", out);
}

/* The CPU's model name (/proc/cpuinfo) into buf. */
static void cpu_name(char *buf, size_t n)
{
    snprintf(buf, n, "cpu");
    FILE *fp = fopen("/proc/cpuinfo", "r");
    if (!fp) return;
    char line[512];
    while (fgets(line, sizeof line, fp)) {
        char *colon = strchr(line, ':');
        if (strncmp(line, "model name", 10) != 0 || !colon) continue;
        colon += 1 + (colon[1] == ' ');
        colon[strcspn(colon, "\n")] = 0;
        snprintf(buf, n, "%s", colon);
        break;
    }
    fclose(fp);
}

static void write_body(FILE *out, const sky_cli_summary *s)
{
    const sky_gen_args  *a = s->a;
    const sky_run_stats *st = s->stats;
    char                 device[256];
    if (a->backend == 0)
        cpu_name(device, sizeof device);
    else /* the GPU's name as the driver gives it (pipeline.h), "cuda" when it could not tell */
        snprintf(device, sizeof device, "%s", st->device[0] ? st->device : "cuda");
    fprintf(out,
            "{\"engine_version\": \"%s\", \"variant\": \"%s\", \"spec_xxh64\": \"%s\", \"generator_xxh64\": \"%s\"",
            SKY_ENGINE_VERSION, sky_variant.name, sky_variant.spec_xxh64, sky_variant.generator_xxh64);
    fprintf(out, ", \"backend\": \"%s\", \"device\": ", a->backend == 0 ? "cpu" : "cuda");
    sky_json_write_str(out, device);
    fputs(", \"driver\": ", out);
    sky_json_write_str(out, a->backend != 0 && st->driver[0] ? st->driver : NULL);
    fputs(", \"outputs\": {\"mp4\": ", out);
    sky_json_write_str(out, a->output);
    fputs(", \"latents\": ", out);
    sky_json_write_str(out, a->output_latents);
    fprintf(out, "}, \"args\": %s, \"resolution\": \"%dx%d\", \"num_frames\": %d, \"seed\": %llu, \"windows\": %d",
            s->args_json ? s->args_json : "{}", a->width, a->height, a->num_frames, (unsigned long long)a->seed,
            s->stats->windows);
    fputs(", \"checkpoints\": [", out);
    int first = 1;
    checkpoint(out, &first, "transformer", a->dit_weights);
    checkpoint(out, &first, "vae", a->vae_weights);
    checkpoint(out, &first, "text_encoder", a->text_weights);
    checkpoint(out, &first, "tokenizer", a->tokenizer);
    checkpoint(out, &first, "image_encoder", a->clip_weights);
    checkpoint(out, &first, "prompt_embeds", a->prompt_embeds);
    fputs("], \"loras\": [", out);
    for (int i = 0; i < a->n_loras; i++) {
        fputs(i ? ", " : "", out);
        fprintf(out, "{\"scale\": %.15g, \"file\": ", a->loras[i].scale);
        file_entry(out, a->loras[i].path);
        fputc('}', out);
    }
    fputs("], \"seconds\": {", out);
    for (int i = 0; i < SKY_STAGE_N; i++)
        fprintf(out, "%s\"%s\": %.3f", i ? ", " : "", sky_stage_name((sky_stage)i), st->seconds[i]);
    const double den = st->seconds[SKY_STAGE_DENOISE];
    fprintf(out, "}, \"total_seconds\": %.3f, \"evaluations\": %lld, \"steps_per_s\": %.4f, \"peak_rss_mib\": %.1f, ",
            st->total, st->evaluations, den > 0 ? (double)st->evaluations / den : 0.0, st->peak_rss_kib / 1024.0);
    if (st->peak_device_bytes >= 0)
        fprintf(out, "\"peak_device_bytes\": %.0f, ", st->peak_device_bytes);
    else
        fputs("\"peak_device_bytes\": null, ", out);
    fprintf(out, "\"latents_xxh64\": \"%016" PRIx64 "\"}\n", st->latents_xxh64);
}

int sky_cli_summary_write(const char *path, const sky_cli_summary *s, char *why, size_t n)
{
    const size_t len = strlen(path) + 32;
    char        *tmp = malloc(len);
    if (!tmp) {
        snprintf(why, n, "out of host memory");
        return -1;
    }
    snprintf(tmp, len, "%s.tmp.%ld", path, (long)getpid());
    FILE *out = fopen(tmp, "w");
    if (!out) {
        snprintf(why, n, "%s: %s", tmp, strerror(errno));
        free(tmp);
        return -1;
    }
    write_body(out, s);
    const int bad = ferror(out) | (fclose(out) != 0);
    if (bad || rename(tmp, path) != 0) {
        snprintf(why, n, "%s: %s", bad ? tmp : path, strerror(errno));
        remove(tmp);
        free(tmp);
        return -1;
    }
    free(tmp);
    return 0;
}
