/* runtime/text/text.h — prompt cleaning and umT5 tokenisation, as the SkyReels-V2 pipelines do them.
 *
 * Reference: shared/reference/vae-text-image-files.md §2.4 (the pipeline) and §2.7 (the files). The
 * pipelines run prompt_clean (ftfy.fix_text, html.unescape twice, strip, collapse \s+ to " ", strip) and
 * then transformers' T5 tokenizer (the `tokenizers` Unigram pipeline, not the SentencePiece library) with
 * add_special_tokens, truncation and padding to 512. This module reproduces both. Debian's
 * libsentencepiece (behind runtime/text/spm_shim.h) parses and validates spiece.model and supplies the pieces
 * and scores; the Viterbi is done here, as `tokenizers` does it (see step 4).
 *
 * Cleaning (sky_text_clean) implements ftfy 6.3's fix_text with its default configuration EXCEPT the
 * heuristic mojibake repair (fix_encoding: restore_byte_a0, replace_lossy_sequences,
 * decode_inconsistent_utf8 and re-decoding in another codec), which is a no-op on text that is not
 * mojibake and is not reproduced; nor is ftfy's max_decode_length (a line over 1,000,000 characters).
 * Implemented, in ftfy's order and repeated until nothing changes (at most 64 times: ftfy has no bound, so
 * an entity escaped more than 64 times over, "&amp;amp;...", keeps what is left), per line as ftfy splits
 * it:
 *   - unescape_html (ftfy's own: "&name;" from the HTML5 table plus upper-cased names, "&#...;"), only
 *     while no line so far contained '<' (ftfy's "auto");
 *   - fix_c1_controls (U+0080..U+009F read as sloppy windows-1252), fix_latin_ligatures (ﬁ -> fi, ĳ ...),
 *     fix_character_width (full-width / half-width forms -> NFKC, U+3000 -> space), uncurl_quotes
 *     (U+02BC, U+2018..U+201B -> ', U+201C..U+201F -> "), fix_line_breaks (CRLF, CR, U+2028, U+2029,
 *     U+0085 -> LF), remove_terminal_escapes (ESC [ digits/; letter), remove_control_chars (C0 except
 *     TAB LF FF CR, DEL, U+206A..U+206F, U+FEFF, U+FFF9..U+FFFC), NFC (Unicode 14, Python 3.11's: the
 *     reference's version, hence generated tables rather than a Unicode library, docs/text.md);
 * then Python's html.unescape twice (full HTML5 table, numeric references with its replacement rules),
 * str.strip(), every run of Unicode White_Space -> one space, strip. The tables come from ftfy, Python and
 * the `regex` module (runtime/text/make_unicode_tables.py writes unicode_tables.inc and clean_tables.inc).
 *
 * Files: clean.c (sky_text_clean), tokenizer.c (loading), tokenizer_encode.c (encoding), unicode.c (NFC,
 * White_Space, grapheme clusters), utf8.c (buffers), spm_shim.cc (libsentencepiece).
 *
 * Cost: cleaning and tokenising take time linear in the prompt's length (at most 64 rounds of linear
 * passes per line; NFC sorts long runs of combining marks by counting; the Viterbi extends its hash a byte
 * at a time): tests/runtime/test_text.c counts the steps of worst cases at 64 and 128 KiB.
 *
 * Tokenising (sky_tokenizer_encode) then follows transformers' T5 tokenizer (5.x T5Tokenizer and 4.x
 * T5TokenizerFast give the same ids on every fixture):
 *   1. split the cleaned text on the added tokens (<pad>, </s>, <unk>, <extra_id_N>), leftmost-longest,
 *      matched verbatim before any normalisation;
 *   2. each remaining piece of text through the model's precompiled charsmap the way `tokenizers`'
 *      Precompiled normaliser applies it: per extended grapheme cluster, a cluster under 6 bytes is
 *      replaced as a whole by the SHORTEST charsmap rule matching a prefix of it, else code point by code
 *      point (SentencePiece itself does longest match on the byte stream; the two differ on combining
 *      sequences, and the reference is the former);
 *   3. split on Unicode White_Space, prefix each word with U+2581 '▁' unless it starts with one, split it
 *      again before every '▁' (Metaspace, prepend_scheme "always");
 *   4. each pre-token through tokenizers' Unigram Viterbi: every vocabulary string is a candidate (also
 *      <pad>, </s>, <unk>, the byte pieces <0xNN> and the sentinels, which can then only match their
 *      literal text), path scores summed in float64 (libsentencepiece sums in float32 and breaks exact
 *      ties, such as "." + "..." against "..." + "." in "....", differently), ties keep the earlier
 *      start; no byte fallback (the T5 converter drops it): a character no entry covers becomes <unk>
 *      scored min score - 10, runs of <unk> fuse into one;
 *   5. ids concatenated, cut to max_len - 1, </s> appended, padded with <pad>.
 *
 * Not supported: a NUL inside a prompt (C strings); added tokens' single_word flag (refused). A
 * tokenizer.json's own normaliser and pre-tokeniser are not read: transformers 5 ignores them too and
 * rebuilds the T5 pipeline above; transformers 4 runs the file's. A file written by a recent transformers 4
 * (4.57: Precompiled, Strip right, Replace "  +" -> "▁"; Metaspace) gives the same ids; an older one
 * (Precompiled, Replace "  +" -> " ") differs at least when the charsmap turns the LAST character into a
 * space (a prompt ending in U+200B, say), where it yields one more "▁" token.
 */
