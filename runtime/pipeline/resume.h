/* runtime/pipeline/resume.h — --resume_dir: a diffusion-forcing run keeps each window it finishes, so that an
 * interrupted run (a signal, a crash, a lost machine) continues after the last finished window instead of
 * starting again.
 *
 * After window k is denoised, DIR/window_<k>.safetensors (k in 4 digits) holds its latents
 * [C, frames, h, w] (F32) and the noise generator's state after it (noise_state, I64 [2]: the seeded
 * generator's state bits and the index of the next draw; noise.h), with the run's key and seed in the
 * metadata. The key is what decides the numbers: the run's parameters as cli/ records them (prompt, seed,
 * sizes, sampler, DF settings, variant and spec hash), the backend and the paths of the input files. A run
 * given the same DIR takes windows 0, 1, ... from the files whose key is its own, decodes them again (the
 * frames, the history the next prefix is encoded from and the mp4 come out the same bit for bit), restores
 * the noise state of the last one and denoises from the next window on. A file with another key is refused
 * with both keys in the message. Files are written atomically (safetensors_write.h) and stay after the run.
 */
#ifndef SKY_RESUME_H
#define SKY_RESUME_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"

/* How many of the first `windows` window files of dir exist, in order from window 0, with this key
 * (*count); an existing file with another key, or one that cannot be read, is an error. */
sky_status sky_resume_count(const char *dir, const char *key, int windows, int *count, sky_err *err);

/* Window k's latents (shape [C, frames, h, w], checked) into latents, and the noise state after it. */
sky_status sky_resume_load(const char *dir, int k, const char *key, const int64_t shape[4], float *latents,
                           uint64_t *noise_state, int *noise_next, sky_err *err);

/* Write window k (atomically): its latents, the noise state after it, the key and the seed. */
sky_status sky_resume_save(const char *dir, int k, const char *key, uint64_t seed, const int64_t shape[4],
                           const float *latents, uint64_t noise_state, int noise_next, sky_err *err);

/* The seed recorded in dir's window 0, for a rerun that does not give --seed: 1 and *seed when there is
 * one, else 0. */
int sky_resume_seed(const char *dir, uint64_t *seed);

#endif /* SKY_RESUME_H */
