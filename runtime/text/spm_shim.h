/* runtime/text/spm_shim.h — the only C++ in the project: a plain-C face on Debian's libsentencepiece.
 *
 * The SentencePiece library parses and validates the model file (spiece.model, a serialized
 * sentencepiece.ModelProto) and hands runtime/text/tokenizer.c the vocabulary: each piece's string and
 * score. tokenizer_encode.c then tokenises the way the reference does (transformers' `tokenizers` Unigram
 * model: a Viterbi with float64 path scores over ALL vocabulary strings, no byte fallback). The library's
 * own Encode() is not used: it accumulates path scores in float32, which breaks exact ties (e.g. "." +
 * "..." versus "..." + "." inside "....") differently from the reference, and it never matches control or
 * byte pieces as text, which the reference does.
 *
 * Every function catches every C++ exception and reports it as text; no C++ type crosses this header.
 * Link with -lsentencepiece -lstdc++ (Debian: apt-get install -y libsentencepiece-dev).
 */
#ifndef SKY_SPM_SHIM_H
#define SKY_SPM_SHIM_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct sky_spm sky_spm; /* opaque: one sentencepiece::SentencePieceProcessor */

/* Load a model from the bytes of a serialized ModelProto (len bytes; copied). Returns NULL on failure and
 * writes a NUL-terminated reason into msg[msg_size]. */
sky_spm *sky_spm_load(const void *proto, size_t len, char *msg, size_t msg_size);

/* Number of pieces (ids 0 .. size-1). */
int sky_spm_piece_size(const sky_spm *s);

/* The string of piece id (*len bytes, not NUL-terminated in general), valid until sky_spm_free; NULL when
 * id is out of range. */
const char *sky_spm_piece(const sky_spm *s, int id, size_t *len);

/* The score (log probability) of piece id; 0 when id is out of range. */
float sky_spm_score(const sky_spm *s, int id);

/* Free the processor. NULL is fine. */
void sky_spm_free(sky_spm *s);

#ifdef __cplusplus
}
#endif

#endif /* SKY_SPM_SHIM_H */
