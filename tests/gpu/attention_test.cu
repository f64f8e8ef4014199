// tests/gpu/attention_test.cu — numeric check and benchmark of templates/cuda/attention_sm80.cu.in and attention_sm90.cu.in
//
//   bash tests/gpu/build_attention_test.sh --run [CONFIG]     (or build, then build/gpu/attention_test)
//
// Every rendered schedule (build/gpu/attention_configs.inc) runs every shape below on random bf16
// q, k, v and is compared with a plain fp32 CUDA reference on the same bf16 inputs: one thread
// per (query, head), scores in fp32, two-pass softmax (max, then exp and sums) with expf, divide.
// Shapes are the model's: DF/T2V-1.3B 540P self-attention (51,000 tokens, 12 heads), its text
// cross-attention (512 keys), 14B self-attention over 5 latent frames (10,200 tokens, 40 heads),
// I2V image keys (257), and odd sizes that exercise the tails (lq, lk not multiples of the tiles).
// Each shape is then timed (cudaEvent, 10 runs after 2 warm-ups); FLOPs = 4 lq lk D NH.
// CONFIG (optional) runs only the schedule of that name (e.g. m128n64s2t128, sm90_s2). The sm_90a
// kernels (sm90_*: every schedule of gen/schedule_sm90.lua, and sm90_s1) run on a cc 9.0 GPU only and take TMA
// maps of q (boxes of 128 rows), k and v (boxes of the schedule's BLOCK_N rows), made here as the runtime makes
// them. The timings pick gen/schedule_sm90.lua's default: record them in tests/bench/RESULTS.md.
//
// Error bounds, derived (bf16 keeps 8 significant bits: unit roundoff u = 2^-8):
//   The kernel rounds twice where the reference does not: P = exp(S - max) to bf16 before the
//   P V product (FlashAttention-2 does the same), and the output to bf16. Everything else is fp32
//   (accumulation error ~ sqrt(#terms) 2^-24, ex2.approx ~ 2^-22 relative: negligible).
//   - Per element, worst case: the output rounding is at most u |o|; the P rounding changes each
//     weight by at most u relative, so o by at most u sum_j w_j |v_j| <= u max|v|. Bound:
//     |o - ref| <= 2^-8 |ref| + (2^-8 + 2^-12) max|v|, where 2^-12 max|v| covers fp32 effects
//     (the alpha rescaling over up to ~1,000 key tiles, and o vs ref inside the rounding term).
//   - In norm: a round-to-nearest bf16 error relative to its value is spread as 2^-7 / m over the
//     significand m in [1, 2), uniformly within +-half an ulp: RMS 2^-7 * 0.736 / sqrt(12) =
//     1.66e-3 for log-uniform m (both P and o have such significands). For zero-mean independent
//     v, E|sum_j w_j d_j v_j|^2 / E|sum_j w_j v_j|^2 is the w^2-weighted mean of d_j^2, so the P
//     rounding adds the same 1.66e-3 RMS relative; the two are independent: expected
//     ||o - ref|| / ||ref|| ~ sqrt(2) * 1.66e-3 = 2.35e-3. Bound: u = 2^-8 = 3.9e-3 (1.66x the
//     expectation, which over >= 10^5 elements is steady to a few percent); indexing, masking or
//     rescaling bugs give errors of order 1e-1.
//   v is uniform in [-1, 1) (|v| <= 1 exactly after rounding), q and k uniform in [-a, a).
// Also checked: no NaN/Inf (o is filled with NaN before each run, so unstored rows show), and two
// runs give identical bytes (determinism).
//
// Exit status: 0 all passed; 1 a numeric or determinism failure; 2 a CUDA error; 77 no CUDA
// device (the caller prints "not run (no GPU)").

#include <cuda_runtime.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <vector>

#include <cuda.h>                            // CUtensorMap (the sm_90a kernel's TMA maps)
#include <cudaTypedefs.h>                    // PFN_cuTensorMapEncodeTiled: taken from the driver at run time,
                                             // so the harness starts (and says "no GPU") without libcuda

