/* runtime/pipeline/sampler.c — flow-matching UniPC (bh2, order 2, predict-x0) and flow-match Euler; see
 * sampler.h, shared/reference/dit-and-sampling.md §6 and round2-features.md §4. The scalar code mirrors the
 * torch expressions one operation at a time (the torch line is quoted where the order matters). */
#include "pipeline/sampler.h"

#include "core/dtype.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* Every float operation below must round on its own, as torch's separate kernels do: no fused
 * multiply-add. gcc keeps contraction off in ISO C mode (-std=c11); clang contracts within an
 * expression unless told not to. */
#if defined(__clang__)
#pragma STDC FP_CONTRACT OFF
#endif

/* ---- scalar helpers -------------------------------------------------------------------- */

/* float32 log / expm1 of a float32 value: computed in double, rounded once to float. */
static float log_f32(float x) { return (float)log((double)x); }
static float expm1_f32(float x) { return (float)expm1((double)x); }

/* Round to the nearest bf16 value (ties to even), kept in a float. */
static float bf16_round(float x) { return sky_bf16_to_f32(sky_f32_to_bf16(x)); }

/* The factor that multiplies the latent in `sigma_t / sigma_s0 * x`. With a bf16 latent torch
 * casts the 0-dim float32 ratio to bf16 before multiplying (TensorIterator promotes CPU scalars to
 * the common dtype), so the ratio itself is rounded; the product is then rounded to bf16 again. */
static float ratio_for(float ratio, int bf16) { return bf16 ? bf16_round(ratio) : ratio; }

/* lambda = log(alpha) - log(sigma) with alpha = 1 - sigma, all float32:
 *   `lambda_t = torch.log(alpha_t) - torch.log(sigma_t)` */
static float lambda_of(float sigma)
{
    float alpha = 1.0f - sigma;
    return log_f32(alpha) - log_f32(sigma);
}

/* Solve [[1, 1], [r, 1]] rho = [b1, b2] in float32 the way torch.linalg.solve does on the CPU
 * (MKL sgesv): partial pivoting (swap when |r| > 1), L multiplier = a21 * (1/a11), no FMA, and the
 * triangular solves multiply by the reciprocal of each pivot. */
static void solve2(float r, float b1, float b2, float rho[2])
{
    float a11 = 1.0f, a12 = 1.0f, a21 = r, a22 = 1.0f, c1 = b1, c2 = b2;
    if (fabsf(r) > 1.0f) { /* row 2 becomes the pivot row */
        a11 = r;
        a12 = 1.0f;
        a21 = 1.0f;
        a22 = 1.0f;
        c1 = b2;
        c2 = b1;
    }
    float l = a21 * (1.0f / a11);
    float u22 = a22 - l * a12;
    float y2 = c2 - l * c1;
    float x2 = y2 * (1.0f / u22);
    float x1 = (c1 - a12 * x2) * (1.0f / a11);
    rho[0] = x1;
    rho[1] = x2;
}

/* ---- schedule ---------------------------------------------------------------------------- */

sky_status sky_sampler_flow_schedule(int steps, double shift, int64_t *timesteps, float *sigmas, sky_err *err)
{
    if (steps < 1 || steps > SKY_SAMPLER_MAX_STEPS)
        return sky_fail(err, "--inference_steps %d must be between 1 and %d", steps, SKY_SAMPLER_MAX_STEPS);
    if (!isfinite(shift) || !(shift > 0.0))
        return sky_fail(err, "--shift %g must be a finite number greater than 0", shift);

    /* The constructor's sigma table is float32: sigma_max = fp32(1 - 0.001), sigma_min = 0.
     * np.linspace(a, b, n) = arange(n) * ((b - a)/(n - 1)) + a, in float64. */
    const double sigma_max = (double)0.999f;
    const double step = (0.0 - sigma_max) / (double)steps;
    for (int i = 0; i < steps; i++) {
        double s = (double)i * step + sigma_max;
        double sig = shift * s / (1.0 + (shift - 1.0) * s);
        timesteps[i] = (int64_t)(sig * 1000.0); /* torch .to(int64) truncates */
        sigmas[i] = (float)sig;
    }
    sigmas[steps] = 0.0f;

    /* The solver takes log(1 - sigma) and log(sigma) and divides by their differences. */
    if (!(sigmas[0] < 1.0f))
        return sky_fail(err,
                        "--shift %g rounds the first noise level to 1 in float32 (the solver "
                        "needs log(1 - sigma)); use a smaller --shift",
                        shift);
    for (int i = 0; i < steps; i++) {
        if (!(sigmas[i] > 0.0f))
            return sky_fail(err,
                            "--inference_steps %d with --shift %g gives a noise level of 0 at "
                            "step %d before the last step",
                            steps, shift, i);
        if (i > 0 && !(sigmas[i] < sigmas[i - 1]))
            return sky_fail(err,
                            "--inference_steps %d with --shift %g gives equal float32 noise "
                            "levels at steps %d and %d (%.9g); use fewer steps or another shift",
                            steps, shift, i - 1, i, (double)sigmas[i]);
    }
    return SKY_OK;
}

