/* runtime/cli/main.c — the command line of a per-variant binary, skyreels-<variant>.
 *
 *   skyreels-<variant> program dit_forward --weights PATH --inputs FILE --output FILE [--backend cpu|cuda]
 *                      [--lora FILE[:SCALE] ...]
 *   skyreels-<variant> lora-merge --weights PATH --lora FILE[:SCALE] ... --output FILE [--layout original|diffusers]
 *   skyreels-<variant> random-weights --output FILE [--layout original|diffusers] [--bf16] [--seed N]
 *   skyreels-<variant> random-inputs --output FILE [--batch B] [--frames F] [--per-frame] [--prompts P] [--seed N]
 *   skyreels-<variant> selftest [--device N] [--cached]     the CUDA kernels against the CPU (selftest.c)
 *   skyreels-<variant> info | --info | --help | --version
 *   skyreels-<variant> [generation flags]      the original CLI's flags (generate.c)
 *
 * Only this file prints and chooses exit codes: 0 success, 1 runtime failure (files, weights,
 * memory), 2 usage error (flags), as the original argparse-based CLI does for usage.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/bench.h"
#include "cli/cli.h"
#include "cli/ranks.h"
#include "cli/counts.h"
#include "models/dit.h"
#include "models/random_weights.h"
#include "models/encoders.h"
#include "models/vae.h"
#include "models/program.h"
#include "models/cuda_abi.h"
#include "models/cuda_plugin.h"
#include "dist/usp_cuda.h"
#include "models/device_plan.h"
#include "models/prompt_cache.h"
#include "core/status.h"
#include "models/trace.h"

enum { EXIT_USAGE = 2 };

static void print_usage(FILE *out, const char *argv0)
{
    const sky_dit_program *p = sky_variant.dit;
    const int              st = sky_variant.vae_stride_t, ss = sky_variant.vae_stride_s;
    fprintf(
        out,
        "usage: %s program|lora-merge|random-weights|random-inputs|info [options]\n"
        "\n"
        "SkyReels-V2 %s (%s), generated from %s.\n"
        "\n"
        "commands:\n"
        "  program dit_forward   run one DiT forward pass on a file of inputs (debugging, tests)\n"
        "      --weights PATH    transformer checkpoint: .safetensors file, sharded index.json, or a directory\n"
        "                        (original SkyReels/Wan names or diffusers names; F32/BF16/F16)\n"
        "      --inputs FILE     .safetensors with x [B,%d,F,H,W], t [B] or [B,F], context [B,%d,%d]%s%s\n"
        "                        (F = 1..%d latent frames, H x W = %dx%d or %dx%d)\n"
        "      --output FILE     .safetensors to write: v [B,%d,F,H,W] F32\n"
        "      --backend cpu     the CPU reference backend\n"
        "      --backend cuda    on the GPU (every program) through libskyreels-<variant>-cuda.so\n"
        "                        (default: cuda where a GPU is present and the plugin loads, else cpu;\n"
        "                        $SKY_BACKEND = cpu or cuda overrides)\n"
        "                        beside the binary (built when CMake finds the CUDA toolkit; checked on a CPU "
        "emulator,\n"
        "                        NOT YET VERIFIED ON A GPU)\n"
        "      --trace FILE      also write every op's output of the first sample (fp32, named as the graph\n"
        "                        names it; any program, either backend) to FILE, for op-by-op comparisons\n"
        "      --teacache THRESH with --teacache_steps N [--use_ret_steps]: the B samples are one sequence of\n"
        "                        calls (sample b = call b: even cond, odd uncond) under TeaCache; the output also\n"
        "                        holds teacache_computed [B] I64 (1: the blocks ran, 0: skipped)\n"
        "      --lora FILE[:SCALE]  merge a LoRA into the weights as they load (repeatable; generation --help)\n"
        "      --lora_unknown_keys warn  skip LoRA keys that match no weight (default: refuse them)\n"
        "      --weight_dtype fp8  the block linear weights quantised to fp8 e4m3 per output channel at load\n"
        "      --offload_blocks N  cuda: the blocks' weights in pinned host memory, N on the GPU at a time\n"
        "                        (generation --help; cpu: accepted, nothing changes)\n"
        "      --use_usp         dit_forward only: Ulysses sequence parallelism over the ranks of\n"
        "                        `mpirun -np N` (CPU backend; N dividing the heads); rank 0 writes\n"
        "      -q, --quiet       no progress lines\n"
        "  program vae_decode    decode latents: --inputs holds z [1,%d,L,h,w] (normalised) -> video "
        "[1,3,1+%d(L-1),%dh,%dw]\n"
        "                        --vae_tiling TILE:STRIDE decodes in tiles as diffusers' tiled_decode (pixels)\n"
        "  program vae_encode    encode video: --inputs holds video [1,3,T,H,W] in [-1,1] -> z "
        "[1,%d,1+(T-1)/%d,H/%d,W/%d]\n"
        "                        --vae_tiling TILE:STRIDE encodes in tiles as diffusers' tiled_encode (pixels)\n"
        "                        (same --weights/--inputs/--output; the VAE checkpoint, original or diffusers names)\n"
        "  program text_encode   umT5: --inputs holds ids [S] and mask [S] -> context [text_len, text_dim]\n"
        "  program clip_encode   CLIP: --inputs holds pixels [3, S, S] (preprocessed) -> clip_fea [image_len, "
        "image_dim]\n"
        "  lora-merge            write the transformer checkpoint with LoRAs merged, F32 (the whole model in memory)\n"
        "      --weights PATH  --lora FILE[:SCALE] ...  --output FILE  [--layout original|diffusers (default "
        "original)]\n"
        "      [--lora_unknown_keys warn]  [--weight_dtype fp8: the block linear weights as F8_E4M3 with per-row\n"
        "      scales (.weight_scale), as --weight_dtype fp8 quantises them; --lora then optional]\n"
        "  random-weights        write random weights for this variant (the model then makes noise)\n"
        "      --output FILE  [--program dit_forward|vae|t5|clip]  [--layout original|diffusers (default original)]\n"
        "      [--bf16]  [--seed N (default 0)]\n"
        "  random-embeds         write random prompt embeddings for --prompt_embeds (not a real prompt)\n"
        "      --output FILE  [--seed N]\n"
        "  random-inputs         write random dit_forward inputs\n"
        "      --output FILE  [--batch B (default 1)]  [--frames F (default %d)]  [--per-frame]  [--seed N]\n"
        "      [--prompts P (default B): sample b gets the context (and image) of sample b %% P]\n"
        "  info, --info          sizes, the memory plan's peak, the weights table size\n"
        "  -h, --help            this text\n"
        "  --version             variant, spec and generator hashes\n"
        "\n"
        "exit codes: 0 success, 1 failure (files, weights, memory), 2 usage error\n",
        argv0, sky_variant.name, sky_family_name(sky_variant.family), sky_variant.spec_path, p->x_channels, p->text_len,
        p->text_dim, p->y_channels ? ", y, clip_fea" : "", p->inject_sample_info ? ", fps [B] (0 or 1)" : "",
        p->max_frames, p->lat_h, p->lat_w, p->lat_w, p->lat_h, p->out_dim, p->out_dim, st, ss, ss, p->out_dim, st, ss,
        ss, p->max_frames);
}

static int usage_error(const char *argv0, const char *fmt, const char *arg)
{
    fprintf(stderr, "%s: error: ", argv0);
    fprintf(stderr, fmt, arg);
    fprintf(stderr, "\n(run %s --help for usage)\n", argv0);
    return EXIT_USAGE;
}

/* Parse a non-negative decimal integer flag value; 0 on failure. */
static int parse_u64(const char *s, uint64_t *out)
{
    if (!s || !*s || *s == '-') return 0;
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || *end) return 0;
    *out = v;
    return 1;
}

