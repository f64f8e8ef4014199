/* runtime/cuda/gemm.c — cuBLASLt GEMMs chosen once, run many times (gemm.h). */
#include "cuda/gemm.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <xxhash.h>

/* Pointer alignment promised to the heuristic (the default preference assumes 256) and
 * checked on every call. */
#define GEMM_ALIGN 16u

/* How a GEMM's algorithm was chosen. */
typedef enum gemm_choice {
    GEMM_HEURISTIC = 0, /* the heuristic's first (sky_gemm_init; one candidate, or not measured) */
    GEMM_MEASURED = 1,  /* the fastest of the heuristic's first few, timed by sky_gemm_tune */
    GEMM_CACHED = 2,    /* a measured choice read back from the cache */
} gemm_choice;

typedef struct gemm {
    sky_gemm_desc          d;
    cublasLtMatmulDesc_t   op;
    cublasLtMatrixLayout_t a;    /* W: column-major k x n, ld k (used transposed) */
    cublasLtMatrixLayout_t b;    /* x: column-major k x m, ld k */
    cublasLtMatrixLayout_t cd;   /* y: column-major n x m, ld n (C and D) */
    cublasLtMatmulAlgo_t   algo; /* chosen once at init */
    size_t                 ws_needed;
    float                  waves;
    gemm_choice            tuned;             /* how the algorithm was chosen */
    int                    candidates;        /* the heuristic's candidates (when tuned) */
    int                    pick;              /* the chosen candidate's rank in the heuristic's list */
    float                  ms_pick, ms_first; /* measured: the chosen and the heuristic's first, per run */
    int                    m_now;             /* columns currently set in b and cd */
    int                    n_now, k_now;      /* n and k currently set in the layouts */
} gemm;

struct sky_gemm_set {
    cublasLtHandle_t lt;
    void            *workspace;
    size_t           workspace_bytes;
    int              n;
    gemm            *g;
    char             gpu[256];
    int              device, sm_count, cc_major, cc_minor;
    size_t           lt_version;
};

_Noreturn void sky_cublas_fail_(cublasStatus_t s, const char *stmt, const char *func, const char *file, int line)
{
    sky_gpu_fatal_("cuBLAS", cublasLtGetStatusName(s), cublasLtGetStatusString(s), stmt, func, file, line, NULL);
}

/* ---- helpers ------------------------------------------------------------------------- */

static const char *dtype_name(sky_gemm_dtype t)
{
    return t == SKY_GEMM_BF16 ? "bf16" : t == SKY_GEMM_F32 ? "f32" : t == SKY_GEMM_TF32 ? "tf32" : "?";
}

static const char *epilogue_name(sky_gemm_epilogue e)
{
    switch (e) {
    case SKY_GEMM_EPI_NONE: return "none";
    case SKY_GEMM_EPI_BIAS: return "bias";
    case SKY_GEMM_EPI_GELU_TANH_BIAS: return "gelu_tanh+bias";
    }
    return "?";
}

static cudaDataType_t cuda_type(sky_gemm_dtype t)
{
    return t == SKY_GEMM_BF16 ? CUDA_R_16BF : CUDA_R_32F; /* TF32 is stored as fp32 */
}

/* Row strides in elements, the packed ones where the desc says 0. */
static int64_t ld_x(const sky_gemm_desc *d) { return d->ldx ? d->ldx : d->k; }
static int64_t ld_w(const sky_gemm_desc *d) { return d->ldw ? d->ldw : (d->w_kn ? d->n : d->k); }
static int64_t ld_y(const sky_gemm_desc *d) { return d->ldy ? d->ldy : d->n; }

static int aligned(const void *p) { return ((uintptr_t)p % GEMM_ALIGN) == 0; }

/* "gemm 3 (m<=32760 n=8960 k=1536 bf16->bf16 gelu_tanh+bias)" */
static const char *desc_fmt(char *buf, size_t size, int i, const sky_gemm_desc *d)
{
    snprintf(buf, size, "gemm %d (m<=%d n=%d k=%d %s->%s %s)", i, d->m_max, d->n, d->k, dtype_name(d->a_dtype),
             dtype_name(d->out_dtype), epilogue_name(d->epilogue));
    return buf;
}

