/* runtime/formats/zip.h — read-only index of a ZIP archive of STORED entries held in memory.
 *
 * Written for the archives torch.save produces (reference vae-text-image-files.md §5.2,
 * "Reading the zip in C"), so it accepts exactly what a plain, uncompressed, single-disk
 * ZIP or ZIP64 archive can hold and checks every number against the buffer before using
 * it. sky_zip_open() validates, before returning:
 *   - the buffer starts with a local file header (PK\3\4)
 *   - an end of central directory record (EOCD) whose comment runs exactly to the end
 *   - a ZIP64 locator + ZIP64 EOCD when present (torch.save always writes them): inside
 *     the buffer, before the locator, single disk, and agreeing with every EOCD field
 *     that is not saturated (0xFFFF / 0xFFFFFFFF); saturated fields without ZIP64 fail
 *   - the central directory lies inside the buffer and ends where the end records begin;
 *     the entry count fits in it (46 bytes per entry at least) and is exactly the number
 *     of entries it holds
 *   - each entry: method 0 (stored; compressed entries are refused by name), not
 *     encrypted, compressed size == size, on disk 0, a safe name (non-empty, no NUL, no
 *     '\\', not absolute, no ".." component), ZIP64 extra field (id 0x0001) present and
 *     long enough for each saturated field, extra fields well formed
 *   - each local header: signature, same name and method as the central directory,
 *     CRC and sizes equal (or zero with the data-descriptor flag, or 0xFFFFFFFF for
 *     ZIP64), data = header + 30 + local name + local extra, all before the central
 *     directory
 *   - names unique; entries (local header .. end of data) do not overlap
 * Validation is O(n log n) in the number of entries and allocates only amounts bounded
 * by the central directory size. Every message starts with the path given to open.
 *
 * The buffer is not copied; it must outlive the sky_zip. CRC-32 is not checked here
 * (a multi-GB storage would be read at open); callers check the records they read
 * whole with sky_zip_crc32().
 */
#ifndef SKY_ZIP_H
#define SKY_ZIP_H

#include "core/status.h"

typedef struct sky_zip_entry {
    const char *name;          /* NUL-terminated, unique */
    uint64_t    header_offset; /* local file header, from the start of the buffer */
    uint64_t    data_offset;   /* first data byte */
    uint64_t    size;          /* data bytes */
    uint32_t    crc32;         /* from the central directory */
} sky_zip_entry;

typedef struct sky_zip sky_zip; /* opaque */

/* Index size bytes at buf. path is used only in messages (copied). On error returns
 * SKY_ERR, *out == NULL, and err->msg starts with path. */
sky_status sky_zip_open(sky_zip **out, const void *buf, size_t size, const char *path, sky_err *err);

/* Number of entries (>= 1). */
int sky_zip_count(const sky_zip *z);

/* Entry i in [0, count), in strcmp() order of names. */
const sky_zip_entry *sky_zip_at(const sky_zip *z, int i);

/* Entry named name, or NULL. O(log n). */
const sky_zip_entry *sky_zip_find(const sky_zip *z, const char *name);

/* Index of e in sky_zip_at() order (e must come from z). */
int sky_zip_index(const sky_zip *z, const sky_zip_entry *e);

/* Pointer to e's first data byte inside the buffer given to open. */
const void *sky_zip_data(const sky_zip *z, const sky_zip_entry *e);

/* Free the index (not the buffer). NULL is fine. */
void sky_zip_close(sky_zip *z);

/* CRC-32 (ISO-HDLC, the ZIP one) of n bytes; sky_zip_crc32(NULL, 0) == 0. */
uint32_t sky_zip_crc32(const void *p, size_t n);

#endif /* SKY_ZIP_H */