/* A program's arena peaks: the CPU plan's, and the CUDA plan's (cuda 0: no cuda target) with the cuBLASLt
 * workspace it holds; with the prompt arenas where the program keeps some (dit_forward). */
static void print_arenas(size_t cpu, size_t cpu_prompt, size_t cuda, size_t cuda_prompt)
{
    printf("            cpu arena peak %zu bytes (%.2f MiB)", cpu, (double)cpu / 1048576.0);
    if (cpu_prompt) printf(" + %d prompt arenas of %.2f MiB", SKY_PROMPT_SLOTS, (double)cpu_prompt / 1048576.0);
    printf("\n");
    if (!cuda) return;
    printf("            cuda arena peak %zu bytes (%.2f MiB)", cuda, (double)cuda / 1048576.0);
    if (cuda_prompt) printf(" + %d prompt arenas of %.2f MiB", SKY_PROMPT_SLOTS, (double)cuda_prompt / 1048576.0);
    printf(" + %zu MiB cuBLASLt workspace\n", (size_t)(SKY_GEMM_WORKSPACE_BYTES >> 20));
}

/* The same peaks with --offload_blocks 2 (two block slots: one computing, the next being copied; docs/offload.md),
 * with TeaCache where the variant has it, and the pinned host memory the blocks take. */
static void print_offload_blocks(const sky_device_config *all)
{
    const sky_dit_program *p = sky_variant.dit;
    const int              n = 2;
    char                   b[32], h[32];
    if (p->cuda_blocks <= n) return;
    printf("            one block's weights %s (%zu bytes) of %d; --offload_blocks %d keeps %d on the GPU, all of "
           "them in pinned host memory:\n",
           sky_device_bytes_fmt(b, sizeof b, p->cuda_block_bytes), p->cuda_block_bytes, p->cuda_blocks, n, n);
    for (int tiled = 0; tiled < 2 && (tiled == 0 || sky_variant.vae_decode_tile); tiled++)
        for (int offload = 0; offload < 2; offload++) {
            sky_device_config c = *all;
            sky_device_plan   plan;
            char              flags[64];
            c.offload = offload, c.offload_blocks = n, c.vae_tiled = tiled;
            sky_device_plan_make(&sky_variant, &c, &plan);
            snprintf(flags, sizeof flags, "%s%s--offload_blocks %d%s", offload ? "--offload " : "",
                     c.teacache ? "--teacache " : "", n, tiled ? " --vae_tiling" : "");
            printf("            peak %-45s %10s (%zu bytes): %s; %s (%zu bytes) pinned host\n", flags,
                   sky_device_bytes_fmt(b, sizeof b, plan.peak), plan.peak, plan.at_peak,
                   sky_device_bytes_fmt(h, sizeof h, plan.host_pinned), plan.host_pinned);
        }
}

