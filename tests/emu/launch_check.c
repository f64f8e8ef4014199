/* tests/emu/launch_check.c — the launch sequence of a full-size variant's CUDA dit_forward, checked
 * without a GPU and without its memory (tests/emu/README.md).
 *
 *   launch_check MAX_FRAMES LAT_H LAT_W
 *
 * Linked with the variant's generated gen/dit_forward_cuda.c, its kernels through prepare.lua, the
 * plugin's runtime files and the emulated driver in dry mode (SKY_EMU_DRY=1: every launch and GEMM is
 * checked — grid and block limits, __launch_bounds__, dynamic shared memory against the opt-in limit,
 * GEMM shapes and m <= m_max, operand alignment — and counted, never executed). It opens the device,
 * loads the kernels through the runtime's NVRTC path, builds the GEMM table as dit_open does, then
 * records the prompt part once and one step for 1, 2, half and all of the window's latent frames, with
 * one timestep per sample and one per frame, in landscape and portrait; then one chunk of vae_decode and vae_encode,
 * first and later, in landscape and portrait. A limit broken at full size fails here.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_ctx.h"
#include "cuda/cuda_program.h"
#include "cuda/gemm.h"
#include "cuda/nvrtc_cache.h"

extern const sky_dit_cuda_desc dit_forward_cuda;
extern const sky_vae_cuda_desc vae_decode_cuda __attribute__((weak));   /* absent without a vae section */
extern const sky_vae_cuda_desc vae_encode_cuda __attribute__((weak));
extern const sky_enc_cuda_desc text_encode_cuda __attribute__((weak));
extern const sky_enc_cuda_desc clip_encode_cuda __attribute__((weak));
void sky_emu_dry_counts(unsigned long long *launches, unsigned long long *gemms);

