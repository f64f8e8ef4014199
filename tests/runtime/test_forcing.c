/* tests/runtime/test_forcing.c — runtime/pipeline/forcing.c: the diffusion-forcing step matrix against
 * tests/fixtures/sampler/matrices.safetensors (diffusers 0.36 generate_timestep_matrix, equal to the
 * original's on every case when the fixtures were made), the window arithmetic on the reference's
 * worked examples (dit-and-sampling.md §7.4.4, §7.4.5: frame counts, not numerics), every
 * validation message, and a run's schedule (the windows of long videos, an extension and images with the
 * matrix each runs, against the same fixtures). Run from the repository root.
 */
#include "../../runtime/pipeline/forcing.h"
#include "../../runtime/formats/safetensors.h"
#include "check.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define FIXTURES "tests/fixtures/sampler/"

static sky_safetensors *fx;          /* matrices.safetensors */
static const char      *cur_case;

/* ---- fixture helpers -------------------------------------------------------------------- */

static const sky_st_tensor *field(const char *fld) {
    char name[128];
    snprintf(name, sizeof name, "%s/%s", cur_case, fld);
    return sky_safetensors_find(fx, name);
}

/* Little-endian signed integer element i of an I16/I32/I64 tensor, U8 as unsigned. */
static int64_t int_at(const sky_st_tensor *t, size_t i) {
    int bytes = t->dtype == SKY_DTYPE_I64 ? 8 : t->dtype == SKY_DTYPE_I32 ? 4 : t->dtype == SKY_DTYPE_I16 ? 2 : 1;
    const unsigned char *p = (const unsigned char *)t->data + (size_t)bytes * i;
    uint64_t u = 0;
    for (int b = bytes - 1; b >= 0; b--) u = (u << 8) | p[b];
    if (t->dtype == SKY_DTYPE_U8) return (int64_t)u;
    int shift = 64 - 8 * bytes;                         /* sign-extend */
    return (int64_t)(u << shift) >> shift;
}

/* sky_df_plan_make for the Wan VAE's temporal stride, 4 pixel frames per latent frame after the first
 * (reference §7.4.4: F = (n-1)//4 + 1), as every variant's description gives it (program.h). */
enum { STRIDE_T = 4 };
static sky_status plan_make(const sky_df_request *req, sky_df_plan *plan, sky_err *err) {
    sky_df_request r = *req;
    r.vae_stride_t = STRIDE_T;
    return sky_df_plan_make(&r, plan, err);
}

/* ---- step matrix vs fixtures -------------------------------------------------------------- */

static int test_matrix_case(void) {
    const sky_st_tensor *tp = field("template"), *pa = field("params"), *si = field("step_index"),
                        *ts = field("timestep"), *up = field("update"), *iv = field("interval");
    CHECK(tp && pa && si && ts && up && iv, "fixture tensors missing for %s", cur_case);
    int F = (int)int_at(pa, 0), N = (int)int_at(pa, 1), base = (int)int_at(pa, 2), ar = (int)int_at(pa, 3),
        pre = (int)int_at(pa, 4), cbs = (int)int_at(pa, 5);
    CHECK(tp->shape[0] == N, "template length");
    double *tmpl = malloc((size_t)N * sizeof *tmpl);
    for (int i = 0; i < N; i++) tmpl[i] = (double)int_at(tp, (size_t)i);

    sky_forcing_matrix m;
    sky_err err;
    CHECK(sky_forcing_step_matrix(F, tmpl, N, base, ar, pre, cbs, &m, &err) == SKY_OK, "%s", err.msg);
    CHECK(m.rows == si->shape[0] && m.frames == si->shape[1], "%d x %d, fixture %lld x %lld", m.rows,
          m.frames, (long long)si->shape[0], (long long)si->shape[1]);
    for (int r = 0; r < m.rows; r++) {
        for (int f = 0; f < m.frames; f++) {
            size_t c = (size_t)r * (size_t)m.frames + (size_t)f;
            CHECK(m.step_index[c] == int_at(si, c), "row %d frame %d: step_index %d, fixture %lld", r, f,
                  m.step_index[c], (long long)int_at(si, c));
            CHECK(m.timestep[c] == (double)int_at(ts, c), "row %d frame %d: timestep %g, fixture %lld", r, f,
                  m.timestep[c], (long long)int_at(ts, c));
            CHECK(m.update[c] == int_at(up, c), "row %d frame %d: update %d, fixture %lld", r, f,
                  m.update[c], (long long)int_at(up, c));
        }
        CHECK(m.interval[2 * r] == int_at(iv, 2 * (size_t)r) && m.interval[2 * r + 1] == int_at(iv, 2 * (size_t)r + 1),
              "row %d: interval [%d, %d), fixture [%lld, %lld)", r, m.interval[2 * r], m.interval[2 * r + 1],
              (long long)int_at(iv, 2 * (size_t)r), (long long)int_at(iv, 2 * (size_t)r + 1));
    }
    printf("     %s: F %d N %d base %d ar %d P %d cbs %d -> %d x %d, identical\n", cur_case, F, N, base, ar,
           pre, cbs, m.rows, m.frames);
    sky_forcing_matrix_free(&m);
    sky_forcing_matrix_free(&m);                         /* safe twice */
    free(tmpl);
    return 0;
}

