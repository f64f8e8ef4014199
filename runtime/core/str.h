/* runtime/core/str.h — the two string helpers file and tensor names need, shared by the readers
 * (safetensors, checkpoint, pth, zip), core/fs.c and the random-weight writer.
 *
 * Header only: each is a few lines and has no state.
 */
#ifndef SKY_STR_H
#define SKY_STR_H

#include <stdlib.h>
#include <string.h>

/* malloc'ed copy of s (strdup is not C11), or NULL when out of memory. */
static inline char *sky_str_dup(const char *s)
{
    size_t n = strlen(s) + 1;
    char  *d = malloc(n);
    if (d != NULL) memcpy(d, s, n);
    return d;
}

/* 1 if s ends with suffix (an empty suffix included). */
static inline int sky_str_ends_with(const char *s, const char *suffix)
{
    size_t a = strlen(s), b = strlen(suffix);
    return a >= b && memcmp(s + a - b, suffix, b) == 0;
}

#endif /* SKY_STR_H */
