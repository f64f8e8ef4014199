/* runtime/models/prompt_cache.c — which prompt arena holds a prompt (prompt_cache.h). */
#include "models/prompt_cache.h"

#include <stdlib.h>
#include <string.h>

sky_status sky_prompt_cache_init(sky_prompt_cache *c, size_t n_ctx, size_t n_img, sky_err *err)
{
    memset(c, 0, sizeof *c);
    c->n_ctx = n_ctx, c->n_img = n_img;
    for (int i = 0; i < SKY_PROMPT_SLOTS; i++) {
        c->held[i] = malloc((n_ctx + n_img) * sizeof(float));
        if (!c->held[i]) {
            sky_prompt_cache_free(c);
            return sky_fail(err, "out of host memory for the prompt cache (%d x %zu bytes)", SKY_PROMPT_SLOTS,
                            (n_ctx + n_img) * sizeof(float));
        }
    }
    return SKY_OK;
}

/* 1 if slot i holds this prompt. */
static int holds(const sky_prompt_cache *c, int i, const float *context, const float *clip_fea)
{
    return c->valid[i] && memcmp(c->held[i], context, c->n_ctx * sizeof(float)) == 0 &&
           (c->n_img == 0 || memcmp(c->held[i] + c->n_ctx, clip_fea, c->n_img * sizeof(float)) == 0);
}

int sky_prompt_cache_slot(sky_prompt_cache *c, const float *context, const float *clip_fea, int *fresh)
{
    SKY_ASSERT(c->held[0] && (c->n_img == 0 || clip_fea));
    c->clock++;
    for (int i = 0; i < SKY_PROMPT_SLOTS; i++)
        if (holds(c, i, context, clip_fea)) {
            c->last_use[i] = c->clock;
            c->reused++;
            *fresh = 0;
            return i;
        }
    int victim = 0; /* an empty slot, else the least recently used */
    for (int i = 1; i < SKY_PROMPT_SLOTS; i++)
        if (c->valid[victim] && (!c->valid[i] || c->last_use[i] < c->last_use[victim])) victim = i;
    memcpy(c->held[victim], context, c->n_ctx * sizeof(float));
    if (c->n_img) memcpy(c->held[victim] + c->n_ctx, clip_fea, c->n_img * sizeof(float));
    c->valid[victim] = 1;
    c->last_use[victim] = c->clock;
    c->computed++;
    *fresh = 1;
    return victim;
}

void sky_prompt_cache_free(sky_prompt_cache *c)
{
    for (int i = 0; i < SKY_PROMPT_SLOTS; i++) {
        free(c->held[i]);
        c->held[i] = NULL;
    }
}