int main(int argc, char **argv)
{
    if (argc != 4) {
        fprintf(stderr, "usage: launch_check MAX_FRAMES LAT_H LAT_W\n");
        return 2;
    }
    const int max_frames = atoi(argv[1]), lat_h = atoi(argv[2]), lat_w = atoi(argv[3]);
    const sky_dit_cuda_desc *g = &dit_forward_cuda;
    setenv("SKY_EMU_DRY", "1", 1);
    sky_err err;
    sky_cuda *c;
    CUmodule module;
    if (sky_cuda_open(&c, 0, &err) ||
        sky_nvrtc_module(&module, g->kernels_src, "gen/dit_forward_kernels.cu", c->cc_major, c->cc_minor, NULL, NULL,
                         &err)) {
        fprintf(stderr, "launch_check: %s\n", err.msg);
        return 1;
    }
    CUfunction *fn = calloc((size_t)g->n_kernels, sizeof *fn);
    CUdeviceptr *w = calloc((size_t)g->n_weights, sizeof *w);
    for (int k = 0; k < g->n_kernels; k++) {
        if (sky_nvrtc_function(&fn[k], module, g->kernel_names[k], &err)) {
            fprintf(stderr, "launch_check: %s\n", err.msg);
            return 1;
        }
        if (strncmp(g->kernel_names[k], "attention", 9) == 0)
            SKY_CU_CHECK(cuFuncSetAttribute(fn[k], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, g->attention_smem));
    }
    /* Addresses only: nothing is dereferenced in dry mode. Weights 256-byte aligned, as uploaded. */
    for (int i = 0; i < g->n_weights; i++) w[i] = ((CUdeviceptr)1 << 40) + (CUdeviceptr)i * 256;
    sky_gemm_set *gemm;
    if (sky_gemm_init(&gemm, c, g->gemms, g->n_gemms, (void *)(uintptr_t)((CUdeviceptr)1 << 44),
                      SKY_GEMM_WORKSPACE_BYTES, &err)) {
        fprintf(stderr, "launch_check: %s\n", err.msg);
        return 1;
    }
    sky_cuda_program st = { .arena = (CUdeviceptr)1 << 36, .prompt = (CUdeviceptr)1 << 38, .w = w, .fn = fn,
                            .gemm = gemm };
    const int frames[4] = { 1, 2, max_frames / 2 > 0 ? max_frames / 2 : 1, max_frames };
    int calls = 0;
    g->record_part[0](&st, c->stream, max_frames, lat_h, lat_w, 1);      /* the prompt part */
    for (int i = 0; i < 4; i++)
        for (int per_frame = 0; per_frame < 2; per_frame++)
            for (int portrait = 0; portrait < 2; portrait++) {
                const int F = frames[i];
                g->record_step(&st, c->stream, F, portrait ? lat_w : lat_h, portrait ? lat_h : lat_w, per_frame ? F : 1);
                calls++;
            }
    unsigned long long launches, gemms;
    sky_emu_dry_counts(&launches, &gemms);
    printf("the prompt part and %d steps recorded (frames 1, 2, %d, %d; plain and per-frame timesteps; landscape "
           "and portrait %dx%d): %llu kernel launches and %llu GEMMs within the limits",
           calls, frames[2], frames[3], lat_h, lat_w, launches, gemms);
    sky_gemm_free(gemm);

    /* The VAE programs: one chunk each, first and later, both orientations. */
    const sky_vae_cuda_desc *vd[2] = { &vae_decode_cuda, &vae_encode_cuda };
    for (int i = 0; i < 2; i++) {
        const sky_vae_cuda_desc *v = vd[i];
        if (!v) continue;
        CUmodule m;
        CUfunction *vf = calloc((size_t)v->n_kernels, sizeof *vf);
        CUdeviceptr *vw = calloc((size_t)v->n_weights, sizeof *vw);
        sky_gemm_set *vg;
        for (int k = 0; k < v->n_weights; k++) vw[k] = ((CUdeviceptr)1 << 40) + (CUdeviceptr)k * 256;
        char how[160];
        if (sky_cuda_kernels_load(c, v->kernels_src, v->kernels_file, v->n_kernels, v->kernel_names, "conv_tf32",
                                  v->conv_smem, &m, vf, how, sizeof how, &err) ||
            sky_gemm_init(&vg, c, v->gemms, v->n_gemms, (void *)(uintptr_t)((CUdeviceptr)1 << 44),
                          SKY_GEMM_WORKSPACE_BYTES, &err)) {
            fprintf(stderr, "launch_check: %s\n", err.msg);
            return 1;
        }
        sky_cuda_program vs = { .arena = (CUdeviceptr)1 << 36, .w = vw, .fn = vf, .gemm = vg };
        const int h = i == 0 ? lat_h : 8 * lat_h, w = i == 0 ? lat_w : 8 * lat_w;
        for (int first = 0; first < 2; first++)
            for (int portrait = 0; portrait < 2; portrait++)
                v->record(&vs, c->stream, portrait ? w : h, portrait ? h : w, first);
        sky_gemm_free(vg);
        cuModuleUnload(m);
        free(vf);
        free(vw);
    }
    unsigned long long all_launches, all_gemms;
    sky_emu_dry_counts(&all_launches, &all_gemms);
    printf("; vae_decode and vae_encode chunks (first and later, both orientations): %llu launches and %llu GEMMs "
           "within the limits", all_launches - launches, all_gemms - gemms);

    /* The encoders: text_encode with 1 and all text_len tokens, clip_encode once. */
    const sky_enc_cuda_desc *ed[2] = { &text_encode_cuda, &clip_encode_cuda };
    for (int i = 0; i < 2; i++) {
        const sky_enc_cuda_desc *e = ed[i];
        if (!e) continue;
        CUmodule m;
        CUfunction *ef = calloc((size_t)e->n_kernels, sizeof *ef);
        CUdeviceptr *ew = calloc((size_t)e->n_weights, sizeof *ew);
        sky_gemm_set *eg;
        for (int k = 0; k < e->n_weights; k++) ew[k] = ((CUdeviceptr)1 << 40) + (CUdeviceptr)k * 256;
        char how[160];
        if (sky_cuda_kernels_load(c, e->kernels_src, e->kernels_file, e->n_kernels, e->kernel_names, NULL, 0, &m, ef,
                                  how, sizeof how, &err) ||
            sky_gemm_init(&eg, c, e->gemms, e->n_gemms, (void *)(uintptr_t)((CUdeviceptr)1 << 44),
                          SKY_GEMM_WORKSPACE_BYTES, &err)) {
            fprintf(stderr, "launch_check: %s\n", err.msg);
            return 1;
        }
        sky_cuda_program es = { .arena = (CUdeviceptr)1 << 36, .w = ew, .fn = ef, .gemm = eg };
        e->record(&es, c->stream, 1);
        if (i == 0) e->record(&es, c->stream, (int)(e->gemms[0].m_max));   /* every token */
        sky_gemm_free(eg);
        cuModuleUnload(m);
        free(ef);
        free(ew);
    }
    unsigned long long enc_launches, enc_gemms;
    sky_emu_dry_counts(&enc_launches, &enc_gemms);
    printf("; the encoders: %llu launches and %llu GEMMs within the limits\n", enc_launches - all_launches,
           enc_gemms - all_gemms);
    cuModuleUnload(module);
    sky_cuda_close(c);
    free(fn);
    free(w);
    return 0;
}
