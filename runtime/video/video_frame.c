/* runtime/video/video_frame.c — the float -> uint8 frame conversion of video.h, which needs no FFmpeg (built with
 * either video.c or video_none.c). */
#include "video/video.h"

#include <stddef.h>
#include <stdint.h>

void sky_video_frame_from_float(uint8_t *rgb24, const float *chw, int width, int height)
{
    SKY_ASSERT(rgb24 != NULL && chw != NULL && width > 0 && height > 0);
    size_t plane = (size_t)width * (size_t)height;
    for (size_t i = 0; i < plane; i++) {
        for (int ch = 0; ch < 3; ch++) {
            /* float32 throughout, like torch: x/2 is exact, +0.5 and *255 round once each */
            float v = chw[(size_t)ch * plane + i] / 2.0f + 0.5f;
            v = v < 0.0f ? 0.0f : v; /* NaN fails both compares ... */
            v = v > 1.0f ? 1.0f : v;
            v = v * 255.0f;
            rgb24[i * 3 + (size_t)ch] = v >= 0.0f ? (uint8_t)v : 0; /* ... and ends as 0 here */
        }
    }
}
