/* runtime/pipeline/pipeline.h — the T2V, I2V and diffusion-forcing pipelines over the generated programs
 * (pipeline.c: the entry; denoise.h: what they share; t2v_i2v.c and df.c: the pipelines).
 *
 * Follows the original SkyReels-V2 pipelines (shared/reference/dit-and-sampling.md §7):
 *   T2V  noise -> N UniPC steps with classifier-free guidance (cond and uncond passes every step)
 *   I2V  as T2V with y = [mask (1 for latent frame 0), VAE(image, then num_frames-1 zero frames)]
 *        and the CLIP features of the image
 *   DF   windows of the step matrix (forcing.h): synchronous or asynchronous, a start image,
 *        an end image, long videos (prefix = VAE encoding of the last overlap_history decoded
 *        frames), video extension, addnoise_condition
 * then VAE decode and an mp4. Deliberate differences from the original (each in the README):
 * the addnoise draws come from the seeded generator; the CPU backend keeps DF latents in fp32
 * (the original keeps them in bf16); portrait video extension keeps its size; frame counts that
 * the original would silently leave as noise are refused.
 *
 * The prompts go through the tokenizer and umT5 (and, for I2V, the image through CLIP); for debugging,
 * --prompt_embeds gives the embeddings instead: a safetensors with context [text_len, text_dim] (the
 * prompt), context_null (the negative prompt) and, for I2V, optionally clip_fea [image_len, image_dim].
 */
#ifndef SKY_PIPELINE_H
#define SKY_PIPELINE_H

#include "models/lora.h"
#include "models/program.h"
#include "core/status.h"
#include "pipeline/sampler.h"
#include "pipeline/forcing.h"

/* Everything a generation needs, from the command line (runtime/cli/generate.c). Pixel frame counts. */
/* The stages of a run that take time, each labelled on stderr as it starts and timed (sky_run_stats). */
typedef enum sky_stage {
    SKY_STAGE_LOAD,       /* opening a model: reading and converting its weights */
    SKY_STAGE_ENCODE,     /* the prompts (umT5 or --prompt_embeds) and CLIP */
    SKY_STAGE_DENOISE,    /* the transformer's steps */
    SKY_STAGE_VAE_DECODE, /* latents to frames */
    SKY_STAGE_VAE_ENCODE, /* frames to latents (I2V's image, DF's start/end frames and window prefixes) */
    SKY_STAGE_WRITE,      /* frames into the mp4, the mp4 closed, --output_latents */
    SKY_STAGE_N
} sky_stage;

/* "loading", "encoding", "denoising", "vae_decode", "vae_encode", "writing". */
const char *sky_stage_name(sky_stage s);

/* What a run measured (sky_gen_args.stats). */
typedef struct sky_run_stats {
    double    seconds[SKY_STAGE_N]; /* wall time per stage */
    double    total;                /* wall time of sky_pipeline_run */
    long long evaluations;          /* steps (DF: step-matrix rows) denoised */
    int       windows;              /* DF's windows (1 otherwise) */
    long      peak_rss_kib;         /* peak resident host memory of the process (getrusage) */
    uint64_t  latents_xxh64;        /* XXH64 of the final latents (the mp4's latents_xxh64 tag) */
    /* --backend cuda (the CPU backend: -1 and ""): the most device memory the CUDA plugin's own allocations held
     * at once (weights, arenas with their workspaces, TeaCache's buffers; sky_cuda_plugin.mem_bytes), summed
     * over its GPUs; GPU 0's name and the driver ("CUDA driver 13.0") as the driver gives them ("" unknown). */
    double peak_device_bytes;
    char   device[256], driver[64];
} sky_run_stats;

