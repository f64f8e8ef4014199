/* runtime/formats/pth.c — .pth (torch.save zip) state dicts: container checks, the state dict found in
 * what the restricted unpickler built (pickle.h), and tensor views checked against their storages.
 *
 * Contract in pth.h; format in reference vae-text-image-files.md §5.2.
 */
#include "formats/pth.h"

#include "core/dtype.h"
#include "core/fs.h"
#include "core/str.h"
#include "formats/pickle.h"
#include "formats/zip.h"

#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long ull; /* for printing u64 values with %llu */
typedef long long          ll;

struct sky_pth {
    char          *path;
    void          *map; /* the whole file (NULL for _open_mem) */
    size_t         map_size;
    sky_zip       *zip;
    sky_st_tensor *tensors; /* sorted by name */
    int            count;
    char          *names;   /* every tensor name, NUL-terminated */
    char          *wrapper; /* key of the wrapping dict, or NULL */
};

/* ---- from values to tensors ------------------------------------------------------- */

/* Check the view (name, t) against its storage and fill *out (reference §5.2, "For each
 * resulting tensor"). name is NUL-terminated. */
static sky_status make_tensor(const char *path, sky_err *err, const char *name, const sky_pickle_val *t,
                              sky_st_tensor *out, const unsigned char *base)
{
    const sky_pickle_val *size = t->u.ten.size, *stride = t->u.ten.stride;
    const sky_zip_entry  *rec = t->u.ten.storage->u.sto.rec;
    size_t                ndim = size->u.seq.n;
    if (ndim > SKY_MAX_DIMS) {
        return sky_fail(err, "%s: tensor '%.200s' has %zu dimensions, more than %d", path, name, ndim, SKY_MAX_DIMS);
    }
    if (stride->u.seq.n != ndim) {
        return sky_fail(err, "%s: tensor '%.200s' has %zu sizes but %zu strides", path, name, ndim, stride->u.seq.n);
    }
    int64_t sz[SKY_MAX_DIMS], st[SKY_MAX_DIMS];
    char    sbuf[160];
    size_t  used = 0;
    for (size_t i = 0; i < ndim; i++) {
        sz[i] = size->u.seq.v[i]->u.i;
        st[i] = stride->u.seq.v[i]->u.i;
        if (used < sizeof sbuf) {
            used += (size_t)snprintf(sbuf + used, sizeof sbuf - used, "%s%lld", i ? ", " : "", (ll)sz[i]);
        }
    }
    if (ndim == 0) sbuf[0] = '\0';
    for (size_t i = 0; i < ndim; i++) {
        if (sz[i] < 0) {
            return sky_fail(err, "%s: tensor '%.200s' has a negative size %lld in dimension %zu (size (%s))", path,
                            name, (ll)sz[i], i, sbuf);
        }
        if (st[i] < 0) {
            return sky_fail(err, "%s: tensor '%.200s' has a negative stride %lld in dimension %zu", path, name,
                            (ll)st[i], i);
        }
    }
    int64_t off = t->u.ten.offset->u.i;
    if (off < 0) {
        return sky_fail(err, "%s: tensor '%.200s' has a negative storage offset %lld", path, name, (ll)off);
    }
    /* element count and byte size, overflow-checked */
    sky_dtype dt = t->u.ten.dtype;
    uint64_t  isz = (uint64_t)sky_dtype_bits(dt) / 8, numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (sz[i] != 0 && numel > (uint64_t)INT64_MAX / (uint64_t)sz[i]) {
            return sky_fail(err, "%s: tensor '%.200s' of size (%s): element count overflows 64 bits", path, name, sbuf);
        }
        numel *= (uint64_t)sz[i];
    }
    if (numel > UINT64_MAX / isz) {
        return sky_fail(err, "%s: tensor '%.200s' of size (%s) x %s: byte size overflows 64 bits", path, name, sbuf,
                        sky_dtype_name(dt));
    }
    uint64_t nbytes = numel * isz;
    /* contiguity by torch's rule: dims of size 1 and empty tensors may have any stride */
    if (numel > 0) {
        uint64_t want = 1;
        for (size_t i = ndim; i-- > 0;) {
            if (sz[i] != 1 && (uint64_t)st[i] != want) {
                char   tb[160];
                size_t u = 0;
                for (size_t j = 0; j < ndim && u < sizeof tb; j++) {
                    u += (size_t)snprintf(tb + u, sizeof tb - u, "%s%lld", j ? ", " : "", (ll)st[j]);
                }
                return sky_fail(err,
                                "%s: tensor '%.200s' of size (%s) has strides (%s), which are not "
                                "contiguous (row-major); only contiguous tensors are supported: save "
                                "tensor.contiguous()",
                                path, name, sbuf, tb);
            }
            want *= (uint64_t)sz[i]; /* <= numel: no overflow */
        }
    }
    /* the view lies inside its storage record: [off*isz, off*isz + nbytes) */
    if ((uint64_t)off > rec->size / isz || nbytes > rec->size - (uint64_t)off * isz) {
        return sky_fail(err,
                        "%s: tensor '%.200s' of size (%s) at storage offset %lld needs %llu bytes of "
                        "%s from byte %llu, beyond its storage '%s' of %llu bytes",
                        path, name, sbuf, (ll)off, (ull)nbytes, sky_dtype_name(dt), (ull)off * (ull)isz, rec->name,
                        (ull)rec->size);
    }
    if (nbytes > SIZE_MAX) return sky_fail(err, "%s: tensor '%.200s' is too large for this machine", path, name);
    out->name = name;
    out->dtype = dt;
    out->ndim = (int)ndim;
    for (size_t i = 0; i < SKY_MAX_DIMS; i++) out->shape[i] = i < ndim ? sz[i] : 0;
    out->data = base + rec->data_offset + (uint64_t)off * isz;
    out->nbytes = (size_t)nbytes;
    out->file = path;
    return SKY_OK;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const sky_st_tensor *)a)->name, ((const sky_st_tensor *)b)->name);
}

