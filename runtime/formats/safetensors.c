/* runtime/formats/safetensors.c — .safetensors reader: mmap and full validation of the header.
 *
 * Contract in safetensors.h; format in reference vae-text-image-files.md §5.1 and
 * conventions-and-reliability.md §3.2 (whose error classes each get a message here).
 * Sizes from the file are u64 and every product or sum of them is checked before it
 * is formed; nothing is allocated from a size before it is bounded by the file size.
 */
#include "formats/safetensors.h"

#include "core/dtype.h"
#include "core/fs.h"
#include "core/json.h"
#include "core/str.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long ull; /* for printing u64 values with %llu */

struct sky_safetensors {
    char           *path;
    void           *map; /* the whole file, PROT_READ / MAP_PRIVATE */
    size_t          map_size;
    sky_json_doc   *doc;     /* parsed header: owns names and metadata */
    const sky_json *meta;    /* __metadata__ object, or NULL */
    sky_st_tensor  *tensors; /* sorted by name */
    int             count;
};

/* ---- small helpers -------------------------------------------------------------- */

/* Little-endian u64 at p (any alignment). */
static uint64_t load_le64(const unsigned char *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = (v << 8) | p[i];
    return v;
}

/* "[2, 3, 4]" into buf. */
static const char *shape_fmt(char *buf, size_t n, size_t ndim, const uint64_t *dims)
{
    size_t used = (size_t)snprintf(buf, n, "[");
    for (size_t i = 0; i < ndim && used < n; i++) {
        used += (size_t)snprintf(buf + used, n - used, "%s%llu", i ? ", " : "", (ull)dims[i]);
    }
    if (used < n) snprintf(buf + used, n - used, "]");
    return buf;
}

/* Read v as an exact u64; otherwise fail saying why (negative, fraction, ...). */
static sky_status get_u64(const sky_json *v, uint64_t *out, const char *path, const char *tensor, const char *what,
                          sky_err *err)
{
    if (v->type != SKY_JSON_NUMBER) {
        return sky_fail(err, "%s: tensor '%s': %s is a %s, expected a non-negative integer", path, tensor, what,
                        sky_json_type_name(v->type));
    }
    if (v->is_u64) {
        *out = v->u64;
        return SKY_OK;
    }
    const char *why = v->str[0] == '-'                ? "is negative"
                      : strchr(v->str, '.') != NULL   ? "is fractional"
                      : strpbrk(v->str, "eE") != NULL ? "uses an exponent"
                                                      : "exceeds 2^64-1";
    return sky_fail(err, "%s: tensor '%s': %s %s (%.40s); expected a plain integer in [0, 2^64-1]", path, tensor, what,
                    why, v->str);
}

/* ---- reader: one file ------------------------------------------------------------ */

/* Map f->path read-only (the fd is closed before returning) and check it can hold the header length. */
static sky_status map_file(sky_safetensors *f, sky_err *err)
{
    if (sky_fs_map(f->path, ".safetensors file", &f->map, &f->map_size, err) != SKY_OK) return SKY_ERR;
    if (f->map_size < 8) {
        return sky_fail(err,
                        "%s: file is %zu bytes, too small for the 8-byte header length "
                        "(header too small)",
                        f->path, f->map_size);
    }
    return SKY_OK;
}

/* Check __metadata__: an object whose values are all strings (no NUL inside). */
static sky_status check_metadata(const sky_safetensors *f, const sky_json *m, sky_err *err)
{
    if (m->type != SKY_JSON_OBJECT) {
        return sky_fail(err, "%s: __metadata__ is a %s, expected an object of string values", f->path,
                        sky_json_type_name(m->type));
    }
    for (size_t i = 0; i < m->count; i++) {
        const sky_json *v = m->items[i];
        if (v->type != SKY_JSON_STRING) {
            return sky_fail(err, "%s: __metadata__ value for '%s' is a %s, expected a string", f->path, v->key,
                            sky_json_type_name(v->type));
        }
        if (strlen(v->key) != v->key_len || strlen(v->str) != v->len) {
            return sky_fail(err, "%s: __metadata__ entry '%s' contains a NUL character", f->path, v->key);
        }
    }
    return SKY_OK;
}

