/* tests/runtime/test_lora.c — LoRA files mapped to a weights table and merged (runtime/models/lora.c): every
 * key layout users bring, alpha from the file, the PEFT metadata or the rank, the merge arithmetic (in double,
 * one rounding, in file order) against the formula of lora.h evaluated here, the row split across threads,
 * and every refusal by its message. The files are written into a temporary directory by the test itself;
 * the numbers against diffusers' fuse_lora are tests/numeric/run_lora.sh's. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "core/dtype.h"
#include "formats/safetensors.h"
#include "formats/safetensors_write.h"
#include "formats/weights.h"
#include "models/lora.h"

/* A small table with the generated tables' names: original name, diffusers alias, shape. */
enum { Q_W, Q_B, NORM3, MOD, PATCH, FFN, N_TABLE };
static const sky_weight_desc table[N_TABLE] = {
    {"blocks.0.self_attn.q.weight", "blocks.0.attn1.to_q.weight", 2, {6, 5}},
    {"blocks.0.self_attn.q.bias", "blocks.0.attn1.to_q.bias", 1, {6}},
    {"blocks.0.norm3.weight", "blocks.0.norm2.weight", 1, {5}}, /* the norm2 / norm3 swap */
    {"blocks.0.modulation", "blocks.0.scale_shift_table", 3, {1, 6, 5}},
    {"patch_embedding.weight", "patch_embedding.weight", 5, {6, 2, 1, 2, 2}},
    {"blocks.0.ffn.0.weight", "blocks.0.ffn.net.0.proj.weight", 2, {1500, 700}}, /* large: split across threads */
};

static char   dir[256];
static float *base[N_TABLE]; /* the base checkpoint's values */
static char   base_path[512];

static size_t numel(const sky_weight_desc *w)
{
    size_t n = 1;
    for (int i = 0; i < w->ndim; i++) n *= (size_t)w->shape[i];
    return n;
}

/* Deterministic values that are exact in bf16 (small integers / 64), so products of rank 4 sum exactly. */
static uint64_t rng = 88172645463325252ull;
static float    next_value(void)
{
    rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
    return (float)((int)(rng % 65) - 32) / 64.0f;
}
static float *values(size_t n)
{
    float *v = malloc(n * sizeof *v);
    for (size_t i = 0; i < n; i++) v[i] = next_value();
    return v;
}

/* One tensor to write (F32 unless dtype given). */
typedef struct t_spec {
    const char  *name;
    int          ndim;
    int64_t      shape[5];
    const float *data; /* NULL: fresh values */
    sky_dtype    dtype;
} t_spec;

/* Write a file of the given tensors (and metadata) and return its path (static buffer per slot). */
static const char *write_lora(const char *file, const t_spec *t, int n, const char *const *meta)
{
    static char  paths[8][512];
    static int   slot;
    char        *path = paths[slot++ % 8];
    sky_st_entry e[16];
    float       *owned[16] = {0};
    int64_t      i64 = 7;
    snprintf(path, 512, "%s/%s", dir, file);
    for (int i = 0; i < n; i++) {
        size_t k = 1;
        for (int d = 0; d < t[i].ndim; d++) k *= (size_t)t[i].shape[d];
        e[i] = (sky_st_entry){t[i].name, t[i].dtype ? t[i].dtype : SKY_DTYPE_F32, t[i].ndim, {0}, NULL};
        memcpy(e[i].shape, t[i].shape, sizeof t[i].shape);
        e[i].data = t[i].dtype == SKY_DTYPE_I64 ? (const void *)&i64 : t[i].data ? t[i].data : (owned[i] = values(k));
    }
    sky_err err;
    if (sky_safetensors_write(path, e, n, meta, &err)) {
        fprintf(stderr, "cannot write %s: %s\n", path, err.msg);
        exit(2);
    }
    for (int i = 0; i < n; i++) free(owned[i]);
    return path;
}

/* The base checkpoint (original names), written once. */
static void write_base(void)
{
    sky_st_entry e[N_TABLE];
    for (int i = 0; i < N_TABLE; i++) {
        base[i] = values(numel(&table[i]));
        e[i] = (sky_st_entry){table[i].name, SKY_DTYPE_F32, table[i].ndim, {0}, base[i]};
        memcpy(e[i].shape, table[i].shape, sizeof e[i].shape);
    }
    snprintf(base_path, sizeof base_path, "%s/base.safetensors", dir);
    sky_err err;
    if (sky_safetensors_write(base_path, e, N_TABLE, NULL, &err)) exit(2);
}

