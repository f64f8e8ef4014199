/* tests/fuzz/fuzz_prompt.c — libFuzzer target for the prompt-to-ids path (text/text.h: sky_text_clean, the
 * ftfy + html.unescape cleaning, and sky_tokenizer_encode / _tokenize with the tiny umT5 tokenizer of the
 * tokenizer tests: added tokens, the precompiled charsmap over grapheme clusters, Metaspace, the Viterbi).
 *
 * Input: the prompt's bytes (up to the first NUL, as the command line passes it). Checked on top of
 * ASan/UBSan:
 *   - cleaning succeeds exactly when the prompt is valid UTF-8, and gives valid UTF-8 without spaces at
 *     either end;
 *   - encoding fails exactly when cleaning does; its ids, mask and n are consistent at two lengths
 *     (fuzz_text_common.h), and its tokens are those of _tokenize on the cleaned text, cut and ended.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "fuzz_common.h"
#include "fuzz_text_common.h"

static sky_tokenizer *tok;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sky_err err = {{0}};
    if (!tok && sky_tokenizer_open(&tok, SKY_FUZZ_SPM_MODEL, &err) != SKY_OK) {
        fprintf(stderr, "fuzz harness: %s\n", err.msg);
        abort();
    }
    char *prompt = malloc(size + 1);
    if (!prompt) fz_harness_fail("malloc", "prompt");
    memcpy(prompt, data, size);
    prompt[size] = '\0';
    const size_t len = strlen(prompt);
    const int    valid = sky_utf8_check(prompt, len) == len;

    char *clean = NULL;
    if (sky_text_clean(prompt, &clean, &err) != SKY_OK) {
        if (valid || clean || !err.msg[0]) abort();
    } else {
        const size_t n = strlen(clean);
        if (!valid || sky_utf8_check(clean, n) != n || (n && (clean[0] == ' ' || clean[n - 1] == ' '))) abort();
    }

    int32_t ids[64];
    int     n = fz_encode_checked(tok, prompt, 64, ids);
    if ((n < 0) != (clean == NULL)) abort();
    if (clean) {
        fz_encode_both(tok, prompt);
        int32_t *all = NULL;
        int      k = 0;
        if (sky_tokenizer_tokenize(tok, clean, &all, &k, &err) != SKY_OK) abort();
        const int cut = k < 63 ? k : 63;
        if (n != cut + 1 || (cut && memcmp(all, ids, (size_t)cut * sizeof *ids) != 0)) abort();
        free(all);
    }
    free(clean);
    free(prompt);
    return 0;
}
