// tests/emu/cuda_emu.h — the CUDA device language on the CPU, for running generated kernels
// without a GPU (tests/emu/README.md).
//
// tests/emu/prepare.lua force-includes this header before a generated gen/<program>_kernels.cu
// and compiles the result with g++ as C++17. Every thread of a block is a fiber (emu.c), so
// __syncthreads, the warp shuffles, ldmatrix and mma.sync are real rendezvous of the threads that
// take part; blocks run one after another. What the kernels get from here:
//   - the qualifiers (__global__, __device__, __shared__ as block-wide static storage, ...);
//   - threadIdx, blockIdx, blockDim, gridDim;
//   - __syncthreads, __syncwarp, __shfl_xor_sync (full mask only), and the math they use;
//   - __nv_bfloat16 / __nv_bfloat162 with the conversions of cuda_bf16.h (round to nearest even);
//   - the PTX primitives of templates/cuda/ptx.cuh (defined here, so that file's copy in the
//     generated text is skipped by its include guard) with the PTX ISA's semantics: cp.async
//     copies land only at the cp.async.wait_group that covers their group, ldmatrix and mma use
//     the documented fragment layouts, shared-memory addresses are bounds- and alignment-checked.
// Anything else a kernel uses fails to compile here: extend this file deliberately.
#ifndef SKY_CUDA_EMU_H
#define SKY_CUDA_EMU_H

#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <type_traits>
#include <utility>

#include "emu.h"

// ---- qualifiers ------------------------------------------------------------------------------

#define __global__
#define __device__
#define __host__
#define __forceinline__ inline
#define __launch_bounds__(...)
// One copy per block: blocks run one at a time, so static storage is the block's shared memory.
#define __shared__ static
#define __constant__ static
#define __align__(n) __attribute__((aligned(n)))

// ---- thread coordinates (set by the scheduler before it resumes a fiber) ---------------------

#define threadIdx sky_emu_thread_idx
#define blockIdx  sky_emu_block_idx
#define blockDim  sky_emu_block_dim
#define gridDim   sky_emu_grid_dim

typedef struct { unsigned x, y, z, w; } uint4;
typedef struct { float x, y; } float2;
typedef struct { float x, y, z, w; } float4;

static inline unsigned sky_emu_lane(void) { return sky_emu_linear_tid() % 32u; }

// ---- barriers and warp collectives ------------------------------------------------------------

inline void __syncthreads(void) { sky_emu_syncthreads(); }
inline void __syncwarp(unsigned mask = 0xffffffffu) { sky_emu_require_full_mask(mask, "__syncwarp"); sky_emu_warp_exchange(SKY_EMU_OP_SYNCWARP, NULL, 0); }

template <typename T>
inline T __shfl_xor_sync(unsigned mask, T v, int lane_mask, int width = 32)
{
    static_assert(std::is_trivially_copyable<T>::value && sizeof(T) <= SKY_EMU_SLOT_BYTES, "shuffle of a large type");
    sky_emu_require_full_mask(mask, "__shfl_xor_sync");
    if (width != 32) sky_emu_fault("__shfl_xor_sync with width %d is not emulated", width);
    const unsigned char *all = (const unsigned char *)sky_emu_warp_exchange(SKY_EMU_OP_SHFL, &v, sizeof v);
    T r;
    memcpy(&r, all + SKY_EMU_SLOT_BYTES * (sky_emu_lane() ^ (unsigned)(lane_mask & 31)), sizeof r);
    return r;
}

// ---- math --------------------------------------------------------------------------------------

inline float rsqrtf(float x) { return 1.0f / sqrtf(x); }
inline float __int_as_float(int i) { float f; memcpy(&f, &i, sizeof f); return f; }
inline float __int_as_float(unsigned i) { float f; memcpy(&f, &i, sizeof f); return f; }
inline int __float_as_int(float f) { int i; memcpy(&i, &f, sizeof i); return i; }
inline unsigned __float_as_uint(float f) { unsigned i; memcpy(&i, &f, sizeof i); return i; }

// ---- bf16 (cuda_bf16.h's names; storage and round-to-nearest-even conversion) ------------------

struct __nv_bfloat16 { unsigned short __x; };
struct __nv_bfloat162 { __nv_bfloat16 x, y; };

inline __nv_bfloat16 __float2bfloat16(float f) { __nv_bfloat16 b; b.__x = sky_emu_f32_to_bf16(f); return b; }
inline __nv_bfloat16 __float2bfloat16_rn(float f) { return __float2bfloat16(f); }
inline float __bfloat162float(__nv_bfloat16 b) { return sky_emu_bf16_to_f32(b.__x); }
inline unsigned short __bfloat16_as_ushort(__nv_bfloat16 b) { return b.__x; }
inline __nv_bfloat162 __floats2bfloat162_rn(float lo, float hi)
{
    __nv_bfloat162 r;
    r.x = __float2bfloat16(lo);
    r.y = __float2bfloat16(hi);
    return r;
}
inline float2 __bfloat1622float2(__nv_bfloat162 v)
{
    float2 r;
    r.x = __bfloat162float(v.x);
    r.y = __bfloat162float(v.y);
    return r;
}

// ---- templates/cuda/ptx.cuh, emulated -----------------------------------------------------------

#define SKY_PTX_CUH

// ex2.approx.ftz.f32: 2^x (exact here; the hardware's error is about 2^-22), subnormals flushed.
inline float ex2(float x)
{
    float y = exp2f(x);
    return fabsf(y) < 1.17549435e-38f ? 0.0f : y;
}

// cvt.rn.bf16x2.f32 d, hi, lo: lo in bits 0-15.
inline unsigned pack_bf16x2(float lo, float hi)
{
    return (unsigned)sky_emu_f32_to_bf16(lo) | ((unsigned)sky_emu_f32_to_bf16(hi) << 16);
}

