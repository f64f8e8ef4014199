/* runtime/cuda/offload.c — dit_forward's block offload: the weights' layout, the slots' copies (offload.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_ctx.h"
#include "cuda/offload.h"
#include "models/fp8_quant.h"

static size_t pad256(size_t n) { return (n + 255) / 256 * 256; }

void sky_cuda_block_begin(const sky_cuda_program *st, CUstream s, int b)
{
    sky_cuda_offload *o = st->offload;
    if (!o) return;
    if (b == 0) {
        SKY_CU_CHECK(cuEventRecord(o->fork, s));
        SKY_CU_CHECK(cuStreamWaitEvent(o->copy, o->fork, 0));
    }
    if (b >= o->n_slots && o->fault_block != b + 1) SKY_CU_CHECK(cuStreamWaitEvent(s, o->loaded[b], 0));
}

/* --weight_dtype fp8: block b's quantised weights expanded into slot (at its place in the block image) on stream s. */
static void expand_block(const sky_cuda_offload *o, const sky_cuda_program *st, CUstream s, CUdeviceptr slot, int b)
{
    for (int j = o->fp8_first[b]; j < o->fp8_first[b + 1]; j++) {
        const sky_cuda_fp8_weight *q = &o->fp8[j];
        o->expand(st, s, slot + q->off, q->codes, q->scale, q->rows, q->cols);
    }
}

void sky_cuda_block_end(const sky_cuda_program *st, CUstream s, int b)
{
    sky_cuda_offload *o = st->offload;
    if (!o) return;
    /* the next user of slot b % N: block b + N of this pass, else block b % N of the next one */
    const int         next = b + o->n_slots < o->n_blocks ? b + o->n_slots : b % o->n_slots;
    const CUdeviceptr slot = o->slots + (CUdeviceptr)(b % o->n_slots) * o->block_bytes;
    SKY_CU_CHECK(cuEventRecord(o->done[b], s));
    if (o->fault_copy != b + 1) SKY_CU_CHECK(cuStreamWaitEvent(o->copy, o->done[b], 0));
    if (o->fp8)
        expand_block(o, st, o->copy, slot, next);
    else
        SKY_CU_CHECK(cuMemcpyHtoDAsync(slot, o->host + (size_t)next * o->block_bytes, o->block_bytes, o->copy));
    SKY_CU_CHECK(cuEventRecord(o->loaded[next], o->copy));
    if (b == o->n_blocks - 1) {
        SKY_CU_CHECK(cuEventRecord(o->join, o->copy));
        SKY_CU_CHECK(cuStreamWaitEvent(s, o->join, 0));
    }
}

/* $SKY_TEST_OFFLOAD_FAULT (test only: offload.h) into o. */
static void read_fault(sky_cuda_offload *o)
{
    const char *f = getenv("SKY_TEST_OFFLOAD_FAULT");
    int         b = -1;
    if (!f || !*f) return;
    if (sscanf(f, "block:%d", &b) == 1 && b >= 0)
        o->fault_block = b + 1;
    else if (sscanf(f, "copy:%d", &b) == 1 && b >= 0)
        o->fault_copy = b + 1;
}

void sky_cuda_offload_close(sky_cuda_offload *o)
{
    if (!o) return;
    if (o->copy) {
        SKY_CU_CHECK(cuStreamSynchronize(o->copy));
        SKY_CU_CHECK(cuStreamDestroy(o->copy));
    }
    CUevent *lists[2] = {o->done, o->loaded};
    for (int l = 0; l < 2; l++)
        for (int b = 0; lists[l] && b < o->n_blocks; b++)
            if (lists[l][b]) SKY_CU_CHECK(cuEventDestroy(lists[l][b]));
    if (o->fork) SKY_CU_CHECK(cuEventDestroy(o->fork));
    if (o->join) SKY_CU_CHECK(cuEventDestroy(o->join));
    free(o->done);
    free(o->loaded);
    free(o->fp8);
    free(o->fp8_first);
    sky_cuda_host_free(o->host);
    free(o);
}

