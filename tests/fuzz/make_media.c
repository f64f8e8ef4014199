/* tests/fuzz/make_media.c — write the seed corpora of fuzz_image and fuzz_video (tests/fuzz/corpus/image/,
 * .../video/): small images and videos in the formats FFmpeg reads, made with FFmpeg's own encoders and
 * muxers, each file prefixed by the byte that picks its extension in the target (fuzz_image.c, fuzz_video.c).
 * Run by tests/fuzz/make_corpus.sh:
 *
 *   cc -std=c11 tests/fuzz/make_media.c $(pkg-config --cflags --libs libavformat libavcodec libswscale libavutil) \
 *      -o build/make_media && build/make_media tests/fuzz/corpus
 *
 * Encoders that this FFmpeg lacks are skipped with a line saying so. Sizes are tiny (16x8 and odd ones), and
 * a few files sit on a rule of the readers: a rotated video (display matrix), an HDR transfer, alpha, gray.
 */
#define _POSIX_C_SOURCE 200809L
#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libswscale/swscale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

typedef struct media {
    const char        *target;  /* "image" or "video" */
    const char        *name;    /* corpus file name; its extension picks the muxer */
    int                ext;     /* the target's extension index (first byte of the input) */
    const char        *encoder; /* FFmpeg encoder name */
    enum AVPixelFormat fmt;
    int                w, h, frames;
    int                rotate; /* degrees in a display matrix (0: none) */
    int                hdr;    /* tag the stream SMPTE 2084 (PQ) */
} media;

static const media MEDIA[] = {
    {"image", "rgb.png", 0, "png", AV_PIX_FMT_RGB24, 16, 8, 1, 0, 0},
    {"image", "rgba-odd.png", 0, "png", AV_PIX_FMT_RGBA, 15, 7, 1, 0, 0},
    {"image", "gray.png", 0, "png", AV_PIX_FMT_GRAY8, 16, 8, 1, 0, 0},
    {"image", "rgb48.png", 0, "png", AV_PIX_FMT_RGB48BE, 9, 5, 1, 0, 0},
    {"image", "yuvj420.jpg", 1, "mjpeg", AV_PIX_FMT_YUVJ420P, 16, 8, 1, 0, 0},
    {"image", "yuvj444-odd.jpeg", 7, "mjpeg", AV_PIX_FMT_YUVJ444P, 17, 9, 1, 0, 0},
    {"image", "bgr.bmp", 2, "bmp", AV_PIX_FMT_BGR24, 15, 7, 1, 0, 0},
    {"image", "yuv420.webp", 3, "libwebp", AV_PIX_FMT_YUV420P, 16, 8, 1, 0, 0},
    {"image", "gray.gif", 4, "gif", AV_PIX_FMT_GRAY8, 16, 8, 1, 0, 0},
    {"image", "rgb.tiff", 5, "tiff", AV_PIX_FMT_RGB24, 16, 8, 1, 0, 0},
    {"image", "rgb.ppm", 6, "ppm", AV_PIX_FMT_RGB24, 16, 8, 1, 0, 0},
    {"video", "x264.mp4", 0, "libx264", AV_PIX_FMT_YUV420P, 16, 8, 3, 0, 0},
    {"video", "x264-rotated.mp4", 0, "libx264", AV_PIX_FMT_YUV420P, 16, 8, 2, 90, 0},
    {"video", "ffv1-444.mkv", 1, "ffv1", AV_PIX_FMT_YUV444P, 16, 8, 3, 0, 0},
    {"video", "ffv1-hdr.mkv", 1, "ffv1", AV_PIX_FMT_YUV420P10LE, 16, 8, 2, 0, 1},
    {"video", "vp8.webm", 2, "libvpx", AV_PIX_FMT_YUV420P, 16, 8, 2, 0, 0},
    {"video", "mpeg4.avi", 3, "mpeg4", AV_PIX_FMT_YUV420P, 16, 8, 3, 0, 0},
    {"video", "qtrle.mov", 4, "qtrle", AV_PIX_FMT_RGB24, 15, 7, 2, 0, 0},
    {"video", "gray-anim.gif", 5, "gif", AV_PIX_FMT_GRAY8, 16, 8, 3, 0, 0},
    {"video", "mpeg4.ts", 7, "mpeg4", AV_PIX_FMT_YUV420P, 16, 8, 3, 0, 0},
};

static int fail(const media *m, const char *what, int r)
{
    fprintf(stderr, "make_media: %s: %s failed (%s)\n", m->name, what, av_err2str(r));
    return -1;
}

