/* tests/gpu/runtime_test.c — the CUDA runtime modules on a GPU: cuda.h, gemm.h, nvrtc.h.
 *
 *   runtime_test                 every check; exit 77 with "not run (no GPU)" when the driver
 *                                finds no device (0 all passed, 1 something failed)
 *   runtime_test --nvrtc-only    the checks that need no GPU: NVRTC compiles for sm_90a into a
 *                                fresh cache, the second call hits it, a bad source's message,
 *                                a source including the toolkit's cuda_bf16.h
 *
 * Checks on a GPU, one line each, then "N passed, M failed":
 *   - every GEMM kind (bf16->bf16, bf16->f32, f32->f32; no epilogue, bias, gelu_tanh+bias)
 *     against a CPU reference in double, with the bound derived in gemm_bound() below, at
 *     m < m_max and at m = m_max (the per-call layout change);
 *   - the GELU epilogue's form: tanh approximation or erf, measured, not assumed;
 *   - the arena refuses more than the device has, with both byte counts in the message;
 *   - NVRTC: compile, cache miss then hit (timed), a damaged cache entry recompiled, a
 *     compile error's message, cuda_bf16.h found, sm_90a features on a cc 9.0 GPU;
 *   - a CUDA Graph captured, then replayed, gives the bytes the eager run gives (the first
 *     run of a key is eager, the second captures); capture happens once per key; the cache
 *     evicts the least recently used key beyond its bound.
 *
 * Build: tests/compile/runtime_cuda_compile.sh (here, without a GPU) or by hand:
 *   cc -std=c11 -O2 -D_POSIX_C_SOURCE=200809L -iquote runtime -I/usr/local/cuda/include \
 *      runtime/core/status.c runtime/cuda/{cuda_ctx,gemm,nvrtc_cache}.c tests/gpu/runtime_test.c -L/usr/local/cuda/lib64 \
 *      -lcuda -lcudart -lcublasLt -lnvrtc -lxxhash -lm -o build/tests/runtime_test
 */
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L     /* clock_gettime, mkdtemp */
#endif
#include "cuda/cuda_ctx.h"
#include "cuda/gemm.h"
#include "cuda/nvrtc_cache.h"

#include <dirent.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../runtime/check.h"

/* ---- small helpers ------------------------------------------------------------------- */

static sky_cuda *gpu;                   /* NULL in --nvrtc-only mode */
static char      cache_dir[256];        /* fresh per run */
static char      detail[2600];          /* appended to a check's "ok" line */

/* Like check.h's RUN, with `detail` (measured numbers) on the line. */
static void run_case(const char *name, int (*fn)(void))
{
    check_state_.note[0] = '\0';
    detail[0] = '\0';
    if (fn() == 0) {
        check_state_.passed++;
        printf("ok   %s%s%s\n", name, detail[0] ? ": " : "", detail);
    } else {
        check_state_.failed++;
        printf("FAIL %s: %s\n", name, check_state_.note);
    }
    fflush(stdout);
}

static double now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e3 + (double)t.tv_nsec * 1e-6;
}

static uint64_t rng_state = 0x5eed5eed12345678ull;

