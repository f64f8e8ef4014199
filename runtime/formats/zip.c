/* runtime/formats/zip.c — index of a ZIP archive of stored entries (contract in zip.h).
 *
 * Record layouts are APPNOTE.TXT's (PKWARE 6.3.x) as summarised in reference
 * vae-text-image-files.md §5.2. All multi-byte fields are little-endian and read byte by
 * byte, so the buffer needs no alignment. Every offset from the file is a u64 checked
 * against the buffer size with subtraction (never `a + b > size`, which can wrap).
 */
#include "formats/zip.h"

#include "core/str.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

typedef unsigned long long ull; /* for printing u64 values with %llu */

enum {
    SIG_LOCAL = 0x04034b50,     /* local file header */
    SIG_CENTRAL = 0x02014b50,   /* central directory file header */
    SIG_EOCD = 0x06054b50,      /* end of central directory */
    SIG_EOCD64 = 0x06064b50,    /* ZIP64 end of central directory */
    SIG_LOCATOR64 = 0x07064b50, /* ZIP64 end of central directory locator */
    LOCAL_SIZE = 30,            /* fixed parts of the records, in bytes */
    CENTRAL_SIZE = 46,
    EOCD_SIZE = 22,
    EOCD64_SIZE = 56,
    LOCATOR_SIZE = 20,
    FLAG_ENCRYPTED = 1u << 0,
    FLAG_DATA_DESCRIPTOR = 1u << 3,
    FLAG_STRONG_ENCRYPTED = 1u << 6,
    EXTRA_ZIP64 = 0x0001
};

struct sky_zip {
    char                *path;
    const unsigned char *buf;
    size_t               size;
    sky_zip_entry       *entries; /* sorted by name */
    int                  count;
    char                *names; /* every entry name, NUL-terminated */
};

/* ---- helpers ------------------------------------------------------------------- */

static uint16_t le16(const unsigned char *p) { return (uint16_t)(p[0] | p[1] << 8); }
static uint32_t le32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t le64(const unsigned char *p) { return (uint64_t)le32(p) | (uint64_t)le32(p + 4) << 32; }

/* 1 if [off, off + len) lies inside [0, limit). */
static int in_range(uint64_t off, uint64_t len, uint64_t limit) { return off <= limit && len <= limit - off; }

/* Readable name of a compression method, for the refusal message. */
static const char *method_name(unsigned m)
{
    switch (m) {
    case 1: return "shrink";
    case 6: return "implode";
    case 8: return "deflate";
    case 9: return "deflate64";
    case 12: return "bzip2";
    case 14: return "lzma";
    case 93: return "zstd";
    case 95: return "xz";
    default: return "unknown";
    }
}

/* Reason a name is unsafe, or NULL when it is fine (reference §5.2 step 4). */
static const char *bad_name(const char *s, size_t n)
{
    if (n == 0) return "is empty";
    if (memchr(s, '\0', n) != NULL) return "contains a NUL byte";
    if (memchr(s, '\\', n) != NULL) return "contains a backslash";
    if (s[0] == '/') return "is an absolute path";
    for (size_t i = 0; i < n;) { /* each '/'-separated component */
        size_t j = i;
        while (j < n && s[j] != '/') j++;
        if (j - i == 2 && s[i] == '.' && s[i + 1] == '.') return "has a '..' component";
        i = j + 1;
    }
    return NULL;
}

/* Copy a name for a message: at most 200 bytes, non-printable bytes as '?'. */
static const char *printable(char *out, size_t cap, const unsigned char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 1 < cap && k < 200; i++)
        out[k++] = (s[i] >= 0x20 && s[i] < 0x7f) ? (char)s[i] : '?';
    out[k] = '\0';
    return out;
}

/* ---- end records --------------------------------------------------------------- */

/* Where the central directory is, as the end records say. */
typedef struct cdir {
    uint64_t count, size, offset;
    uint64_t end; /* where the end records begin */
} cdir;

/* Find the EOCD by scanning back from the end: the comment length must reach exactly
 * to the end of the buffer, so a signature inside a comment or data does not match. */
