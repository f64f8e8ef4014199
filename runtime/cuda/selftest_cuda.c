/* runtime/cuda/selftest_cuda.c — the kernel selftest of the plugin (models/cuda_abi.h: selftest): a kernel
 * of every family the variant's programs use runs on the device at hand at a small shape against a CPU
 * reference, and the verdict is cached per device and plugin beside the NVRTC cache. The families past
 * attention, norm+mod, residual and residual+norm are in selftest_families.c.
 *
 * The families, each against a plain CPU reference in double from the same inputs (rounded to the
 * kernel's input dtype first), every output starting as NaN bytes (a kernel that writes nothing fails);
 * u = 2^-8 is bf16's unit roundoff (8 significant bits, round to nearest: |round(x) - x| <= 2^-8 |x|),
 * e32 = 2^-24 fp32's. Each kernel's constants come from its program's kernel info table
 * (sky_kernel_info, written by gen/emit/cuda.lua), not from the source.
 *   dit_forward:
 *   - attention: attention_sm90 (TMA, wgmma; only on a cc 9.0 device, where it is the default; its
 *     fallback is attention_sm80) and attention_sm80 (no fallback); the case below.
 *   - norm+mod (layernorm_modulate) and residual (gated_residual), every instance: norm_row, residual_row.
 *   - rope: rmsnorm_rope (5 rows, bound u max|y| + (C + 16) e32 max(|a c| + |b s|)) and rope_table (an
 *     F x H x W = 2 x 6 x 4 call, bound e32 + 2^-40: one fp32 rounding of a cos or sin).
 *   - gemm: one bf16 GEMM with the bias epilogue (37 x 64 x 96) through gemm.h (cuBLASLt; the DiT's
 *     epilogues, bias and GELU, are cuBLASLt's, not generated kernels): u max|y| + 2 (K + 1) e32 max sum|x w|.
 *   - fp8_expand (--weight_dtype fp8's expansion of a block's fp8 weights into bf16): every e4m3 code but the NaNs
 *     in 3 rows of 3 scales, bound 0 (selftest_families.c: the host's bf16 of code x scale exactly).
 *   - residual+norm: residual_norm (a residual and the norm reading it, one kernel), every instance:
 *     residual_norm_row, the residual's and the norm's checks above on one launch.
 *   - layernorm: layernorm_affine (the image embedder's; the DiT's norm3 where not fused), every instance,
 *     5 rows: u_y max|y| + (2 C + 16) e32 max(|n w| + |b|), as norm+mod.
 *   dit_forward_usp (--use_usp; whenever the plugin has it, see sky_cuda_selftest_on), each kernel dit_forward has not
 *   (usp_rows; the same name and constants are the same kernel, checked above):
 *   - attention: the instances of the heads a rank holds (NH / P), both kernels, the case below at those heads.
 *   - norm+mod, residual, residual+norm: the AT 1 instances (a rank's slice of the tokens from tok0): the cases
 *     above on the slice of tokens 4..9 of 3 modulation rows (the last row past them: the padding's clamp).
 *   - usp_slice: the last rank's rows 6..11 of 11 tokens (one padding row, zero); usp_pack: usp_pack_heads' P = 2
 *     head groups of 5 rows, packed (UNPACK 0) or unpacked: exact (bound 0), nothing written past the output.
 *   vae_decode (the first causal 3x3x3 conv and the first norm without SiLU), vae_encode (its first
 *   strided conv, a downsample):
 *   - vae_conv: conv_tf32, T = 2 frames of 5 x 6 with its cache: (2^-11 + 2^-22 + 2 (taps CIN + 1) e32)
 *     max sum|x w| (x rounded to tf32 by the kernel, 2^-11; w rounded at upload, the reference's too; fp32
 *     sums, 2 e32 each: tensor cores may truncate).
 *   - vae_norm: rms_norm_cl, 11 positions: (C + 8) e32 max|y| (x 1.1, + 8 e32, with SiLU).
 *   - vae_attn: softmax_rows (the VAE attention's), 3 rows of 300 fp32 scores: (N + 11 + 4 xmax) e32 max p.
 *   text_encode:
 *   - t5_norm: t5_rmsnorm, 5 rows: (2 u + u^2 + (C + 8) e32) max|y| (two bf16 roundings).
 *   - t5_attn: softmax_relbias over 150 tokens: (u + (N + 8) e32) max p (the bf16 score + bias is the
 *     model's, so the reference rounds it too).
 *   clip_encode: layernorm (its first layernorm_affine) and clip_attn (softmax_rows), the cases above.
 * Only attention_sm90 has a fallback (attention_sm80 of the same heads); a failure anywhere else refuses a CUDA run
 * (cli/selftest.c), a dit_forward_usp kernel's too, with or without --use_usp. The cases are small: the whole
 * selftest takes well under a second on a GPU (NVRTC aside).
 *
 * The attention case: lq = 130 query rows, lk = 150 key rows (partial tiles of both kernels), the variant's heads
 * and head dim, q and k uniform in [-2, 2], v uniform in [-1, 1], rounded to bf16 before the reference
 * sees them, so both sides start from the same numbers. The reference is softmax(q k^T / sqrt(D)) v in
 * double. The bound is max|v| x (2 u + 2 D e32 smax + (lk + 16) 2 e32) with u = 2^-8 (bf16's unit
 * roundoff) and e32 = 2^-24 (fp32's): one u for the probabilities rounded to bf16 before the P V
 * product (they weight v: at most u max|v|), one u for the bf16 output (|o| <= max|v|); the scores' fp32
 * dot products of D terms err by at most D e32 smax (smax = max over (i, j) of sum |q_id k_jd| / sqrt(D)),
 * which moves a softmax average by at most twice that times max|v|; the fp32 running sums of lk terms
 * and the exp2 approximations by (lk + 16) 2 e32. The output starts as NaN bytes: a kernel that wrote
 * nothing fails.
 *
 * Cache: <cache dir of nvrtc_cache.h>/selftest-<16 hex>.txt, the key xxh64 over the plugin ABI, the
 * xxh64 of the kernel sources of the programs tested, dit_forward_usp's among them (the plugin hash), the device
 * name, its compute capability and the driver version (and $SKY_SELFTEST_FAULT, so a test's faulty verdict is never
 * a real run's); written to a temporary file and renamed. One line per kernel:
 * family, kernel, fallback ("-" for none), max error, bound, pass (1/0), tab-separated.
 *
 * SKY_SELFTEST_FAULT (test only; cuda_program.c): the launches of the kernel it names are dropped,
 * in the selftest and in every run alike.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <xxhash.h>

#include "core/dtype.h"
#include "cuda/cuda_ctx.h"
#include "cuda/cuda_program.h"
#include "cuda/nvrtc_cache.h"
#include "cuda/selftest_cuda.h"
#include "cuda/selftest_families.h"

extern const sky_dit_cuda_desc dit_forward_cuda;
extern const sky_dit_cuda_desc dit_forward_usp_cuda __attribute__((weak));
extern const sky_vae_cuda_desc vae_decode_cuda __attribute__((weak));
extern const sky_vae_cuda_desc vae_encode_cuda __attribute__((weak));
extern const sky_enc_cuda_desc text_encode_cuda __attribute__((weak));
extern const sky_enc_cuda_desc clip_encode_cuda __attribute__((weak));

enum { LQ = 130, LK = 150 };

/* The modulated kernels' case (norm_row, residual_row, residual_norm_row): ROWS rows, TPR tokens per modulation row.
 * An AT 1 instance (dit_forward_usp's: the rows are a rank's slice of the tokens) gets the slice from token AT_TOK0 of
 * AT_MROWS modulation rows: tokens 4..9, modulation rows 1, 1, 2, 2, 2 and, past the last, 2 again (the last
 * rank's padding row reads the last modulation row: common.cuh sky_mod_row_at). */
