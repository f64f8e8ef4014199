/* runtime/cuda/cuda_program.c — what the plugin's programs share (cuda_program.h): kernel launches and GEMMs
 * of the generated launch sequences, loading a program's kernels, copying a traced op output to the
 * host, and the plugin's one exported table (models/cuda_abi.h).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda/cuda_ctx.h"
#include "cuda/cuda_program.h"
#include "core/dtype.h"
#include "cuda/fatbin.h"
#include "cuda/nvrtc_cache.h"
#include "cuda/offload.h"
#include "cuda/selftest_cuda.h"
#include "cuda/usp_nccl.h"
#include "models/fp8_quant.h"

#ifndef SKY_PLUGIN_VARIANT
#error "build with -DSKY_PLUGIN_VARIANT=\"<variant>\" (CMakeLists.txt does)"
#endif

int sky_cuda_fault_kernel(int n, const char *const *names)
{
    const char *f = getenv("SKY_SELFTEST_FAULT");
    if (!f || !*f) return 0;
    for (int k = 0; k < n; k++)
        if (strncmp(names[k], f, strlen(f)) == 0) return k + 1;
    return 0;
}

void sky_cuda_launch(const sky_cuda_program *st, int kernel, unsigned gx, unsigned gy, unsigned bx, unsigned smem,
                     CUstream s, void **args)
{
    if (st->fault_kernel == kernel + 1) return; /* SKY_SELFTEST_FAULT: test only */
    SKY_CU_CHECK(cuLaunchKernel(st->fn[kernel], gx, gy, 1, bx, 1, 1, smem, s, args, NULL));
}

void sky_cuda_tmap_bf16(CUtensorMap *m, CUdeviceptr p, long long rows, long long cols, int box_rows)
{
    sky_cuda_tmap_bf16_ld(m, p, rows, cols, cols, box_rows);
}

void sky_cuda_tmap_bf16_ld(CUtensorMap *m, CUdeviceptr p, long long rows, long long cols, long long ld, int box_rows)
{
    const cuuint64_t dims[2] = {(cuuint64_t)cols, (cuuint64_t)rows}, stride[1] = {(cuuint64_t)ld * 2};
    const cuuint32_t box[2] = {64, (cuuint32_t)box_rows}, elem[2] = {1, 1};
    const CUresult   r =
        cuTensorMapEncodeTiled(m, CU_TENSOR_MAP_DATA_TYPE_BFLOAT16, 2, (void *)(uintptr_t)p, dims, stride, box, elem,
                               CU_TENSOR_MAP_INTERLEAVE_NONE, CU_TENSOR_MAP_SWIZZLE_128B,
                               CU_TENSOR_MAP_L2_PROMOTION_L2_256B, CU_TENSOR_MAP_FLOAT_OOB_FILL_NONE);
    if (r != CUDA_SUCCESS) {
        char what[160];
        snprintf(what, sizeof what,
                 "a [%lld, %lld] bf16 map at %#llx with boxes of 64 x %d; this is a bug, please report it", rows, cols,
                 (unsigned long long)p, box_rows);
        sky_gpu_fatal_("CUDA driver", sky_cu_error_name(r), sky_cu_error_string(r), "cuTensorMapEncodeTiled", __func__,
                       __FILE__, __LINE__, what);
    }
}

void sky_cuda_gemm(const sky_cuda_program *st, int i, int m, CUdeviceptr x, CUdeviceptr w, CUdeviceptr bias,
                   CUdeviceptr y, CUstream s)
{
    sky_gemm_run((sky_gemm_set *)st->gemm, i, m, (const void *)(uintptr_t)x, (const void *)(uintptr_t)w,
                 (const void *)(uintptr_t)bias, (void *)(uintptr_t)y, s);
}

void sky_cuda_gemm_dims(const sky_cuda_program *st, int i, int m, int n, int k, CUdeviceptr x, CUdeviceptr w,
                        CUdeviceptr y, CUstream s)
{
    sky_gemm_run_dims((sky_gemm_set *)st->gemm, i, m, n, k, (const void *)(uintptr_t)x, (const void *)(uintptr_t)w,
                      NULL, (void *)(uintptr_t)y, s);
}

