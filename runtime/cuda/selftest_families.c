/* runtime/cuda/selftest_families.c — the selftest's kernel constants and inputs, and the families RoPE,
 * GEMM, VAE conv and norm, umT5 norm, --use_usp's usp_slice and usp_pack (selftest_families.h; the cases and
 * bounds: selftest_cuda.c). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "cuda/gemm.h"
#include "cuda/selftest_families.h"

static const double E32 = 0x1p-24; /* fp32's unit roundoff */
static const double UBF = 0x1p-8;  /* bf16's */

sky_status sky_selftest_prog_load(sky_cuda *c, sky_selftest_prog *p, sky_err *err)
{
    char how[160];
    p->fn = calloc((size_t)(p->n > 0 ? p->n : 1), sizeof *p->fn);
    if (!p->fn) return sky_fail(err, "selftest: out of host memory");
    p->st = (sky_cuda_program){.fn = p->fn, .fault_kernel = sky_cuda_fault_kernel(p->n, p->names)};
    return sky_cuda_kernels_load(c, p->src, p->file, p->n, p->names, p->smem_prefix, p->smem, &p->module, p->fn, how,
                                 sizeof how, err);
}

void sky_selftest_prog_unload(sky_selftest_prog *p)
{
    if (p->module) cuModuleUnload(p->module);
    free(p->fn);
    p->module = NULL, p->fn = NULL;
}

const char *sky_selftest_const(const sky_selftest_prog *p, int k, const char *key)
{
    const sky_kernel_info *ki = &p->info[k];
    for (int i = 0; i < ki->n_consts; i++)
        if (strcmp(ki->consts[i].key, key) == 0) return ki->consts[i].value;
    return NULL;
}

int sky_selftest_const_int(const sky_selftest_prog *p, int k, const char *key)
{
    const char *v = sky_selftest_const(p, k, key);
    return v ? atoi(v) : -1;
}

int sky_selftest_const_bf16(const sky_selftest_prog *p, int k, const char *key)
{
    const char *v = sky_selftest_const(p, k, key);
    return v && strcmp(v, "bf16") == 0;
}

int sky_selftest_find_template(const sky_selftest_prog *p, const char *tmpl, int from)
{
    for (int k = from < 0 ? 0 : from; k < p->n; k++)
        if (strcmp(p->info[k].template_name, tmpl) == 0) return k;
    return -1;
}

void sky_selftest_fill(uint16_t *h, float *f, size_t n, float a, uint64_t *s)
{
    for (size_t i = 0; i < n; i++) {
        *s = *s * 6364136223846793005ull + 1442695040888963407ull;
        const float x = a * (2.0f * (float)(*s >> 40) / (float)(1 << 24) - 1.0f);
        h[i] = sky_f32_to_bf16(x);
        f[i] = sky_bf16_to_f32(h[i]);
    }
}

/* A case's device buffer of `bytes` and its host staging (host: fp32 values or bf16 bits, as needed). */
typedef struct st_case {
    sky_cuda   *c;
    CUdeviceptr dev;
    void       *raw;
} st_case;

static sky_status case_open(st_case *k, sky_cuda *c, size_t bytes, sky_err *err)
{
    k->c = c, k->raw = NULL;
    if (sky_cuda_arena_alloc(c, bytes, &k->raw, "a selftest case", err)) return SKY_ERR;
    k->dev = (CUdeviceptr)(uintptr_t)k->raw;
    return SKY_OK;
}

static void case_close(st_case *k)
{
    if (k->raw) sky_cuda_arena_free(k->c, k->raw);
}

static void put(st_case *k, size_t off, const void *h, size_t bytes)
{
    SKY_CU_CHECK(cuMemcpyHtoDAsync(k->dev + off, h, bytes, k->c->stream));
    SKY_CU_CHECK(cuStreamSynchronize(k->c->stream));
}

static void get(st_case *k, size_t off, void *h, size_t bytes)
{
    SKY_CU_CHECK(cuMemcpyDtoHAsync(h, k->dev + off, bytes, k->c->stream));
    SKY_CU_CHECK(cuStreamSynchronize(k->c->stream));
}

/* The next row of t (NULL when full), named and failing until set. */
static sky_selftest_row *row_new(sky_selftest_table *t, const char *family, const char *kernel)
{
    if (t->n == SKY_SELFTEST_MAX_ROWS) return NULL;
    sky_selftest_row *r = &t->rows[t->n++];
    *r = (sky_selftest_row){.max_err = INFINITY};
    snprintf(r->family, sizeof r->family, "%s", family);
    snprintf(r->kernel, sizeof r->kernel, "%s", kernel);
    return r;
}

/* Running max |got - want| (a non-finite got makes the row fail). */
typedef struct st_err {
    double e;
    int    finite;
} st_err;

static void err_add(st_err *s, double got, double want)
{
    if (!isfinite(got))
        s->finite = 0;
    else if (fabs(got - want) > s->e)
        s->e = fabs(got - want);
}

static void row_done(sky_selftest_row *r, const st_err *s, double bound)
{
    r->bound = bound;
    r->max_err = s->finite ? s->e : INFINITY;
    r->pass = s->finite && s->e <= bound;
}

/* ---- RoPE: rmsnorm_rope and rope_table ----------------------------------------------------------- */