enum { ROWS = 6, TPR = 3, AT_TOK0 = 4, AT_MROWS = 3 };

/* The modulation rows of the case of an instance with constant AT = at (0 or 1). */
static int mod_rows(int at) { return at ? AT_MROWS : ROWS / TPR; }

/* The modulation row of the case's row `row`, as the kernel picks it. */
static int mod_row(int at, int row)
{
    const int m = at ? (AT_TOK0 + row) / TPR : row / TPR;
    return m < mod_rows(at) ? m : mod_rows(at) - 1;
}

/* The reference o [LQ, NH D] in double from the bf16-rounded q, k, v; *smax as in the header. */
static void reference(const float *q, const float *k, const float *v, int nh, int d, double *o, double *smax)
{
    const int cols = nh * d;
    double   *s = malloc(LK * sizeof *s);
    *smax = 0;
    for (int h = 0; h < nh; h++)
        for (int i = 0; i < LQ; i++) {
            double m = -INFINITY, l = 0;
            for (int j = 0; j < LK; j++) {
                double dot = 0, mag = 0;
                for (int c = 0; c < d; c++) {
                    const double a = q[(size_t)i * cols + h * d + c], b = k[(size_t)j * cols + h * d + c];
                    dot += a * b, mag += fabs(a * b);
                }
                s[j] = dot / sqrt(d);
                if (mag / sqrt(d) > *smax) *smax = mag / sqrt(d);
                if (s[j] > m) m = s[j];
            }
            for (int j = 0; j < LK; j++) l += (s[j] = exp(s[j] - m));
            for (int c = 0; c < d; c++) {
                double acc = 0;
                for (int j = 0; j < LK; j++) acc += s[j] * v[(size_t)j * cols + h * d + c];
                o[(size_t)i * cols + h * d + c] = acc / l;
            }
        }
    free(s);
}

typedef struct attn_case {
    int          nh, d;
    CUdeviceptr  q, k, v, o;
    const float *vf;
    double      *ref;
    uint16_t    *out;
    double       bound;
} attn_case;

/* Launch kernel index `ki` (attention_sm90 or attention_sm80) on the case; fills the row. fallback: the sm_80
 * kernel of the same heads that replaces a failed sm_90a one (NULL for an sm_80 row: none). */
static void attention_row(sky_cuda *c, sky_selftest_prog *p, int ki, attn_case *a, const char *fallback,
                          sky_selftest_row *r)
{
    const char  *name = p->names[ki];
    const int    sm90 = strncmp(name, "attention_sm90", 14) == 0, cols = a->nh * a->d;
    const int    smem = sky_selftest_const_int(p, ki, "SMEM"), lq = LQ, lk = LK;
    const float  scale = (float)(1.4426950408889634 / sqrt(a->d));
    const size_t n = (size_t)LQ * cols;
    memset(a->out, 0xff, n * 2); /* NaN: a kernel that writes nothing fails */
    SKY_CU_CHECK(cuMemcpyHtoDAsync(a->o, a->out, n * 2, c->stream));
    if (sm90) {
        CUtensorMap tq, tk, tv;
        /* K and V boxes of the schedule's key tile (BLOCK_N: 128, or 176 for sm90_fa3), as the generated code's */
        const int bn = sky_selftest_const_int(p, ki, "BLOCK_N") > 0 ? sky_selftest_const_int(p, ki, "BLOCK_N") : 128;
        sky_cuda_tmap_bf16(&tq, a->q, LQ, cols, 128);
        sky_cuda_tmap_bf16(&tk, a->k, LK, cols, bn);
        sky_cuda_tmap_bf16(&tv, a->v, LK, cols, bn);
        CUdeviceptr none = 0; /* no q norm at load (lower.lua's q_norm): q as given */
        void       *args[] = {&tq, &tk, &tv, &a->o, (void *)&lq, (void *)&lk, (void *)&scale, &none, &none, &none};
        sky_cuda_launch(&p->st, ki, (LQ + 127) / 128, (unsigned)a->nh, 384, (unsigned)smem, c->stream, args);
    } else {
        const int   bm = sky_selftest_const_int(p, ki, "BLOCK_M"), threads = sky_selftest_const_int(p, ki, "THREADS");
        CUdeviceptr none = 0;
        void       *args[] = {&a->q,          &a->k,         &a->v,         &a->o, (void *)&lq, (void *)&lk,
                              (void *)&scale, (void *)&cols, (void *)&cols, &none, &none,       &none};
        sky_cuda_launch(&p->st, ki, (unsigned)((LQ + bm - 1) / bm), (unsigned)a->nh, (unsigned)threads, (unsigned)smem,
                        c->stream, args);
    }
    SKY_CU_CHECK(cuMemcpyDtoHAsync(a->out, a->o, n * 2, c->stream));
    SKY_CU_CHECK(cuStreamSynchronize(c->stream));
    double err = 0;
    int    finite = 1;
    for (size_t i = 0; i < n; i++) {
        const double x = sky_bf16_to_f32(a->out[i]);
        if (!isfinite(x))
            finite = 0;
        else if (fabs(x - a->ref[i]) > err)
            err = fabs(x - a->ref[i]);
    }
    *r = (sky_selftest_row){.max_err = finite ? err : INFINITY, .bound = a->bound};
    r->pass = finite && err <= a->bound;
    snprintf(r->family, sizeof r->family, "attention");
    snprintf(r->kernel, sizeof r->kernel, "%s", name);
    snprintf(r->fallback, sizeof r->fallback, "%s", sm90 && fallback ? fallback : "");
}

