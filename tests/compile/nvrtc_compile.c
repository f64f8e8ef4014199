/* tests/compile/nvrtc_compile.c — compile one .cu file through NVRTC, as the runtime will.
 *
 *   nvrtc_compile FILE.cu [--embed-headers=DIR] [NVRTC option ...]
 *
 * Reads FILE.cu, runs nvrtcCreateProgram + nvrtcCompileProgram with the options given (e.g.
 * --gpu-architecture=sm_90a -std=c++17 --include-path=/usr/local/cuda/include -Xptxas=-v),
 * and checks that nvrtcGetCUBIN returns a non-empty cubin. --embed-headers=DIR is ours, not
 * NVRTC's: it reads the four headers that cuda_bf16.h needs under NVRTC 13.0 (cuda_bf16.h,
 * cuda_bf16.hpp, cuda_fp16.h, cuda_fp16.hpp) from DIR and passes them to nvrtcCreateProgram
 * as in-memory headers, so no include path is needed (how a runtime without the toolkit's
 * include directory can do it). The program log (errors, and ptxas's report with -Xptxas=-v)
 * goes to stdout. Exit status: 0 cubin made, 1 compilation failed, 2 usage or I/O error.
 */
#include <nvrtc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Whole file as a NUL-terminated string, or NULL (message printed). */
static char *read_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "nvrtc_compile: cannot open %s\n", path);
        return NULL;
    }
    char *buf = NULL;
    long n = -1;
    if (fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (n >= 0 && fseek(f, 0, SEEK_SET) == 0 && (buf = malloc((size_t)n + 1)) != NULL) {
        if (fread(buf, 1, (size_t)n, f) == (size_t)n) {
            buf[n] = '\0';
        } else {
            free(buf);
            buf = NULL;
        }
    }
    fclose(f);
    if (!buf) fprintf(stderr, "nvrtc_compile: cannot read %s\n", path);
    return buf;
}

#define NVRTC_CHECK(call)                                                                     \
    do {                                                                                      \
        nvrtcResult r_ = (call);                                                              \
        if (r_ != NVRTC_SUCCESS) {                                                            \
            fprintf(stderr, "nvrtc_compile: %s failed: %s\n", #call, nvrtcGetErrorString(r_)); \
            return 2;                                                                         \
        }                                                                                     \
    } while (0)

int main(int argc, char **argv)
{
    static const char *const header_names[] = {"cuda_bf16.h", "cuda_bf16.hpp", "cuda_fp16.h",
                                               "cuda_fp16.hpp"};
    enum { NHEADERS = sizeof header_names / sizeof header_names[0] };
    if (argc < 2) {
        fprintf(stderr, "usage: nvrtc_compile FILE.cu [--embed-headers=DIR] [NVRTC option ...]\n");
        return 2;
    }
    const char *path = argv[1];
    char *src = read_file(path);
    if (!src) return 2;

    const char **opts = calloc((size_t)argc, sizeof *opts);
    char *headers[NHEADERS] = {0};
    int nopts = 0, nheaders = 0;
    if (!opts) return 2;
    for (int i = 2; i < argc; i++) {
        if (strncmp(argv[i], "--embed-headers=", 16) == 0) {
            for (int h = 0; h < NHEADERS; h++) {
                char file[4096];
                snprintf(file, sizeof file, "%s/%s", argv[i] + 16, header_names[h]);
                if (!(headers[h] = read_file(file))) return 2;
            }
            nheaders = NHEADERS;
        } else {
            opts[nopts++] = argv[i];
        }
    }

    nvrtcProgram prog;
    NVRTC_CHECK(nvrtcCreateProgram(&prog, src, path, nheaders, (const char *const *)headers,
                                   nheaders ? header_names : NULL));
    nvrtcResult rc = nvrtcCompileProgram(prog, nopts, opts);

    size_t log_size = 0;
    NVRTC_CHECK(nvrtcGetProgramLogSize(prog, &log_size));
    char *log = malloc(log_size + 1);
    if (!log) return 2;
    NVRTC_CHECK(nvrtcGetProgramLog(prog, log));
    log[log_size] = '\0';
    if (log[0]) printf("%s", log);
    if (rc != NVRTC_SUCCESS) {
        printf("nvrtc_compile: %s: %s\n", path, nvrtcGetErrorString(rc));
        return 1;
    }

    size_t cubin_size = 0;
    NVRTC_CHECK(nvrtcGetCUBINSize(prog, &cubin_size));
    char *cubin = malloc(cubin_size ? cubin_size : 1);
    if (!cubin) return 2;
    NVRTC_CHECK(nvrtcGetCUBIN(prog, cubin));
    if (cubin_size == 0) {  /* a virtual architecture (compute_XX) gives PTX only */
        printf("nvrtc_compile: %s: no cubin (pass a real architecture, sm_XX)\n", path);
        return 1;
    }
    int major = 0, minor = 0;
    NVRTC_CHECK(nvrtcVersion(&major, &minor));
    printf("nvrtc_compile: %s: cubin %zu bytes (nvrtc %d.%d)\n", path, cubin_size, major, minor);

    NVRTC_CHECK(nvrtcDestroyProgram(&prog));
    free(cubin);
    free(log);
    for (int h = 0; h < NHEADERS; h++) free(headers[h]);
    free(opts);
    free(src);
    return 0;
}