/* rmsnorm_rope on ROWS rows: x U[-2, 2] bf16, g U[-1, 1], the table's angles U[-4, 4] as fp32 cos, sin. */
static sky_status rmsnorm_rope_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_row *r, sky_err *err)
{
    enum { ROWS = 5 };
    const int   C = sky_selftest_const_int(p, k, "C"), D = sky_selftest_const_int(p, k, "D");
    const int   threads = sky_selftest_const_int(p, k, "THREADS");
    const char *eps = sky_selftest_const(p, k, "EPS");
    if (C < 2 || D < 2 || threads < 1 || !eps)
        return sky_fail(err, "selftest: %s: no C, D, THREADS or EPS in its kernel info", p->names[k]);
    const size_t n = (size_t)ROWS * C, nt = (size_t)ROWS * D;
    float       *x = malloc((n + C + nt) * sizeof *x);
    uint16_t    *h = malloc(n * 2);
    st_case      cs = {0};
    sky_status   st =
        x && h ? case_open(&cs, c, n * 4 + (C + nt) * 4, err) : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) {
        float   *g = x + n, *tab = g + C;
        uint64_t seed = 0x20be5ULL;
        sky_selftest_fill(h, g, (size_t)C, 1.0f, &seed);
        sky_selftest_fill(h, tab, nt, 4.0f, &seed);
        for (int row = 0; row < ROWS; row++)
            for (int q = 0; q < D / 2; q++) {
                const float a = tab[(size_t)row * D + q];
                tab[(size_t)row * D + q] = cosf(a), tab[(size_t)row * D + D / 2 + q] = sinf(a);
            }
        sky_selftest_fill(h, x, n, 2.0f, &seed); /* h: x's bf16 bits */
        const CUdeviceptr dx = cs.dev + n * 2, dg = cs.dev + n * 4, dt = dg + (size_t)C * 4, dy = cs.dev;
        put(&cs, n * 2, h, n * 2);
        put(&cs, n * 4, g, (C + nt) * 4);
        memset(h, 0xff, n * 2); /* NaN */
        put(&cs, 0, h, n * 2);
        void *args[] = {(void *)&dy, (void *)&dx, (void *)&dg, (void *)&dt, (void *)&C}; /* rows C apart */
        sky_cuda_launch(&p->st, k, ROWS, 1, (unsigned)threads, 0, c->stream, args);
        get(&cs, 0, h, n * 2);
        st_err e = {0, 1};
        double ymax = 0, tmax = 0;
        for (int row = 0; row < ROWS; row++) {
            const float *xr = x + (size_t)row * C, *t = tab + (size_t)row * D;
            double       sq = 0;
            for (int i = 0; i < C; i++) sq += (double)xr[i] * xr[i];
            const double rs = 1 / sqrt(sq / C + strtod(eps, NULL));
            for (int pair = 0; pair < C / 2; pair++) {
                const int    q = pair % (D / 2);
                const double a = xr[2 * pair] * rs * g[2 * pair], b = xr[2 * pair + 1] * rs * g[2 * pair + 1];
                const double co = t[q], si = t[D / 2 + q], w0 = a * co - b * si, w1 = a * si + b * co;
                err_add(&e, sky_bf16_to_f32(h[(size_t)row * C + 2 * pair]), w0);
                err_add(&e, sky_bf16_to_f32(h[(size_t)row * C + 2 * pair + 1]), w1);
                ymax = fmax(ymax, fmax(fabs(w0), fabs(w1)));
                tmax = fmax(tmax, fmax(fabs(a * co) + fabs(b * si), fabs(a * si) + fabs(b * co)));
            }
        }
        row_done(r, &e, UBF * ymax + (C + 16.0) * E32 * tmax);
    }
    case_close(&cs);
    free(x), free(h);
    return st;
}

/* rope_table of an F x H x W = 2 x 6 x 4 call (3 x 2 tokens a frame): cos and sin in double, stored fp32. */
static sky_status rope_table_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_row *r, sky_err *err)
{
    const int   D = sky_selftest_const_int(p, k, "D"), TP = sky_selftest_const_int(p, k, "TP");
    const int   HP = sky_selftest_const_int(p, k, "HP"), WP = sky_selftest_const_int(p, k, "WP");
    const char *theta = sky_selftest_const(p, k, "THETA");
    if (D < 2 || TP < 0 || HP < 0 || WP < 0 || !theta)
        return sky_fail(err, "selftest: %s: no D, TP, HP, WP or THETA in its kernel info", p->names[k]);
    int          F = 2, H = 6, W = 4;
    const size_t tokens = (size_t)F * (H / 2) * (W / 2), n = tokens * D;
    float       *tab = malloc(n * sizeof *tab);
    st_case      cs = {0};
    sky_status   st = tab ? case_open(&cs, c, n * 4, err) : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) {
        memset(tab, 0xff, n * 4);
        put(&cs, 0, tab, n * 4);
        const CUdeviceptr dt = cs.dev;
        void             *args[] = {(void *)&dt, (void *)&F, (void *)&H, (void *)&W};
        sky_cuda_launch(&p->st, k, (unsigned)((tokens * (D / 2) + 255) / 256), 1, 256, 0, c->stream, args);
        get(&cs, 0, tab, n * 4);
        const double th = strtod(theta, NULL);
        st_err       e = {0, 1};
        for (size_t t = 0; t < tokens; t++)
            for (int q = 0; q < D / 2; q++) {
                const int f = (int)(t / ((H / 2) * (W / 2))), i = (int)(t / (W / 2) % (H / 2)), j = (int)(t % (W / 2));
                const double pos = q < TP        ? f
                                   : q < TP + HP ? i
                                                 : j,
                             kk = q < TP        ? q
                                  : q < TP + HP ? q - TP
                                                : q - TP - HP;
                const double dims = q < TP ? 2 * TP : q < TP + HP ? 2 * HP : 2 * WP, a = pos * pow(th, -2 * kk / dims);
                err_add(&e, tab[t * D + q], cos(a));
                err_add(&e, tab[t * D + D / 2 + q], sin(a));
            }
        row_done(r, &e, E32 + 0x1p-40); /* one fp32 rounding of a value <= 1, and double's error in the angle */
    }
    case_close(&cs);
    free(tab);
    return st;
}

sky_status sky_selftest_rope_rows(sky_cuda *c, sky_selftest_prog *dit, sky_selftest_table *t, sky_err *err)
{
    sky_selftest_row *r;
    int               k = sky_selftest_find_template(dit, "rmsnorm_rope", 0);
    if (k >= 0 && (r = row_new(t, "rope", dit->names[k])) && rmsnorm_rope_row(c, dit, k, r, err)) return SKY_ERR;
    k = sky_selftest_find_template(dit, "rope_table", 0);
    if (k >= 0 && (r = row_new(t, "rope", dit->names[k])) && rope_table_row(c, dit, k, r, err)) return SKY_ERR;
    return SKY_OK;
}

/* ---- GEMM: one bf16 GEMM with the bias epilogue through gemm.h (cuBLASLt) ------------------------ */

