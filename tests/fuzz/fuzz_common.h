/* tests/fuzz/fuzz_common.h — what the libFuzzer targets share: a scratch folder for the parsers that read
 * paths, splitting one input into several files, the safetensors layout the file targets mutate, and the
 * checks every target makes on an error.
 *
 * The scratch folder is made once per process under $TMPDIR (default /tmp) and emptied before each input;
 * it is removed at exit (a crash leaves it behind: libFuzzer's reproducer is the input, not the folder).
 * A failure of the harness itself (a write that fails) aborts with a message saying so: it is not a finding
 * about the runtime, but it must not pass silently either.
 */
#ifndef SKY_FUZZ_COMMON_H
#define SKY_FUZZ_COMMON_H

#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/status.h"

static char fz_dir_[256];

static inline void fz_harness_fail(const char *what, const char *path)
{
    fprintf(stderr, "fuzz harness: %s %s failed\n", what, path);
    abort();
}

static inline void fz_clear(void)
{
    DIR *d = opendir(fz_dir_);
    if (!d) return;
    struct dirent *e;
    char           p[600];
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
        snprintf(p, sizeof p, "%s/%s", fz_dir_, e->d_name);
        unlink(p);
    }
    closedir(d);
}

static inline void fz_remove_dir(void)
{
    fz_clear();
    rmdir(fz_dir_);
}

/* The scratch folder, made on first use and emptied. */
static inline const char *fz_dir(void)
{
    if (!fz_dir_[0]) {
        const char *t = getenv("TMPDIR");
        snprintf(fz_dir_, sizeof fz_dir_, "%s/skyfuzz.XXXXXX", t && *t ? t : "/tmp");
        if (!mkdtemp(fz_dir_)) fz_harness_fail("mkdtemp", fz_dir_);
        atexit(fz_remove_dir);
    }
    fz_clear();
    return fz_dir_;
}

/* dir/name into buf. */
static inline const char *fz_path(char *buf, size_t n, const char *name)
{
    snprintf(buf, n, "%s/%s", fz_dir_, name);
    return buf;
}

/* Write parts (a, na) then (b, nb) to dir/name; returns its path in buf. */
static inline const char *fz_write2(char *buf, size_t n, const char *name, const void *a, size_t na, const void *b,
                                    size_t nb)
{
    fz_path(buf, n, name);
    FILE *f = fopen(buf, "wb");
    if (!f) fz_harness_fail("fopen", buf);
    if ((na && fwrite(a, 1, na, f) != na) || (nb && fwrite(b, 1, nb, f) != nb)) fz_harness_fail("fwrite", buf);
    if (fclose(f) != 0) fz_harness_fail("fclose", buf);
    return buf;
}

static inline const char *fz_write(char *buf, size_t n, const char *name, const void *data, size_t size)
{
    return fz_write2(buf, n, name, data, size, NULL, 0);
}

/* One piece of an input. */
typedef struct fz_part {
    const uint8_t *p;
    size_t         n;
} fz_part;

/* Split data on the separator sep (sep_len bytes) into at most max parts (the last one keeps the rest);
 * returns the number of parts (>= 1). */
static inline int fz_split(const uint8_t *data, size_t size, const char *sep, size_t sep_len, fz_part *parts, int max)
{
    int    k = 0;
    size_t start = 0;
    for (size_t i = 0; k < max - 1 && i + sep_len <= size; i++) {
        if (memcmp(data + i, sep, sep_len) != 0) continue;
        parts[k++] = (fz_part){data + start, i - start};
        start = i + sep_len;
        i = start - 1;
    }
    parts[k++] = (fz_part){data + start, size - start};
    return k;
}

/* A .safetensors file from a fuzz input, so that mutations of the JSON header do not all die on its
 * length prefix: an input starting with '{' is "<header JSON> NUL <data bytes>" and is written as
 * le64(len(header)) header data (a header cannot hold a raw NUL, so nothing is lost); any other input is
 * written as it is (the raw file, for the length prefix's own checks). Returns the path in buf. */
static inline const char *fz_write_safetensors(char *buf, size_t n, const char *name, const uint8_t *data, size_t size)
{
    if (size == 0 || data[0] != '{') return fz_write(buf, n, name, data, size);
    const uint8_t *nul = memchr(data, 0, size);
    size_t         hn = nul ? (size_t)(nul - data) : size;
    uint8_t       *file = malloc(8 + size);
    if (!file) fz_harness_fail("malloc", name);
    for (int i = 0; i < 8; i++) file[i] = (uint8_t)((uint64_t)hn >> (8 * i));
    memcpy(file + 8, data, hn);
    size_t dn = nul ? size - hn - 1 : 0;
    if (dn) memcpy(file + 8 + hn, nul + 1, dn);
    fz_write(buf, n, name, file, 8 + hn + dn);
    free(file);
    return buf;
}

/* With SKY_FUZZ_VERBOSE=1 in the environment, each input's outcome is printed (for checking what the seeds
 * of a corpus reach: build/fuzz/fuzz/fuzz_<t> FILE...); quiet otherwise. */
static inline void fz_report(const char *call, const sky_err *err)
{
    static int verbose = -1;
    if (verbose < 0) verbose = getenv("SKY_FUZZ_VERBOSE") != NULL && getenv("SKY_FUZZ_VERBOSE")[0] == '1';
    if (verbose) fprintf(stderr, "  %s: %s\n", call, err ? err->msg : "ok");
}

/* A failed call must say why, starting with the name it was given (the house rule: messages name the
 * file). Aborts (a finding) otherwise. */
static inline void fz_check_err(const sky_err *err, const char *prefix, const char *call)
{
    fz_report(call, err);
    if (err->msg[0] == '\0' || strncmp(err->msg, prefix, strlen(prefix)) != 0) {
        fprintf(stderr, "%s failed with the message \"%s\", which does not start with \"%s\"\n", call, err->msg,
                prefix);
        abort();
    }
}

/* Read every byte of p[0, n) (so that ASan checks the bounds of what a parser handed out). */
static inline unsigned fz_touch(const void *p, size_t n)
{
    const volatile unsigned char *b = p;
    unsigned                      acc = 0;
    for (size_t i = 0; i < n; i++) acc += b[i];
    return acc;
}

#endif /* SKY_FUZZ_COMMON_H */