/* Number of TENSOR values in dict d. */
static size_t count_tensors(const sky_pickle_val *d)
{
    size_t k = 0;
    for (size_t i = 1; i < d->u.seq.n; i += 2) k += d->u.seq.v[i]->kind == SKY_PICKLE_TENSOR;
    return k;
}

/* Find the state dict in the pickle's result: the result itself, or the one value of
 * it that is a dict of tensors (reference §5.2, "Object shape"). */
static sky_status find_state_dict(sky_pth *f, const char *path, sky_err *err, const sky_pickle_val *root,
                                  const sky_pickle_val **sd)
{
    char a[160], b[160];
    if (root->kind != SKY_PICKLE_DICT) {
        return sky_fail(err,
                        "%s: data.pkl holds a %s, not a state dict (a dict of name -> tensor); "
                        "save model.state_dict() rather than the model",
                        path, sky_pickle_kind_name(root->kind));
    }
    if (count_tensors(root) > 0 || root->u.seq.n == 0) {
        *sd = root;
        return SKY_OK;
    }
    const sky_pickle_val *key = NULL;
    *sd = NULL;
    for (size_t i = 0; i + 1 < root->u.seq.n; i += 2) {
        const sky_pickle_val *k = root->u.seq.v[i], *v = root->u.seq.v[i + 1];
        if (v->kind != SKY_PICKLE_DICT || count_tensors(v) == 0) continue;
        if (*sd != NULL) {
            return sky_fail(
                err,
                "%s: data.pkl holds several dicts of tensors ('%s' and '%s'); only one "
                "state dict, possibly wrapped once, is supported",
                path, key->kind == SKY_PICKLE_STR ? sky_pickle_shown(a, sizeof a, key->u.str.s, key->u.str.len) : "?",
                k->kind == SKY_PICKLE_STR ? sky_pickle_shown(b, sizeof b, k->u.str.s, k->u.str.len) : "?");
        }
        *sd = v;
        key = k;
    }
    if (*sd == NULL) {
        return sky_fail(err,
                        "%s: data.pkl holds a dict without tensors, neither a state dict nor one "
                        "wrapping a state dict",
                        path);
    }
    if (key->kind != SKY_PICKLE_STR) {
        return sky_fail(err, "%s: the state dict is wrapped under a %s key, expected a string", path,
                        sky_pickle_kind_name(key->kind));
    }
    f->wrapper = malloc(key->u.str.len + 1);
    if (f->wrapper == NULL) return sky_fail(err, "%s: out of memory", path);
    memcpy(f->wrapper, key->u.str.s, key->u.str.len);
    f->wrapper[key->u.str.len] = '\0';
    return SKY_OK;
}

