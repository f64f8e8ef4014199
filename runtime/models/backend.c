/* runtime/models/backend.c — the backend a run takes, and the weights check before --offload (backend.h). */
#include "models/backend.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "models/cuda_plugin.h"

sky_status sky_backend_parse(const char *s, sky_backend *b, sky_err *err)
{
    if (strcmp(s, "cpu") == 0)
        *b = SKY_BACKEND_CPU;
    else if (strcmp(s, "cuda") == 0)
        *b = SKY_BACKEND_CUDA;
    else
        return sky_fail(err, "--backend %s: unknown backend (cpu or cuda)", s);
    return SKY_OK;
}

sky_status sky_backend_default(const char *who, int has_cuda, sky_backend *b, char *note, size_t n, int *warn,
                               sky_err *err)
{
    *b = SKY_BACKEND_CPU;
    *warn = 0;
    note[0] = 0;
    const char *env = getenv("SKY_BACKEND");
    if (env && *env) {
        if (strcmp(env, "cpu") == 0) return SKY_OK;
        if (strcmp(env, "cuda") != 0) return sky_fail(err, "SKY_BACKEND=%s: expected cpu or cuda", env);
        if (!has_cuda)
            return sky_fail(err, "SKY_BACKEND=cuda: %s was generated for the cpu target only (its spec's targets)",
                            who);
        *b = SKY_BACKEND_CUDA;
        return SKY_OK;
    }
    if (!has_cuda) return SKY_OK;
    char why[256];
    if (sky_cuda_device_count(why, sizeof why) < 1) {
        snprintf(note, n, "backend: cpu (%s; the CUDA backend needs a GPU)", why);
        return SKY_OK;
    }
    const sky_cuda_plugin *plugin;
    sky_err                perr;
    if (sky_cuda_plugin_get(&plugin, who, &perr)) {
        snprintf(note, n,
                 "a GPU is present but the CUDA backend cannot be used (%s); running on the CPU backend, "
                 "which is slow",
                 perr.msg);
        *warn = 1;
        return SKY_OK;
    }
    *b = SKY_BACKEND_CUDA;
    snprintf(note, n, "backend: cuda (the default where a GPU is present; --backend cpu for the CPU reference)");
    return SKY_OK;
}

sky_status sky_weights_check(const sky_weight_desc *table, int n, const char *weights, const char *who, sky_backend b,
                             sky_err *err)
{
    const sky_cuda_plugin *plugin;
    if (b == SKY_BACKEND_CUDA && sky_cuda_plugin_get(&plugin, who, err)) return SKY_ERR;
    sky_cpu_state s;
    if (sky_cpu_state_open_lazy(&s, table, n, weights, NULL, who, err)) return SKY_ERR;
    sky_cpu_state_free(&s);
    return SKY_OK;
}