static sky_status check_desc(int i, const sky_gemm_desc *d, sky_err *err)
{
    char what[256];
    desc_fmt(what, sizeof what, i, d);
    if (d->m_max < 1 || d->n < 1 || d->k < 1) return sky_fail(err, "%s: m_max, n and k must be at least 1", what);
    if (d->a_dtype != SKY_GEMM_BF16 && d->a_dtype != SKY_GEMM_F32 && d->a_dtype != SKY_GEMM_TF32)
        return sky_fail(err, "%s: inputs must be bf16, f32 or tf32 (a_dtype %d)", what, (int)d->a_dtype);
    if (d->out_dtype != SKY_GEMM_BF16 && d->out_dtype != SKY_GEMM_F32)
        return sky_fail(err, "%s: output must be bf16 or f32 (out_dtype %d)", what, (int)d->out_dtype);
    if (d->a_dtype != SKY_GEMM_BF16 && d->out_dtype != SKY_GEMM_F32)
        return sky_fail(err, "%s: an f32 or tf32 GEMM has an f32 output", what);
    if (d->ldx < 0 || d->ldw < 0 || d->ldy < 0 || (d->ldx && d->ldx < d->k) || (d->ldy && d->ldy < d->n) ||
        (d->ldw && d->ldw < (d->w_kn ? d->n : d->k)))
        return sky_fail(err, "%s: a row stride (ldx %d, ldw %d, ldy %d) is shorter than its row", what, d->ldx, d->ldw,
                        d->ldy);
    if (d->epilogue != SKY_GEMM_EPI_NONE && d->epilogue != SKY_GEMM_EPI_BIAS &&
        d->epilogue != SKY_GEMM_EPI_GELU_TANH_BIAS)
        return sky_fail(err, "%s: unknown epilogue %d", what, (int)d->epilogue);
    return SKY_OK;
}

/* Descriptor and layouts of one GEMM (module comment of gemm.h for the mapping). */
static void build(gemm *e)
{
    const sky_gemm_desc *d = &e->d;
    SKY_CUBLAS_CHECK(cublasLtMatmulDescCreate(
        &e->op, d->a_dtype == SKY_GEMM_TF32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F, CUDA_R_32F));
    int32_t ta = d->w_kn ? CUBLAS_OP_N : CUBLAS_OP_T, tb = CUBLAS_OP_N;
    SKY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSA, &ta, sizeof ta));
    SKY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_TRANSB, &tb, sizeof tb));
    uint32_t ep = d->epilogue == SKY_GEMM_EPI_BIAS             ? CUBLASLT_EPILOGUE_BIAS
                  : d->epilogue == SKY_GEMM_EPI_GELU_TANH_BIAS ? CUBLASLT_EPILOGUE_GELU_BIAS
                                                               : CUBLASLT_EPILOGUE_DEFAULT;
    SKY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_EPILOGUE, &ep, sizeof ep));
    if (d->epilogue != SKY_GEMM_EPI_NONE) {
        int32_t bt = (int32_t)cuda_type(d->out_dtype);
        /* The heuristic reads the bias pointer's alignment only: give it an aligned one. */
        const void *placeholder = (const void *)(uintptr_t)256;
        SKY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, &bt, sizeof bt));
        SKY_CUBLAS_CHECK(
            cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &placeholder, sizeof placeholder));
    }
    cudaDataType_t in = cuda_type(d->a_dtype), out = cuda_type(d->out_dtype);
    if (d->w_kn) /* W [k, n] row-major = column-major n x k, used as it is */
        SKY_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&e->a, in, (uint64_t)d->n, (uint64_t)d->k, ld_w(d)));
    else /* W [n, k] row-major = column-major k x n, used transposed */
        SKY_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&e->a, in, (uint64_t)d->k, (uint64_t)d->n, ld_w(d)));
    SKY_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&e->b, in, (uint64_t)d->k, (uint64_t)d->m_max, ld_x(d)));
    SKY_CUBLAS_CHECK(cublasLtMatrixLayoutCreate(&e->cd, out, (uint64_t)d->n, (uint64_t)d->m_max, ld_y(d)));
    e->m_now = d->m_max;
    e->n_now = d->n;
    e->k_now = d->k;
}

/* The heuristic's candidates for e at m_max (at most want, best first): the workspace, fp32 split-K partials
 * and 16-byte alignment are required of each. Returns the number found; *st the heuristic's status. */
