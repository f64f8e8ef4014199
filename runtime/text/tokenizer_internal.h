/* runtime/text/tokenizer_internal.h — the loaded tokenizer (struct sky_tokenizer), shared by tokenizer.c,
 * which loads it, and tokenizer_encode.c, which encodes with it (internal to runtime/text/; the API and
 * the reference's rules are in text.h).
 */
#ifndef SKY_TEXT_TOKENIZER_INTERNAL_H
#define SKY_TEXT_TOKENIZER_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "text/spm_shim.h"
#include "text/text.h"

/* An added token of transformers (matched verbatim in the cleaned text before anything else). */
typedef struct added_tok {
    char   *content;
    size_t  len;
    int32_t id;
    int     lstrip, rstrip;
} added_tok;

struct sky_tokenizer {
    sky_spm     *spm;           /* owns the strings of the SentencePiece pieces */
    int          n_pieces;      /* SentencePiece pieces: ids 0 .. n_pieces-1 */
    int          n_vocab;       /* + appended entries (sentinels): ids up to n_vocab-1 */
    const char **piece;         /* [n_vocab] strings (pieces: in spm; appended: owned copies) */
    size_t      *piece_len;     /* [n_vocab] */
    double      *score;         /* [n_vocab] log probabilities, float32 values held in float64 */
    int32_t     *slot;          /* open-addressing hash of piece strings -> id, -1 = empty */
    size_t       n_slots;       /* power of two */
    size_t       max_piece_len; /* bytes */
    double       unk_score;     /* lowest score - 10, as tokenizers' Unigram */
    int32_t      pad_id, eos_id, unk_id;
    added_tok   *added;
    size_t       n_added;
    uint32_t    *trie; /* precompiled charsmap: Darts-clone double array */
    size_t       trie_units;
    char        *pool; /* NUL-separated replacement strings */
    size_t       pool_len;
    uint8_t      added_first[256]; /* 1 for each byte that starts an added token */
};

/* The vocabulary hash is FNV-1a over the string's bytes, so it can be extended a byte at a time. */
#define SKY_TOKENIZER_HASH_SEED 1469598103934665603ull

static inline uint64_t sky_tokenizer_hash_step(uint64_t h, unsigned char c) { return (h ^ c) * 1099511628211ull; }

/* Id of the vocabulary entry whose string is s[0..n), or -1 (a string that occurs twice maps to its last
 * id, as a Rust HashMap insert in tokenizers does). */
int32_t sky_tokenizer_vocab_find(const sky_tokenizer *t, const char *s, size_t n);

/* The same with the string's hash h already computed (sky_tokenizer_hash_step from the seed over s[0..n)). */
int32_t sky_tokenizer_vocab_find_hashed(const sky_tokenizer *t, uint64_t h, const char *s, size_t n);

#endif /* SKY_TEXT_TOKENIZER_INTERNAL_H */
