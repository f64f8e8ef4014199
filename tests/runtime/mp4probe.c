/* tests/runtime/mp4probe.c — print "frames W H fps_num/fps_den" of a video decoded by runtime/video/video.c
 * (the test suite's stand-in for ffprobe, which CI does not install). Exit 1 when unreadable. */
#include <stdio.h>

#include "video/video.h"

int main(int argc, char **argv)
{
    if (argc != 2) { fprintf(stderr, "usage: mp4probe FILE\n"); return 2; }
    sky_frames f;
    sky_err err;
    if (sky_video_read(argv[1], 0, 0, 0, &f, &err)) { fprintf(stderr, "mp4probe: %s\n", err.msg); return 1; }
    printf("%d %d %d %d/%d\n", f.count, f.width, f.height, f.fps_num, f.fps_den);
    sky_frames_free(&f);
    return 0;
}
