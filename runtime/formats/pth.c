/* runtime/formats/pth.c — .pth (torch.save zip) state dicts: container checks, a restricted
 * unpickler that only builds values, and tensor views checked against their storages.
 *
 * Contract in pth.h; format in reference vae-text-image-files.md §5.2. The pickle is
 * run by a stack machine over a small value model (none, bool, int, float, str, tuple,
 * list, dict, allow-listed global, storage, tensor). No opcode calls anything: REDUCE
 * is only understood for the allow-listed callables, whose effect (an empty dict, a
 * tensor view record) is built here. Every value is allocated once per opcode from an
 * arena, so memory is O(size of data.pkl); nothing walks the value graph recursively,
 * so cycles built with the memo are harmless.
 */
#if !defined(_GNU_SOURCE) && !defined(_POSIX_C_SOURCE)
#define _POSIX_C_SOURCE 200809L /* mmap, O_CLOEXEC */
#endif

#include "formats/pth.h"

#include "core/dtype.h"
#include "core/json.h"
#include "formats/zip.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

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

/* ---- the allow-list ------------------------------------------------------------- */

typedef enum gkind {
    G_ORDERED_DICT,  /* collections.OrderedDict() -> empty dict */
    G_REBUILD_V2,    /* _rebuild_tensor_v2(storage, offset, size, stride, grad, hooks[, meta]) */
    G_REBUILD_V3,    /* _rebuild_tensor_v3(..., hooks, dtype[, meta]): untyped storages */
    G_REBUILD_PARAM, /* _rebuild_parameter(tensor, grad, hooks) -> tensor */
    G_STORAGE,       /* storage class inside a persistent id */
    G_DTYPE          /* torch.<dtype>, argument of _rebuild_tensor_v3 */
} gkind;

typedef struct allowed {
    const char *module, *name;
    gkind       kind;
    sky_dtype   dtype; /* G_STORAGE, G_DTYPE */
} allowed;

/* Everything torch.save writes for a state dict of plain tensors (checked with torch
 * 2.15 for every dtype below). Anything not here is refused by name. */
static const allowed ALLOWED[] = {
    {"collections", "OrderedDict", G_ORDERED_DICT, SKY_DTYPE_U8},
    {"torch._utils", "_rebuild_tensor_v2", G_REBUILD_V2, SKY_DTYPE_U8},
    {"torch._utils", "_rebuild_tensor_v3", G_REBUILD_V3, SKY_DTYPE_U8},
    {"torch._utils", "_rebuild_parameter", G_REBUILD_PARAM, SKY_DTYPE_U8},
    {"torch", "FloatStorage", G_STORAGE, SKY_DTYPE_F32},
    {"torch", "HalfStorage", G_STORAGE, SKY_DTYPE_F16},
    {"torch", "BFloat16Storage", G_STORAGE, SKY_DTYPE_BF16},
    {"torch", "DoubleStorage", G_STORAGE, SKY_DTYPE_F64},
    {"torch", "LongStorage", G_STORAGE, SKY_DTYPE_I64},
    {"torch", "IntStorage", G_STORAGE, SKY_DTYPE_I32},
    {"torch", "ShortStorage", G_STORAGE, SKY_DTYPE_I16},
    {"torch", "CharStorage", G_STORAGE, SKY_DTYPE_I8},
    {"torch", "ByteStorage", G_STORAGE, SKY_DTYPE_U8},
    {"torch", "BoolStorage", G_STORAGE, SKY_DTYPE_BOOL},
    {"torch", "ComplexFloatStorage", G_STORAGE, SKY_DTYPE_C64},
    {"torch", "Float8_e4m3fnStorage", G_STORAGE, SKY_DTYPE_F8_E4M3},
    {"torch", "Float8_e5m2Storage", G_STORAGE, SKY_DTYPE_F8_E5M2},
    {"torch", "UntypedStorage", G_STORAGE, SKY_DTYPE_U8},
    {"torch.storage", "UntypedStorage", G_STORAGE, SKY_DTYPE_U8},
    {"torch", "float32", G_DTYPE, SKY_DTYPE_F32},
    {"torch", "float16", G_DTYPE, SKY_DTYPE_F16},
    {"torch", "bfloat16", G_DTYPE, SKY_DTYPE_BF16},
    {"torch", "float64", G_DTYPE, SKY_DTYPE_F64},
    {"torch", "int64", G_DTYPE, SKY_DTYPE_I64},
    {"torch", "int32", G_DTYPE, SKY_DTYPE_I32},
    {"torch", "int16", G_DTYPE, SKY_DTYPE_I16},
    {"torch", "int8", G_DTYPE, SKY_DTYPE_I8},
    {"torch", "uint8", G_DTYPE, SKY_DTYPE_U8},
    {"torch", "uint16", G_DTYPE, SKY_DTYPE_U16},
    {"torch", "uint32", G_DTYPE, SKY_DTYPE_U32},
    {"torch", "uint64", G_DTYPE, SKY_DTYPE_U64},
    {"torch", "bool", G_DTYPE, SKY_DTYPE_BOOL},
    {"torch", "complex64", G_DTYPE, SKY_DTYPE_C64},
    {"torch", "float8_e4m3fn", G_DTYPE, SKY_DTYPE_F8_E4M3},
    {"torch", "float8_e5m2", G_DTYPE, SKY_DTYPE_F8_E5M2},
};

/* ---- values ---------------------------------------------------------------------- */

typedef enum vkind {
    V_NONE,
    V_BOOL,
    V_INT,
    V_FLOAT,
    V_STR,
    V_TUPLE,
    V_LIST,
    V_DICT,
    V_GLOBAL,
    V_STORAGE,
    V_TENSOR
} vkind;

static const char *const VKIND_NAME[] = {"None", "bool", "int",    "float",   "str",   "tuple",
                                         "list", "dict", "global", "storage", "tensor"};

