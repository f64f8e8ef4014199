/* tests/runtime/test_weights.c — the weights binder (runtime/formats/weights.c): layout detection, shape,
 * dtype and presence checks, and conversion, each failure checked by its message.
 * Checkpoints are written into a temporary directory by the test itself. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "core/dtype.h"
#include "formats/checkpoint.h"
#include "formats/safetensors_write.h"
#include "formats/weights.h"

static int passed, failed;

/* A two-tensor table: one name differs between the layouts, one does not. */
static const sky_weight_desc table[] = {
    { "blocks.0.self_attn.q.weight", "blocks.0.attn1.to_q.weight", 2, { 2, 3 } },
    { "patch_embedding.bias", "patch_embedding.bias", 1, { 2 } },
};

static char dir[256];

/* Write a checkpoint file named `file` with tensors (name, dtype, ndim, shape, data). */
static void write_file(const char *file, const sky_st_entry *e, int n, char *path, size_t size)
{
    snprintf(path, size, "%s/%s", dir, file);
    sky_err err;
    if (sky_safetensors_write(path, e, n, NULL, &err) != SKY_OK) {
        fprintf(stderr, "cannot write %s: %s\n", path, err.msg);
        exit(2);
    }
}

/* Bind `path` and return the status; the message goes to err. */
static sky_status bind(const char *path, sky_weights *w, sky_err *err)
{
    sky_checkpoint *ck;
    if (sky_checkpoint_open(&ck, path, err) != SKY_OK) return SKY_ERR;
    sky_status st = sky_weights_bind_f32(w, ck, table, 2, NULL, "tiny_test", err);
    sky_checkpoint_close(ck);
    return st;
}

/* Expect binding `path` to fail with a message containing `want`. */
static void expect_fail(const char *name, const char *path, const char *want)
{
    sky_weights w;
    sky_err err;
    if (bind(path, &w, &err) == SKY_OK) {
        printf("FAIL %s: bound, expected an error containing '%s'\n", name, want);
        failed++;
        sky_weights_free(&w);
        return;
    }
    if (!strstr(err.msg, want)) {
        printf("FAIL %s: message '%s' lacks '%s'\n", name, err.msg, want);
        failed++;
        return;
    }
    printf("ok   %s: %s\n", name, err.msg);
    passed++;
}

