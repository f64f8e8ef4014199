/* runtime/models/program.h — what generated code hands the runtime: the variant's description.
 *
 * gen/emit/variant.lua writes one `sky_variant_desc` per variant (out/<variant>/gen/variant.c)
 * and the runtime reads it; the runtime never depends on a particular variant. Sizes here
 * were fixed at generation time from the spec; the arena offsets come from gen/plan.lua.
 */
#ifndef SKY_PROGRAM_H
#define SKY_PROGRAM_H

#include <stddef.h>
#include <stdint.h>

#include "core/status.h"
#include "formats/weights.h" /* sky_weight_desc, sky_weight_reader */

/* One arena slot the runtime writes before a call (an input) or reads after it (an output). */
typedef struct sky_slot {
    size_t offset; /* bytes from the arena start */
    size_t bytes;  /* capacity at the largest window */
} sky_slot;

/* Op-by-op tracing, for debugging (`program ... --trace FILE`, runtime/models/trace.h). Generated CPU
 * programs call the hook, when set, after every op with the op's output; the CUDA plugin does the
 * same through its sky_cuda_program. One test per op when unset. */
enum { SKY_TRACE_F32 = 0, SKY_TRACE_BF16 = 1, SKY_TRACE_F64 = 2, SKY_TRACE_I64 = 3, SKY_TRACE_SECONDS = 4 };
/* SKY_TRACE_SECONDS: data is one double, the op's device time (the CUDA plugin's timing, bench); n its output's
 * element count. */
/* cl > 0: data is channels-last, rows of cl channels, and is traced transposed to [cl][n / cl] (the
 * CPU backend's channels-first order; the CUDA VAE keeps activations channels-last). */
typedef void (*sky_trace_fn)(void *ctx, const char *name, const void *data, int dtype, long long n, int cl);
extern sky_trace_fn sky_trace_hook;
extern void        *sky_trace_ctx;

/* The collectives of the ranks of one run (Ulysses sequence parallelism, dit_forward_usp): the generated programs
 * call them through this table and never link MPI; the runtime fills it (runtime/dist/usp.h, over MPI). Every rank
 * calls each collective at the same point of the program with the same count; a failure ends the job (MPI's
 * errors are fatal), none returns an error. */
typedef struct sky_comm {
    int   rank, size; /* this rank, 0 .. size - 1, of size ranks */
    void *ctx;        /* the implementation's state */
    /* block p of send (count floats at send + p count) goes to rank p; recv gets rank p's block at recv + p count */
    void (*alltoall)(const struct sky_comm *c, const float *send, float *recv, long long count);
    /* every rank's count floats of send, in rank order, into recv (size x count floats) */
    void (*allgather)(const struct sky_comm *c, const float *send, float *recv, long long count);
    /* The CFG axis (--use_usp --use_cfg_parallel on 2 N ranks; the runtime's, not the programs'): cfg_group -1
     * without it, else 0 (these N ranks run the conditional passes) or 1 (the unconditional ones); rank and size
     * above are then within the group. cfg_swap sends count floats to the rank of the other group at the same
     * rank and receives its count floats into recv. */
    int cfg_group;
    void (*cfg_swap)(const struct sky_comm *c, const float *send, float *recv, long long count);
} sky_comm;

/* CPU call of one part of dit_forward_usp on rank comm->rank of comm->size: as sky_dit_part_cpu_fn. */
typedef void (*sky_dit_usp_part_cpu_fn)(unsigned char *arena, unsigned char *prompt, const float *const *w, int F,
                                        int H, int W, int Ft, const sky_comm *comm);

/* CPU call of one part of dit_forward for one sample: arena laid out by the plan, prompt the prompt arena
 * of the sample's prompt (prompt_bytes; gen/plan.lua), weights as fp32 in table order. F latent frames,
 * H x W latent size of this call, Ft timestep rows (1 or F). */
typedef void (*sky_dit_part_cpu_fn)(unsigned char *arena, unsigned char *prompt, const float *const *w, int F, int H,
                                    int W, int Ft);

