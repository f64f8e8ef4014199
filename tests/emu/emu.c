/* tests/emu/emu.c — the emulated GPU: one fiber per thread of a block, blocks one after another.
 *
 * A launch runs its blocks in order (x fastest). The threads of a block are fibers on
 * one OS thread, resumed in thread order; a thread runs until it finishes or reaches a barrier:
 *   __syncthreads   waits until every thread of the block has arrived (a thread that has exited
 *                   never arrives: the block then deadlocks, which is reported as a fault);
 *   warp collectives (shuffles, __syncwarp, ldmatrix, mma) wait until all 32 lanes of the warp
 *                   have arrived at the same collective; the last lane to arrive releases them.
 * So results are deterministic and a kernel that relies on anything the CUDA programming model
 * does not promise (a divergent collective, a missing barrier before reading another thread's
 * cp.async data) either faults here or reads stale data.
 *
 * Faults (bad shared-memory address, misaligned cp.async or ldmatrix, divergent collective,
 * deadlock) print the kernel, block, thread and reason, and exit(3): on a GPU the same bug is an
 * illegal-address error or a hang.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#include "emu.h"

/* ---- context switch ---------------------------------------------------------------------------
 * On x86-64 a fiber switch saves the callee-saved registers on the current stack and swaps stack
 * pointers (no system call, unlike swapcontext's signal-mask save); elsewhere ucontext is used. A
 * fiber never returns: its entry function switches back to the scheduler when the thread is done. */
#if defined(__x86_64__)
typedef struct emu_ctx { void *sp; } emu_ctx;
void sky_emu_switch(emu_ctx *from, emu_ctx *to);
__asm__(".text\n"
        ".globl sky_emu_switch\n"
        ".type sky_emu_switch, @function\n"
        "sky_emu_switch:\n"
        "    pushq %rbp\n    pushq %rbx\n    pushq %r12\n    pushq %r13\n    pushq %r14\n    pushq %r15\n"
        "    movq %rsp, (%rdi)\n"
        "    movq (%rsi), %rsp\n"
        "    popq %r15\n    popq %r14\n    popq %r13\n    popq %r12\n    popq %rbx\n    popq %rbp\n"
        "    ret\n"
        ".size sky_emu_switch, .-sky_emu_switch\n");

/* A fresh context on [base, base + size) that starts in entry (which must never return). */
static void ctx_make(emu_ctx *c, char *base, size_t size, void (*entry)(void))
{
    uintptr_t top = ((uintptr_t)base + size) & ~(uintptr_t)15;
    void **sp = (void **)top;
    *--sp = NULL;                          /* entry's "return address": rsp = 8 (mod 16) at entry */
    *--sp = (void *)entry;                 /* popped by sky_emu_switch's ret */
    for (int i = 0; i < 6; i++) *--sp = NULL;   /* rbp rbx r12 r13 r14 r15 */
    c->sp = sp;
}

static void ctx_switch(emu_ctx *from, emu_ctx *to) { sky_emu_switch(from, to); }
#else
typedef ucontext_t emu_ctx;

static void ctx_make(emu_ctx *c, char *base, size_t size, void (*entry)(void))
{
    if (getcontext(c) != 0) sky_emu_fault("getcontext failed");
    c->uc_stack.ss_sp = base;
    c->uc_stack.ss_size = size;
    c->uc_link = NULL;
    makecontext(c, entry, 0);
}

static void ctx_switch(emu_ctx *from, emu_ctx *to)
{
    if (swapcontext(from, to) != 0) sky_emu_fault("swapcontext failed");
}
#endif

sky_emu_dim3 sky_emu_thread_idx, sky_emu_block_idx, sky_emu_block_dim, sky_emu_grid_dim;

#define MAX_THREADS  1024
#define STACK_BYTES  ((size_t)256 << 10)   /* per fiber; a guard page below each */
#define PENDING_MAX  256                   /* cp.async copies in flight per thread */
#define WG_OPS_MAX   64                    /* wgmma in flight per warpgroup */

enum { READY, WAIT_BLOCK, WAIT_WARP, WAIT_MBAR, WAIT_NBAR, WAIT_WG, DONE };

typedef struct pending {
    unsigned char *dst;
    unsigned       group;                 /* the commit group it belongs to */
    unsigned char  data[16];
} pending;

typedef struct fiber {
    emu_ctx      ctx;
    int          state;
    unsigned     tid;                     /* linear index in the block */
    sky_emu_dim3 idx;
    unsigned     collectives;             /* warp collectives done in this block */
    int          op;                      /* the collective it waits in */
    unsigned     committed;               /* cp.async groups committed */
    unsigned     wait_on;                 /* the mbarrier (WAIT_MBAR) or named barrier (WAIT_NBAR) */
    unsigned     wg_ops;                  /* warpgroup collectives done in this block */
    unsigned     wg_commits;              /* wgmma.commit_group done in this block */
    int          npend;
    pending      pend[PENDING_MAX];
} fiber;

