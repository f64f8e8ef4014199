/* tests/fuzz/fuzz_text_common.h — the checks the tokenizer targets make on an opened tokenizer: encoding a
 * few fixed prompts (cleaning, added tokens, the charsmap, unknown characters, truncation) gives ids inside the
 * vocabulary, 1 <= n <= max_len, a mask that marks exactly the first n, and the same tokens at two lengths. */
#ifndef SKY_FUZZ_TEXT_COMMON_H
#define SKY_FUZZ_TEXT_COMMON_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "text/text.h"

/* Encode prompt at max_len (<= 64) and check the result; returns n, or -1 when encoding fails (with a
 * message). */
static inline int fz_encode_checked(sky_tokenizer *t, const char *prompt, int max_len, int32_t *ids)
{
    uint8_t mask[64];
    int     n = -1;
    sky_err err = {{0}};
    if (sky_tokenizer_encode(t, prompt, max_len, ids, mask, &n, &err) != SKY_OK) {
        if (!err.msg[0]) abort();
        return -1;
    }
    const int vocab = sky_tokenizer_vocab_size(t);
    if (n < 1 || n > max_len) abort();
    for (int i = 0; i < max_len; i++)
        if (ids[i] < 0 || ids[i] >= vocab || mask[i] != (i < n)) abort();
    return n;
}

/* Encode prompt at lengths 64 and 6: the short one is the long one cut to 5 tokens, then the end token. */
static inline void fz_encode_both(sky_tokenizer *t, const char *prompt)
{
    int32_t a[64], b[64];
    int     na = fz_encode_checked(t, prompt, 64, a), nb = fz_encode_checked(t, prompt, 6, b);
    if ((na < 0) != (nb < 0)) abort();
    if (na < 0) return;
    if (nb != (na < 6 ? na : 6) || b[nb - 1] != a[na - 1] || memcmp(a, b, (size_t)(nb - 1) * sizeof *a) != 0) abort();
}

/* The fixed prompts every opened tokenizer encodes. */
static inline void fz_encode_samples(sky_tokenizer *t)
{
    static const char *const prompts[] = {
        "A woman in a red dress walks through a sunlit forest, realistic, 4k.",
        "<extra_id_0> </s> <pad><unk> x <extra_id_99>",
        ("\xef\xbc\xa1\xef\xbc\xa2 \xef\xac\x81 \xe2\x80\x98q\xe2\x80\x99 &amp;&lt; \xe6\x97\xa5\xe6\x9c\xac "
         "\xf0\x9f\x98\x80 e\xcc\x81"),
        "",
    };
    for (size_t i = 0; i < sizeof prompts / sizeof *prompts; i++) fz_encode_both(t, prompts[i]);
}

#endif /* SKY_FUZZ_TEXT_COMMON_H */
