/* tests/emu/selftest.c — checks of the CPU emulator itself, on the kernels of selftest.cu.
 *
 *   selftest works      block sums (barrier, shared memory, shuffles), one mma.m16n8k16 through
 *                       cp.async + ldmatrix against a plain matrix product, cp.async visibility;
 *                       prints one line per check, exits 1 on a mismatch
 *   selftest FAULT      runs a kernel that must fault (divergent_barrier, divergent_shuffle,
 *                       smem_overrun, wgmma_unwaited); the emulator must stop it with exit code 3 (run.sh
 *                       checks)
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

#include "emu.h"

static const sky_emu_kernel *kernel(const char *name)
{
    const sky_emu_module_def *m = sky_emu_find_module("tests/emu/selftest.cu");
    for (int i = 0; m && i < m->n; i++)
        if (strcmp(m->kernels[i].name, name) == 0) return &m->kernels[i];
    fprintf(stderr, "selftest: no kernel %s\n", name);
    exit(2);
}

static void *dev(size_t bytes)
{
    CUdeviceptr p;
    if (cuMemAlloc(&p, bytes) != CUDA_SUCCESS) { fprintf(stderr, "selftest: cuMemAlloc\n"); exit(2); }
    return (void *)(uintptr_t)p;
}

static int failures;

static void check(int ok, const char *what)
{
    printf("%s %s\n", ok ? "ok  " : "FAIL", what);
    failures += !ok;
}

static int works(void)
{
    /* block sums: 2 blocks of 256 */
    float *in = dev(512 * 4), *out = dev(512 * 4);
    for (int i = 0; i < 512; i++) in[i] = (float)(i % 7) - 3.0f;
    void *a1[] = { &out, &in };
    sky_emu_launch(kernel("block_sum_kernel"), 2, 1, 1, 256, 1, 1, 0, a1);
    int ok = 1;
    for (int b = 0; b < 2; b++) {
        float s = 0;
        for (int i = 0; i < 256; i++) s += in[b * 256 + i];
        for (int i = 0; i < 256; i++) ok &= out[b * 256 + i] == s;
    }
    check(ok, "block_sum: __syncthreads, static shared memory and __shfl_xor_sync give the block sums");

    /* mma: D = A B with A [16,16], B [16,8] (stored as B^T [8,16]) of small integers (exact in bf16 and fp32) */
    uint16_t *a = dev(16 * 16 * 2), *bt = dev(8 * 16 * 2);
    float *d = dev(16 * 8 * 4), A[16][16], Bm[16][8];
    for (int r = 0; r < 16; r++)
        for (int k = 0; k < 16; k++) A[r][k] = (float)((r * 5 + k * 3) % 11 - 5), a[r * 16 + k] = sky_emu_f32_to_bf16(A[r][k]);
    for (int k = 0; k < 16; k++)
        for (int n = 0; n < 8; n++) Bm[k][n] = (float)((k * 7 + n * 2) % 9 - 4), bt[n * 16 + k] = sky_emu_f32_to_bf16(Bm[k][n]);
    void *a2[] = { &d, &a, &bt };
    sky_emu_launch(kernel("mma_kernel"), 1, 1, 1, 32, 1, 1, 768, a2);
    ok = 1;
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 8; n++) {
            float s = 0;
            for (int k = 0; k < 16; k++) s += A[r][k] * Bm[k][n];
            ok &= d[r * 8 + n] == s;
        }
    check(ok, "mma.m16n8k16 with cp.async + ldmatrix fragments equals the matrix product A B");

    /* cp.async visibility */
    float *src = dev(16), *o2 = dev(8);
    src[0] = 42.0f;
    void *a3[] = { &o2, &src };
    sky_emu_launch(kernel("cp_async_order_kernel"), 1, 1, 1, 32, 1, 1, 16, a3);
    check(isnan(o2[0]) && o2[1] == 42.0f, "cp.async: shared memory unchanged before cp.async.wait_group, the copy after");

    /* two devices (SKY_EMU_DEVICES=2, set by main): memory belongs to the device it was allocated on */
    CUcontext c0, c1;
    CUdeviceptr p1;
    int n = 0;
    float host[4] = { 1, 2, 3, 4 };
    ok = cuDeviceGetCount(&n) == CUDA_SUCCESS && n == 2 && cuDevicePrimaryCtxRetain(&c0, 0) == CUDA_SUCCESS &&
         cuDevicePrimaryCtxRetain(&c1, 1) == CUDA_SUCCESS && cuCtxSetCurrent(c1) == CUDA_SUCCESS &&
         cuMemAlloc(&p1, sizeof host) == CUDA_SUCCESS && cuMemcpyHtoD(p1, host, sizeof host) == CUDA_SUCCESS &&
         cuCtxSetCurrent(c0) == CUDA_SUCCESS;
    fprintf(stderr, "(a line about device 0 using device 1's memory is expected next)\n");
    ok = ok && cuMemcpyHtoD(p1, host, sizeof host) == CUDA_ERROR_INVALID_VALUE;
    check(ok, "two devices: device 1's allocation is written on device 1 and refused to device 0");
    sky_emu_stats st = sky_emu_get_stats();
    printf("     %llu launches, %llu blocks, %llu threads, %llu barriers, %llu warp collectives\n",
           (unsigned long long)st.launches, (unsigned long long)st.blocks, (unsigned long long)st.threads,
           (unsigned long long)st.barriers, (unsigned long long)st.collectives);
    return failures ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: selftest works|divergent_barrier|divergent_shuffle|smem_overrun|wgmma_unwaited\n"); return 2; }
    setenv("SKY_EMU_DEVICES", "2", 1);           /* works() checks that memory stays on its device */
    CUcontext ctx;                             /* device 0's context, current here (as the driver wants) */
    if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
        cuCtxSetCurrent(ctx) != CUDA_SUCCESS) { fprintf(stderr, "no emulated device\n"); return 2; }
    if (strcmp(argv[1], "works") == 0) return works();
    float *out = dev(64 * 4);
    void *args[] = { &out };
    char name[64];
    snprintf(name, sizeof name, "%s_kernel", argv[1]);
    const int wg = strcmp(argv[1], "wgmma_unwaited") == 0;
    const unsigned threads = wg ? 128 : strcmp(argv[1], "divergent_barrier") == 0 ? 64 : 32;
    const unsigned smem = wg ? 32768 + 1024 : strcmp(argv[1], "smem_overrun") == 0 ? 256 : 0;
    sky_emu_launch(kernel(name), 1, 1, 1, threads, 1, 1, smem, args);
    printf("selftest: %s ran to the end without a fault\n", argv[1]);
    return 0;
}
