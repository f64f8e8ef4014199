/* runtime/formats/safetensors.h — read-only view of .safetensors files through mmap, sharded
 * checkpoints, and a writer.
 *
 * Format and the validation done here: reference vae-text-image-files.md §5.1 and
 * conventions-and-reliability.md §3.2. sky_safetensors_open() checks the whole file
 * before returning:
 *   - file >= 8 bytes; header length N <= 100,000,000; 8 + N within the file
 *   - header valid UTF-8 and strict JSON (json.h: no duplicate keys, exact integers,
 *     depth/length caps); JSON whitespace allowed before '{' and after '}'
 *   - root an object; "__metadata__" (optional) an object of string -> string
 *   - each tensor: non-empty name without NUL; exactly the fields dtype, shape and
 *     data_offsets; a known dtype; rank <= SKY_MAX_DIMS; dims and offsets plain
 *     integers in [0, 2^64-1] (dims also <= 2^63-1); elements x bits computed with
 *     overflow checks, a whole number of bytes, equal to END - BEGIN; BEGIN <= END
 *   - coverage: sorted by BEGIN, the tensors tile the data buffer exactly — first at 0,
 *     no gap, no overlap, last END == file size - 8 - N (no trailing bytes)
 * Validation is O(n log n) in the number of tensors. Every error message starts with
 * the file's path and names the tensor(s) involved.
 *
 * Nothing is copied: tensor data points into the read-only mapping and is NOT aligned
 * in general (use dtype.h or memcpy). Pointers stay valid until _close(). Modifying
 * the file while it is mapped is out of scope (reference §5.1 item 7).
 */
#ifndef SKY_SAFETENSORS_H
#define SKY_SAFETENSORS_H

#include "core/status.h"

/* Upper bound on the header length N (the reference reader's MAX_HEADER_SIZE). */
#define SKY_ST_MAX_HEADER 100000000ull

typedef struct sky_st_tensor {
    const char *name; /* unique, non-empty, NUL-terminated */
    sky_dtype   dtype;
    int         ndim;                /* 0 for a scalar (1 element) */
    int64_t     shape[SKY_MAX_DIMS]; /* shape[ndim..] are 0 */
    const void *data;                /* into the mapping; any alignment */
    size_t      nbytes;              /* 0 for an empty tensor */
    const char *file;                /* path of the file holding it */
} sky_st_tensor;

typedef struct sky_safetensors sky_safetensors; /* opaque */

/* Map path and validate everything above. On success *out owns the mapping (the fd
 * is already closed). On error returns SKY_ERR, *out == NULL, and err->msg starts
 * with the path, e.g. "x.safetensors: header length 123456789012 exceeds the file size 40". */
sky_status sky_safetensors_open(sky_safetensors **out, const char *path, sky_err *err);

/* Number of tensors (0 is valid). */
int sky_safetensors_count(const sky_safetensors *f);

/* Tensor i in [0, count), in strcmp() order of names. */
const sky_st_tensor *sky_safetensors_at(const sky_safetensors *f, int i);

/* Tensor named name, or NULL. Binary search, O(log n). */
const sky_st_tensor *sky_safetensors_find(const sky_safetensors *f, const char *name);

/* Value of __metadata__[key], or NULL when absent. */
const char *sky_safetensors_metadata(const sky_safetensors *f, const char *key);

/* Path the file was opened with. */
const char *sky_safetensors_path(const sky_safetensors *f);

/* Unmap and free. NULL is fine. */
void sky_safetensors_close(sky_safetensors *f);

/* A checkpoint is one of:
 *   - a .safetensors file;
 *   - a PyTorch .pth file (the original repos' VAE, T5 and CLIP weights; pth.h);
 *   - a *.safetensors.index.json file, or a directory holding exactly one (a second
 *     one is an error naming both). Sharded, checked as reference §5.1 says: every
 *     shard name a plain file name (no '/', '\\', "..", not absolute); every listed
 *     shard exists and opens; every listed tensor is in exactly the shard the index
 *     names; no tensor in two shards; every shard tensor listed; metadata.total_size,
 *     when present, equals the sum of tensor bytes;
 *   - a directory of *.safetensors files without an index: all of them are opened, in
 *     file name order; a tensor name in two files is an error naming both files.
 * Names starting with '.' are ignored in directories. A directory with no
 * *.safetensors file is an error that says so. Tensors are merged and sorted by name. */
typedef struct sky_checkpoint sky_checkpoint;

sky_status           sky_checkpoint_open(sky_checkpoint **out, const char *path, sky_err *err);
int                  sky_checkpoint_count(const sky_checkpoint *c);
const sky_st_tensor *sky_checkpoint_at(const sky_checkpoint *c, int i);              /* by name */
const sky_st_tensor *sky_checkpoint_find(const sky_checkpoint *c, const char *name); /* O(log n) */
const char          *sky_checkpoint_path(const sky_checkpoint *c);
/* Number of .safetensors files opened, and each one (in file name order). */
int                    sky_checkpoint_file_count(const sky_checkpoint *c);
const sky_safetensors *sky_checkpoint_file(const sky_checkpoint *c, int i);
void                   sky_checkpoint_close(sky_checkpoint *c); /* NULL ok */

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

#endif /* SKY_SAFETENSORS_H */
