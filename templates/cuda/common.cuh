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
// The inline PTX these helpers build on (cp.async, ldmatrix, mma, ex2) is in templates/cuda/ptx.cuh,
// which the generator writes just before this file.

#ifndef SKY_COMMON_CUH
#define SKY_COMMON_CUH

#include <cuda_bf16.h>

typedef __nv_bfloat16 bf16;

// ---- a token's modulation row -----------------------------------------------------------------
// The kernels that read a per-token modulation row (layernorm_modulate, gated_residual, residual_norm) take
// their rows' place with a constant AT: AT 0 is a whole call, token = row; AT 1 a rank's slice of the tokens
// (--use_usp, dit_forward_usp): two more arguments, tok0 (the slice's first token) and mod_rows (the modulation's
// rows), token = tok0 + row and the padding rows past the last token take the last modulation row (as the CPU's
// *_at templates).
#define SKY_AT_ARGS_0
#define SKY_AT_ARGS_1 , int tok0, int mod_rows
#define SKY_MOD_ROW_0(row, tokens_per_row) ((row) / (tokens_per_row))
#define SKY_MOD_ROW_1(row, tokens_per_row) sky_mod_row_at(tok0 + (int)(row), (int)(tokens_per_row), mod_rows)
__device__ __forceinline__ int sky_mod_row_at(int token, int tokens_per_row, int mod_rows)
{
    const int m = token / tokens_per_row;
    return m < mod_rows ? m : mod_rows - 1;
}

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

// ---- shared memory (the PTX primitives are in templates/cuda/ptx.cuh) ------------------

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

// ---- q's RMSNorm (and RoPE) where the attention loads it ------------------------------------

// Eight bf16 values of a q row as 16 bytes (raw): columns col .. col + 7 of one head, g the head's D
// norm weights (fp32), r the row's factor rsqrt(mean(x^2) + eps) (templates/cuda/rms_factor.cu.in).
// Each value times r, then times its weight, in fp32 (rmsnorm.cu.in's and rmsnorm_rope.cu.in's order);
// with a RoPE row tab ([D]: cos at p, sin at D/2 + p; null for none), each pair (col + 2i, col + 2i + 1)
// rotated by pair p = col / 2 + i's angle as rmsnorm_rope.cu.in rotates it; rounded to bf16 once. With r
// computed as those kernels compute it, the result equals theirs bit for bit.
template <int D>
__device__ __forceinline__ uint4 sky_q_prep(uint4 raw, float r, const float *g, const float *tab, int col)
{
    unsigned w[4] = { raw.x, raw.y, raw.z, raw.w };
#pragma unroll
    for (int i = 0; i < 4; i++) {
        const float x = __int_as_float((int)(w[i] << 16)), y = __int_as_float((int)(w[i] & 0xffff0000u));
        const float a = x * r * g[col + 2 * i], b = y * r * g[col + 2 * i + 1];
        if (tab != nullptr) {
            const int p = col / 2 + i;
            const float c = tab[p], s = tab[D / 2 + p];
            w[i] = pack_bf16x2(a * c - b * s, a * s + b * c);
        } else {
            w[i] = pack_bf16x2(a, b);
        }
    }
    uint4 out;
    out.x = w[0], out.y = w[1], out.z = w[2], out.w = w[3];
    return out;
}

#endif // SKY_COMMON_CUH