sky_status sky_selftest_gemm_row(sky_cuda *c, sky_selftest_table *t, sky_err *err)
{
    enum { M = 37, N = 64, K = 96 };
    const sky_gemm_desc d = {.m_max = M,
                             .n = N,
                             .k = K,
                             .a_dtype = SKY_GEMM_BF16,
                             .out_dtype = SKY_GEMM_BF16,
                             .epilogue = SKY_GEMM_EPI_BIAS};
    sky_selftest_row   *r = row_new(t, "gemm", "cublaslt_bf16_bias_37x64x96");
    if (!r) return SKY_OK;
    const size_t  nx = (size_t)M * K, nw = (size_t)N * K, ny = (size_t)M * N, all = nx + nw + N + ny;
    float        *f = malloc(all * sizeof *f);
    uint16_t     *h = malloc(all * 2);
    sky_gemm_set *g = NULL;
    st_case       cs = {0};
    sky_status    st = f && h ? case_open(&cs, c, all * 2 + 256 * 4 + SKY_GEMM_WORKSPACE_BYTES, err)
                              : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) st = sky_gemm_init(&g, c, &d, 1, cs.raw, SKY_GEMM_WORKSPACE_BYTES, err);
    if (st == SKY_OK) {
        uint64_t seed = 0x6e33ULL;
        sky_selftest_fill(h, f, nx + nw + N, 1.0f, &seed);
        memset(h + nx + nw + N, 0xff, ny * 2); /* NaN */
        /* x, W, bias, y each at a 256-byte boundary after the workspace */
        const size_t ox = SKY_GEMM_WORKSPACE_BYTES, ow = ox + (nx * 2 + 255) / 256 * 256,
                     ob = ow + (nw * 2 + 255) / 256 * 256, oy = ob + 256;
        put(&cs, ox, h, nx * 2), put(&cs, ow, h + nx, nw * 2), put(&cs, ob, h + nx + nw, N * 2);
        put(&cs, oy, h + nx + nw + N, ny * 2);
        sky_gemm_run(g, 0, M, (void *)(uintptr_t)(cs.dev + ox), (void *)(uintptr_t)(cs.dev + ow),
                     (void *)(uintptr_t)(cs.dev + ob), (void *)(uintptr_t)(cs.dev + oy), c->stream);
        get(&cs, oy, h + nx + nw + N, ny * 2);
        st_err e = {0, 1};
        double ymax = 0, tmax = 0;
        for (int i = 0; i < M; i++)
            for (int j = 0; j < N; j++) {
                double want = f[nx + nw + j], mag = fabs(want);
                for (int q = 0; q < K; q++) {
                    want += (double)f[(size_t)i * K + q] * f[nx + (size_t)j * K + q];
                    mag += fabs((double)f[(size_t)i * K + q] * f[nx + (size_t)j * K + q]);
                }
                err_add(&e, sky_bf16_to_f32(h[nx + nw + N + (size_t)i * N + j]), want);
                ymax = fmax(ymax, fabs(want)), tmax = fmax(tmax, mag);
            }
        /* bf16 products are exact in fp32; K + 1 fp32 additions, at most 2 e32 each (tensor cores' fp32
         * accumulation may truncate); the bf16 output */
        row_done(r, &e, UBF * ymax + 2 * (K + 1.0) * E32 * tmax);
    }
    sky_gemm_free(g);
    case_close(&cs);
    free(f), free(h);
    return st;
}

/* ---- the VAE: conv_tf32 and rms_norm_cl --------------------------------------------------------- */

/* conv_tf32 of T = 2 output frames at H x W = 5 x 6 (partial tiles), x, the cache and the weights
 * U[-1, 1], the bias U[-1, 1], fp32 (the weights rounded to tf32 here as at upload, x by the kernel). */
static sky_status conv_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_row *r, sky_err *err)
{
    static const char *keys[] = {"CIN", "COUT", "KT", "KH", "KW", "NC", "ST", "SH", "SW", "PH", "PW", "SPLIT", "BN"};
    int                v[13];
    for (int i = 0; i < 13; i++)
        if ((v[i] = sky_selftest_const_int(p, k, keys[i])) < 0)
            return sky_fail(err, "selftest: %s: no %s in its kernel info", p->names[k], keys[i]);
    const int    CIN = v[0], COUT = v[1], KT = v[2], KH = v[3], KW = v[4], NC = v[5], ST = v[6], SH = v[7], SW = v[8];
    const int    PH = v[9], PW = v[10];
    int          T = 2, H = 5, W = 6;
    int          HO = (H + 2 * PH - KH) / SH + 1, WO = (W + 2 * PW - KW) / SW + 1;
    const int    frames = (T - 1) * ST + KT, tin = frames - NC > 0 ? frames - NC : 1, taps = KT * KH * KW;
    const size_t fr = (size_t)H * W * CIN, nin = (size_t)(NC + tin) * fr, nw = (size_t)COUT * taps * CIN;
    const size_t ny = (size_t)T * HO * WO * COUT, all = nin + nw + COUT + ny;
    float       *f = malloc(all * sizeof *f);
    uint16_t    *h = malloc(all * 2);
    st_case      cs = {0};
    sky_status   st = f && h ? case_open(&cs, c, all * 4, err) : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) {
        uint64_t seed = 0xc0a7ULL;
        sky_selftest_fill(h, f, nin + nw + COUT, 1.0f, &seed);
        float *in = f, *w = f + nin, *b = w + nw, *y = b + COUT; /* in: the cache's NC frames, then x's */
        for (size_t i = 0; i < nw; i++) w[i] = sky_f32_round_tf32(w[i]); /* as vae_cuda.c uploads them */
        memset(y, 0xff, ny * 4);
        put(&cs, 0, f, all * 4);
        const CUdeviceptr dcache = cs.dev, dx = cs.dev + (size_t)NC * fr * 4, dw = cs.dev + nin * 4, db = dw + nw * 4;
        const CUdeviceptr dy = db + (size_t)COUT * 4;
        void             *args[] = {(void *)&dy, (void *)&dx, (void *)&dcache, (void *)&dw, (void *)&db,
                                    (void *)&T,  (void *)&H,  (void *)&W,      (void *)&HO, (void *)&WO};
        const int BN = v[12]; /* one block per (128 rows, BN columns), 3 stages of 128 + BN rows of 16 floats */
        sky_cuda_launch(&p->st, k, (unsigned)(((size_t)T * HO * WO + 127) / 128 * (size_t)((COUT + BN - 1) / BN)), 1,
                        128, (unsigned)(3 * (128 + BN) * 16 * 4), c->stream, args);
        get(&cs, (size_t)(dy - cs.dev), y, ny * 4);
        st_err e = {0, 1};
        double tmax = 0;
        for (int t = 0; t < T; t++)
            for (int ho = 0; ho < HO; ho++)
                for (int wo = 0; wo < WO; wo++)
                    for (int co = 0; co < COUT; co++) {
                        double want = b[co], mag = fabs(b[co]);
                        for (int tap = 0; tap < taps; tap++) {
                            const int kt = tap / (KH * KW), kh = tap / KW % KH, kw = tap % KW;
                            const int s = ST * t + kt, ih = SH * ho + kh - PH, iw = SW * wo + kw - PW;
                            if (ih < 0 || ih >= H || iw < 0 || iw >= W) continue;
                            const float *xi = in + (size_t)s * fr + ((size_t)ih * W + iw) * CIN;
                            const float *wi = w + ((size_t)co * taps + tap) * CIN;
                            for (int ci = 0; ci < CIN; ci++)
                                want += (double)xi[ci] * wi[ci], mag += fabs((double)xi[ci] * wi[ci]);
                        }
                        const size_t pos = ((size_t)t * HO + ho) * WO + wo;
                        const size_t at = v[11]
                                              ? (((size_t)(2 * t + co / (COUT / 2)) * HO + ho) * WO + wo) * (COUT / 2) +
                                                    co % (COUT / 2)
                                              : pos * COUT + co;
                        err_add(&e, y[at], want);
                        tmax = fmax(tmax, mag);
                    }
        /* x rounded to tf32 by the kernel (10 stored bits, round to nearest: 2^-11; w is the reference's too,
         * already rounded), taps x CIN + 1 fp32 additions at 2 e32 each (tensor cores' accumulation may
         * truncate); fp32 output, no more rounding */
        row_done(r, &e, (0x1p-11 + 0x1p-22 + 2 * (taps * CIN + 1.0) * E32) * tmax);
    }
    case_close(&cs);
    free(f), free(h);
    return st;
}

