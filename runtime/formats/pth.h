/* runtime/formats/pth.h — read-only view of a PyTorch .pth state dict (torch.save zip format)
 * through mmap, without running any pickle code.
 *
 * Format and the validation done here: reference vae-text-image-files.md §5.2; the
 * hardening rules are those of §5.1 and conventions-and-reliability.md §3.1-3.2.
 * sky_pth_open() checks the whole file before returning:
 *   - the container (zip.h): a ZIP of STORED entries only, ZIP64 when present, local
 *     headers, ranges, no overlaps, unique names; all entries under one folder
 *     "<prefix>/" whatever the prefix is ("archive", the saved file's stem, ...)
 *   - refused with a message saying why: a legacy (pre-1.6, non-zip) torch.save file, a
 *     TorchScript archive (constants.pkl, code/), byteorder other than "little"
 *   - "<prefix>/data.pkl" present, at most SKY_PTH_MAX_PICKLE bytes, CRC-32 correct
 *   - the pickle, run by a restricted stack machine that only builds values: opcodes of
 *     protocol 2 (plus the protocol 4 framing/short-string/memo opcodes); GLOBALs only
 *     from an allow-list (collections.OrderedDict, torch._utils._rebuild_tensor_v2,
 *     torch._utils._rebuild_tensor_v3 (torch writes it for float8/uint16..64),
 *     torch._utils._rebuild_parameter, torch.<Type>Storage, torch.UntypedStorage, and
 *     torch.<dtype> as v3's argument; the table is ALLOWED in pickle.c); everything else
 *     is refused naming the opcode or the global. REDUCE and BUILD apply only to these.
 *     Caps (pickle.h): values built, stack depth, MARK nesting, memo size, string length
 *     (so memory stays within a small multiple of the pickle's size); memo indices
 *     checked; ints exact (LONG1 up to 8 bytes)
 *   - persistent ids ('storage', <Type>Storage, key, location, numel): the record
 *     "<prefix>/data/<key>" exists and holds exactly numel x element size bytes, and
 *     every reference to one key agrees on the dtype (shared storages are fine)
 *   - each tensor (_rebuild_tensor_v2/_v3): sizes >= 0 and strides >= 0, rank <= SKY_MAX_DIMS,
 *     element count and byte size without overflow, storage offset >= 0, the view inside
 *     its storage, and strides row-major contiguous by torch's rule (dims of size 1 and
 *     empty tensors may have any stride); a non-contiguous view is refused (gathering it
 *     is the caller's job: re-save with .contiguous())
 *   - the object: a dict / OrderedDict of name -> tensor, or a dict holding exactly one
 *     such dict among other non-tensor values ({"state_dict": {...}, "epoch": 3}); names
 *     non-empty valid UTF-8 without NUL, unique. Anything else (modules, optimizer state,
 *     nested tensors) is refused with a message that names the key.
 * Names are kept as stored (a "module." prefix is not stripped). Every error message
 * starts with the file's path.
 *
 * Tensors are returned as sky_st_tensor (tensor.h), so a weights binder treats
 * both formats alike. Nothing is copied: data points into the read-only mapping, at the
 * storage record plus storage_offset x element size, and is NOT aligned in general
 * (storage records are 64-byte aligned, views into them need not be). Several tensors
 * may share bytes (views of one storage). Pointers stay valid until _close().
 */
#ifndef SKY_PTH_H
#define SKY_PTH_H

#include "core/status.h"
#include "formats/tensor.h"

/* Largest data.pkl read (~100 bytes per tensor: real state dicts are well below). The caps on what the
 * pickle may build (values, stack, MARKs, memo, string length) are SKY_PICKLE_MAX_* in pickle.h. */
#define SKY_PTH_MAX_PICKLE ((size_t)16 << 20)

typedef struct sky_pth sky_pth; /* opaque */

/* Map path read-only and validate everything above. On success *out owns the mapping
 * (the fd is already closed). On error returns SKY_ERR, *out == NULL, and err->msg
 * starts with the path, e.g. "w.pth: GLOBAL 'os system' is not allowed ...". */
sky_status sky_pth_open(sky_pth **out, const char *path, sky_err *err);

/* The same on size bytes at buf (not copied: buf must outlive the handle); name is used
 * for messages and sky_st_tensor.file. For tests and fuzzing. */
sky_status sky_pth_open_mem(sky_pth **out, const void *buf, size_t size, const char *name, sky_err *err);

/* Number of tensors (0 for an empty state dict). */
int sky_pth_count(const sky_pth *f);

/* Tensor i in [0, count), in strcmp() order of names. */
const sky_st_tensor *sky_pth_at(const sky_pth *f, int i);

/* Tensor named name, or NULL. Binary search, O(log n). */
const sky_st_tensor *sky_pth_find(const sky_pth *f, const char *name);

/* Key of the wrapping dict the tensors came from ("state_dict"), or NULL when the
 * top-level object is the state dict itself. */
const char *sky_pth_wrapper(const sky_pth *f);

/* Path (or name) the file was opened with. */
const char *sky_pth_path(const sky_pth *f);

/* Unmap and free. NULL is fine. */
void sky_pth_close(sky_pth *f);

#endif /* SKY_PTH_H */
