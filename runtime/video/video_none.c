/* runtime/video/video_none.c — video.h for a build without FFmpeg (cmake -DSKY_FFMPEG=OFF): every file
 * operation fails with a message saying so, before anything is written. Such a build runs the programs
 * (`program dit_forward`, the VAE, the encoders) and the pipelines up to their latents (--output_latents
 * without --vae_weights); it writes no mp4 and reads no image or video. It exists for machines whose image
 * has no FFmpeg and cannot install it (the GPU test machines: tests/gpu/run.sh). */
#include "video/video.h"

#include <stdlib.h>
#include <string.h>

static sky_status no_ffmpeg(sky_err *err, const char *what)
{
    return sky_fail(err,
                    "%s: this binary was built without FFmpeg (cmake -DSKY_FFMPEG=OFF); rebuild with "
                    "libavcodec-dev, libavformat-dev, libswscale-dev and libavutil-dev installed",
                    what);
}

sky_status sky_video_writer_open(sky_video_writer **out, const char *path, int width, int height, int fps, int crf,
                                 const char *comment_json, sky_err *err)
{
    (void)width, (void)height, (void)fps, (void)crf, (void)comment_json;
    *out = NULL;
    return no_ffmpeg(err, path);
}

sky_status sky_video_writer_add(sky_video_writer *w, const uint8_t *rgb24, sky_err *err)
{
    (void)w, (void)rgb24;
    return no_ffmpeg(err, "writing a video frame");
}

sky_status sky_video_writer_set_tag(sky_video_writer *w, const char *key, const char *value, sky_err *err)
{
    (void)w, (void)key, (void)value;
    return no_ffmpeg(err, "writing a video's metadata");
}

int sky_video_writer_frames(const sky_video_writer *w)
{
    (void)w;
    return 0;
}

const char *sky_video_writer_temp_path(const sky_video_writer *w)
{
    (void)w;
    return "";
}

sky_status sky_video_writer_close(sky_video_writer *w, sky_err *err)
{
    (void)w;
    return no_ffmpeg(err, "closing a video");
}

void sky_video_writer_abort(sky_video_writer *w) { (void)w; }

sky_status sky_image_read(const char *path, sky_image *out, sky_err *err)
{
    memset(out, 0, sizeof *out);
    return no_ffmpeg(err, path);
}

void sky_image_free(sky_image *img)
{
    free(img->data);
    memset(img, 0, sizeof *img);
}

sky_status sky_image_resize_rgb24(const uint8_t *src, int src_stride, int sw, int sh, uint8_t *dst, int W, int H,
                                  int lanczos, sky_err *err)
{
    (void)src, (void)src_stride, (void)sw, (void)sh, (void)dst, (void)W, (void)H, (void)lanczos;
    return no_ffmpeg(err, "resizing an image");
}

sky_status sky_video_read(const char *path, int max_frames, int out_width, int out_height, sky_frames *out,
                          sky_err *err)
{
    (void)max_frames, (void)out_width, (void)out_height;
    memset(out, 0, sizeof *out);
    return no_ffmpeg(err, path);
}

sky_status sky_video_each(const char *path, int max_frames, int out_width, int out_height, sky_video_frame_fn each,
                          void *ctx, sky_frames *info, sky_err *err)
{
    (void)max_frames, (void)out_width, (void)out_height, (void)each, (void)ctx;
    memset(info, 0, sizeof *info);
    return no_ffmpeg(err, path);
}

void sky_frames_free(sky_frames *f)
{
    free(f->data);
    memset(f, 0, sizeof *f);
}

void sky_video_set_av_log_level(int av_level) { (void)av_level; }
