/* runtime/models/vae.c — run the generated VAE programs over whole videos (vae.h). */
#include "models/vae.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "models/backend.h"
#include "models/cuda_plugin.h"
#include "core/dtype.h"
#include "formats/safetensors.h"
#include "formats/safetensors_write.h"
#include "formats/weights.h"
#include "models/latent.h"

struct sky_vae {
    const sky_vae_program *p;
    sky_cpu_state          s;    /* fp32 weights and the arena (caches included; CPU backend) */
    const sky_cuda_plugin *cuda; /* the CUDA backend: the plugin, its state, host staging */
    void                  *cuda_state;
    float                 *stage_in, *stage_out;
};

sky_status sky_vae_open(sky_vae **out, const sky_vae_program *p, int decode, const char *weights, const char *who,
                        int b, sky_err *err)
{
    *out = NULL;
    sky_vae *v = calloc(1, sizeof *v);
    if (!v) return sky_fail(err, "out of host memory");
    v->p = p;
    const int cuda = b == SKY_BACKEND_CUDA;
    if (cuda && sky_cuda_plugin_get(&v->cuda, who, err)) goto fail;
    if (cuda ? sky_cpu_state_open_lazy(&v->s, p->weights, p->n_weights, weights, NULL, who, err)
             : sky_cpu_state_open(&v->s, p->weights, p->n_weights, p->arena_bytes, weights, NULL, who, err))
        goto fail;
    if (cuda) {
        v->stage_in = malloc(p->in.bytes);
        v->stage_out = malloc(p->out.bytes);
        if (!v->stage_in || !v->stage_out) {
            sky_fail(err, "out of host memory");
            goto fail;
        }
        const sky_weight_reader r = sky_cpu_state_reader(&v->s);
        if (v->cuda->vae_open(&v->cuda_state, p, decode, &r, err)) goto fail;
        sky_cpu_state_release(&v->s);
        if (sky_trace_hook) v->cuda->vae_set_trace(v->cuda_state, sky_trace_hook, sky_trace_ctx);
    }
    *out = v;
    return SKY_OK;
fail:
    sky_vae_close(v);
    return SKY_ERR;
}

void sky_vae_close(sky_vae *v)
{
    if (!v) return;
    if (v->cuda && v->cuda_state) v->cuda->vae_close(v->cuda_state);
    sky_cpu_state_free(&v->s);
    free(v->stage_in);
    free(v->stage_out);
    free(v);
}

/* The chunk's input and output buffers: the CPU arena's slots, or host staging for the plugin. */
static float *chunk_in(sky_vae *v) { return v->cuda ? v->stage_in : (float *)(v->s.arena + v->p->in.offset); }
static float *chunk_out(sky_vae *v) { return v->cuda ? v->stage_out : (float *)(v->s.arena + v->p->out.offset); }

static void reset(sky_vae *v)
{
    if (v->cuda)
        v->cuda->vae_reset(v->cuda_state);
    else
        v->p->reset_cpu(v->s.arena);
}

/* One chunk: n_in values in chunk_in() -> n_out values in chunk_out(). */
static void run_chunk(sky_vae *v, int H, int W, int first, size_t n_in, size_t n_out)
{
    if (v->cuda)
        v->cuda->vae_chunk(v->cuda_state, H, W, first, v->stage_in, n_in, v->stage_out, n_out);
    else
        v->p->forward_cpu(v->s.arena, (const float *const *)v->s.w.data, H, W, first);
}

/* Copy frames [t0, t0 + n) of a [C, T, HW] tensor into a [C, n, HW] buffer (or back, when
 * to_seq is 1). */
static void copy_frames(float *chunk, float *seq, int C, int T, size_t hw, int t0, int n, int to_seq)
{
    for (int c = 0; c < C; c++) {
        float *s = seq + ((size_t)c * T + t0) * hw;
        float *k = chunk + (size_t)c * n * hw;
        if (to_seq)
            memcpy(s, k, (size_t)n * hw * sizeof(float));
        else
            memcpy(k, s, (size_t)n * hw * sizeof(float));
    }
}

