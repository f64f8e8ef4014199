/* tests/runtime/test_pth.c — runtime/formats/pth.c, pickle.c and zip.c.
 *
 * Valid files: the torch.save fixtures of tests/fixtures/pth/ (made by make_pth_fixtures.py)
 * must load, and every tensor must equal, byte for byte, the one in the fixture's .safetensors
 * twin; the same archives rewritten here in other legal ZIP forms (ZIP64 everywhere, no data
 * descriptors, another folder name) must load the same.
 *
 * Hostile files are made here, in a fresh mkdtemp() directory: by mutating the bytes of a
 * fixture (container cases), or by writing a ZIP by hand around a hand-assembled pickle
 * (pickle cases). Each must be refused with a message that names the file and contains a
 * chosen substring. A positive control (the hand-made archive unmutated) loads, so the
 * hostile cases fail for the reason they test.
 *
 * Run from the repository root (tests/runtime/run_pth_tests.sh does).
 */
#include "../../runtime/core/dtype.h"
#include "../../runtime/formats/pth.h"
#include "../../runtime/formats/safetensors.h"
#include "../../runtime/formats/zip.h"
#include "check.h"

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define FIXTURES "tests/fixtures/pth"

static char tmp_root[512];            /* the mkdtemp() directory of this run */
static char made[256][1024];          /* files written there, removed at the end */
static int  n_made;

/* ---- files ------------------------------------------------------------------------ */

/* tmp_root/name into a static ring of buffers (several paths may be live at once). */
static const char *tpath(const char *name) {
    static char buf[4][1024];
    static int k;
    char *b = buf[k++ % 4];
    snprintf(b, sizeof buf[0], "%s/%s", tmp_root, name);
    return b;
}

/* Write n bytes to path (remembered for cleanup); 1 on success. */
static int write_bytes(const char *path, const void *b, size_t n) {
    FILE *f = fopen(path, "wb");
    if (f == NULL) return 0;
    int ok = fwrite(b, 1, n, f) == n;
    ok = (fclose(f) == 0) && ok;
    if (n_made < 256) snprintf(made[n_made++], sizeof made[0], "%s", path);
    return ok;
}

/* Whole file into a malloc'ed buffer (*n its size); NULL on failure. */
static unsigned char *read_all(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    fseek(f, 0, SEEK_SET);
    unsigned char *b = malloc(sz > 0 ? (size_t)sz : 1);
    if (b != NULL && fread(b, 1, (size_t)sz, f) != (size_t)sz) {
        free(b);
        b = NULL;
    }
    fclose(f);
    *n = (size_t)sz;
    return b;
}

/* Open path expecting failure: NULL if it opened, else the message (also printed when
 * SKY_TEST_VERBOSE is set, to review the wording). */
static const char *open_error(const char *path) {
    static sky_err err;
    sky_pth *f = (sky_pth *)&err;                     /* must be reset to NULL */
    if (sky_pth_open(&f, path, &err) == SKY_OK) {
        sky_pth_close(f);
        return NULL;
    }
    if (getenv("SKY_TEST_VERBOSE") != NULL) printf("     %s\n", err.msg);
    return f == NULL ? err.msg : "(*out not NULL after an error)";
}

/* CHECK that message m exists, names path, and contains sub. */
#define CHECK_MSG(m, path, sub)                                                           \
    do {                                                                                  \
        const char *m_ = (m);                                                             \
        CHECK(m_ != NULL && strstr(m_, (path)) != NULL && strstr(m_, (sub)) != NULL,      \
              "expected an error naming %s and saying \"%s\", got: %s", (path), (sub),    \
              m_ ? m_ : "(opened)");                                                      \
    } while (0)

/* ---- little-endian fields --------------------------------------------------------- */

static void put16(unsigned char *p, uint32_t v) { p[0] = (unsigned char)v; p[1] = (unsigned char)(v >> 8); }
static void put32(unsigned char *p, uint32_t v) { put16(p, v & 0xFFFF); put16(p + 2, v >> 16); }
static void put64(unsigned char *p, uint64_t v) { put32(p, (uint32_t)v); put32(p + 4, (uint32_t)(v >> 32)); }
static uint32_t get32(const unsigned char *p) {
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}
static uint64_t get64(const unsigned char *p) { return get32(p) | (uint64_t)get32(p + 4) << 32; }

/* ---- a ZIP writer (the layout torch.save writes) ------------------------------------ */

enum {
    ZW_ZIP64         = 1,   /* ZIP64 end record + locator, as torch.save always writes */
    ZW_SATURATE      = 2,   /* EOCD fields and every central size/offset 0xFFFF(FFFF), values in ZIP64 extras */
    ZW_NO_DESCRIPTOR = 4,   /* CRC and sizes in the local headers instead of data descriptors */
};

typedef struct zent {
    const char *name;
    const void *data;
    size_t      size;
} zent;

#define ZW_MAX 32
typedef struct zout {
    unsigned char *b;
    size_t         n, cap;
    size_t         local[ZW_MAX], central[ZW_MAX];    /* where each entry's records start */
    size_t         cd, z64, locator, eocd;
} zout;

static void zw_put(zout *o, const void *p, size_t n) {
    if (o->n + n > o->cap) {
        o->cap = (o->n + n) * 2 + 256;
        o->b = realloc(o->b, o->cap);
    }
    memcpy(o->b + o->n, p, n);
    o->n += n;
}
static void zw_u16(zout *o, uint32_t v) { unsigned char b[2]; put16(b, v); zw_put(o, b, 2); }
static void zw_u32(zout *o, uint32_t v) { unsigned char b[4]; put32(b, v); zw_put(o, b, 4); }
static void zw_u64(zout *o, uint64_t v) { unsigned char b[8]; put64(b, v); zw_put(o, b, 8); }

/* Build a stored archive of n entries into o (o->b malloc'ed; free it). Data is 64-byte
 * aligned with an 'FB' padding extra field, as torch.save does. */