int sky_sampler_original_start_index(const int64_t *timesteps, int steps)
{
    int matches = 0;
    for (int i = 0; i < steps; i++) matches += timesteps[i] == timesteps[0];
    return matches > 1 ? 1 : 0;
}

/* ---- coefficients ------------------------------------------------------------------------ */

void sky_unipc_coefs_at(const float *sigmas, int steps, int i, int bf16, sky_unipc_coefs *c)
{
    SKY_ASSERT(i >= 0 && i < steps);
    memset(c, 0, sizeof *c);
    c->sigma = sigmas[i];

    /* Orders (lower_order_final, warm-up): predictor min(2, N - i, i + 1); the corrector of
     * call i uses the previous call's predictor order. */
    c->p_order = (i == 0 || i == steps - 1) ? 1 : 2;
    c->c_order = i == 0 ? 0 : (i == 1 ? 1 : 2);

    /* UniC: from sigma_{i-1} to sigma_i, both > 0. */
    if (c->c_order > 0) {
        float ls0 = lambda_of(sigmas[i - 1]);
        float h = lambda_of(sigmas[i]) - ls0;
        float hh = -h;             /* predict_x0 */
        float phi = expm1_f32(hh); /* h_phi_1 = B_h (bh2) */
        float alpha = 1.0f - sigmas[i];
        c->c_h = h;
        c->c_phi = phi;
        c->c_ratio = ratio_for(sigmas[i] / sigmas[i - 1], bf16);
        c->c_a = alpha * phi;
        if (c->c_order == 1) {
            c->c_rho[0] = 0.5f; /* `rhos_c = torch.tensor([0.5])` */
        } else {
            c->c_r = (lambda_of(sigmas[i - 2]) - ls0) / h;
            /* `h_phi_k = h_phi_1 / hh - 1`; b_k = h_phi_k * k! / B_h;
             * `h_phi_k = h_phi_k / hh - 1 / factorial_i` */
            float hk1 = phi / hh - 1.0f;
            float b1 = hk1 / phi; /* hk1 * 1 is exact */
            float hk2 = hk1 / hh - 0.5f;
            float b2 = (hk2 * 2.0f) / phi;
            solve2(c->c_r, b1, b2, c->c_rho);
            if (bf16) { /* `.to(x.dtype)` */
                c->c_rho[0] = bf16_round(c->c_rho[0]);
                c->c_rho[1] = bf16_round(c->c_rho[1]);
            }
        }
    }

    /* UniP: from sigma_i to sigma_{i+1}; the last target is sigma_N = 0. */
    float alpha_t = 1.0f - sigmas[i + 1];
    if (sigmas[i + 1] == 0.0f) {
        /* lambda = +inf, h = +inf, phi = expm1(-inf) = -1: x' = 0*x + 1*m0, done exactly. */
        c->p_final = 1;
        c->p_h = INFINITY;
        c->p_phi = -1.0f;
        c->p_ratio = 0.0f;
        c->p_a = -alpha_t;
        return;
    }
    float ls0 = lambda_of(sigmas[i]);
    float h = lambda_of(sigmas[i + 1]) - ls0;
    float phi = expm1_f32(-h);
    c->p_h = h;
    c->p_phi = phi;
    c->p_ratio = ratio_for(sigmas[i + 1] / sigmas[i], bf16);
    c->p_a = alpha_t * phi;
    if (c->p_order == 2) c->p_r = (lambda_of(sigmas[i - 1]) - ls0) / h;
}

/* ---- state ------------------------------------------------------------------------------- */

void sky_unipc_free(sky_unipc *u)
{
    free(u->timesteps);
    free(u->sigmas);
    free(u->coefs);
    free(u->m_prev);
    free(u->m_last);
    free(u->last);
    memset(u, 0, sizeof *u);
}

