/* runtime/net/http_curl.c — http.h through libcurl's easy interface (one blocking request).
 *
 * The answer is collected in a growing buffer capped at max_answer bytes: a server that sends more is cut
 * off (the transfer is aborted) rather than filling memory. "Expect: 100-continue", which libcurl adds to
 * bodies over 1 KiB, is switched off: servers that ignore it (Python's http.server in HTTP/1.0) would make
 * every request wait a second for nothing.
 */
#include "net/http.h"

#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

int sky_http_available(void) { return 1; }

const char *sky_http_client(void) { return "libcurl " LIBCURL_VERSION; }

/* The answer being received; `over` once it passed max. */
typedef struct sink {
    char  *buf;
    size_t len, cap, max;
    int    over;
} sink;

/* libcurl's write callback: append, or return 0 (abort) past the cap or out of memory. */
static size_t on_data(char *data, size_t size, size_t n, void *user)
{
    sink        *s = user;
    const size_t bytes = size * n;
    if (bytes > s->max - s->len) {
        s->over = 1;
        return 0;
    }
    if (s->len + bytes + 1 > s->cap) {
        size_t cap = s->cap ? s->cap : 4096;
        while (cap < s->len + bytes + 1) cap *= 2;
        char *buf = realloc(s->buf, cap);
        if (!buf) return 0;
        s->buf = buf, s->cap = cap;
    }
    memcpy(s->buf + s->len, data, bytes);
    s->len += bytes;
    s->buf[s->len] = 0;
    return bytes;
}

/* The kind of a failed transfer. */
static sky_http_failure failure_of(CURLcode rc, const sink *s)
{
    if (s->over) return SKY_HTTP_TOO_LARGE;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY: return SKY_HTTP_CONNECT;
    case CURLE_OPERATION_TIMEDOUT: return SKY_HTTP_TIMEOUT;
    default: return SKY_HTTP_OTHER;
    }
}

/* Set up the handle for one POST; 0 when every option was accepted. */
static int setup(CURL *c, const sky_http_post_args *a, struct curl_slist *headers, sink *s, char *errbuf)
{
    int bad = 0;
    bad |= curl_easy_setopt(c, CURLOPT_URL, a->url) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_ERRORBUFFER, errbuf) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_TIMEOUT, (long)a->timeout_s) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_POST, 1L) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDS, a->body) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)a->body_len) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_USERAGENT, "skyreels-v2 (libcurl)") != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, on_data) != CURLE_OK;
    bad |= curl_easy_setopt(c, CURLOPT_WRITEDATA, s) != CURLE_OK;
    return bad;
}

sky_status sky_http_post(const sky_http_post_args *args, sky_http_answer *ans, sky_http_failure *why, sky_err *err)
{
    memset(ans, 0, sizeof *ans);
    sky_http_failure kind = SKY_HTTP_OTHER;
    sky_status       st = SKY_ERR;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        if (why) *why = kind;
        return sky_fail(err, "%s: libcurl failed to initialise (curl_global_init)", args->url);
    }
    CURL              *c = curl_easy_init();
    struct curl_slist *headers = NULL, *h;
    char              *auth = NULL;
    sink               s = {NULL, 0, 0, args->max_answer, 0};
    char               errbuf[CURL_ERROR_SIZE] = "";
    const char *const  fixed[] = {"Content-Type: application/json", "Accept: application/json", "Expect:"};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
        if ((h = curl_slist_append(headers, fixed[i])) != NULL) headers = h;
    if (args->bearer) {
        const size_t n = strlen(args->bearer) + sizeof "Authorization: Bearer ";
        if ((auth = malloc(n)) != NULL) {
            memcpy(auth, "Authorization: Bearer ", sizeof "Authorization: Bearer " - 1);
            strcpy(auth + sizeof "Authorization: Bearer " - 1, args->bearer);
            if ((h = curl_slist_append(headers, auth)) != NULL) headers = h;
        }
    }
    if (!c || !headers || (args->bearer && !auth) || setup(c, args, headers, &s, errbuf)) {
        sky_fail(err, "%s: setting up the request failed (libcurl %s; out of memory?)", args->url, LIBCURL_VERSION);
        goto done;
    }
    const CURLcode rc = curl_easy_perform(c);
    if (rc != CURLE_OK) {
        kind = failure_of(rc, &s);
        if (kind == SKY_HTTP_TOO_LARGE)
            sky_fail(err, "%s: the answer is larger than %zu bytes; transfer stopped", args->url, args->max_answer);
        else if (kind == SKY_HTTP_TIMEOUT)
            sky_fail(err, "%s: no complete answer within %d s (%s)", args->url, args->timeout_s,
                     errbuf[0] ? errbuf : curl_easy_strerror(rc));
        else {
            long os_errno = 0; /* e.g. ECONNREFUSED, which libcurl's own text leaves out */
            curl_easy_getinfo(c, CURLINFO_OS_ERRNO, &os_errno);
            sky_fail(err, "%s: %s%s%s%s", args->url, errbuf[0] ? errbuf : curl_easy_strerror(rc), os_errno ? " (" : "",
                     os_errno ? strerror((int)os_errno) : "", os_errno ? ")" : "");
        }
        goto done;
    }
    long status = 0;
    curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
    ans->status = status;
    ans->body = s.buf ? s.buf : calloc(1, 1);
    ans->len = s.len;
    s.buf = NULL;
    if (!ans->body) {
        sky_fail(err, "%s: out of host memory", args->url);
        goto done;
    }
    st = SKY_OK;
done:
    if (st != SKY_OK) {
        sky_http_answer_free(ans);
        if (why) *why = kind;
    }
    free(s.buf);
    free(auth);
    curl_slist_free_all(headers);
    if (c) curl_easy_cleanup(c);
    curl_global_cleanup();
    return st;
}

void sky_http_answer_free(sky_http_answer *ans)
{
    if (!ans) return;
    free(ans->body);
    memset(ans, 0, sizeof *ans);
}
