/* runtime/models/lora.c — LoRA files mapped to a weights table and merged as the weights load (lora.h).
 *
 * sky_lora_open reads each file's keys (names only: the tensors stay in the mapping), splits every key into
 * a module path and a role (down, up, bias, alpha, diff ...), groups the keys of one module, finds the table
 * entry each group changes and checks the shapes. The deltas are then sorted by table entry, so that
 * sky_lora_apply finds an entry's deltas by index when sky_weights_read converts it.
 */
#include "models/lora.h"

#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "core/json.h"
#include "formats/safetensors.h"
#include "formats/safetensors_write.h"
#include "models/fp8_quant.h"

/* What a key is to its module. */
typedef enum role { ROLE_DOWN, ROLE_UP, ROLE_BIAS, ROLE_ALPHA, ROLE_DIFF, ROLE_DIFF_B, ROLE_DIFF_M, ROLE_COUNT } role;

static const struct {
    const char *suffix;
    role        role;
} suffixes[] = {
    {".lora_down.weight", ROLE_DOWN},
    {".lora_A.weight", ROLE_DOWN},
    {".lora_A.default.weight", ROLE_DOWN},
    {".lora_up.weight", ROLE_UP},
    {".lora_B.weight", ROLE_UP},
    {".lora_B.default.weight", ROLE_UP},
    {".lora_up.bias", ROLE_BIAS},
    {".lora_B.bias", ROLE_BIAS},
    {".lora_B.default.bias", ROLE_BIAS},
    {".alpha", ROLE_ALPHA},
    {".diff_b", ROLE_DIFF_B},
    {".diff_m", ROLE_DIFF_M},
    {".diff", ROLE_DIFF},
};

/* Prefixes before the module path; lora_unet_ (kohya / musubi) writes the path with '_' for '.'. */
static const char *const prefixes[] = {"model.diffusion_model.", "diffusion_model.", "transformer.",
                                       "base_model.model.", "lora_unet_"};

/* One key of a file. */
typedef struct key {
    char                *module; /* module path (malloc'ed) */
    int                  underscored;
    role                 role;
    const sky_st_tensor *t;
} key;

/* One change to one table entry. */
typedef enum kind { KIND_LOW_RANK = 0, KIND_FULL = 1 } kind;
typedef struct delta {
    int                  entry, file;
    kind                 kind;
    int                  counts_low_rank; /* for the stats: a lora bias is a full delta of a low-rank pair */
    const sky_st_tensor *down, *up;       /* KIND_LOW_RANK: down [r, K...], up [N, r, 1...] */
    const sky_st_tensor *full;            /* KIND_FULL: the entry's element count */
    int64_t              rank;
    double               factor; /* SCALE * alpha / r, or SCALE */
} delta;

struct sky_lora {
    int                    n_files;
    sky_safetensors      **files;
    sky_lora_stats        *stats;
    const sky_weight_desc *table;
    int                    n_table;
    delta                 *deltas; /* sorted by (entry, file, kind) */
    int                    n_deltas, cap_deltas;
    int                   *first; /* [n_table + 1]: deltas of entry i are [first[i], first[i+1]) */
    int                    weights_changed;
};

/* ---- small helpers ------------------------------------------------------------------------ */

static int ends_with(const char *s, size_t n, const char *suffix)
{
    const size_t k = strlen(suffix);
    return n >= k && memcmp(s + n - k, suffix, k) == 0;
}

static const char *shape_fmt(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

static int64_t numel(int ndim, const int64_t *shape)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++) n *= shape[i];
    return n;
}

/* Shapes equal after dropping leading unit dims (modulation is [1, 6, C] in one layout's tools, [6, C] in
 * another's). */
