/* tests/fuzz/fuzz_spm_model.c — libFuzzer target for reading a SentencePiece model file (text/text.h:
 * sky_tokenizer_open on a .model file: text.c's own protobuf walk and charsmap checks, then libsentencepiece
 * through the shim).
 *
 * Input: the bytes of spiece.model. Checked on top of ASan/UBSan: a failed open leaves no tokenizer and its
 * message starts with the file's path; an opened one encodes fuzz_text_common.h's prompts consistently.
 * libsentencepiece itself is not instrumented: a crash inside it is still found, an overread that does not
 * crash is not.
 */
#include <stdint.h>
#include <stdlib.h>

#include "fuzz_common.h"
#include "fuzz_text_common.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fz_dir();
    fz_write(path, sizeof path, "spiece.model", data, size);
    sky_tokenizer *t = NULL;
    sky_err        err = {{0}};
    if (sky_tokenizer_open(&t, path, &err) != SKY_OK) {
        if (t) abort();
        fz_check_err(&err, path, "sky_tokenizer_open");
        return 0;
    }
    fz_report("sky_tokenizer_open", NULL);
    fz_encode_samples(t);
    sky_tokenizer_close(t);
    return 0;
}