void sky_cuda_smem_limit(int n, const char *const *names, const CUfunction *fn, const char *prefix, int smem)
{
    for (int k = 0; prefix && k < n; k++)
        if (strncmp(names[k], prefix, strlen(prefix)) == 0)
            SKY_CU_CHECK(cuFuncSetAttribute(fn[k], CU_FUNC_ATTRIBUTE_MAX_DYNAMIC_SHARED_SIZE_BYTES, smem));
}

sky_status sky_cuda_kernels_load(sky_cuda *c, const char *src, const char *file, int n, const char *const *names,
                                 const char *smem_prefix, int smem, CUmodule *module, CUfunction *fn, char *how,
                                 size_t how_size, sky_err *err)
{
    /* The kernels built into the plugin when they cover this GPU (fatbin.h), else NVRTC. */
    const sky_fatbin *fb = sky_fatbin_find(file);
    char              what[96] = "";
    int               loaded = 0;
    if (fb && sky_fatbin_module(module, fb, src, c->cc_major, c->cc_minor, &loaded, what, sizeof what, err))
        return SKY_ERR;
    if (loaded) {
        snprintf(how, how_size, "kernels built in (%s)", what);
    } else {
        if (sky_nvrtc_module(module, src, file, c->cc_major, c->cc_minor, NULL, NULL, err)) return SKY_ERR;
        snprintf(how, how_size, "kernels compiled by NVRTC%s", fb ? " (none built in for this GPU)" : "");
    }
    for (int k = 0; k < n; k++)
        if (sky_nvrtc_function(&fn[k], *module, names[k], err)) return SKY_ERR;
    sky_cuda_smem_limit(n, names, fn, smem_prefix, smem);
    return SKY_OK;
}

void sky_cuda_trace_copy(sky_cuda_trace *t, CUstream s, const char *name, CUdeviceptr p, int dtype, long long n, int cl)
{
    const size_t bytes = (size_t)n * (dtype == SKY_TRACE_BF16 ? 2 : dtype == SKY_TRACE_F32 ? 4 : 8);
    if (bytes > t->cap) {
        void *host = realloc(t->host, bytes);
        if (!host) SKY_CUDA_FATAL("cuda: out of host memory tracing %s (%zu bytes)", name, bytes);
        t->host = host, t->cap = bytes;
    }
    SKY_CU_CHECK(cuMemcpyDtoHAsync(t->host, p, bytes, s));
    SKY_CU_CHECK(cuStreamSynchronize(s));
    t->fn(t->ctx, name, t->host, dtype, n, cl);
}

sky_status sky_cuda_prog_begin(sky_cuda_prog *pr, const char *name, int device, const char *src, const char *file,
                               int n_kernels, const char *const *kernel_names, const char *smem_prefix, int smem,
                               int n_weights, size_t arena_bytes, size_t kept_bytes, sky_err *err)
{
    pr->name = name;
    pr->fault_kernel = sky_cuda_fault_kernel(n_kernels, kernel_names);
    pr->arena_bytes = (arena_bytes + 255) / 256 * 256;
    pr->kept_bytes = (kept_bytes + 255) / 256 * 256;
    pr->fn = calloc((size_t)(n_kernels > 0 ? n_kernels : 1), sizeof *pr->fn);
    pr->w = calloc((size_t)(n_weights > 0 ? n_weights : 1), sizeof *pr->w);
    if (!pr->fn || !pr->w) return sky_fail(err, "out of host memory");
    if (sky_cuda_open(&pr->c, device, err)) return SKY_ERR;
    snprintf(pr->device, sizeof pr->device, "GPU %d: %s, sm_%d%d, %d SMs", device, pr->c->name, pr->c->cc_major,
             pr->c->cc_minor, pr->c->sm_count);
    /* What the plan, the GEMMs and the kept tensors need, checked against free memory before any allocation. */
    char what[160];
    snprintf(what, sizeof what, "%s's arena (plan %zu bytes, cuBLASLt workspace %zu, kept between calls %zu)", name,
             pr->arena_bytes, SKY_GEMM_WORKSPACE_BYTES, pr->kept_bytes);
    if (sky_cuda_require(pr->c, pr->arena_bytes + SKY_GEMM_WORKSPACE_BYTES + pr->kept_bytes, what, err)) return SKY_ERR;
    char how[160];
    if (sky_cuda_kernels_load(pr->c, src, file, n_kernels, kernel_names, smem_prefix, smem, &pr->module, pr->fn, how,
                              sizeof how, err))
        return SKY_ERR;
    const size_t used = strlen(pr->device);
    snprintf(pr->device + used, sizeof pr->device - used, ", %s", how);
    return SKY_OK;
}

