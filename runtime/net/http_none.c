/* runtime/net/http_none.c — http.h for a build without libcurl (cmake -DSKY_CURL=OFF, or libcurl not found):
 * every POST fails saying what is missing, before anything is sent. The CLI refuses --prompt_enhancer in such
 * a build with the same words. */
#include "net/http.h"

#include <stdlib.h>
#include <string.h>

#define NO_CLIENT                                                                                                   \
    "this binary was built without libcurl (cmake -DSKY_CURL=OFF, or libcurl was not found); install it "           \
    "(apt-get install -y libcurl4-openssl-dev) and rebuild (./build.sh gen <variant>), or run the prompt enhancer " \
    "separately and pass its answer with --prompt"

int sky_http_available(void) { return 0; }

const char *sky_http_client(void) { return NO_CLIENT; }

sky_status sky_http_post(const sky_http_post_args *args, sky_http_answer *ans, sky_http_failure *why, sky_err *err)
{
    memset(ans, 0, sizeof *ans);
    if (why) *why = SKY_HTTP_NO_CLIENT;
    return sky_fail(err, "%s: %s", args->url, NO_CLIENT);
}

void sky_http_answer_free(sky_http_answer *ans)
{
    if (!ans) return;
    free(ans->body);
    memset(ans, 0, sizeof *ans);
}
