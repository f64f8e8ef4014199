/* runtime/models/backend.h — where the programs run: the CPU reference or the CUDA plugin.
 *
 * The choice a run makes (--backend, $SKY_BACKEND, or the default: cuda where a GPU is present and the
 * variant's plugin loads), and the check --offload makes before any weight is read: that a program's
 * checkpoint binds and, for the CUDA backend, that the plugin loads (cuda_plugin.h).
 */
#ifndef SKY_BACKEND_H
#define SKY_BACKEND_H

#include <stddef.h>

#include "core/status.h"
#include "formats/weights.h"

/* Where a program runs: the CPU reference, or the CUDA plugin beside the binary (models/cuda_abi.h). */
typedef enum sky_backend { SKY_BACKEND_CPU = 0, SKY_BACKEND_CUDA = 1 } sky_backend;

/* "cpu" or "cuda" into *b; SKY_ERR (naming the flag) for anything else. */
sky_status sky_backend_parse(const char *s, sky_backend *b, sky_err *err);

/* The backend of a run that gives no --backend: $SKY_BACKEND (cpu or cuda) when set; else cuda where the
 * variant `who` has a CUDA target (has_cuda), the driver reports a device and the variant's plugin loads;
 * else cpu. *note: one line on the choice for the log ("" when there is nothing to say: a cpu-only
 * variant, or $SKY_BACKEND); *warn: 1 when a GPU is present but unusable here (the note says why). SKY_ERR
 * for a bad $SKY_BACKEND, or SKY_BACKEND=cuda for a cpu-only variant. */
sky_status sky_backend_default(const char *who, int has_cuda, sky_backend *b, char *note, size_t n, int *warn,
                               sky_err *err);

/* Check what sky_dit_open or sky_vae_open would bind (the checkpoint at `weights` against a program's
 * weights table of n entries; the CUDA plugin for SKY_BACKEND_CUDA) without reading or converting any
 * weight: for --offload, which opens later. */
sky_status sky_weights_check(const sky_weight_desc *table, int n, const char *weights, const char *who, sky_backend b,
                             sky_err *err);

#endif /* SKY_BACKEND_H */
