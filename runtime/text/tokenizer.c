/* runtime/text/tokenizer.c — loading a tokenizer (sky_tokenizer_open): the SentencePiece model file
 * (libsentencepiece, behind spm_shim.h, supplies pieces and scores; the protobuf wire format is read here
 * for the model type and the precompiled charsmap), the optional tokenizer.json (added tokens, appended
 * vocabulary), the vocabulary hash. Encoding is in tokenizer_encode.c; the contract in text.h.
 */
#include "text/tokenizer_internal.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/fs.h"
#include "core/json.h"
#include "text/utf8.h"

/* ============================================================================================ */
/* The vocabulary hash                                                                          */

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = SKY_TOKENIZER_HASH_SEED;
    for (size_t i = 0; i < n; i++) h = sky_tokenizer_hash_step(h, (unsigned char)s[i]);
    SKY_TEXT_WORK(n);
    return h;
}

int32_t sky_tokenizer_vocab_find_hashed(const sky_tokenizer *t, uint64_t h, const char *s, size_t n)
{
    size_t mask = t->n_slots - 1;
    for (size_t i = (size_t)h & mask;; i = (i + 1) & mask) {
        SKY_TEXT_WORK(1);
        int32_t id = t->slot[i];
        if (id < 0) return -1;
        if (t->piece_len[id] == n) {
            SKY_TEXT_WORK(n);
            if (memcmp(t->piece[id], s, n) == 0) return id;
        }
    }
}

int32_t sky_tokenizer_vocab_find(const sky_tokenizer *t, const char *s, size_t n)
{
    return sky_tokenizer_vocab_find_hashed(t, hash_bytes(s, n), s, n);
}

/* Build the hash; a string that occurs twice maps to its last id (a Rust HashMap insert, as tokenizers). */
static int vocab_index(sky_tokenizer *t)
{
    size_t want = 16;
    while (want < (size_t)t->n_vocab * 2) want *= 2;
    t->slot = malloc(want * sizeof *t->slot);
    if (!t->slot) return -1;
    memset(t->slot, 0xFF, want * sizeof *t->slot);
    t->n_slots = want;
    for (int32_t id = 0; id < t->n_vocab; id++) {
        size_t mask = want - 1;
        for (size_t h = (size_t)hash_bytes(t->piece[id], t->piece_len[id]) & mask;; h = (h + 1) & mask) {
            int32_t o = t->slot[h];
            if (o < 0 ||
                (t->piece_len[o] == t->piece_len[id] && memcmp(t->piece[o], t->piece[id], t->piece_len[id]) == 0)) {
                t->slot[h] = id;
                break;
            }
        }
        if (t->piece_len[id] > t->max_piece_len) t->max_piece_len = t->piece_len[id];
    }
    return 0;
}

/* Read a whole file (at most max bytes) into a malloc'd, NUL-terminated buffer. */
static sky_status read_whole_file(const char *path, size_t max, char **buf, size_t *len, sky_err *err)
{
    *buf = NULL;
    *len = 0;
    int fd;
    if (sky_fs_open_regular(path, "tokenizer file", &fd, err)) return SKY_ERR;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return sky_fail(err, "%s: cannot open: %s", path, strerror(errno));
    }
    if (fseek(f, 0, SEEK_END) != 0) {
        fclose(f);
        return sky_fail(err, "%s: cannot seek", path);
    }
    long sz = ftell(f);
    if (sz < 0 || (unsigned long)sz > max) {
        fclose(f);
        return sky_fail(err, "%s: size %ld is out of range (at most %zu bytes)", path, sz, max);
    }
    rewind(f);
    char *b = malloc((size_t)sz + 1);
    if (!b) {
        fclose(f);
        return sky_fail(err, "%s: out of memory for %ld bytes", path, sz);
    }
    size_t got = fread(b, 1, (size_t)sz, f);
    fclose(f);
    if (got != (size_t)sz) {
        free(b);
        return sky_fail(err, "%s: short read (%zu of %ld bytes)", path, got, sz);
    }
    b[got] = '\0';
    *buf = b;
    *len = got;
    return SKY_OK;
}

