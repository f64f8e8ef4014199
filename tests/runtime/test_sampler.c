/* tests/runtime/test_sampler.c — runtime/pipeline/sampler.c against tests/fixtures/sampler/ (diffusers 0.36
 * UniPC with the original's schedule, cross-checked bit for bit against the original scheduler when
 * the fixtures were made; see tests/fixtures/sampler/README.md).
 *
 * Groups (one line per case):
 *   schedule/<case>      timesteps and sigmas equal to the original formula's, bit for bit;
 *                        diffusers' own sigmas within 1 float32 ulp
 *   coefs/<case>         per-step scalars (h, phi, r, rho, ratios) vs torch's 0-dim float32 values
 *   f32/<case>           every intermediate sample of a replayed trajectory (fp32 state)
 *   bf16/<case>          the same with the bf16 latent state of the original DF path
 *   scalar_30_8          reference §6.5 scalar test (x_0 = 1, v_i = 0.5 x_i + 0.1 i)
 *   plus the first-step quirk, the exact last step, and every error message.
 * Run from the repository root.
 */
#include "../../runtime/core/dtype.h"
#include "../../runtime/formats/safetensors.h"
#include "../../runtime/pipeline/sampler.h"
#include "check.h"

#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/sampler/"

static sky_safetensors *fx_sched, *fx_f32, *fx_bf16;   /* opened once in main */
static const char      *cur_case;                      /* case of the running table-driven test */
static int              cur_steps;
static double           cur_shift;

/* Worst errors seen per group, printed at the end. */
static struct { double coef_rel, rho_abs, f32_rel, bf16_rel, scalar_rel; long bf16_diff, bf16_total; } worst;

/* ---- fixture helpers -------------------------------------------------------------------- */

/* Tensor "<cur_case>/<field>" of f, or NULL. */
static const sky_st_tensor *field(const sky_safetensors *f, const char *fld) {
    char name[128];
    snprintf(name, sizeof name, "%s/%s", cur_case, fld);
    return sky_safetensors_find(f, name);
}

