/* runtime/formats/weights.c — bind a generated weights table to checkpoint tensors (weights.h). */
#include "formats/weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <math.h>
#include <string.h>

#include "core/dtype.h"

/* "[1536, 16, 1, 2, 2]" into buf. */
static const char *shape_fmt(char *buf, size_t size, int ndim, const int64_t *shape)
{
    size_t used = 0;
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < ndim && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? ", " : "", (long long)shape[i]);
    if (used < size) snprintf(buf + used, size - used, "]");
    return buf;
}

/* Shapes equal after dropping leading unit dims ([1, 1, C] and [C] hold the same tensor: the
 * original CLIP stores its class and position embeddings with them, Hugging Face without). */
static int shape_equal_dims(int na, const int64_t *a, int nb, const int64_t *b)
{
    while (na > 0 && a[0] == 1) {
        a++;
        na--;
    }
    while (nb > 0 && b[0] == 1) {
        b++;
        nb--;
    }
    if (na != nb) return 0;
    for (int i = 0; i < na; i++)
        if (a[i] != b[i]) return 0;
    return 1;
}

/* A diffusers alias "cat0:a,b,c" names tensors concatenated along dim 0 (CLIP's fused q|k|v is
 * three tensors on the Hugging Face side). Part i of it into buf; returns the number of parts. */
static int alias_part(const char *alias, int i, char *buf, size_t size)
{
    if (strncmp(alias, "cat0:", 5) != 0) {
        if (i == 0) snprintf(buf, size, "%s", alias);
        return 1;
    }
    const char *p = alias + 5;
    int         n = 1;
    for (const char *q = p; *q; q++) n += *q == ',';
    for (int k = 0; k < i; k++) p = strchr(p, ',') + 1;
    const char  *e = strchr(p, ',');
    const size_t len = e ? (size_t)(e - p) : strlen(p);
    snprintf(buf, size, "%.*s", (int)(len < size ? len : size - 1), p);
    return n;
}

/* Name of table entry w in layout l (for a concatenated alias, its first part), in buf. */
static const char *name_in(const sky_weight_desc *w, sky_layout l, char *buf, size_t size)
{
    if (l == SKY_LAYOUT_ORIGINAL) return w->name;
    alias_part(w->alias, 0, buf, size);
    return buf;
}

const char *sky_layout_name(sky_layout l) { return l == SKY_LAYOUT_ORIGINAL ? "original" : "diffusers"; }

/* Decide the layout from the tensors whose two names differ: all hits must be in one. */
static sky_status detect_layout(sky_layout *out, const sky_checkpoint *ck, const sky_weight_desc *table, int n,
                                const char *who, sky_err *err)
{
    int         orig = 0, diff = 0;
    const char *orig_example = NULL, *diff_example = NULL;
    char        buf[512];
    for (int i = 0; i < n; i++) {
        if (strcmp(table[i].name, table[i].alias) == 0) continue;
        if (sky_checkpoint_find(ck, table[i].name)) {
            orig++;
            if (!orig_example) orig_example = table[i].name;
        }
        if (sky_checkpoint_find(ck, name_in(&table[i], SKY_LAYOUT_DIFFUSERS, buf, sizeof buf))) {
            diff++;
            if (!diff_example) diff_example = table[i].alias;
        }
    }
    if (orig > 0 && diff > 0)
        return sky_fail(err,
                        "%s: the checkpoint mixes the original layout ('%s', %d tensors) and the diffusers "
                        "layout ('%s', %d tensors); point --weights at one checkpoint",
                        sky_checkpoint_path(ck), orig_example, orig, diff_example, diff);
    if (orig == 0 && diff == 0)
        return sky_fail(err,
                        "%s: no tensor of this model found (looked for '%s' or '%s'); is it this model's "
                        "checkpoint for %s (not another model's)?",
                        sky_checkpoint_path(ck), table[n - 1].name, table[n - 1].alias, who);
    *out = orig > 0 ? SKY_LAYOUT_ORIGINAL : SKY_LAYOUT_DIFFUSERS;
    return SKY_OK;
}