/* The spec's size or its transpose. */
static int size_ok(int h, int w, int want_h, int want_w)
{
    return (h == want_h && w == want_w) || (h == want_w && w == want_h);
}

sky_status sky_vae_decode(sky_vae *v, const float *z, int L, int h, int w, float *video, sky_err *err)
{
    const sky_vae_program *p = v->p;
    if (p->tile) return sky_fail(err, "vae_decode: bound to vae_decode_tile, which decodes tiles only (a bug)");
    if (L < 1) return sky_fail(err, "vae_decode: %d latent frames; need at least 1", L);
    if (!size_ok(h, w, p->lat_h, p->lat_w))
        return sky_fail(err, "vae_decode: latent size %dx%d; this variant was generated for %dx%d (or %dx%d)", h, w,
                        p->lat_h, p->lat_w, p->lat_w, p->lat_h);
    const int    T = sky_latent_video_frames(L, p->stride_t);
    const size_t lat_hw = (size_t)h * w, px_hw = (size_t)(p->stride_s * h) * (p->stride_s * w);
    reset(v);
    for (int l = 0; l < L; l++) {
        int       t0;
        const int n = sky_latent_video_span(l, p->stride_t, &t0);
        copy_frames(chunk_in(v), (float *)z, p->z_dim, L, lat_hw, l, 1, 0);
        run_chunk(v, h, w, l == 0, (size_t)p->z_dim * lat_hw, (size_t)3 * n * px_hw);
        copy_frames(chunk_out(v), video, 3, T, px_hw, t0, n, 1);
    }
    return SKY_OK;
}

/* The video an encode takes, whole or tiled: at least one frame, at the variant's size (either orientation). */
static sky_status encode_input_ok(const sky_vae_program *p, int T, int H, int W, sky_err *err)
{
    if (T < 1) return sky_fail(err, "vae_encode: %d frames; need at least 1", T);
    if (!size_ok(H, W, p->height, p->width))
        return sky_fail(err, "vae_encode: video size %dx%d; this variant was generated for %dx%d (or %dx%d)", H, W,
                        p->height, p->width, p->width, p->height);
    return SKY_OK;
}

sky_status sky_vae_encode(sky_vae *v, const float *video, int T, int H, int W, float *z, sky_err *err)
{
    const sky_vae_program *p = v->p;
    if (p->tile) return sky_fail(err, "vae_encode: bound to vae_encode_tile, which encodes tiles only (a bug)");
    if (encode_input_ok(p, T, H, W, err)) return SKY_ERR;
    const int    L = sky_latent_frames(T, p->stride_t);
    const size_t px_hw = (size_t)H * W;
    const size_t lat_hw = (size_t)sky_latent_size(H, p->stride_s) * sky_latent_size(W, p->stride_s);
    reset(v);
    for (int l = 0; l < L; l++) {
        int       t0;
        const int n = sky_latent_video_span(l, p->stride_t, &t0);
        copy_frames(chunk_in(v), (float *)video, 3, T, px_hw, t0, n, 0);
        run_chunk(v, H, W, l == 0, (size_t)3 * n * px_hw, (size_t)p->z_dim * lat_hw);
        copy_frames(chunk_out(v), z, p->z_dim, L, lat_hw, l, 1, 1);
    }
    return SKY_OK;
}

/* ---- the tiled decode (vae.h sky_vae_decode_tiled) ------------------------------------------------ */

/* One tile: its latent origin and size, and its decoded video [3, T, TH, TW] before the clamp (the tiled decode) or
 * its latent [z_dim, L, th, tw] (the tiled encode). */
typedef struct vae_tile {
    int    i0, j0, th, tw; /* latent rows i0 .. i0 + th, columns j0 .. j0 + tw */
    float *px;
} vae_tile;

/* Decode one tile over the whole sequence, its causal caches reset first (diffusers' clear_cache per tile):
 * latent frame by latent frame, the clamp's input read back (the blend comes before the clamp): vae_decode_tile's
 * output (it has no clamp), or vae_decode's clamp input left in the CPU arena. */
