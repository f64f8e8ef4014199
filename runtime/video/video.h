/* runtime/video/video.h — FFmpeg (libavformat/libavcodec/libswscale) video I/O: the mp4 writer
 * for results, the image reader for I2V, the video reader for DF extension, and the
 * float -> uint8 frame conversion the original pipelines use.
 *
 * Conventions and the libav recipes: reference conventions-and-reliability.md §2.1
 * (what the peers write), §2.2 (writer), §2.3 (readers), §3.6 (temp file + rename).
 *
 * Writer output: H.264 (libx264), yuv420p, constant fps, CRF (10 = the original's
 * imageio quality 8), preset medium, "+faststart" (moov before mdat), tagged BT.709
 * primaries/transfer/matrix, limited ("tv") range — the RGB -> YUV conversion uses
 * exactly that matrix and range, so players show the intended colours. (The original's
 * ffmpeg CLI converts with BT.601 and tags nothing; §2.1.) Every packet carries a
 * duration, so N frames at F fps last N/F seconds. Metadata "comment" holds a JSON
 * string of the generation parameters (ComfyUI VideoHelperSuite convention).
 *
 * Partial files: the writer encodes into a temp file in the destination directory,
 * ".<basename>.XXXXXX" (mkstemp; mode 0666 & ~umask like a plain fopen), and only
 * _close() renames it onto the final path after the trailer is written and fsync'ed.
 * Any failure, and _abort(), removes the temp file: the final path either holds a
 * complete mp4 or is untouched. An existing file at path is replaced atomically by
 * _close(); refusing to overwrite is the caller's policy (check before _open()).
 *
 * Logging: the first call into this module installs an av_log callback (process-wide,
 * once) that prints nothing by default; it keeps the last libav message of level
 * error or worse per thread and error messages here append it, since av_err2str text
 * alone ("Invalid argument") rarely says why. sky_video_set_av_log_level() lets the
 * CLI (-v) forward libav logs to stderr.
 *
 * Not thread-safe per object; distinct objects may be used from different threads.
 * Library code: nothing here prints or exits.
 */
#ifndef SKY_VIDEO_H
#define SKY_VIDEO_H

#include "core/status.h"

/* Largest width or height accepted anywhere here (H.264 level 6.2 max is 8192 x 4320;
 * the bound keeps every byte count below 2^31 per frame). */
#define SKY_VIDEO_MAX_DIM 16384

/* ---- float frames -> uint8 ---------------------------------------------------- */

/* One frame in the original's conversion (image2video_pipeline.py:152-155, reference
 * §2.1): `(x / 2 + 0.5).clamp(0, 1) * 255` in float32, then `.astype(np.uint8)`, i.e.
 * truncation toward zero — so -1 -> 0, 0 -> 127 (127.5 truncated), 1 -> 255. NaN -> 0
 * (clamp keeps NaN and numpy's cast of NaN to uint8 is undefined; we pick 0).
 * chw: [3][height][width] float in about [-1, 1] (planar, the decoder's layout);
 * rgb24: [height][width][3] out (interleaved, what the writer takes). */
void sky_video_frame_from_float(uint8_t *rgb24, const float *chw, int width, int height);

/* ---- mp4 writer ------------------------------------------------------------------ */

typedef struct sky_video_writer sky_video_writer; /* opaque */

/* CRF the original uses (imageio quality 8 -> int((1 - 8/10) * 51) = 10). */
#define SKY_VIDEO_DEFAULT_CRF 10

/* Start an mp4 at path (the final name; the data goes to a temp file beside it).
 * width, height: even (yuv420p halves chroma), in [2, SKY_VIDEO_MAX_DIM]; odd sizes
 * are refused with a message, not padded. fps in [1, 1000]. crf in [0, 51].
 * comment_json: stored as metadata "comment" (NULL or "" = none); it is copied.
 * Checks that libx264 is available before creating any file. On error *out == NULL
 * and nothing is left on disk. */
sky_status sky_video_writer_open(sky_video_writer **out, const char *path, int width, int height, int fps, int crf,
                                 const char *comment_json, sky_err *err);

/* Encode one frame: rgb24 is [height][width][3] uint8 (full range RGB, as the
 * pipelines produce). The frame is converted at once; the buffer can be reused. On
 * error the writer is still open: call _abort() (or _close(), which then fails too). */
sky_status sky_video_writer_add(sky_video_writer *w, const uint8_t *rgb24, sky_err *err);

/* Store metadata key = value (copied) in the mp4; set before _close(), which writes it with the moov.
 * Keys other than the mp4's own (comment, title, ...) are kept as mdta tags (movflags use_metadata_tags),
 * which libavformat and ffprobe read back under the same key. */
sky_status sky_video_writer_set_tag(sky_video_writer *w, const char *key, const char *value, sky_err *err);

/* Number of frames added so far. */
int sky_video_writer_frames(const sky_video_writer *w);

