/* runtime/text/unicode.c — White_Space, Nd, NFC and grapheme clusters over the generated tables
 * (unicode_tables.inc). Contracts in unicode.h. */
#include "text/unicode.h"

#include <string.h>

#include "text/unicode_tables.inc"

int sky_unicode_in_ranges(const uint32_t (*r)[2], size_t n, uint32_t c)
{
    size_t lo = 0, hi = n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < r[mid][0])
            hi = mid;
        else if (c > r[mid][1])
            lo = mid + 1;
        else
            return 1;
    }
    return 0;
}

#define IN_RANGES(table, c) sky_unicode_in_ranges(table, sizeof table / sizeof table[0], c)

int sky_unicode_is_white_space(uint32_t c) { return IN_RANGES(k_white_space, c); }

int sky_unicode_is_py_space(uint32_t c) { return (c >= 0x1C && c <= 0x1F) || sky_unicode_is_white_space(c); }

int sky_unicode_is_decimal_digit(uint32_t c) { return IN_RANGES(k_decimal_digit, c); }

/* ============================================================================================ */
/* NFC (Unicode 14 data, as Python 3.11's unicodedata.normalize("NFC"))                        */

enum {
    H_SBASE = 0xAC00,
    H_LBASE = 0x1100,
    H_VBASE = 0x1161,
    H_TBASE = 0x11A7,
    H_LCOUNT = 19,
    H_VCOUNT = 21,
    H_TCOUNT = 28,
    H_NCOUNT = 588,
    H_SCOUNT = 11172
};

static int ccc_of(uint32_t c)
{
    size_t lo = 0, hi = sizeof k_ccc / sizeof k_ccc[0];
    if (c < 0x300) return 0;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < k_ccc[mid][0])
            hi = mid;
        else if (c > k_ccc[mid][1])
            lo = mid + 1;
        else
            return (int)k_ccc[mid][2];
    }
    return 0;
}

static const nfc_dec *nfc_dec_find(uint32_t c)
{
    size_t lo = 0, hi = sizeof k_nfc_dec / sizeof k_nfc_dec[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < k_nfc_dec[mid].cp)
            hi = mid;
        else if (c > k_nfc_dec[mid].cp)
            lo = mid + 1;
        else
            return &k_nfc_dec[mid];
    }
    return NULL;
}

/* Full canonical decomposition of c appended to out. */
static void nfd_push(sky_cpbuf *out, uint32_t c)
{
    if (c >= H_SBASE && c < H_SBASE + H_SCOUNT) {
        uint32_t s = c - H_SBASE;
        sky_cpbuf_push(out, H_LBASE + s / H_NCOUNT);
        sky_cpbuf_push(out, H_VBASE + (s % H_NCOUNT) / H_TCOUNT);
        if (s % H_TCOUNT) sky_cpbuf_push(out, H_TBASE + s % H_TCOUNT);
        return;
    }
    const nfc_dec *d = c >= 0xC0 ? nfc_dec_find(c) : NULL;
    if (!d) {
        sky_cpbuf_push(out, c);
        return;
    }
    nfd_push(out, d->a);
    if (d->b) nfd_push(out, d->b);
}

/* The primary composite of (a, b), or 0. */
static uint32_t nfc_compose(uint32_t a, uint32_t b)
{
    if (a >= H_LBASE && a < H_LBASE + H_LCOUNT && b >= H_VBASE && b < H_VBASE + H_VCOUNT)
        return H_SBASE + ((a - H_LBASE) * H_VCOUNT + (b - H_VBASE)) * H_TCOUNT;
    if (a >= H_SBASE && a < H_SBASE + H_SCOUNT && (a - H_SBASE) % H_TCOUNT == 0 && b > H_TBASE &&
        b < H_TBASE + H_TCOUNT)
        return a + (b - H_TBASE);
    size_t lo = 0, hi = sizeof k_nfc_comp / sizeof k_nfc_comp[0];
    while (lo < hi) {
        size_t          mid = lo + (hi - lo) / 2;
        const uint32_t *e = k_nfc_comp[mid];
        if (a < e[0] || (a == e[0] && b < e[1]))
            hi = mid;
        else if (a > e[0] || b > e[1])
            lo = mid + 1;
        else
            return e[2];
    }
    return 0;
}

/* Canonical ordering of one run of non-starters v[0..k) (k >= 2): a stable sort by combining class. A
 * short run (the usual case: a few marks) by insertion, a long one by counting, so that a run of k marks
 * costs O(k) steps rather than O(k^2); both give the same order. scratch gets room for k code points;
 * -1 when it cannot. */
static int sort_marks(uint32_t *v, size_t k, sky_cpbuf *scratch)
{
    enum { INSERTION_MAX = 16 };
    if (k <= INSERTION_MAX) {
        for (size_t i = 1; i < k; i++) {
            int ci = ccc_of(v[i]);
            for (size_t j = i; j > 0 && ccc_of(v[j - 1]) > ci; j--) {
                SKY_TEXT_WORK(1);
                uint32_t t = v[j];
                v[j] = v[j - 1];
                v[j - 1] = t;
            }
        }
        return 0;
    }
    if (sky_cpbuf_reserve(scratch, k) != 0) return -1;
    size_t at[257] = {0}; /* at[c + 1]: how many have class c; then at[c]: where class c goes */
    for (size_t i = 0; i < k; i++) at[ccc_of(v[i]) + 1]++;
    for (int c = 1; c <= 256; c++) at[c] += at[c - 1];
    for (size_t i = 0; i < k; i++) scratch->v[at[ccc_of(v[i])]++] = v[i];
    memcpy(v, scratch->v, k * sizeof *v);
    SKY_TEXT_WORK(3 * k + 256);
    return 0;
}

