/* runtime/core/json.c — strict recursive-descent JSON parser (contract in json.h).
 *
 * While parsing, values live in one growable array and refer to each other and to
 * their decoded text by index/offset (so growing never invalidates anything).
 * Items of a container are collected on a stack and copied into one contiguous
 * "kids" array when the container closes. At the end, offsets become pointers.
 */
#include "core/json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NO_KEY ((size_t)-1)

struct sky_json_doc {
    sky_json        *nodes; /* every value; nodes[0] is the root */
    const sky_json **items; /* container items, contiguous per container */
    char            *strs;  /* decoded strings and number texts, each NUL-terminated */
};

typedef struct parser {
    const unsigned char *s;
    size_t               len, pos;
    size_t               max_depth, max_string, max_values;
    sky_json            *nodes;
    size_t               n_nodes, cap_nodes;
    size_t              *stack;
    size_t               n_stack, cap_stack; /* items of open containers */
    size_t              *kids;
    size_t               n_kids, cap_kids; /* items of closed containers */
    char                *strs;
    size_t               n_strs, cap_strs;
    sky_err             *err;
} parser;

/* Error at byte `at` of the text: "byte 17: <message>". */
static sky_status perr(parser *p, size_t at, const char *fmt, ...) SKY_PRINTF(3, 4);
static sky_status perr(parser *p, size_t at, const char *fmt, ...)
{
    char    what[1536];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    return sky_fail(p->err, "byte %zu: %s", at, what);
}

/* Make room for `need` elements of `elem` bytes in the array whose pointer is at
 * bufp (a T **), doubling, overflow-checked. Returns 0 when out of memory. */
static int grow(void *bufp, size_t *cap, size_t need, size_t elem)
{
    void *buf;
    if (need <= *cap) return 1;
    size_t cap2 = *cap ? *cap : 16;
    while (cap2 < need) {
        if (cap2 > ((size_t)-1) / 2) return 0;
        cap2 *= 2;
    }
    if (cap2 > ((size_t)-1) / elem) return 0;
    memcpy(&buf, bufp, sizeof buf); /* read the T * without a cast */
    buf = realloc(buf, cap2 * elem);
    if (buf == NULL) return 0;
    memcpy(bufp, &buf, sizeof buf);
    *cap = cap2;
    return 1;
}

/* Length (1..4) of the valid UTF-8 sequence at s, or 0 when it is invalid. */
static size_t utf8_seq(const unsigned char *s, size_t len)
{
    unsigned c = s[0];
    size_t   n;
    unsigned lo = 0x80, hi = 0xbf; /* allowed range of the second byte */
    if (c < 0x80) return 1;
    if (c >= 0xc2 && c <= 0xdf)
        n = 2;
    else if (c == 0xe0) {
        n = 3;
        lo = 0xa0;
    } /* no overlong 3-byte forms */
    else if (c == 0xed) {
        n = 3;
        hi = 0x9f;
    } /* no surrogates D800..DFFF */
    else if (c >= 0xe1 && c <= 0xef)
        n = 3;
    else if (c == 0xf0) {
        n = 4;
        lo = 0x90;
    } /* no overlong 4-byte forms */
    else if (c == 0xf4) {
        n = 4;
        hi = 0x8f;
    } /* nothing above U+10FFFF */
    else if (c >= 0xf1 && c <= 0xf3)
        n = 4;
    else
        return 0; /* 80..C1, F5..FF */
    if (len < n) return 0;
    if (s[1] < lo || s[1] > hi) return 0;
    for (size_t i = 2; i < n; i++) {
        if (s[i] < 0x80 || s[i] > 0xbf) return 0;
    }
    return n;
}

size_t sky_utf8_check(const char *s, size_t len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t               i = 0;
    while (i < len) {
        size_t n = utf8_seq(u + i, len - i);
        if (n == 0) return i;
        i += n;
    }
    return len;
}

const char *sky_json_type_name(sky_json_type t)
{
    switch (t) {
    case SKY_JSON_NULL: return "null";
    case SKY_JSON_BOOL: return "bool";
    case SKY_JSON_NUMBER: return "number";
    case SKY_JSON_STRING: return "string";
    case SKY_JSON_ARRAY: return "array";
    case SKY_JSON_OBJECT: return "object";
    }
    return "?";
}

