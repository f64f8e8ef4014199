/* runtime/pipeline/denoise.h — what the pipelines share (internal to runtime/pipeline/): the run's state, the
 * models' lifetimes (--offload, --use_cfg_parallel), one model evaluation with classifier-free guidance (and
 * TeaCache's decisions in order), progress on stderr, and the outputs (mp4 frames, --output_latents).
 *
 * pipeline.c opens what a run needs and calls one of the two pipelines declared last (t2v_i2v.c, df.c).
 * Latents are [C, F, h, w] fp32, channels first (C = 16); pixels are [3, T, H, W] in [-1, 1]. The mp4 is
 * written as frames are decoded, so memory is bounded by one window, not by the length of the video.
 */
#ifndef SKY_DENOISE_H
#define SKY_DENOISE_H

#include "core/status.h"
#include "formats/safetensors.h"
#include "formats/safetensors_write.h"
#include "models/dit.h"
#include "models/teacache.h"
#include "models/vae.h"
#include "pipeline/noise.h"
#include "pipeline/pipeline.h"
#include "video/video.h"

/* Progress on stderr: "denoise  40%|########            | 12/30 [01:02<01:33,  5.18s/it]". */
typedef struct sky_progress {
    const char *what;
    int         total, done, quiet, tty;
    double      start;
} sky_progress;

/* The kinds of work the ETA counts in FLOPs (denoise.c's eta()): each is timed by its stage (text: encoding,
 * dit: denoising, the VAE's: vae_decode, vae_encode). */
typedef enum sky_work { SKY_WORK_TEXT = 0, SKY_WORK_DIT, SKY_WORK_DECODE, SKY_WORK_ENCODE, SKY_WORK_N } sky_work;

/* A run's state: the models, the prompt embeddings, the outputs. */
typedef struct sky_denoise {
    const sky_variant_desc *v;
    const sky_gen_args     *a;
    sky_lora               *lora;           /* --lora: the deltas, open for the whole run (NULL: none) */
    sky_dit                *dit;            /* NULL while released (--offload) */
    sky_dit                *dit_u;          /* --use_cfg_parallel: the uncond pass's transformer on GPU 1 (NULL
                                             * otherwise, or while released) */
    int                     cfg_parallel;   /* --use_cfg_parallel and the run has uncond passes */
    int                     offload_blocks; /* --offload_blocks resolved (auto: from the plan; pipeline.c), 0: off */
    sky_teacache            tc;             /* --teacache */
    sky_teacache           *tcp;            /* &tc, or NULL without --teacache */
    sky_dit_skip            skip;           /* TeaCache's decision on tc, for one transformer */
    struct tc_order        *order;          /* with --use_cfg_parallel: the decisions in order */
    long long               prompt_runs[2]; /* forwards of closed transformers that ran / reused the prompt part
                                             * (sky_dit_prompt_counts) */
    sky_vae                *dec, *enc;      /* NULL while released (--offload) or not needed */
    int                     vae_tiled;      /* decode and encode in tiles: --vae_tiling, or chosen because the VAE
                                             * decoder at the frame's size does not fit the device (pipeline.c) */
    int                     has_vae;        /* VAE weights given: decode to an mp4 */
    sky_noise               noise;
    float                  *ctx, *ctx_null, *clip; /* prompt embeddings (and CLIP features) */
    int                     h, w;                  /* latent size of this run */
    size_t                  hw;
    sky_video_writer       *writer;
    sky_st_entry            keep[64]; /* tensors for --output_latents */
    int                     n_keep;
    float                  *video; /* all frames, only for --output_latents */
    int                     video_frames;
    sky_progress            prog;
    uint64_t                latents_hash;             /* sky_denoise_hash_latents over the final latents so far */
    sky_run_stats           stats;                    /* the stages' times so far */
    sky_stage               stage;                    /* the stage running (its time counts from stage_t0) */
    double                  stage_t0, t0;             /* when it started; when the run started */
    int                     windows, windows_done;    /* DF's windows (1 otherwise), for the ETA */
    double                  work_planned[SKY_WORK_N]; /* FLOPs of each kind the run does (sky_denoise_work_plan) */
    double                  work_done[SKY_WORK_N];    /* ... and has done */
    double                  step_flops;               /* FLOPs of one evaluation of the steps running */
} sky_denoise;

/* ---- progress ------------------------------------------------------------------------------- */