/* Turn the state dict into f->tensors: every key a string, every value a tensor. */
static sky_status collect(sky_pth *f, const char *path, sky_err *err, const sky_pickle_val *sd,
                          const unsigned char *base)
{
    char   a[160];
    size_t n = sd->u.seq.n / 2, name_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const sky_pickle_val *k = sd->u.seq.v[2 * i], *v = sd->u.seq.v[2 * i + 1];
        if (k->kind != SKY_PICKLE_STR) {
            return sky_fail(err, "%s: state dict key %zu is a %s, expected a string", path, i,
                            sky_pickle_kind_name(k->kind));
        }
        const char *s = k->u.str.s;
        size_t      len = k->u.str.len;
        if (len == 0 || memchr(s, '\0', len) != NULL) {
            return sky_fail(err, "%s: state dict key %zu ('%s') is empty or contains a NUL byte", path, i,
                            sky_pickle_shown(a, sizeof a, s, len));
        }
        if (v->kind != SKY_PICKLE_TENSOR) {
            return sky_fail(err,
                            "%s: state dict entry '%s' is a %s, not a tensor; only dicts of tensors "
                            "are supported",
                            path, sky_pickle_shown(a, sizeof a, s, len), sky_pickle_kind_name(v->kind));
        }
        name_bytes += len + 1; /* bounded by the pickle's size */
    }
    if (n > INT_MAX) return sky_fail(err, "%s: %zu tensors is too many", path, n);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->names = malloc(name_bytes ? name_bytes : 1);
    if (f->tensors == NULL || f->names == NULL) return sky_fail(err, "%s: out of memory for %zu tensors", path, n);
    char *name = f->names;
    for (size_t i = 0; i < n; i++) {
        const sky_pickle_val *k = sd->u.seq.v[2 * i], *v = sd->u.seq.v[2 * i + 1];
        memcpy(name, k->u.str.s, k->u.str.len);
        name[k->u.str.len] = '\0';
        if (make_tensor(path, err, name, v, &f->tensors[i], base) != SKY_OK) return SKY_ERR;
        name += k->u.str.len + 1;
        f->count++;
    }
    qsort(f->tensors, n, sizeof *f->tensors, by_name);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            return sky_fail(err, "%s: duplicate tensor name '%.200s'", path, f->tensors[i].name);
        }
    }
    return SKY_OK;
}

/* ---- the archive ------------------------------------------------------------------ */

/* The record "<prefix>/<rest>", or NULL. */
static const sky_zip_entry *find_rec(const sky_zip *z, const char *prefix, size_t plen, const char *rest, sky_err *err,
                                     int *oom)
{
    size_t r = strlen(rest);
    char  *name = malloc(plen + r + 1);
    *oom = name == NULL;
    if (name == NULL) {
        sky_fail(err, "out of memory");
        return NULL;
    }
    memcpy(name, prefix, plen);
    memcpy(name + plen, rest, r + 1);
    const sky_zip_entry *e = sky_zip_find(z, name);
    free(name);
    return e;
}