/* The attention rows of kernels k90 (attention_sm90, or -1) and k80 (attention_sm80, or -1) of p, of the same heads
 * and head dim: the sm_90a kernel first (on a cc 9.0 device only), then the sm_80 one; the sm_90a row's fallback is
 * the sm_80 kernel of p with its heads (the one a run falls back to). */
static sky_status attention_pair(sky_cuda *c, sky_selftest_prog *p, int k90, int k80, sky_selftest_table *t,
                                 sky_err *err)
{
    const int k = k80 >= 0 ? k80 : k90;
    if (k < 0) return SKY_OK; /* a program without attention */
    attn_case a = {.nh = sky_selftest_const_int(p, k, "NH"), .d = sky_selftest_const_int(p, k, "D")};
    if (a.nh < 1 || a.d < 1) return sky_fail(err, "selftest: %s: no NH or D in its kernel info", p->names[k]);
    const int run90 = k90 >= 0 && c->cc_major == 9 && c->cc_minor == 0, rows = run90 + (k80 >= 0);
    if (t->n + rows > SKY_SELFTEST_MAX_ROWS)
        return sky_fail(err, "selftest: more than %d kernels to check (%s): raise SKY_SELFTEST_MAX_ROWS",
                        SKY_SELFTEST_MAX_ROWS, p->names[k]);
    const char *fallback = NULL; /* the sm_80 kernel of these heads */
    for (int i = sky_selftest_find_template(p, "attention_sm80", 0); i >= 0 && !fallback;
         i = sky_selftest_find_template(p, "attention_sm80", i + 1))
        if (sky_selftest_const_int(p, i, "NH") == a.nh && sky_selftest_const_int(p, i, "D") == a.d)
            fallback = p->names[i];
    const size_t nq = (size_t)LQ * a.nh * a.d, nk = (size_t)LK * a.nh * a.d;
    uint16_t    *h = malloc((nq + 2 * nk) * 2);
    float       *f = malloc((nq + 2 * nk) * sizeof *f);
    a.ref = malloc(nq * sizeof *a.ref);
    a.out = malloc(nq * 2);
    void *dev = NULL;
    if (!h || !f || !a.ref || !a.out) {
        free(h), free(f), free(a.ref), free(a.out);
        return sky_fail(err, "selftest: out of host memory");
    }
    uint64_t seed = 0x5eedULL;
    sky_selftest_fill(h, f, nq + nk, 2.0f, &seed);
    sky_selftest_fill(h + nq + nk, f + nq + nk, nk, 1.0f, &seed);
    double smax;
    reference(f, f + nq, f + nq + nk, a.nh, a.d, a.ref, &smax);
    const double e32 = ldexp(1, -24);
    a.bound = 1.0 * (2 * ldexp(1, -8) + 2 * a.d * e32 * smax + (LK + 16) * 2 * e32); /* max|v| = 1 */
    sky_status st = sky_cuda_arena_alloc(c, (nq + 2 * nk + nq) * 2, &dev, "the selftest's attention case", err);
    if (st == SKY_OK) {
        a.q = (CUdeviceptr)(uintptr_t)dev, a.k = a.q + nq * 2, a.v = a.k + nk * 2, a.o = a.v + nk * 2;
        SKY_CU_CHECK(cuMemcpyHtoDAsync(a.q, h, (nq + 2 * nk) * 2, c->stream)); /* stream-ordered before the launches */
        if (run90) attention_row(c, p, k90, &a, fallback, &t->rows[t->n++]);
        if (k80 >= 0) attention_row(c, p, k80, &a, NULL, &t->rows[t->n++]);
        sky_cuda_arena_free(c, dev);
    }
    free(h), free(f), free(a.ref), free(a.out);
    return st;
}

/* layernorm_modulate (the blocks' norm1/norm2 and the head: y = LN(x) (1 + scale) + shift, the modulation
 * row per tokens_per_row tokens): 6 tokens, 3 per modulation row (AT 1: from token AT_TOK0, mod_row), x = 0.5 +
 * U[-2, 2] rounded to its stored type, mod U[-1, 1] fp32; reference in double on those values. Bound: u_y max|y|
 * (u_y = 2^-8 for a bf16 output, 0 for fp32) + (2 C + 16) e32 max(|n| |1 + scale| + |shift|), n the normalised
 * value: the fp32 sums of C terms for the mean and the variance, rsqrt and the two products. */