/* Seconds on a monotonic clock. */
double sky_denoise_now(void);
/* Enter stage s: the time since the last change counts to the stage left, which is returned (to enter again
 * after a nested stage, with fmt NULL). fmt: the label printed (a line of text, or with --progress json
 * {"event": "stage", "stage": ..., "label": ..., "elapsed": ...}); NULL prints nothing. */
sky_stage sky_denoise_stage(sky_denoise *r, sky_stage s, const char *fmt, ...) SKY_PRINTF(3, 4);
/* The stages' times closed at now, peak memory, into r->stats; then the table on stderr (or a JSON "done" line)
 * unless quiet. */
void sky_denoise_stats_end(sky_denoise *r);

/* The ETA is the work left in FLOPs over the rate each kind of work ran at so far (sky_work). The pipelines
 * plan the run's work up front (sky_denoise_work_plan); the work done is counted here: a step adds
 * r->step_flops (set it with the frames of the steps to come), a VAE call its latent frames, text encoding
 * each prompt. */
/* FLOPs of one model evaluation of F latent frames: `passes` forwards (2 with guidance's uncond pass). */
double sky_denoise_flops_dit(const sky_denoise *r, int F, int passes);
/* FLOPs of the VAE decoding (decode = 1) or encoding F latent frames (the first call of a sequence counted as
 * a full one); 0 without that VAE program. */
double sky_denoise_flops_vae(const sky_denoise *r, int decode, int F);
/* Add flops to the run's planned work of kind k; sky_denoise_work_done, to the work done. */
void sky_denoise_work_plan(sky_denoise *r, sky_work k, double flops);
void sky_denoise_work_done(sky_denoise *r, sky_work k, double flops);

/* Start r->prog at 0 of `total` model evaluations (redrawn in place on a terminal, a line each otherwise). */
void sky_denoise_progress_start(sky_denoise *r, int total);
/* One more evaluation done. */
void sky_denoise_progress_step(sky_denoise *r);
/* SKY_ERR "interrupted" when a signal asked to stop (a->interrupted); checked between steps. */
sky_status sky_denoise_check_interrupt(const sky_denoise *r, sky_err *err);
/* SKY_ERR naming the step (and the DF window: window >= 0 of windows) when the latents x[0..n) hold a NaN
 * or Inf, so a diverged run stops with no video rather than writing a black one (issue 15 item 6). One
 * read of the latents on the host per step, on both backends (the sampler steps them there). */
/* Fold final latents x[0..n) (T2V/I2V: the one latent; DF: each window's, in order) into r->latents_hash:
 * XXH64 of their fp32 bytes, seeded with the hash so far (0 at the start). Stored in the mp4 and
 * --output_latents as latents_xxh64, so two runs compare without decoding (issue 15 item 9). */
void       sky_denoise_hash_latents(sky_denoise *r, const float *x, size_t n);
sky_status sky_denoise_check_latents(const float *x, size_t n, int step, int steps, int window, int windows,
                                     sky_err *err);

/* sky_denoise_check_interrupt at a named phase of the run: "load" (opening the models), "encode" (the
 * prompts and the image), "step" (each denoising step, each DF row), "vae_decode" and "vae_encode" (after each
 * VAE pass), "finish" (before the outputs are written), "mp4" (before the mp4 is finalised), "done" (the
 * outputs written). Test only: with SKY_TEST_SIGNAL_AT=<phase>[:<signal number>[:<times>]] in the
 * environment the process first raises that signal (SIGINT by default) at that phase (once by default), so
 * that the tests interrupt a run at a chosen phase without timing (tests/runtime/test_life_cycle.sh). */
sky_status sky_denoise_phase(const sky_denoise *r, const char *phase, sky_err *err);

/* ---- the models' lifetimes ------------------------------------------------------------------- */

/* Without --offload every model the run needs is opened before the first step and kept to the end. With
 * --offload (the original moves each model to the CPU between stages), a model is opened for each use and
 * closed after it, so only one of the transformer, the VAE decoder and the VAE encoder holds its weights
 * (and, on the GPU, its arena) at a time; each use reloads it from its checkpoint, which was checked before
 * the first step. */

