/* tests/emu/kernel_test.c — CUDA templates at sizes the tiny models do not reach, on the CPU emulator,
 * against plain references written from the reference text (kernels: tests/emu/kernel_test.lua).
 *
 *   softmax_rows      rows of 1, 5, 37, 300 and 1100 values (more than one warp, more than one block pass)
 *   softmax_relbias   umT5's bias + softmax for 1, 37 and 300 tokens; the buckets from the table of
 *                     shared/reference/vae-text-image-files.md §2.3, the bf16 roundings of the bf16 model
 *   rms_norm_cl       8, 96 (+ SiLU) and 384 channels
 *   conv_tf32         each column tile (96, 64, 32, 16), several tiles (128, 72, 144), a partial one (3), a
 *                     partial channel step (20), stride 2, a split output; weights rounded to tf32 as uploaded
 *                     with odd sizes, the temporal upsample's split output, the cache frames
 *   attention         the sm_80 kernel and the Hopper kernel with every schedule of gen/schedule_sm90.lua, v
 *                     contiguous and as the last third of a fused q|k|v row
 *   gated_residual    16-byte accesses against one value per thread, bit for bit
 *   usp_slice         --use_usp's slice of a rank's rows (bf16 tokens, fp32 RoPE rows), the last rank's padding
 *                     zero; usp_pack_heads: the head groups packed for the all-to-all and back, bit for bit
 *   16-byte accesses  the row kernels (layernorm_affine, layernorm_modulate, rmsnorm, rmsnorm_rope, rms_factor:
 *                     the row staged in shared memory) and add_row, modulation, teacache against one value at
 *                     a time, bit for bit
 *   residual_norm     the DiT's three residual -> norm pairs of 1536 channels against the unfused kernels
 *                     (gated_residual or add, then layernorm_affine or layernorm_modulate): one value at a time
 *                     bit for bit, in 16-byte chunks the residual bit for bit and the norm within a bound
 * Bounds: softmax_rows and rms_norm_cl in fp32 against double: 1e-5 relative per value (a few fp32
 * roundings and expf's ulps); softmax_relbias: one bf16 ulp (2^-8 relative, the output is rounded to bf16
 * once after fp32 math); conv_tf32: the reference rounds the operands to tf32 as the kernel does and sums
 * in double, so only the summation order differs: 1e-5 relative L2 and per value 1e-4 of the output's
 * largest magnitude. Prints one line per check; exit 1 on a failure.
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda.h>

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

static const sky_emu_kernel *kernel(const char *name)
{
    const sky_emu_module_def *m = sky_emu_find_module("kernel_test_kernels.cu");
    for (int i = 0; m && i < m->n; i++)
        if (strcmp(m->kernels[i].name, name) == 0) return &m->kernels[i];
    fprintf(stderr, "kernel_test: no kernel %s\n", name);
    exit(2);
}

static void *dev(size_t bytes)
{
    CUdeviceptr p;
    if (cuMemAlloc(&p, bytes ? bytes : 1) != CUDA_SUCCESS) { fprintf(stderr, "kernel_test: cuMemAlloc\n"); exit(2); }
    return (void *)(uintptr_t)p;
}

static uint64_t rng = 0x9e3779b97f4a7c15ull;
static float urand(void)                            /* uniform in [-1, 1) */
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((double)(rng >> 11) / 9007199254740992.0 * 2.0 - 1.0);
}

static float bf16r(float x) { return sky_emu_bf16_to_f32(sky_emu_f32_to_bf16(x)); }
static double tf32r(float x)
{
    unsigned u = sky_emu_f32_to_tf32(x);
    float f;
    memcpy(&f, &u, 4);
    return f;
}

/* ---- softmax_rows -------------------------------------------------------------------------- */

static void test_softmax_rows(void)
{
    const int ns[] = { 1, 5, 37, 300, 1100 }, rows = 3;
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        const int n = ns[t];
        float *s = dev((size_t)rows * n * 4), *ref = malloc((size_t)rows * n * sizeof(float));
        const float scale = 0.17677669f;
        for (int i = 0; i < rows * n; i++) s[i] = ref[i] = 8.0f * urand();
        void *args[] = { &s, (int[]){ n }, (float[]){ scale } };
        sky_emu_launch(kernel("softmax_rows"), rows, 1, 1, 256, 1, 1, 0, args);
        double worst = 0;
        for (int r = 0; r < rows; r++) {
            double m = -INFINITY, sum = 0;
            for (int j = 0; j < n; j++) m = fmax(m, ref[r * n + j]);
            for (int j = 0; j < n; j++) sum += exp(scale * ((double)ref[r * n + j] - m));
            for (int j = 0; j < n; j++) {
                const double want = exp(scale * ((double)ref[r * n + j] - m)) / sum;
                const double e = fabs(s[r * n + j] - want) / want;
                if (!(e <= worst)) worst = e;
            }
        }
        check(worst <= 1e-5, "softmax_rows: %d rows of %d: worst relative error %.2e (bound 1e-5)", rows, n, worst);
        free(ref);
    }
}

/* ---- softmax_relbias ------------------------------------------------------------------------ */

/* umT5's bucket from the reference's table (§2.3), not from the formula. */
static int ref_bucket(int rel)
{
    static const struct { int lo, hi, f; } table[] = {
        { 8, 11, 8 }, { 12, 15, 9 }, { 16, 22, 10 }, { 23, 31, 11 }, { 32, 45, 12 }, { 46, 63, 13 }, { 64, 90, 14 },
    };
    const int m = abs(rel);
    int f = 15;
    if (m < 8) f = m;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (m >= table[i].lo && m <= table[i].hi) f = table[i].f;
    return (rel > 0 ? 16 : 0) + f;
}

static void test_softmax_relbias(void)
{
    const int ns[] = { 1, 37, 300 }, NH = 4, h = 1;
    float *bias = dev(32 * NH * 4);
    for (int i = 0; i < 32 * NH; i++) bias[i] = bf16r(2.0f * urand());
    for (size_t t = 0; t < sizeof ns / sizeof ns[0]; t++) {
        const int n = ns[t], ld = n + 3;
        uint16_t *s = dev((size_t)n * ld * 2);
        float *in = malloc((size_t)n * ld * sizeof(float));
        for (int i = 0; i < n * ld; i++) {
            in[i] = bf16r(4.0f * urand());
            s[i] = sky_emu_f32_to_bf16(in[i]);
        }
        void *args[] = { &s, &bias, (int[]){ h }, (int[]){ n }, (int[]){ ld } };
        sky_emu_launch(kernel("softmax_relbias_buckets32_maxdist128_nh4"), n, 1, 1, 256, 1, 1, 0, args);
        double worst = 0;
        for (int a = 0; a < n; a++) {
            double m = -INFINITY, sum = 0;
            double *v = malloc((size_t)n * sizeof(double));
            for (int b = 0; b < n; b++) {
                v[b] = bf16r(in[a * ld + b] + bias[ref_bucket(b - a) * NH + h]);
                m = fmax(m, v[b]);
            }
            for (int b = 0; b < n; b++) sum += exp(v[b] - m);
            for (int b = 0; b < n; b++) {
                const double want = exp(v[b] - m) / sum;
                const double got = sky_emu_bf16_to_f32(s[a * ld + b]);
                const double e = fabs(got - want) / want;
                if (!(e <= worst)) worst = e;
            }
            free(v);
        }
        check(worst <= 1.0 / 256, "softmax_relbias: %d tokens (row stride %d): worst relative error %.2e (bound 2^-8, "
              "one bf16 ulp)", n, ld, worst);
        free(in);
    }
}