static void zw_build(zout *o, const zent *e, int n, int flags) {
    memset(o, 0, sizeof *o);
    int dd = !(flags & ZW_NO_DESCRIPTOR), sat = (flags & ZW_SATURATE) != 0;
    uint32_t gp = 0x0800 | (dd ? 0x0008 : 0);
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        uint32_t crc = sky_zip_crc32(e[i].data, e[i].size);
        size_t pad = (64 - (o->n + 30 + nl + 4) % 64) % 64;
        o->local[i] = o->n;
        zw_u32(o, 0x04034b50); zw_u16(o, 20); zw_u16(o, gp); zw_u16(o, 0); zw_u16(o, 0); zw_u16(o, 0x21);
        zw_u32(o, dd ? 0 : crc); zw_u32(o, dd ? 0 : (uint32_t)e[i].size); zw_u32(o, dd ? 0 : (uint32_t)e[i].size);
        zw_u16(o, (uint32_t)nl); zw_u16(o, (uint32_t)(4 + pad));
        zw_put(o, e[i].name, nl);
        zw_u16(o, 0x4246); zw_u16(o, (uint32_t)pad);
        for (size_t k = 0; k < pad; k++) zw_put(o, "Z", 1);
        zw_put(o, e[i].data, e[i].size);
        if (dd) {
            zw_u32(o, 0x08074b50); zw_u32(o, crc);
            if (sat) { zw_u64(o, e[i].size); zw_u64(o, e[i].size); }
            else { zw_u32(o, (uint32_t)e[i].size); zw_u32(o, (uint32_t)e[i].size); }
        }
    }
    o->cd = o->n;
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(e[i].name);
        o->central[i] = o->n;
        zw_u32(o, 0x02014b50); zw_u16(o, 0x031e); zw_u16(o, sat ? 45 : 20); zw_u16(o, gp); zw_u16(o, 0);
        zw_u16(o, 0); zw_u16(o, 0x21); zw_u32(o, sky_zip_crc32(e[i].data, e[i].size));
        zw_u32(o, sat ? 0xFFFFFFFF : (uint32_t)e[i].size); zw_u32(o, sat ? 0xFFFFFFFF : (uint32_t)e[i].size);
        zw_u16(o, (uint32_t)nl); zw_u16(o, sat ? 28 : 0); zw_u16(o, 0); zw_u16(o, 0); zw_u16(o, 0); zw_u32(o, 0);
        zw_u32(o, sat ? 0xFFFFFFFF : (uint32_t)o->local[i]);
        zw_put(o, e[i].name, nl);
        if (sat) { zw_u16(o, 1); zw_u16(o, 24); zw_u64(o, e[i].size); zw_u64(o, e[i].size); zw_u64(o, o->local[i]); }
    }
    size_t cd_size = o->n - o->cd;
    if (flags & (ZW_ZIP64 | ZW_SATURATE)) {
        o->z64 = o->n;
        zw_u32(o, 0x06064b50); zw_u64(o, 44); zw_u16(o, 45); zw_u16(o, 45); zw_u32(o, 0); zw_u32(o, 0);
        zw_u64(o, (uint64_t)n); zw_u64(o, (uint64_t)n); zw_u64(o, cd_size); zw_u64(o, o->cd);
        o->locator = o->n;
        zw_u32(o, 0x07064b50); zw_u32(o, 0); zw_u64(o, o->z64); zw_u32(o, 1);
    }
    o->eocd = o->n;
    zw_u32(o, 0x06054b50); zw_u16(o, 0); zw_u16(o, 0);
    zw_u16(o, sat ? 0xFFFF : (uint32_t)n); zw_u16(o, sat ? 0xFFFF : (uint32_t)n);
    zw_u32(o, sat ? 0xFFFFFFFF : (uint32_t)cd_size); zw_u32(o, sat ? 0xFFFFFFFF : (uint32_t)o->cd);
    zw_u16(o, 0);
}

/* Write zw_build's archive to path; 1 on success. */
static int write_zip(const char *path, const zent *e, int n, int flags) {
    zout o;
    zw_build(&o, e, n, flags);
    int ok = write_bytes(path, o.b, o.n);
    free(o.b);
    return ok;
}

/* ---- a pickle assembler ------------------------------------------------------------ */

typedef struct pkb {
    unsigned char b[8192];
    size_t        n;
} pkb;

static void p1(pkb *p, unsigned v) { p->b[p->n++] = (unsigned char)v; }
static void p4(pkb *p, uint32_t v) { put32(p->b + p->n, v); p->n += 4; }
static void pbytes(pkb *p, const void *s, size_t n) { memcpy(p->b + p->n, s, n); p->n += n; }

static void p_str(pkb *p, const char *s) { p1(p, 'X'); p4(p, (uint32_t)strlen(s)); pbytes(p, s, strlen(s)); }

/* An int the way pickle protocol 2 writes it. */
static void p_int(pkb *p, long long v) {
    if (v >= 0 && v < 256) { p1(p, 'K'); p1(p, (unsigned)v); }
    else if (v >= 0 && v < 65536) { p1(p, 'M'); p1(p, (unsigned)v & 255); p1(p, (unsigned)v >> 8); }
    else if (v >= INT32_MIN && v <= INT32_MAX) { p1(p, 'J'); p4(p, (uint32_t)(int32_t)v); }
    else { p1(p, 0x8a); p1(p, 8); put64(p->b + p->n, (uint64_t)v); p->n += 8; }
}

static void p_global(pkb *p, const char *mod, const char *name) {
    p1(p, 'c'); pbytes(p, mod, strlen(mod)); p1(p, '\n'); pbytes(p, name, strlen(name)); p1(p, '\n');
}

/* ('storage', torch.<type>, key, 'cpu', numel) BINPERSID */
static void p_pid(pkb *p, const char *type, const char *key, long long numel) {
    p1(p, '('); p_str(p, "storage"); p_global(p, "torch", type); p_str(p, key); p_str(p, "cpu");
    p_int(p, numel); p1(p, 't'); p1(p, 'Q');
}

static void p_ints(pkb *p, int n, const long long *v) {
    p1(p, '(');
    for (int i = 0; i < n; i++) p_int(p, v[i]);
    p1(p, 't');
}

/* _rebuild_tensor_v2(storage, offset, size, stride, False, OrderedDict()) */
static void p_tensor(pkb *p, const char *type, const char *key, long long numel, long long off, int nd,
                     const long long *size, const long long *stride) {
    p_global(p, "torch._utils", "_rebuild_tensor_v2");
    p1(p, '(');
    p_pid(p, type, key, numel);
    p_int(p, off);
    p_ints(p, nd, size);
    p_ints(p, nd, stride);
    p1(p, 0x89);
    p_global(p, "collections", "OrderedDict"); p1(p, ')'); p1(p, 'R');
    p1(p, 't'); p1(p, 'R');
}

/* The control tensor: F32 (2, 3) over storage '0' (6 elements = the 24-byte record). */
static const long long S23[] = { 2, 3 }, T23[] = { 3, 1 };
static void p_w(pkb *p) { p_tensor(p, "FloatStorage", "0", 6, 0, 2, S23, T23); }

static void p_head(pkb *p) { p1(p, 0x80); p1(p, 2); p1(p, '}'); }        /* PROTO 2, EMPTY_DICT */

/* Records around a pickle: folder "arch", storage '0' of 24 bytes (6 floats 0..5). */
static const float STORAGE0[6] = { 0, 1, 2, 3, 4, 5 };

static int write_pickle_case(const char *path, const pkb *p) {
    zent e[] = {
        { "arch/data.pkl", p->b, p->n },
        { "arch/byteorder", "little", 6 },
        { "arch/data/0", STORAGE0, sizeof STORAGE0 },
        { "arch/version", "3\n", 2 },
    };
    return write_zip(path, e, 4, ZW_ZIP64);
}