static struct {
    fiber                *f;
    char                 *stacks;
    size_t                stack_stride;
    unsigned              nthreads;
    fiber                *cur;
    emu_ctx               main;
    const sky_emu_kernel *k;
    void                **args;
    unsigned char        *smem;                 /* the launch's dynamic shared memory window */
    unsigned char        *smem_alloc;           /* what was allocated: the window starts smem_off bytes in */
    size_t                smem_bytes;
    unsigned              smem_off;             /* shared address of the window (SKY_EMU_SMEM_OFFSET) */
    unsigned              block_arrived;
    unsigned              warp_arrived[MAX_THREADS / 32];
    unsigned char         bank[2][MAX_THREADS][SKY_EMU_SLOT_BYTES];
    /* The A B product of a warp's latest mma, computed by the first lane to resume after the rendezvous
     * and reused by the other 31 (each then adds its own accumulators): product[warp], tagged with the
     * warp's collective count. */
    float                 product[MAX_THREADS / 32][16][8];
    unsigned              product_gen[MAX_THREADS / 32];
    sky_emu_stats         stats;
    /* sm_90a: the block's mbarriers, TMA copies not yet landed, named barriers, warpgroup rendezvous. */
    struct mbar { unsigned addr, count, pending, phase; long long tx; } mbar[64];
    int                   n_mbar;
    struct tma { unsigned dst, bar; int c0, c1; sky_emu_tmap map; } tma[256];
    int                   n_tma;
    int                   tma_eager;       /* SKY_EMU_TMA=eager: copies land at issue, not at the wait */
    unsigned              nbar_arrived[16];
    unsigned              nbar_threads[16];    /* the thread count of the barrier's current phase */
    unsigned              wg_arrived[MAX_THREADS / 128];
    struct wg_slot { float *d; int n, tb; unsigned long long a_desc, b_desc; const unsigned *a; int regs; }
                          wg_slot[MAX_THREADS];
    /* wgmma issued and not yet waited for, per warpgroup in issue order: they run at the wgmma.wait_group
     * that covers them, reading their operands (shared memory, the A registers) and accumulating into
     * their D registers then, so a kernel that touches either before the wait gets other numbers. */
    struct wg_op { int n, tb, regs; unsigned long long a_desc, b_desc; unsigned group; float *d[128];
                   const unsigned *a[128]; } wg_op[MAX_THREADS / 128][WG_OPS_MAX];
    int                   n_wg_op[MAX_THREADS / 128];
    unsigned              wg_wait_arrived[MAX_THREADS / 128];
    unsigned              wg_due[MAX_THREADS / 128];   /* a wait completed: run the groups below this */
    int                   wg_due_set[MAX_THREADS / 128];
    unsigned long         wg_due_pass[MAX_THREADS / 128];  /* in the scheduler pass after this one */
    unsigned long         pass;                /* scheduler passes over the block's threads */
} S;

void sky_emu_fault(const char *fmt, ...)
{
    va_list ap;
    fflush(stdout);
    fprintf(stderr, "cuda emulator: fault");
    if (S.k) {
        fprintf(stderr, " in kernel %s, block (%u,%u,%u)", S.k->name, sky_emu_block_idx.x, sky_emu_block_idx.y,
                sky_emu_block_idx.z);
        if (S.cur) fprintf(stderr, ", thread (%u,%u,%u)", S.cur->idx.x, S.cur->idx.y, S.cur->idx.z);
    }
    fprintf(stderr, ": ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n");
    exit(3);
}

sky_emu_stats sky_emu_get_stats(void)
{
    return S.stats;
}

/* ---- bf16 ----------------------------------------------------------------------------------- */

uint16_t sky_emu_f32_to_bf16(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (isnan(f)) return 0x7fff;                        /* cuda_bf16.h's canonical NaN */
    u += 0x7fffu + ((u >> 16) & 1u);                    /* round to nearest, ties to even */
    return (uint16_t)(u >> 16);
}