static void decode_tile(sky_vae *v, const float *z, int L, int h, int w, vae_tile *t)
{
    const sky_vae_program *p = v->p;
    const int              s = p->stride_s, T = sky_latent_video_frames(L, p->stride_t);
    const size_t           thw = (size_t)t->th * t->tw, px_hw = (size_t)s * t->th * s * t->tw;
    reset(v);
    for (int l = 0; l < L; l++) {
        int       t0;
        const int n = sky_latent_video_span(l, p->stride_t, &t0);
        float    *in = chunk_in(v);
        for (int c = 0; c < p->z_dim; c++)
            for (int y = 0; y < t->th; y++)
                memcpy(in + c * thw + (size_t)y * t->tw, z + (((size_t)c * L + l) * h + t->i0 + y) * w + t->j0,
                       (size_t)t->tw * sizeof(float));
        run_chunk(v, t->th, t->tw, l == 0, (size_t)p->z_dim * thw, (size_t)3 * n * px_hw);
        float *out = p->tile ? chunk_out(v) : (float *)(v->s.arena + p->out_unclamped.offset);
        copy_frames(out, t->px, 3, T, px_hw, t0, n, 1);
    }
}

/* diffusers' blend weights (blend_v, blend_h): b = a * (1 - y / e) + b * (y / e), each product and the sum in
 * fp32 as PyTorch computes them with a Python scalar. */
static float blend(float a, float b, int y, int e)
{
    const float wa = (float)(1.0 - (double)y / e), wb = (float)((double)y / e);
    const float pa = a * wa, pb = b * wb;
    return pa + pb;
}

/* blend_v(above, cur, extent) (vertical = 1) or blend_h(left, cur, extent), in place on cur: both [planes, ., .], a
 * tile's data s times its latent size (the decode's pixels: s = stride_s; the encode's latents: s = 1). */
static void blend_tiles(const vae_tile *a, vae_tile *b, int planes, int s, int extent, int vertical)
{
    const int AH = s * a->th, AW = s * a->tw, BH = s * b->th, BW = s * b->tw;
    int       e = extent;
    if (vertical) {
        if (AH < e) e = AH;
        if (BH < e) e = BH;
    } else {
        if (AW < e) e = AW;
        if (BW < e) e = BW;
    }
    for (int ct = 0; ct < planes; ct++) {
        const float *pa = a->px + (size_t)ct * AH * AW;
        float       *pb = b->px + (size_t)ct * BH * BW;
        for (int y = 0; y < (vertical ? e : BH); y++)
            for (int x = 0; x < (vertical ? BW : e); x++) {
                const float above = vertical ? pa[(size_t)(AH - e + y) * AW + x] : pa[(size_t)y * AW + AW - e + x];
                pb[(size_t)y * BW + x] = blend(above, pb[(size_t)y * BW + x], vertical ? y : x, e);
            }
    }
}

/* Blend every tile with its upper and left neighbours, row-major and in place (diffusers' order): planes planes of
 * s x s pixels per latent, over extent pixels. */
static void blend_grid(vae_tile *tiles, int rows, int cols, int planes, int s, int extent)
{
    for (int k = 0; k < rows * cols; k++) {
        if (k >= cols) blend_tiles(&tiles[k - cols], &tiles[k], planes, s, extent, 1);
        if (k % cols) blend_tiles(&tiles[k - 1], &tiles[k], planes, s, extent, 0);
    }
}

/* The checks both tiled directions make of `tiling` against v's program (`what`: vae_decode_tile or vae_encode_tile). */
static sky_status tiling_ok(const sky_vae *v, const sky_vae_tiling *tiling, const char *what, sky_err *err)
{
    const sky_vae_program *p = v->p;
    const int              s = p->stride_s, min_px = tiling->min_px, stride_px = tiling->stride_px;
    if (min_px % s || stride_px % s || stride_px <= 0 || stride_px > min_px)
        return sky_fail(err, "--vae_tiling %d:%d: tile and stride must be multiples of %d pixels, 0 < stride <= tile",
                        min_px, stride_px, s);
    if (p->tile && min_px / s > p->tile)
        return sky_fail(err,
                        "--vae_tiling %d:%d: this variant's %s takes tiles of up to %d pixels (its spec's "
                        "vae.tile_px): use a tile of at most %d, or regenerate with a larger vae.tile_px",
                        min_px, stride_px, what, s * p->tile, s * p->tile);
    if (v->cuda && !p->tile)
        return sky_fail(err,
                        "--vae_tiling %d:%d: the CUDA backend runs tiles with %s, which this variant "
                        "lacks (its frame fits one tile of vae.tile_px) or which takes smaller tiles: use a tile of at "
                        "most the spec's vae.tile_px, or --backend cpu",
                        min_px, stride_px, what);
    return SKY_OK;
}