/* Archive-level checks (reference §5.2, records table), then run data.pkl. */
static sky_status parse(sky_pth *f, const unsigned char *buf, size_t size, sky_err *err)
{
    const char *path = f->path;
    if (size >= 2 && buf[0] == 0x80) { /* PROTO: a pickle, not a zip */
        return sky_fail(err,
                        "%s: legacy torch.save format (a raw pickle, written by PyTorch < 1.6 or with "
                        "_use_new_zipfile_serialization=False); load and re-save it with a current torch.save",
                        path);
    }
    if (sky_zip_open(&f->zip, buf, size, path, err) != SKY_OK) return SKY_ERR;
    const sky_zip *z = f->zip;

    /* one folder holds every record */
    const char *first = sky_zip_at(z, 0)->name, *slash = strchr(first, '/');
    if (slash == NULL) {
        return sky_fail(err,
                        "%s: entry '%s' is not inside a folder; a torch.save archive keeps every record "
                        "under one '<name>/' folder",
                        path, first);
    }
    size_t plen = (size_t)(slash - first) + 1; /* with the '/' */
    for (int i = 0; i < sky_zip_count(z); i++) {
        const char *nm = sky_zip_at(z, i)->name;
        if (strncmp(nm, first, plen) != 0) {
            return sky_fail(err,
                            "%s: entry '%s' is outside the archive folder '%.*s'; a torch.save archive "
                            "keeps every record under one folder",
                            path, nm, (int)plen, first);
        }
        if (strcmp(nm + plen, "constants.pkl") == 0 || strncmp(nm + plen, "code/", 5) == 0) {
            return sky_fail(err,
                            "%s: is a TorchScript archive (has '%s'), not a torch.save state dict; save "
                            "the module's state_dict() with torch.save instead",
                            path, nm);
        }
    }
    int                  oom;
    const sky_zip_entry *bo = find_rec(z, first, plen, "byteorder", err, &oom);
    if (oom) return sky_fail(err, "%s: out of memory", path);
    if (bo != NULL) {
        const char *s = (const char *)sky_zip_data(z, bo);
        if (bo->size == 3 && memcmp(s, "big", 3) == 0) {
            return sky_fail(err,
                            "%s: tensors are stored big-endian (record '%s' says \"big\"); only "
                            "little-endian files are supported",
                            path, bo->name);
        }
        if (bo->size != 6 || memcmp(s, "little", 6) != 0) {
            char a[160];
            return sky_fail(err, "%s: record '%s' holds '%s', expected \"little\"", path, bo->name,
                            sky_pickle_shown(a, sizeof a, s, (size_t)bo->size));
        }
    }
    const sky_zip_entry *pkl = find_rec(z, first, plen, "data.pkl", err, &oom);
    if (oom) return sky_fail(err, "%s: out of memory", path);
    if (pkl == NULL) {
        return sky_fail(err, "%s: no record '%.*sdata.pkl'; not a torch.save file", path, (int)plen, first);
    }
    if (pkl->size > SKY_PTH_MAX_PICKLE) {
        return sky_fail(err, "%s: record '%s' of %llu bytes exceeds the limit of %zu bytes", path, pkl->name,
                        (ull)pkl->size, SKY_PTH_MAX_PICKLE);
    }
    const unsigned char *p = sky_zip_data(z, pkl);
#ifndef FUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION /* let fuzzers mutate the pickle */
    uint32_t crc = sky_zip_crc32(p, (size_t)pkl->size);
    if (crc != pkl->crc32) {
        return sky_fail(err,
                        "%s: record '%s' fails its CRC-32 check (%08x, expected %08x): the file is "
                        "corrupt",
                        path, pkl->name, (unsigned)crc, (unsigned)pkl->crc32);
    }
#endif

    sky_pickle           *m = NULL;
    const sky_pickle_val *root = NULL, *sd = NULL;
    sky_status            st = sky_pickle_run(&m, &root, p, (size_t)pkl->size, z, first, plen, path, err);
    if (st == SKY_OK) st = find_state_dict(f, path, err, root, &sd);
    if (st == SKY_OK) st = collect(f, path, err, sd, buf);
    sky_pickle_free(m);
    return st;
}

/* ---- public ---------------------------------------------------------------------- */

/* Allocate a handle holding a copy of path. */
static sky_pth *new_pth(const char *path, sky_err *err)
{
    sky_pth *f = calloc(1, sizeof *f);
    if (f == NULL || (f->path = sky_str_dup(path)) == NULL) {
        free(f);
        sky_fail(err, "%s: out of memory", path);
        return NULL;
    }
    return f;
}

sky_status sky_pth_open_mem(sky_pth **out, const void *buf, size_t size, const char *name, sky_err *err)
{
    *out = NULL;
    sky_pth *f = new_pth(name, err);
    if (f == NULL) return SKY_ERR;
    if (parse(f, buf, size, err) != SKY_OK) {
        sky_pth_close(f);
        return SKY_ERR;
    }
    *out = f;
    return SKY_OK;
}

sky_status sky_pth_open(sky_pth **out, const char *path, sky_err *err)
{
    *out = NULL;
    sky_pth *f = new_pth(path, err);
    if (f == NULL) return SKY_ERR;
    sky_status st = sky_fs_map(path, ".pth file", &f->map, &f->map_size, err);
    if (st == SKY_OK && f->map_size == 0) st = sky_fail(err, "%s: file is empty", path);
    if (st == SKY_OK) st = parse(f, f->map, f->map_size, err);
    if (st != SKY_OK) {
        sky_pth_close(f);
        return SKY_ERR;
    }
    *out = f;
    return SKY_OK;
}

int sky_pth_count(const sky_pth *f) { return f->count; }

const sky_st_tensor *sky_pth_at(const sky_pth *f, int i)
{
    SKY_ASSERT(i >= 0 && i < f->count);
    return &f->tensors[i];
}

const sky_st_tensor *sky_pth_find(const sky_pth *f, const char *name)
{
    sky_st_tensor key;
    key.name = name;
    return bsearch(&key, f->tensors, (size_t)f->count, sizeof *f->tensors, by_name);
}

const char *sky_pth_wrapper(const sky_pth *f) { return f->wrapper; }

const char *sky_pth_path(const sky_pth *f) { return f->path; }

void sky_pth_close(sky_pth *f)
{
    if (f == NULL) return;
    sky_fs_unmap(f->map, f->map_size);
    sky_zip_close(f->zip);
    free(f->tensors);
    free(f->names);
    free(f->wrapper);
    free(f->path);
    free(f);
}
