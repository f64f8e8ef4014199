/* runtime/core/json.h — a small, strict JSON (RFC 8259) parser for untrusted input.
 *
 * Used for safetensors headers and *.safetensors.index.json files, so it rejects
 * everything lenient parsers let through (reference conventions-and-reliability.md §3.2):
 *   - invalid UTF-8 anywhere (overlong forms, surrogates, > U+10FFFF, stray bytes)
 *   - comments, NaN/Infinity, trailing commas, leading '+', leading zeros, bare words
 *   - invalid escapes, raw control characters in strings, lone surrogate \u escapes
 *   - duplicate keys in any object (checked in O(k log k) per object)
 *   - nesting deeper than max_depth, strings longer than max_string bytes,
 *     more than max_values values in the document
 * JSON whitespace (space, tab, CR, LF) is allowed before and after the root value.
 *
 * Numbers keep their literal text; a number written as a plain non-negative integer
 * (no '-', '.', exponent) that fits in 64 bits also has its exact value in u64. No
 * integer ever passes through a double.
 *
 * The parse result is one allocation family owned by sky_json_doc; every pointer
 * below stays valid until sky_json_free().
 */
#ifndef SKY_JSON_H
#define SKY_JSON_H

#include <stdio.h>

#include "core/status.h"

typedef enum sky_json_type {
    SKY_JSON_NULL,
    SKY_JSON_BOOL,
    SKY_JSON_NUMBER,
    SKY_JSON_STRING,
    SKY_JSON_ARRAY,
    SKY_JSON_OBJECT
} sky_json_type;

typedef struct sky_json sky_json;

/* One JSON value. Read the fields; never write them. */
struct sky_json {
    sky_json_type          type;
    int                    boolean; /* BOOL: 0 or 1 */
    int                    is_u64;  /* NUMBER: a plain integer in [0, 2^64-1] */
    uint64_t               u64;     /* NUMBER: its exact value when is_u64 */
    const char            *str;     /* STRING: decoded UTF-8; NUMBER: the literal text; NUL-terminated */
    size_t                 len;     /* bytes in str (a string may contain "\u0000") */
    const char            *key;     /* member name if this value sits in an object, else NULL */
    size_t                 key_len;
    size_t                 offset;   /* byte offset of the value in the text, for messages */
    size_t                 count;    /* ARRAY / OBJECT: number of items */
    const sky_json *const *items;    /* ARRAY / OBJECT: items in document order */
    size_t                 str_off_; /* private: offsets used while parsing */
    size_t                 key_off_;
    size_t                 items_off_;
};

/* Limits; a field left 0 takes the default shown. */
typedef struct sky_json_limits {
    size_t max_depth;  /* nested arrays/objects; default SKY_JSON_MAX_DEPTH */
    size_t max_string; /* decoded bytes per string or key; default SKY_JSON_MAX_STRING */
    size_t max_values; /* values in the whole document; default: no limit beyond the text */
} sky_json_limits;

#define SKY_JSON_MAX_DEPTH  64
#define SKY_JSON_MAX_STRING ((size_t)16 << 20)

typedef struct sky_json_doc sky_json_doc;

/* Parse len bytes of text (need not be NUL-terminated). lim may be NULL for defaults.
 * On error returns SKY_ERR, sets *out = NULL, and err->msg reads
 * "byte 17: <what is wrong>" (the caller prefixes the file name). */
sky_status sky_json_parse(sky_json_doc **out, const char *text, size_t len, const sky_json_limits *lim, sky_err *err);

/* The root value of a parsed document. */
const sky_json *sky_json_root(const sky_json_doc *doc);

/* Free a document and every value in it. NULL is fine. */
void sky_json_free(sky_json_doc *doc);

/* The member of object obj named key (NUL-terminated), or NULL when absent or when
 * obj is not an object. Linear in the object's size; keys are unique. */
const sky_json *sky_json_get(const sky_json *obj, const char *key);

/* "null", "bool", "number", "string", "array" or "object". */
const char *sky_json_type_name(sky_json_type t);

/* Length of the longest valid UTF-8 prefix of s: returns len when all of s is valid,
 * else the offset of the first byte of the first invalid sequence. Overlong forms,
 * UTF-16 surrogates (U+D800..DFFF) and code points above U+10FFFF are invalid. */
size_t sky_utf8_check(const char *s, size_t len);

/* s as a JSON string onto out, always valid JSON and valid UTF-8: quotes and backslashes escaped, controls and DEL
 * as \u00XX, a byte that is not part of valid UTF-8 (a path given in another encoding) as U+FFFD; "null" for
 * NULL. Every JSON the engine writes (run summary, progress lines, bench, safetensors metadata, the prompt
 * enhancer's request) writes its strings through here. */
void sky_json_write_str(FILE *out, const char *s);

#endif /* SKY_JSON_H */
