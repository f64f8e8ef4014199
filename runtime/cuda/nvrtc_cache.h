/* runtime/cuda/nvrtc_cache.h — compile generated kernel source for the GPU found at run time, with
 * the cubins cached on disk.
 *
 * The generator writes CUDA C++ source per program; at start-up the binary compiles it
 * with NVRTC for the GPU it finds (sm_90a on a Hopper GPU, compute capability 9.0, so
 * that wgmma and setmaxnreg compile; sm_XY elsewhere) and loads it with cuModuleLoadData,
 * unless the plugin has that program's kernels built in for the GPU (fatbin.h).
 *
 * Cache (conventions-and-reliability.md §4.2). Key = xxh64 over a header naming the
 * options string ("--gpu-architecture=sm_90a -std=c++17 --include-path=..."), the target
 * ("sm_90a"), the NVRTC version, the driver version and the source length, then the bytes
 * of the toolkit headers the sources include (cuda_bf16.h/.hpp, cuda_fp16.h/.hpp), then the
 * source bytes. The entry is the cubin itself, never PTX (no driver JIT, so the same bytes
 * run every time), at <cache_dir>/<16 hex digits>.cubin, written to a temporary file and
 * renamed, so a reader never sees half a file and two processes may race. The driver
 * version is in the key although a cubin needs no JIT: a driver update recompiles once,
 * which costs seconds and rules out a loader difference. A cached cubin the driver refuses
 * is compiled again and replaced.
 *
 * Options are fixed: no --use_fast_math (numerics follow the reference), no -G or
 * -lineinfo. NVRTC 13.0 has no built-in cuda_bf16.h, which templates/cuda/common.cuh
 * includes, so the toolkit's include directory is passed with --include-path: the first of
 * $CUDA_HOME/include, $CUDA_PATH/include, /usr/local/cuda/include that has cuda_bf16.h. A
 * machine without the toolkit's headers can still run self-contained sources, and a
 * source that includes them fails with a message that says to set CUDA_HOME.
 *
 * Cache directory: the cache_dir argument, else $SKY_CACHE (or its former name $SKYREELS_CACHE), else
 * $XDG_CACHE_HOME/skyreels, else $HOME/.cache/skyreels; created as needed. Failing to
 * create it or to write an entry is an error (set SKY_CACHE to a writable place),
 * not a silent slow start.
 */
#ifndef SKY_NVRTC_H
#define SKY_NVRTC_H

#include <stddef.h>

#include <nvrtc.h>

#include "cuda/cuda_ctx.h"

/* NVRTC failures other than a failed compilation (out of memory, an invalid program):
 * fatal, and the message carries the generated file's name and, when prog is not NULL,
 * the program log. */
_Noreturn void sky_nvrtc_fail_(nvrtcResult r, nvrtcProgram prog, const char *file_name, const char *stmt,
                               const char *func, const char *file, int line);

static inline void sky_nvrtc_check_(nvrtcResult r, nvrtcProgram prog, const char *file_name, const char *stmt,
                                    const char *func, const char *file, int line)
{
    if (r != NVRTC_SUCCESS) sky_nvrtc_fail_(r, prog, file_name, stmt, func, file, line);
}

#define SKY_NVRTC_CHECK(call, prog, file_name) \
    sky_nvrtc_check_((call), (prog), (file_name), #call, __func__, __FILE__, __LINE__)

/* The default cache directory (see above) into buf. Fails when none can be chosen. */
sky_status sky_nvrtc_cache_dir(char *buf, size_t size, sky_err *err);

/* mkdir -p of a cache directory (the kernel cache's, the selftest's verdicts beside it); fails naming it. */
sky_status sky_nvrtc_cache_mkdir(const char *dir, sky_err *err);

/* The NVRTC target for a compute capability: "sm_90a" for 9.0, "sm_XY" otherwise. */
void sky_nvrtc_arch(char *buf, size_t size, int cc_major, int cc_minor);

/* The cubin of `source` for cc_major.cc_minor: from the cache, or compiled and stored.
 * Needs no GPU and no driver (driver_version only enters the key). *cubin is malloc'd
 * (free it); *cache_hit (may be NULL) is 1 when it came from the cache. On a failed
 * compilation the message names file_name and quotes the first lines of the log. */
sky_status sky_nvrtc_cubin(void **cubin, size_t *size, const char *source, const char *file_name, int cc_major,
                           int cc_minor, int driver_version, const char *cache_dir, int *cache_hit, sky_err *err);

/* sky_nvrtc_cubin() with this driver's version, then cuModuleLoadData into *out (in the
 * current context). cache_dir NULL or "": the default. cache_hit may be NULL. */
sky_status sky_nvrtc_module(CUmodule *out, const char *source, const char *file_name, int cc_major, int cc_minor,
                            const char *cache_dir, int *cache_hit, sky_err *err);

/* The kernel `name` (extern "C", so unmangled) of module m. */
sky_status sky_nvrtc_function(CUfunction *out, CUmodule m, const char *name, sky_err *err);

#endif /* SKY_NVRTC_H */
