/* runtime/models/device_plan.h — the CUDA backend's device memory, known before a run (issue 21 item 4).
 *
 * Counted from the generator's constants (models/program.h) exactly as the CUDA plugin allocates through its
 * one counted allocator (runtime/cuda/cuda_ctx.c sky_cuda_arena_alloc, whose peak the plugin's mem_bytes
 * reports):
 *   - each program's weights in one allocation, each weight at its device dtype padded to 256 bytes
 *     (cuda_weight_bytes; at least 256 bytes);
 *   - each program's arena in one allocation: the CUDA plan's peak (cuda_arena_bytes), the cuBLASLt workspace
 *     (SKY_GEMM_WORKSPACE_BYTES) and, for dit_forward, SKY_PROMPT_SLOTS prompt arenas each padded to 256 bytes
 *     (both slots whether or not the run has guidance: runtime/cuda/dit_cuda.c keeps them);
 *   - TeaCache's buffers beside the transformer (cuda_teacache_bytes);
 *   - with --offload_blocks N (runtime/cuda/offload.h): of the transformer's weights only the resident ones and N
 *     block slots (cuda_block_bytes each); all its blocks in pinned host memory (host_pinned, not device memory).
 *   - with --weight_dtype fp8 (runtime/cuda/offload.h): the blocks' linear weights as fp8 (cuda_fp8_bytes: the codes,
 *     one byte each, and the fp32 row scales) in place of bf16 (cuda_fp8_bf16_bytes), and N bf16 slots of one block's
 *     linear weights (cuda_fp8_block_bytes each; N = --offload_blocks N where it is on, else 2); every other weight
 *     resident, no pinned host memory.
 *   - the VAE decoder as vae_decode (its arena the frame's) or, when the decode is tiled (--vae_tiling, or chosen
 *     by the run because the frame's does not fit), as vae_decode_tile (its arena one tile's); the VAE encoder
 *     likewise as vae_encode or, tiled, vae_encode_tile (the run tiles both or neither).
 * Which programs are held at once follows the pipeline (pipeline/denoise.h, pipeline.c): the text encoder,
 * then the image encoder, each alone and closed after use; then the transformer with TeaCache's buffers and
 * the VAE's decoder and encoder, together to the end of the run, or under --offload each alone for its
 * stage. The peak is the largest of those sets, on GPU 0 (with --use_cfg_parallel GPU 1 holds a second
 * transformer and its TeaCache buffers).
 * --use_usp with more than one rank per group (config usp): one rank's plan, on the rank's own GPU (config device).
 * Each rank opens the transformer as dit_forward (its weights, arena, workspace and prompt arenas: the part
 * SKY_DEVICE_DIT_OPEN, held alone: the encoders are closed, the VAE not open yet), then use_comm
 * (runtime/cuda/dit_cuda.c) frees dit_forward's arena before it allocates dit_forward_usp's (the two never
 * coexist), and keeps the weights: SKY_DEVICE_DIT is then the same weights with dit_forward_usp's arena, workspace
 * and prompt arenas, and TeaCache's buffers are dit_forward_usp's (opened after use_comm: its tokens slot holds the
 * rank's tokens). Under --offload the transformer reopens so for each stage. With one rank per group (the CFG axis
 * on 2 ranks) each rank holds dit_forward as one process does, on its own GPU (config device, ranks and rank).
 * Not counted: what the plugin does not allocate itself (the CUDA context, the kernels' modules, the CUDA
 * Graphs, cuBLASLt's internal memory, NCCL's own buffers), and the kernel selftest's cases, allocated only on a
 * device's first run and freed before any model opens.
 */
#ifndef SKY_DEVICE_PLAN_H
#define SKY_DEVICE_PLAN_H

#include <stddef.h>

#include "core/status.h"
#include "models/program.h"

/* The parts a run may hold on the device. */
enum {
    SKY_DEVICE_TEXT = 0,   /* text_encode (umT5) */
    SKY_DEVICE_CLIP,       /* clip_encode */
    SKY_DEVICE_DIT,        /* dit_forward with its prompt arenas (--use_usp: dit_forward_usp's) */
    SKY_DEVICE_TEACACHE,   /* TeaCache's buffers */
    SKY_DEVICE_VAE_DECODE, /* vae_decode */
    SKY_DEVICE_VAE_ENCODE, /* vae_encode */
    SKY_DEVICE_DIT_OPEN,   /* --use_usp: dit_forward with its prompt arenas as the rank opens it (0 without usp) */
    SKY_DEVICE_PARTS
};