/* ---- rms_norm_cl ---------------------------------------------------------------------------- */

static void test_rms_norm(int C, int silu)
{
    const long long rows = 21;
    float *x = dev((size_t)rows * C * 4), *y = dev((size_t)rows * C * 4), *g = dev((size_t)C * 4);
    for (long long i = 0; i < rows * C; i++) x[i] = 3.0f * urand();
    for (int c = 0; c < C; c++) g[c] = 1.0f + 0.2f * urand();
    char name[64];
    snprintf(name, sizeof name, "rms_norm_cl_c%d_silu%d", C, silu);
    void *args[] = { &y, &x, &g, (long long[]){ rows } };
    sky_emu_launch(kernel(name), (unsigned)((rows + 7) / 8), 1, 1, 256, 1, 1, 0, args);
    double worst = 0;
    for (long long r = 0; r < rows; r++) {
        double ss = 0;
        for (int c = 0; c < C; c++) ss += (double)x[r * C + c] * x[r * C + c];
        const double norm = fmax(sqrt(ss), 1e-12);
        for (int c = 0; c < C; c++) {
            double want = x[r * C + c] / norm * sqrt((double)C) * g[c];
            if (silu) want = want / (1.0 + exp(-want));
            const double e = fabs(y[r * C + c] - want) / fmax(fabs(want), 1e-3);
            if (!(e <= worst)) worst = e;
        }
    }
    check(worst <= 1e-5, "rms_norm_cl: %lld rows of %d channels%s: worst relative error %.2e (bound 1e-5)", rows, C,
          silu ? " + SiLU" : "", worst);
}

/* ---- rms_factor --------------------------------------------------------------------------------
 * q's row factors (lower.lua's q_norm) against the kernels whose normalised q the attention now makes: at
 * 1536 channels with df_1.3b_540p's threads, rms_factor (PAIRS 0) and rmsnorm, rms_factor (PAIRS 1) and
 * rmsnorm_rope on rows 3 C apart (q's third of a fused q|k|v). q normalised on the host from the factors
 * as common.cuh's sky_q_prep does it (x r, times g, the pair rotated, one bf16 rounding) must equal the
 * norm's output bit for bit: the factors are the norm's own. */
static void test_rms_factor(int pairs)
{
    enum { C = 1536, D = 128 };
    const int rows = 19, ldx = pairs ? 3 * C : C;
    uint16_t *x = dev((size_t)rows * ldx * 2), *y = dev((size_t)rows * C * 2);
    float *g = dev(C * 4), *r = dev(rows * 4), *tab = dev((size_t)rows * D * 4);
    for (size_t i = 0; i < (size_t)rows * ldx; i++) x[i] = sky_emu_f32_to_bf16(4.0f * urand() + 0.5f);
    for (int c = 0; c < C; c++) g[c] = 1.0f + 0.3f * urand();
    for (int n = 0; n < rows; n++)
        for (int p = 0; p < D / 2; p++) {
            const double t = 0.37 * n * (p + 1);
            tab[n * D + p] = (float)cos(t), tab[n * D + D / 2 + p] = (float)sin(t);
        }
    int a_ld = ldx;
    if (pairs) {
        void *args[] = { &y, &x, &g, &tab, &a_ld };
        sky_emu_launch(kernel("rmsnorm_rope_c1536_d128_eps1e06f_threads256_vec1"), rows, 1, 1, 256, 1, 1, 0, args);
    } else {
        void *args[] = { &y, &x, &g };
        sky_emu_launch(kernel("rmsnorm_c1536_eps1e06f_threads256_vec1"), rows, 1, 1, 256, 1, 1, 0, args);
    }
    void *fargs[] = { &r, &x, &a_ld };
    sky_emu_launch(kernel(pairs ? "rms_factor_c1536_eps1e06f_pairs1_threads256_vec1" : "rms_factor_c1536_eps1e06f_pairs0_threads256_vec1"),
                   rows, 1, 1, 256, 1, 1, 0, fargs);
    int differ = 0;
    for (int n = 0; n < rows; n++)
        for (int c = 0; c < C; c += 2) {
            const float a = sky_emu_bf16_to_f32(x[(size_t)n * ldx + c]) * r[n] * g[c],
                        b = sky_emu_bf16_to_f32(x[(size_t)n * ldx + c + 1]) * r[n] * g[c + 1];
            float u = a, w = b;
            if (pairs) {
                const float cs = tab[n * D + c % D / 2], sn = tab[n * D + D / 2 + c % D / 2];
                u = a * cs - b * sn, w = a * sn + b * cs;
            }
            differ += y[(size_t)n * C + c] != sky_emu_f32_to_bf16(u) || y[(size_t)n * C + c + 1] != sky_emu_f32_to_bf16(w);
        }
    check(differ == 0, "rms_factor (%s): %d rows of %d: q normalised from its factors equals %s's output bit for bit "
          "(%d pairs differ)", pairs ? "pairs, rows 3 C apart" : "values", rows, C, pairs ? "rmsnorm_rope" : "rmsnorm",
          differ);
}

/* ---- residual_norm --------------------------------------------------------------------------- */

/* Fill n values of dtype bf (1: bf16 bits, 0: fp32) at p with a * U[-1, 1) + o. */
static void fill(void *p, int bf, size_t n, float a, float o)
{
    for (size_t i = 0; i < n; i++) {
        if (bf) ((uint16_t *)p)[i] = sky_emu_f32_to_bf16(a * urand() + o);
        else ((float *)p)[i] = a * urand() + o;
    }
}

/* The fused residual + norm (GATED: gate chunk `gate`, else an add; MODULATE: shift and scale chunks, else
 * weight and bias) against the two unfused kernels it replaces on the same inputs. The residual equals theirs
 * bit for bit; the norm too where the fused kernel takes one value at a time (exact: the same chunks and sums),
 * else (16-byte chunks: other fp32 sums of the same C values) within one bf16 step of theirs plus what two
 * fp32 sum orders can move the value before rounding: 2^-7 |y| + 2 (2 C + 16) 2^-24 max(|n s| + |t|) (n the
 * normalised value, s and t the scale and shift). 7 rows of 1536 channels, 3 rows per modulation row; the
 * outputs start as different garbage, so a value never written cannot match. */
