/* runtime/models/latent.h — frame and token arithmetic: video frames <-> latent frames, pixels -> latent
 * size, latents -> tokens. The one place the runtime does it, from the strides the generated variant
 * description gives (program.h: sky_variant_desc.vae_stride_t and vae_stride_s, the VAE programs' stride_t and
 * stride_s, sky_dit_program.patch_t/h/w); nothing else divides by 4 or 8 or 2.
 *
 * The causal VAE (shared/reference/vae-text-image-files.md §1.5) encodes video frame 0 alone and every
 * stride_t frames after it into one latent frame: T video frames give 1 + (T-1)/stride_t latent frames (the
 * frames past the last whole group are dropped, as the original does), F latent frames decode to
 * 1 + stride_t (F-1) video frames. The DiT (dit-and-sampling.md §2) makes one token per patch of
 * patch_t x patch_h x patch_w latents. Pure functions; strides >= 1.
 */
#ifndef SKY_LATENT_H
#define SKY_LATENT_H

#include "models/program.h"

/* Latent frames of video_frames >= 1 video frames: (video_frames - 1) / stride_t + 1. */
int sky_latent_frames(int video_frames, int stride_t);

/* Video frames of latent_frames >= 1 latent frames: 1 + stride_t (latent_frames - 1). */
int sky_latent_video_frames(int latent_frames, int stride_t);

/* The video frames [*first, *first + n) latent frame l >= 0 stands for: frame 0 alone for l = 0, else the
 * stride_t frames after latent frame l - 1's. Returns n. */
int sky_latent_video_span(int l, int stride_t, int *first);

/* Latent height or width of a video height or width in pixels: pixels / stride_s. */
int sky_latent_size(int pixels, int stride_s);

/* Tokens of F latent frames of h x w latents in dit_forward: F/patch_t x h/patch_h x w/patch_w. */
long long sky_latent_tokens(const sky_dit_program *p, int F, int h, int w);

#endif /* SKY_LATENT_H */
