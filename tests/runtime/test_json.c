/* tests/runtime/test_json.c — the strict JSON parser (runtime/core/json.c) on its own:
 * values, escapes, exact u64 integers, and each rejection with its message. */
#include "../../runtime/core/json.h"
#include "check.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Parse text; NULL when it parsed (document freed), else the error message. */
static const char *reject_msg(const char *text, size_t len, const sky_json_limits *lim) {
    static sky_err err;
    sky_json_doc *doc = NULL;
    if (sky_json_parse(&doc, text, len, lim, &err) == SKY_OK) {
        sky_json_free(doc);
        return NULL;
    }
    if (doc != NULL) return "(doc not NULL after an error)";
    return err.msg;
}

/* CHECK that literal text is rejected with a message containing sub. */
#define REJECTS(text, sub)                                                                 \
    do {                                                                                   \
        const char *m_ = reject_msg(text, sizeof(text) - 1, NULL);                         \
        CHECK(m_ != NULL && strstr(m_, sub) != NULL, "input %s: expected \"%s\", got: %s", \
              text, sub, m_ ? m_ : "(parsed)");                                            \
    } while (0)

static int test_object_array_literals(void) {
    const char *t = "{\"a\": 1, \"b\": [true, false, null], \"c\": \"x\", \"d\": {}, \"e\": []}";
    sky_err err;
    sky_json_doc *doc;
    CHECK(sky_json_parse(&doc, t, strlen(t), NULL, &err) == SKY_OK, "%s", err.msg);
    const sky_json *r = sky_json_root(doc);
    CHECK(r->type == SKY_JSON_OBJECT && r->count == 5, "type %d count %zu", r->type, r->count);
    CHECK(r->key == NULL, "root has a key");
    CHECK(strcmp(r->items[0]->key, "a") == 0 && r->items[4]->key_len == 1, "keys in order");
    const sky_json *a = sky_json_get(r, "a"), *b = sky_json_get(r, "b"), *c = sky_json_get(r, "c");
    CHECK(a && a->type == SKY_JSON_NUMBER && a->is_u64 && a->u64 == 1, "a");
    CHECK(b && b->type == SKY_JSON_ARRAY && b->count == 3, "b");
    CHECK(b->items[0]->type == SKY_JSON_BOOL && b->items[0]->boolean == 1, "true");
    CHECK(b->items[1]->type == SKY_JSON_BOOL && b->items[1]->boolean == 0, "false");
    CHECK(b->items[2]->type == SKY_JSON_NULL && b->items[2]->key == NULL, "null");
    CHECK(c && c->type == SKY_JSON_STRING && strcmp(c->str, "x") == 0 && c->len == 1, "c");
    CHECK(sky_json_get(r, "d")->count == 0 && sky_json_get(r, "e")->type == SKY_JSON_ARRAY, "empty");
    CHECK(sky_json_get(r, "zz") == NULL && sky_json_get(b, "a") == NULL, "absent key / not an object");
    CHECK(a->offset == 6, "offset of 1 is %zu", a->offset);
    sky_json_free(doc);
    return 0;
}

static int test_whitespace_around_root(void) {
    CHECK(reject_msg(" \t\r\n{\"a\":[ 1 , 2 ]} \n\t ", 22, NULL) == NULL, "whitespace rejected");
    CHECK(reject_msg("\"s\"", 3, NULL) == NULL && reject_msg("7", 1, NULL) == NULL, "scalar roots");
    return 0;
}

static int test_escapes(void) {
    const char *t = "\"q\\\"b\\\\s\\/b\\bf\\fn\\nr\\rt\\tA\\u0041e\\u00e9E\\u20AC\"";
    const char *want = "q\"b\\s/b\bf\fn\nr\rt\tAAe\xc3\xa9" "E\xe2\x82\xac";
    sky_err err;
    sky_json_doc *doc;
    CHECK(sky_json_parse(&doc, t, strlen(t), NULL, &err) == SKY_OK, "%s", err.msg);
    const sky_json *s = sky_json_root(doc);
    CHECK(s->len == strlen(want) && memcmp(s->str, want, s->len) == 0, "decoded '%s'", s->str);
    sky_json_free(doc);
    return 0;
}

