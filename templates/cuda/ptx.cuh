// templates/cuda/ptx.cuh
//
// The PTX primitives of the CUDA templates: every inline-asm instruction they use, and nothing
// else, so that this one file names the hardware features the kernels depend on (sm_80+:
// ex2.approx, cvt.rn.bf16x2, cvt.rna.tf32, cp.async, ldmatrix, mma.sync m16n8k16 bf16 and m16n8k8
// tf32; all also on sm_90a), and, in the sm_90a section at the end, mbarrier, the bulk tensor copy
// (TMA), warpgroup mma (wgmma) and setmaxnreg.
// The generator writes it at the top of each generated kernels file, before common.cuh.
//
// tests/emu/ runs the generated kernels on the CPU: it defines SKY_PTX_CUH first and supplies
// these functions with the semantics the PTX ISA gives them (fragment layouts, cp.async groups),
// so everything else in a generated file is compiled and checked exactly as written.

#ifndef SKY_PTX_CUH
#define SKY_PTX_CUH

// ---- scalar ----------------------------------------------------------------------------------

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

// ---- shared memory: cp.async, ldmatrix ------------------------------------------------------

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

// fp32 -> the bits a tf32 mma reads as x rounded to nearest, ties away from zero (what cvt.rna gives), in
// one integer add: the tensor cores ignore the 13 low mantissa bits, and adding half of their weight
// carries into the kept bits exactly when cvt.rna would round up. For finite x only (an infinity would
// read as a NaN); where cvt.rna's cost matters (the VAE conv's main loop).
__device__ __forceinline__ unsigned tf32_near(float x) { return __float_as_uint(x) + 0x1000u; }

// fp32 -> tf32 (cvt.rna: round to nearest, ties away from zero), as a 32-bit pattern whose low 13
// mantissa bits are zero: what the tf32 mma reads.
__device__ __forceinline__ unsigned to_tf32(float x)
{
    unsigned r;
    asm("cvt.rna.tf32.f32 %0, %1;" : "=r"(r) : "f"(x));
    return r;
}

// c += a b on the tensor cores in tf32: a 16x8 (row-major fragment, 4 registers), b 8x8 (column
// fragment, 2 registers), c 16x8 fp32. Fragments (g = lane / 4, q = lane % 4): a {(g, q), (g+8, q),
// (g, q+4), (g+8, q+4)}, b {(k q, n g), (k q+4, n g)}, c as for mma_bf16_16816. PTX ISA, "Matrix
// Fragments for mma.m16n8k8" (.tf32).
__device__ __forceinline__ void mma_tf32_1688(float (&c)[4], const unsigned (&a)[4], unsigned b0, unsigned b1)
{
    asm("mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 "
        "{%0, %1, %2, %3}, {%4, %5, %6, %7}, {%8, %9}, {%0, %1, %2, %3};"
        : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
        : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b0), "r"(b1));
}

// ---- sm_90a: mbarrier, TMA, wgmma, setmaxnreg ------------------------------------------------
// Only the Hopper attention kernel (attention_sm90.cu.in) uses these; they are compiled where the
// arch-specific sm_90a features exist (__CUDA_ARCH_FEAT_SM90_ALL: nvcc and NVRTC for sm_90a), and
// that kernel's body is compiled under the same condition (elsewhere it traps and is never launched).

// The tensor map a TMA copy reads (CUtensorMap of cuda.h: 128 opaque bytes, 64-byte aligned), passed
// to a kernel by value as a __grid_constant__ parameter; the host encodes it (cuTensorMapEncodeTiled).
struct __align__(64) sky_tmap { unsigned long long opaque[16]; };

#if defined(__CUDA_ARCH_FEAT_SM90_ALL)
// mbarrier in shared memory (8 bytes, 8-aligned): init with an expected arrival count; a phase
// completes when all arrivals have come and every byte announced with expect_tx has landed.
__device__ __forceinline__ void mbar_init(unsigned bar, unsigned count)
{
    asm volatile("mbarrier.init.shared::cta.b64 [%0], %1;" :: "r"(bar), "r"(count) : "memory");
}

// Makes the initialised barriers visible to the async proxy (TMA) before any use.
__device__ __forceinline__ void mbar_init_fence(void)
{
    asm volatile("fence.mbarrier_init.release.cluster;" ::: "memory");
}

__device__ __forceinline__ void mbar_arrive(unsigned bar)
{
    asm volatile("mbarrier.arrive.shared::cta.b64 _, [%0];" :: "r"(bar) : "memory");
}

// Arrive, announcing `bytes` that copies completing on this barrier will deliver in this phase.
__device__ __forceinline__ void mbar_arrive_expect_tx(unsigned bar, unsigned bytes)
{
    asm volatile("mbarrier.arrive.expect_tx.shared::cta.b64 _, [%0], %1;" :: "r"(bar), "r"(bytes) : "memory");
}