static void test_residual_norm(const char *fused, const char *res, const char *norm, int gated, int modulate,
                               int xbf, int rbf, int exact, int threads)
{
    enum { C = 1536, ROWS = 7, TPR = 3, MROWS = 3 };
    const size_t n = (size_t)ROWS * C;
    void *x = dev(n * 4), *u = dev(n * 2), *r = dev(n * 4), *r2 = dev(n * 4), *y = dev(n * 2), *y2 = dev(n * 2);
    float *rmod = dev((size_t)MROWS * 6 * C * 4), *nmod = dev((size_t)MROWS * 6 * C * 4), *w = dev(C * 4),
          *b = dev(C * 4);
    fill(x, xbf, n, 2.0f, 0.5f);
    fill(u, 1, n, 1.0f, 0.0f);
    fill(rmod, 0, (size_t)MROWS * 6 * C, 1.0f, 0.0f);
    fill(nmod, 0, (size_t)MROWS * 6 * C, 0.5f, 0.0f);
    fill(w, 0, C, 0.2f, 1.0f);
    fill(b, 0, C, 0.5f, 0.0f);
    memset(r, 0x7f, n * 4), memset(r2, 0x3e, n * 4), memset(y, 0x7f, n * 2), memset(y2, 0x3e, n * 2);
    int tpr = TPR, rows = ROWS;
    long long nn = (long long)n;
    void *fargs[] = { &y, &r, &x, &u, &rmod, &nmod, &w, &b, &tpr };
    sky_emu_launch(kernel(fused), ROWS, 1, 1, (unsigned)threads, 1, 1, 0, fargs);
    void *gargs[] = { &r2, &x, &u, &rmod, &rows, &tpr };
    void *aargs[] = { &r2, &x, &u, &nn };
    sky_emu_launch(kernel(res), (unsigned)((n + 255) / 256), 1, 1, 256, 1, 1, 0, gated ? gargs : aargs);
    void *laargs[] = { &y2, &r2, &w, &b };
    void *lmargs[] = { &y2, &r2, &nmod, &tpr };
    sky_emu_launch(kernel(norm), ROWS, 1, 1, 256, 1, 1, 0, modulate ? lmargs : laargs);
    const int same_r = memcmp(r, r2, n * (rbf ? 2 : 4)) == 0;
    int       same_y = memcmp(y, y2, n * 2) == 0;
    double    worst = 0;                        /* the largest difference over its bound */
    for (int row = 0; !exact && row < ROWS; row++) {
        double vals[C], mean = 0, var = 0, tmax = 0;
        const float *m = nmod + (size_t)(row / TPR) * 6 * C;
        for (int i = 0; i < C; i++) {
            const size_t j = (size_t)row * C + i;
            float        v = rbf ? sky_emu_bf16_to_f32(((uint16_t *)r2)[j]) : ((float *)r2)[j];
            if (!modulate) v = bf16r(v); /* the affine case here is norm3's: ROUND_IN */
            vals[i] = v, mean += v;
        }
        mean /= C;
        for (int i = 0; i < C; i++) var += (vals[i] - mean) * (vals[i] - mean);
        const double rs = 1 / sqrt(var / C + 1e-6);
        for (int i = 0; i < C; i++) {
            const double nv = (vals[i] - mean) * rs, sc = modulate ? 1 + m[4 * C + i] : w[i], sh = modulate ? m[3 * C + i] : b[i];
            tmax = fmax(tmax, fabs(nv * sc) + fabs(sh));
        }
        for (int i = 0; i < C; i++) {
            const size_t j = (size_t)row * C + i;
            const double a = sky_emu_bf16_to_f32(((uint16_t *)y)[j]), e = sky_emu_bf16_to_f32(((uint16_t *)y2)[j]);
            const double bound = ldexp(fabs(e), -7) + 2 * (2.0 * C + 16) * ldexp(1, -24) * tmax;
            if (!(fabs(a - e) <= bound)) worst = INFINITY;
            else if (fabs(a - e) / bound > worst) worst = fabs(a - e) / bound;
        }
    }
    if (!exact) same_y = worst <= 1;
    char how[64];
    if (exact) snprintf(how, sizeof how, "%s", same_y ? "bit for bit" : "DIFFERS");
    else snprintf(how, sizeof how, "within its bound (the largest difference %.2f of it)%s", worst, same_y ? "" : " NO");
    check(same_r && same_y, "residual_norm: %s (%d rows of %d) equals %s then %s: the residual bit for bit%s, the norm %s",
          fused, ROWS, C, res, norm, same_r ? "" : " NO", how);
}

/* gated_residual with 16-byte accesses (VEC 8) against one value per thread (VEC 1, the fallback) on the same
 * inputs: equal bit for bit, the grid's last block partly past the end (7 rows of 1536: 1344 threads). */
static void test_gated_residual_vec(void)
{
    enum { C = 1536, ROWS = 7, TPR = 3 };
    const size_t n = (size_t)ROWS * C;
    float *x = dev(n * 4), *mod = dev((size_t)3 * 6 * C * 4);
    uint16_t *u = dev(n * 2), *y8 = dev(n * 2 + 64), *y1 = dev(n * 2 + 64);
    fill(x, 0, n, 2.0f, 0.5f), fill(u, 1, n, 1.0f, 0.0f), fill(mod, 0, (size_t)3 * 6 * C, 1.0f, 0.0f);
    memset(y8, 0x7f, n * 2 + 64), memset(y1, 0x7f, n * 2 + 64);
    int rows = ROWS, tpr = TPR;
    void *a8[] = { &y8, &x, &u, &mod, &rows, &tpr }, *a1[] = { &y1, &x, &u, &mod, &rows, &tpr };
    sky_emu_launch(kernel("gated_residual_at0_c1536_chunks6_gate5_tubf16_txfloat_tybf16_vec8"),
                   (unsigned)((n / 8 + 255) / 256), 1, 1, 256, 1, 1, 0, a8);
    sky_emu_launch(kernel("gated_residual_at0_c1536_chunks6_gate5_tubf16_txfloat_tybf16_vec1"),
                   (unsigned)((n + 255) / 256), 1, 1, 256, 1, 1, 0, a1);
    int past = 1;
    for (size_t i = n; i < n + 32; i++) past &= y8[i] == 0x7f7f;
    check(memcmp(y8, y1, n * 2) == 0 && past, "gated_residual: 16-byte accesses (VEC 8) equal one value per thread bit "
          "for bit over %d rows of %d, nothing written past the end", ROWS, C);
}

/* ---- --use_usp: the kernels reading a modulation row on a rank's slice (AT 1, dit_forward_usp) ------ */

/* Each of layernorm_modulate, gated_residual and residual_norm with AT 1 on rank 1 of 2's slice of 9 tokens of 3
 * frames (3 tokens per modulation row; rows 5..9 from tok0 5, row 9 the padding) against the AT 0 kernel over all 9
 * rows: the slice's rows 5..8 bit for bit those rows of the whole call (the per-frame modulation follows the
 * tokens); the padding row reads the last modulation row (within the buffers). */