typedef struct val val;
struct val {
    vkind kind;
    union {
        int64_t i; /* BOOL (0/1), INT */
        double  f; /* FLOAT */
        struct {
            const char *s;
            size_t      len;
        } str; /* STR: into data.pkl, not NUL-terminated */
        struct {
            val  **v;
            size_t n, cap;
        } seq;            /* TUPLE, LIST; DICT: v[2k] key, v[2k+1] value */
        const allowed *g; /* GLOBAL */
        struct {
            const sky_zip_entry *rec; /* "<prefix>/data/<key>" */
            sky_dtype            dtype;
        } sto; /* STORAGE */
        struct {
            val      *storage, *offset, *size, *stride; /* checked kinds: STORAGE, INT, TUPLE, TUPLE */
            sky_dtype dtype;
        } ten; /* TENSOR */
    } u;
};

/* Values are allocated from chunks and freed all at once. */
#define CHUNK_VALS 256
typedef struct chunk {
    struct chunk *next;
    int           used;
    val           v[CHUNK_VALS];
} chunk;

/* The unpickler's state. */
typedef struct pk {
    const char          *path;           /* for messages */
    const unsigned char *p;              /* data.pkl */
    size_t               n, pos, op_pos; /* size, read position, offset of the current opcode */
    int                  op;             /* current opcode */
    val                **stack;
    size_t               sp, stack_cap;
    size_t               marks[SKY_PTH_MAX_MARKS];
    int                  n_marks;
    val                **memo;
    size_t               n_memo, memo_cap;
    chunk               *chunks;
    size_t               n_vals; /* values allocated so far */
    const sky_zip       *zip;
    const char          *prefix;     /* "<prefix>/" of every record */
    size_t               prefix_len; /* including the '/' */
    int                 *rec_dtype;  /* per zip entry: dtype a storage used it as, or -1 */
    sky_err             *err;
} pk;

/* ---- small helpers --------------------------------------------------------------- */

/* malloc'ed copy of s. */
static char *str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char  *d = malloc(n);
    if (d != NULL) memcpy(d, s, n);
    return d;
}

