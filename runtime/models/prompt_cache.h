/* runtime/models/prompt_cache.h — which prompt arena holds a prompt, so dit_forward's prompt part runs once per
 * prompt.
 *
 * The first part of dit_forward ("context", gen/programs/dit.lua) depends on the prompt only: the text
 * context and, for I2V, the CLIP image features. What it keeps (every block's cross-attention keys and
 * values, made from the text and image embeddings) lives in a prompt arena, not in the arena of a call. A backend
 * keeps SKY_PROMPT_SLOTS prompt arenas (the conditional and unconditional prompts of classifier-free
 * guidance) and runs the part only for a prompt no slot holds; the least recently used slot is replaced.
 * A copy of each held prompt is kept and compared exactly, so a slot is never reused for another prompt.
 */
#ifndef SKY_PROMPT_CACHE_H
#define SKY_PROMPT_CACHE_H

#include <stddef.h>

#include "core/status.h"

#define SKY_PROMPT_SLOTS 2

typedef struct sky_prompt_cache {
    size_t             n_ctx, n_img;           /* floats of the context and of the CLIP features */
    float             *held[SKY_PROMPT_SLOTS]; /* the prompt each slot holds: context, then clip_fea */
    int                valid[SKY_PROMPT_SLOTS];
    unsigned long long last_use[SKY_PROMPT_SLOTS], clock;
    long long          computed, reused; /* calls that ran the prompt part, calls that did not */
} sky_prompt_cache;

/* An empty cache for prompts of n_ctx context floats and n_img CLIP floats (0 without an image branch). */
sky_status sky_prompt_cache_init(sky_prompt_cache *c, size_t n_ctx, size_t n_img, sky_err *err);

/* The slot of this prompt (clip_fea NULL when n_img is 0). *fresh = 1: no slot held it, the returned one
 * (the least recently used) now does, and the caller must run the prompt part into its arena;
 * *fresh = 0: the slot's arena already holds the prompt part's results. */
int sky_prompt_cache_slot(sky_prompt_cache *c, const float *context, const float *clip_fea, int *fresh);

void sky_prompt_cache_free(sky_prompt_cache *c);

#endif /* SKY_PROMPT_CACHE_H */
