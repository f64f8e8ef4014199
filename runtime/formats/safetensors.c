/* runtime/formats/safetensors.c — mmap reader with full validation, sharded checkpoints, writer.
 *
 * Contract in safetensors.h; format in reference vae-text-image-files.md §5.1 and
 * conventions-and-reliability.md §3.2 (whose error classes each get a message here).
 * Sizes from the file are u64 and every product or sum of them is checked before it
 * is formed; nothing is allocated from a size before it is bounded by the file size.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mmap, mkstemp, fsync, O_CLOEXEC, dirent */
#endif

#include "formats/safetensors.h"
#include "formats/pth.h"

#include "core/dtype.h"
#include "core/json.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

struct sky_checkpoint {
    char                 *path;
    sky_safetensors     **files; /* in file name order */
    int                   n_files;
    sky_pth              *pth; /* a PyTorch .pth checkpoint instead of safetensors files */
    const sky_st_tensor **all; /* every tensor of every file, sorted by name */
    int                   count;
};

/* ---- small helpers -------------------------------------------------------------- */

/* malloc'ed copy of s (strdup is not C11). */
static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char  *d = malloc(n);
    if (d != NULL) memcpy(d, s, n);
    return d;
}

/* malloc'ed "dir/name". */
static char *path_join(const char *dir, const char *name)
{
    size_t a = strlen(dir), b = strlen(name);
    char  *p = malloc(a + b + 2);
    if (p == NULL) return NULL;
    memcpy(p, dir, a);
    p[a] = '/';
    memcpy(p + a + 1, name, b + 1);
    return p;
}

/* The part of path after its last '/'. */
static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* 1 if s ends with suffix. */
static int ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

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

