/* runtime/weights.h — bind a generated weights table to checkpoint tensors.
 *
 * The generated table (runtime/program.h: sky_weight_desc) names every tensor a program reads
 * in the original SkyReels/Wan layout and in the diffusers layout
 * (shared/reference/dit-and-sampling.md §4). sky_weights_bind_f32() decides which layout the
 * checkpoint uses, then checks every tensor before converting any: present, shape equal,
 * dtype F32, BF16, F16 or F64. Conversion to fp32 copies (mmapped data is not aligned).
 */
#ifndef SKY_WEIGHTS_H
#define SKY_WEIGHTS_H

#include "program.h"
#include "safetensors.h"
#include "status.h"

typedef enum sky_layout { SKY_LAYOUT_ORIGINAL, SKY_LAYOUT_DIFFUSERS } sky_layout;

typedef struct sky_weights {
    int         n;
    float     **data;                   /* n fp32 arrays in table order, owned */
    sky_layout  layout;                 /* which names matched */
    int         unused;                 /* checkpoint tensors the program does not read */
    char        first_unused[256];      /* the first of them, for a warning */
} sky_weights;

/* Bind `table` (n entries) to checkpoint `ck`, converting every tensor to fp32.
 * `who` names the binary's variant in messages. On error nothing is allocated. */
sky_status sky_weights_bind_f32(sky_weights *out, const sky_checkpoint *ck, const sky_weight_desc *table,
                                int n, const char *who, sky_err *err);

/* Free what sky_weights_bind_f32 allocated (safe on a zeroed struct). */
void sky_weights_free(sky_weights *w);

/* The CPU state of one generated program: its weights bound as fp32 and its arena (zeroed). */
typedef struct sky_cpu_state {
    sky_weights    w;
    unsigned char *arena;
} sky_cpu_state;

/* Open the checkpoint at `weights`, bind `table` (n entries) and allocate `arena_bytes` (64-byte
 * aligned, zeroed). `who` names the variant in messages. On error nothing stays allocated. */
sky_status sky_cpu_state_open(sky_cpu_state *s, const sky_weight_desc *table, int n, size_t arena_bytes,
                              const char *weights, const char *who, sky_err *err);
void sky_cpu_state_free(sky_cpu_state *s);

/* "original" or "diffusers". */
const char *sky_layout_name(sky_layout l);

#endif /* SKY_WEIGHTS_H */