#include "attention_kernels.cu"             // build/gpu/: common.cuh + the rendered kernels

// The ints after the scale: v's and q's row strides in elements (ldv, ldq; here the packed nh * 128, the
// runtime also passes 3 C for a fused q|k|v); then q's norm at load (row factors, weights, RoPE table:
// null here, as the selftest passes them; lower.lua's q_norm gives them in a forward).
typedef void (*attention_fn)(const bf16 *, const bf16 *, const bf16 *, bf16 *, int, int,
                             float, int, int, const float *, const float *, const float *);

// The sm_90a kernel takes TMA tensor maps of q, k, v instead of their pointers.
typedef void (*attention90_fn)(sky_tmap, sky_tmap, sky_tmap, bf16 *, int, int, float, const float *,
                               const float *, const float *);

struct att_kernel {
    const char    *config;     // schedule name, m<BLOCK_M>n<BLOCK_N>s<STAGES>t<THREADS>, or sm90_<name>
    int            nh;         // heads (a template constant)
    attention_fn   fn;         // the sm_80 kernel, or
    attention90_fn fn90;       // the sm_90a one (cc 9.0 only)
    int            block_m, block_n, stages, threads, smem;
    const void    *entry() const { return fn ? (const void *)fn : (const void *)fn90; }
};

// The map of a bf16 [rows, nh * 128] tensor, boxes of 64 x box_rows, 128-byte swizzle (what
// runtime/cuda/cuda_program.c's sky_cuda_tmap_bf16 makes for the generated code).
static sky_tmap tmap(const bf16 *p, int rows, int nh, int box_rows)
{
    static PFN_cuTensorMapEncodeTiled_v12000 encode;
    if (!encode) {
        cudaDriverEntryPointQueryResult q;
        if (cudaGetDriverEntryPointByVersion("cuTensorMapEncodeTiled", (void **)&encode, 12000, cudaEnableDefault, &q) !=
                cudaSuccess || q != cudaDriverEntryPointSuccess) {
            fprintf(stderr, "attention_test: the driver has no cuTensorMapEncodeTiled\n");
            exit(2);
        }
    }
    CUtensorMap m;
    const cuuint64_t dims[2] = { (cuuint64_t)nh * 128, (cuuint64_t)rows }, stride[1] = { (cuuint64_t)nh * 256 };
    const cuuint32_t box[2] = { 64, (cuuint32_t)box_rows }, elem[2] = { 1, 1 };
    const CUresult r = encode(&m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, (void *)p, dims, stride, box,
                                              elem, CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                                              CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        fprintf(stderr, "attention_test: cuTensorMapEncodeTiled failed (%d)\n", (int)r);
        exit(1);
    }
    sky_tmap t;
    static_assert(sizeof t == sizeof m, "a tensor map is 128 bytes");
    memcpy(&t, &m, sizeof t);
    return t;
}

static const att_kernel kernels[] = {
#include "attention_configs.inc"
};
enum { NKERNELS = sizeof kernels / sizeof kernels[0], D = 128 };

#define CK(call) ck_((call), #call, __FILE__, __LINE__)
static void ck_(cudaError_t e, const char *what, const char *file, int line)
{
    if (e == cudaSuccess) return;
    fprintf(stderr, "%s:%d: %s: %s (%s)\n", file, line, what, cudaGetErrorName(e),
            cudaGetErrorString(e));
    exit(2);
}

// ---- inputs and reference ------------------------------------------------------------------