/* Open, size-check and map f->path read-only; the fd is closed before returning. */
static sky_status map_file(sky_safetensors *f, sky_err *err)
{
    int fd = open(f->path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sky_fail(err, "%s: cannot open: %s", f->path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0) {
        int e = errno;
        close(fd);
        return sky_fail(err, "%s: cannot stat: %s", f->path, strerror(e));
    }
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return sky_fail(err, "%s: is %s, not a .safetensors file", f->path,
                        S_ISDIR(st.st_mode) ? "a directory" : "not a regular file");
    }
    if (st.st_size < 8) {
        close(fd);
        return sky_fail(err,
                        "%s: file is %lld bytes, too small for the 8-byte header length "
                        "(header too small)",
                        f->path, (long long)st.st_size);
    }
    if ((unsigned long long)st.st_size > SIZE_MAX) {
        close(fd);
        return sky_fail(err, "%s: file of %lld bytes is too large to map", f->path, (long long)st.st_size);
    }
    f->map_size = (size_t)st.st_size;
    f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
    int e = errno;
    close(fd);
    if (f->map == MAP_FAILED) {
        f->map = NULL;
        return sky_fail(err, "%s: mmap of %zu bytes failed: %s", f->path, f->map_size, strerror(e));
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

/* Validate one tensor entry (reference §5.1 items 3 and 4) and fill *t. data_size is
 * the byte count after the header; data points at its start. */
static sky_status parse_entry(const sky_safetensors *f, const sky_json *v, sky_st_tensor *t, const unsigned char *data,
                              uint64_t data_size, sky_err *err)
{
    const char *name = v->key, *path = f->path;
    char        sbuf[256], what[32];
    if (v->key_len == 0) return sky_fail(err, "%s: a tensor has an empty name", path);
    if (strlen(name) != v->key_len) {
        return sky_fail(err, "%s: tensor name '%s...' contains a NUL character", path, name);
    }
    if (v->type != SKY_JSON_OBJECT) {
        return sky_fail(err,
                        "%s: tensor '%s': entry is a %s, expected an object with dtype, shape "
                        "and data_offsets",
                        path, name, sky_json_type_name(v->type));
    }
    /* exactly the three fields (duplicates were rejected by the JSON parser) */
    const sky_json *jdtype = NULL, *jshape = NULL, *joffs = NULL;
    for (size_t i = 0; i < v->count; i++) {
        const sky_json *fld = v->items[i];
        if (strcmp(fld->key, "dtype") == 0)
            jdtype = fld;
        else if (strcmp(fld->key, "shape") == 0)
            jshape = fld;
        else if (strcmp(fld->key, "data_offsets") == 0)
            joffs = fld;
        else {
            return sky_fail(err,
                            "%s: tensor '%s': unknown field '%s' (expected exactly dtype, shape, "
                            "data_offsets)",
                            path, name, fld->key);
        }
    }
    const char *missing = !jdtype ? "dtype" : !jshape ? "shape" : !joffs ? "data_offsets" : NULL;
    if (missing) return sky_fail(err, "%s: tensor '%s': missing field '%s'", path, name, missing);

    /* dtype */
    if (jdtype->type != SKY_JSON_STRING) {
        return sky_fail(err, "%s: tensor '%s': dtype is a %s, expected a string", path, name,
                        sky_json_type_name(jdtype->type));
    }
    if (!sky_dtype_from_name(jdtype->str, jdtype->len, &t->dtype)) {
        return sky_fail(err, "%s: tensor '%s': unknown dtype '%.40s'", path, name, jdtype->str);
    }
    /* shape: rank, exact dims, then nelem and bits with overflow checks */
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
    uint64_t bits = nelem * bitsz;
    for (size_t i = 0; i < ndim; i++) {
        if (dims[i] > (uint64_t)INT64_MAX) {
            return sky_fail(err, "%s: tensor '%s': shape[%zu] = %llu exceeds 2^63-1", path, name, i, (ull)dims[i]);
        }
    }
    if (bits % 8 != 0) {
        return sky_fail(err, "%s: tensor '%s': %s x shape %s is %llu bits, not a whole number of bytes", path, name,
                        jdtype->str, shape_fmt(sbuf, sizeof sbuf, ndim, dims), (ull)bits);
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
        return sky_fail(err,
                        "%s: tensor '%s': %s x shape %s is %llu bytes but data_offsets [%llu, %llu] "
                        "span %llu bytes",
                        path, name, jdtype->str, shape_fmt(sbuf, sizeof sbuf, ndim, dims), (ull)(bits / 8), (ull)begin,
                        (ull)end, (ull)(end - begin));
    }
    if (end > data_size) {
        return sky_fail(err,
                        "%s: tensor '%s': data_offsets [%llu, %llu] run past the end of the data "
                        "(%llu bytes after the header; is the file truncated?)",
                        path, name, (ull)begin, (ull)end, (ull)data_size);
    }
    t->name = name;
    t->ndim = (int)ndim;
    for (size_t i = 0; i < SKY_MAX_DIMS; i++) t->shape[i] = i < ndim ? (int64_t)dims[i] : 0;
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
    if (f == NULL || (f->path = str_dup(path)) == NULL) {
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
    if (f->map != NULL) munmap(f->map, f->map_size);
    sky_json_free(f->doc);
    free(f->tensors);
    free(f->path);
    free(f);
}

/* ---- checkpoints: one file, a sharded index, or a directory ------------------------ */

/* Pointer-to-tensor order: name, then file path (deterministic duplicate messages). */
static int ptr_by_name(const void *a, const void *b)
{
    const sky_st_tensor *x = *(const sky_st_tensor *const *)a, *y = *(const sky_st_tensor *const *)b;
    int                  c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->file, y->file);
}

/* Open one more file into c->files (the array has room; see the callers). */
static sky_status ckpt_add_file(sky_checkpoint *c, const char *path, sky_err *err)
{
    sky_safetensors *f;
    if (sky_safetensors_open(&f, path, err) != SKY_OK) return SKY_ERR;
    c->files[c->n_files++] = f;
    return SKY_OK;
}

/* Gather every file's tensors into c->all sorted by name; a name twice is an error. */
static sky_status ckpt_merge(sky_checkpoint *c, sky_err *err)
{
    size_t total = 0;
    for (int i = 0; i < c->n_files; i++) total += (size_t)c->files[i]->count; /* each < INT_MAX */
    if (total > INT_MAX) return sky_fail(err, "%s: %zu tensors is too many", c->path, total);
    c->all = malloc((total ? total : 1) * sizeof *c->all);
    if (c->all == NULL) return sky_fail(err, "%s: out of memory for %zu tensors", c->path, total);
    for (int i = 0; i < c->n_files; i++) {
        for (int j = 0; j < c->files[i]->count; j++) c->all[c->count++] = &c->files[i]->tensors[j];
    }
    qsort(c->all, total, sizeof *c->all, ptr_by_name);
    for (int i = 1; i < c->count; i++) {
        if (strcmp(c->all[i - 1]->name, c->all[i]->name) == 0) {
            return sky_fail(err, "%s: tensor '%s' is in both %s and %s", c->path, c->all[i]->name, c->all[i - 1]->file,
                            c->all[i]->file);
        }
    }
    return SKY_OK;
}

/* strcmp for qsort over an array of char *. */
static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Names in dir (not starting with '.') that are regular files (symlinks followed) and
 * end with suffix, sorted. *names is malloc'ed, each name too. */
static sky_status list_dir(const char *dir, const char *suffix, char ***names, int *n, sky_err *err)
{
    DIR *d = opendir(dir);
    if (d == NULL) return sky_fail(err, "%s: cannot list the directory: %s", dir, strerror(errno));
    char     **v = NULL;
    size_t     cap = 0, k = 0;
    sky_status st = SKY_OK;
    for (struct dirent *e; st == SKY_OK && (e = readdir(d)) != NULL;) {
        if (e->d_name[0] == '.' || !ends_with(e->d_name, suffix)) continue;
        char       *full = path_join(dir, e->d_name);
        struct stat sb;
        int         reg = full != NULL && stat(full, &sb) == 0 && S_ISREG(sb.st_mode);
        free(full);
        if (!reg) continue;
        if (k == cap) {
            size_t cap2 = cap ? cap * 2 : 16;
            char **v2 = cap2 < (size_t)INT_MAX ? realloc(v, cap2 * sizeof *v) : NULL;
            if (v2 == NULL) {
                st = sky_fail(err, "%s: out of memory listing the directory", dir);
                break;
            }
            v = v2;
            cap = cap2;
        }
        if ((v[k] = str_dup(e->d_name)) == NULL)
            st = sky_fail(err, "%s: out of memory", dir);
        else
            k++;
    }
    closedir(d);
    if (st == SKY_OK && k > 1) qsort(v, k, sizeof *v, str_ptr_cmp);
    *names = v;
    *n = (int)k;
    return st;
}

/* Free a list from list_dir. */
static void free_names(char **names, int n)
{
    for (int i = 0; i < n; i++) free(names[i]);
    free(names);
}

/* Read a whole small file (at most SKY_ST_MAX_HEADER bytes) into a malloc'ed buffer. */
static sky_status read_small_file(const char *path, char **buf, size_t *len, sky_err *err)
{
    *buf = NULL;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return sky_fail(err, "%s: cannot open: %s", path, strerror(errno));
    struct stat st;
    sky_status  s = SKY_OK;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        s = sky_fail(err, "%s: not a readable regular file", path);
    } else if ((unsigned long long)st.st_size > SKY_ST_MAX_HEADER) {
        s = sky_fail(err, "%s: %lld bytes exceeds the limit of %llu for an index file", path, (long long)st.st_size,
                     (ull)SKY_ST_MAX_HEADER);
    } else if ((*buf = malloc((size_t)st.st_size + 1)) == NULL) {
        s = sky_fail(err, "%s: out of memory", path);
    } else {
        size_t got = 0, want = (size_t)st.st_size;
        while (got < want) {
            ssize_t r = read(fd, *buf + got, want - got);
            if (r < 0 && errno == EINTR) continue;
            if (r <= 0) {
                s = sky_fail(err, "%s: read failed after %zu of %zu bytes", path, got, want);
                break;
            }
            got += (size_t)r;
        }
        *len = got;
    }
    close(fd);
    if (s != SKY_OK) {
        free(*buf);
        *buf = NULL;
    }
    return s;
}

/* One weight_map line: tensor name -> shard file name. */
typedef struct wm_entry {
    const char *name;
    const char *shard;
} wm_entry;

static int wm_by_shard(const void *a, const void *b)
{
    const wm_entry *x = a, *y = b;
    int             c = strcmp(x->shard, y->shard);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static int wm_by_name(const void *a, const void *b)
{
    return strcmp(((const wm_entry *)a)->name, ((const wm_entry *)b)->name);
}

/* 1 if s (len bytes) is a plain file name: non-empty, no NUL, '/', '\\' or "..". */
static int plain_file_name(const char *s, size_t len)
{
    return len > 0 && strlen(s) == len && strchr(s, '/') == NULL && strchr(s, '\\') == NULL && strstr(s, "..") == NULL;
}

/* Check the index against the shards it names (reference §5.1 "Sharded checkpoints"). */
static sky_status ckpt_check_index(sky_checkpoint *c, const char *ipath, wm_entry *wm, size_t n, const sky_json *total,
                                   sky_err *err)
{
    qsort(wm, n, sizeof *wm, wm_by_name);
    uint64_t sum = 0;
    for (int i = 0; i < c->count; i++) {
        const sky_st_tensor *t = c->all[i];
        wm_entry             key = {t->name, NULL};
        const wm_entry      *w = bsearch(&key, wm, n, sizeof *wm, wm_by_name);
        if (w == NULL) {
            return sky_fail(err, "%s: tensor '%s' in %s is not listed in the index", ipath, t->name, t->file);
        }
        if (strcmp(w->shard, base_name(t->file)) != 0) {
            return sky_fail(err, "%s: tensor '%s' is listed for shard '%s' but is in %s", ipath, t->name, w->shard,
                            t->file);
        }
        if (sum > UINT64_MAX - t->nbytes) return sky_fail(err, "%s: tensor bytes overflow 64 bits", ipath);
        sum += t->nbytes;
    }
    for (size_t i = 0; i < n; i++) {
        if (sky_checkpoint_find(c, wm[i].name) == NULL) {
            return sky_fail(err, "%s: tensor '%s' is listed for shard '%s' but no shard holds it", ipath, wm[i].name,
                            wm[i].shard);
        }
    }
    if (total != NULL && total->u64 != sum) {
        return sky_fail(err, "%s: metadata.total_size is %llu but the tensors hold %llu bytes", ipath, (ull)total->u64,
                        (ull)sum);
    }
    return SKY_OK;
}

/* Open a sharded checkpoint from its index file ipath; shards live in dir. */
static sky_status ckpt_open_index(sky_checkpoint *c, const char *dir, const char *ipath, sky_err *err)
{
    char         *text = NULL;
    size_t        len = 0;
    sky_json_doc *doc = NULL;
    wm_entry     *wm = NULL;
    sky_err       jerr;
    sky_status    st = SKY_ERR;
    if (read_small_file(ipath, &text, &len, err) != SKY_OK) return SKY_ERR;
    if (sky_json_parse(&doc, text, len, NULL, &jerr) != SKY_OK) {
        sky_fail(err, "%s: not valid JSON: %s", ipath, jerr.msg);
        goto done;
    }
    const sky_json *root = sky_json_root(doc);
    const sky_json *map = sky_json_get(root, "weight_map");
    const sky_json *meta = sky_json_get(root, "metadata");
    const sky_json *total = sky_json_get(meta, "total_size");
    if (map == NULL || map->type != SKY_JSON_OBJECT) {
        sky_fail(err, "%s: expected a JSON object with a \"weight_map\" object", ipath);
        goto done;
    }
    if (meta != NULL && meta->type != SKY_JSON_OBJECT) {
        sky_fail(err, "%s: \"metadata\" is a %s, expected an object", ipath, sky_json_type_name(meta->type));
        goto done;
    }
    if (total != NULL && !total->is_u64) {
        sky_fail(err, "%s: metadata.total_size must be a non-negative integer", ipath);
        goto done;
    }
    /* weight_map lines, checked, then grouped by shard */
    size_t n = map->count;
    if ((wm = malloc((n ? n : 1) * sizeof *wm)) == NULL || (c->files = calloc(n ? n : 1, sizeof *c->files)) == NULL) {
        sky_fail(err, "%s: out of memory", ipath);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const sky_json *v = map->items[i];
        if (v->type != SKY_JSON_STRING) {
            sky_fail(err, "%s: weight_map['%s'] is a %s, expected a shard file name", ipath, v->key,
                     sky_json_type_name(v->type));
            goto done;
        }
        if (v->key_len == 0 || strlen(v->key) != v->key_len) {
            sky_fail(err, "%s: weight_map has an empty tensor name or one containing NUL ('%s')", ipath, v->key);
            goto done;
        }
        if (!plain_file_name(v->str, v->len)) {
            sky_fail(err, "%s: weight_map['%s'] = '%s' is not a plain file name (no '/', '\\' or '..')", ipath, v->key,
                     v->str);
            goto done;
        }
        wm[i].name = v->key;
        wm[i].shard = v->str;
    }
    qsort(wm, n, sizeof *wm, wm_by_shard);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(wm[i].shard, wm[i - 1].shard) == 0) continue;
        char       *spath = path_join(dir, wm[i].shard);
        struct stat sb;
        if (spath == NULL) {
            sky_fail(err, "%s: out of memory", ipath);
            goto done;
        }
        if (stat(spath, &sb) != 0) {
            sky_fail(err, "%s: shard '%s' (listed for tensor '%s') does not exist: %s", ipath, wm[i].shard, wm[i].name,
                     spath);
            free(spath);
            goto done;
        }
        sky_status fs = ckpt_add_file(c, spath, err);
        free(spath);
        if (fs != SKY_OK) goto done;
    }
    if (ckpt_merge(c, err) == SKY_OK && ckpt_check_index(c, ipath, wm, n, total, err) == SKY_OK) st = SKY_OK;
done:
    free(wm);
    sky_json_free(doc);
    free(text);
    return st;
}