/* The copy stream and the events of o. */
static sky_status streams_open(sky_cuda_offload *o, sky_err *err)
{
    o->done = calloc((size_t)o->n_blocks, sizeof *o->done);
    o->loaded = calloc((size_t)o->n_blocks, sizeof *o->loaded);
    if (!o->done || !o->loaded) return sky_fail(err, "out of host memory for the block offload's events");
    SKY_CU_CHECK(cuStreamCreate(&o->copy, CU_STREAM_NON_BLOCKING));
    SKY_CU_CHECK(cuEventCreate(&o->fork, CU_EVENT_DISABLE_TIMING));
    SKY_CU_CHECK(cuEventCreate(&o->join, CU_EVENT_DISABLE_TIMING));
    for (int b = 0; b < o->n_blocks; b++) {
        SKY_CU_CHECK(cuEventCreate(&o->done[b], CU_EVENT_DISABLE_TIMING));
        SKY_CU_CHECK(cuEventCreate(&o->loaded[b], CU_EVENT_DISABLE_TIMING));
    }
    return SKY_OK;
}

/* Each weight's offset: in the resident part for block[i] < 0, else inside its block's image (both in place
 * order, each 256-byte aligned); the resident bytes and the largest block's into *resident, *block_bytes. */
static sky_status layout(const sky_cuda_prog *pr, int n, const size_t *dev_bytes, const short *block, int n_blocks,
                         size_t *off, size_t *resident, size_t *block_bytes, sky_err *err)
{
    size_t *used = calloc((size_t)n_blocks, sizeof *used);
    int    *at = malloc((size_t)n * sizeof *at); /* the weight at each place */
    if (!used || !at) {
        free(used), free(at);
        return sky_fail(err, "out of host memory laying out the weights of %s", pr->name);
    }
    for (int k = 0; k < n; k++) at[k] = -1;
    for (int i = 0; i < n; i++) {
        const int k = pr->place ? pr->place[i] : i;
        if (k < 0 || k >= n || at[k] >= 0 || block[i] >= n_blocks) {
            free(used), free(at);
            return sky_fail(err,
                            "%s: weight %d's place or block is wrong; this is a bug in the generated plugin, "
                            "please report it",
                            pr->name, i);
        }
        at[k] = i;
    }
    *resident = *block_bytes = 0;
    for (int k = 0; k < n; k++) {
        const int i = at[k];
        size_t   *o = block[i] < 0 ? resident : &used[block[i]];
        off[i] = *o;
        *o += pad256(dev_bytes[i]);
    }
    for (int b = 0; b < n_blocks; b++)
        if (used[b] > *block_bytes) *block_bytes = used[b];
    free(used), free(at);
    return SKY_OK;
}

