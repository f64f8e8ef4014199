// tests/emu/selftest.cu — kernels that check the CPU emulator itself (tests/emu/selftest.c runs them).
// Written in the form gen/emit/cuda.lua emits (C linkage, launch bounds, one kernel per definition),
// with the PTX primitives of templates/cuda/ptx.cuh, so prepare.lua and cuda_emu.h treat it like a
// generated kernels file.
#include <cuda_bf16.h>

// ---- what must work ---------------------------------------------------------------------------

// out[i] = block sum of in over the block (__syncthreads + shared memory + shuffles).
extern "C" __global__ void __launch_bounds__(256)
block_sum_kernel(float *__restrict__ out, const float *__restrict__ in)
{
    __shared__ float part[8];
    const int t = threadIdx.x;
    float v = in[blockIdx.x * blockDim.x + t];
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    if (t % 32 == 0) part[t / 32] = v;
    __syncthreads();
    float s = 0.0f;
    for (int w = 0; w < (int)blockDim.x / 32; w++) s += part[w];
    out[blockIdx.x * blockDim.x + t] = s;
}

// One warp: D[16x8] = A[16x16] B[16x8] through ldmatrix (A row-major, B as rows of B^T) and mma,
// A and B bf16 in global memory, staged through dynamic shared memory with cp.async.
extern "C" __global__ void __launch_bounds__(32)
mma_kernel(float *__restrict__ d, const __nv_bfloat16 *__restrict__ a, const __nv_bfloat16 *__restrict__ bt)
{
    extern __shared__ __align__(16) unsigned char smem[];   // A: 16 rows x 32 B, B^T: 8 rows x 32 B
    const int lane = threadIdx.x;
    const unsigned s = smem_u32(smem);
    // 16 + 8 rows of 32 bytes = 48 chunks of 16 bytes; lane copies chunks lane and lane + 32
    for (int c = lane; c < 48; c += 32) {
        const unsigned char *src = c < 32 ? (const unsigned char *)a + 16 * c : (const unsigned char *)bt + 16 * (c - 32);
        cp_async_16(s + 16 * c, src, 16);
    }
    cp_async_commit();
    cp_async_wait<0>();
    __syncwarp();
    unsigned ra[4], rb[4];
    // A fragment: matrices (rows 0-7, k 0-7), (rows 8-15, k 0-7), (rows 0-7, k 8-15), (rows 8-15, k 8-15)
    const int mat = lane / 8, row = lane % 8;
    ldmatrix_x4(ra, s + 32 * (row + 8 * (mat % 2)) + 16 * (mat / 2));
    // B fragment from B^T rows (n 0-7): matrices (k 0-7) and (k 8-15); lanes 16-31 repeat them
    ldmatrix_x4(rb, s + 512 + 32 * row + 16 * (mat % 2));
    float c[4] = { 0.0f, 0.0f, 0.0f, 0.0f };
    mma_bf16_16816(c, ra, rb[0], rb[1]);
    const int g = lane / 4, q = lane % 4;
    d[g * 8 + 2 * q] = c[0];
    d[g * 8 + 2 * q + 1] = c[1];
    d[(g + 8) * 8 + 2 * q] = c[2];
    d[(g + 8) * 8 + 2 * q + 1] = c[3];
}

// cp.async data is visible only after the wait that covers its group: reads before the wait see
// what shared memory held (the emulator fills it with all-ones bytes, a NaN), after it the copy.
extern "C" __global__ void __launch_bounds__(32)
cp_async_order_kernel(float *__restrict__ out, const float *__restrict__ in)
{
    extern __shared__ __align__(16) unsigned char smem[];
    const int lane = threadIdx.x;
    const unsigned s = smem_u32(smem);
    if (lane == 0) {
        cp_async_16(s, in, 16);
        cp_async_commit();
        out[0] = *(const float *)smem;                // before the wait
        cp_async_wait<0>();
        out[1] = *(const float *)smem;                // after it
    }
}

// ---- what must fault ---------------------------------------------------------------------------

// __syncthreads reached by half of the block only.
extern "C" __global__ void __launch_bounds__(64)
divergent_barrier_kernel(float *__restrict__ out)
{
    if (threadIdx.x < 32) __syncthreads();
    out[threadIdx.x] = 1.0f;
}

// A shuffle that only some lanes of a warp reach.
extern "C" __global__ void __launch_bounds__(32)
divergent_shuffle_kernel(float *__restrict__ out)
{
    float v = (float)threadIdx.x;
    if (threadIdx.x < 16) v = __shfl_xor_sync(0xffffffffu, v, 1);
    out[threadIdx.x] = v;
}

// ldmatrix rows beyond the launch's dynamic shared memory.
extern "C" __global__ void __launch_bounds__(32)
smem_overrun_kernel(float *__restrict__ out)
{
    extern __shared__ __align__(16) unsigned char smem[];
    unsigned r[4];
    ldmatrix_x4(r, smem_u32(smem) + 16 * threadIdx.x);   // 512 bytes of rows, 256 launched
    out[threadIdx.x] = (float)r[0];
}

// A wgmma committed but never waited for: its result is read at once, and the emulator (which runs a wgmma
// only at the wgmma.wait_group covering it) must report the missing wait when the block ends.
extern "C" __global__ void __launch_bounds__(128)
wgmma_unwaited_kernel(float *__restrict__ out)
{
    extern __shared__ __align__(16) unsigned char smem[];
    const unsigned base = (smem_u32(smem) + 1023u) & ~1023u;
    const unsigned long long desc = (unsigned long long)((base & 0x3ffffu) >> 4) | 1ull << 16 | 64ull << 32 | 1ull << 62;
    float d[64];
    for (int i = 0; i < 64; i++) d[i] = 0.0f;
    wgmma_fence();
    wgmma_m64k16_ss(d, desc, desc); // n128: d has 64 registers
    wgmma_commit();
    if (threadIdx.x < 64) out[threadIdx.x] = d[0];
}
