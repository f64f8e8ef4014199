/* runtime/text/clean.c — sky_text_clean: the pipelines' prompt_clean (ftfy.fix_text, html.unescape twice,
 * strip, collapse White_Space runs, strip). What is and is not reproduced is listed in text.h.
 *
 * Layout: table look-ups; HTML unescaping (Python's html.unescape, ftfy's unescape_html); ftfy's fixers
 * and its per-line, repeat-until-stable driver; sky_text_clean. NFC is unicode.c's.
 */
#include "text/text.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h" /* sky_utf8_check */
#include "text/unicode.h"
#include "text/utf8.h"

#include "text/clean_tables.inc"

/* ============================================================================================ */
/* Table look-ups                                                                               */

#define IN_RANGES(table, c) sky_unicode_in_ranges(table, sizeof table / sizeof table[0], c)

/* The replacement of c in a cp_map sorted by cp, or NULL. */
static const char *cp_map_find(const cp_map *m, size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < m[mid].cp)
            hi = mid;
        else if (c > m[mid].cp)
            lo = mid + 1;
        else
            return m[mid].to;
    }
    return NULL;
}

#define CP_MAP_FIND(table, c) cp_map_find(table, sizeof table / sizeof table[0], c)

/* The value of an HTML entity name (ASCII, without '&') present with any of the flags, or NULL. */
static const char *html_ent_find(const char *name, size_t len, int flags)
{
    size_t lo = 0, hi = sizeof k_html_ents / sizeof k_html_ents[0];
    while (lo < hi) {
        size_t      mid = lo + (hi - lo) / 2;
        const char *k = k_html_ents[mid].name;
        int         cmp = strncmp(name, k, len);
        if (cmp == 0 && k[len] != '\0') cmp = -1; /* name is a proper prefix of k: name sorts first */
        if (cmp < 0)
            hi = mid;
        else if (cmp > 0)
            lo = mid + 1;
        else
            return (k_html_ents[mid].flags & flags) ? k_html_ents[mid].value : NULL;
    }
    return NULL;
}

/* ============================================================================================ */
/* HTML                                                                                         */

