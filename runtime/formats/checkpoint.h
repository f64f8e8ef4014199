/* runtime/formats/checkpoint.h — open a checkpoint, whatever its form, as one sorted list of tensors.
 *
 * The only module that knows both readers: safetensors.h for .safetensors files (single, sharded or a
 * directory of them) and pth.h for PyTorch .pth files. Tensors are returned as sky_st_tensor (tensor.h)
 * and stay valid until sky_checkpoint_close(). Index checks: reference vae-text-image-files.md §5.1.
 */
#ifndef SKY_CHECKPOINT_H
#define SKY_CHECKPOINT_H

#include "core/status.h"
#include "formats/safetensors.h"
#include "formats/tensor.h"

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

#endif /* SKY_CHECKPOINT_H */