/* rms_norm_cl on ROWS = 11 positions (a partial block of 8), x U[-2, 2], gamma U[-1, 1], fp32; SiLU
 * after it when the instance has it. */
static sky_status vae_norm_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_row *r, sky_err *err)
{
    enum { ROWS = 11 };
    const int C = sky_selftest_const_int(p, k, "C"), silu = sky_selftest_const_int(p, k, "SILU");
    if (C < 1 || silu < 0) return sky_fail(err, "selftest: %s: no C or SILU in its kernel info", p->names[k]);
    const size_t n = (size_t)ROWS * C;
    float       *f = malloc((2 * n + C) * sizeof *f);
    uint16_t    *h = malloc((n + C) * 2);
    st_case      cs = {0};
    sky_status   st = f && h ? case_open(&cs, c, (2 * n + C) * 4, err) : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) {
        uint64_t seed = 0x7a3ULL;
        float   *x = f, *g = f + n, *y = g + C;
        sky_selftest_fill(h, x, n, 2.0f, &seed);
        sky_selftest_fill(h, g, (size_t)C, 1.0f, &seed);
        memset(y, 0xff, n * 4);
        put(&cs, 0, f, (2 * n + C) * 4);
        const CUdeviceptr dx = cs.dev, dg = dx + n * 4, dy = dg + (size_t)C * 4;
        long long         rows = ROWS;
        void             *args[] = {(void *)&dy, (void *)&dx, (void *)&dg, (void *)&rows};
        sky_cuda_launch(&p->st, k, (ROWS + 7) / 8, 1, 256, 0, c->stream, args);
        get(&cs, (size_t)(dy - cs.dev), y, n * 4);
        st_err e = {0, 1};
        double tmax = 0;
        for (int row = 0; row < ROWS; row++) {
            double ss = 0;
            for (int i = 0; i < C; i++) ss += (double)x[(size_t)row * C + i] * x[(size_t)row * C + i];
            const double rs = sqrt((double)C) / fmax(sqrt(ss), 1e-12);
            for (int i = 0; i < C; i++) {
                double o = x[(size_t)row * C + i] * rs * g[i];
                tmax = fmax(tmax, fabs(o));
                if (silu) o = o / (1 + exp(-o));
                err_add(&e, y[(size_t)row * C + i], o);
            }
        }
        /* the fp32 sum of C squares, sqrtf twice, the division and two products: (C + 8) e32 relative to
         * the norm's output n; SiLU's n sigmoid(n) moves that by at most 1.1 x (|d silu / dn| <= 1.1) and
         * adds its expf (2 ulp), division and sum: 8 e32 |n| */
        row_done(r, &e, ((silu ? 1.1 : 1.0) * (C + 8.0) + (silu ? 8 : 0)) * E32 * tmax);
    }
    case_close(&cs);
    free(f), free(h);
    return st;
}

sky_status sky_selftest_vae_rows(sky_cuda *c, sky_selftest_prog *vae, int encode, sky_selftest_table *t, sky_err *err)
{
    /* the conv: vae_decode's first causal 3-D one (KT = 3, not split), vae_encode's first strided one (the
     * downsamples), else the first */
    int k = -1;
    for (int i = sky_selftest_find_template(vae, "conv_tf32", 0); i >= 0 && k < 0;
         i = sky_selftest_find_template(vae, "conv_tf32", i + 1))
        if (encode ? sky_selftest_const_int(vae, i, "SH") > 1 || sky_selftest_const_int(vae, i, "ST") > 1
                   : sky_selftest_const_int(vae, i, "KT") == 3 && sky_selftest_const_int(vae, i, "SPLIT") == 0)
            k = i;
    if (k < 0) k = sky_selftest_find_template(vae, "conv_tf32", 0);
    sky_selftest_row *r;
    if (k >= 0 && (r = row_new(t, "vae_conv", vae->names[k])) && conv_row(c, vae, k, r, err)) return SKY_ERR;
    if (encode) return SKY_OK; /* the encoder's norms are the decoder's template */
    /* the norm: the first without SiLU, else the first */
    k = -1;
    for (int i = sky_selftest_find_template(vae, "rms_norm_cl", 0); i >= 0 && k < 0;
         i = sky_selftest_find_template(vae, "rms_norm_cl", i + 1))
        if (sky_selftest_const_int(vae, i, "SILU") == 0) k = i;
    if (k < 0) k = sky_selftest_find_template(vae, "rms_norm_cl", 0);
    if (k >= 0 && (r = row_new(t, "vae_norm", vae->names[k])) && vae_norm_row(c, vae, k, r, err)) return SKY_ERR;
    return SKY_OK;
}