static int heuristics(const sky_gemm_set *s, const gemm *e, cublasLtMatmulHeuristicResult_t *res, int want,
                      cublasStatus_t *st)
{
    cublasLtMatmulPreference_t pref;
    SKY_CUBLAS_CHECK(cublasLtMatmulPreferenceCreate(&pref));
    uint64_t ws = s->workspace_bytes;
    uint32_t reduction = CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE; /* split-K partials stay fp32 */
    uint32_t align = GEMM_ALIGN;
    SKY_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws));
    SKY_CUBLAS_CHECK(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_REDUCTION_SCHEME_MASK, &reduction,
                                                          sizeof reduction));
    SKY_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &align, sizeof align));
    SKY_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &align, sizeof align));
    SKY_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &align, sizeof align));
    SKY_CUBLAS_CHECK(
        cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &align, sizeof align));
    memset(res, 0, (size_t)want * sizeof *res);
    int found = 0;
    *st = cublasLtMatmulAlgoGetHeuristic(s->lt, e->op, e->a, e->b, e->cd, e->cd, pref, want, res, &found);
    SKY_CUBLAS_CHECK(cublasLtMatmulPreferenceDestroy(pref));
    if (*st != CUBLAS_STATUS_SUCCESS) return 0;
    int ok = 0; /* keep the usable ones, in order */
    for (int i = 0; i < found; i++)
        if (res[i].state == CUBLAS_STATUS_SUCCESS) res[ok++] = res[i];
    if (ok == 0 && found > 0) *st = res[0].state;
    return ok;
}

/* Run the heuristic once for m_max and keep its first answer. */
static sky_status choose(sky_gemm_set *s, int i, gemm *e, sky_err *err)
{
    cublasLtMatmulHeuristicResult_t res;
    cublasStatus_t                  st;
    if (heuristics(s, e, &res, 1, &st) < 1) {
        char what[256];
        return sky_fail(err,
                        "%s: cuBLASLt %zu has no algorithm for it on GPU %d (%s, cc %d.%d) with %zu bytes of "
                        "workspace (%s); the spec asks for a GEMM this GPU or library cannot run",
                        desc_fmt(what, sizeof what, i, &e->d), s->lt_version, s->device, s->gpu, s->cc_major,
                        s->cc_minor, s->workspace_bytes,
                        cublasLtGetStatusName(st != CUBLAS_STATUS_SUCCESS ? st : CUBLAS_STATUS_NOT_SUPPORTED));
    }
    e->algo = res.algo;
    e->ws_needed = res.workspaceSize;
    e->waves = res.wavesCount;
    e->tuned = GEMM_HEURISTIC;
    return SKY_OK;
}

/* ---- public -------------------------------------------------------------------------- */

sky_status sky_gemm_init(sky_gemm_set **out, sky_cuda *c, const sky_gemm_desc *descs, int n, void *workspace,
                         size_t workspace_bytes, sky_err *err)
{
    *out = NULL;
    if (n < 0) return sky_fail(err, "gemm table: %d entries", n);
    if (workspace == NULL || !aligned(workspace))
        return sky_fail(err, "gemm table: the cuBLASLt workspace must be device memory aligned to %u bytes",
                        GEMM_ALIGN);
    for (int i = 0; i < n; i++)
        if (check_desc(i, &descs[i], err) != SKY_OK) return SKY_ERR;

    sky_gemm_set *s = calloc(1, sizeof *s);
    gemm         *g = calloc((size_t)(n > 0 ? n : 1), sizeof *g);
    if (s == NULL || g == NULL) {
        free(s);
        free(g);
        return sky_fail(err, "out of host memory for %d GEMM descriptors", n);
    }
    s->g = g;
    s->workspace = workspace;
    s->workspace_bytes = workspace_bytes;
    snprintf(s->gpu, sizeof s->gpu, "%s", c->name);
    s->device = c->device;
    s->sm_count = c->sm_count;
    s->cc_major = c->cc_major;
    s->cc_minor = c->cc_minor;
    s->lt_version = cublasLtGetVersion();
    SKY_CUBLAS_CHECK(cublasLtCreate(&s->lt));
    for (int i = 0; i < n; i++) {
        g[i].d = descs[i];
        build(&g[i]);
        s->n = i + 1; /* built so far: what sky_gemm_free() destroys */
        if (choose(s, i, &g[i], err) != SKY_OK) {
            sky_gemm_free(s);
            return SKY_ERR;
        }
    }
    *out = s;
    return SKY_OK;
}