#ifndef SKY_TEXT_H
#define SKY_TEXT_H

#include "core/status.h"

/* The pipelines' sequence length (text_len = 512). */
#define SKY_TEXT_LEN 512

/* The cleaning above, into a malloc'd NUL-terminated UTF-8 string (*out; the caller frees it).
 * Fails on invalid UTF-8 (the original decodes prompts as str and cannot receive it). */
sky_status sky_text_clean(const char *prompt, char **out, sky_err *err);

typedef struct sky_tokenizer sky_tokenizer; /* opaque */

/* Load a tokenizer. path is either
 *   - a checkpoint's tokenizer folder (orig google/umt5-xxl/, diffusers tokenizer/) holding spiece.model
 *     and optionally tokenizer.json: its added_tokens (ids and contents of <pad>, </s>, <unk> and the
 *     sentinels) and the vocabulary entries past the SentencePiece pieces are taken from it;
 *   - or a .model file alone: T5's defaults are used (added tokens <pad>, </s>, <unk> and 100
 *     <extra_id_N>, the sentinels appended to the vocabulary in reverse, <extra_id_0> last), which is
 *     what transformers builds from a folder with only spiece.model.
 * The model must be a Unigram SentencePiece model with <pad>, </s> and <unk> pieces. */
sky_status sky_tokenizer_open(sky_tokenizer **out, const char *path, sky_err *err);

/* Clean prompt and tokenise it into ids[max_len] and mask[max_len] (mask may be NULL): the tokens, </s>
 * appended, truncated to max_len (so at most max_len - 1 text tokens and </s> always the last real
 * token), padded with <pad> (id 0) and mask 0. *n gets the number of real tokens (</s> included,
 * 1 <= n <= max_len). The pipelines use max_len = SKY_TEXT_LEN. */
sky_status sky_tokenizer_encode(sky_tokenizer *t, const char *prompt, int max_len, int32_t *ids, uint8_t *mask, int *n,
                                sky_err *err);

/* The same without the cleaning and without </s>, truncation or padding: all token ids of an already
 * cleaned text, into a malloc'd array (*ids, *n; *ids may be NULL when *n == 0). For tests and tools. */
sky_status sky_tokenizer_tokenize(sky_tokenizer *t, const char *text, int32_t **ids, int *n, sky_err *err);

/* Vocabulary size as transformers sees it (SentencePiece pieces + appended entries such as sentinels). */
int sky_tokenizer_vocab_size(const sky_tokenizer *t);

/* Free the tokenizer. NULL is fine. */
void sky_tokenizer_close(sky_tokenizer *t);

#endif /* SKY_TEXT_H */
