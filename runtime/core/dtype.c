/* runtime/core/dtype.c — dtype table and byte-order-independent, unaligned-safe conversions. */
#include "core/dtype.h"

#include <math.h>
#include <string.h>

/* One row per sky_dtype, in enum order (checked by index in dtype_info()). */
static const struct {
    sky_dtype   dtype;
    const char *name;
    int         bits;
} DTYPES[SKY_DTYPE_COUNT] = {
    {SKY_DTYPE_BOOL, "BOOL", 8},
    {SKY_DTYPE_U8, "U8", 8},
    {SKY_DTYPE_I8, "I8", 8},
    {SKY_DTYPE_I16, "I16", 16},
    {SKY_DTYPE_U16, "U16", 16},
    {SKY_DTYPE_F16, "F16", 16},
    {SKY_DTYPE_BF16, "BF16", 16},
    {SKY_DTYPE_I32, "I32", 32},
    {SKY_DTYPE_U32, "U32", 32},
    {SKY_DTYPE_F32, "F32", 32},
    {SKY_DTYPE_I64, "I64", 64},
    {SKY_DTYPE_U64, "U64", 64},
    {SKY_DTYPE_F64, "F64", 64},
    {SKY_DTYPE_C64, "C64", 64},
    {SKY_DTYPE_F8_E5M2, "F8_E5M2", 8},
    {SKY_DTYPE_F8_E4M3, "F8_E4M3", 8},
    {SKY_DTYPE_F8_E8M0, "F8_E8M0", 8},
    {SKY_DTYPE_F8_E4M3FNUZ, "F8_E4M3FNUZ", 8},
    {SKY_DTYPE_F8_E5M2FNUZ, "F8_E5M2FNUZ", 8},
    {SKY_DTYPE_F6_E2M3, "F6_E2M3", 6},
    {SKY_DTYPE_F6_E3M2, "F6_E3M2", 6},
    {SKY_DTYPE_F4, "F4", 4},
};

/* Row of t, or -1 when t is not a dtype. */
static int dtype_index(sky_dtype t)
{
    int i = (int)t;
    if (i < 0 || i >= SKY_DTYPE_COUNT) return -1;
    SKY_ASSERT(DTYPES[i].dtype == t);
    return i;
}

const char *sky_dtype_name(sky_dtype t)
{
    int i = dtype_index(t);
    return i < 0 ? "?" : DTYPES[i].name;
}

int sky_dtype_from_name(const char *s, size_t len, sky_dtype *out)
{
    for (int i = 0; i < SKY_DTYPE_COUNT; i++) {
        if (strlen(DTYPES[i].name) == len && memcmp(DTYPES[i].name, s, len) == 0) {
            *out = DTYPES[i].dtype;
            return 1;
        }
    }
    return 0;
}

int sky_dtype_bits(sky_dtype t)
{
    int i = dtype_index(t);
    return i < 0 ? 0 : DTYPES[i].bits;
}

/* Little-endian loads from any address. */
static uint16_t load_u16(const unsigned char *p) { return (uint16_t)(p[0] | (p[1] << 8)); }

static uint32_t load_u32(const unsigned char *p)
{
    return (uint32_t)p[0] | ((uint32_t)p[1] << 8) | ((uint32_t)p[2] << 16) | ((uint32_t)p[3] << 24);
}

static uint64_t load_u64(const unsigned char *p) { return (uint64_t)load_u32(p) | ((uint64_t)load_u32(p + 4) << 32); }

/* Reinterpret bits as float / double (memcpy is the defined way to type-pun). */
static float f32_from_bits(uint32_t u)
{
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

static double f64_from_bits(uint64_t u)
{
    double d;
    memcpy(&d, &u, sizeof d);
    return d;
}

float sky_bf16_to_f32(uint16_t h) { return f32_from_bits((uint32_t)h << 16); }

uint16_t sky_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7fffffffu) > 0x7f800000u) {
        /* NaN: keep sign and top payload bits, force the quiet bit so it cannot round to inf */
        return (uint16_t)((u >> 16) | 0x0040u);
    }
    /* round to nearest, ties to even: add 0x7fff plus the lowest kept bit */
    uint32_t rounding = 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)((u + rounding) >> 16);
}

float sky_f32_round_tf32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) != 0x7f800000u) u = (u + 0x1000u) & ~0x1fffu;
    return f32_from_bits(u);
}

float sky_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu;
    uint32_t man = h & 0x3ffu;
    uint32_t u;
    if (exp == 0x1f) {
        u = sign | 0x7f800000u | (man << 13); /* inf or NaN (payload kept) */
    } else if (exp != 0) {
        u = sign | ((exp + 112u) << 23) | (man << 13); /* normal: rebias 15 -> 127 */
    } else if (man == 0) {
        u = sign; /* signed zero */
    } else {
        /* subnormal: value = man * 2^-24; shift the leading 1 up into the implicit bit */
        uint32_t e = 113u; /* exponent of 2^-14 in f32 bias */
        while ((man & 0x400u) == 0) {
            man <<= 1;
            e--;
        }
        u = sign | (e << 23) | ((man & 0x3ffu) << 13);
    }
    return f32_from_bits(u);
}

