/* tests/numeric/sttool.c — small test helper over runtime/safetensors.
 *
 *   sttool compare OUT REF NAME BOUND   compare tensor NAME of OUT with the reference in REF:
 *                                       prints ||out-ref||/||ref||, max |out-ref|, the first values
 *                                       side by side; exits 1 when the relative error > BOUND, when
 *                                       shapes differ, or when any value is NaN/Inf
 *   sttool meta FILE KEY                print __metadata__[KEY] of FILE (exit 1 when absent)
 *   sttool shape FILE NAME DIM          print dimension DIM of tensor NAME (exit 1 when absent)
 *   sttool zero_rows FILE NAME FROM     exit 1 unless rows FROM.. of the 2-d tensor NAME are exactly 0
 *   sttool clip_preprocess IN OUT S     runtime/models/encoders.c's CLIP preprocessing of IN's `image` [3,h,w]
 *                                       to OUT's `pixels` [3,S,S]
 *   sttool compare-trace OUT REF        two op-by-op traces (runtime/models/trace.h): for every op of REF, in
 *                                       execution order, that OUT also has, ||out-ref||/||ref|| and
 *                                       max |out-ref| (a report; exits 1 only when a file is unusable)
 *   sttool compare-fused OUT REF BASE BOUND   weights with LoRAs merged (skyreels lora-merge) against a reference:
 *                                       every tensor NAME of OUT that REF holds as "fused.NAME" within BOUND
 *                                       (||out-ref||/||ref|| per tensor; also printed relative to the change
 *                                       ||ref-base||), every other one equal to BASE's bit for bit, and every
 *                                       fused.* of REF present in OUT
 * compare takes an optional sixth argument: the reference tensor's name when it differs.
 *
 * Expected numbers always come from the reference file; nothing is pasted here.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/dtype.h"
#include "models/encoders.h"
#include "formats/safetensors.h"
#include "formats/safetensors_write.h"

static float *load_f32(const sky_st_tensor *t, size_t *n, sky_err *err)
{
    *n = 1;
    for (int i = 0; i < t->ndim; i++) *n *= (size_t)t->shape[i];
    float *v = malloc(*n * sizeof(float) + 1);
    if (!v || sky_dtype_to_f32(v, t->data, t->dtype, *n, err)) { free(v); return NULL; }
    return v;
}

static int compare(const char *out_path, const char *ref_path, const char *name, double bound, const char *ref_name)
{
    sky_err err;
    sky_safetensors *a = NULL, *b = NULL;
    if (sky_safetensors_open(&a, out_path, &err) || sky_safetensors_open(&b, ref_path, &err)) {
        fprintf(stderr, "sttool: %s\n", err.msg);
        return 1;
    }
    const sky_st_tensor *ta = sky_safetensors_find(a, name), *tb = sky_safetensors_find(b, ref_name);
    if (!ta || !tb) {
        fprintf(stderr, "sttool: tensor '%s' missing in %s\n", name, !ta ? out_path : ref_path);
        return 1;
    }
    int same = ta->ndim == tb->ndim;
    for (int i = 0; same && i < ta->ndim; i++) same = ta->shape[i] == tb->shape[i];
    if (!same) {
        fprintf(stderr, "sttool: '%s' shapes differ between %s and %s\n", name, out_path, ref_path);
        return 1;
    }
    size_t n, m;
    float *x = load_f32(ta, &n, &err), *r = load_f32(tb, &m, &err);
    if (!x || !r) { fprintf(stderr, "sttool: %s\n", err.msg); return 1; }
    double num = 0.0, den = 0.0, max_abs = 0.0;
    size_t bad = 0, at = 0;
    for (size_t i = 0; i < n; i++) {
        if (!isfinite(x[i])) bad++;
        double d = (double)x[i] - (double)r[i];
        num += d * d;
        den += (double)r[i] * r[i];
        if (fabs(d) > max_abs) { max_abs = fabs(d); at = i; }
    }
    double rel = den > 0 ? sqrt(num / den) : sqrt(num);
    int ok = bad == 0 && rel <= bound;
    printf("%s %-44s rel_l2 %.3e  max_abs %.3e (at %zu: %.7g vs %.7g)  ||ref||_rms %.3e  bound %.1e\n",
           ok ? "OK    " : "NOT OK", out_path, rel, max_abs, at, x[at], r[at], sqrt(den / (double)n), bound);
    printf("       first values  ours:");
    for (size_t i = 0; i < n && i < 4; i++) printf(" %+.7f", x[i]);
    printf("   ref:");
    for (size_t i = 0; i < n && i < 4; i++) printf(" %+.7f", r[i]);
    printf("\n");
    if (bad) printf("       %zu values are NaN or Inf\n", bad);
    free(x); free(r);
    sky_safetensors_close(a);
    sky_safetensors_close(b);
    return ok ? 0 : 1;
}

/* Exact equality of an I64 tensor in two files (TeaCache's decisions): prints both as digit strings. */
static int equal_i64(const char *out_path, const char *ref_path, const char *name)
{
    sky_err err;
    sky_safetensors *a = NULL, *b = NULL;
    if (sky_safetensors_open(&a, out_path, &err) || sky_safetensors_open(&b, ref_path, &err)) {
        fprintf(stderr, "sttool: %s\n", err.msg);
        return 1;
    }
    const sky_st_tensor *ta = sky_safetensors_find(a, name), *tb = sky_safetensors_find(b, name);
    if (!ta || !tb || ta->dtype != SKY_DTYPE_I64 || tb->dtype != SKY_DTYPE_I64 || ta->ndim != 1 || tb->ndim != 1 ||
        ta->shape[0] != tb->shape[0]) {
        fprintf(stderr, "sttool: '%s' missing, not I64 [n], or of different lengths in %s and %s\n", name, out_path,
                ref_path);
        return 1;
    }
    const size_t n = (size_t)ta->shape[0];
    int64_t *x = malloc(n * 8 + 8), *r = malloc(n * 8 + 8);      /* tensor data is not aligned */
    if (!x || !r) { fprintf(stderr, "sttool: out of memory\n"); return 1; }
    memcpy(x, ta->data, n * 8);
    memcpy(r, tb->data, n * 8);
    int same = 1;
    for (size_t i = 0; i < n; i++) same &= x[i] == r[i];
    printf("%s %s '%s'\n       ours: ", same ? "OK    " : "NOT OK", out_path, name);
    for (size_t i = 0; i < n; i++) printf("%lld", (long long)x[i]);
    printf("\n       ref:  ");
    for (size_t i = 0; i < n; i++) printf("%lld", (long long)r[i]);
    free(x); free(r);
    printf("\n");
    sky_safetensors_close(a);
    sky_safetensors_close(b);
    return same ? 0 : 1;
}