sky_status sky_cuda_offload_open(sky_cuda_offload **out, sky_cuda_prog *pr, int n, const size_t *src_count,
                                 const size_t *dev_bytes, sky_weight_form_fn form, void *ctx, const short *block,
                                 int n_blocks, int n_slots, const sky_weight_reader *r, sky_err *err)
{
    *out = NULL;
    SKY_ASSERT(n_slots >= 1 && n_slots < n_blocks);
    sky_cuda_offload *o = calloc(1, sizeof *o);
    size_t           *off = calloc((size_t)(n > 0 ? n : 1), sizeof *off);
    float            *src = NULL;
    unsigned char    *stage = NULL;
    size_t            resident = 0, max_src = 1, max_dev = 1;
    if (!o || !off) {
        free(o), free(off);
        return sky_fail(err, "out of host memory");
    }
    o->n_blocks = n_blocks, o->n_slots = n_slots;
    read_fault(o);
    if (layout(pr, n, dev_bytes, block, n_blocks, off, &resident, &o->block_bytes, err)) goto fail;
    for (int i = 0; i < n; i++) {
        if (src_count[i] > max_src) max_src = src_count[i];
        if (dev_bytes[i] > max_dev) max_dev = dev_bytes[i];
    }
    void *dev;
    char  what[160];
    snprintf(what, sizeof what, "the weights of %s (resident, and %d block slots of %zu bytes: --offload_blocks)",
             pr->name, n_slots, o->block_bytes);
    if (sky_cuda_arena_alloc(pr->c, resident + (size_t)n_slots * o->block_bytes, &dev, what, err)) goto fail;
    pr->weights = (CUdeviceptr)(uintptr_t)dev;
    o->slots = pr->weights + resident;
    snprintf(what, sizeof what, "the blocks of %s in pinned host memory (--offload_blocks)", pr->name);
    if (sky_cuda_host_alloc(pr->c, (size_t)n_blocks * o->block_bytes, (void **)&o->host, what, err)) goto fail;
    memset(o->host, 0, (size_t)n_blocks * o->block_bytes);
    src = malloc(max_src * sizeof(float));
    stage = malloc(max_dev);
    if (!src || !stage) {
        sky_fail(err, "out of host memory staging a weight of %s", pr->name);
        goto fail;
    }
    for (int i = 0; i < n; i++) {
        const int b = block[i];
        pr->w[i] = b < 0 ? pr->weights + off[i] : o->slots + (CUdeviceptr)(b % n_slots) * o->block_bytes + off[i];
        if (r->read(r->ctx, i, src, err)) goto fail;
        if (b >= 0) {
            form(ctx, i, src, o->host + (size_t)b * o->block_bytes + off[i]);
        } else {
            form(ctx, i, src, stage);
            SKY_CU_CHECK(cuMemcpyHtoD(pr->w[i], stage, dev_bytes[i]));
        }
    }
    /* the invariant of offload.h: blocks 0 .. N-1 in slots 0 .. N-1 */
    SKY_CU_CHECK(cuMemcpyHtoD(o->slots, o->host, (size_t)n_slots * o->block_bytes));
    if (streams_open(o, err)) goto fail;
    free(off), free(src), free(stage);
    *out = o;
    return SKY_OK;
fail:
    free(off), free(src), free(stage);
    sky_cuda_offload_close(o);
    return SKY_ERR;
}

/* --weight_dtype fp8: the slots hold only the blocks' quantised weights (expanded from their codes); every other
 * weight, the blocks' norms, biases and modulation tables too, is resident. */
