/* tests/fuzz/fuzz_image.c — libFuzzer target for the image reader (video/video.h: sky_image_read through
 * FFmpeg, the I2V start and end images) and the resize the pipelines apply to what it reads.
 *
 * Input: one byte choosing the file's extension (FFmpeg's image2 demuxer goes by it), then the file. Checked
 * on top of ASan/UBSan: a failed read leaves a zeroed image and its message starts with the path; a read
 * image has a size in 1..SKY_VIDEO_MAX_DIM and all its bytes readable, and resizes (to 16x8, or an eighth of a
 * large one; not above 4 MP) with both filters.
 * FFmpeg itself is not instrumented: a crash inside it is still found, an overread that does not crash is not.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_common.h"
#include "video/video.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const char *const ext[] = {"png", "jpg", "bmp", "webp", "gif", "tiff", "ppm", "jpeg"};
    if (size < 1) return 0;
    char path[512], name[32];
    fz_dir();
    snprintf(name, sizeof name, "image.%s", ext[data[0] % (sizeof ext / sizeof *ext)]);
    fz_write(path, sizeof path, name, data + 1, size - 1);
    sky_image img;
    sky_err   err = {{0}};
    if (sky_image_read(path, &img, &err) != SKY_OK) {
        if (img.data || img.width || img.height) abort();
        fz_check_err(&err, path, "sky_image_read");
        return 0;
    }
    if (img.width < 1 || img.height < 1 || img.width > SKY_VIDEO_MAX_DIM || img.height > SKY_VIDEO_MAX_DIM) abort();
    fz_report("sky_image_read", NULL);
    fz_touch(img.data, (size_t)img.width * (size_t)img.height * 3);
    /* the pipelines resize to the model's size, a few times smaller at most (a tiny target for a huge image
     * makes swscale's filter setup take minutes, which no run meets); images above 4 MP are not resized,
     * so that the few-byte WebP "bombs" of 50 MP the fuzzer finds cost a second, not ten */
    if ((size_t)img.width * (size_t)img.height > ((size_t)1 << 22)) {
        sky_image_free(&img);
        return 0;
    }
    const int w = img.width > 128 ? img.width / 8 : 16, h = img.height > 64 ? img.height / 8 : 8;
    uint8_t  *small = malloc((size_t)w * (size_t)h * 3);
    if (!small) fz_harness_fail("malloc", "resized image");
    for (int lanczos = 0; lanczos < 2; lanczos++) {
        memset(&err, 0, sizeof err);
        if (sky_image_resize_rgb24(img.data, img.width * 3, img.width, img.height, small, w, h, lanczos, &err) !=
            SKY_OK) {
            fprintf(stderr, "resize of a %dx%d image failed: %s\n", img.width, img.height, err.msg);
            abort();
        }
    }
    free(small);
    sky_image_free(&img);
    return 0;
}