void sky_gemm_run(sky_gemm_set *s, int i, int m, const void *x, const void *w, const void *bias, void *y, CUstream st)
{
    SKY_ASSERT(i >= 0 && i < s->n);
    gemm *e = &s->g[i];
    SKY_ASSERT(m >= 1 && m <= e->d.m_max);
    SKY_ASSERT(aligned(x) && aligned(w) && aligned(y));
    if (e->d.epilogue != SKY_GEMM_EPI_NONE) {
        SKY_ASSERT(bias != NULL && aligned(bias));
        SKY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias, sizeof bias));
    }
    if (m != e->m_now) {
        uint64_t cols = (uint64_t)m;
        SKY_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(e->b, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols));
        SKY_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(e->cd, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols));
        e->m_now = m;
    }
    const float one = 1.0f, zero = 0.0f;
    SKY_CUBLAS_CHECK(cublasLtMatmul(s->lt, e->op, &one, w, e->a, x, e->b, &zero, y, e->cd, y, e->cd, &e->algo,
                                    s->workspace, s->workspace_bytes, st));
}

/* Set one dimension of a layout (ROWS or COLS) when it changes. */
static void layout_dim(cublasLtMatrixLayout_t l, cublasLtMatrixLayoutAttribute_t which, int v)
{
    uint64_t u = (uint64_t)v;
    SKY_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(l, which, &u, sizeof u));
}

void sky_gemm_run_dims(sky_gemm_set *s, int i, int m, int n, int k, const void *x, const void *w, const void *bias,
                       void *y, CUstream st)
{
    SKY_ASSERT(i >= 0 && i < s->n);
    gemm *e = &s->g[i];
    SKY_ASSERT(n >= 1 && n <= e->d.n && k >= 1 && k <= e->d.k);
    if (n != e->n_now || k != e->k_now) {
        /* a: W, [k, n] (transa T, k x n) or with w_kn (n x k); b: x, k x m; cd: y, n x m */
        layout_dim(e->a, CUBLASLT_MATRIX_LAYOUT_ROWS, e->d.w_kn ? n : k);
        layout_dim(e->a, CUBLASLT_MATRIX_LAYOUT_COLS, e->d.w_kn ? k : n);
        layout_dim(e->b, CUBLASLT_MATRIX_LAYOUT_ROWS, k);
        layout_dim(e->cd, CUBLASLT_MATRIX_LAYOUT_ROWS, n);
        e->n_now = n, e->k_now = k;
    }
    sky_gemm_run(s, i, m, x, w, bias, y, st);
}

/* ---- the choice by measurement (gemm.h: sky_gemm_tune) ----------------------------------- */

#define TUNE_CANDIDATES 4 /* the heuristic's first few */
#define TUNE_RUNS       3 /* timed runs per candidate, after one untimed */

static size_t dtype_bytes(sky_gemm_dtype t) { return t == SKY_GEMM_BF16 ? 2 : 4; }

/* What the choice of GEMM e depends on: the GPU (name, SMs, cc), cuBLASLt's version, the workspace, the
 * desc, and how many candidates are compared. */
static uint64_t tune_key(const sky_gemm_set *s, const gemm *e)
{
    const sky_gemm_desc *d = &e->d;
    int64_t              v[16] = {(int64_t)s->lt_version,
                                  s->sm_count,
                                  s->cc_major,
                                  s->cc_minor,
                                  (int64_t)s->workspace_bytes,
                                  d->m_max,
                                  d->n,
                                  d->k,
                                  d->a_dtype,
                                  d->out_dtype,
                                  d->epilogue,
                                  d->ldx,
                                  d->ldw,
                                  d->ldy,
                                  d->w_kn,
                                  TUNE_CANDIDATES};
    return XXH64(v, sizeof v, XXH64(s->gpu, strlen(s->gpu), 0));
}

/* The cached choice of e: the candidate's rank, or -1 when there is none (or it cannot be read). */
static int cache_read(const char *path)
{
    FILE *f = fopen(path, "r");
    if (!f) return -1;
    int pick = -1;
    if (fscanf(f, "pick %d", &pick) != 1) pick = -1;
    fclose(f);
    return pick;
}

/* Store e's choice at path (a temporary file renamed onto it: a reader never sees half of one). A failure
 * only costs a measurement next time. */
