/* runtime/weights.c — bind a generated weights table to checkpoint tensors (weights.h). */
#include "weights.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dtype.h"

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

static int shape_equal(const sky_st_tensor *t, const sky_weight_desc *w)
{
    if (t->ndim != w->ndim) return 0;
    for (int i = 0; i < w->ndim; i++)
        if (t->shape[i] != w->shape[i]) return 0;
    return 1;
}

/* Name of table entry w in layout l. */
static const char *name_in(const sky_weight_desc *w, sky_layout l)
{
    return l == SKY_LAYOUT_ORIGINAL ? w->name : w->alias;
}

const char *sky_layout_name(sky_layout l)
{
    return l == SKY_LAYOUT_ORIGINAL ? "original" : "diffusers";
}

/* Decide the layout from the tensors whose two names differ: all hits must be in one. */
static sky_status detect_layout(sky_layout *out, const sky_checkpoint *ck, const sky_weight_desc *table,
                                int n, const char *who, sky_err *err)
{
    int orig = 0, diff = 0;
    const char *orig_example = NULL, *diff_example = NULL;
    for (int i = 0; i < n; i++) {
        if (strcmp(table[i].name, table[i].alias) == 0) continue;
        if (sky_checkpoint_find(ck, table[i].name)) { orig++; if (!orig_example) orig_example = table[i].name; }
        if (sky_checkpoint_find(ck, table[i].alias)) { diff++; if (!diff_example) diff_example = table[i].alias; }
    }
    if (orig > 0 && diff > 0)
        return sky_fail(err, "%s: the checkpoint mixes the original layout ('%s', %d tensors) and the diffusers "
                        "layout ('%s', %d tensors); point --weights at one checkpoint",
                        sky_checkpoint_path(ck), orig_example, orig, diff_example, diff);
    if (orig == 0 && diff == 0)
        return sky_fail(err, "%s: no tensor of this model found (looked for '%s' or '%s'); is it a SkyReels-V2 "
                        "transformer checkpoint for %s?", sky_checkpoint_path(ck), table[n - 1].name,
                        table[n - 1].alias, who);
    *out = orig > 0 ? SKY_LAYOUT_ORIGINAL : SKY_LAYOUT_DIFFUSERS;
    return SKY_OK;
}

/* Check every entry before converting any: presence, shape, dtype. */
static sky_status check_all(const sky_checkpoint *ck, const sky_weight_desc *table, int n, sky_layout l,
                            const char *who, sky_err *err)
{
    int missing = 0;
    const char *first_missing = NULL;
    for (int i = 0; i < n; i++) {
        const sky_st_tensor *t = sky_checkpoint_find(ck, name_in(&table[i], l));
        if (!t) {
            if (!first_missing) first_missing = name_in(&table[i], l);
            missing++;
            continue;
        }
        if (!shape_equal(t, &table[i])) {
            char got[128], want[128];
            return sky_fail(err, "%s: tensor '%s' has shape %s but this binary was generated for %s (%s); "
                            "is the checkpoint of another variant?", t->file, t->name,
                            shape_fmt(got, sizeof got, t->ndim, t->shape),
                            shape_fmt(want, sizeof want, table[i].ndim, table[i].shape), who);
        }
        if (t->dtype != SKY_DTYPE_F32 && t->dtype != SKY_DTYPE_BF16 && t->dtype != SKY_DTYPE_F16 &&
            t->dtype != SKY_DTYPE_F64)
            return sky_fail(err, "%s: tensor '%s' has dtype %s; weights must be F32, BF16, F16 or F64",
                            t->file, t->name, sky_dtype_name(t->dtype));
    }
    if (missing)
        return sky_fail(err, "%s: %d of %d tensors of the %s layout are missing, first '%s'; the checkpoint is "
                        "incomplete or not for %s", sky_checkpoint_path(ck), missing, n, sky_layout_name(l),
                        first_missing, who);
    return SKY_OK;
}

/* Count checkpoint tensors no table entry names (a warning for the caller, not an error:
 * diffusers ignores e.g. norm_added_q). */
static void count_unused(sky_weights *w, const sky_checkpoint *ck, const sky_weight_desc *table, int n)
{
    int count = sky_checkpoint_count(ck);
    for (int i = 0; i < count; i++) {
        const char *name = sky_checkpoint_at(ck, i)->name;
        int used = 0;
        for (int j = 0; j < n && !used; j++) used = strcmp(name, name_in(&table[j], w->layout)) == 0;
        if (!used) {
            if (!w->unused) snprintf(w->first_unused, sizeof w->first_unused, "%s", name);
            w->unused++;
        }
    }
}

sky_status sky_weights_bind_f32(sky_weights *out, const sky_checkpoint *ck, const sky_weight_desc *table,
                                int n, const char *who, sky_err *err)
{
    memset(out, 0, sizeof *out);
    SKY_ASSERT(n > 0);
    sky_layout layout = SKY_LAYOUT_ORIGINAL;
    if (detect_layout(&layout, ck, table, n, who, err) != SKY_OK) return SKY_ERR;
    if (check_all(ck, table, n, layout, who, err) != SKY_OK) return SKY_ERR;

    out->layout = layout;
    out->n = n;
    out->data = calloc((size_t)n, sizeof *out->data);
    if (!out->data) return sky_fail(err, "out of host memory for the weights table of %s", who);
    for (int i = 0; i < n; i++) {
        const sky_st_tensor *t = sky_checkpoint_find(ck, name_in(&table[i], layout));
        size_t elems = 1;
        for (int d = 0; d < t->ndim; d++) elems *= (size_t)t->shape[d];
        out->data[i] = malloc(elems ? elems * sizeof(float) : 1);
        if (!out->data[i]) {
            sky_weights_free(out);
            return sky_fail(err, "out of host memory converting '%s' (%zu elements) to fp32", t->name, elems);
        }
        if (sky_dtype_to_f32(out->data[i], t->data, t->dtype, elems, err) != SKY_OK) {
            sky_weights_free(out);
            return SKY_ERR;
        }
    }
    count_unused(out, ck, table, n);
    return SKY_OK;
}

void sky_weights_free(sky_weights *w)
{
    if (w->data)
        for (int i = 0; i < w->n; i++) free(w->data[i]);
    free(w->data);
    memset(w, 0, sizeof *w);
}
