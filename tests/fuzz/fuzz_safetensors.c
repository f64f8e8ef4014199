/* tests/fuzz/fuzz_safetensors.c — libFuzzer target for the .safetensors reader (formats/safetensors.h:
 * sky_safetensors_open on a file, the way every checkpoint is read).
 *
 * Input: "<header JSON> NUL <data>" (written with its length prefix) or a raw file (fuzz_common.h). Checked
 * on top of ASan/UBSan (which do not see into the mapping, hence the explicit bounds below):
 *   - an open that fails leaves no handle and says why, starting with the path;
 *   - an open that succeeds: tensors in strictly increasing name order, each found by name, its byte size
 *     its element count times its dtype's bits, and its bytes inside the data part and equal to the input's
 *     at that place (the first tensor starts at 0, they tile the data part exactly, no trailing bytes).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "formats/safetensors.h"
#include "fuzz_common.h"

/* The bytes of the file as written (the input itself, or its composed form). */
static const uint8_t *file_bytes(const char *path, size_t *n)
{
    static uint8_t *buf;
    static size_t   cap;
    FILE           *f = fopen(path, "rb");
    if (!f) fz_harness_fail("fopen", path);
    fseek(f, 0, SEEK_END);
    long sz = ftell(f);
    rewind(f);
    if ((size_t)sz + 1 > cap) {
        cap = (size_t)sz + 1;
        buf = realloc(buf, cap);
        if (!buf) fz_harness_fail("realloc", path);
    }
    if (fread(buf, 1, (size_t)sz, f) != (size_t)sz) fz_harness_fail("fread", path);
    fclose(f);
    *n = (size_t)sz;
    return buf;
}

static void check_tensors(const sky_safetensors *f, const uint8_t *file, size_t n)
{
    uint64_t hn = 0;
    for (int i = 0; i < 8; i++) hn |= (uint64_t)file[i] << (8 * i);
    const uint8_t *data = file + 8 + hn;
    size_t         data_n = n - 8 - (size_t)hn, total = 0;
    const char    *base = NULL;
    int            count = sky_safetensors_count(f);
    for (int i = 0; i < count; i++) {
        const char *p = sky_safetensors_at(f, i)->data;
        if (!base || p < base) base = p;
    }
    for (int i = 0; i < count; i++) {
        const sky_st_tensor *t = sky_safetensors_at(f, i);
        if (!t->name[0] || sky_safetensors_find(f, t->name) != t) abort();
        if (i > 0 && strcmp(sky_safetensors_at(f, i - 1)->name, t->name) >= 0) abort();
        if (t->ndim < 0 || t->ndim > SKY_MAX_DIMS) abort();
        unsigned __int128 bits = (unsigned __int128)sky_dtype_bits(t->dtype);
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) abort();
            bits *= (uint64_t)t->shape[d];
        }
        if (bits != (unsigned __int128)t->nbytes * 8) abort();
        size_t off = (size_t)((const char *)t->data - base);
        if (off > data_n || t->nbytes > data_n - off) abort();
        if (memcmp(t->data, data + off, t->nbytes) != 0) abort();
        total += t->nbytes;
    }
    if (total != data_n) abort(); /* exact tiling: no gap, no overlap, nothing after */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char path[512];
    fz_dir();
    fz_write_safetensors(path, sizeof path, "x.safetensors", data, size);
    sky_safetensors *f = NULL;
    sky_err          err = {{0}};
    if (sky_safetensors_open(&f, path, &err) != SKY_OK) {
        if (f) abort();
        fz_check_err(&err, path, "sky_safetensors_open");
        return 0;
    }
    size_t         n;
    const uint8_t *file = file_bytes(path, &n);
    check_tensors(f, file, n);
    if (strcmp(sky_safetensors_path(f), path) != 0) abort();
    const char *m = sky_safetensors_metadata(f, "format");
    if (m) fz_touch(m, strlen(m));
    fz_report("sky_safetensors_open", NULL);
    sky_safetensors_close(f);
    return 0;
}
