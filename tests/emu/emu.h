/* tests/emu/emu.h — the CPU emulator of the CUDA backend: what its parts share (README.md).
 *
 *   cuda_emu.h   the device language for the generated kernels (C++), built on the calls below
 *   emu.c        the fiber scheduler (one fiber per GPU thread), barriers, warp collectives,
 *                cp.async groups, ldmatrix, mma, and the launch of a grid
 *   driver.c     the CUDA driver, runtime, cuBLASLt and NVRTC entry points the runtime uses,
 *                over host memory (so runtime/ and the generated host code run unchanged)
 */
#ifndef SKY_EMU_H
#define SKY_EMU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct { unsigned x, y, z; } sky_emu_dim3;

extern sky_emu_dim3 sky_emu_thread_idx, sky_emu_block_idx, sky_emu_block_dim, sky_emu_grid_dim;

/* One kernel of a module, as the table written by prepare.lua describes it. */
typedef struct sky_emu_kernel {
    const char    *name;
    void         (*run)(void **args);         /* the kernel, parameters unpacked from args */
    int            nargs;
    const size_t  *arg_sizes;                 /* nargs entries */
    int            max_threads;               /* __launch_bounds__ */
} sky_emu_kernel;

/* The kernels of one generated file (gen/<program>_kernels.cu), registered at load time. */
typedef struct sky_emu_module_def {
    const char            *file;              /* "gen/dit_forward_kernels.cu" */
    uint64_t               source_xxh64;      /* of the text the runtime hands to NVRTC */
    int                    n;
    const sky_emu_kernel  *kernels;
    uint64_t               fatbin_xxh64;      /* of the fat binary nvcc made from that text (0: none was built) */
} sky_emu_module_def;

void sky_emu_register(const sky_emu_module_def *m);
const sky_emu_module_def *sky_emu_find_module(const char *file);
/* The module whose fat binary has this xxh64 (the emulated cuModuleLoadData of a real fat binary), or NULL. */
const sky_emu_module_def *sky_emu_find_module_by_fatbin(uint64_t fatbin_xxh64);

/* Run a grid now. dyn_smem: bytes of dynamic shared memory. Faults end the process. */
void sky_emu_launch(const sky_emu_kernel *k, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                    unsigned bz, unsigned dyn_smem, void **args);

/* A fault of the emulated device (bad address, divergent collective, deadlock): names the
 * kernel, block and thread, then exit(3). */
__attribute__((noreturn, format(printf, 1, 2))) void sky_emu_fault(const char *fmt, ...);

/* ---- device side (cuda_emu.h) ------------------------------------------------------------- */

#define SKY_EMU_SLOT_BYTES 64       /* per-lane payload of one warp collective */

enum { SKY_EMU_OP_SHFL = 1, SKY_EMU_OP_SYNCWARP, SKY_EMU_OP_LDMATRIX, SKY_EMU_OP_LDMATRIX_T, SKY_EMU_OP_MMA,
       SKY_EMU_OP_MMA_TF32 };

unsigned sky_emu_linear_tid(void);
void sky_emu_syncthreads(void);
void sky_emu_require_full_mask(unsigned mask, const char *what);
/* Deposit bytes of in for this lane, wait for all 32 lanes of the warp to deposit with the same
 * op, return the warp's 32 slots (SKY_EMU_SLOT_BYTES apart; valid until this lane's next
 * collective). */
const void *sky_emu_warp_exchange(int op, const void *in, size_t bytes);

void *sky_emu_dynamic_smem(void);
unsigned sky_emu_smem_offset(const void *p);
void sky_emu_cp_async_16(unsigned dst, const void *src, int src_bytes);
void sky_emu_cp_async_commit(void);
void sky_emu_cp_async_wait(int n);
void sky_emu_ldmatrix_x4(unsigned r[4], unsigned addr, int trans);
void sky_emu_mma_bf16_16816(float c[4], const unsigned a[4], unsigned b0, unsigned b1);
void sky_emu_mma_tf32_1688(float c[4], const unsigned a[4], unsigned b0, unsigned b1);
unsigned sky_emu_f32_to_tf32(float f);

/* sm_90a (emu.c): mbarriers, TMA copies, named barriers, warpgroup mma. */
/* The emulated driver's CUtensorMap contents (driver.c writes it, emu.c reads it; 128 bytes). */
typedef struct sky_emu_tmap {
    uint32_t magic;                           /* SKY_EMU_TMAP_MAGIC */
    uint32_t elem_bytes;
    uint32_t swizzle_bytes;                   /* 0 (none) or 128 */
    uint32_t box[2];                          /* elements (innermost first) */
    uint32_t pad;
    uint64_t addr;                            /* global address */
    uint64_t dims[2];                         /* elements */
    uint64_t stride1;                         /* bytes from one row to the next */
} sky_emu_tmap;
#define SKY_EMU_TMAP_MAGIC 0x544d4150u        /* "TMAP" */

void sky_emu_mbar_init(unsigned bar, unsigned count);
void sky_emu_mbar_arrive(unsigned bar, unsigned tx_bytes);
int sky_emu_mbar_try_wait(unsigned bar, unsigned parity);
void sky_emu_tma_load_2d(unsigned dst, const void *map, int c0, int c1, unsigned bar);
void sky_emu_bar_sync(unsigned id, unsigned threads);
void sky_emu_bar_arrive(unsigned id, unsigned threads);
/* wgmma m64nNk16 bf16 -> fp32 by the calling warpgroup: A from the descriptor a_desc (a_regs NULL)
 * or from registers a_regs[4]; B from b_desc, transposed (MN-major) when tb. */
void sky_emu_wgmma(float *d, int n, unsigned long long a_desc, const unsigned *a_regs, unsigned long long b_desc,
                   int tb);
/* wgmma.commit_group and wgmma.wait_group n (the queued operations run at the wait). */
void sky_emu_wgmma_commit(void);
void sky_emu_wgmma_wait(int n);

uint16_t sky_emu_f32_to_bf16(float f);
float sky_emu_bf16_to_f32(uint16_t b);

/* ---- counters, for the test's report ------------------------------------------------------- */

typedef struct sky_emu_stats {
    uint64_t launches, blocks, threads, barriers, collectives, gemms;
} sky_emu_stats;

sky_emu_stats sky_emu_get_stats(void);

#ifdef __cplusplus
}
#endif

#endif /* SKY_EMU_H */
