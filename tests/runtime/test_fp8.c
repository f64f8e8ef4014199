/* tests/runtime/test_fp8.c — fp8 checkpoints (issue 21 item 2): the F8_E4M3 and F8_E5M2 decoders code by code,
 * and plain and scaled fp8 files bound to exactly the float32 weights torch gets from the same files
 * (tests/fixtures/make_fp8_fixtures.py writes both); refusals of malformed scales by their messages.
 * --weight_dtype fp8 (models/fp8_quant.h): the E4M3 encoder inverts the decoder on every finite code, and the
 * per-row quantiser gives torch's codes, scales and dequantised values bit for bit on rows made to reach every
 * rounding case (tests/fixtures/make_fp8_quant_fixtures.py). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "formats/checkpoint.h"
#include "formats/safetensors_write.h"
#include "formats/weights.h"
#include "models/fp8_quant.h"

#define FIX "tests/fixtures/fp8/"

static int passed, failed;

static void check(int ok, const char *what, const char *detail)
{
    printf("%s %s%s%s\n", ok ? "ok  " : "FAIL", what, detail[0] ? ": " : "", detail);
    if (ok)
        passed++;
    else
        failed++;
}

/* The table a tiny program would read: two fp8 linear weights and a bf16 bias. */
static const sky_weight_desc table[] = {
    {"blocks.0.self_attn.q.weight", "blocks.0.attn1.to_q.weight", 2, {4, 8}},
    {"blocks.0.self_attn.k.weight", "blocks.0.attn1.to_k.weight", 2, {4, 8}},
    {"patch_embedding.bias", "patch_embedding.bias", 1, {4}},
};

/* Tensor `name` of checkpoint ck as float (malloc'ed), or NULL. */
static float *read_f32(const sky_checkpoint *ck, const char *name, size_t *n)
{
    const sky_st_tensor *t = sky_checkpoint_find(ck, name);
    if (!t) return NULL;
    *n = 1;
    for (int d = 0; d < t->ndim; d++) *n *= (size_t)t->shape[d];
    float  *x = malloc(*n * sizeof *x);
    sky_err e;
    if (x && sky_dtype_to_f32(x, t->data, t->dtype, *n, &e) != SKY_OK) {
        free(x);
        return NULL;
    }
    return x;
}

/* Same bits, NaN equal to NaN. */
static int same(float a, float b) { return (isnan(a) && isnan(b)) || memcmp(&a, &b, sizeof a) == 0; }

static void codes(void)
{
    sky_checkpoint *ck;
    sky_err         e;
    if (sky_checkpoint_open(&ck, FIX "codes.safetensors", &e) != SKY_OK) {
        check(0, "codes.safetensors opens", e.msg);
        return;
    }
    const char *names[2][2] = {{"e4m3", "e4m3_f32"}, {"e5m2", "e5m2_f32"}};
    for (int k = 0; k < 2; k++) {
        size_t n = 0, m = 0;
        float *got = read_f32(ck, names[k][0], &n), *want = read_f32(ck, names[k][1], &m);
        int    bad = -1;
        for (size_t i = 0; got && want && i < n && bad < 0; i++)
            if (!same(got[i], want[i])) bad = (int)i;
        char d[128] = "";
        if (bad >= 0) snprintf(d, sizeof d, "code 0x%02x: %g, torch %g", bad, got[bad], want[bad]);
        char what[64];
        snprintf(what, sizeof what, "all 256 %s codes equal torch's float32", names[k][0]);
        check(got && want && n == 256 && m == 256 && bad < 0, what, d);
        free(got);
        free(want);
    }
    sky_checkpoint_close(ck);
}

/* The encoder inverts the decoder on every finite E4M3 code (both zeros included); the edges as torch casts. */
static void encoder(void)
{
    int bad = -1;
    for (int b = 0; b < 256 && bad < 0; b++)
        if ((b & 0x7f) != 0x7f && sky_f32_to_f8e4m3(sky_f8e4m3_to_f32((uint8_t)b)) != b) bad = b;
    char d[64] = "";
    if (bad >= 0) snprintf(d, sizeof d, "code 0x%02x", bad);
    check(bad < 0, "e4m3 encoder: every finite code round-trips", d);
    sky_checkpoint *ck;
    sky_err         e;
    if (sky_checkpoint_open(&ck, FIX "quant.safetensors", &e) != SKY_OK) {
        check(0, "quant.safetensors opens", e.msg);
        return;
    }
    const sky_st_tensor *in = sky_checkpoint_find(ck, "edges"), *want = sky_checkpoint_find(ck, "edge_codes");
    int                  ok = in && want && in->dtype == SKY_DTYPE_F32 && in->ndim == 1 && want->ndim == 1 &&
             want->shape[0] == in->shape[0] && want->dtype == SKY_DTYPE_F8_E4M3;
    d[0] = 0;
    for (int64_t i = 0; ok && i < in->shape[0]; i++) {
        float x;
        memcpy(&x, (const char *)in->data + 4 * i, 4);
        const uint8_t got = sky_f32_to_f8e4m3(x), w = ((const uint8_t *)want->data)[i];
        if (got != w) snprintf(d, sizeof d, "%g: 0x%02x, torch 0x%02x", x, got, w), ok = 0;
    }
    check(ok, "e4m3 encoder: NaN, infinities, values beyond 448 and ties as torch's cast gives them", d);
    sky_checkpoint_close(ck);
}

