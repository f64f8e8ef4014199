/* tests/runtime/mp4probe.c — print "frames W H fps_num/fps_den" of a video decoded by runtime/video/video.c
 * (the test suite's stand-in for ffprobe, which CI does not install). Exit 1 when unreadable.
 * mp4probe FILE KEY prints instead "VALUE FRAMES_XXH64": the container's metadata KEY (libavformat; "-" when
 * absent) and the xxh64 of every decoded RGB24 frame, to compare two videos' content, not their bytes. */
#include <libavformat/avformat.h>
#include <stdio.h>

#define XXH_INLINE_ALL
#include <xxhash.h>

#include "video/video.h"

int main(int argc, char **argv)
{
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