static sky_status norm_row(sky_cuda *c, sky_selftest_prog *p, int ki, sky_selftest_row *r, sky_err *err)
{
    const char *name = p->names[ki];
    const int   at = sky_selftest_const_int(p, ki, "AT") == 1, tok0 = AT_TOK0, mrows = mod_rows(at);
    const int   C = sky_selftest_const_int(p, ki, "C"), chunks = sky_selftest_const_int(p, ki, "CHUNKS");
    const int   threads = sky_selftest_const_int(p, ki, "THREADS"), tpr = TPR;
    const int   sc = sky_selftest_const_int(p, ki, "SCALE"), sh = sky_selftest_const_int(p, ki, "SHIFT");
    const int   xbf = sky_selftest_const_bf16(p, ki, "TX"), ybf = sky_selftest_const_bf16(p, ki, "TY");
    if (C < 1 || chunks < 1 || threads < 1 || sc < 0 || sh < 0)
        return sky_fail(err, "selftest: %s: no C, CHUNKS, THREADS, SCALE or SHIFT in its kernel info", name);
    const size_t n = (size_t)ROWS * C, nm = (size_t)mrows * chunks * C;
    float       *x = malloc(n * sizeof *x), *mod = malloc(nm * sizeof *mod), *y = malloc(n * sizeof *y);
    uint16_t    *xh = malloc(n * 2), *yh = malloc(n * 2), *mh = malloc(nm * 2);
    void        *dev = NULL;
    *r = (sky_selftest_row){.max_err = INFINITY};
    snprintf(r->family, sizeof r->family, "norm+mod");
    snprintf(r->kernel, sizeof r->kernel, "%s", name);
    uint64_t   seed = 0x4e0a11ULL + (uint64_t)ki;
    sky_status st = x && mod && y && xh && yh && mh ? SKY_OK : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) st = sky_cuda_arena_alloc(c, (n * 2 + nm) * 4, &dev, "the selftest's norm case", err);
    if (st == SKY_OK) {
        sky_selftest_fill(xh, x, n, 2.0f, &seed);
        for (size_t i = 0; i < n; i++) x[i] = xbf ? sky_bf16_to_f32(xh[i] = sky_f32_to_bf16(x[i] + 0.5f)) : x[i] + 0.5f;
        sky_selftest_fill(mh, mod, nm, 1.0f, &seed);
        const CUdeviceptr dy = (CUdeviceptr)(uintptr_t)dev, dx = dy + n * 4, dm = dx + n * 4;
        memset(y, 0xff, n * 4); /* NaN */
        SKY_CU_CHECK(cuMemcpyHtoDAsync(dx, xbf ? (const void *)xh : (const void *)x, n * (xbf ? 2 : 4), c->stream));
        SKY_CU_CHECK(cuMemcpyHtoDAsync(dm, mod, nm * 4, c->stream));
        SKY_CU_CHECK(cuMemcpyHtoDAsync(dy, y, n * 4, c->stream));
        SKY_CU_CHECK(cuStreamSynchronize(c->stream));
        void *args[] = {(void *)&dy, (void *)&dx, (void *)&dm, (void *)&tpr, (void *)&tok0, (void *)&mrows};
        sky_cuda_launch(&p->st, ki, ROWS, 1, (unsigned)threads, 0, c->stream, args);
        SKY_CU_CHECK(cuMemcpyDtoHAsync(ybf ? (void *)yh : (void *)y, dy, n * (ybf ? 2 : 4), c->stream));
        SKY_CU_CHECK(cuStreamSynchronize(c->stream));
        double e = 0, ymax = 0, tmax = 0;
        int    finite = 1;
        for (int row = 0; row < ROWS; row++) {
            double mean = 0, var = 0;
            for (int i = 0; i < C; i++) mean += x[(size_t)row * C + i];
            mean /= C;
            for (int i = 0; i < C; i++) var += (x[(size_t)row * C + i] - mean) * (x[(size_t)row * C + i] - mean);
            const double rstd = 1 / sqrt(var / C + 1e-6);
            const float *m = mod + (size_t)mod_row(at, row) * chunks * C;
            for (int i = 0; i < C; i++) {
                const double nv = (x[(size_t)row * C + i] - mean) * rstd,
                             want = nv * (1 + m[sc * C + i]) + m[sh * C + i];
                const double got = ybf ? sky_bf16_to_f32(yh[(size_t)row * C + i]) : y[(size_t)row * C + i];
                if (!isfinite(got))
                    finite = 0;
                else if (fabs(got - want) > e)
                    e = fabs(got - want);
                ymax = fmax(ymax, fabs(want));
                tmax = fmax(tmax, fabs(nv) * fabs(1 + m[sc * C + i]) + fabs(m[sh * C + i]));
            }
        }
        r->bound = (ybf ? ldexp(1, -8) : 0) * ymax + (2.0 * C + 16) * ldexp(1, -24) * tmax;
        r->max_err = finite ? e : INFINITY;
        r->pass = finite && e <= r->bound;
        sky_cuda_arena_free(c, dev);
    }
    free(x), free(mod), free(y), free(xh), free(yh), free(mh);
    return st;
}

/* n values to device p on c's stream (done when this returns: staging is reused) as bf16 (bf16 = 1: f
 * rounded to bf16 in place first) or fp32. */
static void upload(sky_cuda *c, CUdeviceptr p, float *f, size_t n, int bf16, uint16_t *staging)
{
    for (size_t i = 0; bf16 && i < n; i++) f[i] = sky_bf16_to_f32(staging[i] = sky_f32_to_bf16(f[i]));
    SKY_CU_CHECK(cuMemcpyHtoDAsync(p, bf16 ? (const void *)staging : (const void *)f, n * (bf16 ? 2 : 4), c->stream));
    SKY_CU_CHECK(cuStreamSynchronize(c->stream));
}

/* gated_residual (y = x + u gate, the gate chunk of the token's modulation row): 6 rows, 3 per modulation
 * row, x, u U[-2, 2] and mod U[-1, 1], each rounded to its stored type. Bound: u_y max|y| (u_y = 2^-8 for
 * a bf16 output, else 0) + 2 e32 max(|x| + 2 |u gate|): the fp32 product and sum. */
