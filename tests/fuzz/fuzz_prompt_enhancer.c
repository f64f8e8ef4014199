/* tests/fuzz/fuzz_prompt_enhancer.c — libFuzzer target for the prompt enhancer's JSON (net/prompt_enhancer.h):
 * sky_prompt_enhancer_parse on a server's answer (untrusted), and sky_prompt_enhancer_request, whose body must
 * give back what it was built from.
 *
 * Input: the answer body. Checked on top of ASan/UBSan:
 *   - a parse that fails hands out nothing and says why; one that succeeds gives 1..MAX_PROMPT bytes of valid
 *     UTF-8 without control characters, without spaces at either end or two in a row, and *cut 0 or 1;
 *   - the request built from that prompt, and from the input itself (up to its first NUL) where it is valid
 *     UTF-8, parses with core/json.h and holds the model and the prompt byte for byte.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/json.h"
#include "fuzz_common.h"
#include "net/prompt_enhancer.h"

#define MODEL "Qwen/Qwen2.5-32B-Instruct \"q\" \\ \xc3\xa9"

/* The request for prompt parses back to MODEL and prompt. */
static void check_request(const char *prompt)
{
    char   *body = NULL;
    size_t  len = 0;
    sky_err err = {{0}};
    if (sky_prompt_enhancer_request(MODEL, prompt, &body, &len, &err) != SKY_OK) {
        fprintf(stderr, "sky_prompt_enhancer_request refused valid UTF-8: %s\n", err.msg);
        abort();
    }
    sky_json_doc *doc = NULL;
    if (strlen(body) != len || sky_json_parse(&doc, body, len, NULL, &err) != SKY_OK) {
        fprintf(stderr, "the request body is not JSON: %s\n", err.msg);
        abort();
    }
    const sky_json *root = sky_json_root(doc), *model = sky_json_get(root, "model");
    const sky_json *msgs = sky_json_get(root, "messages");
    const sky_json *user = msgs && msgs->type == SKY_JSON_ARRAY && msgs->count == 2 ? msgs->items[1] : NULL;
    const sky_json *content = user ? sky_json_get(user, "content") : NULL;
    if (!model || model->len != strlen(MODEL) || memcmp(model->str, MODEL, model->len) != 0 || !content ||
        content->type != SKY_JSON_STRING || content->len != strlen(prompt) ||
        memcmp(content->str, prompt, content->len) != 0) {
        fprintf(stderr, "the request body does not give back the model and the prompt: %s\n", body);
        abort();
    }
    sky_json_free(doc);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char   *prompt = NULL;
    int     cut = -1;
    sky_err err = {{0}};
    if (sky_prompt_enhancer_parse((const char *)data, size, &prompt, &cut, &err) != SKY_OK) {
        if (prompt || !err.msg[0]) abort();
        fz_report("sky_prompt_enhancer_parse", &err);
    } else {
        fz_report("sky_prompt_enhancer_parse", NULL);
        const size_t n = strlen(prompt);
        if (n == 0 || n > SKY_PROMPT_ENHANCER_MAX_PROMPT || sky_utf8_check(prompt, n) != n || (cut != 0 && cut != 1))
            abort();
        if (prompt[0] == ' ' || prompt[n - 1] == ' ' || strstr(prompt, "  ")) abort();
        for (size_t i = 0; i < n; i++)
            if ((unsigned char)prompt[i] < 0x20 || prompt[i] == 0x7f) abort();
        check_request(prompt);
        free(prompt);
    }
    char *text = malloc(size + 1);
    if (!text) fz_harness_fail("malloc", "prompt");
    memcpy(text, data, size);
    text[size] = '\0';
    if (sky_utf8_check(text, strlen(text)) == strlen(text)) check_request(text);
    free(text);
    return 0;
}
