/* tests/runtime/test_safetensors.c — runtime/formats/safetensors.c, checkpoint.c, safetensors_write.c and
 * runtime/core/dtype.c.
 *
 * Every hostile file is built here, in a fresh mkdtemp() directory, and must be
 * rejected with a message that names the file and says what is wrong (a chosen
 * substring per case). The reference reader's own test cases (reference
 * conventions-and-reliability.md §3.2) are included by name. Headers in the tables
 * are written with ' for " to keep them readable; q() swaps them before writing.
 */
#include "../../runtime/core/dtype.h"
#include "../../runtime/formats/checkpoint.h"
#include "../../runtime/formats/safetensors.h"
#include "../../runtime/formats/safetensors_write.h"
#include "check.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char tmp_root[512];        /* the mkdtemp() directory of this run */

/* ---- helpers ------------------------------------------------------------------- */

/* tmp_root/name into buf. */
static const char *tpath(char *buf, size_t n, const char *name) {
    snprintf(buf, n, "%s/%s", tmp_root, name);
    return buf;
}

/* The header text with every ' turned into " (malloc'ed). */
static char *q(const char *h) {
    size_t n = strlen(h);
    char *s = malloc(n + 1);
    for (size_t i = 0; i <= n; i++) s[i] = h[i] == '\'' ? '"' : h[i];
    return s;
}

/* Write n bytes to path; 1 on success. */
static int write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) return 0;
    int ok = fwrite(b, 1, n, f) == n;
    return (fclose(f) == 0) && ok;
}

/* Write a safetensors-like file: 8-byte length hlen_field, hlen header bytes, then
 * data_len data bytes (value i & 0xff). */
static int write_raw_st(const char *path, uint64_t hlen_field, const char *hdr, size_t hlen, size_t data_len) {
    size_t n = 8 + hlen + data_len;
    unsigned char *b = malloc(n);
    for (int i = 0; i < 8; i++) b[i] = (unsigned char)(hlen_field >> (8 * i));
    memcpy(b + 8, hdr, hlen);
    for (size_t i = 0; i < data_len; i++) b[8 + hlen + i] = (unsigned char)i;
    int ok = write_bytes(path, b, n);
    free(b);
    return ok;
}

/* Write a file whose header is q(header) with the right length field. */
static int write_st(const char *path, const char *header, size_t data_len) {
    char *h = q(header);
    int ok = write_raw_st(path, strlen(h), h, strlen(h), data_len);
    free(h);
    return ok;
}

/* Open path expecting failure; NULL if it opened, else the message. */
static const char *open_error(const char *path) {
    static sky_err err;
    sky_safetensors *f = (sky_safetensors *)&err;       /* must be reset to NULL */
    if (sky_safetensors_open(&f, path, &err) == SKY_OK) {
        sky_safetensors_close(f);
        return NULL;
    }
    return f == NULL ? err.msg : "(*out not NULL after an error)";
}

/* Same for a checkpoint. */
static const char *ckpt_error(const char *path) {
    static sky_err err;
    sky_checkpoint *c = (sky_checkpoint *)&err;
    if (sky_checkpoint_open(&c, path, &err) == SKY_OK) {
        sky_checkpoint_close(c);
        return NULL;
    }
    return c == NULL ? err.msg : "(*out not NULL after an error)";
}

/* CHECK that message m exists, starts with `path`-containing text, and contains sub. */
#define CHECK_MSG(m, path, sub)                                                           \
    do {                                                                                  \
        const char *m_ = (m);                                                             \
        CHECK(m_ != NULL && strstr(m_, (path)) != NULL && strstr(m_, (sub)) != NULL,      \
              "expected an error naming %s and saying \"%s\", got: %s", (path), (sub),    \
              m_ ? m_ : "(opened)");                                                      \
    } while (0)

/* ---- hostile headers, one table row each ------------------------------------------ */

#define E8 "{'dtype':'F32','shape':[2],'data_offsets':[0,8]}"     /* a valid 8-byte entry */