/* The fields of tensor entry v (named name): exactly dtype, shape and data_offsets. */
static sky_status entry_fields(const char *path, const char *name, const sky_json *v, const sky_json **jdtype,
                               const sky_json **jshape, const sky_json **joffs, sky_err *err)
{
    if (v->type != SKY_JSON_OBJECT) {
        return sky_fail(err,
                        "%s: tensor '%s': entry is a %s, expected an object with dtype, shape "
                        "and data_offsets",
                        path, name, sky_json_type_name(v->type));
    }
    /* exactly the three fields (duplicates were rejected by the JSON parser) */
    *jdtype = *jshape = *joffs = NULL;
    for (size_t i = 0; i < v->count; i++) {
        const sky_json *fld = v->items[i];
        if (strcmp(fld->key, "dtype") == 0)
            *jdtype = fld;
        else if (strcmp(fld->key, "shape") == 0)
            *jshape = fld;
        else if (strcmp(fld->key, "data_offsets") == 0)
            *joffs = fld;
        else {
            return sky_fail(err,
                            "%s: tensor '%s': unknown field '%s' (expected exactly dtype, shape, "
                            "data_offsets)",
                            path, name, fld->key);
        }
    }
    const char *missing = !*jdtype ? "dtype" : !*jshape ? "shape" : !*joffs ? "data_offsets" : NULL;
    if (missing) return sky_fail(err, "%s: tensor '%s': missing field '%s'", path, name, missing);
    return SKY_OK;
}

/* dtype and shape of a tensor entry into t, its size into *bits: rank, exact dims, then the
 * element count and bits with overflow checks; a whole number of bytes. */
static sky_status entry_shape(const char *path, const char *name, const sky_json *jdtype, const sky_json *jshape,
                              sky_st_tensor *t, uint64_t *bits, sky_err *err)
{
    char sbuf[256], what[32];
    if (jdtype->type != SKY_JSON_STRING) {
        return sky_fail(err, "%s: tensor '%s': dtype is a %s, expected a string", path, name,
                        sky_json_type_name(jdtype->type));
    }
    if (!sky_dtype_from_name(jdtype->str, jdtype->len, &t->dtype)) {
        return sky_fail(err, "%s: tensor '%s': unknown dtype '%.40s'", path, name, jdtype->str);
    }
    if (jshape->type != SKY_JSON_ARRAY) {
        return sky_fail(err, "%s: tensor '%s': shape is a %s, expected an array of integers", path, name,
                        sky_json_type_name(jshape->type));
    }
    if (jshape->count > SKY_MAX_DIMS) {
        return sky_fail(err, "%s: tensor '%s': rank %zu exceeds the maximum %d", path, name, jshape->count,
                        SKY_MAX_DIMS);
    }
    uint64_t dims[SKY_MAX_DIMS], nelem = 1;
    size_t   ndim = jshape->count;
    for (size_t i = 0; i < ndim; i++) {
        snprintf(what, sizeof what, "shape[%zu]", i);
        if (get_u64(jshape->items[i], &dims[i], path, name, what, err) != SKY_OK) return SKY_ERR;
    }
    for (size_t i = 0; i < ndim; i++) {
        if (dims[i] != 0 && nelem > UINT64_MAX / dims[i]) {
            return sky_fail(err, "%s: tensor '%s': shape %s: element count overflows 64 bits", path, name,
                            shape_fmt(sbuf, sizeof sbuf, ndim, dims));
        }
        nelem *= dims[i];
    }
    uint64_t bitsz = (uint64_t)sky_dtype_bits(t->dtype);
    if (nelem > UINT64_MAX / bitsz) {
        return sky_fail(err, "%s: tensor '%s': shape %s x %llu bits overflows 64 bits", path, name,
                        shape_fmt(sbuf, sizeof sbuf, ndim, dims), (ull)bitsz);
    }
    *bits = nelem * bitsz;
    for (size_t i = 0; i < ndim; i++) {
        if (dims[i] > (uint64_t)INT64_MAX) {
            return sky_fail(err, "%s: tensor '%s': shape[%zu] = %llu exceeds 2^63-1", path, name, i, (ull)dims[i]);
        }
    }
    if (*bits % 8 != 0) {
        return sky_fail(err, "%s: tensor '%s': %s x shape %s is %llu bits, not a whole number of bytes", path, name,
                        jdtype->str, shape_fmt(sbuf, sizeof sbuf, ndim, dims), (ull)*bits);
    }
    t->ndim = (int)ndim;
    for (size_t i = 0; i < SKY_MAX_DIMS; i++) t->shape[i] = i < ndim ? (int64_t)dims[i] : 0;
    return SKY_OK;
}

/* Validate one tensor entry (reference §5.1 items 3 and 4) and fill *t. data_size is
 * the byte count after the header; data points at its start. */
