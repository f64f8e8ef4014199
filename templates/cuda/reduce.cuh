// templates/cuda/reduce.cuh — block-wide sums for the row kernels (norms). Included once per
// generated kernels file, after common.cuh. Deterministic: a fixed tree, no atomics.
#ifndef SKY_REDUCE_CUH
#define SKY_REDUCE_CUH

// Sum of v over the warp (butterfly; every lane gets the total).
__device__ __forceinline__ float sky_warp_sum(float v)
{
#pragma unroll
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

// Sum of v over a block of `threads` (a multiple of 32, at most 1024); every thread gets the total.
// `scratch` is 32 floats of shared memory; the function synchronises before reusing it.
__device__ __forceinline__ float sky_block_sum(float v, float *scratch, int threads)
{
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    v = sky_warp_sum(v);
    __syncthreads();                       // scratch may still be read by a previous call
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    float t = lane < threads / 32 ? scratch[lane] : 0.0f;
    return sky_warp_sum(t);
}

// Stored type <-> float.
__device__ __forceinline__ float sky_ld(const float *p) { return *p; }
__device__ __forceinline__ float sky_ld(const __nv_bfloat16 *p) { return __bfloat162float(*p); }
__device__ __forceinline__ void sky_st(float *p, float v) { *p = v; }
__device__ __forceinline__ void sky_st(__nv_bfloat16 *p, float v) { *p = __float2bfloat16(v); }



// Activations, fp32 math (reference §2.4-§2.6).
__device__ __forceinline__ float sky_act_silu(float v) { return v / (1.0f + expf(-v)); }
__device__ __forceinline__ float sky_act_gelu_erf(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }
__device__ __forceinline__ float sky_act_gelu_tanh(float v)
{
    return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
}
#endif // SKY_REDUCE_CUH