/* What a run holds: the flags of the run (pipeline.h's sky_gen_args) the plan depends on. */
typedef struct sky_device_config {
    int offload;        /* --offload: each model on the device only for its stage */
    int teacache;       /* --teacache */
    int text, clip;     /* the encoders run (not --prompt_embeds; clip: image variants) */
    int vae_decode;     /* the run decodes (VAE weights given) */
    int vae_encode;     /* the run encodes images or frames */
    int vae_tiled;      /* the decode is tiled: the decoder is vae_decode_tile (where the variant has one) */
    int offload_blocks; /* --offload_blocks N: N transformer blocks on the device (0, or N >= the blocks: all) */
    int weight_fp8;     /* --weight_dtype fp8: the blocks' linear weights as fp8 on the device */
    int usp;            /* --use_usp, more than one rank per group: the transformer opens as dit_forward, then runs
                         * as dit_forward_usp (the variant's dit->usp; ignored where it has none) */
    int ranks;          /* --use_usp: the ranks of the run (also one rank per group: the CFG axis on 2); else 0 */
    int rank;           /* --use_usp: this rank among them (messages) */
    int device;         /* the GPU the plan is checked against: the rank's own under --use_usp, else 0 */
} sky_device_config;

typedef struct sky_device_plan {
    size_t bytes[SKY_DEVICE_PARTS]; /* each part's device bytes (0: not in this configuration) */
    size_t peak;                    /* the most held at once */
    char   at_peak[160];            /* what is held then: "the transformer + TeaCache + the VAE decoder" */
    size_t host_pinned;             /* pinned host memory of --offload_blocks (the blocks' weights; 0 without) */
} sky_device_plan;

/* The plan of variant v in configuration c (all zero without a cuda target). */
void sky_device_plan_make(const sky_variant_desc *v, const sky_device_config *c, sky_device_plan *out);

/* The part's name in messages: "the transformer", "the VAE decoder", ... */
const char *sky_device_part_name(int part);

/* The part's name in the plan of variant v in configuration c: sky_device_part_name's, but with usp (where v has
 * dit_forward_usp) the transformer names its program: "the transformer (dit_forward_usp)". */
const char *sky_device_part_label(const sky_variant_desc *v, int part, const sky_device_config *c);

/* SKY_OK when c's peak fits in free_bytes (GPU c->device's free memory before any model loads). Else SKY_ERR with a
 * message naming the peak and what is held then, the GPU (and with usp the rank), the free and total memory, and
 * the options that make the run fit: the first whose peak fits of --vae_tiling, --offload, both, then each of these
 * with --offload_blocks N (N the largest that fits), cheapest first; or that none of this build does. */
sky_status sky_device_plan_check(const sky_variant_desc *v, const sky_device_config *c, size_t free_bytes,
                                 size_t total_bytes, sky_err *err);

/* The largest --offload_blocks N (1 .. blocks - 1) with which c (its other fields as given) fits in free_bytes; 0
 * when c fits with every block on the device, or when no N fits (sky_device_plan_check then says so). */
int sky_device_plan_fit_blocks(const sky_variant_desc *v, const sky_device_config *c, size_t free_bytes);

/* Whether the run should decode in tiles though not asked to: c decodes untiled, its peak exceeds free_bytes, v has
 * vae_decode_tile, and c with the tiled decoder fits. */
int sky_device_plan_tile_vae(const sky_variant_desc *v, const sky_device_config *c, size_t free_bytes);

/* The GPU c is checked against, for messages: "GPU d", or under --use_usp "rank r's GPU d"; buf returned. */
const char *sky_device_plan_gpu(const sky_device_config *c, char *buf, size_t n);

/* bytes as "12.34 GiB" (or MiB below 1 GiB) into buf[n]; returns buf. */
const char *sky_device_bytes_fmt(char *buf, size_t n, size_t bytes);

#endif /* SKY_DEVICE_PLAN_H */