/* ---- layernorm_affine and softmax_rows (the DiT's norm3, the VAE's attention, CLIP's) -------------- */

/* layernorm_affine on ROWS = 5 rows: x = 0.5 + U[-2, 2] in its stored type (rounded to bf16 first where the
 * instance does: ROUND_IN, the model's cast), weight and bias U[-1, 1] fp32. Bound: u_y max|y| (u_y = u for
 * a bf16 output, else 0) + (2 C + 16) e32 max(|n w| + |b|): the fp32 sums of C terms for the mean and the
 * variance, rsqrtf and the products and sum. */
static sky_status layernorm_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_row *r, sky_err *err)
{
    enum { ROWS = 5 };
    const int   C = sky_selftest_const_int(p, k, "C"), threads = sky_selftest_const_int(p, k, "THREADS");
    const int   rin = sky_selftest_const_int(p, k, "ROUND_IN");
    const int   xbf = sky_selftest_const_bf16(p, k, "TX"), ybf = sky_selftest_const_bf16(p, k, "TY");
    const char *eps = sky_selftest_const(p, k, "EPS");
    if (C < 1 || threads < 1 || rin < 0 || !eps)
        return sky_fail(err, "selftest: %s: no C, THREADS, ROUND_IN or EPS in its kernel info", p->names[k]);
    const size_t n = (size_t)ROWS * C;
    float       *f = malloc((2 * n + 2 * C) * sizeof *f);
    uint16_t    *h = malloc((n + 2 * C) * 2);
    st_case      cs = {0};
    sky_status   st =
        f && h ? case_open(&cs, c, (2 * n + 2 * C) * 4, err) : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) {
        uint64_t seed = 0x1aff1eULL + (uint64_t)k;
        float   *x = f, *wb = f + n, *y = wb + 2 * C;
        sky_selftest_fill(h, x, n, 2.0f, &seed);
        for (size_t i = 0; i < n; i++) {
            x[i] += 0.5f;
            if (xbf || rin) x[i] = sky_bf16_to_f32(h[i] = sky_f32_to_bf16(x[i]));
        }
        sky_selftest_fill(h + n, wb, 2 * (size_t)C, 1.0f, &seed);
        const CUdeviceptr dy = cs.dev, dx = cs.dev + n * 4, dw = cs.dev + n * 8, db = dw + (size_t)C * 4;
        put(&cs, n * 4, xbf ? (const void *)h : (const void *)x, n * (xbf ? 2 : 4));
        put(&cs, n * 8, wb, 2 * (size_t)C * 4);
        memset(y, 0xff, n * 4);
        put(&cs, 0, y, n * 4);
        void *args[] = {(void *)&dy, (void *)&dx, (void *)&dw, (void *)&db};
        sky_cuda_launch(&p->st, k, ROWS, 1, (unsigned)threads, 0, c->stream, args);
        get(&cs, 0, ybf ? (void *)h : (void *)y, n * (ybf ? 2 : 4));
        st_err e = {0, 1};
        double ymax = 0, tmax = 0;
        for (int row = 0; row < ROWS; row++) {
            const float *xr = x + (size_t)row * C;
            double       mean = 0, var = 0;
            for (int i = 0; i < C; i++) mean += xr[i];
            mean /= C;
            for (int i = 0; i < C; i++) var += (xr[i] - mean) * (xr[i] - mean);
            const double rs = 1 / sqrt(var / C + strtod(eps, NULL));
            for (int i = 0; i < C; i++) {
                const double nv = (xr[i] - mean) * rs, want = nv * wb[i] + wb[C + i];
                err_add(&e, ybf ? sky_bf16_to_f32(h[(size_t)row * C + i]) : y[(size_t)row * C + i], want);
                ymax = fmax(ymax, fabs(want));
                tmax = fmax(tmax, fabs(nv * wb[i]) + fabs(wb[C + i]));
            }
        }
        row_done(r, &e, (ybf ? UBF : 0) * ymax + (2.0 * C + 16) * E32 * tmax);
    }
    case_close(&cs);
    free(f), free(h);
    return st;
}

/* softmax_rows on ROWS = 3 rows of N = 300 fp32 scores U[-8, 8] (more than a block's 256 threads), scale
 * 1/8. Each p: the subtraction and the product scale the exponent's error to 2 e32 |x| (x = scale (s - m),
 * |x| <= xmax), expf 2 ulp (4 e32), for its own term and, at most, for the sum's; the sum of N terms N e32,
 * the reciprocal and the product 3 e32: (N + 11 + 4 xmax) e32 relative to p; fp32 output. */
static sky_status softmax_rows_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_row *r, sky_err *err)
{
    enum { ROWS = 3, N = 300 };
    const size_t n = (size_t)ROWS * N;
    float       *f = malloc(2 * n * sizeof *f);
    uint16_t    *h = malloc(n * 2);
    st_case      cs = {0};
    sky_status   st = f && h ? case_open(&cs, c, n * 4, err) : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) {
        uint64_t    seed = 0x50f7ULL;
        float      *s = f, *y = f + n, scale = 0.125f;
        int         cols = N;
        CUdeviceptr ds = cs.dev;
        sky_selftest_fill(h, s, n, 8.0f, &seed);
        put(&cs, 0, s, n * 4);
        void *args[] = {(void *)&ds, (void *)&cols, (void *)&scale};
        sky_cuda_launch(&p->st, k, ROWS, 1, 256, 0, c->stream, args);
        get(&cs, 0, y, n * 4);
        st_err e = {0, 1};
        double pmax = 0, xmax = 0;
        for (int row = 0; row < ROWS; row++) {
            const float *sr = s + (size_t)row * N;
            double       m = -INFINITY, l = 0;
            for (int j = 0; j < N; j++) m = fmax(m, sr[j]);
            for (int j = 0; j < N; j++) l += exp((sr[j] - m) * scale), xmax = fmax(xmax, (m - sr[j]) * scale);
            for (int j = 0; j < N; j++) {
                const double want = exp((sr[j] - m) * scale) / l;
                err_add(&e, y[(size_t)row * N + j], want);
                pmax = fmax(pmax, want);
            }
        }
        row_done(r, &e, (N + 11.0 + 4 * xmax) * E32 * pmax);
    }
    case_close(&cs);
    free(f), free(h);
    return st;
}