/* Protobuf varint at *i (bounded by n); -1 when truncated or longer than 10 bytes. */
static int pb_varint(const uint8_t *p, size_t n, size_t *i, uint64_t *v)
{
    uint64_t r = 0;
    for (int s = 0; s < 70; s += 7) {
        if (*i >= n) return -1;
        uint8_t c = p[(*i)++];
        r |= (uint64_t)(c & 0x7F) << s;
        if (c < 0x80) {
            *v = r;
            return 0;
        }
    }
    return -1;
}

/* Skip one field's value of wire type wt at *i; for length-delimited fields, sub and sub_len get its bytes. */
static int pb_skip(const uint8_t *p, size_t n, size_t *i, int wt, size_t *sub, size_t *sub_len)
{
    uint64_t v;
    switch (wt) {
    case 0: return pb_varint(p, n, i, &v);
    case 1:
        if (n - *i < 8) return -1;
        *i += 8;
        return 0;
    case 5:
        if (n - *i < 4) return -1;
        *i += 4;
        return 0;
    case 2:
        if (pb_varint(p, n, i, &v) != 0 || v > n - *i) return -1;
        if (sub) {
            *sub = *i;
            *sub_len = (size_t)v;
        }
        *i += (size_t)v;
        return 0;
    default: return -1;
    }
}

/* What tokenizer.c reads itself from the ModelProto: trainer_spec.model_type (field 2.3, 1 = UNIGRAM when
 * absent), normalizer_spec.precompiled_charsmap (field 3.2) and the number of pieces (field 1). */
typedef struct spm_info {
    size_t   n_pieces;
    uint64_t model_type;
    size_t   charsmap_off, charsmap_len;
} spm_info;

static sky_status spm_parse(const char *path, const uint8_t *p, size_t n, spm_info *info, sky_err *err)
{
    memset(info, 0, sizeof *info);
    info->model_type = 1;
    size_t i = 0;
    while (i < n) {
        size_t   sub = 0, sub_len = 0;
        uint64_t key;
        if (pb_varint(p, n, &i, &key) != 0 || pb_skip(p, n, &i, (int)(key & 7), &sub, &sub_len) != 0) goto bad;
        uint64_t field = key >> 3;
        if ((key & 7) != 2) continue;
        if (field == 1) info->n_pieces++;
        if (field != 2 && field != 3) continue;
        for (size_t j = sub, end = sub + sub_len; j < end;) {
            uint64_t k2, v;
            if (pb_varint(p, end, &j, &k2) != 0) goto bad;
            if (field == 2 && k2 == ((3u << 3) | 0)) {
                if (pb_varint(p, end, &j, &v) != 0) goto bad;
                info->model_type = v;
            } else if (field == 3 && k2 == ((2u << 3) | 2)) {
                if (pb_skip(p, end, &j, 2, &info->charsmap_off, &info->charsmap_len) != 0) goto bad;
            } else if (pb_skip(p, end, &j, (int)(k2 & 7), NULL, NULL) != 0) {
                goto bad;
            }
        }
    }
    if (info->n_pieces == 0) return sky_fail(err, "%s: no pieces; is this a SentencePiece model (spiece.model)?", path);
    return SKY_OK;
bad:
    return sky_fail(err, "%s: not a valid SentencePiece model (protobuf structure broken near byte %zu of %zu)", path,
                    i, n);
}

/* ============================================================================================ */
/* tokenizer.json (optional): added tokens and vocabulary entries past the SentencePiece pieces */

/* A vocabulary entry appended after the pieces. */
typedef struct extra_piece {
    char  *s;
    size_t len;
    double score;
} extra_piece;

static int json_flag(const sky_json *o, const char *key)
{
    const sky_json *v = sky_json_get(o, key);
    return v && v->type == SKY_JSON_BOOL && v->boolean;
}

/* Read added_tokens and model.vocab[n_pieces..] of tokenizer.json (into *extra, strings copied); check
 * model.vocab[0..n_pieces) against the SentencePiece pieces. */