static sky_status parse_entry(const sky_safetensors *f, const sky_json *v, sky_st_tensor *t, const unsigned char *data,
                              uint64_t data_size, sky_err *err)
{
    const char     *name = v->key, *path = f->path;
    const sky_json *jdtype = NULL, *jshape = NULL, *joffs = NULL;
    uint64_t        bits = 0, dims[SKY_MAX_DIMS];
    char            sbuf[256];
    if (v->key_len == 0) return sky_fail(err, "%s: a tensor has an empty name", path);
    if (strlen(name) != v->key_len) {
        return sky_fail(err, "%s: tensor name '%s...' contains a NUL character", path, name);
    }
    if (entry_fields(path, name, v, &jdtype, &jshape, &joffs, err) != SKY_OK ||
        entry_shape(path, name, jdtype, jshape, t, &bits, err) != SKY_OK) {
        return SKY_ERR;
    }
    /* data_offsets: [BEGIN, END] relative to the data buffer */
    if (joffs->type != SKY_JSON_ARRAY || joffs->count != 2) {
        return sky_fail(err,
                        "%s: tensor '%s': data_offsets must be an array of exactly 2 integers "
                        "(got %s with %zu items)",
                        path, name, sky_json_type_name(joffs->type),
                        joffs->type == SKY_JSON_ARRAY ? joffs->count : (size_t)1);
    }
    uint64_t begin, end;
    if (get_u64(joffs->items[0], &begin, path, name, "data_offsets[0]", err) != SKY_OK ||
        get_u64(joffs->items[1], &end, path, name, "data_offsets[1]", err) != SKY_OK) {
        return SKY_ERR;
    }
    if (begin > end) {
        return sky_fail(err, "%s: tensor '%s': data_offsets [%llu, %llu] are reversed (begin > end)", path, name,
                        (ull)begin, (ull)end);
    }
    if (end - begin != bits / 8) {
        for (int i = 0; i < t->ndim; i++) dims[i] = (uint64_t)t->shape[i];
        return sky_fail(err,
                        "%s: tensor '%s': %s x shape %s is %llu bytes but data_offsets [%llu, %llu] "
                        "span %llu bytes",
                        path, name, jdtype->str, shape_fmt(sbuf, sizeof sbuf, (size_t)t->ndim, dims), (ull)(bits / 8),
                        (ull)begin, (ull)end, (ull)(end - begin));
    }
    if (end > data_size) {
        return sky_fail(err,
                        "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data "
                        "(%llu bytes after the header; is the file truncated?)",
                        path, name, (ull)begin, (ull)end, (ull)data_size);
    }
    t->name = name;
    t->data = data + begin;
    t->nbytes = (size_t)(end - begin);
    t->file = path;
    return SKY_OK;
}

