/* tests/runtime/test_prompt_enhancer.c — runtime/net/prompt_enhancer.c without a network: the request body
 * (every string round-trips through a JSON parser byte for byte), the endpoint and settings checks, and the
 * answer parser on good and hostile answers (truncated at every byte, wrong types, invalid UTF-8, control
 * characters, empty, huge), each failure checked by its message. Linked with net/http_none.c: the exchange
 * itself fails saying that libcurl is missing (the exchange over a socket: tests/runtime/test_prompt_enhancer.sh).
 */
#include "net/prompt_enhancer.h"

#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "core/json.h"

/* Parse text with the runtime's parser (the strict one the answer goes through too). */
static sky_json_doc *parse_json(const char *text, size_t len)
{
    sky_json_doc *doc;
    sky_err       e;
    return sky_json_parse(&doc, text, len, NULL, &e) ? NULL : doc;
}

/* A string member equals want (len bytes, NULs included). */
static int str_is(const sky_json *obj, const char *key, const char *want, size_t len)
{
    const sky_json *v = sky_json_get(obj, key);
    return v && v->type == SKY_JSON_STRING && v->len == len && memcmp(v->str, want, len) == 0;
}

/* A prompt with every character class the escaping must handle: quotes, backslashes, every C0 control,
 * DEL, 2-, 3- and 4-byte UTF-8, U+2028, a "</script>" and an escape-looking text. */
static void hostile_prompt(char *buf, size_t n)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n - k, "say \"hi\" \\ back\\slash \\u0041 \\\" </script> ");
    for (int c = 1; c < 0x20; c++) buf[k++] = (char)c;
    k += (size_t)snprintf(buf + k, n - k, "\x7f caf\xc3\xa9 \xe4\xb8\x80\xe5\x8f\xaa\xe7\x8c\xab \xf0\x9f\x90\x88 "
                                          "\xe2\x80\xa8 end");
}

static int test_request_round_trip(void)
{
    char prompt[512];
    hostile_prompt(prompt, sizeof prompt);
    const char *model = "org/m\"odel\\1 \xc3\xa9";
    char       *body;
    size_t      len;
    sky_err     err;
    CHECK(sky_prompt_enhancer_request(model, prompt, &body, &len, &err) == SKY_OK, "%s", err.msg);
    CHECK(len == strlen(body), "len %zu, strlen %zu", len, strlen(body));
    sky_json_doc *doc = parse_json(body, len);
    CHECK(doc, "the request is not strict JSON: %s", body);
    const sky_json *root = sky_json_root(doc);
    CHECK(str_is(root, "model", model, strlen(model)), "model differs: %s", body);
    const sky_json *msgs = sky_json_get(root, "messages");
    CHECK(msgs && msgs->type == SKY_JSON_ARRAY && msgs->count == 2, "messages: %s", body);
    CHECK(str_is(msgs->items[0], "role", "system", 6) &&
              str_is(msgs->items[0], "content", sky_prompt_enhancer_system, strlen(sky_prompt_enhancer_system)),
          "system message: %s", body);
    CHECK(str_is(msgs->items[1], "role", "user", 4), "user role: %s", body);
    CHECK(str_is(msgs->items[1], "content", prompt, strlen(prompt)), "the prompt does not round-trip: %s", body);
    const sky_json *t = sky_json_get(root, "temperature"), *seed = sky_json_get(root, "seed");
    const sky_json *mt = sky_json_get(root, "max_tokens"), *stream = sky_json_get(root, "stream");
    CHECK(t && t->type == SKY_JSON_NUMBER && strtod(t->str, NULL) == 0.7, "temperature: %s", body);
    CHECK(seed && seed->is_u64 && seed->u64 == 0, "seed: %s", body);
    CHECK(mt && mt->is_u64 && mt->u64 == SKY_PROMPT_ENHANCER_MAX_TOKENS, "max_tokens: %s", body);
    CHECK(stream && stream->type == SKY_JSON_BOOL && stream->boolean == 0, "stream: %s", body);
    sky_json_free(doc);
    free(body);
    return 0;
}