/* Element count of t. */
static size_t numel(const sky_st_tensor *t) {
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

/* t as floats (F32/BF16/I64...), malloc'ed; NULL on a conversion error. */
static float *to_f32(const sky_st_tensor *t) {
    size_t n = numel(t);
    float *d = malloc((n ? n : 1) * sizeof *d);
    sky_err err;
    if (sky_dtype_to_f32(d, t->data, t->dtype, n, &err) != SKY_OK) {
        free(d);
        return NULL;
    }
    return d;
}

/* Element i of an I64 tensor (little-endian, unaligned). */
static int64_t i64_at(const sky_st_tensor *t, size_t i) {
    const unsigned char *p = (const unsigned char *)t->data + 8 * i;
    uint64_t u = 0;
    for (int b = 7; b >= 0; b--) u = (u << 8) | p[b];
    return (int64_t)u;
}

/* Distance in float32 ulps between two finite floats of the same sign (0 when equal). */
static int64_t ulps(float a, float b) {
    int32_t ia, ib;
    memcpy(&ia, &a, 4);
    memcpy(&ib, &b, 4);
    if (ia < 0) ia = INT32_MIN - ia;
    if (ib < 0) ib = INT32_MIN - ib;
    return llabs((long long)ia - (long long)ib);
}

/* Parse "n30_shift8" into steps and shift. */
static void parse_case(const char *name) {
    int s = 0;
    double h = 0;
    SKY_ASSERT(sscanf(name, "n%d_shift%lf", &s, &h) == 2);
    cur_case = name;
    cur_steps = s;
    cur_shift = h;
}

/* Cases of a fixture file: the distinct "<case>/" prefixes of its tensor names, in name order. */
static int list_cases(const sky_safetensors *f, char names[][32], int max) {
    int n = 0;
    for (int i = 0; i < sky_safetensors_count(f); i++) {
        const char *nm = sky_safetensors_at(f, i)->name;
        const char *slash = strchr(nm, '/');
        if (!slash || (size_t)(slash - nm) >= 32 || strncmp(nm, "n", 1) != 0) continue;
        char c[32];
        memcpy(c, nm, (size_t)(slash - nm));
        c[slash - nm] = '\0';
        if (n > 0 && strcmp(names[n - 1], c) == 0) continue;
        SKY_ASSERT(n < max);
        strcpy(names[n++], c);
    }
    return n;
}

/* ---- schedule ---------------------------------------------------------------------------- */

static int test_schedule(void) {
    const sky_st_tensor *ts = field(fx_sched, "timesteps"), *sg = field(fx_sched, "sigmas"),
                        *sd = field(fx_sched, "sigmas_diffusers");
    CHECK(ts && sg && sd, "fixture tensors missing for %s", cur_case);
    int N = cur_steps;
    CHECK(numel(ts) == (size_t)N && numel(sg) == (size_t)N + 1, "fixture shapes");
    int64_t *t = malloc((size_t)N * sizeof *t);
    float *s = malloc((size_t)(N + 1) * sizeof *s);
    sky_err err;
    CHECK(sky_sampler_flow_schedule(N, cur_shift, t, s, &err) == SKY_OK, "%s", err.msg);
    float *want = to_f32(sg), *dif = to_f32(sd);
    int max_ulp_d = 0;
    for (int i = 0; i < N; i++)
        CHECK(t[i] == i64_at(ts, (size_t)i), "timesteps[%d] = %lld, fixture %lld", i,
              (long long)t[i], (long long)i64_at(ts, (size_t)i));
    for (int i = 0; i <= N; i++) {
        CHECK(s[i] == want[i], "sigmas[%d] = %.9g, original formula %.9g", i, (double)s[i], (double)want[i]);
        int u = (int)ulps(s[i], dif[i]);
        if (u > max_ulp_d) max_ulp_d = u;
    }
    /* diffusers computes s_i = 1 - linspace(1, 0.001)[..] instead of linspace(fp32(0.999), 0): the
     * float64 inputs differ by 1.3e-8, which moves a float32 sigma by at most one rounding step */
    CHECK(max_ulp_d <= 1, "diffusers' sigmas differ by %d ulps", max_ulp_d);
    printf("     %s: timesteps and sigmas exact; diffusers' own sigmas within %d ulp\n", cur_case, max_ulp_d);
    free(t);
    free(s);
    free(want);
    free(dif);
    return 0;
}

/* ---- coefficients ------------------------------------------------------------------------ */

/* Column order of the fixture's coefs tensors (metadata coef_columns). */
enum { C_SIGMA, C_CORD, C_CH, C_CPHI, C_CR, C_CRHO0, C_CRHO1, C_CRATIO, C_CA,
       C_PORD, C_PFINAL, C_PH, C_PPHI, C_PR, C_PRATIO, C_PA, C_COLS };

/* Our coefficients in the fixture's column order. */
static void coef_row(const sky_unipc_coefs *c, float row[C_COLS]) {
    row[C_SIGMA] = c->sigma;     row[C_CORD] = (float)c->c_order;
    row[C_CH] = c->c_h;          row[C_CPHI] = c->c_phi;        row[C_CR] = c->c_r;
    row[C_CRHO0] = c->c_rho[0];  row[C_CRHO1] = c->c_rho[1];
    row[C_CRATIO] = c->c_ratio;  row[C_CA] = c->c_a;
    row[C_PORD] = (float)c->p_order;  row[C_PFINAL] = (float)c->p_final;
    row[C_PH] = c->p_h;          row[C_PPHI] = c->p_phi;        row[C_PR] = c->p_r;
    row[C_PRATIO] = c->p_ratio;  row[C_PA] = c->p_a;
}

/* Bounds (reason): torch's float32 log differs from the correctly rounded log (ours) by 1 ulp for
 * a few percent of inputs. lambda = log(1-s) - log(s) reaches |lambda| ~ 9 at the first steps of
 * shift 8, where one ulp is 9.5e-7; h is a difference of two lambdas and is ~0.02 there at 200
 * steps, so h, phi, r and alpha*phi may move by ~5e-5 relative: bound 2e-4.
 * rho solves [[1,1],[r,1]] rho = b with b1 ~ b2 cancelling in rho1 = (b1 - b2)/(1 - r); the
 * cancellation grows as h shrinks, and at 200 steps a 1-ulp lambda difference moves rho1 by ~1e-4
 * absolute (rho ~ 0.08 .. 0.53): bound 1e-3 absolute. In bf16 mode rho is then rounded to bf16,
 * so such a difference can become one bf16 ulp (3.9e-3 at 0.5): bound 1 bf16 ulp.
 * Sigma ratios (one IEEE division of equal sigmas), orders and the final flag must be exact. */
#define COEF_REL_BOUND 2e-4
#define RHO_ABS_BOUND  1e-3

/* Distance of two bf16-representable floats in bf16 ulps. */
static int64_t bf16_ulps(float a, float b) { return ulps(a, b) >> 16; }

static int check_coefs(int bf16) {
    const sky_st_tensor *ct = field(fx_sched, bf16 ? "coefs_bf16" : "coefs");
    const sky_st_tensor *sg = field(fx_sched, "sigmas");
    CHECK(ct && sg && ct->ndim == 2 && ct->shape[1] == C_COLS, "fixture coefs missing or wrong shape");
    int N = cur_steps;
    float *ref = to_f32(ct), *sig = to_f32(sg);
    double max_rel = 0, max_rho = 0;
    int exact = 0, total = 0;
    for (int i = 0; i < N; i++) {
        sky_unipc_coefs c;
        sky_unipc_coefs_at(sig, N, i, bf16, &c);
        float row[C_COLS];
        coef_row(&c, row);
        const float *want = ref + (size_t)i * C_COLS;
        for (int k = 0; k < C_COLS; k++) {
            float a = row[k], b = want[k];
            if (k == C_SIGMA || k == C_CORD || k == C_PORD || k == C_PFINAL || k == C_CRATIO ||
                k == C_PRATIO || isinf(b)) {
                CHECK(a == b, "step %d column %d: %.9g, torch %.9g (must be exact)", i, k, (double)a, (double)b);
                continue;
            }
            total++;
            if (a == b) { exact++; continue; }
            if (k == C_CRHO0 || k == C_CRHO1) {
                double d = fabs((double)a - (double)b);
                if (d > max_rho) max_rho = d;
                if (bf16) CHECK(bf16_ulps(a, b) <= 1, "step %d rho[%d]: %.9g, torch %.9g (more than 1 bf16 ulp)",
                                i, k - C_CRHO0, (double)a, (double)b);
                else CHECK(d <= RHO_ABS_BOUND, "step %d rho[%d]: %.9g, torch %.9g (abs %.2e)", i, k - C_CRHO0,
                           (double)a, (double)b, d);
                continue;
            }
            double rel = fabs((double)a - (double)b) / fmax(fabs((double)b), 1e-30);
            if (rel > max_rel) max_rel = rel;
            CHECK(rel <= COEF_REL_BOUND, "step %d column %d: %.9g, torch %.9g (rel %.2e)", i, k,
                  (double)a, (double)b, rel);
        }
    }
    if (max_rel > worst.coef_rel) worst.coef_rel = max_rel;
    if (!bf16 && max_rho > worst.rho_abs) worst.rho_abs = max_rho;
    printf("     %s%s: %d of %d float coefficients bit-identical to torch; max rel diff %.2e, "
           "rho max abs diff %.2e\n", cur_case, bf16 ? " (bf16)" : "", exact, total, max_rel, max_rho);
    free(ref);
    free(sig);
    return 0;
}

/* 1 when every coefficient of cur_case equals torch's bit for bit. */
static int coefs_identical(int bf16) {
    const sky_st_tensor *ct = field(fx_sched, bf16 ? "coefs_bf16" : "coefs");
    const sky_st_tensor *sg = field(fx_sched, "sigmas");
    if (!ct || !sg) return 0;
    float *ref = to_f32(ct), *sig = to_f32(sg);
    int same = 1;
    for (int i = 0; i < cur_steps && same; i++) {
        sky_unipc_coefs c;
        float row[C_COLS];
        sky_unipc_coefs_at(sig, cur_steps, i, bf16, &c);
        coef_row(&c, row);
        same = memcmp(row, ref + (size_t)i * C_COLS, sizeof row) == 0;
    }
    free(ref);
    free(sig);
    return same;
}

static int test_coefs(void) { return check_coefs(0); }
static int test_coefs_bf16(void) { return check_coefs(1); }

/* ---- trajectories ------------------------------------------------------------------------ */

/* Replay the fixture's model outputs and compare every sample. fp32 bound (reason): the same
 * operations in the same order in float32, so the only difference is the coefficients' last bits
 * (COEF_REL_BOUND at worst, ~1e-6 typically), which scale the sample by the same relative amount
 * per step and add over at most 50 steps: 1e-5 relative (L2 over the sample) leaves room.
 * bf16: the same tiny coefficient differences flip a bf16 rounding now and then (1 bf16 ulp =
 * 2^-8 relative), after which the element follows a slightly different path; the bound is
 * 1e-2 relative L2 per sample and at most 2% of the elements not bit-identical. */
static int check_trajectory(const sky_safetensors *f, int bf16) {
    const sky_st_tensor *xt = field(f, "x"), *vt = field(f, "v");
    CHECK(xt && vt, "fixture tensors missing for %s", cur_case);
    int N = cur_steps;
    CHECK(xt->shape[0] == N + 1 && vt->shape[0] == N, "fixture shapes");
    size_t n = numel(vt) / (size_t)N;
    float *xs = to_f32(xt), *vs = to_f32(vt);
    CHECK(xs && vs, "fixture dtype");
    sky_unipc u;
    sky_err err;
    CHECK(sky_unipc_init(&u, N, cur_shift, n, bf16, &err) == SKY_OK, "%s", err.msg);
    float *x = malloc(n * sizeof *x);
    memcpy(x, xs, n * sizeof *x);
    double max_rel = 0;
    long diff = 0;
    for (int i = 0; i < N; i++) {
        sky_unipc_step(&u, vs + (size_t)i * n, x);
        const float *want = xs + (size_t)(i + 1) * n;
        double d2 = 0, r2 = 0;
        for (size_t j = 0; j < n; j++) {
            d2 += ((double)x[j] - want[j]) * ((double)x[j] - want[j]);
            r2 += (double)want[j] * want[j];
            diff += x[j] != want[j];
        }
        double rel = sqrt(d2 / r2);
        if (rel > max_rel) max_rel = rel;
        CHECK(rel <= (bf16 ? 1e-2 : 1e-5), "step %d: rel L2 %.3e (first values %.9g vs %.9g)", i, rel,
              (double)x[0], (double)want[0]);
    }
    long total = (long)n * N;
    /* with the same coefficients the same float operations must give the same bits */
    int same_coefs = coefs_identical(bf16);
    CHECK(!same_coefs || diff == 0, "the coefficients equal torch's bit for bit, so every sample must "
          "too, but %ld of %ld differ (floating-point contraction on? see runtime/pipeline/sampler.h)", diff, total);
    if (bf16) {
        worst.bf16_diff += diff;
        worst.bf16_total += total;
        if (max_rel > worst.bf16_rel) worst.bf16_rel = max_rel;
        CHECK(diff * 50 <= total, "%ld of %ld bf16 values differ", diff, total);
    } else if (max_rel > worst.f32_rel) {
        worst.f32_rel = max_rel;
    }
    printf("     %s %s: %d steps x %zu, max rel L2 %.2e, %ld of %ld values not bit-identical%s\n",
           cur_case, bf16 ? "bf16" : "f32", N, n, max_rel, diff, total,
           same_coefs ? " (coefficients identical: exact required)" : "");
    sky_unipc_free(&u);
    free(x);
    free(xs);
    free(vs);
    return 0;
}

static int test_f32(void) { return check_trajectory(fx_f32, 0); }
static int test_bf16(void) { return check_trajectory(fx_bf16, 1); }

/* Reference §6.5 scalar test: one element, x_0 = 1, synthetic model v_i = 0.5 x_i + 0.1 i in
 * float32 (0.1*i is a Python double rounded to float, as torch adds a Python scalar). Bound: the
 * reference says ~1e-6 relative; the values pass through zero near step 26, so compare against
 * 1e-6 of max(|x|, 0.1). */
static int test_scalar_30_8(void) {
    const sky_st_tensor *t = sky_safetensors_find(fx_f32, "scalar/x");
    CHECK(t && numel(t) == 31, "fixture scalar/x missing");
    float *want = to_f32(t);
    sky_unipc u;
    sky_err err;
    CHECK(sky_unipc_init(&u, 30, 8.0, 1, 0, &err) == SKY_OK, "%s", err.msg);
    float x = 1.0f;
    double max_rel = 0;
    for (int i = 0; i < 30; i++) {
        float v = 0.5f * x + (float)(0.1 * i);
        sky_unipc_step(&u, &v, &x);
        double rel = fabs((double)x - want[i + 1]) / fmax(fabs((double)want[i + 1]), 0.1);
        if (rel > max_rel) max_rel = rel;
        CHECK(rel <= 1e-6, "step %d: %.9g, diffusers %.9g", i + 1, (double)x, (double)want[i + 1]);
    }
    worst.scalar_rel = max_rel;
    printf("     30 values, max rel diff %.2e\n", max_rel);
    sky_unipc_free(&u);
    free(want);
    return 0;
}

/* ---- behaviour --------------------------------------------------------------------------- */

/* shift 8 with 200 steps: t_0 == t_1 == 999, the original would start at index 1 (and fail);
 * we run all 200 steps from index 0 and end on the x0 prediction. */
static int test_duplicate_first_timestep(void) {
    int64_t ts[200];
    float sg[201];
    sky_err err;
    CHECK(sky_sampler_flow_schedule(200, 8.0, ts, sg, &err) == SKY_OK, "%s", err.msg);
    CHECK(ts[0] == ts[1] && sky_sampler_original_start_index(ts, 200) == 1, "t0 %lld t1 %lld",
          (long long)ts[0], (long long)ts[1]);
    CHECK(sky_sampler_flow_schedule(30, 8.0, ts, sg, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_sampler_original_start_index(ts, 30) == 0, "30 steps: no duplicate");
    /* the boundary documented in sampler.h: 143 steps at shift 8 are fine, 144 are not */
    CHECK(sky_sampler_flow_schedule(143, 8.0, ts, sg, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_sampler_original_start_index(ts, 143) == 0, "143 steps: no duplicate");
    CHECK(sky_sampler_flow_schedule(144, 8.0, ts, sg, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_sampler_original_start_index(ts, 144) == 1, "144 steps: t0 == t1");

    sky_unipc u;
    CHECK(sky_unipc_init(&u, 200, 8.0, 4, 0, &err) == SKY_OK, "%s", err.msg);
    float x[4] = { 1.0f, -0.5f, 0.25f, 2.0f }, v[4];
    for (int i = 0; i < 200; i++) {
        for (int j = 0; j < 4; j++) v[j] = 0.9f * x[j] - 0.1f;
        sky_unipc_step(&u, v, x);
        for (int j = 0; j < 4; j++) CHECK(isfinite(x[j]), "step %d: x[%d] = %g", i, j, (double)x[j]);
    }
    CHECK(u.done == 200, "done %d", u.done);
    sky_unipc_free(&u);
    return 0;
}

/* One step: no corrector, predictor lands on sigma = 0, so the result is exactly the x0
 * prediction x - sigma_0 * v (bf16: rounded to bf16), with no 0 * inf anywhere. */
static int test_last_step_exact(void) {
    for (int bf = 0; bf <= 1; bf++) {
        sky_unipc u;
        sky_err err;
        CHECK(sky_unipc_init(&u, 1, 8.0, 3, bf, &err) == SKY_OK, "%s", err.msg);
        float x[3] = { 0.75f, -1.5f, 3.0f }, v[3] = { 0.3f, -2.0f, 1e30f };
        float want[3];
        for (int j = 0; j < 3; j++) {
            want[j] = x[j] - u.sigmas[0] * v[j];
            if (bf) want[j] = sky_bf16_to_f32(sky_f32_to_bf16(want[j]));
        }
        sky_unipc_step(&u, v, x);
        for (int j = 0; j < 3; j++)
            CHECK(x[j] == want[j], "bf16=%d x[%d] = %.9g, want %.9g", bf, j, (double)x[j], (double)want[j]);
        sky_unipc_free(&u);
    }
    return 0;
}

/* Reset starts over and reproduces the same trajectory. */
static int test_reset(void) {
    sky_unipc u;
    sky_err err;
    CHECK(sky_unipc_init(&u, 10, 1.0, 2, 0, &err) == SKY_OK, "%s", err.msg);
    float a[2] = { 0.5f, -0.5f }, b[2] = { 0.5f, -0.5f };
    for (int i = 0; i < 10; i++) {
        float v[2] = { a[0] * 0.3f + 0.1f, a[1] - 0.2f };
        sky_unipc_step(&u, v, a);
    }
    sky_unipc_reset(&u);
    for (int i = 0; i < 10; i++) {
        float v[2] = { b[0] * 0.3f + 0.1f, b[1] - 0.2f };
        sky_unipc_step(&u, v, b);
    }
    CHECK(a[0] == b[0] && a[1] == b[1], "after reset: %g %g vs %g %g", (double)a[0], (double)a[1],
          (double)b[0], (double)b[1]);
    sky_unipc_free(&u);
    sky_unipc_free(&u);                                  /* freeing twice is safe */
    return 0;
}

/* ---- errors ------------------------------------------------------------------------------ */

static const struct bad_schedule {
    const char *name;
    int         steps;
    double      shift;
    const char *expect;
} BAD_SCHEDULES[] = {
    { "steps_zero",      0,      8.0, "--inference_steps 0 must be between 1 and 100000" },
    { "steps_too_many",  100001, 8.0, "--inference_steps 100001 must be between 1 and 100000" },
    { "shift_zero",      30,     0.0, "--shift 0 must be a finite number greater than 0" },
    { "shift_negative",  30,    -2.0, "--shift -2 must be a finite number greater than 0" },
    { "shift_nan",       30,     NAN, "--shift nan must be a finite number greater than 0" },
    { "shift_huge",      30,     1e9, "--shift 1e+09 rounds the first noise level to 1 in float32 "
                                      "(the solver needs log(1 - sigma)); use a smaller --shift" },
    { "equal_sigmas",    100000, 1000.0,
      "--inference_steps 100000 with --shift 1000 gives equal float32 noise levels at steps " },
};

static int test_schedule_errors(void) {
    for (size_t k = 0; k < sizeof BAD_SCHEDULES / sizeof BAD_SCHEDULES[0]; k++) {
        const struct bad_schedule *b = &BAD_SCHEDULES[k];
        int n = b->steps > 0 && b->steps <= SKY_SAMPLER_MAX_STEPS ? b->steps : 1;
        int64_t *ts = malloc((size_t)n * sizeof *ts);
        float *sg = malloc((size_t)(n + 1) * sizeof *sg);
        sky_err err = { "" };
        sky_status st = sky_sampler_flow_schedule(b->steps, b->shift, ts, sg, &err);
        free(ts);
        free(sg);
        CHECK(st == SKY_ERR, "%s: accepted", b->name);
        CHECK(strncmp(err.msg, b->expect, strlen(b->expect)) == 0, "%s: got \"%s\"", b->name, err.msg);
        /* the same through sky_unipc_init, which must leave a freed struct */
        sky_unipc u;
        err.msg[0] = '\0';
        CHECK(sky_unipc_init(&u, b->steps, b->shift, 4, 0, &err) == SKY_ERR, "%s: init accepted", b->name);
        CHECK(strncmp(err.msg, b->expect, strlen(b->expect)) == 0, "%s: init got \"%s\"", b->name, err.msg);
        CHECK(u.coefs == NULL && u.last == NULL, "%s: init left buffers", b->name);
        sky_unipc_free(&u);
    }
    sky_unipc u;
    sky_err err;
    CHECK(sky_unipc_init(&u, 30, 8.0, 0, 0, &err) == SKY_ERR &&
          strcmp(err.msg, "sampler: a latent of 0 elements") == 0, "n = 0: %s", err.msg);
    return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

static sky_safetensors *open_fixture(const char *path) {
    sky_safetensors *f = NULL;
    sky_err err;
    if (sky_safetensors_open(&f, path, &err) != SKY_OK) {
        printf("FAIL open %s: %s\n", path, err.msg);
        return NULL;
    }
    const char *made_by = sky_safetensors_metadata(f, "made_by");
    printf("     %s: made by %s, diffusers %s, torch %s\n", path, made_by ? made_by : "?",
           sky_safetensors_metadata(f, "diffusers") ? sky_safetensors_metadata(f, "diffusers") : "?",
           sky_safetensors_metadata(f, "torch") ? sky_safetensors_metadata(f, "torch") : "?");
    return f;
}

int main(void) {
    fx_sched = open_fixture(FIXTURES "schedules.safetensors");
    fx_f32   = open_fixture(FIXTURES "trajectories_f32.safetensors");
    fx_bf16  = open_fixture(FIXTURES "trajectories_bf16.safetensors");
    if (!fx_sched || !fx_f32 || !fx_bf16) {
        printf("0 passed, 1 failed\n");
        return 1;
    }
    char cases[32][32], label[96];
    int n = list_cases(fx_sched, cases, 32);
    for (int i = 0; i < n; i++) {
        parse_case(cases[i]);
        snprintf(label, sizeof label, "schedule/%.31s", cases[i]);
        RUN_NAMED(label, test_schedule);
        snprintf(label, sizeof label, "coefs/%.31s", cases[i]);
        RUN_NAMED(label, test_coefs);
        snprintf(label, sizeof label, "coefs_bf16/%.31s", cases[i]);
        RUN_NAMED(label, test_coefs_bf16);
    }
    n = list_cases(fx_f32, cases, 32);
    for (int i = 0; i < n; i++) {
        parse_case(cases[i]);
        snprintf(label, sizeof label, "f32/%.31s", cases[i]);
        RUN_NAMED(label, test_f32);
    }
    n = list_cases(fx_bf16, cases, 32);
    for (int i = 0; i < n; i++) {
        parse_case(cases[i]);
        snprintf(label, sizeof label, "bf16/%.31s", cases[i]);
        RUN_NAMED(label, test_bf16);
    }
    RUN(test_scalar_30_8);
    RUN(test_duplicate_first_timestep);
    RUN(test_last_step_exact);
    RUN(test_reset);
    RUN(test_schedule_errors);
    printf("worst: coefficients rel %.2e, rho abs %.2e (f32); f32 trajectories rel L2 %.2e; bf16 "
           "trajectories rel L2 %.2e, %ld of %ld values not bit-identical; scalar test rel %.2e\n",
           worst.coef_rel, worst.rho_abs, worst.f32_rel,
           worst.bf16_rel, worst.bf16_diff, worst.bf16_total, worst.scalar_rel);
    sky_safetensors_close(fx_sched);
    sky_safetensors_close(fx_f32);
    sky_safetensors_close(fx_bf16);
    return CHECK_SUMMARY();
}
