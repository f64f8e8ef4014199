/* runtime/pipeline/forcing.c — diffusion-forcing step matrix and window arithmetic; see forcing.h and
 * shared/reference/dit-and-sampling.md §7.4. */
#include "pipeline/forcing.h"

#include <stdlib.h>
#include <string.h>

#include "models/latent.h"

/* ---- step matrix ------------------------------------------------------------------------- */

/* One row of the recurrence (§7.4.1 step 3) on block values: a block moves one step when it is
 * the first or its predecessor is (nearly) finished, else it trails the predecessor's new value by
 * ar_step; then everything is clamped to [0, K]. int64: the trailing chain can go far below 0. */
static void next_row(const int *prev, int *next, int64_t *tmp, int nb, int K, int ar_step)
{
    for (int b = 0; b < nb; b++) {
        if (b == 0 || prev[b - 1] >= K - 1)
            tmp[b] = (int64_t)prev[b] + 1;
        else
            tmp[b] = tmp[b - 1] - ar_step;
    }
    for (int b = 0; b < nb; b++) next[b] = tmp[b] < 0 ? 0 : tmp[b] > K ? K : (int)tmp[b];
}

/* 1 when every block has reached K - 1 (its last step) or K (pre-ready). */
static int all_finished(const int *row, int nb, int K)
{
    for (int b = 0; b < nb; b++)
        if (row[b] < K - 1) return 0;
    return 1;
}

/* Block values of the first row (pre-ready prefix blocks start at K). */
static void first_row(int *row, int nb, int K, int pre_blocks)
{
    for (int b = 0; b < nb; b++) row[b] = b < pre_blocks ? K : 0;
}

sky_status sky_forcing_step_matrix(int num_frames, const double *step_template, int steps, int base_num_frames,
                                   int ar_step, int num_pre_ready, int causal_block_size, sky_forcing_matrix *out,
                                   sky_err *err)
{
    if (steps < 1) return sky_fail(err, "step matrix: %d steps; need at least 1", steps);
    if (num_frames < 1 || base_num_frames < 1)
        return sky_fail(err, "step matrix: %d frames with a base of %d; both must be at least 1", num_frames,
                        base_num_frames);
    if (causal_block_size < 1)
        return sky_fail(err, "step matrix: causal block size %d; must be at least 1", causal_block_size);
    if (ar_step < 0) return sky_fail(err, "step matrix: ar_step %d; must be at least 0", ar_step);
    if (num_pre_ready < 0) return sky_fail(err, "step matrix: %d pre-ready frames; must be at least 0", num_pre_ready);

    const int cbs = causal_block_size;
    const int nb = num_frames / cbs; /* frames past nb*cbs are never scheduled */
    const int nbb = base_num_frames / cbs;
    const int K = steps + 1; /* index K = finished */
    if (nb == 0) return sky_fail(err, "step matrix: %d frames do not fill one causal block of %d", num_frames, cbs);
    if (nbb == 0)
        return sky_fail(err, "step matrix: a base of %d frames does not fill one causal block of %d", base_num_frames,
                        cbs);
    if (nbb < nb && (int64_t)ar_step * nbb < steps) /* the original's `ar_step >= steps / nbb` */
        return sky_fail(err,
                        "step matrix: ar_step %d is too small for %d blocks in a base of %d "
                        "blocks with %d steps; it must be at least %d",
                        ar_step, nb, nbb, steps, (steps + nbb - 1) / nbb);
    const int pre_blocks = num_pre_ready / cbs;
    if (pre_blocks >= nb)
        return sky_fail(err,
                        "step matrix: all %d blocks are pre-ready (%d pre-ready frames, "
                        "causal block size %d); nothing to denoise",
                        nb, num_pre_ready, cbs);

    int               *prev = malloc((size_t)nb * sizeof *prev);
    int               *next = malloc((size_t)nb * sizeof *next);
    int64_t           *tmp = malloc((size_t)nb * sizeof *tmp);
    sky_forcing_matrix m = {0};
    if (!prev || !next || !tmp) goto oom;

    /* pass 1: count rows (every row moves the first unfinished block, so at most nb * K) */
    int rows = 0;
    first_row(prev, nb, K, pre_blocks);
    while (!all_finished(prev, nb, K)) {
        next_row(prev, next, tmp, nb, K, ar_step);
        memcpy(prev, next, (size_t)nb * sizeof *prev);
        rows++;
        SKY_ASSERT((int64_t)rows <= (int64_t)nb * K);
    }

    const int    frames = nb * cbs;
    const size_t cells = (size_t)rows * (size_t)frames;
    if (cells / (size_t)frames != (size_t)rows) goto oom;
    m.rows = rows;
    m.frames = frames;
    m.steps = steps;
    m.step_index = malloc(cells * sizeof *m.step_index);
    m.timestep = malloc(cells * sizeof *m.timestep);
    m.update = malloc(cells * sizeof *m.update);
    m.interval = malloc((size_t)rows * 2 * sizeof *m.interval);
    if (!m.step_index || !m.timestep || !m.update || !m.interval) goto oom;

    /* pass 2: fill, expanding each block to cbs frames; valid intervals as §7.4.1 step 4 */
    int term = nbb;
    first_row(prev, nb, K, pre_blocks);
    for (int r = 0; r < rows; r++) {
        next_row(prev, next, tmp, nb, K, ar_step);
        for (int b = 0; b < nb; b++) {
            int     k = next[b];
            double  t = k == 0 ? 999 : k == K ? 0 : step_template[k - 1];
            uint8_t upd = (uint8_t)(next[b] != prev[b] && next[b] != K);
            for (int j = 0; j < cbs; j++) {
                size_t c = (size_t)r * (size_t)frames + (size_t)(b * cbs + j);
                m.step_index[c] = k;
                m.timestep[c] = t;
                m.update[c] = upd;
            }
        }
        if (term < nb && next[term] != prev[term] && next[term] != K) term++;
        m.interval[2 * r] = (term - nbb > 0 ? term - nbb : 0) * cbs;
        m.interval[2 * r + 1] = term * cbs;
        memcpy(prev, next, (size_t)nb * sizeof *prev);
    }
    free(prev);
    free(next);
    free(tmp);
    *out = m;
    return SKY_OK;

oom:
    free(prev);
    free(next);
    free(tmp);
    sky_forcing_matrix_free(&m);
    return sky_fail(err, "step matrix: out of memory for %d frames, %d steps, ar_step %d", num_frames, steps, ar_step);
}

