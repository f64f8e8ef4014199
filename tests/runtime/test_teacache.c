/* tests/runtime/test_teacache.c — TeaCache's decisions (runtime/models/teacache.h), on sequences whose outcome is
 * worked out by hand below from the original's rules (reference dit-and-sampling.md §8). The numbers of the
 * skipping against the original code itself: tests/numeric/run_teacache.sh. */
#include <math.h>
#include <string.h>

#include "check.h"
#include "models/teacache.h"

/* A program with TeaCache coefficients: dim 2, up to 3 frames; poly(x) = c4 + c3 x (the rest 0). */
static sky_dit_program program(double c3, double c4)
{
    sky_dit_program p;
    memset(&p, 0, sizeof p);
    p.dim = 2;
    p.max_frames = 3;
    p.has_teacache = 1;
    const double row[5] = { 0, 0, 0, c3, c4 };
    memcpy(p.teacache_coef[0], row, sizeof row);
    memcpy(p.teacache_coef[1], row, sizeof row);
    return p;
}

/* Warm-up window, then a constant probe (distance 0, increment c4 = 0.1, threshold 0.25): the calls of each
 * parity accumulate 0.1, 0.2 (skip, skip), 0.3 (compute, reset). Calls 2..5 skip, 6 and 7 compute. */
static int test_constant_probe(void)
{
    sky_dit_program p = program(0.0, 0.1);
    sky_teacache tc;
    sky_err err;
    CHECK(sky_teacache_init(&tc, &p, "v", 0.25, 0, 100, &err) == SKY_OK, "%s", err.msg);
    const int want[10] = { 1, 1, 0, 0, 0, 0, 1, 1, 0, 0 };
    const float probe[2] = { 1.0f, -2.0f };
    for (int k = 0; k < 10; k++) {
        int par = -1;
        const int got = sky_teacache_decide(&tc, probe, 2, 8, &par);
        CHECK(got == want[k] && par == k % 2, "call %d: decided %d (want %d), parity %d", k, got, want[k], par);
    }
    CHECK(tc.computed == 4 && tc.skipped == 6, "computed %lld skipped %lld", tc.computed, tc.skipped);
    sky_teacache_free(&tc);
    return 0;
}

/* num_steps 3 (odd): the counter runs 0 1 2 0 1 2, so calls 3 and 4 are back in the warm-up window and
 * the parities are 0 1 0 0 1 0 (the original's wrap, kept); cutoff 2*3-2 = 4 is never reached. */
static int test_wrap_odd_steps(void)
{
    sky_dit_program p = program(0.0, 0.1);
    sky_teacache tc;
    sky_err err;
    CHECK(sky_teacache_init(&tc, &p, "v", 0.25, 0, 3, &err) == SKY_OK, "%s", err.msg);
    const int want[6] = { 1, 1, 0, 1, 1, 0 }, want_par[6] = { 0, 1, 0, 0, 1, 0 };
    const float probe[2] = { 1.0f, 1.0f };
    for (int k = 0; k < 6; k++) {
        int par = -1;
        const int got = sky_teacache_decide(&tc, probe, 2, 8, &par);
        CHECK(got == want[k] && par == want_par[k], "call %d: decided %d (want %d), parity %d (want %d)", k, got,
              want[k], par, want_par[k]);
    }
    sky_teacache_free(&tc);
    return 0;
}

/* The distance: prev {1, -1, 2, -2}, now {1.1, -1, 2, -2.2}: mean |diff| 0.075, mean |prev| 1.5, rel 0.05.
 * poly(x) = x, threshold 0.06: 0.05 (skip), then 0.05 + 0.048 (compute). With use_ret_steps the window is 10
 * calls and the cutoff 2 num_steps; without, 2 calls and 2 num_steps - 2. */
