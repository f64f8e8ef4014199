/* runtime/net/prompt_enhancer.c — the prompt enhancer's request, answer and exchange (contract in
 * prompt_enhancer.h; the original's behaviour in reference round2-features.md §7). */
#include "net/prompt_enhancer.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "core/json.h"
#include "net/http.h"

/* Our own words for what the original's template asks (a caption ordered shot, subject and action,
 * details, surroundings, light, camera; camera motion for a still scene; the caption alone). */
const char sky_prompt_enhancer_system[] =
    "You turn a short idea for a video into the prompt of a text-to-video model. Write one paragraph of "
    "English prose in the present tense that describes what the camera sees: first the kind of shot, then the "
    "main subject and what it is doing, then how the subject looks, then the place around it, the light, and "
    "last how the camera moves. Keep every person, animal, object, action, style and detail that the user "
    "wrote, and contradict none of them; add only concrete visual details that fit. If nothing in the scene "
    "moves, give the camera a slow movement. Leave out sounds, thoughts and anything else that cannot be "
    "seen. Use 60 to 150 words. Reply with the paragraph alone: no title, no quotation marks, no notes.";

/* A growing, always NUL-terminated string; `bad` once an allocation failed. */
typedef struct strbuf {
    char  *s;
    size_t len, cap;
    int    bad;
} strbuf;

static void sb_add(strbuf *b, const char *s, size_t n)
{
    if (b->bad) return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->len + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->bad = 1;
            return;
        }
        b->s = p, b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = 0;
}

static void sb_str(strbuf *b, const char *s) { sb_add(b, s, strlen(s)); }

/* s as a JSON string literal (core/json.h's writer, through a memory stream). */
static void sb_json(strbuf *b, const char *s)
{
    char  *text = NULL;
    size_t n = 0;
    FILE  *m = open_memstream(&text, &n);
    if (!m) {
        b->bad = 1;
        return;
    }
    sky_json_write_str(m, s);
    if (fclose(m) != 0 || !text)
        b->bad = 1;
    else
        sb_add(b, text, n);
    free(text);
}

sky_status sky_prompt_enhancer_endpoint(const char *url, char **endpoint, sky_err *err)
{
    *endpoint = NULL;
    const size_t scheme = strncasecmp(url, "http://", 7) == 0 ? 7 : strncasecmp(url, "https://", 8) == 0 ? 8 : 0;
    if (!scheme)
        return sky_fail(err, "prompt enhancer URL '%s': must start with http:// or https:// (e.g. %s)", url,
                        SKY_PROMPT_ENHANCER_URL);
    for (const unsigned char *c = (const unsigned char *)url; *c; c++)
        if (*c <= 0x20 || *c >= 0x7f)
            return sky_fail(err,
                            "prompt enhancer URL '%s': byte %zu is a space, a control character or not ASCII "
                            "(percent-encode it)",
                            url, (size_t)(c - (const unsigned char *)url));
    size_t n = strlen(url);
    while (n > scheme && url[n - 1] == '/') n--;
    if (n == scheme || url[scheme] == '/')
        return sky_fail(err, "prompt enhancer URL '%s': names no host (e.g. %s)", url, SKY_PROMPT_ENHANCER_URL);
    static const char tail[] = "/chat/completions";
    const size_t      t = sizeof tail - 1;
    const int         has_tail = n >= t && memcmp(url + n - t, tail, t) == 0;
    strbuf            b = {0};
    sb_add(&b, url, n);
    if (!has_tail) sb_add(&b, tail, t);
    if (b.bad) {
        free(b.s);
        return sky_fail(err, "out of host memory");
    }
    *endpoint = b.s;
    return SKY_OK;
}

sky_status sky_prompt_enhancer_check(const sky_prompt_enhancer *pe, sky_err *err)
{
    char *endpoint;
    if (sky_prompt_enhancer_endpoint(pe->url, &endpoint, err)) return SKY_ERR;
    free(endpoint);
    const size_t m = strlen(pe->model);
    if (m == 0 || sky_utf8_check(pe->model, m) != m)
        return sky_fail(err, "prompt enhancer model name '%s': must be non-empty UTF-8 (e.g. %s)", pe->model,
                        SKY_PROMPT_ENHANCER_MODEL);
    for (const unsigned char *c = (const unsigned char *)(pe->api_key ? pe->api_key : ""); *c; c++)
        if (*c <= 0x20 || *c >= 0x7f)
            return sky_fail(err, "$%s: byte %zu of the key is a space, a control character or not ASCII",
                            SKY_PROMPT_ENHANCER_KEY_ENV, (size_t)(c - (const unsigned char *)pe->api_key));
    if (pe->timeout_s < 1 || pe->timeout_s > 3600)
        return sky_fail(err, "prompt enhancer timeout %d s: must be 1 to 3600", pe->timeout_s);
    return SKY_OK;
}

