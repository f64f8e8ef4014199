/* runtime/core/dtype.h — element type names, sizes and conversions to f32.
 *
 * Names are the safetensors spellings ("BF16", "F8_E4M3", ...; reference
 * vae-text-image-files.md §5.1). Tensor data in a mapped file is little-endian and
 * NOT aligned in general, so every reader here loads bytes one by one: any source
 * address is fine, and the result does not depend on the host's byte order.
 */
#ifndef SKY_DTYPE_H
#define SKY_DTYPE_H

#include "core/status.h"

/* The safetensors name of t ("BF16"), or "?" for a value outside the enum. */
const char *sky_dtype_name(sky_dtype t);

/* Look up a safetensors dtype name of len bytes (need not be NUL-terminated).
 * Returns 1 and sets *out when known, 0 otherwise (case-sensitive, exact). */
int sky_dtype_from_name(const char *s, size_t len, sky_dtype *out);

/* Bits per element: 4 (F4), 6 (F6_*), 8, 16, 32 or 64; 0 for a value outside the enum.
 * Sub-byte types are packed, so only a whole tensor has a byte size. */
int sky_dtype_bits(sky_dtype t);

/* Convert n elements of dtype t at src (any alignment, little-endian) to float.
 * Supported: F32, F16, BF16, F8_E4M3, F8_E5M2, F64, I64, I32. BF16, F16 and the fp8 types are exact
 * (subnormals, infinities and NaNs included); F64, I64 and I32 round to nearest. Any other dtype
 * returns SKY_ERR with a message naming it, and dst is untouched. */
sky_status sky_dtype_to_f32(float *dst, const void *src, sky_dtype t, size_t n, sky_err *err);

/* The index of the first NaN or Inf among x[0..n), or n when every element is finite (issue 15 item 6: the
 * checks of weights, inputs and latents). One read of x. */
size_t sky_f32_nonfinite(const float *x, size_t n);

/* The same over n elements of dtype t at src (F32, F16, BF16, F64; integer dtypes are finite, and an
 * unsupported dtype gives n), converted a few thousand at a time without allocating. */
size_t sky_dtype_nonfinite(const void *src, sky_dtype t, size_t n);

/* float -> bf16, round to nearest even; a NaN stays a (quiet) NaN with its sign. */
uint16_t sky_f32_to_bf16(float f);

/* float rounded to tf32 (10 stored mantissa bits) as cvt.rna.tf32.f32 does: to nearest, ties away from zero;
 * NaN and infinity unchanged. The result is a float whose 13 low mantissa bits are zero. */
float sky_f32_round_tf32(float f);

/* bf16 -> float (exact). */
float sky_bf16_to_f32(uint16_t h);

/* fp8 -> float (exact): E4M3FN (torch.float8_e4m3fn: no infinities, 0x7f/0xff NaN, max 448) and E5M2
 * (torch.float8_e5m2: an IEEE half's top byte). */
float sky_f8e4m3_to_f32(uint8_t b);
float sky_f8e5m2_to_f32(uint8_t b);

/* float -> fp8 E4M3FN as torch's .to(torch.float8_e4m3fn) gives it (torch 2.15, CPU): rounded to nearest, ties
 * to even; beyond the largest finite value (infinities included) saturated to +-448; NaN to the NaN code. The
 * inverse of sky_f8e4m3_to_f32 on every finite code. */
uint8_t sky_f32_to_f8e4m3(float f);

/* IEEE half -> float (exact, subnormals, infinities and NaNs included). */
float sky_f16_to_f32(uint16_t h);

#endif /* SKY_DTYPE_H */