/* The same peaks with --weight_dtype fp8 (the blocks' linear weights as fp8 on the GPU, expanded to bf16 into 2 block
 * slots, or N with --offload_blocks N; docs/offload.md), TeaCache off, and the linear weights' bytes both ways. */
static void print_fp8(const sky_device_config *all)
{
    const sky_dit_program *p = sky_variant.dit;
    char                   b[32], f[32], s[32];
    if (p->cuda_blocks < 1 || !p->cuda_fp8_bf16_bytes) return;
    printf("            the blocks' linear weights %s (%zu bytes) at bf16; --weight_dtype fp8 keeps them as e4m3 codes "
           "and fp32 row scales, %s (%zu bytes), and expands them into bf16 block slots of %s (%zu bytes):\n",
           sky_device_bytes_fmt(b, sizeof b, p->cuda_fp8_bf16_bytes), p->cuda_fp8_bf16_bytes,
           sky_device_bytes_fmt(f, sizeof f, p->cuda_fp8_bytes), p->cuda_fp8_bytes,
           sky_device_bytes_fmt(s, sizeof s, p->cuda_fp8_block_bytes), p->cuda_fp8_block_bytes);
    static const struct {
        int offload, tiled, blocks;
    } rows[] = {{0, 0, 0}, {1, 0, 0}, {0, 1, 0}, {1, 1, 0}, {0, 1, 2}, {1, 1, 1}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (rows[i].tiled && !sky_variant.vae_decode_tile) continue;
        if (rows[i].blocks >= p->cuda_blocks) continue;
        sky_device_config c = *all;
        sky_device_plan   plan;
        char              flags[80];
        c.weight_fp8 = 1, c.teacache = 0;
        c.offload = rows[i].offload, c.vae_tiled = rows[i].tiled, c.offload_blocks = rows[i].blocks;
        sky_device_plan_make(&sky_variant, &c, &plan);
        snprintf(flags, sizeof flags, "--weight_dtype fp8%s%s%s", c.offload ? " --offload" : "",
                 c.offload_blocks == 1 ? " --offload_blocks 1" : c.offload_blocks == 2 ? " --offload_blocks 2" : "",
                 c.vae_tiled ? " --vae_tiling" : "");
        printf("            peak %-45s %10s (%zu bytes): %s\n", flags, sky_device_bytes_fmt(b, sizeof b, plan.peak),
               plan.peak, plan.at_peak);
    }
}

/* --use_usp (runtime/cuda/dit_cuda.c use_comm): each rank's transformer on its own GPU, opened as dit_forward and then
 * moved onto dit_forward_usp (dit_forward's arena freed first, the weights kept), and one rank's peaks, with TeaCache
 * where the variant has it. */
static void print_usp(const sky_device_config *all)
{
    if (!sky_variant.dit->usp) return;
    sky_device_config c = *all;
    sky_device_plan   plan;
    char              b[32], u[32];
    c.usp = 1;
    sky_device_plan_make(&sky_variant, &c, &plan);
    printf("            --use_usp, each rank on its own GPU: the transformer opens as dit_forward, %s (%zu bytes), "
           "then runs as dit_forward_usp, %s (%zu bytes)\n",
           sky_device_bytes_fmt(b, sizeof b, plan.bytes[SKY_DEVICE_DIT_OPEN]), plan.bytes[SKY_DEVICE_DIT_OPEN],
           sky_device_bytes_fmt(u, sizeof u, plan.bytes[SKY_DEVICE_DIT]), plan.bytes[SKY_DEVICE_DIT]);
    for (int offload = 0; offload < 2; offload++) {
        char flags[64];
        c.offload = offload;
        sky_device_plan_make(&sky_variant, &c, &plan);
        snprintf(flags, sizeof flags, "--use_usp%s%s", offload ? " --offload" : "", c.teacache ? " --teacache" : "");
        printf("            peak %-34s %10s (%zu bytes): %s\n", flags, sky_device_bytes_fmt(b, sizeof b, plan.peak),
               plan.peak, plan.at_peak);
    }
}

/* The CUDA plugin's device memory (models/device_plan.h): each program's bytes, and the peak of a full run of
 * the variant's family (both encoders where it has an image branch, the VAE decoder, the encoder for I2V and
 * DF's long videos) with every model kept, and with --offload; each with and without TeaCache. */
