/* runtime/formats/weights.h — bind a generated weights table to checkpoint tensors.
 *
 * The generated table (sky_weight_desc below, filled by out/<variant>/gen/variant.c) names every tensor a program reads
 * in the original SkyReels/Wan layout and in the diffusers layout
 * (shared/reference/dit-and-sampling.md §4). sky_weights_bind_f32() decides which layout the
 * checkpoint uses, then checks every tensor before converting any: present, shape equal,
 * dtype F32, BF16, F16, F64 or fp8. Conversion to fp32 copies (mmapped data is not aligned): all at once
 * for the CPU backend, one tensor at a time for the CUDA backend (sky_weights_bind_lazy).
 *
 * fp8 checkpoints (F8_E4M3, F8_E5M2; reference round2-features.md §5): a tensor "<layer>.weight" is
 * multiplied by its scale "<layer>.scale_weight" (Kijai / legacy ComfyUI) or "<layer>.weight_scale" (newer)
 * when the file has one (one value, or one per row), in float, as torch dequantises; without one its values
 * are taken as they are (the plain fp8 files). A scale on a tensor that is not fp8 is refused. The scales,
 * input scales, the `scaled_fp8` marker and `comfy_quant` notes are not counted as unused tensors.
 */
#ifndef SKY_WEIGHTS_H
#define SKY_WEIGHTS_H

#include "formats/checkpoint.h"
#include "core/status.h"

/* One checkpoint tensor the program reads: original name, diffusers name, shape. */
typedef struct sky_weight_desc {
    const char *name;  /* original SkyReels/Wan key, e.g. blocks.0.self_attn.q.weight */
    const char *alias; /* diffusers key, e.g. blocks.0.attn1.to_q.weight */
    int         ndim;
    int64_t     shape[SKY_MAX_DIMS];
} sky_weight_desc;

/* The weights of a program, read one tensor at a time (the CUDA backend converts and uploads each as it
 * comes, so a 14B model never sits in host memory as a whole): read(ctx, i, dst) writes table entry i
 * as fp32 into dst (its element count), or fails with err set. sky_cpu_state_reader() below makes one. */
typedef struct sky_weight_reader {
    void *ctx;
    sky_status (*read)(void *ctx, int i, float *dst, sky_err *err);
} sky_weight_reader;

/* A change to the weights as they are read (a LoRA: runtime/models/lora.h): after table entry i is
 * converted to fp32 into dst (its element count), add(ctx, i, dst, err) may change it, or fail with err
 * set. It may be called from several threads at once (two transformers loading), never twice for one
 * entry of one binding. */
typedef struct sky_weight_patch {
    const void *ctx;
    sky_status (*add)(const void *ctx, int i, float *dst, sky_err *err);
} sky_weight_patch;

typedef enum sky_layout { SKY_LAYOUT_ORIGINAL, SKY_LAYOUT_DIFFUSERS } sky_layout;

typedef struct sky_weights {
    int                    n;
    float                **data;              /* n fp32 arrays in table order, owned (NULL when bound lazily) */
    sky_layout             layout;            /* which names matched */
    int                    unused;            /* checkpoint tensors the program does not read */
    char                   first_unused[256]; /* the first of them, for a warning */
    const sky_checkpoint  *ck;                /* bound lazily: the checkpoint and table sky_weights_read reads */
    const sky_weight_desc *table;
    sky_weight_patch       patch; /* applied by sky_weights_read (add NULL: none) */
} sky_weights;

/* Bind `table` (n entries) to checkpoint `ck`, converting every tensor to fp32 and applying `patch`
 * (NULL: none) to each. `who` names the binary's variant in messages. On error nothing is allocated. */
sky_status sky_weights_bind_f32(sky_weights *out, const sky_checkpoint *ck, const sky_weight_desc *table, int n,
                                const sky_weight_patch *patch, const char *who, sky_err *err);

/* The same checks, nothing converted: sky_weights_read() converts one entry on demand (and applies
 * `patch`, which must stay valid as long as `ck` and `table`) while they stay open. What the CUDA backend
 * uses: host memory holds one tensor at a time. */
sky_status sky_weights_bind_lazy(sky_weights *out, const sky_checkpoint *ck, const sky_weight_desc *table, int n,
                                 const sky_weight_patch *patch, const char *who, sky_err *err);

/* Entry i of lazily bound w as fp32 into dst (the entry's element count), the patch applied. */
sky_status sky_weights_read(const sky_weights *w, int i, float *dst, sky_err *err);

/* Free what sky_weights_bind_f32 allocated (safe on a zeroed struct). */
void sky_weights_free(sky_weights *w);

/* The state of one generated program on the host. CPU backend: its weights bound as fp32 and its
 * arena (zeroed). CUDA backend (opened lazily): the checkpoint kept open and bound, no arena, until
 * the plugin has read every tensor through sky_cpu_state_reader() and sky_cpu_state_release() closes it. */
typedef struct sky_cpu_state {
    sky_weights     w;
    unsigned char  *arena;
    sky_checkpoint *ck; /* lazily opened states only */
} sky_cpu_state;

/* Open the checkpoint at `weights`, bind `table` (n entries; `patch` applied, NULL: none) and allocate
 * `arena_bytes` (64-byte aligned, zeroed). `who` names the variant in messages. On error nothing stays
 * allocated. */
sky_status sky_cpu_state_open(sky_cpu_state *s, const sky_weight_desc *table, int n, size_t arena_bytes,
                              const char *weights, const sky_weight_patch *patch, const char *who, sky_err *err);
/* Open and check the checkpoint at `weights` against `table`, converting nothing (the CUDA backend);
 * the reader applies `patch` (NULL: none; it must stay valid until sky_cpu_state_release). */
sky_status sky_cpu_state_open_lazy(sky_cpu_state *s, const sky_weight_desc *table, int n, const char *weights,
                                   const sky_weight_patch *patch, const char *who, sky_err *err);
/* A reader over a lazily opened state (valid until sky_cpu_state_release or _free). */
sky_weight_reader sky_cpu_state_reader(sky_cpu_state *s);
/* Close a lazily opened state's checkpoint (its mapping) once the tensors are read; the layout and
 * counts stay for messages. */
void sky_cpu_state_release(sky_cpu_state *s);
void sky_cpu_state_free(sky_cpu_state *s);

/* "original" or "diffusers". */
const char *sky_layout_name(sky_layout l);

#endif /* SKY_WEIGHTS_H */
