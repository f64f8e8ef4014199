/* runtime/cuda/nvrtc_cache.c — NVRTC compile with an on-disk cubin cache (nvrtc_cache.h). */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L /* mkdir, mkstemp, fdopen, fileno, fsync */
#endif
#include "cuda/nvrtc_cache.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>

#include <xxhash.h>

/* Bumped when the key's layout or the stored format changes. */
#define CACHE_FORMAT "skyreels nvrtc cache 1"

/* ---- the program log ----------------------------------------------------------------- */

/* The whole log of prog, malloc'd ("" when there is none). */
static char *program_log(nvrtcProgram prog)
{
    size_t n = 0;
    if (nvrtcGetProgramLogSize(prog, &n) != NVRTC_SUCCESS || n == 0) n = 1;
    char *log = calloc(n + 1, 1);
    if (log == NULL) return NULL;
    if (n > 1 && nvrtcGetProgramLog(prog, log) != NVRTC_SUCCESS) log[0] = '\0';
    return log;
}

/* The first max_lines lines of log (at most size - 1 bytes) into buf, indented. */
static void log_excerpt(char *buf, size_t size, const char *log, int max_lines)
{
    size_t used = 0;
    int    lines = 0;
    buf[0] = '\0';
    for (const char *p = log; *p != '\0' && lines < max_lines && used + 8 < size; lines++) {
        const char *eol = strchr(p, '\n');
        size_t      len = eol != NULL ? (size_t)(eol - p) : strlen(p);
        int         w = snprintf(buf + used, size - used, "    %.*s\n", (int)len, p);
        if (w < 0 || (size_t)w >= size - used) {
            used = size - 1;
            break;
        }
        used += (size_t)w;
        p += len + (eol != NULL);
    }
    if (used > 0 && buf[used - 1] == '\n') buf[used - 1] = '\0';
}

_Noreturn void sky_nvrtc_fail_(nvrtcResult r, nvrtcProgram prog, const char *file_name, const char *stmt,
                               const char *func, const char *file, int line)
{
    char extra[8192];
    int  n = snprintf(extra, sizeof extra, "  generated file: %s", file_name != NULL ? file_name : "(unknown)");
    if (prog != NULL && n > 0 && (size_t)n < sizeof extra) {
        char *log = program_log(prog);
        if (log != NULL && log[0] != '\0') {
            char excerpt[7000];
            log_excerpt(excerpt, sizeof excerpt, log, 80);
            snprintf(extra + n, sizeof extra - (size_t)n, "\n  program log:\n%s", excerpt);
        }
        free(log);
    }
    char code[32];
    snprintf(code, sizeof code, "nvrtcResult %d", (int)r);
    sky_gpu_fatal_("NVRTC", nvrtcGetErrorString(r), code, stmt, func, file, line, extra);
}

/* ---- cache directory and files ------------------------------------------------------- */

sky_status sky_nvrtc_cache_dir(char *buf, size_t size, sky_err *err)
{
    const char *v = getenv("SKY_CACHE"); /* the engine's prefix; SKYREELS_CACHE: its former name */
    int         n;
    if (v == NULL || v[0] == '\0') v = getenv("SKYREELS_CACHE");
    if (v != NULL && v[0] != '\0') {
        n = snprintf(buf, size, "%s", v);
    } else if ((v = getenv("XDG_CACHE_HOME")) != NULL && v[0] == '/') { /* XDG: absolute only */
        n = snprintf(buf, size, "%s/skyreels", v);
    } else if ((v = getenv("HOME")) != NULL && v[0] != '\0') {
        n = snprintf(buf, size, "%s/.cache/skyreels", v);
    } else {
        return sky_fail(err, "no directory for the compiled-kernel cache: set SKY_CACHE (or HOME)");
    }
    if (n < 0 || (size_t)n >= size) return sky_fail(err, "kernel cache directory path too long: %s...", v);
    return SKY_OK;
}

/* mkdir -p dir (nvrtc_cache.h). */
sky_status sky_nvrtc_cache_mkdir(const char *dir, sky_err *err)
{
    char path[4096];
    if (dir[0] == '\0') return sky_fail(err, "empty kernel cache directory name");
    if (snprintf(path, sizeof path, "%s", dir) >= (int)sizeof path)
        return sky_fail(err, "kernel cache directory path too long: %s", dir);
    for (char *p = path + 1;; p++) {
        if (*p != '/' && *p != '\0') continue;
        char c = *p;
        *p = '\0';
        if (mkdir(path, 0755) != 0 && errno != EEXIST)
            return sky_fail(err,
                            "cannot create the kernel cache directory %s: %s; set SKY_CACHE to a "
                            "writable directory",
                            path, strerror(errno));
        *p = c;
        if (c == '\0') break;
    }
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return sky_fail(err, "kernel cache path %s is not a directory; set SKY_CACHE to a writable directory",
                        dir);
    return SKY_OK;
}

