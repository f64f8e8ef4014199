/* runtime/pipeline/noise.c — the pipelines' standard-normal draws (noise.h). */
#include "pipeline/noise.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/dtype.h"

void sky_noise_seed(sky_noise *n, uint64_t seed)
{
    memset(n, 0, sizeof *n);
    n->state = seed;
}

sky_status sky_noise_open_file(sky_noise *n, const char *path, sky_err *err)
{
    memset(n, 0, sizeof *n);
    if (sky_safetensors_open(&n->file, path, err)) return SKY_ERR;
    /* Every draw checked for NaN/Inf now, before any model runs (one read of the file). */
    for (int i = 0; i < sky_safetensors_count(n->file); i++) {
        const sky_st_tensor *t = sky_safetensors_at(n->file, i);
        size_t               count = 1;
        for (int d = 0; d < t->ndim; d++) count *= (size_t)t->shape[d];
        const size_t j = sky_dtype_nonfinite(t->data, t->dtype, count);
        if (j < count) {
            sky_fail(err, "%s: tensor '%s' holds NaN or Inf at element %zu; --noise must be finite", path, t->name, j);
            sky_safetensors_close(n->file);
            n->file = NULL;
            return SKY_ERR;
        }
    }
    return SKY_OK;
}

/* splitmix64. */
static uint64_t next_u64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

sky_status sky_noise_draw(sky_noise *n, float *dst, int ndim, const int64_t *shape, const char *what, sky_err *err)
{
    size_t count = 1;
    for (int i = 0; i < ndim; i++) count *= (size_t)shape[i];
    if (!n->file) {
        /* Box-Muller, both outputs used. */
        for (size_t i = 0; i < count; i += 2) {
            const double u1 = ((double)(next_u64(&n->state) >> 11) + 1.0) / 9007199254740993.0;
            const double u2 = (double)(next_u64(&n->state) >> 11) / 9007199254740992.0;
            const double r = sqrt(-2.0 * log(u1));
            dst[i] = (float)(r * cos(6.283185307179586 * u2));
            if (i + 1 < count) dst[i + 1] = (float)(r * sin(6.283185307179586 * u2));
        }
        n->next++;
        return SKY_OK;
    }
    char name[32];
    snprintf(name, sizeof name, "noise.%d", n->next);
    const sky_st_tensor *t = sky_safetensors_find(n->file, name);
    if (!t)
        return sky_fail(err, "%s: no tensor '%s' for draw %d (%s); the file holds fewer draws than this run makes",
                        sky_safetensors_path(n->file), name, n->next, what);
    int same = t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same)
        return sky_fail(err, "%s: tensor '%s' (%s) has another shape than the %d-d draw this run makes",
                        sky_safetensors_path(n->file), name, what, ndim);
    if (sky_dtype_to_f32(dst, t->data, t->dtype, count, err)) return SKY_ERR;
    n->next++;
    return SKY_OK;
}

sky_status sky_noise_check_used(const sky_noise *n, sky_err *err)
{
    if (!n->file) return SKY_OK;
    char name[32];
    snprintf(name, sizeof name, "noise.%d", n->next);
    if (sky_safetensors_find(n->file, name))
        return sky_fail(err,
                        "%s: the run used %d draws but the file has more ('%s' unused); the pipeline took "
                        "another path than the one the file was made for",
                        sky_safetensors_path(n->file), n->next, name);
    return SKY_OK;
}

void sky_noise_close(sky_noise *n)
{
    sky_safetensors_close(n->file);
    memset(n, 0, sizeof *n);
}
