/* runtime/video/video.c — mp4 writer, image and video readers, float frame conversion.
 *
 * Contract in video.h; recipes in reference conventions-and-reliability.md §2.2 (writer)
 * and §2.3 (readers), temp file + rename in §3.6. Every libav call is checked and every
 * message names the file and the operation, with av_strerror() text and the last libav
 * error log line (see "libav logging" below).
 *
 * Verified with FFmpeg 5.1 (Debian 12); the few calls that changed in 6.x/7.x are
 * guarded by version checks (display matrix side data), and none of the APIs deprecated
 * in 7.x (avcodec_close, av_init_packet, AVFrame.key_frame, AVCodec.pix_fmts) is used.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mkstemp, fsync, fchmod, O_DIRECTORY, pthread_once */
#endif

#include "video/video.h"

#include "core/fs.h"

#include <libavcodec/avcodec.h>
#include <libavformat/avformat.h>
#include <libavutil/display.h>
#include <libavutil/imgutils.h>
#include <libavutil/opt.h>
#include <libavutil/pixdesc.h>
#include <libswscale/swscale.h>

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---- libav logging --------------------------------------------------------------
 * libav prints to stderr by default (libx264 logs its profile and stats at info level).
 * Library code must not print, so one callback, installed once, keeps the last message
 * of level error or worse per thread (appended to our error messages: av_strerror alone
 * says "Invalid argument", the log line says which option) and forwards to libav's own
 * printer only what sky_video_set_av_log_level() asked for. */

static _Thread_local char last_av_log[512];
static atomic_int         forward_level = AV_LOG_QUIET;
static pthread_once_t     log_once = PTHREAD_ONCE_INIT;

/* The av_log callback: remember errors, forward what was asked for. */
static void log_callback(void *avcl, int level, const char *fmt, va_list vl)
{
    if (level <= AV_LOG_ERROR) {
        va_list copy;
        va_copy(copy, vl);
        /* "png: Invalid PNG signature ..." — the context's name without libav's
         * "[png @ 0x55d0...]" prefix, whose address only adds noise */
        const AVClass *cls = avcl != NULL ? *(const AVClass *const *)avcl : NULL;
        const char    *who = cls != NULL && cls->item_name != NULL ? cls->item_name(avcl) : NULL;
        char           line[sizeof last_av_log];
        int            print_prefix = 0;
        if (av_log_format_line2(avcl, level, fmt, copy, line, sizeof line, &print_prefix) >= 0) {
            size_t n = strlen(line);
            while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r' || line[n - 1] == ' ')) line[--n] = '\0';
            if (n > 0 && snprintf(last_av_log, sizeof last_av_log, "%s%s%s", who ? who : "", who ? ": " : "", line) < 0)
                last_av_log[0] = '\0'; /* truncation is fine; only an encoding error is not */
        }
        va_end(copy);
    }
    if (level <= atomic_load(&forward_level)) av_log_default_callback(avcl, level, fmt, vl);
}

/* Install the callback (once per process). */
static void log_install(void) { av_log_set_callback(log_callback); }

/* Called at the start of every public operation: callback in place, old message gone. */
static void log_begin(void)
{
    pthread_once(&log_once, log_install);
    last_av_log[0] = '\0';
}

void sky_video_set_av_log_level(int av_level)
{
    pthread_once(&log_once, log_install);
    atomic_store(&forward_level, av_level);
    av_log_set_level(av_level);
}

/* sky_fail with ": <av_strerror text>" and the last libav error line appended. */
static sky_status av_fail(sky_err *err, int averr, const char *fmt, ...) SKY_PRINTF(3, 4);
static sky_status av_fail(sky_err *err, int averr, const char *fmt, ...)
{
    char    what[1024], reason[AV_ERROR_MAX_STRING_SIZE + 16];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    if (av_strerror(averr, reason, sizeof reason) < 0) snprintf(reason, sizeof reason, "error %d", averr);
    if (last_av_log[0] != '\0') return sky_fail(err, "%s: %s (libav: %s)", what, reason, last_av_log);
    return sky_fail(err, "%s: %s", what, reason);
}

/* ---- small helpers -------------------------------------------------------------- */

/* malloc'ed concatenation of a and b. */
static char *str_cat2(const char *a, const char *b)
{
    size_t na = strlen(a), nb = strlen(b);
    char  *s = malloc(na + nb + 1);
    if (s == NULL) return NULL;
    memcpy(s, a, na);
    memcpy(s + na, b, nb + 1);
    return s;
}

/* libav URL of a local path: "file:" forces the file protocol, so a name containing
 * ':' ("take:2.mp4") is not read as a protocol prefix. */
static char *file_url(const char *path) { return str_cat2("file:", path); }

/* 1 if the display matrix is the identity (no rotation, no flip). */
static int display_matrix_is_identity(const int32_t *m)
{
    static const int32_t id[9] = {1 << 16, 0, 0, 0, 1 << 16, 0, 0, 0, 1 << 30};
    return memcmp(m, id, sizeof id) == 0;
}