float sky_emu_bf16_to_f32(uint16_t b)
{
    uint32_t u = (uint32_t)b << 16;
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* ---- fibers ---------------------------------------------------------------------------------- */

static void stacks_init(void)
{
    if (S.f) return;
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    S.stack_stride = STACK_BYTES + page;
    S.stacks = mmap(NULL, S.stack_stride * MAX_THREADS, PROT_READ | PROT_WRITE,
                    MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    S.f = calloc(MAX_THREADS, sizeof *S.f);
    if (S.stacks == MAP_FAILED || !S.f) {
        fprintf(stderr, "cuda emulator: cannot reserve fiber stacks\n");
        exit(3);
    }
    for (int i = 0; i < MAX_THREADS; i++)               /* a guard page below each stack */
        if (mprotect(S.stacks + (size_t)i * S.stack_stride, page, PROT_NONE) != 0) {
            fprintf(stderr, "cuda emulator: mprotect of a guard page failed\n");
            exit(3);
        }
}

static void complete_pending(fiber *f, unsigned below_group)
{
    int kept = 0;
    for (int i = 0; i < f->npend; i++) {
        pending *p = &f->pend[i];
        if (p->group < below_group) memcpy(p->dst, p->data, 16);
        else f->pend[kept++] = *p;
    }
    f->npend = kept;
}

static void fiber_entry(void)
{
    fiber *f = S.cur;
    S.k->run(S.args);
    complete_pending(f, ~0u);
    f->state = DONE;
    ctx_switch(&f->ctx, &S.main);         /* never resumed */
    sky_emu_fault("a finished thread was resumed");
}

static void resume(fiber *f)
{
    S.cur = f;
    sky_emu_thread_idx = f->idx;
    ctx_switch(&S.main, &f->ctx);
    S.cur = NULL;
}

static void yield(fiber *f)
{
    ctx_switch(&f->ctx, &S.main);
}

/* A fresh fiber for thread t of the block (its own function: getcontext returns twice). */
static __attribute__((noinline)) void fiber_init(unsigned t)
{
    fiber *f = &S.f[t];
    f->tid = t;
    f->idx.x = t % sky_emu_block_dim.x;
    f->idx.y = t / sky_emu_block_dim.x % sky_emu_block_dim.y;
    f->idx.z = t / (sky_emu_block_dim.x * sky_emu_block_dim.y);
    f->state = READY;
    f->collectives = 0;
    f->committed = 0;
    f->npend = 0;
    f->wg_ops = 0;
    f->wg_commits = 0;
    ctx_make(&f->ctx, S.stacks + (size_t)t * S.stack_stride + (S.stack_stride - STACK_BYTES), STACK_BYTES,
             fiber_entry);
}

static void run_block(void)
{
    const unsigned n = S.nthreads;
    for (unsigned t = 0; t < n; t++) fiber_init(t);
    S.block_arrived = 0;
    memset(S.warp_arrived, 0, sizeof S.warp_arrived);
    memset(S.product_gen, 0, sizeof S.product_gen);
    S.n_mbar = 0;
    S.n_tma = 0;
    memset(S.nbar_arrived, 0, sizeof S.nbar_arrived);
    memset(S.nbar_threads, 0, sizeof S.nbar_threads);
    memset(S.wg_arrived, 0, sizeof S.wg_arrived);
    memset(S.wg_wait_arrived, 0, sizeof S.wg_wait_arrived);
    memset(S.n_wg_op, 0, sizeof S.n_wg_op);
    memset(S.wg_due_set, 0, sizeof S.wg_due_set);
    const char *tma_mode = getenv("SKY_EMU_TMA");
    S.tma_eager = tma_mode && strcmp(tma_mode, "eager") == 0;
    /* Shared memory is not initialised on a GPU: all-ones bytes are NaN in fp32 and bf16. */
    if (S.smem_bytes) memset(S.smem, 0xff, S.smem_bytes);
    for (;;) {
        S.pass++;
        int ran = 0, live = 0, at_block = 0, at_warp = 0, at_other = 0;
        for (unsigned t = 0; t < n; t++)
            if (S.f[t].state == READY) {
                resume(&S.f[t]);
                ran = 1;
            }
        for (unsigned t = 0; t < n; t++) {
            live += S.f[t].state != DONE;
            at_block += S.f[t].state == WAIT_BLOCK;
            at_warp += S.f[t].state == WAIT_WARP;
            at_other += S.f[t].state == WAIT_MBAR || S.f[t].state == WAIT_NBAR || S.f[t].state == WAIT_WG;
        }
        if (!live) break;
        if (!ran)
            sky_emu_fault("deadlock: %d of %u threads wait at __syncthreads, %d in a warp collective, %d at an "
                          "mbarrier, named barrier or wgmma, %u have exited (a barrier or collective not reached "
                          "by every thread, or an mbarrier phase that never completes)",
                          at_block, n, at_warp, at_other, n - (unsigned)live);
    }
    for (unsigned id = 1; id < 16; id++)
        if (S.nbar_arrived[id])
            sky_emu_fault("named barrier %u ended its block with %u of %u arrivals (a bar.arrive or bar.sync "
                          "without its partner)", id, S.nbar_arrived[id], S.nbar_threads[id]);
    for (unsigned g = 0; g < n / 128; g++)
        if (S.n_wg_op[g])
            sky_emu_fault("warpgroup %u ended with %d wgmma never waited for (wgmma.wait_group missing)", g,
                          S.n_wg_op[g]);
    S.stats.blocks++;
    S.stats.threads += n;
}

/* Where the dynamic shared memory window starts in the block's shared address space: 0, or
 * $SKY_EMU_SMEM_OFFSET bytes (a multiple of 16 below 48 KiB). On a GPU the window follows the kernel's static
 * shared memory (and whatever the system reserves), so a kernel may assume 16-byte alignment only; the
 * bytes before it are not the kernel's (an access there faults). */
static unsigned smem_offset(void)
{
    const char *v = getenv("SKY_EMU_SMEM_OFFSET");
    if (!v || !*v) return 0;
    char *end;
    const unsigned long off = strtoul(v, &end, 10);
    if (*end || off % 16 || off >= 48u << 10) {
        fprintf(stderr, "cuda emulator: SKY_EMU_SMEM_OFFSET=%s: expected a multiple of 16 below 49152\n", v);
        exit(3);
    }
    return (unsigned)off;
}

void sky_emu_launch(const sky_emu_kernel *k, unsigned gx, unsigned gy, unsigned gz, unsigned bx, unsigned by,
                    unsigned bz, unsigned dyn_smem, void **args)
{
    stacks_init();
    S.k = k;
    S.args = args;
    S.nthreads = bx * by * bz;
    if (S.nthreads == 0 || S.nthreads > MAX_THREADS) sky_emu_fault("block of %u threads", S.nthreads);
    S.smem_bytes = dyn_smem;
    S.smem_off = smem_offset();
    S.smem_alloc = aligned_alloc(1024, ((size_t)S.smem_off + dyn_smem + 1023) / 1024 * 1024 + 1024);
    if (!S.smem_alloc) sky_emu_fault("out of host memory for %u bytes of shared memory", dyn_smem);
    S.smem = S.smem_alloc + S.smem_off;
    sky_emu_grid_dim = (sky_emu_dim3){ gx, gy, gz };
    sky_emu_block_dim = (sky_emu_dim3){ bx, by, bz };
    for (unsigned z = 0; z < gz; z++)
        for (unsigned y = 0; y < gy; y++)
            for (unsigned x = 0; x < gx; x++) {
                sky_emu_block_idx = (sky_emu_dim3){ x, y, z };
                run_block();
            }
    free(S.smem_alloc);
    S.smem_alloc = S.smem = NULL;
    S.smem_bytes = 0;
    S.k = NULL;
    S.stats.launches++;
}

/* ---- barriers and collectives ----------------------------------------------------------------- */

static fiber *current(const char *what)
{
    if (!S.cur) sky_emu_fault("%s outside a kernel", what);
    return S.cur;
}

unsigned sky_emu_linear_tid(void)
{
    return current("a thread index")->tid;
}

void sky_emu_syncthreads(void)
{
    fiber *f = current("__syncthreads");
    f->state = WAIT_BLOCK;
    if (++S.block_arrived == S.nthreads) {
        for (unsigned t = 0; t < S.nthreads; t++) S.f[t].state = READY;
        S.block_arrived = 0;
        S.stats.barriers++;
        return;
    }
    yield(f);
}

void sky_emu_require_full_mask(unsigned mask, const char *what)
{
    if (mask != 0xffffffffu) sky_emu_fault("%s with mask %#x: only full-warp collectives are emulated", what, mask);
}

const void *sky_emu_warp_exchange(int op, const void *in, size_t bytes)
{
    fiber *f = current("a warp collective");
    if (S.nthreads % 32 != 0)
        sky_emu_fault("warp collective in a block of %u threads (not whole warps)", S.nthreads);
    if (bytes > SKY_EMU_SLOT_BYTES) sky_emu_fault("warp collective of %zu bytes per lane", bytes);
    const unsigned w = f->tid / 32, gen = f->collectives++;
    if (bytes) memcpy(S.bank[gen & 1][f->tid], in, bytes);
    f->op = op;
    f->state = WAIT_WARP;
    if (++S.warp_arrived[w] == 32) {
        for (unsigned l = w * 32; l < w * 32 + 32; l++) {
            if (S.f[l].op != op || S.f[l].collectives != f->collectives)
                sky_emu_fault("divergent warp collective: lane %u is in collective #%u (op %d), lane %u in #%u "
                              "(op %d)", f->tid % 32, gen, op, l % 32, S.f[l].collectives - 1, S.f[l].op);
            S.f[l].state = READY;
        }
        S.warp_arrived[w] = 0;
        S.stats.collectives++;
    } else {
        yield(f);
    }
    return S.bank[gen & 1][w * 32];
}

/* ---- shared memory, cp.async, ldmatrix, mma ----------------------------------------------------- */

void *sky_emu_dynamic_smem(void)
{
    current("dynamic shared memory");
    return S.smem;
}

unsigned sky_emu_smem_offset(const void *p)
{
    const unsigned char *c = p;
    if (c < S.smem || c > S.smem + S.smem_bytes)
        sky_emu_fault("smem_u32 of %p, outside the launch's %zu bytes of dynamic shared memory", p, S.smem_bytes);
    return S.smem_off + (unsigned)(c - S.smem);
}

static unsigned char *smem_at(unsigned addr, size_t bytes, unsigned align, const char *what)
{
    if (addr < S.smem_off || (size_t)addr + bytes > S.smem_off + S.smem_bytes)
        sky_emu_fault("%s at shared address %u (+%zu bytes) outside the launch's %zu bytes of dynamic shared "
                      "memory (shared addresses %u to %zu)", what, addr, bytes, S.smem_bytes, S.smem_off,
                      S.smem_off + S.smem_bytes);
    if (addr % align) sky_emu_fault("%s at shared address %u, not %u-byte aligned", what, addr, align);
    return S.smem + (addr - S.smem_off);
}

/* The driver checks that [p, p + n) is inside one device allocation (driver.c). */
int sky_emu_driver_owns(const void *p, size_t n);

void sky_emu_cp_async_16(unsigned dst, const void *src, int src_bytes)
{
    fiber *f = current("cp.async");
    unsigned char *d = smem_at(dst, 16, 16, "cp.async destination");
    if ((uintptr_t)src % 16) sky_emu_fault("cp.async source %p is not 16-byte aligned", src);
    if (src_bytes < 0 || src_bytes > 16) sky_emu_fault("cp.async with src-size %d (0..16)", src_bytes);
    if (src_bytes && !sky_emu_driver_owns(src, (size_t)src_bytes))
        sky_emu_fault("cp.async reads %d bytes at %p, outside every device allocation", src_bytes, src);
    if (f->npend == PENDING_MAX) sky_emu_fault("more than %d cp.async copies in flight in one thread", PENDING_MAX);
    pending *p = &f->pend[f->npend++];
    p->dst = d;
    p->group = f->committed;
    memcpy(p->data, src, (size_t)src_bytes);
    memset(p->data + src_bytes, 0, (size_t)(16 - src_bytes));
}

void sky_emu_cp_async_commit(void)
{
    current("cp.async.commit_group")->committed++;
}

/* cp.async.wait_group n: all but the n most recent committed groups are complete. */
void sky_emu_cp_async_wait(int n)
{
    fiber *f = current("cp.async.wait_group");
    const unsigned keep = (unsigned)n;
    complete_pending(f, f->committed >= keep ? f->committed - keep : 0);
}

static unsigned slot_u32(const void *all, unsigned lane, int word)
{
    unsigned v;
    memcpy(&v, (const unsigned char *)all + (size_t)lane * SKY_EMU_SLOT_BYTES + 4 * (size_t)word, 4);
    return v;
}

/* ldmatrix.sync.aligned.m8n8.x4(.trans).shared.b16: lanes 8i..8i+7 address the 8 rows (16 bytes
 * each) of matrix i; lane t receives in register i, without .trans, row t/4, elements 2(t%4) and
 * 2(t%4)+1; with .trans, elements (row 2(t%4), column t/4) and (row 2(t%4)+1, column t/4). */
void sky_emu_ldmatrix_x4(unsigned r[4], unsigned addr, int trans)
{
    const void *all = sky_emu_warp_exchange(trans ? SKY_EMU_OP_LDMATRIX_T : SKY_EMU_OP_LDMATRIX, &addr, 4);
    const unsigned t = S.cur->tid % 32;
    for (int i = 0; i < 4; i++) {
        if (!trans) {
            const unsigned char *row = smem_at(slot_u32(all, 8 * i + t / 4, 0), 16, 16, "ldmatrix row");
            memcpy(&r[i], row + 4 * (t % 4), 4);
        } else {
            const unsigned char *r0 = smem_at(slot_u32(all, 8 * i + 2 * (t % 4), 0), 16, 16, "ldmatrix row");
            const unsigned char *r1 = smem_at(slot_u32(all, 8 * i + 2 * (t % 4) + 1, 0), 16, 16, "ldmatrix row");
            uint16_t lo, hi;
            memcpy(&lo, r0 + 2 * (t / 4), 2);
            memcpy(&hi, r1 + 2 * (t / 4), 2);
            r[i] = (unsigned)lo | ((unsigned)hi << 16);
        }
    }
}

/* mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 with the PTX ISA's fragments (g = lane/4,
 * q = lane%4): A registers {(g, 2q), (g+8, 2q), (g, 2q+8), (g+8, 2q+8)}, each two consecutive
 * columns, low half first; B registers {(k 2q, n g), (k 2q+8, n g)}, each two consecutive k; C
 * and D {(g, 2q), (g, 2q+1), (g+8, 2q), (g+8, 2q+1)}. Products of bf16 are exact in fp32; the sum
 * is formed in double and rounded to fp32, then added to each lane's accumulator (the hardware's order
 * and intermediate precision are unspecified; this rounds twice). */
/* The warp's product for its current collective, or NULL when this lane is the first to need it. */
static float (*cached_product(void))[8]
{
    const fiber *f = S.cur;
    return S.product_gen[f->tid / 32] == f->collectives ? S.product[f->tid / 32] : NULL;
}

static void add_product(float c[4], float (*P)[8])
{
    const unsigned t = S.cur->tid % 32, g = t / 4, q = t % 4;
    c[0] = (float)((double)c[0] + P[g][2 * q]);
    c[1] = (float)((double)c[1] + P[g][2 * q + 1]);
    c[2] = (float)((double)c[2] + P[g + 8][2 * q]);
    c[3] = (float)((double)c[3] + P[g + 8][2 * q + 1]);
}

void sky_emu_mma_bf16_16816(float c[4], const unsigned a[4], unsigned b0, unsigned b1)
{
    const unsigned in[6] = { a[0], a[1], a[2], a[3], b0, b1 };
    const void *all = sky_emu_warp_exchange(SKY_EMU_OP_MMA, in, sizeof in);
    float (*P)[8] = cached_product();
    if (P) {
        add_product(c, P);
        return;
    }
    float A[16][16], B[16][8];
    for (unsigned l = 0; l < 32; l++) {
        const unsigned g = l / 4, q = l % 4;
        const unsigned ra[4][2] = { { g, 2 * q }, { g + 8, 2 * q }, { g, 2 * q + 8 }, { g + 8, 2 * q + 8 } };
        for (int i = 0; i < 4; i++) {
            const unsigned v = slot_u32(all, l, i);
            A[ra[i][0]][ra[i][1]] = sky_emu_bf16_to_f32((uint16_t)v);
            A[ra[i][0]][ra[i][1] + 1] = sky_emu_bf16_to_f32((uint16_t)(v >> 16));
        }
        for (int i = 0; i < 2; i++) {
            const unsigned v = slot_u32(all, l, 4 + i);
            B[2 * q + 8 * i][g] = sky_emu_bf16_to_f32((uint16_t)v);
            B[2 * q + 8 * i + 1][g] = sky_emu_bf16_to_f32((uint16_t)(v >> 16));
        }
    }
    P = S.product[S.cur->tid / 32];
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 8; n++) {
            double s = 0.0;
            for (int k = 0; k < 16; k++) s += (double)A[r][k] * (double)B[k][n];
            P[r][n] = (float)s;
        }
    S.product_gen[S.cur->tid / 32] = S.cur->collectives;
    add_product(c, P);
}

/* cvt.rna.tf32.f32: round the 13 low mantissa bits away (to nearest, ties away from zero); NaN and
 * infinity pass through. */
unsigned sky_emu_f32_to_tf32(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((u & 0x7f800000u) == 0x7f800000u) return u;
    return (u + 0x1000u) & ~0x1fffu;
}

static float tf32_value(unsigned u)
{
    u &= ~0x1fffu;                                  /* the tensor cores read 19 bits */
    float f;
    memcpy(&f, &u, sizeof f);
    return f;
}

/* mma.sync.aligned.m16n8k8.row.col.f32.tf32.tf32.f32 (g = lane/4, q = lane%4): A registers
 * {(g, q), (g+8, q), (g, q+4), (g+8, q+4)}; B registers {(k q, n g), (k q+4, n g)}; C and D as in
 * sky_emu_mma_bf16_16816. Products of tf32 values are exact in double; rounded as there. */
void sky_emu_mma_tf32_1688(float c[4], const unsigned a[4], unsigned b0, unsigned b1)
{
    const unsigned in[6] = { a[0], a[1], a[2], a[3], b0, b1 };
    const void *all = sky_emu_warp_exchange(SKY_EMU_OP_MMA_TF32, in, sizeof in);
    float (*P)[8] = cached_product();
    if (P) {
        add_product(c, P);
        return;
    }
    float A[16][8], B[8][8];
    for (unsigned l = 0; l < 32; l++) {
        const unsigned g = l / 4, q = l % 4;
        A[g][q] = tf32_value(slot_u32(all, l, 0));
        A[g + 8][q] = tf32_value(slot_u32(all, l, 1));
        A[g][q + 4] = tf32_value(slot_u32(all, l, 2));
        A[g + 8][q + 4] = tf32_value(slot_u32(all, l, 3));
        B[q][g] = tf32_value(slot_u32(all, l, 4));
        B[q + 4][g] = tf32_value(slot_u32(all, l, 5));
    }
    P = S.product[S.cur->tid / 32];
    for (int r = 0; r < 16; r++)
        for (int n = 0; n < 8; n++) {
            double s = 0.0;
            for (int k = 0; k < 8; k++) s += (double)A[r][k] * (double)B[k][n];
            P[r][n] = (float)s;
        }
    S.product_gen[S.cur->tid / 32] = S.cur->collectives;
    add_product(c, P);
}

/* ---- sm_90a: mbarriers, TMA, named barriers, wgmma ------------------------------------------------
 * mbarrier: its state lives here, keyed by its shared address (the 8 bytes in shared memory are not
 * used): expected arrivals, arrivals still pending, transaction bytes still expected, and the phase.
 * A phase completes when no arrival is pending and the transaction count is back to zero; then the
 * phase number advances and the pending count is reset. try_wait.parity(p) succeeds once the
 * barrier's current phase parity differs from p (the phase of parity p has completed).
 * TMA copies are queued and land, completing their bytes on their barrier, when a thread waits on
 * that barrier (the latest moment the hardware may deliver them: a kernel that reads a stage
 * before waiting sees stale bytes), or at issue with SKY_EMU_TMA=eager (the earliest: a producer
 * that refills a stage before the consumers release it overwrites data still being read). */

static struct mbar *mbar_find(unsigned bar, const char *what)
{
    for (int i = 0; i < S.n_mbar; i++)
        if (S.mbar[i].addr == bar) return &S.mbar[i];
    sky_emu_fault("%s on shared address %u, which no mbarrier.init of this block initialised", what, bar);
}

/* Wake the threads waiting on bar: they check it again. */
static void mbar_wake(unsigned bar)
{
    for (unsigned t = 0; t < S.nthreads; t++)
        if (S.f[t].state == WAIT_MBAR && S.f[t].wait_on == bar) S.f[t].state = READY;
}

static void mbar_check_phase(struct mbar *m)
{
    if (m->tx < 0) sky_emu_fault("mbarrier at %u: copies delivered %lld bytes more than expect_tx announced",
                                 m->addr, -m->tx);
    if (m->pending == 0 && m->tx == 0) {
        m->phase++;
        m->pending = m->count;
    }
}

void sky_emu_mbar_init(unsigned bar, unsigned count)
{
    current("mbarrier.init");
    smem_at(bar, 8, 8, "mbarrier");
    if (count == 0 || count > (1u << 20) - 1) sky_emu_fault("mbarrier.init with count %u", count);
    for (int i = 0; i < S.n_mbar; i++)
        if (S.mbar[i].addr == bar) sky_emu_fault("mbarrier at %u initialised twice", bar);
    if (S.n_mbar == (int)(sizeof S.mbar / sizeof S.mbar[0])) sky_emu_fault("more than 64 mbarriers in a block");
    S.mbar[S.n_mbar++] = (struct mbar){ bar, count, count, 0, 0 };
}

/* One arrival, announcing tx_bytes (mbarrier.arrive.expect_tx; 0 for a plain arrive). */
void sky_emu_mbar_arrive(unsigned bar, unsigned tx_bytes)
{
    current("mbarrier.arrive");
    struct mbar *m = mbar_find(bar, "mbarrier.arrive");
    m->tx += tx_bytes;
    if (m->pending == 0) sky_emu_fault("mbarrier at %u: more arrivals than its count %u in one phase", bar, m->count);
    m->pending--;
    mbar_check_phase(m);
    mbar_wake(bar);
}

static void tma_land(const struct tma *c)
{
    const sky_emu_tmap *t = &c->map;
    const unsigned row_bytes = t->box[0] * t->elem_bytes;
    for (unsigned r = 0; r < t->box[1]; r++) {
        const long long gy = (long long)c->c1 + r;
        for (unsigned b = 0; b < row_bytes; b += 16) {
            unsigned lin = c->dst + r * row_bytes + b;
            if (t->swizzle_bytes == 128) lin ^= ((lin >> 7) & 7u) << 4;
            unsigned char *d = smem_at(lin, 16, 16, "TMA destination");
            for (unsigned e = 0; e < 16 / t->elem_bytes; e++) {
                const long long gx = (long long)c->c0 + (b / t->elem_bytes) + e;
                unsigned char *de = d + e * t->elem_bytes;
                if (gx < 0 || gy < 0 || gx >= (long long)t->dims[0] || gy >= (long long)t->dims[1]) {
                    memset(de, 0, t->elem_bytes);          /* out of the tensor: zeros */
                    continue;
                }
                const unsigned char *src = (const unsigned char *)(uintptr_t)t->addr + (size_t)gy * t->stride1 +
                                           (size_t)gx * t->elem_bytes;
                if (!sky_emu_driver_owns(src, t->elem_bytes))
                    sky_emu_fault("TMA reads %p (tensor element %lld, %lld), outside every device allocation",
                                  (const void *)src, gx, gy);
                memcpy(de, src, t->elem_bytes);
            }
        }
    }
    struct mbar *m = mbar_find(c->bar, "TMA completion");
    m->tx -= (long long)t->box[0] * t->box[1] * t->elem_bytes;
    mbar_check_phase(m);
    mbar_wake(c->bar);
}

/* Land the queued copies that complete on bar, in issue order. */
static void tma_deliver(unsigned bar)
{
    int kept = 0;
    for (int i = 0; i < S.n_tma; i++) {
        if (S.tma[i].bar == bar) tma_land(&S.tma[i]);
        else S.tma[kept++] = S.tma[i];
    }
    S.n_tma = kept;
}

int sky_emu_mbar_try_wait(unsigned bar, unsigned parity)
{
    fiber *f = current("mbarrier.try_wait");
    tma_deliver(bar);
    const struct mbar *m = mbar_find(bar, "mbarrier.try_wait");
    if ((m->phase & 1u) != (parity & 1u)) return 1;
    f->state = WAIT_MBAR;
    f->wait_on = bar;
    yield(f);
    return 0;
}

void sky_emu_tma_load_2d(unsigned dst, const void *map, int c0, int c1, unsigned bar)
{
    current("cp.async.bulk.tensor");
    struct tma c = { dst, bar, c0, c1, { 0 } };
    memcpy(&c.map, map, sizeof c.map);
    const sky_emu_tmap *t = &c.map;
    if (t->magic != SKY_EMU_TMAP_MAGIC) sky_emu_fault("cp.async.bulk.tensor with a tensor map not made by cuTensorMapEncodeTiled");
    if (dst % (t->swizzle_bytes == 128 ? 1024u : 128u))
        sky_emu_fault("TMA destination %u not %u-byte aligned", dst, t->swizzle_bytes == 128 ? 1024u : 128u);
    mbar_find(bar, "cp.async.bulk.tensor");
    if (S.tma_eager) {
        tma_land(&c);
        return;
    }
    if (S.n_tma == (int)(sizeof S.tma / sizeof S.tma[0])) sky_emu_fault("more than 256 TMA copies in flight");
    S.tma[S.n_tma++] = c;
    mbar_wake(bar);                       /* a waiter re-checks, which lands the copy */
}

/* One arrival at named barrier id of `threads`; the arrival that completes it releases the waiters (and,
 * for bar.sync, goes on itself). Returns 1 when this arrival completed it. */
static int nbar_arrive(const char *what, unsigned id, unsigned threads)
{
    if (id == 0 || id >= 16 || threads == 0 || threads % 32 || threads > S.nthreads)
        sky_emu_fault("%s %u, %u: id 1..15 and a thread count that is a multiple of 32 up to the block's %u", what,
                      id, threads, S.nthreads);
    if (S.nbar_threads[id] && S.nbar_threads[id] != threads)
        sky_emu_fault("%s %u, %u: the barrier's phase was begun with %u threads", what, id, threads,
                      S.nbar_threads[id]);
    S.nbar_threads[id] = threads;
    if (++S.nbar_arrived[id] < threads) return 0;
    for (unsigned t = 0; t < S.nthreads; t++)
        if (S.f[t].state == WAIT_NBAR && S.f[t].wait_on == id) S.f[t].state = READY;
    S.nbar_arrived[id] = 0;
    S.nbar_threads[id] = 0;
    S.stats.barriers++;
    return 1;
}

void sky_emu_bar_sync(unsigned id, unsigned threads)
{
    fiber *f = current("bar.sync");
    f->state = WAIT_NBAR;
    f->wait_on = id;
    if (nbar_arrive("bar.sync", id, threads)) {
        f->state = READY;
        return;
    }
    yield(f);
}

/* bar.arrive: counts towards the barrier's completion, never waits. */
void sky_emu_bar_arrive(unsigned id, unsigned threads)
{
    current("bar.arrive");
    nbar_arrive("bar.arrive", id, threads);
}

/* Element (row, col) of a bf16 operand described by a shared-memory descriptor with the 128-byte
 * swizzle (PTX ISA "Matrix Descriptor Format" and the canonical layouts): K-major, row is the M or N
 * index and col the K index: 8-row groups SBO apart, rows of 128 bytes; MN-major (row = K index, col
 * = M/N index): 64-element (128-byte) runs LBO apart along M/N, K rows 128 bytes apart in groups of
 * 8 that are SBO apart. The swizzle XORs address bits 4-6 with bits 7-9. */
static float desc_elem(unsigned long long desc, int mn_major, int row, int col)
{
    const unsigned start = (unsigned)(desc & 0x3fffu) << 4, lbo = (unsigned)((desc >> 16) & 0x3fffu) << 4,
                   sbo = (unsigned)((desc >> 32) & 0x3fffu) << 4;
    if ((desc >> 62) != 1 || ((desc >> 49) & 7u))
        sky_emu_fault("wgmma descriptor %#llx: only the 128-byte swizzle with base offset 0 is emulated", desc);
    unsigned a;
    if (!mn_major) a = start + (unsigned)row / 8 * sbo + (unsigned)row % 8 * 128 + (unsigned)col * 2;
    else a = start + (unsigned)col / 64 * lbo + (unsigned)col % 64 * 2 + (unsigned)row / 8 * sbo + (unsigned)row % 8 * 128;
    a ^= ((a >> 7) & 7u) << 4;
    uint16_t v;
    memcpy(&v, smem_at(a, 2, 2, "wgmma operand"), 2);
    return sky_emu_bf16_to_f32(v);
}

/* Run one queued wgmma: form the 64 x 16 A (from shared memory, or from the 128 threads' A
 * registers as they are now) and the 16 x N B, and add A B (each product exact, each sum of 16 in
 * double, rounded once) into every thread's accumulators (D fragment: warp w, lane l: d[4j + 2h + e] is
 * row 16w + l/4 + 8h, column 8j + 2(l%4) + e). */
static void wgmma_run(const struct wg_op *op)
{
    static float A[64][16], B[16][256];
    for (int r = 0; r < 64; r++)
        for (int k = 0; k < 16; k++) {
            if (!op->regs) {
                A[r][k] = desc_elem(op->a_desc, 0, r, k);
                continue;
            }
            /* the mma.m16n8k16 A fragment of warp r / 16: lane 4 (r % 8) + k % 8 / 2, register
             * (r % 16 >= 8) + 2 (k >= 8), half k % 2 */
            const unsigned t = (unsigned)r / 16 * 32 + (unsigned)(r % 8) * 4 + (unsigned)(k % 8) / 2;
            const unsigned v = op->a[t][(r % 16 >= 8) + 2 * (k >= 8)];
            A[r][k] = sky_emu_bf16_to_f32((uint16_t)(k % 2 ? v >> 16 : v));
        }
    for (int k = 0; k < 16; k++)
        for (int c = 0; c < op->n; c++)
            B[k][c] = op->tb ? desc_elem(op->b_desc, 1, k, c) : desc_elem(op->b_desc, 0, c, k);
    for (unsigned t = 0; t < 128; t++) {
        const unsigned w = t / 32, l = t % 32;
        float *dt = op->d[t];
        for (int i = 0; i < op->n / 2; i++) {
            const int r = (int)(16 * w + l / 4 + 8 * (i % 4 / 2)), c = 8 * (i / 4) + (int)(2 * (l % 4)) + i % 2;
            double sum = 0.0;
            for (int k = 0; k < 16; k++) sum += (double)A[r][k] * (double)B[k][c];
            dt[i] = (float)((double)dt[i] + (float)sum);
        }
    }
}

/* wgmma.mma_async m64nNk16 .f32.bf16.bf16 by a warpgroup (4 consecutive warps from a warp index
 * divisible by 4): every thread deposits its operands; the last to arrive checks that they agree and
 * queues the operation in the warpgroup's commit group. Nothing is computed yet: the operation runs at the
 * wgmma.wait_group that covers its group (sky_emu_wgmma_wait), as the hardware's may run any time
 * until then. */
void sky_emu_wgmma(float *d, int n, unsigned long long a_desc, const unsigned *a_regs, unsigned long long b_desc, int tb)
{
    fiber *f = current("wgmma");
    if (S.nthreads % 128) sky_emu_fault("wgmma in a block of %u threads (not whole warpgroups)", S.nthreads);
    if (n % 8 || n < 8 || n > 256) sky_emu_fault("wgmma with N = %d", n);
    const unsigned g = f->tid / 128;
    struct wg_slot *sl = &S.wg_slot[f->tid];
    *sl = (struct wg_slot){ d, n, tb, a_desc, b_desc, a_regs, a_regs != NULL };
    f->wg_ops++;
    if (++S.wg_arrived[g] < 128) {
        f->state = WAIT_WG;
        yield(f);
        return;
    }
    S.wg_arrived[g] = 0;
    const struct wg_slot *s0 = &S.wg_slot[g * 128];
    for (unsigned t = g * 128; t < g * 128 + 128; t++) {
        const struct wg_slot *st = &S.wg_slot[t];
        if (S.f[t].wg_ops != f->wg_ops || S.f[t].wg_commits != f->wg_commits || st->n != s0->n ||
            st->tb != s0->tb || st->regs != s0->regs || st->b_desc != s0->b_desc ||
            (!st->regs && st->a_desc != s0->a_desc))
            sky_emu_fault("divergent wgmma in warpgroup %u: thread %u differs from thread %u (operation #%u / #%u, "
                          "its commit group, or its shape or descriptors)", g, t % 128, 0u, S.f[t].wg_ops, f->wg_ops);
    }
    if (S.n_wg_op[g] == WG_OPS_MAX) sky_emu_fault("more than %d wgmma in flight in warpgroup %u", WG_OPS_MAX, g);
    struct wg_op *op = &S.wg_op[g][S.n_wg_op[g]++];
    op->n = s0->n, op->tb = s0->tb, op->regs = s0->regs, op->a_desc = s0->a_desc, op->b_desc = s0->b_desc;
    op->group = f->wg_commits;
    for (unsigned t = 0; t < 128; t++) {
        op->d[t] = S.wg_slot[g * 128 + t].d;
        op->a[t] = S.wg_slot[g * 128 + t].a;
        S.f[g * 128 + t].state = READY;
    }
    f->state = READY;
    S.stats.collectives++;
}

void sky_emu_wgmma_commit(void)
{
    current("wgmma.commit_group")->wg_commits++;
}

/* wgmma.wait_group n, as a rendezvous of the warpgroup. When the last thread arrives, every thread of the
 * warpgroup (the last one too) is made ready, and none goes on before the scheduler's next pass over the
 * block, so the block's other threads (the producer of a warp-specialised kernel) run first; the first of
 * the warpgroup to go on then runs, in issue order, the queued operations of every group but the n most
 * recently committed. So an operand released before the wait (an mbarrier arrival, then a refill) has been
 * overwritten when the operation reads it. */
void sky_emu_wgmma_wait(int n)
{
    fiber *f = current("wgmma.wait_group");
    const unsigned g = f->tid / 128;
    if (++S.wg_wait_arrived[g] == 128) {
        S.wg_wait_arrived[g] = 0;
        for (unsigned t = g * 128; t < g * 128 + 128; t++)
            if (S.f[t].wg_commits != f->wg_commits)
                sky_emu_fault("divergent wgmma.wait_group in warpgroup %u: thread %u has committed %u groups, "
                              "thread %u %u", g, t % 128, S.f[t].wg_commits, f->tid % 128, f->wg_commits);
        S.wg_due[g] = f->wg_commits >= (unsigned)n ? f->wg_commits - (unsigned)n : 0;
        S.wg_due_set[g] = 1;
        S.wg_due_pass[g] = S.pass;
        for (unsigned t = g * 128; t < g * 128 + 128; t++) S.f[t].state = READY;
    } else {
        f->state = WAIT_WG;
    }
    yield(f);
    while (S.wg_due_set[g] && S.pass == S.wg_due_pass[g]) {   /* not in the pass that completed the wait */
        f->state = READY;
        yield(f);
    }
    if (S.wg_due_set[g]) {
        S.wg_due_set[g] = 0;
        int kept = 0;
        for (int i = 0; i < S.n_wg_op[g]; i++) {
            if (S.wg_op[g][i].group < S.wg_due[g]) wgmma_run(&S.wg_op[g][i]);
            else S.wg_op[g][kept++] = S.wg_op[g][i];
        }
        S.n_wg_op[g] = kept;
    }
}

/* ---- module registry ------------------------------------------------------------------------------ */

static const sky_emu_module_def *modules[16];
static int n_modules;

void sky_emu_register(const sky_emu_module_def *m)
{
    if (n_modules == (int)(sizeof modules / sizeof modules[0])) {
        fprintf(stderr, "cuda emulator: too many kernel modules\n");
        exit(3);
    }
    modules[n_modules++] = m;
}

const sky_emu_module_def *sky_emu_find_module(const char *file)
{
    for (int i = 0; i < n_modules; i++)
        if (strcmp(modules[i]->file, file) == 0) return modules[i];
    return NULL;
}

const sky_emu_module_def *sky_emu_find_module_by_fatbin(uint64_t fatbin_xxh64)
{
    for (int i = 0; i < n_modules; i++)
        if (fatbin_xxh64 && modules[i]->fatbin_xxh64 == fatbin_xxh64) return modules[i];
    return NULL;
}
