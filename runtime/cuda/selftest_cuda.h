/* runtime/cuda/selftest_cuda.h — the plugin's kernel selftest and its cached verdict (selftest_cuda.c
 * says what runs, the bounds and the cache file). */
#ifndef SKY_SELFTEST_CUDA_H
#define SKY_SELFTEST_CUDA_H

#include "core/status.h"
#include "cuda/cuda_ctx.h"
#include "models/cuda_abi.h"

/* The selftest on the open device c: force = 1 runs it and rewrites the cache; force = 0 reads the cache,
 * running it when there is none. Fails only when it cannot run or cannot write the cache. */
sky_status sky_cuda_selftest_on(sky_cuda *c, int force, sky_selftest_table *t, sky_err *err);

/* The same on GPU `device`, opened and closed here (the plugin's selftest entry). */
sky_status sky_cuda_selftest(int device, int force, sky_selftest_table *t, sky_err *err);

/* The row of the first kernel whose name starts with prefix, or NULL (not tested on this device). */
const sky_selftest_row *sky_selftest_find(const sky_selftest_table *t, const char *prefix);

/* 0 when $SKY_SELFTEST is "0" (runs neither consult nor run the selftest), else 1. */
int sky_selftest_enabled(void);

#endif /* SKY_SELFTEST_CUDA_H */