/* Encode m into path. Returns 0, 1 when the encoder is missing, -1 on failure. */
static int encode(const media *m, const char *path)
{
    const AVCodec *codec = avcodec_find_encoder_by_name(m->encoder);
    if (!codec) return 1;
    AVFormatContext *oc = NULL;
    int              r = avformat_alloc_output_context2(&oc, NULL, NULL, path);
    if (r < 0) return fail(m, "avformat_alloc_output_context2", r);
    AVStream       *st = avformat_new_stream(oc, NULL);
    AVCodecContext *c = avcodec_alloc_context3(codec);
    c->width = m->w;
    c->height = m->h;
    c->pix_fmt = m->fmt;
    c->time_base = (AVRational){1, 8};
    c->framerate = (AVRational){8, 1};
    c->gop_size = 2;
    c->thread_count = 1;
    if (m->hdr) c->color_trc = AVCOL_TRC_SMPTE2084, c->color_primaries = AVCOL_PRI_BT2020;
    if (oc->oformat->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER;
    if ((r = avcodec_open2(c, codec, NULL)) < 0) return fail(m, "avcodec_open2", r);
    avcodec_parameters_from_context(st->codecpar, c);
    st->time_base = c->time_base;
    if (m->rotate) {
        int32_t *matrix = (int32_t *)av_stream_new_side_data(st, AV_PKT_DATA_DISPLAYMATRIX, 9 * sizeof(int32_t));
        av_display_rotation_set(matrix, m->rotate);
    }
    if ((r = avio_open(&oc->pb, path, AVIO_FLAG_WRITE)) < 0) return fail(m, "avio_open", r);
    if ((r = avformat_write_header(oc, NULL)) < 0) return fail(m, "avformat_write_header", r);

    AVFrame *f = av_frame_alloc();
    f->format = m->fmt;
    f->width = m->w;
    f->height = m->h;
    av_frame_get_buffer(f, 0);
    uint8_t            rgb[64 * 64 * 3];
    struct SwsContext *sws =
        sws_getContext(m->w, m->h, AV_PIX_FMT_RGB24, m->w, m->h, m->fmt, SWS_BICUBIC, NULL, NULL, NULL);
    AVPacket *pkt = av_packet_alloc();
    for (int i = 0; i <= m->frames; i++) {
        if (i < m->frames) {
            for (int y = 0; y < m->h; y++)
                for (int x = 0; x < m->w; x++) {
                    uint8_t *p = rgb + 3 * (y * m->w + x);
                    p[0] = (uint8_t)(x * 16 + i * 40), p[1] = (uint8_t)(y * 30), p[2] = (uint8_t)((x ^ y) * 20);
                }
            const uint8_t *src[1] = {rgb};
            int            stride[1] = {3 * m->w};
            av_frame_make_writable(f);
            sws_scale(sws, src, stride, 0, m->h, f->data, f->linesize);
            f->pts = i;
        }
        if ((r = avcodec_send_frame(c, i < m->frames ? f : NULL)) < 0) return fail(m, "avcodec_send_frame", r);
        while ((r = avcodec_receive_packet(c, pkt)) == 0) {
            av_packet_rescale_ts(pkt, c->time_base, st->time_base);
            pkt->stream_index = st->index;
            if ((r = av_interleaved_write_frame(oc, pkt)) < 0) return fail(m, "av_interleaved_write_frame", r);
        }
    }
    av_write_trailer(oc);
    avio_closep(&oc->pb);
    av_packet_free(&pkt);
    av_frame_free(&f);
    sws_freeContext(sws);
    avcodec_free_context(&c);
    avformat_free_context(oc);
    return 0;
}

/* dir/target/name = the extension byte, then the file at tmp. */
static int store(const char *dir, const media *m, const char *tmp)
{
    char out[1024];
    snprintf(out, sizeof out, "%s/%s/%s", dir, m->target, m->name);
    FILE *in = fopen(tmp, "rb"), *o = fopen(out, "wb");
    if (!in || !o) {
        fprintf(stderr, "make_media: cannot open %s or %s\n", tmp, out);
        return -1;
    }
    fputc(m->ext, o);
    char   buf[65536];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, in)) > 0) fwrite(buf, 1, n, o);
    fclose(in);
    long size = ftell(o);
    fclose(o);
    printf("%-6s %-20s %6ld bytes (%s)\n", m->target, m->name, size, m->encoder);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: make_media <corpus folder (tests/fuzz/corpus)>\n");
        return 2;
    }
    av_log_set_level(AV_LOG_ERROR);
    int bad = 0;
    for (size_t i = 0; i < sizeof MEDIA / sizeof *MEDIA; i++) {
        const media *m = &MEDIA[i];
        const char  *dot = strrchr(m->name, '.');
        char         tmp[256];
        snprintf(tmp, sizeof tmp, "/tmp/make_media.%d%s", (int)getpid(), dot);
        int r = encode(m, tmp);
        if (r == 1)
            printf("%-6s %-20s skipped: this FFmpeg has no %s encoder\n", m->target, m->name, m->encoder);
        else if (r < 0 || store(argv[1], m, tmp) != 0)
            bad = 1;
        unlink(tmp);
    }
    return bad;
}