static const struct bad_header {
    const char *name;
    const char *header;       /* ' stands for " */
    size_t      data_len;
    const char *expect;
} BAD[] = {
    { "json_attack_10_tensors_at_0_16",
      "{'w0':{'dtype':'F32','shape':[2,2],'data_offsets':[0,16]},'w1':{'dtype':'F32','shape':[2,2],'data_offsets':[0,16]},"
      "'w2':{'dtype':'F32','shape':[2,2],'data_offsets':[0,16]},'w3':{'dtype':'F32','shape':[2,2],'data_offsets':[0,16]},"
      "'w4':{'dtype':'F32','shape':[2,2],'data_offsets':[0,16]},'w5':{'dtype':'F32','shape':[2,2],'data_offsets':[0,16]},"
      "'w6':{'dtype':'F32','shape':[2,2],'data_offsets':[0,16]},'w7':{'dtype':'F32','shape':[2,2],'data_offsets':[0,16]},"
      "'w8':{'dtype':'F32','shape':[2,2],'data_offsets':[0,16]},'w9':{'dtype':'F32','shape':[2,2],'data_offsets':[0,16]}}",
      16, "tensor 'w1' [0, 16] and tensor 'w0' (ends at 16) overlap" },
    { "metadata_incomplete_buffer", "{'a':" E8 "}", 12, "4 trailing bytes" },
    { "no_tensors_but_data", "{}", 3, "3 trailing bytes" },
    { "invalid_info", "{'a':{'dtype':'F32','shape':[2,2],'data_offsets':[0,4]}}", 4,
      "tensor 'a': F32 x shape [2, 2] is 16 bytes but data_offsets [0, 4] span 4 bytes" },
    { "dtype_shape_mismatch", "{'a':{'dtype':'BF16','shape':[3],'data_offsets':[0,8]}}", 8,
      "BF16 x shape [3] is 6 bytes but data_offsets [0, 8] span 8 bytes" },
    { "validation_overflow_nelem", "{'a':{'dtype':'I32','shape':[2,18446744073709551614],'data_offsets':[0,16]}}", 16,
      "tensor 'a': shape [2, 18446744073709551614]: element count overflows 64 bits" },
    { "validation_overflow_bits", "{'a':{'dtype':'I32','shape':[2,9223372036854775807],'data_offsets':[0,16]}}", 16,
      "tensor 'a': shape [2, 9223372036854775807] x 32 bits overflows 64 bits" },
    { "dim_above_int64_with_zero_dim", "{'a':{'dtype':'F32','shape':[0,18446744073709551615],'data_offsets':[0,0]}}", 0,
      "shape[1] = 18446744073709551615 exceeds 2^63-1" },
    { "sub_byte_dtype_partial_byte", "{'a':{'dtype':'F4','shape':[3],'data_offsets':[0,1]}}", 1,
      "F4 x shape [3] is 12 bits, not a whole number of bytes" },
    { "not_json", "{'a':", 0, "header is not valid JSON: byte 5: unexpected end of text" },
    { "not_utf8", "{'a\xff':" E8 "}", 8, "header is not valid UTF-8 (byte 3 of the header)" },
    { "overlong_utf8", "{'a\xc0\xaf':" E8 "}", 8, "header is not valid UTF-8" },
    { "surrogate_utf8", "{'a\xed\xa0\x80':" E8 "}", 8, "header is not valid UTF-8" },
    { "utf8_bom", "\xef\xbb\xbf{}", 0, "header is not valid JSON" },
    { "nul_padded_header", "{}\0", 0, "header is not valid JSON" },
    { "header_is_array", "[]", 0, "header is a JSON array, expected an object" },
    { "truncated_file", "{'a':{'dtype':'F32','shape':[4],'data_offsets':[0,16]}}", 8,
      "tensor 'a': data_offsets [0, 16] run past the end of the data (8 bytes after the header" },
    { "gap", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},'b':{'dtype':'F32','shape':[2],'data_offsets':[12,20]}}",
      20, "gap of 4 bytes between tensor 'a' (ends at 8) and tensor 'b' [12, 20]" },
    { "gap_at_start", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[4,12]}}", 12,
      "tensor 'a' [4, 12] leaves a gap of 4 bytes at the start" },
    { "overlap", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8]},'b':{'dtype':'F32','shape':[2],'data_offsets':[4,12]}}",
      12, "tensor 'b' [4, 12] and tensor 'a' (ends at 8) overlap" },
    { "zero_size_inside_other", "{'a':{'dtype':'F32','shape':[4],'data_offsets':[0,16]},'z':{'dtype':'F32','shape':[0],'data_offsets':[8,8]}}",
      16, "tensor 'z' [8, 8] and tensor 'a' (ends at 16) overlap" },
    { "duplicate_tensor_names", "{'a':" E8 ",'a':" E8 "}", 8, "duplicate key \"a\"" },
    { "duplicate_key_in_entry", "{'a':{'dtype':'F32','dtype':'F32','shape':[2],'data_offsets':[0,8]}}", 8,
      "duplicate key \"dtype\" in the object \"a\"" },
    { "duplicate_metadata", "{'__metadata__':{},'__metadata__':{},'a':" E8 "}", 8, "duplicate key \"__metadata__\"" },
    { "unknown_field", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8],'foo':1}}", 8,
      "tensor 'a': unknown field 'foo'" },
    { "missing_field", "{'a':{'dtype':'F32','data_offsets':[0,8]}}", 8, "tensor 'a': missing field 'shape'" },
    { "unknown_dtype", "{'a':{'dtype':'F128','shape':[2],'data_offsets':[0,8]}}", 8, "tensor 'a': unknown dtype 'F128'" },
    { "lowercase_dtype", "{'a':{'dtype':'f32','shape':[2],'data_offsets':[0,8]}}", 8, "unknown dtype 'f32'" },
    { "dtype_not_string", "{'a':{'dtype':7,'shape':[2],'data_offsets':[0,8]}}", 8, "dtype is a number, expected a string" },
    { "negative_offset", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[-1,7]}}", 8, "tensor 'a': data_offsets[0] is negative" },
    { "negative_dim", "{'a':{'dtype':'F32','shape':[-2],'data_offsets':[0,8]}}", 8, "tensor 'a': shape[0] is negative" },
    { "fractional_number", "{'a':{'dtype':'F32','shape':[2.0],'data_offsets':[0,8]}}", 8, "shape[0] is fractional (2.0)" },
    { "exponent_number", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8e0]}}", 8, "data_offsets[1] uses an exponent (8e0)" },
    { "huge_integer", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,18446744073709551616]}}", 8,
      "data_offsets[1] exceeds 2^64-1 (18446744073709551616)" },
    { "leading_plus", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[+0,8]}}", 8, "a leading '+' is not allowed" },
    { "nan_in_shape", "{'a':{'dtype':'F32','shape':[NaN],'data_offsets':[0,8]}}", 8, "NaN and Infinity" },
    { "offsets_reversed", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[8,0]}}", 8, "data_offsets [8, 0] are reversed" },
    { "offsets_three_items", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,8,8]}}", 8,
      "data_offsets must be an array of exactly 2 integers (got array with 3 items)" },
    { "offsets_not_array", "{'a':{'dtype':'F32','shape':[2],'data_offsets':'0,8'}}", 8, "data_offsets must be an array" },
    { "offset_is_string", "{'a':{'dtype':'F32','shape':[2],'data_offsets':[0,'8']}}", 8, "data_offsets[1] is a string" },
    { "rank_9", "{'a':{'dtype':'F32','shape':[1,1,1,1,1,1,1,1,2],'data_offsets':[0,8]}}", 8, "tensor 'a': rank 9 exceeds the maximum 8" },
    { "shape_not_array", "{'a':{'dtype':'F32','shape':2,'data_offsets':[0,8]}}", 8, "shape is a number, expected an array" },
    { "empty_name", "{'':" E8 "}", 8, "a tensor has an empty name" },
    { "nul_in_name", "{'a\\u0000b':" E8 "}", 8, "contains a NUL character" },
    { "entry_not_object", "{'a':5}", 0, "tensor 'a': entry is a number, expected an object" },
    { "metadata_non_string_value", "{'__metadata__':{'format':'pt','n':1},'a':" E8 "}", 8,
      "__metadata__ value for 'n' is a number, expected a string" },
    { "metadata_not_object", "{'__metadata__':['pt'],'a':" E8 "}", 8, "__metadata__ is a array, expected an object" },
    { "trailing_comma", "{'a':" E8 ",}", 8, "trailing comma before '}'" },
    { "comment", "{'a':" E8 "/*x*/}", 8, "comments are not allowed" },
    { "lone_surrogate_escape", "{'a\\ud800':" E8 "}", 8, "lone high surrogate \\uD800" },
    { "bad_escape", "{'a\\q':" E8 "}", 8, "invalid escape '\\q'" },
    { "raw_newline_in_name", "{'a\nb':" E8 "}", 8, "raw control character 0x0a" },
    { "garbage_after_object", "{'a':" E8 "}x", 8, "unexpected 'x', expected the end of the text" },
};