/* Open the transformer; with --use_cfg_parallel also the uncond passes' one (GPU 1), both loading at once. */
sky_status sky_denoise_open_dits(sky_denoise *r, sky_err *err);
/* The transformer(s) for the next steps: opened if released (TeaCache's state then knows of no residual). */
sky_status sky_denoise_use_dit(sky_denoise *r, sky_err *err);
/* After a stage's steps: released under --offload. */
void sky_denoise_done_dit(sky_denoise *r);
/* Close the transformer(s), adding their prompt-part counts to r->prompt_runs. */
void sky_denoise_close_dits(sky_denoise *r);
/* Open the VAE decoder (decode = 1) or encoder, if not open. */
sky_status sky_denoise_use_vae(sky_denoise *r, int decode, sky_err *err);
/* Decode F latent frames z [C, F, h, w] into px [3, T, H, W] (T: models/latent.h), opening the decoder for it
 * under --offload. */
sky_status sky_denoise_vae_decode(sky_denoise *r, const float *z, int F, float *px, sky_err *err);
/* Encode T video frames [3, T, H, W] into z, opening the encoder for it under --offload. */
sky_status sky_denoise_vae_encode(sky_denoise *r, const float *video, int T, float *z, sky_err *err);

/* TeaCache (--teacache) over runs of num_steps calls, on the open transformer(s); under --use_cfg_parallel
 * the two passes decide on one state in the order of a one-transformer run. */
sky_status sky_denoise_teacache_start(sky_denoise *r, int num_steps, sky_err *err);

/* ---- guidance ------------------------------------------------------------------------------------ */

/* One model evaluation of F latent frames x (and y, I2V) at timesteps t (Ft of them: 1 or F) with
 * classifier-free guidance: v = v_u + g (v_c - v_u), tmp [C, F, h, w] holding v_u. The callers skip the uncond
 * pass (skip_uncond: v = v_c) for T2V/I2V at g == 1, where the formula is v_c (diffusers skips it too), and for
 * DF at g <= 1 (reference §7.1); check_cfg_parallel in pipeline.c is the same rule. With --use_cfg_parallel
 * the uncond pass runs on the second transformer in a thread of its own while this thread runs the cond
 * pass: the same two forwards on the same inputs, so the same numbers. */
void sky_denoise_guided(sky_denoise *r, int F, const float *x, const float *y, const double *t, int Ft, float *v,
                        float *tmp, int skip_uncond);

/* ---- inputs and outputs ------------------------------------------------------------------------- */

/* Refuse up front an image whose crop box for an H x W video (reference §7.3) keeps no pixel on a side (a
 * 1 x 1 image for a 4:3 video: crop 1 x 0), which swscale cannot resize; 1 pixel resizes. */
sky_status sky_denoise_check_image(const char *path, int H, int W, sky_err *err);
/* An image as [3, H, W] in [-1, 1]: center-cropped to H:W, resized to W x H with swscale (`lanczos` for I2V as
 * the original's VideoProcessor, else bicubic as its DF PIL resize; at the target size both are the identity;
 * other sizes differ from PIL's filters in the last bits). */
sky_status sky_denoise_load_image(const char *path, int H, int W, int lanczos, float *dst, sky_err *err);
/* Keep a copy of a tensor for --output_latents (written at the end; nothing without the flag). */
sky_status sky_denoise_keep(sky_denoise *r, const char *name, const float *data, int ndim, const int64_t *shape,
                            sky_err *err);
/* Hand decoded frames [3, T, H, W] (frames [t0, T)) to the mp4 writer and, for --output_latents, to the kept
 * video. */
sky_status sky_denoise_emit_frames(sky_denoise *r, const float *px, int T, int t0, sky_err *err);
/* One frame [3, H, W] in [-1, 1] to the same outputs, under the caller's stage; rgb: 3*H*W bytes of scratch. */
sky_status sky_denoise_emit_frame(sky_denoise *r, const float *frame, uint8_t *rgb, sky_err *err);
/* Decode latents [C, F, h, w] and emit frames [drop, T) (nothing without a VAE). */
sky_status sky_denoise_decode_and_emit(sky_denoise *r, const float *z, int F, int drop, sky_err *err);

/* Release everything r holds (safe on a partly opened run). */
void sky_denoise_free(sky_denoise *r);

/* ---- the pipelines ------------------------------------------------------------------------------ */

/* T2V and I2V (reference §7.2, §7.3; t2v_i2v.c). */
sky_status sky_pipeline_t2v_i2v(sky_denoise *r, sky_err *err);
/* Diffusion forcing (reference §7.4; df.c). */
sky_status sky_pipeline_df(sky_denoise *r, sky_err *err);

#endif /* SKY_DENOISE_H */
