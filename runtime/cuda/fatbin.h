/* runtime/cuda/fatbin.h — a program's kernels compiled ahead of time, built into the plugin.
 *
 * With the CMake option SKY_CUDA_ARCHS (CMakeLists.txt: "native" by default, "all", "none", or a list such as
 * "sm_80;sm_86;sm_89;sm_90a;compute_90"), the build compiles each generated gen/<program>_kernels.cu with nvcc
 * into a fat binary (a cubin per sm_* entry, PTX per compute_* entry) and embed_fatbin.lua (beside this file)
 * turns it into a C file that registers one sky_fatbin at load time. The plugin then loads that program's
 * kernels with cuModuleLoadData (the driver picks the image for the device) instead of compiling them with NVRTC, which
 * needs the CUDA toolkit's headers (cuda_bf16.h) at run time and costs seconds to minutes on a first run.
 * NVRTC stays the path for a device the fat binary has no image for (nvrtc_cache.h).
 *
 * Contract: the fat binary was compiled from exactly the text the plugin holds for NVRTC (its xxh64 is
 * recorded beside it and checked before use: a plugin linked with a stale fat binary is refused, a build
 * bug); archs lists what nvcc was asked for, which decides whether the device is covered without reading the
 * fat binary's undocumented layout.
 */
#ifndef SKY_CUDA_FATBIN_H
#define SKY_CUDA_FATBIN_H

#include <stddef.h>
#include <stdint.h>

#include <cuda.h>

#include "core/status.h"

typedef struct sky_fatbin {
    const char          *file; /* the program's kernels file, "gen/dit_forward_kernels.cu" */
    const unsigned char *data; /* the fat binary as nvcc -fatbin wrote it, 16-byte aligned */
    size_t               size;
    uint64_t             source_xxh64; /* of the text it was compiled from */
    const char          *archs;        /* nvcc's targets, space-separated: "sm_80 sm_90a compute_90" */
    struct sky_fatbin   *next;         /* the registry's list (sky_fatbin_register sets it) */
} sky_fatbin;

/* Called by the generated <program>_kernels_fatbin.c at load time (a constructor, before any thread). */
void sky_fatbin_register(sky_fatbin *fb);

/* The fat binary registered for a kernels file, or NULL (the plugin was built with SKY_CUDA_ARCHS=none). */
const sky_fatbin *sky_fatbin_find(const char *file);

/* Whether archs holds an image a device of compute capability cc_major.cc_minor runs: its exact target
 * (sky_nvrtc_arch: sm_90a on 9.0, whose kernels need the arch-specific features), else for a target without
 * a suffix a cubin of the same major and an older or equal minor, else PTX of an older or equal compute
 * capability (compiled by the driver's JIT once, then cached by the driver). The image is described in
 * what[size] ("sm_90a cubin", "compute_90 PTX, compiled by the driver"). */
int sky_fatbin_covers(const char *archs, int cc_major, int cc_minor, char *what, size_t size);

/* The module of fb's kernels on the current context when fb covers the device: *loaded = 1. *loaded = 0 (and
 * SKY_OK) when it does not, or when the driver has no use for its images (no image for this GPU, PTX newer
 * than the driver, no JIT compiler): the caller compiles with NVRTC. Errors: source's xxh64 differs from the
 * recorded one (a stale build), or the driver refuses the image for another reason. what[size] as above. */
sky_status sky_fatbin_module(CUmodule *out, const sky_fatbin *fb, const char *source, int cc_major, int cc_minor,
                             int *loaded, char *what, size_t size, sky_err *err);

#endif /* SKY_CUDA_FATBIN_H */
