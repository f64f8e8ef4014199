/* runtime/cuda/offload.h — dit_forward's block offload (--offload_blocks N; docs/offload.md).
 *
 * The transformer's per-block weights (the weights named blocks.<b>.*, sky_dit_cuda_desc.weight_block) live in
 * pinned host memory, in their device form (read once through the binary's reader and converted there); the
 * device holds the other weights (embeddings, head, modulation tables) and N slots of one block each. Block b
 * reads its weights from slot b % N: sky_cuda_program.w points there for every block weight, fixed for (block, N),
 * so a captured CUDA Graph stays valid. The generated launch sequence brackets each block (BLOCK_BEGIN/BLOCK_END,
 * cuda_program.h):
 *   - begin(b): for b >= N, the compute stream waits for event loaded[b] (the block's copy has landed); blocks
 *     0 .. N-1 are in their slots when a part starts (the invariant below); at b = 0 the copy stream forks from the
 *     compute stream (event fork), so that it joins a capture even before its first wait;
 *   - end(b): event done[b] on the compute stream; on the copy stream: wait for done[b], copy the next block of
 *     slot b % N (b + N while that is a block of this pass, else b % N: the next pass's, which restores the
 *     invariant) from pinned memory into the slot, record loaded[next]; after the last block the compute stream
 *     waits for the copy stream (event join), so the part (and its graph) ends with every copy done.
 * Every part that has blocks (the prompt's part: the cross-attention keys and values; the blocks part) goes
 * through blocks 0 .. n-1 in order (the generator checks it), so each starts and ends with blocks 0 .. N-1 in
 * slots 0 .. N-1. When n % N != 0 the last blocks' copies for the next pass come less far ahead (slot b % N
 * is next used by block b % N of the next pass).
 * --weight_dtype fp8 (sky_cuda_offload_open_fp8): the blocks' linear weights (models/fp8_quant.h) stay on the device
 * as e4m3 codes with one fp32 scale per row, and the slots hold those weights only, at bf16: the "copy" of a block
 * into its slot is the expand kernel (templates/cuda/fp8_expand.cu.in) run for each of its quantised weights on the
 * copy stream, with the same events, so the next block's expansion overlaps this block's compute. Every other
 * weight (the blocks' norms, biases and modulation tables too) is resident; no pinned host memory. N slots:
 * --offload_blocks N where it is on (1 .. blocks - 1), else 2 (at most the blocks); N = blocks works too (each
 * block is expanded again into its own slot after use, for the next pass).
 * TEST ONLY: $SKY_TEST_OFFLOAD_FAULT = block:B drops block B's wait for its copy, copy:B drops the wait of the copy
 * made after block B for that block's end (tests/emu/run.sh shows the emulator catches either). */
#ifndef SKY_CUDA_OFFLOAD_H
#define SKY_CUDA_OFFLOAD_H

#include <cuda.h>
#include <stddef.h>

#include "cuda/cuda_program.h"

/* One block linear weight kept as fp8 (--weight_dtype fp8): its codes [rows, cols] and row scales on the device, its
 * place inside its block's slot image. */
typedef struct sky_cuda_fp8_weight {
    int         index;        /* in the weights table */
    CUdeviceptr codes, scale; /* rows x cols bytes; rows fp32 */
    size_t      off;          /* in the slot */
    long long   rows, cols;
} sky_cuda_fp8_weight;

/* The generated expand launch (sky_dit_cuda_desc.fp8_expand). */
typedef void (*sky_cuda_fp8_expand_fn)(const sky_cuda_program *st, CUstream s, CUdeviceptr y, CUdeviceptr codes,
                                       CUdeviceptr scale, long long rows, long long cols);

typedef struct sky_cuda_offload {
    int            n_blocks, n_slots;
    size_t         block_bytes; /* one block's weights, each 256-byte aligned, in place order */
    unsigned char *host;        /* pinned: block b at b * block_bytes */
    CUdeviceptr    slots;       /* n_slots * block_bytes, inside the program's weights allocation */
    CUstream       copy;        /* the copy stream */
    CUevent        fork, join;
    CUevent       *done, *loaded;           /* one per block */
    int            fault_block, fault_copy; /* SKY_TEST_OFFLOAD_FAULT (test only): 1 + the block, 0 none */
    /* --weight_dtype fp8 (NULL fp8: the copies from host): the quantised weights by block, block b's at
     * fp8[fp8_first[b] .. fp8_first[b + 1] - 1], and the expand launch */
    sky_cuda_fp8_weight   *fp8;
    int                   *fp8_first;
    sky_cuda_fp8_expand_fn expand;
} sky_cuda_offload;

/* The weights of pr (n of them: src_count fp32 values read through r, dev_bytes bytes in device form made by
 * form, as sky_cuda_prog_weights) with the blocks' weights offloaded into *out (allocated here) with n_slots
 * slots: block[i] is weight i's block (-1: resident), n_blocks blocks, 1 <= n_slots < n_blocks. The device
 * allocation (counted: sky_cuda_arena_alloc) holds the resident weights and the slots, loaded with blocks
 * 0 .. n_slots - 1; pr->w points every weight at its device place. */
sky_status sky_cuda_offload_open(sky_cuda_offload **out, sky_cuda_prog *pr, int n, const size_t *src_count,
                                 const size_t *dev_bytes, sky_weight_form_fn form, void *ctx, const short *block,
                                 int n_blocks, int n_slots, const sky_weight_reader *r, sky_err *err);

/* The same for --weight_dtype fp8 (above): weight i (table wd) with quantised[i] is read, quantised per row as
 * models/fp8_quant.h does (the CPU path's codes and scales) and uploaded as fp8; the others are uploaded in their device
 * form, resident. 1 <= n_slots <= n_blocks. The slots are empty until sky_cuda_offload_fill. */
sky_status sky_cuda_offload_open_fp8(sky_cuda_offload **out, sky_cuda_prog *pr, const sky_weight_desc *wd, int n,
                                     const size_t *src_count, const size_t *dev_bytes, sky_weight_form_fn form,
                                     void *ctx, const short *block, const unsigned char *quantised, int n_blocks,
                                     int n_slots, sky_cuda_fp8_expand_fn expand, const sky_weight_reader *r,
                                     sky_err *err);

/* --weight_dtype fp8: blocks 0 .. N-1 expanded into slots 0 .. N-1 on stream s (the invariant above), synchronised;
 * once st is complete (after sky_cuda_prog_end). Nothing for the copies from host (loaded at open). */
void sky_cuda_offload_fill(const sky_cuda_offload *o, const sky_cuda_program *st, CUstream s);

/* Free o (NULL is fine): its pinned memory, stream and events (the device allocation is pr's). */
void sky_cuda_offload_close(sky_cuda_offload *o);

#endif /* SKY_CUDA_OFFLOAD_H */