/* Read a cached cubin. Returns 1 with *data malloc'd, or 0 when there is no usable entry
 * (absent, unreadable, empty, not ELF): the caller compiles and overwrites it. */
static int read_entry(const char *path, void **data, size_t *size)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return 0;
    unsigned char *buf = NULL;
    long           n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 4 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n)) != NULL &&
        fread(buf, 1, (size_t)n, f) == (size_t)n && memcmp(buf, "\177ELF", 4) == 0) {
        fclose(f);
        *data = buf;
        *size = (size_t)n;
        return 1;
    }
    free(buf);
    fclose(f);
    return 0;
}

/* Write data to path through a temporary file of its own in the same directory (mkstemp: processes and threads
 * that compile the same kernels at once, --use_cfg_parallel's two GPUs say, each write their own) and rename(2). */
static sky_status write_entry(const char *path, const void *data, size_t size, sky_err *err)
{
    char tmp[4300];
    int  n = snprintf(tmp, sizeof tmp, "%s.tmp.XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof tmp) return sky_fail(err, "kernel cache path too long: %s", path);
    const int fd = mkstemp(tmp);
    FILE     *f = fd >= 0 ? fdopen(fd, "wb") : NULL;
    if (f == NULL) {
        const int saved = errno;
        if (fd >= 0) {
            close(fd);
            remove(tmp);
        }
        return sky_fail(err, "cannot write the kernel cache file %s: %s; set SKY_CACHE to a writable directory",
                        tmp, strerror(saved));
    }
    int ok = fwrite(data, 1, size, f) == size;
    ok = fflush(f) == 0 && ok;
    ok = fsync(fileno(f)) == 0 && ok;
    int saved = errno;
    ok = fclose(f) == 0 && ok;
    if (ok && rename(tmp, path) == 0) return SKY_OK;
    if (ok) saved = errno;
    remove(tmp);
    return sky_fail(err,
                    "cannot write the kernel cache file %s: %s; free disk space or set SKY_CACHE to a "
                    "writable directory",
                    path, strerror(saved));
}

/* ---- the toolkit's headers ----------------------------------------------------------- */

/* Headers a generated source may include (templates/cuda/common.cuh: cuda_bf16.h, which under
 * NVRTC opens these four and nothing else). Their bytes enter the cache key. */
static const char *const toolkit_headers[] = {"cuda_bf16.h", "cuda_bf16.hpp", "cuda_fp16.h", "cuda_fp16.hpp"};

/* The CUDA toolkit's include directory: $CUDA_HOME/include, $CUDA_PATH/include or
 * /usr/local/cuda/include, the first that has cuda_bf16.h. 0 when none has. */
static int toolkit_include(char *buf, size_t size)
{
    const char *roots[3] = {getenv("CUDA_HOME"), getenv("CUDA_PATH"), "/usr/local/cuda"};
    for (int i = 0; i < 3; i++) {
        if (roots[i] == NULL || roots[i][0] == '\0') continue;
        char probe[4200];
        int  n = snprintf(buf, size, "%s/include", roots[i]);
        if (n < 0 || (size_t)n >= size) continue;
        snprintf(probe, sizeof probe, "%s/cuda_bf16.h", buf);
        struct stat st;
        if (stat(probe, &st) == 0 && S_ISREG(st.st_mode)) return 1;
    }
    buf[0] = '\0';
    return 0;
}

/* Fold the bytes of the toolkit headers in dir into h (a missing one folds its name only). */
static void hash_headers(XXH64_state_t *h, const char *dir)
{
    for (size_t i = 0; i < sizeof toolkit_headers / sizeof toolkit_headers[0]; i++) {
        char path[4200];
        snprintf(path, sizeof path, "%s/%s", dir, toolkit_headers[i]);
        XXH64_update(h, toolkit_headers[i], strlen(toolkit_headers[i]) + 1);
        FILE *f = fopen(path, "rb");
        if (f == NULL) continue;
        char buf[65536];
        for (size_t n; (n = fread(buf, 1, sizeof buf, f)) > 0;) XXH64_update(h, buf, n);
        fclose(f);
    }
}

/* ---- compiling ----------------------------------------------------------------------- */

void sky_nvrtc_arch(char *buf, size_t size, int cc_major, int cc_minor)
{
    /* sm_90a: Hopper's arch-specific features (wgmma, setmaxnreg); runs on cc 9.0 only. */
    snprintf(buf, size, "sm_%d%d%s", cc_major, cc_minor, cc_major == 9 && cc_minor == 0 ? "a" : "");
}

static sky_status check_arch_supported(int cc_major, int cc_minor, const char *arch, int nv_major, int nv_minor,
                                       sky_err *err)
{
    int n = 0;
    SKY_NVRTC_CHECK(nvrtcGetNumSupportedArchs(&n), NULL, NULL);
    int *list = calloc((size_t)(n > 0 ? n : 1), sizeof *list);
    if (list == NULL) return sky_fail(err, "out of host memory");
    SKY_NVRTC_CHECK(nvrtcGetSupportedArchs(list), NULL, NULL);
    int found = 0, lo = 0, hi = 0;
    for (int i = 0; i < n; i++) {
        found |= list[i] == cc_major * 10 + cc_minor;
        if (i == 0 || list[i] < lo) lo = list[i];
        if (i == 0 || list[i] > hi) hi = list[i];
    }
    free(list);
    if (found) return SKY_OK;
    return sky_fail(err,
                    "NVRTC %d.%d cannot compile for %s (compute capability %d.%d); it supports sm_%d to sm_%d. "
                    "Use a CUDA toolkit that supports this GPU",
                    nv_major, nv_minor, arch, cc_major, cc_minor, lo, hi);
}

static uint64_t cache_key(const char *source, const char *options, const char *arch, int nv_major, int nv_minor,
                          int driver_version, const char *include_dir)
{
    char   head[5000]; /* options hold a path of up to 4 KiB */
    size_t len = strlen(source);
    int n = snprintf(head, sizeof head, "%s\noptions %s\narch %s\nnvrtc %d.%d\ndriver %d\nsource %zu\n", CACHE_FORMAT,
                     options, arch, nv_major, nv_minor, driver_version, len);
    SKY_ASSERT(n > 0 && (size_t)n < sizeof head);
    XXH64_state_t *h = XXH64_createState();
    SKY_ASSERT(h != NULL);
    XXH64_reset(h, 0);
    XXH64_update(h, head, (size_t)n);
    if (include_dir[0] != '\0') hash_headers(h, include_dir);
    XXH64_update(h, source, len);
    uint64_t key = XXH64_digest(h);
    XXH64_freeState(h);
    return key;
}

static sky_status compile(void **cubin, size_t *size, const char *source, const char *file_name,
                          const char *const *opts, int nopts, const char *arch, int nv_major, int nv_minor,
                          int have_headers, sky_err *err)
{
    nvrtcProgram prog = NULL;
    SKY_NVRTC_CHECK(nvrtcCreateProgram(&prog, source, file_name, 0, NULL, NULL), NULL, file_name);
    nvrtcResult r = nvrtcCompileProgram(prog, nopts, opts);
    if (r != NVRTC_SUCCESS) {
        char *log = program_log(prog);
        char  excerpt[1400];
        log_excerpt(excerpt, sizeof excerpt, log != NULL ? log : "", 16);
        int missing = log != NULL && strstr(log, "could not open source file") != NULL;
        sky_fail(err, "%s: NVRTC %d.%d could not compile it for %s (%s); %s. First lines of the log:\n%s", file_name,
                 nv_major, nv_minor, arch, nvrtcGetErrorString(r),
                 missing && !have_headers ? "it includes CUDA toolkit headers and none were found: set CUDA_HOME "
                                            "to the CUDA toolkit (its include/ must have cuda_bf16.h)"
                                          : "the generated code or its template has a bug",
                 excerpt);
        free(log);
        nvrtcDestroyProgram(&prog);
        return SKY_ERR;
    }
    size_t n = 0;
    SKY_NVRTC_CHECK(nvrtcGetCUBINSize(prog, &n), prog, file_name);
    void *buf = malloc(n > 0 ? n : 1);
    if (buf == NULL) {
        nvrtcDestroyProgram(&prog);
        return sky_fail(err, "%s: out of host memory for a %zu-byte cubin", file_name, n);
    }
    SKY_NVRTC_CHECK(nvrtcGetCUBIN(prog, buf), prog, file_name);
    SKY_NVRTC_CHECK(nvrtcDestroyProgram(&prog), NULL, file_name);
    *cubin = buf;
    *size = n;
    return SKY_OK;
}

/* sky_nvrtc_cubin(), and with recompile set: ignore the cache entry and replace it. */
static sky_status get_cubin(void **cubin, size_t *size, const char *source, const char *file_name, int cc_major,
                            int cc_minor, int driver_version, const char *cache_dir, int recompile, int *cache_hit,
                            sky_err *err)
{
    *cubin = NULL;
    *size = 0;
    if (cache_hit != NULL) *cache_hit = 0;
    char dir[4096], arch[32], arch_opt[64], inc[4096], inc_opt[4200], options[4400], path[4200];
    if (cache_dir != NULL && cache_dir[0] != '\0')
        snprintf(dir, sizeof dir, "%s", cache_dir);
    else if (sky_nvrtc_cache_dir(dir, sizeof dir, err) != SKY_OK)
        return SKY_ERR;

    int nv_major = 0, nv_minor = 0;
    SKY_NVRTC_CHECK(nvrtcVersion(&nv_major, &nv_minor), NULL, file_name);
    sky_nvrtc_arch(arch, sizeof arch, cc_major, cc_minor);
    if (check_arch_supported(cc_major, cc_minor, arch, nv_major, nv_minor, err) != SKY_OK) return SKY_ERR;
    snprintf(arch_opt, sizeof arch_opt, "--gpu-architecture=%s", arch);
    int have_headers = toolkit_include(inc, sizeof inc);
    snprintf(inc_opt, sizeof inc_opt, "--include-path=%s", inc);
    const char *opts[] = {arch_opt, "-std=c++17", inc_opt};
    const int   nopts = have_headers ? 3 : 2;
    snprintf(options, sizeof options, "%s %s%s%s", opts[0], opts[1], have_headers ? " " : "",
             have_headers ? inc_opt : "");

    uint64_t key = cache_key(source, options, arch, nv_major, nv_minor, driver_version, inc);
    int      n = snprintf(path, sizeof path, "%s/%016llx.cubin", dir, (unsigned long long)key);
    if (n < 0 || (size_t)n >= sizeof path) return sky_fail(err, "kernel cache path too long: %s", dir);
    if (!recompile && read_entry(path, cubin, size)) {
        if (cache_hit != NULL) *cache_hit = 1;
        return SKY_OK;
    }
    if (sky_nvrtc_cache_mkdir(dir, err) != SKY_OK) return SKY_ERR;
    if (compile(cubin, size, source, file_name, opts, nopts, arch, nv_major, nv_minor, have_headers, err) != SKY_OK)
        return SKY_ERR;
    if (write_entry(path, *cubin, *size, err) != SKY_OK) {
        free(*cubin);
        *cubin = NULL;
        *size = 0;
        return SKY_ERR;
    }
    return SKY_OK;
}

/* ---- public -------------------------------------------------------------------------- */

sky_status sky_nvrtc_cubin(void **cubin, size_t *size, const char *source, const char *file_name, int cc_major,
                           int cc_minor, int driver_version, const char *cache_dir, int *cache_hit, sky_err *err)
{
    return get_cubin(cubin, size, source, file_name, cc_major, cc_minor, driver_version, cache_dir, 0, cache_hit, err);
}

sky_status sky_nvrtc_module(CUmodule *out, const char *source, const char *file_name, int cc_major, int cc_minor,
                            const char *cache_dir, int *cache_hit, sky_err *err)
{
    *out = NULL;
    int driver = 0, hit = 0;
    SKY_CU_CHECK(cuDriverGetVersion(&driver));
    void  *cubin = NULL;
    size_t size = 0;
    if (get_cubin(&cubin, &size, source, file_name, cc_major, cc_minor, driver, cache_dir, 0, &hit, err) != SKY_OK)
        return SKY_ERR;
    CUresult r = cuModuleLoadData(out, cubin);
    if (r != CUDA_SUCCESS && hit) {
        /* A damaged or foreign cache entry: compile once more and replace it. */
        free(cubin);
        hit = 0;
        if (get_cubin(&cubin, &size, source, file_name, cc_major, cc_minor, driver, cache_dir, 1, NULL, err) != SKY_OK)
            return SKY_ERR;
        r = cuModuleLoadData(out, cubin);
    }
    free(cubin);
    if (cache_hit != NULL) *cache_hit = hit;
    if (r != CUDA_SUCCESS) {
        char arch[32];
        sky_nvrtc_arch(arch, sizeof arch, cc_major, cc_minor);
        *out = NULL;
        return sky_fail(err,
                        "%s: the driver (CUDA %d.%d) cannot load the %zu-byte %s cubin NVRTC made: %s (%s); "
                        "update the NVIDIA driver",
                        file_name, driver / 1000, driver % 1000 / 10, size, arch, sky_cu_error_name(r),
                        sky_cu_error_string(r));
    }
    return SKY_OK;
}

sky_status sky_nvrtc_function(CUfunction *out, CUmodule m, const char *name, sky_err *err)
{
    *out = NULL;
    CUresult r = cuModuleGetFunction(out, m, name);
    if (r == CUDA_SUCCESS) return SKY_OK;
    *out = NULL;
    return sky_fail(err,
                    "kernel '%s' is not in its module (%s): the generated launch code and kernel source "
                    "disagree, a generator bug",
                    name, sky_cu_error_name(r));
}