/* A 30-step template 999 .. (any decreasing values do for the structural tests). */
static void template30(double t[30]) {
    for (int i = 0; i < 30; i++) t[i] = 999 - 30 * i;
}

/* Row-count formula of reference §7.4.1: N + (blocks to generate - 1) * min(ar, N), for the
 * pipelines' base == frames; checked over a grid against the built matrix. */
static int test_row_count_formula(void) {
    double t[30];
    template30(t);
    for (int cbs = 1; cbs <= 5; cbs++)
        for (int F = cbs; F <= 26; F += 3)
            for (int ar = 0; ar <= 35; ar += 5)
                for (int pre = 0; pre < F / cbs * cbs; pre += 2) {
                    sky_forcing_matrix m;
                    sky_err err;
                    CHECK(sky_forcing_step_matrix(F, t, 30, F, ar, pre, cbs, &m, &err) == SKY_OK, "%s", err.msg);
                    int gen = F / cbs - pre / cbs;
                    int want = 30 + (gen - 1) * (ar < 30 ? ar : 30);
                    if (ar == 0) want = 30;
                    CHECK(m.rows == want, "F %d cbs %d ar %d P %d: %d rows, formula %d", F, cbs, ar, pre,
                          m.rows, want);
                    for (int r = 0; r < m.rows; r++)
                        CHECK(m.interval[2 * r] == 0 && m.interval[2 * r + 1] == m.frames, "interval");
                    sky_forcing_matrix_free(&m);
                }
    return 0;
}

/* Every frame is updated exactly N times (once per solver step), except pre-ready ones (never). */
static int test_each_frame_steps_n_times(void) {
    double t[30];
    template30(t);
    sky_forcing_matrix m;
    sky_err err;
    CHECK(sky_forcing_step_matrix(25, t, 30, 25, 5, 5, 5, &m, &err) == SKY_OK, "%s", err.msg);
    for (int f = 0; f < m.frames; f++) {
        int n = 0;
        for (int r = 0; r < m.rows; r++) n += m.update[(size_t)r * (size_t)m.frames + (size_t)f];
        CHECK(n == (f < 5 ? 0 : 30), "frame %d updated %d times", f, n);
    }
    sky_forcing_matrix_free(&m);
    return 0;
}

/* End-image pinning: timestep 0 and no update in the last column(s), step_index unchanged. */
static int test_pin_end(void) {
    double t[30];
    template30(t);
    sky_forcing_matrix m;
    sky_err err;
    CHECK(sky_forcing_step_matrix(26, t, 30, 26, 0, 1, 1, &m, &err) == SKY_OK, "%s", err.msg);
    int idx_before = m.step_index[(size_t)3 * 26 + 25];
    sky_forcing_matrix_pin_end(&m, 1);
    for (int r = 0; r < m.rows; r++) {
        size_t c = (size_t)r * 26 + 25;
        CHECK(m.timestep[c] == 0 && m.update[c] == 0, "row %d: t %g upd %d", r, m.timestep[c],
              m.update[c]);
        CHECK(m.update[c - 1] == 1, "row %d: frame 24 must still be updated", r);
    }
    CHECK(m.step_index[(size_t)3 * 26 + 25] == idx_before, "step_index changed");
    sky_forcing_matrix_free(&m);
    return 0;
}