static int test_surrogate_pair_to_utf8(void) {
    const char *t = "[\"\\uD83D\\uDE00\", \"\\ud83d\\ude00x\", \"\xf0\x9f\x98\x80\"]";
    sky_err err;
    sky_json_doc *doc;
    CHECK(sky_json_parse(&doc, t, strlen(t), NULL, &err) == SKY_OK, "%s", err.msg);
    const sky_json *r = sky_json_root(doc);
    CHECK(strcmp(r->items[0]->str, "\xf0\x9f\x98\x80") == 0 && r->items[0]->len == 4, "U+1F600 escaped");
    CHECK(strcmp(r->items[1]->str, "\xf0\x9f\x98\x80x") == 0, "lower-case hex");
    CHECK(strcmp(r->items[2]->str, "\xf0\x9f\x98\x80") == 0, "raw UTF-8 kept");
    sky_json_free(doc);
    return 0;
}

static int test_nul_escape_keeps_length(void) {
    const char *t = "{\"a\\u0000b\": \"x\\u0000y\"}";
    sky_err err;
    sky_json_doc *doc;
    CHECK(sky_json_parse(&doc, t, strlen(t), NULL, &err) == SKY_OK, "%s", err.msg);
    const sky_json *v = sky_json_root(doc)->items[0];
    CHECK(v->key_len == 3 && memcmp(v->key, "a\0b", 3) == 0, "key_len %zu", v->key_len);
    CHECK(v->len == 3 && memcmp(v->str, "x\0y", 3) == 0, "len %zu", v->len);
    sky_json_free(doc);
    return 0;
}

static int test_exact_u64(void) {
    const char *t = "[0, 18446744073709551615, 9007199254740993, 18446744073709551616, -1, 1.0, 1e3, -0, 0.5E-3]";
    sky_err err;
    sky_json_doc *doc;
    CHECK(sky_json_parse(&doc, t, strlen(t), NULL, &err) == SKY_OK, "%s", err.msg);
    const sky_json *const *v = sky_json_root(doc)->items;
    CHECK(v[0]->is_u64 && v[0]->u64 == 0, "0");
    CHECK(v[1]->is_u64 && v[1]->u64 == UINT64_MAX, "2^64-1 = %llu", (unsigned long long)v[1]->u64);
    CHECK(v[2]->is_u64 && v[2]->u64 == 9007199254740993ull, "2^53+1 inexact: %llu", (unsigned long long)v[2]->u64);
    CHECK(!v[3]->is_u64 && strcmp(v[3]->str, "18446744073709551616") == 0, "2^64 is not a u64");
    CHECK(!v[4]->is_u64 && !v[5]->is_u64 && !v[6]->is_u64 && !v[7]->is_u64, "-1, 1.0, 1e3, -0");
    CHECK(strcmp(v[8]->str, "0.5E-3") == 0 && v[8]->len == 6, "number text kept");
    sky_json_free(doc);
    return 0;
}

static int test_reject_trailing_commas(void) {
    REJECTS("{\"a\":1,}", "trailing comma before '}'");
    REJECTS("[1,]", "byte 3: trailing comma before ']'");
    REJECTS("[,1]", "unexpected ','");
    return 0;
}

static int test_reject_comments(void) {
    REJECTS("{\"a\":1 /* c */}", "comments are not allowed");
    REJECTS("// c\n{}", "comments are not allowed");
    return 0;
}

static int test_reject_nan_infinity_bare_words(void) {
    REJECTS("[NaN]", "NaN and Infinity");
    REJECTS("[Infinity]", "NaN and Infinity");
    REJECTS("[-Infinity]", "expected a digit after '-'");
    REJECTS("[nan]", "invalid literal");
    REJECTS("[tru]", "invalid literal");
    REJECTS("[truex]", "unexpected 'x'");
    REJECTS("{'a':1}", "unexpected '''");
    return 0;
}

static int test_reject_bad_numbers(void) {
    REJECTS("[+1]", "a leading '+' is not allowed");
    REJECTS("[01]", "leading zeros");
    REJECTS("[1.]", "expected a digit after '.'");
    REJECTS("[.5]", "unexpected '.'");
    REJECTS("[1e]", "expected a digit in the exponent");
    REJECTS("[1e+]", "expected a digit in the exponent");
    REJECTS("[-]", "expected a digit after '-'");
    REJECTS("[0x10]", "unexpected 'x'");
    return 0;
}