/* Order tensors by where their bytes are: begin, then end, then name. */
static int by_offset(const void *a, const void *b)
{
    const sky_st_tensor *x = *(const sky_st_tensor *const *)a, *y = *(const sky_st_tensor *const *)b;
    const char          *xb = x->data, *yb = y->data;
    if (xb != yb) return xb < yb ? -1 : 1;
    if (x->nbytes != y->nbytes) return x->nbytes < y->nbytes ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Order tensors by name. */
static int by_name(const void *a, const void *b)
{
    return strcmp(((const sky_st_tensor *)a)->name, ((const sky_st_tensor *)b)->name);
}

/* Reference §5.1 item 5: sorted by BEGIN, the tensors tile [0, data_size) exactly. */
static sky_status check_coverage(const sky_safetensors *f, const unsigned char *data, uint64_t data_size, sky_err *err)
{
    const sky_st_tensor **order = malloc((size_t)(f->count ? f->count : 1) * sizeof *order);
    if (order == NULL) return sky_fail(err, "%s: out of memory for %d tensors", f->path, f->count);
    for (int i = 0; i < f->count; i++) order[i] = &f->tensors[i];
    qsort(order, (size_t)f->count, sizeof *order, by_offset);

    sky_status           st = SKY_OK;
    uint64_t             expect = 0; /* where the next tensor must begin */
    const sky_st_tensor *prev = NULL;
    for (int i = 0; i < f->count && st == SKY_OK; i++) {
        const sky_st_tensor *t = order[i];
        uint64_t             b = (uint64_t)((const unsigned char *)t->data - data), e = b + t->nbytes;
        if (b > expect && prev == NULL) {
            st = sky_fail(err,
                          "%s: tensor '%s' [%llu, %llu] leaves a gap of %llu bytes at the start "
                          "of the data (the first tensor must begin at 0)",
                          f->path, t->name, (ull)b, (ull)e, (ull)b);
        } else if (b > expect) {
            st = sky_fail(err,
                          "%s: gap of %llu bytes between tensor '%s' (ends at %llu) and tensor '%s' "
                          "[%llu, %llu]",
                          f->path, (ull)(b - expect), prev->name, (ull)expect, t->name, (ull)b, (ull)e);
        } else if (b < expect) {
            st = sky_fail(err, "%s: tensor '%s' [%llu, %llu] and tensor '%s' (ends at %llu) overlap", f->path, t->name,
                          (ull)b, (ull)e, prev->name, (ull)expect);
        }
        expect = e;
        prev = t;
    }
    free(order);
    if (st == SKY_OK && expect != data_size) {
        st = sky_fail(err,
                      "%s: %llu trailing bytes: the tensors end at %llu but the data after the "
                      "header is %llu bytes",
                      f->path, (ull)(data_size - expect), (ull)expect, (ull)data_size);
    }
    return st;
}

/* Read the header length, check and parse the header, validate every tensor. */
static sky_status parse_header(sky_safetensors *f, sky_err *err)
{
    const unsigned char *base = f->map;
    uint64_t             n = load_le64(base);
    if (n > SKY_ST_MAX_HEADER) {
        return sky_fail(err, "%s: header length %llu exceeds the limit of %llu bytes (header too large)", f->path,
                        (ull)n, (ull)SKY_ST_MAX_HEADER);
    }
    if (n > (uint64_t)(f->map_size - 8)) { /* 8 + n > size, without forming 8 + n */
        return sky_fail(err, "%s: header length %llu exceeds the file size %zu", f->path, (ull)n, f->map_size);
    }
    const char *hdr = (const char *)base + 8;
    size_t      bad = sky_utf8_check(hdr, (size_t)n);
    if (bad != n) return sky_fail(err, "%s: header is not valid UTF-8 (byte %zu of the header)", f->path, bad);

    /* A valid header spends more than 4 bytes per JSON value (52+ bytes for <= 14 values
     * per tensor), so this cap never rejects one, and bounds memory by the file size. */
    sky_json_limits lim = {0, 0, (size_t)n / 4 + 16};
    sky_err         jerr;
    if (sky_json_parse(&f->doc, hdr, (size_t)n, &lim, &jerr) != SKY_OK) {
        return sky_fail(err, "%s: header is not valid JSON: %s", f->path, jerr.msg);
    }
    const sky_json *root = sky_json_root(f->doc);
    if (root->type != SKY_JSON_OBJECT) {
        return sky_fail(err, "%s: header is a JSON %s, expected an object", f->path, sky_json_type_name(root->type));
    }
    f->meta = sky_json_get(root, "__metadata__");
    if (f->meta != NULL && check_metadata(f, f->meta, err) != SKY_OK) return SKY_ERR;
    size_t count = root->count - (f->meta != NULL);
    if (count > INT_MAX) return sky_fail(err, "%s: %zu tensors is too many", f->path, count);

    const unsigned char *data = base + 8 + n;
    uint64_t             data_size = (uint64_t)f->map_size - 8 - n;
    f->tensors = calloc(count ? count : 1, sizeof *f->tensors);
    if (f->tensors == NULL) return sky_fail(err, "%s: out of memory for %zu tensors", f->path, count);
    for (size_t i = 0; i < root->count; i++) {
        const sky_json *v = root->items[i];
        if (v == f->meta) continue;
        if (parse_entry(f, v, &f->tensors[f->count], data, data_size, err) != SKY_OK) return SKY_ERR;
        f->count++;
    }
    if (check_coverage(f, data, data_size, err) != SKY_OK) return SKY_ERR;
    qsort(f->tensors, (size_t)f->count, sizeof *f->tensors, by_name);
    return SKY_OK;
}

sky_status sky_safetensors_open(sky_safetensors **out, const char *path, sky_err *err)
{
    *out = NULL;
    sky_safetensors *f = calloc(1, sizeof *f);
    if (f == NULL || (f->path = sky_str_dup(path)) == NULL) {
        free(f);
        return sky_fail(err, "%s: out of memory", path);
    }
    if (map_file(f, err) != SKY_OK || parse_header(f, err) != SKY_OK) {
        sky_safetensors_close(f);
        return SKY_ERR;
    }
    *out = f;
    return SKY_OK;
}

int sky_safetensors_count(const sky_safetensors *f) { return f->count; }

const sky_st_tensor *sky_safetensors_at(const sky_safetensors *f, int i)
{
    SKY_ASSERT(i >= 0 && i < f->count);
    return &f->tensors[i];
}

const sky_st_tensor *sky_safetensors_find(const sky_safetensors *f, const char *name)
{
    sky_st_tensor key;
    key.name = name;
    return bsearch(&key, f->tensors, (size_t)f->count, sizeof *f->tensors, by_name);
}

const char *sky_safetensors_metadata(const sky_safetensors *f, const char *key)
{
    const sky_json *v = sky_json_get(f->meta, key);
    return v ? v->str : NULL;
}

const char *sky_safetensors_path(const sky_safetensors *f) { return f->path; }

void sky_safetensors_close(sky_safetensors *f)
{
    if (f == NULL) return;
    sky_fs_unmap(f->map, f->map_size);
    sky_json_free(f->doc);
    free(f->tensors);
    free(f->path);
    free(f);
}
