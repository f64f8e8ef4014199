/* tests/fuzz/fuzz_resume.c — libFuzzer target for the window files of --resume_dir (pipeline/resume.h:
 * sky_resume_seed, sky_resume_count and sky_resume_load on a folder, as a resumed DF run reads it).
 *
 * Input: window_0000.safetensors and window_0001.safetensors separated by "\n--window--\n", each in
 * fuzz_common.h's safetensors form (the second not written when absent or empty). The run's key is KEY and
 * window latents are F32 [4, 1, 2, 2] (what tests/fuzz/make_corpus.sh saves). Checked on top of ASan/UBSan:
 *   - every error starts with the folder's path; a seed taken from window 0 is its metadata "seed" when that is
 *     a plain decimal number (no sign, no spaces), and nothing otherwise;
 *   - count is at most the number of window files written, and each window it counts loads (or fails with
 *     a message), its draw index in [0, 2^31).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/safetensors.h"
#include "fuzz_common.h"
#include "pipeline/resume.h"

#define SEP "\n--window--\n"
#define KEY "{\"prompt\": \"a cat\", \"seed\": 7, \"num_frames\": 9}; backend cpu; dit /w/dit.safetensors"

/* A seed taken from window 0 is its metadata "seed" written as a plain decimal number. */
static void check_seed(const char *dir, uint64_t seed)
{
    char             path[512];
    sky_safetensors *f = NULL;
    sky_err          err;
    snprintf(path, sizeof path, "%s/window_0000.safetensors", dir);
    if (sky_safetensors_open(&f, path, &err) != SKY_OK) abort();
    const char *s = sky_safetensors_metadata(f, "seed");
    int         digits = s && *s;
    for (const char *p = s; digits && *p; p++) digits = *p >= '0' && *p <= '9';
    if (!digits || strtoull(s, NULL, 10) != seed) {
        fprintf(stderr, "sky_resume_seed took %llu from the seed \"%s\"\n", (unsigned long long)seed, s ? s : "(none)");
        abort();
    }
    sky_safetensors_close(f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_part     parts[2];
    const char *dir = fz_dir();
    char        path[512];
    int         np = fz_split(data, size, SEP, sizeof SEP - 1, parts, 2), files = 0;
    for (int k = 0; k < np; k++) {
        if (k > 0 && parts[k].n == 0) continue;
        char name[64];
        snprintf(name, sizeof name, "window_%04d.safetensors", k);
        fz_write_safetensors(path, sizeof path, name, parts[k].p, parts[k].n);
        files++;
    }
    uint64_t seed = 0;
    if (sky_resume_seed(dir, &seed)) check_seed(dir, seed);

    int     count = -1;
    sky_err err = {{0}};
    if (sky_resume_count(dir, KEY, 3, &count, &err) != SKY_OK) {
        fz_check_err(&err, dir, "sky_resume_count");
        return 0;
    }
    if (count < 0 || count > files) abort();
    const int64_t shape[4] = {4, 1, 2, 2};
    for (int k = 0; k < count; k++) {
        float    lat[16];
        uint64_t state = 0;
        int      next = -1;
        memset(&err, 0, sizeof err);
        if (sky_resume_load(dir, k, KEY, shape, lat, &state, &next, &err) != SKY_OK) {
            fz_check_err(&err, dir, "sky_resume_load");
            continue;
        }
        if (next < 0) abort();
        fz_report("sky_resume_load", NULL);
    }
    return 0;
}