static void print_device_plan(void)
{
    if (!sky_variant.has_cuda) return;
    const sky_device_config all = {.text = 1,
                                   .clip = sky_variant.dit->y_channels > 0,
                                   .vae_decode = 1,
                                   .vae_encode = sky_variant.family != SKY_FAMILY_T2V,
                                   .teacache = sky_variant.dit->has_teacache};
    sky_device_plan         plan;
    char                    b[32];
    sky_device_plan_make(&sky_variant, &all, &plan);
    printf("device      what the CUDA plugin allocates on GPU 0 (models/device_plan.h):\n");
    for (int i = 0; i < SKY_DEVICE_PARTS; i++)
        if (plan.bytes[i])
            printf("            %-28s %10s (%zu bytes)\n", sky_device_part_name(i),
                   sky_device_bytes_fmt(b, sizeof b, plan.bytes[i]), plan.bytes[i]);
    if (sky_variant.vae_decode_tile) {
        sky_device_config c = all;
        c.vae_tiled = 1;
        sky_device_plan_make(&sky_variant, &c, &plan);
        printf("            %-28s %10s (%zu bytes)\n", "the VAE decoder, tiled",
               sky_device_bytes_fmt(b, sizeof b, plan.bytes[SKY_DEVICE_VAE_DECODE]), plan.bytes[SKY_DEVICE_VAE_DECODE]);
        if (sky_variant.vae_encode_tile && plan.bytes[SKY_DEVICE_VAE_ENCODE])
            printf("            %-28s %10s (%zu bytes)\n", "the VAE encoder, tiled",
                   sky_device_bytes_fmt(b, sizeof b, plan.bytes[SKY_DEVICE_VAE_ENCODE]),
                   plan.bytes[SKY_DEVICE_VAE_ENCODE]);
    }
    for (int tiled = 0; tiled < 2 && (tiled == 0 || sky_variant.vae_decode_tile); tiled++)
        for (int offload = 0; offload < 2; offload++)
            for (int tc = 0; tc < 2 && (tc == 0 || sky_variant.dit->has_teacache); tc++) {
                sky_device_config c = all;
                char              flags[64];
                c.offload = offload, c.teacache = tc, c.vae_tiled = tiled;
                sky_device_plan_make(&sky_variant, &c, &plan);
                snprintf(flags, sizeof flags, "%s%s%s", offload ? " --offload" : "", tc ? " --teacache" : "",
                         tiled ? " --vae_tiling" : "");
                printf("            peak %-34s %10s (%zu bytes): %s\n", flags[0] ? flags + 1 : "(every model kept)",
                       sky_device_bytes_fmt(b, sizeof b, plan.peak), plan.peak, plan.at_peak);
            }
    print_usp(&all);
    print_offload_blocks(&all);
    print_fp8(&all);
}

static void print_info(void)
{
    const sky_dit_program *p = sky_variant.dit;
    printf("variant     %s (%s)\n", sky_variant.name, sky_family_name(sky_variant.family));
    printf("spec        %s  xxh64 %s\n", sky_variant.spec_path, sky_variant.spec_xxh64);
    printf("generator   xxh64 %s\n", sky_variant.generator_xxh64);
    printf("video       %dx%d, %d frames per window; sampler %d steps, shift %g, guidance %g\n", sky_variant.height,
           sky_variant.width, sky_variant.base_num_frames, sky_variant.steps, sky_variant.shift, sky_variant.guidance);
    printf("dit_forward C %d, ffn %d, %d heads, %d blocks; window %d latent frames of %dx%d; %d weight tensors\n",
           p->dim, p->ffn_dim, p->num_heads, p->num_layers, p->max_frames, p->lat_h, p->lat_w, p->n_weights);
    printf("            %.3f TFLOP per forward at the full window (GEMMs + attention), and %.3f once per prompt;\n"
           "            a CFG step is two forwards\n",
           p->flops / 1e12, p->prompt_flops / 1e12);
    print_arenas(p->arena_bytes, p->prompt_bytes, p->cuda_arena_bytes, p->cuda_prompt_bytes);
    const sky_vae_program *vps[] = {sky_variant.vae_decode, sky_variant.vae_encode};
    const char            *vnames[] = {"vae_decode", "vae_encode"};
    for (int i = 0; i < 2; i++)
        if (vps[i]) {
            printf("%-11s %d weight tensors, one chunk per call\n", vnames[i], vps[i]->n_weights);
            print_arenas(vps[i]->arena_bytes, 0, vps[i]->cuda_arena_bytes, 0);
        }
    const sky_vae_program *tile = sky_variant.vae_decode_tile;
    if (tile) {
        printf("vae_decode_tile  the tiled decode's (--vae_tiling): tiles of up to %dx%d latents (%d px), one chunk "
               "per call\n",
               tile->tile, tile->tile, tile->tile * tile->stride_s);
        print_arenas(tile->arena_bytes, 0, tile->cuda_arena_bytes, 0);
    }
    const sky_vae_program *etile = sky_variant.vae_encode_tile;
    if (etile) {
        printf("vae_encode_tile  the tiled encode's (--vae_tiling): tiles of up to %dx%d px (%dx%d latents), one "
               "chunk per call\n",
               etile->tile * etile->stride_s, etile->tile * etile->stride_s, etile->tile, etile->tile);
        print_arenas(etile->arena_bytes, 0, etile->cuda_arena_bytes, 0);
    }
    const sky_encoder_program *eps[] = {sky_variant.text_encode, sky_variant.clip_encode};
    const char                *enames[] = {"text_encode", "clip_encode"};
    for (int i = 0; i < 2; i++)
        if (eps[i]) {
            printf("%-11s %d weight tensors, output [%d, %d]\n", enames[i], eps[i]->n_weights, eps[i]->rows,
                   eps[i]->dim);
            print_arenas(eps[i]->arena_bytes, 0, eps[i]->cuda_arena_bytes, 0);
        }
    print_device_plan();
    sky_cli_print_counts(sky_variant.counts, sky_variant.guidance);
}