static sky_status read_tokenizer_json(sky_tokenizer *t, const char *path, extra_piece **extra, size_t *n_extra,
                                      sky_err *err)
{
    char  *text = NULL;
    size_t len = 0;
    /* The bounds of text.h: SKY_TOKENIZER_JSON_MAX bytes, one JSON value per 3 bytes. */
    if (read_whole_file(path, SKY_TOKENIZER_JSON_MAX, &text, &len, err) != SKY_OK) return SKY_ERR;
    sky_json_doc         *doc = NULL;
    sky_err               jerr;
    const sky_json_limits lim = {0, 0, len / 3 + 1024};
    if (sky_json_parse(&doc, text, len, &lim, &jerr) != SKY_OK) {
        free(text);
        return sky_fail(err, "%s: %s", path, jerr.msg);
    }
    free(text);
    sky_status      st = SKY_ERR;
    size_t          np = (size_t)t->n_pieces;
    const sky_json *root = sky_json_root(doc);
    const sky_json *m = sky_json_get(root, "model");
    const sky_json *ty = m ? sky_json_get(m, "type") : NULL;
    const sky_json *vocab = m ? sky_json_get(m, "vocab") : NULL;
    const sky_json *at = sky_json_get(root, "added_tokens");
    if (!ty || ty->type != SKY_JSON_STRING || strcmp(ty->str, "Unigram") != 0 || !vocab ||
        vocab->type != SKY_JSON_ARRAY) {
        sky_fail(err, "%s: model is not a Unigram model with a vocab list; the umT5 tokenizer is", path);
        goto done;
    }
    if (vocab->count < np) {
        sky_fail(err,
                 "%s: model.vocab has %zu entries, spiece.model %zu pieces; are they from the same "
                 "checkpoint?",
                 path, vocab->count, np);
        goto done;
    }
    if (!at || at->type != SKY_JSON_ARRAY) {
        sky_fail(err, "%s: no added_tokens list", path);
        goto done;
    }
    *extra = calloc(vocab->count - np + 1, sizeof **extra);
    t->added = calloc(at->count + 1, sizeof *t->added);
    if (!*extra || !t->added) {
        sky_fail(err, "%s: out of memory", path);
        goto done;
    }
    for (size_t i = 0; i < vocab->count; i++) {
        const sky_json *e = vocab->items[i];
        if (e->type != SKY_JSON_ARRAY || e->count != 2 || e->items[0]->type != SKY_JSON_STRING ||
            e->items[1]->type != SKY_JSON_NUMBER) {
            sky_fail(err, "%s: model.vocab[%zu] is not a [piece, score] pair", path, i);
            goto done;
        }
        const sky_json *ps = e->items[0];
        if (i < np) {
            if (t->piece_len[i] != ps->len || memcmp(t->piece[i], ps->str, ps->len) != 0) {
                sky_fail(err,
                         "%s: model.vocab[%zu] = \"%.100s\" differs from spiece.model's piece %zu; are they "
                         "from the same checkpoint?",
                         path, i, ps->str, i);
                goto done;
            }
            continue;
        }
        extra_piece *x = &(*extra)[(*n_extra)++];
        x->s = malloc(ps->len + 1);
        if (!x->s) {
            sky_fail(err, "%s: out of memory", path);
            goto done;
        }
        memcpy(x->s, ps->str, ps->len + 1);
        x->len = ps->len;
        x->score = strtod(e->items[1]->str, NULL);
    }
    for (size_t i = 0; i < at->count; i++) {
        const sky_json *a = at->items[i];
        const sky_json *id = sky_json_get(a, "id");
        const sky_json *content = sky_json_get(a, "content");
        if (!id || !id->is_u64 || id->u64 >= (uint64_t)vocab->count || !content || content->type != SKY_JSON_STRING ||
            content->len == 0) {
            sky_fail(err, "%s: added_tokens[%zu] needs an id inside the vocabulary and a non-empty content", path, i);
            goto done;
        }
        if (json_flag(a, "single_word")) {
            sky_fail(err,
                     "%s: added token \"%.100s\" has single_word set, which this tokenizer does not "
                     "implement",
                     path, content->str);
            goto done;
        }
        added_tok *d = &t->added[t->n_added];
        d->content = malloc(content->len + 1);
        if (!d->content) {
            sky_fail(err, "%s: out of memory", path);
            goto done;
        }
        t->n_added++;
        memcpy(d->content, content->str, content->len + 1);
        d->len = content->len;
        d->id = (int32_t)id->u64;
        d->lstrip = json_flag(a, "lstrip");
        d->rstrip = json_flag(a, "rstrip");
    }
    st = SKY_OK;
done:
    sky_json_free(doc);
    return st;
}

