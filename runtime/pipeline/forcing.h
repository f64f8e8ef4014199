/* runtime/pipeline/forcing.h — diffusion forcing: the per-row step matrix of one denoising window
 * (the original's generate_timestep_matrix) and the long-video / extension window arithmetic.
 *
 * Math: shared/reference/dit-and-sampling.md §7.4.1 (matrix), §7.4.3 (short video), §7.4.4 (long
 * video), §7.4.5 (video extension), §11 (quirks). Fixtures: tests/fixtures/sampler/matrices.safetensors
 * (diffusers 0.36 generate_timestep_matrix, identical to the original's on every case).
 *
 * Units: the step matrix works in LATENT frames; sky_df_request holds the CLI's PIXEL frame counts
 * (--num_frames, --base_num_frames, --overlap_history), converted as F = (n - 1)/4 + 1 with the variant's
 * temporal stride 4 (models/latent.h).
 *
 * Where the original silently drops frames, this port refuses with a message naming the flags
 * (sky_df_plan_make): window or prefix lengths that --causal_block_size does not divide (§11.4: the
 * tail frames would stay noise), a start/end image with --causal_block_size > 1 (§11.3), a long video
 * without --overlap_history, an overlap not shorter than the window.
 */
#ifndef SKY_FORCING_H
#define SKY_FORCING_H

#include "core/status.h"

/* ---- step matrix (§7.4.1) ---------------------------------------------------------------- */

/* rows x frames, row-major. Row r says, for every frame f of the window: the index into the
 * extended template [999, T_0 .. T_{N-1}, 0] (0 = still pure noise, fed t = 999, not updated;
 * k in 1..N = fed t = T_{k-1} and takes its k-th solver step; N+1 = finished, fed t = 0), the
 * timestep fed to the model, and whether the frame is updated by its sampler this row. Timesteps are
 * doubles: UniPC's are integers, flow-match Euler's are 1000 sigma (sampler.h). */
typedef struct sky_forcing_matrix {
    int      rows;
    int      frames;     /* (num_frames / cbs) * cbs: frames past the last whole block are never scheduled */
    int      steps;      /* N */
    int     *step_index; /* [rows * frames], 0 .. N+1 */
    double  *timestep;   /* [rows * frames] */
    uint8_t *update;     /* [rows * frames], 0 or 1 */
    int     *interval;   /* [rows * 2]: frames [start, end) given to the model in row r */
} sky_forcing_matrix;

/* generate_timestep_matrix(num_frames, step_template, base_num_frames, ar_step, num_pre_ready,
 * causal_block_size) of the original, exactly (blocks of cbs frames; nb = num_frames / cbs,
 * nbb = base_num_frames / cbs; block b is pre-ready for b < num_pre_ready / cbs; a block starts one
 * row after its predecessor finished or ar_step rows behind it; columns repeated cbs times,
 * intervals scaled by cbs). step_template holds steps timesteps (the schedule's). The pipelines
 * always pass base_num_frames = num_frames, so every interval is [0, frames); a larger base gives
 * intervals ending past the last frame, as upstream.
 * Errors (sky_fail, *out untouched): steps < 1, num_frames < 1, base_num_frames < 1,
 * causal_block_size < 1, ar_step < 0, num_pre_ready < 0; no whole block (num_frames < cbs);
 * nothing to schedule (every block pre-ready: the original crashes); base shorter than the
 * frames with ar_step < steps / base blocks (the original's assertion); out of memory.
 * On success *out owns its arrays: release with sky_forcing_matrix_free(). */
sky_status sky_forcing_step_matrix(int num_frames, const double *step_template, int steps, int base_num_frames,
                                   int ar_step, int num_pre_ready, int causal_block_size, sky_forcing_matrix *out,
                                   sky_err *err);

/* Pin the last n frames (an appended end-image latent, §7.4.3): timestep 0 and no update in every
 * row, as the original does after building the matrix (step_index is left as built). */
void sky_forcing_matrix_pin_end(sky_forcing_matrix *m, int n);

/* Free the arrays and zero *m. Safe on a zeroed or already freed matrix. */
void sky_forcing_matrix_free(sky_forcing_matrix *m);

/* ---- windows (§7.4.3 - §7.4.5) ---------------------------------------------------------- */

typedef enum sky_df_mode {
    SKY_DF_SHORT = 0, /* one window over the whole video (no --overlap_history, or it fits) */
    SKY_DF_LONG = 1,  /* num_frames > base_num_frames with --overlap_history */
    SKY_DF_EXTEND = 2 /* --video_path: every window continues the video so far */
} sky_df_mode;