/* Open a directory: its one index, or else every *.safetensors file in it. */
static sky_status ckpt_open_dir(sky_checkpoint *c, sky_err *err)
{
    char     **idx = NULL, **st_names = NULL;
    int        n_idx = 0, n_st = 0;
    sky_status st = SKY_ERR;
    if (list_dir(c->path, ".safetensors.index.json", &idx, &n_idx, err) != SKY_OK ||
        list_dir(c->path, ".safetensors", &st_names, &n_st, err) != SKY_OK) {
        goto done;
    }
    if (n_idx > 1) {
        char   list[1024];
        size_t used = 0;
        for (int i = 0; i < n_idx && used < sizeof list; i++) {
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", idx[i]);
        }
        sky_fail(err, "%s: %d index files (%s); expected at most one; move the others away", c->path, n_idx, list);
    } else if (n_idx == 1) {
        char *ipath = path_join(c->path, idx[0]);
        if (ipath == NULL)
            sky_fail(err, "%s: out of memory", c->path);
        else
            st = ckpt_open_index(c, c->path, ipath, err);
        free(ipath);
    } else if (n_st == 0) {
        sky_fail(err, "%s: no *.safetensors files (and no *.safetensors.index.json) in this directory", c->path);
    } else if ((c->files = calloc((size_t)n_st, sizeof *c->files)) == NULL) {
        sky_fail(err, "%s: out of memory", c->path);
    } else {
        st = SKY_OK;
        for (int i = 0; i < n_st && st == SKY_OK; i++) {
            char *fpath = path_join(c->path, st_names[i]);
            st = fpath ? ckpt_add_file(c, fpath, err) : sky_fail(err, "%s: out of memory", c->path);
            free(fpath);
        }
        if (st == SKY_OK) st = ckpt_merge(c, err);
    }
done:
    free_names(idx, n_idx);
    free_names(st_names, n_st);
    return st;
}

