/* runtime/text/utf8.h — growable code-point and byte buffers, UTF-8 conversion and the work counter: the
 * shared base of the text module's files (internal to runtime/text/; the API is text.h).
 *
 * Everything in text/ works on arrays of code points (uint32_t), because every rule being reproduced
 * (Python's regexes, str.strip, unicodedata, Rust's graphemes) is defined on code points. Buffers record
 * running out of memory in `oom` (pushes then do nothing), so callers check once at the end.
 */
#ifndef SKY_TEXT_UTF8_H
#define SKY_TEXT_UTF8_H

#include <stddef.h>
#include <stdint.h>

/* The work counter: every loop of text/ that walks the text (or a table for each of its characters) adds
 * its iterations here, per thread, so that tests can check that cleaning and tokenising take a number of
 * steps linear in the prompt's length (tests/runtime/test_text.c) without timing anything. */
extern _Thread_local uint64_t sky_text_work;
#define SKY_TEXT_WORK(k) ((void)(sky_text_work += (uint64_t)(k)))

/* A growable array of code points. Zero-initialise ({0}) before use; sky_cpbuf_free when done. */
typedef struct sky_cpbuf {
    uint32_t *v;
    size_t    n, cap;
    int       oom;
} sky_cpbuf;

void sky_cpbuf_free(sky_cpbuf *b);

/* Make room for want code points in all; -1 (and oom set) when memory runs out. */
int sky_cpbuf_reserve(sky_cpbuf *b, size_t want);

static inline void sky_cpbuf_push(sky_cpbuf *b, uint32_t c)
{
    SKY_TEXT_WORK(1);
    if (b->n == b->cap && sky_cpbuf_reserve(b, b->n + 1) != 0) return;
    b->v[b->n++] = c;
}

void sky_cpbuf_append(sky_cpbuf *b, const uint32_t *v, size_t n);

/* Append the code points of len bytes of (already validated) UTF-8. */
void sky_cpbuf_append_utf8(sky_cpbuf *b, const char *s, size_t len);

/* Swap contents (used to make a transformed copy the current text). */
void sky_cpbuf_swap(sky_cpbuf *a, sky_cpbuf *b);

int sky_cpbuf_equal(const sky_cpbuf *a, const sky_cpbuf *b);

/* A growable byte string, NUL-terminated once anything was appended; same oom convention. */
typedef struct sky_strbuf {
    char  *s;
    size_t n, cap;
    int    oom;
} sky_strbuf;

void sky_strbuf_append(sky_strbuf *b, const char *s, size_t n);
void sky_strbuf_push_cp(sky_strbuf *b, uint32_t c);

/* Decode one code point of valid UTF-8 at s (len >= 1 bytes left); returns its byte length. */
static inline size_t sky_utf8_decode1(const unsigned char *s, size_t len, uint32_t *cp)
{
    unsigned char c = s[0];
    if (c < 0x80 || len < 2) {
        *cp = c;
        return 1;
    }
    if (c < 0xE0) {
        *cp = ((uint32_t)(c & 0x1F) << 6) | (s[1] & 0x3F);
        return 2;
    }
    if (c < 0xF0 || len < 4) {
        *cp = ((uint32_t)(c & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
        return 3;
    }
    *cp =
        ((uint32_t)(c & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) | ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
}

/* Encode code point c (at most U+10FFFF) into out; returns its byte length (1..4). */
static inline size_t sky_utf8_encode1(uint32_t c, char out[4])
{
    if (c < 0x80) {
        out[0] = (char)c;
        return 1;
    }
    if (c < 0x800) {
        out[0] = (char)(0xC0 | (c >> 6));
        out[1] = (char)(0x80 | (c & 0x3F));
        return 2;
    }
    if (c < 0x10000) {
        out[0] = (char)(0xE0 | (c >> 12));
        out[1] = (char)(0x80 | ((c >> 6) & 0x3F));
        out[2] = (char)(0x80 | (c & 0x3F));
        return 3;
    }
    out[0] = (char)(0xF0 | (c >> 18));
    out[1] = (char)(0x80 | ((c >> 12) & 0x3F));
    out[2] = (char)(0x80 | ((c >> 6) & 0x3F));
    out[3] = (char)(0x80 | (c & 0x3F));
    return 4;
}

#endif /* SKY_TEXT_UTF8_H */
