/* runtime/models/fp8_quant.c — --weight_dtype fp8 (fp8_quant.h). */
#include "models/fp8_quant.h"

#include <math.h>
#include <string.h>

#include "core/dtype.h"

int sky_fp8_quantised(const sky_weight_desc *e) { return e->ndim == 2 && strncmp(e->name, "blocks.", 7) == 0; }

void sky_fp8_quantise_rows(float *w, int64_t rows, int64_t cols, float *scale, uint8_t *codes)
{
    for (int64_t r = 0; r < rows; r++) {
        float *row = w + r * cols;
        float  amax = 0.0f;
        for (int64_t c = 0; c < cols; c++) amax = fmaxf(amax, fabsf(row[c]));
        const float s = amax > 0.0f ? amax / 448.0f : 1.0f;
        for (int64_t c = 0; c < cols; c++) {
            const uint8_t b = sky_f32_to_f8e4m3(fminf(fmaxf(row[c] / s, -448.0f), 448.0f));
            if (codes) codes[r * cols + c] = b;
            row[c] = sky_f8e4m3_to_f32(b) * s;
        }
        if (scale) scale[r] = s;
    }
}

static sky_status patch_add(const void *ctx, int i, float *dst, sky_err *err)
{
    const sky_fp8_patch *q = ctx;
    if (q->inner.add && q->inner.add(q->inner.ctx, i, dst, err) != SKY_OK) return SKY_ERR;
    const sky_weight_desc *e = &q->table[i];
    if (sky_fp8_quantised(e)) sky_fp8_quantise_rows(dst, e->shape[0], e->shape[1], NULL, NULL);
    return SKY_OK;
}

sky_weight_patch sky_fp8_patch_make(sky_fp8_patch *q, const sky_weight_patch *inner, const sky_weight_desc *table,
                                    int n)
{
    q->inner = inner ? *inner : (sky_weight_patch){0};
    q->table = table;
    q->n = n;
    return (sky_weight_patch){q, patch_add};
}