/* The checkpoint tensors of table entry w in layout l: one, or the parts of a concatenated
 * alias. Each part must have the entry's shape with dim 0 divided by the number of parts.
 * Returns the number of parts (0 when one is missing: *missing names it). */
static int find_parts(const sky_checkpoint *ck, const sky_weight_desc *w, sky_layout l, const sky_st_tensor **parts,
                      int max_parts, char *missing, size_t size)
{
    char      buf[512];
    const int n = l == SKY_LAYOUT_ORIGINAL ? 1 : alias_part(w->alias, 0, buf, sizeof buf);
    SKY_ASSERT(n <= max_parts);
    for (int i = 0; i < n; i++) {
        const char *name = l == SKY_LAYOUT_ORIGINAL ? w->name : (alias_part(w->alias, i, buf, sizeof buf), buf);
        parts[i] = sky_checkpoint_find(ck, name);
        if (!parts[i]) {
            snprintf(missing, size, "%s", name);
            return 0;
        }
    }
    return n;
}

/* ---- fp8 (reference round2-features.md §5) ---- */

static int is_fp8(sky_dtype t) { return t == SKY_DTYPE_F8_E4M3 || t == SKY_DTYPE_F8_E5M2; }

/* The scale of checkpoint tensor t: "<layer>.scale_weight" (the Kijai / legacy ComfyUI spelling) or
 * "<layer>.weight_scale" (the newer one) for t named "<layer>.weight"; NULL when it has none. */
static const sky_st_tensor *scale_of(const sky_checkpoint *ck, const sky_st_tensor *t)
{
    const size_t n = strlen(t->name);
    if (n < 7 || strcmp(t->name + n - 7, ".weight") != 0 || n > 400) return NULL;
    char key[512];
    snprintf(key, sizeof key, "%.*s.scale_weight", (int)(n - 7), t->name);
    const sky_st_tensor *s = sky_checkpoint_find(ck, key);
    if (s) return s;
    snprintf(key, sizeof key, "%s_scale", t->name);
    return sky_checkpoint_find(ck, key);
}

/* Elements of tensor t (1 for a scalar). */
static size_t elements(const sky_st_tensor *t)
{
    size_t e = 1;
    for (int d = 0; d < t->ndim; d++) e *= (size_t)t->shape[d];
    return e;
}

/* A tensor's scale must be F32, BF16 or F16, and one value (per tensor) or one per row (per output
 * channel: [rows] or [rows, 1]); only an fp8 tensor may have one. */
static sky_status check_scale(const sky_checkpoint *ck, const sky_st_tensor *t, sky_err *err)
{
    const sky_st_tensor *s = scale_of(ck, t);
    if (!s) return SKY_OK;
    if (!is_fp8(t->dtype))
        return sky_fail(err,
                        "%s: tensor '%s' is %s but has a scale '%s'; only fp8 (F8_E4M3, F8_E5M2) weights are "
                        "scaled: is the checkpoint damaged?",
                        s->file, t->name, sky_dtype_name(t->dtype), s->name);
    if (s->dtype != SKY_DTYPE_F32 && s->dtype != SKY_DTYPE_BF16 && s->dtype != SKY_DTYPE_F16)
        return sky_fail(err, "%s: scale '%s' has dtype %s; scales must be F32, BF16 or F16", s->file, s->name,
                        sky_dtype_name(s->dtype));
    const size_t n = elements(s);
    if (n != 1 && !(t->ndim >= 1 && (int64_t)n == t->shape[0] && (s->ndim == 1 || (s->ndim == 2 && s->shape[1] == 1))))
        return sky_fail(err,
                        "%s: scale '%s' has %zu values; a scale is one value per tensor or one per row (%lld for "
                        "'%s')",
                        s->file, s->name, n, (long long)(t->ndim ? t->shape[0] : 1), t->name);
    return SKY_OK;
}