/* sky_fp8_quantise_rows on quant.safetensors' w: torch's codes, scales and dequantised values, bit for bit. */
static void quantiser(void)
{
    sky_checkpoint *ck;
    sky_err         e;
    if (sky_checkpoint_open(&ck, FIX "quant.safetensors", &e) != SKY_OK) {
        check(0, "quant.safetensors opens", e.msg);
        return;
    }
    const sky_st_tensor *tw = sky_checkpoint_find(ck, "w"), *tc = sky_checkpoint_find(ck, "codes");
    size_t               n = 0, ns = 0, nd = 0;
    float *w = read_f32(ck, "w", &n), *scale = read_f32(ck, "scale", &ns), *dq = read_f32(ck, "dequant", &nd);
    if (!tw || !tc || !w || !scale || !dq || tw->ndim != 2 || tc->dtype != SKY_DTYPE_F8_E4M3 || nd != n ||
        (int64_t)ns != tw->shape[0]) {
        check(0, "quant.safetensors holds w, codes, scale, dequant", "");
    } else {
        const int64_t rows = tw->shape[0], cols = tw->shape[1];
        float        *s = malloc((size_t)rows * sizeof *s);
        uint8_t      *q = malloc(n);
        sky_fp8_quantise_rows(w, rows, cols, s, q);
        const uint8_t *want = tc->data;
        int            bc = -1, bs = -1, bd = -1;
        for (size_t i = 0; i < n; i++) {
            if (bc < 0 && q[i] != want[i]) bc = (int)i;
            if (bd < 0 && !same(w[i], dq[i])) bd = (int)i;
        }
        for (int64_t r = 0; r < rows; r++)
            if (bs < 0 && !same(s[r], scale[r])) bs = (int)r;
        char d[160] = "";
        if (bc >= 0) snprintf(d, sizeof d, "element %d: code 0x%02x, torch 0x%02x", bc, q[bc], want[bc]);
        check(bc < 0, "per-row quantiser: torch's fp8 codes", d);
        d[0] = 0;
        if (bs >= 0) snprintf(d, sizeof d, "row %d: %g, torch %g", bs, s[bs], scale[bs]);
        check(bs < 0, "per-row quantiser: torch's scales (amax / 448; 1 for a zero row)", d);
        d[0] = 0;
        if (bd >= 0) snprintf(d, sizeof d, "element %d: %.9g, torch %.9g", bd, w[bd], dq[bd]);
        check(bd < 0, "per-row quantiser: torch's dequantised weights", d);
        free(s);
        free(q);
    }
    free(w);
    free(scale);
    free(dq);
    sky_checkpoint_close(ck);
}

/* Which entries --weight_dtype fp8 quantises: the block linear weights, not norms, biases or the embeddings. */
static void selection(void)
{
    static const sky_weight_desc t[] = {
        {"blocks.3.ffn.0.weight", "", 2, {8, 4}},         {"blocks.3.cross_attn.k_img.weight", "", 2, {4, 4}},
        {"blocks.3.self_attn.norm_q.weight", "", 1, {4}}, {"blocks.3.ffn.0.bias", "", 1, {8}},
        {"blocks.3.modulation", "", 3, {1, 6, 4}},        {"patch_embedding.weight", "", 5, {4, 16, 1, 2, 2}},
        {"text_embedding.0.weight", "", 2, {4, 8}},       {"head.head.weight", "", 2, {64, 4}},
    };
    int got = 0;
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) got |= sky_fp8_quantised(&t[i]) << i;
    check(got == 3, "--weight_dtype fp8 quantises the block linear weights only", "");
}

