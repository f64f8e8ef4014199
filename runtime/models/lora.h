/* runtime/models/lora.h — LoRAs merged into a program's weights as they load (--lora FILE[:SCALE]).
 *
 * Each file's tensors are mapped to entries of the program's weights table (sky_weight_desc: the original
 * SkyReels/Wan name and the diffusers alias of every tensor), so the mapping original <-> diffusers is the
 * generated table's. Accepted keys (shared/reference/round2-features.md §2.2, §2.9):
 *   prefix   diffusion_model. | model.diffusion_model. | transformer. | base_model.model. | lora_unet_ (musubi:
 *            the module path with '_' for '.') | none; after it, a module path in either naming
 *            (blocks.0.self_attn.q or blocks.0.attn1.to_q)
 *   suffix   .lora_down.weight / .lora_A.weight   down [r, in]       low rank: W += s (alpha/r) up.down
 *            .lora_up.weight / .lora_B.weight     up [out, r]
 *            .lora_up.bias / .lora_B.bias         [out]              PEFT lora_bias: b += s (alpha/r) bias
 *            .alpha                               scalar             alpha (default: r)
 *            .diff                                the tensor's shape W += s diff (weights, norms, modulation)
 *            .diff_b                              [out]              b += s diff_b
 *            .diff_m                              modulation shape   <module>.modulation += s diff_m (LightX2V)
 * alpha, in this order: the module's .alpha tensor; for keys under transformer. (diffusers/PEFT files) the
 * LoraConfig that diffusers stores as JSON in __metadata__["lora_adapter_metadata"] (lora_alpha, alpha_pattern,
 * use_rslora: alpha/sqrt(r)); else r (scale 1), as diffusers does.
 *
 * Arithmetic (round2-features.md §2.8): per element, in double, deltas in the order of the files and within
 * a file low rank before full:  w = fp32(w + f1*(sum_k up[o,k] down[k,i]) + f2*diff + ...), f = SCALE*alpha/r
 * or SCALE; the result is rounded once to fp32, before any conversion to the backend's dtype. Deliberate
 * differences from diffusers' load_lora_weights + fuse_lora (which rounds each product to fp32): .diff on
 * norms and modulation is applied (diffusers drops it and assumes zeros; ComfyUI and LightX2V apply it);
 * mixed-rank files take alpha/r per module (diffusers' PEFT config gives such modules first_rank/r).
 *
 * Refused, naming the file and key: a key that matches no weight of the program (unless skip_unknown: then
 * skipped and counted), a shape that does not fit its weight, a down without its up (or the reverse), an
 * alpha or bias without its pair, two deltas of one kind for one weight in one file, DoRA keys, a dtype
 * other than F32/BF16/F16/F64, a non-finite alpha, a file that is not a valid safetensors file.
 */
#ifndef SKY_LORA_H
#define SKY_LORA_H

#include "core/status.h"
#include "formats/weights.h"

/* One --lora value: the file and its strength. */
typedef struct sky_lora_spec {
    char   path[4096];
    double scale; /* the strength (1.0: as trained) */
} sky_lora_spec;

/* Per file: what it changes. */
typedef struct sky_lora_stats {
    int  weights;        /* table entries it changes */
    int  low_rank, full; /* deltas of each kind (a bias of a low-rank pair counts as low rank) */
    int  skipped;        /* keys matching no weight, skipped (skip_unknown) */
    char first_skipped[256];
} sky_lora_stats;

typedef struct sky_lora sky_lora; /* opaque: the open files and the deltas indexed by table entry */

/* "FILE[:SCALE]": SCALE after the last ':' when it is a finite number (default 1.0), else the whole
 * string is the path. Fails on an empty or too long path. */
sky_status sky_lora_parse_arg(const char *arg, sky_lora_spec *out, sky_err *err);

/* Open the n files of specs and map every key to an entry of table (n_table entries), checking everything
 * above before any weight is read. `who` names the variant in messages. The files stay mapped until
 * sky_lora_close(). On error *out is NULL and nothing stays open. */
sky_status sky_lora_open(sky_lora **out, const sky_lora_spec *specs, int n, const sky_weight_desc *table, int n_table,
                         int skip_unknown, const char *who, sky_err *err);

/* Files opened, and what file k changes. */
int  sky_lora_count(const sky_lora *l);
void sky_lora_file_stats(const sky_lora *l, int k, sky_lora_stats *out);

/* One line on file k (whose --lora value was `spec`) for the log: "lora: PATH (scale S): N weights changed (a
 * low-rank, b full deltas)", with "; warning: K keys match no weight of this model, skipped (first 'X')"
 * appended when keys were skipped. Returns 1 when it holds that warning (print it even when quiet). */
int sky_lora_describe(const sky_lora *l, int k, const sky_lora_spec *spec, char *buf, size_t n);

/* Table entries any file changes. */
int sky_lora_weights_changed(const sky_lora *l);

/* The patch that adds the deltas to an entry as sky_weights_read converts it (formats/weights.h); valid
 * while l is open. Safe to use from several threads at once. l may be NULL: no patch (add NULL). */
sky_weight_patch sky_lora_patch(const sky_lora *l);

/* Add the deltas of table entry i to dst (its fp32 values, the entry's element count). Large entries are
 * split by rows across threads; the result does not depend on their count. */
sky_status sky_lora_apply(const sky_lora *l, int i, float *dst, sky_err *err);

/* Unmap and free. NULL is fine. */
void sky_lora_close(sky_lora *l);

/* Write the checkpoint at `weights` (bound to table, n_table entries) with l's deltas merged (l NULL: none), as F32
 * under the original names (diffusers = 0) or the diffusers names, to `path` (skyreels lora-merge: a LoRA baked in
 * once; and what the tests compare with diffusers' fuse_lora). With weight_fp8, the entries --weight_dtype fp8
 * quantises (models/fp8_quant.h) are written as F8_E4M3 with their per-row scales as `<layer>.weight_scale` F32
 * [rows, 1]: the per-channel fp8 file that loads to exactly the weights --weight_dtype fp8 computes. Holds the whole
 * model in fp32 in host memory. */
sky_status sky_lora_write_merged(const sky_lora *l, const sky_weight_desc *table, int n_table, const char *weights,
                                 int diffusers, int weight_fp8, const char *who, const char *path, sky_err *err);

#endif /* SKY_LORA_H */
