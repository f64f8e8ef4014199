/* runtime/pipeline/sampler.h — the flow-matching UniPC sampler of SkyReels-V2 (the original's
 * FlowUniPCMultistepScheduler: bh2, solver order 2, predict-x0, lower_order_final, corrector on,
 * final sigma 0), as pure functions plus a small per-latent state; and the flow-match Euler sampler
 * of diffusers (below), with sky_sampler over both for the pipelines.
 *
 * Math and worked numbers: shared/reference/dit-and-sampling.md §6 (schedule §6.1, state machine
 * §6.4, dtypes §6.6). Fixtures: tests/fixtures/sampler/ (diffusers 0.36 UniPCMultistepScheduler,
 * cross-checked against the original scheduler file).
 *
 * Usage (T2V / I2V: one sampler for the whole latent; DF: one per latent frame):
 *
 *     sky_unipc u;
 *     if (sky_unipc_init(&u, steps, shift, n, 0, &err) != SKY_OK) return SKY_ERR;
 *     for (int i = 0; i < steps; i++) {
 *         model(x, u.timesteps[i], v);        // v = model output for the sample x
 *         sky_unipc_step(&u, v, x);           // x <- next sample
 *     }
 *     sky_unipc_free(&u);
 *
 * Arithmetic follows the original operation by operation, so results match it to the last bit
 * except where a library function differs:
 *   - The schedule is computed in float64 exactly as numpy does it (linspace = i*step + start).
 *   - Scalar coefficients (lambda, h, phi, r, rho) are float32, as torch computes them on 0-dim
 *     float32 tensors: every +, -, *, / rounds to float. log and expm1 are computed in double and
 *     rounded to float (torch uses its own vectorised log, which differs from the correctly rounded
 *     value by 1 ulp for a few percent of inputs; effect on samples ~5e-7 relative, see
 *     tests/fixtures/sampler/README.md).
 *   - The 2x2 solve of the order-2 corrector is done as MKL's sgesv does it (LU with partial
 *     pivoting, no FMA, triangular solves multiply by the reciprocal of the pivot); this matched
 *     torch.linalg.solve on the CPU bit for bit on every step of nine schedules.
 *   - Elementwise: each torch op is one rounded float operation; no FMA. This relies on ISO C
 *     floating-point contraction being off (gcc's default with -std=c11, not with -std=gnu11 on
 *     an FMA target); the tests would show the difference.
 *
 * First-step index quirk (reference §6.1 item 5, §11.12): the original finds its start index by
 * looking up timesteps[0] and takes the SECOND match when it occurs twice (t_0 == t_1 == 999: from
 * 144 steps at shift 8, 251 at shift 5, 501 at shift 3). It then skips one step and fails its own `this_order > 0`
 * assertion on the last call, so for those settings the original produces no video at all. This
 * port always starts at index 0 and runs every step; sky_sampler_original_start_index() tells a
 * caller when the original would have differed (the CLI may print a note).
 */
#ifndef SKY_SAMPLER_H
#define SKY_SAMPLER_H

#include "core/status.h"

/* Largest step count accepted (memory bound only; the schedule check below is what matters). */
#define SKY_SAMPLER_MAX_STEPS 100000

/* Flow schedule of the original set_timesteps(steps, shift), reference §6.1:
 *   s_i = linspace(fp32(0.999), 0, steps+1)[i] in float64, sigma_i = shift*s_i / (1 + (shift-1)*s_i),
 *   timesteps[i] = trunc(sigma_i * 1000)   for i in [0, steps),
 *   sigmas[i] = fp32(sigma_i), sigmas[steps] = 0.
 * timesteps holds steps entries, sigmas steps + 1. Fails (naming --inference_steps / --shift) when
 * steps is outside [1, SKY_SAMPLER_MAX_STEPS], shift is not a finite number > 0, or the float32
 * sigmas are not strictly decreasing inside (0, 1) (a huge --shift rounds sigma_0 to 1, too many
 * steps make two sigmas equal: both would divide by zero in the solver). */
sky_status sky_sampler_flow_schedule(int steps, double shift, int64_t *timesteps, float *sigmas, sky_err *err);

/* The start index the original's index_for_timestep(timesteps[0]) picks: 1 when timesteps[0]
 * occurs more than once, else 0 (see the quirk above). This port always starts at 0. */
int sky_sampler_original_start_index(const int64_t *timesteps, int steps);

