/* runtime/net/http.h — one HTTP(S) POST of a JSON body, for the prompt enhancer (prompt_enhancer.h).
 *
 * Two implementations, chosen by CMake: http_curl.c through libcurl (Debian: libcurl4-openssl-dev), and
 * http_none.c for a build without it (cmake -DSKY_CURL=OFF, or libcurl not found), whose every call fails
 * saying what is missing. No redirect is followed and no signal is used (libcurl's CURLOPT_NOSIGNAL);
 * proxies come from the usual environment variables (http_proxy, https_proxy, no_proxy), as in curl(1).
 */
#ifndef SKY_NET_HTTP_H
#define SKY_NET_HTTP_H

#include "core/status.h"

/* What went wrong when sky_http_post fails, for the caller's hint. */
typedef enum sky_http_failure {
    SKY_HTTP_NO_CLIENT, /* built without libcurl */
    SKY_HTTP_CONNECT,   /* no connection: refused, unreachable, name not resolved */
    SKY_HTTP_TIMEOUT,   /* no complete answer within timeout_s */
    SKY_HTTP_TOO_LARGE, /* the answer passed max_answer bytes */
    SKY_HTTP_OTHER      /* anything else (TLS, protocol, memory) */
} sky_http_failure;

typedef struct sky_http_post_args {
    const char *url;        /* http:// or https:// */
    const char *body;       /* sent as Content-Type: application/json */
    size_t      body_len;   /* bytes of body */
    const char *bearer;     /* NULL: no Authorization header; else "Authorization: Bearer <bearer>" */
    int         timeout_s;  /* the whole exchange, connection included, >= 1 */
    size_t      max_answer; /* bytes of answer body kept at most; more fails (SKY_HTTP_TOO_LARGE) */
} sky_http_post_args;

/* The answer: any HTTP status (the caller judges it) and the body, NUL-terminated, malloc'd. */
typedef struct sky_http_answer {
    long   status; /* e.g. 200, 401, 500 */
    char  *body;   /* owned: sky_http_answer_free */
    size_t len;    /* bytes of body (the body may contain NUL bytes) */
} sky_http_answer;

/* 1 when this build has an HTTP client (libcurl), 0 for http_none.c. */
int sky_http_available(void);

/* What this build's client is ("libcurl 7.88.1"), or without one the sentence saying so and what to do. */
const char *sky_http_client(void);

/* POST args->body to args->url. On success *ans holds the status and body (whatever the status); on
 * failure *ans is empty, *why (when not NULL) says what kind of failure, and err names the URL and
 * libcurl's reason. */
sky_status sky_http_post(const sky_http_post_args *args, sky_http_answer *ans, sky_http_failure *why, sky_err *err);

/* Free the body of an answer (NULL or empty is fine). */
void sky_http_answer_free(sky_http_answer *ans);

#endif /* SKY_NET_HTTP_H */