sky_status sky_cuda_prog_weights(sky_cuda_prog *pr, int n, const size_t *src_count, const size_t *dev_bytes,
                                 sky_weight_form_fn form, void *ctx, const sky_weight_reader *r, sky_err *err)
{
    size_t total = 0, max_src = 1, max_dev = 1;
    for (int i = 0; i < n; i++) {
        total += (dev_bytes[i] + 255) / 256 * 256;
        if (src_count[i] > max_src) max_src = src_count[i];
        if (dev_bytes[i] > max_dev) max_dev = dev_bytes[i];
    }
    void *dev;
    char  what[96];
    snprintf(what, sizeof what, "the weights of %s", pr->name);
    if (sky_cuda_arena_alloc(pr->c, total ? total : 256, &dev, what, err)) return SKY_ERR;
    pr->weights = (CUdeviceptr)(uintptr_t)dev;
    float         *src = malloc(max_src * sizeof(float));
    unsigned char *stage = malloc(max_dev);
    int           *at = malloc((size_t)(n > 0 ? n : 1) * sizeof *at); /* the weight at each place */
    sky_status     st = SKY_OK;
    if (!src || !stage || !at) {
        st = sky_fail(err, "out of host memory staging a weight of %s (%zu bytes)", pr->name,
                      max_src * sizeof(float) + max_dev);
        goto done;
    }
    for (int i = 0; i < n; i++) at[i] = -1;
    for (int i = 0; i < n; i++) {
        const int k = pr->place ? pr->place[i] : i;
        if (k < 0 || k >= n || at[k] >= 0) {
            st = sky_fail(err,
                          "%s: the weight places are not a permutation (weight %d at %d); this is a bug in the "
                          "generated plugin, please report it",
                          pr->name, i, k);
            goto done;
        }
        at[k] = i;
    }
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        pr->w[at[k]] = pr->weights + off;
        off += (dev_bytes[at[k]] + 255) / 256 * 256;
    }
    for (int i = 0; i < n; i++) {
        if (r->read(r->ctx, i, src, err)) {
            st = SKY_ERR;
            goto done;
        }
        form(ctx, i, src, stage);
        SKY_CU_CHECK(cuMemcpyHtoD(pr->w[i], stage, dev_bytes[i]));
    }
done:
    free(src);
    free(stage);
    free(at);
    return st;
}

/* sky_cuda_prog_upload's device form: bf16 where the table says so, else the fp32 values as read. */
typedef struct upload_form {
    const unsigned char *bf16;
    const size_t        *count;
} upload_form;

static void form_dtype(void *ctx, int i, const float *src, void *dst)
{
    const upload_form *f = ctx;
    if (f->bf16[i]) {
        uint16_t *d = dst;
        for (size_t k = 0; k < f->count[i]; k++) d[k] = sky_f32_to_bf16(src[k]);
    } else {
        memcpy(dst, src, f->count[i] * sizeof(float));
    }
}

/* sky_cuda_prog_upload, with the blocks offloaded when n_slots > 0 (sky_cuda_prog_upload_blocks), their linear
 * weights as fp8 when expand is set (sky_cuda_prog_upload_fp8). */