/* Multiply the n values of part t just converted into dst by its scale (dequantisation: value x scale,
 * in float, as torch does it; absent: 1). */
static sky_status apply_scale(const sky_checkpoint *ck, const sky_st_tensor *t, float *dst, size_t n, sky_err *err)
{
    const sky_st_tensor *s = is_fp8(t->dtype) ? scale_of(ck, t) : NULL;
    if (!s) return SKY_OK;
    const size_t ns = elements(s);
    float        scale[1];
    float       *sc = ns == 1 ? scale : malloc(ns * sizeof *sc);
    if (!sc) return sky_fail(err, "out of host memory for the scales '%s'", s->name);
    if (sky_dtype_to_f32(sc, s->data, s->dtype, ns, err) != SKY_OK) {
        if (sc != scale) free(sc);
        return SKY_ERR;
    }
    const size_t per = n / ns; /* values per scale: the whole tensor, or one row */
    for (size_t i = 0; i < n; i++) dst[i] *= sc[i / per];
    if (sc != scale) free(sc);
    return SKY_OK;
}

/* The tensors of an fp8 checkpoint that are read with the weights rather than as weights: the scales (one
 * per scaled weight), the input scales of fp8 matmuls (unused: weights are expanded to bf16 here), the
 * `scaled_fp8` marker and ComfyUI's per-layer `comfy_quant` notes. Not reported as unused. */
static int is_fp8_companion(const char *name)
{
    static const char *const ends[] = {".scale_weight", ".weight_scale", ".scale_input", ".input_scale",
                                       ".comfy_quant"};
    if (strcmp(name, "scaled_fp8") == 0) return 1;
    const size_t n = strlen(name);
    for (size_t i = 0; i < sizeof ends / sizeof ends[0]; i++) {
        const size_t k = strlen(ends[i]);
        if (n > k && strcmp(name + n - k, ends[i]) == 0) return 1;
    }
    return 0;
}

/* Check every entry before converting any: presence, shape, dtype. */
static sky_status check_all(const sky_checkpoint *ck, const sky_weight_desc *table, int n, sky_layout l,
                            const char *who, sky_err *err)
{
    int  missing = 0;
    char first_missing[512] = "", name[512];
    for (int i = 0; i < n; i++) {
        const sky_st_tensor *parts[4];
        const int            np = find_parts(ck, &table[i], l, parts, 4, name, sizeof name);
        if (!np) {
            if (!missing) snprintf(first_missing, sizeof first_missing, "%s", name);
            missing++;
            continue;
        }
        int64_t want[SKY_MAX_DIMS];
        memcpy(want, table[i].shape, sizeof want);
        want[0] /= np; /* each part of a concatenation */
        for (int k = 0; k < np; k++) {
            const sky_st_tensor *t = parts[k];
            if (!shape_equal_dims(t->ndim, t->shape, table[i].ndim, want)) {
                char got[128], exp[128];
                return sky_fail(err,
                                "%s: tensor '%s' has shape %s but this binary was generated for %s (%s); "
                                "is the checkpoint of another variant?",
                                t->file, t->name, shape_fmt(got, sizeof got, t->ndim, t->shape),
                                shape_fmt(exp, sizeof exp, table[i].ndim, want), who);
            }
            if (t->dtype != SKY_DTYPE_F32 && t->dtype != SKY_DTYPE_BF16 && t->dtype != SKY_DTYPE_F16 &&
                t->dtype != SKY_DTYPE_F64 && !is_fp8(t->dtype))
                return sky_fail(err,
                                "%s: tensor '%s' has dtype %s; weights must be F32, BF16, F16, F64, F8_E4M3 or "
                                "F8_E5M2",
                                t->file, t->name, sky_dtype_name(t->dtype));
            if (check_scale(ck, t, err) != SKY_OK) return SKY_ERR;
        }
    }
    if (missing)
        return sky_fail(err,
                        "%s: %d of %d tensors of the %s layout are missing, first '%s'; the checkpoint is "
                        "incomplete or not for %s",
                        sky_checkpoint_path(ck), missing, n, sky_layout_name(l), first_missing, who);
    return SKY_OK;
}