static int is_ascii_alnum(uint32_t c)
{
    return (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
}

static int hex_val(uint32_t c)
{
    if (c >= '0' && c <= '9') return (int)(c - '0');
    if (c >= 'a' && c <= 'f') return (int)(c - 'a' + 10);
    if (c >= 'A' && c <= 'F') return (int)(c - 'A' + 10);
    return -1;
}

/* Python's html._replace_charref for a numeric reference whose value is num (saturated). */
static void html_numeric(sky_cpbuf *out, uint32_t num)
{
    const char *inv = CP_MAP_FIND(k_html_invalid_charrefs, num);
    if (inv) {
        sky_cpbuf_append_utf8(out, inv, strlen(inv));
        return;
    }
    if ((num >= 0xD800 && num <= 0xDFFF) || num > 0x10FFFF) {
        sky_cpbuf_push(out, 0xFFFD);
        return;
    }
    if (IN_RANGES(k_html_invalid_cp, num)) return;
    sky_cpbuf_push(out, num);
}

/* Python's html.unescape(s) appended to out:
 *   &(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[^\t\n\f <&#;]{1,32};?)
 * numeric: invalid-charref table, surrogates / > U+10FFFF -> U+FFFD, invalid code points -> "";
 * named: the whole match in the HTML5 table, else its longest prefix of >= 2 characters (legacy names
 * without ';'), else unchanged. */
static void py_html_unescape(sky_cpbuf *out, const uint32_t *s, size_t n)
{
    size_t i = 0;
    char   name[40 * 4];
    while (i < n) {
        if (s[i] != '&') {
            sky_cpbuf_push(out, s[i++]);
            continue;
        }
        size_t j = i + 1;
        if (j < n && s[j] == '#') {
            int    hex = 0;
            size_t k = j + 1;
            if (k < n && s[k] >= '0' && s[k] <= '9') {
                hex = 0;
            } else if (k + 1 < n && (s[k] == 'x' || s[k] == 'X') && hex_val(s[k + 1]) >= 0) {
                hex = 1;
                k++;
            } else {
                sky_cpbuf_push(out, s[i++]);
                continue;
            }
            uint32_t num = 0;
            while (k < n && (hex ? hex_val(s[k]) >= 0 : (s[k] >= '0' && s[k] <= '9'))) {
                uint32_t d = hex ? (uint32_t)hex_val(s[k]) : s[k] - '0';
                num = num > 0x110000 ? 0x110001 : num * (hex ? 16 : 10) + d; /* saturate past U+10FFFF */
                k++;
            }
            SKY_TEXT_WORK(k - i);
            if (k < n && s[k] == ';') k++;
            html_numeric(out, num);
            i = k;
            continue;
        }
        size_t k = j;
        while (k < n && k - j < 32 && s[k] != '\t' && s[k] != '\n' && s[k] != '\f' && s[k] != ' ' && s[k] != '<' &&
               s[k] != '&' && s[k] != '#' && s[k] != ';')
            k++;
        SKY_TEXT_WORK(k - i);
        if (k == j) {
            sky_cpbuf_push(out, s[i++]);
            continue;
        }
        if (k < n && s[k] == ';') k++;
        /* the name as UTF-8 up to its first non-ASCII character (entity names are ASCII) */
        size_t len = 0, ascii = 0;
        for (size_t m = j; m < k && s[m] < 0x80; m++) name[len++] = (char)s[m], ascii++;
        const char *val = NULL;
        size_t      used = 0;
        if (ascii == k - j) {
            val = html_ent_find(name, len, 1);
            used = k - j;
        }
        for (size_t x = k - j - 1; !val && x >= 2; x--) { /* at most 32 look-ups */
            SKY_TEXT_WORK(1);
            if (x > ascii) continue;
            val = html_ent_find(name, x, 1);
            used = x;
        }
        if (val) {
            sky_cpbuf_append_utf8(out, val, strlen(val));
            sky_cpbuf_append(out, s + j + used, k - j - used);
        } else {
            sky_cpbuf_append(out, s + i, k - i);
        }
        i = k;
    }
}

/* ftfy's unescape_html: every non-overlapping &#?[0-9A-Za-z]{1,24}; that is a name in ftfy's table
 * becomes its value; a numeric one becomes html.unescape of it unless that leaves a ';'. */
static void ftfy_unescape_html(sky_cpbuf *out, const uint32_t *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        if (s[i] != '&') {
            sky_cpbuf_push(out, s[i++]);
            continue;
        }
        size_t j = i + 1;
        int    hash = j < n && s[j] == '#';
        size_t k = j + (size_t)hash, run = 0;
        while (run <= 24 && k + run < n && is_ascii_alnum(s[k + run])) run++;
        SKY_TEXT_WORK(run + 1);
        if (run < 1 || run > 24 || k + run >= n || s[k + run] != ';') {
            sky_cpbuf_push(out, s[i++]);
            continue;
        }
        size_t end = k + run + 1; /* one past ';' */
        char   name[32];
        size_t len = 0;
        for (size_t m = j; m < end; m++) name[len++] = (char)s[m];
        const char *val = html_ent_find(name, len, 2);
        if (val) {
            sky_cpbuf_append_utf8(out, val, strlen(val));
        } else if (hash) {
            sky_cpbuf tmp = {0};
            py_html_unescape(&tmp, s + i, end - i);
            int semi = 0;
            for (size_t m = 0; m < tmp.n; m++) semi |= tmp.v[m] == ';';
            SKY_TEXT_WORK(tmp.n);
            if (tmp.oom) out->oom = 1;
            if (semi)
                sky_cpbuf_append(out, s + i, end - i);
            else
                sky_cpbuf_append(out, tmp.v, tmp.n);
            sky_cpbuf_free(&tmp);
        } else {
            sky_cpbuf_append(out, s + i, end - i);
        }
        i = end;
    }
}

/* ============================================================================================ */
/* ftfy.fix_text (default configuration, without the mojibake heuristics)                      */

/* fix_character_width on one code point, appended to b. */
static void push_width_fixed(sky_cpbuf *b, uint32_t c)
{
    const char *w = CP_MAP_FIND(k_ftfy_width, c);
    if (w)
        sky_cpbuf_append_utf8(b, w, strlen(w));
    else
        sky_cpbuf_push(b, c);
}

