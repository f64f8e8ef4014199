/* runtime/models/cuda_plugin.h — the CUDA plugin loader: find libskyreels-<variant>-cuda.so, load it once
 * per process and check it (models/cuda_abi.h is what it holds), and count the GPUs.
 *
 * The binary loads the plugin with dlopen only for the CUDA backend, so a CPU run starts on machines
 * without a CUDA driver; libcuda.so.1 itself is only ever loaded at run time.
 */
#ifndef SKY_CUDA_PLUGIN_H
#define SKY_CUDA_PLUGIN_H

#include <stddef.h>

#include "core/status.h"
#include "models/cuda_abi.h"

/* The plugin of variant `who`: $SKY_CUDA_PLUGIN, else libskyreels-<who>-cuda.so beside the running
 * binary; loaded once per process (never unloaded), its ABI version and variant checked. */
sky_status sky_cuda_plugin_get(const sky_cuda_plugin **out, const char *who, sky_err *err);

/* The CUDA devices the plugin of variant `who` sees (0 without a driver); SKY_ERR when the plugin does
 * not load. */
sky_status sky_cuda_devices_visible(const char *who, int *n, sky_err *err);

/* CUDA devices the NVIDIA driver reports (libcuda.so.1 loaded at run time: cuInit, cuDeviceGetCount), or
 * -1 with the reason in why (no driver; cuInit failed, with the error's name). */
int sky_cuda_device_count(char *why, size_t n);

/* GPU 0's name into device[n] and "CUDA driver X.Y" into driver[dn], asked through the plugin of variant `who`
 * (what the run record and bench print); SKY_ERR, both left empty, when the plugin does not load or the driver
 * gives no name. */
sky_status sky_cuda_device_describe(const char *who, char *device, size_t n, char *driver, size_t dn, sky_err *err);

/* The most device memory the plugin of `who` has held at once so far (its allocation wrapper: weights, arenas,
 * workspace), or -1 when the plugin is not loaded. */
double sky_cuda_peak_device_bytes(const char *who);

/* GPU `device`'s free and total memory now (cuMemGetInfo), asked through the plugin of variant `who`; SKY_ERR
 * when the plugin does not load or the driver has no such device. */
sky_status sky_cuda_device_memory(const char *who, int device, size_t *free_bytes, size_t *total_bytes, sky_err *err);

#endif /* SKY_CUDA_PLUGIN_H */