static const struct bad_matrix {
    const char *name;
    int         F, N, base, ar, pre, cbs;
    const char *expect;
} BAD_MATRICES[] = {
    { "no_steps",       25, 0, 25, 0, 0, 1, "step matrix: 0 steps; need at least 1" },
    { "no_frames",      0, 30, 25, 0, 0, 1, "step matrix: 0 frames with a base of 25; both must be at least 1" },
    { "cbs_zero",       25, 30, 25, 0, 0, 0, "step matrix: causal block size 0; must be at least 1" },
    { "ar_negative",    25, 30, 25, -1, 0, 1, "step matrix: ar_step -1; must be at least 0" },
    { "pre_negative",   25, 30, 25, 0, -2, 1, "step matrix: -2 pre-ready frames; must be at least 0" },
    { "under_a_block",  4, 30, 4, 0, 0, 5, "step matrix: 4 frames do not fill one causal block of 5" },
    { "base_under_block", 25, 30, 3, 30, 0, 5,
      "step matrix: a base of 3 frames does not fill one causal block of 5" },
    { "ar_too_small",   25, 30, 10, 2, 0, 1,
      "step matrix: ar_step 2 is too small for 25 blocks in a base of 10 blocks with 30 steps; it must be at least 3" },
    { "all_pre_ready",  25, 30, 25, 0, 25, 5,
      "step matrix: all 5 blocks are pre-ready (25 pre-ready frames, causal block size 5); nothing to denoise" },
};

static int test_matrix_errors(void) {
    double t[30];
    template30(t);
    for (size_t k = 0; k < sizeof BAD_MATRICES / sizeof BAD_MATRICES[0]; k++) {
        const struct bad_matrix *b = &BAD_MATRICES[k];
        sky_forcing_matrix m = { .rows = -7 };
        sky_err err = { "" };
        CHECK(sky_forcing_step_matrix(b->F, t, b->N, b->base, b->ar, b->pre, b->cbs, &m, &err) == SKY_ERR,
              "%s: accepted", b->name);
        CHECK(strcmp(err.msg, b->expect) == 0, "%s: got \"%s\"", b->name, err.msg);
        CHECK(m.rows == -7, "%s: *out touched", b->name);
    }
    /* the boundary of the ar_step rule is accepted */
    sky_forcing_matrix m;
    sky_err err;
    CHECK(sky_forcing_step_matrix(25, t, 30, 10, 3, 0, 1, &m, &err) == SKY_OK, "%s", err.msg);
    sky_forcing_matrix_free(&m);
    return 0;
}

/* ---- windows ----------------------------------------------------------------------------- */

/* Make a plan, CHECK it succeeds, and compare window lengths with the expected list. */
#define CHECK_PLAN(req_, mode_, F_, wins_, frames_, prefixes_, out_)                                 \
    do {                                                                                             \
        sky_df_plan p_;                                                                              \
        sky_err e_;                                                                                  \
        const int fr_[] = frames_, pf_[] = prefixes_;                                                \
        CHECK(plan_make(&(req_), &p_, &e_) == SKY_OK, "%s", e_.msg);                          \
        CHECK(p_.mode == (mode_) && p_.latent_frames == (F_) && p_.windows == (wins_),               \
              "mode %d F %d windows %d", (int)p_.mode, p_.latent_frames, p_.windows);                \
        for (int k_ = 0; k_ < p_.windows; k_++) {                                                    \
            sky_df_window w_ = sky_df_plan_window(&p_, k_);                                          \
            CHECK(w_.frames == fr_[k_] && w_.prefix == pf_[k_], "window %d: %d frames, prefix %d",   \
                  k_, w_.frames, w_.prefix);                                                         \
        }                                                                                            \
        CHECK(sky_df_plan_output_frames(&p_) == (out_), "output %lld frames, want %d",               \
              (long long)sky_df_plan_output_frames(&p_), (out_));                                    \
    } while (0)
#define L(...) { __VA_ARGS__ }