/* The op-by-op report of two traces (trace.h), in REF's execution order. */
static int compare_trace(const char *out_path, const char *ref_path)
{
    sky_err err;
    sky_safetensors *a = NULL, *b = NULL;
    if (sky_safetensors_open(&a, out_path, &err) || sky_safetensors_open(&b, ref_path, &err)) {
        fprintf(stderr, "sttool: %s\n", err.msg);
        return 1;
    }
    const char *ops = sky_safetensors_metadata(b, "ops");
    if (!ops) { fprintf(stderr, "sttool: %s is not a trace (no 'ops' metadata)\n", ref_path); return 1; }
    printf("%-48s %10s %10s %10s\n", "op output (in both traces)", "rel_l2", "max_abs", "rms(ref)");
    for (const char *p = ops; *p;) {
        const char *comma = strchr(p, ',');
        const size_t len = comma ? (size_t)(comma - p) : strlen(p);
        char name[256];
        snprintf(name, sizeof name, "%.*s", (int)len, p);
        p += len + (comma != NULL);
        const sky_st_tensor *ta = sky_safetensors_find(a, name), *tb = sky_safetensors_find(b, name);
        if (!ta || !tb || ta->nbytes != tb->nbytes) continue;
        size_t n, m;
        float *x = load_f32(ta, &n, &err), *r = load_f32(tb, &m, &err);
        if (!x || !r) { free(x); free(r); continue; }
        double num = 0, den = 0, max_abs = 0;
        for (size_t i = 0; i < n; i++) {
            const double d = (double)x[i] - (double)r[i];
            num += d * d, den += (double)r[i] * r[i];
            if (!(fabs(d) <= max_abs)) max_abs = fabs(d);
        }
        printf("%-48s %10.3e %10.3e %10.3e\n", name, den > 0 ? sqrt(num / den) : sqrt(num), max_abs,
               n ? sqrt(den / (double)n) : 0.0);
        free(x); free(r);
    }
    sky_safetensors_close(a);
    sky_safetensors_close(b);
    return 0;
}

