/* runtime/cuda/gemm.h — the matrix products of a program through cuBLASLt.
 *
 * Every GEMM is PyTorch's Linear, row-major:
 *
 *     y[m, n] = x[m, k] · W[n, k]^T  (+ bias[n])  (then GELU, tanh form)
 *
 * x is the activation (m rows of k, contiguous), W the checkpoint's weight as stored
 * (n rows of k), y the output (m rows of n). cuBLASLt is column-major; a row-major R x C
 * matrix with row stride C is the same bytes as a column-major C x R matrix with leading
 * dimension C. So x's bytes are x^T (k x m) and W's bytes are W^T (k x n) column-major, and
 * the product is y^T (n x m) = W (n x k) · x^T (k x m), that is
 *
 *     D (n x m, ld n) = op(A) · B      with
 *     A = W as a column-major k x n matrix, ld k, transa = T   (op(A) = n x k)
 *     B = x as a column-major k x m matrix, ld k, transb = N
 *     C = D = y as a column-major n x m matrix, ld n
 *
 * (cuBLASLt's M, N, K are our n, m, k.) The bias epilogue adds a vector the length of D's
 * rows, i.e. bias[n] per output feature, broadcast over the m tokens — Linear's bias. This
 * "TN" form is also the layout cuBLASLt's bf16 tensor-core kernels prefer.
 *
 * Precision. a_dtype BF16: x and W bf16, products accumulated in fp32
 * (CUBLAS_COMPUTE_32F, scale type fp32); split-K partial sums are kept in fp32 too (the
 * preference allows only CUBLASLT_REDUCTION_SCHEME_COMPUTE_TYPE, never in-place or
 * output-type reductions), the epilogue runs in fp32, and y is rounded once to out_dtype.
 * a_dtype F32: x, W, bias and y fp32 with CUBLAS_COMPUTE_32F, which is true fp32 — no TF32
 * (that would be CUBLAS_COMPUTE_32F_FAST_TF32) and no emulation (opt-in compute types only)
 * — for the head and the time-embedding MLP, which the original computes in fp32.
 * a_dtype TF32: fp32 storage with CUBLAS_COMPUTE_32F_FAST_TF32 (the VAE's 1x1 convs, as
 * PyTorch's default cuDNN convolutions compute them).
 *
 * Strides and W's layout (the VAE attention reads q, k and v as column slices of one qkv
 * tensor): ldx, ldw, ldy are row strides in elements (0: packed); with w_kn, W is stored
 * [k, n] row-major (a column-major n x k matrix, used untransposed: transa = N).
 * The bias has out_dtype.
 *
 * GELU. SKY_GEMM_EPI_GELU_TANH_BIAS is CUBLASLT_EPILOGUE_GELU_BIAS: y = GELU(x·W^T + bias).
 * cuBLASLt's header and documentation say only "apply Bias and then GELU transform" and
 * give no formula; PyTorch (aten/src/ATen/native/cuda/Blas.cpp, addmm_out_cuda_impl) uses
 * this epilogue for _addmm_activation(use_gelu=True) and, where it cannot, applies
 * at::gelu_(result, "tanh") instead — i.e. PyTorch treats it as the tanh approximation,
 * which is what Wan's FFN uses (nn.GELU(approximate='tanh')). tests/gpu/runtime_test.c
 * measures the result against both forms on the GPU; trust that, not this comment.
 *
 * Determinism (conventions-and-reliability.md §3.4): the descriptors, layouts and the
 * algorithm of every GEMM are chosen once in sky_gemm_init() from a fixed workspace size
 * and fixed alignment preferences (or by sky_gemm_tune's measurement, cached per GPU), recorded,
 * and reused for every call; runs do not depend on heuristics again. The result is bitwise reproducible for the same GPU model
 * and SM count, cuBLASLt version, m and inputs (the algorithm for m_max is also used for
 * smaller m; list a separate desc per m where the best tile differs).
 *
 * Varying m: the layouts of x and y are made for m_max; sky_gemm_run() sets their column
 * count to the call's m with cublasLtMatrixLayoutSetAttribute (host-side, allocates
 * nothing) when it differs from the last call's. One set is used from one thread and
 * one stream at a time (it shares one workspace).
 */
#ifndef SKY_GEMM_H
#define SKY_GEMM_H

#include <stdint.h>
#include <stdio.h>

#include <cublasLt.h>

#include "cuda/cuda_ctx.h"
#include "models/cuda_abi.h"

/* cuBLAS / cuBLASLt failures after validation (fatal; see cuda.h). */
_Noreturn void sky_cublas_fail_(cublasStatus_t s, const char *stmt, const char *func, const char *file, int line);

static inline void sky_cublas_check_(cublasStatus_t s, const char *stmt, const char *func, const char *file, int line)
{
    if (s != CUBLAS_STATUS_SUCCESS) sky_cublas_fail_(s, stmt, func, file, line);
}

#define SKY_CUBLAS_CHECK(call) sky_cublas_check_((call), #call, __func__, __FILE__, __LINE__)

/* SKY_GEMM_WORKSPACE_BYTES (models/cuda_abi.h): the workspace every set should be given. */