static sky_status find_eocd(const sky_zip *z, size_t *pos, sky_err *err)
{
    size_t last = z->size - EOCD_SIZE;
    size_t first = last > 65535 ? last - 65535 : 0;
    for (size_t p = last + 1; p-- > first;) {
        const unsigned char *r = z->buf + p;
        if (le32(r) == SIG_EOCD && (size_t)le16(r + 20) == z->size - p - EOCD_SIZE) {
            *pos = p;
            return SKY_OK;
        }
    }
    return sky_fail(err,
                    "%s: no end of central directory record in the last %zu bytes "
                    "(is the file truncated, or not a ZIP archive?)",
                    z->path, z->size - first);
}

/* Read the ZIP64 locator and record, and check they agree with the EOCD. */
static sky_status read_zip64(const sky_zip *z, size_t eocd, cdir *cd, sky_err *err)
{
    const unsigned char *loc = z->buf + eocd - LOCATOR_SIZE;
    uint32_t             disk = le32(loc + 4), disks = le32(loc + 16);
    uint64_t             off = le64(loc + 8);
    uint64_t             limit = eocd - LOCATOR_SIZE; /* the record must end before the locator */
    if (disk != 0 || disks > 1) {
        return sky_fail(err,
                        "%s: ZIP64 locator names disk %u of %u; multi-disk archives are not "
                        "supported",
                        z->path, (unsigned)disk, (unsigned)disks);
    }
    if (!in_range(off, EOCD64_SIZE, limit)) {
        return sky_fail(err,
                        "%s: ZIP64 end of central directory record at offset %llu lies outside "
                        "the file (it must end before the locator at %llu)",
                        z->path, (ull)off, (ull)limit);
    }
    const unsigned char *r = z->buf + off;
    if (le32(r) != SIG_EOCD64) {
        return sky_fail(err, "%s: no ZIP64 end of central directory record at offset %llu (bad signature)", z->path,
                        (ull)off);
    }
    uint64_t rsize = le64(r + 4); /* bytes after this field */
    if (rsize < EOCD64_SIZE - 12 || !in_range(off + 12, rsize, limit)) {
        return sky_fail(err,
                        "%s: ZIP64 end of central directory record at offset %llu claims %llu bytes, "
                        "which do not fit before the locator",
                        z->path, (ull)off, (ull)rsize);
    }
    if (le32(r + 16) != 0 || le32(r + 20) != 0) {
        return sky_fail(err, "%s: ZIP64 end record names disk %u / %u; multi-disk archives are not supported", z->path,
                        (unsigned)le32(r + 16), (unsigned)le32(r + 20));
    }
    uint64_t on_disk = le64(r + 24), count = le64(r + 32), size = le64(r + 40), offset = le64(r + 48);
    if (on_disk != count) {
        return sky_fail(err, "%s: ZIP64 end record counts %llu entries on this disk but %llu in total", z->path,
                        (ull)on_disk, (ull)count);
    }
    /* A field the EOCD did not saturate must equal the ZIP64 one. */
    const struct {
        const char *what;
        uint64_t    small, sat, big;
    } f[] = {
        {"entry count", cd->count, 0xFFFF, count},
        {"central directory size", cd->size, 0xFFFFFFFF, size},
        {"central directory offset", cd->offset, 0xFFFFFFFF, offset},
    };
    for (size_t i = 0; i < sizeof f / sizeof f[0]; i++) {
        if (f[i].small != f[i].sat && f[i].small != f[i].big) {
            return sky_fail(err,
                            "%s: %s %llu in the end of central directory record disagrees with "
                            "%llu in the ZIP64 record",
                            z->path, f[i].what, (ull)f[i].small, (ull)f[i].big);
        }
    }
    cd->count = count;
    cd->size = size;
    cd->offset = offset;
    cd->end = off;
    return SKY_OK;
}