/* ============================================================================================ */
/* Opening and closing                                                                          */

static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static int file_exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

/* Add an added token (content copied). */
static int add_token(sky_tokenizer *t, size_t *cap, const char *content, int32_t id)
{
    if (t->n_added == *cap) {
        size_t     nc = *cap ? *cap * 2 : 128;
        added_tok *a = realloc(t->added, nc * sizeof *a);
        if (!a) return -1;
        t->added = a;
        *cap = nc;
    }
    added_tok *d = &t->added[t->n_added];
    memset(d, 0, sizeof *d);
    d->len = strlen(content);
    d->content = malloc(d->len + 1);
    if (!d->content) return -1;
    memcpy(d->content, content, d->len + 1);
    d->id = id;
    t->n_added++;
    return 0;
}

/* The files of a tokenizer path: a folder's spiece.model (and tokenizer.json when it has one), or a .model
 * file itself. */
static sky_status tokenizer_paths(const char *path, char *model_path, char *json_path, size_t n, int *have_json,
                                  sky_err *err)
{
    *have_json = 0;
    if (!is_dir(path)) {
        if ((size_t)snprintf(model_path, n, "%s", path) >= n) return sky_fail(err, "%s: path too long", path);
        return SKY_OK;
    }
    if ((size_t)snprintf(model_path, n, "%s/spiece.model", path) >= n ||
        (size_t)snprintf(json_path, n, "%s/tokenizer.json", path) >= n)
        return sky_fail(err, "%s: path too long", path);
    if (!file_exists(model_path))
        return sky_fail(err,
                        "%s: no spiece.model in this folder; pass the checkpoint's tokenizer folder "
                        "(google/umt5-xxl/ or tokenizer/) or a .model file",
                        path);
    *have_json = file_exists(json_path);
    return SKY_OK;
}

static uint32_t le32(const uint8_t *u)
{
    return (uint32_t)u[0] | (uint32_t)u[1] << 8 | (uint32_t)u[2] << 16 | (uint32_t)u[3] << 24;
}

/* The precompiled charsmap of the model file m into t: u32 trie size in bytes, the trie, then the replacement
 * pool (valid UTF-8). */
static sky_status read_charsmap(sky_tokenizer *t, const uint8_t *m, const spm_info *info, const char *model_path,
                                sky_err *err)
{
    if (info->charsmap_len == 0) return SKY_OK;
    const uint8_t *c = m + info->charsmap_off;
    const size_t   cl = info->charsmap_len;
    const uint32_t tsz = cl >= 4 ? le32(c) : 0;
    if (cl < 4 || tsz % 4 != 0 || tsz > cl - 4 || tsz == 0)
        return sky_fail(err, "%s: precompiled_charsmap is malformed (trie of %u bytes in a blob of %zu)", model_path,
                        tsz, cl);
    t->trie_units = tsz / 4;
    t->trie = malloc(tsz);
    t->pool_len = cl - 4 - tsz;
    t->pool = malloc(t->pool_len + 1);
    if (!t->trie || !t->pool) return sky_fail(err, "%s: out of memory", model_path);
    for (size_t i = 0; i < t->trie_units; i++) t->trie[i] = le32(c + 4 + 4 * i);
    memcpy(t->pool, c + 4 + tsz, t->pool_len);
    t->pool[t->pool_len] = '\0';
    if (sky_utf8_check(t->pool, t->pool_len) != t->pool_len)
        return sky_fail(err, "%s: precompiled_charsmap replacements are not valid UTF-8", model_path);
    return SKY_OK;
}