/* `program <name>`'s options. */
typedef struct program_opts {
    sky_dit_run_opts o;
    const char      *trace_path;
    int              backend_given;
    int              is_dit, is_dec, is_enc, is_text, is_clip;
    int              use_usp;   /* --use_usp (dit_forward under mpirun: cli/ranks.h) */
    sky_lora_spec    loras[16]; /* --lora, pointed to by o.loras */
    int              tiled;     /* vae_decode, vae_encode --vae_tiling MIN:STRIDE */
    sky_vae_tiling   tiling;
} program_opts;

/* Which program: -1 to go on, else the exit code of the usage error printed. */
static int which_program(int argc, char **argv, program_opts *q)
{
    if (argc < 3) return usage_error(argv[0], "program: which program? (%s)", "dit_forward, vae_decode, vae_encode");
    q->is_dit = strcmp(argv[2], "dit_forward") == 0;
    q->is_dec = strcmp(argv[2], "vae_decode") == 0, q->is_enc = strcmp(argv[2], "vae_encode") == 0;
    q->is_text = strcmp(argv[2], "text_encode") == 0, q->is_clip = strcmp(argv[2], "clip_encode") == 0;
    if (!q->is_dit && !q->is_dec && !q->is_enc && !q->is_text && !q->is_clip)
        return usage_error(argv[0],
                           "program %s: unknown program (dit_forward, vae_decode, vae_encode, text_encode, "
                           "clip_encode)",
                           argv[2]);
    if ((q->is_dec || q->is_enc) && !sky_variant.vae_decode)
        return usage_error(argv[0], "program %s: this variant's spec has no vae section", argv[2]);
    return -1;
}

/* The options after the program's name: -1 to go on, else the exit code of the usage error printed. */
static int parse_program_options(int argc, char **argv, program_opts *q)
{
    sky_dit_run_opts *o = &q->o;
    const int         is_dit = q->is_dit;
    for (int i = 3; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--weights") == 0 && val) {
            o->weights = val;
            i++;
        } else if (strcmp(a, "--inputs") == 0 && val) {
            o->inputs = val;
            i++;
        } else if (strcmp(a, "--output") == 0 && val) {
            o->output = val;
            i++;
        } else if (strcmp(a, "--backend") == 0 && val) {
            sky_err e;
            q->backend_given = 1;
            if (sky_backend_parse(val, &o->backend, &e)) return usage_error(argv[0], "%s", e.msg);
            if (o->backend == SKY_BACKEND_CUDA && !sky_variant.has_cuda)
                return usage_error(argv[0],
                                   "--backend %s: this variant was generated for the cpu target only "
                                   "(its spec's targets)",
                                   val);
            i++;
        } else if (strcmp(a, "--trace") == 0 && val) {
            q->trace_path = val;
            i++;
        } else if ((q->is_dec || q->is_enc) && strcmp(a, "--vae_tiling") == 0 && val) {
            char sep = 0;
            if (sscanf(val, "%d%c%d", &q->tiling.min_px, &sep, &q->tiling.stride_px) != 3 || sep != ':' ||
                q->tiling.stride_px <= 0 || q->tiling.stride_px > q->tiling.min_px)
                return usage_error(argv[0], "--vae_tiling %s: want TILE:STRIDE in pixels, 0 < STRIDE <= TILE", val);
            q->tiled = 1;
            i++;
        } else if (is_dit && strcmp(a, "--teacache") == 0 && val) {
            char *end;
            o->teacache = strtod(val, &end);
            if (*end || !(o->teacache > 0)) return usage_error(argv[0], "--teacache %s: must be a threshold > 0", val);
            i++;
        } else if (is_dit && strcmp(a, "--teacache_steps") == 0 && val) {
            char      *end;
            const long v = strtol(val, &end, 10);
            if (*end || v < 1 || v > 100000)
                return usage_error(argv[0], "--teacache_steps %s: must be 1 to 100000", val);
            o->teacache_steps = (int)v;
            i++;
        } else if (is_dit && strcmp(a, "--offload_blocks") == 0 && val) {
            char      *end;
            const long v = strtol(val, &end, 10);
            if (*end || v < 0 || v > 100000)
                return usage_error(argv[0], "--offload_blocks %s: must be 0 (off) to 100000 blocks", val);
            o->offload_blocks = (int)v;
            i++;
        } else if (is_dit && strcmp(a, "--use_ret_steps") == 0)
            o->use_ret_steps = 1;
        else if (is_dit && strcmp(a, "--use_usp") == 0)
            q->use_usp = 1;
        else if (is_dit && strcmp(a, "--lora") == 0 && val) {
            sky_err e;
            if (o->n_loras == 16) return usage_error(argv[0], "--lora %s: at most 16 LoRAs", val);
            if (sky_lora_parse_arg(val, &q->loras[o->n_loras++], &e)) return usage_error(argv[0], "%s", e.msg);
            i++;
        } else if (is_dit && strcmp(a, "--weight_dtype") == 0 && val) {
            if (strcmp(val, "fp8") != 0 && strcmp(val, "checkpoint") != 0)
                return usage_error(argv[0], "--weight_dtype %s: must be checkpoint or fp8", val);
            o->weight_fp8 = strcmp(val, "fp8") == 0;
            i++;
        } else if (is_dit && strcmp(a, "--lora_unknown_keys") == 0 && val) {
            if (strcmp(val, "warn") != 0 && strcmp(val, "error") != 0)
                return usage_error(argv[0], "--lora_unknown_keys %s: must be error or warn", val);
            o->lora_skip_unknown = strcmp(val, "warn") == 0;
            i++;
        } else if (strcmp(a, "-q") == 0 || strcmp(a, "--quiet") == 0)
            o->quiet = 1;
        else if (!val && (strcmp(a, "--weights") == 0 || strcmp(a, "--inputs") == 0 || strcmp(a, "--output") == 0 ||
                          strcmp(a, "--backend") == 0 || strcmp(a, "--trace") == 0 || strcmp(a, "--teacache") == 0 ||
                          strcmp(a, "--teacache_steps") == 0 || strcmp(a, "--lora") == 0 ||
                          strcmp(a, "--lora_unknown_keys") == 0 || strcmp(a, "--weight_dtype") == 0 ||
                          strcmp(a, "--vae_tiling") == 0 || strcmp(a, "--offload_blocks") == 0))
            return usage_error(argv[0], "%s needs a value", a);
        else
            return usage_error(argv[0], "program: unknown option %s", a);
    }
    return -1;
}