/* Open the LoRAs (path, scale pairs) against the table. */
static sky_status open_loras(sky_lora **l, const char *const *paths, const double *scales, int n, int skip,
                             sky_err *err)
{
    sky_lora_spec specs[4];
    for (int i = 0; i < n; i++) {
        snprintf(specs[i].path, sizeof specs[i].path, "%s", paths[i]);
        specs[i].scale = scales[i];
    }
    return sky_lora_open(l, specs, n, table, N_TABLE, skip, "tiny_test", err);
}

/* Every entry of the base checkpoint read through the LoRA patch (sky_weights_read, as both backends load). */
static int read_merged(const sky_lora *l, float *out[N_TABLE])
{
    sky_checkpoint        *ck;
    sky_weights            w;
    sky_err                err;
    const sky_weight_patch patch = sky_lora_patch(l);
    CHECK(sky_checkpoint_open(&ck, base_path, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_weights_bind_lazy(&w, ck, table, N_TABLE, &patch, "tiny_test", &err) == SKY_OK, "%s", err.msg);
    for (int i = 0; i < N_TABLE; i++) {
        out[i] = malloc(numel(&table[i]) * sizeof(float));
        CHECK(sky_weights_read(&w, i, out[i], &err) == SKY_OK, "%s", err.msg);
    }
    sky_checkpoint_close(ck);
    return 0;
}

static void free_merged(float *m[N_TABLE])
{
    for (int i = 0; i < N_TABLE; i++) free(m[i]);
}

/* lora.h's formula for one element, in double: w + sum over deltas of factor * value, rounded once. */
static float expect(double w, const double *terms, int n)
{
    for (int i = 0; i < n; i++) w += terms[i];
    return (float)w;
}

/* up [N, r] . down [r, K] at (o, i), in double. */
static double product(const float *up, const float *down, int r, int K, int o, int i)
{
    double s = 0;
    for (int k = 0; k < r; k++) s += (double)up[o * r + k] * (double)down[k * K + i];
    return s;
}

/* ---- parsing --arg ------------------------------------------------------------------------------- */

static int test_parse_arg(void)
{
    static const struct {
        const char *arg, *path;
        double      scale;
    } cases[] = {
        {"a.safetensors", "a.safetensors", 1.0},
        {"a.safetensors:0.5", "a.safetensors", 0.5},
        {"x:-1.5e-1", "x", -0.15},
        {"dir:v2/l.safetensors", "dir:v2/l.safetensors", 1.0},
        {"l.safetensors:", "l.safetensors:", 1.0},
        {"l.safetensors:nan", "l.safetensors:nan", 1.0},
        {"l.safetensors:1:2", "l.safetensors:1", 2.0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        sky_lora_spec s;
        sky_err       err;
        CHECK(sky_lora_parse_arg(cases[i].arg, &s, &err) == SKY_OK, "%s: %s", cases[i].arg, err.msg);
        CHECK(strcmp(s.path, cases[i].path) == 0 && s.scale == cases[i].scale, "%s -> '%s' %g", cases[i].arg, s.path,
              s.scale);
    }
    sky_lora_spec s;
    sky_err       err;
    CHECK(sky_lora_parse_arg(":0.5", &s, &err) == SKY_ERR && strstr(err.msg, "--lora :0.5: no file"), "%s", err.msg);
    return 0;
}

/* ---- the layouts --------------------------------------------------------------------------------- */

/* One low-rank pair on q.weight under the given names (and alpha key / metadata): the merged q equals
 * lora.h's formula with alpha_want, every other entry equals the base. */
static int check_pair(const char *file, const char *down_name, const char *up_name, const char *alpha_name, float alpha,
                      const char *const *meta, double alpha_want, double scale)
{
    const int   r = 4, N = 6, K = 5;
    float      *down = values((size_t)r * K), *up = values((size_t)N * r);
    t_spec      t[3] = {{down_name, 2, {r, K}, down, 0}, {up_name, 2, {N, r}, up, 0}, {alpha_name, 0, {0}, &alpha, 0}};
    const char *path = write_lora(file, t, alpha_name ? 3 : 2, meta);
    sky_lora   *l;
    sky_err     err;
    CHECK(open_loras(&l, &path, &scale, 1, 0, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_lora_weights_changed(l) == 1, "%s: %d weights changed", file, sky_lora_weights_changed(l));
    float *m[N_TABLE];
    if (read_merged(l, m)) return 1;
    for (int o = 0; o < N; o++)
        for (int i = 0; i < K; i++) {
            const double term = scale * (alpha_want / r) * product(up, down, r, K, o, i);
            const float  want = expect(base[Q_W][o * K + i], &term, 1);
            CHECK(m[Q_W][o * K + i] == want, "%s: q[%d,%d] = %.9g, want %.9g", file, o, i, m[Q_W][o * K + i], want);
        }
    for (int e = 1; e < N_TABLE; e++)
        CHECK(memcmp(m[e], base[e], numel(&table[e]) * sizeof(float)) == 0, "%s: %s changed", file, table[e].name);
    free_merged(m);
    sky_lora_close(l);
    free(down);
    free(up);
    return 0;
}

static int test_original_layout(void)
{
    return check_pair("orig.safetensors", "diffusion_model.blocks.0.self_attn.q.lora_down.weight",
                      "diffusion_model.blocks.0.self_attn.q.lora_up.weight",
                      "diffusion_model.blocks.0.self_attn.q.alpha", 2.0f, NULL, 2.0, 0.75);
}

static int test_original_lora_ab_no_alpha(void)
{
    return check_pair("orig_ab.safetensors", "diffusion_model.blocks.0.self_attn.q.lora_A.weight",
                      "diffusion_model.blocks.0.self_attn.q.lora_B.weight", NULL, 0, NULL, 4.0 /* = rank */, 1.0);
}

static int test_diffusers_layout_metadata_alpha(void)
{
    const char *meta[] = {"lora_adapter_metadata",
                          "{\"transformer.lora_alpha\": 6, \"transformer.r\": 4, \"transformer.use_rslora\": false}",
                          NULL};
    return check_pair("peft.safetensors", "transformer.blocks.0.attn1.to_q.lora_A.weight",
                      "transformer.blocks.0.attn1.to_q.lora_B.weight", NULL, 0, meta, 6.0, 1.0);
}

static int test_diffusers_alpha_pattern_rslora(void)
{
    /* PEFT: the alpha_pattern entry that matches the module path's tail; rslora divides by sqrt(r) = 2 */
    const char *meta[] = {"lora_adapter_metadata",
                          "{\"lora_alpha\": 6, \"use_rslora\": true, \"alpha_pattern\": {\"attn2.to_q\": 1, "
                          "\"attn1.to_q\": 3}}",
                          NULL};
    return check_pair("peft_pat.safetensors", "transformer.blocks.0.attn1.to_q.lora_A.weight",
                      "transformer.blocks.0.attn1.to_q.lora_B.weight", NULL, 0, meta, 3.0 * 4.0 / 2.0, 1.0);
}

static int test_musubi_layout(void)
{
    return check_pair("musubi.safetensors", "lora_unet_blocks_0_self_attn_q.lora_down.weight",
                      "lora_unet_blocks_0_self_attn_q.lora_up.weight", "lora_unet_blocks_0_self_attn_q.alpha", 8.0f,
                      NULL, 8.0, -0.5);
}

static int test_bare_peft_default(void)
{
    return check_pair("bare.safetensors", "base_model.model.blocks.0.attn1.to_q.lora_A.default.weight",
                      "base_model.model.blocks.0.attn1.to_q.lora_B.default.weight", NULL, 0, NULL, 4.0, 2.0);
}

/* Full deltas: .diff (a norm under its diffusers name, the 5-d patch embedding, modulation), .diff_b, .diff_m
 * (a [6, 5] delta for the [1, 6, 5] modulation), and a lora bias; two files in order, each scaled. */
static int test_full_deltas_two_files(void)
{
    const int r = 2;
    float    *dq = values(6), *dn = values(5), *dp = values(48), *dm = values(30);
    float    *down = values((size_t)r * 5), *up = values((size_t)6 * r), *ub = values(6);
    float     alpha = 1.0f;
    t_spec    a[] = {
           {"transformer.blocks.0.norm2.diff", 1, {5}, dn, 0},
           {"diffusion_model.blocks.0.self_attn.q.diff_b", 1, {6}, dq, 0},
           {"diffusion_model.patch_embedding.diff", 5, {6, 2, 1, 2, 2}, dp, 0},
           {"diffusion_model.blocks.0.diff_m", 2, {6, 5}, dm, 0},
    };
    t_spec b[] = {
        {"diffusion_model.blocks.0.self_attn.q.lora_down.weight", 2, {r, 5}, down, 0},
        {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", 2, {6, r}, up, 0},
        {"diffusion_model.blocks.0.self_attn.q.lora_up.bias", 1, {6}, ub, 0},
        {"diffusion_model.blocks.0.self_attn.q.alpha", 0, {0}, &alpha, 0},
    };
    const char *paths[2] = {write_lora("full.safetensors", a, 4, NULL), NULL};
    paths[1] = write_lora("lowbias.safetensors", b, 4, NULL);
    const double scales[2] = {0.7, 1.25};
    sky_lora    *l;
    sky_err      err;
    CHECK(open_loras(&l, paths, scales, 2, 0, &err) == SKY_OK, "%s", err.msg);
    sky_lora_stats s0, s1;
    sky_lora_file_stats(l, 0, &s0);
    sky_lora_file_stats(l, 1, &s1);
    CHECK(s0.weights == 4 && s0.full == 4 && s0.low_rank == 0, "file 0: %d weights, %d full, %d low rank", s0.weights,
          s0.full, s0.low_rank);
    /* q.weight and q.bias (its lora bias counts as low rank) */
    CHECK(s1.weights == 2 && s1.low_rank == 2 && s1.full == 0, "file 1: %d weights, %d low rank, %d full", s1.weights,
          s1.low_rank, s1.full);
    float *m[N_TABLE];
    if (read_merged(l, m)) return 1;
    for (int i = 0; i < 5; i++)
        CHECK(m[NORM3][i] == expect(base[NORM3][i], (double[]){0.7 * dn[i]}, 1), "norm3[%d]", i);
    for (int i = 0; i < 48; i++)
        CHECK(m[PATCH][i] == expect(base[PATCH][i], (double[]){0.7 * dp[i]}, 1), "patch[%d]", i);
    for (int i = 0; i < 30; i++)
        CHECK(m[MOD][i] == expect(base[MOD][i], (double[]){0.7 * dm[i]}, 1), "modulation[%d]", i);
    /* q.bias: file 0's diff_b, then file 1's lora bias */
    for (int o = 0; o < 6; o++) {
        const double terms[2] = {0.7 * dq[o], 1.25 * (1.0 / r) * ub[o]};
        CHECK(m[Q_B][o] == expect(base[Q_B][o], terms, 2), "q.bias[%d] = %.9g", o, m[Q_B][o]);
    }
    for (int o = 0; o < 6; o++)
        for (int i = 0; i < 5; i++) {
            const double term = 1.25 * (1.0 / r) * product(up, down, r, 5, o, i);
            CHECK(m[Q_W][o * 5 + i] == expect(base[Q_W][o * 5 + i], &term, 1), "q[%d,%d]", o, i);
        }
    CHECK(memcmp(m[FFN], base[FFN], numel(&table[FFN]) * sizeof(float)) == 0, "ffn changed");
    char line[1024];
    CHECK(!sky_lora_describe(l, 1, &(sky_lora_spec){"lowbias.safetensors", 1.25}, line, sizeof line) &&
              strcmp(line, "lora: lowbias.safetensors (scale 1.25): 2 weights changed (2 low-rank, 0 full deltas)") ==
                  0,
          "%s", line);
    free_merged(m);
    sky_lora_close(l);
    float *all[] = {dq, dn, dp, dm, down, up, ub};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++) free(all[i]);
    return 0;
}

/* A large entry (1500 x 700, rank 8: split across threads on a multi-core machine): every element equals the
 * formula, so the split changes nothing. */
static int test_large_entry(void)
{
    const int    r = 8, N = 1500, K = 700;
    float       *down = values((size_t)r * K), *up = values((size_t)N * r);
    t_spec       t[] = {{"diffusion_model.blocks.0.ffn.0.lora_down.weight", 2, {r, K}, down, 0},
                        {"diffusion_model.blocks.0.ffn.0.lora_up.weight", 2, {N, r}, up, 0}};
    const char  *path = write_lora("large.safetensors", t, 2, NULL);
    const double scale = 0.3;
    sky_lora    *l;
    sky_err      err;
    CHECK(open_loras(&l, &path, &scale, 1, 0, &err) == SKY_OK, "%s", err.msg);
    float *m[N_TABLE];
    if (read_merged(l, m)) return 1;
    long bad = 0;
    for (int o = 0; o < N; o++)
        for (int i = 0; i < K; i++) {
            const double term = 0.3 * (8.0 / 8) * product(up, down, r, K, o, i);
            bad += m[FFN][(size_t)o * K + i] != expect(base[FFN][(size_t)o * K + i], &term, 1);
        }
    CHECK(bad == 0, "%ld of %d elements differ from the formula", bad, N * K);
    printf("     1500 x 700 rank 8: every element equals the formula (%ld cores)\n", sysconf(_SC_NPROCESSORS_ONLN));
    free_merged(m);
    sky_lora_close(l);
    free(down);
    free(up);
    return 0;
}

/* --lora_unknown_keys warn: a key of a block this model lacks is skipped and counted, the rest applies. */
static int test_skip_unknown(void)
{
    t_spec       t[] = {{"diffusion_model.blocks.0.self_attn.q.diff_b", 1, {6}, NULL, 0},
                        {"diffusion_model.blocks.7.self_attn.q.lora_down.weight", 2, {2, 5}, NULL, 0},
                        {"diffusion_model.blocks.7.self_attn.q.lora_up.weight", 2, {6, 2}, NULL, 0},
                        {"diffusion_model.blocks.7.self_attn.q.alpha", 0, {0}, NULL, 0},
                        {"diffusion_model.blocks.0.cross_attn.k_img.diff", 2, {6, 5}, NULL, 0}};
    const char  *path = write_lora("skip.safetensors", t, 5, NULL);
    const double one = 1.0;
    sky_lora    *l;
    sky_err      err;
    CHECK(open_loras(&l, &path, &one, 1, 1, &err) == SKY_OK, "%s", err.msg);
    sky_lora_stats s;
    sky_lora_file_stats(l, 0, &s);
    CHECK(s.weights == 1 && s.skipped == 4, "%d weights, %d skipped", s.weights, s.skipped);
    char line[1024];
    CHECK(sky_lora_describe(l, 0, &(sky_lora_spec){"skip.safetensors", 1.0}, line, sizeof line) &&
              strstr(line, "warning: 4 keys match no weight of this model, skipped (first "
                           "'diffusion_model.blocks.0.cross_attn.k_img.diff')"),
          "%s", line);
    sky_lora_close(l);
    return 0;
}

/* ---- refusals ------------------------------------------------------------------------------------ */

static int refused(const char *file, const t_spec *t, int n, const char *const *meta, const char *want)
{
    const char  *path = write_lora(file, t, n, meta);
    const double one = 1.0;
    sky_lora    *l = (sky_lora *)1;
    sky_err      err = {""};
    CHECK(open_loras(&l, &path, &one, 1, 0, &err) == SKY_ERR, "%s: accepted", file);
    CHECK(l == NULL, "%s: *out set on error", file);
    CHECK(strstr(err.msg, want) && strstr(err.msg, file), "%s: message '%s' lacks '%s' or the file", file, err.msg,
          want);
    printf("     %s\n", err.msg);
    return 0;
}

static int test_refuse_unknown_key(void)
{
    t_spec t[] = {{"diffusion_model.blocks.7.self_attn.q.lora_down.weight", 2, {2, 5}, NULL, 0},
                  {"diffusion_model.blocks.7.self_attn.q.lora_up.weight", 2, {6, 2}, NULL, 0}};
    return refused("unknown.safetensors", t, 2, NULL,
                   "key 'diffusion_model.blocks.7.self_attn.q.lora_down.weight' matches no weight of tiny_test "
                   "(looked for 'blocks.7.self_attn.q.weight' in the original and the diffusers names); is the LoRA "
                   "for another model? (--lora_unknown_keys warn skips such keys)");
}

static int test_refuse_unknown_suffix(void)
{
    t_spec t[] = {{"diffusion_model.blocks.0.self_attn.q.lokr_w1", 2, {2, 5}, NULL, 0}};
    return refused("lokr.safetensors", t, 1, NULL,
                   "key 'diffusion_model.blocks.0.self_attn.q.lokr_w1' is not a LoRA key this engine knows");
}

static int test_refuse_wrong_shape(void)
{
    t_spec t[] = {{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", 2, {2, 4}, NULL, 0},
                  {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", 2, {6, 2}, NULL, 0}};
    return refused("shape.safetensors", t, 2, NULL,
                   "'diffusion_model.blocks.0.self_attn.q.lora_down.weight' [2, 4] and "
                   "'diffusion_model.blocks.0.self_attn.q.lora_up.weight' [6, 2] do not fit weight "
                   "'blocks.0.self_attn.q.weight' [6, 5] of tiny_test");
}

static int test_refuse_other_model_size(void)
{
    /* a LoRA of a model twice as wide: every pair and delta is too large */
    t_spec t[] = {{"diffusion_model.blocks.0.norm3.diff", 1, {10}, NULL, 0},
                  {"diffusion_model.blocks.0.self_attn.q.lora_down.weight", 2, {4, 10}, NULL, 0},
                  {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", 2, {12, 4}, NULL, 0}};
    return refused("wide.safetensors", t, 3, NULL, "is the LoRA for another model size?");
}

static int test_refuse_full_shape(void)
{
    t_spec t[] = {{"diffusion_model.blocks.0.self_attn.q.diff_b", 1, {5}, NULL, 0}};
    return refused("diffb.safetensors", t, 1, NULL,
                   "'diffusion_model.blocks.0.self_attn.q.diff_b' has shape [5] but weight 'blocks.0.self_attn.q.bias' "
                   "of tiny_test is [6]");
}

static int test_refuse_missing_up(void)
{
    t_spec t[] = {{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", 2, {2, 5}, NULL, 0},
                  {"diffusion_model.blocks.0.self_attn.q.alpha", 0, {0}, NULL, 0}};
    return refused("noup.safetensors", t, 2, NULL,
                   "'diffusion_model.blocks.0.self_attn.q.lora_down.weight' has no lora_up (lora_B) beside it");
}

static int test_refuse_lonely_alpha(void)
{
    t_spec t[] = {{"diffusion_model.blocks.0.self_attn.q.alpha", 0, {0}, NULL, 0},
                  {"diffusion_model.blocks.0.self_attn.q.diff_b", 1, {6}, NULL, 0}};
    return refused("alpha.safetensors", t, 2, NULL,
                   "'diffusion_model.blocks.0.self_attn.q.alpha' has no lora_down (lora_A) beside it");
}

static int test_refuse_alpha_not_scalar(void)
{
    t_spec t[] = {{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", 2, {2, 5}, NULL, 0},
                  {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", 2, {6, 2}, NULL, 0},
                  {"diffusion_model.blocks.0.self_attn.q.alpha", 1, {2}, NULL, 0}};
    return refused("alpha2.safetensors", t, 3, NULL,
                   "'diffusion_model.blocks.0.self_attn.q.alpha' must be one finite number");
}

static int test_refuse_two_names(void)
{
    /* the same weight under its original and its diffusers name in one file */
    t_spec t[] = {{"diffusion_model.blocks.0.self_attn.q.diff", 2, {6, 5}, NULL, 0},
                  {"transformer.blocks.0.attn1.to_q.diff", 2, {6, 5}, NULL, 0}};
    return refused("twice.safetensors", t, 2, NULL, "two full deltas for weight 'blocks.0.self_attn.q.weight'");
}

static int test_refuse_bias_twice(void)
{
    /* a lora bias and a diff_b for one bias in one file (diffusers would keep one of them) */
    t_spec t[] = {{"diffusion_model.blocks.0.self_attn.q.lora_down.weight", 2, {2, 5}, NULL, 0},
                  {"diffusion_model.blocks.0.self_attn.q.lora_up.weight", 2, {6, 2}, NULL, 0},
                  {"diffusion_model.blocks.0.self_attn.q.lora_up.bias", 1, {6}, NULL, 0},
                  {"diffusion_model.blocks.0.self_attn.q.diff_b", 1, {6}, NULL, 0}};
    return refused("bias2.safetensors", t, 4, NULL, "two full deltas for weight 'blocks.0.self_attn.q.bias'");
}

static int test_refuse_dora(void)
{
    t_spec t[] = {{"transformer.blocks.0.attn1.to_q.lora_A.weight", 2, {2, 5}, NULL, 0},
                  {"transformer.blocks.0.attn1.to_q.lora_B.weight", 2, {6, 2}, NULL, 0},
                  {"transformer.blocks.0.attn1.to_q.lora_magnitude_vector", 1, {6}, NULL, 0}};
    return refused("dora.safetensors", t, 3, NULL, "is a DoRA key: DoRA is not supported");
}

static int test_refuse_dora_metadata(void)
{
    t_spec      t[] = {{"transformer.blocks.0.attn1.to_q.lora_A.weight", 2, {2, 5}, NULL, 0},
                       {"transformer.blocks.0.attn1.to_q.lora_B.weight", 2, {6, 2}, NULL, 0}};
    const char *meta[] = {"lora_adapter_metadata", "{\"use_dora\": true, \"lora_alpha\": 4}", NULL};
    return refused("dorameta.safetensors", t, 2, meta, "a DoRA adapter (use_dora in lora_adapter_metadata)");
}

static int test_refuse_dtype(void)
{
    t_spec t[] = {{"diffusion_model.blocks.0.self_attn.q.diff_b", 1, {1}, NULL, SKY_DTYPE_I64}};
    return refused("int.safetensors", t, 1, NULL,
                   "'diffusion_model.blocks.0.self_attn.q.diff_b' has dtype I64; LoRA tensors must be F32, BF16, F16 "
                   "or F64");
}

static int test_refuse_nothing_applies(void)
{
    t_spec       t[] = {{"diffusion_model.blocks.9.ffn.0.diff_b", 1, {6}, NULL, 0}};
    const char  *path = write_lora("nothing.safetensors", t, 1, NULL);
    const double one = 1.0;
    sky_lora    *l;
    sky_err      err;
    CHECK(open_loras(&l, &path, &one, 1, 1, &err) == SKY_ERR &&
              strstr(err.msg, "nothing.safetensors: none of its 1 keys changes a weight of tiny_test"),
          "%s", err.msg);
    printf("     %s\n", err.msg);
    return 0;
}

static int test_refuse_malformed_file(void)
{
    char path[512];
    snprintf(path, sizeof path, "%s/garbage.safetensors", dir);
    FILE             *f = fopen(path, "wb");
    static const char bytes[] = "\x40\x00\x00\x00\x00\x00\x00\x00{\"a\": 1"; /* a header past the end */
    fwrite(bytes, 1, sizeof bytes - 1, f);
    fclose(f);
    const char  *p = path;
    const double one = 1.0;
    sky_lora    *l;
    sky_err      err;
    CHECK(open_loras(&l, &p, &one, 1, 0, &err) == SKY_ERR && strstr(err.msg, "--lora: ") &&
              strstr(err.msg, "garbage.safetensors"),
          "%s", err.msg);
    printf("     %s\n", err.msg);
    return 0;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/test_lora.XXXXXX");
    if (!mkdtemp(dir)) return 2;
    write_base();
    RUN(test_parse_arg);
    RUN(test_original_layout);
    RUN(test_original_lora_ab_no_alpha);
    RUN(test_diffusers_layout_metadata_alpha);
    RUN(test_diffusers_alpha_pattern_rslora);
    RUN(test_musubi_layout);
    RUN(test_bare_peft_default);
    RUN(test_full_deltas_two_files);
    RUN(test_large_entry);
    RUN(test_skip_unknown);
    RUN(test_refuse_unknown_key);
    RUN(test_refuse_unknown_suffix);
    RUN(test_refuse_wrong_shape);
    RUN(test_refuse_other_model_size);
    RUN(test_refuse_full_shape);
    RUN(test_refuse_missing_up);
    RUN(test_refuse_lonely_alpha);
    RUN(test_refuse_alpha_not_scalar);
    RUN(test_refuse_two_names);
    RUN(test_refuse_bias_twice);
    RUN(test_refuse_dora);
    RUN(test_refuse_dora_metadata);
    RUN(test_refuse_dtype);
    RUN(test_refuse_nothing_applies);
    RUN(test_refuse_malformed_file);
    for (int i = 0; i < N_TABLE; i++) free(base[i]);
    char cmd[512];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    if (system(cmd) != 0) fprintf(stderr, "warning: could not remove %s\n", dir);
    return CHECK_SUMMARY();
}