static void cache_write(const char *path, const sky_gemm_set *s, int i, const gemm *e)
{
    char tmp[4200], what[256];
    snprintf(tmp, sizeof tmp, "%s.%ld.tmp", path, (long)getpid());
    FILE *f = fopen(tmp, "w");
    if (!f) return;
    int ok = fprintf(f, "pick %d of %d\n%s on %s, cuBLASLt %zu: %.4f ms per run (the heuristic's first %.4f ms)\n",
                     e->pick, e->candidates, desc_fmt(what, sizeof what, i, &e->d), s->gpu, s->lt_version,
                     (double)e->ms_pick, (double)e->ms_first) > 0;
    ok = (fclose(f) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) unlink(tmp);
}

/* Time candidate c of GEMM e at m_max on stream st (ms per run), or -1 when cuBLASLt refuses to run it. */
static float time_candidate(sky_gemm_set *s, gemm *e, const cublasLtMatmulHeuristicResult_t *c, CUdeviceptr x,
                            CUdeviceptr w, CUdeviceptr y, CUevent ev[2], CUstream st)
{
    const float one = 1.0f, zero = 0.0f;
    const void *xp = (const void *)(uintptr_t)x, *wp = (const void *)(uintptr_t)w;
    void       *yp = (void *)(uintptr_t)y;
    if (cublasLtMatmul(s->lt, e->op, &one, wp, e->a, xp, e->b, &zero, yp, e->cd, yp, e->cd, &c->algo, s->workspace,
                       s->workspace_bytes, st) != CUBLAS_STATUS_SUCCESS)
        return -1;
    SKY_CU_CHECK(cuEventRecord(ev[0], st));
    for (int r = 0; r < TUNE_RUNS; r++)
        SKY_CUBLAS_CHECK(cublasLtMatmul(s->lt, e->op, &one, wp, e->a, xp, e->b, &zero, yp, e->cd, yp, e->cd, &c->algo,
                                        s->workspace, s->workspace_bytes, st));
    SKY_CU_CHECK(cuEventRecord(ev[1], st));
    SKY_CU_CHECK(cuEventSynchronize(ev[1]));
    float ms = 0;
    SKY_CU_CHECK(cuEventElapsedTime(&ms, ev[0], ev[1]));
    return ms / TUNE_RUNS;
}

/* Make candidate pick of the heuristic's found ones GEMM e's algorithm, chosen as how. */
static void take(gemm *e, const cublasLtMatmulHeuristicResult_t *res, int found, int pick, gemm_choice how)
{
    e->algo = res[pick].algo;
    e->ws_needed = res[pick].workspaceSize;
    e->waves = res[pick].wavesCount;
    e->tuned = how;
    e->candidates = found;
    e->pick = pick;
}

/* The bytes of GEMM e's operands at m_max, each rounded up to 256: x, W, y, the bias. */
static void operand_bytes(const gemm *e, size_t b[4])
{
    const sky_gemm_desc *d = &e->d;
    const size_t         in = dtype_bytes(d->a_dtype), out = dtype_bytes(d->out_dtype);
    const size_t         w_rows = (size_t)(d->w_kn ? d->k : d->n);
    b[0] = (size_t)d->m_max * (size_t)ld_x(d) * in;
    b[1] = w_rows * (size_t)ld_w(d) * in;
    b[2] = (size_t)d->m_max * (size_t)ld_y(d) * out;
    b[3] = (size_t)d->n * out;
    for (int i = 0; i < 4; i++) b[i] = (b[i] + 255) / 256 * 256;
}

/* Measure GEMM i's candidates in scratch (x, then W, then y and the bias) and keep the fastest. */
static void tune_one(sky_gemm_set *s, int i, const cublasLtMatmulHeuristicResult_t *res, int found, CUdeviceptr scratch,
                     CUevent ev[2], CUstream st)
{
    gemm                *e = &s->g[i];
    const sky_gemm_desc *d = &e->d;
    size_t               b[4];
    operand_bytes(e, b);
    const CUdeviceptr x = scratch, w = x + b[0], y = w + b[1], bias = y + b[2];
    if (e->m_now != d->m_max) {
        uint64_t cols = (uint64_t)d->m_max;
        SKY_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(e->b, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols));
        SKY_CUBLAS_CHECK(cublasLtMatrixLayoutSetAttribute(e->cd, CUBLASLT_MATRIX_LAYOUT_COLS, &cols, sizeof cols));
        e->m_now = d->m_max;
    }
    if (d->epilogue != SKY_GEMM_EPI_NONE) {
        const void *bp = (const void *)(uintptr_t)bias;
        SKY_CUBLAS_CHECK(cublasLtMatmulDescSetAttribute(e->op, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bp, sizeof bp));
    }
    int   best = -1;
    float best_ms = 0;
    for (int c = 0; c < found; c++) {
        const float ms = time_candidate(s, e, &res[c], x, w, y, ev, st);
        if (c == 0) e->ms_first = ms;
        if (ms >= 0 && (best < 0 || ms < best_ms)) best = c, best_ms = ms;
    }
    if (best < 0) return; /* none ran: the heuristic's first stays */
    take(e, res, found, best, GEMM_MEASURED);
    e->ms_pick = best_ms;
}