static sky_status residual_row(sky_cuda *c, sky_selftest_prog *p, int ki, sky_selftest_row *r, sky_err *err)
{
    const char *name = p->names[ki];
    const int   at = sky_selftest_const_int(p, ki, "AT") == 1, tok0 = AT_TOK0, mrows = mod_rows(at);
    const int   C = sky_selftest_const_int(p, ki, "C"), chunks = sky_selftest_const_int(p, ki, "CHUNKS");
    const int   gate = sky_selftest_const_int(p, ki, "GATE"), rows = ROWS, tpr = TPR;
    const int   xbf = sky_selftest_const_bf16(p, ki, "TX"), ubf = sky_selftest_const_bf16(p, ki, "TU");
    const int   ybf = sky_selftest_const_bf16(p, ki, "TY");
    if (C < 1 || chunks < 1 || gate < 0)
        return sky_fail(err, "selftest: %s: no C, CHUNKS or GATE in its kernel info", name);
    const size_t n = (size_t)ROWS * C, nm = (size_t)mrows * chunks * C;
    float       *h = malloc((3 * n + nm) * sizeof *h);
    uint16_t    *s = malloc((n > nm ? n : nm) * 2);
    void        *dev = NULL;
    *r = (sky_selftest_row){.max_err = INFINITY};
    snprintf(r->family, sizeof r->family, "residual");
    snprintf(r->kernel, sizeof r->kernel, "%s", name);
    sky_status st = h && s ? SKY_OK : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) st = sky_cuda_arena_alloc(c, (3 * n + nm) * 4, &dev, "the selftest's residual case", err);
    if (st == SKY_OK) {
        float   *x = h, *u = h + n, *y = h + 2 * n, *mod = h + 3 * n;
        uint64_t seed = 0x9e51dULL + (uint64_t)ki;
        sky_selftest_fill(s, x, n, 2.0f, &seed);
        sky_selftest_fill(s, u, n, 2.0f, &seed);
        sky_selftest_fill(s, mod, nm, 1.0f, &seed);
        const CUdeviceptr dy = (CUdeviceptr)(uintptr_t)dev, dx = dy + n * 4, du = dx + n * 4, dm = du + n * 4;
        upload(c, dx, x, n, xbf, s);
        upload(c, du, u, n, ubf, s);
        upload(c, dm, mod, nm, 0, s);
        memset(y, 0xff, n * 4); /* NaN */
        upload(c, dy, y, n, 0, s);
        void *args[] = {(void *)&dy,   (void *)&dx,  (void *)&du,   (void *)&dm,
                        (void *)&rows, (void *)&tpr, (void *)&tok0, (void *)&mrows};
        sky_cuda_launch(&p->st, ki, (unsigned)((n + 255) / 256), 1, 256, 0, c->stream, args);
        SKY_CU_CHECK(cuMemcpyDtoHAsync(ybf ? (void *)s : (void *)y, dy, n * (ybf ? 2 : 4), c->stream));
        SKY_CU_CHECK(cuStreamSynchronize(c->stream));
        double e = 0, ymax = 0, tmax = 0;
        int    finite = 1;
        for (size_t i = 0; i < n; i++) {
            const double g = mod[((size_t)mod_row(at, (int)(i / C)) * chunks + gate) * C + i % C];
            const double want = x[i] + (double)u[i] * g;
            const double got = ybf ? sky_bf16_to_f32(s[i]) : y[i];
            if (!isfinite(got))
                finite = 0;
            else if (fabs(got - want) > e)
                e = fabs(got - want);
            ymax = fmax(ymax, fabs(want));
            tmax = fmax(tmax, fabs(x[i]) + 2 * fabs(u[i] * g));
        }
        r->bound = (ybf ? ldexp(1, -8) : 0) * ymax + 2 * ldexp(1, -24) * tmax;
        r->max_err = finite ? e : INFINITY;
        r->pass = finite && e <= r->bound;
        sky_cuda_arena_free(c, dev);
    }
    free(h), free(s);
    return st;
}

/* Constants of residual_norm instance ki (the kernel info table's). */
typedef struct rn_consts {
    int    C, threads, gated, gate, rchunks, modulate, shift, scale, nchunks, rin, xbf, ubf, rbf, ybf;
    double eps;
} rn_consts;

static int rn_consts_read(const sky_selftest_prog *p, int ki, rn_consts *k)
{
    const char *eps = sky_selftest_const(p, ki, "EPS");
    *k = (rn_consts){sky_selftest_const_int(p, ki, "C"),
                     sky_selftest_const_int(p, ki, "THREADS"),
                     sky_selftest_const_int(p, ki, "GATED"),
                     sky_selftest_const_int(p, ki, "GATE"),
                     sky_selftest_const_int(p, ki, "RCHUNKS"),
                     sky_selftest_const_int(p, ki, "MODULATE"),
                     sky_selftest_const_int(p, ki, "SHIFT"),
                     sky_selftest_const_int(p, ki, "SCALE"),
                     sky_selftest_const_int(p, ki, "NCHUNKS"),
                     sky_selftest_const_int(p, ki, "ROUND_IN"),
                     sky_selftest_const_bf16(p, ki, "TX"),
                     sky_selftest_const_bf16(p, ki, "TU"),
                     sky_selftest_const_bf16(p, ki, "TR"),
                     sky_selftest_const_bf16(p, ki, "TY"),
                     eps ? strtod(eps, NULL) : -1};
    return k->C > 0 && k->threads > 0 && k->gate >= 0 && k->rin >= 0 && k->eps > 0 && k->shift >= 0 && k->scale >= 0 &&
           (!k->gated || k->rchunks > 0) && (!k->modulate || k->nchunks > 0);
}

/* residual_norm (lower.lua's fusion of a residual and the norm reading it): 6 rows, 3 per modulation row; x
 * and u U[-2, 2], the modulations U[-1, 1], weight and bias U[-1, 1], each rounded to its stored type. Two
 * checks, each the unfused kernel's: the residual r = x + u gate (or x + u) as residual_row's bound; the norm
 * of r as the kernel stored it (then rounded to bf16 where ROUND_IN), as norm_row's and layernorm_row's:
 * u_y max|y| + (2 C + 16) e32 max(|n s| + |t|) (s, t: 1 + scale and shift, or weight and bias). Passes when
 * both do; max_err and bound are the norm's, or the residual's where it fails. */