/* OCP fp8 E4M3FN (torch.float8_e4m3fn): bias 7, 3 mantissa bits, no infinities, S.1111.111 is NaN, largest
 * finite 448. Exact in float. */
float sky_f8e4m3_to_f32(uint8_t b)
{
    const unsigned exp = (b >> 3) & 0xfu, man = b & 0x7u;
    const float    sign = (b & 0x80u) ? -1.0f : 1.0f;
    if (exp == 0xfu && man == 0x7u) return sign * NAN;
    if (exp == 0) return sign * ldexpf((float)man, -9); /* subnormal: man/8 * 2^-6 */
    return sign * ldexpf((float)(8u + man), (int)exp - 10);
}

uint8_t sky_f32_to_f8e4m3(float f)
{
    const uint8_t sign = signbit(f) ? 0x80u : 0;
    const float   a = fabsf(f);
    if (isnan(f)) return sign | 0x7fu;
    if (a >= 448.0f) return sign | 0x7eu;                           /* saturated, as torch's cast does */
    if (a < 0x1p-6f) return sign | (uint8_t)nearbyintf(a * 0x1p9f); /* subnormal steps of 2^-9; 8 is 2^-6 */
    int         e;
    const float m = frexpf(a, &e) * 2.0f;                    /* a = m 2^(e-1), m in [1, 2) */
    unsigned    q = (unsigned)nearbyintf((m - 1.0f) * 8.0f); /* exact product; ties to even */
    e -= 1;
    if (q == 8) q = 0, e += 1; /* a < 448: the result stays below the NaN code */
    return sign | (uint8_t)(((unsigned)(e + 7) << 3) | q);
}

/* fp8 E5M2 (torch.float8_e5m2) is the top byte of an IEEE half, infinities and NaNs included. */
float sky_f8e5m2_to_f32(uint8_t b) { return sky_f16_to_f32((uint16_t)(b << 8)); }

sky_status sky_dtype_to_f32(float *dst, const void *src, sky_dtype t, size_t n, sky_err *err)
{
    const unsigned char *p = src;
    switch (t) {
    case SKY_DTYPE_F32:
        for (size_t i = 0; i < n; i++) dst[i] = f32_from_bits(load_u32(p + 4 * i));
        return SKY_OK;
    case SKY_DTYPE_F16:
        for (size_t i = 0; i < n; i++) dst[i] = sky_f16_to_f32(load_u16(p + 2 * i));
        return SKY_OK;
    case SKY_DTYPE_BF16:
        for (size_t i = 0; i < n; i++) dst[i] = sky_bf16_to_f32(load_u16(p + 2 * i));
        return SKY_OK;
    case SKY_DTYPE_F8_E4M3:
        for (size_t i = 0; i < n; i++) dst[i] = sky_f8e4m3_to_f32(p[i]);
        return SKY_OK;
    case SKY_DTYPE_F8_E5M2:
        for (size_t i = 0; i < n; i++) dst[i] = sky_f8e5m2_to_f32(p[i]);
        return SKY_OK;
    case SKY_DTYPE_F64:
        for (size_t i = 0; i < n; i++) dst[i] = (float)f64_from_bits(load_u64(p + 8 * i));
        return SKY_OK;
    case SKY_DTYPE_I64:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int64_t)load_u64(p + 8 * i);
        return SKY_OK;
    case SKY_DTYPE_I32:
        for (size_t i = 0; i < n; i++) dst[i] = (float)(int32_t)load_u32(p + 4 * i);
        return SKY_OK;
    default:
        return sky_fail(err,
                        "cannot convert dtype %s to f32 (supported: F32, F16, BF16, F8_E4M3, F8_E5M2, F64, I64, I32)",
                        sky_dtype_name(t));
    }
}

/* NaN or Inf: the exponent bits all ones. On the bits, so it vectorises (isfinite() may not). */
static int f32_bits_nonfinite(const float *x)
{
    uint32_t u;
    memcpy(&u, x, sizeof u);
    return (u & 0x7F800000u) == 0x7F800000u;
}

size_t sky_f32_nonfinite(const float *x, size_t n)
{
    int bad = 0;
    for (size_t i = 0; i < n; i++) bad |= f32_bits_nonfinite(&x[i]);
    if (!bad) return n;
    size_t i = 0;
    while (!f32_bits_nonfinite(&x[i])) i++;
    return i;
}

size_t sky_dtype_nonfinite(const void *src, sky_dtype t, size_t n)
{
    if (t == SKY_DTYPE_I64 || t == SKY_DTYPE_I32) return n;
    const int      bytes = sky_dtype_bits(t) / 8;
    float          buf[4096];
    const uint8_t *p = src;
    for (size_t done = 0; done < n;) {
        const size_t k = n - done < 4096 ? n - done : 4096;
        sky_err      e;
        if (bytes <= 0 || sky_dtype_to_f32(buf, p + done * (size_t)bytes, t, k, &e) != SKY_OK) return n;
        const size_t j = sky_f32_nonfinite(buf, k);
        if (j < k) return done + j;
        done += k;
    }
    return n;
}