void sky_forcing_matrix_pin_end(sky_forcing_matrix *m, int n)
{
    SKY_ASSERT(n >= 0 && n <= m->frames);
    for (int r = 0; r < m->rows; r++) {
        for (int f = m->frames - n; f < m->frames; f++) {
            size_t c = (size_t)r * (size_t)m->frames + (size_t)f;
            m->timestep[c] = 0;
            m->update[c] = 0;
        }
    }
}

void sky_forcing_matrix_free(sky_forcing_matrix *m)
{
    free(m->step_index);
    free(m->timestep);
    free(m->update);
    free(m->interval);
    memset(m, 0, sizeof *m);
}

/* ---- windows ----------------------------------------------------------------------------- */

/* Python's a // b for b > 0 (rounds toward minus infinity). */
static int floor_div(int a, int b) { return a >= 0 ? a / b : -((-a + b - 1) / b); }

sky_df_window sky_df_plan_window(const sky_df_plan *p, int k)
{
    SKY_ASSERT(k >= 0 && k < p->windows);
    const sky_df_request *q = &p->req;
    sky_df_window         w = {0};
    w.index = k;
    if (p->mode == SKY_DF_SHORT || (p->mode == SKY_DF_LONG && k == 0)) {
        w.frames = p->mode == SKY_DF_SHORT ? p->latent_frames : p->base_latent;
        w.prefix = q->has_image ? 1 : 0; /* cbs == 1, checked */
    } else {
        /* §7.4.4 step 2 / §7.4.5: continue after what is done, overlapping Fo latent frames */
        w.done = k * (p->base_latent - p->overlap_latent) + p->overlap_latent;
        int left = p->latent_frames - w.done;
        w.frames = left + p->overlap_latent < p->base_latent ? left + p->overlap_latent : p->base_latent;
        w.prefix = p->overlap_latent; /* divisible by cbs, checked */
        w.prefix_from_video = 1;
        w.drop_pixels = q->overlap_history;
    }
    w.end_frame = q->has_end_image && k == p->windows - 1;
    w.new_pixels = sky_latent_video_frames(w.frames, q->vae_stride_t) - w.drop_pixels;
    return w;
}