/* Skip JSON whitespace (space, tab, LF, CR only). */
static void skip_ws(parser *p)
{
    while (p->pos < p->len) {
        unsigned char c = p->s[p->pos];
        if (c != ' ' && c != '\t' && c != '\n' && c != '\r') break;
        p->pos++;
    }
}

/* Error for an unexpected byte (or end of text) where `expected` should be. */
static sky_status unexpected(parser *p, const char *expected)
{
    if (p->pos >= p->len) return perr(p, p->pos, "unexpected end of text, expected %s", expected);
    unsigned char c = p->s[p->pos];
    if (c == '/') return perr(p, p->pos, "unexpected '/', expected %s (comments are not allowed)", expected);
    if (c == '+') return perr(p, p->pos, "unexpected '+', expected %s (a leading '+' is not allowed)", expected);
    if (c > 0x20 && c < 0x7f) return perr(p, p->pos, "unexpected '%c', expected %s", c, expected);
    return perr(p, p->pos, "unexpected byte 0x%02x, expected %s", c, expected);
}

/* Append a new value of type t starting at byte `at`; its index goes to *out. */
static sky_status new_node(parser *p, sky_json_type t, size_t at, size_t *out)
{
    if (p->n_nodes >= p->max_values) { return perr(p, at, "more than %zu values in the document", p->max_values); }
    if (!grow(&p->nodes, &p->cap_nodes, p->n_nodes + 1, sizeof *p->nodes)) {
        return perr(p, at, "out of memory after %zu values", p->n_nodes);
    }
    sky_json *v = &p->nodes[p->n_nodes];
    memset(v, 0, sizeof *v);
    v->type = t;
    v->offset = at;
    v->key_off_ = NO_KEY;
    *out = p->n_nodes++;
    return SKY_OK;
}

/* Append n bytes to the string buffer. */
static sky_status put_bytes(parser *p, const void *b, size_t n)
{
    if (p->n_strs > ((size_t)-1) - n - 1 || !grow(&p->strs, &p->cap_strs, p->n_strs + n, 1)) {
        return perr(p, p->pos, "out of memory for strings");
    }
    memcpy(p->strs + p->n_strs, b, n);
    p->n_strs += n;
    return SKY_OK;
}

/* Append code point cp as UTF-8 (cp is a valid scalar value). */
static sky_status put_utf8(parser *p, uint32_t cp)
{
    unsigned char b[4];
    size_t        n;
    if (cp < 0x80) {
        b[0] = (unsigned char)cp;
        n = 1;
    } else if (cp < 0x800) {
        b[0] = (unsigned char)(0xc0 | (cp >> 6));
        b[1] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 2;
    } else if (cp < 0x10000) {
        b[0] = (unsigned char)(0xe0 | (cp >> 12));
        b[1] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[2] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 3;
    } else {
        b[0] = (unsigned char)(0xf0 | (cp >> 18));
        b[1] = (unsigned char)(0x80 | ((cp >> 12) & 0x3f));
        b[2] = (unsigned char)(0x80 | ((cp >> 6) & 0x3f));
        b[3] = (unsigned char)(0x80 | (cp & 0x3f));
        n = 4;
    }
    return put_bytes(p, b, n);
}

/* Read the 4 hex digits of a \u escape at p->pos (just after "\u"). */
static sky_status read_hex4(parser *p, uint32_t *out)
{
    uint32_t v = 0;
    if (p->len - p->pos < 4) return perr(p, p->pos, "invalid \\u escape: expected 4 hex digits");
    for (int i = 0; i < 4; i++) {
        unsigned char c = p->s[p->pos + (size_t)i];
        uint32_t      d;
        if (c >= '0' && c <= '9')
            d = (uint32_t)(c - '0');
        else if (c >= 'a' && c <= 'f')
            d = (uint32_t)(c - 'a' + 10);
        else if (c >= 'A' && c <= 'F')
            d = (uint32_t)(c - 'A' + 10);
        else
            return perr(p, p->pos, "invalid \\u escape: expected 4 hex digits");
        v = v * 16 + d;
    }
    p->pos += 4;
    *out = v;
    return SKY_OK;
}