/* The DF flags that shape the windows, as given on the command line (pixel frames). */
typedef struct sky_df_request {
    int num_frames;        /* --num_frames (>= 1) */
    int base_num_frames;   /* --base_num_frames (>= 1) */
    int overlap_history;   /* --overlap_history; 0 = not given (the CLI rejects an explicit 0) */
    int causal_block_size; /* --causal_block_size (>= 1) */
    int has_image;         /* --image given */
    int has_end_image;     /* --end_image given */
    int video_frames;      /* --video_path: pixel frames of the input video; 0 = no video */
    int vae_stride_t;      /* the variant's (program.h: 4): pixel frames per latent frame after the first */
} sky_df_request;

typedef struct sky_df_plan {
    sky_df_mode    mode;
    sky_df_request req;            /* copy of the request */
    int            latent_frames;  /* F = (num_frames - 1)/4 + 1 (4: req.vae_stride_t) */
    int            base_latent;    /* Fb = (base_num_frames - 1)/4 + 1; F in SHORT mode */
    int            overlap_latent; /* Fo = (overlap_history - 1)/4 + 1; 0 in SHORT mode */
    int            windows;        /* n_iter = 1 + floor((F - Fb - 1) / (Fb - Fo)) + 1; 1 in SHORT mode */
} sky_df_plan;

/* One window: build the step matrix for frames + end_frame latent frames (base = the same) with
 * num_pre_ready = prefix, pin the end frame if any, denoise, decode, append. */
typedef struct sky_df_window {
    int index;             /* k, 0 .. windows-1 */
    int frames;            /* Fw: latent frames denoised together, prefix included, end frame not */
    int prefix;            /* clean latent frames at the start (0, 1 for a start image, or Fo) */
    int prefix_from_video; /* 1: the prefix is the VAE encoding of the last overlap_history pixel
                                 frames of the video so far (input video + output); 0: image or none */
    int end_frame;         /* 1: the end-image latent is appended after the frames (last window) */
    int done;              /* latent frames finished before this window (§7.4.4 "done"; 0 for a
                                 first window that has no video prefix) */
    int drop_pixels;       /* decoded pixel frames dropped from the front (the re-decoded overlap) */
    int new_pixels;        /* pixel frames appended to the output: 4*(frames-1)+1 - drop_pixels */
} sky_df_window;

/* Choose the mode as the original does (extension if video_frames > 0; else short if no overlap or
 * num_frames <= base_num_frames; else long), compute F, Fb, Fo, n_iter, and check every window.
 * Errors name the flags, e.g. "--num_frames 237 with --base_num_frames 97 --overlap_history 17
 * gives a last window of 20 latent frames, not divisible by --causal_block_size 3". */
sky_status sky_df_plan_make(const sky_df_request *req, sky_df_plan *plan, sky_err *err);

/* Window k in [0, plan->windows) of a plan from sky_df_plan_make(). */
sky_df_window sky_df_plan_window(const sky_df_plan *plan, int k);

/* Pixel frames of the final video (the input video's frames included in EXTEND mode). */
int64_t sky_df_plan_output_frames(const sky_df_plan *plan);

/* ---- a run's schedule (§7.4.2) ---------------------------------------------------------- */

/* Everything a DF run denoises, computed once before its first window: the plan's windows and the step
 * matrix each one runs (built for frames + end_frame latent frames with base_num_frames the same and
 * num_pre_ready = prefix, the end frame pinned). Windows of the same frames, prefix and end frame share one
 * matrix, so a long video holds at most three however many windows it has. */
typedef struct sky_df_schedule {
    sky_df_plan                plan;
    sky_df_window             *window;   /* [plan.windows] */
    const sky_forcing_matrix **matrix;   /* [plan.windows]: window k's step matrix, one of distinct[] */
    sky_forcing_matrix        *distinct; /* [n_distinct], owned */
    int                        n_distinct;
} sky_df_schedule;

/* The schedule of a plan from sky_df_plan_make() for a sampler's timesteps (steps of them, the template of
 * sky_forcing_step_matrix) and --ar_step. Errors: those of sky_forcing_step_matrix for the first window
 * that has one (e.g. a start image that is the whole window: nothing to denoise), out of memory; *out is
 * then zeroed. On success release with sky_df_schedule_free(). */
sky_status sky_df_schedule_make(const sky_df_plan *plan, const double *timesteps, int steps, int ar_step,
                                sky_df_schedule *out, sky_err *err);

/* The rows of windows k0 .. plan.windows - 1 (a model evaluation each, with guidance): what is left to
 * denoise after k0 windows. */
int sky_df_schedule_rows(const sky_df_schedule *s, int k0);

/* Free the arrays and zero *s. Safe on a zeroed or already freed schedule. */
void sky_df_schedule_free(sky_df_schedule *s);

#endif /* SKY_FORCING_H */