/* One pass of ftfy's fixers after unescape_html and fix_encoding, in its order, from a into b. */
static void ftfy_fixers(sky_cpbuf *a, sky_cpbuf *b)
{
    /* fix_c1_controls, fix_latin_ligatures, fix_character_width, uncurl_quotes: per code point */
    b->n = 0;
    for (size_t i = 0; i < a->n; i++) {
        uint32_t c = a->v[i];
        if (c >= 0x80 && c <= 0x9F) c = k_c1_to_cp1252[c - 0x80];
        const char *lig = CP_MAP_FIND(k_ftfy_ligatures, c);
        if (!lig) {
            push_width_fixed(b, c);
            continue;
        }
        /* each replacement character still goes through the later per-character fixers */
        for (size_t m = 0, len = strlen(lig); m < len;) {
            uint32_t d;
            m += sky_utf8_decode1((const unsigned char *)lig + m, len - m, &d);
            push_width_fixed(b, d);
        }
    }
    SKY_TEXT_WORK(b->n);
    for (size_t i = 0; i < b->n; i++) {
        uint32_t c = b->v[i];
        if (c == 0x02BC || (c >= 0x2018 && c <= 0x201B))
            b->v[i] = '\'';
        else if (c >= 0x201C && c <= 0x201F)
            b->v[i] = '"';
    }
    /* fix_line_breaks: CRLF -> LF, then CR, U+2028, U+2029, U+0085 -> LF */
    a->n = 0;
    for (size_t i = 0; i < b->n; i++) {
        uint32_t c = b->v[i];
        if (c == '\r') {
            if (i + 1 < b->n && b->v[i + 1] == '\n') i++;
            sky_cpbuf_push(a, '\n');
        } else if (c == 0x2028 || c == 0x2029 || c == 0x85) {
            sky_cpbuf_push(a, '\n');
        } else {
            sky_cpbuf_push(a, c);
        }
    }
    /* remove_terminal_escapes: \x1b\[((?:\d|;)*)([a-zA-Z]) with \d = Unicode Nd */
    b->n = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->v[i] == 0x1B && i + 1 < a->n && a->v[i + 1] == '[') {
            size_t k = i + 2;
            while (k < a->n && (a->v[k] == ';' || sky_unicode_is_decimal_digit(a->v[k]))) k++;
            SKY_TEXT_WORK(k - i); /* the run ends at the next ESC, so runs do not overlap */
            if (k < a->n && a->v[k] < 0x80 && ((a->v[k] | 0x20) >= 'a' && (a->v[k] | 0x20) <= 'z')) {
                i = k;
                continue;
            }
        }
        sky_cpbuf_push(b, a->v[i]);
    }
    /* remove_control_chars */
    a->n = 0;
    for (size_t i = 0; i < b->n; i++)
        if (!IN_RANGES(k_ftfy_control, b->v[i])) sky_cpbuf_push(a, b->v[i]);
    SKY_TEXT_WORK(b->n);
    sky_cpbuf_swap(a, b);
    if (a->oom) b->oom = 1;
}

/* fix_and_explain on one line: repeat all fixers until the text stops changing, at most ROUNDS_MAX times.
 * Each round is linear in the line's length. Usual text takes 2 rounds (one that fixes, one that sees no
 * change). ftfy has no bound, and takes quadratic time on a line whose fixes keep enabling new ones; here
 * such a cascade stops after ROUNDS_MAX rounds: an entity escaped more than 64 times over
 * ("&amp;amp;...amp;" with 65 or more "amp;") keeps the levels left over. */
enum { ROUNDS_MAX = 64 };

static void ftfy_segment(sky_cpbuf *seg, int unescape, sky_cpbuf *orig, sky_cpbuf *t1, sky_cpbuf *t2)
{
    for (int round = 0; round < ROUNDS_MAX; round++) {
        orig->n = 0;
        sky_cpbuf_append(orig, seg->v, seg->n);
        if (unescape) {
            t1->n = 0;
            ftfy_unescape_html(t1, seg->v, seg->n);
            sky_cpbuf_swap(seg, t1);
        }
        ftfy_fixers(seg, t1); /* result in t1 */
        sky_cpbuf_swap(seg, t1);
        sky_unicode_nfc(seg, t2);
        if (seg->oom || t1->oom || t2->oom || orig->oom) {
            seg->oom = 1;
            return;
        }
        if (sky_cpbuf_equal(seg, orig)) return;
    }
}