sky_status sky_selftest_layernorm_rows(sky_cuda *c, sky_selftest_prog *p, int all, sky_selftest_table *t, sky_err *err)
{
    sky_selftest_row *r;
    for (int k = sky_selftest_find_template(p, "layernorm_affine", 0); k >= 0;
         k = all ? sky_selftest_find_template(p, "layernorm_affine", k + 1) : -1)
        if ((r = row_new(t, "layernorm", p->names[k])) && layernorm_row(c, p, k, r, err)) return SKY_ERR;
    return SKY_OK;
}

sky_status sky_selftest_softmax_row(sky_cuda *c, sky_selftest_prog *p, const char *family, sky_selftest_table *t,
                                    sky_err *err)
{
    const int         k = sky_selftest_find_template(p, "softmax_rows", 0);
    sky_selftest_row *r;
    if (k >= 0 && (r = row_new(t, family, p->names[k])) && softmax_rows_row(c, p, k, r, err)) return SKY_ERR;
    return SKY_OK;
}

/* ---- umT5: t5_rmsnorm ------------------------------------------------------------------------- */

/* t5_rmsnorm on ROWS = 5 rows, x U[-2, 2] bf16, w U[-1, 1] fp32. */
static sky_status t5_norm_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_row *r, sky_err *err)
{
    enum { ROWS = 5 };
    const int   C = sky_selftest_const_int(p, k, "C"), threads = sky_selftest_const_int(p, k, "THREADS");
    const char *eps = sky_selftest_const(p, k, "EPS");
    if (C < 1 || threads < 1 || !eps)
        return sky_fail(err, "selftest: %s: no C, THREADS or EPS in its kernel info", p->names[k]);
    const size_t n = (size_t)ROWS * C;
    float       *f = malloc((n + C) * sizeof *f);
    uint16_t    *h = malloc((n + 2 * C) * 2);
    st_case      cs = {0};
    sky_status   st =
        f && h ? case_open(&cs, c, n * 4 + (size_t)C * 4, err) : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) {
        uint64_t seed = 0x75ULL;
        float   *x = f, *w = f + n;
        sky_selftest_fill(h, x, n, 2.0f, &seed); /* h: x's bf16 bits */
        sky_selftest_fill(h + n, w, (size_t)C, 1.0f, &seed);
        const CUdeviceptr dy = cs.dev, dx = cs.dev + n * 2, dw = cs.dev + n * 4;
        put(&cs, n * 2, h, n * 2);
        put(&cs, n * 4, w, (size_t)C * 4);
        memset(h, 0xff, n * 2);
        put(&cs, 0, h, n * 2);
        void *args[] = {(void *)&dy, (void *)&dx, (void *)&dw};
        sky_cuda_launch(&p->st, k, ROWS, 1, (unsigned)threads, 0, c->stream, args);
        get(&cs, 0, h, n * 2);
        const double e_ = strtod(eps, NULL);
        st_err       e = {0, 1};
        double       tmax = 0;
        for (int row = 0; row < ROWS; row++) {
            double sq = 0;
            for (int i = 0; i < C; i++) sq += (double)x[(size_t)row * C + i] * x[(size_t)row * C + i];
            const double rs = 1 / sqrt(sq / C + e_);
            for (int i = 0; i < C; i++) {
                const double want = x[(size_t)row * C + i] * rs * w[i];
                err_add(&e, sky_bf16_to_f32(h[(size_t)row * C + i]), want);
                tmax = fmax(tmax, fabs(want));
            }
        }
        /* two bf16 roundings (the normalised value, then the product): 2 u + u^2; the fp32 sum of C
         * squares, the division, rsqrtf (2 ulp) and the products: (C + 8) e32 */
        row_done(r, &e, (2 * UBF + UBF * UBF + (C + 8.0) * E32) * tmax);
    }
    case_close(&cs);
    free(f), free(h);
    return st;
}

/* The bucket of relative position rel (templates/cuda/softmax_relbias.cu.in's, the model's definition). */
static int relbias_bucket(int rel, int buckets, int maxdist)
{
    const int half = buckets / 2, exact = half / 2, base = rel > 0 ? half : 0, m = rel < 0 ? -rel : rel;
    if (m < exact) return base + m;
    const int large = (int)(exact + log((double)m / exact) / log((double)maxdist / exact) * (half - exact) + 1e-6);
    return base + (large < half - 1 ? large : half - 1);
}

/* softmax_relbias of head h = NH - 1 over n = 150 tokens (past MAXDIST = 128 of the real model: every
 * kind of bucket), rows ld = 152 apart: s U[-4, 4] bf16, the bias table U[-2, 2] fp32. */