static void test_at_tok0(void)
{
    enum { C = 1536, L = 9, TPR = 3, MROWS = 3, LS = 5, TOK0 = 5, VALID = L - TOK0 };
    float    *mod = dev((size_t)MROWS * 6 * C * 4), *nmod = dev((size_t)MROWS * 6 * C * 4), *xf = dev((size_t)L * C * 4);
    float    *xs = dev((size_t)LS * C * 4);
    uint16_t *xb = dev((size_t)L * C * 2), *xbs = dev((size_t)LS * C * 2), *u = dev((size_t)L * C * 2);
    uint16_t *us = dev((size_t)LS * C * 2), *yf = dev((size_t)L * C * 2), *ys = dev((size_t)LS * C * 2);
    uint16_t *rbf = dev((size_t)L * C * 2), *rbs = dev((size_t)LS * C * 2);
    fill(mod, 0, (size_t)MROWS * 6 * C, 1.0f, 0.0f), fill(nmod, 0, (size_t)MROWS * 6 * C, 0.5f, 0.0f);
    fill(xf, 0, (size_t)L * C, 2.0f, 0.5f), fill(xb, 1, (size_t)L * C, 2.0f, 0.5f), fill(u, 1, (size_t)L * C, 1.0f, 0.0f);
    memset(xs, 0, (size_t)LS * C * 4), memset(xbs, 0, (size_t)LS * C * 2), memset(us, 0, (size_t)LS * C * 2);
    memcpy(xs, xf + (size_t)TOK0 * C, (size_t)VALID * C * 4), memcpy(xbs, xb + (size_t)TOK0 * C, (size_t)VALID * C * 2);
    memcpy(us, u + (size_t)TOK0 * C, (size_t)VALID * C * 2);
    int       l = L, ls = LS, tpr = TPR, tok0 = TOK0, mrows = MROWS;
    const size_t valid = (size_t)VALID * C;

    void *a0[] = { &yf, &xb, &mod, &tpr }, *a1[] = { &ys, &xbs, &mod, &tpr, &tok0, &mrows };
    sky_emu_launch(kernel("layernorm_modulate_at0_c1536_chunks6_eps1e06f_scale1_shift0_threads256_txbf16_tybf16_vec8"), L, 1,
                   1, 256, 1, 1, 0, a0);
    sky_emu_launch(kernel("layernorm_modulate_at1_c1536_chunks6_eps1e06f_scale1_shift0_threads256_txbf16_tybf16_vec8"), LS, 1,
                   1, 256, 1, 1, 0, a1);
    check(memcmp(ys, yf + (size_t)TOK0 * C, valid * 2) == 0, "layernorm_modulate AT 1: rows %d..%d of %d from tok0 %d "
          "equal the whole call's bit for bit (3 tokens per frame)", TOK0, L - 1, L, TOK0);

    void *g0[] = { &yf, &xf, &u, &mod, &l, &tpr }, *g1[] = { &ys, &xs, &us, &mod, &ls, &tpr, &tok0, &mrows };
    sky_emu_launch(kernel("gated_residual_at0_c1536_chunks6_gate5_tubf16_txfloat_tybf16_vec8"),
                   (unsigned)(((size_t)L * C / 8 + 255) / 256), 1, 1, 256, 1, 1, 0, g0);
    sky_emu_launch(kernel("gated_residual_at1_c1536_chunks6_gate5_tubf16_txfloat_tybf16_vec8"),
                   (unsigned)(((size_t)LS * C / 8 + 255) / 256), 1, 1, 256, 1, 1, 0, g1);
    check(memcmp(ys, yf + (size_t)TOK0 * C, valid * 2) == 0, "gated_residual AT 1: the slice's rows equal the whole "
          "call's bit for bit");

    void *r0[] = { &yf, &rbf, &xf, &u, &mod, &nmod, &mod, &mod, &tpr };
    void *r1[] = { &ys, &rbs, &xs, &us, &mod, &nmod, &mod, &mod, &tpr, &tok0, &mrows };
    const char *rn = "residual_norm_at%d_c1536_eps1e06f_gate5_gated1_modulate1_nchunks6_rchunks6_roundin0_scale1_shift0_"
                     "threads192_trbf16_tubf16_txfloat_tybf16_vec8";
    char n0[200], n1[200];
    snprintf(n0, sizeof n0, rn, 0), snprintf(n1, sizeof n1, rn, 1);
    sky_emu_launch(kernel(n0), L, 1, 1, 192, 1, 1, 0, r0);
    sky_emu_launch(kernel(n1), LS, 1, 1, 192, 1, 1, 0, r1);
    check(memcmp(ys, yf + (size_t)TOK0 * C, valid * 2) == 0 && memcmp(rbs, rbf + (size_t)TOK0 * C, valid * 2) == 0,
          "residual_norm AT 1: the slice's norm and residual rows equal the whole call's bit for bit");
    /* the negative control: the AT 0 kernel on the slice takes frame 0's modulation for row 0 (token 5, frame 1) */
    void *w[] = { &ys, &xbs, &mod, &tpr };
    sky_emu_launch(kernel("layernorm_modulate_at0_c1536_chunks6_eps1e06f_scale1_shift0_threads256_txbf16_tybf16_vec8"), L, 1,
                   1, 256, 1, 1, 0, a0);
    sky_emu_launch(kernel("layernorm_modulate_at0_c1536_chunks6_eps1e06f_scale1_shift0_threads256_txbf16_tybf16_vec8"), LS, 1,
                   1, 256, 1, 1, 0, w);
    check(memcmp(ys, yf + (size_t)TOK0 * C, valid * 2) != 0, "negative control: without AT the slice's rows differ");
}

/* ---- --use_usp's data movement (dit_forward_usp) ----------------------------------------------- */

/* usp_slice: rank `rank` of P takes rows [rank Ls, rank Ls + Ls) of an [L, COLS] tensor, Ls = ceil(L / P), the
 * rows past L zero; against the same rows picked on the host, bit for bit, nothing written past the slice. */
static void test_usp_slice(const char *name, int cols, size_t bytes, int L, int P, int rank)
{
    const int Ls = (L + P - 1) / P, tok0 = rank * Ls;
    const size_t n_in = (size_t)L * cols * bytes, n_out = (size_t)Ls * cols * bytes;
    unsigned char *x = dev(n_in), *y = dev(n_out + 64), *want = calloc(1, n_out);
    for (size_t i = 0; i < n_in; i++) x[i] = (unsigned char)(1 + (i * 131 + (i >> 7)) % 251);
    for (int r = 0; r < Ls; r++)
        if (tok0 + r < L) memcpy(want + (size_t)r * cols * bytes, x + (size_t)(tok0 + r) * cols * bytes, cols * bytes);
    memset(y, 0x7f, n_out + 64);
    int rows = Ls, t0 = tok0, l = L;
    void *a[] = { &y, &x, &rows, &t0, &l };
    sky_emu_launch(kernel(name), (unsigned)(((size_t)Ls * cols + 255) / 256), 1, 1, 256, 1, 1, 0, a);
    int past = 1;
    for (size_t i = n_out; i < n_out + 64; i++) past &= y[i] == 0x7f;
    check(memcmp(y, want, n_out) == 0 && past, "usp_slice: rank %d of %d, rows [%d, %d) of %d (%d of padding), %d "
          "columns of %zu bytes, bit for bit", rank, P, tok0, tok0 + Ls, L, tok0 + Ls > L ? tok0 + Ls - L : 0, cols,
          bytes);
    free(want);
}

/* usp_pack_heads: [rows, C] into P blocks [P, rows, C / P] (block p: head group p) against the host's layout,
 * and the UNPACK form back to the same bits. */
static void test_usp_pack(int rows, int P)
{
    enum { C = 1536 };
    const int    cp = C / P;
    const size_t n = (size_t)rows * C;
    uint16_t *x = dev(n * 2), *packed = dev(n * 2), *back = dev(n * 2), *want = malloc(n * 2);
    for (size_t i = 0; i < n; i++) x[i] = (uint16_t)(i * 2654435761u >> 7);
    for (int r = 0; r < rows; r++)
        for (int c = 0; c < C; c++) want[((size_t)(c / cp) * rows + r) * cp + c % cp] = x[(size_t)r * C + c];
    int nr = rows, np = P;
    void *a[] = { &packed, &x, &nr, &np }, *b[] = { &back, &packed, &nr, &np };
    const unsigned grid = (unsigned)((n + 255) / 256);
    sky_emu_launch(kernel("usp_pack_heads_c1536_tunsignedshort_unpack0"), grid, 1, 1, 256, 1, 1, 0, a);
    const int packed_ok = memcmp(packed, want, n * 2) == 0;
    sky_emu_launch(kernel("usp_pack_heads_c1536_tunsignedshort_unpack1"), grid, 1, 1, 256, 1, 1, 0, b);
    check(packed_ok && memcmp(back, x, n * 2) == 0, "usp_pack_heads: %d rows of %d into %d head groups of %d as the "
          "host lays them out, and back (UNPACK) bit for bit", rows, C, P, cp);
    free(want);
}