sky_status sky_unipc_init(sky_unipc *u, int steps, double shift, size_t n, int bf16_state, sky_err *err)
{
    memset(u, 0, sizeof *u);
    if (n == 0) return sky_fail(err, "sampler: a latent of 0 elements");
    /* steps and shift are checked before anything is written, so NULL buffers are fine here */
    if (steps < 1 || steps > SKY_SAMPLER_MAX_STEPS || !isfinite(shift) || !(shift > 0.0))
        return sky_sampler_flow_schedule(steps, shift, NULL, NULL, err);

    u->steps = steps;
    u->bf16 = bf16_state != 0;
    u->n = n;
    u->timesteps = malloc((size_t)steps * sizeof *u->timesteps);
    u->sigmas = malloc((size_t)(steps + 1) * sizeof *u->sigmas);
    u->coefs = malloc((size_t)steps * sizeof *u->coefs);
    /* zeroed: M[0] is read (and discarded) before it holds a prediction */
    u->m_prev = calloc(n, sizeof *u->m_prev);
    u->m_last = calloc(n, sizeof *u->m_last);
    u->last = calloc(n, sizeof *u->last);
    if (!u->timesteps || !u->sigmas || !u->coefs || !u->m_prev || !u->m_last || !u->last) {
        sky_unipc_free(u);
        return sky_fail(err, "sampler: out of memory for %d steps and 3 x %zu floats of history", steps, n);
    }
    if (sky_sampler_flow_schedule(steps, shift, u->timesteps, u->sigmas, err) != SKY_OK) {
        sky_unipc_free(u);
        return SKY_ERR;
    }
    for (int i = 0; i < steps; i++) sky_unipc_coefs_at(u->sigmas, steps, i, u->bf16, &u->coefs[i]);
    return SKY_OK;
}

void sky_unipc_reset(sky_unipc *u) { u->done = 0; }

/* One call, element by element (fp32 or bf16 latent state; reference §6.4 and §6.6). Every
 * expression below is one torch op of the original, in its order. */
void sky_unipc_step(sky_unipc *u, const float *v, float *x)
{
    SKY_ASSERT(u->done < u->steps);
    const sky_unipc_coefs *c = &u->coefs[u->done];
    const int              bf = u->bf16;
    float                 *mp = u->m_prev, *ml = u->m_last, *xl = u->last;

    for (size_t j = 0; j < u->n; j++) {
        float xj = bf ? bf16_round(x[j]) : x[j];
        float m = xj - c->sigma * v[j]; /* `sample - sigma_t * model_output` */

        /* UniC: correct the sample the model saw, using its x0 prediction m */
        if (c->c_order > 0) {
            float t1 = c->c_ratio * xl[j]; /* `sigma_t / sigma_s0 * x` */
            if (bf) t1 = bf16_round(t1);   /* bf16 x bf16 -> bf16 */
            float base = t1 - c->c_a * ml[j];
            float dt = m - ml[j]; /* `D1_t = model_t - m0` */
            float res;
            if (c->c_order == 1) {
                res = c->c_rho[0] * dt;
            } else {
                float d1 = (mp[j] - ml[j]) / c->c_r; /* `(mi - m0) / rk` */
                res = c->c_rho[0] * d1 + c->c_rho[1] * dt;
            }
            xj = base - c->c_a * res;
            if (bf) xj = bf16_round(xj);
        }

        /* history: M <- [M[1], m]; last_sample <- corrected sample */
        float m_older = ml[j];
        mp[j] = m_older;
        ml[j] = m;
        xl[j] = xj;

        /* UniP: to the next noise level */
        float out;
        if (c->p_final) {
            out = m;
        } else {
            float t1 = c->p_ratio * xj;
            if (bf) t1 = bf16_round(t1);
            out = t1 - c->p_a * m;
            if (c->p_order == 2) {
                float d1 = (m_older - m) / c->p_r;
                out = out - c->p_a * (0.5f * d1); /* `rhos_p = 0.5` */
            }
        }
        x[j] = bf ? bf16_round(out) : out;
    }
    u->done++;
}

/* ---- flow-match Euler --------------------------------------------------------------------- */

