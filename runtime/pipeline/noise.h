/* runtime/pipeline/noise.h — where the pipelines' standard-normal draws come from.
 *
 * Every random number a pipeline uses is a draw from one sky_noise, in a fixed order: T2V/I2V the
 * initial latent; diffusion forcing each window's initial latent, then each addnoise_condition draw,
 * in the order they happen (the original draws the latter from the unseeded global RNG, so long
 * videos were not reproducible there: here they follow --seed).
 *
 * Two sources: the seeded generator (splitmix64 + Box-Muller; reproducible across runs and
 * machines, but not the PyTorch CUDA generator, so a seed gives another video than the original's
 * for the same seed), or a file (--noise, for tests and debugging): a safetensors whose tensors
 * noise.0, noise.1, ... are consumed in order, each of exactly the shape asked for.
 */
#ifndef SKY_NOISE_H
#define SKY_NOISE_H

#include "formats/safetensors.h"
#include "core/status.h"

typedef struct sky_noise {
    uint64_t         state; /* generator state (seeded source) */
    sky_safetensors *file;  /* draws from a file when not NULL */
    int              next;  /* index of the next draw */
} sky_noise;

/* The seeded generator. */
void sky_noise_seed(sky_noise *n, uint64_t seed);

/* Draws from `path` (tensors noise.0, noise.1, ...). */
sky_status sky_noise_open_file(sky_noise *n, const char *path, sky_err *err);

/* Fill dst with one draw of `count` standard-normal values; `shape` (ndim dims, product = count)
 * is checked against the file's tensor; `what` names the draw in messages. */
sky_status sky_noise_draw(sky_noise *n, float *dst, int ndim, const int64_t *shape, const char *what, sky_err *err);

/* Error unless every draw of the file was used (a test fixture with more draws than the run made
 * means the pipeline took a different path). No-op for the seeded source. */
sky_status sky_noise_check_used(const sky_noise *n, sky_err *err);

void sky_noise_close(sky_noise *n);

#endif /* SKY_NOISE_H */