/* Kernel k16 (16-byte accesses) and k1 (one value at a time) on the same inputs write y16 and y1 (bytes each, set
 * to two different patterns first): equal bit for bit. */
static void same_bits(const char *what, const char *k16, unsigned g16, const char *k1, unsigned g1, void **a16,
                      void **a1, void *y16, void *y1, size_t bytes)
{
    memset(y16, 0x7f, bytes), memset(y1, 0x3f, bytes);
    sky_emu_launch(kernel(k16), g16, 1, 1, 256, 1, 1, 0, a16);
    sky_emu_launch(kernel(k1), g1, 1, 1, 256, 1, 1, 0, a1);
    check(memcmp(y16, y1, bytes) == 0, "%s: 16-byte accesses (%s) equal one value at a time bit for bit", what, k16);
}

/* The row kernels with the row staged in shared memory by 16-byte loads and the output in 16-byte stores (VEC 8),
 * and add_row, modulation and teacache 16 bytes per access, against VEC 1 on the same inputs: 7 rows of 1536
 * (the grids' last blocks partly past the end), the modulation row changing every 3 tokens, q and k as thirds
 * of a fused q|k|v (rows 3 C apart). */
static void test_vec16(void)
{
    enum { C = 1536, ROWS = 7, TPR = 3, D = 128 };
    const size_t n = (size_t)ROWS * C;
    float *xf = dev(n * 4), *mod = dev((size_t)3 * 6 * C * 4), *w = dev(C * 4), *b = dev(C * 4),
          *tab = dev((size_t)ROWS * D * 4), *e = dev((size_t)ROWS * 6 * C * 4), *t6 = dev(6 * C * 4);
    float *f16 = dev(n * 6 * 4), *f1 = dev(n * 6 * 4);
    uint16_t *xb = dev(3 * n * 2), *ub = dev(n * 2), *b16 = dev(n * 2), *b1 = dev(n * 2);
    fill(xf, 0, n, 2.0f, 0.5f), fill(mod, 0, (size_t)3 * 6 * C, 1.0f, 0.0f), fill(w, 0, C, 0.3f, 1.0f);
    fill(b, 0, C, 0.5f, 0.0f), fill(tab, 0, (size_t)ROWS * D, 1.0f, 0.0f), fill(e, 0, (size_t)ROWS * 6 * C, 1.0f, 0.0f);
    fill(t6, 0, 6 * C, 1.0f, 0.0f), fill(xb, 1, 3 * n, 3.0f, 0.25f), fill(ub, 1, n, 1.0f, 0.0f);
    int tpr = TPR, rows = ROWS, ld = 3 * C, nn = (int)n;
    const unsigned ew16 = (unsigned)((n / 4 + 255) / 256), ew1 = (unsigned)((n + 255) / 256);
    {
        void *a16[] = { &b16, &xf, &w, &b }, *a1[] = { &b1, &xf, &w, &b };
        same_bits("layernorm_affine", "layernorm_affine_c1536_eps1e06f_roundin1_threads256_txfloat_tybf16_vec8", ROWS,
                  "layernorm_affine_c1536_eps1e06f_roundin1_threads256_txfloat_tybf16_vec1", ROWS, a16, a1, b16, b1, n * 2);
    }
    {
        void *a16[] = { &b16, &xf, &mod, &tpr }, *a1[] = { &b1, &xf, &mod, &tpr };
        same_bits("layernorm_modulate (fp32 x)", "layernorm_modulate_at0_c1536_chunks6_eps1e06f_scale4_shift3_threads256_txfloat_tybf16_vec8",
                  ROWS, "layernorm_modulate_at0_c1536_chunks6_eps1e06f_scale4_shift3_threads256_txfloat_tybf16_vec1", ROWS,
                  a16, a1, b16, b1, n * 2);
    }
    {
        void *a16[] = { &b16, &xb, &mod, &tpr }, *a1[] = { &b1, &xb, &mod, &tpr };
        same_bits("layernorm_modulate (bf16 x)", "layernorm_modulate_at0_c1536_chunks6_eps1e06f_scale1_shift0_threads256_txbf16_tybf16_vec8",
                  ROWS, "layernorm_modulate_at0_c1536_chunks6_eps1e06f_scale1_shift0_threads256_txbf16_tybf16_vec1", ROWS,
                  a16, a1, b16, b1, n * 2);
    }
    {
        void *a16[] = { &f16, &xb, &mod, &tpr }, *a1[] = { &f1, &xb, &mod, &tpr };
        same_bits("layernorm_modulate (the head's, fp32 y)",
                  "layernorm_modulate_at0_c1536_chunks2_eps1e06f_scale1_shift0_threads256_txbf16_tyfloat_vec8", ROWS,
                  "layernorm_modulate_at0_c1536_chunks2_eps1e06f_scale1_shift0_threads256_txbf16_tyfloat_vec1", ROWS,
                  a16, a1, f16, f1, n * 4);
    }
    {
        void *a16[] = { &b16, &xb, &w }, *a1[] = { &b1, &xb, &w };
        same_bits("rmsnorm", "rmsnorm_c1536_eps1e06f_threads256_vec8", ROWS, "rmsnorm_c1536_eps1e06f_threads256_vec1",
                  ROWS, a16, a1, b16, b1, n * 2);
    }
    {
        void *a16[] = { &b16, &xb, &w, &tab, &ld }, *a1[] = { &b1, &xb, &w, &tab, &ld };
        same_bits("rmsnorm_rope (rows 3 C apart)", "rmsnorm_rope_c1536_d128_eps1e06f_threads256_vec8", ROWS,
                  "rmsnorm_rope_c1536_d128_eps1e06f_threads256_vec1", ROWS, a16, a1, b16, b1, n * 2);
    }
    for (int pairs = 0; pairs < 2; pairs++) {
        char k16[64], k1[64];
        snprintf(k16, sizeof k16, "rms_factor_c1536_eps1e06f_pairs%d_threads256_vec8", pairs);
        snprintf(k1, sizeof k1, "rms_factor_c1536_eps1e06f_pairs%d_threads256_vec1", pairs);
        void *a16[] = { &f16, &xb, &ld }, *a1[] = { &f1, &xb, &ld };
        same_bits(pairs ? "rms_factor (pairs, rows 3 C apart)" : "rms_factor (rows 3 C apart)", k16, ROWS, k1, ROWS,
                  a16, a1, f16, f1, ROWS * 4);
    }
    {
        void *a16[] = { &f16, &xf, &w, &rows }, *a1[] = { &f1, &xf, &w, &rows };
        same_bits("add_row", "add_row_cols1536_vec4", ew16, "add_row_cols1536_vec1", ew1, a16, a1, f16, f1, n * 4);
    }
    {
        void *a16[] = { &f16, &e, &t6, &rows }, *a1[] = { &f1, &e, &t6, &rows };
        same_bits("modulation (6 chunks)", "modulation_c1536_chunks6_estride9216_kstride1536_vec4", 6 * ew16,
                  "modulation_c1536_chunks6_estride9216_kstride1536_vec1", 6 * ew1, a16, a1, f16, f1, n * 6 * 4);
        same_bits("modulation (the head's 2 chunks)", "modulation_c1536_chunks2_estride1536_kstride0_vec4", 2 * ew16,
                  "modulation_c1536_chunks2_estride1536_kstride0_vec1", 2 * ew1, a16, a1, f16, f1, n * 2 * 4);
    }
    {
        void *a16[] = { &b16, &xb, &ub, &nn }, *a1[] = { &b1, &xb, &ub, &nn };
        same_bits("teacache", "teacache_moderesidual_op_tbf16_vec8", (unsigned)((n / 8 + 255) / 256),
                  "teacache_moderesidual_op_tbf16_vec1", ew1, a16, a1, b16, b1, n * 2);
    }
}

