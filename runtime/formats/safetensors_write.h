/* runtime/formats/safetensors_write.h — write a .safetensors file atomically.
 *
 * The files written are what safetensors.h reads back (header within SKY_ST_MAX_HEADER, tensors
 * tiling the data exactly): the outputs of the programs, --output_latents, --resume_dir windows,
 * traces, random weights and inputs. Format: reference vae-text-image-files.md §5.1.
 */
#ifndef SKY_SAFETENSORS_WRITE_H
#define SKY_SAFETENSORS_WRITE_H

#include "core/status.h"

/* One tensor to write. data holds the tensor's bytes, little-endian, row-major
 * (may be NULL when the tensor has 0 bytes). */
typedef struct sky_st_entry {
    const char *name;
    sky_dtype   dtype;
    int         ndim;
    int64_t     shape[SKY_MAX_DIMS];
    const void *data;
} sky_st_entry;

/* Write a valid safetensors file: header padded with spaces to a multiple of 8 bytes,
 * tensors in the given order, contiguous. meta is NULL or a NULL-terminated list
 * key, value, key, value, ... written as __metadata__ (JSON-escaped; must be UTF-8).
 * Entries are checked first (non-empty unique UTF-8 names, not "__metadata__", known
 * dtype, rank <= 8, dims >= 0, sizes without overflow). The file is written to a
 * temporary file in the same directory, fsync()ed, then rename()d onto path, so an
 * existing file is never truncated under a reader's mapping; on any error the temporary
 * file is removed and path is untouched. */
sky_status sky_safetensors_write(const char *path, const sky_st_entry *t, int n, const char *const *meta, sky_err *err);

#endif /* SKY_SAFETENSORS_WRITE_H */
