/* tests/runtime/mp4probe.c — print "frames W H fps_num/fps_den" of a video decoded by runtime/video/video.c
 * (the test suite's stand-in for ffprobe, which CI does not install). Exit 1 when unreadable.
 * mp4probe FILE KEY prints instead "VALUE FRAMES_XXH64": the container's metadata KEY (libavformat; "-" when
 * absent) and the xxh64 of every decoded RGB24 frame, to compare two videos' content, not their bytes.
 * mp4probe --make FILE FRAMES W H writes a video of FRAMES moving gradients at 24 fps (the long inputs of the
 * --video_path memory check, tests/runtime/test_cli.sh), with the runtime's own writer. */
#include <libavformat/avformat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "video/video.h"

static int make(const char *path, int frames, int w, int h)
{
    sky_video_writer *vw;
    sky_err           err;
    uint8_t          *rgb = malloc((size_t)w * h * 3);
    if (!rgb || sky_video_writer_open(&vw, path, w, h, 24, 23, NULL, &err)) {
        fprintf(stderr, "mp4probe: %s\n", rgb ? err.msg : "out of memory");
        return 1;
    }
    for (int t = 0; t < frames; t++) {
        for (int i = 0; i < w * h * 3; i++) rgb[i] = (uint8_t)((i / 3 % w) * 3 + (i / 3 / w) * 2 + t * 5 + i % 3 * 80);
        if (sky_video_writer_add(vw, rgb, &err)) {
            sky_video_writer_abort(vw);
            fprintf(stderr, "mp4probe: %s\n", err.msg);
            return 1;
        }
    }
    free(rgb);
    if (sky_video_writer_close(vw, &err)) { fprintf(stderr, "mp4probe: %s\n", err.msg); return 1; }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "--make") == 0) return make(argv[2], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
    if (argc != 2 && argc != 3) { fprintf(stderr, "usage: mp4probe FILE [KEY]\n"); return 2; }
    sky_frames f;
    sky_err err;
    if (sky_video_read(argv[1], 0, 0, 0, &f, &err)) { fprintf(stderr, "mp4probe: %s\n", err.msg); return 1; }
    if (argc == 2) {
        printf("%d %d %d %d/%d\n", f.count, f.width, f.height, f.fps_num, f.fps_den);
    } else {
        AVFormatContext *ic = NULL;
        if (avformat_open_input(&ic, argv[1], NULL, NULL) < 0) { fprintf(stderr, "mp4probe: cannot open\n"); return 1; }
        const AVDictionaryEntry *e = av_dict_get(ic->metadata, argv[2], NULL, 0);
        printf("%s %016llx\n", e ? e->value : "-",
               (unsigned long long)XXH64(f.data, (size_t)f.count * f.height * f.width * 3, 0));
        avformat_close_input(&ic);
    }
    sky_frames_free(&f);
    return 0;
}