/* Decode one escape; p->pos is just after the backslash. */
static sky_status parse_escape(parser *p)
{
    size_t at = p->pos - 1;
    if (p->pos >= p->len) return perr(p, at, "unterminated string");
    unsigned char c = p->s[p->pos++];
    char          simple;
    switch (c) {
    case '"': simple = '"'; break;
    case '\\': simple = '\\'; break;
    case '/': simple = '/'; break;
    case 'b': simple = '\b'; break;
    case 'f': simple = '\f'; break;
    case 'n': simple = '\n'; break;
    case 'r': simple = '\r'; break;
    case 't': simple = '\t'; break;
    case 'u': {
        uint32_t hi, lo;
        if (read_hex4(p, &hi) != SKY_OK) return SKY_ERR;
        if (hi >= 0xdc00 && hi <= 0xdfff) return perr(p, at, "lone low surrogate \\u%04X", (unsigned)hi);
        if (hi < 0xd800 || hi > 0xdbff) return put_utf8(p, hi);
        /* high surrogate: a \u low surrogate must follow */
        if (p->len - p->pos < 2 || p->s[p->pos] != '\\' || p->s[p->pos + 1] != 'u') {
            return perr(p, at, "lone high surrogate \\u%04X", (unsigned)hi);
        }
        p->pos += 2;
        if (read_hex4(p, &lo) != SKY_OK) return SKY_ERR;
        if (lo < 0xdc00 || lo > 0xdfff) {
            return perr(p, at, "lone high surrogate \\u%04X (followed by \\u%04X)", (unsigned)hi, (unsigned)lo);
        }
        return put_utf8(p, 0x10000 + ((hi - 0xd800) << 10) + (lo - 0xdc00));
    }
    default:
        if (c > 0x20 && c < 0x7f) return perr(p, at, "invalid escape '\\%c'", c);
        return perr(p, at, "invalid escape (backslash followed by byte 0x%02x)", c);
    }
    return put_bytes(p, &simple, 1);
}

/* Parse a string at p->pos (on the opening quote) into the string buffer. */
static sky_status parse_string(parser *p, size_t *off, size_t *len)
{
    size_t at = p->pos++;
    *off = p->n_strs;
    for (;;) {
        if (p->pos >= p->len) return perr(p, at, "unterminated string");
        unsigned char c = p->s[p->pos];
        if (c == '"') {
            p->pos++;
            break;
        }
        if (c == '\\') {
            p->pos++;
            if (parse_escape(p) != SKY_OK) return SKY_ERR;
        } else if (c < 0x20) {
            return perr(p, p->pos, "raw control character 0x%02x in a string (must be escaped)", c);
        } else {
            size_t n = utf8_seq(p->s + p->pos, p->len - p->pos);
            if (n == 0) return perr(p, p->pos, "invalid UTF-8 in a string");
            if (put_bytes(p, p->s + p->pos, n) != SKY_OK) return SKY_ERR;
            p->pos += n;
        }
        if (p->n_strs - *off > p->max_string) { return perr(p, at, "string longer than %zu bytes", p->max_string); }
    }
    *len = p->n_strs - *off;
    return put_bytes(p, "", 1);
}

/* Scan a run of digits; returns how many. */
static size_t scan_digits(parser *p)
{
    size_t n = 0;
    while (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
        p->pos++;
        n++;
    }
    return n;
}

/* Parse a number at p->pos into node `idx`: keep its text, and its exact value when
 * it is a plain integer that fits in u64 (checked before each multiply-add). */
