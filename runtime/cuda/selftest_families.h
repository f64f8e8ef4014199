/* runtime/cuda/selftest_families.h — the parts of the kernel selftest (selftest_cuda.c) shared with
 * selftest_families.c: a generated program's kernels loaded for the selftest, their compile-time
 * constants read from the program's kernel info table (gen/emit/cuda.lua: kernel_info), the inputs, and
 * the families beyond attention, norm+mod and residual (RoPE, GEMM, layernorm, the VAE's conv, norm and
 * attention softmax, umT5's norm and relative-bias softmax, CLIP's attention softmax, --use_usp's slice and
 * head-group packing).
 * The header comment of selftest_cuda.c gives every family's case and bound. */
#ifndef SKY_SELFTEST_FAMILIES_H
#define SKY_SELFTEST_FAMILIES_H

#include <stdint.h>

#include "cuda/cuda_ctx.h"
#include "cuda/cuda_program.h"
#include "cuda/selftest_cuda.h"

/* One generated program's kernels as the selftest loads them (sky_selftest_prog_load). */
typedef struct sky_selftest_prog {
    const char            *src, *file;  /* the kernels' source and the name it compiles under */
    int                    n;           /* kernels */
    const char *const     *names;       /* table order */
    const sky_kernel_info *info;        /* one per kernel, table order */
    const char            *smem_prefix; /* the kernels that get smem bytes of dynamic shared memory */
    int                    smem;
    CUmodule               module; /* after load; NULL before */
    CUfunction            *fn;     /* n of them, after load */
    sky_cuda_program       st;     /* fn and the test-only fault_kernel, for sky_cuda_launch */
} sky_selftest_prog;

/* Load p's kernels on c (the plugin's loader: built in, or NVRTC). */
sky_status sky_selftest_prog_load(sky_cuda *c, sky_selftest_prog *p, sky_err *err);
void       sky_selftest_prog_unload(sky_selftest_prog *p);

/* Constant `key` of kernel k of p: its text, or NULL when the kernel has none of that name. */
const char *sky_selftest_const(const sky_selftest_prog *p, int k, const char *key);
/* The same as an integer, or -1 when absent. */
int sky_selftest_const_int(const sky_selftest_prog *p, int k, const char *key);
/* 1 when constant `key` (a type: TX, TY, TU) of kernel k is bf16. */
int sky_selftest_const_bf16(const sky_selftest_prog *p, int k, const char *key);
/* The first kernel of p at index >= from made from template `tmpl`, or -1. */
int sky_selftest_find_template(const sky_selftest_prog *p, const char *tmpl, int from);

/* Deterministic values in [-a, a] rounded to bf16: the device copy in h, the value in f. */
void sky_selftest_fill(uint16_t *h, float *f, size_t n, float a, uint64_t *s);

/* The rows of each family (appended to t while it has room); SKY_ERR only when a case cannot run. */
sky_status sky_selftest_rope_rows(sky_cuda *c, sky_selftest_prog *dit, sky_selftest_table *t, sky_err *err);
sky_status sky_selftest_gemm_row(sky_cuda *c, sky_selftest_table *t, sky_err *err);
/* vae: vae_decode's program (encode = 0: a conv and a norm) or vae_encode's (encode = 1: a strided conv) */
sky_status sky_selftest_vae_rows(sky_cuda *c, sky_selftest_prog *vae, int encode, sky_selftest_table *t, sky_err *err);
/* layernorm_affine of p: every instance (all = 1) or the first; softmax_rows of p as a row of `family` */
sky_status sky_selftest_layernorm_rows(sky_cuda *c, sky_selftest_prog *p, int all, sky_selftest_table *t, sky_err *err);
sky_status sky_selftest_softmax_row(sky_cuda *c, sky_selftest_prog *p, const char *family, sky_selftest_table *t,
                                    sky_err *err);
/* fp8_expand of dit (--weight_dtype fp8): exact */
sky_status sky_selftest_fp8_row(sky_cuda *c, sky_selftest_prog *dit, sky_selftest_table *t, sky_err *err);
/* usp_slice or usp_pack_heads kernel k of p (dit_forward_usp): its row (families usp_slice, usp_pack; exact), the
 * case's status in *st; 1 when k is one of those, 0 (nothing done) when not. */
int sky_selftest_usp_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_table *t, sky_status *st, sky_err *err);
sky_status sky_selftest_t5_rows(sky_cuda *c, sky_selftest_prog *text, sky_selftest_table *t, sky_err *err);

#endif /* SKY_SELFTEST_FAMILIES_H */