static sky_status upload(sky_cuda_prog *pr, const sky_weight_desc *wd, int n, const unsigned char *bf16,
                         const short *block, int n_blocks, int n_slots, sky_cuda_fp8_expand_fn expand,
                         sky_cuda_offload **o, const sky_weight_reader *r, sky_err *err)
{
    unsigned char *quantised = NULL;
    size_t    *count = calloc((size_t)(n > 0 ? n : 1), sizeof *count);
    size_t    *bytes = calloc((size_t)(n > 0 ? n : 1), sizeof *bytes);
    sky_status st = SKY_ERR;
    if (!count || !bytes) {
        sky_fail(err, "out of host memory");
        goto done;
    }
    for (int i = 0; i < n; i++) {
        count[i] = 1;
        for (int k = 0; k < wd[i].ndim; k++) count[i] *= (size_t)wd[i].shape[k];
        bytes[i] = count[i] * (bf16[i] ? 2 : 4);
    }
    upload_form f = {bf16, count};
    if (expand) {
        quantised = malloc((size_t)(n > 0 ? n : 1));
        if (!quantised) {
            sky_fail(err, "out of host memory");
            goto done;
        }
        for (int i = 0; i < n; i++) quantised[i] = (unsigned char)(sky_fp8_quantised(&wd[i]) && bf16[i]);
        st = sky_cuda_offload_open_fp8(o, pr, wd, n, count, bytes, form_dtype, &f, block, quantised, n_blocks, n_slots,
                                       expand, r, err);
    } else {
        st = n_slots > 0 ? sky_cuda_offload_open(o, pr, n, count, bytes, form_dtype, &f, block, n_blocks, n_slots, r, err)
                         : sky_cuda_prog_weights(pr, n, count, bytes, form_dtype, &f, r, err);
    }
done:
    free(count);
    free(bytes);
    free(quantised);
    return st;
}

sky_status sky_cuda_prog_upload(sky_cuda_prog *pr, const sky_weight_desc *wd, int n, const unsigned char *bf16,
                                const sky_weight_reader *r, sky_err *err)
{
    return upload(pr, wd, n, bf16, NULL, 0, 0, NULL, NULL, r, err);
}

sky_status sky_cuda_prog_upload_blocks(sky_cuda_prog *pr, const sky_weight_desc *wd, int n, const unsigned char *bf16,
                                       const short *block, int n_blocks, int n_slots, sky_cuda_offload **o,
                                       const sky_weight_reader *r, sky_err *err)
{
    return upload(pr, wd, n, bf16, block, n_blocks, n_slots, NULL, o, r, err);
}

sky_status sky_cuda_prog_upload_fp8(sky_cuda_prog *pr, const sky_weight_desc *wd, int n, const unsigned char *bf16,
                                    const short *block, int n_blocks, int n_slots, sky_cuda_fp8_expand_fn expand,
                                    sky_cuda_offload **o, const sky_weight_reader *r, sky_err *err)
{
    return upload(pr, wd, n, bf16, block, n_blocks, n_slots, expand, o, r, err);
}

/* The GEMMs' algorithms chosen by measurement in the arena, before it is zeroed and used (gemm.h:
 * sky_gemm_tune), the choices kept in the kernel cache's folder; SKY_GEMM_TUNE=0 keeps the heuristic's first
 * (the same choice on every GPU of a kind, without measuring). */
static void tune_gemms(sky_cuda_prog *pr)
{
    const char *tune = getenv("SKY_GEMM_TUNE");
    if (tune && strcmp(tune, "0") == 0) return;
    char      dir[4096];
    sky_err   ce;
    const int cached = sky_nvrtc_cache_dir(dir, sizeof dir, &ce) == SKY_OK && sky_nvrtc_cache_mkdir(dir, &ce) == SKY_OK;
    sky_gemm_tune(pr->gemm, pr->arena, pr->arena_bytes, cached ? dir : NULL, pr->c->stream);
}

sky_status sky_cuda_prog_end(sky_cuda_prog *pr, const sky_gemm_desc *gemms, int n_gemms, sky_err *err)
{
    void *dev;
    char  what[96];
    snprintf(what, sizeof what, "%s's arena", pr->name);
    const size_t total = pr->arena_bytes + SKY_GEMM_WORKSPACE_BYTES + pr->kept_bytes;
    if (sky_cuda_arena_alloc(pr->c, total, &dev, what, err)) return SKY_ERR;
    pr->arena = (CUdeviceptr)(uintptr_t)dev;
    pr->workspace = pr->arena + pr->arena_bytes;
    pr->kept = pr->kept_bytes ? pr->workspace + SKY_GEMM_WORKSPACE_BYTES : 0;
    if (sky_gemm_init(&pr->gemm, pr->c, gemms, n_gemms, (void *)(uintptr_t)pr->workspace, SKY_GEMM_WORKSPACE_BYTES,
                      err))
        return SKY_ERR;
    tune_gemms(pr);
    SKY_CU_CHECK(cuMemsetD8(pr->arena, 0, total));
    pr->st = (sky_cuda_program){.arena = pr->arena,
                                .w = pr->w,
                                .fn = pr->fn,
                                .gemm = pr->gemm,
                                .sync_check = pr->c->sync_check,
                                .fault_kernel = pr->fault_kernel};
    return SKY_OK;
}