/* The SentencePiece model file: checked (a Unigram model), its charsmap, the pieces through the shim. */
static sky_status load_model(sky_tokenizer *t, const char *model_path, sky_err *err)
{
    char      *file = NULL;
    size_t     file_len = 0;
    spm_info   info;
    char       msg[1024];
    sky_status st = SKY_ERR;
    if (read_whole_file(model_path, (size_t)1 << 30, &file, &file_len, err) != SKY_OK) return SKY_ERR;
    const uint8_t *m = (const uint8_t *)file;
    if (spm_parse(model_path, m, file_len, &info, err) != SKY_OK) goto done;
    if (info.model_type != 1) {
        sky_fail(err, "%s: model_type %llu is not Unigram (1); the umT5 tokenizer is a Unigram model", model_path,
                 (unsigned long long)info.model_type);
        goto done;
    }
    if (read_charsmap(t, m, &info, model_path, err) != SKY_OK) goto done;
    t->spm = sky_spm_load(file, file_len, msg, sizeof msg);
    if (!t->spm) {
        sky_fail(err, "%s: %s", model_path, msg);
        goto done;
    }
    t->n_pieces = sky_spm_piece_size(t->spm);
    if (t->n_pieces < 3 || (size_t)t->n_pieces != info.n_pieces || t->n_pieces > (1 << 24)) {
        sky_fail(err, "%s: sentencepiece reports %d pieces, the file holds %zu", model_path, t->n_pieces,
                 info.n_pieces);
        goto done;
    }
    t->piece = calloc((size_t)t->n_pieces, sizeof *t->piece);
    t->piece_len = calloc((size_t)t->n_pieces, sizeof *t->piece_len);
    if (!t->piece || !t->piece_len) {
        sky_fail(err, "%s: out of memory", model_path);
        goto done;
    }
    for (int i = 0; i < t->n_pieces; i++) {
        t->piece[i] = sky_spm_piece(t->spm, i, &t->piece_len[i]);
        if (!t->piece[i]) {
            sky_fail(err, "%s: sentencepiece has no piece %d", model_path, i);
            goto done;
        }
    }
    st = SKY_OK;
done:
    free(file);
    return st;
}

/* Without tokenizer.json: T5's 100 sentinels <extra_id_99> .. <extra_id_0>, appended to the vocabulary. */
static sky_status sentinel_pieces(extra_piece **extra, size_t *n_extra, const char *model_path, sky_err *err)
{
    enum { N_SENTINELS = 100 };
    *extra = calloc(N_SENTINELS, sizeof **extra);
    if (!*extra) return sky_fail(err, "%s: out of memory", model_path);
    for (int k = N_SENTINELS - 1; k >= 0; k--) {
        extra_piece *x = &(*extra)[*n_extra];
        x->s = malloc(24);
        if (!x->s) return sky_fail(err, "%s: out of memory", model_path);
        (*n_extra)++;
        x->len = (size_t)snprintf(x->s, 24, "<extra_id_%d>", k);
        x->score = 0.0;
    }
    return SKY_OK;
}

/* The vocabulary: the pieces, then the appended entries (whose strings t takes over), their scores, the
 * unknown piece's score and the lookup index. */
static sky_status build_vocab(sky_tokenizer *t, extra_piece *extra, size_t n_extra, const char *model_path,
                              sky_err *err)
{
    const int    n_vocab = t->n_pieces + (int)n_extra;
    const char **np = realloc(t->piece, (size_t)n_vocab * sizeof *np);
    if (np) t->piece = np;
    size_t *nl = realloc(t->piece_len, (size_t)n_vocab * sizeof *nl);
    if (nl) t->piece_len = nl;
    t->score = malloc((size_t)n_vocab * sizeof *t->score);
    if (!np || !nl || !t->score) return sky_fail(err, "%s: out of memory", model_path);
    for (size_t i = 0; i < n_extra; i++) {
        t->piece[t->n_pieces + (int)i] = extra[i].s; /* owned from here on */
        t->piece_len[t->n_pieces + (int)i] = extra[i].len;
        t->score[t->n_pieces + (int)i] = extra[i].score;
        extra[i].s = NULL;
    }
    t->n_vocab = n_vocab;
    double min_score = 0.0;
    for (int i = 0; i < t->n_vocab; i++) {
        if (i < t->n_pieces) t->score[i] = (double)sky_spm_score(t->spm, i);
        if (i == 0 || t->score[i] < min_score) min_score = t->score[i];
    }
    t->unk_score = min_score - 10.0; /* tokenizers' K_UNK_PENALTY */
    if (vocab_index(t) != 0) return sky_fail(err, "%s: out of memory", model_path);
    return SKY_OK;
}