// 1 once the phase of parity `parity` has completed (the barrier's current phase has the other
// parity). A freshly initialised barrier is in phase 0, so waiting for parity 1 passes at once.
__device__ __forceinline__ unsigned mbar_try_wait(unsigned bar, unsigned parity)
{
    unsigned done;
    asm volatile("{\n.reg .pred p;\nmbarrier.try_wait.parity.shared::cta.b64 p, [%1], %2;\nselp.u32 %0, 1, 0, p;\n}"
                 : "=r"(done) : "r"(bar), "r"(parity) : "memory");
    return done;
}

__device__ __forceinline__ void mbar_wait(unsigned bar, unsigned parity)
{
    while (!mbar_try_wait(bar, parity)) {
    }
}

// TMA: the box of the 2-D tensor map at coordinates (c0 innermost, c1) into shared memory at dst,
// completing `box bytes` of transaction on barrier bar. Elements outside the tensor land as zeros.
__device__ __forceinline__ void tma_load_2d(unsigned dst, const sky_tmap *map, int c0, int c1, unsigned bar)
{
    asm volatile("cp.async.bulk.tensor.2d.shared::cluster.global.tile.mbarrier::complete_tx::bytes "
                 "[%0], [%1, {%2, %3}], [%4];"
                 :: "r"(dst), "l"(map), "r"(c0), "r"(c1), "r"(bar) : "memory");
}

// Orders this thread's earlier generic-proxy writes to shared memory (st.shared) before later async-proxy
// reads of it (wgmma's shared-memory operands, TMA stores): what a thread that rewrote a TMA-loaded tile must
// execute before the barrier after which a wgmma reads the tile.
__device__ __forceinline__ void fence_proxy_async_shared(void)
{
    asm volatile("fence.proxy.async.shared::cta;" ::: "memory");
}

// Named barrier `id` (1..15; 0 is __syncthreads) over `threads` threads (a multiple of 32): bar_sync
// arrives and waits for the barrier to complete, bar_arrive arrives without waiting (a producer's signal).
__device__ __forceinline__ void bar_sync(unsigned id, unsigned threads)
{
    asm volatile("bar.sync %0, %1;" :: "r"(id), "r"(threads) : "memory");
}
__device__ __forceinline__ void bar_arrive(unsigned id, unsigned threads)
{
    asm volatile("bar.arrive %0, %1;" :: "r"(id), "r"(threads) : "memory");
}

// The register budget of a warpgroup's role (all 128 threads execute it; the kernel needs a
// register cap at entry: __launch_bounds__(threads, 1)).
template <int N> __device__ __forceinline__ void setmaxnreg_inc(void)
{
    asm volatile("setmaxnreg.inc.sync.aligned.u32 %0;" :: "n"(N));
}
template <int N> __device__ __forceinline__ void setmaxnreg_dec(void)
{
    asm volatile("setmaxnreg.dec.sync.aligned.u32 %0;" :: "n"(N));
}

// wgmma ordering: fence before the first wgmma that reads registers written since (accumulators,
// A fragments); commit closes a group of issued wgmma; wait<N> leaves at most N groups pending.
__device__ __forceinline__ void wgmma_fence(void) { asm volatile("wgmma.fence.sync.aligned;" ::: "memory"); }
__device__ __forceinline__ void wgmma_commit(void) { asm volatile("wgmma.commit_group.sync.aligned;" ::: "memory"); }
template <int N> __device__ __forceinline__ void wgmma_wait(void)
{
    asm volatile("wgmma.wait_group.sync.aligned %0;" :: "n"(N) : "memory");
}

// Operand fences (CUTLASS's warpgroup_fence_operand): an empty asm that reads and writes each register, so
// the compiler keeps every access to an accumulator or A-fragment register on its side of the fence. A wgmma
// reads its A registers and writes its accumulators asynchronously, between its issue and the wgmma.wait_group
// that covers it, which the compiler does not know (to it the asm statement that issued the wgmma did both).
// Fenced before the wgmma.fence of an issue and after the wait that completes it, no code that reads or
// writes those registers can be moved into the window, and their registers cannot be given to other values
// while it is open: correctness then does not rest on one compiler version's scheduling.
template <int N> __device__ __forceinline__ void wgmma_fence_operand(float (&r)[N])
{
#pragma unroll
    for (int i = 0; i < N; i++) asm volatile("" : "+f"(r[i])::"memory");
}
template <int N> __device__ __forceinline__ void wgmma_fence_operand(unsigned (&r)[N][4])
{
#pragma unroll
    for (int i = 0; i < N; i++)
#pragma unroll
        for (int j = 0; j < 4; j++) asm volatile("" : "+r"(r[i][j])::"memory");
}

#define SKY_WG_D64 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
    "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, " \
    "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63}"
#define SKY_WG_OUT64(d) \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
    "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
    "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
    "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
    "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
    "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
    "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
    "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63])
#define SKY_WG_D88 \
    "{%0, %1, %2, %3, %4, %5, %6, %7, %8, %9, %10, %11, %12, %13, %14, %15, %16, %17, %18, %19, %20, %21, " \
    "%22, %23, %24, %25, %26, %27, %28, %29, %30, %31, %32, %33, %34, %35, %36, %37, %38, %39, %40, %41, %42, %43, " \
    "%44, %45, %46, %47, %48, %49, %50, %51, %52, %53, %54, %55, %56, %57, %58, %59, %60, %61, %62, %63, %64, %65, " \
    "%66, %67, %68, %69, %70, %71, %72, %73, %74, %75, %76, %77, %78, %79, %80, %81, %82, %83, %84, %85, %86, %87}"
