/* runtime/models/trace.c — op-by-op traces (trace.h). */
#include "models/trace.h"

#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "formats/safetensors_write.h"

sky_trace_fn sky_trace_hook;
void        *sky_trace_ctx;

typedef struct trace_op {
    char     *name;
    float    *data;
    long long n;
} trace_op;

struct sky_trace {
    trace_op *ops;
    int       n, cap;
    int       failed; /* out of memory while collecting: reported at write */
};

static int seen(const sky_trace *t, const char *name)
{
    for (int i = 0; i < t->n; i++)
        if (strcmp(t->ops[i].name, name) == 0) return 1;
    return 0;
}

static void collect(void *ctx, const char *name, const void *data, int dtype, long long n, int cl)
{
    sky_trace *t = ctx;
    if (t->failed || seen(t, name) || n < 0) return;
    if (t->n == t->cap) {
        int       cap = t->cap ? 2 * t->cap : 256;
        trace_op *ops = realloc(t->ops, (size_t)cap * sizeof *ops);
        if (!ops) {
            t->failed = 1;
            return;
        }
        t->ops = ops, t->cap = cap;
    }
    trace_op *op = &t->ops[t->n];
    op->name = strdup(name);
    op->data = malloc((size_t)(n > 0 ? n : 1) * sizeof(float));
    op->n = n;
    if (!op->name || !op->data) {
        free(op->name);
        free(op->data);
        t->failed = 1;
        return;
    }
    const long long rows = cl > 0 ? n / cl : 0;
    for (long long i = 0; i < n; i++) {
        if (cl > 0) { /* channels-last [rows][cl] -> [cl][rows] */
            float v;
            memcpy(&v, (const char *)data + 4 * i, 4);
            op->data[(i % cl) * rows + i / cl] = v;
            continue;
        }
        switch (dtype) {
        case SKY_TRACE_F32: memcpy(&op->data[i], (const char *)data + 4 * i, 4); break;
        case SKY_TRACE_BF16: {
            uint16_t b;
            memcpy(&b, (const char *)data + 2 * i, 2);
            op->data[i] = sky_bf16_to_f32(b);
            break;
        }
        case SKY_TRACE_F64: {
            double v;
            memcpy(&v, (const char *)data + 8 * i, 8);
            op->data[i] = (float)v;
            break;
        }
        default: {
            int64_t v;
            memcpy(&v, (const char *)data + 8 * i, 8);
            op->data[i] = (float)v;
            break;
        }
        }
    }
    t->n++;
}

sky_status sky_trace_open(sky_trace **out, sky_err *err)
{
    *out = NULL;
    if (sky_trace_hook) return sky_fail(err, "--trace: a trace is already open");
    sky_trace *t = calloc(1, sizeof *t);
    if (!t) return sky_fail(err, "out of host memory");
    sky_trace_hook = collect;
    sky_trace_ctx = t;
    *out = t;
    return SKY_OK;
}

sky_status sky_trace_write(sky_trace *t, const char *path, sky_err *err)
{
    sky_trace_hook = NULL;
    sky_trace_ctx = NULL;
    if (t->failed) return sky_fail(err, "--trace %s: out of host memory while collecting the trace", path);
    sky_st_entry *e = calloc((size_t)(t->n ? t->n : 1), sizeof *e);
    size_t        len = 1;
    for (int i = 0; i < t->n; i++) len += strlen(t->ops[i].name) + 1;
    char *order = malloc(len);
    if (!e || !order) {
        free(e);
        free(order);
        return sky_fail(err, "out of host memory");
    }
    order[0] = 0;
    for (int i = 0; i < t->n; i++) {
        e[i] = (sky_st_entry){
            .name = t->ops[i].name, .dtype = SKY_DTYPE_F32, .ndim = 1, .shape = {t->ops[i].n}, .data = t->ops[i].data};
        if (i) strcat(order, ",");
        strcat(order, t->ops[i].name);
    }
    const char *meta[] = {"ops", order, NULL};
    sky_status  st = sky_safetensors_write(path, e, t->n, meta, err);
    free(e);
    free(order);
    return st;
}

void sky_trace_free(sky_trace *t)
{
    if (!t) return;
    if (sky_trace_ctx == t) sky_trace_hook = NULL, sky_trace_ctx = NULL;
    for (int i = 0; i < t->n; i++) {
        free(t->ops[i].name);
        free(t->ops[i].data);
    }
    free(t->ops);
    free(t);
}