static sky_status residual_norm_row(sky_cuda *c, sky_selftest_prog *p, int ki, sky_selftest_row *r, sky_err *err)
{
    const char *name = p->names[ki];
    const int   at = sky_selftest_const_int(p, ki, "AT") == 1, tok0 = AT_TOK0, mrows = mod_rows(at);
    rn_consts   k;
    if (!rn_consts_read(p, ki, &k)) return sky_fail(err, "selftest: %s: incomplete constants in its kernel info", name);
    const int    C = k.C, tpr = TPR, rch = k.rchunks > 0 ? k.rchunks : 1, nch = k.nchunks > 0 ? k.nchunks : 1;
    const size_t n = (size_t)ROWS * C, nr = (size_t)mrows * rch * C, nn = (size_t)mrows * nch * C;
    const size_t total = 4 * n + nr + nn + 2 * (size_t)C;
    float       *h = malloc(total * sizeof *h);
    uint16_t    *s = malloc(total * 2);
    void        *dev = NULL;
    *r = (sky_selftest_row){.max_err = INFINITY};
    snprintf(r->family, sizeof r->family, "residual+norm");
    snprintf(r->kernel, sizeof r->kernel, "%s", name);
    sky_status st = h && s ? SKY_OK : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) st = sky_cuda_arena_alloc(c, total * 4, &dev, "the selftest's residual+norm case", err);
    if (st == SKY_OK) {
        float   *y = h, *rr = h + n, *x = h + 2 * n, *u = h + 3 * n, *rm = h + 4 * n, *nm = rm + nr, *w = nm + nn;
        uint64_t seed = 0x5e5a0ULL + (uint64_t)ki;
        sky_selftest_fill(s, x, n, 2.0f, &seed);
        sky_selftest_fill(s, u, n, 2.0f, &seed);
        sky_selftest_fill(s, rm, nr + nn + 2 * (size_t)C, 1.0f, &seed);
        const CUdeviceptr dy = (CUdeviceptr)(uintptr_t)dev, dr = dy + n * 4, dx = dr + n * 4, du = dx + n * 4;
        const CUdeviceptr drm = du + n * 4, dnm = drm + nr * 4, dw = dnm + nn * 4, db = dw + (size_t)C * 4;
        upload(c, dx, x, n, k.xbf, s);
        upload(c, du, u, n, k.ubf, s);
        upload(c, drm, rm, nr + nn + 2 * (size_t)C, 0, s);
        memset(y, 0xff, 2 * n * 4); /* NaN, y and r */
        upload(c, dy, y, 2 * n, 0, s);
        void *args[] = {(void *)&dy, (void *)&dr, (void *)&dx,  (void *)&du,   (void *)&drm,  (void *)&dnm,
                        (void *)&dw, (void *)&db, (void *)&tpr, (void *)&tok0, (void *)&mrows};
        sky_cuda_launch(&p->st, ki, ROWS, 1, (unsigned)k.threads, 0, c->stream, args);
        SKY_CU_CHECK(cuMemcpyDtoHAsync(k.rbf ? (void *)s : (void *)rr, dr, n * (k.rbf ? 2 : 4), c->stream));
        SKY_CU_CHECK(cuStreamSynchronize(c->stream));
        for (size_t i = 0; k.rbf && i < n; i++) rr[i] = sky_bf16_to_f32(s[i]);
        SKY_CU_CHECK(cuMemcpyDtoHAsync(k.ybf ? (void *)s : (void *)y, dy, n * (k.ybf ? 2 : 4), c->stream));
        SKY_CU_CHECK(cuStreamSynchronize(c->stream));
        for (size_t i = 0; k.ybf && i < n; i++) y[i] = sky_bf16_to_f32(s[i]);
        double re = 0, rmax = 0, rt = 0, e = 0, ymax = 0, tmax = 0;
        int    finite = 1;
        for (int row = 0; row < ROWS; row++) {
            const float *g = rm + ((size_t)mod_row(at, row) * rch + k.gate) * C,
                        *m = nm + (size_t)mod_row(at, row) * nch * C;
            double mean = 0, var = 0;
            for (int i = 0; i < C; i++) {
                const size_t j = (size_t)row * C + i;
                const double want = x[j] + (double)u[j] * (k.gated ? g[i] : 1.0);
                finite &= isfinite(rr[j]) != 0;
                re = fmax(re, fabs(rr[j] - want)), rmax = fmax(rmax, fabs(want));
                rt = fmax(rt, fabs(x[j]) + 2 * fabs(u[j] * (k.gated ? g[i] : 1.0)));
                mean += k.rin ? sky_bf16_to_f32(sky_f32_to_bf16(rr[j])) : rr[j];
            }
            mean /= C;
            for (int i = 0; i < C; i++) {
                const double v =
                    (k.rin ? sky_bf16_to_f32(sky_f32_to_bf16(rr[(size_t)row * C + i])) : rr[(size_t)row * C + i]);
                var += (v - mean) * (v - mean);
            }
            const double rs = 1 / sqrt(var / C + k.eps);
            for (int i = 0; i < C; i++) {
                const size_t j = (size_t)row * C + i;
                const double v = k.rin ? sky_bf16_to_f32(sky_f32_to_bf16(rr[j])) : rr[j], nv = (v - mean) * rs;
                const double sc = k.modulate ? 1 + m[k.scale * C + i] : w[i];
                const double sh = k.modulate ? m[k.shift * C + i] : w[C + i];
                finite &= isfinite(y[j]) != 0;
                e = fmax(e, fabs(y[j] - (nv * sc + sh))), ymax = fmax(ymax, fabs(nv * sc + sh));
                tmax = fmax(tmax, fabs(nv * sc) + fabs(sh));
            }
        }
        const double rbound = (k.rbf ? ldexp(1, -8) : 0) * rmax + 2 * ldexp(1, -24) * rt;
        const double ybound = (k.ybf ? ldexp(1, -8) : 0) * ymax + (2.0 * C + 16) * ldexp(1, -24) * tmax;
        const int    rpass = re <= rbound;
        r->bound = rpass ? ybound : rbound;
        r->max_err = !finite ? INFINITY : rpass ? e : re;
        r->pass = finite && rpass && e <= ybound;
        sky_cuda_arena_free(c, dev);
    }
    free(h), free(s);
    return st;
}

/* 1 when kernel k of u (dit_forward_usp) is one of dit_forward's (d): the same name, template and constants. The
 * generator names an instance by its template and constants, so it is the same kernel text, which dit_forward's
 * rows check. */
static int covered(const sky_selftest_prog *u, int k, const sky_selftest_prog *d)
{
    for (int i = 0; i < d->n; i++) {
        if (strcmp(d->names[i], u->names[k]) != 0) continue;
        const sky_kernel_info *a = &u->info[k], *b = &d->info[i];
        if (strcmp(a->template_name, b->template_name) != 0 || a->n_consts != b->n_consts) return 0;
        for (int j = 0; j < a->n_consts; j++)
            if (strcmp(a->consts[j].key, b->consts[j].key) != 0 || strcmp(a->consts[j].value, b->consts[j].value) != 0)
                return 0;
        return 1;
    }
    return 0;
}

/* The kernel of template `tmpl` (the other attention kernel) of u with kernel k's heads and head dim that dit_forward
 * lacks, or -1. */
static int attention_partner(const sky_selftest_prog *u, int k, const char *tmpl, const sky_selftest_prog *dit)
{
    for (int i = sky_selftest_find_template(u, tmpl, 0); i >= 0; i = sky_selftest_find_template(u, tmpl, i + 1))
        if (sky_selftest_const_int(u, i, "NH") == sky_selftest_const_int(u, k, "NH") &&
            sky_selftest_const_int(u, i, "D") == sky_selftest_const_int(u, k, "D") && !covered(u, i, dit))
            return i;
    return -1;
}

/* The rows of dit_forward_usp's (u) kernels that dit_forward (dit) has not, in u's table order: the attention of the
 * heads a rank holds (NH / P, both kernels of those heads as one pair), the AT 1 instances of the modulated norms and
 * residuals (the rows a rank's slice of the tokens, from tok0: the case above), usp_slice and usp_pack_heads
 * (selftest_families.c). A kernel of another template, new to dit_forward_usp, fails the selftest rather than go
 * unchecked. */