/* Refuse a display matrix that is not the identity (rotation/flip metadata). */
static sky_status check_display_matrix(const uint8_t *data, size_t size, const char *path, sky_err *err)
{
    if (data == NULL || size < 9 * sizeof(int32_t)) return SKY_OK;
    int32_t m[9];
    memcpy(m, data, sizeof m);
    if (display_matrix_is_identity(m)) return SKY_OK;
    double deg = av_display_rotation_get(m);
    int    flip = (int64_t)m[0] * m[4] - (int64_t)m[1] * m[3] < 0;
    return sky_fail(err,
                    "%s: the file has rotation metadata (display matrix: %.0f degrees%s) which is not "
                    "applied here; rotate the pixels first (e.g. ffmpeg -i IN OUT applies it)",
                    path, isnan(deg) ? 0.0 : deg, flip ? ", flipped" : "");
}

/* ---- float frames -> uint8 ------------------------------------------------------ */

sky_status sky_image_resize_rgb24(const uint8_t *src, int src_stride, int sw, int sh, uint8_t *dst, int W, int H,
                                  int lanczos, sky_err *err)
{
    struct SwsContext *s = sws_getContext(sw, sh, AV_PIX_FMT_RGB24, W, H, AV_PIX_FMT_RGB24,
                                          lanczos ? SWS_LANCZOS : SWS_BICUBIC, NULL, NULL, NULL);
    if (!s) return sky_fail(err, "cannot set up the resize of %dx%d to %dx%d", sw, sh, W, H);
    const uint8_t *sp[4] = {src, NULL, NULL, NULL};
    const int      ss[4] = {src_stride, 0, 0, 0};
    uint8_t       *dp[4] = {dst, NULL, NULL, NULL};
    const int      ds[4] = {W * 3, 0, 0, 0};
    sws_scale(s, sp, ss, 0, sh, dp, ds);
    sws_freeContext(s);
    return SKY_OK;
}

/* ---- mp4 writer ----------------------------------------------------------------- */

struct sky_video_writer {
    char              *path; /* final name */
    char              *tmp;  /* temp file beside it, .<basename>.XXXXXX */
    int                fd;   /* mkstemp's descriptor, kept for fsync */
    int                width, height, fps;
    int                frames; /* added so far */
    AVFormatContext   *oc;
    AVCodecContext    *c;
    AVStream          *st;
    AVFrame           *frame; /* yuv420p, reused */
    AVPacket          *pkt;
    struct SwsContext *sws; /* rgb24 -> yuv420p, BT.709 limited range */
};

/* Free everything; remove the temp file (it is never the final file: close renames
 * first and clears tmp). */
static void writer_free(sky_video_writer *w)
{
    if (w == NULL) return;
    if (w->oc != NULL) {
        if (w->oc->pb != NULL) avio_closep(&w->oc->pb);
        avformat_free_context(w->oc);
    }
    avcodec_free_context(&w->c);
    av_frame_free(&w->frame);
    av_packet_free(&w->pkt);
    sws_freeContext(w->sws);
    if (w->fd >= 0) close(w->fd);
    if (w->tmp != NULL) unlink(w->tmp);
    free(w->tmp);
    free(w->path);
    free(w);
}

/* The process umask, read without changing it for good (umask(2) can only be read by
 * setting it; done once per open, before encoding threads exist). */
static mode_t current_umask(void)
{
    mode_t m = umask(022);
    umask(m);
    return m;
}

/* Create the temp file beside the output (sky_fs_temp_template: ".<basename>.sky-<pid>.XXXXXX"). */
static sky_status make_temp(sky_video_writer *w, sky_err *err)
{
    const char *slash = strrchr(w->path, '/');
    size_t      dir_len = slash ? (size_t)(slash - w->path) + 1 : 0; /* keeps the '/' */
    w->tmp = sky_fs_temp_template(w->path);
    if (w->tmp == NULL) return sky_fail(err, "%s: out of memory", w->path);
    w->fd = mkstemp(w->tmp);
    if (w->fd < 0) {
        int e = errno;
        free(w->tmp);
        w->tmp = NULL; /* nothing was created: nothing to unlink */
        return sky_fail(err, "%s: cannot create a temp file in %.*s: %s", w->path, dir_len ? (int)dir_len : 1,
                        dir_len ? w->path : ".", strerror(e));
    }
    /* mkstemp makes 0600; give the final file the mode fopen() would */
    if (fchmod(w->fd, 0666 & ~current_umask()) != 0)
        return sky_fail(err, "%s: chmod of the temp file %s failed: %s", w->path, w->tmp, strerror(errno));
    return SKY_OK;
}