static sky_status parse_number(parser *p, size_t idx)
{
    size_t at = p->pos;
    int    plain = 1;
    if (p->s[p->pos] == '-') {
        plain = 0;
        p->pos++;
    }
    if (p->pos < p->len && p->s[p->pos] == '0') {
        p->pos++;
        if (p->pos < p->len && p->s[p->pos] >= '0' && p->s[p->pos] <= '9') {
            return perr(p, at, "leading zeros are not allowed in numbers");
        }
    } else if (scan_digits(p) == 0) {
        return perr(p, at, "expected a digit after '-'");
    }
    if (p->pos < p->len && p->s[p->pos] == '.') {
        plain = 0;
        p->pos++;
        if (scan_digits(p) == 0) return perr(p, at, "expected a digit after '.'");
    }
    if (p->pos < p->len && (p->s[p->pos] == 'e' || p->s[p->pos] == 'E')) {
        plain = 0;
        p->pos++;
        if (p->pos < p->len && (p->s[p->pos] == '+' || p->s[p->pos] == '-')) p->pos++;
        if (scan_digits(p) == 0) return perr(p, at, "expected a digit in the exponent");
    }
    size_t n = p->pos - at;
    if (n > p->max_string) return perr(p, at, "number longer than %zu characters", p->max_string);

    uint64_t v = 0;
    for (size_t i = at; plain && i < p->pos; i++) {
        uint64_t d = (uint64_t)(p->s[i] - '0');
        if (v > (UINT64_MAX - d) / 10)
            plain = 0; /* > 2^64-1: not a u64 */
        else
            v = v * 10 + d;
    }
    size_t off = p->n_strs;
    if (put_bytes(p, p->s + at, n) != SKY_OK || put_bytes(p, "", 1) != SKY_OK) return SKY_ERR;
    sky_json *node = &p->nodes[idx];
    node->is_u64 = plain;
    node->u64 = plain ? v : 0;
    node->str_off_ = off;
    node->len = n;
    return SKY_OK;
}

/* One member key seen in an object, for the duplicate check. */
typedef struct key_ref {
    const char *s;
    size_t      len;
    size_t      at;
} key_ref;

/* Order keys by bytes, then by position (so the later duplicate is reported). */
static int key_ref_cmp(const void *a, const void *b)
{
    const key_ref *x = a, *y = b;
    size_t         n = x->len < y->len ? x->len : y->len;
    int            c = memcmp(x->s, y->s, n);
    if (c != 0) return c;
    if (x->len != y->len) return x->len < y->len ? -1 : 1;
    return x->at < y->at ? -1 : (x->at > y->at);
}

/* Reject repeated keys among the object items stack[base..]: sort and compare
 * neighbours, O(k log k). The error points at the second occurrence's value;
 * `ctx_off` names the object's own key for the message. */
static sky_status check_duplicates(parser *p, size_t base, size_t ctx_off, size_t ctx_len)
{
    size_t k = p->n_stack - base;
    if (k < 2) return SKY_OK;
    key_ref *refs = malloc(k * sizeof *refs); /* k <= values <= text bytes */
    if (refs == NULL) return perr(p, p->pos, "out of memory checking %zu keys", k);
    for (size_t i = 0; i < k; i++) {
        const sky_json *v = &p->nodes[p->stack[base + i]];
        refs[i].s = p->strs + v->key_off_;
        refs[i].len = v->key_len;
        refs[i].at = v->offset;
    }
    qsort(refs, k, sizeof *refs, key_ref_cmp);
    for (size_t i = 1; i < k; i++) {
        if (refs[i - 1].len == refs[i].len && memcmp(refs[i - 1].s, refs[i].s, refs[i].len) == 0) {
            int        n = refs[i].len > 200 ? 200 : (int)refs[i].len;
            sky_status st;
            if (ctx_off == NO_KEY) {
                st = perr(p, refs[i].at, "duplicate key \"%.*s\"", n, refs[i].s);
            } else {
                int cn = ctx_len > 200 ? 200 : (int)ctx_len;
                st = perr(p, refs[i].at, "duplicate key \"%.*s\" in the object \"%.*s\"", n, refs[i].s, cn,
                          p->strs + ctx_off);
            }
            free(refs);
            return st;
        }
    }
    free(refs);
    return SKY_OK;
}

/* Move the items stack[base..] of container `idx` into the kids array. */
static sky_status close_container(parser *p, size_t idx, size_t base)
{
    size_t k = p->n_stack - base;
    if (!grow(&p->kids, &p->cap_kids, p->n_kids + k, sizeof *p->kids)) {
        return perr(p, p->pos, "out of memory for %zu items", k);
    }
    if (k > 0) memcpy(p->kids + p->n_kids, p->stack + base, k * sizeof *p->kids);
    p->nodes[idx].items_off_ = p->n_kids;
    p->nodes[idx].count = k;
    p->n_kids += k;
    p->n_stack = base;
    return SKY_OK;
}

/* Push item index `child` onto the open-container stack. */
static sky_status push_item(parser *p, size_t child)
{
    if (!grow(&p->stack, &p->cap_stack, p->n_stack + 1, sizeof *p->stack)) {
        return perr(p, p->pos, "out of memory for items");
    }
    p->stack[p->n_stack++] = child;
    return SKY_OK;
}

