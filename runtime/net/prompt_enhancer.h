/* runtime/net/prompt_enhancer.h — --prompt_enhancer: a short prompt rewritten into a detailed one by a chat
 * model behind an OpenAI-compatible server (vLLM, llama.cpp's llama-server, ...), before any model work.
 *
 * The original SkyReels-V2 loads Qwen2.5-32B-Instruct in its own process for this (64 GB+ of GPU memory) and
 * replaces the positive prompt with the model's answer for the whole run (reference round2-features.md §7).
 * This engine asks a server instead: one POST <url>/chat/completions with
 *
 *   {"model": M, "messages": [{"role": "system", "content": <sky_prompt_enhancer_system>},
 *                             {"role": "user", "content": <the prompt, byte for byte>}],
 *    "temperature": 0.7, "top_p": 0.8, "seed": 0, "max_tokens": 512, "stream": false}
 *
 * (the sampling values are Qwen2.5-Instruct's own generation defaults, fixed here with a fixed seed, so that
 * a server that honours "seed" gives the same answer to the same prompt) and takes choices[0].message.content
 * of the answer. The system message is our own wording of the original's request: one detailed, visual,
 * present-tense English paragraph that keeps what the user wrote. docs/prompt_enhancer.md shows servers.
 *
 * The request builder and the answer parser are pure functions (tests/runtime/test_prompt_enhancer.c); the
 * exchange goes through net/http.h (libcurl). Every failure is an sky_err that names the endpoint and says
 * what to do; nothing is printed.
 */
#ifndef SKY_NET_PROMPT_ENHANCER_H
#define SKY_NET_PROMPT_ENHANCER_H

#include "core/status.h"

#define SKY_PROMPT_ENHANCER_URL        "http://127.0.0.1:8000/v1" /* vLLM's default address */
#define SKY_PROMPT_ENHANCER_MODEL      "Qwen/Qwen2.5-32B-Instruct"
#define SKY_PROMPT_ENHANCER_TIMEOUT_S  120               /* a 32B model writes ~200 tokens in well under a minute */
#define SKY_PROMPT_ENHANCER_MAX_TOKENS 512               /* umT5 reads 512 tokens at most; a paragraph is ~200 */
#define SKY_PROMPT_ENHANCER_MAX_ANSWER ((size_t)1 << 20) /* bytes of HTTP answer read at most */
#define SKY_PROMPT_ENHANCER_MAX_PROMPT 4096              /* bytes of enhanced prompt accepted at most */

/* The environment variables the CLI reads (the engine's SKY_ prefix). */
#define SKY_PROMPT_ENHANCER_URL_ENV "SKY_PROMPT_ENHANCER_URL"
#define SKY_PROMPT_ENHANCER_KEY_ENV "SKY_PROMPT_ENHANCER_API_KEY"

/* The system message sent with every request. */
extern const char sky_prompt_enhancer_system[];

/* Where and how to ask. */
typedef struct sky_prompt_enhancer {
    const char *url;       /* the server's base URL (…/v1), or the full …/chat/completions URL */
    const char *model;     /* the model name the server serves */
    const char *api_key;   /* NULL or "": no Authorization header; else sent as "Authorization: Bearer <key>" */
    int         timeout_s; /* the whole exchange, 1 .. 3600 */
} sky_prompt_enhancer;

/* Check pe without sending anything: the URL's scheme (http or https) and characters, a non-empty model
 * name in UTF-8, a key without spaces or control characters, the timeout's range. */
sky_status sky_prompt_enhancer_check(const sky_prompt_enhancer *pe, sky_err *err);

/* The endpoint of a base URL, malloc'd into *endpoint: trailing '/' dropped, "/chat/completions" appended
 * unless the URL already ends with it. Fails as sky_prompt_enhancer_check does on a bad URL. */
sky_status sky_prompt_enhancer_endpoint(const char *url, char **endpoint, sky_err *err);

/* The request body (above) for prompt, malloc'd and NUL-terminated into *body, *len bytes. Every string is
 * escaped for JSON (quotes, backslashes, control characters as \uXXXX; other UTF-8 as is), so that a JSON
 * parser gives back model and prompt byte for byte. Fails when either is not valid UTF-8. */
sky_status sky_prompt_enhancer_request(const char *model, const char *prompt, char **body, size_t *len, sky_err *err);

/* The enhanced prompt from an answer body of len bytes (untrusted), malloc'd into *prompt: the text of
 * choices[0].message.content with runs of ASCII whitespace made one space and the ends trimmed (the
 * pipeline's prompt cleaning collapses them too). *cut (may be NULL) is 1 when finish_reason is "length"
 * (the answer stopped at max_tokens). Fails, saying which, on: invalid UTF-8, text that is not JSON, a
 * missing or mistyped choices[0].message.content (quoting the server's "error" when there is one), other
 * control characters in the content, an empty answer, and one over SKY_PROMPT_ENHANCER_MAX_PROMPT bytes. */
sky_status sky_prompt_enhancer_parse(const char *answer, size_t len, char **prompt, int *cut, sky_err *err);

/* Ask the server: check, build, POST, require HTTP 200, parse. *enhanced is malloc'd (the caller frees it),
 * *cut as in sky_prompt_enhancer_parse. The messages give the endpoint, the HTTP status and the start of the
 * body of a refused request, and a hint (server down, timeout, key). */
sky_status sky_prompt_enhance(const sky_prompt_enhancer *pe, const char *prompt, char **enhanced, int *cut,
                              sky_err *err);

#endif /* SKY_NET_PROMPT_ENHANCER_H */