/* Locate the central directory from the end records (reference §5.2 steps 2-3). */
static sky_status read_end(const sky_zip *z, cdir *cd, sky_err *err)
{
    size_t eocd = 0;
    if (find_eocd(z, &eocd, err) != SKY_OK) return SKY_ERR;
    const unsigned char *r = z->buf + eocd;
    unsigned             disk = le16(r + 4), cd_disk = le16(r + 6), on_disk = le16(r + 8);
    cd->count = le16(r + 10);
    cd->size = le32(r + 12);
    cd->offset = le32(r + 16);
    cd->end = eocd;
    if ((disk != 0 && disk != 0xFFFF) || (cd_disk != 0 && cd_disk != 0xFFFF)) {
        return sky_fail(err,
                        "%s: end of central directory names disk %u / %u; multi-disk archives are "
                        "not supported",
                        z->path, disk, cd_disk);
    }
    if (on_disk != cd->count) {
        return sky_fail(err,
                        "%s: end of central directory counts %u entries on this disk but %llu in "
                        "total",
                        z->path, on_disk, (ull)cd->count);
    }
    if (eocd >= LOCATOR_SIZE && le32(r - LOCATOR_SIZE) == SIG_LOCATOR64) return read_zip64(z, eocd, cd, err);
    if (cd->count == 0xFFFF || cd->size == 0xFFFFFFFF || cd->offset == 0xFFFFFFFF) {
        return sky_fail(err,
                        "%s: end of central directory has saturated fields (ZIP64) but no ZIP64 "
                        "locator precedes it",
                        z->path);
    }
    return SKY_OK;
}

/* ---- central directory --------------------------------------------------------- */

/* Replace saturated sizes/offset by the values of the ZIP64 extra field (id 1), which
 * holds 64-bit values only for the saturated fields, in this order: size, compressed
 * size, local header offset, disk (reference §5.2 step 4). Checks that every extra
 * field fits. */
static sky_status read_extra(const sky_zip *z, const char *name, const unsigned char *x, size_t n, uint64_t *usize,
                             uint64_t *csize, uint64_t *offset, uint32_t *disk, sky_err *err)
{
    int    need_u = *usize == 0xFFFFFFFF, need_c = *csize == 0xFFFFFFFF;
    int    need_o = *offset == 0xFFFFFFFF, need_d = *disk == 0xFFFF;
    int    found = 0;
    size_t i = 0;
    while (n - i >= 4) {
        unsigned id = le16(x + i), len = le16(x + i + 2);
        if (len > n - i - 4) {
            return sky_fail(err,
                            "%s: entry '%s': extra field 0x%04x of %u bytes runs past the end of its "
                            "extra data (%zu bytes left)",
                            z->path, name, id, len, n - i - 4);
        }
        if (id == EXTRA_ZIP64 && !found) {
            const unsigned char *v = x + i + 4;
            size_t               want = 8u * (size_t)(need_u + need_c + need_o) + 4u * (size_t)need_d;
            if (len < want) {
                return sky_fail(err,
                                "%s: entry '%s': ZIP64 extra field has %u bytes, %zu needed for its "
                                "saturated fields",
                                z->path, name, len, want);
            }
            if (need_u) {
                *usize = le64(v);
                v += 8;
            }
            if (need_c) {
                *csize = le64(v);
                v += 8;
            }
            if (need_o) {
                *offset = le64(v);
                v += 8;
            }
            if (need_d) { *disk = le32(v); }
            found = 1;
        }
        i += 4 + (size_t)len;
    }
    if (!found && (need_u || need_c || need_o || need_d)) {
        return sky_fail(err,
                        "%s: entry '%s' has a saturated size or offset (0xFFFFFFFF) but no ZIP64 "
                        "extra field",
                        z->path, name);
    }
    return SKY_OK;
}

/* Check one local header against the central directory entry e, and set its data
 * offset (reference §5.2 step 5). cd_off bounds everything an entry may occupy. */