/* Temp file the writer is encoding into. For a SIGINT handler that must clean up
 * without calling back into libav: unlink(2) is async-signal-safe. Valid until
 * _close()/_abort(). */
const char *sky_video_writer_temp_path(const sky_video_writer *w);

/* Flush the encoder, write the trailer (faststart moves moov to the front here),
 * fsync, rename the temp file onto path, fsync the directory. Refuses a video with
 * no frames. Always frees w; on error the temp file is removed and path untouched.
 * Test only: with SKY_TEST_FAIL_AT=mp4_rename in the environment the rename fails
 * (EIO), as on a full or read-only disk (tests/runtime/test_life_cycle.sh). */
sky_status sky_video_writer_close(sky_video_writer *w, sky_err *err);

/* Give up: free w and remove the temp file (errors, Ctrl-C). NULL is a no-op. */
void sky_video_writer_abort(sky_video_writer *w);

/* ---- readers ------------------------------------------------------------------- */

/* An RGB24 image, [height][width][3], owned by data (malloc). */
typedef struct sky_image {
    int      width, height;
    uint8_t *data;
} sky_image;

/* Decoded frames: count frames of [height][width][3] uint8, contiguous. */
typedef struct sky_frames {
    int      width, height;
    int      count;
    int      fps_num, fps_den; /* stream's average frame rate; 0/1 when the file has none */
    uint8_t *data;             /* [count][height][width][3], malloc */
} sky_frames;

/* Decode the first frame of an image (png, jpg, webp, bmp, ... whatever this FFmpeg
 * decodes) to RGB24 at its own size. Alpha is dropped (like PIL .convert("RGB")); the
 * YUV -> RGB matrix follows the file's tag (BT.709, else BT.601 as JPEG uses) and
 * range. Refused with a message naming path: unreadable file, no video stream, zero
 * decodable frames (garbage named .png opens and yields none), size above
 * SKY_VIDEO_MAX_DIM, a rotation/flip in its metadata (display matrix), HDR transfer.
 * EXIF orientation: FFmpeg 5.1 does not export it for JPEG, so it is not applied
 * there (newer FFmpeg exports it as a display matrix, which is then refused).
 * On error *out is zeroed. Free with sky_image_free(). */
sky_status sky_image_read(const char *path, sky_image *out, sky_err *err);
void       sky_image_free(sky_image *img);

/* Resize the RGB24 image src (sw x sh pixels, rows src_stride bytes apart) to dst (W x H, rows 3W bytes),
 * with swscale's Lanczos (lanczos != 0) or bicubic filter. */
sky_status sky_image_resize_rgb24(const uint8_t *src, int src_stride, int sw, int sh, uint8_t *dst, int W, int H,
                                  int lanczos, sky_err *err);

/* Decode a video's frames in presentation order to RGB24: all of them when
 * max_frames == 0, else the first max_frames. out_width/out_height: 0, 0 = native
 * size (then every frame must have the first frame's size); both > 0 = resize each
 * frame with swscale bicubic (the original's decord resizes to (W, H) with FFmpeg's
 * default bicubic, no crop, aspect not kept). Sample aspect ratio is ignored (pixels
 * taken as square, as decord does); VFR input gives its frames without duplication
 * or dropping. Refused with a message naming path: as sky_image_read, plus a file
 * yielding zero frames. On error *out is zeroed. Free with sky_frames_free(). */
sky_status sky_video_read(const char *path, int max_frames, int out_width, int out_height, sky_frames *out,
                          sky_err *err);
void       sky_frames_free(sky_frames *f);

/* Called by sky_video_each for frame index (0, 1, ...): rgb is width x height RGB24, valid during the call only.
 * A non-SKY_OK return stops the decoding and is sky_video_each's result. */
typedef sky_status (*sky_video_frame_fn)(void *ctx, const uint8_t *rgb, int width, int height, int index, sky_err *err);

/* sky_video_read without holding the frames: each frame, decoded and converted as sky_video_read converts it, is
 * handed to each(ctx, ...) in turn; memory is one frame whatever the video's length. each == NULL decodes and
 * counts without converting (a first pass that sizes the work). *info gets the size, frame rate and count (its
 * data stays NULL). Refused as sky_video_read refuses. */
sky_status sky_video_each(const char *path, int max_frames, int out_width, int out_height, sky_video_frame_fn each,
                          void *ctx, sky_frames *info, sky_err *err);

/* Pointer to frame i of f. */
static inline uint8_t *sky_frames_at(const sky_frames *f, int i)
{
    return f->data + (size_t)i * (size_t)f->width * (size_t)f->height * 3;
}

/* ---- logging ------------------------------------------------------------------- */

/* Forward libav log messages at or below av_level (AV_LOG_ERROR = 16, AV_LOG_INFO =
 * 32, ...; -8 = AV_LOG_QUIET, the default) to libav's default stderr printer. For the
 * CLI's -v; library code never calls it. */
void sky_video_set_av_log_level(int av_level);

#endif /* SKY_VIDEO_H */
