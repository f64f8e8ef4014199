/* runtime/models/fp8_quant.h — --weight_dtype fp8: the transformer's linear weights quantised to fp8 at load.
 *
 * Which: the 2-D tensors under `blocks.` (q, k, v, o of both attentions, k_img/v_img, the two FFN matrices):
 * the block linear weights, as the fp8 files users bring quantise them. Norms, biases, modulation tables,
 * the embeddings and the head keep the checkpoint's values (the keep-list of reference round2-features.md
 * §5.3). How, per output channel r (row) of W [rows, cols], in float as torch computes it:
 *   scale_r = max_c |W[r, c]| / 448            (1 for an all-zero row)
 *   q[r, c] = e4m3(clamp(W[r, c] / scale_r, -448, 448))   rounded to nearest even
 *   W'[r,c] = float(q[r, c]) * scale_r
 * W' is what the GEMMs use: the CPU backend computes with it in fp32, the CUDA backend uploads it as bf16 (the
 * same bf16 an fp8 weight expanded with its scale right before its GEMM would give). The quantisation follows
 * any LoRA merge, as ComfyUI merges before casting. tests/fixtures/make_fp8_quant_fixtures.py is the
 * reference.
 */
#ifndef SKY_FP8_QUANT_H
#define SKY_FP8_QUANT_H

#include <stdint.h>

#include "formats/weights.h"

/* Whether table entry e is quantised by --weight_dtype fp8 (a block linear weight). */
int sky_fp8_quantised(const sky_weight_desc *e);

/* Quantise the rows x cols float matrix w in place as above; scale (rows values) and codes (rows x cols
 * bytes) receive the scales and the fp8 codes unless NULL. */
void sky_fp8_quantise_rows(float *w, int64_t rows, int64_t cols, float *scale, uint8_t *codes);

/* The weight patch (weights.h) that applies `inner` (a LoRA merge; add NULL: none) and then quantises the
 * entries sky_fp8_quantised selects; q is its storage and must outlive the binding's reads. */
typedef struct sky_fp8_patch {
    sky_weight_patch       inner;
    const sky_weight_desc *table;
    int                    n;
} sky_fp8_patch;
sky_weight_patch sky_fp8_patch_make(sky_fp8_patch *q, const sky_weight_patch *inner, const sky_weight_desc *table,
                                    int n);

#endif /* SKY_FP8_QUANT_H */