static sky_status parse_value(parser *p, size_t depth, size_t key_off, size_t key_len, size_t *out);

/* Parse an array or object at p->pos ('[' or '{'); key_off/key_len name it for messages. */
static sky_status parse_container(parser *p, size_t depth, size_t key_off, size_t key_len, size_t *out)
{
    int    is_obj = p->s[p->pos] == '{';
    char   close = is_obj ? '}' : ']';
    size_t base = p->n_stack, idx;
    if (depth > p->max_depth) return perr(p, p->pos, "nesting deeper than %zu levels", p->max_depth);
    if (new_node(p, is_obj ? SKY_JSON_OBJECT : SKY_JSON_ARRAY, p->pos, &idx) != SKY_OK) return SKY_ERR;
    p->pos++;
    skip_ws(p);
    if (p->pos < p->len && p->s[p->pos] == close) {
        p->pos++;
        *out = idx;
        return close_container(p, idx, base);
    }
    for (;;) {
        size_t koff = NO_KEY, klen = 0, child;
        skip_ws(p);
        if (is_obj) {
            if (p->pos >= p->len || p->s[p->pos] != '"') {
                if (p->pos < p->len && p->s[p->pos] == '}' && p->n_stack > base) {
                    return perr(p, p->pos, "trailing comma before '}'");
                }
                return unexpected(p, "a string key");
            }
            if (parse_string(p, &koff, &klen) != SKY_OK) return SKY_ERR;
            skip_ws(p);
            if (p->pos >= p->len || p->s[p->pos] != ':') return unexpected(p, "':' after the key");
            p->pos++;
            skip_ws(p);
        } else if (p->pos < p->len && p->s[p->pos] == ']' && p->n_stack > base) {
            return perr(p, p->pos, "trailing comma before ']'");
        }
        if (parse_value(p, depth, koff, klen, &child) != SKY_OK) return SKY_ERR;
        p->nodes[child].key_off_ = koff;
        p->nodes[child].key_len = klen;
        if (push_item(p, child) != SKY_OK) return SKY_ERR;
        skip_ws(p);
        if (p->pos < p->len && p->s[p->pos] == ',') {
            p->pos++;
            continue;
        }
        if (p->pos < p->len && p->s[p->pos] == close) {
            p->pos++;
            break;
        }
        return unexpected(p, is_obj ? "',' or '}'" : "',' or ']'");
    }
    if (is_obj && check_duplicates(p, base, key_off, key_len) != SKY_OK) return SKY_ERR;
    *out = idx;
    return close_container(p, idx, base);
}

/* Parse the literal word w (true/false/null) at p->pos. */
static sky_status parse_literal(parser *p, const char *w, sky_json_type t, int boolean, size_t *out)
{
    size_t n = strlen(w);
    if (p->len - p->pos < n || memcmp(p->s + p->pos, w, n) != 0) {
        return perr(p, p->pos, "invalid literal (only true, false and null; NaN and Infinity are not JSON)");
    }
    if (new_node(p, t, p->pos, out) != SKY_OK) return SKY_ERR;
    p->nodes[*out].boolean = boolean;
    p->pos += n;
    return SKY_OK;
}

/* Parse any value at p->pos (whitespace already skipped). */
static sky_status parse_value(parser *p, size_t depth, size_t key_off, size_t key_len, size_t *out)
{
    if (p->pos >= p->len) return unexpected(p, "a value");
    unsigned char c = p->s[p->pos];
    if (c == '{' || c == '[') return parse_container(p, depth + 1, key_off, key_len, out);
    if (c == 't') return parse_literal(p, "true", SKY_JSON_BOOL, 1, out);
    if (c == 'f') return parse_literal(p, "false", SKY_JSON_BOOL, 0, out);
    if (c == 'n') return parse_literal(p, "null", SKY_JSON_NULL, 0, out);
    if (c == '"') {
        size_t off, len;
        if (new_node(p, SKY_JSON_STRING, p->pos, out) != SKY_OK) return SKY_ERR;
        if (parse_string(p, &off, &len) != SKY_OK) return SKY_ERR;
        p->nodes[*out].str_off_ = off;
        p->nodes[*out].len = len;
        return SKY_OK;
    }
    if (c == '-' || (c >= '0' && c <= '9')) {
        if (new_node(p, SKY_JSON_NUMBER, p->pos, out) != SKY_OK) return SKY_ERR;
        return parse_number(p, *out);
    }
    if (c == 'N' || c == 'I') { return perr(p, p->pos, "invalid literal (NaN and Infinity are not JSON)"); }
    return unexpected(p, "a value");
}