sky_status sky_prompt_enhancer_request(const char *model, const char *prompt, char **body, size_t *len, sky_err *err)
{
    *body = NULL, *len = 0;
    const size_t np = strlen(prompt), bad = sky_utf8_check(prompt, np);
    if (bad != np)
        return sky_fail(err, "the prompt is not valid UTF-8 (byte %zu); the prompt enhancer needs text", bad);
    if (sky_utf8_check(model, strlen(model)) != strlen(model))
        return sky_fail(err, "prompt enhancer model name: not valid UTF-8");
    strbuf b = {0};
    char   tail[160];
    sb_str(&b, "{\"model\": ");
    sb_json(&b, model);
    sb_str(&b, ", \"messages\": [{\"role\": \"system\", \"content\": ");
    sb_json(&b, sky_prompt_enhancer_system);
    sb_str(&b, "}, {\"role\": \"user\", \"content\": ");
    sb_json(&b, prompt);
    snprintf(tail, sizeof tail,
             "}], \"temperature\": 0.7, \"top_p\": 0.8, \"seed\": 0, \"max_tokens\": %d, \"stream\": false}",
             SKY_PROMPT_ENHANCER_MAX_TOKENS);
    sb_str(&b, tail);
    if (b.bad) {
        free(b.s);
        return sky_fail(err, "out of host memory");
    }
    *body = b.s, *len = b.len;
    return SKY_OK;
}

/* sky_fail for functions that return a value: the message into err, then NULL. */
static const sky_json *fail_null(sky_err *err, const char *fmt, ...) SKY_PRINTF(2, 3);
static const sky_json *fail_null(sky_err *err, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->msg, sizeof err->msg, fmt, ap);
    va_end(ap);
    return NULL;
}

/* The member `key` of obj, which must have JSON type `want`; the failure names path (e.g. "choices[0]"). */
static const sky_json *member(const sky_json *obj, const char *path, const char *key, sky_json_type want, sky_err *err)
{
    const sky_json *v = sky_json_get(obj, key);
    if (!v) return fail_null(err, "it has no %s%s%s", path, path[0] ? "." : "", key);
    if (v->type != want)
        return fail_null(err, "its %s%s%s is %s where %s is expected", path, path[0] ? "." : "", key,
                         sky_json_type_name(v->type), sky_json_type_name(want));
    return v;
}

/* choices[0].message.content of the answer's root, or NULL with the reason in err. */
static const sky_json *content_of(const sky_json *root, int *cut, sky_err *err)
{
    if (root->type != SKY_JSON_OBJECT)
        return fail_null(err, "it is a JSON %s, not an object with choices", sky_json_type_name(root->type));
    const sky_json *error = sky_json_get(root, "error");
    const sky_json *emsg = error && error->type == SKY_JSON_OBJECT ? sky_json_get(error, "message") : error;
    if (emsg && emsg->type == SKY_JSON_STRING && !sky_json_get(root, "choices"))
        return fail_null(err, "the server says: %.400s", emsg->str);
    const sky_json *choices = member(root, "", "choices", SKY_JSON_ARRAY, err);
    if (!choices) return NULL;
    if (choices->count == 0) return fail_null(err, "its choices array is empty");
    const sky_json *c0 = choices->items[0];
    if (c0->type != SKY_JSON_OBJECT)
        return fail_null(err, "its choices[0] is %s where object is expected", sky_json_type_name(c0->type));
    const sky_json *finish = sky_json_get(c0, "finish_reason");
    if (cut) *cut = finish && finish->type == SKY_JSON_STRING && strcmp(finish->str, "length") == 0;
    const sky_json *message = member(c0, "choices[0]", "message", SKY_JSON_OBJECT, err);
    return message ? member(message, "choices[0].message", "content", SKY_JSON_STRING, err) : NULL;
}

/* The content with ASCII whitespace runs made one space and the ends trimmed, into *out (malloc'd). */
static sky_status normalise(const char *s, size_t len, char **out, sky_err *err)
{
    static const char space[] = " \t\n\v\f\r";
    char             *o = malloc(len + 1);
    size_t            k = 0;
    if (!o) return sky_fail(err, "out of host memory");
    for (size_t i = 0; i < len; i++) {
        const unsigned char c = (unsigned char)s[i];
        if (c != 0 && strchr(space, c)) {
            if (k > 0 && o[k - 1] != ' ') o[k++] = ' ';
        } else if (c < 0x20 || c == 0x7f) {
            free(o);
            return sky_fail(err, "its content holds the control character U+%04X at byte %zu", c, i);
        } else
            o[k++] = (char)c;
    }
    while (k > 0 && o[k - 1] == ' ') k--;
    o[k] = 0;
    if (k == 0) {
        free(o);
        return sky_fail(err, "the model's answer is empty");
    }
    if (k > SKY_PROMPT_ENHANCER_MAX_PROMPT) {
        free(o);
        return sky_fail(err, "the model's answer is %zu bytes, more than the %d a prompt may have here", k,
                        SKY_PROMPT_ENHANCER_MAX_PROMPT);
    }
    *out = o;
    return SKY_OK;
}