/* The dit_forward program (shared/reference/dit-and-sampling.md §2). */
typedef struct sky_dit_program {
    int                    dim, ffn_dim, num_heads, num_layers, freq_dim;
    int                    text_len, text_dim;     /* context [text_len, text_dim] */
    int                    image_len, image_dim;   /* clip_fea [image_len, image_dim]; 0 without image branch */
    int                    num_images;             /* images whose CLIP tokens clip_fea holds, one after the other:
                                                    * 1 (I2V), 2 (FLF2V: first and last frame); 0 without */
    int                    x_channels, y_channels; /* x [x_channels, F, H, W]; y [y_channels, ...] (I2V) */
    int                    out_dim;                /* v [out_dim, F, H, W] */
    int                    lat_h, lat_w;           /* latent size (landscape; H and W may be swapped) */
    int                    max_frames;             /* latent frames of the largest window */
    int                    inject_sample_info;     /* 1: the fps input exists */
    size_t                 arena_bytes;            /* the CPU plan's peak */
    size_t                 prompt_bytes;     /* one prompt arena of the CPU plan (runtime/models/prompt_cache.h) */
    size_t                 cuda_arena_bytes; /* the CUDA plan's peak and prompt arena (0: no cuda target) */
    size_t                 cuda_prompt_bytes;
    double                 flops;        /* one call at the largest window (GEMMs and attention), the prompt
                                         * part not counted: it runs once per prompt */
    double                 prompt_flops; /* the prompt part */
    sky_slot               x, y, t, context, clip_fea, fps, v; /* bytes 0 where the input does not exist */
    int                    n_weights;
    const sky_weight_desc *weights;
    /* The forward in its four parts (gen/programs/dit.lua), called in order: context (once per prompt:
     * it reads context and clip_fea and writes the prompt arena, runtime/models/prompt_cache.h), embed (tokens,
     * time embeddings), blocks, head (apart so that TeaCache, runtime/models/teacache.h, can skip the blocks).
     * Between them the runtime may read the exposed tensors: tokens [L, dim] (the blocks' input: live
     * until blocks starts), hidden [L, dim] (their output, the head's input), e [Ft, dim] and
     * e0 [Ft, 6 dim] (the time embeddings, fp32). */
    sky_dit_part_cpu_fn context_cpu, embed_cpu, blocks_cpu, head_cpu;
    sky_slot            tokens, hidden, e, e0;
    /* TeaCache rescale polynomials from the spec (highest power first), [0] for e, [1] for e0
     * (--use_ret_steps); has_teacache 0 when the spec gives none. */
    int    has_teacache;
    double teacache_coef[2][5];
    /* The patch embedding: one token per patch_t x patch_h x patch_w latents (1 x 2 x 2; models/latent.h).
     * Last in the struct, as the fields above are where the CUDA plugin (models/cuda_abi.h) reads them. */
    int patch_t, patch_h, patch_w;
    /* One call's FLOPs at L tokens as c + a L + b L^2, {c, a, b} (flops_by_tokens[0] + ... : the count of `flops`
     * at any window; sky_dit_flops_at). */
    double flops_by_tokens[3];
    /* The CUDA plugin's device bytes (0: no cuda target; models/device_plan.h adds them up): the weights as
     * uploaded (each at its device dtype, padded to 256 bytes) and TeaCache's buffers (teacache_open). */
    size_t cuda_weight_bytes, cuda_teacache_bytes;
    /* Ulysses sequence parallelism (round2-features.md §1, gen/programs/dit.lua). In dit_forward: usp, its
     * dit_forward_usp program (NULL where the generator made none). In dit_forward_usp: the four parts taking the
     * ranks' collectives in place of *_cpu (NULL), the tokens and hidden slots [Ls, dim] of this rank's tokens, and
     * usp_ranks, the rank counts it takes (2 .. num_heads, dividing num_heads), 0-terminated. Same weights table. */
    const struct sky_dit_program *usp;
    sky_dit_usp_part_cpu_fn       context_usp, embed_usp, blocks_usp, head_usp;
    int                           usp_ranks[16];
    /* --offload_blocks (runtime/cuda/offload.h): the device bytes of one block's weights as the plugin lays them
     * out (each padded to 256 bytes; the largest block) and the blocks (0: no cuda target). */
    size_t cuda_block_bytes;
    int    cuda_blocks;
    /* --weight_dtype fp8 on the device (runtime/cuda/offload.h; 0: no cuda target), each piece padded to 256 bytes:
     * the quantised weights (fp8_quant.h) at bf16, the same as e4m3 codes and fp32 row scales, and the largest
     * block's quantised weights at bf16 (one block slot). */
    size_t cuda_fp8_bf16_bytes, cuda_fp8_bytes, cuda_fp8_block_bytes;
} sky_dit_program;

