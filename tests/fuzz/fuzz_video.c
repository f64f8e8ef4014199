/* tests/fuzz/fuzz_video.c — libFuzzer target for the video reader (video/video.h: sky_video_read through
 * FFmpeg, the DF --video_path input), at the native size and resized.
 *
 * Input: one byte choosing the file's extension, then the file. Both reads take at most 4 frames. Checked on
 * top of ASan/UBSan: a failed read leaves zeroed frames and its message starts with the path; a read gives
 * 1..4 frames of a size in 1..SKY_VIDEO_MAX_DIM (16x8 when resized), every byte readable, and a frame rate
 * num/den with den > 0. FFmpeg itself is not instrumented (as fuzz_image.c).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "video/video.h"

static void read_one(const char *path, int w, int h)
{
    sky_frames f;
    sky_err    err = {{0}};
    if (sky_video_read(path, 4, w, h, &f, &err) != SKY_OK) {
        if (f.data || f.count || f.width || f.height) abort();
        fz_check_err(&err, path, "sky_video_read");
        return;
    }
    if (f.count < 1 || f.count > 4 || f.width < 1 || f.height < 1 || f.width > SKY_VIDEO_MAX_DIM ||
        f.height > SKY_VIDEO_MAX_DIM || f.fps_den <= 0 || f.fps_num < 0)
        abort();
    if (w && (f.width != w || f.height != h)) abort();
    fz_report("sky_video_read", NULL);
    fz_touch(f.data, (size_t)f.count * (size_t)f.width * (size_t)f.height * 3);
    sky_frames_free(&f);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ext[] = {"mp4", "mkv", "webm", "avi", "mov", "gif", "y4m", "ts"};
    if (size < 1) return 0;
    char path[512], name[32];
    fz_dir();
    snprintf(name, sizeof name, "video.%s", ext[data[0] % (sizeof ext / sizeof *ext)]);
    fz_write(path, sizeof path, name, data + 1, size - 1);
    read_one(path, 0, 0);
    read_one(path, 16, 8);
    return 0;
}