sky_status sky_prompt_enhancer_parse(const char *answer, size_t len, char **prompt, int *cut, sky_err *err)
{
    *prompt = NULL;
    if (cut) *cut = 0;
    const size_t bad = sky_utf8_check(answer, len);
    if (bad != len) return sky_fail(err, "it is not valid UTF-8 (byte %zu of %zu)", bad, len);
    sky_json_doc         *doc;
    const sky_json_limits lim = {32, SKY_PROMPT_ENHANCER_MAX_ANSWER, 1 << 16};
    sky_err               e;
    if (sky_json_parse(&doc, answer, len, &lim, &e)) return sky_fail(err, "it is not JSON (%s)", e.msg);
    const sky_json  *content = content_of(sky_json_root(doc), cut, err);
    const sky_status st = content ? normalise(content->str, content->len, prompt, err) : SKY_ERR;
    sky_json_free(doc);
    return st;
}

/* The start of an answer body for a message: at most 300 bytes of its valid UTF-8 prefix, controls as
 * spaces, "..." when cut. */
static void excerpt(char *dst, size_t n, const char *body, size_t len)
{
    size_t keep = sky_utf8_check(body, len), k = 0;
    if (keep > 300) keep = 300;
    while (keep > 0 && keep < len && ((unsigned char)body[keep] & 0xc0) == 0x80) keep--; /* whole characters */
    for (size_t i = 0; i < keep && k + 4 < n; i++) dst[k++] = (unsigned char)body[i] < 0x20 ? ' ' : body[i];
    if (keep < len && k + 4 < n) memcpy(dst + k, "...", 3), k += 3;
    dst[k] = 0;
}

/* The message of a refused request (status other than 200), with a hint for the usual causes. */
static sky_status refused(const sky_prompt_enhancer *pe, const char *endpoint, const sky_http_answer *a, sky_err *err)
{
    char        body[320];
    const char *hint = "";
    excerpt(body, sizeof body, a->body, a->len);
    if ((a->status == 401 || a->status == 403) && !(pe->api_key && pe->api_key[0]))
        hint = "; the server wants a key: set $" SKY_PROMPT_ENHANCER_KEY_ENV;
    else if (a->status == 401 || a->status == 403)
        hint = "; the server refused the key in $" SKY_PROMPT_ENHANCER_KEY_ENV;
    else if (a->status == 404)
        hint = "; is the URL the server's OpenAI base (.../v1) and the model one it serves (GET .../v1/models)?";
    return sky_fail(err, "prompt enhancer: %s answered HTTP %ld: %s%s", endpoint, a->status,
                    body[0] ? body : "(empty body)", hint);
}

sky_status sky_prompt_enhance(const sky_prompt_enhancer *pe, const char *prompt, char **enhanced, int *cut,
                              sky_err *err)
{
    *enhanced = NULL;
    if (cut) *cut = 0;
    char           *endpoint = NULL, *body = NULL;
    size_t          body_len = 0;
    sky_http_answer a = {0};
    sky_status      st = SKY_ERR;
    if (sky_prompt_enhancer_check(pe, err) || sky_prompt_enhancer_endpoint(pe->url, &endpoint, err) ||
        sky_prompt_enhancer_request(pe->model, prompt, &body, &body_len, err))
        goto done;
    const sky_http_post_args args = {endpoint,      body,
                                     body_len,      pe->api_key && pe->api_key[0] ? pe->api_key : NULL,
                                     pe->timeout_s, SKY_PROMPT_ENHANCER_MAX_ANSWER};
    sky_http_failure         why;
    sky_err                  e;
    if (sky_http_post(&args, &a, &why, &e)) {
        const char *hint = why == SKY_HTTP_CONNECT
                               ? "; is the model server running? (start one as docs/prompt_enhancer.md shows, or point "
                                 "--prompt_enhancer_url / $" SKY_PROMPT_ENHANCER_URL_ENV " at one)"
                           : why == SKY_HTTP_TIMEOUT
                               ? "; a loaded server may need longer: raise --prompt_enhancer_timeout"
                               : "";
        sky_fail(err, "prompt enhancer: %s%s", e.msg, hint);
        goto done;
    }
    if (a.status != 200) {
        refused(pe, endpoint, &a, err);
        goto done;
    }
    if (sky_prompt_enhancer_parse(a.body, a.len, enhanced, cut, &e)) {
        sky_fail(err, "prompt enhancer: the answer of %s (HTTP 200, %zu bytes) is unusable: %s", endpoint, a.len,
                 e.msg);
        goto done;
    }
    st = SKY_OK;
done:
    sky_http_answer_free(&a);
    free(body);
    free(endpoint);
    return st;
}
