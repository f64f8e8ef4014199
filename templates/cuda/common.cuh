// templates/cuda/common.cuh
//
// Device helpers shared by the CUDA templates (templates/cuda/*.cu.in). The generator writes this
// file once at the top of each generated kernels file, before the rendered templates, so nothing
// here may depend on a template's constants; the include guard makes a second copy harmless.
//
// The same text is compiled by nvcc (CI, tests/compile/) and by NVRTC (the runtime), so it must
// compile under both. What NVRTC 13.0 needs here (checked by tests/compile/attention_compile.sh
// with tests/compile/nvrtc_compile.c, nvrtc 13.0 / CUDA 13.0.88):
//   - NVRTC has no built-in cuda_bf16.h: a bare `#include <cuda_bf16.h>` fails with "could not
//     open source file" (no directories in search list). Give it the toolkit's headers with
//     --include-path=$CUDA_HOME/include, or hand the four headers it opens to
//     nvrtcCreateProgram as in-memory headers: cuda_bf16.h, cuda_bf16.hpp, cuda_fp16.h,
//     cuda_fp16.hpp (664 KB together; under __CUDACC_RTC__ they include nothing else).
//   - Options: --gpu-architecture=sm_80 or sm_90a, -std=c++17 (NVRTC's default, passed anyway;
//     templates use `if constexpr`). No -default-device: every function is marked __device__.
//     -Xptxas=-v works and puts ptxas's register/spill report in the program log.
//   - size_t, uint4, __cvta_generic_to_shared and the __shfl_*_sync intrinsics are built in;
//     <stdint.h>, <math.h> (INFINITY) and <cfloat> are not, so this file uses `unsigned` and
//     __int_as_float(0xff800000) for -inf.
// Everything here is sm_80+ (cp.async, ldmatrix, bf16 mma); it also builds for sm_90a.

#ifndef SKY_COMMON_CUH
#define SKY_COMMON_CUH

#include <cuda_bf16.h>

typedef __nv_bfloat16 bf16;

// ---- reductions ----------------------------------------------------------------------------

// Sum / max over the 32 lanes of a warp; every lane gets the result.
__device__ __forceinline__ float warp_sum(float x)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x += __shfl_xor_sync(0xffffffffu, x, o);
    return x;
}

__device__ __forceinline__ float warp_max(float x)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, o));
    return x;
}

// Sum over the block (blockDim.x a multiple of 32, at most 1024); every thread gets the result.
// Call it from all threads; it can be called again right away (the trailing barrier protects
// the scratch array).
__device__ __forceinline__ float block_sum(float x)
{
    __shared__ float partial[32];
    const int lane = threadIdx.x % 32, warp = threadIdx.x / 32, warps = blockDim.x / 32;
    x = warp_sum(x);
    if (lane == 0) partial[warp] = x;
    __syncthreads();
    x = lane < warps ? partial[lane] : 0.0f;
    x = warp_sum(x);
    __syncthreads();
    return x;
}

// Sum / max over the 4 lanes (xor 1, 2) that together hold one row of an mma.m16n8
// accumulator tile (lanes 4r..4r+3 hold row r).
__device__ __forceinline__ float quad_sum(float x)
{
    x += __shfl_xor_sync(0xffffffffu, x, 1);
    return x + __shfl_xor_sync(0xffffffffu, x, 2);
}

__device__ __forceinline__ float quad_max(float x)
{
    x = fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 1));
    return fmaxf(x, __shfl_xor_sync(0xffffffffu, x, 2));
}

// ---- scalar helpers ------------------------------------------------------------------------

__device__ __forceinline__ float neg_inf(void) { return __int_as_float(0xff800000); }

// 2^x with the hardware approximation (MUFU.EX2, max relative error about 2^-22, which is far
// below the bf16 rounding of its uses). Written as PTX so nvcc and NVRTC emit the same
// instruction whatever the fast-math flags. ex2(-inf) = +0.
__device__ __forceinline__ float ex2(float x)
{
    float y;
    asm("ex2.approx.ftz.f32 %0, %1;" : "=f"(y) : "f"(x));
    return y;
}

