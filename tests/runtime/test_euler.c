/* tests/runtime/test_euler.c — the flow-match Euler sampler (runtime/pipeline/sampler.c, --sample_solver euler)
 * against tests/fixtures/sampler/euler.safetensors (diffusers 0.36 FlowMatchEulerDiscreteScheduler itself, made by
 * make_euler_fixtures.py), and sky_sampler over both solvers.
 *
 * Groups:
 *   schedule/<case>    timesteps and sigmas (terminal 0 included) equal to the scheduler's, bit for bit
 *   steps/<case>       every sample of a trajectory (step() fed its own output) equal bit for bit
 *   plus sky_sampler (either solver: the timesteps fed to the model, the steps), a DF step matrix on Euler's
 *   fractional timesteps, and the error messages.
 * Run from the repository root.
 */
#include "../../runtime/core/dtype.h"
#include "../../runtime/formats/safetensors.h"
#include "../../runtime/pipeline/forcing.h"
#include "../../runtime/pipeline/sampler.h"
#include "check.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static sky_safetensors *fx;
static const char      *cur_case;
static int              cur_steps;
static double           cur_shift;

static const sky_st_tensor *field(const char *f)
{
    char name[128];
    snprintf(name, sizeof name, "%s/%s", cur_case, f);
    return sky_safetensors_find(fx, name);
}

static size_t numel(const sky_st_tensor *t)
{
    size_t n = 1;
    for (int i = 0; i < t->ndim; i++) n *= (size_t)t->shape[i];
    return n;
}

static float *to_f32(const sky_st_tensor *t)
{
    float  *d = malloc(numel(t) * sizeof *d);
    sky_err err;
    if (sky_dtype_to_f32(d, t->data, t->dtype, numel(t), &err)) {
        free(d);
        return NULL;
    }
    return d;
}

/* ---- schedule and steps ---------------------------------------------------------------------- */

static int test_schedule(void)
{
    const sky_st_tensor *ts = field("timesteps"), *sg = field("sigmas");
    CHECK(ts && sg && numel(ts) == (size_t)cur_steps && numel(sg) == (size_t)cur_steps + 1, "fixture %s", cur_case);
    float  *want_t = to_f32(ts), *want_s = to_f32(sg);
    float  *t = malloc((size_t)cur_steps * sizeof *t), *s = malloc((size_t)(cur_steps + 1) * sizeof *s);
    sky_err err;
    CHECK(sky_sampler_euler_schedule(cur_steps, cur_shift, t, s, &err) == SKY_OK, "%s", err.msg);
    for (int i = 0; i < cur_steps; i++)
        CHECK(t[i] == want_t[i], "%s: timesteps[%d] = %.9g, scheduler %.9g", cur_case, i, t[i], want_t[i]);
    for (int i = 0; i <= cur_steps; i++)
        CHECK(s[i] == want_s[i], "%s: sigmas[%d] = %.9g, scheduler %.9g", cur_case, i, s[i], want_s[i]);
    printf("     %s: %d timesteps (%.6g .. %.6g) and %d sigmas identical\n", cur_case, cur_steps, t[0],
           t[cur_steps - 1], cur_steps + 1);
    free(want_t);
    free(want_s);
    free(t);
    free(s);
    return 0;
}

static int test_steps(void)
{
    const sky_st_tensor *x0 = field("x0"), *v = field("v"), *smp = field("samples");
    CHECK(x0 && v && smp, "fixture %s", cur_case);
    const size_t n = numel(x0);
    float       *x = to_f32(x0), *vs = to_f32(v), *want = to_f32(smp);
    sky_sampler  s;
    sky_err      err;
    CHECK(sky_sampler_init(&s, SKY_SOLVER_EULER, cur_steps, cur_shift, n, &err) == SKY_OK, "%s", err.msg);
    for (int i = 0; i < cur_steps; i++) {
        sky_sampler_step(&s, vs + (size_t)i * n, x);
        for (size_t j = 0; j < n; j++)
            CHECK(x[j] == want[(size_t)i * n + j], "%s: step %d element %zu: %.9g, scheduler %.9g", cur_case, i, j,
                  x[j], want[(size_t)i * n + j]);
    }
    CHECK(s.done == cur_steps, "done %d", s.done);
    sky_sampler_free(&s);
    sky_sampler_free(&s); /* safe twice */
    free(x);
    free(vs);
    free(want);
    return 0;
}

/* ---- sky_sampler ------------------------------------------------------------------------------ */