sky_status sky_sampler_euler_schedule(int steps, double shift, float *timesteps, float *sigmas, sky_err *err)
{
    if (steps < 1 || steps > SKY_SAMPLER_MAX_STEPS)
        return sky_fail(err, "--inference_steps %d must be between 1 and %d", steps, SKY_SAMPLER_MAX_STEPS);
    if (!isfinite(shift) || !(shift > 0.0))
        return sky_fail(err, "--shift %g must be a finite number greater than 0", shift);
    /* Constructor: sigmas = t / 1000 for t = 1000 .. 1 (float32), shifted in float32 ops:
     * `shift * sigmas / (1 + (shift - 1) * sigmas)`; sigma_min is the last (t = 1). */
    const float s1 = 1.0f / 1000.0f, fshift = (float)shift;
    const float sigma_min = (fshift * s1) / (1.0f + (float)(shift - 1.0) * s1);
    const float sigma_max = (fshift * 1.0f) / (1.0f + (float)(shift - 1.0) * 1.0f);
    if (!timesteps) return SKY_OK;
    /* set_timesteps: np.linspace(sigma_max * 1000, sigma_min * 1000, steps) in float64, / 1000, shifted
     * again in float64, then float32. */
    const double start = (double)sigma_max * 1000.0, stop = (double)sigma_min * 1000.0;
    const double step = steps > 1 ? (stop - start) / (double)(steps - 1) : 0.0;
    for (int i = 0; i < steps; i++) {
        const double u = (steps > 1 && i == steps - 1) ? stop : (double)i * step + start;
        const double sg = u / 1000.0;
        sigmas[i] = (float)(shift * sg / (1.0 + (shift - 1.0) * sg));
        timesteps[i] = sigmas[i] * 1000.0f; /* `sigmas * num_train_timesteps`, a float32 op */
    }
    sigmas[steps] = 0.0f;
    return SKY_OK;
}

void sky_euler_step(float sigma, float sigma_next, const float *v, float *x, size_t n)
{
    const float dt = sigma_next - sigma; /* `dt = sigma_next - sigma` (0-dim float32) */
    for (size_t j = 0; j < n; j++) x[j] = x[j] + dt * v[j];
}

/* ---- either solver ------------------------------------------------------------------------- */

sky_status sky_solver_parse(const char *s, sky_solver *out, sky_err *err)
{
    if (strcmp(s, "unipc") == 0)
        *out = SKY_SOLVER_UNIPC;
    else if (strcmp(s, "euler") == 0)
        *out = SKY_SOLVER_EULER;
    else
        return sky_fail(err, "--sample_solver %s: unknown solver (unipc or euler)", s);
    return SKY_OK;
}

const char *sky_solver_name(sky_solver s) { return s == SKY_SOLVER_EULER ? "euler" : "unipc"; }

void sky_sampler_free(sky_sampler *s)
{
    free(s->timesteps);
    free(s->sigmas);
    sky_unipc_free(&s->unipc);
    memset(s, 0, sizeof *s);
}

sky_status sky_sampler_init(sky_sampler *s, sky_solver solver, int steps, double shift, size_t n, sky_err *err)
{
    memset(s, 0, sizeof *s);
    s->solver = solver;
    s->steps = steps;
    s->n = n;
    if (solver == SKY_SOLVER_UNIPC) {
        if (sky_unipc_init(&s->unipc, steps, shift, n, 0, err)) return SKY_ERR;
    } else {
        if (n == 0) return sky_fail(err, "sampler: a latent of 0 elements");
        if (sky_sampler_euler_schedule(steps, shift, NULL, NULL, err)) return SKY_ERR; /* checks only */
        s->sigmas = malloc((size_t)(steps + 1) * sizeof *s->sigmas);
    }
    s->timesteps = malloc((size_t)steps * sizeof *s->timesteps);
    float *t32 = solver == SKY_SOLVER_EULER ? malloc((size_t)steps * sizeof *t32) : NULL;
    if (!s->timesteps || (solver == SKY_SOLVER_EULER && (!s->sigmas || !t32))) {
        free(t32);
        sky_sampler_free(s);
        return sky_fail(err, "sampler: out of memory for %d steps", steps);
    }
    if (solver == SKY_SOLVER_EULER) {
        sky_sampler_euler_schedule(steps, shift, t32, s->sigmas, err);
        for (int i = 0; i < steps; i++) s->timesteps[i] = (double)t32[i];
    } else {
        for (int i = 0; i < steps; i++) s->timesteps[i] = (double)s->unipc.timesteps[i];
    }
    free(t32);
    return SKY_OK;
}

void sky_sampler_step(sky_sampler *s, const float *v, float *x)
{
    SKY_ASSERT(s->done < s->steps);
    if (s->solver == SKY_SOLVER_UNIPC)
        sky_unipc_step(&s->unipc, v, x);
    else
        sky_euler_step(s->sigmas[s->done], s->sigmas[s->done + 1], v, x, s->n);
    s->done++;
}