static int test_request_refuses_bad_utf8(void)
{
    char   *body;
    size_t  len;
    sky_err err;
    CHECK(sky_prompt_enhancer_request("m", "ok \xc3\x28 bad", &body, &len, &err) == SKY_ERR && !body,
          "invalid UTF-8 accepted");
    CHECK(strstr(err.msg, "not valid UTF-8 (byte 3)"), "%s", err.msg);
    return 0;
}

static int test_endpoint(void)
{
    static const struct {
        const char *url, *want;
    } good[] = {
        {"http://127.0.0.1:8000/v1", "http://127.0.0.1:8000/v1/chat/completions"},
        {"http://127.0.0.1:8000/v1/", "http://127.0.0.1:8000/v1/chat/completions"},
        {"HTTPS://api.example/v1//", "HTTPS://api.example/v1/chat/completions"},
        {"http://h:1/v1/chat/completions", "http://h:1/v1/chat/completions"},
        {"http://h:1/v1/chat/completions/", "http://h:1/v1/chat/completions"},
    };
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        char   *e;
        sky_err err;
        CHECK(sky_prompt_enhancer_endpoint(good[i].url, &e, &err) == SKY_OK, "%s: %s", good[i].url, err.msg);
        CHECK(strcmp(e, good[i].want) == 0, "%s -> %s (want %s)", good[i].url, e, good[i].want);
        free(e);
    }
    static const struct {
        const char *url, *msg;
    } bad[] = {
        {"127.0.0.1:8000/v1", "must start with http:// or https://"},
        {"ftp://h/v1", "must start with http:// or https://"},
        {"http://", "names no host"},
        {"http:///v1", "names no host"},
        {"http://h/v 1", "byte 10 is a space"},
        {"http://h/v1\r\nX: y", "byte 11 is a space, a control character"},
        {"http://h\xc3\xa9/v1", "not ASCII (percent-encode it)"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char   *e;
        sky_err err;
        CHECK(sky_prompt_enhancer_endpoint(bad[i].url, &e, &err) == SKY_ERR && !e, "%s accepted", bad[i].url);
        CHECK(strstr(err.msg, bad[i].msg), "%s: %s (want %s)", bad[i].url, err.msg, bad[i].msg);
    }
    return 0;
}

static int test_check(void)
{
    sky_prompt_enhancer pe = {SKY_PROMPT_ENHANCER_URL, SKY_PROMPT_ENHANCER_MODEL, "sk-123", 120};
    sky_err             err;
    CHECK(sky_prompt_enhancer_check(&pe, &err) == SKY_OK, "%s", err.msg);
    pe.api_key = "sk-1\r\nX-Injected: 1";
    CHECK(sky_prompt_enhancer_check(&pe, &err) == SKY_ERR && strstr(err.msg, "$SKY_PROMPT_ENHANCER_API_KEY: byte 4"),
          "%s", err.msg);
    pe.api_key = NULL, pe.model = "";
    CHECK(sky_prompt_enhancer_check(&pe, &err) == SKY_ERR && strstr(err.msg, "must be non-empty UTF-8"), "%s",
          err.msg);
    pe.model = "m", pe.timeout_s = 0;
    CHECK(sky_prompt_enhancer_check(&pe, &err) == SKY_ERR && strstr(err.msg, "timeout 0 s: must be 1 to 3600"), "%s",
          err.msg);
    return 0;
}

/* An OpenAI chat-completions answer with this content literal (already JSON-escaped) and finish reason. */
static size_t answer(char *buf, size_t n, const char *content_json, const char *finish)
{
    return (size_t)snprintf(buf, n,
                            "{\"id\": \"cmpl-1\", \"object\": \"chat.completion\", \"created\": 1, \"model\": \"m\", "
                            "\"choices\": [{\"index\": 0, \"message\": {\"role\": \"assistant\", \"content\": %s}, "
                            "\"finish_reason\": \"%s\"}], \"usage\": {\"prompt_tokens\": 9, \"total_tokens\": 19}}",
                            content_json, finish);
}

