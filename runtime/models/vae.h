/* runtime/models/vae.h — run the generated VAE programs over whole videos, chunk by chunk.
 *
 * Decoding runs one latent frame per call with the caches kept in the program's arena, so memory
 * stays constant whatever the video length; encoding runs frame 0 alone, then 4 frames per call
 * (shared/reference/vae-text-image-files.md §1.5). Latents are the normalised ones the DiT sees.
 * The 4 and the 8 below are the program's stride_t and stride_s (the arithmetic: models/latent.h).
 *
 * Files for `program vae_decode|vae_encode` (batch first, as the peers store them):
 *   decode: z [1, z_dim, L, h, w] -> video [1, 3, 1 + 4(L-1), 8h, 8w] in [-1, 1]
 *   encode: video [1, 3, T, H, W] in [-1, 1] -> z [1, z_dim, 1 + (T-1)/4, H/8, W/8]
 *           (frames after 1 + 4*((T-1)/4) are dropped, as the original does)
 * h x w (and H x W) must be the spec's size or its transpose (portrait).
 */
#ifndef SKY_VAE_H
#define SKY_VAE_H

#include "models/program.h"
#include "core/status.h"

/* A bound VAE program: weights as fp32 and the arena (CPU backend), or the CUDA plugin's state. */
typedef struct sky_vae sky_vae;

/* Bind program p (vae_decode when decode = 1, else vae_encode) to the VAE checkpoint at `weights`
 * (file or directory; original or diffusers names) on backend b (a sky_backend, backend.h). `who` names
 * the variant in messages and the plugin to load. */
sky_status sky_vae_open(sky_vae **out, const sky_vae_program *p, int decode, const char *weights, const char *who,
                        int b, sky_err *err);
void       sky_vae_close(sky_vae *v);

/* Decode L latent frames z [z_dim, L, h, w] into video [3, 1 + 4(L-1), 8h, 8w]. */
sky_status sky_vae_decode(sky_vae *v, const float *z, int L, int h, int w, float *video, sky_err *err);

/* Encode T = 1 + 4k video frames [3, T, H, W] into z [z_dim, 1 + k, H/8, W/8]. */
sky_status sky_vae_encode(sky_vae *v, const float *video, int T, int H, int W, float *z, sky_err *err);

/* The tiles of the tiled decode in pixels, square: diffusers' tile_sample_min_height/width (min_px) and
 * tile_sample_stride_height/width (stride_px); its defaults are 256 and 192. */
typedef struct sky_vae_tiling {
    int min_px, stride_px;
} sky_vae_tiling;

/* Decode as diffusers' AutoencoderKLWan.tiled_decode does (shared/reference/round2-features.md §6.2): latent tiles
 * of min_px / 8 at a stride of stride_px / 8, each decoded over the whole sequence with its own causal caches
 * (reset per tile), before the clamp; then blended over min_px - stride_px pixels (vertically, then horizontally,
 * in place, row-major), each tile's top-left stride_px square kept, the result clamped to [-1, 1]. Every tile is
 * decoded at its size by v's program: vae_decode_tile (its arena the tile's; any backend; min_px / 8 at most its
 * tile) or vae_decode (the frame's arena; CPU backend only); all tiles are held on the host until blended. */
sky_status sky_vae_decode_tiled(sky_vae *v, const float *z, int L, int h, int w, const sky_vae_tiling *tiling,
                                float *video, sky_err *err);

/* The program the tiled decode with `tiling` runs on the variant: vae_decode_tile when the variant has one and
 * its tile holds tiling's, else vae_decode (which sky_vae_decode_tiled runs on the CPU backend only). */
const sky_vae_program *sky_vae_tiled_program(const sky_variant_desc *variant, const sky_vae_tiling *tiling);

/* Encode as diffusers' AutoencoderKLWan.tiled_encode does (shared/reference/round2-features.md §6.3): pixel tiles
 * of min_px at a stride of stride_px, each encoded over the whole sequence (frame 0, then 4 frames per call) with its
 * own causal caches (reset per tile); the tiles' latents blended over (min_px - stride_px) / 8 latents (vertically,
 * then horizontally, in place, row-major), each tile's top-left stride_px / 8 square kept. The normalised latent
 * z [z_dim, 1 + (T-1)/4, H/8, W/8] (the blend is linear with weights summing to 1, so blending the normalised mean
 * is diffusers' blend of the mean, normalised, up to fp32 rounding). Every tile is encoded at its size by v's
 * program: vae_encode_tile (its arena the tile's; any backend) or vae_encode (the frame's; CPU backend only). */
sky_status sky_vae_encode_tiled(sky_vae *v, const float *video, int T, int H, int W, const sky_vae_tiling *tiling,
                                float *z, sky_err *err);

/* The program the tiled encode with `tiling` runs: vae_encode_tile when the variant has one and its tile holds
 * tiling's, else vae_encode. */
const sky_vae_program *sky_vae_encode_tiled_program(const sky_variant_desc *variant, const sky_vae_tiling *tiling);

/* `program vae_decode|vae_encode --weights W --inputs I --output O [--vae_tiling MIN:STRIDE]` (see above);
 * tiling NULL: untiled. */
sky_status sky_vae_run_file(const sky_variant_desc *variant, int decode, const char *weights, const char *inputs,
                            const char *output, int quiet, int backend, const sky_vae_tiling *tiling, sky_err *err);

#endif /* SKY_VAE_H */