sky_status sky_vae_decode_tiled(sky_vae *v, const float *z, int L, int h, int w, const sky_vae_tiling *tiling,
                                float *video, sky_err *err)
{
    const sky_vae_program *p = v->p;
    const int              s = p->stride_s, min_px = tiling->min_px, stride_px = tiling->stride_px;
    if (tiling_ok(v, tiling, "vae_decode_tile", err)) return SKY_ERR;
    if (L < 1) return sky_fail(err, "vae_decode: %d latent frames; need at least 1", L);
    if (!size_ok(h, w, p->lat_h, p->lat_w))
        return sky_fail(err, "vae_decode: latent size %dx%d; this variant was generated for %dx%d (or %dx%d)", h, w,
                        p->lat_h, p->lat_w, p->lat_w, p->lat_h);
    const int tl = min_px / s, ts = stride_px / s, rows = (h + ts - 1) / ts, cols = (w + ts - 1) / ts;
    const int T = sky_latent_video_frames(L, p->stride_t), H = s * h, W = s * w;
    vae_tile *tiles = calloc((size_t)rows * cols, sizeof *tiles);
    if (!tiles) return sky_fail(err, "out of host memory");
    sky_status st = SKY_OK;
    for (int k = 0; k < rows * cols && st == SKY_OK; k++) {
        vae_tile *t = &tiles[k];
        t->i0 = k / cols * ts, t->j0 = k % cols * ts;
        t->th = h - t->i0 < tl ? h - t->i0 : tl;
        t->tw = w - t->j0 < tl ? w - t->j0 : tl;
        t->px = malloc((size_t)3 * T * s * t->th * s * t->tw * sizeof(float));
        if (!t->px)
            st = sky_fail(err, "out of host memory for a decoded tile");
        else
            decode_tile(v, z, L, h, w, t);
    }
    if (st == SKY_OK) blend_grid(tiles, rows, cols, 3 * T, s, min_px - stride_px);
    for (int k = 0; k < rows * cols && st == SKY_OK; k++) { /* each tile's top-left stride x stride, clamped */
        const vae_tile *t = &tiles[k];
        const int       TH = s * t->th, TW = s * t->tw, y0 = t->i0 * s, x0 = t->j0 * s;
        const int       nh = TH < stride_px ? TH : stride_px, nw = TW < stride_px ? TW : stride_px;
        for (int ct = 0; ct < 3 * T; ct++)
            for (int y = 0; y < nh && y0 + y < H; y++)
                for (int x = 0; x < nw && x0 + x < W; x++) {
                    const float f = t->px[((size_t)ct * TH + y) * TW + x];
                    video[((size_t)ct * H + y0 + y) * W + x0 + x] = f < -1.0f ? -1.0f : f > 1.0f ? 1.0f : f;
                }
    }
    for (int k = 0; k < rows * cols; k++) free(tiles[k].px);
    free(tiles);
    return st;
}

/* The tile program where the variant has one and the tiling's tiles fit it, else the whole-frame program. */
static const sky_vae_program *tile_or_whole(const sky_vae_program *tile, const sky_vae_program *whole,
                                            const sky_vae_tiling *tiling)
{
    return tile && tiling->min_px / tile->stride_s <= tile->tile ? tile : whole;
}

const sky_vae_program *sky_vae_tiled_program(const sky_variant_desc *variant, const sky_vae_tiling *tiling)
{
    return tile_or_whole(variant->vae_decode_tile, variant->vae_decode, tiling);
}

/* ---- the tiled encode (vae.h sky_vae_encode_tiled) ------------------------------------------------ */