/* Names and values as gen/emit/cuda.lua writes them into the generated tables. */
typedef enum sky_gemm_dtype {
    SKY_GEMM_BF16 = 0,
    SKY_GEMM_F32 = 1,
    SKY_GEMM_TF32 = 2, /* a_dtype only: fp32 storage, tf32 products (CUBLAS_COMPUTE_32F_FAST_TF32) */
} sky_gemm_dtype;

typedef enum sky_gemm_epilogue {
    SKY_GEMM_EPI_BIAS = 0,           /* y = x W^T + bias */
    SKY_GEMM_EPI_GELU_TANH_BIAS = 1, /* y = gelu_tanh(x W^T + bias) */
    SKY_GEMM_EPI_NONE = 2,           /* y = x W^T */
} sky_gemm_epilogue;

/* One GEMM shape of a program: a row of the generated table, written positionally
 * {m_max, n, k, a_dtype, out_dtype, epilogue[, ldx, ldw, ldy, w_kn]}. */
typedef struct sky_gemm_desc {
    int               m_max;     /* most rows of x any call will pass */
    int               n, k;      /* W is [n, k] (or [k, n] with w_kn) */
    sky_gemm_dtype    a_dtype;   /* x and W: BF16 (fp32 accumulation), F32 (true fp32) or TF32 */
    sky_gemm_dtype    out_dtype; /* y and bias: BF16 or F32 (F32 when a_dtype is F32 or TF32) */
    sky_gemm_epilogue epilogue;
    int               ldx, ldw, ldy; /* row strides in elements; 0: packed (k, k or n, n) */
    int               w_kn;          /* 1: W is stored [k, n] (y = x W, the VAE attention's P V) */
} sky_gemm_desc;

typedef struct sky_gemm_set sky_gemm_set; /* opaque */

/* Create a cuBLASLt handle, build every descriptor and layout, and choose each GEMM's
 * algorithm once (heuristic at m_max with `workspace_bytes` of workspace). `workspace` is
 * device memory the set keeps using (16-byte aligned; SKY_GEMM_WORKSPACE_BYTES). Fails
 * with a message naming the desc (index and shape) when a desc is invalid or cuBLASLt has
 * no algorithm for it. */
sky_status sky_gemm_init(sky_gemm_set **out, sky_cuda *c, const sky_gemm_desc *descs, int n, void *workspace,
                         size_t workspace_bytes, sky_err *err);

/* y = epilogue(x · W^T + bias) for GEMM i with m rows (1 <= m <= m_max), enqueued on st.
 * No allocation, no heuristic; capturable into a CUDA Graph. x, w, y, and bias (when the
 * epilogue has one; else NULL) are device pointers aligned to 16 bytes. */
void sky_gemm_run(sky_gemm_set *s, int i, int m, const void *x, const void *w, const void *bias, void *y, CUstream st);

/* The same with n and k of this call too (n <= desc n, k <= desc k): the layouts' sizes are set for
 * the call (host-side), the strides and the algorithm stay those chosen at init. */
void sky_gemm_run_dims(sky_gemm_set *s, int i, int m, int n, int k, const void *x, const void *w, const void *bias,
                       void *y, CUstream st);

/* The choice by measurement (issue 20 item 4): for each GEMM with more than one candidate, time the
 * heuristic's first 4 (one untimed run, then 3 timed between two events, at m_max) and keep the fastest.
 * scratch (scratch_bytes of device memory, 256-aligned, its contents destroyed) holds x, W, y and the bias
 * of the measurement: the plan's arena before the first call; a GEMM whose operands do not fit keeps the
 * heuristic's first. With cache_dir (NULL: none), each choice is stored there as gemm-<key>.choice, key =
 * xxh64 of the GPU's name, SM count and cc, cuBLASLt's version, the workspace and the desc, and read back
 * instead of measuring again: a GPU's choices are made once and every later run computes the same bits.
 * A candidate cuBLASLt refuses to run is skipped. The emulator's heuristic gives one candidate, so nothing is
 * timed there unless it is asked for more (tests/emu). Run it before any graph is captured. */
void sky_gemm_tune(sky_gemm_set *s, CUdeviceptr scratch, size_t scratch_bytes, const char *cache_dir, CUstream st);

/* Number of GEMMs and desc i, as given to sky_gemm_init(). */
int                  sky_gemm_count(const sky_gemm_set *s);
const sky_gemm_desc *sky_gemm_get_desc(const sky_gemm_set *s, int i);

/* Print the chosen algorithm of every GEMM, one line each, after a header line with the
 * GPU, SM count and cuBLASLt version (for --info and the tests). */
void sky_gemm_algo_report(const sky_gemm_set *s, FILE *f);

/* xxh64 over the cuBLASLt version, the SM count and every chosen algorithm: two runs with
 * the same fingerprint ran the same kernels. */
uint64_t sky_gemm_algo_fingerprint(const sky_gemm_set *s);

/* Destroy descriptors and the handle (the workspace belongs to the caller). NULL is fine. */
void sky_gemm_free(sky_gemm_set *s);

#endif /* SKY_GEMM_H */
