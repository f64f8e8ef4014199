/* tests/runtime/test_prompt_cache.c — which prompt arena holds which prompt (runtime/models/prompt_cache.h): the
 * sequences a guided run makes, least-recently-used replacement, and exact comparison of the context and the
 * CLIP features. That a reused prompt arena gives the same numbers as a recomputed one: tests/runtime/
 * test_cli.sh (--offload, bit for bit) and the pipelines against diffusers (tests/numeric/run_pipeline.sh). */
#include <string.h>

#include "check.h"
#include "models/prompt_cache.h"

enum { N_CTX = 6, N_IMG = 3 };

/* slot and freshness of one call, as "s<slot><f|r>" (f: fresh, r: reused) */
static const char *call(sky_prompt_cache *c, const float *ctx, const float *img, char *buf)
{
    int fresh = -1;
    const int slot = sky_prompt_cache_slot(c, ctx, img, &fresh);
    buf[0] = 's', buf[1] = (char)('0' + slot), buf[2] = fresh ? 'f' : 'r', buf[3] = 0;
    return buf;
}

/* Guidance: cond, uncond, cond, uncond, ... run each prompt once, then reuse both. */
static int test_guided_run(void)
{
    sky_prompt_cache c;
    sky_err err;
    CHECK(sky_prompt_cache_init(&c, N_CTX, 0, &err) == SKY_OK, "%s", err.msg);
    float cond[N_CTX] = { 1, 2, 3, 4, 5, 6 }, uncond[N_CTX] = { 0 };
    char got[64] = "", b[4];
    for (int step = 0; step < 3; step++) {
        strcat(got, call(&c, cond, NULL, b));
        strcat(got, call(&c, uncond, NULL, b));
    }
    CHECK(strcmp(got, "s0fs1fs0rs1rs0rs1r") == 0, "got %s", got);
    CHECK(c.computed == 2 && c.reused == 4, "computed %lld, reused %lld", c.computed, c.reused);
    sky_prompt_cache_free(&c);
    return 0;
}

/* A third prompt replaces the least recently used one; the evicted prompt is then fresh again. */
static int test_lru(void)
{
    sky_prompt_cache c;
    sky_err err;
    CHECK(sky_prompt_cache_init(&c, N_CTX, 0, &err) == SKY_OK, "%s", err.msg);
    float a[N_CTX] = { 1 }, bb[N_CTX] = { 2 }, cc[N_CTX] = { 3 };
    char got[64] = "", b[4];
    strcat(got, call(&c, a, NULL, b));       /* a -> 0 */
    strcat(got, call(&c, bb, NULL, b));      /* b -> 1 */
    strcat(got, call(&c, a, NULL, b));       /* a reused: b is now the least recently used */
    strcat(got, call(&c, cc, NULL, b));      /* c replaces b in 1 */
    strcat(got, call(&c, a, NULL, b));       /* a still held */
    strcat(got, call(&c, bb, NULL, b));      /* b fresh again, replaces c (least recent) */
    CHECK(strcmp(got, "s0fs1fs0rs1fs0rs1f") == 0, "got %s", got);
    sky_prompt_cache_free(&c);
    return 0;
}

/* The comparison is exact, over the context and the CLIP features: one differing float (even -0 for 0) is a
 * new prompt; the caller's later changes to its buffer do not change what a slot holds. */
static int test_exact(void)
{
    sky_prompt_cache c;
    sky_err err;
    CHECK(sky_prompt_cache_init(&c, N_CTX, N_IMG, &err) == SKY_OK, "%s", err.msg);
    float ctx[N_CTX] = { 1, 2, 3, 4, 5, 6 }, img[N_IMG] = { 0, 1, 2 };
    char got[64] = "", b[4];
    strcat(got, call(&c, ctx, img, b));      /* 0 fresh */
    img[0] = -0.0f;
    strcat(got, call(&c, ctx, img, b));      /* another image (bits differ): 1 fresh */
    ctx[5] = 6.0000005f;
    strcat(got, call(&c, ctx, img, b));      /* another context: replaces 0 */
    img[0] = 0.0f, ctx[5] = 6.0f;
    strcat(got, call(&c, ctx, img, b));      /* the first prompt again: it was replaced, so fresh, into 1 */
    strcat(got, call(&c, ctx, img, b));      /* and now held */
    CHECK(strcmp(got, "s0fs1fs0fs1fs1r") == 0, "got %s", got);
    sky_prompt_cache_free(&c);
    return 0;
}

int main(void)
{
    RUN(test_guided_run);
    RUN(test_lru);
    RUN(test_exact);
    return CHECK_SUMMARY();
}