static int test_reject_bad_escapes(void) {
    REJECTS("[\"\\x\"]", "invalid escape '\\x'");
    REJECTS("[\"\\'\"]", "invalid escape");
    REJECTS("[\"\\u12\"]", "expected 4 hex digits");
    REJECTS("[\"\\u12G4\"]", "expected 4 hex digits");
    REJECTS("[\"abc", "unterminated string");
    REJECTS("[\"abc\\", "unterminated string");
    return 0;
}

static int test_reject_lone_surrogates(void) {
    REJECTS("[\"\\uD83D\"]", "lone high surrogate \\uD83D");
    REJECTS("[\"\\uD83Dx\"]", "lone high surrogate");
    REJECTS("[\"\\uD83D\\u0041\"]", "lone high surrogate \\uD83D (followed by \\u0041)");
    REJECTS("[\"\\uD83D\\uD83D\"]", "lone high surrogate");
    REJECTS("[\"\\uDE00\"]", "lone low surrogate \\uDE00");
    return 0;
}

static int test_reject_control_chars_and_bad_utf8(void) {
    REJECTS("[\"a\nb\"]", "raw control character 0x0a");
    REJECTS("[\"a\tb\"]", "raw control character 0x09");
    REJECTS("[\"\xc0\xaf\"]", "invalid UTF-8");           /* overlong '/' */
    REJECTS("[\"\xe0\x80\xaf\"]", "invalid UTF-8");       /* overlong 3-byte */
    REJECTS("[\"\xed\xa0\x80\"]", "invalid UTF-8");       /* surrogate D800 */
    REJECTS("[\"\xf4\x90\x80\x80\"]", "invalid UTF-8");   /* > U+10FFFF */
    REJECTS("[\"\xe2\x82\"]", "invalid UTF-8");           /* truncated */
    REJECTS("[\"\x80\"]", "invalid UTF-8");               /* stray continuation */
    REJECTS("[\xc3\xa9]", "unexpected byte 0xc3");        /* non-ASCII outside strings */
    return 0;
}

static int test_reject_duplicate_keys(void) {
    REJECTS("{\"a\":1,\"b\":2,\"a\":3}", "byte 17: duplicate key \"a\"");
    REJECTS("{\"w\":{\"x\":1,\"y\":2,\"x\":1}}", "duplicate key \"x\" in the object \"w\"");
    REJECTS("[{\"k\":1,\"k\":1}]", "duplicate key \"k\"");
    /* keys differing only after an embedded NUL are distinct */
    CHECK(reject_msg("{\"a\\u0000b\":1,\"a\\u0000c\":2,\"a\":3}", 33, NULL) == NULL, "NUL keys");
    return 0;
}

static int test_many_keys_duplicate_at_end(void) {
    size_t cap = 20000 * 16, len = 0;
    char *t = malloc(cap);
    CHECK(t != NULL, "malloc");
    len += (size_t)snprintf(t + len, cap - len, "{");
    for (int i = 0; i < 20000; i++) len += (size_t)snprintf(t + len, cap - len, "\"k%d\":%d,", i, i);
    len += (size_t)snprintf(t + len, cap - len, "\"k123\":0}");
    const char *m = reject_msg(t, len, NULL);
    int ok = m != NULL && strstr(m, "duplicate key \"k123\"") != NULL;
    t[len - 10] = '}';                                   /* drop the duplicate: now valid */
    const char *m2 = reject_msg(t, len - 9, NULL);
    free(t);
    CHECK(ok, "got %s", m ? m : "(parsed)");
    CHECK(m2 == NULL, "valid 20000-key object rejected: %s", m2);
    return 0;
}