/* Scalar coefficients of one step() call i (reference §6.4). The elementwise update is
 *   m        = x - sigma*v
 *   corrector (c_order > 0), with M1 = previous x0, M0 = the one before, xl = last sample:
 *     base   = (c_ratio*xl) - (c_a*M1)                 ; c_ratio*xl rounded to bf16 in bf16 mode
 *                                                          (and c_ratio is then itself a bf16 value)
 *     order 1: x = base - c_a*(c_rho[0]*(m - M1))
 *     order 2: x = base - c_a*((c_rho[0]*((M0 - M1)/c_r)) + (c_rho[1]*(m - M1)))
 *     (x rounded to bf16 in bf16 mode)
 *   history  M0 = M1, M1 = m, xl = x
 *   predictor, with the new M0, M1:
 *     p_final: x' = M1 (sigma_{i+1} = 0: h = inf, phi = -1; computed exactly, no log(0))
 *     base   = (p_ratio*x) - (p_a*M1)                  ; p_ratio*x rounded to bf16 in bf16 mode
 *     order 1: x' = base
 *     order 2: x' = base - p_a*(0.5*((M0 - M1)/p_r))
 *     (x' rounded to bf16 in bf16 mode)
 * Each parenthesised operation is one float rounding, in this order. The original multiplies by
 * alpha*phi and by alpha*B separately; for bh2 B = phi, so both are c_a (p_a). */
typedef struct sky_unipc_coefs {
    float sigma;    /* sigma_i: x0 prediction m = x - sigma*v */
    int   c_order;  /* corrector order: 0 at step 0 (no corrector), then 1, then 2 */
    float c_h;      /* lambda_i - lambda_{i-1} */
    float c_phi;    /* expm1(-c_h) (= B for bh2) */
    float c_r;      /* order 2: (lambda_{i-2} - lambda_{i-1}) / c_h */
    float c_rho[2]; /* order 1: {0.5, 0}; order 2: solve [[1,1],[r,1]] rho = b (bf16-rounded in bf16 mode) */
    float c_ratio;  /* sigma_i / sigma_{i-1} (bf16-rounded in bf16 mode) */
    float c_a;      /* alpha_i * c_phi */
    int   p_order;  /* predictor order: 1 at step 0 and the last step, else 2 */
    int   p_final;  /* 1 when sigma_{i+1} == 0 (last step) */
    float p_h;      /* lambda_{i+1} - lambda_i (inf when p_final) */
    float p_phi;    /* expm1(-p_h) (-1 when p_final) */
    float p_r;      /* order 2: (lambda_{i-1} - lambda_i) / p_h */
    float p_ratio;  /* sigma_{i+1} / sigma_i (bf16-rounded in bf16 mode) */
    float p_a;      /* alpha_{i+1} * p_phi */
} sky_unipc_coefs;

/* Coefficients of call i in [0, steps) for a schedule from sky_sampler_flow_schedule()
 * (sigmas: steps + 1 entries). bf16 = 1 gives the values torch really multiplies a bf16 latent
 * with: the corrector's rho rounded to bf16 (`.to(x.dtype)`, reference §6.6) and the two sigma
 * ratios rounded to bf16 (a 0-dim float32 tensor times a bf16 tensor is computed in bf16; the
 * reference does not mention this rounding). Pure; no validation beyond asserts. */
void sky_unipc_coefs_at(const float *sigmas, int steps, int i, int bf16, sky_unipc_coefs *out);

/* Sampler state for one independent latent of n floats. All buffers are owned. */
typedef struct sky_unipc {
    int              steps;     /* N */
    int              done;      /* calls made so far, 0..N; the next call uses timesteps[done] */
    int              bf16;      /* 1: bf16 latent state (original DF path), 0: fp32 everywhere */
    size_t           n;         /* elements per sample */
    int64_t         *timesteps; /* [N]: the model's timestep for each call */
    float           *sigmas;    /* [N + 1], last 0 */
    sky_unipc_coefs *coefs;     /* [N] */
    float           *m_prev;    /* [n] x0 prediction of the call before last (M[0]) */
    float           *m_last;    /* [n] x0 prediction of the last call (M[1]) */
    float           *last;      /* [n] the (corrected) sample the last predictor started from */
} sky_unipc;

/* Compute the schedule and coefficients and allocate the three history buffers.
 * bf16_state = 1 reproduces the original diffusion-forcing dtype path (latent bf16: the sample is
 * read as bf16; the sigma ratio is rounded to bf16, multiplied by the sample and the product
 * rounded to bf16; rho rounded to bf16; each result rounded to bf16; x0 predictions stay fp32);
 * 0 keeps everything fp32 (T2V/I2V, and diffusers' DF). Errors: those of
 * sky_sampler_flow_schedule(), n == 0, out of memory. On error u is left freed (safe to _free). */