static int test_distance_and_ret_window(void)
{
    sky_dit_program p = program(1.0, 0.0);
    p.dim = 4;
    p.max_frames = 1;
    sky_teacache tc;
    sky_err err;
    CHECK(sky_teacache_init(&tc, &p, "v", 0.06, 0, 100, &err) == SKY_OK, "%s", err.msg);
    const float a[4] = { 1, -1, 2, -2 }, b[4] = { 1.1f, -1, 2, -2.2f };
    int par;
    sky_teacache_decide(&tc, a, 4, 1, &par);              /* call 0 (parity 0): warm-up */
    sky_teacache_decide(&tc, a, 4, 1, &par);              /* call 1 (parity 1): warm-up */
    CHECK(sky_teacache_decide(&tc, b, 4, 1, &par) == 0 && fabs(tc.acc[0] - 0.05) < 1e-6, "acc %g", tc.acc[0]);
    CHECK(sky_teacache_decide(&tc, a, 4, 1, &par) == 0 && tc.acc[1] == 0.0, "parity 1, a vs a: distance 0, skip");
    /* parity 0, a vs b: 0.075 / mean |b| 1.575 = 0.047619; 0.05 + 0.047619 >= 0.06: compute, reset */
    CHECK(sky_teacache_decide(&tc, a, 4, 1, &par) == 1 && tc.acc[0] == 0.0, "acc %g", tc.acc[0]);
    sky_teacache_free(&tc);
    CHECK(sky_teacache_init(&tc, &p, "v", 0.06, 1, 100, &err) == SKY_OK, "%s", err.msg);
    CHECK(tc.ret_steps == 10 && tc.cutoff_steps == 200, "ret %d cutoff %d", tc.ret_steps, tc.cutoff_steps);
    sky_teacache_free(&tc);
    CHECK(sky_teacache_init(&tc, &p, "v", 0.06, 0, 100, &err) == SKY_OK, "%s", err.msg);
    CHECK(tc.ret_steps == 2 && tc.cutoff_steps == 198, "ret %d cutoff %d", tc.ret_steps, tc.cutoff_steps);
    sky_teacache_free(&tc);
    return 0;
}

/* Where the original would fail on a shape mismatch (another probe length or token count than the state's),
 * the blocks run and the parity's accumulated value restarts. */
static int test_shape_change_computes(void)
{
    sky_dit_program p = program(0.0, 0.1);
    sky_teacache tc;
    sky_err err;
    CHECK(sky_teacache_init(&tc, &p, "v", 1.0, 0, 100, &err) == SKY_OK, "%s", err.msg);
    const float probe[6] = { 1, 2, 3, 4, 5, 6 };
    int par;
    sky_teacache_decide(&tc, probe, 4, 16, &par);
    sky_teacache_decide(&tc, probe, 4, 16, &par);
    CHECK(sky_teacache_decide(&tc, probe, 4, 16, &par) == 0, "same shapes: skip");
    CHECK(sky_teacache_decide(&tc, probe, 6, 24, &par) == 1, "parity 1, another probe length: compute");
    CHECK(sky_teacache_decide(&tc, probe, 4, 24, &par) == 1 && tc.acc[0] == 0.0, "parity 0, other tokens: compute");
    CHECK(sky_teacache_decide(&tc, probe, 6, 24, &par) == 0, "parity 1 again at its new shape: skip");
    sky_teacache_free(&tc);
    return 0;
}

static int test_refusals(void)
{
    sky_dit_program p = program(0.0, 0.1);
    sky_teacache tc;
    sky_err err;
    CHECK(sky_teacache_init(&tc, &p, "v", 0.0, 0, 10, &err) == SKY_ERR && strstr(err.msg, "--teacache_thresh 0"),
          "%s", err.msg);
    p.has_teacache = 0;
    CHECK(sky_teacache_init(&tc, &p, "tiny_x", 0.2, 0, 10, &err) == SKY_ERR &&
          strstr(err.msg, "variant tiny_x has no TeaCache coefficients"), "%s", err.msg);
    return 0;
}

int main(void)
{
    RUN(test_constant_probe);
    RUN(test_wrap_odd_steps);
    RUN(test_distance_and_ret_window);
    RUN(test_shape_change_computes);
    RUN(test_refusals);
    return CHECK_SUMMARY();
}