/* ---- conv_tf32 ------------------------------------------------------------------------------ */

typedef struct geo { int CIN, COUT, KT, KH, KW, NC, ST, SH, SW, PH, PW, SPLIT, BN; } geo;

static void test_conv(const char *name, geo g, int T, int Tin, int H, int W, int HO, int WO)
{
    const size_t frame = (size_t)H * W * g.CIN, taps = (size_t)g.KT * g.KH * g.KW;
    float *x = dev((size_t)Tin * frame * 4), *cache = dev((g.NC ? g.NC : 1) * frame * 4);
    float *w = dev((size_t)g.COUT * taps * g.CIN * 4), *b = dev((size_t)g.COUT * 4);
    const size_t ny = (size_t)T * HO * WO * g.COUT;
    float *y = dev(ny * 4);
    for (size_t i = 0; i < (size_t)Tin * frame; i++) x[i] = urand();
    for (size_t i = 0; i < (g.NC ? g.NC : 1) * frame; i++) cache[i] = urand();
    for (size_t i = 0; i < (size_t)g.COUT * taps * g.CIN; i++) w[i] = (float)tf32r(0.2f * urand()); /* as uploaded */
    for (int i = 0; i < g.COUT; i++) b[i] = 0.1f * urand();
    void *args[] = { &y, &x, &cache, &w, &b, &T, &H, &W, &HO, &WO };
    /* one block per (128 rows, BN columns), column tiles fastest; 3 stages of 128 + BN rows of 16 floats */
    const unsigned blocks = (unsigned)(((long long)T * HO * WO + 127) / 128 * ((g.COUT + g.BN - 1) / g.BN));
    sky_emu_launch(kernel(name), blocks, 1, 1, 128, 1, 1, (unsigned)(3 * (128 + g.BN) * 16 * 4), args);
    double num = 0, den = 0, worst = 0, ymax = 0;
    double *ref = malloc(ny * sizeof(double));
    for (int t = 0; t < T; t++)
        for (int ho = 0; ho < HO; ho++)
            for (int wo = 0; wo < WO; wo++)
                for (int co = 0; co < g.COUT; co++) {
                    double acc = 0;
                    for (int kt = 0; kt < g.KT; kt++) {
                        const int s = g.ST * t + kt;
                        const float *src = s < g.NC ? cache + (size_t)s * frame : x + (size_t)(s - g.NC) * frame;
                        for (int kh = 0; kh < g.KH; kh++)
                            for (int kw = 0; kw < g.KW; kw++) {
                                const int ih = g.SH * ho + kh - g.PH, iw = g.SW * wo + kw - g.PW;
                                if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                                for (int ci = 0; ci < g.CIN; ci++)
                                    acc += tf32r(src[((size_t)ih * W + iw) * g.CIN + ci]) *
                                           tf32r(w[(((size_t)co * g.KT + kt) * g.KH * g.KW + kh * g.KW + kw) * g.CIN + ci]);
                            }
                    }
                    acc += b[co];
                    size_t at = ((((size_t)t * HO + ho) * WO) + wo) * g.COUT + co;
                    if (g.SPLIT) {
                        const int c2 = g.COUT / 2, f = 2 * t + co / c2;
                        at = (((size_t)f * HO + ho) * WO + wo) * c2 + co % c2;
                    }
                    ref[at] = acc;
                    ymax = fmax(ymax, fabs(acc));
                }
    for (size_t i = 0; i < ny; i++) {
        const double d = y[i] - ref[i];
        num += d * d, den += ref[i] * ref[i];
        if (!(fabs(d) <= worst)) worst = fabs(d);
    }
    const double rel = sqrt(num / den);
    check(rel <= 1e-5 && worst <= 1e-4 * ymax, "%s: T %d (of %d in + %d cached), %dx%d -> %dx%d: rel_l2 %.2e, max_abs "
          "%.2e of %.2e (bounds 1e-5, 1e-4 of the largest)", name, T, Tin, g.NC, H, W, HO, WO, rel, worst, ymax);
    free(ref);
}

/* ---- attention_sm90 and attention_sm80 ----------------------------------------------------------
 * softmax(q k^T / sqrt(128)) v per head over bf16 [L, NH * 128] tensors, against a double reference on
 * the same bf16 inputs. Both kernels round P to bf16 before P V and round the output to bf16, two
 * roundings of 2^-9 relative each: bound 2^-8 relative L2 per kernel and between the two. Sizes: one
 * partial query block, several key tiles (so each pipeline stage is reused and its barrier parity
 * flips), the text (512) and image (257) key counts, lk < one tile, and 1057 keys (9 tiles of 128 and 7 of
 * 176, with tails of 33 and 1; one query in a second block). Rows past lq must stay as they were (the stores
 * are guarded). SKY_EMU_TMA=eager lands the TMA copies at issue instead of at the wait, and
 * SKY_EMU_SMEM_OFFSET=16 starts the dynamic shared memory 16 bytes into the block's window, as static shared
 * memory would (run.sh runs this test all three ways). */
enum { ATT_NH = 2, ATT_D = 128, ATT_C = ATT_NH * ATT_D };

static void attention_ref(const uint16_t *q, const uint16_t *k, const uint16_t *v, int lq, int lk, double *out)
{
    double *p = malloc((size_t)lk * sizeof(double));
    for (int h = 0; h < ATT_NH; h++)
        for (int i = 0; i < lq; i++) {
            double mx = -INFINITY, sum = 0.0;
            for (int j = 0; j < lk; j++) {
                double d = 0.0;
                for (int c = 0; c < ATT_D; c++)
                    d += (double)sky_emu_bf16_to_f32(q[(size_t)i * ATT_C + h * ATT_D + c]) *
                         sky_emu_bf16_to_f32(k[(size_t)j * ATT_C + h * ATT_D + c]);
                p[j] = d / sqrt((double)ATT_D);
                mx = fmax(mx, p[j]);
            }
            for (int j = 0; j < lk; j++) sum += p[j] = exp(p[j] - mx);
            for (int c = 0; c < ATT_D; c++) {
                double acc = 0.0;
                for (int j = 0; j < lk; j++) acc += p[j] * sky_emu_bf16_to_f32(v[(size_t)j * ATT_C + h * ATT_D + c]);
                out[(size_t)i * ATT_C + h * ATT_D + c] = acc / sum;
            }
        }
    free(p);
}

static double rel_l2_bf16(const uint16_t *y, const double *ref, size_t n)
{
    double num = 0.0, den = 0.0;
    for (size_t i = 0; i < n; i++) {
        const double d = sky_emu_bf16_to_f32(y[i]) - ref[i];
        num += d * d, den += ref[i] * ref[i];
    }
    return sqrt(num / den);
}