/* ---- valid files ------------------------------------------------------------------ */

/* Compare every tensor of a loaded .pth with its .safetensors twin. */
static int compare_with_twin(const sky_pth *f, const char *st_path) {
    sky_safetensors *st = NULL;
    sky_err err;
    CHECK(sky_safetensors_open(&st, st_path, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_pth_count(f) == sky_safetensors_count(st), "%s has %d tensors, %s %d", sky_pth_path(f),
          sky_pth_count(f), st_path, sky_safetensors_count(st));
    for (int i = 0; i < sky_pth_count(f); i++) {
        const sky_st_tensor *a = sky_pth_at(f, i), *b = sky_safetensors_at(st, i);
        CHECK(strcmp(a->name, b->name) == 0, "tensor %d: '%s' vs '%s'", i, a->name, b->name);
        CHECK(a->dtype == b->dtype, "'%s': dtype %s vs %s", a->name, sky_dtype_name(a->dtype), sky_dtype_name(b->dtype));
        CHECK(a->ndim == b->ndim, "'%s': rank %d vs %d", a->name, a->ndim, b->ndim);
        for (int d = 0; d < SKY_MAX_DIMS; d++) {
            CHECK(a->shape[d] == b->shape[d], "'%s': dim %d: %lld vs %lld", a->name, d, (long long)a->shape[d],
                  (long long)b->shape[d]);
        }
        CHECK(a->nbytes == b->nbytes, "'%s': %zu vs %zu bytes", a->name, a->nbytes, b->nbytes);
        CHECK(a->nbytes == 0 || memcmp(a->data, b->data, a->nbytes) == 0, "'%s': bytes differ", a->name);
        CHECK(strcmp(a->file, sky_pth_path(f)) == 0, "'%s': file '%s'", a->name, a->file);
        CHECK(sky_pth_find(f, a->name) == a, "find('%s') does not return it", a->name);
    }
    /* the reader reports the wrapping key the fixture script recorded ("" = none) */
    const char *want = sky_safetensors_metadata(st, "wrapper");
    const char *got = sky_pth_wrapper(f);
    CHECK(want != NULL && strcmp(want, got ? got : "") == 0, "wrapper '%s', expected '%s'", got ? got : "",
          want ? want : "(no metadata)");
    sky_safetensors_close(st);
    return 0;
}

/* Open FIXTURES/<name>.pth and compare with <name>.safetensors. */
static int check_fixture(const char *name) {
    char pth[256], st[256];
    snprintf(pth, sizeof pth, FIXTURES "/%s.pth", name);
    snprintf(st, sizeof st, FIXTURES "/%s.safetensors", name);
    sky_pth *f = NULL;
    sky_err err;
    CHECK(sky_pth_open(&f, pth, &err) == SKY_OK, "%s", err.msg);
    int r = compare_with_twin(f, st);
    sky_pth_close(f);
    return r;
}

static int test_fixture_state_dict(void) { return check_fixture("state_dict"); }
static int test_fixture_wrapped(void) { return check_fixture("wrapped"); }
static int test_fixture_proto4(void) { return check_fixture("proto4"); }

/* Shared storage: shared.a and shared.b view one record at element offsets 0 and 8
 * (make_pth_fixtures.py: base[0:8], base[8:20]); so do find() and sorted order work. */
static int test_shared_storage_views(void) {
    sky_pth *f = NULL;
    sky_err err;
    CHECK(sky_pth_open(&f, FIXTURES "/state_dict.pth", &err) == SKY_OK, "%s", err.msg);
    const sky_st_tensor *a = sky_pth_find(f, "shared.a"), *b = sky_pth_find(f, "shared.b");
    CHECK(a != NULL && b != NULL, "shared.a / shared.b missing");
    CHECK((const char *)b->data - (const char *)a->data == 8 * 4, "views are %td bytes apart, expected 32",
          (const char *)b->data - (const char *)a->data);
    CHECK(sky_pth_find(f, "shared") == NULL && sky_pth_find(f, "zzz") == NULL, "find of a missing name");
    for (int i = 1; i < sky_pth_count(f); i++) {
        CHECK(strcmp(sky_pth_at(f, i - 1)->name, sky_pth_at(f, i)->name) < 0, "not sorted at %d", i);
    }
    sky_pth_close(f);
    return 0;
}

/* The same archive in other legal ZIP forms, and under another folder name. */
static int rezip_and_compare(int flags, const char *folder, const char *out_name) {
    size_t n;
    unsigned char *buf = read_all(FIXTURES "/state_dict.pth", &n);
    CHECK(buf != NULL, "cannot read the fixture");
    sky_zip *z = NULL;
    sky_err err;
    CHECK(sky_zip_open(&z, buf, n, "fixture", &err) == SKY_OK, "%s", err.msg);
    zent e[ZW_MAX];
    char names[ZW_MAX][128];
    int k = sky_zip_count(z);
    CHECK(k <= ZW_MAX, "%d entries", k);
    for (int i = 0; i < k; i++) {
        const sky_zip_entry *ze = sky_zip_at(z, i);
        const char *rest = strchr(ze->name, '/');
        snprintf(names[i], sizeof names[i], "%s%s", folder ? folder : "", folder ? rest : ze->name);
        e[i].name = names[i];
        e[i].data = sky_zip_data(z, ze);
        e[i].size = (size_t)ze->size;
    }
    const char *path = tpath(out_name);
    CHECK(write_zip(path, e, k, flags), "cannot write %s", path);
    sky_zip_close(z);
    free(buf);
    sky_pth *f = NULL;
    CHECK(sky_pth_open(&f, path, &err) == SKY_OK, "%s", err.msg);
    int r = compare_with_twin(f, FIXTURES "/state_dict.safetensors");
    sky_pth_close(f);
    return r;
}

static int test_rezip_zip64_saturated(void) { return rezip_and_compare(ZW_SATURATE, NULL, "z64.pth"); }
static int test_rezip_no_descriptor_no_zip64(void) { return rezip_and_compare(ZW_NO_DESCRIPTOR, NULL, "plain.pth"); }
static int test_rezip_other_folder(void) { return rezip_and_compare(ZW_ZIP64, "weird name.v1", "folder.pth"); }

/* The in-memory entry point gives the same result. */
static int test_open_mem(void) {
    size_t n;
    unsigned char *buf = read_all(FIXTURES "/proto4.pth", &n);
    CHECK(buf != NULL, "cannot read the fixture");
    sky_pth *f = NULL;
    sky_err err;
    CHECK(sky_pth_open_mem(&f, buf, n, "mem:proto4", &err) == SKY_OK, "%s", err.msg);
    CHECK(strcmp(sky_pth_path(f), "mem:proto4") == 0, "path %s", sky_pth_path(f));
    int r = compare_with_twin(f, FIXTURES "/proto4.safetensors");
    sky_pth_close(f);
    free(buf);
    return r;
}

/* The hand-made control archive loads: the hostile pickle cases differ from it only in
 * what they test. */
static int test_control_pickle_loads(void) {
    pkb p = { .n = 0 };
    p_head(&p); p_str(&p, "w"); p_w(&p); p1(&p, 's'); p1(&p, '.');
    const char *path = tpath("control.pth");
    CHECK(write_pickle_case(path, &p), "write");
    sky_pth *f = NULL;
    sky_err err;
    CHECK(sky_pth_open(&f, path, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_pth_count(f) == 1, "%d tensors", sky_pth_count(f));
    const sky_st_tensor *t = sky_pth_find(f, "w");
    CHECK(t != NULL && t->dtype == SKY_DTYPE_F32 && t->ndim == 2 && t->shape[0] == 2 && t->shape[1] == 3,
          "tensor w wrong");
    CHECK(t->nbytes == 24 && memcmp(t->data, STORAGE0, 24) == 0, "data differs");
    sky_pth_close(f);
    return 0;
}

static int test_crc32(void) {
    CHECK(sky_zip_crc32("123456789", 9) == 0xCBF43926u, "crc32 = %08x", (unsigned)sky_zip_crc32("123456789", 9));
    CHECK(sky_zip_crc32(NULL, 0) == 0, "crc32 of nothing");
    return 0;
}

/* ---- hostile containers: a fixture's bytes, mutated --------------------------------- */

/* Offsets in a torch.save file: EOCD (no comment), ZIP64 record, and central entries. */
typedef struct layout {
    size_t eocd, z64, cd;
} layout;

static layout find_layout(const unsigned char *b, size_t n) {
    layout l;
    l.eocd = n - 22;
    l.z64 = (size_t)get64(b + l.eocd - 20 + 8);
    l.cd = (size_t)get64(b + l.z64 + 48);
    return l;
}

/* Offset of the central directory entry whose name ends with suffix. */
static size_t central_of(const unsigned char *b, size_t n, const char *suffix) {
    layout l = find_layout(b, n);
    size_t p = l.cd, sl = strlen(suffix);
    while (p + 46 <= l.z64 && get32(b + p) == 0x02014b50) {
        size_t nl = b[p + 28] | (size_t)b[p + 29] << 8, xl = b[p + 30] | (size_t)b[p + 31] << 8;
        if (nl >= sl && memcmp(b + p + 46 + nl - sl, suffix, sl) == 0) return p;
        p += 46 + nl + xl + (b[p + 32] | (size_t)b[p + 33] << 8);
    }
    return 0;
}

typedef void (*mutator)(unsigned char *b, size_t *n);

static void m_truncate_half(unsigned char *b, size_t *n) { (void)b; *n /= 2; }
static void m_truncate_tiny(unsigned char *b, size_t *n) { (void)b; *n = 10; }
static void m_no_eocd(unsigned char *b, size_t *n) { b[*n - 22] = 'X'; }
static void m_cd_offset_out_of_range(unsigned char *b, size_t *n) {
    layout l = find_layout(b, *n);
    put64(b + l.z64 + 48, 0x7FFFFFFFFFFF0000ull);
    put32(b + l.eocd + 16, 0xFFFFFFFF);
}
static void m_cd_offset_disagrees(unsigned char *b, size_t *n) {
    layout l = find_layout(b, *n);
    put32(b + l.eocd + 16, get32(b + l.eocd + 16) + 1);
}
static void m_count_more(unsigned char *b, size_t *n) {
    layout l = find_layout(b, *n);
    uint64_t c = get64(b + l.z64 + 32) + 1;
    put64(b + l.z64 + 24, c); put64(b + l.z64 + 32, c);
    put16(b + l.eocd + 8, (uint32_t)c); put16(b + l.eocd + 10, (uint32_t)c);
}
static void m_count_fewer(unsigned char *b, size_t *n) {
    layout l = find_layout(b, *n);
    uint64_t c = get64(b + l.z64 + 32) - 1;
    put64(b + l.z64 + 24, c); put64(b + l.z64 + 32, c);
    put16(b + l.eocd + 8, (uint32_t)c); put16(b + l.eocd + 10, (uint32_t)c);
}
static void m_count_huge(unsigned char *b, size_t *n) {
    layout l = find_layout(b, *n);
    put64(b + l.z64 + 24, 1ull << 40); put64(b + l.z64 + 32, 1ull << 40);
    put16(b + l.eocd + 8, 0xFFFF); put16(b + l.eocd + 10, 0xFFFF);
}
static void m_compressed(unsigned char *b, size_t *n) { put16(b + central_of(b, *n, "/data.pkl") + 10, 8); }
static void m_encrypted(unsigned char *b, size_t *n) { b[central_of(b, *n, "/data/0") + 8] |= 1; }
static void m_local_name(unsigned char *b, size_t *n) {
    size_t c = central_of(b, *n, "/data/0");
    b[get32(b + c + 42) + 30] ^= 0x20;                  /* first byte of the local name */
}
static void m_data_beyond_file(unsigned char *b, size_t *n) {
    size_t c = central_of(b, *n, "/data/0");
    put32(b + c + 20, 0x7FFFFFF0); put32(b + c + 24, 0x7FFFFFF0);
}
static void m_overlap(unsigned char *b, size_t *n) {   /* data/0 grows over data/1's local header */
    size_t c = central_of(b, *n, "/data/0");
    uint32_t s = get32(b + c + 20) + 200;
    put32(b + c + 20, s); put32(b + c + 24, s);
}
static void m_local_offset_out(unsigned char *b, size_t *n) {
    put32(b + central_of(b, *n, "/data/1") + 42, (uint32_t)*n - 10);
}
static void m_local_bad_sig(unsigned char *b, size_t *n) {
    size_t c = central_of(b, *n, "/data/1");
    b[get32(b + c + 42)] = 'Q';
}
static void m_zip64_locator_outside(unsigned char *b, size_t *n) { put64(b + *n - 22 - 20 + 8, (uint64_t)*n + 100); }
static void m_zip64_record_size(unsigned char *b, size_t *n) {
    layout l = find_layout(b, *n);
    put64(b + l.z64 + 4, 0xFFFFFFFFFFFFFF00ull);
}
static void m_extra_overruns(unsigned char *b, size_t *n) {
    /* give data.pkl's central entry a 4-byte "extra" whose length field claims 100 bytes,
     * stealing the first 4 bytes of the next entry: the extra block must not run past its field */
    size_t c = central_of(b, *n, "/data.pkl");
    size_t nl = b[c + 28] | (size_t)b[c + 29] << 8;
    put16(b + c + 30, 4);
    put16(b + c + 46 + nl + 2, 100);
}
static void m_pickle_crc(unsigned char *b, size_t *n) {
    size_t c = central_of(b, *n, "/data.pkl");
    size_t h = get32(b + c + 42);
    size_t data = h + 30 + (b[h + 26] | (size_t)b[h + 27] << 8) + (b[h + 28] | (size_t)b[h + 29] << 8);
    b[data + 40] ^= 1;
}
static void m_legacy_pickle(unsigned char *b, size_t *n) {
    static const unsigned char magic[] = { 0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e };
    memcpy(b, magic, sizeof magic);
    *n = sizeof magic;
}
static void m_not_zip(unsigned char *b, size_t *n) {
    static const char text[] = "plain text that is long enough to be a zip, but is not one at all";
    memcpy(b, text, sizeof text - 1);
    *n = sizeof text - 1;
}
static void m_empty(unsigned char *b, size_t *n) { (void)b; *n = 0; }

static const struct bad_file {
    const char *name;
    mutator     mutate;
    const char *expect;
} BAD_FILES[] = {
    { "truncated_half",          m_truncate_half,         "no end of central directory record" },
    { "truncated_tiny",          m_truncate_tiny,         "too small to be a ZIP archive" },
    { "empty_file",              m_empty,                 "file is empty" },
    { "not_a_zip",               m_not_zip,               "not a ZIP archive" },
    { "legacy_pickle_format",    m_legacy_pickle,         "legacy torch.save format" },
    { "no_eocd",                 m_no_eocd,               "no end of central directory record" },
    { "cd_offset_out_of_range",  m_cd_offset_out_of_range, "central directory at offset 9223372036854710272" },
    { "cd_offset_disagrees",     m_cd_offset_disagrees,   "central directory offset" },
    { "entry_count_more",        m_count_more,            "(entry count lies" },
    { "entry_count_fewer",       m_count_fewer,           "(entry count lies)" },
    { "entry_count_huge",        m_count_huge,            "entry count 1099511627776 cannot fit" },
    { "compressed_entry",        m_compressed,            "is compressed (method 8, deflate)" },
    { "encrypted_entry",         m_encrypted,             "is encrypted" },
    { "local_name_mismatch",     m_local_name,            "does not match the central directory" },
    { "entry_data_beyond_file",  m_data_beyond_file,      "runs past the end of the file" },
    { "overlapping_entries",     m_overlap,               "overlap" },
    { "local_offset_out_of_range", m_local_offset_out,    "local header offset" },
    { "local_header_bad_sig",    m_local_bad_sig,         "no local header at offset" },
    { "zip64_locator_outside",   m_zip64_locator_outside, "ZIP64 end of central directory record at offset" },
    { "zip64_record_size_huge",  m_zip64_record_size,     "which do not fit before the locator" },
    { "extra_field_overruns",    m_extra_overruns,        "runs past the end of its extra data" },
    { "pickle_crc_mismatch",     m_pickle_crc,            "fails its CRC-32 check" },
};
static size_t bad_file_row;

static int test_bad_file(void) {
    const struct bad_file *c = &BAD_FILES[bad_file_row];
    size_t n;
    unsigned char *b = read_all(FIXTURES "/state_dict.pth", &n);
    CHECK(b != NULL, "cannot read the fixture");
    c->mutate(b, &n);
    char name[128];
    snprintf(name, sizeof name, "%s.pth", c->name);
    const char *path = tpath(name);
    CHECK(write_bytes(path, b, n), "write %s", path);
    free(b);
    CHECK_MSG(open_error(path), path, c->expect);
    return 0;
}

/* ---- hostile containers: written by hand ------------------------------------------- */

static const char LITTLE[] = "little";

/* A minimal valid pickle: {} (so only the container is under test). */
static const unsigned char EMPTY_PKL[] = { 0x80, 0x02, '}', '.' };

static int test_duplicate_entry_names(void) {
    zent e[] = { { "a/data.pkl", EMPTY_PKL, 4 }, { "a/data/0", "x", 1 }, { "a/data/0", "y", 1 } };
    const char *path = tpath("dup_names.pth");
    CHECK(write_zip(path, e, 3, ZW_ZIP64), "write");
    CHECK_MSG(open_error(path), path, "duplicate entry name 'a/data/0'");
    return 0;
}

static int test_unsafe_entry_name(void) {
    zent e[] = { { "a/data.pkl", EMPTY_PKL, 4 }, { "a/../../etc/x", "x", 1 } };
    const char *path = tpath("unsafe_name.pth");
    CHECK(write_zip(path, e, 2, ZW_ZIP64), "write");
    CHECK_MSG(open_error(path), path, "unsafe name 'a/../../etc/x': it has a '..' component");
    return 0;
}

static int test_saturated_without_zip64_extra(void) {
    zent e[] = { { "a/data.pkl", EMPTY_PKL, 4 } };
    zout o;
    zw_build(&o, e, 1, ZW_ZIP64);
    put32(o.b + o.central[0] + 42, 0xFFFFFFFF);          /* offset saturated, no extra field */
    const char *path = tpath("sat_no_extra.pth");
    CHECK(write_bytes(path, o.b, o.n), "write");
    free(o.b);
    CHECK_MSG(open_error(path), path, "no ZIP64 extra field");
    return 0;
}

static int test_saturated_eocd_without_locator(void) {
    zent e[] = { { "a/data.pkl", EMPTY_PKL, 4 } };
    zout o;
    zw_build(&o, e, 1, 0);
    put16(o.b + o.eocd + 8, 0xFFFF); put16(o.b + o.eocd + 10, 0xFFFF);
    const char *path = tpath("sat_no_locator.pth");
    CHECK(write_bytes(path, o.b, o.n), "write");
    free(o.b);
    CHECK_MSG(open_error(path), path, "no ZIP64 locator");
    return 0;
}

static int test_big_endian(void) {
    zent e[] = { { "a/data.pkl", EMPTY_PKL, 4 }, { "a/byteorder", "big", 3 } };
    const char *path = tpath("big_endian.pth");
    CHECK(write_zip(path, e, 2, ZW_ZIP64), "write");
    CHECK_MSG(open_error(path), path, "stored big-endian");
    return 0;
}

static int test_torchscript_archive(void) {
    zent e[] = { { "m/data.pkl", EMPTY_PKL, 4 }, { "m/constants.pkl", EMPTY_PKL, 4 }, { "m/byteorder", LITTLE, 6 } };
    const char *path = tpath("torchscript.pth");
    CHECK(write_zip(path, e, 3, ZW_ZIP64), "write");
    CHECK_MSG(open_error(path), path, "TorchScript archive");
    return 0;
}

static int test_two_folders(void) {
    zent e[] = { { "a/data.pkl", EMPTY_PKL, 4 }, { "b/data/0", "x", 1 } };
    const char *path = tpath("two_folders.pth");
    CHECK(write_zip(path, e, 2, ZW_ZIP64), "write");
    CHECK_MSG(open_error(path), path, "entry 'b/data/0' is outside the archive folder 'a/'");
    return 0;
}

static int test_missing_data_pkl(void) {
    zent e[] = { { "a/byteorder", LITTLE, 6 }, { "a/data/0", "x", 1 } };
    const char *path = tpath("no_data_pkl.pth");
    CHECK(write_zip(path, e, 2, ZW_ZIP64), "write");
    CHECK_MSG(open_error(path), path, "no record 'a/data.pkl'");
    return 0;
}

static int test_not_a_file(void) {
    CHECK_MSG(open_error(tmp_root), tmp_root, "is a directory");
    const char *missing = tpath("does_not_exist.pth");
    CHECK_MSG(open_error(missing), missing, "cannot open");
    return 0;
}

static int test_empty_state_dict_loads(void) {
    zent e[] = { { "a/data.pkl", EMPTY_PKL, 4 }, { "a/byteorder", LITTLE, 6 } };
    const char *path = tpath("empty_sd.pth");
    CHECK(write_zip(path, e, 2, ZW_ZIP64), "write");
    sky_pth *f = NULL;
    sky_err err;
    CHECK(sky_pth_open(&f, path, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_pth_count(f) == 0 && sky_pth_find(f, "w") == NULL && sky_pth_wrapper(f) == NULL, "not empty");
    sky_pth_close(f);
    return 0;
}

/* The torch-made transposed view is refused (fixture noncontig.pth). */
static int test_noncontiguous_fixture(void) {
    CHECK_MSG(open_error(FIXTURES "/noncontig.pth"), FIXTURES "/noncontig.pth",
              "tensor 't' of size (3, 2) has strides (1, 3), which are not contiguous");
    return 0;
}

/* ---- hostile pickles ----------------------------------------------------------------- */

typedef void (*pbuild)(pkb *p);

/* {'w': <tensor from the arguments>} */
static void p_one(pkb *p, const char *type, const char *key, long long numel, long long off, int nd,
                  const long long *size, const long long *stride) {
    p_head(p); p_str(p, "w"); p_tensor(p, type, key, numel, off, nd, size, stride); p1(p, 's'); p1(p, '.');
}

static void b_os_system(pkb *p) {
    p1(p, 0x80); p1(p, 2);
    p_global(p, "os", "system");
    char cmd[700];
    snprintf(cmd, sizeof cmd, "touch '%s/pwned'", tmp_root);
    p_str(p, cmd); p1(p, 0x85); p1(p, 'R'); p1(p, '.');
}
static void b_builtins_eval_stack_global(pkb *p) {
    p1(p, 0x80); p1(p, 4);
    p1(p, 0x8c); p1(p, 8); pbytes(p, "builtins", 8); p1(p, 0x8c); p1(p, 4); pbytes(p, "eval", 4);
    p1(p, 0x93); p_str(p, "1+1"); p1(p, 0x85); p1(p, 'R'); p1(p, '.');
}
static void b_torch_load(pkb *p) { p_head(p); p_global(p, "torch", "load"); p1(p, '.'); }
static void b_unknown_opcode_inst(pkb *p) { p_head(p); pbytes(p, "ios\nsystem\n", 11); p1(p, '.'); }
static void b_unknown_opcode_ff(pkb *p) { p_head(p); p1(p, 0xff); p1(p, '.'); }
static void b_stack_underflow(pkb *p) { p1(p, 0x80); p1(p, 2); p1(p, 0x86); p1(p, '.'); }
static void b_underflow_below_mark(pkb *p) { p_head(p); p1(p, '('); p_str(p, "k"); p1(p, 's'); p1(p, '.'); }
static void b_memo_out_of_range(pkb *p) { p_head(p); p1(p, 'q'); p1(p, 0); p1(p, 'h'); p1(p, 5); p1(p, '.'); }
static void b_memo_skips_ahead(pkb *p) { p_head(p); p1(p, 'r'); p4(p, 1000000); p1(p, '.'); }
static void b_storage_key_missing(pkb *p) { p_one(p, "FloatStorage", "7", 6, 0, 2, S23, T23); }
static void b_storage_size_mismatch(pkb *p) { p_one(p, "FloatStorage", "0", 7, 0, 2, S23, T23); }
static void b_storage_negative_numel(pkb *p) { p_one(p, "FloatStorage", "0", -6, 0, 2, S23, T23); }
static void b_storage_key_path(pkb *p) { p_one(p, "FloatStorage", "../0", 6, 0, 2, S23, T23); }
static void b_view_beyond_storage(pkb *p) { p_one(p, "FloatStorage", "0", 6, 4, 2, S23, T23); }
static void b_offset_beyond_storage(pkb *p) {
    static const long long s[] = { 0 }, t[] = { 1 };
    p_one(p, "FloatStorage", "0", 6, 1000, 1, s, t);
}
static void b_size_overflow(pkb *p) {
    static const long long s[] = { 1ll << 40, 1ll << 40 }, t[] = { 1ll << 40, 1 };
    p_one(p, "FloatStorage", "0", 6, 0, 2, s, t);
}
static void b_bytes_overflow(pkb *p) {
    static const long long s[] = { 1ll << 62 }, t[] = { 1 };
    p_one(p, "FloatStorage", "0", 6, 0, 1, s, t);
}
static void b_negative_size(pkb *p) {
    static const long long s[] = { -1, 3 }, t[] = { 3, 1 };
    p_one(p, "FloatStorage", "0", 6, 0, 2, s, t);
}
static void b_negative_stride(pkb *p) {
    static const long long t[] = { 3, -1 };
    p_one(p, "FloatStorage", "0", 6, 0, 2, S23, t);
}
static void b_negative_offset(pkb *p) { p_one(p, "FloatStorage", "0", 6, -2, 2, S23, T23); }
static void b_non_contiguous(pkb *p) {
    static const long long t[] = { 1, 2 };
    p_one(p, "FloatStorage", "0", 6, 0, 2, S23, t);
}
static void b_rank_9(pkb *p) {
    static const long long s[9] = { 1, 1, 1, 1, 1, 1, 1, 2, 3 }, t[9] = { 6, 6, 6, 6, 6, 6, 6, 3, 1 };
    p_one(p, "FloatStorage", "0", 6, 0, 9, s, t);
}
static void b_size_stride_rank_mismatch(pkb *p) {
    p_head(p); p_str(p, "w");
    p_global(p, "torch._utils", "_rebuild_tensor_v2"); p1(p, '(');
    p_pid(p, "FloatStorage", "0", 6); p_int(p, 0); p_ints(p, 2, S23); p_ints(p, 1, T23 + 1);
    p1(p, 0x89); p1(p, '}'); p1(p, 't'); p1(p, 'R'); p1(p, 's'); p1(p, '.');
}
static void b_huge_string(pkb *p) { p_head(p); p1(p, 'X'); p4(p, 0xFFFFFFF0u); pbytes(p, "abc", 3); }
static void b_string_past_end(pkb *p) { p_head(p); p1(p, 'X'); p4(p, 100); pbytes(p, "abcde", 5); }
static void b_bad_utf8(pkb *p) { p_head(p); p1(p, 'X'); p4(p, 2); p1(p, 0xc0); p1(p, 0xaf); p1(p, '.'); }
static void b_deep_nesting(pkb *p) { p_head(p); for (int i = 0; i < 100; i++) p1(p, '('); p1(p, '.'); }
static void b_no_stop(pkb *p) { p_head(p); p_str(p, "w"); p_w(p); p1(p, 's'); }
static void b_bytes_after_stop(pkb *p) { p_head(p); p1(p, '.'); p1(p, 'N'); }
static void b_two_values_at_stop(pkb *p) { p_head(p); p1(p, 'N'); p1(p, '.'); }
static void b_top_level_list(pkb *p) { p1(p, 0x80); p1(p, 2); p1(p, ']'); p_w(p); p1(p, 'a'); p1(p, '.'); }
static void b_value_not_tensor(pkb *p) {
    p_head(p); p1(p, '('); p_str(p, "w"); p_w(p); p_str(p, "x"); p_int(p, 5); p1(p, 'u'); p1(p, '.');
}
static void b_duplicate_name(pkb *p) {
    p_head(p); p1(p, '('); p_str(p, "w"); p_w(p); p_str(p, "w"); p_w(p); p1(p, 'u'); p1(p, '.');
}
static void b_two_state_dicts(pkb *p) {
    p_head(p); p1(p, '(');
    p_str(p, "model"); p1(p, '}'); p_str(p, "w"); p_w(p); p1(p, 's');
    p_str(p, "ema"); p1(p, '}'); p_str(p, "w"); p_w(p); p1(p, 's');
    p1(p, 'u'); p1(p, '.');
}
static void b_pid_short(pkb *p) {
    p_head(p); p_str(p, "w"); p1(p, '('); p_str(p, "storage"); p_global(p, "torch", "FloatStorage");
    p_str(p, "0"); p_str(p, "cpu"); p1(p, 't'); p1(p, 'Q'); p1(p, 's'); p1(p, '.');
}
static void b_storage_dtype_conflict(pkb *p) {
    p_head(p); p1(p, '(');
    p_str(p, "a"); p_tensor(p, "FloatStorage", "0", 6, 0, 2, S23, T23);
    p_str(p, "b"); p_tensor(p, "IntStorage", "0", 6, 0, 2, S23, T23);
    p1(p, 'u'); p1(p, '.');
}
static void b_call_storage_type(pkb *p) { p_head(p); p_global(p, "torch", "FloatStorage"); p1(p, ')'); p1(p, 'R'); p1(p, '.'); }
static void b_ordered_dict_args(pkb *p) {
    p1(p, 0x80); p1(p, 2); p_global(p, "collections", "OrderedDict"); p1(p, ']'); p1(p, 0x85); p1(p, 'R'); p1(p, '.');
}
static void b_long1_too_long(pkb *p) { p_head(p); p1(p, 0x8a); p1(p, 9); for (int i = 0; i < 9; i++) p1(p, 1); p1(p, '.'); }
static void b_protocol_1(pkb *p) { p1(p, 0x80); p1(p, 1); p1(p, '}'); p1(p, '.'); }
static void b_hooks_not_empty(pkb *p) {
    p_head(p); p_str(p, "w");
    p_global(p, "torch._utils", "_rebuild_tensor_v2"); p1(p, '(');
    p_pid(p, "FloatStorage", "0", 6); p_int(p, 0); p_ints(p, 2, S23); p_ints(p, 2, T23);
    p1(p, 0x89); p1(p, '}'); p_str(p, "h"); p1(p, 'N'); p1(p, 's'); p1(p, 't'); p1(p, 'R'); p1(p, 's'); p1(p, '.');
}
static void b_reduce_on_string(pkb *p) { p_head(p); p_str(p, "os.system"); p1(p, ')'); p1(p, 'R'); p1(p, '.'); }
static void b_build_on_tuple(pkb *p) { p1(p, 0x80); p1(p, 2); p1(p, ')'); p1(p, '}'); p1(p, 'b'); p1(p, '.'); }

static const struct bad_pickle {
    const char *name;
    pbuild      build;
    const char *expect;
} BAD_PICKLES[] = {
    { "global_os_system",         b_os_system,             "GLOBAL 'os system' is not allowed" },
    { "stack_global_builtins_eval", b_builtins_eval_stack_global, "GLOBAL 'builtins eval' is not allowed" },
    { "global_torch_load",        b_torch_load,            "GLOBAL 'torch load' is not allowed" },
    { "opcode_inst",              b_unknown_opcode_inst,   "unsupported pickle opcode 0x69" },
    { "opcode_unknown_ff",        b_unknown_opcode_ff,     "unsupported pickle opcode 0xff" },
    { "stack_underflow",          b_stack_underflow,       "(TUPLE2): stack underflow" },
    { "underflow_below_mark",     b_underflow_below_mark,  "(SETITEM): stack underflow" },
    { "memo_index_out_of_range",  b_memo_out_of_range,     "memo index 5 out of range (the memo has 1 entries)" },
    { "memo_index_skips_ahead",   b_memo_skips_ahead,      "memo index 1000000 skips ahead" },
    { "storage_key_missing",      b_storage_key_missing,   "storage '7' has no record 'arch/data/7'" },
    { "storage_size_mismatch",    b_storage_size_mismatch, "storage '0' of 7 x F32 needs 28 bytes but record 'arch/data/0' holds 24" },
    { "storage_negative_numel",   b_storage_negative_numel, "storage '0' has a negative element count -6" },
    { "storage_key_not_plain",    b_storage_key_path,      "storage key '../0' is not a plain record name" },
    { "view_beyond_storage",      b_view_beyond_storage,   "tensor 'w' of size (2, 3) at storage offset 4 needs 24 bytes of F32 from byte 16, beyond its storage 'arch/data/0' of 24 bytes" },
    { "offset_beyond_storage",    b_offset_beyond_storage, "at storage offset 1000 needs 0 bytes" },
    { "size_overflow",            b_size_overflow,         "tensor 'w' of size (1099511627776, 1099511627776): element count overflows 64 bits" },
    { "byte_size_overflow",       b_bytes_overflow,        "x F32: byte size overflows 64 bits" },
    { "negative_size",            b_negative_size,         "tensor 'w' has a negative size -1 in dimension 0" },
    { "negative_stride",          b_negative_stride,       "tensor 'w' has a negative stride -1 in dimension 1" },
    { "negative_storage_offset",  b_negative_offset,       "tensor 'w' has a negative storage offset -2" },
    { "non_contiguous_stride",    b_non_contiguous,        "tensor 'w' of size (2, 3) has strides (1, 2), which are not contiguous" },
    { "rank_9",                   b_rank_9,                "tensor 'w' has 9 dimensions, more than 8" },
    { "size_stride_rank_mismatch", b_size_stride_rank_mismatch, "tensor 'w' has 2 sizes but 1 strides" },
    { "huge_string_length",       b_huge_string,           "string of 4294967280 bytes exceeds the limit" },
    { "string_past_end",          b_string_past_end,       "truncated: needs 100 operand bytes, 5 left" },
    { "string_not_utf8",          b_bad_utf8,              "string is not valid UTF-8" },
    { "deep_mark_nesting",        b_deep_nesting,          "MARK nesting deeper than 64" },
    { "no_stop",                  b_no_stop,               "without a STOP opcode" },
    { "bytes_after_stop",         b_bytes_after_stop,      "1 bytes follow the STOP opcode" },
    { "two_values_at_stop",       b_two_values_at_stop,    "STOP with 2 values" },
    { "top_level_list",           b_top_level_list,        "data.pkl holds a list, not a state dict" },
    { "value_not_tensor",         b_value_not_tensor,      "state dict entry 'x' is a int, not a tensor" },
    { "duplicate_tensor_name",    b_duplicate_name,        "duplicate tensor name 'w'" },
    { "two_wrapped_state_dicts",  b_two_state_dicts,       "several dicts of tensors ('model' and 'ema')" },
    { "persistent_id_short",      b_pid_short,             "persistent id is not ('storage', type, key, location, numel)" },
    { "storage_dtype_conflict",   b_storage_dtype_conflict, "storage '0' is used as both F32 and I32" },
    { "call_storage_type",        b_call_storage_type,     "'torch.FloatStorage' cannot be called" },
    { "ordered_dict_with_args",   b_ordered_dict_args,     "collections.OrderedDict called with 1 arguments" },
    { "long1_too_long",           b_long1_too_long,        "integer of 9 bytes does not fit in 64 bits" },
    { "protocol_1",               b_protocol_1,            "pickle protocol 1 is not supported" },
    { "backward_hooks",           b_hooks_not_empty,       "with backward hooks is not a plain tensor" },
    { "reduce_on_string",         b_reduce_on_string,      "REDUCE on a str, which is not callable" },
    { "build_on_tuple",           b_build_on_tuple,        "BUILD on a tuple" },
};
static size_t bad_pickle_row;

static int test_bad_pickle(void) {
    const struct bad_pickle *c = &BAD_PICKLES[bad_pickle_row];
    pkb p = { .n = 0 };
    c->build(&p);
    char name[128];
    snprintf(name, sizeof name, "%s.pth", c->name);
    const char *path = tpath(name);
    CHECK(write_pickle_case(path, &p), "write %s", path);
    CHECK_MSG(open_error(path), path, c->expect);
    struct stat sb;
    CHECK(stat(tpath("pwned"), &sb) != 0, "a command in the pickle ran");
    return 0;
}

/* Caps that need big pickles: built in a malloc'ed buffer. */
static int write_big_pickle_case(const char *path, const unsigned char *b, size_t n) {
    zent e[] = { { "arch/data.pkl", b, n }, { "arch/data/0", STORAGE0, sizeof STORAGE0 } };
    return write_zip(path, e, 2, ZW_ZIP64);
}

static int test_stack_too_deep(void) {
    size_t n = 0, cap = (1u << 20) + 16;
    unsigned char *b = malloc(cap);
    b[n++] = 0x80; b[n++] = 2;
    for (int i = 0; i <= 1 << 20; i++) b[n++] = 'N';
    b[n++] = '.';
    const char *path = tpath("stack_too_deep.pth");
    CHECK(write_big_pickle_case(path, b, n), "write");
    free(b);
    CHECK_MSG(open_error(path), path, "(NONE): stack deeper than 1048576 values");
    return 0;
}

static int test_too_many_values(void) {
    size_t n = 0, cap = 2200u * 1003 + 16;
    unsigned char *b = malloc(cap);
    b[n++] = 0x80; b[n++] = 2; b[n++] = ']';
    for (int k = 0; k < 2200; k++) {                 /* MARK None x 1000 APPENDS */
        b[n++] = '(';
        for (int i = 0; i < 1000; i++) b[n++] = 'N';
        b[n++] = 'e';
    }
    b[n++] = '.';
    const char *path = tpath("too_many_values.pth");
    CHECK(write_big_pickle_case(path, b, n), "write");
    free(b);
    CHECK_MSG(open_error(path), path, "the pickle builds more than 2097152 values");
    return 0;
}

/* ---- main ------------------------------------------------------------------------ */

int main(void) {
    const char *base = getenv("TMPDIR");
    snprintf(tmp_root, sizeof tmp_root, "%s/sky_pth_test_XXXXXX", base && *base ? base : "/tmp");
    if (mkdtemp(tmp_root) == NULL) {
        fprintf(stderr, "mkdtemp %s: %s\n", tmp_root, strerror(errno));
        return 1;
    }
    RUN(test_crc32);
    RUN(test_fixture_state_dict);
    RUN(test_fixture_wrapped);
    RUN(test_fixture_proto4);
    RUN(test_shared_storage_views);
    RUN(test_rezip_zip64_saturated);
    RUN(test_rezip_no_descriptor_no_zip64);
    RUN(test_rezip_other_folder);
    RUN(test_open_mem);
    RUN(test_control_pickle_loads);
    RUN(test_empty_state_dict_loads);
    for (bad_file_row = 0; bad_file_row < sizeof BAD_FILES / sizeof BAD_FILES[0]; bad_file_row++) {
        RUN_NAMED(BAD_FILES[bad_file_row].name, test_bad_file);
    }
    RUN(test_duplicate_entry_names);
    RUN(test_unsafe_entry_name);
    RUN(test_saturated_without_zip64_extra);
    RUN(test_saturated_eocd_without_locator);
    RUN(test_big_endian);
    RUN(test_torchscript_archive);
    RUN(test_two_folders);
    RUN(test_missing_data_pkl);
    RUN(test_not_a_file);
    RUN(test_noncontiguous_fixture);
    RUN(test_stack_too_deep);
    RUN(test_too_many_values);
    for (bad_pickle_row = 0; bad_pickle_row < sizeof BAD_PICKLES / sizeof BAD_PICKLES[0]; bad_pickle_row++) {
        RUN_NAMED(BAD_PICKLES[bad_pickle_row].name, test_bad_pickle);
    }
    for (int i = 0; i < n_made; i++) remove(made[i]);
    remove(tpath("pwned"));
    rmdir(tmp_root);
    return CHECK_SUMMARY();
}