// Two floats rounded to nearest-even bf16 and packed: lo in bits 0-15, hi in bits 16-31 (the
// order mma fragments and memory use: the lower address holds the lower half).
__device__ __forceinline__ unsigned pack_bf16x2(float lo, float hi)
{
    unsigned r;
    asm("cvt.rn.bf16x2.f32 %0, %1, %2;" : "=r"(r) : "f"(hi), "f"(lo));
    return r;
}

// ---- shared memory, cp.async, ldmatrix, mma (sm_80+) ---------------------------------------

// 32-bit shared-state-space address of a pointer into shared memory (what cp.async and ldmatrix
// take).
__device__ __forceinline__ unsigned smem_u32(const void *p)
{
    return (unsigned)__cvta_generic_to_shared(p);
}

// 16-byte global -> shared copy that bypasses L1 (.cg). src_bytes < 16 zero-fills the rest:
// 0 reads nothing and writes 16 zero bytes (how tiles past the end of a tensor are padded).
__device__ __forceinline__ void cp_async_16(unsigned dst, const void *src, int src_bytes)
{
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;"
                 :: "r"(dst), "l"(src), "r"(src_bytes) : "memory");
}

__device__ __forceinline__ void cp_async_commit(void)
{
    asm volatile("cp.async.commit_group;" ::: "memory");
}

// Wait until at most N of this thread's committed groups are still in flight. The data is
// visible to other threads only after a barrier that follows the wait.
template <int N>
__device__ __forceinline__ void cp_async_wait(void)
{
    asm volatile("cp.async.wait_group %0;" :: "n"(N) : "memory");
}

// Copies a [ROWS, COLS] bf16 tile, row stride ld elements in global memory, into shared memory
// at dst with a row pitch of PITCH bytes, as 16-byte cp.async by the THREADS threads of the
// block. Rows >= rows_valid are zero-filled and read nothing (their source address is clamped
// to row 0, which the caller guarantees is valid). src and ld*2 must be 16-byte aligned.
template <int ROWS, int COLS, int PITCH, int THREADS>
__device__ __forceinline__ void cp_async_tile(unsigned dst, const bf16 *src, int ld, int rows_valid)
{
    enum { CHUNKS = COLS / 8, STEP = THREADS / CHUNKS };
    static_assert(COLS % 8 == 0, "rows must be whole 16-byte chunks");
    static_assert(THREADS % CHUNKS == 0 && ROWS % STEP == 0,
                  "the tile must split evenly into 16-byte chunks over the block");
    const int c = threadIdx.x % CHUNKS, r0 = threadIdx.x / CHUNKS;
#pragma unroll
    for (int i = 0; i < ROWS / STEP; i++) {
        const int r = r0 + i * STEP;
        const bool ok = r < rows_valid;
        cp_async_16(dst + r * PITCH + c * 16, src + (ok ? r : 0) * ld + c * 8, ok ? 16 : 0);
    }
}

// Four 8x8 b16 matrices from shared memory; lanes 8i..8i+7 give the row addresses of matrix i,
// and register i receives matrix i (lane t: row t/4, columns 2(t%4), 2(t%4)+1).
__device__ __forceinline__ void ldmatrix_x4(unsigned (&r)[4], unsigned addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// Same, each matrix transposed (lane t: rows 2(t%4), 2(t%4)+1 of column t/4).
__device__ __forceinline__ void ldmatrix_x4_trans(unsigned (&r)[4], unsigned addr)
{
    asm volatile("ldmatrix.sync.aligned.m8n8.x4.trans.shared.b16 {%0, %1, %2, %3}, [%4];"
                 : "=r"(r[0]), "=r"(r[1]), "=r"(r[2]), "=r"(r[3]) : "r"(addr));
}

// c += a b on the tensor cores: a 16x16 bf16 (row-major fragment, 4 registers), b 16x8 bf16
// (column fragment, 2 registers), c 16x8 fp32. Fragment layouts: PTX ISA, "Matrix Fragments
// for mma.m16n8k16 with floating point type".
__device__ __forceinline__ void mma_bf16_16816(float (&c)[4], const unsigned (&a)[4], unsigned b0,
                                               unsigned b1)
{
    asm("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

#endif // SKY_COMMON_CUH