/* <pad>, </s>, <unk>; without tokenizer.json, they and the sentinels (the last n_extra entries) are the added
 * tokens, as transformers' T5Tokenizer makes them. */
static sky_status special_tokens(sky_tokenizer *t, int have_json, size_t n_extra, const char *model_path, sky_err *err)
{
    size_t added_cap = t->n_added;
    t->pad_id = sky_tokenizer_vocab_find(t, "<pad>", 5);
    t->eos_id = sky_tokenizer_vocab_find(t, "</s>", 4);
    t->unk_id = sky_tokenizer_vocab_find(t, "<unk>", 5);
    if (t->pad_id < 0 || t->eos_id < 0 || t->unk_id < 0)
        return sky_fail(err, "%s: the model has no <pad>, </s> or <unk> piece; is it a T5/umT5 spiece.model?",
                        model_path);
    if (!have_json) {
        if (add_token(t, &added_cap, "<pad>", t->pad_id) || add_token(t, &added_cap, "</s>", t->eos_id) ||
            add_token(t, &added_cap, "<unk>", t->unk_id))
            return sky_fail(err, "%s: out of memory", model_path);
        for (int k = 0; k < (int)n_extra; k++) {
            int32_t id = t->n_vocab - 1 - k; /* <extra_id_k> */
            if (add_token(t, &added_cap, t->piece[id], id)) return sky_fail(err, "%s: out of memory", model_path);
        }
    }
    for (size_t i = 0; i < t->n_added; i++) t->added_first[(unsigned char)t->added[i].content[0]] = 1;
    return SKY_OK;
}

sky_status sky_tokenizer_open(sky_tokenizer **out, const char *path, sky_err *err)
{
    *out = NULL;
    if (!path) return sky_fail(err, "sky_tokenizer_open: path is NULL");
    char model_path[4096], json_path[4096];
    int  have_json;
    if (tokenizer_paths(path, model_path, json_path, sizeof model_path, &have_json, err)) return SKY_ERR;
    sky_tokenizer *t = calloc(1, sizeof *t);
    extra_piece   *extra = NULL;
    size_t         n_extra = 0;
    if (!t) return sky_fail(err, "%s: out of memory", path);
    if (load_model(t, model_path, err) != SKY_OK) goto fail;
    /* the entries appended to the pieces: tokenizer.json's (and its added tokens), else T5's sentinels */
    if (have_json ? read_tokenizer_json(t, json_path, &extra, &n_extra, err)
                  : sentinel_pieces(&extra, &n_extra, model_path, err))
        goto fail;
    if (n_extra > (size_t)(1 << 24)) {
        sky_fail(err, "%s: too many vocabulary entries", json_path);
        goto fail;
    }
    if (build_vocab(t, extra, n_extra, model_path, err) || special_tokens(t, have_json, n_extra, model_path, err))
        goto fail;
    free(extra);
    *out = t;
    return SKY_OK;
fail:
    for (size_t i = 0; extra && i < n_extra; i++) free(extra[i].s);
    free(extra);
    sky_tokenizer_close(t);
    return SKY_ERR;
}
int sky_tokenizer_vocab_size(const sky_tokenizer *t) { return t->n_vocab; }

void sky_tokenizer_close(sky_tokenizer *t)
{
    if (!t) return;
    if (t->piece)
        for (int i = t->n_pieces; i < t->n_vocab; i++) free((char *)t->piece[i]);
    free(t->piece);
    free(t->piece_len);
    free(t->score);
    free(t->slot);
    sky_spm_free(t->spm);
    for (size_t i = 0; i < t->n_added; i++) free(t->added[i].content);
    free(t->added);
    free(t->trie);
    free(t->pool);
    free(t);
}