/* Reference §7.4.4 examples: 257 frames (base 97, overlap 17) -> 3 windows of 25, 97+80+80;
 * 737 -> 9 windows, 97 + 8*80; README 237 -> 25/25/20, 97+80+60. */
static int test_long_video_examples(void) {
    sky_df_request r = { .num_frames = 257, .base_num_frames = 97, .overlap_history = 17, .causal_block_size = 1 };
    CHECK_PLAN(r, SKY_DF_LONG, 65, 3, L(25, 25, 25), L(0, 5, 5), 257);
    r.num_frames = 737;
    CHECK_PLAN(r, SKY_DF_LONG, 185, 9, L(25, 25, 25, 25, 25, 25, 25, 25, 25), L(0, 5, 5, 5, 5, 5, 5, 5, 5), 737);
    r.num_frames = 237;
    CHECK_PLAN(r, SKY_DF_LONG, 60, 3, L(25, 25, 20), L(0, 5, 5), 237);
    r.causal_block_size = 5;                             /* async README setting: 25, 5, 20 divisible */
    CHECK_PLAN(r, SKY_DF_LONG, 60, 3, L(25, 25, 20), L(0, 5, 5), 237);

    /* done / drop / new pixel frames of the 237 case, window by window */
    sky_df_plan p;
    sky_err err;
    CHECK(plan_make(&r, &p, &err) == SKY_OK, "%s", err.msg);
    const int done[] = { 0, 25, 45 }, drop[] = { 0, 17, 17 }, add[] = { 97, 80, 60 };
    for (int k = 0; k < 3; k++) {
        sky_df_window w = sky_df_plan_window(&p, k);
        CHECK(w.done == done[k] && w.drop_pixels == drop[k] && w.new_pixels == add[k] &&
              w.prefix_from_video == (k > 0) && w.end_frame == 0, "window %d: done %d drop %d new %d", k,
              w.done, w.drop_pixels, w.new_pixels);
    }
    /* start and end image (cbs 1): image prefix in window 0, end frame on the last window only */
    r.causal_block_size = 1;
    r.has_image = r.has_end_image = 1;
    CHECK(plan_make(&r, &p, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_df_plan_window(&p, 0).prefix == 1 && sky_df_plan_window(&p, 0).end_frame == 0 &&
          sky_df_plan_window(&p, 2).end_frame == 1, "image / end image placement");
    return 0;
}

/* Short video: one window over F (+ image prefix), --base_num_frames unused. */
static int test_short_video(void) {
    sky_df_request r = { .num_frames = 97, .base_num_frames = 97, .causal_block_size = 5 };
    CHECK_PLAN(r, SKY_DF_SHORT, 25, 1, L(25), L(0), 97);
    r.overlap_history = 17;                              /* given but the video fits: still short */
    CHECK_PLAN(r, SKY_DF_SHORT, 25, 1, L(25), L(0), 97);
    sky_df_request s = { .num_frames = 33, .base_num_frames = 97, .causal_block_size = 1, .has_image = 1,
                         .has_end_image = 1 };
    CHECK_PLAN(s, SKY_DF_SHORT, 9, 1, L(9), L(1), 33);
    sky_df_plan p;
    sky_err err;
    CHECK(plan_make(&s, &p, &err) == SKY_OK && sky_df_plan_window(&p, 0).end_frame == 1, "end frame");
    return 0;
}

/* Reference §7.4.5: num_frames 120, base 97, overlap 17 -> F 30, windows 25 and 10, input + 80 + 20. */
static int test_extension(void) {
    sky_df_request r = { .num_frames = 120, .base_num_frames = 97, .overlap_history = 17,
                         .causal_block_size = 1, .video_frames = 50 };
    CHECK_PLAN(r, SKY_DF_EXTEND, 30, 2, L(25, 10), L(5, 5), 50 + 80 + 20);
    sky_df_plan p;
    sky_err err;
    CHECK(plan_make(&r, &p, &err) == SKY_OK, "%s", err.msg);
    sky_df_window w0 = sky_df_plan_window(&p, 0);
    CHECK(w0.done == 5 && w0.prefix_from_video == 1 && w0.drop_pixels == 17, "window 0: done %d", w0.done);
    /* the async setting (cbs 5): 25 and 10 are whole blocks, the prefix of 5 too */
    r.causal_block_size = 5;
    CHECK_PLAN(r, SKY_DF_EXTEND, 30, 2, L(25, 10), L(5, 5), 50 + 80 + 20);
    r.causal_block_size = 1;
    /* shorter than one window: a single window of F latent frames */
    r.num_frames = 41;
    CHECK_PLAN(r, SKY_DF_EXTEND, 11, 1, L(11), L(5), 50 + 24);
    return 0;
}

static const struct bad_plan {
    const char    *name;
    sky_df_request req;
    const char    *expect;
} BAD_PLANS[] = {
    { "num_frames_zero", { .num_frames = 0, .base_num_frames = 97, .causal_block_size = 1 },
      "--num_frames 0 must be at least 1" },
    { "base_zero", { .num_frames = 97, .base_num_frames = 0, .causal_block_size = 1 },
      "--base_num_frames 0 must be at least 1" },
    { "cbs_zero", { .num_frames = 97, .base_num_frames = 97, .causal_block_size = 0 },
      "--causal_block_size 0 must be at least 1" },
    { "overlap_negative", { .num_frames = 97, .base_num_frames = 97, .overlap_history = -1, .causal_block_size = 1 },
      "--overlap_history -1 must be at least 1" },
    { "long_without_overlap", { .num_frames = 257, .base_num_frames = 97, .causal_block_size = 1 },
      "--num_frames 257 is more than --base_num_frames 97: a long video needs --overlap_history "
      "(17 or 37 recommended)" },
    { "short_not_divisible", { .num_frames = 97, .base_num_frames = 97, .causal_block_size = 3 },
      "--num_frames 97 gives 25 latent frames, not divisible by --causal_block_size 3 (the frames past "
      "the last whole block would stay noise)" },
    { "image_with_cbs5", { .num_frames = 97, .base_num_frames = 97, .causal_block_size = 5, .has_image = 1 },
      "--image gives a prefix of 1 latent frame, not divisible by --causal_block_size 5 (the original "
      "silently ignores the image); use --causal_block_size 1" },
    { "end_image_with_cbs5", { .num_frames = 97, .base_num_frames = 97, .causal_block_size = 5, .has_end_image = 1 },
      "--end_image adds 1 latent frame, not divisible by --causal_block_size 5 (the original silently "
      "ignores the image); use --causal_block_size 1" },
    { "last_window", { .num_frames = 237, .base_num_frames = 97, .overlap_history = 17, .causal_block_size = 3 },
      "--num_frames 237 with --base_num_frames 97 --overlap_history 17 gives a last window of 20 latent "
      "frames, not divisible by --causal_block_size 3" },
    { "full_windows", { .num_frames = 257, .base_num_frames = 97, .overlap_history = 17, .causal_block_size = 3 },
      "--base_num_frames 97 gives windows of 25 latent frames, not divisible by --causal_block_size 3" },
    { "overlap_prefix", { .num_frames = 125, .base_num_frames = 97, .overlap_history = 9, .causal_block_size = 5 },
      "--overlap_history 9 gives a prefix of 3 latent frames, not divisible by --causal_block_size 5 "
      "(the original truncates it and loses continuity)" },
    { "overlap_too_long", { .num_frames = 257, .base_num_frames = 97, .overlap_history = 97, .causal_block_size = 1 },
      "--overlap_history 97 (25 latent frames) must be shorter than --base_num_frames 97 (25 latent frames)" },
    { "extend_without_overlap", { .num_frames = 120, .base_num_frames = 97, .causal_block_size = 1, .video_frames = 50 },
      "--video_path needs --overlap_history (17 or 37 recommended): each window continues from the "
      "last overlap_history frames" },
    { "extend_short_video", { .num_frames = 120, .base_num_frames = 97, .overlap_history = 17,
                              .causal_block_size = 1, .video_frames = 10 },
      "--video_path has 10 frames, fewer than --overlap_history 17" },
    { "extend_nothing_new", { .num_frames = 17, .base_num_frames = 97, .overlap_history = 17,
                              .causal_block_size = 1, .video_frames = 50 },
      "--num_frames 17 (5 latent frames) leaves nothing to generate after --overlap_history 17 "
      "(5 latent frames); in video extension --num_frames counts the overlap too" },
    { "extend_with_image", { .num_frames = 120, .base_num_frames = 97, .overlap_history = 17,
                             .causal_block_size = 1, .video_frames = 50, .has_image = 1 },
      "--image and --end_image cannot be combined with --video_path (video extension continues the "
      "video instead)" },
    { "extend_last_window", { .num_frames = 124, .base_num_frames = 97, .overlap_history = 17,
                              .causal_block_size = 5, .video_frames = 50 },
      "--num_frames 124 with --base_num_frames 97 --overlap_history 17 gives a last window of 11 latent "
      "frames, not divisible by --causal_block_size 5" },
};

static int test_plan_errors(void) {
    for (size_t k = 0; k < sizeof BAD_PLANS / sizeof BAD_PLANS[0]; k++) {
        const struct bad_plan *b = &BAD_PLANS[k];
        sky_df_plan p = { .windows = -7 };
        sky_err err = { "" };
        CHECK(plan_make(&b->req, &p, &err) == SKY_ERR, "%s: accepted", b->name);
        CHECK(strcmp(err.msg, b->expect) == 0, "%s: got \"%s\"", b->name, err.msg);
        CHECK(p.windows == -7, "%s: *plan touched", b->name);
    }
    return 0;
}

/* ---- a run's schedule: windows and their matrices vs the fixtures ------------------------- */

/* The timesteps of fixture case `name`'s template (its steps in *steps), malloc'ed. */
static double *fixture_template(const char *name, int *steps) {
    cur_case = name;
    const sky_st_tensor *tp = field("template");
    if (!tp) return NULL;
    double *t = malloc((size_t)tp->shape[0] * sizeof *t);
    for (int i = 0; t && i < (int)tp->shape[0]; i++) t[i] = (double)int_at(tp, (size_t)i);
    *steps = (int)tp->shape[0];
    return t;
}

/* Window k of schedule s runs fixture case `name`: the case's parameters are the window's (frames with the
 * end frame, base the same, the schedule's ar_step, the prefix pre-ready, cbs) and the matrices are equal
 * entry for entry (step_index, timestep, update, intervals). */
static int window_is_case(const sky_df_schedule *s, int k, int ar_step, const char *name) {
    cur_case = name;
    const sky_st_tensor *pa = field("params"), *si = field("step_index"), *ts = field("timestep"),
                        *up = field("update"), *iv = field("interval");
    CHECK(pa && si && ts && up && iv, "fixture tensors missing for %s", name);
    const sky_df_window w = s->window[k];
    const int frames = w.frames + w.end_frame;
    CHECK(int_at(pa, 0) == frames && int_at(pa, 2) == frames && int_at(pa, 3) == ar_step &&
          int_at(pa, 4) == w.prefix && int_at(pa, 5) == s->plan.req.causal_block_size,
          "window %d (%d frames, prefix %d) is not case %s", k, frames, w.prefix, name);
    const sky_forcing_matrix *m = s->matrix[k];
    CHECK(m->rows == si->shape[0] && m->frames == si->shape[1], "window %d: %d x %d, %s %lld x %lld", k, m->rows,
          m->frames, name, (long long)si->shape[0], (long long)si->shape[1]);
    for (size_t c = 0; c < (size_t)m->rows * (size_t)m->frames; c++)
        CHECK(m->step_index[c] == int_at(si, c) && m->timestep[c] == int_at(ts, c) && m->update[c] == int_at(up, c),
              "window %d, cell %zu differs from %s", k, c, name);
    for (size_t i = 0; i < 2 * (size_t)m->rows; i++)
        CHECK(m->interval[i] == int_at(iv, i), "window %d: interval %zu differs from %s", k, i, name);
    return 0;
}

/* The plan of req and its schedule for the 30-step shift-8 template, --ar_step ar. */
static int make_schedule(sky_df_request req, int ar, sky_df_schedule *s) {
    int steps = 0;
    double *t = fixture_template("doc_async", &steps);
    CHECK(t && steps == 30, "doc_async template");
    sky_df_plan p;
    sky_err err;
    CHECK(plan_make(&req, &p, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_df_schedule_make(&p, t, steps, ar, s, &err) == SKY_OK, "%s", err.msg);
    free(t);
    return 0;
}

/* The README's asynchronous long video (reference §7.4.4): 237 frames, base 97, overlap 17, cbs 5, ar_step 5,
 * 30 steps -> windows of 25, 25, 20 latent frames with prefixes 0, 5, 5, running the original's matrices of
 * doc_async (50 rows), async_prefix5 (45) and last_window_237 (40): three distinct matrices. */
static int test_schedule_long_async(void) {
    sky_df_schedule s;
    sky_df_request req = { .num_frames = 237, .base_num_frames = 97, .overlap_history = 17, .causal_block_size = 5 };
    if (make_schedule(req, 5, &s)) return 1;
    CHECK(s.plan.windows == 3 && s.n_distinct == 3, "%d windows, %d matrices", s.plan.windows, s.n_distinct);
    if (window_is_case(&s, 0, 5, "doc_async") || window_is_case(&s, 1, 5, "async_prefix5") ||
        window_is_case(&s, 2, 5, "last_window_237"))
        return 1;
    const int rows = s.matrix[0]->rows + s.matrix[1]->rows + s.matrix[2]->rows;
    CHECK(sky_df_schedule_rows(&s, 0) == rows && sky_df_schedule_rows(&s, 2) == s.matrix[2]->rows &&
          sky_df_schedule_rows(&s, 3) == 0, "rows %d, after 2 windows %d", sky_df_schedule_rows(&s, 0),
          sky_df_schedule_rows(&s, 2));
    printf("     237 frames, ar_step 5: windows 25/25/20 run doc_async, async_prefix5, last_window_237 (%d rows)\n",
           rows);
    sky_df_schedule_free(&s);
    sky_df_schedule_free(&s);                            /* safe twice */
    return 0;
}

/* Reference §7.4.4: 737 frames (base 97, overlap 17), synchronous -> 9 windows of 25: window 0 runs the sync
 * matrix, the 8 others share one, the sync_prefix5 case. */
static int test_schedule_long_shared(void) {
    sky_df_schedule s;
    sky_df_request req = { .num_frames = 737, .base_num_frames = 97, .overlap_history = 17, .causal_block_size = 1 };
    if (make_schedule(req, 0, &s)) return 1;
    CHECK(s.plan.windows == 9 && s.n_distinct == 2, "%d windows, %d matrices", s.plan.windows, s.n_distinct);
    if (window_is_case(&s, 0, 0, "sync")) return 1;
    for (int k = 1; k < 9; k++) {
        CHECK(s.matrix[k] == s.matrix[1], "window %d has a matrix of its own", k);
        if (window_is_case(&s, k, 0, "sync_prefix5")) return 1;
    }
    sky_df_schedule_free(&s);
    return 0;
}

/* Reference §7.4.5: extension of a 50-frame video to --num_frames 120 (base 97, overlap 17) -> windows of 25
 * and 10 latent frames, both with a 5-frame prefix: sync_prefix5 and extend_last. A start image (cbs 1) on a
 * 97-frame short video: the start_image case. */
static int test_schedule_extension_and_image(void) {
    sky_df_schedule s;
    sky_df_request req = { .num_frames = 120, .base_num_frames = 97, .overlap_history = 17, .causal_block_size = 1,
                           .video_frames = 50 };
    if (make_schedule(req, 0, &s)) return 1;
    CHECK(s.plan.windows == 2 && s.n_distinct == 2, "%d windows, %d matrices", s.plan.windows, s.n_distinct);
    if (window_is_case(&s, 0, 0, "sync_prefix5") || window_is_case(&s, 1, 0, "extend_last")) return 1;
    sky_df_schedule_free(&s);
    sky_df_request img = { .num_frames = 97, .base_num_frames = 97, .causal_block_size = 1, .has_image = 1 };
    if (make_schedule(img, 0, &s)) return 1;
    if (window_is_case(&s, 0, 0, "start_image")) return 1;
    sky_df_schedule_free(&s);
    return 0;
}

/* An end image: the window's matrix is built for one frame more, whose column is pinned (t = 0, no update);
 * the other columns are the matrix of the frames with the extra one (§7.4.3). */
static int test_schedule_end_image(void) {
    sky_df_schedule s;
    sky_df_request req = { .num_frames = 97, .base_num_frames = 97, .causal_block_size = 1, .has_image = 1,
                           .has_end_image = 1 };
    if (make_schedule(req, 0, &s)) return 1;
    const sky_forcing_matrix *m = s.matrix[0];
    int steps = 0;
    double *t = fixture_template("doc_async", &steps);
    sky_forcing_matrix plain;
    sky_err err;
    CHECK(sky_forcing_step_matrix(26, t, steps, 26, 0, 1, 1, &plain, &err) == SKY_OK, "%s", err.msg);
    CHECK(m->frames == 26 && m->rows == plain.rows, "%d x %d", m->rows, m->frames);
    for (int r = 0; r < m->rows; r++)
        for (int f = 0; f < 26; f++) {
            const size_t c = (size_t)r * 26 + (size_t)f;
            CHECK(f == 25 ? m->timestep[c] == 0 && m->update[c] == 0
                          : m->timestep[c] == plain.timestep[c] && m->update[c] == plain.update[c],
                  "row %d frame %d", r, f);
        }
    sky_forcing_matrix_free(&plain);
    sky_df_schedule_free(&s);
    free(t);
    return 0;
}

/* A start image that is the whole window (--num_frames 1 --image): nothing to denoise, the step matrix's
 * message, *out zeroed. */
static int test_schedule_error(void) {
    int steps = 0;
    double *t = fixture_template("doc_async", &steps);
    sky_df_request req = { .num_frames = 1, .base_num_frames = 97, .causal_block_size = 1, .has_image = 1 };
    sky_df_plan p;
    sky_df_schedule s = { .n_distinct = -7 };
    sky_err err = { "" };
    CHECK(plan_make(&req, &p, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_df_schedule_make(&p, t, steps, 0, &s, &err) == SKY_ERR, "accepted");
    CHECK(strcmp(err.msg, "step matrix: all 1 blocks are pre-ready (1 pre-ready frames, causal block size 1); "
                          "nothing to denoise") == 0, "got \"%s\"", err.msg);
    CHECK(s.n_distinct == 0 && !s.window && !s.matrix && !s.distinct, "*out not zeroed");
    free(t);
    return 0;
}

/* ---- main -------------------------------------------------------------------------------- */

int main(void) {
    sky_err err;
    if (sky_safetensors_open(&fx, FIXTURES "matrices.safetensors", &err) != SKY_OK) {
        printf("FAIL open: %s\n0 passed, 1 failed\n", err.msg);
        return 1;
    }
    printf("     %s: made by %s, diffusers %s\n", FIXTURES "matrices.safetensors",
           sky_safetensors_metadata(fx, "made_by"), sky_safetensors_metadata(fx, "diffusers"));
    char label[96], prev[64] = "";
    int cases = 0;
    for (int i = 0; i < sky_safetensors_count(fx); i++) {
        const char *nm = sky_safetensors_at(fx, i)->name;
        const char *slash = strchr(nm, '/');
        if (!slash || (size_t)(slash - nm) >= sizeof prev) continue;
        char c[64];
        memcpy(c, nm, (size_t)(slash - nm));
        c[slash - nm] = '\0';
        if (strcmp(c, prev) == 0) continue;
        strcpy(prev, c);
        cur_case = prev;
        snprintf(label, sizeof label, "matrix/%.63s", c);
        RUN_NAMED(label, test_matrix_case);
        cases++;
    }
    if (cases < 20) {
        printf("FAIL matrix fixtures: only %d cases found\n", cases);
        check_state_.failed++;
    }
    RUN(test_row_count_formula);
    RUN(test_each_frame_steps_n_times);
    RUN(test_pin_end);
    RUN(test_matrix_errors);
    RUN(test_long_video_examples);
    RUN(test_short_video);
    RUN(test_extension);
    RUN(test_plan_errors);
    RUN(test_schedule_long_async);
    RUN(test_schedule_long_shared);
    RUN(test_schedule_extension_and_image);
    RUN(test_schedule_end_image);
    RUN(test_schedule_error);
    sky_safetensors_close(fx);
    return CHECK_SUMMARY();
}