sky_status sky_checkpoint_open(sky_checkpoint **out, const char *path, sky_err *err)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return sky_fail(err, "%s: cannot open: %s", path, strerror(errno));
    sky_checkpoint *c = calloc(1, sizeof *c);
    if (c == NULL || (c->path = str_dup(path)) == NULL) {
        free(c);
        return sky_fail(err, "%s: out of memory", path);
    }
    sky_status st;
    if (S_ISDIR(sb.st_mode)) {
        st = ckpt_open_dir(c, err);
    } else if (ends_with(path, ".pth")) {
        /* The original repos' VAE, T5 and CLIP files (pth.h: zip + restricted unpickler). */
        st = sky_pth_open(&c->pth, path, err);
        if (st == SKY_OK) {
            c->count = sky_pth_count(c->pth);
            c->all = calloc((size_t)(c->count ? c->count : 1), sizeof *c->all);
            if (c->all == NULL) st = sky_fail(err, "%s: out of memory", path);
            for (int i = 0; c->all && i < c->count; i++) c->all[i] = sky_pth_at(c->pth, i); /* sorted by name */
        }
    } else if (ends_with(path, ".index.json")) {
        char *dir = str_dup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash != NULL) slash[slash == dir] = '\0'; /* "/x.index.json" -> "/" */
        st = dir ? ckpt_open_index(c, slash ? dir : ".", path, err) : sky_fail(err, "%s: out of memory", path);
        free(dir);
    } else if ((c->files = calloc(1, sizeof *c->files)) == NULL) {
        st = sky_fail(err, "%s: out of memory", path);
    } else {
        st = ckpt_add_file(c, path, err);
        if (st == SKY_OK) st = ckpt_merge(c, err);
    }
    if (st != SKY_OK) {
        sky_checkpoint_close(c);
        return SKY_ERR;
    }
    *out = c;
    return SKY_OK;
}

