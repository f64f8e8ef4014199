/* tests/fuzz/fuzz_tokenizer_json.c — libFuzzer target for a tokenizer folder's tokenizer.json (text/text.h:
 * sky_tokenizer_open on a folder: added_tokens and the vocabulary past the SentencePiece pieces).
 *
 * Input: the bytes of tokenizer.json; the folder's spiece.model is a link to tests/fuzz/data/small_spm.model
 * (51 pieces, no charsmap: make_corpus.py; the tiny umT5 model takes 60 ms to load). Checked on top of ASan/UBSan: a failed open
 * leaves no tokenizer and its message starts with the folder's path; an opened one encodes
 * fuzz_text_common.h's prompts consistently.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "fuzz_text_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char        path[512];
    const char *dir = fz_dir();
    if (symlink(SKY_FUZZ_SMALL_SPM_MODEL, fz_path(path, sizeof path, "spiece.model")) != 0)
        fz_harness_fail("symlink", path);
    fz_write(path, sizeof path, "tokenizer.json", data, size);
    sky_tokenizer *t = NULL;
    sky_err        err = {{0}};
    if (sky_tokenizer_open(&t, dir, &err) != SKY_OK) {
        if (t) abort();
        fz_check_err(&err, dir, "sky_tokenizer_open");
        return 0;
    }
    fz_report("sky_tokenizer_open", NULL);
    fz_encode_samples(t);
    sky_tokenizer_close(t);
    return 0;
}
