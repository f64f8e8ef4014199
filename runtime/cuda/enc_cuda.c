/* runtime/cuda/enc_cuda.c — the CUDA backend of text_encode (umT5) and clip_encode (CLIP), in the plugin
 * with the generated gen/{text,clip}_encode_cuda.c (cuda_program.h, models/cuda_abi.h).
 *
 * Open: the device, the program's kernels (NVRTC, cached), every weight converted to its device dtype
 * (bf16 for what the bf16 GEMMs and the token table read, fp32 otherwise) and uploaded into one buffer,
 * the arena, the cuBLASLt GEMM table. A call: the input is copied into its slot, the launch sequence
 * runs eagerly (one call per prompt or image: nothing to gain from a graph), the output is read back.
 *
 * STATUS: compiled in CI and run there on the CPU emulator of tests/emu/ against transformers' encoders;
 * not yet run on a GPU.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_ctx.h"
#include "cuda/cuda_program.h"

/* Defined in the generated gen/{text,clip}_encode_cuda.c when the variant has the encoder. */
extern const sky_enc_cuda_desc text_encode_cuda __attribute__((weak));
extern const sky_enc_cuda_desc clip_encode_cuda __attribute__((weak));

typedef struct enc_cuda {
    sky_cuda_prog            pr; /* device, kernels, weights, arena, GEMMs, st, trace */
    const sky_enc_cuda_desc *desc;
} enc_cuda;

void sky_enc_cuda_close(void *opaque)
{
    enc_cuda *e = opaque;
    if (!e) return;
    sky_cuda_prog_close(&e->pr);
    free(e);
}

sky_status sky_enc_cuda_open(void **out, const sky_encoder_program *p, int text, const sky_weight_reader *w,
                             sky_err *err)
{
    *out = NULL;
    const sky_enc_cuda_desc *g = text ? &text_encode_cuda : &clip_encode_cuda;
    const char              *name = text ? "text_encode" : "clip_encode";
    if (!g)
        return sky_fail(err, "--backend cuda: this plugin has no CUDA %s (the variant's spec has no %s section)", name,
                        text ? "t5" : "clip");
    enc_cuda *e = calloc(1, sizeof *e);
    if (!e) return sky_fail(err, "out of host memory");
    e->desc = g;
    if (g->n_weights != p->n_weights) {
        sky_fail(err, "the CUDA plugin's %s has %d weights, the binary's %d: rebuild both", name, g->n_weights,
                 p->n_weights);
        goto fail;
    }
    if (sky_cuda_prog_begin(&e->pr, name, sky_cuda_process_device(), g->kernels_src, g->kernels_file, g->n_kernels,
                            g->kernel_names, NULL, 0, p->n_weights, g->arena_bytes, 0, err) ||
        sky_cuda_prog_upload(&e->pr, p->weights, p->n_weights, g->weight_bf16, w, err) ||
        sky_cuda_prog_end(&e->pr, g->gemms, g->n_gemms, err))
        goto fail;
    *out = e;
    return SKY_OK;
fail:
    sky_enc_cuda_close(e);
    return SKY_ERR;
}

void sky_enc_cuda_run(void *opaque, int n, const void *in, size_t in_bytes, float *out, size_t n_out)
{
    enc_cuda                *e = opaque;
    const sky_enc_cuda_desc *g = e->desc;
    const CUstream           s = e->pr.c->stream;
    sky_cuda_prog_bind(&e->pr);
    if (in_bytes > g->in.bytes || n_out * sizeof(float) > g->out.bytes)
        SKY_CUDA_FATAL("%s (cuda): %zu input bytes -> %zu values do not fit the program's slots (%zu -> %zu bytes)",
                       e->pr.name, in_bytes, n_out, g->in.bytes, g->out.bytes);
    SKY_CU_CHECK(cuMemcpyHtoDAsync(e->pr.arena + g->in.offset, in, in_bytes, s));
    g->record(&e->pr.st, s, n);
    SKY_CU_CHECK(cuMemcpyDtoHAsync(out, e->pr.arena + g->out.offset, n_out * sizeof(float), s));
    SKY_CU_CHECK(cuStreamSynchronize(s));
}

void sky_enc_cuda_set_trace(void *opaque, sky_trace_fn fn, void *ctx)
{
    sky_cuda_prog_set_trace(&((enc_cuda *)opaque)->pr, fn, ctx);
}

const char *sky_enc_cuda_device(void *opaque) { return ((enc_cuda *)opaque)->pr.device; }