static void tmap(CUtensorMap *m, const void *p, int rows, int box_rows, int ld)
{
    const cuuint64_t dims[2] = { ATT_C, (cuuint64_t)rows }, stride[1] = { (cuuint64_t)ld * 2 };
    const cuuint32_t box[2] = { 64, (cuuint32_t)box_rows }, elem[2] = { 1, 1 };
    if (cuTensorMapEncodeTiled(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, (void *)p, dims, stride, box, elem,
                               CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                               CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE) != CUDA_SUCCESS) {
        fprintf(stderr, "kernel_test: cuTensorMapEncodeTiled\n");
        exit(2);
    }
}

/* The Hopper kernels (kernel_test_attention.inc, from kernel_test.lua): every schedule of gen/schedule_sm90.lua,
 * the default first, and one with a single stage. */
static const struct hopper { const char *schedule, *name; unsigned smem; int block_n; } hopper[] = {
#include "kernel_test_attention.inc"
};
enum { N_HOPPER = sizeof hopper / sizeof hopper[0] };

/* q normalised as common.cuh's sky_q_prep does it, on the host in the same fp32 operations (x r, times g; the
 * pair rotated by cos, sin; one bf16 rounding), from qs (rows ldq apart) into qn [lq, ATT_C]; tab null: no RoPE. */
static void q_prep_host(uint16_t *qn, const uint16_t *qs, int ldq, int lq, const float *rs, const float *g,
                        const float *tab)
{
    for (int n = 0; n < lq; n++)
        for (int c = 0; c < ATT_C; c += 2) {
            const float x = sky_emu_bf16_to_f32(qs[(size_t)n * ldq + c]), y = sky_emu_bf16_to_f32(qs[(size_t)n * ldq + c + 1]);
            const float a = x * rs[n] * g[c], b = y * rs[n] * g[c + 1];
            float u = a, w = b;
            if (tab) {
                const int p = c % ATT_D / 2;
                const float cs = tab[(size_t)n * ATT_D + p], sn = tab[(size_t)n * ATT_D + ATT_D / 2 + p];
                u = a * cs - b * sn, w = a * sn + b * cs;
            }
            qn[(size_t)n * ATT_C + c] = sky_emu_f32_to_bf16(u);
            qn[(size_t)n * ATT_C + c + 1] = sky_emu_f32_to_bf16(w);
        }
}

/* Runs every kernel on one shape; the sm_80 kernel and every Hopper schedule against the double reference,
 * and each Hopper schedule against the sm_80 kernel. v's rows ldv values apart (ATT_C, or 3 ATT_C: v as the
 * last third of a fused q|k|v row, the first two thirds other numbers), read through vs. qmode: q's norm at
 * load (lower.lua's q_norm): 1 row factors and weights (the cross-attention's), 2 also RoPE (the
 * self-attention's, q the first third of rows 3 ATT_C apart): every kernel given the raw q with them must
 * write, bit for bit, what it writes given q normalised on the host (q_prep_host), the q the reference
 * and the other checks use. */
static void test_attention(int lq, int lk, int ldv, int qmode)
{
    const int extra = 3;                                   /* rows past lq that must not be written */
    uint16_t *q = dev((size_t)lq * ATT_C * 2), *k = dev((size_t)lk * ATT_C * 2), *v = dev((size_t)lk * ATT_C * 2);
    uint16_t *vs = dev((size_t)lk * ldv * 2), *v0 = vs + (ldv - ATT_C);
    const int ldq = qmode == 2 ? 3 * ATT_C : ATT_C;
    uint16_t *qs = dev((size_t)lq * ldq * 2);
    float *rs = dev((size_t)lq * 4), *g = dev(ATT_C * 4), *tab = dev((size_t)lq * ATT_D * 4);
    for (size_t i = 0; i < (size_t)lq * ATT_C; i++) q[i] = sky_emu_f32_to_bf16(3.0f * urand());
    if (qmode) {
        for (size_t i = 0; i < (size_t)lq * ldq; i++) qs[i] = sky_emu_f32_to_bf16(20.0f * urand());
        for (int n = 0; n < lq; n++) rs[n] = 0.1f + 0.05f * urand();
        for (int c = 0; c < ATT_C; c++) g[c] = 1.0f + 0.5f * urand();
        for (int n = 0; n < lq; n++)
            for (int p = 0; p < ATT_D / 2; p++) {
                const double t = 0.01 * n * (p + 1) + p;
                tab[(size_t)n * ATT_D + p] = (float)cos(t), tab[(size_t)n * ATT_D + ATT_D / 2 + p] = (float)sin(t);
            }
        q_prep_host(q, qs, ldq, lq, rs, g, qmode == 2 ? tab : NULL);
    }
    for (size_t i = 0; i < (size_t)lk * ATT_C; i++) k[i] = sky_emu_f32_to_bf16(urand());
    for (size_t i = 0; i < (size_t)lk * ldv; i++) vs[i] = sky_emu_f32_to_bf16(4.0f * urand());
    for (size_t i = 0; i < (size_t)lk * ATT_C; i++) v[i] = v0[i / ATT_C * ldv + i % ATT_C] = sky_emu_f32_to_bf16(urand());
    double *ref = malloc((size_t)lq * ATT_C * sizeof(double));
    attention_ref(q, k, v, lq, lk, ref);
    const float scale = (float)(1.4426950408889634 / sqrt((double)ATT_D));
    const size_t n = (size_t)lq * ATT_C, n_all = (size_t)(lq + extra) * ATT_C;
    const char *sm80 = "attention_sm80_blockm128_blockn64_d128_nh2_smem104448_stages2_threads256";
    uint16_t *o = dev(n_all * 2), *oq = dev(n_all * 2);
    double *o80 = malloc(n * sizeof(double));
    for (int i = -1; i < N_HOPPER; i++) {
        const char *name = i < 0 ? sm80 : hopper[i].name;
        for (int normed = qmode ? 1 : 0; normed >= 0; normed--) {   /* q's norm at load first, then q normalised */
            uint16_t *out = normed ? oq : o, *qa = normed ? qs : q;
            float *nul = NULL, *a_rs = normed ? rs : nul, *a_g = normed ? g : nul,
                  *a_tab = normed && qmode == 2 ? tab : nul;
            memset(out, 0x5a, n_all * 2);
            int a_lq = lq, a_lk = lk, a_ldv = ldv, a_ldq = normed ? ldq : ATT_C;
            float a_scale = scale;
            if (i >= 0) {
                CUtensorMap tq, tk, tv;
                tmap(&tq, qa, lq, 128, a_ldq), tmap(&tk, k, lk, hopper[i].block_n, ATT_C);
                tmap(&tv, v0, lk, hopper[i].block_n, ldv);
                void *args[] = { &tq, &tk, &tv, &out, &a_lq, &a_lk, &a_scale, &a_rs, &a_g, &a_tab };
                sky_emu_launch(kernel(name), (unsigned)((lq + 127) / 128), ATT_NH, 1, 384, 1, 1, hopper[i].smem, args);
            } else {
                void *args[] = { &qa, &k, &v0, &out, &a_lq, &a_lk, &a_scale, &a_ldv, &a_ldq, &a_rs, &a_g, &a_tab };
                sky_emu_launch(kernel(name), (unsigned)((lq + 127) / 128), ATT_NH, 1, 256, 1, 1, 104448, args);
            }
        }
        if (qmode)
            check(memcmp(o, oq, n_all * 2) == 0, "%s%s%s: lq %d, lk %d: q's norm%s at load (q rows %d apart) equals the "
                  "kernel on q normalised on the host, bit for bit", i < 0 ? "" : hopper[i].schedule, i < 0 ? "" : " ",
                  name, lq, lk, qmode == 2 ? " and RoPE" : "", ldq);
        int untouched = 1;
        for (size_t j = n; j < n_all; j++) untouched &= o[j] == 0x5a5a;
        const double rel = rel_l2_bf16(o, ref, n);
        check(rel <= 1.0 / 256 && untouched, "%s%s%s: lq %d, lk %d, v rows %d apart: rel_l2 %.2e vs double (bound "
              "2^-8 = 3.9e-3), rows past lq %s", i < 0 ? "" : hopper[i].schedule, i < 0 ? "" : " ", name, lq, lk, ldv,
              rel, untouched ? "untouched" : "WRITTEN");
        if (i < 0) {
            for (size_t j = 0; j < n; j++) o80[j] = sky_emu_bf16_to_f32(o[j]);
        } else {
            const double d = rel_l2_bf16(o, o80, n);
            check(d <= 1.0 / 256, "attention %s vs sm80: lq %d, lk %d: rel_l2 %.2e (bound 2^-8)", hopper[i].schedule,
                  lq, lk, d);
        }
    }
    free(o80);
    free(ref);
}

