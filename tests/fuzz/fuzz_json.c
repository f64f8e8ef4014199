/* tests/fuzz/fuzz_json.c — libFuzzer target for the strict JSON parser (core/json.h), which reads every
 * safetensors header, *.safetensors.index.json and tokenizer.json.
 *
 * Input: the JSON text. It is parsed twice, with the default limits and with tight ones (depth 3, strings of
 * 8 bytes, 20 values). Checked on top of ASan/UBSan:
 *   - a document that parses is valid UTF-8 as a whole, its root is a value, every string and key is valid
 *     UTF-8 and NUL-terminated at its length, a number flagged u64 is the digits of its value, object members
 *     have keys (unique ones, and sky_json_get finds each), array items have none, nesting is within the limit;
 *   - the tight parse succeeds only if the default one does, and then keeps to its limits;
 *   - an error reads "byte N: ..." with N within the text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "fuzz_common.h"

static void check_string(const char *s, size_t len)
{
    if (!s || s[len] != '\0' || sky_utf8_check(s, len) != len) abort();
}

/* Walk v (at depth d) and check the invariants above; returns the number of values. */
static size_t check_value(const sky_json *v, size_t text_len, size_t d, const sky_json_limits *lim)
{
    if (d > (lim->max_depth ? lim->max_depth : SKY_JSON_MAX_DEPTH) + 1 || v->offset >= text_len) abort();
    size_t n = 1;
    switch (v->type) {
    case SKY_JSON_NULL:
    case SKY_JSON_BOOL:
        if (v->boolean != 0 && v->boolean != 1) abort();
        break;
    case SKY_JSON_NUMBER:
        check_string(v->str, v->len);
        if (v->len == 0 || (lim->max_string && v->len > lim->max_string)) abort();
        if (v->is_u64) {
            uint64_t x = 0;
            for (size_t i = 0; i < v->len; i++) {
                if (v->str[i] < '0' || v->str[i] > '9') abort();
                x = x * 10 + (uint64_t)(v->str[i] - '0');
            }
            if (x != v->u64) abort();
        }
        break;
    case SKY_JSON_STRING:
        check_string(v->str, v->len);
        if (lim->max_string && v->len > lim->max_string) abort();
        break;
    case SKY_JSON_ARRAY:
    case SKY_JSON_OBJECT:
        if (v->count && !v->items) abort();
        for (size_t i = 0; i < v->count; i++) {
            const sky_json *c = v->items[i];
            if (v->type == SKY_JSON_ARRAY && c->key) abort();
            if (v->type == SKY_JSON_OBJECT) {
                check_string(c->key, c->key_len);
                for (size_t j = 0; j < i && i < 64; j++)
                    if (v->items[j]->key_len == c->key_len && memcmp(v->items[j]->key, c->key, c->key_len) == 0)
                        abort();
                if (strlen(c->key) == c->key_len && sky_json_get(v, c->key) != c) abort();
            }
            n += check_value(c, text_len, d + 1, lim);
        }
        break;
    default: abort();
    }
    return n;
}

static int parse(const uint8_t *data, size_t size, const sky_json_limits *lim)
{
    sky_json_doc *doc = NULL;
    sky_err       err = {{0}};
    if (sky_json_parse(&doc, (const char *)data, size, lim, &err) != SKY_OK) {
        char *end = NULL;
        if (doc || strncmp(err.msg, "byte ", 5) != 0) abort();
        unsigned long long at = strtoull(err.msg + 5, &end, 10);
        if (!end || *end != ':' || at > size) abort();
        return 0;
    }
    if (sky_utf8_check((const char *)data, size) != size) abort();
    const sky_json *root = sky_json_root(doc);
    if (!root || root->key) abort();
    size_t n = check_value(root, size, 1, lim);
    if (lim->max_values && n > lim->max_values) abort();
    sky_json_free(doc);
    return 1;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const sky_json_limits dflt = {0, 0, 0}, tight = {3, 8, 20};
    int                   ok = parse(data, size, &dflt);
    if (parse(data, size, &tight) && !ok) abort();
    return 0;
}