int64_t sky_df_plan_output_frames(const sky_df_plan *p)
{
    int64_t n = p->mode == SKY_DF_EXTEND ? p->req.video_frames : 0;
    for (int k = 0; k < p->windows; k++) n += sky_df_plan_window(p, k).new_pixels;
    return n;
}

sky_status sky_df_plan_make(const sky_df_request *req, sky_df_plan *plan, sky_err *err)
{
    const sky_df_request q = *req;
    const int            cbs = q.causal_block_size, st = q.vae_stride_t;
    SKY_ASSERT(st >= 1); /* the generated variant's */
    if (q.num_frames < 1) return sky_fail(err, "--num_frames %d must be at least 1", q.num_frames);
    if (q.base_num_frames < 1) return sky_fail(err, "--base_num_frames %d must be at least 1", q.base_num_frames);
    if (cbs < 1) return sky_fail(err, "--causal_block_size %d must be at least 1", cbs);
    if (q.overlap_history < 0) return sky_fail(err, "--overlap_history %d must be at least 1", q.overlap_history);
    if (q.video_frames < 0) return sky_fail(err, "--video_path: the input video has %d frames", q.video_frames);

    sky_df_plan p = {0};
    p.req = q;
    p.latent_frames = sky_latent_frames(q.num_frames, st);
    if (q.video_frames > 0)
        p.mode = SKY_DF_EXTEND;
    else if (q.overlap_history == 0 || q.num_frames <= q.base_num_frames)
        p.mode = SKY_DF_SHORT;
    else
        p.mode = SKY_DF_LONG;

    /* images: one latent frame each, appended or prefixed; the original drops or mis-schedules
     * them when the causal block is larger (§11.3) */
    if (p.mode == SKY_DF_EXTEND && (q.has_image || q.has_end_image))
        return sky_fail(err, "--image and --end_image cannot be combined with --video_path "
                             "(video extension continues the video instead)");
    if (q.has_image && cbs > 1)
        return sky_fail(err,
                        "--image gives a prefix of 1 latent frame, not divisible by "
                        "--causal_block_size %d (the original silently ignores the image); use "
                        "--causal_block_size 1",
                        cbs);
    if (q.has_end_image && cbs > 1)
        return sky_fail(err,
                        "--end_image adds 1 latent frame, not divisible by --causal_block_size "
                        "%d (the original silently ignores the image); use --causal_block_size 1",
                        cbs);

    if (p.mode == SKY_DF_SHORT) {
        if (q.num_frames > q.base_num_frames) /* here only without --overlap_history */
            return sky_fail(err,
                            "--num_frames %d is more than --base_num_frames %d: a long video "
                            "needs --overlap_history (17 or 37 recommended)",
                            q.num_frames, q.base_num_frames);
        if (p.latent_frames % cbs != 0)
            return sky_fail(err,
                            "--num_frames %d gives %d latent frames, not divisible by "
                            "--causal_block_size %d (the frames past the last whole block would "
                            "stay noise)",
                            q.num_frames, p.latent_frames, cbs);
        p.base_latent = p.latent_frames;
        p.windows = 1;
        *plan = p;
        return SKY_OK;
    }

    /* LONG / EXTEND */
    if (q.overlap_history == 0) /* EXTEND only: LONG is chosen only with an overlap */
        return sky_fail(err, "--video_path needs --overlap_history (17 or 37 recommended): each "
                             "window continues from the last overlap_history frames");
    if (p.mode == SKY_DF_EXTEND && q.video_frames < q.overlap_history)
        return sky_fail(err, "--video_path has %d frames, fewer than --overlap_history %d", q.video_frames,
                        q.overlap_history);
    p.base_latent = sky_latent_frames(q.base_num_frames, st);
    p.overlap_latent = sky_latent_frames(q.overlap_history, st);
    if (p.overlap_latent >= p.base_latent)
        return sky_fail(err,
                        "--overlap_history %d (%d latent frames) must be shorter than "
                        "--base_num_frames %d (%d latent frames)",
                        q.overlap_history, p.overlap_latent, q.base_num_frames, p.base_latent);
    if (p.mode == SKY_DF_EXTEND && p.latent_frames <= p.overlap_latent)
        return sky_fail(err,
                        "--num_frames %d (%d latent frames) leaves nothing to generate after "
                        "--overlap_history %d (%d latent frames); in video extension --num_frames "
                        "counts the overlap too",
                        q.num_frames, p.latent_frames, q.overlap_history, p.overlap_latent);
    p.windows = 1 + floor_div(p.latent_frames - p.base_latent - 1, p.base_latent - p.overlap_latent) + 1;
    SKY_ASSERT(p.windows >= 1);

    /* Only the last window can be shorter than Fb (the others are full): check it, then the full
     * windows, then the overlap prefix that every window after the first (EXTEND: every window)
     * starts from. */
    sky_df_window last = sky_df_plan_window(&p, p.windows - 1);
    int           has_full = p.mode == SKY_DF_LONG || p.windows > 1 || last.frames == p.base_latent;
    if (last.frames != p.base_latent && last.frames % cbs != 0)
        return sky_fail(err,
                        "--num_frames %d with --base_num_frames %d --overlap_history %d gives "
                        "a last window of %d latent frames, not divisible by --causal_block_size %d",
                        q.num_frames, q.base_num_frames, q.overlap_history, last.frames, cbs);
    if (has_full && p.base_latent % cbs != 0)
        return sky_fail(err,
                        "--base_num_frames %d gives windows of %d latent frames, not divisible "
                        "by --causal_block_size %d",
                        q.base_num_frames, p.base_latent, cbs);
    if ((p.mode == SKY_DF_EXTEND || p.windows > 1) && p.overlap_latent % cbs != 0)
        return sky_fail(err,
                        "--overlap_history %d gives a prefix of %d latent frames, not "
                        "divisible by --causal_block_size %d (the original truncates it and loses "
                        "continuity)",
                        q.overlap_history, p.overlap_latent, cbs);
    *plan = p;
    return SKY_OK;
}