/* splitmix64 -> uniform in [-1, 1). */
static double uniform(void)
{
    uint64_t z = (rng_state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    z ^= z >> 31;
    return (double)(z >> 11) * 0x1p-53 * 2.0 - 1.0;
}

/* float <-> bf16, round to nearest even (no NaNs here). */
static uint16_t f2bf(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

static float bf2f(uint16_t h)
{
    uint32_t u = (uint32_t)h << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double gelu_tanh(double z)
{
    return 0.5 * z * (1.0 + tanh(0.7978845608028654 * (z + 0.044715 * z * z * z)));
}

static double gelu_erf(double z)
{
    return 0.5 * z * (1.0 + erf(z * 0.7071067811865476));
}

static CUdeviceptr dptr(void *p)
{
    return (CUdeviceptr)(uintptr_t)p;
}

/* Device buffer with contents, through the arena (also exercising it). */
static void *upload(const void *host, size_t bytes)
{
    void *d = NULL;
    sky_err err;
    if (sky_cuda_arena_alloc(gpu, bytes, &d, "runtime_test", &err) != SKY_OK) {
        fprintf(stderr, "runtime_test: %s\n", err.msg);
        exit(1);
    }
    if (host != NULL) SKY_CU_CHECK(cuMemcpyHtoD(dptr(d), host, bytes));
    return d;
}

/* ---- NVRTC --------------------------------------------------------------------------- */

/* Self-contained: bf16 as 16-bit integers (nvrtc.h says why). */
static const char *kernel_src =
    "extern \"C\" __global__ void add_one_bf16(unsigned short *x, int n)\n"
    "{\n"
    "    int i = blockIdx.x * blockDim.x + threadIdx.x;\n"
    "    if (i >= n) return;\n"
    "    float f = __uint_as_float((unsigned)x[i] << 16) + 1.0f;\n"
    "    unsigned short r;\n"
    "    asm(\"cvt.rn.bf16.f32 %0, %1;\" : \"=h\"(r) : \"f\"(f));\n"
    "    x[i] = r;\n"
    "}\n"
    "extern \"C\" __global__ void arch_probe(int *out)\n"
    "{\n"
    "#if defined(__CUDA_ARCH_FEAT_SM90_ALL)\n"
    "    *out = 900 + 1;   /* sm_90a: arch-specific features on */\n"
    "#else\n"
    "    *out = __CUDA_ARCH__;\n"
    "#endif\n"
    "}\n";

static const char *bad_src =
    "extern \"C\" __global__ void broken(float *x)\n"
    "{\n"
    "    x[0] = undeclared_name + 1.0f;\n"
    "}\n";

/* As the templates do it (templates/cuda/common.cuh): through the toolkit's cuda_bf16.h. */
static const char *header_src =
    "#include <cuda_bf16.h>\n"
    "extern \"C\" __global__ void scale_bf16(__nv_bfloat16 *x, float s)\n"
    "{\n"
    "    x[threadIdx.x] = __float2bfloat16(__bfloat162float(x[threadIdx.x]) * s);\n"
    "}\n";

static CUmodule   module;
static CUfunction fn_add_one, fn_arch_probe;

/* Number of *.cubin entries in cache_dir. */
static int cubin_files(void)
{
    DIR *d = opendir(cache_dir);
    if (d == NULL) return -1;
    int n = 0;
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        size_t len = strlen(e->d_name);
        n += len > 6 && strcmp(e->d_name + len - 6, ".cubin") == 0;
    }
    closedir(d);
    return n;
}

/* Driver-free: compile for sm_90a, then hit the cache. */
static int test_nvrtc_cubin_cache(void)
{
    sky_err err;
    void *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int hit = -1;
    double t0 = now_ms();
    CHECK(sky_nvrtc_cubin(&a, &na, kernel_src, "runtime_test_kernels.cu", 9, 0, 0, cache_dir, &hit, &err) == SKY_OK,
          "%s", err.msg);
    double t1 = now_ms();
    CHECK(hit == 0, "first call into an empty cache reported a hit");
    CHECK(na > 4 && memcmp(a, "\177ELF", 4) == 0, "not an ELF cubin (%zu bytes)", na);
    CHECK(cubin_files() == 1, "%d .cubin files in %s, expected 1", cubin_files(), cache_dir);
    CHECK(sky_nvrtc_cubin(&b, &nb, kernel_src, "runtime_test_kernels.cu", 9, 0, 0, cache_dir, &hit, &err) == SKY_OK,
          "%s", err.msg);
    double t2 = now_ms();
    CHECK(hit == 1, "second call missed the cache");
    CHECK(na == nb && memcmp(a, b, na) == 0, "cached cubin differs from the compiled one");
    /* Another target is another entry. */
    void *c = NULL;
    size_t nc = 0;
    CHECK(sky_nvrtc_cubin(&c, &nc, kernel_src, "runtime_test_kernels.cu", 8, 0, 0, cache_dir, &hit, &err) == SKY_OK,
          "%s", err.msg);
    CHECK(hit == 0 && cubin_files() == 2, "sm_80 shared the sm_90a entry (hit %d, %d files)", hit, cubin_files());
    free(a);
    free(b);
    free(c);
    snprintf(detail, sizeof detail, "sm_90a cubin %zu bytes, compile %.1f ms, cache hit %.2f ms", na, t1 - t0,
             t2 - t1);
    return 0;
}

static int test_nvrtc_compile_error(void)
{
    sky_err err;
    void *cubin = NULL;
    size_t n = 0;
    sky_status st = sky_nvrtc_cubin(&cubin, &n, bad_src, "bad_kernel.cu", 9, 0, 0, cache_dir, NULL, &err);
    CHECK(st == SKY_ERR && cubin == NULL, "a broken source compiled");
    CHECK(strstr(err.msg, "bad_kernel.cu") != NULL, "message lacks the file name: %s", err.msg);
    CHECK(strstr(err.msg, "undeclared_name") != NULL, "message lacks the log: %s", err.msg);
    snprintf(detail, sizeof detail, "message:\n%s", err.msg);
    return 0;
}

/* A source that includes the toolkit's cuda_bf16.h compiles (the include path is found). */
static int test_nvrtc_toolkit_header(void)
{
    sky_err err;
    void *cubin = NULL;
    size_t n = 0;
    int hit = -1;
    CHECK(sky_nvrtc_cubin(&cubin, &n, header_src, "header_kernel.cu", 9, 0, 0, cache_dir, &hit, &err) == SKY_OK,
          "%s (is CUDA_HOME set?)", err.msg);
    CHECK(hit == 0 && n > 4 && memcmp(cubin, "\177ELF", 4) == 0, "no cubin (hit %d, %zu bytes)", hit, n);
    free(cubin);
    snprintf(detail, sizeof detail, "sm_90a cubin %zu bytes", n);
    return 0;
}

static int test_nvrtc_module(void)
{
    sky_err err;
    int hit = -1;
    char dir[300];
    snprintf(dir, sizeof dir, "%s/gpu", cache_dir);
    double t0 = now_ms();
    CHECK(sky_nvrtc_module(&module, kernel_src, "runtime_test_kernels.cu", gpu->cc_major, gpu->cc_minor, dir, &hit,
                           &err) == SKY_OK, "%s", err.msg);
    double t1 = now_ms();
    CHECK(hit == 0, "fresh cache directory reported a hit");
    CUmodule again;
    CHECK(sky_nvrtc_module(&again, kernel_src, "runtime_test_kernels.cu", gpu->cc_major, gpu->cc_minor, dir, &hit,
                           &err) == SKY_OK, "%s", err.msg);
    double t2 = now_ms();
    CHECK(hit == 1, "second load missed the cache");
    SKY_CU_CHECK(cuModuleUnload(again));
    CHECK(sky_nvrtc_function(&fn_add_one, module, "add_one_bf16", &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_nvrtc_function(&fn_arch_probe, module, "arch_probe", &err) == SKY_OK, "%s", err.msg);
    CUfunction none;
    CHECK(sky_nvrtc_function(&none, module, "no_such_kernel", &err) == SKY_ERR && strstr(err.msg, "no_such_kernel"),
          "missing kernel not reported: %s", err.msg);

    /* add_one_bf16 on 1000 values. */
    enum { N = 1000 };
    uint16_t h[N], back[N];
    for (int i = 0; i < N; i++) h[i] = f2bf((float)(i % 50) * 0.25f);
    void *d = upload(h, sizeof h);
    CUdeviceptr p = dptr(d);
    int n = N;
    void *args[] = { &p, &n };
    SKY_CU_CHECK(cuLaunchKernel(fn_add_one, (N + 255) / 256, 1, 1, 256, 1, 1, 0, gpu->stream, args, NULL));
    SKY_CU_CHECK(cuMemcpyDtoHAsync(back, p, sizeof back, gpu->stream));
    sky_cuda_sync(gpu);
    for (int i = 0; i < N; i++)
        CHECK(bf2f(back[i]) == bf2f(h[i]) + 1.0f, "x[%d] = %g, expected %g", i, bf2f(back[i]), bf2f(h[i]) + 1.0f);

    /* The target: sm_90a on a cc 9.0 GPU. */
    int arch = 0;
    CUdeviceptr pa = p;                 /* reuse: 4 bytes */
    void *args2[] = { &pa };
    SKY_CU_CHECK(cuLaunchKernel(fn_arch_probe, 1, 1, 1, 1, 1, 1, 0, gpu->stream, args2, NULL));
    SKY_CU_CHECK(cuMemcpyDtoHAsync(&arch, pa, sizeof arch, gpu->stream));
    sky_cuda_sync(gpu);
    int want = gpu->cc_major == 9 && gpu->cc_minor == 0 ? 901 : gpu->cc_major * 100 + gpu->cc_minor * 10;
    CHECK(arch == want, "kernel reports target %d, expected %d", arch, want);
    sky_cuda_arena_free(gpu, d);

    char arch_name[32];
    sky_nvrtc_arch(arch_name, sizeof arch_name, gpu->cc_major, gpu->cc_minor);
    snprintf(detail, sizeof detail, "%s, compile+load %.1f ms, cache hit+load %.2f ms", arch_name, t1 - t0, t2 - t1);
    return 0;
}

/* A cache entry that the driver refuses is compiled again and replaced. */
static int test_nvrtc_damaged_entry(void)
{
    char dir[300], path[600];
    snprintf(dir, sizeof dir, "%s/gpu", cache_dir);
    DIR *d = opendir(dir);
    CHECK(d != NULL, "no cache directory %s", dir);
    path[0] = '\0';
    for (struct dirent *e; (e = readdir(d)) != NULL;)
        if (strstr(e->d_name, ".cubin") != NULL) snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    closedir(d);
    CHECK(path[0] != '\0', "no cache entry in %s", dir);
    FILE *f = fopen(path, "wb");
    CHECK(f != NULL, "cannot write %s", path);
    fputs("\177ELF but not a cubin", f);
    fclose(f);
    sky_err err;
    int hit = -1;
    CUmodule m;
    CHECK(sky_nvrtc_module(&m, kernel_src, "runtime_test_kernels.cu", gpu->cc_major, gpu->cc_minor, dir, &hit,
                           &err) == SKY_OK, "%s", err.msg);
    CHECK(hit == 0, "the damaged entry was reported as a hit");
    SKY_CU_CHECK(cuModuleUnload(m));
    CHECK(sky_nvrtc_module(&m, kernel_src, "runtime_test_kernels.cu", gpu->cc_major, gpu->cc_minor, dir, &hit,
                           &err) == SKY_OK && hit == 1, "the entry was not replaced (%s)", err.msg);
    SKY_CU_CHECK(cuModuleUnload(m));
    return 0;
}

/* ---- device, arena ------------------------------------------------------------------- */

static int test_open(void)
{
    size_t free_b = 0, total = 0;
    sky_cuda_mem_info(gpu, &free_b, &total);
    CHECK(total > 0 && total <= gpu->total_bytes && free_b <= total, "cuMemGetInfo %zu free of %zu, cuDeviceTotalMem %zu",
          free_b, total, gpu->total_bytes);
    CHECK(gpu->sm_count > 0 && gpu->cc_major > 0, "properties not read");
    char f[32], t[32];
    snprintf(detail, sizeof detail, "GPU %d %s, cc %d.%d, %d SMs, %s free of %s, L2 %zu KiB, driver %d",
             gpu->device, gpu->name, gpu->cc_major, gpu->cc_minor, gpu->sm_count, sky_bytes_fmt(f, sizeof f, free_b),
             sky_bytes_fmt(t, sizeof t, total), gpu->l2_bytes >> 10, gpu->driver_version);
    return 0;
}

static int test_arena_refusal(void)
{
    sky_err err;
    void *p = (void *)1;
    size_t ask = gpu->total_bytes + ((size_t)1 << 30);
    CHECK(sky_cuda_arena_alloc(gpu, ask, &p, "dit_forward", &err) == SKY_ERR, "allocated more than the device has");
    CHECK(p == NULL, "pointer not cleared on failure");
    char bytes[32];
    snprintf(bytes, sizeof bytes, "%zu bytes", ask);
    CHECK(strstr(err.msg, "dit_forward needs") != NULL && strstr(err.msg, bytes) != NULL &&
          strstr(err.msg, " free") != NULL && strstr(err.msg, gpu->name) != NULL, "message: %s", err.msg);
    /* The context is still usable: a small allocation works. */
    CHECK(sky_cuda_arena_alloc(gpu, (size_t)1 << 20, &p, "small", &err) == SKY_OK, "%s", err.msg);
    sky_cuda_arena_free(gpu, p);
    snprintf(detail, sizeof detail, "\"%s\"", err.msg);
    return 0;
}

/* ---- GEMM ---------------------------------------------------------------------------- */

enum { M_MAX = 320, M_SMALL = 200, GN = 392, GK = 264, PROBE_N = 4096, PROBE_M = 16, PROBE_K = 8 };

static const struct gemm_case {
    const char       *name;
    sky_gemm_dtype    a, out;
    sky_gemm_epilogue ep;
} gemm_cases[] = {
    { "gemm_bf16_to_bf16",           SKY_GEMM_BF16, SKY_GEMM_BF16, SKY_GEMM_EPI_NONE },
    { "gemm_bf16_to_bf16_bias",      SKY_GEMM_BF16, SKY_GEMM_BF16, SKY_GEMM_EPI_BIAS },
    { "gemm_bf16_to_bf16_gelu_bias", SKY_GEMM_BF16, SKY_GEMM_BF16, SKY_GEMM_EPI_GELU_TANH_BIAS },
    { "gemm_bf16_to_f32",            SKY_GEMM_BF16, SKY_GEMM_F32,  SKY_GEMM_EPI_NONE },
    { "gemm_bf16_to_f32_bias",       SKY_GEMM_BF16, SKY_GEMM_F32,  SKY_GEMM_EPI_BIAS },
    { "gemm_bf16_to_f32_gelu_bias",  SKY_GEMM_BF16, SKY_GEMM_F32,  SKY_GEMM_EPI_GELU_TANH_BIAS },
    { "gemm_f32_to_f32",             SKY_GEMM_F32,  SKY_GEMM_F32,  SKY_GEMM_EPI_NONE },
    { "gemm_f32_to_f32_bias",        SKY_GEMM_F32,  SKY_GEMM_F32,  SKY_GEMM_EPI_BIAS },
    { "gemm_f32_to_f32_gelu_bias",   SKY_GEMM_F32,  SKY_GEMM_F32,  SKY_GEMM_EPI_GELU_TANH_BIAS },
};
enum { N_CASES = (int)(sizeof gemm_cases / sizeof gemm_cases[0]), PROBE = N_CASES };

static void *workspace;
static void *scratch; /* sky_gemm_tune's operands (SCRATCH_BYTES: every case's x, W, y and bias fit) */
#define SCRATCH_BYTES ((size_t)8 << 20)
static int   current_case;

static sky_gemm_desc case_desc(int i)
{
    if (i == PROBE)
        return (sky_gemm_desc){ PROBE_M, PROBE_N, PROBE_K, SKY_GEMM_F32, SKY_GEMM_F32, SKY_GEMM_EPI_GELU_TANH_BIAS,
                                0, 0, 0, 0 };
    return (sky_gemm_desc){ M_MAX, GN, GK, gemm_cases[i].a, gemm_cases[i].out, gemm_cases[i].ep, 0, 0, 0, 0 };
}

/* Each check builds its own one-GEMM set, so that one kind cuBLASLt refuses fails alone; its algorithm is
 * chosen by measurement as a program's are (no cache), so the checks hold for the algorithm a run uses. */
static sky_gemm_set *one_gemm(int i, sky_err *err)
{
    sky_gemm_desc d = case_desc(i);
    sky_gemm_set *s = NULL;
    if (sky_gemm_init(&s, gpu, &d, 1, workspace, SKY_GEMM_WORKSPACE_BYTES, err) != SKY_OK) return NULL;
    sky_gemm_tune(s, dptr(scratch), SCRATCH_BYTES, NULL, gpu->stream);
    return s;
}

/* The whole table in one set: every algorithm chosen, reported, fingerprinted (twice: the
 * choice must not change between two inits). */
static int test_gemm_init(void)
{
    sky_gemm_desc d[N_CASES + 1];
    for (int i = 0; i <= N_CASES; i++) d[i] = case_desc(i);
    sky_err err;
    sky_gemm_set *gemms = NULL, *again = NULL;
    CHECK(sky_gemm_init(&gemms, gpu, d, N_CASES + 1, workspace, SKY_GEMM_WORKSPACE_BYTES, &err) == SKY_OK, "%s",
          err.msg);
    sky_gemm_algo_report(gemms, stdout);
    CHECK(sky_gemm_init(&again, gpu, d, N_CASES + 1, workspace, SKY_GEMM_WORKSPACE_BYTES, &err) == SKY_OK, "%s",
          err.msg);
    CHECK(sky_gemm_algo_fingerprint(gemms) == sky_gemm_algo_fingerprint(again), "two inits chose differently");
    sky_gemm_free(again);
    sky_gemm_tune(gemms, dptr(scratch), SCRATCH_BYTES, NULL, gpu->stream); /* the measured choices, reported */
    sky_gemm_algo_report(gemms, stdout);
    /* A desc sky_gemm_init() must refuse before any work: f32 inputs with a bf16 output. */
    sky_gemm_desc bad = { 16, 16, 16, SKY_GEMM_F32, SKY_GEMM_BF16, SKY_GEMM_EPI_NONE, 0, 0, 0, 0 };
    sky_gemm_set *none = NULL;
    CHECK(sky_gemm_init(&none, gpu, &bad, 1, workspace, SKY_GEMM_WORKSPACE_BYTES, &err) == SKY_ERR && none == NULL &&
          strstr(err.msg, "gemm 0 (m<=16 n=16 k=16 f32->bf16") != NULL, "invalid desc accepted (%s)", err.msg);
    snprintf(detail, sizeof detail, "%d GEMMs, fingerprint %016llx", sky_gemm_count(gemms),
             (unsigned long long)sky_gemm_algo_fingerprint(gemms));
    sky_gemm_free(gemms);
    return 0;
}

/* Bound on |gpu - ref| for one output, from:
 *   acc   the fp32 accumulation: k products (exact for bf16 inputs, rounded once for fp32
 *         inputs) summed with at most k roundings, each at most one ulp (2u, u = 2^-24:
 *         tensor cores need not round to nearest), so 2 (k + 2) u sum|x_j w_j|;
 *   bias  one more rounding of the fp32 sum: 2u |z|;
 *   gelu  |gelu'| <= 1.13 carries the error of z; the epilogue's own tanh may be the
 *         hardware tanh.approx.f32 (relative error about 2^-11), so 0.5 |z| 2^-11 |tanh|
 *         <= 2^-11 |z|, and a few fp32 roundings 2^-21 |y|;
 *   out   bf16 output: one rounding to nearest, at most half an ulp, 2^-8 |y|.
 * With fp32 inputs computed as TF32 the largest error here would be about 1500 u sum|x w|
 * (simulated with numpy for these sizes), above acc's 532 u sum|x w|; true fp32 gives about
 * 4 u sum|x w|. The "acc" figure on the ok line is max |err| / (u sum|x w|) for f32 outputs. */
static double gemm_bound(int k, double sum_abs, double z, double y, int gelu, int out_bf16)
{
    const double u = 0x1p-24;
    double dz = 2.0 * (k + 2) * u * sum_abs + 2.0 * u * fabs(z);
    double dy = gelu ? 1.13 * dz + 0x1p-11 * fabs(z) + 0x1p-21 * fabs(y) : dz + 2.0 * u * fabs(y);
    if (out_bf16) dy = dy * (1.0 + 0x1p-8) + 0x1p-8 * fabs(y);
    return dy + 1e-30;
}

static int test_gemm_case(void)
{
    const struct gemm_case *gc = &gemm_cases[current_case];
    sky_err err;
    sky_gemm_set *gemms = one_gemm(current_case, &err);
    CHECK(gemms != NULL, "%s", err.msg);
    const int in32 = gc->a == SKY_GEMM_F32, out32 = gc->out == SKY_GEMM_F32;
    const size_t esz_in = in32 ? 4 : 2, esz_out = out32 ? 4 : 2;
    double *x = malloc(sizeof *x * M_MAX * GK), *w = malloc(sizeof *w * GN * GK), *b = malloc(sizeof *b * GN);
    unsigned char *hx = malloc(esz_in * M_MAX * GK), *hw = malloc(esz_in * GN * GK), *hb = malloc(esz_out * GN);
    unsigned char *hy = malloc(esz_out * M_MAX * GN);
    CHECK(x && w && b && hx && hw && hb && hy, "out of host memory");

    /* Inputs: bf16 values, or full fp32 values for the fp32 GEMM (bf16-exact values would
     * hide TF32). W scaled so that z = xW^T + b spreads over about [-3, 3]. */
    const double ws = 2.0 / sqrt((double)GK);
    for (int i = 0; i < M_MAX * GK; i++) {
        float v = (float)uniform();
        if (in32) { memcpy(hx + 4 * (size_t)i, &v, 4); x[i] = v; }
        else { uint16_t h = f2bf(v); memcpy(hx + 2 * (size_t)i, &h, 2); x[i] = bf2f(h); }
    }
    for (int i = 0; i < GN * GK; i++) {
        float v = (float)(uniform() * ws);
        if (in32) { memcpy(hw + 4 * (size_t)i, &v, 4); w[i] = v; }
        else { uint16_t h = f2bf(v); memcpy(hw + 2 * (size_t)i, &h, 2); w[i] = bf2f(h); }
    }
    for (int j = 0; j < GN; j++) {
        float v = gc->ep == SKY_GEMM_EPI_NONE ? 0.0f : (float)uniform();
        if (out32) { memcpy(hb + 4 * (size_t)j, &v, 4); b[j] = v; }
        else { uint16_t h = f2bf(v); memcpy(hb + 2 * (size_t)j, &h, 2); b[j] = bf2f(h); }
    }
    void *dx = upload(hx, esz_in * M_MAX * GK), *dw = upload(hw, esz_in * GN * GK), *db = upload(hb, esz_out * GN);
    void *dy = upload(NULL, esz_out * M_MAX * GN);

    double worst_err = 0, worst_ratio = 0, worst_acc = 0;
    const int ms[2] = { M_SMALL, M_MAX };
    for (int pass = 0; pass < 2; pass++) {
        const int m = ms[pass];
        SKY_CU_CHECK(cuMemsetD8Async(dptr(dy), 0xff, esz_out * M_MAX * GN, gpu->stream));   /* NaN fill */
        sky_gemm_run(gemms, 0, m, dx, dw, gc->ep == SKY_GEMM_EPI_NONE ? NULL : db, dy, gpu->stream);
        SKY_CU_CHECK(cuMemcpyDtoHAsync(hy, dptr(dy), esz_out * M_MAX * GN, gpu->stream));
        sky_cuda_sync(gpu);
        for (int i = 0; i < M_MAX; i++) {
            for (int j = 0; j < GN; j++) {
                double g;
                if (out32) { float f; memcpy(&f, hy + 4 * ((size_t)i * GN + j), 4); g = f; }
                else { uint16_t h; memcpy(&h, hy + 2 * ((size_t)i * GN + j), 2); g = bf2f(h); }
                if (i >= m) {           /* rows past m are untouched (still the NaN fill) */
                    CHECK(isnan(g), "m = %d: row %d was written", m, i);
                    continue;
                }
                double s = 0, sa = 0;
                for (int t = 0; t < GK; t++) {
                    double p = x[(size_t)i * GK + t] * w[(size_t)j * GK + t];
                    s += p;
                    sa += fabs(p);
                }
                double z = s + b[j];
                int gelu = gc->ep == SKY_GEMM_EPI_GELU_TANH_BIAS;
                double ref = gelu ? gelu_tanh(z) : z;
                double e = fabs(g - ref), bound = gemm_bound(GK, sa, z, ref, gelu, !out32);
                CHECK(e <= bound, "m = %d, y[%d][%d] = %.9g, reference %.9g, |err| %.3g > bound %.3g", m, i, j, g, ref,
                      e, bound);
                if (e > worst_err) worst_err = e;
                if (e / bound > worst_ratio) worst_ratio = e / bound;
                if (out32 && !gelu && e / (0x1p-24 * sa + 1e-30) > worst_acc) worst_acc = e / (0x1p-24 * sa + 1e-30);
            }
        }
    }
    sky_cuda_arena_free(gpu, dx);
    sky_cuda_arena_free(gpu, dw);
    sky_cuda_arena_free(gpu, db);
    sky_cuda_arena_free(gpu, dy);
    free(x); free(w); free(b); free(hx); free(hw); free(hb); free(hy);
    sky_gemm_free(gemms);
    int n = snprintf(detail, sizeof detail, "m = %d and %d, n = %d, k = %d: max |err| %.3g, %.0f%% of the bound",
                     M_SMALL, M_MAX, GN, GK, worst_err, 100.0 * worst_ratio);
    if (worst_acc > 0 && n > 0 && (size_t)n < sizeof detail)
        snprintf(detail + n, sizeof detail - (size_t)n, ", acc %.1f u sum|xw|", worst_acc);
    return 0;
}

/* The GELU epilogue's form, measured: z = x W^T is exact here (x one-hot, W's first column a
 * grid over [-5, 5]), so y = GELU(z) isolates the epilogue. d = y - gelu_tanh(z) is fitted
 * on the signature s = gelu_erf(z) - gelu_tanh(z) (at most 4.7e-4, at |z| = 2.7):
 * alpha = <d, s> / <s, s> is about 0 for the tanh form and about 1 for the erf form, whatever
 * the precision of the epilogue's tanh. */
static int test_gemm_gelu_form(void)
{
    static float hx[PROBE_M * PROBE_K], hw[PROBE_N * PROBE_K], hb[PROBE_N], hy[PROBE_M * PROBE_N];
    sky_err err;
    sky_gemm_set *gemms = one_gemm(PROBE, &err);
    CHECK(gemms != NULL, "%s", err.msg);
    memset(hx, 0, sizeof hx);
    memset(hw, 0, sizeof hw);
    memset(hb, 0, sizeof hb);
    for (int i = 0; i < PROBE_M; i++) hx[i * PROBE_K] = 1.0f;
    for (int j = 0; j < PROBE_N; j++) hw[j * PROBE_K] = (float)(-5.0 + 10.0 * j / (PROBE_N - 1));
    void *dx = upload(hx, sizeof hx), *dw = upload(hw, sizeof hw), *db = upload(hb, sizeof hb);
    void *dy = upload(NULL, sizeof hy);
    sky_gemm_run(gemms, 0, PROBE_M, dx, dw, db, dy, gpu->stream);
    SKY_CU_CHECK(cuMemcpyDtoHAsync(hy, dptr(dy), sizeof hy, gpu->stream));
    sky_cuda_sync(gpu);
    double ds = 0, ss = 0, max_tanh = 0, max_erf = 0;
    for (int j = 0; j < PROBE_N; j++) {
        double z = hw[j * PROBE_K], y = hy[j];          /* row 0; rows are identical */
        double d = y - gelu_tanh(z), s = gelu_erf(z) - gelu_tanh(z);
        ds += d * s;
        ss += s * s;
        if (fabs(d) > max_tanh) max_tanh = fabs(d);
        if (fabs(y - gelu_erf(z)) > max_erf) max_erf = fabs(y - gelu_erf(z));
    }
    double alpha = ds / ss;
    sky_gemm_free(gemms);
    sky_cuda_arena_free(gpu, dx);
    sky_cuda_arena_free(gpu, dw);
    sky_cuda_arena_free(gpu, db);
    sky_cuda_arena_free(gpu, dy);
    snprintf(detail, sizeof detail, "alpha %.3f (0 tanh, 1 erf); max |y - gelu_tanh| %.3g, max |y - gelu_erf| %.3g",
             alpha, max_tanh, max_erf);
    CHECK(fabs(alpha) < 0.25, "CUBLASLT_EPILOGUE_GELU_BIAS does not look like the tanh form: %s", detail);
    return 0;
}

/* ---- CUDA Graph ---------------------------------------------------------------------- */

typedef struct step_ctx {
    sky_gemm_set *gemm;                 /* one GEMM: bf16 -> bf16 + bias */
    int         m, count;
    void       *x, *w, *b;
    CUdeviceptr y;
} step_ctx;

/* One "step": y = x W^T + b (bf16), then y += 1 by the NVRTC kernel. */
static void record_step(void *p, CUstream s)
{
    step_ctx *c = p;
    sky_gemm_run(c->gemm, 0, c->m, c->x, c->w, c->b, (void *)(uintptr_t)c->y, s);
    SKY_CUDA_SYNC_CHECK(gpu, "gemm_bf16_to_bf16_bias");
    void *args[] = { &c->y, &c->count };
    SKY_CU_CHECK(cuLaunchKernel(fn_add_one, (unsigned)(c->count + 255) / 256, 1, 1, 256, 1, 1, 0, s, args, NULL));
    SKY_CUDA_SYNC_CHECK(gpu, "add_one_bf16");
}

/* Reset y, run the step through g (eager or graph), return y's bytes in out. */
static int run_step(sky_graph_cache *g, int key, step_ctx *c, uint16_t *out, sky_err *err)
{
    SKY_CU_CHECK(cuMemsetD8Async(c->y, 0, sizeof(uint16_t) * (size_t)c->count, gpu->stream));
    if (sky_graph_run(g, key, record_step, c, err) != SKY_OK) return 1;
    SKY_CU_CHECK(cuMemcpyDtoHAsync(out, c->y, sizeof(uint16_t) * (size_t)c->count, gpu->stream));
    sky_cuda_sync(gpu);
    return 0;
}

static int test_graph(void)
{
    CHECK(fn_add_one != NULL, "needs the NVRTC module (test_nvrtc_module failed)");
    const int m = M_SMALL, count = M_SMALL * GN;
    uint16_t *hx = malloc(2 * (size_t)M_MAX * GK), *hw = malloc(2 * (size_t)GN * GK), hb[GN];
    uint16_t *eager = malloc(2 * (size_t)count), *warm = malloc(2 * (size_t)count);
    uint16_t *first = malloc(2 * (size_t)count), *again = malloc(2 * (size_t)count);
    CHECK(hx && hw && eager && warm && first && again, "out of host memory");
    for (int i = 0; i < M_MAX * GK; i++) hx[i] = f2bf((float)uniform());
    for (int i = 0; i < GN * GK; i++) hw[i] = f2bf((float)(uniform() * 0.1));
    for (int j = 0; j < GN; j++) hb[j] = f2bf((float)uniform());
    sky_err err;
    step_ctx c = { one_gemm(1, &err), m, count, upload(hx, 2 * (size_t)M_MAX * GK), upload(hw, 2 * (size_t)GN * GK),
                   upload(hb, sizeof hb), dptr(upload(NULL, 2 * (size_t)count)) };
    CHECK(c.gemm != NULL, "%s", err.msg);
    sky_graph_cache *g = NULL;
    CHECK(sky_graph_cache_init(&g, gpu, 2, &err) == SKY_OK, "%s", err.msg);
    sky_cuda_set_debug(gpu, 0, 1);                       /* --sync-check: eager, synchronised */
    CHECK(run_step(g, 7, &c, eager, &err) == 0, "%s", err.msg);
    CHECK(run_step(g, 7, &c, eager, &err) == 0, "%s", err.msg);
    CHECK(sky_graph_cache_captures(g) == 0, "eager mode captured a graph");
    sky_cuda_set_debug(gpu, 0, 0);
    CHECK(run_step(g, 7, &c, warm, &err) == 0, "%s", err.msg);       /* first run of key 7: eager */
    CHECK(sky_graph_cache_captures(g) == 0, "the first run of a key captured");
    double t0 = now_ms();
    CHECK(run_step(g, 7, &c, first, &err) == 0, "%s", err.msg);      /* capture + launch */
    double t1 = now_ms();
    CHECK(run_step(g, 7, &c, again, &err) == 0, "%s", err.msg);      /* replay */
    double t2 = now_ms();
    CHECK(sky_graph_cache_captures(g) == 1 && sky_graph_cache_size(g) == 1, "%d captures, %d graphs for one key",
          sky_graph_cache_captures(g), sky_graph_cache_size(g));
    CHECK(memcmp(eager, warm, 2 * (size_t)count) == 0, "warm-up run differs from the eager run");
    CHECK(memcmp(eager, first, 2 * (size_t)count) == 0, "captured run differs from the eager run");
    CHECK(memcmp(eager, again, 2 * (size_t)count) == 0, "replay differs from the eager run");
    int nonzero = 0;
    for (int i = 0; i < count; i++) nonzero += eager[i] != 0;
    CHECK(nonzero > count / 2, "the step wrote nothing (%d of %d nonzero)", nonzero, count);

    /* More keys than the bound (2): key 7, the least recently used, goes. */
    for (int key = 8; key <= 9; key++)
        for (int run = 0; run < 2; run++) CHECK(run_step(g, key, &c, again, &err) == 0, "%s", err.msg);
    CHECK(sky_graph_cache_captures(g) == 3 && sky_graph_cache_size(g) == 2, "captures %d, held %d",
          sky_graph_cache_captures(g), sky_graph_cache_size(g));
    CHECK(run_step(g, 9, &c, again, &err) == 0, "%s", err.msg);
    CHECK(sky_graph_cache_captures(g) == 3, "key 9 captured twice");
    CHECK(memcmp(eager, again, 2 * (size_t)count) == 0, "replay after eviction differs");
    CHECK(run_step(g, 7, &c, again, &err) == 0 && run_step(g, 7, &c, again, &err) == 0, "%s", err.msg);
    CHECK(sky_graph_cache_captures(g) == 4, "evicted key 7 not captured again (%d)", sky_graph_cache_captures(g));
    CHECK(memcmp(eager, again, 2 * (size_t)count) == 0, "key 7 after eviction differs");
    sky_graph_cache_free(g);
    sky_cuda_sync(gpu);
    sky_gemm_free(c.gemm);
    sky_cuda_arena_free(gpu, c.x);
    sky_cuda_arena_free(gpu, c.w);
    sky_cuda_arena_free(gpu, c.b);
    sky_cuda_arena_free(gpu, (void *)(uintptr_t)c.y);
    free(hx); free(hw); free(eager); free(warm); free(first); free(again);
    snprintf(detail, sizeof detail, "gemm + NVRTC kernel, %d bf16 outputs identical; capture+run %.2f ms, replay %.2f ms",
             count, t1 - t0, t2 - t1);
    return 0;
}

/* ---- main ---------------------------------------------------------------------------- */

static int make_cache_dir(void)
{
    snprintf(cache_dir, sizeof cache_dir, "/tmp/sky_runtime_test_XXXXXX");
    if (mkdtemp(cache_dir) == NULL) {
        perror("runtime_test: mkdtemp");
        return 1;
    }
    printf("NVRTC cache for this run: %s (removed at the end)\n", cache_dir);
    return 0;
}

/* Remove the files in dir, then dir. */
static void remove_dir(const char *dir)
{
    DIR *d = opendir(dir);
    if (d == NULL) return;
    char path[600];
    for (struct dirent *e; (e = readdir(d)) != NULL;) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
        remove(path);
    }
    closedir(d);
    rmdir(dir);
}

static void remove_cache_dir(void)
{
    char sub[300];
    snprintf(sub, sizeof sub, "%s/gpu", cache_dir);
    remove_dir(sub);
    remove_dir(cache_dir);
}

int main(int argc, char **argv)
{
    int nvrtc_only = argc > 1 && strcmp(argv[1], "--nvrtc-only") == 0;
    if (nvrtc_only) {
        if (make_cache_dir() != 0) return 1;
        run_case("nvrtc_cubin_cache", test_nvrtc_cubin_cache);
        run_case("nvrtc_compile_error", test_nvrtc_compile_error);
        run_case("nvrtc_toolkit_header", test_nvrtc_toolkit_header);
        remove_cache_dir();
        return CHECK_SUMMARY();
    }

    CUresult r = cuInit(0);
    int count = 0;
    if (r == CUDA_SUCCESS) r = cuDeviceGetCount(&count);
    if (r != CUDA_SUCCESS || count == 0) {
        printf("not run (no GPU): %s\n", r != CUDA_SUCCESS ? sky_cu_error_name(r) : "the driver sees no device");
        return 77;
    }
    sky_err err;
    if (make_cache_dir() != 0) return 1;
    if (sky_cuda_open(&gpu, 0, &err) != SKY_OK) {
        printf("FAIL open: %s\n0 passed, 1 failed\n", err.msg);
        return 1;
    }
    run_case("open", test_open);
    run_case("arena_refusal", test_arena_refusal);
    run_case("nvrtc_cubin_cache", test_nvrtc_cubin_cache);
    run_case("nvrtc_compile_error", test_nvrtc_compile_error);
    run_case("nvrtc_toolkit_header", test_nvrtc_toolkit_header);
    run_case("nvrtc_module", test_nvrtc_module);
    run_case("nvrtc_damaged_entry", test_nvrtc_damaged_entry);
    workspace = upload(NULL, SKY_GEMM_WORKSPACE_BYTES);
    scratch = upload(NULL, SCRATCH_BYTES);
    run_case("gemm_init", test_gemm_init);
    for (current_case = 0; current_case < N_CASES; current_case++)
        run_case(gemm_cases[current_case].name, test_gemm_case);
    run_case("gemm_gelu_is_tanh_form", test_gemm_gelu_form);
    run_case("graph_replay_matches_eager", test_graph);
    sky_cuda_arena_free(gpu, workspace);
    sky_cuda_arena_free(gpu, scratch);
    if (module != NULL) SKY_CU_CHECK(cuModuleUnload(module));
    sky_cuda_close(gpu);
    remove_cache_dir();
    return CHECK_SUMMARY();
}
