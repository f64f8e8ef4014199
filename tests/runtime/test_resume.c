/* tests/runtime/test_resume.c — the window files of --resume_dir (runtime/pipeline/resume.h): a round trip of
 * latents and noise state, which files count (only those from window 0 on, in order, with this run's key),
 * the refusals (another run's key, naming the first argument that differs; a wrong shape), and the seed a
 * rerun reads. The pipeline's resumed videos against uninterrupted ones: tests/runtime/test_cli.sh. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "pipeline/resume.h"

static char dir[64];
static const char *key = "{\"prompt\": \"a fox\", \"seed\": 7, \"guidance_scale\": 6}; backend cpu; image none";

static void rm_window(int k)
{
    char path[128];
    snprintf(path, sizeof path, "%s/window_%04d.safetensors", dir, k);
    unlink(path);
}

static int test_round_trip(void)
{
    const int64_t shape[4] = { 2, 3, 2, 2 };
    float z[24], back[24];
    for (int i = 0; i < 24; i++) z[i] = (float)i * 0.25f - 3.0f;
    sky_err err;
    CHECK(sky_resume_save(dir, 0, key, 7, shape, z, 0xfedcba9876543210ull, 5, &err) == SKY_OK, "%s", err.msg);
    uint64_t state = 0;
    int next = -1;
    CHECK(sky_resume_load(dir, 0, key, shape, back, &state, &next, &err) == SKY_OK, "%s", err.msg);
    CHECK(memcmp(z, back, sizeof z) == 0, "latents differ");
    CHECK(state == 0xfedcba9876543210ull && next == 5, "state %llx, next %d", (unsigned long long)state, next);
    uint64_t seed = 0;
    CHECK(sky_resume_seed(dir, &seed) == 1 && seed == 7, "seed %llu", (unsigned long long)seed);
    rm_window(0);
    return 0;
}

/* Windows 0 and 1 kept, 3 too (2 lost): 2 count; without window 0, none does. */
static int test_count(void)
{
    const int64_t shape[4] = { 1, 1, 1, 2 };
    const float z[2] = { 1, 2 };
    sky_err err;
    int n = -1;
    for (int k = 0; k < 4; k++)
        if (k != 2) CHECK(sky_resume_save(dir, k, key, 7, shape, z, 1, 0, &err) == SKY_OK, "%s", err.msg);
    CHECK(sky_resume_count(dir, key, 5, &n, &err) == SKY_OK && n == 2, "count %d (%s)", n, err.msg);
    CHECK(sky_resume_count(dir, key, 1, &n, &err) == SKY_OK && n == 1, "count of 1 window: %d", n);
    rm_window(0);
    CHECK(sky_resume_count(dir, key, 5, &n, &err) == SKY_OK && n == 0, "count without window 0: %d", n);
    uint64_t seed;
    CHECK(sky_resume_seed(dir, &seed) == 0, "a seed without window 0");
    for (int k = 0; k < 4; k++) rm_window(k);
    return 0;
}

static int test_refusals(void)
{
    const int64_t shape[4] = { 1, 1, 1, 2 }, other[4] = { 1, 2, 1, 1 };
    const float z[2] = { 1, 2 };
    float back[2];
    uint64_t state;
    int next, n;
    sky_err err;
    CHECK(sky_resume_save(dir, 0, key, 7, shape, z, 1, 0, &err) == SKY_OK, "%s", err.msg);
    const char *mine = "{\"prompt\": \"a fox\", \"seed\": 7, \"guidance_scale\": 5}; backend cpu; image none";
    CHECK(sky_resume_count(dir, mine, 3, &n, &err) == SKY_ERR &&
          strstr(err.msg, "was written by another run: \"guidance_scale\": 6} (this run: \"guidance_scale\": 5})"),
          "%s", err.msg);
    const char *cuda = "{\"prompt\": \"a fox\", \"seed\": 7, \"guidance_scale\": 6}; backend cuda; image none";
    CHECK(sky_resume_load(dir, 0, cuda, shape, back, &state, &next, &err) == SKY_ERR &&
          strstr(err.msg, "backend cpu (this run: backend cuda)"), "%s", err.msg);
    CHECK(sky_resume_load(dir, 0, key, other, back, &state, &next, &err) == SKY_ERR &&
          strstr(err.msg, "'latents' is not F32 [1, 2, 1, 1], window 0's shape"), "%s", err.msg);
    rm_window(0);
    return 0;
}

int main(void)
{
    snprintf(dir, sizeof dir, "/tmp/sky_test_resume_XXXXXX");
    if (!mkdtemp(dir)) { perror("mkdtemp"); return 1; }
    RUN(test_round_trip);
    RUN(test_count);
    RUN(test_refusals);
    rmdir(dir);
    return CHECK_SUMMARY();
}