__device__ unsigned long long splitmix64(unsigned long long z)
{
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

// x[i] = bf16(uniform in [-amp, amp)), a pure function of (seed, i).
__global__ void fill_uniform(bf16 *x, size_t n, unsigned long long seed, float amp)
{
    for (size_t i = blockIdx.x * (size_t)blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x) {
        const float u = (float)(splitmix64(seed * 0x100000001b3ull + i) >> 40) * 0x1p-24f;
        x[i] = __float2bfloat16((2.0f * u - 1.0f) * amp);
    }
}

// o[n, h, :] = softmax(q[n, h] k[:, h]^T * scale) v[:, h] in fp32; one thread per (n, h).
__global__ void __launch_bounds__(128)
attention_reference(float *o, const bf16 *q, const bf16 *k, const bf16 *v, int lq, int lk,
                    int nh, float scale)
{
    const int n = blockIdx.x * blockDim.x + threadIdx.x, h = blockIdx.y;
    if (n >= lq) return;
    const size_t ld = (size_t)nh * D;
    __nv_bfloat162 qr[D / 2];                       // packed: q and acc both fit in registers
#pragma unroll
    for (int d = 0; d < D / 2; d++) qr[d] = ((const __nv_bfloat162 *)(q + n * ld + h * D))[d];

    // The warp's 32 threads share h and read the same key row: one broadcast load each.
    auto score = [&](int j) {
        const __nv_bfloat162 *kr = (const __nv_bfloat162 *)(k + j * ld + h * D);
        float s[4] = {0.0f, 0.0f, 0.0f, 0.0f};      // 4 chains: latency, not accuracy
#pragma unroll
        for (int d = 0; d < D / 2; d++) {
            const float2 a = __bfloat1622float2(qr[d]), b = __bfloat1622float2(kr[d]);
            s[d % 2 * 2] += a.x * b.x;
            s[d % 2 * 2 + 1] += a.y * b.y;
        }
        return (s[0] + s[1] + s[2] + s[3]) * scale;
    };
    float mx = -INFINITY;
    for (int j = 0; j < lk; j++) mx = fmaxf(mx, score(j));
    float acc[D];
#pragma unroll
    for (int d = 0; d < D; d++) acc[d] = 0.0f;
    float l = 0.0f;
    for (int j = 0; j < lk; j++) {
        const float p = expf(score(j) - mx);
        const bf16 *vr = v + j * ld + h * D;
        l += p;
#pragma unroll
        for (int d = 0; d < D; d++) acc[d] += p * __bfloat162float(vr[d]);
    }
#pragma unroll
    for (int d = 0; d < D; d++) o[n * ld + h * D + d] = acc[d] / l;
}

// ---- the test --------------------------------------------------------------------------------

struct shape {
    const char *name;
    int lq, lk, nh;
    float amp_qk;              // q, k uniform in [-amp_qk, amp_qk): logit std = amp_qk^2 / 3
};

static const shape shapes[] = {
    {"self 1.3B 540P",       51000, 51000, 12, 2.0f},
    {"cross text 1.3B 540P", 51000,   512, 12, 2.0f},
    {"self 14B 5 frames",    10200, 10200, 40, 2.0f},
    {"cross image 14B",      10200,   257, 40, 2.0f},
    {"odd tails",             1000,   777, 12, 2.0f},
    {"peaky softmax",         4096,  4096, 12, 6.0f},   // logit std 12: rescaling every tile
    {"one tile + 1",           129,    65, 40, 2.0f},
    {"one query, one key",       1,     1, 12, 2.0f},
};
enum { NSHAPES = sizeof shapes / sizeof shapes[0], TIMED_RUNS = 10, WARMUP_RUNS = 2 };

static float bf16_bits_to_float(unsigned short b)
{
    unsigned u = (unsigned)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

struct result {
    double rel, max_abs, worst_ratio;   // ||o-ref||/||ref||, max |o-ref|, max |o-ref| / bound
    long   bad;                         // elements over their bound, or not finite
};

static result compare(const std::vector<unsigned short> &o, const std::vector<float> &ref,
                      float vmax)
{
    result r = {0, 0, 0, 0};
    double num = 0, den = 0;
    for (size_t i = 0; i < o.size(); i++) {
        const double x = bf16_bits_to_float(o[i]), y = ref[i], d = fabs(x - y);
        const double bound = 0x1p-8 * fabs(y) + (0x1p-8 + 0x1p-12) * vmax;
        if (!isfinite(x) || !(d <= bound)) r.bad++;
        if (d > r.max_abs) r.max_abs = d;
        if (d / bound > r.worst_ratio) r.worst_ratio = d / bound;
        num += d * d;
        den += y * y;
    }
    r.rel = den > 0 ? sqrt(num / den) : sqrt(num);
    return r;
}

int main(int argc, char **argv)
{
    const char *only = argc > 1 ? argv[1] : NULL;
    int ndev = 0;
    if (cudaGetDeviceCount(&ndev) != cudaSuccess || ndev == 0) {
        printf("attention_test: no CUDA device\n");
        return 77;
    }
    cudaDeviceProp prop;
    CK(cudaGetDeviceProperties(&prop, 0));
    printf("device: %s, sm_%d%d, %d SMs, %zu B shared memory per block (opt-in)\n", prop.name,
           prop.major, prop.minor, prop.multiProcessorCount, prop.sharedMemPerBlockOptin);

    // What each kernel got from ptxas, and how many blocks fit on an SM.
    printf("\n%-14s %3s %5s %8s %6s %6s %9s\n", "config", "NH", "regs", "smem B", "local", "blk/SM",
           "status");
    std::vector<bool> usable(NKERNELS, false);
    for (int i = 0; i < NKERNELS; i++) {
        const att_kernel &kn = kernels[i];
        if (only && strcmp(only, kn.config) != 0) continue;
        if (kn.fn90 && !(prop.major == 9 && prop.minor == 0)) {
            printf("%-14s %3d %5s %8d %6s %6s %9s\n", kn.config, kn.nh, "-", kn.smem, "-", "-",
                   "skipped (sm_90a kernel, not a cc 9.0 GPU)");
            continue;
        }
        if ((size_t)kn.smem > prop.sharedMemPerBlockOptin) {
            printf("%-14s %3d %5s %8d %6s %6s %9s\n", kn.config, kn.nh, "-", kn.smem, "-", "-",
                   "skipped (shared memory)");
            continue;
        }
        CK(cudaFuncSetAttribute(kn.entry(), cudaFuncAttributeMaxDynamicSharedMemorySize, kn.smem));
        cudaFuncAttributes fa;
        CK(cudaFuncGetAttributes(&fa, kn.entry()));
        int blocks = 0;
        CK(cudaOccupancyMaxActiveBlocksPerMultiprocessor(&blocks, kn.entry(), kn.threads, kn.smem));
        printf("%-14s %3d %5d %8d %6zu %6d %9s\n", kn.config, kn.nh, fa.numRegs, kn.smem,
               fa.localSizeBytes, blocks, "ok");
        usable[i] = true;
    }

    const double scale = 1.0 / sqrt((double)D);
    const float scale_log2 = (float)(scale * 1.4426950408889634);   // log2(e) / sqrt(D)
    const float vmax = 1.0f;                                        // v uniform in [-1, 1)
    int failures = 0, checked = 0;
    cudaEvent_t t0, t1;
    CK(cudaEventCreate(&t0));
    CK(cudaEventCreate(&t1));

    printf("\n%-22s %6s %6s %3s %-14s %9s %9s %9s %9s %9s %6s\n", "shape", "lq", "lk", "NH",
           "config", "rel err", "bound", "max|d|", "max d/bd", "ms", "TFLOP/s");
    for (int si = 0; si < NSHAPES; si++) {
        const shape &sh = shapes[si];
        const size_t nq = (size_t)sh.lq * sh.nh * D, nk = (size_t)sh.lk * sh.nh * D;
        bf16 *q, *k, *v, *o;
        float *ref;
        CK(cudaMalloc(&q, nq * sizeof(bf16)));
        CK(cudaMalloc(&k, nk * sizeof(bf16)));
        CK(cudaMalloc(&v, nk * sizeof(bf16)));
        CK(cudaMalloc(&o, nq * sizeof(bf16)));
        CK(cudaMalloc(&ref, nq * sizeof(float)));
        fill_uniform<<<1024, 256>>>(q, nq, 3 * si + 1, sh.amp_qk);
        fill_uniform<<<1024, 256>>>(k, nk, 3 * si + 2, sh.amp_qk);
        fill_uniform<<<1024, 256>>>(v, nk, 3 * si + 3, vmax);
        CK(cudaGetLastError());
        attention_reference<<<dim3((sh.lq + 127) / 128, sh.nh), 128>>>(ref, q, k, v, sh.lq, sh.lk,
                                                                       sh.nh, (float)scale);
        CK(cudaGetLastError());
        std::vector<float> href(nq);
        CK(cudaMemcpy(href.data(), ref, nq * sizeof(float), cudaMemcpyDeviceToHost));
        std::vector<unsigned short> ho(nq), ho2(nq);

        for (int i = 0; i < NKERNELS; i++) {
            const att_kernel &kn = kernels[i];
            if (!usable[i] || kn.nh != sh.nh) continue;
            const dim3 grid((sh.lq + kn.block_m - 1) / kn.block_m, sh.nh);
            const sky_tmap tq = tmap(q, sh.lq, sh.nh, 128), tk = tmap(k, sh.lk, sh.nh, kn.block_n),
                           tv = tmap(v, sh.lk, sh.nh, kn.block_n);
            auto launch = [&]() {
                if (kn.fn) kn.fn<<<grid, kn.threads, kn.smem>>>(q, k, v, o, sh.lq, sh.lk, scale_log2, sh.nh * 128,
                                                                 sh.nh * 128, nullptr, nullptr, nullptr);
                else kn.fn90<<<grid, kn.threads, kn.smem>>>(tq, tk, tv, o, sh.lq, sh.lk, scale_log2, nullptr, nullptr,
                                                             nullptr);
            };
            CK(cudaMemset(o, 0xff, nq * sizeof(bf16)));           // NaN: unwritten rows show
            launch();
            CK(cudaGetLastError());
            CK(cudaMemcpy(ho.data(), o, nq * sizeof(bf16), cudaMemcpyDeviceToHost));
            const result r = compare(ho, href, vmax);

            for (int w = 0; w < WARMUP_RUNS; w++) launch();
            CK(cudaEventRecord(t0));
            for (int w = 0; w < TIMED_RUNS; w++) launch();
            CK(cudaEventRecord(t1));
            CK(cudaEventSynchronize(t1));
            CK(cudaGetLastError());
            float ms = 0;
            CK(cudaEventElapsedTime(&ms, t0, t1));
            ms /= TIMED_RUNS;
            CK(cudaMemcpy(ho2.data(), o, nq * sizeof(bf16), cudaMemcpyDeviceToHost));
            const bool same = memcmp(ho.data(), ho2.data(), nq * sizeof(bf16)) == 0;

            const double flops = 4.0 * sh.lq * sh.lk * D * sh.nh;
            const bool ok = r.bad == 0 && r.rel <= 0x1p-8 && same;
            checked++;
            failures += !ok;
            printf("%-22s %6d %6d %3d %-14s %9.2e %9.2e %9.2e %9.3f %9.3f %6.1f  %s%s\n", sh.name,
                   sh.lq, sh.lk, sh.nh, kn.config, r.rel, 0x1p-8, r.max_abs, r.worst_ratio, ms,
                   flops / (ms * 1e-3) / 1e12, ok ? "ok" : "FAIL",
                   same ? "" : " (runs differ)");
            if (r.bad) printf("    %ld elements over the per-element bound or not finite\n", r.bad);
        }
        CK(cudaFree(q));
        CK(cudaFree(k));
        CK(cudaFree(v));
        CK(cudaFree(o));
        CK(cudaFree(ref));
    }
    printf("\nattention_test: %d checks, %d failed (device %s)\n", checked, failures, prop.name);
    printf("%d passed, %d failed\n", checked - failures, failures);
    if (checked == 0) {
        printf("attention_test: no kernel ran (config filter '%s'?)\n", only ? only : "");
        return 1;
    }
    return failures ? 1 : 0;
}
