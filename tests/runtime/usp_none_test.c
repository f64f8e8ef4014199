/* tests/runtime/usp_none_test.c — a build without MPI (runtime/dist/usp_none.c): --use_usp's start is refused with
 * what is missing. Prints the message; exits 0 when it was refused (test_usp.sh checks the text). */
#include <stdio.h>

#include "dist/usp.h"

int main(int argc, char **argv)
{
    sky_usp *u = NULL;
    sky_err  err;
    if (sky_usp_built() || sky_usp_start(&u, &argc, &argv, &err) == SKY_OK || u) return 1;
    printf("%s\n", err.msg);
    return 0;
}