/* s = NFC(s); tmp is scratch. Text below U+0300 is already NFC. Linear in the length of s: decomposition
 * (a bounded number of code points each), canonical ordering (sort_marks, per run of non-starters) and
 * the composition pass of UAX #15 (one step per code point). */
void sky_unicode_nfc(sky_cpbuf *s, sky_cpbuf *tmp)
{
    size_t i;
    for (i = 0; i < s->n && s->v[i] < 0x300; i++) {}
    SKY_TEXT_WORK(i);
    if (i == s->n) return;
    tmp->n = 0;
    for (i = 0; i < s->n; i++) nfd_push(tmp, s->v[i]);
    if (tmp->oom) {
        s->oom = 1;
        return;
    }
    uint32_t *v = tmp->v;
    size_t    n = tmp->n;
    /* canonical ordering: every maximal run of non-starters sorted by combining class (stable); s's
     * contents are no longer needed, so s is the sort's scratch */
    for (i = 0; i < n;) {
        size_t j = i;
        while (j < n && ccc_of(v[j]) != 0) j++;
        SKY_TEXT_WORK(j - i + 1);
        if (j - i >= 2 && sort_marks(v + i, j - i, s) != 0) return; /* s->oom is set */
        i = j > i ? j : i + 1;
    }
    /* canonical composition (the sample algorithm of UAX #15) */
    if (n > 0) {
        size_t starter = 0, out = 1;
        int    last = ccc_of(v[0]) ? 256 : 0;
        for (i = 1; i < n; i++) {
            uint32_t c = v[i];
            int      cc = ccc_of(c);
            uint32_t comp = nfc_compose(v[starter], c);
            if (comp && (last < cc || last == 0)) {
                v[starter] = comp;
            } else {
                if (cc == 0) starter = out;
                last = cc;
                v[out++] = c;
            }
        }
        SKY_TEXT_WORK(n);
        n = out;
    }
    tmp->n = n;
    sky_cpbuf_swap(s, tmp);
}

/* ============================================================================================ */
/* Extended grapheme clusters (UAX #29)                                                         */

/* Grapheme_Cluster_Break class and Extended_Pictographic flag of c. */
enum {
    GCB_OTHER,
    GCB_CR,
    GCB_LF,
    GCB_CONTROL,
    GCB_EXTEND,
    GCB_ZWJ,
    GCB_RI,
    GCB_PREPEND,
    GCB_SPACINGMARK,
    GCB_L,
    GCB_V,
    GCB_T,
    GCB_LV,
    GCB_LVT
};

static int gcb_of(uint32_t c, int *ext_pict)
{
    size_t lo = 0, hi = sizeof k_gcb / sizeof k_gcb[0];
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        if (c < k_gcb[mid][0])
            hi = mid;
        else if (c > k_gcb[mid][1])
            lo = mid + 1;
        else {
            *ext_pict = (int)(k_gcb[mid][2] >> 4);
            return (int)(k_gcb[mid][2] & 15);
        }
    }
    *ext_pict = 0;
    return GCB_OTHER;
}

size_t sky_unicode_grapheme_end(const uint32_t *s, size_t n, size_t i)
{
    int ep, prev = gcb_of(s[i], &ep);
    int ep_run = ep;         /* the cluster so far ends in ExtPict Extend* */
    int zwj_after_ep = 0;    /* ... ExtPict Extend* ZWJ */
    int ri = prev == GCB_RI; /* regional indicators in a row */
    for (size_t j = i + 1; j < n; j++) {
        SKY_TEXT_WORK(1);
        int cep, cur = gcb_of(s[j], &cep);
        int join;
        if (prev == GCB_CR && cur == GCB_LF)
            join = 1;
        else if (prev == GCB_CR || prev == GCB_LF || prev == GCB_CONTROL)
            join = 0;
        else if (cur == GCB_CR || cur == GCB_LF || cur == GCB_CONTROL)
            join = 0;
        else if (prev == GCB_L && (cur == GCB_L || cur == GCB_V || cur == GCB_LV || cur == GCB_LVT))
            join = 1;
        else if ((prev == GCB_LV || prev == GCB_V) && (cur == GCB_V || cur == GCB_T))
            join = 1;
        else if ((prev == GCB_LVT || prev == GCB_T) && cur == GCB_T)
            join = 1;
        else if (cur == GCB_EXTEND || cur == GCB_ZWJ || cur == GCB_SPACINGMARK)
            join = 1;
        else if (prev == GCB_PREPEND)
            join = 1;
        else if (prev == GCB_ZWJ && cep && zwj_after_ep)
            join = 1;
        else if (prev == GCB_RI && cur == GCB_RI && (ri & 1))
            join = 1;
        else
            join = 0;
        if (!join) return j;
        zwj_after_ep = cur == GCB_ZWJ && ep_run;
        ep_run = cep || (ep_run && cur == GCB_EXTEND);
        ri = cur == GCB_RI ? ri + 1 : 0;
        prev = cur;
    }
    return n;
}
