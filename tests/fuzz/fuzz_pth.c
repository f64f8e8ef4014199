/* tests/fuzz/fuzz_pth.c — libFuzzer target for the PyTorch .pth reader (formats/pth.h, formats/zip.h:
 * sky_pth_open_mem, the ZIP container and the restricted unpickler).
 *
 * Built (tests/fuzz/run.sh) with -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION, which skips data.pkl's CRC-32 check so
 * that mutations of the pickle bytes get past the container. Input: a whole .pth file, or (first
 * byte 0xA5) a raw pickle that the target wraps in a fixed archive with storages '0' (24 bytes)
 * and '1' (64 bytes), so most executions exercise the unpickler rather than the ZIP checks.
 * Every open must either succeed (then every tensor's bytes are read, to let ASan check the
 * bounds) or fail with a message that starts with the name given.
 */
#include "formats/pth.h"
#include "formats/zip.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void put16(unsigned char *p, uint32_t v)
{
    p[0] = (unsigned char)v;
    p[1] = (unsigned char)(v >> 8);
}
static void put32(unsigned char *p, uint32_t v)
{
    put16(p, v & 0xFFFF);
    put16(p + 2, v >> 16);
}

/* A plain stored ZIP (no ZIP64, no descriptors) of n entries into a malloc'ed buffer. */
static unsigned char *wrap(const char *const *names, const unsigned char *const *data, const size_t *size, int n,
                           size_t *out_n)
{
    size_t cap = 512;
    for (int i = 0; i < n; i++) cap += 2 * (46 + strlen(names[i])) + size[i];
    unsigned char *b = malloc(cap), *p = b;
    size_t         local[8];
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        local[i] = (size_t)(p - b);
        put32(p, 0x04034b50);
        put16(p + 4, 20);
        put16(p + 6, 0);
        put16(p + 8, 0);
        put32(p + 10, 0);
        put32(p + 14, sky_zip_crc32(data[i], size[i]));
        put32(p + 18, (uint32_t)size[i]);
        put32(p + 22, (uint32_t)size[i]);
        put16(p + 26, (uint32_t)nl);
        put16(p + 28, 0);
        memcpy(p + 30, names[i], nl);
        if (size[i]) memcpy(p + 30 + nl, data[i], size[i]);
        p += 30 + nl + size[i];
    }
    size_t cd = (size_t)(p - b);
    for (int i = 0; i < n; i++) {
        size_t nl = strlen(names[i]);
        memset(p, 0, 46);
        put32(p, 0x02014b50);
        put16(p + 4, 20);
        put16(p + 6, 20);
        put32(p + 16, sky_zip_crc32(data[i], size[i]));
        put32(p + 20, (uint32_t)size[i]);
        put32(p + 24, (uint32_t)size[i]);
        put16(p + 28, (uint32_t)nl);
        put32(p + 42, (uint32_t)local[i]);
        memcpy(p + 46, names[i], nl);
        p += 46 + nl;
    }
    size_t cd_size = (size_t)(p - b) - cd;
    memset(p, 0, 22);
    put32(p, 0x06054b50);
    put16(p + 8, (uint32_t)n);
    put16(p + 10, (uint32_t)n);
    put32(p + 12, (uint32_t)cd_size);
    put32(p + 16, (uint32_t)cd);
    p += 22;
    *out_n = (size_t)(p - b);
    return b;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const unsigned char s0[24] = {1}, s1[64] = {2};
    unsigned char             *owned = NULL;
    const uint8_t             *buf = data;
    size_t                     n = size;
    if (size > 0 && data[0] == 0xA5) {
        const char          *names[] = {"a/data.pkl", "a/data/0", "a/data/1", "a/byteorder"};
        const unsigned char *d[] = {data + 1, s0, s1, (const unsigned char *)"little"};
        size_t               sz[] = {size - 1, sizeof s0, sizeof s1, 6};
        owned = wrap(names, d, sz, 4, &n);
        buf = owned;
    }
    sky_pth *f = NULL;
    sky_err  err;
    if (sky_pth_open_mem(&f, buf, n, "fuzz", &err) == SKY_OK) {
        volatile unsigned char acc = 0;
        for (int i = 0; i < sky_pth_count(f); i++) {
            const sky_st_tensor *t = sky_pth_at(f, i);
            const unsigned char *p = t->data;
            for (size_t k = 0; k < t->nbytes; k++) acc ^= p[k];
            if (sky_pth_find(f, t->name) != t) abort();
        }
        (void)acc;
        sky_pth_close(f);
    } else if (f != NULL || strncmp(err.msg, "fuzz", 4) != 0) {
        abort();
    }
    free(owned);
    return 0;
}