int sky_checkpoint_count(const sky_checkpoint *c) { return c->count; }

const sky_st_tensor *sky_checkpoint_at(const sky_checkpoint *c, int i)
{
    SKY_ASSERT(i >= 0 && i < c->count);
    return c->all[i];
}

/* Compare a name with a tensor pointer, for bsearch. */
static int name_vs_ptr(const void *key, const void *elem)
{
    return strcmp(key, (*(const sky_st_tensor *const *)elem)->name);
}

const sky_st_tensor *sky_checkpoint_find(const sky_checkpoint *c, const char *name)
{
    const sky_st_tensor *const *p = bsearch(name, c->all, (size_t)c->count, sizeof *c->all, name_vs_ptr);
    return p ? *p : NULL;
}

const char *sky_checkpoint_path(const sky_checkpoint *c) { return c->path; }

int sky_checkpoint_file_count(const sky_checkpoint *c) { return c->n_files; }

const sky_safetensors *sky_checkpoint_file(const sky_checkpoint *c, int i)
{
    SKY_ASSERT(i >= 0 && i < c->n_files);
    return c->files[i];
}

void sky_checkpoint_close(sky_checkpoint *c)
{
    if (c == NULL) return;
    for (int i = 0; i < c->n_files; i++) sky_safetensors_close(c->files[i]);
    sky_pth_close(c->pth);
    free(c->files);
    free(c->all);
    free(c->path);
    free(c);
}