static int test_parse_good(void)
{
    char    buf[1024], *p;
    int     cut = -1;
    sky_err err;
    size_t  n = answer(buf, sizeof buf, "\"\\n  A wide shot.\\tA cat \\u00e9\\ud83d\\udc08 walks.\\r\\n\\n\"", "stop");
    CHECK(sky_prompt_enhancer_parse(buf, n, &p, &cut, &err) == SKY_OK, "%s", err.msg);
    CHECK(strcmp(p, "A wide shot. A cat \xc3\xa9\xf0\x9f\x90\x88 walks.") == 0 && cut == 0, "got '%s', cut %d", p,
          cut);
    free(p);
    n = answer(buf, sizeof buf, "\"A wide shot of a\"", "length");
    CHECK(sky_prompt_enhancer_parse(buf, n, &p, &cut, &err) == SKY_OK && cut == 1, "cut %d: %s", cut, err.msg);
    free(p);
    return 0;
}

/* Every proper prefix of a good answer is refused as not JSON (no crash, no leak under ASan). */
static int test_parse_truncated(void)
{
    char   buf[1024];
    size_t n = answer(buf, sizeof buf, "\"A cat \\u00e9 walks.\"", "stop");
    for (size_t k = 0; k < n; k++) {
        char   *p;
        sky_err err;
        CHECK(sky_prompt_enhancer_parse(buf, k, &p, NULL, &err) == SKY_ERR && !p, "prefix of %zu bytes accepted", k);
        CHECK(strstr(err.msg, "it is not JSON (byte ") || strstr(err.msg, "not valid UTF-8"), "%zu: %s", k, err.msg);
    }
    return 0;
}

