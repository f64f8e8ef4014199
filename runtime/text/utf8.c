/* runtime/text/utf8.c — the code-point and byte buffers of utf8.h. */
#include "text/utf8.h"

#include <stdlib.h>
#include <string.h>

_Thread_local uint64_t sky_text_work;

void sky_cpbuf_free(sky_cpbuf *b)
{
    free(b->v);
    b->v = NULL;
    b->n = b->cap = 0;
}

int sky_cpbuf_reserve(sky_cpbuf *b, size_t want)
{
    if (b->oom) return -1;
    if (want <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < want) {
        if (cap > ((size_t)1 << 40)) {
            b->oom = 1;
            return -1;
        }
        cap *= 2;
    }
    uint32_t *v = realloc(b->v, cap * sizeof *v);
    if (!v) {
        b->oom = 1;
        return -1;
    }
    b->v = v;
    b->cap = cap;
    return 0;
}

void sky_cpbuf_append(sky_cpbuf *b, const uint32_t *v, size_t n)
{
    SKY_TEXT_WORK(n);
    if (n == 0 || sky_cpbuf_reserve(b, b->n + n) != 0) return;
    memcpy(b->v + b->n, v, n * sizeof *v);
    b->n += n;
}

void sky_cpbuf_append_utf8(sky_cpbuf *b, const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t               i = 0;
    while (i < len) {
        uint32_t cp;
        i += sky_utf8_decode1(p + i, len - i, &cp);
        sky_cpbuf_push(b, cp);
    }
}

void sky_cpbuf_swap(sky_cpbuf *a, sky_cpbuf *b)
{
    sky_cpbuf t = *a;
    *a = *b;
    *b = t;
}

int sky_cpbuf_equal(const sky_cpbuf *a, const sky_cpbuf *b)
{
    SKY_TEXT_WORK(a->n);
    return a->n == b->n && (a->n == 0 || memcmp(a->v, b->v, a->n * sizeof *a->v) == 0);
}

void sky_strbuf_append(sky_strbuf *b, const char *s, size_t n)
{
    SKY_TEXT_WORK(n);
    if (b->oom) return;
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 128;
        while (cap < b->n + n + 1) cap *= 2;
        char *p = realloc(b->s, cap);
        if (!p) {
            b->oom = 1;
            return;
        }
        b->s = p;
        b->cap = cap;
    }
    if (n) memcpy(b->s + b->n, s, n);
    b->n += n;
    b->s[b->n] = '\0';
}

void sky_strbuf_push_cp(sky_strbuf *b, uint32_t c)
{
    char u[4];
    sky_strbuf_append(b, u, sky_utf8_encode1(c, u));
}