/* ---- writer ------------------------------------------------------------------------ */

/* Write s as a JSON string literal (UTF-8 passes through; it was checked before). */
static void put_json_string(FILE *m, const char *s)
{
    fputc('"', m);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(m, "\\%c", c);
        else if (c == '\n')
            fputs("\\n", m);
        else if (c == '\r')
            fputs("\\r", m);
        else if (c == '\t')
            fputs("\\t", m);
        else if (c < 0x20)
            fprintf(m, "\\u%04x", c);
        else
            fputc(c, m);
    }
    fputc('"', m);
}

/* Check the entries and metadata and compute each tensor's byte size. */
static sky_status write_check(const char *path, const sky_st_entry *t, int n, const char *const *meta, uint64_t *nbytes,
                              sky_err *err)
{
    for (int i = 0; i < n; i++) {
        const sky_st_entry *e = &t[i];
        const char         *nm = e->name ? e->name : "";
        if (nm[0] == '\0') return sky_fail(err, "%s: entry %d has an empty name", path, i);
        if (sky_utf8_check(nm, strlen(nm)) != strlen(nm)) {
            return sky_fail(err, "%s: tensor name of entry %d is not valid UTF-8", path, i);
        }
        if (strcmp(nm, "__metadata__") == 0) return sky_fail(err, "%s: '__metadata__' is not a tensor name", path);
        int bitsz = sky_dtype_bits(e->dtype);
        if (bitsz == 0) return sky_fail(err, "%s: tensor '%s': invalid dtype %d", path, nm, (int)e->dtype);
        if (e->ndim < 0 || e->ndim > SKY_MAX_DIMS) {
            return sky_fail(err, "%s: tensor '%s': rank %d outside [0, %d]", path, nm, e->ndim, SKY_MAX_DIMS);
        }
        uint64_t nelem = 1;
        for (int d = 0; d < e->ndim; d++) {
            uint64_t dim = (uint64_t)e->shape[d];
            if (e->shape[d] < 0) return sky_fail(err, "%s: tensor '%s': shape[%d] is negative", path, nm, d);
            if (dim != 0 && nelem > UINT64_MAX / dim) {
                return sky_fail(err, "%s: tensor '%s': element count overflows 64 bits", path, nm);
            }
            nelem *= dim;
        }
        if (nelem > UINT64_MAX / (uint64_t)bitsz || (nelem * (uint64_t)bitsz) % 8 != 0) {
            return sky_fail(err, "%s: tensor '%s': size overflows or is not a whole number of bytes", path, nm);
        }
        nbytes[i] = nelem * (uint64_t)bitsz / 8;
        if (nbytes[i] > 0 && e->data == NULL) return sky_fail(err, "%s: tensor '%s': data is NULL", path, nm);
    }
    for (int i = 0; meta != NULL && meta[i] != NULL; i += 2) {
        if (meta[i + 1] == NULL) return sky_fail(err, "%s: metadata key '%s' has no value", path, meta[i]);
        for (int k = i; k <= i + 1; k++) {
            if (sky_utf8_check(meta[k], strlen(meta[k])) != strlen(meta[k])) {
                return sky_fail(err, "%s: metadata %s '%s' is not valid UTF-8", path, k == i ? "key" : "value",
                                meta[i]);
            }
        }
        for (int j = 0; j < i; j += 2) { /* metadata lists are short */
            if (strcmp(meta[j], meta[i]) == 0) return sky_fail(err, "%s: metadata key '%s' given twice", path, meta[i]);
        }
    }
    /* unique names: sort a copy, compare neighbours */
    const char **names = malloc((size_t)(n ? n : 1) * sizeof *names);
    if (names == NULL) return sky_fail(err, "%s: out of memory", path);
    for (int i = 0; i < n; i++) names[i] = t[i].name;
    qsort(names, (size_t)n, sizeof *names, str_ptr_cmp);
    for (int i = 1; i < n; i++) {
        if (strcmp(names[i - 1], names[i]) == 0) {
            sky_status st = sky_fail(err, "%s: tensor name '%s' given twice", path, names[i]);
            free(names);
            return st;
        }
    }
    free(names);
    return SKY_OK;
}