static int test_parse_hostile(void)
{
    static const struct {
        const char *answer, *msg;
    } cases[] = {
        {"", "it is not JSON (byte 0"},
        {"<html>502 Bad Gateway</html>", "it is not JSON (byte 0"},
        {"[1, 2]", "it is a JSON array, not an object with choices"},
        {"{}", "it has no choices"},
        {"{\"choices\": {}}", "its choices is object where array is expected"},
        {"{\"choices\": []}", "its choices array is empty"},
        {"{\"choices\": [\"x\"]}", "its choices[0] is string where object is expected"},
        {"{\"choices\": [{}]}", "it has no choices[0].message"},
        {"{\"choices\": [{\"message\": []}]}", "its choices[0].message is array where object is expected"},
        {"{\"choices\": [{\"message\": {}}]}", "it has no choices[0].message.content"},
        {"{\"choices\": [{\"message\": {\"content\": null}}]}", "choices[0].message.content is null where string"},
        {"{\"choices\": [{\"message\": {\"content\": 42}}]}", "choices[0].message.content is number where string"},
        {"{\"choices\": [{\"message\": {\"content\": \"\"}}]}", "the model's answer is empty"},
        {"{\"choices\": [{\"message\": {\"content\": \" \\n\\t \"}}]}", "the model's answer is empty"},
        {"{\"choices\": [{\"message\": {\"content\": \"a\\u0000b\"}}]}", "control character U+0000 at byte 1"},
        {"{\"choices\": [{\"message\": {\"content\": \"ab\\u0007\"}}]}", "control character U+0007 at byte 2"},
        {"{\"choices\": [{\"message\": {\"content\": \"a\\ud800\"}}]}", "it is not JSON (byte"},
        {"{\"choices\": [{\"message\": {\"content\": \"a\xff\"}}]}", "it is not valid UTF-8 (byte 39 of 45)"},
        {"{\"choices\": [{\"message\": {\"content\": \"a\xc0\xaf\"}}]}", "it is not valid UTF-8 (byte 39"},
        {"{\"choices\": [], \"choices\": []}", "it is not JSON (byte"},
        {"{\"error\": {\"message\": \"The model `x` does not exist.\", \"code\": 404}}",
         "the server says: The model `x` does not exist."},
        {"{\"error\": \"overloaded\"}", "the server says: overloaded"},
        {"{\"choices\": [{\"message\": {\"content\": \"x\"}}],}", "it is not JSON (byte"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char   *p = NULL;
        sky_err err;
        CHECK(sky_prompt_enhancer_parse(cases[i].answer, strlen(cases[i].answer), &p, NULL, &err) == SKY_ERR && !p,
              "case %zu accepted: %s", i, cases[i].answer);
        CHECK(strstr(err.msg, cases[i].msg), "case %zu: '%s' (want '%s')", i, err.msg, cases[i].msg);
    }
    return 0;
}

/* Huge answers: a content over the prompt limit, a document nested past the depth limit, and a long but
 * well-formed answer (padding in another field) that is accepted. */
static int test_parse_huge(void)
{
    const size_t big = SKY_PROMPT_ENHANCER_MAX_PROMPT + 1;
    char        *content = malloc(big + 3), *buf = malloc(big + 512), *p;
    sky_err      err;
    CHECK(content && buf, "out of memory");
    content[0] = '"';
    memset(content + 1, 'a', big);
    strcpy(content + 1 + big, "\"");
    size_t n = answer(buf, big + 512, content, "stop");
    CHECK(sky_prompt_enhancer_parse(buf, n, &p, NULL, &err) == SKY_ERR, "an oversized answer accepted");
    CHECK(strstr(err.msg, "the model's answer is 4097 bytes, more than the 4096"), "%s", err.msg);
    free(content);
    free(buf);

    const size_t depth = 100000;
    buf = malloc(2 * depth + 1);
    CHECK(buf, "out of memory");
    memset(buf, '[', depth);
    memset(buf + depth, ']', depth);
    CHECK(sky_prompt_enhancer_parse(buf, 2 * depth, &p, NULL, &err) == SKY_ERR && strstr(err.msg, "it is not JSON"),
          "deep nesting: %s", err.msg);
    free(buf);

    const size_t pad = (size_t)512 << 10;
    buf = malloc(pad + 256);
    CHECK(buf, "out of memory");
    n = (size_t)sprintf(buf, "{\"pad\": \"");
    memset(buf + n, 'x', pad);
    n += pad;
    n += (size_t)sprintf(buf + n, "\", \"choices\": [{\"message\": {\"content\": \"ok\"}}]}");
    CHECK(sky_prompt_enhancer_parse(buf, n, &p, NULL, &err) == SKY_OK && strcmp(p, "ok") == 0, "%s", err.msg);
    free(p);
    free(buf);
    return 0;
}

/* With net/http_none.c the exchange fails before sending, saying what is missing and what to do. */
static int test_no_client(void)
{
    sky_prompt_enhancer pe = {SKY_PROMPT_ENHANCER_URL, SKY_PROMPT_ENHANCER_MODEL, NULL, 5};
    char               *out;
    sky_err             err;
    CHECK(sky_prompt_enhance(&pe, "a cat", &out, NULL, &err) == SKY_ERR && !out, "succeeded without libcurl");
    CHECK(strstr(err.msg, "prompt enhancer: http://127.0.0.1:8000/v1/chat/completions: this binary was built without "
                          "libcurl") &&
              strstr(err.msg, "apt-get install -y libcurl4-openssl-dev"),
          "%s", err.msg);
    return 0;
}

int main(void)
{
    RUN(test_request_round_trip);
    RUN(test_request_refuses_bad_utf8);
    RUN(test_endpoint);
    RUN(test_check);
    RUN(test_parse_good);
    RUN(test_parse_truncated);
    RUN(test_parse_hostile);
    RUN(test_parse_huge);
    RUN(test_no_client);
    return CHECK_SUMMARY();
}