static size_t bad_row;            /* the BAD row that test_bad_header runs */

/* Write BAD[bad_row], open it, expect its message (with the path). */
static int test_bad_header(void) {
    const struct bad_header *b = &BAD[bad_row];
    char path[1024], name[256];
    snprintf(name, sizeof name, "%s.safetensors", b->name);
    tpath(path, sizeof path, name);
    /* the NUL-padded row has an explicit length: strlen would stop at the NUL */
    if (strcmp(b->name, "nul_padded_header") == 0) CHECK(write_raw_st(path, 3, "{}\0", 3, 0), "write");
    else CHECK(write_st(path, b->header, b->data_len), "cannot write %s", path);
    const char *m = open_error(path);
    CHECK_MSG(m, path, b->expect);
    CHECK(strncmp(m, path, strlen(path)) == 0, "message does not start with the path: %s", m);
    return 0;
}

/* ---- hostile files that need raw bytes --------------------------------------------- */

static int test_header_too_small(void) {
    char path[1024];
    tpath(path, sizeof path, "small.safetensors");
    CHECK(write_bytes(path, "\x02\0\0\0\0", 5), "write");
    CHECK_MSG(open_error(path), path, "file is 5 bytes, too small for the 8-byte header length (header too small)");
    CHECK(write_bytes(path, "", 0), "write");
    CHECK_MSG(open_error(path), path, "file is 0 bytes");
    return 0;
}

static int test_header_too_large(void) {
    char path[1024];
    tpath(path, sizeof path, "large.safetensors");
    CHECK(write_raw_st(path, 100000001ull, "{}", 2, 0), "write");
    CHECK_MSG(open_error(path), path, "header length 100000001 exceeds the limit of 100000000 bytes (header too large)");
    CHECK(write_raw_st(path, UINT64_MAX, "{}", 2, 0), "write");     /* 8 + N would overflow */
    CHECK_MSG(open_error(path), path, "header length 18446744073709551615 exceeds the limit");
    return 0;
}

static int test_invalid_header_length(void) {
    char path[1024];
    tpath(path, sizeof path, "hlen.safetensors");
    CHECK(write_raw_st(path, 1000, "{}", 2, 10), "write");
    CHECK_MSG(open_error(path), path, "header length 1000 exceeds the file size 20");
    CHECK(write_raw_st(path, 13, "{}", 2, 2), "write");              /* one past the end */
    CHECK_MSG(open_error(path), path, "header length 13 exceeds the file size 12");
    return 0;
}

static int test_deep_nesting(void) {
    char path[1024], h[512];
    size_t n = 0;
    n += (size_t)snprintf(h + n, sizeof h - n, "{'__metadata__':");
    for (int i = 0; i < 70; i++) h[n++] = '[';
    for (int i = 0; i < 70; i++) h[n++] = ']';
    /* trailing spaces keep the header's value budget (len/4) above 70 values */
    snprintf(h + n, sizeof h - n, "}%300s", "");
    tpath(path, sizeof path, "deep.safetensors");
    CHECK(write_st(path, h, 0), "write");
    CHECK_MSG(open_error(path), path, "nesting deeper than 64 levels");
    return 0;
}

static int test_not_a_file(void) {
    char path[1024];
    tpath(path, sizeof path, "no_such.safetensors");
    CHECK_MSG(open_error(path), path, "cannot open: No such file or directory");
    CHECK_MSG(open_error(tmp_root), tmp_root, "is a directory, not a .safetensors file");
    return 0;
}

/* ---- files that must load ----------------------------------------------------------- */

/* Open path (must succeed) into *f. */
#define OPEN_OK(f, path)                                                          \
    do {                                                                          \
        sky_err e_;                                                               \
        CHECK(sky_safetensors_open(&(f), (path), &e_) == SKY_OK, "%s", e_.msg);   \
    } while (0)

static int test_whitespace_padded_header(void) {
    char path[1024];
    tpath(path, sizeof path, "ws_trailing.safetensors");
    CHECK(write_st(path, "{'a':" E8 "}   \n\t\r ", 8), "write");
    sky_safetensors *f;
    OPEN_OK(f, path);
    CHECK(sky_safetensors_count(f) == 1 && sky_safetensors_find(f, "a") != NULL, "count");
    sky_safetensors_close(f);
    return 0;
}

static int test_whitespace_leading_padded_header(void) {
    char path[1024];
    tpath(path, sizeof path, "ws_leading.safetensors");
    CHECK(write_st(path, "\t\n\r   {'a':" E8 "}", 8), "write");
    sky_safetensors *f;
    OPEN_OK(f, path);
    CHECK(sky_safetensors_count(f) == 1, "count");
    sky_safetensors_close(f);
    return 0;
}

static int test_zero_sized_tensor(void) {
    char path[1024];
    tpath(path, sizeof path, "zero.safetensors");
    CHECK(write_st(path, "{'z':{'dtype':'F32','shape':[2,0],'data_offsets':[0,0]}}", 0), "write");
    sky_safetensors *f;
    OPEN_OK(f, path);
    const sky_st_tensor *t = sky_safetensors_find(f, "z");
    CHECK(t && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 0 && t->nbytes == 0, "z");
    sky_safetensors_close(f);
    /* empty tensors at the start, middle and end of real ones */
    CHECK(write_st(path, "{'e0':{'dtype':'BF16','shape':[0],'data_offsets':[0,0]},'a':" E8 ","
                         "'e1':{'dtype':'F32','shape':[0,3],'data_offsets':[8,8]},"
                         "'b':{'dtype':'F32','shape':[2],'data_offsets':[8,16]},"
                         "'e2':{'dtype':'F32','shape':[0],'data_offsets':[16,16]}}", 16), "write");
    OPEN_OK(f, path);
    CHECK(sky_safetensors_count(f) == 5, "count %d", sky_safetensors_count(f));
    sky_safetensors_close(f);
    return 0;
}