sky_status sky_cuda_offload_open_fp8(sky_cuda_offload **out, sky_cuda_prog *pr, const sky_weight_desc *wd, int n,
                                     const size_t *src_count, const size_t *dev_bytes, sky_weight_form_fn form,
                                     void *ctx, const short *block, const unsigned char *quantised, int n_blocks,
                                     int n_slots, sky_cuda_fp8_expand_fn expand, const sky_weight_reader *r,
                                     sky_err *err)
{
    *out = NULL;
    SKY_ASSERT(n_slots >= 1 && n_slots <= n_blocks);
    sky_cuda_offload *o = calloc(1, sizeof *o);
    size_t           *off = calloc((size_t)(n > 0 ? n : 1), sizeof *off);
    short            *in_slot = calloc((size_t)(n > 0 ? n : 1), sizeof *in_slot);
    float            *src = NULL, *scale = NULL;
    unsigned char    *stage = NULL;
    size_t            resident = 0, max_src = 1, max_dev = 1, max_rows = 1, fp8_bytes = 0;
    int               n_fp8 = 0;
    if (!o || !off || !in_slot) {
        free(o), free(off), free(in_slot);
        return sky_fail(err, "out of host memory");
    }
    o->n_blocks = n_blocks, o->n_slots = n_slots, o->expand = expand;
    read_fault(o);
    for (int i = 0; i < n; i++) {
        in_slot[i] = quantised[i] ? block[i] : -1;
        SKY_ASSERT(!quantised[i] || (block[i] >= 0 && wd[i].ndim == 2 && dev_bytes[i] == src_count[i] * 2));
        if (src_count[i] > max_src) max_src = src_count[i];
        if (dev_bytes[i] > max_dev) max_dev = dev_bytes[i];
        if (quantised[i]) {
            n_fp8++;
            fp8_bytes += pad256(src_count[i]) + pad256((size_t)wd[i].shape[0] * sizeof(float));
            if ((size_t)wd[i].shape[0] > max_rows) max_rows = (size_t)wd[i].shape[0];
        }
    }
    o->fp8 = calloc((size_t)(n_fp8 > 0 ? n_fp8 : 1), sizeof *o->fp8);
    o->fp8_first = calloc((size_t)n_blocks + 1, sizeof *o->fp8_first);
    if (!o->fp8 || !o->fp8_first) {
        sky_fail(err, "out of host memory for the fp8 weights' table");
        goto fail;
    }
    if (layout(pr, n, dev_bytes, in_slot, n_blocks, off, &resident, &o->block_bytes, err)) goto fail;
    void *dev;
    char  what[200];
    snprintf(what, sizeof what,
             "the weights of %s (resident, %d bf16 block slots of %zu bytes and %d fp8 weights: --weight_dtype fp8)",
             pr->name, n_slots, o->block_bytes, n_fp8);
    const size_t total = resident + (size_t)n_slots * o->block_bytes + fp8_bytes;
    if (sky_cuda_arena_alloc(pr->c, total, &dev, what, err)) goto fail;
    pr->weights = (CUdeviceptr)(uintptr_t)dev;
    o->slots = pr->weights + resident;
    src = malloc(max_src * sizeof(float));
    stage = malloc(max_dev > max_src ? max_dev : max_src);
    scale = malloc(max_rows * sizeof(float));
    if (!src || !stage || !scale) {
        sky_fail(err, "out of host memory staging a weight of %s", pr->name);
        goto fail;
    }
    /* the fp8 weights' table by block (each block's in index order), their codes and scales after the slots */
    CUdeviceptr at = o->slots + (CUdeviceptr)n_slots * o->block_bytes;
    for (int b = 0, j = 0; b < n_blocks; b++) {
        o->fp8_first[b] = j;
        for (int i = 0; i < n; i++) {
            if (!quantised[i] || block[i] != b) continue;
            sky_cuda_fp8_weight *q = &o->fp8[j++];
            q->index = i, q->off = off[i], q->rows = wd[i].shape[0], q->cols = wd[i].shape[1];
            q->codes = at;
            at += pad256(src_count[i]);
            q->scale = at;
            at += pad256((size_t)q->rows * sizeof(float));
        }
        o->fp8_first[b + 1] = j;
    }
    for (int j = 0; j < n_fp8; j++) {
        const sky_cuda_fp8_weight *q = &o->fp8[j];
        if (r->read(r->ctx, q->index, src, err)) goto fail;
        sky_fp8_quantise_rows(src, q->rows, q->cols, scale, stage); /* fp8_quant.h: the CPU path's codes */
        SKY_CU_CHECK(cuMemcpyHtoD(q->codes, stage, (size_t)(q->rows * q->cols)));
        SKY_CU_CHECK(cuMemcpyHtoD(q->scale, scale, (size_t)q->rows * sizeof(float)));
    }
    for (int i = 0; i < n; i++) {
        const int b = block[i];
        pr->w[i] = quantised[i] ? o->slots + (CUdeviceptr)(b % n_slots) * o->block_bytes + off[i] : pr->weights + off[i];
        if (quantised[i]) continue;
        if (r->read(r->ctx, i, src, err)) goto fail;
        form(ctx, i, src, stage);
        SKY_CU_CHECK(cuMemcpyHtoD(pr->w[i], stage, dev_bytes[i]));
    }
    if (streams_open(o, err)) goto fail;
    free(off), free(in_slot), free(src), free(stage), free(scale);
    *out = o;
    return SKY_OK;
fail:
    free(off), free(in_slot), free(src), free(stage), free(scale);
    sky_cuda_offload_close(o);
    return SKY_ERR;
}

void sky_cuda_offload_fill(const sky_cuda_offload *o, const sky_cuda_program *st, CUstream s)
{
    if (!o->fp8) return;
    for (int b = 0; b < o->n_slots; b++) expand_block(o, st, s, o->slots + (CUdeviceptr)b * o->block_bytes, b);
    SKY_CU_CHECK(cuStreamSynchronize(s));
}
