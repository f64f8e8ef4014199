/* runtime/formats/safetensors.h — read-only view of one .safetensors file through mmap.
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
 *
 * Opening a checkpoint (shards, directories, .pth) is checkpoint.h's job; writing one is
 * safetensors_write.h's.
 */
#ifndef SKY_SAFETENSORS_H
#define SKY_SAFETENSORS_H

#include "core/status.h"
#include "formats/tensor.h"

/* Upper bound on the header length N (the reference reader's MAX_HEADER_SIZE). */
#define SKY_ST_MAX_HEADER 100000000ull

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

#endif /* SKY_SAFETENSORS_H */