sky_status sky_unipc_init(sky_unipc *u, int steps, double shift, size_t n, int bf16_state, sky_err *err);

/* Forget the history: the next call is step 0 again (same schedule, buffers kept). */
void sky_unipc_reset(sky_unipc *u);

/* One step: v[n] is the model output for the sample x[n] (the sample handed to the model at
 * timesteps[done]); x is overwritten with the next sample. In bf16 mode x is read rounded to bf16
 * and written as bf16-representable floats. Calling it more than N times is a bug (asserts). */
void sky_unipc_step(sky_unipc *u, const float *v, float *x);

/* Free the buffers; u is zeroed. Safe on a zeroed or already freed struct. */
void sky_unipc_free(sky_unipc *u);

/* ---- flow-match Euler (--sample_solver euler) ------------------------------------------------
 *
 * diffusers 0.36 FlowMatchEulerDiscreteScheduler(shift=shift) with its defaults (num_train_timesteps 1000, no
 * dynamic shifting, no terminal stretch, deterministic), as step- and CFG-distilled LoRAs are run
 * (shared/reference/round2-features.md §4). Fixture: tests/fixtures/sampler/euler.safetensors, made by the
 * scheduler itself. In diffusion forcing each latent frame's sampler steps through its own sigmas, and the
 * step matrix feeds the model 1000 sigma as T2V does (diffusers' DF pipeline has no peer: its step matrix
 * truncates the timesteps to int64, which FlowMatchEulerDiscreteScheduler.step then refuses). */

/* Schedule of set_timesteps(steps), §4.1-4.2, to the last bit:
 *   constructor, float32 ops: sigma_min = sh(fp32(1/1000)) with sh(s) = (shift*s) / (1 + (shift-1)*s)
 *   u_i = linspace(1000, 1000*sigma_min, steps)[i] in float64 (i*step + start, the last = stop),
 *   sigmas[i] = fp32(sh(u_i / 1000)) in float64 ops (the shift is applied a second time),
 *   timesteps[i] = fp32(sigmas[i] * 1000) (not rounded to an integer), sigmas[steps] = 0.
 * timesteps holds steps entries, sigmas steps + 1. Fails (naming --inference_steps / --shift) when steps is
 * outside [1, SKY_SAMPLER_MAX_STEPS] or shift is not a finite number > 0. */
sky_status sky_sampler_euler_schedule(int steps, double shift, float *timesteps, float *sigmas, sky_err *err);

/* One Euler step of n elements: x <- x + (sigma_next - sigma) * v, each operation one float32 rounding
 * (the scheduler's `sample + dt * model_output` on fp32 tensors). */
void sky_euler_step(float sigma, float sigma_next, const float *v, float *x, size_t n);

/* ---- the sampler the pipelines use: either solver ------------------------------------------- */

typedef enum sky_solver { SKY_SOLVER_UNIPC = 0, SKY_SOLVER_EULER = 1 } sky_solver;

/* "unipc" or "euler" into *out; SKY_ERR naming --sample_solver for anything else. */
sky_status  sky_solver_parse(const char *s, sky_solver *out, sky_err *err);
const char *sky_solver_name(sky_solver s);

/* One latent of n floats under either solver. timesteps[i] is what the model is fed at call i: UniPC's
 * integers, or Euler's 1000 sigma_i. */
typedef struct sky_sampler {
    sky_solver solver;
    int        steps;     /* N */
    int        done;      /* calls made so far */
    size_t     n;         /* elements per latent */
    double    *timesteps; /* [N] */
    float     *sigmas;    /* Euler: [N + 1], last 0 */
    sky_unipc  unipc;     /* UniPC: its state (unipc.last is what the original's DF quirk overwrites) */
} sky_sampler;

/* Schedule, coefficients and history for `solver`; errors those of the solver's schedule, n == 0, out of
 * memory. On error s is left freed. */
sky_status sky_sampler_init(sky_sampler *s, sky_solver solver, int steps, double shift, size_t n, sky_err *err);

/* One step: v[n] is the model output for the sample x[n] fed at timesteps[done]; x becomes the next
 * sample. More than N calls is a bug (asserts). */
void sky_sampler_step(sky_sampler *s, const float *v, float *x);

/* Free; s is zeroed. Safe on a zeroed or freed struct. */
void sky_sampler_free(sky_sampler *s);

#endif /* SKY_SAMPLER_H */
