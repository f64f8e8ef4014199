/* runtime/models/teacache.h — TeaCache (shared/reference/dit-and-sampling.md §8): on some calls of the DiT
 * the attention blocks are skipped and the residual they added on an earlier call is added instead.
 *
 * As the original (`initialize_teacache` and the forward of skyreels_v2_infer/modules/transformer.py):
 *   - calls are counted; an even count is a conditional pass, an odd one an unconditional pass, and each
 *     parity keeps its own state (the previous probe, the accumulated distance, the residual);
 *   - the probe is the time embedding e, or e0 (with the fps term) when use_ret_steps;
 *   - rel = mean|probe - previous| / mean|previous|, rescaled by the spec's polynomial (highest power
 *     first) and accumulated; the blocks run while the count is in the warm-up window (ret_steps calls:
 *     2, or 10 with use_ret_steps) or past cutoff, or when the accumulated value reaches the threshold
 *     (which resets it); otherwise they are skipped;
 *   - the counter returns to 0 when it reaches num_steps (so with classifier-free guidance, two calls
 *     per step, it wraps half way through the run and the warm-up window runs again: a quirk of the
 *     original, kept for parity).
 * One deliberate difference: where the original would fail on a shape mismatch (a probe or residual of
 * another size than the call's: the asynchronous diffusion-forcing windows, the shorter last window of
 * a long video), the blocks run and the state of that parity restarts there.
 */
#ifndef SKY_TEACACHE_H
#define SKY_TEACACHE_H

#include <stddef.h>

#include "models/program.h"
#include "core/status.h"

typedef struct sky_teacache {
    double    thresh;
    int       use_ret_steps; /* 1: the probe is e0, else e */
    double    coef[5];
    int       num_steps, ret_steps, cutoff_steps;
    int       cnt;               /* calls since the last wrap */
    double    acc[2];            /* accumulated rescaled distance, per parity */
    float    *prev[2];           /* the previous probe of each parity */
    size_t    prev_n[2];         /* its length (0: none yet) */
    size_t    cap;               /* capacity of prev[] */
    long long res_tokens[2];     /* tokens of the residual the backend keeps per parity (0: none) */
    long long computed, skipped; /* calls so far */
} sky_teacache;

/* TeaCache inside one forward (sky_dit_forward, and the CUDA plugin's): after the embed part the backend hands decide the
 * probe of the call (n values of e, or of e0 when use_e0) and its token count; decide returns 1 to run the
 * blocks (the backend then keeps hidden - tokens as the residual of *slot, 0 or 1), 0 to add the residual
 * kept for *slot to the tokens in their place. */
typedef struct sky_dit_skip {
    int use_e0;
    int (*decide)(void *ctx, const float *probe, size_t n, long long tokens, int *slot);
    void *ctx;
} sky_dit_skip;

/* TeaCache for program p with threshold thresh (> 0) over runs of num_steps calls (the original's
 * num_steps: --inference_steps, or the DF count of §8). An error names the spec when p has no
 * coefficients. */
sky_status sky_teacache_init(sky_teacache *tc, const sky_dit_program *p, const char *variant, double thresh,
                             int use_ret_steps, int num_steps, sky_err *err);
/* A new num_steps (the original sets it per long-video window when ar_step > 0); the rest is kept. */
void sky_teacache_set_steps(sky_teacache *tc, int num_steps);

/* The decision for the next call, whose probe (n values) and token count are given: *parity gets the
 * call's parity (0 conditional, 1 unconditional). Returns 1 if the blocks must run (the backend then keeps
 * hidden - tokens as that parity's residual), 0 to add that parity's residual to the tokens instead.
 * Advances the counter. A sky_dit_skip's decide (models/cuda_abi.h) with ctx = tc. */
int sky_teacache_decide(void *tc, const float *probe, size_t n, long long tokens, int *parity);

/* One line for stderr: calls computed and skipped. */
void sky_teacache_summary(const sky_teacache *tc, char *buf, size_t size);

void sky_teacache_free(sky_teacache *tc);

#endif /* SKY_TEACACHE_H */