/* compare-fused (see the top). */
static int compare_fused(const char *out_path, const char *ref_path, const char *base_path, double bound)
{
    sky_err err;
    sky_safetensors *o = NULL, *r = NULL, *b = NULL;
    if (sky_safetensors_open(&o, out_path, &err) || sky_safetensors_open(&r, ref_path, &err) ||
        sky_safetensors_open(&b, base_path, &err)) {
        fprintf(stderr, "sttool: %s\n", err.msg);
        return 1;
    }
    int bad = 0, fused = 0, same = 0;
    double worst = 0.0;
    for (int i = 0; i < sky_safetensors_count(o); i++) {
        const sky_st_tensor *to = sky_safetensors_at(o, i);
        char name[600];
        snprintf(name, sizeof name, "fused.%s", to->name);
        const sky_st_tensor *tr = sky_safetensors_find(r, name), *tb = sky_safetensors_find(b, to->name);
        size_t n, m, k;
        float *x = load_f32(to, &n, &err), *base = tb ? load_f32(tb, &k, &err) : NULL;
        float *ref = tr ? load_f32(tr, &m, &err) : NULL;
        if (!x || !base || (tr && (!ref || m != n)) || k != n) {
            printf("NOT OK %s: missing in %s or of another size\n", to->name, tb ? ref_path : base_path);
            bad++;
        } else if (!tr) {
            const int eq = memcmp(x, base, n * sizeof *x) == 0;
            same += eq;
            if (!eq) { printf("NOT OK %s: not in the reference, yet it differs from the base\n", to->name); bad++; }
        } else {
            double num = 0, den = 0, chg = 0;
            for (size_t j = 0; j < n; j++) {
                const double d = (double)x[j] - ref[j], c = (double)ref[j] - base[j];
                num += d * d, den += (double)ref[j] * ref[j], chg += c * c;
            }
            const double rel = den > 0 ? sqrt(num / den) : sqrt(num);
            const int ok = rel <= bound && chg > 0;
            printf("%s fused %-40s rel_l2 %.3e (%.3e of the change)  change/ref %.3e  bound %.1e\n",
                   ok ? "OK    " : "NOT OK", to->name, rel, chg > 0 ? sqrt(num / chg) : 0.0, sqrt(chg / den), bound);
            if (rel > worst) worst = rel;
            bad += !ok;
            fused++;
        }
        free(x); free(base); free(ref);
    }
    int expected = 0;
    for (int i = 0; i < sky_safetensors_count(r); i++)
        expected += strncmp(sky_safetensors_at(r, i)->name, "fused.", 6) == 0;
    if (expected != fused) { printf("NOT OK %d fused tensors in %s, %d compared\n", expected, ref_path, fused); bad++; }
    printf("%s %d fused tensors (worst rel_l2 %.3e, bound %.1e), %d others equal to the base\n",
           bad ? "NOT OK" : "OK    ", fused, worst, bound, same);
    sky_safetensors_close(o); sky_safetensors_close(r); sky_safetensors_close(b);
    return bad ? 1 : 0;
}