static int test_depth_limit(void) {
    char t[200];
    for (int i = 0; i < 64; i++) { t[i] = '['; t[127 - i] = ']'; }
    CHECK(reject_msg(t, 128, NULL) == NULL, "64 levels rejected: %s", reject_msg(t, 128, NULL));
    for (int i = 0; i < 65; i++) { t[i] = '['; t[129 - i] = ']'; }
    const char *m = reject_msg(t, 130, NULL);
    CHECK(m && strstr(m, "nesting deeper than 64 levels"), "65 levels: %s", m ? m : "(parsed)");
    sky_json_limits lim = { 2, 0, 0 };
    m = reject_msg("{\"a\":[[1]]}", 11, &lim);
    CHECK(m && strstr(m, "nesting deeper than 2 levels"), "custom depth: %s", m ? m : "(parsed)");
    return 0;
}

static int test_string_and_value_limits(void) {
    sky_json_limits lim = { 0, 4, 0 };
    const char *m = reject_msg("[\"abcde\"]", 9, &lim);
    CHECK(m && strstr(m, "string longer than 4 bytes"), "string: %s", m ? m : "(parsed)");
    CHECK(reject_msg("[\"abcd\"]", 8, &lim) == NULL, "4 bytes is fine");
    m = reject_msg("{\"abcdef\":1}", 12, &lim);
    CHECK(m && strstr(m, "string longer than 4 bytes"), "key: %s", m ? m : "(parsed)");
    m = reject_msg("[123456]", 8, &lim);
    CHECK(m && strstr(m, "number longer than 4"), "number: %s", m ? m : "(parsed)");
    sky_json_limits vl = { 0, 0, 3 };
    m = reject_msg("[1,2,3]", 7, &vl);
    CHECK(m && strstr(m, "more than 3 values"), "values: %s", m ? m : "(parsed)");
    CHECK(reject_msg("[1,2]", 5, &vl) == NULL, "3 values are fine");
    return 0;
}

static int test_reject_structure(void) {
    REJECTS("", "unexpected end of text, expected a value");
    REJECTS("   ", "unexpected end of text");
    REJECTS("{} x", "byte 3: unexpected 'x', expected the end of the text");
    REJECTS("{}{}", "unexpected '{'");
    REJECTS("{\"a\" 1}", "expected ':' after the key");
    REJECTS("{1:2}", "expected a string key");
    REJECTS("{\"a\":1", "expected ',' or '}'");
    REJECTS("[1 2]", "expected ',' or ']'");
    REJECTS("{\"a\":}", "expected a value");
    CHECK(reject_msg("{}\0", 3, NULL) != NULL, "NUL after the root accepted");
    return 0;
}

static int test_utf8_check(void) {
    CHECK(sky_utf8_check("abc", 3) == 3, "ascii");
    CHECK(sky_utf8_check("\xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80", 9) == 9, "2/3/4-byte");
    CHECK(sky_utf8_check("\xef\xbf\xbf\xf4\x8f\xbf\xbf", 7) == 7, "U+FFFF, U+10FFFF");
    CHECK(sky_utf8_check("ab\xc1\xbf", 4) == 2, "overlong 2-byte");
    CHECK(sky_utf8_check("a\xed\xbf\xbf", 4) == 1, "surrogate DFFF");
    CHECK(sky_utf8_check("\xf5\x80\x80\x80", 4) == 0, "F5 lead");
    CHECK(sky_utf8_check("\xf0\x8f\xbf\xbf", 4) == 0, "overlong 4-byte");
    CHECK(sky_utf8_check("x\xe2\x82", 3) == 1, "truncated at end");
    CHECK(sky_utf8_check("\xe2\x28\xa1", 3) == 0, "bad continuation");
    return 0;
}

int main(void) {
    RUN(test_object_array_literals);
    RUN(test_whitespace_around_root);
    RUN(test_escapes);
    RUN(test_surrogate_pair_to_utf8);
    RUN(test_nul_escape_keeps_length);
    RUN(test_exact_u64);
    RUN(test_reject_trailing_commas);
    RUN(test_reject_comments);
    RUN(test_reject_nan_infinity_bare_words);
    RUN(test_reject_bad_numbers);
    RUN(test_reject_bad_escapes);
    RUN(test_reject_lone_surrogates);
    RUN(test_reject_control_chars_and_bad_utf8);
    RUN(test_reject_duplicate_keys);
    RUN(test_many_keys_duplicate_at_end);
    RUN(test_depth_limit);
    RUN(test_string_and_value_limits);
    RUN(test_reject_structure);
    RUN(test_utf8_check);
    return CHECK_SUMMARY();
}
