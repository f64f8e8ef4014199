/* runtime/formats/checkpoint.c — open a checkpoint: one .safetensors file, a sharded index, a directory,
 * or a .pth file (checkpoint.h).
 *
 * Index checks: reference vae-text-image-files.md §5.1 "Sharded checkpoints". Every error message
 * starts with the path it is about (the checkpoint, the index or the shard).
 */
#include "formats/checkpoint.h"

#include "core/fs.h"
#include "core/json.h"
#include "core/str.h"
#include "formats/pth.h"

#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

typedef unsigned long long ull; /* for printing u64 values with %llu */

struct sky_checkpoint {
    char                 *path;
    sky_safetensors     **files; /* in file name order */
    int                   n_files;
    sky_pth              *pth; /* a PyTorch .pth checkpoint instead of safetensors files */
    const sky_st_tensor **all; /* every tensor of every file, sorted by name */
    int                   count;
};

/* Pointer-to-tensor order: name, then file path (deterministic duplicate messages). */
static int ptr_by_name(const void *a, const void *b)
{
    const sky_st_tensor *x = *(const sky_st_tensor *const *)a, *y = *(const sky_st_tensor *const *)b;
    int                  c = strcmp(x->name, y->name);
    return c != 0 ? c : strcmp(x->file, y->file);
}

/* Open one more file into c->files (the array has room; see the callers). */
static sky_status ckpt_add_file(sky_checkpoint *c, const char *path, sky_err *err)
{
    sky_safetensors *f;
    if (sky_safetensors_open(&f, path, err) != SKY_OK) return SKY_ERR;
    c->files[c->n_files++] = f;
    return SKY_OK;
}

/* Gather every file's tensors into c->all sorted by name; a name twice is an error. */
static sky_status ckpt_merge(sky_checkpoint *c, sky_err *err)
{
    size_t total = 0;
    for (int i = 0; i < c->n_files; i++) total += (size_t)sky_safetensors_count(c->files[i]); /* each < INT_MAX */
    if (total > INT_MAX) return sky_fail(err, "%s: %zu tensors is too many", c->path, total);
    c->all = malloc((total ? total : 1) * sizeof *c->all);
    if (c->all == NULL) return sky_fail(err, "%s: out of memory for %zu tensors", c->path, total);
    for (int i = 0; i < c->n_files; i++) {
        for (int j = 0; j < sky_safetensors_count(c->files[i]); j++)
            c->all[c->count++] = sky_safetensors_at(c->files[i], j);
    }
    qsort(c->all, total, sizeof *c->all, ptr_by_name);
    for (int i = 1; i < c->count; i++) {
        if (strcmp(c->all[i - 1]->name, c->all[i]->name) == 0) {
            return sky_fail(err, "%s: tensor '%s' is in both %s and %s", c->path, c->all[i]->name, c->all[i - 1]->file,
                            c->all[i]->file);
        }
    }
    return SKY_OK;
}

/* One weight_map line: tensor name -> shard file name. */
typedef struct wm_entry {
    const char *name;
    const char *shard;
} wm_entry;

static int wm_by_shard(const void *a, const void *b)
{
    const wm_entry *x = a, *y = b;
    int             c = strcmp(x->shard, y->shard);
    return c != 0 ? c : strcmp(x->name, y->name);
}

static int wm_by_name(const void *a, const void *b)
{
    return strcmp(((const wm_entry *)a)->name, ((const wm_entry *)b)->name);
}

/* 1 if s (len bytes) is a plain file name: non-empty, no NUL, '/', '\\' or "..". */
static int plain_file_name(const char *s, size_t len)
{
    return len > 0 && strlen(s) == len && strchr(s, '/') == NULL && strchr(s, '\\') == NULL && strstr(s, "..") == NULL;
}

/* Check the index against the shards it names (reference §5.1 "Sharded checkpoints"). */
static sky_status ckpt_check_index(sky_checkpoint *c, const char *ipath, wm_entry *wm, size_t n, const sky_json *total,
                                   sky_err *err)
{
    qsort(wm, n, sizeof *wm, wm_by_name);
    uint64_t sum = 0;
    for (int i = 0; i < c->count; i++) {
        const sky_st_tensor *t = c->all[i];
        wm_entry             key = {t->name, NULL};
        const wm_entry      *w = bsearch(&key, wm, n, sizeof *wm, wm_by_name);
        if (w == NULL) {
            return sky_fail(err, "%s: tensor '%s' in %s is not listed in the index", ipath, t->name, t->file);
        }
        if (strcmp(w->shard, sky_fs_base_name(t->file)) != 0) {
            return sky_fail(err, "%s: tensor '%s' is listed for shard '%s' but is in %s", ipath, t->name, w->shard,
                            t->file);
        }
        if (sum > UINT64_MAX - t->nbytes) return sky_fail(err, "%s: tensor bytes overflow 64 bits", ipath);
        sum += t->nbytes;
    }
    for (size_t i = 0; i < n; i++) {
        if (sky_checkpoint_find(c, wm[i].name) == NULL) {
            return sky_fail(err, "%s: tensor '%s' is listed for shard '%s' but no shard holds it", ipath, wm[i].name,
                            wm[i].shard);
        }
    }
    if (total != NULL && total->u64 != sum) {
        return sky_fail(err, "%s: metadata.total_size is %llu but the tensors hold %llu bytes", ipath, (ull)total->u64,
                        (ull)sum);
    }
    return SKY_OK;
}

