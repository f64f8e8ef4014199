/* runtime/formats/pickle.c — the restricted unpickler of a torch.save archive's data.pkl (pickle.h).
 *
 * A stack machine over a small value model (none, bool, int, float, str, tuple, list, dict,
 * allow-listed global, storage, tensor). No opcode calls anything: REDUCE is only understood
 * for the allow-listed callables, whose effect (an empty dict, a tensor view record) is built
 * here. Every value is allocated once per opcode from an arena, so memory is O(size of
 * data.pkl); nothing walks the value graph recursively, so cycles built with the memo are
 * harmless. Format: reference vae-text-image-files.md §5.2.
 */
#include "formats/pickle.h"

#include "core/dtype.h"
#include "core/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef unsigned long long ull; /* for printing u64 values with %llu */
typedef long long          ll;

/* ---- the allow-list ------------------------------------------------------------- */

typedef enum gkind {
    G_ORDERED_DICT,  /* collections.OrderedDict() -> empty dict */
    G_REBUILD_V2,    /* _rebuild_tensor_v2(storage, offset, size, stride, grad, hooks[, meta]) */
    G_REBUILD_V3,    /* _rebuild_tensor_v3(..., hooks, dtype[, meta]): untyped storages */
    G_REBUILD_PARAM, /* _rebuild_parameter(tensor, grad, hooks) -> tensor */
    G_STORAGE,       /* storage class inside a persistent id */
    G_DTYPE          /* torch.<dtype>, argument of _rebuild_tensor_v3 */
} gkind;

struct sky_pickle_global {
    const char *module, *name;
    gkind       kind;
    sky_dtype   dtype; /* G_STORAGE, G_DTYPE */
};

/* Everything torch.save writes for a state dict of plain tensors (checked with torch
 * 2.15 for every dtype below). Anything not here is refused by name. */