/* Bind fixture `file`; each table entry equals expected.safetensors' `prefix`_q, _k and bias bit for bit. */
static void bound_equals(const char *file, const char *prefix, int expect_unused)
{
    sky_checkpoint *ck, *ex;
    sky_err         e;
    sky_weights     w;
    char            path[256], what[128], d[512] = "";
    snprintf(path, sizeof path, FIX "%s", file);
    snprintf(what, sizeof what, "%s binds to torch's dequantised weights", file);
    if (sky_checkpoint_open(&ck, path, &e) != SKY_OK || sky_weights_bind_f32(&w, ck, table, 3, NULL, "tiny", &e)) {
        check(0, what, e.msg);
        return;
    }
    sky_checkpoint_close(ck);
    if (sky_checkpoint_open(&ex, FIX "expected.safetensors", &e) != SKY_OK) {
        check(0, what, e.msg);
        sky_weights_free(&w);
        return;
    }
    int ok = w.unused == expect_unused;
    if (!ok)
        snprintf(d, sizeof d, "%d unused tensors (first '%s'), expected %d", w.unused, w.first_unused, expect_unused);
    for (int i = 0; i < 3 && ok; i++) {
        char name[64];
        if (i < 2)
            snprintf(name, sizeof name, "%s_%c", prefix, "qk"[i]);
        else
            snprintf(name, sizeof name, "bias");
        size_t n = 0;
        float *want = read_f32(ex, name, &n);
        for (size_t j = 0; want && j < n && ok; j++)
            if (!same(w.data[i][j], want[j])) {
                snprintf(d, sizeof d, "%s[%zu] = %.9g, torch %.9g", table[i].name, j, w.data[i][j], want[j]);
                ok = 0;
            }
        if (!want) {
            snprintf(d, sizeof d, "no %s in expected.safetensors", name);
            ok = 0;
        }
        free(want);
    }
    check(ok, what, d);
    sky_checkpoint_close(ex);
    sky_weights_free(&w);
}

/* A file written here with the given scale tensor for q must be refused with `want` in the message. */
static void refused(const char *what, sky_dtype q_dtype, const sky_st_entry *scale, const char *want)
{
    static const unsigned char q8[32] = {0x38, 0x40}; /* 1.0, 2.0 in E4M3 */
    static const uint16_t      bias[4] = {0x3f80, 0, 0, 0};
    static uint16_t            q16[32];
    char                       dir[] = "/tmp/skyfp8.XXXXXX", path[64];
    if (!mkdtemp(dir)) {
        check(0, what, "mkdtemp failed");
        return;
    }
    snprintf(path, sizeof path, "%s/w.safetensors", dir);
    const void     *qdata = q_dtype == SKY_DTYPE_BF16 ? (const void *)q16 : (const void *)q8;
    sky_st_entry    e[4] = {{"blocks.0.self_attn.q.weight", q_dtype, 2, {4, 8}, qdata},
                            {"blocks.0.self_attn.k.weight", SKY_DTYPE_F8_E4M3, 2, {4, 8}, q8},
                            {"patch_embedding.bias", SKY_DTYPE_BF16, 1, {4}, bias},
                            *scale};
    sky_err         err;
    sky_checkpoint *ck = NULL;
    sky_weights     w;
    int             ok = 0;
    if (sky_safetensors_write(path, e, 4, NULL, &err) == SKY_OK && sky_checkpoint_open(&ck, path, &err) == SKY_OK) {
        if (sky_weights_bind_f32(&w, ck, table, 3, NULL, "tiny", &err) == SKY_OK) {
            snprintf(err.msg, sizeof err.msg, "bound; expected a refusal");
            sky_weights_free(&w);
        } else {
            ok = strstr(err.msg, want) != NULL;
        }
        sky_checkpoint_close(ck);
    }
    check(ok, what, err.msg);
    unlink(path);
    rmdir(dir);
}

int main(void)
{
    codes();
    encoder();
    quantiser();
    selection();
    bound_equals("plain.safetensors", "plain", 0);
    bound_equals("scaled.safetensors", "scaled", 0);
    bound_equals("rowscaled.safetensors", "rowscaled", 0);

    static const float    two[2] = {2, 3};
    static const uint16_t one = 0x3f80;
    static const int32_t  i32 = 1;
    sky_st_entry          s_two = {"blocks.0.self_attn.q.scale_weight", SKY_DTYPE_F32, 1, {2}, two};
    refused("a scale of 2 values for 4 rows", SKY_DTYPE_F8_E4M3, &s_two,
            "has 2 values; a scale is one value per tensor");
    sky_st_entry s_int = {"blocks.0.self_attn.q.weight_scale", SKY_DTYPE_I32, 0, {0}, &i32};
    refused("an integer scale", SKY_DTYPE_F8_E4M3, &s_int, "has dtype I32; scales must be F32, BF16 or F16");
    sky_st_entry s_bf = {"blocks.0.self_attn.q.scale_weight", SKY_DTYPE_BF16, 0, {0}, &one};
    refused("a scale on a BF16 weight", SKY_DTYPE_BF16, &s_bf, "is BF16 but has a scale");

    printf("%d passed, %d failed\n", passed, failed);
    return failed != 0;
}