#define SKY_WG_OUT88(d) \
    "+f"(d[0]), "+f"(d[1]), "+f"(d[2]), "+f"(d[3]), "+f"(d[4]), "+f"(d[5]), "+f"(d[6]), "+f"(d[7]), \
    "+f"(d[8]), "+f"(d[9]), "+f"(d[10]), "+f"(d[11]), "+f"(d[12]), "+f"(d[13]), "+f"(d[14]), "+f"(d[15]), \
    "+f"(d[16]), "+f"(d[17]), "+f"(d[18]), "+f"(d[19]), "+f"(d[20]), "+f"(d[21]), "+f"(d[22]), "+f"(d[23]), \
    "+f"(d[24]), "+f"(d[25]), "+f"(d[26]), "+f"(d[27]), "+f"(d[28]), "+f"(d[29]), "+f"(d[30]), "+f"(d[31]), \
    "+f"(d[32]), "+f"(d[33]), "+f"(d[34]), "+f"(d[35]), "+f"(d[36]), "+f"(d[37]), "+f"(d[38]), "+f"(d[39]), \
    "+f"(d[40]), "+f"(d[41]), "+f"(d[42]), "+f"(d[43]), "+f"(d[44]), "+f"(d[45]), "+f"(d[46]), "+f"(d[47]), \
    "+f"(d[48]), "+f"(d[49]), "+f"(d[50]), "+f"(d[51]), "+f"(d[52]), "+f"(d[53]), "+f"(d[54]), "+f"(d[55]), \
    "+f"(d[56]), "+f"(d[57]), "+f"(d[58]), "+f"(d[59]), "+f"(d[60]), "+f"(d[61]), "+f"(d[62]), "+f"(d[63]), \
    "+f"(d[64]), "+f"(d[65]), "+f"(d[66]), "+f"(d[67]), "+f"(d[68]), "+f"(d[69]), "+f"(d[70]), "+f"(d[71]), \
    "+f"(d[72]), "+f"(d[73]), "+f"(d[74]), "+f"(d[75]), "+f"(d[76]), "+f"(d[77]), "+f"(d[78]), "+f"(d[79]), \
    "+f"(d[80]), "+f"(d[81]), "+f"(d[82]), "+f"(d[83]), "+f"(d[84]), "+f"(d[85]), "+f"(d[86]), "+f"(d[87])

// d (64 x N, fp32) += A B by the warpgroup (scale-d = 1: always accumulate), A 64 x 16 bf16 and B 16 x N bf16 both in
// shared memory, both K-major (a = shared-memory descriptor of A, b of B; see desc in attention_sm90.cu.in); N is
// set by the accumulator array: 64 registers for N = 128, 88 for N = 176 (FlashAttention-3's key tile for head dim
// 128). Accumulators: warp w of the warpgroup holds rows 16w .. 16w + 15; d[4j + 2h + e] is row 16w + lane/4 + 8h,
// column 8j + 2(lane%4) + e (PTX ISA, "wgmma .m64nNk16 register fragment D").
__device__ __forceinline__ void wgmma_m64k16_ss(float (&d)[64], unsigned long long a, unsigned long long b)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %66, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " SKY_WG_D64 ", %64, %65, p, 1, 1, 0, 0;\n}"
                 : SKY_WG_OUT64(d) : "l"(a), "l"(b), "r"(1));
}
__device__ __forceinline__ void wgmma_m64k16_ss(float (&d)[88], unsigned long long a, unsigned long long b)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %90, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n176k16.f32.bf16.bf16 " SKY_WG_D88 ", %88, %89, p, 1, 1, 0, 0;\n}"
                 : SKY_WG_OUT88(d) : "l"(a), "l"(b), "r"(1));
}

// d (64 x 128, fp32) += A B, A 64 x 16 bf16 from registers (a[0..3]: the mma.m16n8k16 A fragment of
// warp w's rows 16w .. 16w + 15), B 16 x 128 bf16 in shared memory, MN-major (transposed: its rows
// of 128 values are contiguous).
__device__ __forceinline__ void wgmma_m64n128k16_rs_tb(float (&d)[64], const unsigned (&a)[4], unsigned long long b)
{
    asm volatile("{\n.reg .pred p;\nsetp.ne.b32 p, %69, 0;\n"
                 "wgmma.mma_async.sync.aligned.m64n128k16.f32.bf16.bf16 " SKY_WG_D64
                 ", {%64, %65, %66, %67}, %68, p, 1, 1, 1;\n}"
                 : SKY_WG_OUT64(d) : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "l"(b), "r"(1));
}
#undef SKY_WG_D64
#undef SKY_WG_OUT64
#undef SKY_WG_D88
#undef SKY_WG_OUT88
#endif // __CUDA_ARCH_FEAT_SM90_ALL

#endif // SKY_PTX_CUH