/* Copy n bytes of s for a message: at most 120, non-printable bytes as '?'. */
static const char *shown(char *out, size_t cap, const char *s, size_t n)
{
    size_t k = 0;
    for (size_t i = 0; i < n && k + 4 < cap && k < 120; i++) {
        unsigned char c = (unsigned char)s[i];
        out[k++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (n > 120 && k + 4 < cap) {
        memcpy(out + k, "...", 3);
        k += 3;
    }
    out[k] = '\0';
    return out;
}

/* 1 if the STR value v equals the C string s. */
static int str_is(const val *v, const char *s)
{
    size_t n = strlen(s);
    return v->kind == V_STR && v->u.str.len == n && memcmp(v->u.str.s, s, n) == 0;
}

/* Names of the pickle opcodes, for messages ("unsupported opcode 0x69 (INST)"). */
static const char *op_name(int op)
{
    static const struct {
        unsigned char op;
        const char   *name;
    } t[] = {
        {'(', "MARK"},
        {'.', "STOP"},
        {'0', "POP"},
        {'1', "POP_MARK"},
        {'2', "DUP"},
        {'F', "FLOAT"},
        {'I', "INT"},
        {'J', "BININT"},
        {'K', "BININT1"},
        {'L', "LONG"},
        {'M', "BININT2"},
        {'N', "NONE"},
        {'P', "PERSID"},
        {'Q', "BINPERSID"},
        {'R', "REDUCE"},
        {'S', "STRING"},
        {'T', "BINSTRING"},
        {'U', "SHORT_BINSTRING"},
        {'V', "UNICODE"},
        {'X', "BINUNICODE"},
        {'a', "APPEND"},
        {'b', "BUILD"},
        {'c', "GLOBAL"},
        {'d', "DICT"},
        {'}', "EMPTY_DICT"},
        {'e', "APPENDS"},
        {'g', "GET"},
        {'h', "BINGET"},
        {'i', "INST"},
        {'j', "LONG_BINGET"},
        {'l', "LIST"},
        {']', "EMPTY_LIST"},
        {'o', "OBJ"},
        {'p', "PUT"},
        {'q', "BINPUT"},
        {'r', "LONG_BINPUT"},
        {'s', "SETITEM"},
        {'t', "TUPLE"},
        {')', "EMPTY_TUPLE"},
        {'u', "SETITEMS"},
        {'G', "BINFLOAT"},
        {0x80, "PROTO"},
        {0x81, "NEWOBJ"},
        {0x82, "EXT1"},
        {0x83, "EXT2"},
        {0x84, "EXT4"},
        {0x85, "TUPLE1"},
        {0x86, "TUPLE2"},
        {0x87, "TUPLE3"},
        {0x88, "NEWTRUE"},
        {0x89, "NEWFALSE"},
        {0x8a, "LONG1"},
        {0x8b, "LONG4"},
        {'B', "BINBYTES"},
        {'C', "SHORT_BINBYTES"},
        {0x8c, "SHORT_BINUNICODE"},
        {0x8d, "BINUNICODE8"},
        {0x8e, "BINBYTES8"},
        {0x8f, "EMPTY_SET"},
        {0x90, "ADDITEMS"},
        {0x91, "FROZENSET"},
        {0x92, "NEWOBJ_EX"},
        {0x93, "STACK_GLOBAL"},
        {0x94, "MEMOIZE"},
        {0x95, "FRAME"},
        {0x96, "BYTEARRAY8"},
        {0x97, "NEXT_BUFFER"},
        {0x98, "READONLY_BUFFER"},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++) {
        if (t[i].op == op) return t[i].name;
    }
    return "not a pickle opcode";
}

/* Fail with "<path>: data.pkl byte N (OPNAME): <message>". */
SKY_PRINTF(2, 3)
static sky_status pk_fail(const pk *m, const char *fmt, ...)
{
    char    msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sky_fail(m->err, "%s: data.pkl byte %zu (%s): %s", m->path, m->op_pos, op_name(m->op), msg);
}

/* A new value of kind k (zeroed), or NULL after failing. */
static val *new_val(pk *m, vkind k)
{
    if (m->n_vals >= SKY_PTH_MAX_VALUES) {
        pk_fail(m, "the pickle builds more than %d values", SKY_PTH_MAX_VALUES);
        return NULL;
    }
    m->n_vals++;
    if (m->chunks == NULL || m->chunks->used == CHUNK_VALS) {
        chunk *c = calloc(1, sizeof *c);
        if (c == NULL) {
            pk_fail(m, "out of memory");
            return NULL;
        }
        c->next = m->chunks;
        m->chunks = c;
    }
    val *v = &m->chunks->v[m->chunks->used++];
    v->kind = k;
    return v;
}

/* Free every value and its item array. */
static void free_vals(pk *m)
{
    for (chunk *c = m->chunks, *next; c != NULL; c = next) {
        next = c->next;
        for (int i = 0; i < c->used; i++) {
            vkind k = c->v[i].kind;
            if (k == V_TUPLE || k == V_LIST || k == V_DICT) free(c->v[i].u.seq.v);
        }
        free(c);
    }
    m->chunks = NULL;
}

/* Append n items to a TUPLE/LIST/DICT value, growing its array. The total of all
 * items is bounded by the number of pushes, hence by the pickle's size. */
static sky_status seq_add(pk *m, val *s, val *const *items, size_t n)
{
    if (n > s->u.seq.cap - s->u.seq.n) {
        size_t cap = s->u.seq.cap ? s->u.seq.cap : 4;
        while (cap - s->u.seq.n < n) {
            if (cap > SIZE_MAX / 2 / sizeof(val *)) return pk_fail(m, "container too large");
            cap *= 2;
        }
        val **v = realloc(s->u.seq.v, cap * sizeof *v);
        if (v == NULL) return pk_fail(m, "out of memory for a container of %zu items", cap);
        s->u.seq.v = v;
        s->u.seq.cap = cap;
    }
    if (n > 0) memcpy(s->u.seq.v + s->u.seq.n, items, n * sizeof *items);
    s->u.seq.n += n;
    return SKY_OK;
}

/* ---- the stack ------------------------------------------------------------------- */

/* Values above the innermost MARK (Python keeps a fresh stack per MARK). */
static size_t avail(const pk *m) { return m->sp - (m->n_marks ? m->marks[m->n_marks - 1] : 0); }

static sky_status push(pk *m, val *v)
{
    if (v == NULL) return SKY_ERR; /* new_val already failed */
    if (m->sp == m->stack_cap) {
        if (m->sp >= SKY_PTH_MAX_STACK) { return pk_fail(m, "stack deeper than %d values", SKY_PTH_MAX_STACK); }
        size_t cap = m->stack_cap ? 2 * m->stack_cap : 64;
        val  **s = realloc(m->stack, cap * sizeof *s);
        if (s == NULL) return pk_fail(m, "out of memory for the stack");
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return SKY_OK;
}

/* Pop k values (above the innermost MARK) into out[0..k), bottom first. */
static sky_status pop_n(pk *m, val **out, size_t k)
{
    if (avail(m) < k) { return pk_fail(m, "stack underflow: needs %zu values, %zu above the mark", k, avail(m)); }
    m->sp -= k;
    for (size_t i = 0; i < k; i++) out[i] = m->stack[m->sp + i];
    return SKY_OK;
}

/* The value on top of the stack (not popped), or NULL after failing. */
static val *top(pk *m)
{
    if (avail(m) == 0) {
        pk_fail(m, "stack underflow: needs a value, the stack is empty above the mark");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* Pop everything above the innermost MARK and the MARK; *items points into the stack
 * and stays valid until the next push. */
static sky_status pop_mark(pk *m, val ***items, size_t *n)
{
    if (m->n_marks == 0) return pk_fail(m, "no MARK on the stack");
    size_t base = m->marks[--m->n_marks];
    *items = m->stack != NULL ? m->stack + base : NULL; /* NULL: nothing was ever pushed */
    *n = m->sp - base;
    m->sp = base;
    return SKY_OK;
}

/* A new TUPLE holding n values. */
static val *new_tuple(pk *m, val *const *items, size_t n)
{
    val *t = new_val(m, V_TUPLE);
    if (t != NULL && seq_add(m, t, items, n) != SKY_OK) return NULL;
    return t;
}

/* ---- reading operands -------------------------------------------------------------- */

/* Check that k operand bytes follow the opcode. */
static sky_status need(pk *m, size_t k)
{
    if (m->n - m->pos < k) { return pk_fail(m, "truncated: needs %zu operand bytes, %zu left", k, m->n - m->pos); }
    return SKY_OK;
}

/* Little-endian unsigned operand of k <= 8 bytes. */
static uint64_t rd_le(pk *m, size_t k)
{
    uint64_t v = 0;
    for (size_t i = k; i-- > 0;) v = (v << 8) | m->p[m->pos + i];
    m->pos += k;
    return v;
}

/* A string operand of len bytes (BINUNICODE family). */
static sky_status op_string(pk *m, uint64_t len)
{
    if (len > SKY_PTH_MAX_STRING) {
        return pk_fail(m, "string of %llu bytes exceeds the limit of %zu bytes", (ull)len, SKY_PTH_MAX_STRING);
    }
    if (need(m, (size_t)len) != SKY_OK) return SKY_ERR;
    const char *s = (const char *)m->p + m->pos;
    size_t      bad = sky_utf8_check(s, (size_t)len);
    if (bad != len) return pk_fail(m, "string is not valid UTF-8 (byte %zu of it)", bad);
    m->pos += (size_t)len;
    val *v = new_val(m, V_STR);
    if (v == NULL) return SKY_ERR;
    v->u.str.s = s;
    v->u.str.len = (size_t)len;
    return push(m, v);
}

/* LONG1 / LONG4: k little-endian two's complement bytes, at most 8. */
static sky_status op_long(pk *m, uint64_t k)
{
    if (k > 8) return pk_fail(m, "integer of %llu bytes does not fit in 64 bits", (ull)k);
    if (need(m, (size_t)k) != SKY_OK) return SKY_ERR;
    uint64_t u = rd_le(m, (size_t)k);
    if (k > 0 && k < 8 && (u >> (8 * k - 1)) & 1) u |= ~(uint64_t)0 << (8 * k); /* sign-extend */
    val *v = new_val(m, V_INT);
    if (v == NULL) return SKY_ERR;
    v->u.i = (int64_t)u; /* two's complement on every C11 target we build */
    return push(m, v);
}

/* Look module.name up in the allow-list and push it; refuse anything else. */
static sky_status push_global(pk *m, const char *mod, size_t mlen, const char *name, size_t nlen)
{
    for (size_t i = 0; i < sizeof ALLOWED / sizeof ALLOWED[0]; i++) {
        const allowed *a = &ALLOWED[i];
        if (strlen(a->module) == mlen && memcmp(a->module, mod, mlen) == 0 && strlen(a->name) == nlen &&
            memcmp(a->name, name, nlen) == 0) {
            val *v = new_val(m, V_GLOBAL);
            if (v == NULL) return SKY_ERR;
            v->u.g = a;
            return push(m, v);
        }
    }
    char a[160], b[160];
    return pk_fail(m,
                   "GLOBAL '%s %s' is not allowed: a state dict needs only collections.OrderedDict, "
                   "torch._utils._rebuild_tensor_v2/_v3/_parameter and torch storage/dtype names; refusing "
                   "to load (the file holds more than tensors, or is malicious)",
                   shown(a, sizeof a, mod, mlen), shown(b, sizeof b, name, nlen));
}

/* GLOBAL: "module\nname\n", each line at most 256 bytes. */
static sky_status op_global(pk *m)
{
    const char *line[2];
    size_t      len[2];
    for (int k = 0; k < 2; k++) {
        const char *s = (const char *)m->p + m->pos;
        size_t      room = m->n - m->pos < 257 ? m->n - m->pos : 257;
        const char *nl = memchr(s, '\n', room);
        if (nl == NULL) return pk_fail(m, "GLOBAL %s is not a line of at most 256 bytes", k ? "name" : "module");
        line[k] = s;
        len[k] = (size_t)(nl - s);
        m->pos += len[k] + 1;
    }
    return push_global(m, line[0], len[0], line[1], len[1]);
}

/* ---- memo ------------------------------------------------------------------------ */

/* memo[idx] = top of stack. Python picklers number entries 0, 1, 2, ...; an index may
 * replace an entry or add the next one, never skip ahead (so the memo stays dense and
 * its size is bounded by the number of BINPUTs). */
static sky_status memo_put(pk *m, uint64_t idx)
{
    val *v = top(m);
    if (v == NULL) return SKY_ERR;
    if (idx > m->n_memo) {
        return pk_fail(m, "memo index %llu skips ahead of the memo (%zu entries)", (ull)idx, m->n_memo);
    }
    if (idx == m->n_memo) {
        if (m->n_memo >= SKY_PTH_MAX_MEMO) return pk_fail(m, "more than %d memo entries", SKY_PTH_MAX_MEMO);
        if (m->n_memo == m->memo_cap) {
            size_t cap = m->memo_cap ? 2 * m->memo_cap : 64;
            val  **mm = realloc(m->memo, cap * sizeof *mm);
            if (mm == NULL) return pk_fail(m, "out of memory for the memo");
            m->memo = mm;
            m->memo_cap = cap;
        }
        m->n_memo++;
    }
    m->memo[idx] = v;
    return SKY_OK;
}

static sky_status memo_get(pk *m, uint64_t idx)
{
    if (idx >= m->n_memo) {
        return pk_fail(m, "memo index %llu out of range (the memo has %zu entries)", (ull)idx, m->n_memo);
    }
    return push(m, m->memo[idx]);
}

/* ---- persistent ids and callables ------------------------------------------------ */

/* BINPERSID: ('storage', <Type>Storage, key, location, numel) -> a storage record. */
static sky_status op_persid(pk *m)
{
    val *pid = NULL;
    char a[160];
    if (pop_n(m, &pid, 1) != SKY_OK) return SKY_ERR;
    if (pid->kind != V_TUPLE || pid->u.seq.n != 5 || !str_is(pid->u.seq.v[0], "storage")) {
        return pk_fail(m, "persistent id is not ('storage', type, key, location, numel)");
    }
    val *const *f = pid->u.seq.v;
    if (f[1]->kind != V_GLOBAL || f[1]->u.g->kind != G_STORAGE) {
        return pk_fail(m, "persistent id names a %s where a torch storage type belongs", VKIND_NAME[f[1]->kind]);
    }
    if (f[2]->kind != V_STR || f[3]->kind != V_STR || f[4]->kind != V_INT) {
        return pk_fail(m, "persistent id fields are (%s, %s, %s), expected (str key, str location, int numel)",
                       VKIND_NAME[f[2]->kind], VKIND_NAME[f[3]->kind], VKIND_NAME[f[4]->kind]);
    }
    /* the key names a record: keep it a plain name (torch writes "0", "1", ...) */
    const char *key = f[2]->u.str.s;
    size_t      klen = f[2]->u.str.len;
    int         plain = klen > 0 && klen <= 64 && !(klen == 2 && key[0] == '.' && key[1] == '.');
    for (size_t i = 0; i < klen && plain; i++) {
        char c = key[i];
        plain = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_' || c == '-' ||
                c == '.';
    }
    if (!plain) return pk_fail(m, "storage key '%s' is not a plain record name", shown(a, sizeof a, key, klen));
    char *rname = malloc(m->prefix_len + 5 + klen + 1); /* "<prefix>/data/<key>" */
    if (rname == NULL) return pk_fail(m, "out of memory");
    memcpy(rname, m->prefix, m->prefix_len);
    memcpy(rname + m->prefix_len, "data/", 5);
    memcpy(rname + m->prefix_len + 5, key, klen);
    rname[m->prefix_len + 5 + klen] = '\0';
    const sky_zip_entry *rec = sky_zip_find(m->zip, rname);
    if (rec == NULL) {
        sky_status st = pk_fail(m, "storage '%.*s' has no record '%.200s' in the archive", (int)klen, key, rname);
        free(rname);
        return st;
    }
    free(rname);
    /* the record holds exactly numel elements of the storage type */
    sky_dtype dt = f[1]->u.g->dtype;
    uint64_t  isz = (uint64_t)sky_dtype_bits(dt) / 8;
    int64_t   numel = f[4]->u.i;
    if (numel < 0) return pk_fail(m, "storage '%.*s' has a negative element count %lld", (int)klen, key, (ll)numel);
    if ((uint64_t)numel > UINT64_MAX / isz) {
        return pk_fail(m, "storage '%.*s' of %lld x %s: byte size overflows 64 bits", (int)klen, key, (ll)numel,
                       sky_dtype_name(dt));
    }
    if ((uint64_t)numel * isz != rec->size) {
        return pk_fail(m, "storage '%.*s' of %lld x %s needs %llu bytes but record '%s' holds %llu", (int)klen, key,
                       (ll)numel, sky_dtype_name(dt), (ull)numel * (ull)isz, rec->name, (ull)rec->size);
    }
    int idx = sky_zip_index(m->zip, rec);
    if (m->rec_dtype[idx] >= 0 && m->rec_dtype[idx] != (int)dt) {
        return pk_fail(m, "storage '%.*s' is used as both %s and %s", (int)klen, key,
                       sky_dtype_name((sky_dtype)m->rec_dtype[idx]), sky_dtype_name(dt));
    }
    m->rec_dtype[idx] = (int)dt;
    val *s = new_val(m, V_STORAGE);
    if (s == NULL) return SKY_ERR;
    s->u.sto.rec = rec;
    s->u.sto.dtype = dt;
    return push(m, s);
}

/* _rebuild_tensor_v2 / _v3: check argument kinds; numbers are checked once the
 * tensor's name is known (make_tensor). */
static sky_status rebuild_tensor(pk *m, gkind g, val *args, val **out)
{
    size_t      n = args->u.seq.n;
    val *const *a = args->u.seq.v;
    const char *fn = g == G_REBUILD_V2 ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3";
    size_t      lo = g == G_REBUILD_V2 ? 6 : 7;
    if (n < lo || n > lo + 1) {
        return pk_fail(m, "%s called with %zu arguments, expected %zu or %zu", fn, n, lo, lo + 1);
    }
    if (a[0]->kind != V_STORAGE || a[1]->kind != V_INT || a[2]->kind != V_TUPLE || a[3]->kind != V_TUPLE ||
        a[4]->kind != V_BOOL || a[5]->kind != V_DICT) {
        return pk_fail(m,
                       "%s arguments are (%s, %s, %s, %s, %s, %s), expected (storage, int offset, tuple "
                       "size, tuple stride, bool requires_grad, dict hooks)",
                       fn, VKIND_NAME[a[0]->kind], VKIND_NAME[a[1]->kind], VKIND_NAME[a[2]->kind],
                       VKIND_NAME[a[3]->kind], VKIND_NAME[a[4]->kind], VKIND_NAME[a[5]->kind]);
    }
    if (a[5]->u.seq.n != 0) return pk_fail(m, "%s with backward hooks is not a plain tensor", fn);
    sky_dtype dt = a[0]->u.sto.dtype;
    if (g == G_REBUILD_V3) {
        if (a[6]->kind != V_GLOBAL || a[6]->u.g->kind != G_DTYPE) {
            return pk_fail(m, "%s argument 7 is a %s, expected a torch dtype", fn, VKIND_NAME[a[6]->kind]);
        }
        dt = a[6]->u.g->dtype;
    }
    for (int k = 2; k <= 3; k++) {
        for (size_t i = 0; i < a[k]->u.seq.n; i++) {
            if (a[k]->u.seq.v[i]->kind != V_INT) {
                return pk_fail(m, "%s: %s[%zu] is a %s, expected an int", fn, k == 2 ? "size" : "stride", i,
                               VKIND_NAME[a[k]->u.seq.v[i]->kind]);
            }
        }
    }
    val *t = new_val(m, V_TENSOR);
    if (t == NULL) return SKY_ERR;
    t->u.ten.storage = a[0];
    t->u.ten.offset = a[1];
    t->u.ten.size = a[2];
    t->u.ten.stride = a[3];
    t->u.ten.dtype = dt;
    *out = t;
    return SKY_OK;
}

/* REDUCE: apply an allow-listed callable to an argument tuple (nothing is executed:
 * each callable's result is built here). */
static sky_status op_reduce(pk *m)
{
    val *fa[2] = {NULL, NULL};
    if (pop_n(m, fa, 2) != SKY_OK) return SKY_ERR;
    val *fn = fa[0], *args = fa[1], *out = NULL;
    if (fn->kind != V_GLOBAL) return pk_fail(m, "REDUCE on a %s, which is not callable", VKIND_NAME[fn->kind]);
    const allowed *g = fn->u.g;
    if (args->kind != V_TUPLE) return pk_fail(m, "REDUCE arguments are a %s, expected a tuple", VKIND_NAME[args->kind]);
    size_t      n = args->u.seq.n;
    val *const *a = args->u.seq.v;
    switch (g->kind) {
    case G_ORDERED_DICT:
        if (n != 0) return pk_fail(m, "collections.OrderedDict called with %zu arguments, expected none", n);
        out = new_val(m, V_DICT);
        break;
    case G_REBUILD_V2:
    case G_REBUILD_V3:
        if (rebuild_tensor(m, g->kind, args, &out) != SKY_OK) return SKY_ERR;
        break;
    case G_REBUILD_PARAM:
        if (n != 3 || a[0]->kind != V_TENSOR || a[1]->kind != V_BOOL || a[2]->kind != V_DICT || a[2]->u.seq.n) {
            return pk_fail(m, "_rebuild_parameter arguments are not (tensor, bool, empty dict)");
        }
        out = a[0];
        break;
    case G_STORAGE:
    case G_DTYPE: return pk_fail(m, "'%s.%s' cannot be called", g->module, g->name);
    }
    return push(m, out);
}

/* ---- the machine ----------------------------------------------------------------- */

/* Run data.pkl to its STOP and return the single value it leaves. */
static sky_status run(pk *m, val **result)
{
    val   *v = NULL, *two[2] = {NULL, NULL}, **items = NULL;
    size_t n = 0;
    for (;;) {
        if (m->pos >= m->n) {
            m->op_pos = m->n;
            m->op = -1;
            return sky_fail(m->err, "%s: data.pkl ends at byte %zu without a STOP opcode", m->path, m->n);
        }
        m->op_pos = m->pos;
        m->op = m->p[m->pos++];
        sky_status st = SKY_OK;
        switch (m->op) {
        case 0x80: /* PROTO */
            if ((st = need(m, 1)) != SKY_OK) break;
            if (m->p[m->pos] < 2 || m->p[m->pos] > 5) {
                st = pk_fail(m, "pickle protocol %d is not supported (2 to 5)", m->p[m->pos]);
            }
            m->pos++;
            break;
        case 0x95: /* FRAME: a length prefix, ignored */
            if ((st = need(m, 8)) != SKY_OK) break;
            if (rd_le(m, 8) > m->n - m->pos) st = pk_fail(m, "frame runs past the end of the pickle");
            break;
        case '.': /* STOP */
            if (m->n_marks != 0 || m->sp != 1) {
                return pk_fail(m, "STOP with %zu values and %d MARKs on the stack, expected exactly one value", m->sp,
                               m->n_marks);
            }
            if (m->pos != m->n) return pk_fail(m, "%zu bytes follow the STOP opcode", m->n - m->pos);
            *result = m->stack[0];
            return SKY_OK;
        case '(': /* MARK */
            if (m->n_marks == SKY_PTH_MAX_MARKS) {
                st = pk_fail(m, "MARK nesting deeper than %d", SKY_PTH_MAX_MARKS);
                break;
            }
            m->marks[m->n_marks++] = m->sp;
            break;
        case ')': /* EMPTY_TUPLE */ st = push(m, new_tuple(m, NULL, 0)); break;
        case 't': /* TUPLE */
            if ((st = pop_mark(m, &items, &n)) == SKY_OK) st = push(m, new_tuple(m, items, n));
            break;
        case 0x85:
        case 0x86:
        case 0x87: { /* TUPLE1..3 */
            val   *t[3];
            size_t k = (size_t)(m->op - 0x84);
            if ((st = pop_n(m, t, k)) == SKY_OK) st = push(m, new_tuple(m, t, k));
            break;
        }
        case ']': /* EMPTY_LIST */ st = push(m, new_val(m, V_LIST)); break;
        case '}': /* EMPTY_DICT */ st = push(m, new_val(m, V_DICT)); break;
        case 'a': /* APPEND */
            if ((st = pop_n(m, &v, 1)) != SKY_OK) break;
            if ((two[0] = top(m)) == NULL) return SKY_ERR;
            if (two[0]->kind != V_LIST) return pk_fail(m, "APPEND to a %s", VKIND_NAME[two[0]->kind]);
            st = seq_add(m, two[0], &v, 1);
            break;
        case 'e': /* APPENDS */
            if ((st = pop_mark(m, &items, &n)) != SKY_OK) break;
            if ((two[0] = top(m)) == NULL) return SKY_ERR;
            if (two[0]->kind != V_LIST) return pk_fail(m, "APPENDS to a %s", VKIND_NAME[two[0]->kind]);
            st = seq_add(m, two[0], items, n);
            break;
        case 's': /* SETITEM */
            if ((st = pop_n(m, two, 2)) != SKY_OK) break;
            if ((v = top(m)) == NULL) return SKY_ERR;
            if (v->kind != V_DICT) return pk_fail(m, "SETITEM on a %s", VKIND_NAME[v->kind]);
            st = seq_add(m, v, two, 2);
            break;
        case 'u': /* SETITEMS */
            if ((st = pop_mark(m, &items, &n)) != SKY_OK) break;
            if (n % 2 != 0) return pk_fail(m, "SETITEMS with an odd number (%zu) of keys and values", n);
            if ((v = top(m)) == NULL) return SKY_ERR;
            if (v->kind != V_DICT) return pk_fail(m, "SETITEMS on a %s", VKIND_NAME[v->kind]);
            st = seq_add(m, v, items, n);
            break;
        case 'b': /* BUILD: OrderedDict state (_metadata), ignored */
            if ((st = pop_n(m, &v, 1)) != SKY_OK) break;
            if ((v = top(m)) == NULL) return SKY_ERR;
            if (v->kind != V_DICT)
                return pk_fail(m, "BUILD on a %s; only a dict's state is accepted", VKIND_NAME[v->kind]);
            break;
        case 'q': /* BINPUT */
            if ((st = need(m, 1)) == SKY_OK) st = memo_put(m, rd_le(m, 1));
            break;
        case 'r': /* LONG_BINPUT */
            if ((st = need(m, 4)) == SKY_OK) st = memo_put(m, rd_le(m, 4));
            break;
        case 0x94: /* MEMOIZE */ st = memo_put(m, m->n_memo); break;
        case 'h': /* BINGET */
            if ((st = need(m, 1)) == SKY_OK) st = memo_get(m, rd_le(m, 1));
            break;
        case 'j': /* LONG_BINGET */
            if ((st = need(m, 4)) == SKY_OK) st = memo_get(m, rd_le(m, 4));
            break;
        case 'X': /* BINUNICODE */
            if ((st = need(m, 4)) == SKY_OK) st = op_string(m, rd_le(m, 4));
            break;
        case 0x8c: /* SHORT_BINUNICODE */
            if ((st = need(m, 1)) == SKY_OK) st = op_string(m, rd_le(m, 1));
            break;
        case 0x8d: /* BINUNICODE8 */
            if ((st = need(m, 8)) == SKY_OK) st = op_string(m, rd_le(m, 8));
            break;
        case 'K':
        case 'M':
        case 'J': { /* BININT1, BININT2, BININT */
            size_t k = m->op == 'K' ? 1 : m->op == 'M' ? 2 : 4;
            if ((st = need(m, k)) != SKY_OK) break;
            uint64_t u = rd_le(m, k);
            if ((v = new_val(m, V_INT)) == NULL) return SKY_ERR;
            v->u.i = k == 4 ? (int64_t)(int32_t)(uint32_t)u : (int64_t)u;
            st = push(m, v);
            break;
        }
        case 0x8a: /* LONG1 */
            if ((st = need(m, 1)) == SKY_OK) st = op_long(m, rd_le(m, 1));
            break;
        case 0x8b: /* LONG4 */
            if ((st = need(m, 4)) == SKY_OK) st = op_long(m, rd_le(m, 4));
            break;
        case 0x88:
        case 0x89: /* NEWTRUE, NEWFALSE */
            if ((v = new_val(m, V_BOOL)) == NULL) return SKY_ERR;
            v->u.i = m->op == 0x88;
            st = push(m, v);
            break;
        case 'N': /* NONE */ st = push(m, new_val(m, V_NONE)); break;
        case 'G': { /* BINFLOAT: big-endian double */
            if ((st = need(m, 8)) != SKY_OK) break;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = (u << 8) | m->p[m->pos++];
            if ((v = new_val(m, V_FLOAT)) == NULL) return SKY_ERR;
            memcpy(&v->u.f, &u, sizeof u);
            st = push(m, v);
            break;
        }
        case 'c': /* GLOBAL */ st = op_global(m); break;
        case 0x93: /* STACK_GLOBAL */
            if ((st = pop_n(m, two, 2)) != SKY_OK) break;
            if (two[0]->kind != V_STR || two[1]->kind != V_STR) {
                return pk_fail(m, "STACK_GLOBAL operands are %s and %s, expected two strings", VKIND_NAME[two[0]->kind],
                               VKIND_NAME[two[1]->kind]);
            }
            st = push_global(m, two[0]->u.str.s, two[0]->u.str.len, two[1]->u.str.s, two[1]->u.str.len);
            break;
        case 'Q': /* BINPERSID */ st = op_persid(m); break;
        case 'R': /* REDUCE */ st = op_reduce(m); break;
        default:
            return pk_fail(m,
                           "unsupported pickle opcode 0x%02x; only what torch.save writes for a state "
                           "dict is accepted",
                           m->op);
        }
        if (st != SKY_OK) return SKY_ERR;
    }
}

/* ---- from values to tensors ------------------------------------------------------- */

/* Check the view (name, t) against its storage and fill *out (reference §5.2, "For each
 * resulting tensor"). name is NUL-terminated. */
static sky_status make_tensor(const pk *m, const char *name, const val *t, sky_st_tensor *out,
                              const unsigned char *base)
{
    const char          *path = m->path;
    const val           *size = t->u.ten.size, *stride = t->u.ten.stride;
    const sky_zip_entry *rec = t->u.ten.storage->u.sto.rec;
    size_t               ndim = size->u.seq.n;
    if (ndim > SKY_MAX_DIMS) {
        return sky_fail(m->err, "%s: tensor '%.200s' has %zu dimensions, more than %d", path, name, ndim, SKY_MAX_DIMS);
    }
    if (stride->u.seq.n != ndim) {
        return sky_fail(m->err, "%s: tensor '%.200s' has %zu sizes but %zu strides", path, name, ndim, stride->u.seq.n);
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
            return sky_fail(m->err, "%s: tensor '%.200s' has a negative size %lld in dimension %zu (size (%s))", path,
                            name, (ll)sz[i], i, sbuf);
        }
        if (st[i] < 0) {
            return sky_fail(m->err, "%s: tensor '%.200s' has a negative stride %lld in dimension %zu", path, name,
                            (ll)st[i], i);
        }
    }
    int64_t off = t->u.ten.offset->u.i;
    if (off < 0) {
        return sky_fail(m->err, "%s: tensor '%.200s' has a negative storage offset %lld", path, name, (ll)off);
    }
    /* element count and byte size, overflow-checked */
    sky_dtype dt = t->u.ten.dtype;
    uint64_t  isz = (uint64_t)sky_dtype_bits(dt) / 8, numel = 1;
    for (size_t i = 0; i < ndim; i++) {
        if (sz[i] != 0 && numel > (uint64_t)INT64_MAX / (uint64_t)sz[i]) {
            return sky_fail(m->err, "%s: tensor '%.200s' of size (%s): element count overflows 64 bits", path, name,
                            sbuf);
        }
        numel *= (uint64_t)sz[i];
    }
    if (numel > UINT64_MAX / isz) {
        return sky_fail(m->err, "%s: tensor '%.200s' of size (%s) x %s: byte size overflows 64 bits", path, name, sbuf,
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
                return sky_fail(m->err,
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
        return sky_fail(m->err,
                        "%s: tensor '%.200s' of size (%s) at storage offset %lld needs %llu bytes of "
                        "%s from byte %llu, beyond its storage '%s' of %llu bytes",
                        path, name, sbuf, (ll)off, (ull)nbytes, sky_dtype_name(dt), (ull)off * (ull)isz, rec->name,
                        (ull)rec->size);
    }
    if (nbytes > SIZE_MAX) return sky_fail(m->err, "%s: tensor '%.200s' is too large for this machine", path, name);
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
static size_t count_tensors(const val *d)
{
    size_t k = 0;
    for (size_t i = 1; i < d->u.seq.n; i += 2) k += d->u.seq.v[i]->kind == V_TENSOR;
    return k;
}

/* Find the state dict in the pickle's result: the result itself, or the one value of
 * it that is a dict of tensors (reference §5.2, "Object shape"). */
static sky_status find_state_dict(sky_pth *f, const pk *m, const val *root, const val **sd)
{
    char a[160], b[160];
    if (root->kind != V_DICT) {
        return sky_fail(m->err,
                        "%s: data.pkl holds a %s, not a state dict (a dict of name -> tensor); "
                        "save model.state_dict() rather than the model",
                        m->path, VKIND_NAME[root->kind]);
    }
    if (count_tensors(root) > 0 || root->u.seq.n == 0) {
        *sd = root;
        return SKY_OK;
    }
    const val *key = NULL;
    *sd = NULL;
    for (size_t i = 0; i + 1 < root->u.seq.n; i += 2) {
        const val *k = root->u.seq.v[i], *v = root->u.seq.v[i + 1];
        if (v->kind != V_DICT || count_tensors(v) == 0) continue;
        if (*sd != NULL) {
            return sky_fail(m->err,
                            "%s: data.pkl holds several dicts of tensors ('%s' and '%s'); only one "
                            "state dict, possibly wrapped once, is supported",
                            m->path, key->kind == V_STR ? shown(a, sizeof a, key->u.str.s, key->u.str.len) : "?",
                            k->kind == V_STR ? shown(b, sizeof b, k->u.str.s, k->u.str.len) : "?");
        }
        *sd = v;
        key = k;
    }
    if (*sd == NULL) {
        return sky_fail(m->err,
                        "%s: data.pkl holds a dict without tensors, neither a state dict nor one "
                        "wrapping a state dict",
                        m->path);
    }
    if (key->kind != V_STR) {
        return sky_fail(m->err, "%s: the state dict is wrapped under a %s key, expected a string", m->path,
                        VKIND_NAME[key->kind]);
    }
    f->wrapper = malloc(key->u.str.len + 1);
    if (f->wrapper == NULL) return sky_fail(m->err, "%s: out of memory", m->path);
    memcpy(f->wrapper, key->u.str.s, key->u.str.len);
    f->wrapper[key->u.str.len] = '\0';
    return SKY_OK;
}

/* Turn the state dict into f->tensors: every key a string, every value a tensor. */
static sky_status collect(sky_pth *f, const pk *m, const val *sd, const unsigned char *base)
{
    char   a[160];
    size_t n = sd->u.seq.n / 2, name_bytes = 0;
    for (size_t i = 0; i < n; i++) {
        const val *k = sd->u.seq.v[2 * i], *v = sd->u.seq.v[2 * i + 1];
        if (k->kind != V_STR) {
            return sky_fail(m->err, "%s: state dict key %zu is a %s, expected a string", m->path, i,
                            VKIND_NAME[k->kind]);
        }
        const char *s = k->u.str.s;
        size_t      len = k->u.str.len;
        if (len == 0 || memchr(s, '\0', len) != NULL) {
            return sky_fail(m->err, "%s: state dict key %zu ('%s') is empty or contains a NUL byte", m->path, i,
                            shown(a, sizeof a, s, len));
        }
        if (v->kind != V_TENSOR) {
            return sky_fail(m->err,
                            "%s: state dict entry '%s' is a %s, not a tensor; only dicts of tensors "
                            "are supported",
                            m->path, shown(a, sizeof a, s, len), VKIND_NAME[v->kind]);
        }
        name_bytes += len + 1; /* bounded by the pickle's size */
    }
    if (n > INT_MAX) return sky_fail(m->err, "%s: %zu tensors is too many", m->path, n);
    f->tensors = calloc(n ? n : 1, sizeof *f->tensors);
    f->names = malloc(name_bytes ? name_bytes : 1);
    if (f->tensors == NULL || f->names == NULL)
        return sky_fail(m->err, "%s: out of memory for %zu tensors", m->path, n);
    char *name = f->names;
    for (size_t i = 0; i < n; i++) {
        const val *k = sd->u.seq.v[2 * i], *v = sd->u.seq.v[2 * i + 1];
        memcpy(name, k->u.str.s, k->u.str.len);
        name[k->u.str.len] = '\0';
        if (make_tensor(m, name, v, &f->tensors[i], base) != SKY_OK) return SKY_ERR;
        name += k->u.str.len + 1;
        f->count++;
    }
    qsort(f->tensors, n, sizeof *f->tensors, by_name);
    for (size_t i = 1; i < n; i++) {
        if (strcmp(f->tensors[i - 1].name, f->tensors[i].name) == 0) {
            return sky_fail(m->err, "%s: duplicate tensor name '%.200s'", m->path, f->tensors[i].name);
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
                            shown(a, sizeof a, s, (size_t)bo->size));
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

    pk m;
    memset(&m, 0, sizeof m);
    m.path = path;
    m.p = p;
    m.n = (size_t)pkl->size;
    m.zip = z;
    m.prefix = first;
    m.prefix_len = plen;
    m.err = err;
    m.rec_dtype = malloc((size_t)sky_zip_count(z) * sizeof *m.rec_dtype);
    sky_status st;
    if (m.rec_dtype == NULL) {
        st = sky_fail(err, "%s: out of memory", path);
    } else {
        for (int i = 0; i < sky_zip_count(z); i++) m.rec_dtype[i] = -1;
        val       *root = NULL;
        const val *sd = NULL;
        st = run(&m, &root);
        if (st == SKY_OK) st = find_state_dict(f, &m, root, &sd);
        if (st == SKY_OK) st = collect(f, &m, sd, buf);
    }
    free_vals(&m);
    free(m.stack);
    free(m.memo);
    free(m.rec_dtype);
    return st;
}

/* ---- public ---------------------------------------------------------------------- */

/* Allocate a handle holding a copy of path. */
static sky_pth *new_pth(const char *path, sky_err *err)
{
    sky_pth *f = calloc(1, sizeof *f);
    if (f == NULL || (f->path = str_dup(path)) == NULL) {
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
    sky_status  st = SKY_ERR;
    int         fd = open(path, O_RDONLY | O_CLOEXEC);
    struct stat sb;
    if (fd < 0) {
        sky_fail(err, "%s: cannot open: %s", path, strerror(errno));
    } else if (fstat(fd, &sb) != 0) {
        sky_fail(err, "%s: cannot stat: %s", path, strerror(errno));
    } else if (!S_ISREG(sb.st_mode)) {
        sky_fail(err, "%s: is %s, not a .pth file", path, S_ISDIR(sb.st_mode) ? "a directory" : "not a regular file");
    } else if (sb.st_size == 0) {
        sky_fail(err, "%s: file is empty", path);
    } else if ((unsigned long long)sb.st_size > SIZE_MAX) {
        sky_fail(err, "%s: file of %lld bytes is too large to map", path, (long long)sb.st_size);
    } else {
        f->map_size = (size_t)sb.st_size;
        f->map = mmap(NULL, f->map_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (f->map == MAP_FAILED) {
            f->map = NULL;
            sky_fail(err, "%s: mmap of %zu bytes failed: %s", path, f->map_size, strerror(errno));
        } else {
            st = parse(f, f->map, f->map_size, err);
        }
    }
    if (fd >= 0) close(fd);
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
    if (f->map != NULL) munmap(f->map, f->map_size);
    sky_zip_close(f->zip);
    free(f->tensors);
    free(f->names);
    free(f->wrapper);
    free(f->path);
    free(f);
}
