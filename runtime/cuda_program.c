/* runtime/cuda_program.c — what the plugin's programs share (cuda_program.h): kernel launches and GEMMs
 * of the generated launch sequences, loading a program's kernels, copying a traced op output to the
 * host, and the plugin's one exported table (dit_plugin.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_ctx.h"
#include "cuda_program.h"
#include "nvrtc_cache.h"

#ifndef SKY_PLUGIN_VARIANT
#error "build with -DSKY_PLUGIN_VARIANT=\"<variant>\" (CMakeLists.txt does)"
#endif

void sky_cuda_launch(const sky_cuda_program *st, int kernel, unsigned gx, unsigned gy, unsigned bx, unsigned smem,
                     CUstream s, void **args)
{
    SKY_CU_CHECK(cuLaunchKernel(st->fn[kernel], gx, gy, 1, bx, 1, 1, smem, s, args, NULL));
}

void sky_cuda_gemm(const sky_cuda_program *st, int i, int m, CUdeviceptr x, CUdeviceptr w, CUdeviceptr bias,
                   CUdeviceptr y, CUstream s)
{
    sky_gemm_run((sky_gemm_set *)st->gemm, i, m, (const void *)(uintptr_t)x, (const void *)(uintptr_t)w,
                 (const void *)(uintptr_t)bias, (void *)(uintptr_t)y, s);
}

sky_status sky_cuda_kernels_load(sky_cuda *c, const char *src, const char *file, int n, const char *const *names,
                                 const char *smem_prefix, int smem, CUmodule *module, CUfunction *fn, sky_err *err)
{
    if (sky_nvrtc_module(module, src, file, c->cc_major, c->cc_minor, NULL, NULL, err)) return SKY_ERR;
    for (int k = 0; k < n; k++) {
        if (sky_nvrtc_function(&fn[k], *module, names[k], err)) return SKY_ERR;
        if (smem_prefix && strncmp(names[k], smem_prefix, strlen(smem_prefix)) == 0)
            SKY_CU_CHECK(cuFuncSetAttribute(fn[k], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem));
    }
    return SKY_OK;
}

void sky_cuda_trace_copy(sky_cuda_trace *t, const sky_cuda_program *st, CUstream s, const char *name, size_t off,
                         int dtype, long long n, int cl)
{
    const size_t bytes = (size_t)n * (dtype == SKY_TRACE_BF16 ? 2 : dtype == SKY_TRACE_F32 ? 4 : 8);
    if (bytes > t->cap) {
        void *p = realloc(t->host, bytes);
        if (!p) {
            fprintf(stderr, "cuda: out of host memory tracing %s\n", name);
            exit(1);
        }
        t->host = p, t->cap = bytes;
    }
    SKY_CU_CHECK(cuMemcpyDtoHAsync(t->host, st->arena + off, bytes, s));
    SKY_CU_CHECK(cuStreamSynchronize(s));
    t->fn(t->ctx, name, t->host, dtype, n, cl);
}

/* The plugin's one exported symbol (dlsym'ed by runtime/plugin.c; everything else is hidden). */
__attribute__((visibility("default"))) extern const sky_dit_cuda_plugin sky_dit_cuda_plugin_v1;
const sky_dit_cuda_plugin sky_dit_cuda_plugin_v1 = {
    .abi = SKY_DIT_CUDA_ABI, .variant = SKY_PLUGIN_VARIANT,
    .open = sky_dit_cuda_open, .forward = sky_dit_cuda_forward, .device = sky_dit_cuda_device,
    .close = sky_dit_cuda_close, .set_trace = sky_dit_cuda_set_trace,
    .vae_open = sky_vae_cuda_open, .vae_reset = sky_vae_cuda_reset, .vae_chunk = sky_vae_cuda_chunk,
    .vae_set_trace = sky_vae_cuda_set_trace, .vae_device = sky_vae_cuda_device, .vae_close = sky_vae_cuda_close,
};