/* Open a sharded checkpoint from its index file ipath; shards live in dir. */
static sky_status ckpt_open_index(sky_checkpoint *c, const char *dir, const char *ipath, sky_err *err)
{
    char         *text = NULL;
    size_t        len = 0;
    sky_json_doc *doc = NULL;
    wm_entry     *wm = NULL;
    sky_err       jerr;
    sky_status    st = SKY_ERR;
    if (sky_fs_read_small(ipath, SKY_ST_MAX_HEADER, "an index file", &text, &len, err) != SKY_OK) return SKY_ERR;
    if (sky_json_parse(&doc, text, len, NULL, &jerr) != SKY_OK) {
        sky_fail(err, "%s: not valid JSON: %s", ipath, jerr.msg);
        goto done;
    }
    const sky_json *root = sky_json_root(doc);
    const sky_json *map = sky_json_get(root, "weight_map");
    const sky_json *meta = sky_json_get(root, "metadata");
    const sky_json *total = sky_json_get(meta, "total_size");
    if (map == NULL || map->type != SKY_JSON_OBJECT) {
        sky_fail(err, "%s: expected a JSON object with a \"weight_map\" object", ipath);
        goto done;
    }
    if (meta != NULL && meta->type != SKY_JSON_OBJECT) {
        sky_fail(err, "%s: \"metadata\" is a %s, expected an object", ipath, sky_json_type_name(meta->type));
        goto done;
    }
    if (total != NULL && !total->is_u64) {
        sky_fail(err, "%s: metadata.total_size must be a non-negative integer", ipath);
        goto done;
    }
    /* weight_map lines, checked, then grouped by shard */
    size_t n = map->count;
    if ((wm = malloc((n ? n : 1) * sizeof *wm)) == NULL || (c->files = calloc(n ? n : 1, sizeof *c->files)) == NULL) {
        sky_fail(err, "%s: out of memory", ipath);
        goto done;
    }
    for (size_t i = 0; i < n; i++) {
        const sky_json *v = map->items[i];
        if (v->type != SKY_JSON_STRING) {
            sky_fail(err, "%s: weight_map['%s'] is a %s, expected a shard file name", ipath, v->key,
                     sky_json_type_name(v->type));
            goto done;
        }
        if (v->key_len == 0 || strlen(v->key) != v->key_len) {
            sky_fail(err, "%s: weight_map has an empty tensor name or one containing NUL ('%s')", ipath, v->key);
            goto done;
        }
        if (!plain_file_name(v->str, v->len)) {
            sky_fail(err, "%s: weight_map['%s'] = '%s' is not a plain file name (no '/', '\\' or '..')", ipath, v->key,
                     v->str);
            goto done;
        }
        wm[i].name = v->key;
        wm[i].shard = v->str;
    }
    qsort(wm, n, sizeof *wm, wm_by_shard);
    for (size_t i = 0; i < n; i++) {
        if (i > 0 && strcmp(wm[i].shard, wm[i - 1].shard) == 0) continue;
        char       *spath = sky_fs_join(dir, wm[i].shard);
        struct stat sb;
        if (spath == NULL) {
            sky_fail(err, "%s: out of memory", ipath);
            goto done;
        }
        if (stat(spath, &sb) != 0) {
            sky_fail(err, "%s: shard '%s' (listed for tensor '%s') does not exist: %s", ipath, wm[i].shard, wm[i].name,
                     spath);
            free(spath);
            goto done;
        }
        sky_status fs = ckpt_add_file(c, spath, err);
        free(spath);
        if (fs != SKY_OK) goto done;
    }
    if (ckpt_merge(c, err) == SKY_OK && ckpt_check_index(c, ipath, wm, n, total, err) == SKY_OK) st = SKY_OK;
done:
    free(wm);
    sky_json_free(doc);
    free(text);
    return st;
}

