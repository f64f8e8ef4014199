/* runtime/pipeline/resume.c — the window files of --resume_dir (resume.h). */
#include "pipeline/resume.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/dtype.h"
#include "formats/safetensors.h"
#include "formats/safetensors_write.h"

static void window_path(char *buf, size_t n, const char *dir, int k)
{
    snprintf(buf, n, "%s/window_%04d.safetensors", dir, k);
}

/* The next field of a key at *p (fields end at ", \"" in the JSON and at "; " after it): its start and
 * length; 0 at the end. */
static int next_field(const char **p, const char **start, size_t *len)
{
    if (!**p) return 0;
    *start = *p;
    const char *e = *p;
    while (*e && strncmp(e, ", \"", 3) != 0 && strncmp(e, "; ", 2) != 0) e++;
    *len = (size_t)(e - *start);
    *p = *e ? e + 2 : e; /* past ", " or "; " */
    return 1;
}

/* "X (this run: Y)" for the first field where keys a (the file's) and b (this run's) differ. */
static void first_difference(const char *a, const char *b, char *out, size_t n)
{
    const char *pa = a, *pb = b, *sa = "", *sb = "";
    size_t      la = 0, lb = 0;
    for (;;) {
        const int ha = next_field(&pa, &sa, &la), hb = next_field(&pb, &sb, &lb);
        if (!ha && !hb) break;
        if (!ha) sa = "(nothing)", la = 9;
        if (!hb) sb = "(nothing)", lb = 9;
        if (!ha || !hb || la != lb || memcmp(sa, sb, la) != 0) break;
    }
    const int wa = la > 200 ? 200 : (int)la, wb = lb > 200 ? 200 : (int)lb;
    snprintf(out, n, "%.*s%s (this run: %.*s%s)", wa, sa, la > 200 ? "..." : "", wb, sb, lb > 200 ? "..." : "");
}

/* Open window k's file and check its key; *f NULL (and SKY_OK) when there is no such file. */
static sky_status open_window(const char *dir, int k, const char *key, sky_safetensors **f, sky_err *err)
{
    char        path[4200];
    struct stat st;
    *f = NULL;
    window_path(path, sizeof path, dir, k);
    if (stat(path, &st) != 0) return SKY_OK;
    if (sky_safetensors_open(f, path, err)) return SKY_ERR;
    const char *theirs = sky_safetensors_metadata(*f, "resume_key");
    if (!theirs || strcmp(theirs, key) != 0) {
        char diff[512];
        first_difference(theirs ? theirs : "(no key)", key, diff, sizeof diff);
        sky_fail(err,
                 "%s was written by another run: %s. Rerun with the same arguments, or give another "
                 "--resume_dir (it keeps one run's windows)",
                 path, diff);
        sky_safetensors_close(*f);
        *f = NULL;
        return SKY_ERR;
    }
    return SKY_OK;
}

sky_status sky_resume_count(const char *dir, const char *key, int windows, int *count, sky_err *err)
{
    *count = 0;
    for (int k = 0; k < windows; k++) {
        sky_safetensors *f;
        if (open_window(dir, k, key, &f, err)) return SKY_ERR;
        if (!f) break;
        sky_safetensors_close(f);
        *count = k + 1;
    }
    return SKY_OK;
}

sky_status sky_resume_load(const char *dir, int k, const char *key, const int64_t shape[4], float *latents,
                           uint64_t *noise_state, int *noise_next, sky_err *err)
{
    sky_safetensors *f;
    if (open_window(dir, k, key, &f, err)) return SKY_ERR;
    if (!f) return sky_fail(err, "%s/window_%04d.safetensors: disappeared while resuming", dir, k);
    sky_status           st = SKY_ERR;
    const sky_st_tensor *z = sky_safetensors_find(f, "latents"), *ns = sky_safetensors_find(f, "noise_state");
    if (!z || !ns) {
        sky_fail(err, "%s: no '%s' tensor (not a window file of --resume_dir)", sky_safetensors_path(f),
                 z ? "noise_state" : "latents");
        goto done;
    }
    int ok = z->dtype == SKY_DTYPE_F32 && z->ndim == 4;
    for (int i = 0; ok && i < 4; i++) ok = z->shape[i] == shape[i];
    if (!ok) {
        sky_fail(err, "%s: 'latents' is not F32 [%lld, %lld, %lld, %lld], window %d's shape", sky_safetensors_path(f),
                 (long long)shape[0], (long long)shape[1], (long long)shape[2], (long long)shape[3], k);
        goto done;
    }
    if (ns->dtype != SKY_DTYPE_I64 || ns->ndim != 1 || ns->shape[0] != 2) {
        sky_fail(err, "%s: 'noise_state' is not I64 [2]", sky_safetensors_path(f));
        goto done;
    }
    const size_t count = (size_t)(shape[0] * shape[1] * shape[2] * shape[3]);
    memcpy(latents, z->data, count * sizeof(float));
    const size_t bad = sky_f32_nonfinite(latents, count);
    if (bad < count) {
        sky_fail(err,
                 "%s: window %d's 'latents' hold NaN or Inf at element %zu; delete the file to denoise the window "
                 "again",
                 sky_safetensors_path(f), k, bad);
        goto done;
    }
    int64_t v[2];
    memcpy(v, ns->data, sizeof v);
    if (v[1] < 0 || v[1] > INT32_MAX) {
        sky_fail(err, "%s: 'noise_state' has a bad draw index %lld", sky_safetensors_path(f), (long long)v[1]);
        goto done;
    }
    memcpy(noise_state, &v[0], sizeof *noise_state);
    *noise_next = (int)v[1];
    st = SKY_OK;
done:
    sky_safetensors_close(f);
    return st;
}

sky_status sky_resume_save(const char *dir, int k, const char *key, uint64_t seed, const int64_t shape[4],
                           const float *latents, uint64_t noise_state, int noise_next, sky_err *err)
{
    char path[4200], seed_text[32];
    window_path(path, sizeof path, dir, k);
    snprintf(seed_text, sizeof seed_text, "%" PRIu64, seed);
    int64_t v[2];
    memcpy(&v[0], &noise_state, sizeof v[0]);
    v[1] = noise_next;
    sky_st_entry e[2] = {{"latents", SKY_DTYPE_F32, 4, {shape[0], shape[1], shape[2], shape[3]}, latents},
                         {"noise_state", SKY_DTYPE_I64, 1, {2}, v}};
    const char  *meta[] = {"made_by", "skyreels --resume_dir", "resume_key", key, "seed", seed_text, NULL};
    return sky_safetensors_write(path, e, 2, meta, err);
}

int sky_resume_seed(const char *dir, uint64_t *seed)
{
    char path[4200];
    window_path(path, sizeof path, dir, 0);
    struct stat st;
    if (stat(path, &st) != 0) return 0;
    sky_safetensors *f;
    sky_err          err;
    if (sky_safetensors_open(&f, path, &err)) return 0; /* reported when the run reads it */
    const char *s = sky_safetensors_metadata(f, "seed");
    char       *end = NULL;
    errno = 0;
    /* digits only: strtoull alone would take " 7" and "-1" (as 2^64 - 1) */
    const unsigned long long v = s ? strtoull(s, &end, 10) : 0;
    const int                ok = s && *s >= '0' && *s <= '9' && !*end && !errno;
    if (ok) *seed = v;
    sky_safetensors_close(f);
    return ok;
}