static int test_scalar_and_empty_file(void) {
    char path[1024];
    tpath(path, sizeof path, "scalar.safetensors");
    CHECK(write_st(path, "{'s':{'dtype':'F32','shape':[],'data_offsets':[0,4]}}", 4), "write");
    sky_safetensors *f;
    OPEN_OK(f, path);
    const sky_st_tensor *t = sky_safetensors_find(f, "s");
    CHECK(t && t->ndim == 0 && t->nbytes == 4 && memcmp(t->data, "\0\1\2\3", 4) == 0, "scalar");
    sky_safetensors_close(f);
    tpath(path, sizeof path, "empty.safetensors");
    CHECK(write_st(path, "{}", 0), "write");
    OPEN_OK(f, path);
    CHECK(sky_safetensors_count(f) == 0 && sky_safetensors_find(f, "x") == NULL, "empty");
    sky_safetensors_close(f);
    CHECK(write_st(path, "{'__metadata__':{'format':'pt'}}", 0), "write");
    OPEN_OK(f, path);
    CHECK(sky_safetensors_count(f) == 0 && strcmp(sky_safetensors_metadata(f, "format"), "pt") == 0, "meta only");
    sky_safetensors_close(f);
    return 0;
}

static int test_find_sorted_and_data(void) {
    char path[1024];
    tpath(path, sizeof path, "order.safetensors");
    /* names and offsets out of order; U8 and F4 tensors first make later data odd-aligned */
    CHECK(write_st(path, "{'__metadata__':{'format':'pt','x':'y'},"
                         "'c':{'dtype':'F32','shape':[2],'data_offsets':[5,13]},"
                         "'a':{'dtype':'F4','shape':[2,2],'data_offsets':[1,3]},"
                         "'b':{'dtype':'U8','shape':[1],'data_offsets':[0,1]},"
                         "'b.0':{'dtype':'BF16','shape':[1],'data_offsets':[3,5]}}", 13), "write");
    sky_safetensors *f;
    OPEN_OK(f, path);
    CHECK(sky_safetensors_count(f) == 4, "count");
    const char *want[] = { "a", "b", "b.0", "c" };
    for (int i = 0; i < 4; i++) {
        CHECK(strcmp(sky_safetensors_at(f, i)->name, want[i]) == 0, "at(%d) = %s", i, sky_safetensors_at(f, i)->name);
    }
    const sky_st_tensor *c = sky_safetensors_find(f, "c");
    CHECK(c && c->dtype == SKY_DTYPE_F32 && c->nbytes == 8 && ((const unsigned char *)c->data)[0] == 5, "c data");
    CHECK(strcmp(c->file, path) == 0 && strcmp(sky_safetensors_path(f), path) == 0, "paths");
    CHECK(sky_safetensors_find(f, "a")->dtype == SKY_DTYPE_F4 && sky_safetensors_find(f, "a")->nbytes == 2, "F4");
    CHECK(sky_safetensors_find(f, "d") == NULL && sky_safetensors_find(f, "") == NULL, "absent");
    CHECK(strcmp(sky_safetensors_metadata(f, "x"), "y") == 0 && sky_safetensors_metadata(f, "z") == NULL, "meta");
    sky_safetensors_close(f);
    sky_safetensors_close(NULL);
    return 0;
}

static int test_many_tensors_reverse_offsets(void) {
    enum { N = 20000 };
    char path[1024];
    size_t cap = (size_t)N * 96, len = 0;
    char *h = malloc(cap);
    len += (size_t)snprintf(h + len, cap - len, "{");
    for (int i = 0; i < N; i++) {
        int slot = N - 1 - i;                             /* offsets in reverse name order */
        len += (size_t)snprintf(h + len, cap - len, "%s\"t%05d\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[%d,%d]}",
                                i ? "," : "", i, slot * 4, slot * 4 + 4);
    }
    len += (size_t)snprintf(h + len, cap - len, "}");
    tpath(path, sizeof path, "many.safetensors");
    int ok = write_raw_st(path, len, h, len, (size_t)N * 4);
    free(h);
    CHECK(ok, "write");
    sky_safetensors *f;
    OPEN_OK(f, path);
    CHECK(sky_safetensors_count(f) == N, "count");
    const sky_st_tensor *t = sky_safetensors_find(f, "t00007");
    CHECK(t && (const unsigned char *)t->data - (const unsigned char *)sky_safetensors_find(f, "t19999")->data
                   == (N - 1 - 7) * 4, "offsets");
    sky_safetensors_close(f);
    return 0;
}

/* ---- checkpoints ---------------------------------------------------------------------- */

/* Make tmp_root/sub (a fresh directory) and put its path in buf. */
static const char *mksub(char *buf, size_t n, const char *sub) {
    tpath(buf, n, sub);
    mkdir(buf, 0755);
    return buf;
}

/* Write dir/file holding F32 [2] tensors with the given names (NULL-terminated). */
static int write_shard(const char *dir, const char *file, const char *const *names) {
    char path[2400], h[4096];
    size_t len = 0;
    int k = 0;
    len += (size_t)snprintf(h + len, sizeof h - len, "{");
    for (; names[k]; k++) {
        len += (size_t)snprintf(h + len, sizeof h - len, "%s'%s':{'dtype':'F32','shape':[2],'data_offsets':[%d,%d]}",
                                k ? "," : "", names[k], k * 8, k * 8 + 8);
    }
    snprintf(h + len, sizeof h - len, "}");
    snprintf(path, sizeof path, "%s/%s", dir, file);
    return write_st(path, h, (size_t)k * 8);
}

/* Write dir/name with the text q(json). */
static int write_text(const char *dir, const char *name, const char *json) {
    char path[2400];
    char *t = q(json);
    snprintf(path, sizeof path, "%s/%s", dir, name);
    int ok = write_bytes(path, t, strlen(t));
    free(t);
    return ok;
}

static const char *const SHARD_A[] = { "w1", "w2", NULL };
static const char *const SHARD_B[] = { "w3", NULL };
#define INDEX "m.safetensors.index.json"

/* A directory with shards a and b and the given index text. */
static const char *sharded_dir(char *buf, size_t n, const char *sub, const char *index) {
    mksub(buf, n, sub);
    if (!write_shard(buf, "a.safetensors", SHARD_A) || !write_shard(buf, "b.safetensors", SHARD_B)) return NULL;
    if (index != NULL && !write_text(buf, INDEX, index)) return NULL;
    return buf;
}