/* The required options, the default backend, TeaCache's options together: -1 to go on, else the exit code. */
static int check_program_options(const char *argv0, program_opts *q)
{
    sky_dit_run_opts *o = &q->o;
    if (!o->weights) return usage_error(argv0, "program: %s is required", "--weights");
    if (!o->inputs) return usage_error(argv0, "program: %s is required", "--inputs");
    if (!o->output) return usage_error(argv0, "program: %s is required", "--output");
    if (q->use_usp && !q->backend_given) { /* --use_usp on the GPUs only when asked (--backend cuda) */
        o->backend = SKY_BACKEND_CPU;
        q->backend_given = 1;
    }
    if (!q->backend_given) {
        /* cuda where a GPU is present and the plugin loads, else cpu; $SKY_BACKEND overrides (backend.h) */
        char    note[1200];
        int     warn;
        sky_err e;
        if (sky_backend_default(sky_variant.name, sky_variant.has_cuda, &o->backend, note, sizeof note, &warn, &e))
            return usage_error(argv0, "%s", e.msg);
        if (note[0] && (!o->quiet || warn)) fprintf(stderr, "%s%s\n", warn ? "warning: " : "", note);
    }
    if ((o->teacache > 0) != (o->teacache_steps > 0) || (o->use_ret_steps && !(o->teacache > 0)))
        return usage_error(argv0, "program: %s go together (and --use_ret_steps needs them)",
                           "--teacache and --teacache_steps");
    return -1;
}