/* The FLOPs of one forward of p over `tokens` tokens (F latent frames: F / patch_t x h / patch_h x w / patch_w),
 * the prompt part not counted. */
static inline double sky_dit_flops_at(const sky_dit_program *p, double tokens)
{
    return p->flops_by_tokens[0] + tokens * (p->flops_by_tokens[1] + tokens * p->flops_by_tokens[2]);
}

/* CPU call of a VAE program: H x W is the latent size (decode) or the video size (encode) of
 * this call; first = 1 for the first chunk of a sequence. */
typedef void (*sky_vae_cpu_fn)(unsigned char *arena, const float *const *w, int H, int W, int first);
typedef void (*sky_reset_fn)(unsigned char *arena);

/* vae_decode (one latent frame -> 1 or 4 video frames) or vae_encode (1 or 4 video frames ->
 * one latent frame), with per-layer caches kept in the arena between calls
 * (shared/reference/vae-text-image-files.md §1.5). reset_cpu zeroes the caches: call it at the
 * start of every sequence. */
typedef struct sky_vae_program {
    int                    z_dim;
    int                    lat_h, lat_w;  /* latent size (landscape) */
    int                    height, width; /* video size in pixels (landscape) */
    size_t                 arena_bytes;
    size_t                 cuda_arena_bytes; /* the CUDA plan's peak (0: no cuda target) */
    sky_slot               in, out;          /* decode: z [z_dim,1,h,w] -> video [3,1|4,H,W]; encode: reverse */
    int                    n_weights;
    const sky_weight_desc *weights;
    sky_vae_cpu_fn         forward_cpu;
    sky_reset_fn           reset_cpu;
    int                    stride_t, stride_s; /* the variant's vae_stride_t, vae_stride_s (last: as patch_t) */
    double                 flops; /* one call at its largest (a latent frame, 4 video frames): convolutions and
                                   * attention (multiply-add = 2); the first call of a sequence does less */
    size_t   cuda_weight_bytes;   /* the weights on the device as the CUDA plugin uploads them (0: no cuda target) */
    sky_slot out_unclamped;       /* vae_decode: the video before its clamp to [-1, 1], [3, 1|4, H, W] like out, still
                                   * in the CPU arena after a call (the tiled decode blends it); bytes 0 for encode;
                                   * vae_decode_tile: its out (it does not clamp) */
    int      tile; /* vae_decode_tile, vae_encode_tile: a call's latent H and W are at most tile (the spec's
               * vae.tile_px / stride_s; the encoder's pixels stride_s times that); its lat_h, lat_w, height, width
               * are still the frame's. 0 for vae_decode and vae_encode */
} sky_vae_program;

/* CPU call of an encoder program: n = real tokens (text_encode) or unused (clip_encode). */
typedef void (*sky_encoder_cpu_fn)(unsigned char *arena, const float *const *w, int n);

/* text_encode (umT5: ids [n] -> context [rows, dim], zeros after the n real tokens) or
 * clip_encode (pixels [3, image_size, image_size] -> clip_fea [rows, dim]). */
typedef struct sky_encoder_program {
    int                    rows, dim;  /* output [rows, dim] */
    int                    vocab;      /* text_encode: embedding rows (ids must be below) */
    int                    image_size; /* clip_encode: input side in pixels */
    size_t                 arena_bytes;
    size_t                 cuda_arena_bytes; /* the CUDA plan's peak (0: no cuda target) */
    sky_slot               in, out;
    int                    n_weights;
    const sky_weight_desc *weights;
    sky_encoder_cpu_fn     forward_cpu;
    double                 flops; /* one call at its largest (text_len tokens): GEMMs and attention */
    size_t cuda_weight_bytes;     /* the weights on the device as the CUDA plugin uploads them (0: no cuda target) */
} sky_encoder_program;