static sky_status relbias_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_row *r, sky_err *err)
{
    enum { N = 150, LD = 152 };
    const int NH = sky_selftest_const_int(p, k, "NH"), B = sky_selftest_const_int(p, k, "BUCKETS");
    const int maxd = sky_selftest_const_int(p, k, "MAXDIST");
    if (NH < 1 || B < 4 || maxd < 1)
        return sky_fail(err, "selftest: %s: no NH, BUCKETS or MAXDIST in its kernel info", p->names[k]);
    const size_t n = (size_t)N * LD, nb = (size_t)B * NH;
    float       *f = malloc((n + nb) * sizeof *f);
    uint16_t    *h = malloc((n + nb) * 2);
    st_case      cs = {0};
    sky_status   st =
        f && h ? case_open(&cs, c, n * 2 + 256 + nb * 4, err) : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) {
        uint64_t seed = 0xb1a5ULL;
        float   *sc = f, *bias = f + n;
        sky_selftest_fill(h + n, bias, nb, 2.0f, &seed);
        sky_selftest_fill(h, sc, n, 4.0f, &seed);
        const CUdeviceptr ds = cs.dev, db = cs.dev + (n * 2 + 255) / 256 * 256;
        put(&cs, 0, h, n * 2);
        put(&cs, (size_t)(db - cs.dev), bias, nb * 4);
        int   head = NH - 1, tokens = N, ld = LD;
        void *args[] = {(void *)&ds, (void *)&db, (void *)&head, (void *)&tokens, (void *)&ld};
        sky_cuda_launch(&p->st, k, N, 1, 256, 0, c->stream, args);
        get(&cs, 0, h, n * 2);
        st_err e = {0, 1};
        double pmax = 0, v[N];
        for (int a = 0; a < N; a++) {
            double m = -INFINITY, l = 0;
            for (int b = 0; b < N; b++) { /* the model's bf16 sum (fp32 then rounded, as on the device) */
                const float x = sc[(size_t)a * LD + b] + bias[relbias_bucket(b - a, B, maxd) * NH + head];
                v[b] = sky_bf16_to_f32(sky_f32_to_bf16(x));
                m = fmax(m, v[b]);
            }
            for (int b = 0; b < N; b++) l += (v[b] = exp(v[b] - m));
            for (int b = 0; b < N; b++) {
                err_add(&e, sky_bf16_to_f32(h[(size_t)a * LD + b]), v[b] / l);
                pmax = fmax(pmax, v[b] / l);
            }
        }
        /* each p: expf (2 ulp) of both its own and the sum's terms, the fp32 sum of N terms, the reciprocal
         * and the product: (N + 8) e32 relative; then the bf16 output: u */
        row_done(r, &e, (UBF + (N + 8.0) * E32) * pmax);
    }
    case_close(&cs);
    free(f), free(h);
    return st;
}

/* ---- fp8_expand (--weight_dtype fp8: runtime/cuda/offload.h) ---------------------------------------------- */

/* Every e4m3 code but the two NaNs (0x7f, 0xff: the quantiser never makes them; 0 in their place) in each of 3 rows,
 * scaled by a normal, a small and a subnormal-making scale: exactly the bf16 of the host's code x scale (bound 0: the
 * decode is exact and the product rounds once, as fp8_quant.h's fp32 product then the upload's bf16 rounding). */
sky_status sky_selftest_fp8_row(sky_cuda *c, sky_selftest_prog *dit, sky_selftest_table *t, sky_err *err)
{
    enum { ROWS = 3, COLS = 256, N = ROWS * COLS };
    const int         k = sky_selftest_find_template(dit, "fp8_expand", 0);
    sky_selftest_row *r;
    if (k < 0 || !(r = row_new(t, "fp8_expand", dit->names[k]))) return SKY_OK;
    const float   scale[ROWS] = {1.0f, 0.0123f, 3.0e-7f};
    unsigned char codes[N];
    uint16_t      y[N];
    for (int i = 0; i < N; i++) codes[i] = (i % COLS & 0x7f) == 0x7f ? 0 : (unsigned char)(i % COLS);
    st_case      cs = {0};
    const size_t off_codes = N * 2, off_scale = off_codes + N;
    if (case_open(&cs, c, off_scale + sizeof scale, err)) return SKY_ERR;
    put(&cs, off_codes, codes, N);
    put(&cs, off_scale, scale, sizeof scale);
    memset(y, 0xff, sizeof y); /* NaN */
    put(&cs, 0, y, sizeof y);
    const CUdeviceptr dy = cs.dev, dc = cs.dev + off_codes, ds = cs.dev + off_scale;
    int               cols = COLS;
    void             *args[] = {(void *)&dy, (void *)&dc, (void *)&ds, (void *)&cols};
    sky_cuda_launch(&dit->st, k, (COLS + 255) / 256, ROWS, 256, 0, c->stream, args);
    get(&cs, 0, y, sizeof y);
    st_err e = {0, 1};
    for (int i = 0; i < N; i++)
        err_add(&e, sky_bf16_to_f32(y[i]),
                sky_bf16_to_f32(sky_f32_to_bf16(sky_f8e4m3_to_f32(codes[i]) * scale[i / COLS])));
    row_done(r, &e, 0.0);
    case_close(&cs);
    return SKY_OK;
}

sky_status sky_selftest_t5_rows(sky_cuda *c, sky_selftest_prog *text, sky_selftest_table *t, sky_err *err)
{
    const int         k = sky_selftest_find_template(text, "t5_rmsnorm", 0);
    sky_selftest_row *r;
    if (k >= 0 && (r = row_new(t, "t5_norm", text->names[k])) && t5_norm_row(c, text, k, r, err)) return SKY_ERR;
    const int kb = sky_selftest_find_template(text, "softmax_relbias", 0);
    if (kb >= 0 && (r = row_new(t, "t5_attn", text->names[kb])) && relbias_row(c, text, kb, r, err)) return SKY_ERR;
    return SKY_OK;
}

/* ---- --use_usp's data movement (dit_forward_usp): usp_slice and usp_pack_heads ------------------------------- */

/* 1 when the kernel's T (a raw-bits type: "unsigned short" for bf16, or "float") is 4 bytes wide; 0 for 2; -1 else. */
static int raw_is_f32(const sky_selftest_prog *p, int k)
{
    const char *t = sky_selftest_const(p, k, "T");
    return !t ? -1 : strcmp(t, "float") == 0 ? 1 : strcmp(t, "unsigned short") == 0 ? 0 : -1;
}

/* Value i of a raw buffer of bf16 (f32 = 0) or fp32 values. */
static double raw_at(const void *b, int f32, size_t i)
{
    return f32 ? ((const float *)b)[i] : sky_bf16_to_f32(((const uint16_t *)b)[i]);
}

/* A move of values (usp_slice, usp_pack_heads) against the host's: exact (bound 0); the output and the GUARD values
 * past it start as NaN bytes, so a value not written, or one written past the output, fails the row. */