/* Send every packet the encoder has ready to the muxer. */
static sky_status drain(sky_video_writer *w, sky_err *err)
{
    for (;;) {
        int r = avcodec_receive_packet(w->c, w->pkt);
        if (r == AVERROR(EAGAIN) || r == AVERROR_EOF) return SKY_OK;
        if (r < 0) return av_fail(err, r, "%s: encoding with libx264 (avcodec_receive_packet)", w->path);
        /* libx264 leaves duration 0; without it the last frame adds nothing to the
         * duration and avg_frame_rate comes out wrong (reference §2.2 pitfall 1) */
        if (w->pkt->duration == 0) w->pkt->duration = 1;
        av_packet_rescale_ts(w->pkt, w->c->time_base, w->st->time_base);
        w->pkt->stream_index = w->st->index;
        r = av_interleaved_write_frame(w->oc, w->pkt); /* takes the packet's reference */
        if (r < 0) return av_fail(err, r, "%s: writing a packet to %s (av_interleaved_write_frame)", w->path, w->tmp);
    }
}

sky_status sky_video_writer_open(sky_video_writer **out, const char *path, int width, int height, int fps, int crf,
                                 const char *comment_json, sky_err *err)
{
    SKY_ASSERT(out != NULL && path != NULL);
    *out = NULL;
    log_begin();
    size_t plen = strlen(path);
    if (plen == 0) return sky_fail(err, "video output path is empty");
    if (path[plen - 1] == '/') return sky_fail(err, "%s: video output path names a directory, not a file", path);
    if (width < 2 || height < 2 || width > SKY_VIDEO_MAX_DIM || height > SKY_VIDEO_MAX_DIM)
        return sky_fail(err, "%s: video size %dx%d is outside 2..%d", path, width, height, SKY_VIDEO_MAX_DIM);
    if (width % 2 != 0 || height % 2 != 0)
        return sky_fail(err,
                        "%s: video size %dx%d: width and height must be even for yuv420p H.264 "
                        "(chroma is stored at half resolution)",
                        path, width, height);
    if (fps < 1 || fps > 1000) return sky_fail(err, "%s: fps %d is outside 1..1000", path, fps);
    if (crf < 0 || crf > 51) return sky_fail(err, "%s: crf %d is outside 0..51 (libx264)", path, crf);
    struct stat sb;
    if (stat(path, &sb) == 0 && !S_ISREG(sb.st_mode))
        return sky_fail(err, "%s: exists and is not a regular file; not replacing it", path);

    /* everything that can fail without touching the disk comes first */
    const AVCodec *codec = avcodec_find_encoder_by_name("libx264");
    if (codec == NULL)
        return sky_fail(err,
                        "%s: this FFmpeg has no libx264 encoder (avcodec_find_encoder_by_name); "
                        "install an FFmpeg built with --enable-libx264 (Debian's libavcodec59 has it)",
                        path);
    const AVOutputFormat *ofmt = av_guess_format("mp4", NULL, NULL);
    if (ofmt == NULL) return sky_fail(err, "%s: this FFmpeg has no mp4 muxer (av_guess_format)", path);

    sky_video_writer *w = calloc(1, sizeof *w);
    if (w == NULL) return sky_fail(err, "%s: out of memory", path);
    w->fd = -1;
    w->width = width;
    w->height = height;
    w->fps = fps;
    w->path = malloc(plen + 1);
    if (w->path == NULL) {
        free(w);
        return sky_fail(err, "%s: out of memory", path);
    }
    memcpy(w->path, path, plen + 1);

    sky_status    st = SKY_ERR;
    char         *url = NULL;
    AVDictionary *mux = NULL;
    int           r;

    w->c = avcodec_alloc_context3(codec);
    w->frame = av_frame_alloc();
    w->pkt = av_packet_alloc();
    if (w->c == NULL || w->frame == NULL || w->pkt == NULL) {
        sky_fail(err, "%s: out of memory (libav contexts)", path);
        goto done;
    }
    AVCodecContext *c = w->c;
    c->width = width;
    c->height = height;
    c->pix_fmt = AV_PIX_FMT_YUV420P;
    c->time_base = (AVRational){1, fps};
    c->framerate = (AVRational){fps, 1};
    /* tag exactly what sws below converts with (the original tags nothing; §2.1) */
    c->color_range = AVCOL_RANGE_MPEG;
    c->colorspace = AVCOL_SPC_BT709;
    c->color_primaries = AVCOL_PRI_BT709;
    c->color_trc = AVCOL_TRC_BT709;
    if (ofmt->flags & AVFMT_GLOBALHEADER) c->flags |= AV_CODEC_FLAG_GLOBAL_HEADER; /* mp4: avcC */
    char crf_s[16];
    snprintf(crf_s, sizeof crf_s, "%d", crf);
    if ((r = av_opt_set(c->priv_data, "crf", crf_s, 0)) < 0) {
        av_fail(err, r, "%s: setting libx264 option crf=%s", path, crf_s);
        goto done;
    }
    if ((r = av_opt_set(c->priv_data, "preset", "medium", 0)) < 0) {
        av_fail(err, r, "%s: setting libx264 option preset=medium", path);
        goto done;
    }
    if ((r = avcodec_open2(c, codec, NULL)) < 0) {
        av_fail(err, r, "%s: opening the libx264 encoder (avcodec_open2, %dx%d, %d fps, crf %d)", path, width, height,
                fps, crf);
        goto done;
    }

    w->frame->format = AV_PIX_FMT_YUV420P;
    w->frame->width = width;
    w->frame->height = height;
    if ((r = av_frame_get_buffer(w->frame, 0)) < 0) {
        av_fail(err, r, "%s: allocating a %dx%d yuv420p frame (av_frame_get_buffer)", path, width, height);
        goto done;
    }
    w->sws = sws_getContext(width, height, AV_PIX_FMT_RGB24, width, height, AV_PIX_FMT_YUV420P,
                            SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
    if (w->sws == NULL) {
        sky_fail(err, "%s: sws_getContext(rgb24 -> yuv420p, %dx%d) failed", path, width, height);
        goto done;
    }
    /* full-range RGB in, BT.709 limited-range YUV out: matches the tags above */
    if (sws_setColorspaceDetails(w->sws, sws_getCoefficients(SWS_CS_ITU709), 1, sws_getCoefficients(SWS_CS_ITU709), 0,
                                 0, 1 << 16, 1 << 16) < 0) {
        sky_fail(err, "%s: sws_setColorspaceDetails(BT.709, full -> limited range) is not supported", path);
        goto done;
    }

    /* from here on a temp file exists; every failure path removes it (writer_free) */
    if (make_temp(w, err) != SKY_OK) goto done;
    url = file_url(w->tmp);
    if (url == NULL) {
        sky_fail(err, "%s: out of memory", path);
        goto done;
    }
    if ((r = avformat_alloc_output_context2(&w->oc, ofmt, NULL, url)) < 0) {
        av_fail(err, r, "%s: creating the mp4 muxer (avformat_alloc_output_context2)", path);
        goto done;
    }
    w->st = avformat_new_stream(w->oc, NULL);
    if (w->st == NULL) {
        sky_fail(err, "%s: avformat_new_stream failed (out of memory)", path);
        goto done;
    }
    if ((r = avcodec_parameters_from_context(w->st->codecpar, c)) < 0) {
        av_fail(err, r, "%s: copying encoder parameters to the stream (avcodec_parameters_from_context)", path);
        goto done;
    }
    w->st->time_base = c->time_base; /* a hint; the muxer picks its own in write_header */
    w->st->avg_frame_rate = c->framerate;
    if (comment_json != NULL && comment_json[0] != '\0' &&
        (r = av_dict_set(&w->oc->metadata, "comment", comment_json, 0)) < 0) {
        av_fail(err, r, "%s: setting the comment metadata (av_dict_set)", path);
        goto done;
    }
    if ((r = avio_open(&w->oc->pb, url, AVIO_FLAG_WRITE)) < 0) {
        av_fail(err, r, "%s: opening the temp file %s for writing (avio_open)", path, w->tmp);
        goto done;
    }
    if ((r = av_dict_set(&mux, "movflags", "+faststart+use_metadata_tags", 0)) < 0) {
        av_fail(err, r, "%s: av_dict_set(movflags)", path);
        goto done;
    }
    if ((r = avformat_write_header(w->oc, &mux)) < 0) {
        av_fail(err, r, "%s: writing the mp4 header to %s (avformat_write_header)", path, w->tmp);
        goto done;
    }
    if (av_dict_count(mux) != 0) {
        sky_fail(err, "%s: the mp4 muxer did not accept the option %s", path,
                 av_dict_get(mux, "", NULL, AV_DICT_IGNORE_SUFFIX)->key);
        goto done;
    }
    st = SKY_OK;

done:
    av_dict_free(&mux);
    free(url);
    if (st != SKY_OK) {
        writer_free(w);
        return SKY_ERR;
    }
    *out = w;
    return SKY_OK;
}

sky_status sky_video_writer_add(sky_video_writer *w, const uint8_t *rgb24, sky_err *err)
{
    SKY_ASSERT(w != NULL && rgb24 != NULL);
    log_begin();
    int r = av_frame_make_writable(w->frame); /* the encoder may still reference it */
    if (r < 0) return av_fail(err, r, "%s: frame %d: av_frame_make_writable", w->path, w->frames);
    const uint8_t *src[1] = {rgb24};
    const int      src_stride[1] = {w->width * 3};
    r = sws_scale(w->sws, src, src_stride, 0, w->height, w->frame->data, w->frame->linesize);
    if (r != w->height)
        return sky_fail(err, "%s: frame %d: sws_scale(rgb24 -> yuv420p) returned %d, expected %d rows", w->path,
                        w->frames, r, w->height);
    w->frame->pts = w->frames;
    if ((r = avcodec_send_frame(w->c, w->frame)) < 0)
        return av_fail(err, r, "%s: frame %d: encoding with libx264 (avcodec_send_frame)", w->path, w->frames);
    w->frames++;
    return drain(w, err);
}

sky_status sky_video_writer_set_tag(sky_video_writer *w, const char *key, const char *value, sky_err *err)
{
    const int r = av_dict_set(&w->oc->metadata, key, value, 0);
    return r < 0 ? av_fail(err, r, "%s: setting the %s metadata (av_dict_set)", w->path, key) : SKY_OK;
}

int sky_video_writer_frames(const sky_video_writer *w) { return w->frames; }

const char *sky_video_writer_temp_path(const sky_video_writer *w) { return w->tmp; }

sky_status sky_video_writer_close(sky_video_writer *w, sky_err *err)
{
    SKY_ASSERT(w != NULL);
    log_begin();
    sky_status st = SKY_ERR;
    int        r;
    if (w->frames == 0) {
        sky_fail(err, "%s: no frames were added; not writing an empty video", w->path);
        goto done;
    }
    /* flush: libx264 holds ~40 frames (lookahead, B-frames) */
    if ((r = avcodec_send_frame(w->c, NULL)) < 0) {
        av_fail(err, r, "%s: flushing the libx264 encoder (avcodec_send_frame(NULL))", w->path);
        goto done;
    }
    if (drain(w, err) != SKY_OK) goto done;
    /* with +faststart the muxer rewrites the file here to move moov before mdat */
    if ((r = av_write_trailer(w->oc)) < 0) {
        av_fail(err, r, "%s: writing the mp4 trailer to %s (av_write_trailer)", w->path, w->tmp);
        goto done;
    }
    if ((r = avio_closep(&w->oc->pb)) < 0) {
        av_fail(err, r, "%s: closing %s (avio_closep)", w->path, w->tmp);
        goto done;
    }
    if (fsync(w->fd) != 0) {
        sky_fail(err, "%s: fsync of %s failed: %s", w->path, w->tmp, strerror(errno));
        goto done;
    }
    r = close(w->fd);
    w->fd = -1;
    if (r != 0) {
        sky_fail(err, "%s: closing %s failed: %s", w->path, w->tmp, strerror(errno));
        goto done;
    }
    const char *fail_at = getenv("SKY_TEST_FAIL_AT"); /* test only (video.h) */
    if (fail_at != NULL && strcmp(fail_at, "mp4_rename") == 0) {
        sky_fail(err, "%s: renaming the finished temp file %s onto it failed: %s (SKY_TEST_FAIL_AT)", w->path, w->tmp,
                 strerror(EIO));
        goto done;
    }
    if (rename(w->tmp, w->path) != 0) {
        sky_fail(err, "%s: renaming the finished temp file %s onto it failed: %s", w->path, w->tmp, strerror(errno));
        goto done;
    }
    free(w->tmp);
    w->tmp = NULL; /* renamed: writer_free must not unlink anything */
    /* make the rename durable; best effort: the file is complete either way */
    const char *slash = strrchr(w->path, '/');
    char       *dir = slash == NULL ? NULL : malloc((size_t)(slash - w->path) + 2);
    if (dir != NULL) {
        size_t n = slash == w->path ? 1 : (size_t)(slash - w->path); /* "/x.mp4" -> "/" */
        memcpy(dir, w->path, n);
        dir[n] = '\0';
    }
    int dfd = open(slash == NULL ? "." : dir ? dir : ".", O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        (void)fsync(dfd);
        close(dfd);
    }
    free(dir);
    st = SKY_OK;
done:
    writer_free(w);
    return st;
}

void sky_video_writer_abort(sky_video_writer *w) { writer_free(w); }

/* ---- readers -------------------------------------------------------------------- */

/* One open input and its decoder, with the RGB24 converter. */
typedef struct decoder {
    const char        *path;
    AVFormatContext   *ic;
    AVCodecContext    *c;
    AVFrame           *frame;
    AVPacket          *pkt;
    int                si;       /* the video stream's index */
    int                flushing; /* demuxer hit EOF, decoder sent NULL */
    struct SwsContext *sws;
    int                sws_key[7]; /* source and target the converter was set up for */
} decoder;

static void dec_close(decoder *d)
{
    avformat_close_input(&d->ic);
    avcodec_free_context(&d->c);
    av_frame_free(&d->frame);
    av_packet_free(&d->pkt);
    sws_freeContext(d->sws);
    d->sws = NULL;
}

/* Open path, find its best video stream and open a decoder for it. */
static sky_status dec_open(decoder *d, const char *path, sky_err *err)
{
    memset(d, 0, sizeof *d);
    d->path = path;
    d->si = -1;
    /* a FIFO or a device would block avformat_open_input (or read forever): regular files only */
    if (sky_fs_check_regular(path, "video or image file", err)) return SKY_ERR;
    char *url = file_url(path);
    if (url == NULL) return sky_fail(err, "%s: out of memory", path);
    /* the image2 demuxer (chosen by extension) treats '%d' in names as a sequence
     * pattern; "none" reads the name literally. Other demuxers leave it unused. */
    AVDictionary *opts = NULL;
    int           r = av_dict_set(&opts, "pattern_type", "none", 0);
    if (r >= 0) r = avformat_open_input(&d->ic, url, NULL, &opts);
    av_dict_free(&opts);
    free(url);
    if (r < 0) return av_fail(err, r, "%s: cannot open (avformat_open_input)", path);
    if ((r = avformat_find_stream_info(d->ic, NULL)) < 0)
        return av_fail(err, r, "%s: cannot read stream information (avformat_find_stream_info)", path);
    r = av_find_best_stream(d->ic, AVMEDIA_TYPE_VIDEO, -1, -1, NULL, 0);
    if (r < 0) return av_fail(err, r, "%s: no image or video stream (av_find_best_stream)", path);
    const AVCodec *dec = avcodec_find_decoder(d->ic->streams[r]->codecpar->codec_id);
    if (dec == NULL)
        return sky_fail(err, "%s: this FFmpeg has no decoder for its %s stream", path,
                        avcodec_get_name(d->ic->streams[r]->codecpar->codec_id));
    d->si = r;
    AVStream *s = d->ic->streams[d->si];
#if LIBAVCODEC_VERSION_INT >= AV_VERSION_INT(60, 29, 100)
    const AVPacketSideData *sd = av_packet_side_data_get(s->codecpar->coded_side_data, s->codecpar->nb_coded_side_data,
                                                         AV_PKT_DATA_DISPLAYMATRIX);
    if (sd != NULL && check_display_matrix(sd->data, sd->size, path, err) != SKY_OK) return SKY_ERR;
#else
    size_t         sd_size = 0;
    const uint8_t *sd = av_stream_get_side_data(s, AV_PKT_DATA_DISPLAYMATRIX, &sd_size);
    if (check_display_matrix(sd, sd_size, path, err) != SKY_OK) return SKY_ERR;
#endif
    d->c = avcodec_alloc_context3(dec);
    d->frame = av_frame_alloc();
    d->pkt = av_packet_alloc();
    if (d->c == NULL || d->frame == NULL || d->pkt == NULL)
        return sky_fail(err, "%s: out of memory (libav contexts)", path);
    if ((r = avcodec_parameters_to_context(d->c, s->codecpar)) < 0)
        return av_fail(err, r, "%s: avcodec_parameters_to_context", path);
    /* slice threads only (one per core where the codec has slices): FFmpeg 5.1's frame threading aborts the
     * process (an av_assert0 in decode.c) on some damaged WebP files (tests/fuzz/corpus/image/crash-webp-*),
     * and the few frames read here gain nothing from it */
    d->c->thread_count = 0;
    d->c->thread_type = FF_THREAD_SLICE;
    if ((r = avcodec_open2(d->c, dec, NULL)) < 0)
        return av_fail(err, r, "%s: opening the %s decoder (avcodec_open2)", path, dec->name);
    return SKY_OK;
}

/* Next decoded frame into d->frame: *got = 1, or 0 at the end of the stream. */
static sky_status dec_next(decoder *d, int index, int *got, sky_err *err)
{
    *got = 0;
    for (;;) {
        int r = avcodec_receive_frame(d->c, d->frame);
        if (r == 0) {
            *got = 1;
            return SKY_OK;
        }
        if (r == AVERROR_EOF) return SKY_OK;
        if (r != AVERROR(EAGAIN))
            return av_fail(err, r, "%s: decoding frame %d (avcodec_receive_frame)", d->path, index);
        if (d->flushing) return SKY_OK; /* EAGAIN after the flush packet: nothing more will come */
        r = av_read_frame(d->ic, d->pkt);
        if (r == AVERROR_EOF) {
            /* decoders with B-frames (and frame threads) hold frames until flushed */
            d->flushing = 1;
            if ((r = avcodec_send_packet(d->c, NULL)) < 0)
                return av_fail(err, r, "%s: decoding frame %d (avcodec_send_packet at the end of the stream)", d->path,
                               index);
            continue;
        }
        if (r < 0) return av_fail(err, r, "%s: reading a packet before frame %d (av_read_frame)", d->path, index);
        if (d->pkt->stream_index == d->si) {
            r = avcodec_send_packet(d->c, d->pkt);
            av_packet_unref(d->pkt);
            if (r < 0) return av_fail(err, r, "%s: decoding frame %d (avcodec_send_packet)", d->path, index);
        } else {
            av_packet_unref(d->pkt);
        }
    }
}

/* Convert d->frame to RGB24 dst [dh][dw][3] (dw, dh = the frame's size for no resize). */
static sky_status dec_convert(decoder *d, int index, uint8_t *dst, int dw, int dh, sky_err *err)
{
    AVFrame                  *f = d->frame;
    enum AVPixelFormat        fmt = (enum AVPixelFormat)f->format;
    const AVPixFmtDescriptor *desc = av_pix_fmt_desc_get(fmt);
    if (desc == NULL) return sky_fail(err, "%s: frame %d has an unknown pixel format %d", d->path, index, f->format);
    if (f->color_trc == AVCOL_TRC_SMPTE2084 || f->color_trc == AVCOL_TRC_ARIB_STD_B67)
        return sky_fail(err,
                        "%s: frame %d is HDR (%s transfer); only SDR input is supported — tone-map it to "
                        "BT.709 first",
                        d->path, index, av_color_transfer_name(f->color_trc));
    const AVFrameSideData *sd = av_frame_get_side_data(f, AV_FRAME_DATA_DISPLAYMATRIX);
    if (sd != NULL && check_display_matrix(sd->data, sd->size, d->path, err) != SKY_OK) return SKY_ERR;

    /* range: tagged, or implied by the deprecated yuvj formats (reference §2.3);
     * untagged RGB, palette and gray (image files) are full range */
    int full = f->color_range == AVCOL_RANGE_JPEG;
    switch (fmt) {
    case AV_PIX_FMT_YUVJ420P:
        fmt = AV_PIX_FMT_YUV420P;
        full = 1;
        break;
    case AV_PIX_FMT_YUVJ422P:
        fmt = AV_PIX_FMT_YUV422P;
        full = 1;
        break;
    case AV_PIX_FMT_YUVJ444P:
        fmt = AV_PIX_FMT_YUV444P;
        full = 1;
        break;
    case AV_PIX_FMT_YUVJ440P:
        fmt = AV_PIX_FMT_YUV440P;
        full = 1;
        break;
    case AV_PIX_FMT_YUVJ411P:
        fmt = AV_PIX_FMT_YUV411P;
        full = 1;
        break;
    default: break;
    }
    int is_yuv = !(desc->flags & (AV_PIX_FMT_FLAG_RGB | AV_PIX_FMT_FLAG_PAL)) && desc->nb_components >= 3;
    if (!is_yuv && f->color_range == AVCOL_RANGE_UNSPECIFIED) full = 1;
    /* matrix: the frame's tag; unspecified/unknown -> BT.601 (sws_getCoefficients' default) */
    int cs = (int)f->colorspace;

    int key[7] = {(int)fmt, f->width, f->height, dw, dh, full, cs};
    if (d->sws == NULL || memcmp(key, d->sws_key, sizeof key) != 0) {
        /* bicubic like FFmpeg's scale filter default (decord resizes through it) */
        d->sws = sws_getCachedContext(d->sws, f->width, f->height, fmt, dw, dh, AV_PIX_FMT_RGB24,
                                      SWS_BICUBIC | SWS_ACCURATE_RND | SWS_FULL_CHR_H_INT, NULL, NULL, NULL);
        if (d->sws == NULL)
            return sky_fail(err, "%s: frame %d: sws_getCachedContext(%s %dx%d -> rgb24 %dx%d) failed", d->path, index,
                            av_get_pix_fmt_name(fmt), f->width, f->height, dw, dh);
        /* RGB sources: swscale ignores the matrix; returns -1 only where it cannot apply one */
        if (sws_setColorspaceDetails(d->sws, sws_getCoefficients(cs), full, sws_getCoefficients(SWS_CS_DEFAULT), 1, 0,
                                     1 << 16, 1 << 16) < 0 &&
            is_yuv)
            return sky_fail(err, "%s: frame %d: sws_setColorspaceDetails(%s, %s range -> RGB) is not supported",
                            d->path, index, av_color_space_name(f->colorspace), full ? "full" : "limited");
        memcpy(d->sws_key, key, sizeof key);
    }
    uint8_t *dst_data[4] = {dst, NULL, NULL, NULL};
    int      dst_stride[4] = {dw * 3, 0, 0, 0};
    int      r = sws_scale(d->sws, (const uint8_t *const *)f->data, f->linesize, 0, f->height, dst_data, dst_stride);
    if (r != dh)
        return sky_fail(err, "%s: frame %d: sws_scale(%s -> rgb24) returned %d rows, expected %d", d->path, index,
                        av_get_pix_fmt_name(fmt), r, dh);
    return SKY_OK;
}

/* Refuse frame sizes beyond SKY_VIDEO_MAX_DIM (and nonsense from a broken file). */
static sky_status check_frame_size(const decoder *d, int index, sky_err *err)
{
    const AVFrame *f = d->frame;
    if (f->width < 1 || f->height < 1 || f->width > SKY_VIDEO_MAX_DIM || f->height > SKY_VIDEO_MAX_DIM)
        return sky_fail(err, "%s: frame %d is %dx%d; sizes 1..%d are supported", d->path, index, f->width, f->height,
                        SKY_VIDEO_MAX_DIM);
    return SKY_OK;
}

sky_status sky_image_read(const char *path, sky_image *out, sky_err *err)
{
    SKY_ASSERT(path != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    log_begin();
    decoder    d;
    sky_status st = dec_open(&d, path, err);
    int        got = 0;
    if (st == SKY_OK) st = dec_next(&d, 0, &got, err);
    if (st == SKY_OK && !got) st = sky_fail(err, "%s: no frame could be decoded (not an image, or damaged)", path);
    if (st == SKY_OK) st = check_frame_size(&d, 0, err);
    if (st == SKY_OK) {
        out->width = d.frame->width;
        out->height = d.frame->height;
        out->data = malloc((size_t)out->width * (size_t)out->height * 3);
        if (out->data == NULL) st = sky_fail(err, "%s: out of memory for a %dx%d image", path, out->width, out->height);
    }
    if (st == SKY_OK) st = dec_convert(&d, 0, out->data, out->width, out->height, err);
    dec_close(&d);
    if (st != SKY_OK) sky_image_free(out);
    return st;
}

void sky_image_free(sky_image *img)
{
    if (img == NULL) return;
    free(img->data);
    memset(img, 0, sizeof *img);
}

sky_status sky_video_each(const char *path, int max_frames, int out_width, int out_height, sky_video_frame_fn each,
                          void *ctx, sky_frames *info, sky_err *err)
{
    SKY_ASSERT(path != NULL && info != NULL);
    memset(info, 0, sizeof *info);
    log_begin();
    if (max_frames < 0) return sky_fail(err, "%s: max_frames %d is negative (0 = all frames)", path, max_frames);
    if ((out_width == 0) != (out_height == 0) || out_width < 0 || out_height < 0 || out_width > SKY_VIDEO_MAX_DIM ||
        out_height > SKY_VIDEO_MAX_DIM)
        return sky_fail(err, "%s: target size %dx%d: give both in 1..%d, or 0x0 for the native size", path, out_width,
                        out_height, SKY_VIDEO_MAX_DIM);
    decoder    d;
    sky_status st = dec_open(&d, path, err);
    if (st == SKY_OK) {
        AVRational fr = d.ic->streams[d.si]->avg_frame_rate;
        if (fr.num <= 0 || fr.den <= 0) fr = d.ic->streams[d.si]->r_frame_rate;
        if (fr.num <= 0 || fr.den <= 0) fr = (AVRational){0, 1};
        info->fps_num = fr.num;
        info->fps_den = fr.den;
    }
    uint8_t *rgb = NULL; /* one converted frame, handed to each() */
    while (st == SKY_OK && (max_frames == 0 || info->count < max_frames)) {
        int got = 0, i = info->count;
        st = dec_next(&d, i, &got, err);
        if (st != SKY_OK || !got) break;
        st = check_frame_size(&d, i, err);
        if (st != SKY_OK) break;
        if (i == 0) {
            info->width = out_width ? out_width : d.frame->width;
            info->height = out_height ? out_height : d.frame->height;
            if (each && !(rgb = malloc((size_t)info->width * (size_t)info->height * 3))) {
                st = sky_fail(err, "%s: out of memory for a %dx%d frame", path, info->width, info->height);
                break;
            }
        } else if (out_width == 0 && (d.frame->width != info->width || d.frame->height != info->height)) {
            st = sky_fail(err,
                          "%s: frame %d is %dx%d but frame 0 was %dx%d; size changes mid-stream are only "
                          "supported with a target size",
                          path, i, d.frame->width, d.frame->height, info->width, info->height);
            break;
        }
        if (each) st = dec_convert(&d, i, rgb, info->width, info->height, err);
        if (st == SKY_OK && each) st = each(ctx, rgb, info->width, info->height, i, err);
        if (st == SKY_OK) info->count++;
    }
    if (st == SKY_OK && info->count == 0)
        st = sky_fail(err, "%s: no frame could be decoded (not a video, or damaged)", path);
    dec_close(&d);
    free(rgb);
    return st;
}

/* sky_video_read's each(): append the frame to the growing sky_frames. */
typedef struct {
    sky_frames *out;
    const char *path;
    int         max_frames;
    size_t      cap; /* frames the buffer holds */
} frames_acc;

static sky_status append_frame(void *ctx, const uint8_t *rgb, int width, int height, int i, sky_err *err)
{
    frames_acc *a = ctx;
    sky_frames *out = a->out;
    out->width = width, out->height = height;
    const size_t frame_bytes = (size_t)out->width * (size_t)out->height * 3;
    if ((size_t)i == a->cap) {
        size_t ncap = a->cap ? a->cap * 2 : 16;
        if (a->max_frames != 0 && ncap > (size_t)a->max_frames) ncap = (size_t)a->max_frames;
        uint8_t *nd = ncap > SIZE_MAX / frame_bytes ? NULL : realloc(out->data, ncap * frame_bytes);
        if (nd == NULL)
            return sky_fail(err, "%s: out of memory holding %zu frames of %dx%d RGB (%.0f MiB); read fewer frames",
                            a->path, ncap, out->width, out->height, (double)ncap * (double)frame_bytes / 1048576.0);
        out->data = nd;
        a->cap = ncap;
    }
    memcpy(out->data + (size_t)i * frame_bytes, rgb, frame_bytes);
    out->count = i + 1;
    return SKY_OK;
}

sky_status sky_video_read(const char *path, int max_frames, int out_width, int out_height, sky_frames *out,
                          sky_err *err)
{
    SKY_ASSERT(path != NULL && out != NULL);
    memset(out, 0, sizeof *out);
    frames_acc a = {out, path, max_frames, 0};
    sky_frames info;
    sky_status st = sky_video_each(path, max_frames, out_width, out_height, append_frame, &a, &info, err);
    if (st == SKY_OK) {
        out->fps_num = info.fps_num, out->fps_den = info.fps_den;
    } else
        sky_frames_free(out);
    return st;
}

void sky_frames_free(sky_frames *f)
{
    if (f == NULL) return;
    free(f->data);
    memset(f, 0, sizeof *f);
}