static int test_sharded_valid(void) {
    char dir[1024], ipath[1200];
    CHECK(sharded_dir(dir, sizeof dir, "sh_ok", "{'metadata':{'total_size':24,'format':'pt'},"
          "'weight_map':{'w1':'a.safetensors','w3':'b.safetensors','w2':'a.safetensors'}}"), "setup");
    /* an unrelated file in the directory is ignored when there is an index */
    CHECK(write_text(dir, "other.safetensors", "not a safetensors file"), "write");
    sky_checkpoint *c;
    sky_err err;
    CHECK(sky_checkpoint_open(&c, dir, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_checkpoint_count(c) == 3 && sky_checkpoint_file_count(c) == 2, "count %d", sky_checkpoint_count(c));
    CHECK(strcmp(sky_checkpoint_at(c, 0)->name, "w1") == 0 && strcmp(sky_checkpoint_at(c, 2)->name, "w3") == 0, "order");
    const sky_st_tensor *t = sky_checkpoint_find(c, "w3");
    CHECK(t && strstr(t->file, "/b.safetensors") && t->nbytes == 8, "w3 in b");
    CHECK(strstr(sky_checkpoint_find(c, "w2")->file, "/a.safetensors") != NULL, "w2 in a");
    CHECK(sky_checkpoint_find(c, "w4") == NULL && strcmp(sky_checkpoint_path(c), dir) == 0, "absent, path");
    sky_checkpoint_close(c);
    /* the index file itself as the path */
    snprintf(ipath, sizeof ipath, "%s/%s", dir, INDEX);
    CHECK(sky_checkpoint_open(&c, ipath, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_checkpoint_count(c) == 3, "count");
    sky_checkpoint_close(c);
    return 0;
}

static const struct bad_index {
    const char *name;
    const char *index;         /* ' stands for " */
    const char *expect;
} BAD_INDEX[] = {
    { "index_dotdot_shard", "{'weight_map':{'w1':'../a.safetensors','w2':'a.safetensors','w3':'b.safetensors'}}",
      "weight_map['w1'] = '../a.safetensors' is not a plain file name" },
    { "index_absolute_shard", "{'weight_map':{'w1':'/etc/passwd','w2':'a.safetensors','w3':'b.safetensors'}}",
      "weight_map['w1'] = '/etc/passwd' is not a plain file name" },
    { "index_backslash_shard", "{'weight_map':{'w1':'x\\\\a.safetensors','w2':'a.safetensors','w3':'b.safetensors'}}",
      "is not a plain file name" },
    { "index_empty_shard", "{'weight_map':{'w1':'','w2':'a.safetensors','w3':'b.safetensors'}}", "is not a plain file name" },
    { "index_missing_shard", "{'weight_map':{'w1':'a.safetensors','w2':'a.safetensors','w3':'b.safetensors','w4':'c.safetensors'}}",
      "shard 'c.safetensors' (listed for tensor 'w4') does not exist" },
    { "index_tensor_in_wrong_shard", "{'weight_map':{'w1':'a.safetensors','w2':'a.safetensors','w3':'a.safetensors','x':'b.safetensors'}}",
      "tensor 'w3' is listed for shard 'a.safetensors' but is in" },
    { "index_unlisted_tensor", "{'weight_map':{'w1':'a.safetensors','w3':'b.safetensors'}}",
      "tensor 'w2' in " },
    { "index_listed_but_absent", "{'weight_map':{'w1':'a.safetensors','w2':'a.safetensors','w3':'b.safetensors','w9':'b.safetensors'}}",
      "tensor 'w9' is listed for shard 'b.safetensors' but no shard holds it" },
    { "index_total_size_mismatch", "{'metadata':{'total_size':100},'weight_map':{'w1':'a.safetensors','w2':'a.safetensors','w3':'b.safetensors'}}",
      "metadata.total_size is 100 but the tensors hold 24 bytes" },
    { "index_total_size_not_integer", "{'metadata':{'total_size':24.0},'weight_map':{'w1':'a.safetensors','w2':'a.safetensors','w3':'b.safetensors'}}",
      "metadata.total_size must be a non-negative integer" },
    { "index_no_weight_map", "{'metadata':{}}", "with a \"weight_map\" object" },
    { "index_value_not_string", "{'weight_map':{'w1':1}}", "weight_map['w1'] is a number" },
    { "index_not_json", "{'weight_map':{'w1':'a.safetensors',}}", "not valid JSON: byte 36: trailing comma" },
    { "index_duplicate_tensor", "{'weight_map':{'w1':'a.safetensors','w1':'b.safetensors'}}", "duplicate key \"w1\"" },
};

static size_t bad_index_row;

/* Build BAD_INDEX[bad_index_row] beside shards a and b; open the directory. */
static int test_bad_index(void) {
    const struct bad_index *b = &BAD_INDEX[bad_index_row];
    char dir[1024];
    CHECK(sharded_dir(dir, sizeof dir, b->name, b->index), "setup");
    const char *m = ckpt_error(dir);
    CHECK_MSG(m, dir, b->expect);
    return 0;
}

static int test_index_tensor_in_two_shards(void) {
    char dir[1024];
    const char *const b2[] = { "w3", "w1", NULL };
    CHECK(sharded_dir(dir, sizeof dir, "sh_two", "{'weight_map':{'w1':'a.safetensors','w2':'a.safetensors','w3':'b.safetensors'}}"), "setup");
    CHECK(write_shard(dir, "b.safetensors", b2), "write");
    const char *m = ckpt_error(dir);
    CHECK_MSG(m, dir, "tensor 'w1' is in both");
    CHECK(strstr(m, "/a.safetensors and ") && strstr(m, "/b.safetensors"), "names both files: %s", m);
    return 0;
}

static int test_index_bad_shard_file(void) {
    char dir[1024], shard[1200];
    CHECK(sharded_dir(dir, sizeof dir, "sh_badfile", "{'weight_map':{'w1':'a.safetensors','w2':'a.safetensors','w3':'b.safetensors'}}"), "setup");
    CHECK(write_text(dir, "b.safetensors", "xx"), "write");
    snprintf(shard, sizeof shard, "%s/b.safetensors", dir);
    CHECK_MSG(ckpt_error(dir), shard, "too small");
    return 0;
}

static int test_two_index_files(void) {
    char dir[1024];
    CHECK(sharded_dir(dir, sizeof dir, "sh_2idx", "{'weight_map':{}}"), "setup");
    CHECK(write_text(dir, "x.safetensors.index.json", "{'weight_map':{}}"), "write");
    const char *m = ckpt_error(dir);
    CHECK_MSG(m, dir, "2 index files (m.safetensors.index.json, x.safetensors.index.json)");
    return 0;
}

static int test_dir_without_index(void) {
    char dir[1024];
    CHECK(sharded_dir(dir, sizeof dir, "noidx", NULL), "setup");
    CHECK(write_text(dir, ".hidden.safetensors", "junk"), "write");       /* ignored */
    sky_checkpoint *c;
    sky_err err;
    CHECK(sky_checkpoint_open(&c, dir, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_checkpoint_count(c) == 3 && sky_checkpoint_file_count(c) == 2, "count");
    CHECK(strstr(sky_safetensors_path(sky_checkpoint_file(c, 0)), "/a.safetensors") != NULL, "file order");
    CHECK(strstr(sky_checkpoint_find(c, "w3")->file, "/b.safetensors") != NULL, "find across files");
    CHECK(strcmp(sky_checkpoint_at(c, 1)->name, "w2") == 0, "sorted");
    sky_checkpoint_close(c);
    return 0;
}

static int test_dir_duplicate_across_files(void) {
    char dir[1024];
    const char *const b2[] = { "w2", NULL };
    CHECK(sharded_dir(dir, sizeof dir, "noidx_dup", NULL), "setup");
    CHECK(write_shard(dir, "b.safetensors", b2), "write");
    const char *m = ckpt_error(dir);
    char want[2400];
    snprintf(want, sizeof want, "tensor 'w2' is in both %s/a.safetensors and %s/b.safetensors", dir, dir);
    CHECK_MSG(m, dir, want);
    return 0;
}

static int test_dir_empty_and_single_file(void) {
    char dir[1024], path[1200];
    mksub(dir, sizeof dir, "empty_dir");
    CHECK(write_text(dir, "notes.txt", "hello"), "write");
    CHECK_MSG(ckpt_error(dir), dir, "no *.safetensors files");
    snprintf(path, sizeof path, "%s/nothing", dir);
    CHECK_MSG(ckpt_error(path), path, "cannot open");
    CHECK(write_shard(dir, "one.safetensors", SHARD_A), "write");
    snprintf(path, sizeof path, "%s/one.safetensors", dir);
    sky_checkpoint *c;
    sky_err err;
    CHECK(sky_checkpoint_open(&c, path, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_checkpoint_count(c) == 2 && sky_checkpoint_find(c, "w1") != NULL, "single file");
    sky_checkpoint_close(c);
    sky_checkpoint_close(NULL);
    return 0;
}

/* ---- writer ----------------------------------------------------------------------------- */

static int test_write_round_trip(void) {
    char dir[1024], path[1200];
    mksub(dir, sizeof dir, "write");
    snprintf(path, sizeof path, "%s/rt.safetensors", dir);
    float f32[6] = { 1.0f, -2.0f, 3.5f, 1e-30f, -0.0f, 65504.0f };
    uint16_t bf16[4] = { 0x3f80, 0xc020, 0x7f80, 0x0001 };
    int64_t i64[3] = { -1, INT64_MAX, 42 };
    float scalar = 7.25f;
    uint8_t u8[3] = { 1, 2, 3 };
    sky_st_entry e[] = {
        { "u8", SKY_DTYPE_U8, 1, { 3 }, u8 },            /* odd size: later data unaligned */
        { "f32", SKY_DTYPE_F32, 2, { 2, 3 }, f32 },
        { "bf16", SKY_DTYPE_BF16, 1, { 4 }, bf16 },
        { "i64", SKY_DTYPE_I64, 1, { 3 }, i64 },
        { "scalar", SKY_DTYPE_F32, 0, { 0 }, &scalar },
        { "empty", SKY_DTYPE_F32, 2, { 0, 5 }, NULL },
        { "name \"q\" \\ \xc3\xa9", SKY_DTYPE_F32, 1, { 0 }, NULL },
    };
    const char *meta[] = { "format", "pt", "quote", "say \"hi\"\\", "nl", "line1\nline2\t\x01",
                           "utf8", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80", NULL };
    int n = (int)(sizeof e / sizeof e[0]);
    sky_err err;
    for (int pass = 0; pass < 2; pass++) {               /* second pass replaces the file */
        CHECK(sky_safetensors_write(path, e, n, meta, &err) == SKY_OK, "%s", err.msg);
    }
    sky_safetensors *f;
    OPEN_OK(f, path);
    CHECK(sky_safetensors_count(f) == n, "count %d", sky_safetensors_count(f));
    const unsigned char *prev_end = NULL;
    for (int i = 0; i < n; i++) {
        const sky_st_tensor *t = sky_safetensors_find(f, e[i].name);
        CHECK(t != NULL, "missing %s", e[i].name);
        CHECK(t->dtype == e[i].dtype && t->ndim == e[i].ndim, "%s dtype/ndim", e[i].name);
        size_t bytes = (size_t)sky_dtype_bits(e[i].dtype) / 8;
        for (int d = 0; d < t->ndim; d++) {
            CHECK(t->shape[d] == e[i].shape[d], "%s shape[%d]", e[i].name, d);
            bytes *= (size_t)e[i].shape[d];
        }
        CHECK(t->nbytes == bytes, "%s nbytes %zu, want %zu", e[i].name, t->nbytes, bytes);
        CHECK(bytes == 0 || memcmp(t->data, e[i].data, bytes) == 0, "%s bytes differ", e[i].name);
        CHECK(prev_end == NULL || (const unsigned char *)t->data == prev_end, "%s not contiguous in order", e[i].name);
        prev_end = (const unsigned char *)t->data + t->nbytes;
    }
    for (int i = 0; meta[i]; i += 2) {
        const char *v = sky_safetensors_metadata(f, meta[i]);
        CHECK(v && strcmp(v, meta[i + 1]) == 0, "metadata %s = %s", meta[i], v ? v : "(null)");
    }
    sky_safetensors_close(f);
    /* header length is a multiple of 8, and no temporary file is left */
    unsigned char len8[8];
    FILE *fp = fopen(path, "rb");
    CHECK(fp && fread(len8, 1, 8, fp) == 8, "read");
    fclose(fp);
    CHECK(len8[0] % 8 == 0, "header length %u not a multiple of 8", len8[0]);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "test \"$(ls -A '%s')\" = rt.safetensors", dir);
    CHECK(system(cmd) == 0, "unexpected files in %s", dir);
    return 0;
}

static int test_write_failures_leave_nothing(void) {
    char dir[1024], path[1200];
    mksub(dir, sizeof dir, "write_fail");
    float x[2] = { 1, 2 };
    sky_st_entry ok = { "x", SKY_DTYPE_F32, 1, { 2 }, x };
    sky_err err;
    snprintf(path, sizeof path, "%s/no_such_dir/out.safetensors", dir);
    CHECK(sky_safetensors_write(path, &ok, 1, NULL, &err) == SKY_ERR, "write into a missing directory succeeded");
    CHECK_MSG(err.msg, path, "cannot create a temporary file");
    struct stat sb;
    CHECK(stat(path, &sb) != 0, "file exists after a failed write");

    snprintf(path, sizeof path, "%s/bad.safetensors", dir);
    sky_st_entry dup[2] = { ok, ok };
    CHECK(sky_safetensors_write(path, dup, 2, NULL, &err) == SKY_ERR, "duplicate names accepted");
    CHECK_MSG(err.msg, path, "tensor name 'x' given twice");
    sky_st_entry neg = { "n", SKY_DTYPE_F32, 1, { -1 }, x };
    CHECK(sky_safetensors_write(path, &neg, 1, NULL, &err) == SKY_ERR, "negative dim accepted");
    CHECK_MSG(err.msg, path, "shape[0] is negative");
    sky_st_entry md = { "__metadata__", SKY_DTYPE_F32, 1, { 2 }, x };
    CHECK(sky_safetensors_write(path, &md, 1, NULL, &err) == SKY_ERR, "__metadata__ accepted");
    CHECK_MSG(err.msg, path, "'__metadata__' is not a tensor name");
    sky_st_entry bad_utf8 = { "a\xff", SKY_DTYPE_F32, 1, { 2 }, x };
    CHECK(sky_safetensors_write(path, &bad_utf8, 1, NULL, &err) == SKY_ERR, "bad UTF-8 accepted");
    CHECK_MSG(err.msg, path, "not valid UTF-8");
    const char *odd_meta[] = { "k", NULL };
    CHECK(sky_safetensors_write(path, &ok, 1, odd_meta, &err) == SKY_ERR, "odd metadata accepted");
    CHECK_MSG(err.msg, path, "metadata key 'k' has no value");
    sky_st_entry f4 = { "f4", SKY_DTYPE_F4, 1, { 3 }, x };
    CHECK(sky_safetensors_write(path, &f4, 1, NULL, &err) == SKY_ERR, "12-bit tensor accepted");
    CHECK_MSG(err.msg, path, "not a whole number of bytes");
    char cmd[1200];
    snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", dir);
    CHECK(system(cmd) == 0, "files left in %s after failed writes", dir);
    return 0;
}

/* ---- dtype ------------------------------------------------------------------------------- */

static int test_dtype_names_and_bits(void) {
    for (int i = 0; i < SKY_DTYPE_COUNT; i++) {
        sky_dtype t;
        const char *nm = sky_dtype_name((sky_dtype)i);
        CHECK(sky_dtype_from_name(nm, strlen(nm), &t) && t == (sky_dtype)i, "round trip %s", nm);
    }
    sky_dtype t;
    CHECK(!sky_dtype_from_name("BF1", 3, &t) && !sky_dtype_from_name("BF16", 3, &t), "prefix");
    CHECK(sky_dtype_from_name("BF16x", 4, &t) && t == SKY_DTYPE_BF16, "len-limited");
    CHECK(sky_dtype_bits(SKY_DTYPE_F4) == 4 && sky_dtype_bits(SKY_DTYPE_F6_E3M2) == 6 &&
          sky_dtype_bits(SKY_DTYPE_BOOL) == 8 && sky_dtype_bits(SKY_DTYPE_BF16) == 16 &&
          sky_dtype_bits(SKY_DTYPE_U32) == 32 && sky_dtype_bits(SKY_DTYPE_C64) == 64, "bits");
    CHECK(sky_dtype_bits(SKY_DTYPE_COUNT) == 0 && strcmp(sky_dtype_name(SKY_DTYPE_COUNT), "?") == 0, "out of range");
    return 0;
}

/* Fill an odd-addressed buffer with little-endian values of `size` bytes each. */
static unsigned char *unaligned_le(unsigned char *buf, const uint64_t *v, size_t n, size_t size) {
    unsigned char *p = buf + 1;
    for (size_t i = 0; i < n; i++) {
        for (size_t b = 0; b < size; b++) p[i * size + b] = (unsigned char)(v[i] >> (8 * b));
    }
    return p;
}

static int test_dtype_to_f32_unaligned(void) {
    unsigned char buf[128];
    float out[10];
    sky_err err;
    /* bf16 */
    const uint64_t bf[] = { 0x3f80, 0xc020, 0x7f80, 0x0001, 0xff80 };
    CHECK(sky_dtype_to_f32(out, unaligned_le(buf, bf, 5, 2), SKY_DTYPE_BF16, 5, &err) == SKY_OK, "%s", err.msg);
    CHECK(out[0] == 1.0f && out[1] == -2.5f && isinf(out[2]) && out[2] > 0 && out[4] < 0 && isinf(out[4]), "bf16");
    CHECK(out[3] == ldexpf(1.0f, -133), "bf16 subnormal %g", (double)out[3]);
    const uint64_t bfn[] = { 0x7fc1 };
    CHECK(sky_dtype_to_f32(out, unaligned_le(buf, bfn, 1, 2), SKY_DTYPE_BF16, 1, &err) == SKY_OK && isnan(out[0]), "bf16 nan");
    /* f16: normal, subnormal (smallest, largest), max, inf, -inf, nan, -0 */
    const uint64_t h[] = { 0x3c00, 0xc000, 0x0001, 0x03ff, 0x0400, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x8000 };
    CHECK(sky_dtype_to_f32(out, unaligned_le(buf, h, 10, 2), SKY_DTYPE_F16, 10, &err) == SKY_OK, "%s", err.msg);
    CHECK(out[0] == 1.0f && out[1] == -2.0f, "f16 normal");
    CHECK(out[2] == ldexpf(1.0f, -24), "f16 smallest subnormal %g", (double)out[2]);
    CHECK(out[3] == 1023.0f * ldexpf(1.0f, -24), "f16 largest subnormal %g", (double)out[3]);
    CHECK(out[4] == ldexpf(1.0f, -14) && out[5] == 65504.0f, "f16 min normal / max");
    CHECK(isinf(out[6]) && out[6] > 0 && isinf(out[7]) && out[7] < 0 && isnan(out[8]), "f16 inf/nan");
    CHECK(out[9] == 0.0f && signbit(out[9]), "f16 -0");
    /* f32 */
    float fv[3] = { 1.5f, -3.25e-20f, 3.4e38f };
    uint64_t fb[3];
    for (int i = 0; i < 3; i++) { uint32_t u; memcpy(&u, &fv[i], 4); fb[i] = u; }
    CHECK(sky_dtype_to_f32(out, unaligned_le(buf, fb, 3, 4), SKY_DTYPE_F32, 3, &err) == SKY_OK, "%s", err.msg);
    CHECK(out[0] == fv[0] && out[1] == fv[1] && out[2] == fv[2], "f32");
    /* f64 */
    double dv[3] = { 1.5, 0.1, -1e300 };
    uint64_t db[3];
    memcpy(db, dv, sizeof db);
    CHECK(sky_dtype_to_f32(out, unaligned_le(buf, db, 3, 8), SKY_DTYPE_F64, 3, &err) == SKY_OK, "%s", err.msg);
    CHECK(out[0] == 1.5f && out[1] == 0.1f && isinf(out[2]) && out[2] < 0, "f64");
    /* i64, i32 */
    const uint64_t iv[] = { (uint64_t)-3, (uint64_t)1 << 40, (uint64_t)INT64_MIN };
    CHECK(sky_dtype_to_f32(out, unaligned_le(buf, iv, 3, 8), SKY_DTYPE_I64, 3, &err) == SKY_OK, "%s", err.msg);
    CHECK(out[0] == -3.0f && out[1] == ldexpf(1.0f, 40) && out[2] == -ldexpf(1.0f, 63), "i64");
    const uint64_t jv[] = { (uint32_t)-7, 0x7fffffff };
    CHECK(sky_dtype_to_f32(out, unaligned_le(buf, jv, 2, 4), SKY_DTYPE_I32, 2, &err) == SKY_OK, "%s", err.msg);
    CHECK(out[0] == -7.0f && out[1] == 2147483648.0f, "i32");
    /* unsupported */
    CHECK(sky_dtype_to_f32(out, buf, SKY_DTYPE_U8, 1, &err) == SKY_ERR, "U8 accepted");
    CHECK(strstr(err.msg, "cannot convert dtype U8 to f32") != NULL, "%s", err.msg);
    return 0;
}

/* f32 from its bit pattern. */
static float fbits(uint32_t u) {
    float f;
    memcpy(&f, &u, 4);
    return f;
}

static int test_f32_to_bf16_rounding(void) {
    CHECK(sky_f32_to_bf16(1.0f) == 0x3f80, "1.0");
    CHECK(sky_f32_to_bf16(fbits(0x3f808000)) == 0x3f80, "tie rounds to even (down)");
    CHECK(sky_f32_to_bf16(fbits(0x3f818000)) == 0x3f82, "tie rounds to even (up)");
    CHECK(sky_f32_to_bf16(fbits(0x3f808001)) == 0x3f81, "above half rounds up");
    CHECK(sky_f32_to_bf16(fbits(0x3f807fff)) == 0x3f80, "below half rounds down");
    CHECK(sky_f32_to_bf16(fbits(0x7f7fffff)) == 0x7f80, "max float rounds to inf");
    CHECK(sky_f32_to_bf16(fbits(0xff800000)) == 0xff80, "-inf");
    uint16_t n1 = sky_f32_to_bf16(fbits(0x7f800001)), n2 = sky_f32_to_bf16(fbits(0xffffffff));
    CHECK(isnan(sky_bf16_to_f32(n1)) && isnan(sky_bf16_to_f32(n2)) && (n2 & 0x8000), "NaN stays NaN: %04x %04x", n1, n2);
    for (uint32_t h = 0; h < 0x10000; h++) {
        float f = sky_bf16_to_f32((uint16_t)h);
        if (!isnan(f)) CHECK(sky_f32_to_bf16(f) == h, "bf16 %04x does not round-trip", h);
    }
    return 0;
}

/* ---- main ------------------------------------------------------------------------------------ */

/* nftw callback: remove one entry. */
static int rm_entry(const char *p, const struct stat *sb, int flag, struct FTW *ftw) {
    (void)sb; (void)flag; (void)ftw;
    return remove(p);
}

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/sky_st_test_XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(tmp_root) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmp_root, strerror(errno));
        return 1;
    }
    for (bad_row = 0; bad_row < sizeof BAD / sizeof BAD[0]; bad_row++) RUN_NAMED(BAD[bad_row].name, test_bad_header);
    RUN(test_header_too_small);
    RUN(test_header_too_large);
    RUN(test_invalid_header_length);
    RUN(test_deep_nesting);
    RUN(test_not_a_file);
    RUN(test_whitespace_padded_header);
    RUN(test_whitespace_leading_padded_header);
    RUN(test_zero_sized_tensor);
    RUN(test_scalar_and_empty_file);
    RUN(test_find_sorted_and_data);
    RUN(test_many_tensors_reverse_offsets);
    RUN(test_sharded_valid);
    for (bad_index_row = 0; bad_index_row < sizeof BAD_INDEX / sizeof BAD_INDEX[0]; bad_index_row++) {
        RUN_NAMED(BAD_INDEX[bad_index_row].name, test_bad_index);
    }
    RUN(test_index_tensor_in_two_shards);
    RUN(test_index_bad_shard_file);
    RUN(test_two_index_files);
    RUN(test_dir_without_index);
    RUN(test_dir_duplicate_across_files);
    RUN(test_dir_empty_and_single_file);
    RUN(test_write_round_trip);
    RUN(test_write_failures_leave_nothing);
    RUN(test_dtype_names_and_bits);
    RUN(test_dtype_to_f32_unaligned);
    RUN(test_f32_to_bf16_rounding);
    nftw(tmp_root, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    return CHECK_SUMMARY();
}
