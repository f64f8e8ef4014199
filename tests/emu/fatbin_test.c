/* tests/emu/fatbin_test.c — the plugin's built-in kernels (runtime/cuda/fatbin.c) on the emulated driver.
 *
 *   fatbin_test [<kernels.fatbin> <kernels.cu>]
 *
 * 1. sky_fatbin_covers: the image each compute capability gets from a list of nvcc targets, from CUDA's
 *    compatibility rules (a cubin runs on its own major version from its minor up, an "a" cubin on its own
 *    compute capability only, PTX on its own and newer ones through the driver's JIT) and ours (a cc 9.0 GPU
 *    only through sm_90a: the Hopper attention needs the arch-specific features).
 * 2. With a real fat binary (nvcc -fatbin with an sm_90a cubin) and the text it was compiled from:
 *    sky_fatbin_module loads it (the emulated driver maps its bytes to a module registered here with their
 *    xxh64, as tests/emu/build.sh registers the plugin's); a text one byte off is refused as a stale build;
 *    the same bytes with the cubin's arch-specific flag cleared have no image for the emulated cc 9.0 GPU
 *    and the runtime falls back to NVRTC (loaded = 0); a wrong magic and entries that do not add up to the
 *    header's size are refused as invalid images. Prints one line per check; exit 1 on a failure.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>
#include <xxhash.h>

#include "cuda/fatbin.h"
#include "emu.h"

static int failures, checks;

static void check(int ok, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void check(int ok, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    printf("%s ", ok ? "ok  " : "FAIL");
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
    failures += !ok;
    checks++;
}

static void test_covers(void)
{
#define all "sm_80 sm_86 sm_89 sm_90a compute_90"
    static const struct {
        const char *archs;
        int         major, minor;
        const char *want;
    } cases[] = {
        {all, 8, 0, "sm_80 cubin"},
        {all, 8, 6, "sm_86 cubin"},
        {all, 8, 7, "sm_86 cubin"}, /* same major, older minor */
        {all, 8, 9, "sm_89 cubin"},
        {all, 9, 0, "sm_90a cubin"},
        {all, 10, 0, "compute_90 PTX, compiled by the driver"},
        {all, 12, 0, "compute_90 PTX, compiled by the driver"},
        {all, 7, 5, NULL},          /* older than every target */
        {"compute_90", 9, 0, NULL}, /* cc 9.0 needs the sm_90a cubin */
        {"sm_90", 9, 0, NULL},
        {"sm_80 compute_80", 9, 0, NULL},
        {"sm_90a", 8, 6, NULL},
        {"sm_90a", 10, 0, NULL}, /* an "a" cubin runs on its own cc only */
        {"sm_86", 8, 0, NULL},   /* a newer minor than the device's */
        {"compute_80", 8, 6, "compute_80 PTX, compiled by the driver"},
        {"", 9, 0, NULL},
        {"bogus sm_x sm_90a", 9, 0, "sm_90a cubin"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char      what[96] = "";
        const int got = sky_fatbin_covers(cases[i].archs, cases[i].major, cases[i].minor, what, sizeof what);
        const int ok = cases[i].want ? got && strcmp(what, cases[i].want) == 0 : !got;
        check(ok, "covers(\"%s\", cc %d.%d): %s (want %s)", cases[i].archs, cases[i].major, cases[i].minor,
              got ? what : "no image", cases[i].want ? cases[i].want : "no image");
    }
#undef all
}

static unsigned char *read_file(const char *path, size_t *n, int text)
{
    FILE *f = fopen(path, "rb");
    if (!f) {
        fprintf(stderr, "fatbin_test: cannot open %s\n", path);
        exit(2);
    }
    fseek(f, 0, SEEK_END);
    *n = (size_t)ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *buf = aligned_alloc(16, (*n + 16) / 16 * 16 + 16);
    if (!buf || fread(buf, 1, *n, f) != *n) exit(2);
    fclose(f);
    if (text) buf[*n] = 0;
    return buf;
}

/* Try fb (with this source) through the runtime; returns the status and sets *loaded, and the driver's own
 * answer in *r. */
