/* runtime/cuda/fatbin.c — the kernels built into the plugin (fatbin.h). */
#include "cuda/fatbin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <xxhash.h>

#include "cuda/cuda_ctx.h"
#include "cuda/nvrtc_cache.h"

/* ---- the registry ---------------------------------------------------------------------------- */

static sky_fatbin *registered;

void sky_fatbin_register(sky_fatbin *fb)
{
    fb->next = registered;
    registered = fb;
}

const sky_fatbin *sky_fatbin_find(const char *file)
{
    for (const sky_fatbin *fb = registered; fb; fb = fb->next)
        if (strcmp(fb->file, file) == 0) return fb;
    return NULL;
}

/* ---- which image a device runs ------------------------------------------------------------- */

/* One target of archs ("sm_86", "sm_90a", "compute_90") into its kind (1 cubin, 2 PTX), compute capability
 * number (86) and suffix ("" or "a"); 0 when it is none of these. */
static int parse_target(const char *t, size_t len, int *kind, int *cc, char *suffix)
{
    char buf[32];
    if (len >= sizeof buf) return 0;
    memcpy(buf, t, len);
    buf[len] = '\0';
    const char *digits = strncmp(buf, "sm_", 3) == 0 ? buf + 3 : strncmp(buf, "compute_", 8) == 0 ? buf + 8 : NULL;
    if (!digits) return 0;
    char      *end;
    const long n = strtol(digits, &end, 10);
    if (end == digits || n < 10 || n > 999 || strlen(end) > 1) return 0;
    *kind = buf[0] == 's' ? 1 : 2;
    *cc = (int)n;
    *suffix = *end;
    return 1;
}

int sky_fatbin_covers(const char *archs, int cc_major, int cc_minor, char *what, size_t size)
{
    char target[32];
    sky_nvrtc_arch(target, sizeof target, cc_major, cc_minor); /* what NVRTC would compile: sm_86, sm_90a */
    const int dev = cc_major * 10 + cc_minor, exact_only = target[strlen(target) - 1] == 'a';
    int       best_cubin = -1, best_ptx = -1;
    for (const char *p = archs; *p;) {
        while (*p == ' ') p++;
        const size_t len = strcspn(p, " ");
        int          kind, cc;
        char         suffix;
        if (len && parse_target(p, len, &kind, &cc, &suffix)) {
            if (kind == 1 && len == strlen(target) && strncmp(p, target, len) == 0) {
                snprintf(what, size, "%s cubin", target);
                return 1;
            }
            /* a cubin runs on its own major version from its minor up; an "a" one only on its own cc */
            if (kind == 1 && !suffix && cc / 10 == cc_major && cc % 10 <= cc_minor && cc > best_cubin) best_cubin = cc;
            if (kind == 2 && !suffix && cc <= dev && cc > best_ptx) best_ptx = cc;
        }
        p += len;
    }
    if (exact_only) return 0; /* the kernels need this device's arch-specific features: only its own cubin */
    if (best_cubin >= 0) {
        snprintf(what, size, "sm_%d cubin", best_cubin);
        return 1;
    }
    if (best_ptx >= 0) {
        snprintf(what, size, "compute_%d PTX, compiled by the driver", best_ptx);
        return 1;
    }
    return 0;
}

/* ---- loading ---------------------------------------------------------------------------------- */

sky_status sky_fatbin_module(CUmodule *out, const sky_fatbin *fb, const char *source, int cc_major, int cc_minor,
                             int *loaded, char *what, size_t size, sky_err *err)
{
    *out = NULL;
    *loaded = 0;
    const uint64_t h = XXH64(source, strlen(source), 0);
    if (h != fb->source_xxh64)
        return sky_fail(err,
                        "%s: the plugin's built-in kernels were compiled from another text (xxh64 %016llx) than its "
                        "source (%016llx): a stale build; rebuild the plugin (./build.sh gen <variant>)",
                        fb->file, (unsigned long long)fb->source_xxh64, (unsigned long long)h);
    if (!sky_fatbin_covers(fb->archs, cc_major, cc_minor, what, size)) return SKY_OK;
    const CUresult r = cuModuleLoadData(out, fb->data);
    if (r == CUDA_SUCCESS) {
        *loaded = 1;
        return SKY_OK;
    }
    *out = NULL;
    /* No image the driver can use after all (an older driver than the toolkit's PTX, no JIT): NVRTC instead. */
    if (r == CUDA_ERROR_NO_BINARY_FOR_GPU || r == CUDA_ERROR_UNSUPPORTED_PTX_VERSION || r == CUDA_ERROR_INVALID_PTX ||
        r == CUDA_ERROR_JIT_COMPILER_NOT_FOUND)
        return SKY_OK;
    return sky_fail(err,
                    "%s: the driver refuses the plugin's built-in kernels (%zu-byte fat binary, %s; built for %s): "
                    "%s (%s); update the NVIDIA driver, or rebuild the plugin with -DSKY_CUDA_ARCHS=none to compile "
                    "the kernels at run time",
                    fb->file, fb->size, what, fb->archs, sky_cu_error_name(r), sky_cu_error_string(r));
}