/* The pipeline a variant runs (its spec's family): text-to-video, image-to-video, diffusion forcing. */
typedef enum sky_family { SKY_FAMILY_T2V = 0, SKY_FAMILY_I2V = 1, SKY_FAMILY_DF = 2 } sky_family;

/* The spec's spelling of a family: "t2v", "i2v", "df". */
static inline const char *sky_family_name(sky_family f)
{
    return f == SKY_FAMILY_DF ? "df" : f == SKY_FAMILY_I2V ? "i2v" : "t2v";
}

/* What one call of a program's CUDA lowering asks of the device, per kind of kernel (gen/count.lua, at
 * the largest window): launches, the minimal bytes (each operand once at its device dtype), the FLOPs, and
 * at the table's stated device the compute floor (FLOPs / the peak of their math: BF16, TF32 or FP32), the
 * memory floor (bytes / HBM bandwidth) and the roofline time, the larger of the two. */
typedef struct sky_count_group {
    const char *label;               /* e.g. "GEMM ffn", "norms", "attention (self)" */
    int         kernels, gemms;      /* launches per call */
    double      bytes, flops;        /* per call */
    double      compute_s, memory_s; /* the floors at the stated device */
    double      roofline_s;          /* the larger */
} sky_count_group;

typedef struct sky_count_program {
    const char            *name; /* dit_forward, text_encode, ... */
    int                    n_groups;
    const sky_count_group *groups;
    sky_count_group        total;      /* per call (dit_forward: per forward, its prompt part not counted);
                                        * its roofline_s is the groups' sum */
    sky_count_group        once;       /* the prompt part (dit_forward's context), run once per prompt; else 0 */
    double                 roofline_s; /* the sum of the groups' rooflines */
    double                 floor_s;    /* the math alone: total FLOPs / the BF16 peak */
} sky_count_program;

typedef struct sky_count_table {
    const char              *device; /* the device the times are for, e.g. "H200 SXM" */
    double                   bf16_flops, tf32_flops, f32_flops, hbm_bytes; /* its stated peaks, per second */
    const char              *source;                                       /* where the peaks come from */
    int                      n_programs;
    const sky_count_program *programs;
} sky_count_table;

/* A variant: one generated binary. */
typedef struct sky_variant_desc {
    const char                *name; /* e.g. df_1.3b_540p */
    sky_family                 family;
    const char                *spec_path;       /* as recorded by the generator (relative) */
    const char                *spec_xxh64;      /* hex */
    const char                *generator_xxh64; /* hex, all gen/ sources */
    int                        has_cuda;        /* 1: the spec targets cuda (a CUDA plugin can exist) */
    int                        steps;           /* sampler defaults from the spec */
    double                     shift, guidance;
    int                        height, width, base_num_frames; /* pixels / frames */
    int                        vae_stride_t, vae_stride_s;     /* the VAE's strides, 4 and 8 (models/latent.h) */
    const sky_dit_program     *dit;
    const sky_vae_program     *vae_decode; /* NULL when the spec has no vae section */
    const sky_vae_program     *vae_encode;
    const sky_encoder_program *text_encode;     /* NULL when the spec has no t5 section */
    const sky_encoder_program *clip_encode;     /* NULL when the spec has no clip section */
    const sky_count_table     *counts;          /* the CUDA lowering's counts; NULL without a cuda target */
    const sky_vae_program     *vae_decode_tile; /* vae_decode at one tile (the tiled decode, models/vae.h); NULL when
                                                 * the spec has no vae or its frame is no larger than a tile */
    const sky_vae_program     *vae_encode_tile; /* vae_encode at one tile (the tiled encode); NULL as vae_decode_tile */
} sky_variant_desc;

/* Defined in the generated out/<variant>/gen/variant.c. */
extern const sky_variant_desc sky_variant;

#endif /* SKY_PROGRAM_H */
