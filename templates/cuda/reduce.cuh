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

// v as a store to p's type would keep it (fp32: v; bf16: rounded to nearest even).
__device__ __forceinline__ float sky_round(const float *, float v) { return v; }
__device__ __forceinline__ float sky_round(const __nv_bfloat16 *, float v)
{
    return __bfloat162float(__float2bfloat16(v));
}

// VEC consecutive values at p as floats (sky_ldv) and VEC floats stored at p (sky_stv), in 16-byte accesses
// where VEC fills them (VEC a multiple of 4 for fp32, of 8 for bf16; p then 16-byte aligned), else one value
// at a time; the values are sky_ld's and sky_st's.
template <int VEC> __device__ __forceinline__ void sky_ldv(const float *p, float *v)
{
#pragma unroll
    for (int k = 0; k < (VEC % 4 == 0 ? VEC / 4 : 0); k++) {
        const uint4 w = reinterpret_cast<const uint4 *>(p)[k];
        v[4 * k] = __int_as_float((int)w.x), v[4 * k + 1] = __int_as_float((int)w.y);
        v[4 * k + 2] = __int_as_float((int)w.z), v[4 * k + 3] = __int_as_float((int)w.w);
    }
#pragma unroll
    for (int k = 0; k < (VEC % 4 == 0 ? 0 : VEC); k++) v[k] = p[k];
}
template <int VEC> __device__ __forceinline__ void sky_ldv(const __nv_bfloat16 *p, float *v)
{
#pragma unroll
    for (int k = 0; k < (VEC % 8 == 0 ? VEC / 8 : 0); k++) {
        const uint4 w = reinterpret_cast<const uint4 *>(p)[k];
        const unsigned h[4] = {w.x, w.y, w.z, w.w};
#pragma unroll
        for (int j = 0; j < 4; j++) {    // the first value in the low half (little endian)
            v[8 * k + 2 * j] = __int_as_float((int)(h[j] << 16));
            v[8 * k + 2 * j + 1] = __int_as_float((int)(h[j] & 0xffff0000u));
        }
    }
#pragma unroll
    for (int k = 0; k < (VEC % 8 == 0 ? 0 : VEC); k++) v[k] = __bfloat162float(p[k]);
}
template <int VEC> __device__ __forceinline__ void sky_stv(float *p, const float *v)
{
#pragma unroll
    for (int k = 0; k < (VEC % 4 == 0 ? VEC / 4 : 0); k++) {
        uint4 w;
        w.x = __float_as_uint(v[4 * k]), w.y = __float_as_uint(v[4 * k + 1]);
        w.z = __float_as_uint(v[4 * k + 2]), w.w = __float_as_uint(v[4 * k + 3]);
        reinterpret_cast<uint4 *>(p)[k] = w;
    }
#pragma unroll
    for (int k = 0; k < (VEC % 4 == 0 ? 0 : VEC); k++) p[k] = v[k];
}
template <int VEC> __device__ __forceinline__ void sky_stv(__nv_bfloat16 *p, const float *v)
{
#pragma unroll
    for (int k = 0; k < (VEC % 8 == 0 ? VEC / 8 : 0); k++) {
        unsigned h[4];
#pragma unroll
        for (int j = 0; j < 4; j++)
            h[j] = (unsigned)__bfloat16_as_ushort(__float2bfloat16(v[8 * k + 2 * j])) |
                   (unsigned)__bfloat16_as_ushort(__float2bfloat16(v[8 * k + 2 * j + 1])) << 16;
        uint4 w;
        w.x = h[0], w.y = h[1], w.z = h[2], w.w = h[3];
        reinterpret_cast<uint4 *>(p)[k] = w;
    }
#pragma unroll
    for (int k = 0; k < (VEC % 8 == 0 ? 0 : VEC); k++) p[k] = __float2bfloat16(v[k]);
}

// The N values of a row at src (global) copied to dst (shared) in 16-byte accesses, chunk k by thread
// k mod THREADS, then a barrier: the row kernels read their strided values from dst afterwards, so each
// thread sums the same values in the same order as reading them one at a time (bit for bit), while global
// memory sees 16-byte loads. src and dst 16-byte aligned, N values a whole number of 16-byte chunks
// (gen/emit/cuda_dit.lua's row_vec chooses this only then).
template <int N, int THREADS, typename T> __device__ __forceinline__ void sky_stage16(T *dst, const T *src)
{
    static_assert(N * sizeof(T) % 16 == 0, "sky_stage16: the row must be whole 16-byte chunks");
    const uint4 *s = reinterpret_cast<const uint4 *>(src);
    uint4 *d = reinterpret_cast<uint4 *>(dst);
#pragma unroll
    for (int k = 0; k < (int)(N * sizeof(T) / 16 + THREADS - 1) / THREADS; k++) {
        const int i = k * THREADS + threadIdx.x;
        if (i < (int)(N * sizeof(T) / 16)) d[i] = s[i];
    }
    __syncthreads();
}

// Activations, fp32 math (reference §2.4-§2.6).
__device__ __forceinline__ float sky_act_silu(float v) { return v / (1.0f + expf(-v)); }
__device__ __forceinline__ float sky_act_gelu_erf(float v) { return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f)); }
__device__ __forceinline__ float sky_act_gelu_tanh(float v)
{
    return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
}
#endif // SKY_REDUCE_CUH