/* UniPC through sky_sampler: the original's integer timesteps as doubles, and the same steps as sky_unipc. */
static int test_sampler_unipc(void)
{
    const size_t n = 8;
    sky_sampler  s;
    sky_unipc    u;
    sky_err      err;
    CHECK(sky_sampler_init(&s, SKY_SOLVER_UNIPC, 30, 8.0, n, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_unipc_init(&u, 30, 8.0, n, 0, &err) == SKY_OK, "%s", err.msg);
    float x[8], y[8], v[8];
    for (size_t j = 0; j < n; j++) x[j] = y[j] = (float)j - 3.5f;
    for (int i = 0; i < 30; i++) {
        CHECK(s.timesteps[i] == (double)u.timesteps[i], "timestep %d", i);
        for (size_t j = 0; j < n; j++) v[j] = 0.5f * x[j] + 0.1f * (float)i;
        sky_sampler_step(&s, v, x);
        sky_unipc_step(&u, v, y);
        CHECK(memcmp(x, y, sizeof x) == 0, "step %d differs from sky_unipc", i);
    }
    sky_sampler_free(&s);
    sky_unipc_free(&u);
    return 0;
}

/* A DF step matrix on Euler's timesteps: every cell is the template's value (999 before a frame starts, 0 once
 * it is done), fractional values kept. */
static int test_df_matrix_euler(void)
{
    sky_sampler        s;
    sky_forcing_matrix m;
    sky_err            err;
    CHECK(sky_sampler_init(&s, SKY_SOLVER_EULER, 4, 5.0, 1, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_forcing_step_matrix(6, s.timesteps, 4, 6, 2, 1, 1, &m, &err) == SKY_OK, "%s", err.msg);
    int fractional = 0;
    for (int c = 0; c < m.rows * m.frames; c++) {
        const int    k = m.step_index[c];
        const double want = k == 0 ? 999 : k == 5 ? 0 : s.timesteps[k - 1];
        CHECK(m.timestep[c] == want, "cell %d: step %d, timestep %.9g, want %.9g", c, k, m.timestep[c], want);
        fractional += m.timestep[c] != floor(m.timestep[c]);
    }
    CHECK(fractional > 0, "no fractional timestep in the matrix");
    sky_forcing_matrix_free(&m);
    sky_sampler_free(&s);
    return 0;
}

static int test_errors(void)
{
    static const struct {
        sky_solver  solver;
        int         steps;
        double      shift;
        size_t      n;
        const char *want;
    } bad[] = {
        {SKY_SOLVER_EULER, 0, 5.0, 4, "--inference_steps 0 must be between 1 and 100000"},
        {SKY_SOLVER_EULER, 4, 0.0, 4, "--shift 0 must be a finite number greater than 0"},
        {SKY_SOLVER_EULER, 4, NAN, 4, "--shift nan must be a finite number greater than 0"},
        {SKY_SOLVER_EULER, 4, 5.0, 0, "sampler: a latent of 0 elements"},
        {SKY_SOLVER_UNIPC, 0, 8.0, 4, "--inference_steps 0 must be between 1 and 100000"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        sky_sampler s;
        sky_err     err = {""};
        CHECK(sky_sampler_init(&s, bad[i].solver, bad[i].steps, bad[i].shift, bad[i].n, &err) == SKY_ERR, "case %zu",
              i);
        CHECK(strcmp(err.msg, bad[i].want) == 0, "case %zu: '%s'", i, err.msg);
        sky_sampler_free(&s);
    }
    sky_solver so;
    sky_err    err;
    CHECK(sky_solver_parse("euler", &so, &err) == SKY_OK && so == SKY_SOLVER_EULER, "euler");
    CHECK(sky_solver_parse("unipc", &so, &err) == SKY_OK && so == SKY_SOLVER_UNIPC, "unipc");
    CHECK(sky_solver_parse("dpm++", &so, &err) == SKY_ERR &&
              strcmp(err.msg, "--sample_solver dpm++: unknown solver (unipc or euler)") == 0,
          "%s", err.msg);
    CHECK(strcmp(sky_solver_name(SKY_SOLVER_EULER), "euler") == 0, "name");
    return 0;
}

int main(void)
{
    sky_err err;
    if (sky_safetensors_open(&fx, "tests/fixtures/sampler/euler.safetensors", &err)) {
        fprintf(stderr, "%s\n", err.msg);
        return 1;
    }
    /* the cases: the distinct "<case>/" prefixes */
    char cases[64][32];
    int  n = 0;
    for (int i = 0; i < sky_safetensors_count(fx); i++) {
        const char *nm = sky_safetensors_at(fx, i)->name, *slash = strchr(nm, '/');
        if (!slash || slash - nm >= 32) continue;
        if (n && strncmp(cases[n - 1], nm, (size_t)(slash - nm)) == 0 && cases[n - 1][slash - nm] == 0) continue;
        memcpy(cases[n], nm, (size_t)(slash - nm));
        cases[n][slash - nm] = 0;
        n++;
    }
    for (int i = 0; i < n; i++) {
        cur_case = cases[i];
        if (sscanf(cur_case, "n%d_shift%lf", &cur_steps, &cur_shift) != 2) return 2;
        char name[64];
        snprintf(name, sizeof name, "schedule/%.40s", cur_case);
        RUN_NAMED(name, test_schedule);
        if (field("samples")) {
            snprintf(name, sizeof name, "steps/%.40s", cur_case);
            RUN_NAMED(name, test_steps);
        }
    }
    RUN(test_sampler_unipc);
    RUN(test_df_matrix_euler);
    RUN(test_errors);
    sky_safetensors_close(fx);
    return CHECK_SUMMARY();
}
