/* runtime/models/cuda_plugin.c — find and load the CUDA plugin (models/cuda_abi.h) once per process; count
 * the GPUs (cuda_plugin.h). */
#include <dlfcn.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/cuda_plugin.h"

/* Load the plugin of `who`; it stays loaded until the process ends (its state objects are closed by
 * their owners, the library itself is never unloaded). */
static sky_status load_plugin(const sky_cuda_plugin **plugin, const char *who, sky_err *err)
{
    char        path[PATH_MAX + 64];
    const char *env = getenv("SKY_CUDA_PLUGIN");
    if (env && *env) {
        snprintf(path, sizeof path, "%s", env);
    } else {
        char          exe[PATH_MAX];
        const ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
        if (n <= 0) return sky_fail(err, "--backend cuda: cannot find the running binary (/proc/self/exe)");
        exe[n] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(path, sizeof path, "%s/libskyreels-%s-cuda.so", exe, who);
    }
    void *dl = dlopen(path, RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        const char *why = dlerror(); /* read once: the next call returns NULL */
        if (!why) why = "unknown dlopen error";
        if (strstr(why, "libcuda.so") && access(path, R_OK) == 0)
            return sky_fail(err,
                            "--backend cuda: no NVIDIA driver on this machine (%s needs libcuda.so.1); run "
                            "with --backend cpu",
                            path);
        return sky_fail(err,
                        "--backend cuda: cannot load the CUDA plugin %s (%s); it is built beside the binary "
                        "when CMake finds the CUDA toolkit (./build.sh gen %s on a machine with nvcc), or set "
                        "SKY_CUDA_PLUGIN",
                        path, why, who);
    }
    *plugin = dlsym(dl, SKY_CUDA_PLUGIN_SYMBOL);
    if (!*plugin)
        return sky_fail(
            err,
            "--backend cuda: %s has no %s: not a plugin of this engine, or one older than this binary: rebuild both",
            path, SKY_CUDA_PLUGIN_SYMBOL);
    if ((*plugin)->abi != SKY_CUDA_PLUGIN_ABI)
        return sky_fail(err, "--backend cuda: %s has plugin ABI %d, this binary %d: rebuild both", path, (*plugin)->abi,
                        SKY_CUDA_PLUGIN_ABI);
    if (strcmp((*plugin)->variant, who) != 0)
        return sky_fail(err, "--backend cuda: %s was generated for %s, this binary is %s", path, (*plugin)->variant,
                        who);
    return SKY_OK;
}

sky_status sky_cuda_plugin_get(const sky_cuda_plugin **out, const char *who, sky_err *err)
{
    static const sky_cuda_plugin *loaded;
    static char                   loaded_for[128];
    *out = NULL;
    if (loaded && strcmp(loaded_for, who) == 0) {
        *out = loaded;
        return SKY_OK;
    }
    if (load_plugin(&loaded, who, err)) {
        loaded = NULL;
        return SKY_ERR;
    }
    snprintf(loaded_for, sizeof loaded_for, "%s", who);
    *out = loaded;
    return SKY_OK;
}

sky_status sky_cuda_devices_visible(const char *who, int *n, sky_err *err)
{
    const sky_cuda_plugin *plugin;
    *n = 0;
    if (sky_cuda_plugin_get(&plugin, who, err)) return SKY_ERR;
    *n = plugin->devices();
    return SKY_OK;
}

int sky_cuda_device_count(char *why, size_t n)
{
    void *dl = dlopen("libcuda.so.1", RTLD_NOW | RTLD_LOCAL);
    if (!dl) {
        snprintf(why, n, "no NVIDIA driver (libcuda.so.1)");
        return -1;
    }
    /* the driver API's C signatures, without cuda.h (CUresult is an int enum) */
    int (*init)(unsigned) = (int (*)(unsigned))dlsym(dl, "cuInit");
    int (*count)(int *) = (int (*)(int *))dlsym(dl, "cuDeviceGetCount");
    int (*name)(int, const char **) = (int (*)(int, const char **))dlsym(dl, "cuGetErrorName");
    int devices = -1, r;
    if (!init || !count) {
        snprintf(why, n, "libcuda.so.1 lacks cuInit or cuDeviceGetCount");
    } else if ((r = init(0)) != 0) {
        const char *s = NULL;
        char        code[48];
        if (!name || name(r, &s) != 0 || !s) {
            /* the toolkit's stub libcuda answers every call, cuGetErrorName too, with CUDA_ERROR_STUB_LIBRARY */
            if (r == 34)
                s = "CUDA_ERROR_STUB_LIBRARY (the toolkit's stub libcuda.so, not the NVIDIA driver)";
            else
                snprintf(code, sizeof code, "error %d", r), s = code;
        }
        snprintf(why, n, "no usable NVIDIA driver: cuInit failed with %s", s);
    } else if (count(&devices) != 0 || devices < 1) {
        snprintf(why, n, "the NVIDIA driver reports no CUDA device");
        devices = -1;
    }
    dlclose(dl);
    return devices;
}

sky_status sky_cuda_device_describe(const char *who, char *device, size_t n, char *driver, size_t dn, sky_err *err)
{
    const sky_cuda_plugin *pl = NULL;
    int                    v = 0;
    device[0] = driver[0] = 0;
    if (sky_cuda_plugin_get(&pl, who, err) || pl->device_info(0, device, n, &v, err)) {
        device[0] = 0;
        return SKY_ERR;
    }
    snprintf(driver, dn, "CUDA driver %d.%d", v / 1000, v % 1000 / 10);
    return SKY_OK;
}

double sky_cuda_peak_device_bytes(const char *who)
{
    const sky_cuda_plugin *pl = NULL;
    sky_err                e;
    size_t                 peak = 0;
    if (sky_cuda_plugin_get(&pl, who, &e)) return -1;
    pl->mem_bytes(NULL, &peak);
    return (double)peak;
}

sky_status sky_cuda_device_memory(const char *who, int device, size_t *free_bytes, size_t *total_bytes, sky_err *err)
{
    const sky_cuda_plugin *pl = NULL;
    *free_bytes = *total_bytes = 0;
    if (sky_cuda_plugin_get(&pl, who, err)) return SKY_ERR;
    return pl->mem_free(device, free_bytes, total_bytes, err);
}
