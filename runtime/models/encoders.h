/* runtime/models/encoders.h — run the generated text and image encoders (umT5 text_encode, CLIP
 * clip_encode) and the original's CLIP image preprocessing.
 *
 * text_encode runs on the n real tokens of a prompt (EOS included) and writes [rows, dim] with
 * exact zeros after them (shared/reference/vae-text-image-files.md §2.2, §2.5). clip_encode takes
 * preprocessed pixels [3, S, S] and writes the penultimate block's output [rows, dim] (§3.2).
 */
#ifndef SKY_ENCODERS_H
#define SKY_ENCODERS_H

#include "models/program.h"
#include "core/status.h"

typedef struct sky_encoder sky_encoder;

/* Bind program p (text_encode when text = 1, else clip_encode) to the checkpoint at `weights` (original
 * .pth / safetensors, or HF names) on backend b (a sky_backend, backend.h). */
sky_status sky_encoder_open(sky_encoder **out, const sky_encoder_program *p, int text, const char *weights,
                            const char *who, int b, sky_err *err);
void       sky_encoder_close(sky_encoder *e);

/* text_encode: ids [n] (1 <= n <= rows, each below vocab) -> out [rows, dim]. */
sky_status sky_text_encode(sky_encoder *e, const int64_t *ids, int n, float *out, sky_err *err);

/* clip_encode: pixels [3, S, S] -> out [rows, dim]. */
void sky_clip_encode(sky_encoder *e, const float *pixels, float *out);

/* The original's CLIP preprocessing (§3.3): an image [3, h, w] in [-1, 1] squashed to S x S by
 * bicubic interpolation as torch's F.interpolate(mode="bicubic", align_corners=False) (A = -0.75,
 * edge-clamped taps, no antialias), mapped to [0, 1] by x * 0.5 + 0.5 (no clamp), normalised with
 * the CLIP mean and std. out [3, S, S]. */
void sky_clip_preprocess(const float *img, int h, int w, int S, float *out);

/* `program text_encode|clip_encode --weights W --inputs I --output O`: text_encode reads `ids`
 * [S] (int) and `mask` [S] (1 for the real tokens, a prefix) and writes `context` [rows, dim];
 * clip_encode reads `pixels` [3, S, S] and writes `clip_fea` [rows, dim]. */
sky_status sky_encoder_run_file(const sky_variant_desc *v, int text, const char *weights, const char *inputs,
                                const char *output, int quiet, int backend, sky_err *err);

#endif /* SKY_ENCODERS_H */