void sky_gemm_tune(sky_gemm_set *s, CUdeviceptr scratch, size_t scratch_bytes, const char *cache_dir, CUstream st)
{
    CUevent ev[2] = {NULL, NULL};
    for (int i = 0; i < s->n; i++) {
        gemm                           *e = &s->g[i];
        cublasLtMatmulHeuristicResult_t res[TUNE_CANDIDATES];
        cublasStatus_t                  hs;
        const int                       found = heuristics(s, e, res, TUNE_CANDIDATES, &hs);
        if (found < 2) continue; /* nothing to choose between */
        char path[4096] = "";
        if (cache_dir)
            snprintf(path, sizeof path, "%s/gemm-%016llx.choice", cache_dir, (unsigned long long)tune_key(s, e));
        const int cached = path[0] ? cache_read(path) : -1;
        if (cached >= 0 && cached < found) {
            take(e, res, found, cached, GEMM_CACHED);
            continue;
        }
        size_t b[4];
        operand_bytes(e, b);
        if (b[0] + b[1] + b[2] + b[3] > scratch_bytes) continue; /* too large to measure here: the heuristic's first */
        if (!ev[0]) {
            SKY_CU_CHECK(cuEventCreate(&ev[0], CU_EVENT_DEFAULT));
            SKY_CU_CHECK(cuEventCreate(&ev[1], CU_EVENT_DEFAULT));
        }
        tune_one(s, i, res, found, scratch, ev, st);
        if (e->tuned == GEMM_MEASURED && path[0]) cache_write(path, s, i, e);
    }
    if (ev[0]) {
        SKY_CU_CHECK(cuEventDestroy(ev[0]));
        SKY_CU_CHECK(cuEventDestroy(ev[1]));
    }
}

int sky_gemm_count(const sky_gemm_set *s) { return s->n; }

const sky_gemm_desc *sky_gemm_get_desc(const sky_gemm_set *s, int i)
{
    SKY_ASSERT(i >= 0 && i < s->n);
    return &s->g[i].d;
}

/* The configuration of a chosen algorithm; -1 where cuBLASLt does not say. */
typedef struct algo_config {
    int64_t id, tile, splitk, reduction, swizzle, custom, stages, inner_shape, cluster_shape;
} algo_config;

static int64_t config_u32(const cublasLtMatmulAlgo_t *a, cublasLtMatmulAlgoConfigAttributes_t attr)
{
    uint32_t v = 0;
    size_t   written = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(a, attr, &v, sizeof v, &written) != CUBLAS_STATUS_SUCCESS) return -1;
    return (int64_t)v;
}

static int64_t config_u16(const cublasLtMatmulAlgo_t *a, cublasLtMatmulAlgoConfigAttributes_t attr)
{
    uint16_t v = 0;
    size_t   written = 0;
    if (cublasLtMatmulAlgoConfigGetAttribute(a, attr, &v, sizeof v, &written) != CUBLAS_STATUS_SUCCESS) return -1;
    return (int64_t)v;
}

static algo_config config_of(const gemm *e)
{
    algo_config k;
    k.id = (int32_t)config_u32(&e->algo, CUBLASLT_ALGO_CONFIG_ID); /* int32_t */
    k.tile = config_u32(&e->algo, CUBLASLT_ALGO_CONFIG_TILE_ID);
    k.splitk = (int32_t)config_u32(&e->algo, CUBLASLT_ALGO_CONFIG_SPLITK_NUM); /* int32_t */
    k.reduction = config_u32(&e->algo, CUBLASLT_ALGO_CONFIG_REDUCTION_SCHEME);
    k.swizzle = config_u32(&e->algo, CUBLASLT_ALGO_CONFIG_CTA_SWIZZLING);
    k.custom = config_u32(&e->algo, CUBLASLT_ALGO_CONFIG_CUSTOM_OPTION);
    k.stages = config_u32(&e->algo, CUBLASLT_ALGO_CONFIG_STAGES_ID);
    k.inner_shape = config_u16(&e->algo, CUBLASLT_ALGO_CONFIG_INNER_SHAPE_ID);
    k.cluster_shape = config_u16(&e->algo, CUBLASLT_ALGO_CONFIG_CLUSTER_SHAPE_ID);
    return k;
}