static sky_status check_local(const sky_zip *z, sky_zip_entry *e, uint16_t flags, uint64_t cd_off, sky_err *err)
{
    char     shown[256];
    uint64_t off = e->header_offset;
    if (!in_range(off, LOCAL_SIZE, cd_off)) {
        return sky_fail(err,
                        "%s: entry '%s': local header offset %llu lies outside the entry area "
                        "[0, %llu) before the central directory",
                        z->path, e->name, (ull)off, (ull)cd_off);
    }
    const unsigned char *h = z->buf + off;
    if (le32(h) != SIG_LOCAL) {
        return sky_fail(err, "%s: entry '%s': no local header at offset %llu (bad signature)", z->path, e->name,
                        (ull)off);
    }
    uint16_t lflags = le16(h + 6), lmethod = le16(h + 8), nlen = le16(h + 26), xlen = le16(h + 28);
    uint32_t lcrc = le32(h + 14), lcsize = le32(h + 18), lusize = le32(h + 22);
    if (!in_range(off + LOCAL_SIZE, (uint64_t)nlen + xlen, cd_off)) {
        return sky_fail(err,
                        "%s: entry '%s': local header at %llu with %u name and %u extra bytes runs "
                        "into the central directory at %llu",
                        z->path, e->name, (ull)off, nlen, xlen, (ull)cd_off);
    }
    size_t clen = strlen(e->name);
    if (nlen != clen || memcmp(h + LOCAL_SIZE, e->name, clen) != 0) {
        return sky_fail(err, "%s: entry '%s': local header name '%s' does not match the central directory", z->path,
                        e->name, printable(shown, sizeof shown, h + LOCAL_SIZE, nlen));
    }
    if (lmethod != 0 || (lflags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTED)) != 0) {
        return sky_fail(err,
                        "%s: entry '%s': local header says method %u, flags 0x%04x; the central "
                        "directory says stored and unencrypted",
                        z->path, e->name, lmethod, lflags);
    }
    /* CRC and sizes: equal, or 0 when a data descriptor follows, or 0xFFFFFFFF (ZIP64). */
    int dd = ((lflags | flags) & FLAG_DATA_DESCRIPTOR) != 0;
    if (!(lcrc == e->crc32 || (dd && lcrc == 0))) {
        return sky_fail(err,
                        "%s: entry '%s': local header CRC-32 %08x differs from the central directory's "
                        "%08x",
                        z->path, e->name, (unsigned)lcrc, (unsigned)e->crc32);
    }
    uint32_t ls[2] = {lcsize, lusize};
    for (int k = 0; k < 2; k++) {
        if (!(ls[k] == e->size || (dd && ls[k] == 0) || ls[k] == 0xFFFFFFFF)) {
            return sky_fail(err, "%s: entry '%s': local header gives size %u, the central directory %llu", z->path,
                            e->name, (unsigned)ls[k], (ull)e->size);
        }
    }
    e->data_offset = off + LOCAL_SIZE + nlen + xlen;
    if (!in_range(e->data_offset, e->size, z->size)) {
        return sky_fail(err,
                        "%s: entry '%s': data [%llu, +%llu bytes) runs past the end of the file "
                        "(%zu bytes; is it truncated?)",
                        z->path, e->name, (ull)e->data_offset, (ull)e->size, z->size);
    }
    if (!in_range(e->data_offset, e->size, cd_off)) {
        return sky_fail(err,
                        "%s: entry '%s': data [%llu, +%llu bytes) runs into the central directory at "
                        "%llu",
                        z->path, e->name, (ull)e->data_offset, (ull)e->size, (ull)cd_off);
    }
    return SKY_OK;
}

