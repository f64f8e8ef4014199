/* runtime/core/status.c — sky_fail() and the SKY_ASSERT failure path. */
#include "core/status.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>

/* Format the message into err (if any) and report failure. */
sky_status sky_fail(sky_err *err, const char *fmt, ...)
{
    if (err != NULL) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return SKY_ERR;
}

/* Print where an internal invariant broke and stop: continuing would corrupt state. */
_Noreturn void sky_assert_fail_(const char *cond, const char *func, const char *file, int line)
{
    fprintf(stderr, "SKY_ASSERT(%s) failed in %s at %s:%d\n", cond, func, file, line);
    fflush(stderr);
    abort();
}