/* Build the header JSON into *hdr (malloc'ed, *len bytes), padded with spaces to a
 * multiple of 8 bytes so that the data starts 8-aligned. */
static sky_status write_header(char **hdr, size_t *len, const char *path, const sky_st_entry *t, int n,
                               const char *const *meta, const uint64_t *nbytes, sky_err *err)
{
    FILE *m = open_memstream(hdr, len);
    if (m == NULL) return sky_fail(err, "%s: out of memory building the header", path);
    uint64_t off = 0;
    fputc('{', m);
    if (meta != NULL && meta[0] != NULL) {
        fputs("\"__metadata__\":{", m);
        for (int i = 0; meta[i] != NULL; i += 2) {
            fputs(i > 0 ? "," : "", m);
            put_json_string(m, meta[i]);
            fputc(':', m);
            put_json_string(m, meta[i + 1]);
        }
        fputs(n > 0 ? "}," : "}", m);
    }
    int overflow = 0;
    for (int i = 0; i < n && !overflow; i++) {
        overflow = nbytes[i] > UINT64_MAX - off;
        fputs(i ? "," : "", m);
        put_json_string(m, t[i].name);
        fprintf(m, ":{\"dtype\":\"%s\",\"shape\":[", sky_dtype_name(t[i].dtype));
        for (int d = 0; d < t[i].ndim; d++) fprintf(m, "%s%lld", d ? "," : "", (long long)t[i].shape[d]);
        fprintf(m, "],\"data_offsets\":[%llu,%llu]}", (ull)off, (ull)(off + nbytes[i]));
        off += nbytes[i];
    }
    fputc('}', m);
    for (long pos = ftell(m); pos >= 0 && pos % 8 != 0; pos++) fputc(' ', m);
    int bad = ferror(m);
    if (fclose(m) != 0 || bad || overflow || *len > SKY_ST_MAX_HEADER) {
        free(*hdr);
        *hdr = NULL;
        if (overflow) return sky_fail(err, "%s: total tensor size overflows 64 bits", path);
        if (bad) return sky_fail(err, "%s: out of memory building the header", path);
        return sky_fail(err, "%s: header of %zu bytes exceeds the limit of %llu", path, *len, (ull)SKY_ST_MAX_HEADER);
    }
    return SKY_OK;
}