/* Parse central directory entry i at *pos (advanced past it) into z->entries[i]. */
static sky_status read_central(sky_zip *z, const cdir *cd, uint64_t *pos, int i, char **name_out, sky_err *err)
{
    char     shown[256];
    uint64_t end = cd->offset + cd->size, p = *pos;
    if (!in_range(p, CENTRAL_SIZE, end)) {
        return sky_fail(err,
                        "%s: central directory of %llu bytes ends inside entry %d of %llu "
                        "(entry count lies?)",
                        z->path, (ull)cd->size, i, (ull)cd->count);
    }
    const unsigned char *r = z->buf + p;
    if (le32(r) != SIG_CENTRAL) {
        return sky_fail(err,
                        "%s: central directory entry %d at offset %llu has a bad signature "
                        "(entry count lies, or the directory is corrupt)",
                        z->path, i, (ull)p);
    }
    uint16_t flags = le16(r + 8), method = le16(r + 10);
    uint16_t nlen = le16(r + 28), xlen = le16(r + 30), clen = le16(r + 32);
    uint32_t disk = le16(r + 34);
    uint64_t csize = le32(r + 20), usize = le32(r + 24), off = le32(r + 42);
    if (!in_range(p + CENTRAL_SIZE, (uint64_t)nlen + xlen + clen, end)) {
        return sky_fail(err,
                        "%s: central directory entry %d (name, extra and comment of %u bytes) runs "
                        "past the end of the directory",
                        z->path, i, nlen + xlen + clen);
    }
    const unsigned char *nm = r + CENTRAL_SIZE;
    const char          *why = bad_name((const char *)nm, nlen);
    if (why != NULL) {
        return sky_fail(err, "%s: entry %d has an unsafe name '%s': it %s", z->path, i,
                        printable(shown, sizeof shown, nm, nlen), why);
    }
    char *name = *name_out; /* room reserved by the caller */
    memcpy(name, nm, nlen);
    name[nlen] = '\0';
    *name_out += nlen + 1;
    if (flags & (FLAG_ENCRYPTED | FLAG_STRONG_ENCRYPTED)) {
        return sky_fail(err, "%s: entry '%s' is encrypted; encrypted archives are not supported", z->path, name);
    }
    if (method != 0) {
        return sky_fail(err,
                        "%s: entry '%s' is compressed (method %u, %s); only stored entries are "
                        "supported, as torch.save writes them (was the file re-zipped?)",
                        z->path, name, method, method_name(method));
    }
    if (read_extra(z, name, nm + nlen, xlen, &usize, &csize, &off, &disk, err) != SKY_OK) return SKY_ERR;
    if (disk != 0) {
        return sky_fail(err, "%s: entry '%s' starts on disk %u; multi-disk archives are not supported", z->path, name,
                        (unsigned)disk);
    }
    if (csize != usize) {
        return sky_fail(err, "%s: entry '%s': stored size %llu differs from its size %llu", z->path, name, (ull)csize,
                        (ull)usize);
    }
    sky_zip_entry *e = &z->entries[i];
    e->name = name;
    e->header_offset = off;
    e->size = usize;
    e->crc32 = le32(r + 16);
    if (check_local(z, e, flags, cd->offset, err) != SKY_OK) return SKY_ERR;
    *pos = p + CENTRAL_SIZE + nlen + xlen + clen;
    return SKY_OK;
}

static int by_offset(const void *a, const void *b)
{
    const sky_zip_entry *x = a, *y = b;
    return x->header_offset < y->header_offset ? -1 : x->header_offset > y->header_offset;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const sky_zip_entry *)a)->name, ((const sky_zip_entry *)b)->name);
}