static sky_status usp_rows(sky_cuda *c, sky_selftest_prog *u, const sky_selftest_prog *dit, sky_selftest_table *t,
                           sky_err *err)
{
    sky_status st = SKY_OK;
    for (int k = 0; st == SKY_OK && k < u->n; k++) {
        if (covered(u, k, dit)) continue;
        const char *tmpl = u->info[k].template_name;
        if (strcmp(tmpl, "attention_sm80") == 0)
            st = attention_pair(c, u, attention_partner(u, k, "attention_sm90", dit), k, t, err);
        else if (strcmp(tmpl, "attention_sm90") == 0) {
            if (attention_partner(u, k, "attention_sm80", dit) < 0) st = attention_pair(c, u, k, -1, t, err);
        } else if (!strcmp(tmpl, "layernorm_modulate") || !strcmp(tmpl, "gated_residual") ||
                   !strcmp(tmpl, "residual_norm")) {
            if (t->n == SKY_SELFTEST_MAX_ROWS)
                return sky_fail(err, "selftest: more than %d kernels to check (%s): raise SKY_SELFTEST_MAX_ROWS",
                                SKY_SELFTEST_MAX_ROWS, u->names[k]);
            sky_selftest_row *r = &t->rows[t->n++];
            st = tmpl[0] == 'l'   ? norm_row(c, u, k, r, err)
                 : tmpl[0] == 'g' ? residual_row(c, u, k, r, err)
                                  : residual_norm_row(c, u, k, r, err);
        } else if (!sky_selftest_usp_row(c, u, k, t, &st, err))
            st = sky_fail(err,
                          "selftest: dit_forward_usp's kernel %s (template %s) is not one of dit_forward's and the "
                          "selftest has no case for it: add one (runtime/cuda/selftest_cuda.c usp_rows)",
                          u->names[k], tmpl);
    }
    return st;
}

/* The cache file of device c into path. */
static sky_status cache_path(const sky_cuda *c, char *path, size_t size, sky_err *err)
{
    char dir[900], key[1200];
    /* the directory may not exist yet: with the kernels built in, NVRTC's cache never made it */
    if (sky_nvrtc_cache_dir(dir, sizeof dir, err) || sky_nvrtc_cache_mkdir(dir, err)) return SKY_ERR;
    /* the plugin hash: the kernel sources of the programs tested */
    XXH64_state_t *h = XXH64_createState();
    if (!h) return sky_fail(err, "selftest: out of host memory");
    XXH64_reset(h, 0);
    XXH64_update(h, dit_forward_cuda.kernels_src, strlen(dit_forward_cuda.kernels_src));
    if (&dit_forward_usp_cuda)
        XXH64_update(h, dit_forward_usp_cuda.kernels_src, strlen(dit_forward_usp_cuda.kernels_src));
    if (&vae_decode_cuda) XXH64_update(h, vae_decode_cuda.kernels_src, strlen(vae_decode_cuda.kernels_src));
    if (&vae_encode_cuda) XXH64_update(h, vae_encode_cuda.kernels_src, strlen(vae_encode_cuda.kernels_src));
    if (&text_encode_cuda) XXH64_update(h, text_encode_cuda.kernels_src, strlen(text_encode_cuda.kernels_src));
    if (&clip_encode_cuda) XXH64_update(h, clip_encode_cuda.kernels_src, strlen(clip_encode_cuda.kernels_src));
    const unsigned long long hash = (unsigned long long)XXH64_digest(h);
    XXH64_freeState(h);
    const char *fault = getenv("SKY_SELFTEST_FAULT"); /* test only: a faulty verdict never reaches real runs */
    int         n =
        snprintf(key, sizeof key, "abi=%d|plugin=%016llx|device=%s|cc=%d.%d|driver=%d|fault=%s", SKY_CUDA_PLUGIN_ABI,
                 hash, c->name, c->cc_major, c->cc_minor, c->driver_version, fault ? fault : "");
    n = snprintf(path, size, "%s/selftest-%016llx.txt", dir, (unsigned long long)XXH64(key, (size_t)n, 0));
    if (n < 0 || (size_t)n >= size) return sky_fail(err, "selftest: cache path too long under %s", dir);
    return SKY_OK;
}

/* The cached verdict at t->path into t: 1 when read, 0 when absent or unreadable (then run again). */
static int cache_read(sky_selftest_table *t)
{
    FILE *f = fopen(t->path, "r");
    if (!f) return 0;
    char line[512];
    int  ok = 1;
    t->n = 0;
    while (ok && fgets(line, sizeof line, f)) {
        if (line[0] == '#') continue;
        if (t->n == SKY_SELFTEST_MAX_ROWS) {
            ok = 0;
            break;
        }
        sky_selftest_row *r = &t->rows[t->n];
        ok = sscanf(line, "%31s\t%127s\t%31s\t%lf\t%lf\t%d", r->family, r->kernel, r->fallback, &r->max_err, &r->bound,
                    &r->pass) == 6;
        if (strcmp(r->fallback, "-") == 0) r->fallback[0] = 0;
        t->n += ok;
    }
    fclose(f);
    return ok;
}

static sky_status cache_write(const sky_selftest_table *t, sky_err *err)
{
    char tmp[1100];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", t->path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return sky_fail(err, "selftest: cannot write %s; set SKY_CACHE to a writable directory", tmp);
    fprintf(f, "# skyreels kernel selftest: %s\n", t->device);
    for (int i = 0; i < t->n; i++) {
        const sky_selftest_row *r = &t->rows[i];
        fprintf(f, "%s\t%s\t%s\t%.9g\t%.9g\t%d\n", r->family, r->kernel, r->fallback[0] ? r->fallback : "-", r->max_err,
                r->bound, r->pass);
    }
    if (fclose(f) != 0 || rename(tmp, t->path) != 0) {
        remove(tmp);
        return sky_fail(err, "selftest: cannot write %s; set SKY_CACHE to a writable directory", t->path);
    }
    return SKY_OK;
}

/* A DiT program's kernels as the selftest loads them (its sm_80 attention's shared memory by name). */
static sky_selftest_prog dit_prog(const sky_dit_cuda_desc *g, const char *file)
{
    return (sky_selftest_prog){.src = g->kernels_src,
                               .file = file,
                               .n = g->n_kernels,
                               .names = g->kernel_names,
                               .info = g->kernel_info,
                               .smem_prefix = "attention_sm80",
                               .smem = g->attention_smem};
}