/* Encode one tile (latent origin i0, j0, size th x tw; its pixels stride_s times that) over the whole sequence, its
 * causal caches reset first (clear_cache per tile): frame 0, then 4 frames per call, each call's latent frame kept
 * in the tile's [z_dim, L, th, tw]. */
static void encode_tile(sky_vae *v, const float *video, int T, int H, int W, vae_tile *t)
{
    const sky_vae_program *p = v->p;
    const int              s = p->stride_s, L = sky_latent_frames(T, p->stride_t), ph = s * t->th, pw = s * t->tw;
    const size_t           px_hw = (size_t)ph * pw, thw = (size_t)t->th * t->tw;
    reset(v);
    for (int l = 0; l < L; l++) {
        int       t0;
        const int n = sky_latent_video_span(l, p->stride_t, &t0);
        float    *in = chunk_in(v);
        for (int c = 0; c < 3; c++)
            for (int f = 0; f < n; f++)
                for (int y = 0; y < ph; y++)
                    memcpy(in + ((size_t)c * n + f) * px_hw + (size_t)y * pw,
                           video + (((size_t)c * T + t0 + f) * H + s * t->i0 + y) * W + s * t->j0,
                           (size_t)pw * sizeof(float));
        run_chunk(v, ph, pw, l == 0, (size_t)3 * n * px_hw, (size_t)p->z_dim * thw);
        copy_frames(chunk_out(v), t->px, p->z_dim, L, thw, l, 1, 1);
    }
}

sky_status sky_vae_encode_tiled(sky_vae *v, const float *video, int T, int H, int W, const sky_vae_tiling *tiling,
                                float *z, sky_err *err)
{
    const sky_vae_program *p = v->p;
    const int              s = p->stride_s;
    if (tiling_ok(v, tiling, "vae_encode_tile", err) || encode_input_ok(p, T, H, W, err)) return SKY_ERR;
    const int tl = tiling->min_px / s, ts = tiling->stride_px / s, h = H / s, w = W / s;
    const int rows = (h + ts - 1) / ts, cols = (w + ts - 1) / ts, L = sky_latent_frames(T, p->stride_t);
    vae_tile *tiles = calloc((size_t)rows * cols, sizeof *tiles);
    if (!tiles) return sky_fail(err, "out of host memory");
    sky_status st = SKY_OK;
    for (int k = 0; k < rows * cols && st == SKY_OK; k++) {
        vae_tile *t = &tiles[k];
        t->i0 = k / cols * ts, t->j0 = k % cols * ts;
        t->th = h - t->i0 < tl ? h - t->i0 : tl;
        t->tw = w - t->j0 < tl ? w - t->j0 : tl;
        t->px = malloc((size_t)p->z_dim * L * t->th * t->tw * sizeof(float));
        if (!t->px)
            st = sky_fail(err, "out of host memory for an encoded tile");
        else
            encode_tile(v, video, T, H, W, t);
    }
    if (st == SKY_OK) blend_grid(tiles, rows, cols, p->z_dim * L, 1, tl - ts); /* in latents */
    for (int k = 0; k < rows * cols && st == SKY_OK; k++) { /* each tile's top-left stride x stride latents */
        const vae_tile *t = &tiles[k];
        const int       nh = t->th < ts ? t->th : ts, nw = t->tw < ts ? t->tw : ts;
        for (int cl = 0; cl < p->z_dim * L; cl++)
            for (int y = 0; y < nh; y++)
                memcpy(z + ((size_t)cl * h + t->i0 + y) * w + t->j0, t->px + ((size_t)cl * t->th + y) * t->tw,
                       (size_t)nw * sizeof(float));
    }
    for (int k = 0; k < rows * cols; k++) free(tiles[k].px);
    free(tiles);
    return st;
}

const sky_vae_program *sky_vae_encode_tiled_program(const sky_variant_desc *variant, const sky_vae_tiling *tiling)
{
    return tile_or_whole(variant->vae_encode_tile, variant->vae_encode, tiling);
}