/* write() all n bytes, retrying on EINTR and short writes. */
static int write_all(int fd, const void *p, size_t n)
{
    const char *c = p;
    while (n > 0) {
        ssize_t w = write(fd, c, n > ((size_t)1 << 30) ? ((size_t)1 << 30) : n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) return 0;
        c += w;
        n -= (size_t)w;
    }
    return 1;
}

sky_status sky_safetensors_write(const char *path, const sky_st_entry *t, int n, const char *const *meta, sky_err *err)
{
    if (n < 0) return sky_fail(err, "%s: negative tensor count %d", path, n);
    uint64_t  *nbytes = malloc((size_t)(n ? n : 1) * sizeof *nbytes);
    char      *hdr = NULL;
    size_t     hdr_len = 0;
    char      *tmp = malloc(strlen(path) + sizeof ".tmp.XXXXXX");
    int        fd;
    sky_status st = SKY_ERR;
    if (nbytes == NULL || tmp == NULL) {
        sky_fail(err, "%s: out of memory", path);
        goto done;
    }
    if (write_check(path, t, n, meta, nbytes, err) != SKY_OK ||
        write_header(&hdr, &hdr_len, path, t, n, meta, nbytes, err) != SKY_OK) {
        goto done;
    }
    /* temp file next to path, so rename() is atomic and never crosses file systems */
    strcpy(tmp, path);
    strcat(tmp, ".tmp.XXXXXX");
    fd = mkstemp(tmp);
    if (fd < 0) {
        sky_fail(err, "%s: cannot create a temporary file in its directory: %s", path, strerror(errno));
        goto done;
    }
    unsigned char len8[8];
    for (int i = 0; i < 8; i++) len8[i] = (unsigned char)((uint64_t)hdr_len >> (8 * i));
    int ok = fchmod(fd, 0644) == 0 && write_all(fd, len8, 8) && write_all(fd, hdr, hdr_len);
    for (int i = 0; ok && i < n; i++) ok = write_all(fd, t[i].data, (size_t)nbytes[i]);
    ok = ok && fsync(fd) == 0;
    int e = errno;
    if (close(fd) != 0 && ok) {
        ok = 0;
        e = errno;
    }
    if (!ok)
        sky_fail(err, "%s: writing %s failed: %s", path, tmp, strerror(e));
    else if (rename(tmp, path) != 0)
        sky_fail(err, "%s: renaming %s onto it failed: %s", path, tmp, strerror(errno));
    else
        st = SKY_OK;
    if (st != SKY_OK) unlink(tmp);
done:
    free(tmp);
    free(hdr);
    free(nbytes);
    return st;
}