void sky_cuda_prog_bind(const sky_cuda_prog *pr)
{
    if (pr->c) sky_cuda_bind(pr->c);
}

void sky_cuda_prog_close(sky_cuda_prog *pr)
{
    if (pr->c) {
        sky_cuda_bind(pr->c);
        sky_gemm_free(pr->gemm);
        if (pr->arena) sky_cuda_arena_free(pr->c, (void *)(uintptr_t)pr->arena);
        if (pr->weights) sky_cuda_arena_free(pr->c, (void *)(uintptr_t)pr->weights);
        if (pr->module) cuModuleUnload(pr->module);
        sky_cuda_close(pr->c);
    }
    free(pr->fn);
    free(pr->w);
    free(pr->trace.host);
    for (int i = 0; i < pr->trace.cap_ev; i++) cuEventDestroy(pr->trace.ev[i]);
    free(pr->trace.ev);
    free(pr->trace.names);
    free(pr->trace.counts);
}

int sky_cuda_devices(void)
{
    int n = 0;
    if (cuInit(0) != CUDA_SUCCESS || cuDeviceGetCount(&n) != CUDA_SUCCESS) return 0;
    return n;
}

/* --trace: one op's output to the binary's hook. */
static void trace_op(const sky_cuda_program *st, CUstream s, const char *name, CUdeviceptr p, int dtype, long long n,
                     int cl)
{
    sky_cuda_trace_copy(&((sky_cuda_prog *)st->trace_ctx)->trace, s, name, p, dtype, n, cl);
}

void sky_cuda_prog_set_trace(sky_cuda_prog *pr, sky_trace_fn fn, void *ctx)
{
    pr->trace.fn = fn;
    pr->trace.ctx = ctx;
    pr->trace.timing = 0;
    pr->st.trace = fn ? trace_op : NULL;
    pr->st.trace_ctx = fn ? pr : NULL;
}

/* Timing: at least k + 1 events (created as the sequence needs them), and room for k ops' names. */
static void timing_room(sky_cuda_trace *t, int k)
{
    if (k < t->cap_ev) return;
    const int    cap = t->cap_ev ? 2 * t->cap_ev : 256;
    CUevent     *ev = realloc(t->ev, (size_t)cap * sizeof *ev);
    const char **names = ev ? realloc(t->names, (size_t)cap * sizeof *names) : NULL;
    long long   *counts = names ? realloc(t->counts, (size_t)cap * sizeof *counts) : NULL;
    if (ev) t->ev = ev;
    if (names) t->names = names;
    if (!counts) SKY_CUDA_FATAL("cuda: out of host memory for %d timing events", cap);
    t->counts = counts;
    for (; t->cap_ev < cap; t->cap_ev++) SKY_CU_CHECK(cuEventCreate(&t->ev[t->cap_ev], CU_EVENT_DEFAULT));
}

/* Timing: an event after the op (ops outside begin/end, such as a new prompt's part, are not timed). */
static void time_op(const sky_cuda_program *st, CUstream s, const char *name, CUdeviceptr p, int dtype, long long n,
                    int cl)
{
    (void)p, (void)dtype, (void)cl;
    sky_cuda_trace *t = &((sky_cuda_prog *)st->trace_ctx)->trace;
    if (!t->active) return;
    timing_room(t, t->n + 1); /* its event is ev[n + 1]; ev[0] is the start */
    SKY_CU_CHECK(cuEventRecord(t->ev[t->n + 1], s));
    t->names[t->n] = name, t->counts[t->n] = n;
    t->n++;
}

