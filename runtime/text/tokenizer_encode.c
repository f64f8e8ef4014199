/* runtime/text/tokenizer_encode.c — sky_tokenizer_encode / sky_tokenizer_tokenize: added tokens, the
 * precompiled charsmap per grapheme cluster, White_Space and Metaspace pre-tokenising, and the Unigram
 * Viterbi, as transformers' T5 tokenizer (the `tokenizers` pipeline) does them; the rules, numbered, are in
 * text.h. The tokenizer itself is loaded by tokenizer.c.
 */
#include "text/tokenizer_internal.h"

#include <stdlib.h>
#include <string.h>

#include "core/json.h" /* sky_utf8_check */
#include "text/unicode.h"
#include "text/utf8.h"

/* ============================================================================================ */
/* The Unigram Viterbi                                                                          */

typedef struct idbuf {
    int32_t *v;
    size_t   n, cap;
    int      oom;
} idbuf;

static void ib_push(idbuf *b, int32_t id)
{
    if (b->oom) return;
    if (b->n == b->cap) {
        size_t   cap = b->cap ? b->cap * 2 : 64;
        int32_t *v = realloc(b->v, cap * sizeof *v);
        if (!v) {
            b->oom = 1;
            return;
        }
        b->v = v;
        b->cap = cap;
    }
    b->v[b->n++] = id;
}

/* The Unigram Viterbi of tokenizers (Unigram::encode_optimized), on one pre-token s[0..n):
 * best path scores in float64; candidates visited by start position, then by length, a later one
 * replacing an earlier one only when strictly better; a character that no entry starts with one
 * character long gets an <unk> node scored unk_score; then the path is read back, consecutive <unk>
 * nodes fused, and each resulting string mapped to its id (unknown strings -> <unk>). Steps: O(n times
 * the longest vocabulary string), as tokenizers' trie walk. */
static sky_status viterbi(const sky_tokenizer *t, const char *s, size_t n, idbuf *ids, sky_err *err)
{
    double  *best = malloc((n + 1) * sizeof *best);
    long    *from = malloc((n + 1) * sizeof *from);
    int32_t *node = malloc((n + 1) * sizeof *node);
    size_t  *tb = malloc((n + 1) * sizeof *tb), *te = malloc((n + 1) * sizeof *te);
    if (!best || !from || !node || !tb || !te) {
        free(best);
        free(from);
        free(node);
        free(tb);
        free(te);
        return sky_fail(err, "tokenizer: out of memory for a word of %zu bytes", n);
    }
    for (size_t i = 0; i <= n; i++) {
        best[i] = 0.0;
        from[i] = -1;
        node[i] = -1;
    }
    for (size_t at = 0; at < n;) {
        double   here = best[at];
        uint32_t cp;
        size_t   mblen = sky_utf8_decode1((const unsigned char *)s + at, n - at, &cp);
        int      single = 0;
        /* every vocabulary string that is a prefix of s[at..], shortest first, at character ends; the hash
         * is extended a byte at a time, so a start costs O(longest piece) steps, not its square */
        uint64_t h = SKY_TOKENIZER_HASH_SEED;
        size_t   hashed = at;
        for (size_t end = at + mblen;;) {
            size_t len = end - at;
            if (len > t->max_piece_len) break;
            for (; hashed < end; hashed++) h = sky_tokenizer_hash_step(h, (unsigned char)s[hashed]);
            SKY_TEXT_WORK(1);
            int32_t id = sky_tokenizer_vocab_find_hashed(t, h, s + at, len);
            if (id >= 0) {
                double cand = t->score[id] + here;
                if (from[end] < 0 || cand > best[end]) {
                    best[end] = cand;
                    from[end] = (long)at;
                    node[end] = id;
                }
                if (len == mblen) single = 1;
            }
            if (end >= n) break;
            uint32_t c2;
            end += sky_utf8_decode1((const unsigned char *)s + end, n - end, &c2);
        }
        if (!single) {
            size_t end = at + mblen;
            double cand = t->unk_score + here;
            if (from[end] < 0 || cand > best[end]) {
                best[end] = cand;
                from[end] = (long)at;
                node[end] = t->unk_id;
            }
        }
        at += mblen;
    }
    /* read the path back to front as [begin, end) ranges, fusing runs of <unk> nodes */
    size_t k = 0, ub = 0, ue = 0;
    for (size_t e = n; e > 0;) {
        SKY_TEXT_WORK(1);
        size_t b = (size_t)from[e];
        if (node[e] == t->unk_id) {
            if (!ue) ue = e;
            ub = b;
        } else {
            if (ue) {
                tb[k] = ub;
                te[k] = ue;
                k++;
                ue = 0;
            }
            tb[k] = b;
            te[k] = e;
            k++;
        }
        e = b;
    }
    if (ue) {
        tb[k] = ub;
        te[k] = ue;
        k++;
    }
    for (size_t i = k; i-- > 0;) {
        size_t  b = tb[i], e = te[i];
        int32_t id = sky_tokenizer_vocab_find(t, s + b, e - b);
        ib_push(ids, id >= 0 ? id : t->unk_id);
    }
    free(best);
    free(from);
    free(node);
    free(tb);
    free(te);
    if (ids->oom) return sky_fail(err, "tokenizer: out of memory");
    return SKY_OK;
}