sky_status sky_vae_run_file(const sky_variant_desc *variant, int decode, const char *weights, const char *inputs,
                            const char *output, int quiet, int backend, const sky_vae_tiling *tiling, sky_err *err)
{
    const sky_vae_program *p = !tiling  ? decode ? variant->vae_decode : variant->vae_encode
                               : decode ? sky_vae_tiled_program(variant, tiling)
                                        : sky_vae_encode_tiled_program(variant, tiling);
    if (!p) return sky_fail(err, "variant %s has no VAE (its spec has no vae section)", variant->name);
    const char      *in_name = decode ? "z" : "video", *out_name = decode ? "video" : "z";
    sky_status       st = SKY_ERR;
    sky_safetensors *f = NULL;
    sky_vae         *v = NULL;
    float           *in = NULL, *out = NULL;
    if (sky_safetensors_open(&f, inputs, err)) goto done;
    const sky_st_tensor *t = sky_safetensors_find(f, in_name);
    const int            want_c = decode ? p->z_dim : 3;
    if (!t || t->ndim != 5 || t->shape[0] != 1 || t->shape[1] != want_c) {
        sky_fail(err, "%s: needs a tensor '%s' of shape [1, %d, frames, height, width]", inputs, in_name, want_c);
        goto done;
    }
    const int n = (int)t->shape[2], h = (int)t->shape[3], w = (int)t->shape[4];
    if (n < 1 || n > 100000) {
        sky_fail(err, "%s: '%s' has %d frames", inputs, in_name, n);
        goto done;
    }
    const size_t in_elems = (size_t)want_c * n * h * w;
    in = malloc(in_elems * sizeof(float));
    if (!in) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    if (sky_dtype_to_f32(in, t->data, t->dtype, in_elems, err)) goto done;
    if (sky_vae_open(&v, p, decode, weights, variant->name, backend, err)) goto done;
    if (!quiet && v->cuda) fprintf(stderr, "cuda: %s\n", v->cuda->vae_device(v->cuda_state));

    int on, oh, ow, oc;
    if (decode) {
        oc = 3;
        on = sky_latent_video_frames(n, p->stride_t);
        oh = p->stride_s * h;
        ow = p->stride_s * w;
    } else {
        if (h % p->stride_s || w % p->stride_s) {
            sky_fail(err, "%s: video size %dx%d is not a multiple of %d", inputs, h, w, p->stride_s);
            goto done;
        }
        oc = p->z_dim;
        on = sky_latent_frames(n, p->stride_t);
        oh = sky_latent_size(h, p->stride_s);
        ow = sky_latent_size(w, p->stride_s);
    }
    out = malloc((size_t)oc * on * oh * ow * sizeof(float));
    if (!out) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    if (decode
            ? tiling ? sky_vae_decode_tiled(v, in, n, h, w, tiling, out, err) : sky_vae_decode(v, in, n, h, w, out, err)
        : tiling ? sky_vae_encode_tiled(v, in, n, h, w, tiling, out, err)
                 : sky_vae_encode(v, in, n, h, w, out, err))
        goto done;
    clock_gettime(CLOCK_MONOTONIC, &t1);
    if (!quiet)
        fprintf(stderr, "%s: %d frames of %dx%d -> %d frames of %dx%d in %.3f s (%s)\n",
                decode ? "vae_decode" : "vae_encode", n, h, w, on, oh, ow,
                (double)(t1.tv_sec - t0.tv_sec) + 1e-9 * (double)(t1.tv_nsec - t0.tv_nsec),
                backend == SKY_BACKEND_CUDA ? "cuda, first calls include the graph captures" : "cpu");
    sky_st_entry e = {out_name, SKY_DTYPE_F32, 5, {1, oc, on, oh, ow}, out};
    const char  *meta[] = {"made_by", decode ? "skyreels program vae_decode" : "skyreels program vae_encode",
                           "variant", variant->name,
                           "backend", backend == SKY_BACKEND_CUDA ? "cuda" : "cpu",
                           NULL};
    st = sky_safetensors_write(output, &e, 1, meta, err);
done:
    free(in);
    free(out);
    sky_vae_close(v);
    sky_safetensors_close(f);
    return st;
}
