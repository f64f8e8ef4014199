/* runtime/models/latent.c — frame and token arithmetic; see latent.h. */
#include "models/latent.h"

int sky_latent_frames(int video_frames, int stride_t)
{
    SKY_ASSERT(video_frames >= 1 && stride_t >= 1);
    return (video_frames - 1) / stride_t + 1;
}

int sky_latent_video_frames(int latent_frames, int stride_t)
{
    SKY_ASSERT(latent_frames >= 1 && stride_t >= 1);
    return 1 + stride_t * (latent_frames - 1);
}

int sky_latent_video_span(int l, int stride_t, int *first)
{
    SKY_ASSERT(l >= 0 && stride_t >= 1);
    *first = l == 0 ? 0 : sky_latent_video_frames(l, stride_t);
    return l == 0 ? 1 : stride_t;
}

int sky_latent_size(int pixels, int stride_s)
{
    SKY_ASSERT(stride_s >= 1);
    return pixels / stride_s;
}

long long sky_latent_tokens(const sky_dit_program *p, int F, int h, int w)
{
    SKY_ASSERT(p->patch_t >= 1 && p->patch_h >= 1 && p->patch_w >= 1);
    return (long long)(F / p->patch_t) * (h / p->patch_h) * (w / p->patch_w);
}
