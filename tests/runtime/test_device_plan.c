/* tests/runtime/test_device_plan.c — runtime/models/device_plan.c's VAE terms: the tiled decoder (vae_decode_tile)
 * counted in place of vae_decode when the decode is tiled, the run's automatic choice of tiling when the frame's
 * decoder does not fit (sky_device_plan_tile_vae), and the refusal's suggestions; --weight_dtype fp8's transformer;
 * --use_usp's transformer (dit_forward as it opens, then dit_forward_usp) and the rank's GPU. A made-up variant with
 * round sizes; each part is counted as device_plan.h says (weights + arena + the cuBLASLt workspace), so the expected
 * values are sums of the numbers below.
 */
#include <string.h>

#include "check.h"
#include "models/cuda_abi.h" /* SKY_GEMM_WORKSPACE_BYTES */
#include "models/device_plan.h"

enum { MIB = 1 << 20 };
#define WS ((size_t)SKY_GEMM_WORKSPACE_BYTES)

static const sky_dit_program dit = {.cuda_weight_bytes = 1000 * (size_t)MIB, .cuda_arena_bytes = 200 * (size_t)MIB};
/* the same with 10 blocks of 90 MiB, 80 MiB of each their linear weights (800 MiB at bf16, 410 MiB as fp8) */
static const sky_dit_program dit8 = {.cuda_weight_bytes = 1000 * (size_t)MIB,
                                     .cuda_arena_bytes = 200 * (size_t)MIB,
                                     .cuda_blocks = 10,
                                     .cuda_block_bytes = 90 * (size_t)MIB,
                                     .cuda_fp8_bf16_bytes = 800 * (size_t)MIB,
                                     .cuda_fp8_bytes = 410 * (size_t)MIB,
                                     .cuda_fp8_block_bytes = 80 * (size_t)MIB};
static const sky_vae_program dec = {.cuda_weight_bytes = 10 * MIB, .cuda_arena_bytes = 2000 * (size_t)MIB};
static const sky_vae_program tile = {.cuda_weight_bytes = 10 * MIB, .cuda_arena_bytes = 100 * (size_t)MIB, .tile = 32};
static const sky_vae_program enc = {.cuda_weight_bytes = 10 * MIB, .cuda_arena_bytes = 50 * (size_t)MIB};

static sky_variant_desc variant(int with_tile)
{
    sky_variant_desc v = {.name = "made_up", .has_cuda = 1, .dit = &dit, .vae_decode = &dec, .vae_encode = &enc};
    v.vae_decode_tile = with_tile ? &tile : NULL;
    return v;
}

/* The decoder's bytes: vae_decode's, or vae_decode_tile's when tiled; the peak with every model kept moves by the
 * arenas' difference. */
static int test_tiled_decoder_counted(void)
{
    const sky_variant_desc v = variant(1);
    sky_device_config      c = {.vae_decode = 1, .vae_encode = 1};
    sky_device_plan        a, b;
    sky_device_plan_make(&v, &c, &a);
    c.vae_tiled = 1;
    sky_device_plan_make(&v, &c, &b);
    CHECK(a.bytes[SKY_DEVICE_VAE_DECODE] == 2010 * (size_t)MIB + WS, "untiled decoder %zu",
          a.bytes[SKY_DEVICE_VAE_DECODE]);
    CHECK(b.bytes[SKY_DEVICE_VAE_DECODE] == 110 * (size_t)MIB + WS, "tiled decoder %zu",
          b.bytes[SKY_DEVICE_VAE_DECODE]);
    CHECK(a.peak - b.peak == 1900 * (size_t)MIB, "peaks %zu and %zu", a.peak, b.peak);
    const sky_variant_desc w = variant(0); /* no vae_decode_tile: tiling changes nothing on the device */
    sky_device_plan_make(&w, &c, &b);
    CHECK(b.peak == a.peak, "without vae_decode_tile %zu, want %zu", b.peak, a.peak);
    return 0;
}

/* Tiling is chosen exactly when the untiled peak does not fit and the tiled one does. */
static int test_auto_tiling(void)
{
    const sky_variant_desc  v = variant(1), w = variant(0);
    const sky_device_config c = {.vae_decode = 1, .vae_encode = 1};
    sky_device_config       t = c;
    sky_device_plan         a, b;
    t.vae_tiled = 1;
    sky_device_plan_make(&v, &c, &a);
    sky_device_plan_make(&v, &t, &b);
    CHECK(!sky_device_plan_tile_vae(&v, &c, a.peak), "tiled though the untiled run fits");
    CHECK(sky_device_plan_tile_vae(&v, &c, a.peak - 1), "not tiled one byte short of the untiled peak");
    CHECK(sky_device_plan_tile_vae(&v, &c, b.peak), "not tiled at the tiled peak");
    CHECK(!sky_device_plan_tile_vae(&v, &c, b.peak - 1), "tiled though the tiled run does not fit either");
    CHECK(!sky_device_plan_tile_vae(&w, &c, a.peak - 1), "tiled without vae_decode_tile");
    CHECK(!sky_device_plan_tile_vae(&v, &t, b.peak - 1), "asked again when already tiled");
    const sky_device_config nodec = {.vae_encode = 1};
    CHECK(!sky_device_plan_tile_vae(&v, &nodec, 0), "tiled a run that does not decode");
    return 0;
}