// A shared-window address: the offset into this launch's dynamic shared memory (the only
// shared memory the kernels address this way).
inline unsigned smem_u32(const void *p) { return sky_emu_smem_offset(p); }

inline void cp_async_16(unsigned dst, const void *src, int src_bytes) { sky_emu_cp_async_16(dst, src, src_bytes); }
inline void cp_async_commit(void) { sky_emu_cp_async_commit(); }
template <int N> inline void cp_async_wait(void) { sky_emu_cp_async_wait(N); }

inline void ldmatrix_x4(unsigned (&r)[4], unsigned addr) { sky_emu_ldmatrix_x4(r, addr, 0); }
inline void ldmatrix_x4_trans(unsigned (&r)[4], unsigned addr) { sky_emu_ldmatrix_x4(r, addr, 1); }

inline void mma_bf16_16816(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    sky_emu_mma_bf16_16816(c, a, b0, b1);
}

inline unsigned to_tf32(float x) { return sky_emu_f32_to_tf32(x); }
inline unsigned tf32_near(float x) { return __float_as_uint(x) + 0x1000u; }

inline void mma_tf32_1688(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    sky_emu_mma_tf32_1688(c, a, b0, b1);
}

// ---- sm_90a (the sm_90a section of ptx.cuh): the emulated device is a cc 9.0 GPU with the
// arch-specific features, so kernels compile their sm_90a bodies.
#define __CUDA_ARCH_FEAT_SM90_ALL 1
#define __grid_constant__
inline void __trap(void) { sky_emu_fault("__trap()"); }
struct __align__(64) sky_tmap { unsigned long long opaque[16]; };
static_assert(sizeof(sky_tmap) == 128 && sizeof(sky_emu_tmap) <= 128, "a tensor map is 128 bytes");
inline void mbar_init(unsigned bar, unsigned count) { sky_emu_mbar_init(bar, count); }
inline void mbar_init_fence(void) {}
inline void mbar_arrive(unsigned bar) { sky_emu_mbar_arrive(bar, 0); }
inline void mbar_arrive_expect_tx(unsigned bar, unsigned bytes) { sky_emu_mbar_arrive(bar, bytes); }
inline unsigned mbar_try_wait(unsigned bar, unsigned parity) { return (unsigned)sky_emu_mbar_try_wait(bar, parity); }
inline void mbar_wait(unsigned bar, unsigned parity)
{
    while (!mbar_try_wait(bar, parity)) {
    }
}
inline void tma_load_2d(unsigned dst, const sky_tmap *map, int c0, int c1, unsigned bar)
{
    sky_emu_tma_load_2d(dst, map, c0, c1, bar);
}
// Shared memory here is one memory for every proxy: the fence orders nothing more.
inline void fence_proxy_async_shared(void) {}
inline void bar_sync(unsigned id, unsigned threads) { sky_emu_bar_sync(id, threads); }
inline void bar_arrive(unsigned id, unsigned threads) { sky_emu_bar_arrive(id, threads); }
template <int N> inline void setmaxnreg_inc(void) { static_assert(N % 8 == 0 && N >= 24 && N <= 256, "setmaxnreg"); }
template <int N> inline void setmaxnreg_dec(void) { static_assert(N % 8 == 0 && N >= 24 && N <= 256, "setmaxnreg"); }
inline void wgmma_fence(void) {}
inline void wgmma_commit(void) { sky_emu_wgmma_commit(); }
template <int N> inline void wgmma_wait(void) { sky_emu_wgmma_wait(N); }
// Operand fences only constrain the compiler's scheduling: here every access happens in program order, and
// a wgmma reads its A registers and writes its accumulators at the wait that covers it (emu.c).
template <int N> inline void wgmma_fence_operand(float (&)[N]) {}
template <int N> inline void wgmma_fence_operand(unsigned (&)[N][4]) {}
inline void wgmma_m64k16_ss(float (&d)[64], unsigned long long a, unsigned long long b)
{
    sky_emu_wgmma(d, 128, a, NULL, b, 0);
}
inline void wgmma_m64k16_ss(float (&d)[88], unsigned long long a, unsigned long long b)
{
    sky_emu_wgmma(d, 176, a, NULL, b, 0);
}
inline void wgmma_m64n128k16_rs_tb(float (&d)[64], const unsigned (&a)[4], unsigned long long b)
{
    sky_emu_wgmma(d, 128, 0, a, b, 1);
}

// ---- the kernel table (written after the kernels by tests/emu/prepare.lua) -----------------------

namespace sky_emu {

template <typename F, F f> struct thunk;

// Calls kernel f with its parameters unpacked from cuLaunchKernel's void *args[].
template <typename... A, void (*f)(A...)>
struct thunk<void (*)(A...), f> {
    template <size_t... I>
    static void call(void **args, std::index_sequence<I...>)
    {
        f(*static_cast<typename std::remove_reference<A>::type *>(args[I])...);
    }
    static void run(void **args) { call(args, std::index_sequence_for<A...>{}); }
    static constexpr int nargs = (int)sizeof...(A);
    static const size_t *sizes()
    {
        static const size_t s[sizeof...(A) + 1] = { sizeof(A)..., 0 };
        return s;
    }
};

} // namespace sky_emu

#define SKY_EMU_KERNEL(fn, max_threads)                                                               \
    { #fn, &sky_emu::thunk<decltype(&fn), &fn>::run, sky_emu::thunk<decltype(&fn), &fn>::nargs,       \
      sky_emu::thunk<decltype(&fn), &fn>::sizes(), (max_threads) }

#endif // SKY_CUDA_EMU_H