static const sky_pickle_global ALLOWED[] = {
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

const char *sky_pickle_kind_name(sky_pickle_kind k)
{
    static const char *const name[] = {"None", "bool", "int",    "float",   "str",   "tuple",
                                       "list", "dict", "global", "storage", "tensor"};
    return k >= 0 && k <= SKY_PICKLE_TENSOR ? name[k] : "?";
}

/* Values are allocated from chunks and freed all at once. */
#define CHUNK_VALS 256
typedef struct chunk {
    struct chunk  *next;
    int            used;
    sky_pickle_val v[CHUNK_VALS];
} chunk;

/* The unpickler's state. */
struct sky_pickle {
    const char          *path;           /* for messages */
    const unsigned char *p;              /* data.pkl */
    size_t               n, pos, op_pos; /* size, read position, offset of the current opcode */
    int                  op;             /* current opcode */
    sky_pickle_val     **stack;
    size_t               sp, stack_cap;
    size_t               marks[SKY_PICKLE_MAX_MARKS];
    int                  n_marks;
    sky_pickle_val     **memo;
    size_t               n_memo, memo_cap;
    chunk               *chunks;
    size_t               n_vals; /* values allocated so far */
    const sky_zip       *zip;
    const char          *prefix;     /* "<prefix>/" of every record */
    size_t               prefix_len; /* including the '/' */
    int                 *rec_dtype;  /* per zip entry: dtype a storage used it as, or -1 */
    sky_err             *err;
};

/* ---- small helpers --------------------------------------------------------------- */

const char *sky_pickle_shown(char *out, size_t cap, const char *s, size_t n)
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
static int str_is(const sky_pickle_val *v, const char *s)
{
    size_t n = strlen(s);
    return v->kind == SKY_PICKLE_STR && v->u.str.len == n && memcmp(v->u.str.s, s, n) == 0;
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
static sky_status pk_fail(const sky_pickle *m, const char *fmt, ...)
{
    char    msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sky_fail(m->err, "%s: data.pkl byte %zu (%s): %s", m->path, m->op_pos, op_name(m->op), msg);
}

/* A new value of kind k (zeroed), or NULL after failing. */
static sky_pickle_val *new_val(sky_pickle *m, sky_pickle_kind k)
{
    if (m->n_vals >= SKY_PICKLE_MAX_VALUES) {
        pk_fail(m, "the pickle builds more than %d values", SKY_PICKLE_MAX_VALUES);
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
    sky_pickle_val *v = &m->chunks->v[m->chunks->used++];
    v->kind = k;
    return v;
}

/* Free every value and its item array. */
static void free_vals(sky_pickle *m)
{
    for (chunk *c = m->chunks, *next; c != NULL; c = next) {
        next = c->next;
        for (int i = 0; i < c->used; i++) {
            sky_pickle_kind k = c->v[i].kind;
            if (k == SKY_PICKLE_TUPLE || k == SKY_PICKLE_LIST || k == SKY_PICKLE_DICT) free(c->v[i].u.seq.v);
        }
        free(c);
    }
    m->chunks = NULL;
}

/* Append n items to a TUPLE/LIST/DICT value, growing its array. The total of all
 * items is bounded by the number of pushes, hence by the pickle's size. */
static sky_status seq_add(sky_pickle *m, sky_pickle_val *s, sky_pickle_val *const *items, size_t n)
{
    if (n > s->u.seq.cap - s->u.seq.n) {
        size_t cap = s->u.seq.cap ? s->u.seq.cap : 4;
        while (cap - s->u.seq.n < n) {
            if (cap > SIZE_MAX / 2 / sizeof(sky_pickle_val *)) return pk_fail(m, "container too large");
            cap *= 2;
        }
        sky_pickle_val **v = realloc(s->u.seq.v, cap * sizeof *v);
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
static size_t avail(const sky_pickle *m) { return m->sp - (m->n_marks ? m->marks[m->n_marks - 1] : 0); }

static sky_status push(sky_pickle *m, sky_pickle_val *v)
{
    if (v == NULL) return SKY_ERR; /* new_val already failed */
    if (m->sp == m->stack_cap) {
        if (m->sp >= SKY_PICKLE_MAX_STACK) { return pk_fail(m, "stack deeper than %d values", SKY_PICKLE_MAX_STACK); }
        size_t           cap = m->stack_cap ? 2 * m->stack_cap : 64;
        sky_pickle_val **s = realloc(m->stack, cap * sizeof *s);
        if (s == NULL) return pk_fail(m, "out of memory for the stack");
        m->stack = s;
        m->stack_cap = cap;
    }
    m->stack[m->sp++] = v;
    return SKY_OK;
}

/* Pop k values (above the innermost MARK) into out[0..k), bottom first. */
static sky_status pop_n(sky_pickle *m, sky_pickle_val **out, size_t k)
{
    if (avail(m) < k) { return pk_fail(m, "stack underflow: needs %zu values, %zu above the mark", k, avail(m)); }
    m->sp -= k;
    for (size_t i = 0; i < k; i++) out[i] = m->stack[m->sp + i];
    return SKY_OK;
}

/* The value on top of the stack (not popped), or NULL after failing. */
static sky_pickle_val *top(sky_pickle *m)
{
    if (avail(m) == 0) {
        pk_fail(m, "stack underflow: needs a value, the stack is empty above the mark");
        return NULL;
    }
    return m->stack[m->sp - 1];
}

/* Pop everything above the innermost MARK and the MARK; *items points into the stack
 * and stays valid until the next push. */
static sky_status pop_mark(sky_pickle *m, sky_pickle_val ***items, size_t *n)
{
    if (m->n_marks == 0) return pk_fail(m, "no MARK on the stack");
    size_t base = m->marks[--m->n_marks];
    *items = m->stack != NULL ? m->stack + base : NULL; /* NULL: nothing was ever pushed */
    *n = m->sp - base;
    m->sp = base;
    return SKY_OK;
}

/* A new TUPLE holding n values. */
static sky_pickle_val *new_tuple(sky_pickle *m, sky_pickle_val *const *items, size_t n)
{
    sky_pickle_val *t = new_val(m, SKY_PICKLE_TUPLE);
    if (t != NULL && seq_add(m, t, items, n) != SKY_OK) return NULL;
    return t;
}

/* ---- reading operands -------------------------------------------------------------- */

/* Check that k operand bytes follow the opcode. */
static sky_status need(sky_pickle *m, size_t k)
{
    if (m->n - m->pos < k) { return pk_fail(m, "truncated: needs %zu operand bytes, %zu left", k, m->n - m->pos); }
    return SKY_OK;
}

/* Little-endian unsigned operand of k <= 8 bytes. */
static uint64_t rd_le(sky_pickle *m, size_t k)
{
    uint64_t v = 0;
    for (size_t i = k; i-- > 0;) v = (v << 8) | m->p[m->pos + i];
    m->pos += k;
    return v;
}

/* A string operand of len bytes (BINUNICODE family). */
static sky_status op_string(sky_pickle *m, uint64_t len)
{
    if (len > SKY_PICKLE_MAX_STRING) {
        return pk_fail(m, "string of %llu bytes exceeds the limit of %zu bytes", (ull)len, SKY_PICKLE_MAX_STRING);
    }
    if (need(m, (size_t)len) != SKY_OK) return SKY_ERR;
    const char *s = (const char *)m->p + m->pos;
    size_t      bad = sky_utf8_check(s, (size_t)len);
    if (bad != len) return pk_fail(m, "string is not valid UTF-8 (byte %zu of it)", bad);
    m->pos += (size_t)len;
    sky_pickle_val *v = new_val(m, SKY_PICKLE_STR);
    if (v == NULL) return SKY_ERR;
    v->u.str.s = s;
    v->u.str.len = (size_t)len;
    return push(m, v);
}

/* LONG1 / LONG4: k little-endian two's complement bytes, at most 8. */
static sky_status op_long(sky_pickle *m, uint64_t k)
{
    if (k > 8) return pk_fail(m, "integer of %llu bytes does not fit in 64 bits", (ull)k);
    if (need(m, (size_t)k) != SKY_OK) return SKY_ERR;
    uint64_t u = rd_le(m, (size_t)k);
    if (k > 0 && k < 8 && (u >> (8 * k - 1)) & 1) u |= ~(uint64_t)0 << (8 * k); /* sign-extend */
    sky_pickle_val *v = new_val(m, SKY_PICKLE_INT);
    if (v == NULL) return SKY_ERR;
    v->u.i = (int64_t)u; /* two's complement on every C11 target we build */
    return push(m, v);
}

/* Look module.name up in the allow-list and push it; refuse anything else. */
static sky_status push_global(sky_pickle *m, const char *mod, size_t mlen, const char *name, size_t nlen)
{
    for (size_t i = 0; i < sizeof ALLOWED / sizeof ALLOWED[0]; i++) {
        const sky_pickle_global *a = &ALLOWED[i];
        if (strlen(a->module) == mlen && memcmp(a->module, mod, mlen) == 0 && strlen(a->name) == nlen &&
            memcmp(a->name, name, nlen) == 0) {
            sky_pickle_val *v = new_val(m, SKY_PICKLE_GLOBAL);
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
                   sky_pickle_shown(a, sizeof a, mod, mlen), sky_pickle_shown(b, sizeof b, name, nlen));
}

/* GLOBAL: "module\nname\n", each line at most 256 bytes. */
static sky_status op_global(sky_pickle *m)
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
static sky_status memo_put(sky_pickle *m, uint64_t idx)
{
    sky_pickle_val *v = top(m);
    if (v == NULL) return SKY_ERR;
    if (idx > m->n_memo) {
        return pk_fail(m, "memo index %llu skips ahead of the memo (%zu entries)", (ull)idx, m->n_memo);
    }
    if (idx == m->n_memo) {
        if (m->n_memo >= SKY_PICKLE_MAX_MEMO) return pk_fail(m, "more than %d memo entries", SKY_PICKLE_MAX_MEMO);
        if (m->n_memo == m->memo_cap) {
            size_t           cap = m->memo_cap ? 2 * m->memo_cap : 64;
            sky_pickle_val **mm = realloc(m->memo, cap * sizeof *mm);
            if (mm == NULL) return pk_fail(m, "out of memory for the memo");
            m->memo = mm;
            m->memo_cap = cap;
        }
        m->n_memo++;
    }
    m->memo[idx] = v;
    return SKY_OK;
}

static sky_status memo_get(sky_pickle *m, uint64_t idx)
{
    if (idx >= m->n_memo) {
        return pk_fail(m, "memo index %llu out of range (the memo has %zu entries)", (ull)idx, m->n_memo);
    }
    return push(m, m->memo[idx]);
}

/* ---- persistent ids and callables ------------------------------------------------ */

/* BINPERSID: ('storage', <Type>Storage, key, location, numel) -> a storage record. */
static sky_status op_persid(sky_pickle *m)
{
    sky_pickle_val *pid = NULL;
    char            a[160];
    if (pop_n(m, &pid, 1) != SKY_OK) return SKY_ERR;
    if (pid->kind != SKY_PICKLE_TUPLE || pid->u.seq.n != 5 || !str_is(pid->u.seq.v[0], "storage")) {
        return pk_fail(m, "persistent id is not ('storage', type, key, location, numel)");
    }
    sky_pickle_val *const *f = pid->u.seq.v;
    if (f[1]->kind != SKY_PICKLE_GLOBAL || f[1]->u.g->kind != G_STORAGE) {
        return pk_fail(m, "persistent id names a %s where a torch storage type belongs",
                       sky_pickle_kind_name(f[1]->kind));
    }
    if (f[2]->kind != SKY_PICKLE_STR || f[3]->kind != SKY_PICKLE_STR || f[4]->kind != SKY_PICKLE_INT) {
        return pk_fail(m, "persistent id fields are (%s, %s, %s), expected (str key, str location, int numel)",
                       sky_pickle_kind_name(f[2]->kind), sky_pickle_kind_name(f[3]->kind),
                       sky_pickle_kind_name(f[4]->kind));
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
    if (!plain)
        return pk_fail(m, "storage key '%s' is not a plain record name", sky_pickle_shown(a, sizeof a, key, klen));
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
    sky_pickle_val *s = new_val(m, SKY_PICKLE_STORAGE);
    if (s == NULL) return SKY_ERR;
    s->u.sto.rec = rec;
    s->u.sto.dtype = dt;
    return push(m, s);
}

/* _rebuild_tensor_v2 / _v3: check argument kinds; numbers are checked once the
 * tensor's name is known (make_tensor). */
static sky_status rebuild_tensor(sky_pickle *m, gkind g, sky_pickle_val *args, sky_pickle_val **out)
{
    size_t                 n = args->u.seq.n;
    sky_pickle_val *const *a = args->u.seq.v;
    const char            *fn = g == G_REBUILD_V2 ? "_rebuild_tensor_v2" : "_rebuild_tensor_v3";
    size_t                 lo = g == G_REBUILD_V2 ? 6 : 7;
    if (n < lo || n > lo + 1) {
        return pk_fail(m, "%s called with %zu arguments, expected %zu or %zu", fn, n, lo, lo + 1);
    }
    if (a[0]->kind != SKY_PICKLE_STORAGE || a[1]->kind != SKY_PICKLE_INT || a[2]->kind != SKY_PICKLE_TUPLE ||
        a[3]->kind != SKY_PICKLE_TUPLE || a[4]->kind != SKY_PICKLE_BOOL || a[5]->kind != SKY_PICKLE_DICT) {
        return pk_fail(m,
                       "%s arguments are (%s, %s, %s, %s, %s, %s), expected (storage, int offset, tuple "
                       "size, tuple stride, bool requires_grad, dict hooks)",
                       fn, sky_pickle_kind_name(a[0]->kind), sky_pickle_kind_name(a[1]->kind),
                       sky_pickle_kind_name(a[2]->kind), sky_pickle_kind_name(a[3]->kind),
                       sky_pickle_kind_name(a[4]->kind), sky_pickle_kind_name(a[5]->kind));
    }
    if (a[5]->u.seq.n != 0) return pk_fail(m, "%s with backward hooks is not a plain tensor", fn);
    sky_dtype dt = a[0]->u.sto.dtype;
    if (g == G_REBUILD_V3) {
        if (a[6]->kind != SKY_PICKLE_GLOBAL || a[6]->u.g->kind != G_DTYPE) {
            return pk_fail(m, "%s argument 7 is a %s, expected a torch dtype", fn, sky_pickle_kind_name(a[6]->kind));
        }
        dt = a[6]->u.g->dtype;
    }
    for (int k = 2; k <= 3; k++) {
        for (size_t i = 0; i < a[k]->u.seq.n; i++) {
            if (a[k]->u.seq.v[i]->kind != SKY_PICKLE_INT) {
                return pk_fail(m, "%s: %s[%zu] is a %s, expected an int", fn, k == 2 ? "size" : "stride", i,
                               sky_pickle_kind_name(a[k]->u.seq.v[i]->kind));
            }
        }
    }
    sky_pickle_val *t = new_val(m, SKY_PICKLE_TENSOR);
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
static sky_status op_reduce(sky_pickle *m)
{
    sky_pickle_val *fa[2] = {NULL, NULL};
    if (pop_n(m, fa, 2) != SKY_OK) return SKY_ERR;
    sky_pickle_val *fn = fa[0], *args = fa[1], *out = NULL;
    if (fn->kind != SKY_PICKLE_GLOBAL)
        return pk_fail(m, "REDUCE on a %s, which is not callable", sky_pickle_kind_name(fn->kind));
    const sky_pickle_global *g = fn->u.g;
    if (args->kind != SKY_PICKLE_TUPLE)
        return pk_fail(m, "REDUCE arguments are a %s, expected a tuple", sky_pickle_kind_name(args->kind));
    size_t                 n = args->u.seq.n;
    sky_pickle_val *const *a = args->u.seq.v;
    switch (g->kind) {
    case G_ORDERED_DICT:
        if (n != 0) return pk_fail(m, "collections.OrderedDict called with %zu arguments, expected none", n);
        out = new_val(m, SKY_PICKLE_DICT);
        break;
    case G_REBUILD_V2:
    case G_REBUILD_V3:
        if (rebuild_tensor(m, g->kind, args, &out) != SKY_OK) return SKY_ERR;
        break;
    case G_REBUILD_PARAM:
        if (n != 3 || a[0]->kind != SKY_PICKLE_TENSOR || a[1]->kind != SKY_PICKLE_BOOL ||
            a[2]->kind != SKY_PICKLE_DICT || a[2]->u.seq.n) {
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
static sky_status run(sky_pickle *m, sky_pickle_val **result)
{
    sky_pickle_val *v = NULL, *two[2] = {NULL, NULL}, **items = NULL;
    size_t          n = 0;
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
            if (m->n_marks == SKY_PICKLE_MAX_MARKS) {
                st = pk_fail(m, "MARK nesting deeper than %d", SKY_PICKLE_MAX_MARKS);
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
            sky_pickle_val *t[3];
            size_t          k = (size_t)(m->op - 0x84);
            if ((st = pop_n(m, t, k)) == SKY_OK) st = push(m, new_tuple(m, t, k));
            break;
        }
        case ']': /* EMPTY_LIST */ st = push(m, new_val(m, SKY_PICKLE_LIST)); break;
        case '}': /* EMPTY_DICT */ st = push(m, new_val(m, SKY_PICKLE_DICT)); break;
        case 'a': /* APPEND */
            if ((st = pop_n(m, &v, 1)) != SKY_OK) break;
            if ((two[0] = top(m)) == NULL) return SKY_ERR;
            if (two[0]->kind != SKY_PICKLE_LIST)
                return pk_fail(m, "APPEND to a %s", sky_pickle_kind_name(two[0]->kind));
            st = seq_add(m, two[0], &v, 1);
            break;
        case 'e': /* APPENDS */
            if ((st = pop_mark(m, &items, &n)) != SKY_OK) break;
            if ((two[0] = top(m)) == NULL) return SKY_ERR;
            if (two[0]->kind != SKY_PICKLE_LIST)
                return pk_fail(m, "APPENDS to a %s", sky_pickle_kind_name(two[0]->kind));
            st = seq_add(m, two[0], items, n);
            break;
        case 's': /* SETITEM */
            if ((st = pop_n(m, two, 2)) != SKY_OK) break;
            if ((v = top(m)) == NULL) return SKY_ERR;
            if (v->kind != SKY_PICKLE_DICT) return pk_fail(m, "SETITEM on a %s", sky_pickle_kind_name(v->kind));
            st = seq_add(m, v, two, 2);
            break;
        case 'u': /* SETITEMS */
            if ((st = pop_mark(m, &items, &n)) != SKY_OK) break;
            if (n % 2 != 0) return pk_fail(m, "SETITEMS with an odd number (%zu) of keys and values", n);
            if ((v = top(m)) == NULL) return SKY_ERR;
            if (v->kind != SKY_PICKLE_DICT) return pk_fail(m, "SETITEMS on a %s", sky_pickle_kind_name(v->kind));
            st = seq_add(m, v, items, n);
            break;
        case 'b': /* BUILD: OrderedDict state (_metadata), ignored */
            if ((st = pop_n(m, &v, 1)) != SKY_OK) break;
            if ((v = top(m)) == NULL) return SKY_ERR;
            if (v->kind != SKY_PICKLE_DICT)
                return pk_fail(m, "BUILD on a %s; only a dict's state is accepted", sky_pickle_kind_name(v->kind));
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
            if ((v = new_val(m, SKY_PICKLE_INT)) == NULL) return SKY_ERR;
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
            if ((v = new_val(m, SKY_PICKLE_BOOL)) == NULL) return SKY_ERR;
            v->u.i = m->op == 0x88;
            st = push(m, v);
            break;
        case 'N': /* NONE */ st = push(m, new_val(m, SKY_PICKLE_NONE)); break;
        case 'G': { /* BINFLOAT: big-endian double */
            if ((st = need(m, 8)) != SKY_OK) break;
            uint64_t u = 0;
            for (int i = 0; i < 8; i++) u = (u << 8) | m->p[m->pos++];
            if ((v = new_val(m, SKY_PICKLE_FLOAT)) == NULL) return SKY_ERR;
            memcpy(&v->u.f, &u, sizeof u);
            st = push(m, v);
            break;
        }
        case 'c': /* GLOBAL */ st = op_global(m); break;
        case 0x93: /* STACK_GLOBAL */
            if ((st = pop_n(m, two, 2)) != SKY_OK) break;
            if (two[0]->kind != SKY_PICKLE_STR || two[1]->kind != SKY_PICKLE_STR) {
                return pk_fail(m, "STACK_GLOBAL operands are %s and %s, expected two strings",
                               sky_pickle_kind_name(two[0]->kind), sky_pickle_kind_name(two[1]->kind));
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

/* ---- public ---------------------------------------------------------------------- */

sky_status sky_pickle_run(sky_pickle **out, const sky_pickle_val **root, const unsigned char *p, size_t n,
                          const sky_zip *z, const char *prefix, size_t prefix_len, const char *path, sky_err *err)
{
    *root = NULL;
    sky_pickle *m = *out = calloc(1, sizeof *m);
    if (m == NULL) return sky_fail(err, "%s: out of memory", path);
    m->path = path;
    m->p = p;
    m->n = n;
    m->zip = z;
    m->prefix = prefix;
    m->prefix_len = prefix_len;
    m->err = err;
    m->rec_dtype = malloc((size_t)sky_zip_count(z) * sizeof *m->rec_dtype);
    if (m->rec_dtype == NULL) return sky_fail(err, "%s: out of memory", path);
    for (int i = 0; i < sky_zip_count(z); i++) m->rec_dtype[i] = -1;
    sky_pickle_val *v = NULL;
    if (run(m, &v) != SKY_OK) return SKY_ERR;
    *root = v;
    return SKY_OK;
}

void sky_pickle_free(sky_pickle *m)
{
    if (m == NULL) return;
    free_vals(m);
    free(m->stack);
    free(m->memo);
    free(m->rec_dtype);
    free(m);
}
