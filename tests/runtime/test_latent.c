/* tests/runtime/test_latent.c — runtime/models/latent.c, the frame and token arithmetic, on the reference's
 * worked numbers: shared/reference/dit-and-sampling.md §1 (540P and 720P latents and tokens, pixel frames
 * <-> latent frames), §7.4.4 and §7.4.5 (long-video and extension frame counts), and
 * vae-text-image-files.md §1.5 (the VAE's chunks: frame 0 alone, then [1..4], [5..8], ...; frames past
 * 1 + 4((T-1)//4) dropped). The strides are the Wan VAE's and the DiT's patch (§2.2), as the generated
 * variant description gives them (tests/golden/<variant>/gen/variant.c).
 */
#include "check.h"
#include "models/latent.h"

enum { STRIDE_T = 4, STRIDE_S = 8 }; /* the Wan VAE's (vae-text-image-files.md §1.5) */

static const sky_dit_program patch122 = {.patch_t = 1, .patch_h = 2, .patch_w = 2}; /* §2.2: kernel (1,2,2) */

/* §1: 540P = 544x960 px -> latent 68x120 -> 34x60 = 2040 tokens per frame; 97 frames -> F 25 -> L 51000.
 * 720P = 720x1280 -> 90x160 -> 45x80 = 3600 per frame; 121 frames -> F 31 -> L 111600. Portrait: same L. */
static int test_sizes_and_tokens(void)
{
    CHECK(sky_latent_size(544, STRIDE_S) == 68 && sky_latent_size(960, STRIDE_S) == 120, "540P latent");
    CHECK(sky_latent_size(720, STRIDE_S) == 90 && sky_latent_size(1280, STRIDE_S) == 160, "720P latent");
    CHECK(sky_latent_tokens(&patch122, 1, 68, 120) == 2040, "540P: %lld tokens per frame",
          sky_latent_tokens(&patch122, 1, 68, 120));
    CHECK(sky_latent_tokens(&patch122, sky_latent_frames(97, STRIDE_T), 68, 120) == 51000, "540P, 97 frames");
    CHECK(sky_latent_tokens(&patch122, sky_latent_frames(121, STRIDE_T), 90, 160) == 111600, "720P, 121 frames");
    CHECK(sky_latent_tokens(&patch122, 31, 160, 90) == 111600, "720P portrait");
    return 0;
}

/* §1 and §7.4.4 / §7.4.5: n pixel frames -> (n-1)//4 + 1 latent frames; F latents decode to 4(F-1)+1 frames. */
static int test_frames(void)
{
    static const int px[] = {1, 5, 17, 97, 120, 121, 237, 257, 737};
    static const int lat[] = {1, 2, 5, 25, 30, 31, 60, 65, 185};
    for (int i = 0; i < (int)(sizeof px / sizeof px[0]); i++)
        CHECK(sky_latent_frames(px[i], STRIDE_T) == lat[i], "%d frames: %d latent frames, want %d", px[i],
              sky_latent_frames(px[i], STRIDE_T), lat[i]);
    /* §7.4.4: a window of Fb = 25 latents decodes to 97 frames; the 237-frame video's last window of 20, 77 */
    CHECK(sky_latent_video_frames(25, STRIDE_T) == 97 && sky_latent_video_frames(20, STRIDE_T) == 77 &&
              sky_latent_video_frames(1, STRIDE_T) == 1,
          "decoded frames");
    /* frames not of the form 4k+1 round down: 99 frames encode to 25 latents, which decode to 97 */
    CHECK(sky_latent_video_frames(sky_latent_frames(99, STRIDE_T), STRIDE_T) == 97, "99 frames");
    return 0;
}

/* vae-text-image-files.md §1.5: chunks of frame 0 alone, then [1..4], [5..8], ... */
static int test_spans(void)
{
    int first = -1, n = sky_latent_video_span(0, STRIDE_T, &first);
    CHECK(first == 0 && n == 1, "latent 0: frames [%d, %d)", first, first + n);
    n = sky_latent_video_span(1, STRIDE_T, &first);
    CHECK(first == 1 && n == 4, "latent 1: frames [%d, %d)", first, first + n);
    n = sky_latent_video_span(2, STRIDE_T, &first);
    CHECK(first == 5 && n == 4, "latent 2: frames [%d, %d)", first, first + n);
    /* the spans of F latents tile exactly the 4(F-1)+1 frames they decode to */
    for (int F = 1; F <= 31; F++) {
        int next = 0;
        for (int l = 0; l < F; l++) {
            n = sky_latent_video_span(l, STRIDE_T, &first);
            CHECK(first == next, "F %d, latent %d starts at %d, want %d", F, l, first, next);
            next = first + n;
        }
        CHECK(next == sky_latent_video_frames(F, STRIDE_T), "F %d: spans end at %d", F, next);
    }
    return 0;
}

int main(void)
{
    RUN(test_sizes_and_tokens);
    RUN(test_frames);
    RUN(test_spans);
    return CHECK_SUMMARY();
}