typedef struct sky_gen_args {
    const char   *prompt; /* recorded in the output's metadata and name */
    const char   *negative_prompt;
    int           num_frames;
    double        guidance_scale, shift;
    int           inference_steps;
    int           fps;
    uint64_t      seed;
    int           height, width; /* pixels of this run (the spec's, swapped for a portrait input) */
    const char   *image, *end_image, *video_path;
    int           ar_step, causal_block_size, base_num_frames, overlap_history, addnoise_condition;
    int           teacache, use_ret_steps; /* TeaCache (runtime/models/teacache.h) */
    int           offload;                 /* each model opened for each use and closed after it */
    int           offload_blocks;          /* --offload_blocks N: N transformer blocks on the GPU (0: all; -1: auto,
                                              resolved from the plan and free memory before loading) */
    int           vae_tiling;              /* --vae_tiling: decode in tiles (models/vae.h sky_vae_decode_tiled) */
    int           vae_tile_px, vae_tile_stride_px;
    int           cfg_parallel; /* --use_cfg_parallel: the uncond pass on a second transformer (GPU 1),
                                            * at the same time as the cond pass */
    const char   *resume_dir;   /* DF: keep finished windows here and continue after them (resume.h) */
    double        teacache_thresh;
    const char   *output;         /* the mp4 path (cli/ builds the original's name if not given) */
    const char   *dit_weights;    /* transformer checkpoint */
    const char   *vae_weights;    /* VAE checkpoint; NULL: stop after the latents */
    const char   *prompt_embeds;  /* see above; NULL: encode the prompts with umT5 */
    const char   *text_weights;   /* umT5 checkpoint (.pth or text_encoder/) */
    const char   *tokenizer;      /* tokenizer directory or spiece.model */
    const char   *clip_weights;   /* CLIP checkpoint (I2V) */
    const char   *noise_file;     /* NULL: the seeded generator */
    const char   *output_latents; /* also write the final latents here */
    const char   *args_json;      /* the run's parameters as JSON, for the mp4's comment */
    int           quiet;
    int           backend;     /* sky_backend (backend.h) of the transformer */
    volatile int *interrupted; /* set by a signal handler; checked between steps */

    sky_solver           solver; /* --sample_solver: unipc (the original's) or euler (sampler.h) */
    const sky_lora_spec *loras;  /* --lora: merged into the transformer's weights as it loads (lora.h) */
    int                  n_loras;
    int                  lora_skip_unknown; /* --lora_unknown_keys warn: keys matching no weight skipped */
    int                  weight_fp8;        /* --weight_dtype fp8 (models/fp8_quant.h) */
    int                  progress_json;     /* --progress json: one JSON object per line on stderr, no text */
    sky_run_stats       *stats;             /* filled at the end of a successful run when not NULL */

    /* DF without --video_path: the windows the command line checked (sky_pipeline_df_plan). NULL: the run
     * makes them (always with --video_path, once the video is read: its length decides them). */
    const sky_df_plan *df_plan;

    /* --use_usp: this rank's collectives (runtime/dist/usp.h; NULL: one process). Every rank runs the whole run
     * with the same arguments (text encoding, VAE and sampler replicated, as the original does), the transformer
     * as dit_forward_usp over the ranks; cli/ gives the other ranks than 0 no outputs and quiet. With the CUDA
     * backend, nccl is the rank's NCCL communicator (dist/usp_cuda.h) and device its GPU. */
    const sky_comm *comm;
    void           *nccl;
    int             device;
} sky_gen_args;

/* Run the variant's pipeline (T2V, I2V or DF by its family). Flags were validated by cli/;
 * files are checked here before the first step. Returns SKY_ERR with a message, or with
 * *a->interrupted set when stopped by a signal (nothing half-written is left). */
sky_status sky_pipeline_run(const sky_variant_desc *v, const sky_gen_args *a, sky_err *err);

/* The DF windows of a run of variant v with a's flags (forcing.h; the variant's temporal stride), and
 * video_frames: the input video's frames (--video_path), else 0. The errors of sky_df_plan_make, naming the
 * flags. */
sky_status sky_pipeline_df_plan(const sky_variant_desc *v, const sky_gen_args *a, int video_frames, sky_df_plan *plan,
                                sky_err *err);

#endif /* SKY_PIPELINE_H */