static int same_shape(int na, const int64_t *a, int nb, const int64_t *b)
{
    for (; na > 0 && a[0] == 1; na--) a++;
    for (; nb > 0 && b[0] == 1; nb--) b++;
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* name == s, reading every '.' of name as '_' when underscored. */
static int name_is(const char *name, const char *s, int underscored)
{
    if (!underscored) return strcmp(name, s) == 0;
    for (; *name && *s; name++, s++)
        if ((*name == '.' ? '_' : *name) != *s) return 0;
    return *name == *s;
}

/* The table entry named `name` in either layout, or -1. */
static int find_entry(const sky_weight_desc *table, int n, const char *name, int underscored)
{
    for (int i = 0; i < n; i++) {
        if (name_is(table[i].name, name, underscored)) return i;
        if (strncmp(table[i].alias, "cat0:", 5) != 0 && name_is(table[i].alias, name, underscored)) return i;
    }
    return -1;
}

static int float_dtype(sky_dtype t)
{
    return t == SKY_DTYPE_F32 || t == SKY_DTYPE_BF16 || t == SKY_DTYPE_F16 || t == SKY_DTYPE_F64;
}

/* Element 0 of a float tensor as double. */
static sky_status scalar_of(const sky_st_tensor *t, double *out, sky_err *err)
{
    float v;
    if (sky_dtype_to_f32(&v, t->data, t->dtype, 1, err)) return SKY_ERR;
    *out = v;
    return SKY_OK;
}

/* ---- the PEFT config diffusers stores in __metadata__ ---------------------------------------- */

typedef struct peft_cfg {
    sky_json_doc   *doc;
    const sky_json *alpha;         /* lora_alpha (NULL: absent) */
    const sky_json *alpha_pattern; /* object pattern -> alpha (NULL: absent) */
    int             rslora;
} peft_cfg;

/* A member of the config, with or without diffusers' "transformer." prefix. */
static const sky_json *cfg_get(const sky_json *root, const char *name)
{
    char prefixed[128];
    snprintf(prefixed, sizeof prefixed, "transformer.%s", name);
    const sky_json *v = sky_json_get(root, name);
    return v ? v : sky_json_get(root, prefixed);
}

static sky_status peft_cfg_read(peft_cfg *c, const sky_safetensors *f, sky_err *err)
{
    memset(c, 0, sizeof *c);
    const char *text = sky_safetensors_metadata(f, "lora_adapter_metadata");
    if (!text) return SKY_OK;
    sky_err jerr;
    if (sky_json_parse(&c->doc, text, strlen(text), NULL, &jerr))
        return sky_fail(err, "%s: __metadata__ lora_adapter_metadata is not valid JSON (%s)", sky_safetensors_path(f),
                        jerr.msg);
    const sky_json *root = sky_json_root(c->doc), *dora = cfg_get(root, "use_dora"), *rs = cfg_get(root, "use_rslora");
    if (dora && dora->type == SKY_JSON_BOOL && dora->boolean)
        return sky_fail(err, "%s: a DoRA adapter (use_dora in lora_adapter_metadata): not supported",
                        sky_safetensors_path(f));
    c->rslora = rs && rs->type == SKY_JSON_BOOL && rs->boolean;
    c->alpha = cfg_get(root, "lora_alpha");
    if (c->alpha && c->alpha->type != SKY_JSON_NUMBER) c->alpha = NULL;
    c->alpha_pattern = cfg_get(root, "alpha_pattern");
    if (c->alpha_pattern && c->alpha_pattern->type != SKY_JSON_OBJECT) c->alpha_pattern = NULL;
    return SKY_OK;
}

/* alpha of `module` from the config (PEFT: the first pattern that is the module path or a '.'-separated tail
 * of it, read literally), or 0 when the config does not give one. */
static double peft_alpha(const peft_cfg *c, const char *module)
{
    if (c->alpha_pattern)
        for (size_t i = 0; i < c->alpha_pattern->count; i++) {
            const sky_json *it = c->alpha_pattern->items[i];
            const int       anchored = it->key[0] == '^'; /* PEFT's re.match(r"(.*\.)?(key)$"): '^' = from the start */
            const char     *pat = it->key + anchored;
            if (strncmp(pat, "transformer.", 12) == 0) pat += 12;
            const size_t lm = strlen(module), lp = strlen(pat);
            const int    match = strcmp(module, pat) == 0 || (!anchored && lm > lp && module[lm - lp - 1] == '.' &&
                                                           strcmp(module + lm - lp, pat) == 0);
            if (match && it->type == SKY_JSON_NUMBER) return strtod(it->str, NULL);
        }
    return c->alpha ? strtod(c->alpha->str, NULL) : 0.0;
}

/* ---- reading one file --------------------------------------------------------------------- */

static int key_cmp(const void *a, const void *b)
{
    const key *x = a, *y = b;
    const int  c = strcmp(x->module, y->module);
    return c ? c : x->underscored - y->underscored;
}

/* Split a file's names into keys. Unknown names are counted in stats (skip_unknown) or refused. */
static sky_status read_keys(const sky_safetensors *f, int skip_unknown, key **out, int *n_out, sky_lora_stats *stats,
                            sky_err *err)
{
    const char *path = sky_safetensors_path(f);
    const int   count = sky_safetensors_count(f);
    key        *keys = calloc((size_t)(count ? count : 1), sizeof *keys);
    int         n = 0;
    if (!keys) return sky_fail(err, "out of host memory");
    for (int i = 0; i < count; i++) {
        const sky_st_tensor *t = sky_safetensors_at(f, i);
        const char          *name = t->name;
        if (strstr(name, "dora_scale") || strstr(name, "lora_magnitude_vector")) {
            sky_fail(err, "%s: '%s' is a DoRA key: DoRA is not supported", path, name);
            goto fail;
        }
        int underscored = 0;
        for (size_t p = 0; p < sizeof prefixes / sizeof prefixes[0]; p++)
            if (strncmp(name, prefixes[p], strlen(prefixes[p])) == 0) {
                underscored = strcmp(prefixes[p], "lora_unet_") == 0;
                name += strlen(prefixes[p]);
                break;
            }
        const size_t len = strlen(name);
        int          s = -1;
        for (size_t k = 0; k < sizeof suffixes / sizeof suffixes[0] && s < 0; k++)
            if (ends_with(name, len, suffixes[k].suffix) && len > strlen(suffixes[k].suffix)) s = (int)k;
        if (s < 0) {
            if (!skip_unknown) {
                sky_fail(err,
                         "%s: key '%s' is not a LoRA key this engine knows (.lora_down/.lora_up/.lora_A/.lora_B "
                         ".weight, .alpha, .diff, .diff_b, .diff_m); --lora_unknown_keys warn skips such keys",
                         path, t->name);
                goto fail;
            }
            if (!stats->skipped++) snprintf(stats->first_skipped, sizeof stats->first_skipped, "%s", t->name);
            continue;
        }
        if (!float_dtype(t->dtype)) {
            sky_fail(err, "%s: '%s' has dtype %s; LoRA tensors must be F32, BF16, F16 or F64", path, t->name,
                     sky_dtype_name(t->dtype));
            goto fail;
        }
        const size_t mlen = len - strlen(suffixes[s].suffix);
        if (!(keys[n].module = malloc(mlen + 1))) {
            sky_fail(err, "out of host memory");
            goto fail;
        }
        memcpy(keys[n].module, name, mlen);
        keys[n].module[mlen] = 0;
        keys[n].underscored = underscored;
        keys[n].role = suffixes[s].role;
        keys[n].t = t;
        n++;
    }
    qsort(keys, (size_t)n, sizeof *keys, key_cmp);
    *out = keys;
    *n_out = n;
    return SKY_OK;
fail:
    for (int i = 0; i < n; i++) free(keys[i].module);
    free(keys);
    return SKY_ERR;
}

static sky_status push_delta(sky_lora *l, const delta *d, sky_err *err)
{
    if (l->n_deltas == l->cap_deltas) {
        const int cap = l->cap_deltas ? 2 * l->cap_deltas : 64;
        delta    *grown = realloc(l->deltas, (size_t)cap * sizeof *grown);
        if (!grown) return sky_fail(err, "out of host memory");
        l->deltas = grown;
        l->cap_deltas = cap;
    }
    l->deltas[l->n_deltas++] = *d;
    return SKY_OK;
}

/* The table entry `module` + `suffix` names (in the key's spelling), or -1 with *tried set. */
static int target_of(const sky_lora *l, const key *k, const char *suffix, char *tried, size_t size)
{
    char name[1024];
    snprintf(name, sizeof name, "%s%s", k->module, suffix);
    if (k->underscored)
        for (char *c = name + strlen(k->module); *c; c++)
            if (*c == '.') *c = '_';
    if (!tried[0]) snprintf(tried, size, "%s", name);
    return find_entry(l->table, l->n_table, name, k->underscored);
}

/* Message for a key that matches no weight (or count it when skipping). */
static sky_status unknown_key(const char *path, const key *k, const char *tried, int skip_unknown, const char *who,
                              sky_lora_stats *stats, sky_err *err)
{
    if (skip_unknown) {
        if (!stats->skipped++) snprintf(stats->first_skipped, sizeof stats->first_skipped, "%s", k->t->name);
        return SKY_OK;
    }
    return sky_fail(err,
                    "%s: key '%s' matches no weight of %s (looked for '%s' in the original and the diffusers "
                    "names); is the LoRA for another model? (--lora_unknown_keys warn skips such keys)",
                    path, k->t->name, who, tried);
}

/* A low-rank pair of one module against its table entry w. */
static sky_status check_pair(const char *path, const key *down, const key *up, const sky_weight_desc *w,
                             const char *who, int64_t *rank, sky_err *err)
{
    const sky_st_tensor *d = down->t, *u = up->t;
    char                 a[128], b[128], c[128];
    const int64_t        r = d->ndim >= 1 ? d->shape[0] : 0;
    int ok = d->ndim >= 2 && u->ndim >= 2 && r >= 1 && u->shape[1] == r && w->ndim >= 2 && u->shape[0] == w->shape[0] &&
             numel(d->ndim - 1, d->shape + 1) == numel(w->ndim - 1, w->shape + 1);
    for (int i = 2; ok && i < u->ndim; i++) ok = u->shape[i] == 1;
    if (!ok)
        return sky_fail(err,
                        "%s: '%s' %s and '%s' %s do not fit weight '%s' %s of %s (down [r, in], up [out, r]); is "
                        "the LoRA for another model size?",
                        path, d->name, shape_fmt(a, sizeof a, d->ndim, d->shape), u->name,
                        shape_fmt(b, sizeof b, u->ndim, u->shape), w->name, shape_fmt(c, sizeof c, w->ndim, w->shape),
                        who);
    *rank = r;
    return SKY_OK;
}

/* A full delta (diff, diff_b, diff_m, lora bias) against table entry w. */
static sky_status check_full(const char *path, const sky_st_tensor *t, const sky_weight_desc *w, const char *who,
                             sky_err *err)
{
    char a[128], b[128];
    if (same_shape(t->ndim, t->shape, w->ndim, w->shape)) return SKY_OK;
    return sky_fail(err, "%s: '%s' has shape %s but weight '%s' of %s is %s; is the LoRA for another model size?", path,
                    t->name, shape_fmt(a, sizeof a, t->ndim, t->shape), w->name, who,
                    shape_fmt(b, sizeof b, w->ndim, w->shape));
}

/* The keys of one module (k[0..n), all naming the same module path) as deltas of file f. */
static sky_status module_deltas(sky_lora *l, int f, const key *k, int n, const peft_cfg *cfg, double scale,
                                int skip_unknown, const char *who, sky_err *err)
{
    const char *path = sky_safetensors_path(l->files[f]);
    const key  *by[ROLE_COUNT] = {0};
    for (int i = 0; i < n; i++) {
        if (by[k[i].role])
            return sky_fail(err, "%s: '%s' and '%s' give the same tensor of one module twice", path,
                            by[k[i].role]->t->name, k[i].t->name);
        by[k[i].role] = &k[i];
    }
    const key *down = by[ROLE_DOWN], *up = by[ROLE_UP];
    if ((down != NULL) != (up != NULL) || (!down && (by[ROLE_ALPHA] || by[ROLE_BIAS]))) {
        const key *have = down ? down : up ? up : by[ROLE_ALPHA] ? by[ROLE_ALPHA] : by[ROLE_BIAS];
        return sky_fail(err, "%s: '%s' has no %s: a low-rank delta needs both lora_down (lora_A) and lora_up (lora_B)",
                        path, have->t->name, down ? "lora_up (lora_B) beside it" : "lora_down (lora_A) beside it");
    }
    sky_lora_stats *st = &l->stats[f];
    char            tried[1024] = "";
    const int       e = down ? target_of(l, down, ".weight", tried, sizeof tried) : -1;
    if (down && e < 0) {
        if (unknown_key(path, down, tried, skip_unknown, who, st, err)) return SKY_ERR;
        st->skipped += 1 + (by[ROLE_ALPHA] != NULL) + (by[ROLE_BIAS] != NULL); /* its up, alpha and bias too */
    } else if (down) {
        int64_t r = 0;
        if (check_pair(path, down, up, &l->table[e], who, &r, err)) return SKY_ERR;
        double alpha = (double)r;
        if (by[ROLE_ALPHA]) {
            if (numel(by[ROLE_ALPHA]->t->ndim, by[ROLE_ALPHA]->t->shape) != 1 ||
                scalar_of(by[ROLE_ALPHA]->t, &alpha, err) || !isfinite(alpha))
                return sky_fail(err, "%s: '%s' must be one finite number (the LoRA alpha)", path,
                                by[ROLE_ALPHA]->t->name);
        } else if (cfg->doc) {
            const double a = peft_alpha(cfg, down->module);
            if (a != 0.0) alpha = a;
        }
        const double factor = scale * (alpha / (cfg->rslora && !by[ROLE_ALPHA] ? sqrt((double)r) : (double)r));
        delta        d = {e, f, KIND_LOW_RANK, 1, down->t, up->t, NULL, r, factor};
        if (push_delta(l, &d, err)) return SKY_ERR;
        if (by[ROLE_BIAS]) {
            tried[0] = 0;
            const int eb = target_of(l, by[ROLE_BIAS], ".bias", tried, sizeof tried);
            if (eb < 0) {
                if (unknown_key(path, by[ROLE_BIAS], tried, skip_unknown, who, st, err)) return SKY_ERR;
            } else {
                if (check_full(path, by[ROLE_BIAS]->t, &l->table[eb], who, err)) return SKY_ERR;
                delta b = {eb, f, KIND_FULL, 1, NULL, NULL, by[ROLE_BIAS]->t, 0, factor};
                if (push_delta(l, &b, err)) return SKY_ERR;
            }
        }
    }
    /* Full deltas: diff on the module's weight (or on the module itself: modulation), diff_b on its bias,
     * diff_m on its modulation. */
    const struct {
        role        r;
        const char *suffix[2];
    } fulls[] = {{ROLE_DIFF, {".weight", ""}}, {ROLE_DIFF_B, {".bias", NULL}}, {ROLE_DIFF_M, {".modulation", NULL}}};
    for (size_t i = 0; i < sizeof fulls / sizeof fulls[0]; i++) {
        const key *fk = by[fulls[i].r];
        if (!fk) continue;
        tried[0] = 0;
        int e = target_of(l, fk, fulls[i].suffix[0], tried, sizeof tried);
        if (e < 0 && fulls[i].suffix[1]) e = target_of(l, fk, fulls[i].suffix[1], tried, sizeof tried);
        if (e < 0) {
            if (unknown_key(path, fk, tried, skip_unknown, who, st, err)) return SKY_ERR;
            continue;
        }
        if (check_full(path, fk->t, &l->table[e], who, err)) return SKY_ERR;
        delta d = {e, f, KIND_FULL, 0, NULL, NULL, fk->t, 0, scale};
        if (push_delta(l, &d, err)) return SKY_ERR;
    }
    return SKY_OK;
}

static sky_status read_file(sky_lora *l, int f, double scale, int skip_unknown, const char *who, sky_err *err)
{
    const sky_safetensors *file = l->files[f];
    key                   *keys = NULL;
    int                    n = 0;
    peft_cfg               cfg;
    if (peft_cfg_read(&cfg, file, err)) {
        sky_json_free(cfg.doc);
        return SKY_ERR;
    }
    sky_status st = read_keys(file, skip_unknown, &keys, &n, &l->stats[f], err);
    const int  before = l->n_deltas;
    for (int i = 0; st == SKY_OK && i < n;) {
        int j = i + 1;
        while (j < n && key_cmp(&keys[i], &keys[j]) == 0) j++;
        st = module_deltas(l, f, keys + i, j - i, &cfg, scale, skip_unknown, who, err);
        i = j;
    }
    if (st == SKY_OK && l->n_deltas == before)
        st = sky_fail(err,
                      "%s: none of its %d keys changes a weight of %s; is it a LoRA for another model (or not a "
                      "LoRA)?",
                      sky_safetensors_path(file), sky_safetensors_count(file), who);
    for (int i = 0; i < n; i++) free(keys[i].module);
    free(keys);
    sky_json_free(cfg.doc);
    return st;
}

static int delta_cmp(const void *a, const void *b)
{
    const delta *x = a, *y = b;
    if (x->entry != y->entry) return x->entry < y->entry ? -1 : 1;
    if (x->file != y->file) return x->file < y->file ? -1 : 1;
    return (int)x->kind - (int)y->kind;
}

/* Sort the deltas by entry, refuse two of one kind for one entry in one file, index them, count. */
static sky_status index_deltas(sky_lora *l, const sky_lora_spec *specs, sky_err *err)
{
    qsort(l->deltas, (size_t)l->n_deltas, sizeof *l->deltas, delta_cmp);
    l->first = calloc((size_t)l->n_table + 1, sizeof *l->first);
    if (!l->first) return sky_fail(err, "out of host memory");
    for (int i = 0; i < l->n_deltas; i++) {
        const delta *d = &l->deltas[i], *p = i ? &l->deltas[i - 1] : NULL;
        if (p && delta_cmp(p, d) == 0)
            return sky_fail(err, "%s: two %s deltas for weight '%s' ('%s' and '%s')", specs[d->file].path,
                            d->kind == KIND_FULL ? "full" : "low-rank", l->table[d->entry].name,
                            (p->full ? p->full : p->down)->name, (d->full ? d->full : d->down)->name);
        l->first[d->entry + 1]++;
        if (d->counts_low_rank)
            l->stats[d->file].low_rank++;
        else
            l->stats[d->file].full++;
        if (!p || p->entry != d->entry || p->file != d->file) l->stats[d->file].weights++;
    }
    for (int i = 0; i < l->n_table; i++) {
        l->weights_changed += l->first[i + 1] > 0;
        l->first[i + 1] += l->first[i];
    }
    return SKY_OK;
}

/* ---- public: opening ------------------------------------------------------------------------- */

sky_status sky_lora_parse_arg(const char *arg, sky_lora_spec *out, sky_err *err)
{
    out->scale = 1.0;
    snprintf(out->path, sizeof out->path, "%s", arg);
    char *colon = strrchr(out->path, ':');
    if (colon && colon[1]) {
        char *end;
        errno = 0;
        const double v = strtod(colon + 1, &end);
        if (!*end && !errno && isfinite(v)) {
            out->scale = v;
            *colon = 0;
        }
    }
    if (strlen(arg) >= sizeof out->path) return sky_fail(err, "--lora %.64s...: the path is too long", arg);
    if (!out->path[0]) return sky_fail(err, "--lora %s: no file before the ':'", arg);
    return SKY_OK;
}

sky_status sky_lora_open(sky_lora **out, const sky_lora_spec *specs, int n, const sky_weight_desc *table, int n_table,
                         int skip_unknown, const char *who, sky_err *err)
{
    *out = NULL;
    sky_lora *l = calloc(1, sizeof *l);
    if (!l) return sky_fail(err, "out of host memory");
    l->table = table;
    l->n_table = n_table;
    l->files = calloc((size_t)(n ? n : 1), sizeof *l->files);
    l->stats = calloc((size_t)(n ? n : 1), sizeof *l->stats);
    if (!l->files || !l->stats) {
        sky_lora_close(l);
        return sky_fail(err, "out of host memory");
    }
    for (int f = 0; f < n; f++) {
        sky_err e;
        if (sky_safetensors_open(&l->files[f], specs[f].path, &e)) {
            sky_fail(err, "--lora: %s", e.msg);
            sky_lora_close(l);
            return SKY_ERR;
        }
        l->n_files = f + 1;
        if (read_file(l, f, specs[f].scale, skip_unknown, who, err)) {
            sky_lora_close(l);
            return SKY_ERR;
        }
    }
    if (index_deltas(l, specs, err)) {
        sky_lora_close(l);
        return SKY_ERR;
    }
    *out = l;
    return SKY_OK;
}

int sky_lora_count(const sky_lora *l) { return l ? l->n_files : 0; }

void sky_lora_file_stats(const sky_lora *l, int k, sky_lora_stats *out)
{
    SKY_ASSERT(l && k >= 0 && k < l->n_files);
    *out = l->stats[k];
}

int sky_lora_describe(const sky_lora *l, int k, const sky_lora_spec *spec, char *buf, size_t n)
{
    const sky_lora_stats *s = &l->stats[k];
    const int used = snprintf(buf, n, "lora: %s (scale %g): %d weights changed (%d low-rank, %d full deltas)",
                              spec->path, spec->scale, s->weights, s->low_rank, s->full);
    if (s->skipped && used >= 0 && (size_t)used < n)
        snprintf(buf + used, n - (size_t)used, "; warning: %d keys match no weight of this model, skipped (first '%s')",
                 s->skipped, s->first_skipped);
    return s->skipped > 0;
}

int sky_lora_weights_changed(const sky_lora *l) { return l ? l->weights_changed : 0; }

void sky_lora_close(sky_lora *l)
{
    if (!l) return;
    for (int f = 0; f < l->n_files; f++) sky_safetensors_close(l->files[f]);
    free(l->files);
    free(l->stats);
    free(l->deltas);
    free(l->first);
    free(l);
}

/* ---- public: merging --------------------------------------------------------------------------- */

/* The deltas of one entry with their factors as doubles; rows [r0, r1) of dst are one thread's job. */
typedef struct merge {
    const delta   *d;
    int            nd;
    double *const *up, *const *down; /* [nd]: low-rank factors as double (NULL for full deltas) */
    int64_t N, K;                    /* dst is [N, K] */
    float  *dst;
} merge;

typedef struct rows_job {
    const merge *m;
    int64_t      r0, r1;
    sky_status   st;
    sky_err      err;
} rows_job;

/* Columns per tile: the rows of a job pass over one tile of every down factor at a time, so that the tile (rank x
 * 512 doubles: 256 KiB at rank 64) stays in cache instead of streaming the whole factor once per row (measured on
 * 5120 x 5120, rank 64: 0.26 GMAC/s untiled on 2 cores, memory bound). */
enum { TILE = 512 };

/* acc[i] = sum over k of u[k] * down[k * K + i] for i < nc, k in order, in double. Eight columns at a time
 * with their sums in registers (the compiler pairs them into vector operations) while the rows of the down tile
 * stream from cache; each sum is the same sequence of operations as a plain loop. */
static void low_rank_tile(const double *u, const double *down, int64_t rank, size_t K, size_t nc, double *acc)
{
    size_t i = 0;
    for (; i + 8 <= nc; i += 8) {
        double s0 = 0, s1 = 0, s2 = 0, s3 = 0, s4 = 0, s5 = 0, s6 = 0, s7 = 0;
        for (int64_t k = 0; k < rank; k++) {
            const double  b = u[k];
            const double *a = down + (size_t)k * K + i;
            s0 += b * a[0], s1 += b * a[1], s2 += b * a[2], s3 += b * a[3];
            s4 += b * a[4], s5 += b * a[5], s6 += b * a[6], s7 += b * a[7];
        }
        acc[i] = s0, acc[i + 1] = s1, acc[i + 2] = s2, acc[i + 3] = s3;
        acc[i + 4] = s4, acc[i + 5] = s5, acc[i + 6] = s6, acc[i + 7] = s7;
    }
    for (; i < nc; i++) {
        double s = 0;
        for (int64_t k = 0; k < rank; k++) s += u[k] * down[(size_t)k * K + i];
        acc[i] = s;
    }
}

/* dst[o, i] = fp32(dst[o, i] + sum over deltas of factor * (up[o, :] . down[:, i] or full[o, i])) in double, for
 * the rows [r0, r1) of one job, a tile of columns at a time (the arithmetic of each element does not change). */
static void *merge_rows(void *arg)
{
    rows_job    *j = arg;
    const merge *m = j->m;
    const size_t K = (size_t)m->K;
    double *restrict w = malloc(TILE * sizeof *w), *restrict acc = malloc(TILE * sizeof *acc);
    float *restrict row = malloc(TILE * sizeof *row);
    if (!w || !acc || !row) {
        j->st = sky_fail(&j->err, "out of host memory merging a LoRA");
        goto done;
    }
    for (size_t c0 = 0; c0 < K; c0 += TILE) {
        const size_t nc = K - c0 < TILE ? K - c0 : TILE;
        for (int64_t o = j->r0; o < j->r1; o++) {
            float *out = m->dst + (size_t)o * K + c0;
            for (size_t i = 0; i < nc; i++) w[i] = out[i];
            for (int k = 0; k < m->nd; k++) {
                const delta *d = &m->d[k];
                if (d->kind == KIND_LOW_RANK) {
                    const double *u = m->up[k] + (size_t)o * (size_t)d->rank, *down = m->down[k] + c0;
                    low_rank_tile(u, down, d->rank, K, nc, acc);
                    for (size_t i = 0; i < nc; i++) w[i] += d->factor * acc[i];
                } else {
                    const size_t         esize = (size_t)sky_dtype_bits(d->full->dtype) / 8;
                    const unsigned char *src = (const unsigned char *)d->full->data + ((size_t)o * K + c0) * esize;
                    if (sky_dtype_to_f32(row, src, d->full->dtype, nc, &j->err)) {
                        j->st = SKY_ERR;
                        goto done;
                    }
                    for (size_t i = 0; i < nc; i++) w[i] += d->factor * (double)row[i];
                }
            }
            for (size_t i = 0; i < nc; i++) out[i] = (float)w[i];
        }
    }
done:
    free(w);
    free(acc);
    free(row);
    return NULL;
}

/* A tensor as doubles (through fp32: every dtype accepted here is exact in fp32 except F64). */
static double *to_double(const sky_st_tensor *t, sky_err *err)
{
    const size_t n = (size_t)numel(t->ndim, t->shape);
    float       *f = malloc(n * sizeof *f);
    double      *d = malloc(n * sizeof *d);
    if (!f || !d || sky_dtype_to_f32(f, t->data, t->dtype, n, err)) {
        if (!f || !d) sky_fail(err, "out of host memory converting '%s' (%zu values)", t->name, n);
        free(f);
        free(d);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) d[i] = f[i];
    free(f);
    return d;
}

/* Threads for a merge of `work` multiply-adds over N rows: one below ~4M, else up to the cores. */
static int merge_threads(double work, int64_t N)
{
    if (work < 4e6 || N < 2) return 1;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    if (cores < 1) cores = 1;
    if (cores > 32) cores = 32;
    return (int)(cores < N ? cores : N);
}

sky_status sky_lora_apply(const sky_lora *l, int i, float *dst, sky_err *err)
{
    SKY_ASSERT(l && i >= 0 && i < l->n_table);
    const int nd = l->first[i + 1] - l->first[i];
    if (nd == 0) return SKY_OK;
    const sky_weight_desc *w = &l->table[i];
    const int64_t          N = w->ndim >= 1 ? w->shape[0] : 1, K = numel(w->ndim, w->shape) / (N ? N : 1);
    double               **up = calloc((size_t)nd, sizeof *up), **down = calloc((size_t)nd, sizeof *down);
    sky_status             st = SKY_OK;
    double                 work = 0;
    if (!up || !down) st = sky_fail(err, "out of host memory");
    merge m = {l->deltas + l->first[i], nd, up, down, N, K, dst};
    for (int k = 0; st == SKY_OK && k < nd; k++) {
        const delta *d = &m.d[k];
        work += (double)N * (double)K * (double)(d->kind == KIND_LOW_RANK ? d->rank : 1);
        if (d->kind != KIND_LOW_RANK) continue;
        if (!(up[k] = to_double(d->up, err)) || !(down[k] = to_double(d->down, err))) st = SKY_ERR;
    }
    if (st == SKY_OK && N > 0 && K > 0) {
        const int T = merge_threads(work, N);
        rows_job  jobs[32];
        pthread_t th[32];
        int       started[32] = {0};
        for (int t = 0; t < T; t++) jobs[t] = (rows_job){&m, N * t / T, N * (t + 1) / T, SKY_OK, {""}};
        for (int t = 1; t < T; t++) started[t] = pthread_create(&th[t], NULL, merge_rows, &jobs[t]) == 0;
        merge_rows(&jobs[0]);
        for (int t = 1; t < T; t++) {
            if (started[t])
                pthread_join(th[t], NULL);
            else
                merge_rows(&jobs[t]); /* no thread to be had: here */
        }
        for (int t = 0; t < T && st == SKY_OK; t++)
            if (jobs[t].st) st = sky_fail(err, "LoRA merge into '%s': %s", w->name, jobs[t].err.msg);
    }
    for (int k = 0; up && down && k < nd; k++) {
        free(up[k]);
        free(down[k]);
    }
    free(up);
    free(down);
    return st;
}

static sky_status patch_add(const void *ctx, int i, float *dst, sky_err *err)
{
    return sky_lora_apply(ctx, i, dst, err);
}

sky_weight_patch sky_lora_patch(const sky_lora *l)
{
    return l ? (sky_weight_patch){l, patch_add} : (sky_weight_patch){0};
}

/* Entry i of a quantised write: table entry t's weight (dequantised in place in data) as F8_E4M3 codes, and its
 * scale as `<name minus .weight>.weight_scale` [rows, 1] F32; codes, scale and the scale's name are owned by q. */
typedef struct fp8_out {
    uint8_t *codes;
    float   *scale;
    char     name[512];
} fp8_out;

static sky_status quantise_entry(const sky_weight_desc *t, const char *name, float *data, fp8_out *q, sky_st_entry *e,
                                 sky_st_entry *es, sky_err *err)
{
    const int64_t rows = t->shape[0], cols = t->shape[1];
    const size_t  n = strlen(name);
    if (n < 7 || strcmp(name + n - 7, ".weight") != 0)
        return sky_fail(err, "--weight_dtype fp8: '%s' does not end in .weight", name);
    q->codes = malloc((size_t)(rows * cols));
    q->scale = malloc((size_t)rows * sizeof *q->scale);
    if (!q->codes || !q->scale) return sky_fail(err, "out of host memory quantising '%s'", name);
    sky_fp8_quantise_rows(data, rows, cols, q->scale, q->codes);
    snprintf(q->name, sizeof q->name, "%.*s.weight_scale", (int)(n - 7), name);
    *e = (sky_st_entry){name, SKY_DTYPE_F8_E4M3, 2, {rows, cols}, q->codes};
    *es = (sky_st_entry){q->name, SKY_DTYPE_F32, 2, {rows, 1}, q->scale};
    return SKY_OK;
}

sky_status sky_lora_write_merged(const sky_lora *l, const sky_weight_desc *table, int n_table, const char *weights,
                                 int diffusers, int weight_fp8, const char *who, const char *path, sky_err *err)
{
    sky_checkpoint        *ck = NULL;
    sky_weights            w = {0};
    sky_st_entry          *e = calloc((size_t)n_table * 2, sizeof *e); /* a scale per quantised entry at most */
    fp8_out               *q = calloc((size_t)n_table, sizeof *q);
    const sky_weight_patch patch = sky_lora_patch(l);
    sky_status             st = SKY_ERR;
    int                    n = 0;
    if (!e || !q) {
        st = sky_fail(err, "out of host memory");
        goto done;
    }
    if (sky_checkpoint_open(&ck, weights, err) || sky_weights_bind_f32(&w, ck, table, n_table, &patch, who, err))
        goto done;
    for (int i = 0; i < n_table; i++) {
        if (diffusers && strncmp(table[i].alias, "cat0:", 5) == 0) {
            sky_fail(err, "%s: '%s' has no single diffusers name; write the original layout", who, table[i].name);
            goto done;
        }
        const char *name = diffusers ? table[i].alias : table[i].name;
        if (weight_fp8 && sky_fp8_quantised(&table[i])) {
            if (quantise_entry(&table[i], name, w.data[i], &q[i], &e[n], &e[n + 1], err)) goto done;
            n += 2;
            continue;
        }
        e[n] = (sky_st_entry){name, SKY_DTYPE_F32, table[i].ndim, {0}, w.data[i]};
        memcpy(e[n++].shape, table[i].shape, sizeof e[0].shape);
    }
    const char *meta[] = {"made_by", "skyreels lora-merge",
                          "variant", who,
                          "layout",  diffusers ? "diffusers" : "original",
                          "weights", weight_fp8 ? "fp8 e4m3, one scale per output channel (--weight_dtype fp8)" : "F32",
                          NULL};
    st = sky_safetensors_write(path, e, n, meta, err);
done:
    for (int i = 0; q && i < n_table; i++) free(q[i].codes), free(q[i].scale);
    sky_weights_free(&w);
    sky_checkpoint_close(ck);
    free(q);
    free(e);
    return st;
}
