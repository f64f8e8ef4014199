/* runtime/models/dit.h — run the generated dit_forward program on a file of inputs.
 *
 * Inputs are named as in shared/reference/dit-and-sampling.md §2 (batch first):
 *   x         [B, x_channels, F, H, W]  noisy latent (any float dtype)
 *   t         [B] (one timestep per sample) or [B, F] (per frame, diffusion forcing); int or float
 *   context   [B, text_len, text_dim]   text encoder output
 *   y         [B, y_channels, F, H, W]  I2V only: mask + conditioning latent
 *   clip_fea  [B, image_len, image_dim] I2V only: CLIP features
 *   fps       [B] integer 0 or 1        inject_sample_info variants only (0 means 16 fps)
 * F may be any count from 1 to the spec's window; H x W is the spec's latent size or its
 * transpose (portrait). Output: v [B, out_dim, F, H, W] F32, the velocity prediction.
 * A tensor named v in the inputs file (an expected output kept beside the inputs, as the test
 * fixtures do) is ignored; any other name that is not an input of the variant is an error.
 * Every input is checked (presence, rank, each dim, dtype, value ranges) before any work.
 */
#ifndef SKY_DIT_H
#define SKY_DIT_H

#include "core/status.h"
#include "models/backend.h"
#include "models/lora.h"
#include "models/program.h"
#include "models/teacache.h"

typedef struct sky_dit_run_opts {
    const char *weights; /* checkpoint: file, sharded index or directory */
    const char *inputs;  /* .safetensors with the tensors above */
    const char *output;  /* .safetensors to write (v) */
    int         quiet;   /* 1: no progress lines on stderr */
    sky_backend backend;
    /* TeaCache over the samples as one sequence of calls (teacache.h): threshold (0: off), the
     * original's num_steps, e0 as the probe; the output gains teacache_computed [B] I64. */
    double teacache;
    int    teacache_steps, use_ret_steps;
    /* LoRAs merged into the weights as they load (lora.h); keys matching no weight skipped when
     * lora_skip_unknown, else refused. */
    const sky_lora_spec *loras;
    int                  n_loras, lora_skip_unknown;
    int                  weight_fp8; /* --weight_dtype fp8: block linear weights quantised at load (fp8_quant.h) */
    /* --use_usp: this rank's collectives (NULL: one process). Every rank runs the variant's dit_forward_usp on the
     * same inputs (sky_dit_use_comm's rank counts); only rank 0 writes the output. With the CUDA backend, nccl is
     * the rank's NCCL communicator (dist/usp_cuda.h sky_usp_cuda_open) and device its GPU. */
    const sky_comm *comm;
    void           *nccl;
    int             device;
    int             offload_blocks; /* --offload_blocks N (0: off; sky_dit_open) */
} sky_dit_run_opts;

/* A bound dit_forward program: weights as fp32 and the CPU arena, or the CUDA plugin's state. */
typedef struct sky_dit sky_dit;

/* Bind program p to the checkpoint at `weights` (file, index or directory; original or diffusers
 * names) with the deltas of `lora` (NULL: none; opened by sky_lora_open for p's weights table and open
 * until sky_dit_open returns) merged in as each tensor is converted to fp32, then, when weight_fp8, the block linear
 * weights quantised to fp8 and back (--weight_dtype fp8; fp8_quant.h), on backend b (backend.h; for
 * SKY_BACKEND_CUDA on GPU `device`, 0 .. sky_cuda_devices_visible - 1, cuda_plugin.h); `who` names the
 * variant in messages (and the plugin to load for SKY_BACKEND_CUDA); unless quiet, a line about the weights
 * (and the device) on stderr. Two transformers may run their forwards at once, each from its own thread
 * (--use_cfg_parallel); one is used by one thread at a time. offload_blocks (--offload_blocks): on the CUDA
 * backend, N >= 1 keeps the blocks' weights in pinned host memory and N of them on the device (cuda_abi.h); 0 all
 * on the device; the CPU backend ignores it (its weights are host memory already). */
sky_status sky_dit_open(sky_dit **out, const sky_dit_program *p, const char *weights, const sky_lora *lora,
                        int weight_fp8, const char *who, int quiet, sky_backend b, int device, int offload_blocks,
                        sky_err *err);

/* Whether `ranks` ranks can run p (dit_forward) under --use_usp: p has a dit_forward_usp and ranks is one of its
 * rank counts (dividing the heads); refused with the counts that work. No work: check before loading anything. */
sky_status sky_dit_usp_check(const sky_dit_program *p, int ranks, sky_err *err);

/* Run d's forwards as one rank of comm (Ulysses sequence parallelism): d must have been opened on a
 * dit_forward_usp program (sky_dit_program.usp); refused, with the rank counts that work, when comm's size is not
 * one of the program's usp_ranks. On the CUDA backend, nccl is the rank's NCCL communicator (the plugin's use_comm:
 * the collectives run on the GPU; comm's size and rank are its). Every rank then calls sky_dit_forward with the
 * same arguments; each gets the whole v. */
sky_status sky_dit_use_comm(sky_dit *d, const sky_comm *comm, void *nccl, sky_err *err);

/* Close d (NULL is fine). */
void sky_dit_close(sky_dit *d);

/* One forward pass of one sample (shapes as above without the batch): x [x_channels, F, H, W],
 * y and clip_fea for I2V (else ignored), t [Ft] with Ft 1 or F, context [text_len, text_dim],
 * fps the embedding index (inject_sample_info only); v [out_dim, F, H, W]. Inputs were checked by
 * the caller (asserts only). skip: NULL, or TeaCache's decision (teacache.h: the call may skip the
 * blocks; after sky_dit_teacache_open), usually { use_ret_steps, sky_teacache_decide, &state }. The prompt part (text and image embeddings, the cross-attention keys and
 * values) runs only when no prompt arena holds this context and clip_fea (runtime/models/prompt_cache.h). */
void sky_dit_forward(sky_dit *d, int F, int H, int W, const float *x, const float *y, const double *t, int Ft,
                     const float *context, const float *clip_fea, int64_t fps, float *v, const sky_dit_skip *skip);

/* Forwards so far that ran the prompt part (a prompt no prompt arena held: runtime/models/prompt_cache.h) and
 * forwards that reused a prompt arena. */
void sky_dit_prompt_counts(const sky_dit *d, long long *computed, long long *reused);

/* bench's breakdown on the CUDA backend: after each later forward, every op's device time to fn
 * (SKY_TRACE_SECONDS, program.h); NULL stops. Returns 0, or -1 on the CPU backend (no device times: bench
 * clocks the ops on the host there). */
int sky_dit_set_timing(sky_dit *d, sky_trace_fn fn, void *ctx);

/* Allocate what TeaCache keeps (two residuals and a copy of the tokens at the largest window): once,
 * before the first forward with a tc. */
sky_status sky_dit_teacache_open(sky_dit *d, sky_err *err);

/* Run dit_forward of variant v on o->backend, one sample at a time. */
sky_status sky_dit_run(const sky_variant_desc *v, const sky_dit_run_opts *o, sky_err *err);

#endif /* SKY_DIT_H */