/* program dit_forward ... */
static int cmd_program(int argc, char **argv)
{
    program_opts q = {0};
    q.o.loras = q.loras;
    sky_usp *usp = NULL; /* --use_usp: the ranks (cli/ranks.h), started before anything else */
    int      rc = sky_cli_ranks_begin(&argc, &argv, &usp);
    if (rc >= 0) return rc;
    sky_cli_ranks_held held;
    sky_cli_ranks_hold(usp, &held);
    rc = which_program(argc, argv, &q);
    if (rc < 0) rc = parse_program_options(argc, argv, &q);
    if (rc < 0) rc = check_program_options(argv[0], &q);
    if (rc < 0 && q.is_dit && q.o.backend == SKY_BACKEND_CUDA) rc = sky_cli_selftest_gate(argv[0], q.o.quiet) ? 1 : -1;
    if (rc < 0 && usp && !q.use_usp)
        rc = usage_error(argv[0], "%s", "--use_usp: only program dit_forward runs over ranks");
    sky_err err;
    if (rc < 0 && usp && sky_dit_usp_check(sky_variant.dit, sky_usp_comm(usp)->size, &err))
        rc = usage_error(argv[0], "%s", err.msg);
    rc = sky_cli_ranks_agree(usp, &held, rc, argv[0]);
    if (rc >= 0) {
        sky_usp_end(usp);
        return rc;
    }
    sky_dit_run_opts *o = &q.o;
    sky_trace        *trace = NULL;
    if (usp) {
        o->comm = sky_usp_comm(usp);
        if (o->comm->rank != 0) o->quiet = 1; /* rank 0 prints the progress and writes the output */
    }
    /* --use_usp --backend cuda: every rank's GPU and its NCCL communicator (dist/usp_cuda.h), before any model */
    const sky_cuda_plugin *pl = NULL;
    if (usp && o->backend == SKY_BACKEND_CUDA &&
        (sky_cuda_plugin_get(&pl, sky_variant.name, &err) || sky_usp_cuda_open(usp, pl, &o->device, &o->nccl, &err)))
        return sky_cli_ranks_fail(usp, argv[0], err.msg, 1);
    if (q.trace_path && sky_trace_open(&trace, &err)) return sky_cli_ranks_fail(usp, argv[0], err.msg, 1);
    sky_status st = q.is_dit ? sky_dit_run(&sky_variant, o, &err)
                    : (q.is_text || q.is_clip)
                        ? sky_encoder_run_file(&sky_variant, q.is_text, o->weights, o->inputs, o->output, o->quiet,
                                               (int)o->backend, &err)
                        : sky_vae_run_file(&sky_variant, q.is_dec, o->weights, o->inputs, o->output, o->quiet,
                                           (int)o->backend, q.tiled ? &q.tiling : NULL, &err);
    if (st == SKY_OK && trace) st = sky_trace_write(trace, q.trace_path, &err);
    sky_trace_free(trace);
    if (o->nccl) pl->nccl_close(o->nccl);
    if (st != SKY_OK) return sky_cli_ranks_fail(usp, argv[0], err.msg, 1);
    sky_usp_end(usp);
    return 0;
}

/* lora-merge --weights PATH --lora FILE[:SCALE] ... --output FILE [--layout original|diffusers] [--weight_dtype fp8] */
static int cmd_lora_merge(int argc, char **argv)
{
    const char   *weights = NULL, *output = NULL, *layout = "original";
    sky_lora_spec loras[16];
    int           n = 0, skip_unknown = 0, fp8 = 0;
    sky_err       err;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (!val) return usage_error(argv[0], "lora-merge: %s needs a value (or is unknown)", a);
        if (strcmp(a, "--weights") == 0)
            weights = val;
        else if (strcmp(a, "--output") == 0)
            output = val;
        else if (strcmp(a, "--layout") == 0)
            layout = val;
        else if (strcmp(a, "--lora_unknown_keys") == 0 && (!strcmp(val, "warn") || !strcmp(val, "error")))
            skip_unknown = strcmp(val, "warn") == 0;
        else if (strcmp(a, "--weight_dtype") == 0 && (!strcmp(val, "fp8") || !strcmp(val, "checkpoint")))
            fp8 = strcmp(val, "fp8") == 0;
        else if (strcmp(a, "--lora") == 0 && n < 16) {
            if (sky_lora_parse_arg(val, &loras[n++], &err)) return usage_error(argv[0], "%s", err.msg);
        } else
            return usage_error(argv[0], "lora-merge: unknown option or bad value: %s", a);
        i++;
    }
    if (!weights || !output || !(n || fp8))
        return usage_error(argv[0], "lora-merge: %s are required",
                           "--weights, --output and --lora or --weight_dtype fp8");
    if (strcmp(layout, "original") != 0 && strcmp(layout, "diffusers") != 0)
        return usage_error(argv[0], "--layout %s: must be original or diffusers", layout);
    const sky_dit_program *p = sky_variant.dit;
    sky_lora              *lora = NULL;
    sky_status             st =
        n ? sky_lora_open(&lora, loras, n, p->weights, p->n_weights, skip_unknown, sky_variant.name, &err) : SKY_OK;
    for (int k = 0; st == SKY_OK && k < n; k++) {
        char line[8192];
        sky_lora_describe(lora, k, &loras[k], line, sizeof line);
        fprintf(stderr, "%s\n", line);
    }
    if (st == SKY_OK)
        st = sky_lora_write_merged(lora, p->weights, p->n_weights, weights, strcmp(layout, "diffusers") == 0, fp8,
                                   sky_variant.name, output, &err);
    sky_lora_close(lora);
    if (st != SKY_OK) {
        fprintf(stderr, "%s: error: %s\n", argv[0], err.msg);
        return 1;
    }
    return 0;
}