int main(void)
{
    CUcontext ctx;                             /* device 0's context, current here (as the driver wants) */
    if (cuInit(0) != CUDA_SUCCESS || cuDevicePrimaryCtxRetain(&ctx, 0) != CUDA_SUCCESS ||
        cuCtxSetCurrent(ctx) != CUDA_SUCCESS) { fprintf(stderr, "no emulated device\n"); return 2; }
    test_softmax_rows();
    test_softmax_relbias();
    test_rms_norm(8, 0);
    test_rms_norm(96, 1);
    test_rms_norm(384, 0);
    test_usp_slice("usp_slice_cols1536_tunsignedshort", 1536, 2, 11, 2, 1);
    test_usp_slice("usp_slice_cols1536_tunsignedshort", 1536, 2, 11, 2, 0);
    test_usp_slice("usp_slice_cols128_tfloat", 128, 4, 10, 4, 3);
    test_usp_pack(5, 2);
    test_usp_pack(3, 12);
    test_at_tok0();
    test_conv("conv_tf32_bn96_cin20_cout96_kh3_kt3_kw3_nc2_ph1_pw1_sh1_split0_st1_sw1",
              (geo){ 20, 96, 3, 3, 3, 2, 1, 1, 1, 1, 1, 0, 96 }, 3, 3, 7, 9, 7, 9);
    test_conv("conv_tf32_bn64_cin20_cout128_kh3_kt3_kw3_nc2_ph1_pw1_sh1_split0_st1_sw1",
              (geo){ 20, 128, 3, 3, 3, 2, 1, 1, 1, 1, 1, 0, 64 }, 2, 2, 9, 17, 9, 17);
    test_conv("conv_tf32_bn16_cin16_cout72_kh3_kt1_kw3_nc0_ph0_pw0_sh2_split0_st1_sw2",
              (geo){ 16, 72, 1, 3, 3, 0, 1, 2, 2, 0, 0, 0, 16 }, 2, 2, 13, 11, 6, 5);
    test_conv("conv_tf32_bn16_cin16_cout144_kh1_kt3_kw1_nc2_ph0_pw0_sh1_split1_st1_sw1",
              (geo){ 16, 144, 3, 1, 1, 2, 1, 1, 1, 0, 0, 1, 16 }, 2, 2, 5, 6, 5, 6);
    test_conv("conv_tf32_bn16_cin32_cout3_kh3_kt3_kw3_nc2_ph1_pw1_sh1_split0_st1_sw1",
              (geo){ 32, 3, 3, 3, 3, 2, 1, 1, 1, 1, 1, 0, 16 }, 2, 2, 11, 13, 11, 13);
    test_conv("conv_tf32_bn32_cin8_cout32_kh3_kt1_kw3_nc0_ph1_pw1_sh1_split0_st1_sw1",
              (geo){ 8, 32, 1, 3, 3, 0, 1, 1, 1, 1, 1, 0, 32 }, 2, 2, 10, 14, 10, 14);
    {
        const char *fused[3] = {
            "residual_norm_at0_c1536_eps1e06f_gate2_gated1_modulate0_nchunks0_rchunks6_roundin1_scale0_shift0_threads%d_"
            "trfloat_tubf16_txbf16_tybf16_vec%d",
            "residual_norm_at0_c1536_eps1e06f_gate0_gated0_modulate1_nchunks6_rchunks0_roundin0_scale4_shift3_threads%d_"
            "trfloat_tubf16_txfloat_tybf16_vec%d",
            "residual_norm_at0_c1536_eps1e06f_gate5_gated1_modulate1_nchunks6_rchunks6_roundin0_scale1_shift0_threads%d_"
            "trbf16_tubf16_txfloat_tybf16_vec%d" };
        const char *res[3] = { "gated_residual_at0_c1536_chunks6_gate2_tubf16_txbf16_tyfloat_vec8", "add_tafloat_tbbf16_tyfloat",
                               "gated_residual_at0_c1536_chunks6_gate5_tubf16_txfloat_tybf16_vec8" };
        const char *norm[3] = { "layernorm_affine_c1536_eps1e06f_roundin1_threads256_txfloat_tybf16_vec1",
                                "layernorm_modulate_at0_c1536_chunks6_eps1e06f_scale4_shift3_threads256_txfloat_tybf16_vec1",
                                "layernorm_modulate_at0_c1536_chunks6_eps1e06f_scale1_shift0_threads256_txbf16_tybf16_vec1" };
        const int gated[3] = { 1, 0, 1 }, modulate[3] = { 0, 1, 1 }, xbf[3] = { 1, 0, 0 }, rbf[3] = { 0, 0, 1 };
        for (int vec8 = 0; vec8 < 2; vec8++)
            for (int i = 0; i < 3; i++) {
                char name[200];
                snprintf(name, sizeof name, fused[i], vec8 ? 192 : 256, vec8 ? 8 : 1);
                test_residual_norm(name, res[i], norm[i], gated[i], modulate[i], xbf[i], rbf[i], !vec8, vec8 ? 192 : 256);
            }
    }
    test_gated_residual_vec();
    test_vec16();
    test_rms_factor(0);
    test_rms_factor(1);
    test_attention(300, 600, ATT_C, 0);
    test_attention(130, 512, ATT_C, 0);
    test_attention(200, 257, ATT_C, 0);
    test_attention(70, 40, ATT_C, 0);
    test_attention(129, 1057, ATT_C, 0);
    test_attention(300, 600, 3 * ATT_C, 0);    /* v the last third of a fused q|k|v (lower.lua's qkv) */
    test_attention(129, 1057, 3 * ATT_C, 0);
    test_attention(130, 512, ATT_C, 1);        /* q's norm at load: the cross-attention's (lower.lua's q_norm) */
    test_attention(300, 600, 3 * ATT_C, 2);    /* and the self-attention's, with RoPE, q and v views of q|k|v */
    test_attention(70, 40, 3 * ATT_C, 2);
    printf("%d checks, %d failed\n", checks, failures);
    return failures ? 1 : 0;
}