/* Open a directory: its one index, or else every *.safetensors file in it. */
static sky_status ckpt_open_dir(sky_checkpoint *c, sky_err *err)
{
    char     **idx = NULL, **st_names = NULL;
    int        n_idx = 0, n_st = 0;
    sky_status st = SKY_ERR;
    if (sky_fs_list_dir(c->path, ".safetensors.index.json", &idx, &n_idx, err) != SKY_OK ||
        sky_fs_list_dir(c->path, ".safetensors", &st_names, &n_st, err) != SKY_OK) {
        goto done;
    }
    if (n_idx > 1) {
        char   list[1024];
        size_t used = 0;
        for (int i = 0; i < n_idx && used < sizeof list; i++) {
            used += (size_t)snprintf(list + used, sizeof list - used, "%s%s", i ? ", " : "", idx[i]);
        }
        sky_fail(err, "%s: %d index files (%s); expected at most one; move the others away", c->path, n_idx, list);
    } else if (n_idx == 1) {
        char *ipath = sky_fs_join(c->path, idx[0]);
        if (ipath == NULL)
            sky_fail(err, "%s: out of memory", c->path);
        else
            st = ckpt_open_index(c, c->path, ipath, err);
        free(ipath);
    } else if (n_st == 0) {
        sky_fail(err, "%s: no *.safetensors files (and no *.safetensors.index.json) in this directory", c->path);
    } else if ((c->files = calloc((size_t)n_st, sizeof *c->files)) == NULL) {
        sky_fail(err, "%s: out of memory", c->path);
    } else {
        st = SKY_OK;
        for (int i = 0; i < n_st && st == SKY_OK; i++) {
            char *fpath = sky_fs_join(c->path, st_names[i]);
            st = fpath ? ckpt_add_file(c, fpath, err) : sky_fail(err, "%s: out of memory", c->path);
            free(fpath);
        }
        if (st == SKY_OK) st = ckpt_merge(c, err);
    }
done:
    sky_fs_free_names(idx, n_idx);
    sky_fs_free_names(st_names, n_st);
    return st;
}

sky_status sky_checkpoint_open(sky_checkpoint **out, const char *path, sky_err *err)
{
    *out = NULL;
    struct stat sb;
    if (stat(path, &sb) != 0) return sky_fail(err, "%s: cannot open: %s", path, strerror(errno));
    sky_checkpoint *c = calloc(1, sizeof *c);
    if (c == NULL || (c->path = sky_str_dup(path)) == NULL) {
        free(c);
        return sky_fail(err, "%s: out of memory", path);
    }
    sky_status st;
    if (S_ISDIR(sb.st_mode)) {
        st = ckpt_open_dir(c, err);
    } else if (sky_str_ends_with(path, ".pth")) {
        /* The original repos' VAE, T5 and CLIP files (pth.h: zip + restricted unpickler). */
        st = sky_pth_open(&c->pth, path, err);
        if (st == SKY_OK) {
            c->count = sky_pth_count(c->pth);
            c->all = calloc((size_t)(c->count ? c->count : 1), sizeof *c->all);
            if (c->all == NULL) st = sky_fail(err, "%s: out of memory", path);
            for (int i = 0; c->all && i < c->count; i++) c->all[i] = sky_pth_at(c->pth, i); /* sorted by name */
        }
    } else if (sky_str_ends_with(path, ".index.json")) {
        char *dir = sky_str_dup(path);
        char *slash = dir ? strrchr(dir, '/') : NULL;
        if (slash != NULL) slash[slash == dir] = '\0'; /* "/x.index.json" -> "/" */
        st = dir ? ckpt_open_index(c, slash ? dir : ".", path, err) : sky_fail(err, "%s: out of memory", path);
        free(dir);
    } else if ((c->files = calloc(1, sizeof *c->files)) == NULL) {
        st = sky_fail(err, "%s: out of memory", path);
    } else {
        st = ckpt_add_file(c, path, err);
        if (st == SKY_OK) st = ckpt_merge(c, err);
    }
    if (st != SKY_OK) {
        sky_checkpoint_close(c);
        return SKY_ERR;
    }
    *out = c;
    return SKY_OK;
}

int sky_checkpoint_count(const sky_checkpoint *c) { return c->count; }

const sky_st_tensor *sky_checkpoint_at(const sky_checkpoint *c, int i)
{
    SKY_ASSERT(i >= 0 && i < c->count);
    return c->all[i];
}

/* Compare a name with a tensor pointer, for bsearch. */
static int name_vs_ptr(const void *key, const void *elem)
{
    return strcmp(key, (*(const sky_st_tensor *const *)elem)->name);
}

const sky_st_tensor *sky_checkpoint_find(const sky_checkpoint *c, const char *name)
{
    const sky_st_tensor *const *p = bsearch(name, c->all, (size_t)c->count, sizeof *c->all, name_vs_ptr);
    return p ? *p : NULL;
}

const char *sky_checkpoint_path(const sky_checkpoint *c) { return c->path; }

int sky_checkpoint_file_count(const sky_checkpoint *c) { return c->n_files; }

const sky_safetensors *sky_checkpoint_file(const sky_checkpoint *c, int i)
{
    SKY_ASSERT(i >= 0 && i < c->n_files);
    return c->files[i];
}

void sky_checkpoint_close(sky_checkpoint *c)
{
    if (c == NULL) return;
    for (int i = 0; i < c->n_files; i++) sky_safetensors_close(c->files[i]);
    sky_pth_close(c->pth);
    free(c->files);
    free(c->all);
    free(c->path);
    free(c);
}