/* Count checkpoint tensors no table entry names (a warning for the caller, not an error:
 * diffusers ignores e.g. norm_added_q). */
static void count_unused(sky_weights *w, const sky_checkpoint *ck, const sky_weight_desc *table, int n)
{
    int  count = sky_checkpoint_count(ck);
    char buf[512];
    for (int i = 0; i < count; i++) {
        const char *name = sky_checkpoint_at(ck, i)->name;
        int         used = is_fp8_companion(name);
        for (int j = 0; j < n && !used; j++) {
            if (w->layout == SKY_LAYOUT_ORIGINAL) {
                used = strcmp(name, table[j].name) == 0;
                continue;
            }
            const int np = alias_part(table[j].alias, 0, buf, sizeof buf);
            for (int k = 0; k < np && !used; k++) {
                alias_part(table[j].alias, k, buf, sizeof buf);
                used = strcmp(name, buf) == 0;
            }
        }
        if (!used) {
            if (!w->unused) snprintf(w->first_unused, sizeof w->first_unused, "%s", name);
            w->unused++;
        }
    }
}

sky_status sky_weights_bind_lazy(sky_weights *out, const sky_checkpoint *ck, const sky_weight_desc *table, int n,
                                 const sky_weight_patch *patch, const char *who, sky_err *err)
{
    memset(out, 0, sizeof *out);
    SKY_ASSERT(n > 0);
    sky_layout layout = SKY_LAYOUT_ORIGINAL;
    if (detect_layout(&layout, ck, table, n, who, err) != SKY_OK) return SKY_ERR;
    if (check_all(ck, table, n, layout, who, err) != SKY_OK) return SKY_ERR;
    out->layout = layout;
    out->n = n;
    out->ck = ck;
    out->table = table;
    if (patch) out->patch = *patch;
    count_unused(out, ck, table, n);
    return SKY_OK;
}

/* NaN or Inf in a converted tensor (issue 15 item 6): one pass over what was just written, while it is in
 * cache; a corrupt checkpoint would otherwise give an all-black video and exit 0. */
static sky_status check_finite(const float *x, size_t n, const sky_st_tensor *t, const char *when, sky_err *err)
{
    const size_t j = sky_f32_nonfinite(x, n);
    if (j == n) return SKY_OK;
    return sky_fail(err, "%s: tensor '%s' holds %s at element %zu%s; the checkpoint is corrupt (download it again)",
                    t->file, t->name, isnan(x[j]) ? "NaN" : "Inf", j, when);
}

sky_status sky_weights_read(const sky_weights *w, int i, float *dst, sky_err *err)
{
    SKY_ASSERT(w->ck && w->table && i >= 0 && i < w->n);
    const sky_weight_desc *e = &w->table[i];
    const sky_st_tensor   *parts[4];
    char                   name[512];
    const int              np = find_parts(w->ck, e, w->layout, parts, 4, name, sizeof name);
    SKY_ASSERT(np > 0); /* check_all saw every part */
    size_t elems = 1;
    for (int d = 0; d < e->ndim; d++) elems *= (size_t)e->shape[d];
    const size_t per = elems / (size_t)np; /* the parts, one after another along dim 0 */
    for (int k = 0; k < np; k++) {
        if (sky_dtype_to_f32(dst + (size_t)k * per, parts[k]->data, parts[k]->dtype, per, err) != SKY_OK ||
            apply_scale(w->ck, parts[k], dst + (size_t)k * per, per, err) != SKY_OK)
            return SKY_ERR;
        if (check_finite(dst + (size_t)k * per, per, parts[k], "", err) != SKY_OK) return SKY_ERR;
    }
    if (!w->patch.add) return SKY_OK;
    if (w->patch.add(w->patch.ctx, i, dst, err) != SKY_OK) return SKY_ERR;
    for (int k = 0; k < np; k++)
        if (check_finite(dst + (size_t)k * per, per, parts[k], " after the LoRA merge", err) != SKY_OK) return SKY_ERR;
    return SKY_OK;
}