/* ftfy.fix_text: line by line (each line keeps its '\n'); html unescaping stops for good at the first
 * line that contains '<' (the "auto" setting). */
static void ftfy_fix_text(sky_cpbuf *text)
{
    sky_cpbuf out = {0}, seg = {0}, orig = {0}, t1 = {0}, t2 = {0};
    int       unescape = 1;
    size_t    pos = 0;
    while (pos < text->n) {
        size_t end = pos;
        while (end < text->n && text->v[end] != '\n') end++;
        if (end < text->n) end++;
        seg.n = 0;
        sky_cpbuf_append(&seg, text->v + pos, end - pos);
        for (size_t i = 0; i < seg.n; i++)
            if (seg.v[i] == '<') unescape = 0;
        SKY_TEXT_WORK(seg.n);
        ftfy_segment(&seg, unescape, &orig, &t1, &t2);
        if (seg.oom) out.oom = 1;
        sky_cpbuf_append(&out, seg.v, seg.n);
        pos = end;
    }
    int oom = out.oom || text->oom;
    sky_cpbuf_swap(text, &out);
    text->oom = oom;
    sky_cpbuf_free(&out);
    sky_cpbuf_free(&seg);
    sky_cpbuf_free(&orig);
    sky_cpbuf_free(&t1);
    sky_cpbuf_free(&t2);
}

/* The whole prompt_clean on code points. Returns 0, or -1 when memory ran out. */
static int clean_cps(const char *prompt, size_t len, sky_cpbuf *out)
{
    sky_cpbuf a = {0}, b = {0};
    sky_cpbuf_append_utf8(&a, prompt, len);
    ftfy_fix_text(&a);
    py_html_unescape(&b, a.v, a.n);
    a.n = 0;
    py_html_unescape(&a, b.v, b.n);
    /* strip; collapse White_Space runs to ' '; strip */
    size_t lo = 0, hi = a.n;
    while (lo < hi && sky_unicode_is_py_space(a.v[lo])) lo++;
    while (hi > lo && sky_unicode_is_py_space(a.v[hi - 1])) hi--;
    out->n = 0;
    for (size_t i = lo; i < hi;) {
        if (sky_unicode_is_white_space(a.v[i])) {
            while (i < hi && sky_unicode_is_white_space(a.v[i])) i++;
            sky_cpbuf_push(out, ' ');
        } else {
            sky_cpbuf_push(out, a.v[i++]);
        }
    }
    SKY_TEXT_WORK(a.n); /* the strips and the skipped White_Space */
    while (out->n > 0 && sky_unicode_is_py_space(out->v[out->n - 1])) out->n--;
    lo = 0;
    while (lo < out->n && sky_unicode_is_py_space(out->v[lo])) lo++;
    if (lo) {
        memmove(out->v, out->v + lo, (out->n - lo) * sizeof *out->v);
        out->n -= lo;
    }
    int bad = a.oom || b.oom || out->oom;
    sky_cpbuf_free(&a);
    sky_cpbuf_free(&b);
    return bad ? -1 : 0;
}

sky_status sky_text_clean(const char *prompt, char **out, sky_err *err)
{
    *out = NULL;
    if (!prompt) return sky_fail(err, "sky_text_clean: prompt is NULL");
    size_t len = strlen(prompt);
    size_t ok = sky_utf8_check(prompt, len);
    if (ok != len)
        return sky_fail(err, "prompt is not valid UTF-8 (byte %zu of %zu); give the prompt as UTF-8 text", ok, len);
    sky_cpbuf c = {0};
    if (clean_cps(prompt, len, &c) != 0) {
        sky_cpbuf_free(&c);
        return sky_fail(err, "out of memory while cleaning a prompt of %zu bytes", len);
    }
    sky_strbuf s = {0};
    sky_strbuf_append(&s, "", 0);
    for (size_t i = 0; i < c.n; i++) sky_strbuf_push_cp(&s, c.v[i]);
    sky_cpbuf_free(&c);
    if (s.oom) {
        free(s.s);
        return sky_fail(err, "out of memory while cleaning a prompt of %zu bytes", len);
    }
    *out = s.s;
    return SKY_OK;
}