int main(int argc, char **argv)
{
    if (argc == 6 && strcmp(argv[1], "compare-fused") == 0)
        return compare_fused(argv[2], argv[3], argv[4], atof(argv[5]));
    if (argc == 4 && strcmp(argv[1], "compare-trace") == 0) return compare_trace(argv[2], argv[3]);
    if ((argc == 6 || argc == 7) && strcmp(argv[1], "compare") == 0)
        return compare(argv[2], argv[3], argv[4], atof(argv[5]), argc == 7 ? argv[6] : argv[4]);
    if (argc == 5 && strcmp(argv[1], "equal") == 0) return equal_i64(argv[2], argv[3], argv[4]);
    if (argc == 5 && strcmp(argv[1], "zero_rows") == 0) {
        sky_err err;
        sky_safetensors *f;
        if (sky_safetensors_open(&f, argv[2], &err)) { fprintf(stderr, "sttool: %s\n", err.msg); return 1; }
        const sky_st_tensor *t = sky_safetensors_find(f, argv[3]);
        size_t n;
        float *v = t && t->ndim == 2 ? load_f32(t, &n, &err) : NULL;
        const long from = atol(argv[4]);
        long bad = v ? 0 : -1;
        for (size_t i = (size_t)from * (size_t)(t ? t->shape[1] : 0); v && i < n; i++) bad += v[i] != 0.0f;
        printf("%s %s rows %ld.. of '%s': %ld values not exactly 0\n", bad == 0 ? "OK    " : "NOT OK", argv[2], from,
               argv[3], bad);
        free(v);
        sky_safetensors_close(f);
        return bad == 0 ? 0 : 1;
    }
    if (argc == 5 && strcmp(argv[1], "clip_preprocess") == 0) {
        sky_err err;
        sky_safetensors *f;
        if (sky_safetensors_open(&f, argv[2], &err)) { fprintf(stderr, "sttool: %s\n", err.msg); return 1; }
        const sky_st_tensor *t = sky_safetensors_find(f, "image");
        size_t n;
        float *img = t && t->ndim == 3 ? load_f32(t, &n, &err) : NULL;
        const int S = atoi(argv[4]);
        float *px = malloc((size_t)3 * S * S * sizeof(float));
        if (!img || !px) { fprintf(stderr, "sttool: no image [3,h,w] in %s\n", argv[2]); return 1; }
        sky_clip_preprocess(img, (int)t->shape[1], (int)t->shape[2], S, px);
        sky_st_entry e = { "pixels", SKY_DTYPE_F32, 3, { 3, S, S }, px };
        int rc = sky_safetensors_write(argv[3], &e, 1, NULL, &err) ? 1 : 0;
        free(img); free(px);
        sky_safetensors_close(f);
        return rc;
    }
    if (argc == 4 && strcmp(argv[1], "meta") == 0) {
        sky_err err;
        sky_safetensors *f;
        if (sky_safetensors_open(&f, argv[2], &err)) { fprintf(stderr, "sttool: %s\n", err.msg); return 1; }
        const char *v = sky_safetensors_metadata(f, argv[3]);
        if (v) fputs(v, stdout);
        sky_safetensors_close(f);
        return v ? 0 : 1;
    }
    if (argc == 5 && strcmp(argv[1], "shape") == 0) {
        sky_err err;
        sky_safetensors *f;
        if (sky_safetensors_open(&f, argv[2], &err)) { fprintf(stderr, "sttool: %s\n", err.msg); return 1; }
        const sky_st_tensor *t = sky_safetensors_find(f, argv[3]);
        const int d = atoi(argv[4]);
        const int ok = t && d >= 0 && d < t->ndim;
        if (ok) printf("%lld\n", (long long)t->shape[d]);
        sky_safetensors_close(f);
        return ok ? 0 : 1;
    }
    fprintf(stderr, "usage: sttool compare OUT REF NAME BOUND | sttool equal OUT REF NAME | sttool meta FILE KEY | "
                    "sttool shape FILE NAME DIM\n");
    return 2;
}