/* ---- a run's schedule -------------------------------------------------------------------- */

/* The matrix of an earlier window of the same shape as w, or NULL. */
static const sky_forcing_matrix *same_shape(const sky_df_schedule *s, int k, sky_df_window w)
{
    for (int j = 0; j < k; j++) {
        const sky_df_window v = s->window[j];
        if (v.frames == w.frames && v.prefix == w.prefix && v.end_frame == w.end_frame) return s->matrix[j];
    }
    return NULL;
}

sky_status sky_df_schedule_make(const sky_df_plan *plan, const double *timesteps, int steps, int ar_step,
                                sky_df_schedule *out, sky_err *err)
{
    const int       n = plan->windows;
    sky_df_schedule s = {.plan = *plan};
    memset(out, 0, sizeof *out);
    s.window = malloc((size_t)n * sizeof *s.window);
    s.matrix = malloc((size_t)n * sizeof *s.matrix);
    s.distinct = calloc((size_t)n, sizeof *s.distinct);
    if (!s.window || !s.matrix || !s.distinct) {
        sky_df_schedule_free(&s);
        return sky_fail(err, "out of memory for the schedule of %d windows", n);
    }
    for (int k = 0; k < n; k++) {
        const sky_df_window w = s.window[k] = sky_df_plan_window(plan, k);
        if ((s.matrix[k] = same_shape(&s, k, w))) continue;
        /* §7.4.2: the window's frames and the appended end frame, base = the same, the prefix pre-ready */
        sky_forcing_matrix *m = &s.distinct[s.n_distinct];
        const int           frames = w.frames + w.end_frame;
        if (sky_forcing_step_matrix(frames, timesteps, steps, frames, ar_step, w.prefix, plan->req.causal_block_size, m,
                                    err)) {
            sky_df_schedule_free(&s);
            return SKY_ERR;
        }
        if (w.end_frame) sky_forcing_matrix_pin_end(m, 1);
        s.n_distinct++;
        s.matrix[k] = m;
    }
    *out = s;
    return SKY_OK;
}

int sky_df_schedule_rows(const sky_df_schedule *s, int k0)
{
    int rows = 0;
    for (int k = k0; k < s->plan.windows; k++) rows += s->matrix[k]->rows;
    return rows;
}

void sky_df_schedule_free(sky_df_schedule *s)
{
    for (int i = 0; s->distinct && i < s->n_distinct; i++) sky_forcing_matrix_free(&s->distinct[i]);
    free(s->window);
    free(s->matrix);
    free(s->distinct);
    memset(s, 0, sizeof *s);
}
