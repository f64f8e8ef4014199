/* runtime/formats/safetensors_write.c — write a .safetensors file through a temporary file and rename()
 * (safetensors_write.h).
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mkstemp, fsync, fchmod, open_memstream */
#endif

#include "formats/safetensors_write.h"

#include "core/dtype.h"
#include "core/fs.h"
#include "core/json.h"
#include "formats/safetensors.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

typedef unsigned long long ull; /* for printing u64 values with %llu */

/* strcmp for qsort over an array of char *. */
static int str_ptr_cmp(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
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
            sky_json_write_str(m, meta[i]);
            fputc(':', m);
            sky_json_write_str(m, meta[i + 1]);
        }
        fputs(n > 0 ? "}," : "}", m);
    }
    int overflow = 0;
    for (int i = 0; i < n && !overflow; i++) {
        overflow = nbytes[i] > UINT64_MAX - off;
        fputs(i ? "," : "", m);
        sky_json_write_str(m, t[i].name);
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
    char      *tmp = sky_fs_temp_template(path); /* ".<base>.sky-<pid>.XXXXXX" beside path */
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