/* The refusal names the first option that fits, tried in the order --vae_tiling, --offload, both. Here the
 * decoder's frame arena is the largest part: tiling alone (every model kept) beats --offload alone, whose peak
 * is that decoder, and both together beat either. Without vae_decode_tile only --offload is named. */
static int test_check_suggests(void)
{
    const sky_variant_desc  v = variant(1), w = variant(0);
    const sky_device_config c = {.vae_decode = 1, .vae_encode = 1};
    sky_device_config       o = c;
    sky_device_plan         tiled, off, both;
    sky_err                 err;
    o.vae_tiled = 1;
    sky_device_plan_make(&v, &o, &tiled);
    o.offload = 1;
    sky_device_plan_make(&v, &o, &both);
    o.vae_tiled = 0;
    sky_device_plan_make(&v, &o, &off);
    CHECK(off.peak > tiled.peak && tiled.peak > both.peak, "peaks: offload %zu, tiled %zu, both %zu", off.peak,
          tiled.peak, both.peak);
    CHECK(sky_device_plan_check(&v, &c, tiled.peak, 1, &err) && strstr(err.msg, "run with --vae_tiling (the"), "%s",
          err.msg);
    CHECK(sky_device_plan_check(&v, &c, tiled.peak - 1, 1, &err) && strstr(err.msg, "run with --offload --vae_tiling"),
          "%s", err.msg);
    CHECK(sky_device_plan_check(&v, &c, both.peak - 1, 1, &err) && strstr(err.msg, "even with every option") &&
              strstr(err.msg, "--offload --vae_tiling"),
          "%s", err.msg);
    CHECK(sky_device_plan_check(&w, &c, off.peak, 1, &err) && strstr(err.msg, "run with --offload (each") &&
              !strstr(err.msg, "vae_tiling"),
          "%s", err.msg);
    sky_device_plan all;
    sky_device_plan_make(&v, &c, &all);
    CHECK(sky_device_plan_check(&v, &c, all.peak, 1, &err) == SKY_OK, "refused at its own peak: %s", err.msg);
    return 0;
}

/* --weight_dtype fp8: the linear weights' bf16 bytes replaced by their fp8 bytes and 2 bf16 block slots (N with
 * --offload_blocks N), no pinned host memory; without it, --offload_blocks as before. */
static int test_fp8(void)
{
    sky_variant_desc  v = variant(1);
    sky_device_config c = {.weight_fp8 = 1};
    v.dit = &dit8;
    sky_device_plan        a;
    const size_t           rest = 200 * (size_t)MIB + WS; /* the arena and the workspace (no prompt arenas here) */
    sky_device_plan_make(&v, &c, &a);
    CHECK(a.bytes[SKY_DEVICE_DIT] == (1000 - 800 + 410 + 2 * 80) * (size_t)MIB + rest, "fp8 transformer %zu",
          a.bytes[SKY_DEVICE_DIT]);
    CHECK(a.host_pinned == 0, "fp8 pinned %zu", a.host_pinned);
    c.offload_blocks = 3;
    sky_device_plan_make(&v, &c, &a);
    CHECK(a.bytes[SKY_DEVICE_DIT] == (1000 - 800 + 410 + 3 * 80) * (size_t)MIB + rest, "fp8, 3 slots %zu",
          a.bytes[SKY_DEVICE_DIT]);
    CHECK(a.host_pinned == 0, "fp8 --offload_blocks 3 pinned %zu", a.host_pinned);
    c.offload_blocks = 10; /* at least the blocks: the default 2 */
    sky_device_plan_make(&v, &c, &a);
    CHECK(a.bytes[SKY_DEVICE_DIT] == (1000 - 800 + 410 + 2 * 80) * (size_t)MIB + rest, "fp8, N = blocks %zu",
          a.bytes[SKY_DEVICE_DIT]);
    c.weight_fp8 = 0, c.offload_blocks = 3;
    sky_device_plan_make(&v, &c, &a);
    CHECK(a.bytes[SKY_DEVICE_DIT] == (1000 - 7 * 90) * (size_t)MIB + rest, "bf16 --offload_blocks 3 %zu",
          a.bytes[SKY_DEVICE_DIT]);
    CHECK(a.host_pinned == 10 * 90 * (size_t)MIB, "bf16 --offload_blocks 3 pinned %zu", a.host_pinned);
    return 0;
}

/* --use_usp (device_plan.h): the transformer as it opens (dit_forward: weights, arena, workspace, prompt arenas) held
 * alone, then the same weights with dit_forward_usp's arena and prompt arenas and its TeaCache buffers beside the VAE;
 * the peak the larger; the refusal names the rank and its GPU. Without usp, or without dit_forward_usp, unchanged. */