/* random-weights / random-inputs ... */
static int cmd_random(int argc, char **argv, int weights, int embeds)
{
    const char *output = NULL, *layout = "original", *program = "dit_forward";
    const char *prompts_arg = NULL;
    int         bf16 = 0, per_frame = 0;
    uint64_t    seed = 0, batch = 1, frames = (uint64_t)sky_variant.dit->max_frames, prompts = 0;
    for (int i = 2; i < argc; i++) {
        const char *a = argv[i];
        const char *val = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--output") == 0 && val) {
            output = val;
            i++;
        } else if (strcmp(a, "--seed") == 0 && val) {
            if (!parse_u64(val, &seed)) return usage_error(argv[0], "--seed %s: must be a non-negative integer", val);
            i++;
        } else if (weights && strcmp(a, "--layout") == 0 && val) {
            layout = val;
            i++;
        } else if (weights && strcmp(a, "--program") == 0 && val) {
            program = val;
            i++;
        } else if (weights && strcmp(a, "--bf16") == 0)
            bf16 = 1;
        else if (!weights && !embeds && strcmp(a, "--batch") == 0 && val) {
            if (!parse_u64(val, &batch) || batch > 64) return usage_error(argv[0], "--batch %s: must be 1 to 64", val);
            i++;
        } else if (!weights && !embeds && strcmp(a, "--frames") == 0 && val) {
            if (!parse_u64(val, &frames) || frames > 100000) return usage_error(argv[0], "--frames %s: bad count", val);
            i++;
        } else if (!weights && !embeds && strcmp(a, "--per-frame") == 0)
            per_frame = 1;
        else if (!weights && !embeds && strcmp(a, "--prompts") == 0 && val) {
            if (!parse_u64(val, &prompts) || prompts < 1 || prompts > 64)
                return usage_error(argv[0], "--prompts %s: must be 1 to 64", val);
            prompts_arg = val;
            i++;
        } else
            return usage_error(argv[0], "unknown option or missing value: %s", a);
    }
    if (!output) return usage_error(argv[0], "%s is required", "--output");
    sky_err    err;
    sky_status st;
    if (weights && strcmp(program, "dit_forward") == 0) {
        const sky_weight_desc *t[] = {sky_variant.dit->weights};
        const int              n[] = {sky_variant.dit->n_weights};
        st = sky_write_random_weights(t, n, 1, output, layout, bf16, seed, sky_variant.name, &err);
    } else if (weights && strcmp(program, "vae") == 0) {
        if (!sky_variant.vae_decode)
            return usage_error(argv[0], "--program vae: variant %s has no VAE", sky_variant.name);
        const sky_weight_desc *t[] = {sky_variant.vae_decode->weights, sky_variant.vae_encode->weights};
        const int              n[] = {sky_variant.vae_decode->n_weights, sky_variant.vae_encode->n_weights};
        st = sky_write_random_weights(t, n, 2, output, layout, bf16, seed, sky_variant.name, &err);
    } else if (weights && (strcmp(program, "t5") == 0 || strcmp(program, "clip") == 0)) {
        const sky_encoder_program *ep = strcmp(program, "t5") == 0 ? sky_variant.text_encode : sky_variant.clip_encode;
        if (!ep) return usage_error(argv[0], "--program %s: this variant has no such encoder", program);
        const sky_weight_desc *t[] = {ep->weights};
        const int              n[] = {ep->n_weights};
        st = sky_write_random_weights(t, n, 1, output, layout, bf16, seed, sky_variant.name, &err);
    } else if (weights) {
        return usage_error(argv[0], "--program %s: must be dit_forward, vae, t5 or clip", program);
    } else if (embeds) {
        st = sky_dit_write_random_embeds(&sky_variant, output, seed, &err);
    } else {
        if (prompts > batch) return usage_error(argv[0], "--prompts %s: more than --batch", prompts_arg);
        st = sky_dit_write_random_inputs(&sky_variant, output, (int)batch, (int)frames, per_frame,
                                         prompts ? (int)prompts : (int)batch, seed, &err);
    }
    if (st != SKY_OK) {
        fprintf(stderr, "%s: error: %s\n", argv[0], err.msg);
        return 1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        sky_cli_print_help(stderr, argv[0]);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0) {
        sky_cli_print_help(stdout, argv[0]);
        return 0;
    }
    if (strcmp(cmd, "--help-markdown") == 0) { /* docs/cli.md */
        sky_cli_print_markdown(stdout);
        return 0;
    }
    if (strcmp(cmd, "program") == 0 && argc == 3 && (!strcmp(argv[2], "--help") || !strcmp(argv[2], "-h"))) {
        print_usage(stdout, argv[0]);
        return 0;
    }
    if (strcmp(cmd, "--version") == 0) {
        printf("skyreels-%s  spec %s xxh64 %s  generator xxh64 %s\n", sky_variant.name, sky_variant.spec_path,
               sky_variant.spec_xxh64, sky_variant.generator_xxh64);
        return 0;
    }
    if (strcmp(cmd, "info") == 0 || strcmp(cmd, "--info") == 0) {
        print_info();
        return 0;
    }
    if (strcmp(cmd, "bench") == 0) return sky_cli_bench(argc, argv);
    if (strcmp(cmd, "program") == 0) return cmd_program(argc, argv);
    if (strcmp(cmd, "selftest") == 0) return sky_cli_selftest(argc, argv);
    if (strcmp(cmd, "lora-merge") == 0) return cmd_lora_merge(argc, argv);
    if (strcmp(cmd, "random-weights") == 0) return cmd_random(argc, argv, 1, 0);
    if (strcmp(cmd, "random-inputs") == 0) return cmd_random(argc, argv, 0, 0);
    if (strcmp(cmd, "random-embeds") == 0) return cmd_random(argc, argv, 0, 1);
    return sky_cli_generate(argc, argv); /* generation flags (the original's command line) */
}
