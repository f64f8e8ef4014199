// templates/cuda/ptx.cuh
//
// The PTX primitives of the CUDA templates: every inline-asm instruction they use, and nothing
// else, so that this one file names the hardware features the kernels depend on (sm_80+:
// ex2.approx, cvt.rn.bf16x2, cvt.rna.tf32, cp.async, ldmatrix, mma.sync m16n8k16 bf16 and m16n8k8
// tf32; all also on sm_90a).
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

#endif // SKY_PTX_CUH