/* Walk the central directory, then check overlaps and duplicate names. */
static sky_status read_entries(sky_zip *z, const cdir *cd, sky_err *err)
{
    if (!in_range(cd->offset, cd->size, cd->end)) {
        return sky_fail(err,
                        "%s: central directory at offset %llu of %llu bytes lies outside the file "
                        "area before the end records (%llu bytes)",
                        z->path, (ull)cd->offset, (ull)cd->size, (ull)cd->end);
    }
    if (cd->offset + cd->size != cd->end) {
        return sky_fail(err,
                        "%s: central directory [%llu, %llu) is followed by %llu unexplained bytes "
                        "before the end records",
                        z->path, (ull)cd->offset, (ull)(cd->offset + cd->size), (ull)(cd->end - cd->offset - cd->size));
    }
    if (cd->count == 0) return sky_fail(err, "%s: the archive has no entries", z->path);
    /* every entry needs 46 bytes: bound the count by the directory before allocating */
    if (cd->count > cd->size / CENTRAL_SIZE || cd->count > INT_MAX) {
        return sky_fail(err,
                        "%s: entry count %llu cannot fit in a central directory of %llu bytes "
                        "(entry count lies)",
                        z->path, (ull)cd->count, (ull)cd->size);
    }
    z->count = (int)cd->count;
    z->entries = calloc((size_t)z->count, sizeof *z->entries);
    z->names = malloc((size_t)cd->size); /* names are shorter than their records */
    if (z->entries == NULL || z->names == NULL) {
        return sky_fail(err, "%s: out of memory for %d entries", z->path, z->count);
    }
    uint64_t pos = cd->offset;
    char    *names = z->names;
    for (int i = 0; i < z->count; i++) {
        if (read_central(z, cd, &pos, i, &names, err) != SKY_OK) return SKY_ERR;
    }
    if (pos != cd->offset + cd->size) {
        return sky_fail(err, "%s: central directory has %llu bytes after its %d entries (entry count lies)", z->path,
                        (ull)(cd->offset + cd->size - pos), z->count);
    }
    /* no overlaps: each entry's header..data must end before the next header starts */
    qsort(z->entries, (size_t)z->count, sizeof *z->entries, by_offset);
    for (int i = 1; i < z->count; i++) {
        const sky_zip_entry *a = &z->entries[i - 1], *b = &z->entries[i];
        if (a->data_offset + a->size > b->header_offset) {
            return sky_fail(err, "%s: entries '%s' [%llu, %llu) and '%s' [%llu, %llu) overlap", z->path, a->name,
                            (ull)a->header_offset, (ull)(a->data_offset + a->size), b->name, (ull)b->header_offset,
                            (ull)(b->data_offset + b->size));
        }
    }
    qsort(z->entries, (size_t)z->count, sizeof *z->entries, by_name);
    for (int i = 1; i < z->count; i++) {
        if (strcmp(z->entries[i - 1].name, z->entries[i].name) == 0) {
            return sky_fail(err, "%s: duplicate entry name '%s'", z->path, z->entries[i].name);
        }
    }
    return SKY_OK;
}

/* ---- public -------------------------------------------------------------------- */

sky_status sky_zip_open(sky_zip **out, const void *buf, size_t size, const char *path, sky_err *err)
{
    *out = NULL;
    sky_zip *z = calloc(1, sizeof *z);
    if (z == NULL || (z->path = sky_str_dup(path)) == NULL) {
        free(z);
        return sky_fail(err, "%s: out of memory", path);
    }
    z->buf = buf;
    z->size = size;
    sky_status st;
    cdir       cd;
    if (size < LOCAL_SIZE + EOCD_SIZE) {
        st = sky_fail(err, "%s: file of %zu bytes is too small to be a ZIP archive", path, size);
    } else if (le32(z->buf) != SIG_LOCAL) {
        st = sky_fail(err, "%s: not a ZIP archive (does not start with PK\\3\\4)", path);
    } else {
        st = read_end(z, &cd, err);
        if (st == SKY_OK) st = read_entries(z, &cd, err);
    }
    if (st != SKY_OK) {
        sky_zip_close(z);
        return SKY_ERR;
    }
    *out = z;
    return SKY_OK;
}

int sky_zip_count(const sky_zip *z) { return z->count; }

const sky_zip_entry *sky_zip_at(const sky_zip *z, int i)
{
    SKY_ASSERT(i >= 0 && i < z->count);
    return &z->entries[i];
}

const sky_zip_entry *sky_zip_find(const sky_zip *z, const char *name)
{
    sky_zip_entry key;
    key.name = name;
    return bsearch(&key, z->entries, (size_t)z->count, sizeof *z->entries, by_name);
}

int sky_zip_index(const sky_zip *z, const sky_zip_entry *e)
{
    SKY_ASSERT(e >= z->entries && e < z->entries + z->count);
    return (int)(e - z->entries);
}

const void *sky_zip_data(const sky_zip *z, const sky_zip_entry *e) { return z->buf + e->data_offset; }

void sky_zip_close(sky_zip *z)
{
    if (z == NULL) return;
    free(z->entries);
    free(z->names);
    free(z->path);
    free(z);
}

/* zlib's CRC-32 (the same ISO-HDLC polynomial as ZIP; zlib is already loaded with FFmpeg), in chunks that fit
 * its uInt length. */
uint32_t sky_zip_crc32(const void *p, size_t n)
{
    const unsigned char *s = p;
    uLong                c = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        const uInt k = n > (size_t)UINT_MAX ? UINT_MAX : (uInt)n;
        c = crc32(c, s, k);
        s += k;
        n -= k;
    }
    return (uint32_t)c;
}