/* ============================================================================================ */
/* The precompiled charsmap, applied as `tokenizers`' Precompiled normaliser does               */

/* Value of the SHORTEST key of the double-array trie that is a prefix of s[0..len), or -1. */
static long trie_first(const sky_tokenizer *t, const unsigned char *s, size_t len)
{
    const uint32_t *a = t->trie;
    size_t          n = t->trie_units, id = 0;
    if (n == 0) return -1;
#define DA_OFFSET(u) ((size_t)((u) >> 10) << (((u) & (1u << 9)) >> 6))
    id ^= DA_OFFSET(a[0]);
    for (size_t i = 0; i < len; i++) {
        SKY_TEXT_WORK(1);
        unsigned c = s[i];
        if (c == 0) return -1;
        id ^= c;
        if (id >= n) return -1;
        uint32_t u = a[id];
        if ((u & ((1u << 31) | 0xFFu)) != c) return -1;
        id ^= DA_OFFSET(u);
        if (id >= n) return -1;
        if ((u >> 8) & 1u) return (long)(a[id] & 0x7FFFFFFFu);
    }
#undef DA_OFFSET
    return -1;
}

/* Append the replacement at pool offset v; -1 when v is outside the pool. */
static int push_replacement(const sky_tokenizer *t, long v, sky_cpbuf *out)
{
    if (v < 0 || (size_t)v >= t->pool_len) return -1;
    const char *s = t->pool + v;
    size_t      len = strnlen(s, t->pool_len - (size_t)v);
    sky_cpbuf_append_utf8(out, s, len);
    return 0;
}

/* out = Precompiled-normalised s: a cluster under 6 bytes is replaced whole when a charsmap key is a
 * prefix of it (the first, i.e. shortest, match), otherwise each code point is looked up alone. */
static int charsmap_normalize(const sky_tokenizer *t, const uint32_t *s, size_t n, sky_cpbuf *out)
{
    unsigned char buf[64];
    for (size_t i = 0; i < n;) {
        size_t end = sky_unicode_grapheme_end(s, n, i), blen = 0;
        int    small = 1;
        for (size_t k = i; k < end && small; k++) { /* at most 6 steps */
            SKY_TEXT_WORK(1);
            char   u[4];
            size_t l = sky_utf8_encode1(s[k], u);
            if (blen + l >= 6)
                small = 0;
            else {
                memcpy(buf + blen, u, l);
                blen += l;
            }
        }
        if (small) {
            long v = trie_first(t, buf, blen);
            if (v >= 0) {
                if (push_replacement(t, v, out) != 0) return -1;
                i = end;
                continue;
            }
        }
        for (; i < end; i++) {
            char   u[4];
            size_t l = sky_utf8_encode1(s[i], u);
            long   v = trie_first(t, (const unsigned char *)u, l);
            if (v >= 0) {
                if (push_replacement(t, v, out) != 0) return -1;
            } else {
                sky_cpbuf_push(out, s[i]);
            }
        }
    }
    return 0;
}

/* ============================================================================================ */
/* Pre-tokenising and added tokens                                                              */

#define META 0x2581u /* '▁', SentencePiece's whitespace symbol */

/* A piece of text between added tokens: normalise, split on White_Space, Metaspace, Viterbi. */
static sky_status encode_segment(const sky_tokenizer *t, const char *s, size_t len, idbuf *ids, sky_err *err)
{
    sky_cpbuf  raw = {0}, norm = {0};
    sky_strbuf pre = {0};
    sky_status st = SKY_OK;
    sky_cpbuf_append_utf8(&raw, s, len);
    if (charsmap_normalize(t, raw.v, raw.n, &norm) != 0) {
        st = sky_fail(err, "tokenizer: the charsmap of the model points outside its string pool");
        goto done;
    }
    if (raw.oom || norm.oom) {
        st = sky_fail(err, "tokenizer: out of memory");
        goto done;
    }
    for (size_t i = 0; i < norm.n;) {
        SKY_TEXT_WORK(1);
        if (sky_unicode_is_white_space(norm.v[i])) {
            i++;
            continue;
        }
        size_t end = i;
        while (end < norm.n && !sky_unicode_is_white_space(norm.v[end])) end++;
        SKY_TEXT_WORK(end - i);
        /* the word [i, end): '▁' in front unless it has one, then a pre-token starts at every '▁' */
        pre.n = 0;
        if (norm.v[i] != META) sky_strbuf_push_cp(&pre, META);
        for (size_t k = i; k < end; k++) {
            if (norm.v[k] == META && pre.n > 0) {
                if (pre.oom) break;
                if ((st = viterbi(t, pre.s, pre.n, ids, err)) != SKY_OK) goto done;
                pre.n = 0;
            }
            sky_strbuf_push_cp(&pre, norm.v[k]);
        }
        if (pre.oom) {
            st = sky_fail(err, "tokenizer: out of memory");
            goto done;
        }
        if (pre.n > 0 && (st = viterbi(t, pre.s, pre.n, ids, err)) != SKY_OK) goto done;
        i = end;
    }
done:
    sky_cpbuf_free(&raw);
    sky_cpbuf_free(&norm);
    free(pre.s);
    return st;
}