/* "measured: candidate 2 of 4, 0.81 ms (first 0.93 ms)" */
static const char *choice_fmt(char *buf, size_t size, const gemm *e)
{
    if (e->tuned == GEMM_MEASURED)
        snprintf(buf, size, "measured: candidate %d of %d, %.4f ms (first %.4f ms)", e->pick + 1, e->candidates,
                 (double)e->ms_pick, (double)e->ms_first);
    else if (e->tuned == GEMM_CACHED)
        snprintf(buf, size, "cached: candidate %d of %d", e->pick + 1, e->candidates);
    else
        snprintf(buf, size, "the heuristic's first");
    return buf;
}

void sky_gemm_algo_report(const sky_gemm_set *s, FILE *f)
{
    fprintf(f, "cuBLASLt %zu on GPU %d (%s, cc %d.%d, %d SMs), workspace %zu bytes, %d GEMMs, fingerprint %016llx\n",
            s->lt_version, s->device, s->gpu, s->cc_major, s->cc_minor, s->sm_count, s->workspace_bytes, s->n,
            (unsigned long long)sky_gemm_algo_fingerprint(s));
    for (int i = 0; i < s->n; i++) {
        const gemm *e = &s->g[i];
        algo_config k = config_of(e);
        char        what[256], how[128];
        fprintf(f,
                "  %s: algo %lld tile %lld stages %lld splitK %lld reduction %lld swizzle %lld custom %lld "
                "inner %lld cluster %lld, workspace %zu, waves %.2f, %s\n",
                desc_fmt(what, sizeof what, i, &e->d), (long long)k.id, (long long)k.tile, (long long)k.stages,
                (long long)k.splitk, (long long)k.reduction, (long long)k.swizzle, (long long)k.custom,
                (long long)k.inner_shape, (long long)k.cluster_shape, e->ws_needed, (double)e->waves,
                choice_fmt(how, sizeof how, e));
    }
}

uint64_t sky_gemm_algo_fingerprint(const sky_gemm_set *s)
{
    /* Hash a flat list of integers; each field widened to int64 so padding never enters. */
    XXH64_state_t *h = XXH64_createState();
    SKY_ASSERT(h != NULL);
    XXH64_reset(h, 0);
    int64_t head[4] = {(int64_t)s->lt_version, s->sm_count, s->cc_major, s->cc_minor};
    XXH64_update(h, head, sizeof head);
    for (int i = 0; i < s->n; i++) {
        const gemm *e = &s->g[i];
        algo_config k = config_of(e);
        int64_t     v[19] = {e->d.m_max, e->d.n,   e->d.k,    e->d.a_dtype,  e->d.out_dtype, e->d.epilogue, e->d.ldx,
                             e->d.ldw,   e->d.ldy, e->d.w_kn, k.id,          k.tile,         k.splitk,      k.reduction,
                             k.swizzle,  k.custom, k.stages,  k.inner_shape, k.cluster_shape};
        XXH64_update(h, v, sizeof v);
    }
    uint64_t r = XXH64_digest(h);
    XXH64_freeState(h);
    return r;
}

void sky_gemm_free(sky_gemm_set *s)
{
    if (s == NULL) return;
    for (int i = 0; i < s->n; i++) {
        gemm *e = &s->g[i];
        if (e->cd != NULL) SKY_CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(e->cd));
        if (e->b != NULL) SKY_CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(e->b));
        if (e->a != NULL) SKY_CUBLAS_CHECK(cublasLtMatrixLayoutDestroy(e->a));
        if (e->op != NULL) SKY_CUBLAS_CHECK(cublasLtMatmulDescDestroy(e->op));
    }
    if (s->lt != NULL) SKY_CUBLAS_CHECK(cublasLtDestroy(s->lt));
    free(s->g);
    free(s);
}