int main(void)
{
    snprintf(dir, sizeof dir, "%s/skyw.XXXXXX", getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 2; }
    float q[6] = { 1, 2, 3, 4, 5, 6 }, b[2] = { -1, 0.5f };
    uint16_t qb[6];
    for (int i = 0; i < 6; i++) qb[i] = sky_f32_to_bf16(q[i]);
    char path[512];

    /* Original names, BF16 matrix: binds, converts exactly, reports the layout. */
    sky_st_entry orig[] = { { "blocks.0.self_attn.q.weight", SKY_DTYPE_BF16, 2, { 2, 3 }, qb },
                            { "patch_embedding.bias", SKY_DTYPE_F32, 1, { 2 }, b },
                            { "extra.unused", SKY_DTYPE_F32, 1, { 2 }, b } };
    write_file("orig.safetensors", orig, 3, path, sizeof path);
    sky_weights w;
    sky_err err;
    if (bind(path, &w, &err) == SKY_OK && w.layout == SKY_LAYOUT_ORIGINAL && w.data[0][5] == 6.0f &&
        w.data[1][0] == -1.0f && w.unused == 1 && strcmp(w.first_unused, "extra.unused") == 0) {
        printf("ok   original layout, bf16 -> f32, one unused tensor reported\n");
        passed++;
    } else {
        printf("FAIL original layout: %s\n", err.msg);
        failed++;
    }
    sky_weights_free(&w);

    /* Diffusers names, F32. */
    sky_st_entry diff[] = { { "blocks.0.attn1.to_q.weight", SKY_DTYPE_F32, 2, { 2, 3 }, q },
                            { "patch_embedding.bias", SKY_DTYPE_F32, 1, { 2 }, b } };
    write_file("diff.safetensors", diff, 2, path, sizeof path);
    if (bind(path, &w, &err) == SKY_OK && w.layout == SKY_LAYOUT_DIFFUSERS && w.data[0][2] == 3.0f) {
        printf("ok   diffusers layout\n");
        passed++;
    } else {
        printf("FAIL diffusers layout: %s\n", err.msg);
        failed++;
    }
    sky_weights_free(&w);

    /* Lazily (the CUDA backend's way): the same checks, and each tensor read on demand equals the eager
     * conversion bit for bit, in both layouts; the state's reader works until it is released. */
    const char *lazy_files[] = { "orig.safetensors", "diff.safetensors" };
    for (int f = 0; f < 2; f++) {
        snprintf(path, sizeof path, "%s/%s", dir, lazy_files[f]);
        sky_weights eager;
        sky_cpu_state s;
        int same = 0;
        if (bind(path, &eager, &err) == SKY_OK &&
            sky_cpu_state_open_lazy(&s, table, 2, path, NULL, "tiny_test", &err) == SKY_OK) {
            sky_weight_reader r = sky_cpu_state_reader(&s);
            float got0[6] = { 0 }, got1[2] = { 0 };
            same = s.w.data == NULL && s.w.layout == eager.layout && s.w.unused == eager.unused &&
                   r.read(r.ctx, 0, got0, &err) == SKY_OK && r.read(r.ctx, 1, got1, &err) == SKY_OK &&
                   memcmp(got0, eager.data[0], sizeof got0) == 0 && memcmp(got1, eager.data[1], sizeof got1) == 0;
            sky_cpu_state_release(&s);
            same = same && s.ck == NULL && s.w.n == 2;
            sky_cpu_state_free(&s);
            sky_weights_free(&eager);
        }
        if (same) {
            printf("ok   lazy binding (%s): nothing converted up front, each tensor read on demand equals the "
                   "eager conversion\n", lazy_files[f]);
            passed++;
        } else {
            printf("FAIL lazy binding (%s): %s\n", lazy_files[f], err.msg);
            failed++;
        }
    }

    /* NaN or Inf in a weight (issue 15 item 6): refused as the tensor is converted, naming it and the element;
     * bf16 too (0x7FC0 is a bf16 NaN), and lazily on the read of that tensor. */
    {
        float qn[6] = { 1, 2, 3, 4, 5, 6 }, bn[2] = { -1, 0.5f };
        qn[4] = NAN;
        sky_st_entry nan_q[] = { { "blocks.0.self_attn.q.weight", SKY_DTYPE_F32, 2, { 2, 3 }, qn },
                                 { "patch_embedding.bias", SKY_DTYPE_F32, 1, { 2 }, b } };
        write_file("nan.safetensors", nan_q, 2, path, sizeof path);
        expect_fail("NaN in a weight", path, "tensor 'blocks.0.self_attn.q.weight' holds NaN at element 4; the "
                                             "checkpoint is corrupt");
        bn[1] = -INFINITY;
        sky_st_entry inf_b[] = { { "blocks.0.self_attn.q.weight", SKY_DTYPE_BF16, 2, { 2, 3 }, qb },
                                 { "patch_embedding.bias", SKY_DTYPE_F32, 1, { 2 }, bn } };
        write_file("inf.safetensors", inf_b, 2, path, sizeof path);
        expect_fail("Inf in a weight", path, "tensor 'patch_embedding.bias' holds Inf at element 1");
        uint16_t qbn[6];
        memcpy(qbn, qb, sizeof qbn);
        qbn[0] = 0x7FC0;
        sky_st_entry nan_bf[] = { { "blocks.0.self_attn.q.weight", SKY_DTYPE_BF16, 2, { 2, 3 }, qbn },
                                  { "patch_embedding.bias", SKY_DTYPE_F32, 1, { 2 }, b } };
        write_file("nanbf.safetensors", nan_bf, 2, path, sizeof path);
        sky_cpu_state s;
        float got[6];
        int ok = sky_cpu_state_open_lazy(&s, table, 2, path, NULL, "tiny_test", &err) == SKY_OK;
        if (ok) {
            sky_weight_reader r = sky_cpu_state_reader(&s);
            ok = r.read(r.ctx, 0, got, &err) == SKY_ERR && strstr(err.msg, "nanbf.safetensors: tensor "
                 "'blocks.0.self_attn.q.weight' holds NaN at element 0") != NULL;
            sky_cpu_state_free(&s);
        }
        printf("%s lazy read of a bf16 NaN refused: %s\n", ok ? "ok  " : "FAIL", err.msg);
        ok ? passed++ : failed++;
    }

    sky_st_entry shape[] = { { "blocks.0.self_attn.q.weight", SKY_DTYPE_F32, 2, { 3, 2 }, q },
                             { "patch_embedding.bias", SKY_DTYPE_F32, 1, { 2 }, b } };
    write_file("shape.safetensors", shape, 2, path, sizeof path);
    expect_fail("wrong shape", path, "tensor 'blocks.0.self_attn.q.weight' has shape [3, 2] but this binary was "
                                     "generated for [2, 3] (tiny_test)");
    {   /* and lazily: refused before anything is read, nothing left open */
        sky_cpu_state s;
        if (sky_cpu_state_open_lazy(&s, table, 2, path, NULL, "tiny_test", &err) == SKY_OK) {
            printf("FAIL wrong shape, lazily: bound\n");
            failed++;
            sky_cpu_state_free(&s);
        } else if (!strstr(err.msg, "has shape [3, 2] but this binary was generated for [2, 3]") || s.ck) {
            printf("FAIL wrong shape, lazily: '%s'\n", err.msg);
            failed++;
        } else {
            printf("ok   wrong shape, lazily: %s\n", err.msg);
            passed++;
        }
    }

    int64_t qi[6] = { 0 };
    sky_st_entry dtype[] = { { "blocks.0.self_attn.q.weight", SKY_DTYPE_I64, 2, { 2, 3 }, qi },
                             { "patch_embedding.bias", SKY_DTYPE_F32, 1, { 2 }, b } };
    write_file("dtype.safetensors", dtype, 2, path, sizeof path);
    expect_fail("wrong dtype", path, "has dtype I64; weights must be F32, BF16, F16, F64, F8_E4M3 or F8_E5M2");

    sky_st_entry missing[] = { { "blocks.0.self_attn.q.weight", SKY_DTYPE_F32, 2, { 2, 3 }, q } };
    write_file("missing.safetensors", missing, 1, path, sizeof path);
    expect_fail("missing tensor", path, "1 of 2 tensors of the original layout are missing, first 'patch_embedding.bias'");

    sky_st_entry mixed[] = { { "blocks.0.self_attn.q.weight", SKY_DTYPE_F32, 2, { 2, 3 }, q },
                             { "blocks.0.attn1.to_q.weight", SKY_DTYPE_F32, 2, { 2, 3 }, q },
                             { "patch_embedding.bias", SKY_DTYPE_F32, 1, { 2 }, b } };
    write_file("mixed.safetensors", mixed, 3, path, sizeof path);
    expect_fail("mixed layouts", path, "mixes the original layout");

    sky_st_entry other[] = { { "something.else", SKY_DTYPE_F32, 1, { 2 }, b } };
    write_file("other.safetensors", other, 1, path, sizeof path);
    expect_fail("not this model", path, "no tensor of this model found");

    /* Clean up the files we wrote. */
    const char *files[] = { "orig", "diff", "shape", "dtype", "missing", "mixed", "other" };
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        snprintf(path, sizeof path, "%s/%s.safetensors", dir, files[i]);
        unlink(path);
    }
    rmdir(dir);
    printf("%d passed, %d failed\n", passed, failed);
    return failed ? 1 : 0;
}