enum { GUARD = 64 };
static void move_check(sky_selftest_row *r, const void *got, const void *want, int f32, size_t n)
{
    st_err e = {0, 1};
    for (size_t i = 0; i < n; i++) err_add(&e, raw_at(got, f32, i), raw_at(want, f32, i));
    for (size_t i = n; i < n + GUARD; i++) e.finite &= isnan(raw_at(got, f32, i)) != 0; /* nothing written past */
    row_done(r, &e, 0.0);
}

/* usp_slice (y [rows, COLS] = rows [tok0, tok0 + rows) of x [L, COLS], the rows past L zero): the last rank's slice,
 * rank 1 of 2 of L = 11 tokens: rows = 6 from tok0 = 6, one of them padding. */
static sky_status usp_slice_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_row *r, sky_err *err)
{
    const int cols = sky_selftest_const_int(p, k, "COLS"), f32 = raw_is_f32(p, k);
    if (cols < 1 || f32 < 0) return sky_fail(err, "selftest: %s: no COLS or T in its kernel info", p->names[k]);
    int            L = 11, rows = 6, tok0 = 6;
    const size_t   es = f32 ? 4 : 2, nx = (size_t)L * cols, ny = (size_t)rows * cols;
    float         *f = malloc(nx * sizeof *f);
    uint16_t      *h = malloc(nx * 2);
    unsigned char *x = malloc(nx * es), *y = malloc((ny + GUARD) * es), *want = calloc(ny + GUARD, es);
    st_case        cs = {0};
    sky_status     st = f && h && x && y && want ? case_open(&cs, c, (nx + ny + GUARD) * es, err)
                                                 : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) {
        uint64_t seed = 0x51ceULL;
        sky_selftest_fill(h, f, nx, 2.0f, &seed); /* bf16-exact values: the same numbers in either type */
        memcpy(x, f32 ? (const void *)f : (const void *)h, nx * es);
        for (int i = 0; i < rows && tok0 + i < L; i++)
            memcpy(want + (size_t)i * cols * es, x + (size_t)(tok0 + i) * cols * es, (size_t)cols * es);
        memset(y, 0xff, (ny + GUARD) * es); /* NaN */
        put(&cs, 0, x, nx * es);
        put(&cs, nx * es, y, (ny + GUARD) * es);
        const CUdeviceptr dx = cs.dev, dy = cs.dev + nx * es;
        void             *args[] = {(void *)&dy, (void *)&dx, (void *)&rows, (void *)&tok0, (void *)&L};
        sky_cuda_launch(&p->st, k, (unsigned)((ny + 255) / 256), 1, 256, 0, c->stream, args);
        get(&cs, nx * es, y, (ny + GUARD) * es);
        move_check(r, y, want, f32, ny);
    }
    case_close(&cs);
    free(f), free(h), free(x), free(y), free(want);
    return st;
}

/* usp_pack_heads: UNPACK 0 packs x [rows, C] into P = 2 blocks [P, rows, C / P] (block p: head group p), UNPACK 1
 * the inverse, each against the host's layout, 5 rows. */
static sky_status usp_pack_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_row *r, sky_err *err)
{
    const int C = sky_selftest_const_int(p, k, "C"), unpack = sky_selftest_const_int(p, k, "UNPACK");
    const int f32 = raw_is_f32(p, k);
    if (C < 2 || C % 2 || unpack < 0 || f32 < 0)
        return sky_fail(err, "selftest: %s: no even C, UNPACK or T in its kernel info", p->names[k]);
    int            rows = 5, P = 2;
    const int      cp = C / P;
    const size_t   es = f32 ? 4 : 2, n = (size_t)rows * C;
    float         *f = malloc(n * sizeof *f);
    uint16_t      *h = malloc(n * 2);
    unsigned char *x = malloc(n * es), *y = malloc((n + GUARD) * es), *want = malloc((n + GUARD) * es);
    st_case        cs = {0};
    sky_status     st = f && h && x && y && want ? case_open(&cs, c, (2 * n + GUARD) * es, err)
                                                 : sky_fail(err, "selftest: out of host memory");
    if (st == SKY_OK) {
        uint64_t seed = 0x9ac4ULL + (uint64_t)unpack;
        sky_selftest_fill(h, f, n, 2.0f, &seed);
        memcpy(x, f32 ? (const void *)f : (const void *)h, n * es);
        for (int row = 0; row < rows; row++)
            for (int col = 0; col < C; col++) {
                const size_t i = (size_t)row * C + col, b = ((size_t)(col / cp) * rows + row) * cp + col % cp;
                memcpy(want + (unpack ? i : b) * es, x + (unpack ? b : i) * es, es);
            }
        memset(y, 0xff, (n + GUARD) * es); /* NaN */
        put(&cs, 0, x, n * es);
        put(&cs, n * es, y, (n + GUARD) * es);
        const CUdeviceptr dx = cs.dev, dy = cs.dev + n * es;
        void             *args[] = {(void *)&dy, (void *)&dx, (void *)&rows, (void *)&P};
        sky_cuda_launch(&p->st, k, (unsigned)((n + 255) / 256), 1, 256, 0, c->stream, args);
        get(&cs, n * es, y, (n + GUARD) * es);
        move_check(r, y, want, f32, n);
    }
    case_close(&cs);
    free(f), free(h), free(x), free(y), free(want);
    return st;
}

int sky_selftest_usp_row(sky_cuda *c, sky_selftest_prog *p, int k, sky_selftest_table *t, sky_status *st, sky_err *err)
{
    const char *tmpl = p->info[k].template_name;
    const int   slice = strcmp(tmpl, "usp_slice") == 0, pack = strcmp(tmpl, "usp_pack_heads") == 0;
    if (!slice && !pack) return 0;
    sky_selftest_row *r = row_new(t, slice ? "usp_slice" : "usp_pack", p->names[k]);
    if (!r)
        *st = sky_fail(err, "selftest: more than %d kernels to check (%s): raise SKY_SELFTEST_MAX_ROWS",
                       SKY_SELFTEST_MAX_ROWS, p->names[k]);
    else
        *st = slice ? usp_slice_row(c, p, k, r, err) : usp_pack_row(c, p, k, r, err);
    return 1;
}