sky_status sky_cuda_selftest_on(sky_cuda *c, int force, sky_selftest_table *t, sky_err *err)
{
    memset(t, 0, sizeof *t);
    snprintf(t->device, sizeof t->device, "GPU %d: %s, sm_%d%d, driver %d", c->device, c->name, c->cc_major,
             c->cc_minor, c->driver_version);
    if (cache_path(c, t->path, sizeof t->path, err)) return SKY_ERR;
    if (!force && cache_read(t)) {
        t->cached = 1;
        return SKY_OK;
    }
    t->n = 0;
    const sky_dit_cuda_desc *g = &dit_forward_cuda;
    sky_selftest_prog        dit = dit_prog(g, "gen/dit_forward_kernels.cu");
    sky_status               st = sky_selftest_prog_load(c, &dit, err);
    if (st == SKY_OK) {
        sky_cuda_smem_limit(g->n_kernels, g->kernel_names, dit.fn, "attention_sm90", g->attention90_smem);
        st = attention_pair(c, &dit, sky_selftest_find_template(&dit, "attention_sm90", 0),
                            sky_selftest_find_template(&dit, "attention_sm80", 0), t, err);
        for (int i = 0; st == SKY_OK && i < g->n_kernels && t->n < SKY_SELFTEST_MAX_ROWS; i++)
            if (strcmp(g->kernel_info[i].template_name, "layernorm_modulate") == 0)
                st = norm_row(c, &dit, i, &t->rows[t->n++], err);
            else if (strcmp(g->kernel_info[i].template_name, "gated_residual") == 0)
                st = residual_row(c, &dit, i, &t->rows[t->n++], err);
            else if (strcmp(g->kernel_info[i].template_name, "residual_norm") == 0)
                st = residual_norm_row(c, &dit, i, &t->rows[t->n++], err);
        if (st == SKY_OK) st = sky_selftest_rope_rows(c, &dit, t, err);
        if (st == SKY_OK) st = sky_selftest_layernorm_rows(c, &dit, 1, t, err);
        if (st == SKY_OK) st = sky_selftest_gemm_row(c, t, err);
        if (st == SKY_OK) st = sky_selftest_fp8_row(c, &dit, t, err);
    }
    sky_selftest_prog_unload(&dit); /* its names and kernel info stay: usp_rows compares against them */
    /* dit_forward_usp (--use_usp): its kernels that dit_forward lacks are checked whenever the plugin has the program,
     * whether or not a run asks for --use_usp. The verdict is one per device and plugin (cached; neither the plugin's
     * selftest entry nor its cache key knows a run's options), the gate before every CUDA run reads that one table,
     * and a --use_usp run then needs no selftest of its own; the cost is one more module (no compilation where the
     * kernels are built in, else NVRTC's cache keeps it for the --use_usp run) and a few small launches. */
    if (st == SKY_OK && &dit_forward_usp_cuda) {
        const sky_dit_cuda_desc *u = &dit_forward_usp_cuda;
        sky_selftest_prog        usp = dit_prog(u, "gen/dit_forward_usp_kernels.cu");
        st = sky_selftest_prog_load(c, &usp, err);
        if (st == SKY_OK) {
            sky_cuda_smem_limit(u->n_kernels, u->kernel_names, usp.fn, "attention_sm90", u->attention90_smem);
            st = usp_rows(c, &usp, &dit, t, err);
        }
        sky_selftest_prog_unload(&usp);
    }
    const sky_vae_cuda_desc *vaes[2] = {&vae_decode_cuda, &vae_encode_cuda};
    for (int i = 0; i < 2 && st == SKY_OK; i++) {
        const sky_vae_cuda_desc *v = vaes[i];
        if (!v) continue; /* a variant without it */
        sky_selftest_prog vae = {.src = v->kernels_src,
                                 .file = v->kernels_file,
                                 .n = v->n_kernels,
                                 .names = v->kernel_names,
                                 .info = v->kernel_info,
                                 .smem_prefix = "conv_tf32",
                                 .smem = v->conv_smem};
        st = sky_selftest_prog_load(c, &vae, err);
        if (st == SKY_OK) st = sky_selftest_vae_rows(c, &vae, i, t, err);
        if (st == SKY_OK && i == 0) st = sky_selftest_softmax_row(c, &vae, "vae_attn", t, err);
        sky_selftest_prog_unload(&vae);
    }
    if (st == SKY_OK && &text_encode_cuda) {
        const sky_enc_cuda_desc *e = &text_encode_cuda;
        sky_selftest_prog        text = {.src = e->kernels_src,
                                         .file = e->kernels_file,
                                         .n = e->n_kernels,
                                         .names = e->kernel_names,
                                         .info = e->kernel_info};
        st = sky_selftest_prog_load(c, &text, err);
        if (st == SKY_OK) st = sky_selftest_t5_rows(c, &text, t, err);
        sky_selftest_prog_unload(&text);
    }
    if (st == SKY_OK && &clip_encode_cuda) {
        const sky_enc_cuda_desc *e = &clip_encode_cuda;
        sky_selftest_prog        clip = {.src = e->kernels_src,
                                         .file = e->kernels_file,
                                         .n = e->n_kernels,
                                         .names = e->kernel_names,
                                         .info = e->kernel_info};
        st = sky_selftest_prog_load(c, &clip, err);
        if (st == SKY_OK) st = sky_selftest_layernorm_rows(c, &clip, 0, t, err);
        if (st == SKY_OK) st = sky_selftest_softmax_row(c, &clip, "clip_attn", t, err);
        sky_selftest_prog_unload(&clip);
    }
    return st ? st : cache_write(t, err);
}

sky_status sky_cuda_selftest(int device, int force, sky_selftest_table *t, sky_err *err)
{
    sky_cuda *c;
    if (sky_cuda_open(&c, device, err)) return SKY_ERR;
    const sky_status st = sky_cuda_selftest_on(c, force, t, err);
    sky_cuda_close(c);
    return st;
}

const sky_selftest_row *sky_selftest_find(const sky_selftest_table *t, const char *prefix)
{
    for (int i = 0; i < t->n; i++)
        if (strncmp(t->rows[i].kernel, prefix, strlen(prefix)) == 0) return &t->rows[i];
    return NULL;
}

int sky_selftest_enabled(void)
{
    const char *v = getenv("SKY_SELFTEST");
    return !(v && strcmp(v, "0") == 0);
}
