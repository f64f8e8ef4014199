/* runtime/models/teacache.c — TeaCache's decisions (teacache.h); the backends do the skipping (dit.c, dit_cuda.c). */
#include "models/teacache.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

sky_status sky_teacache_init(sky_teacache *tc, const sky_dit_program *p, const char *variant, double thresh,
                             int use_ret_steps, int num_steps, sky_err *err)
{
    memset(tc, 0, sizeof *tc);
    if (!p->has_teacache)
        return sky_fail(err,
                        "--teacache: variant %s has no TeaCache coefficients (its spec has no teacache "
                        "section; see specs/README.md)",
                        variant);
    if (!(thresh > 0.0) || !isfinite(thresh))
        return sky_fail(err, "--teacache_thresh %g: must be a number above 0 (the original's default is 0.2)", thresh);
    if (num_steps < 1) return sky_fail(err, "TeaCache: %d steps; need at least 1", num_steps);
    tc->thresh = thresh;
    tc->use_ret_steps = use_ret_steps ? 1 : 0;
    memcpy(tc->coef, p->teacache_coef[tc->use_ret_steps], sizeof tc->coef);
    tc->cap = (size_t)p->max_frames * (size_t)p->dim * (tc->use_ret_steps ? 6u : 1u);
    for (int i = 0; i < 2; i++) {
        tc->prev[i] = malloc(tc->cap * sizeof(float));
        if (!tc->prev[i]) {
            sky_teacache_free(tc);
            return sky_fail(err, "out of host memory for TeaCache");
        }
    }
    sky_teacache_set_steps(tc, num_steps);
    return SKY_OK;
}

void sky_teacache_set_steps(sky_teacache *tc, int num_steps)
{
    tc->num_steps = num_steps;
    tc->ret_steps = tc->use_ret_steps ? 5 * 2 : 1 * 2;
    tc->cutoff_steps = tc->use_ret_steps ? num_steps * 2 : num_steps * 2 - 2;
}

/* c0 x^4 + c1 x^3 + c2 x^2 + c3 x + c4 (numpy.poly1d's order), Horner. */
static double rescale(const double *c, double x)
{
    double y = c[0];
    for (int i = 1; i < 5; i++) y = y * x + c[i];
    return y;
}

int sky_teacache_decide(void *opaque, const float *probe, size_t n, long long tokens, int *parity)
{
    sky_teacache *tc = opaque;
    const int     par = tc->cnt % 2;
    int           calc;
    SKY_ASSERT(n <= tc->cap);
    if (tc->cnt < tc->ret_steps || tc->cnt >= tc->cutoff_steps) {
        calc = 1;
        tc->acc[par] = 0.0;
    } else if (tc->prev_n[par] != n || tc->res_tokens[par] != tokens) {
        calc = 1; /* another shape than the state's: the original would fail */
        tc->acc[par] = 0.0;
    } else {
        double num = 0.0, den = 0.0;
        for (size_t i = 0; i < n; i++) {
            num += fabs((double)probe[i] - (double)tc->prev[par][i]);
            den += fabs((double)tc->prev[par][i]);
        }
        tc->acc[par] += rescale(tc->coef, (num / (double)n) / (den / (double)n));
        if (tc->acc[par] < tc->thresh) {
            calc = 0;
        } else {
            calc = 1;
            tc->acc[par] = 0.0;
        }
    }
    memcpy(tc->prev[par], probe, n * sizeof(float));
    tc->prev_n[par] = n;
    if (calc) tc->res_tokens[par] = tokens;
    if (calc)
        tc->computed++;
    else
        tc->skipped++;
    tc->cnt += 1;
    if (tc->cnt >= tc->num_steps) tc->cnt = 0;
    *parity = par;
    return calc;
}

void sky_teacache_summary(const sky_teacache *tc, char *buf, size_t size)
{
    const long long all = tc->computed + tc->skipped;
    snprintf(buf, size, "teacache: %lld of %lld DiT calls skipped the blocks (threshold %g, %s)", tc->skipped, all,
             tc->thresh, tc->use_ret_steps ? "e0, use_ret_steps" : "e");
}

void sky_teacache_free(sky_teacache *tc)
{
    for (int i = 0; i < 2; i++) {
        free(tc->prev[i]);
        tc->prev[i] = NULL;
    }
}
