/* tests/fuzz/fuzz_checkpoint.c — libFuzzer target for the checkpoint opener (formats/safetensors.h:
 * sky_checkpoint_open on a folder): the *.safetensors.index.json file, the shards it names, and a folder of
 * shards without an index.
 *
 * Input: parts separated by "\n--shard--\n": part 0 is model.safetensors.index.json (not written when
 * empty), parts 1..4 the shards model-0000<i>-of-0000<n>.safetensors, each in fuzz_common.h's safetensors
 * form. The folder is opened, and so is the index file itself when there is one. Checked on top of
 * ASan/UBSan:
 *   - a failed open leaves no handle and its message starts with the scratch folder's path (every message
 *     names the folder, the index or a shard);
 *   - the folder and the index file give the same answer (both open with the same tensors, or both fail);
 *   - an open checkpoint: tensors in strictly increasing name order, each found by name, each from one of the
 *     files opened, every byte readable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "formats/checkpoint.h"
#include "formats/safetensors.h"
#include "fuzz_common.h"

#define SEP       "\n--shard--\n"
#define MAX_PARTS 5

static void check_open(const sky_checkpoint *c)
{
    int n = sky_checkpoint_count(c), nf = sky_checkpoint_file_count(c);
    if (nf < 1) abort();
    for (int i = 0; i < n; i++) {
        const sky_st_tensor *t = sky_checkpoint_at(c, i);
        if (!t->name[0] || sky_checkpoint_find(c, t->name) != t) abort();
        if (i > 0 && strcmp(sky_checkpoint_at(c, i - 1)->name, t->name) >= 0) abort();
        int from = 0;
        for (int k = 0; k < nf && !from; k++)
            from = strcmp(sky_safetensors_path(sky_checkpoint_file(c, k)), t->file) == 0;
        if (!from) abort();
        fz_touch(t->data, t->nbytes);
    }
}

/* Open path; returns the tensor count, or -1 when the open fails (checked as above). */
static int open_one(const char *path, const char *dir)
{
    sky_checkpoint *c = NULL;
    sky_err         err = {{0}};
    if (sky_checkpoint_open(&c, path, &err) != SKY_OK) {
        if (c) abort();
        fz_check_err(&err, dir, "sky_checkpoint_open");
        return -1;
    }
    if (strcmp(sky_checkpoint_path(c), path) != 0) abort();
    check_open(c);
    fz_report("sky_checkpoint_open", NULL);
    int n = sky_checkpoint_count(c);
    sky_checkpoint_close(c);
    return n;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    fz_part     parts[MAX_PARTS];
    const char *dir = fz_dir();
    int         np = fz_split(data, size, SEP, sizeof SEP - 1, parts, MAX_PARTS);
    char        path[512], name[64];
    for (int i = 1; i < np; i++) {
        snprintf(name, sizeof name, "model-%05d-of-%05d.safetensors", i, np - 1);
        fz_write_safetensors(path, sizeof path, name, parts[i].p, parts[i].n);
    }
    int have_index = parts[0].n > 0;
    if (have_index) fz_write(path, sizeof path, "model.safetensors.index.json", parts[0].p, parts[0].n);
    int by_dir = open_one(dir, dir);
    if (have_index && open_one(path, dir) != by_dir) abort();
    return 0;
}