/* Turn the parser's offsets into pointers and hand its buffers to a document. */
static sky_status finish(parser *p, sky_json_doc **out)
{
    sky_json_doc    *doc = calloc(1, sizeof *doc);
    const sky_json **items = malloc((p->n_kids ? p->n_kids : 1) * sizeof *items);
    if (doc == NULL || items == NULL) {
        free(doc);
        free(items);
        return sky_fail(p->err, "out of memory finishing the JSON document");
    }
    for (size_t i = 0; i < p->n_kids; i++) items[i] = &p->nodes[p->kids[i]];
    for (size_t i = 0; i < p->n_nodes; i++) {
        sky_json *v = &p->nodes[i];
        if (v->type == SKY_JSON_STRING || v->type == SKY_JSON_NUMBER) v->str = p->strs + v->str_off_;
        if (v->key_off_ != NO_KEY) v->key = p->strs + v->key_off_;
        if (v->type == SKY_JSON_ARRAY || v->type == SKY_JSON_OBJECT) {
            v->items = (const sky_json *const *)(items + v->items_off_);
        }
    }
    doc->nodes = p->nodes;
    doc->items = items;
    doc->strs = p->strs;
    p->nodes = NULL;
    p->strs = NULL;
    *out = doc;
    return SKY_OK;
}

sky_status sky_json_parse(sky_json_doc **out, const char *text, size_t len, const sky_json_limits *lim, sky_err *err)
{
    parser p;
    memset(&p, 0, sizeof p);
    p.s = (const unsigned char *)text;
    p.len = len;
    p.err = err;
    p.max_depth = lim && lim->max_depth ? lim->max_depth : SKY_JSON_MAX_DEPTH;
    p.max_string = lim && lim->max_string ? lim->max_string : SKY_JSON_MAX_STRING;
    p.max_values = lim && lim->max_values ? lim->max_values : (size_t)-1;
    *out = NULL;

    size_t     root;
    sky_status st;
    skip_ws(&p);
    st = parse_value(&p, 0, NO_KEY, 0, &root);
    if (st == SKY_OK) {
        skip_ws(&p);
        if (p.pos != p.len) st = unexpected(&p, "the end of the text after the JSON value");
    }
    if (st == SKY_OK) {
        SKY_ASSERT(root == 0 && p.n_stack == 0);
        st = finish(&p, out);
    }
    free(p.nodes);
    free(p.stack);
    free(p.kids);
    free(p.strs);
    return st;
}

const sky_json *sky_json_root(const sky_json_doc *doc) { return &doc->nodes[0]; }

void sky_json_free(sky_json_doc *doc)
{
    if (doc == NULL) return;
    free(doc->nodes);
    free(doc->items);
    free(doc->strs);
    free(doc);
}

const sky_json *sky_json_get(const sky_json *obj, const char *key)
{
    if (obj == NULL || obj->type != SKY_JSON_OBJECT) return NULL;
    size_t n = strlen(key);
    for (size_t i = 0; i < obj->count; i++) {
        const sky_json *v = obj->items[i];
        if (v->key_len == n && memcmp(v->key, key, n) == 0) return v;
    }
    return NULL;
}

void sky_json_write_str(FILE *out, const char *s)
{
    if (!s) {
        fputs("null", out);
        return;
    }
    fputc('"', out);
    for (size_t i = 0, n = strlen(s); i < n;) {
        const size_t ok = sky_utf8_check(s + i, n - i);
        for (const unsigned char *c = (const unsigned char *)s + i; c < (const unsigned char *)s + i + ok; c++) {
            if (*c == '"' || *c == '\\')
                fprintf(out, "\\%c", *c);
            else if (*c < 0x20 || *c == 0x7f)
                fprintf(out, "\\u%04x", *c);
            else
                fputc(*c, out);
        }
        i += ok;
        if (i < n) {
            fputs("\\ufffd", out);
            i++;
        }
    }
    fputc('"', out);
}