static sky_status try_load(const sky_fatbin *fb, const char *src, int *loaded, CUresult *r)
{
    CUmodule         m = NULL;
    char             what[96];
    sky_err          err = {0};
    const sky_status st = sky_fatbin_module(&m, fb, src, 9, 0, loaded, what, sizeof what, &err);
    if (st) printf("     (message: %s)\n", err.msg);
    if (m) cuModuleUnload(m);
    CUmodule m2 = NULL;
    *r = cuModuleLoadData(&m2, fb->data);
    if (m2) cuModuleUnload(m2);
    return st;
}

static void test_load(const char *fatbin_path, const char *cu_path)
{
    size_t                    n, ns;
    unsigned char            *data = read_file(fatbin_path, &n, 0);
    char                     *src = (char *)read_file(cu_path, &ns, 1);
    static sky_emu_module_def def = {"gen/test_kernels.cu", 0, 0, NULL, 0};
    def.source_xxh64 = XXH64(src, ns, 0);
    def.fatbin_xxh64 = XXH64(data, n, 0);
    sky_emu_register(&def);
    sky_fatbin fb = {"gen/test_kernels.cu", data, n, XXH64(src, ns, 0), "sm_90a", NULL};
    int        loaded;
    CUresult   r;

    sky_status st = try_load(&fb, src, &loaded, &r);
    check(st == SKY_OK && loaded && r == CUDA_SUCCESS, "%s (%zu bytes): loaded through the emulated driver",
          fatbin_path, n);

    src[ns / 2] ^= 1;
    st = try_load(&fb, src, &loaded, &r);
    check(st == SKY_ERR && !loaded, "the same fat binary with its source one byte off: refused as a stale build");
    src[ns / 2] ^= 1;

    /* the arch-specific flag (byte 40 of an entry header, bit 20) of every arch-90 cubin cleared */
    unsigned char *copy = aligned_alloc(16, (n + 15) / 16 * 16);
    memcpy(copy, data, n);
    int cleared = 0;
    for (size_t off = 16; off + 64 <= n;) {
        uint16_t kind;
        uint32_t eh, arch;
        uint64_t payload, flags;
        memcpy(&kind, copy + off, 2), memcpy(&eh, copy + off + 4, 4), memcpy(&payload, copy + off + 8, 8);
        memcpy(&arch, copy + off + 28, 4), memcpy(&flags, copy + off + 40, 8);
        if (kind == 2 && arch == 90 && (flags & 0x100000u)) {
            flags &= ~(uint64_t)0x100000u;
            memcpy(copy + off + 40, &flags, 8);
            cleared++;
        }
        off += eh + payload;
    }
    fb.data = copy;
    st = try_load(&fb, src, &loaded, &r);
    check(cleared && st == SKY_OK && !loaded && r == CUDA_ERROR_NO_BINARY_FOR_GPU,
          "with its sm_90a cubin marked plain sm_90 (%d cleared): no image for the emulated GPU, NVRTC instead "
          "(driver: CUresult %d)",
          cleared, (int)r);

    memcpy(copy, data, n);
    copy[0] ^= 0xff;
    CUmodule m = NULL;
    r = cuModuleLoadData(&m, copy);
    check(r == CUDA_ERROR_INVALID_IMAGE, "a wrong magic: CUresult %d", (int)r);

    memcpy(copy, data, n);
    uint64_t size;
    memcpy(&size, copy + 8, 8);
    size -= 8;
    memcpy(copy + 8, &size, 8);
    r = cuModuleLoadData(&m, copy);
    check(r == CUDA_ERROR_INVALID_IMAGE, "entries that do not add up to the header's size: CUresult %d", (int)r);
    fb.data = data;
    free(copy);
    free(data);
    free(src);
}

int main(int argc, char **argv)
{
    CUcontext ctx;
    if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
        cuCtxSetCurrent(ctx) != CUDA_SUCCESS) {
        fprintf(stderr, "no emulated device\n");
        return 2;
    }
    test_covers();
    if (argc == 3) test_load(argv[1], argv[2]);
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