/* Split on added tokens (leftmost, then longest), encode the text between them. Steps: O(len) plus
 * n_added comparisons at each byte that starts an added token. */
static sky_status tokenize_clean(const sky_tokenizer *t, const char *text, size_t len, idbuf *ids, sky_err *err)
{
    size_t start = 0, i = 0;
    while (i < len) {
        SKY_TEXT_WORK(1);
        if (!t->added_first[(unsigned char)text[i]]) {
            i++;
            continue;
        }
        const added_tok *best = NULL;
        SKY_TEXT_WORK(t->n_added);
        for (size_t k = 0; k < t->n_added; k++) {
            const added_tok *a = &t->added[k];
            if (a->len <= len - i && (!best || a->len > best->len) &&
                (a->len < 2 || a->content[1] == text[i + 1]) /* cheap first, then */ &&
                memcmp(text + i, a->content, a->len) == 0)
                best = a;
        }
        if (!best) {
            i++;
            continue;
        }
        size_t seg_end = i, next = i + best->len;
        if (best->lstrip) {
            /* drop White_Space before the token */
            while (seg_end > start) {
                SKY_TEXT_WORK(1);
                size_t k = seg_end - 1;
                while (k > start && (text[k] & 0xC0) == 0x80) k--;
                uint32_t cp;
                sky_utf8_decode1((const unsigned char *)text + k, seg_end - k, &cp);
                if (!sky_unicode_is_white_space(cp)) break;
                seg_end = k;
            }
        }
        if (best->rstrip) {
            while (next < len) {
                SKY_TEXT_WORK(1);
                uint32_t cp;
                size_t   l = sky_utf8_decode1((const unsigned char *)text + next, len - next, &cp);
                if (!sky_unicode_is_white_space(cp)) break;
                next += l;
            }
        }
        if (seg_end > start && encode_segment(t, text + start, seg_end - start, ids, err) != SKY_OK) return SKY_ERR;
        ib_push(ids, best->id);
        start = i = next;
    }
    if (len > start && encode_segment(t, text + start, len - start, ids, err) != SKY_OK) return SKY_ERR;
    if (ids->oom) return sky_fail(err, "tokenizer: out of memory");
    return SKY_OK;
}

/* ============================================================================================ */
/* Public API                                                                                   */

sky_status sky_tokenizer_tokenize(sky_tokenizer *t, const char *text, int32_t **ids, int *n, sky_err *err)
{
    *ids = NULL;
    *n = 0;
    size_t len = strlen(text);
    if (sky_utf8_check(text, len) != len) return sky_fail(err, "tokenizer: text is not valid UTF-8");
    idbuf b = {0};
    if (tokenize_clean(t, text, len, &b, err) != SKY_OK) {
        free(b.v);
        return SKY_ERR;
    }
    if (b.n > (size_t)1 << 30) {
        free(b.v);
        return sky_fail(err, "tokenizer: %zu tokens is too many", b.n);
    }
    *ids = b.v;
    *n = (int)b.n;
    return SKY_OK;
}

sky_status sky_tokenizer_encode(sky_tokenizer *t, const char *prompt, int max_len, int32_t *ids, uint8_t *mask, int *n,
                                sky_err *err)
{
    *n = 0;
    if (max_len < 1) return sky_fail(err, "tokenizer: max_len %d must be at least 1 (room for </s>)", max_len);
    char *clean = NULL;
    if (sky_text_clean(prompt, &clean, err) != SKY_OK) return SKY_ERR;
    int32_t   *tok = NULL;
    int        nt = 0;
    sky_status st = sky_tokenizer_tokenize(t, clean, &tok, &nt, err);
    free(clean);
    if (st != SKY_OK) return st;
    int keep = nt < max_len - 1 ? nt : max_len - 1;
    for (int i = 0; i < keep; i++) ids[i] = tok[i];
    ids[keep] = t->eos_id;
    for (int i = keep + 1; i < max_len; i++) ids[i] = t->pad_id;
    if (mask)
        for (int i = 0; i < max_len; i++) mask[i] = i <= keep;
    *n = keep + 1;
    free(tok);
    return SKY_OK;
}