static const sky_dit_program dit_usp = {.cuda_weight_bytes = 1000 * (size_t)MIB,
                                        .cuda_arena_bytes = 120 * (size_t)MIB,
                                        .cuda_prompt_bytes = 1 * (size_t)MIB,
                                        .cuda_teacache_bytes = 15 * (size_t)MIB};
static const sky_dit_program dit_u = {.cuda_weight_bytes = 1000 * (size_t)MIB,
                                      .cuda_arena_bytes = 200 * (size_t)MIB,
                                      .cuda_prompt_bytes = 2 * (size_t)MIB,
                                      .cuda_teacache_bytes = 30 * (size_t)MIB,
                                      .usp = &dit_usp};

static int test_usp(void)
{
    sky_variant_desc  v = variant(1);
    sky_device_config c = {.teacache = 1, .usp = 1, .ranks = 2, .rank = 1, .device = 1};
    sky_device_plan   a, b;
    sky_err           err;
    v.dit = &dit_u;
    sky_device_plan_make(&v, &c, &a);
    const size_t open = (1000 + 200 + 2 * 2) * (size_t)MIB + WS, run = (1000 + 120 + 2 * 1) * (size_t)MIB + WS;
    CHECK(a.bytes[SKY_DEVICE_DIT_OPEN] == open, "opening %zu, want %zu", a.bytes[SKY_DEVICE_DIT_OPEN], open);
    CHECK(a.bytes[SKY_DEVICE_DIT] == run, "dit_forward_usp %zu, want %zu", a.bytes[SKY_DEVICE_DIT], run);
    CHECK(a.bytes[SKY_DEVICE_TEACACHE] == 15 * (size_t)MIB, "TeaCache %zu", a.bytes[SKY_DEVICE_TEACACHE]);
    /* no VAE: the opening is the peak (the usp arena with TeaCache's buffers is smaller) */
    CHECK(a.peak == open && strcmp(a.at_peak, "the transformer as it opens (dit_forward)") == 0, "peak %zu (%s)",
          a.peak, a.at_peak);
    CHECK(sky_device_plan_check(&v, &c, open - 1, 1, &err) && strstr(err.msg, "rank 1's GPU 1 has"), "%s", err.msg);
    CHECK(sky_device_plan_check(&v, &c, open, 1, &err) == SKY_OK, "refused at its own peak: %s", err.msg);
    /* with the VAE kept beside it, dit_forward_usp's set is the peak, named so */
    c.vae_decode = c.vae_tiled = 1;
    sky_device_plan_make(&v, &c, &a);
    const size_t with_vae = run + 15 * (size_t)MIB + a.bytes[SKY_DEVICE_VAE_DECODE];
    CHECK(with_vae > open && a.peak == with_vae &&
              strcmp(a.at_peak, "the transformer (dit_forward_usp) + TeaCache's buffers + the VAE decoder") == 0,
          "peak %zu, want %zu (%s)", a.peak, with_vae, a.at_peak);
    /* the CFG axis on 2 ranks (one per group): dit_forward's sizes, no opening part, on the rank's own GPU */
    c.usp = 0;
    sky_device_plan_make(&v, &c, &b);
    CHECK(b.bytes[SKY_DEVICE_DIT] == open && b.bytes[SKY_DEVICE_DIT_OPEN] == 0, "one rank per group: %zu %zu",
          b.bytes[SKY_DEVICE_DIT], b.bytes[SKY_DEVICE_DIT_OPEN]);
    CHECK(sky_device_plan_check(&v, &c, b.peak - 1, 1, &err) && strstr(err.msg, "rank 1's GPU 1 has"), "%s", err.msg);
    /* without usp: dit_forward's sizes, no opening part, GPU 0 */
    c.ranks = c.rank = c.device = 0;
    sky_device_plan_make(&v, &c, &b);
    CHECK(b.bytes[SKY_DEVICE_DIT] == open && b.bytes[SKY_DEVICE_DIT_OPEN] == 0 &&
              b.bytes[SKY_DEVICE_TEACACHE] == 30 * (size_t)MIB,
          "without usp: %zu %zu %zu", b.bytes[SKY_DEVICE_DIT], b.bytes[SKY_DEVICE_DIT_OPEN],
          b.bytes[SKY_DEVICE_TEACACHE]);
    CHECK(sky_device_plan_check(&v, &c, b.peak - 1, 1, &err) && strstr(err.msg, ", GPU 0 has"), "%s", err.msg);
    /* usp on a variant without dit_forward_usp: as without */
    c.usp = 1;
    v.dit = &dit;
    sky_device_plan_make(&v, &c, &a);
    CHECK(a.bytes[SKY_DEVICE_DIT_OPEN] == 0 && strstr(a.at_peak, "(dit_forward_usp)") == NULL, "no usp program: %s",
          a.at_peak);
    return 0;
}

int main(void)
{
    RUN(test_tiled_decoder_counted);
    RUN(test_auto_tiling);
    RUN(test_check_suggests);
    RUN(test_fp8);
    RUN(test_usp);
    return CHECK_SUMMARY();
}