void sky_cuda_prog_set_timing(sky_cuda_prog *pr, sky_trace_fn fn, void *ctx)
{
    sky_cuda_prog_set_trace(pr, fn, ctx);
    pr->trace.timing = fn != NULL;
    if (fn) pr->st.trace = time_op;
}

void sky_cuda_timing_begin(sky_cuda_prog *pr, CUstream s)
{
    sky_cuda_trace *t = &pr->trace;
    if (!t->timing) return;
    timing_room(t, 0);
    SKY_CU_CHECK(cuEventRecord(t->ev[0], s));
    t->n = 0, t->active = 1;
}

void sky_cuda_timing_end(sky_cuda_prog *pr)
{
    sky_cuda_trace *t = &pr->trace;
    if (!t->timing || !t->active) return;
    t->active = 0;
    for (int i = 0; i < t->n; i++) {
        float ms = 0;
        SKY_CU_CHECK(cuEventSynchronize(t->ev[i + 1]));
        SKY_CU_CHECK(cuEventElapsedTime(&ms, t->ev[i], t->ev[i + 1]));
        const double seconds = ms * 1e-3;
        t->fn(t->ctx, t->names[i], &seconds, SKY_TRACE_SECONDS, t->counts[i], 0);
    }
}

/* The plugin's one exported symbol, SKY_CUDA_PLUGIN_SYMBOL (dlsym'ed by runtime/models/cuda_plugin.c;
 * everything else is hidden). */
/* --use_usp's NCCL communicator through the ABI (cuda_abi.h; the module: cuda/usp_nccl.h). */
_Static_assert(SKY_PLUGIN_NCCL_ID_BYTES == SKY_NCCL_ID_BYTES, "cuda_abi.h and usp_nccl.h: NCCL id sizes differ");

static sky_status plugin_nccl_open(void **out, int device, int rank, int size, const unsigned char *id, sky_err *err)
{
    sky_nccl        *c = NULL;
    const sky_status s = sky_nccl_open(&c, device, rank, size, id, err);
    *out = c;
    return s;
}

static void plugin_nccl_close(void *c) { sky_nccl_close(c); }

__attribute__((visibility("default"))) extern const sky_cuda_plugin sky_cuda_plugin_v1;
const sky_cuda_plugin                                               sky_cuda_plugin_v1 = {
                                                  .abi = SKY_CUDA_PLUGIN_ABI,
                                                  .variant = SKY_PLUGIN_VARIANT,
                                                  .open = sky_dit_cuda_open,
                                                  .forward = sky_dit_cuda_forward,
                                                  .teacache_open = sky_dit_cuda_teacache_open,
                                                  .device = sky_dit_cuda_device,
                                                  .devices = sky_cuda_devices,
                                                  .close = sky_dit_cuda_close,
                                                  .set_trace = sky_dit_cuda_set_trace,
                                                  .set_timing = sky_dit_cuda_set_timing,
                                                  .vae_open = sky_vae_cuda_open,
                                                  .vae_reset = sky_vae_cuda_reset,
                                                  .vae_chunk = sky_vae_cuda_chunk,
                                                  .vae_set_trace = sky_vae_cuda_set_trace,
                                                  .vae_device = sky_vae_cuda_device,
                                                  .vae_close = sky_vae_cuda_close,
                                                  .enc_open = sky_enc_cuda_open,
                                                  .enc_run = sky_enc_cuda_run,
                                                  .enc_set_trace = sky_enc_cuda_set_trace,
                                                  .enc_device = sky_enc_cuda_device,
                                                  .enc_close = sky_enc_cuda_close,
                                                  .selftest = sky_cuda_selftest,
                                                  .mem_bytes = sky_cuda_mem_bytes,
                                                  .device_info = sky_cuda_device_info,
                                                  .mem_free = sky_cuda_mem_free,
                                                  .nccl_id = sky_nccl_make_id,
                                                  .nccl_open = plugin_nccl_open,
                                                  .nccl_close = plugin_nccl_close,
                                                  .set_device = sky_cuda_set_device,
                                                  .use_comm = sky_dit_cuda_use_comm,
};