sky_status sky_weights_bind_f32(sky_weights *out, const sky_checkpoint *ck, const sky_weight_desc *table, int n,
                                const sky_weight_patch *patch, const char *who, sky_err *err)
{
    if (sky_weights_bind_lazy(out, ck, table, n, patch, who, err) != SKY_OK) return SKY_ERR;
    out->data = calloc((size_t)n, sizeof *out->data);
    if (!out->data) {
        sky_weights_free(out);
        return sky_fail(err, "out of host memory for the weights table of %s", who);
    }
    for (int i = 0; i < n; i++) {
        size_t elems = 1;
        for (int d = 0; d < table[i].ndim; d++) elems *= (size_t)table[i].shape[d];
        out->data[i] = malloc(elems ? elems * sizeof(float) : 1);
        if (!out->data[i]) {
            sky_weights_free(out);
            return sky_fail(err, "out of host memory converting '%s' (%zu elements) to fp32", table[i].name, elems);
        }
        if (sky_weights_read(out, i, out->data[i], err) != SKY_OK) {
            sky_weights_free(out);
            return SKY_ERR;
        }
    }
    out->ck = NULL; /* the caller may close the checkpoint now */
    out->table = NULL;
    out->patch = (sky_weight_patch){0};
    return SKY_OK;
}

void sky_weights_free(sky_weights *w)
{
    if (w->data)
        for (int i = 0; i < w->n; i++) free(w->data[i]);
    free(w->data);
    memset(w, 0, sizeof *w);
}

sky_status sky_cpu_state_open(sky_cpu_state *s, const sky_weight_desc *table, int n, size_t arena_bytes,
                              const char *weights, const sky_weight_patch *patch, const char *who, sky_err *err)
{
    memset(s, 0, sizeof *s);
    sky_checkpoint *ck = NULL;
    if (sky_checkpoint_open(&ck, weights, err)) return SKY_ERR;
    sky_status st = sky_weights_bind_f32(&s->w, ck, table, n, patch, who, err);
    sky_checkpoint_close(ck);
    if (st) return SKY_ERR;
    s->arena = aligned_alloc(64, (arena_bytes + 63) / 64 * 64);
    if (!s->arena) {
        sky_weights_free(&s->w);
        return sky_fail(err, "out of host memory: the CPU arena of %s needs %zu bytes", who, arena_bytes);
    }
    memset(s->arena, 0, arena_bytes);
    return SKY_OK;
}

sky_status sky_cpu_state_open_lazy(sky_cpu_state *s, const sky_weight_desc *table, int n, const char *weights,
                                   const sky_weight_patch *patch, const char *who, sky_err *err)
{
    memset(s, 0, sizeof *s);
    if (sky_checkpoint_open(&s->ck, weights, err)) return SKY_ERR;
    if (sky_weights_bind_lazy(&s->w, s->ck, table, n, patch, who, err)) {
        sky_checkpoint_close(s->ck);
        s->ck = NULL;
        return SKY_ERR;
    }
    return SKY_OK;
}

static sky_status state_read(void *ctx, int i, float *dst, sky_err *err)
{
    return sky_weights_read(&((sky_cpu_state *)ctx)->w, i, dst, err);
}

sky_weight_reader sky_cpu_state_reader(sky_cpu_state *s)
{
    SKY_ASSERT(s->ck);
    return (sky_weight_reader){.ctx = s, .read = state_read};
}

void sky_cpu_state_release(sky_cpu_state *s)
{
    sky_checkpoint_close(s->ck);
    s->ck = NULL;
    s->w.ck = NULL;
    s->w.table = NULL;
    s->w.patch = (sky_weight_patch){0};
}

void sky_cpu_state_free(sky_cpu_state *s)
{
    sky_cpu_state_release(s);
    sky_weights_free(&s->w);
    free(s->arena);
    s->arena = NULL;
}
