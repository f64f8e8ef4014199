/* runtime/cli/args.c — the generation flags (args.h): the table with the original scripts' names and defaults
 * (reference dit-and-sampling.md §10 and conventions-and-reliability.md §1.1, §1.6), --help, parsing.
 *
 * Why not getopt_long (issue 19 item 5): the table carries what getopt_long's struct option cannot (the DF-only
 * flags, the one flag that repeats, the refusal of a flag given twice, the help text and defaults), so the table
 * stays either way and getopt_long would only replace the loop below; and what it would bring is unwanted here:
 * glibc's getopt_long accepts any unambiguous prefix of a long name (--neg for --negative_prompt) with no way to
 * turn it off, so a script that works today breaks when a flag with the same prefix is added, and it permutes argv
 * and prints its own messages. The loop accepts exactly the table's names, as --name value or --name=value.
 */
#include "cli/args.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/cli.h"
#include "models/program.h"
#include "net/prompt_enhancer.h"

/* The original scripts' default prompts and negative prompts (reference §7.1, §10). */
static const char *const prompt_t2v =
    "A serene lake surrounded by towering mountains, with a few swans gracefully gliding across the water and "
    "sunlight dancing on the surface.";
static const char *const prompt_df =
    "A woman in a leather jacket and sunglasses riding a vintage motorcycle through a desert highway at sunset, "
    "her hair blowing wildly in the wind as the motorcycle kicks up dust, with the golden sun casting long "
    "shadows across the barren landscape.";
static const char *const negative_en =
    "Bright tones, overexposed, static, blurred details, subtitles, style, works, paintings, images, static, "
    "overall gray, worst quality, low quality, JPEG compression residue, ugly, incomplete, extra fingers, poorly "
    "drawn hands, poorly drawn faces, deformed, disfigured, misshapen limbs, fused fingers, still picture, messy "
    "background, three legs, many people in the background, walking backwards";
static const char *const negative_zh =
    "\xe8\x89\xb2\xe8\xb0\x83\xe8\x89\xb3\xe4\xb8\xbd\xef\xbc\x8c\xe8\xbf\x87\xe6\x9b\x9d\xef\xbc\x8c\xe9\x9d\x99"
    "\xe6\x80\x81\xef\xbc\x8c\xe7\xbb\x86\xe8\x8a\x82\xe6\xa8\xa1\xe7\xb3\x8a\xe4\xb8\x8d\xe6\xb8\x85\xef\xbc\x8c"
    "\xe5\xad\x97\xe5\xb9\x95\xef\xbc\x8c\xe9\xa3\x8e\xe6\xa0\xbc\xef\xbc\x8c\xe4\xbd\x9c\xe5\x93\x81\xef\xbc\x8c"
    "\xe7\x94\xbb\xe4\xbd\x9c\xef\xbc\x8c\xe7\x94\xbb\xe9\x9d\xa2\xef\xbc\x8c\xe9\x9d\x99\xe6\xad\xa2\xef\xbc\x8c"
    "\xe6\x95\xb4\xe4\xbd\x93\xe5\x8f\x91\xe7\x81\xb0\xef\xbc\x8c\xe6\x9c\x80\xe5\xb7\xae\xe8\xb4\xa8\xe9\x87\x8f"
    "\xef\xbc\x8c\xe4\xbd\x8e\xe8\xb4\xa8\xe9\x87\x8f\xef\xbc\x8cJPEG\xe5\x8e\x8b\xe7\xbc\xa9\xe6\xae\x8b\xe7\x95"
    "\x99\xef\xbc\x8c\xe4\xb8\x91\xe9\x99\x8b\xe7\x9a\x84\xef\xbc\x8c\xe6\xae\x8b\xe7\xbc\xba\xe7\x9a\x84\xef\xbc"
    "\x8c\xe5\xa4\x9a\xe4\xbd\x99\xe7\x9a\x84\xe6\x89\x8b\xe6\x8c\x87\xef\xbc\x8c\xe7\x94\xbb\xe5\xbe\x97\xe4\xb8"
    "\x8d\xe5\xa5\xbd\xe7\x9a\x84\xe6\x89\x8b\xe9\x83\xa8\xef\xbc\x8c\xe7\x94\xbb\xe5\xbe\x97\xe4\xb8\x8d\xe5\xa5"
    "\xbd\xe7\x9a\x84\xe8\x84\xb8\xe9\x83\xa8\xef\xbc\x8c\xe7\x95\xb8\xe5\xbd\xa2\xe7\x9a\x84\xef\xbc\x8c\xe6\xaf"
    "\x81\xe5\xae\xb9\xe7\x9a\x84\xef\xbc\x8c\xe5\xbd\xa2\xe6\x80\x81\xe7\x95\xb8\xe5\xbd\xa2\xe7\x9a\x84\xe8\x82"
    "\xa2\xe4\xbd\x93\xef\xbc\x8c\xe6\x89\x8b\xe6\x8c\x87\xe8\x9e\x8d\xe5\x90\x88\xef\xbc\x8c\xe9\x9d\x99\xe6\xad"
    "\xa2\xe4\xb8\x8d\xe5\x8a\xa8\xe7\x9a\x84\xe7\x94\xbb\xe9\x9d\xa2\xef\xbc\x8c\xe6\x9d\x82\xe4\xb9\xb1\xe7\x9a"
    "\x84\xe8\x83\x8c\xe6\x99\xaf\xef\xbc\x8c\xe4\xb8\x89\xe6\x9d\xa1\xe8\x85\xbf\xef\xbc\x8c\xe8\x83\x8c\xe6\x99"
    "\xaf\xe4\xba\xba\xe5\xbe\x88\xe5\xa4\x9a\xef\xbc\x8c\xe5\x80\x92\xe7\x9d\x80\xe8\xb5\xb0";

const char *sky_cli_default_prompt(void) { return sky_cli_is_df() ? prompt_df : prompt_t2v; }
const char *sky_cli_default_negative_prompt(void) { return sky_cli_is_df() ? negative_zh : negative_en; }

#define STR_(x) #x
#define STR(x)  STR_(x)

/* The flags. `df`: 1 only in the DF script, 2 also for first-last-frame (FLF2V) variants. Kinds: s string, m string that may repeat, i int, f float, b flag. */
typedef struct flag {
    const char *name;
    char        kind;
    int         df;
    const char *def; /* default as shown in --help */
    const char *help;
} flag;

static const flag flags[] = {
    {"--prompt", 's', 0, "(the original script's)", "text prompt"},
    {"--negative_prompt", 's', 0, "(the original script's)", "negative prompt for classifier-free guidance"},
    {"--num_frames", 'i', 0, "97, or the binary's window if smaller",
     "frames to generate, 4k+1 (DF: the whole video; longer than --base_num_frames "
     "needs --overlap_history)"},
    {"--inference_steps", 'i', 0, "30", "denoising steps, >= 1"},
    {"--sample_solver", 's', 0, "unipc",
     "unipc (the original's flow UniPC) or euler (diffusers' flow-match Euler, as step-distilled LoRAs are run: "
     "e.g. --inference_steps 4 --guidance_scale 1 --shift 5)"},
    {"--lora", 'm', 0, "none",
     "FILE[:SCALE]: a LoRA merged into the transformer at load, W + SCALE (alpha/rank) up.down (SCALE 1.0 by "
     "default); repeat for several. Original/ComfyUI (diffusion_model.*), diffusers/PEFT (transformer.*) and "
     ".diff/.diff_b deltas"},
    {"--lora_unknown_keys", 's', 0, "error", "error, or warn: skip LoRA keys that match no weight of this model"},
    {"--weight_dtype", 's', 0, "checkpoint",
     "checkpoint (the checkpoint's values), or fp8: the transformer's block linear weights quantised at load to fp8 "
     "e4m3 with one scale per output channel (after any --lora), as the per-channel fp8 files are, and kept so on the "
     "GPU (expanded to bf16 a block at a time); fp8 checkpoints load either way"},
    {"--guidance_scale", 'f', 0, "6.0",
     "classifier-free guidance scale, >= 0 (the uncond pass is skipped at 1, and by DF at <= 1)"},
    {"--shift", 'f', 0, "8.0", "flow-matching sigma shift, > 0"},
    {"--seed", 'i', 0, "random", "seed of the noise, 0 .. 2^64-1, or -1: random (the seed drawn is printed)"},
    {"--fps", 'i', 0, "24", "frames per second of the mp4 (DF-1.3B: also the fps embedding, 16 or other)"},
    {"--resolution", 's', 0, "the binary's",
     "540P (544x960), 720P (720x1280) or HxW; must be the size this "
     "binary was generated for"},
    {"--image", 's', 0, "none", "I2V, FLF2V: the first frame (required); DF: a start frame"},
    {"--end_image", 's', 2, "none", "FLF2V: the last frame (required); DF: an end frame (needs --causal_block_size 1)"},
    {"--video_path", 's', 1, "none", "DF: extend this video (needs --overlap_history)"},
    {"--ar_step", 'i', 1, "0", "DF: asynchronous step offset between blocks, >= 0 (0 = synchronous)"},
    {"--causal_block_size", 'i', 1, "1", "DF: latent frames per block, >= 1; must divide every window"},
    {"--base_num_frames", 'i', 1, "97, or the binary's window if smaller",
     "DF: frames per window, 4k+1, at most the binary's window"},
    {"--overlap_history", 'i', 1, "none", "DF: frames shared by consecutive windows, 4k+1 (17 or 37 recommended)"},
    {"--addnoise_condition", 'i', 1, "0", "DF: noise level added to the prefix, >= 0 (20 recommended; >60 warns)"},
    {"--outdir", 's', 0, "video_out / diffusion_forcing", "output under result/<outdir>/, or <outdir>/ when absolute"},
    {"-o", 's', 0, "", ""},
    {"--output", 's', 0, "result/<outdir>/<prompt>_<seed>_<time>.mp4", "the mp4 to write (-o)"},
    {"--model_id", 's', 0, "Skywork/SkyReels-V2-<variant>",
     "checkpoint directory (original or diffusers layout), or a Hugging Face repo id (Org/Name) found in the local "
     "Hugging Face cache ($HF_HUB_CACHE, $HF_HOME/hub, ~/.cache/huggingface/hub; nothing is downloaded)"},
    {"--dit_weights", 's', 0, "<model_id>[/transformer]", "transformer checkpoint (file, index or directory)"},
    {"--vae_weights", 's', 0, "<model_id>/vae or Wan2.1_VAE", "VAE checkpoint"},
    {"--t5_weights", 's', 0, "<model_id>/models_t5_umt5-xxl-enc-bf16.pth or text_encoder/", "umT5 checkpoint"},
    {"--tokenizer", 's', 0, "<model_id>/google/umt5-xxl or tokenizer/", "umT5 tokenizer (spiece.model)"},
    {"--clip_weights", 's', 0, "<model_id>/models_clip_...-vit-huge-14.pth or image_encoder/", "I2V: CLIP checkpoint"},
    {"--prompt_embeds", 's', 0, "none",
     "debug: safetensors with context and context_null [text_len, text_dim] (and "
     "clip_fea for I2V) used instead of the encoders"},
    {"--noise", 's', 0, "none", "debug: safetensors of draws noise.0, noise.1, ... used instead of --seed"},
    {"--output_latents", 's', 0, "none", "debug: also write the final latents (before the VAE) here"},
    {"--backend", 's', 0, "cuda where a GPU is present, else cpu ($SKY_BACKEND)",
     "cpu, or cuda: every program on the GPU (the CUDA plugin; checked on a CPU emulator, not yet on a GPU); "
     "without a GPU a variant whose run would take the CPU over an hour needs --backend cpu"},
    {"--teacache", 'b', 0, "off",
     "TeaCache: skip the transformer's blocks on calls whose time embedding moved "
     "little, reusing the last residual (faster, approximate)"},
    {"--teacache_thresh", 'f', 0, "0.2", "TeaCache threshold > 0: larger skips more (0.1 ~2x, 0.2 ~3x faster)"},
    {"--use_ret_steps", 'b', 0, "off", "TeaCache: measure e0 and keep the first 5 steps (the original's option)"},
    {"--offload", 'b', 0, "off",
     "hold one model at a time (transformer, VAE decoder, VAE encoder): each is loaded "
     "for each use and freed after it (less memory, reloads per DF window)"},
    {"--offload_blocks", 's', 0, "off",
     "N or auto: with --backend cuda, the transformer's blocks stay in pinned host memory (as much host memory as "
     "their weights) and N of them are on the GPU at a time, the next copied over PCIe while one computes (the "
     "same output; slower where the copy outlasts a block's compute: docs/offload.md); auto: the largest N that "
     "fits the GPU's free memory, or none when everything fits. The CPU backend accepts it and changes nothing "
     "(its weights are host memory already)"},
    {"--vae_tiling", 'b', 0, "off",
     "decode (and encode, where the run encodes an image or video) in overlapping tiles blended as diffusers' "
     "AutoencoderKLWan tiling does, when the frame is larger than a tile (the same output as diffusers with "
     "enable_tiling); the tiles run the variant's vae_decode_tile and vae_encode_tile, generated at its spec's "
     "vae.tile_px (256 by default), whose arenas are the tile's. On the cuda backend a run "
     "tiles by itself (and says so) when the decoder at the frame's size would not fit in free device memory"},
    {"--vae_tile_size", 's', 0, "256:192", "--vae_tiling's tile and stride in pixels (diffusers' defaults)"},
    {"--use_cfg_parallel", 'b', 0, "off",
     "two GPUs: the unconditional pass of classifier-free guidance on GPU 1 "
     "at the same time as the conditional one on GPU 0 (the same output)"},
    {"--resume_dir", 's', 1, "none",
     "DF: keep each finished window in this directory; the same command run again "
     "continues after the last one (same video bit for bit; --seed read from it)"},
    {"--prompt_enhancer", 'b', 0, "off",
     "rewrite --prompt into a detailed one with a chat model on an OpenAI-compatible server (vLLM, "
     "llama-server) before anything else; not with --image (docs/prompt_enhancer.md)"},
    {"--prompt_enhancer_url", 's', 0, SKY_PROMPT_ENHANCER_URL " or $" SKY_PROMPT_ENHANCER_URL_ENV,
     "the server's base URL (/chat/completions is appended); a key goes in $" SKY_PROMPT_ENHANCER_KEY_ENV},
    {"--prompt_enhancer_model", 's', 0, SKY_PROMPT_ENHANCER_MODEL, "the model the server serves"},
    {"--prompt_enhancer_timeout", 'i', 0, STR(SKY_PROMPT_ENHANCER_TIMEOUT_S),
     "seconds to wait for the server's answer, 1 .. 3600"},
    {"--json", 's', 0, "none",
     "FILE: write a summary of the run there (outputs, every parameter as resolved, variant, spec hash, engine "
     "version, backend, device and driver, checkpoint files with an xxh64 of their headers, LoRAs, time per stage, "
     "peak host memory and, with --backend cuda, peak device memory), atomically"},
    {"--progress", 's', 0, "bar",
     "bar: stages and a progress bar as text on stderr; json: instead, one JSON object per line on stderr (events "
     "start, stage and step with the ETA, done with the time per stage)"},
    {"-q", 'b', 0, "", ""},
    {"--quiet", 'b', 0, "off", "no progress lines (-q)"},
    {"--use_usp", 'b', 0, "off",
     "Ulysses sequence parallelism over the ranks of `mpirun -np N` or `srun` (docs/usp.md): each rank runs 1/N of "
     "the tokens' attention heads; N must divide the heads; needs --seed; the CPU backend unless --backend cuda "
     "(one GPU per rank, over NCCL); rank 0 prints and writes; with --use_cfg_parallel on 2 N ranks, "
     "the conditional passes run on N ranks and the unconditional ones on the other N"},
    /* Flags of the original that this engine refuses for now (never silently ignored). */
    {"--causal_attention", 'b', 1, "off",
     "DF: block-causal mask; not supported (the released weights do not "
     "support it, issues #58, #78)"},
};
enum { N_FLAGS = sizeof flags / sizeof flags[0] };
_Static_assert((int)N_FLAGS <= (int)SKY_CLI_MAX_FLAGS, "sky_cli_flags has a slot per flag");

static int flag_index(const char *name)
{
    for (int i = 0; i < N_FLAGS; i++)
        if (strcmp(flags[i].name, name) == 0) return i;
    return -1;
}

/* The index of a flag of the table. */
static int known(const char *name)
{
    const int i = flag_index(name);
    SKY_ASSERT(i >= 0);
    return i;
}

const char *sky_cli_flag(const sky_cli_flags *f, const char *name) { return f->value[known(name)]; }
int         sky_cli_flag_given(const sky_cli_flags *f, const char *name) { return f->given[known(name)]; }
const char *sky_cli_flag_help(const char *name) { return flags[known(name)].help; }
int sky_cli_quiet(const sky_cli_flags *f) { return sky_cli_flag_given(f, "-q") || sky_cli_flag_given(f, "--quiet"); }

int sky_cli_is_df(void) { return sky_variant.family == SKY_FAMILY_DF; }
int sky_cli_is_flf2v(void) { return sky_variant.dit->num_images == 2; }

/* Whether flag f is one of this binary's. */
static int applies(const flag *f) { return !f->df || sky_cli_is_df() || (f->df == 2 && sky_cli_is_flf2v()); }

/* The environment variables the engine reads (grep getenv runtime/), each beside the flag it relates to. */
static const struct {
    const char *name, *flag, *help;
} envs[] = {
    {"SKY_BACKEND", "--backend", "cpu or cuda when --backend is not given"},
    {"SKY_CUDA_PLUGIN", "--backend cuda",
     "path of the CUDA plugin (default: libskyreels-<variant>-cuda.so beside the binary)"},
    {"SKY_ATTENTION", "--backend cuda", "sm80 or sm90: the CUDA attention kernel (default: the GPU's best)"},
    {"SKY_CACHE", "--backend cuda",
     "directory of the compiled-kernel cache (default $XDG_CACHE_HOME/skyreels or ~/.cache/skyreels; "
     "$SKYREELS_CACHE, its former name, still read); CUDA_HOME, CUDA_PATH: where NVRTC's headers are"},
    {"SKY_SELFTEST", "--backend cuda",
     "0: skip the kernel selftest a CUDA run does on a device's first use (its verdict is cached beside the "
     "kernel cache; `selftest` runs it on demand)"},
    {"SKY_GEMM_TUNE", "--backend cuda",
     "0: take cuBLASLt's first heuristic answer for every GEMM instead of timing its first 4 candidates once "
     "per GPU and shape (the choices are cached beside the kernel cache as `gemm-<key>.choice`)"},
    {"SKY_NCCL_LIBRARY", "--use_usp",
     "with --backend cuda: the NCCL library to open (default libnccl.so.2 from the loader's path), e.g. a "
     "pip-installed nvidia-nccl's"},
    {SKY_PROMPT_ENHANCER_URL_ENV, "--prompt_enhancer_url", "the server's base URL when the flag is not given"},
    {SKY_PROMPT_ENHANCER_KEY_ENV, "--prompt_enhancer", "the server's API key (sent as a Bearer token)"},
    {"HF_HUB_CACHE", "--model_id", "the Hugging Face cache a repo id is looked up in (else $HF_HOME/hub)"},
};

void sky_cli_print_help(FILE *out, const char *argv0)
{
    fprintf(out, "usage: %s [generation flags]      generate a video (%s, %s)\n", argv0, sky_variant.name,
            sky_family_name(sky_variant.family));
    fprintf(out, "       %s program|random-weights|random-inputs|info|--version ...  (see %s program --help)\n\n",
            argv0, argv0);
    fprintf(out, "generation flags (names and defaults of the original %s):\n",
            sky_cli_is_df() ? "generate_video_df.py" : "generate_video.py");
    for (int i = 0; i < N_FLAGS; i++) {
        const flag *f = &flags[i];
        if (!applies(f)) continue;
        if (!f->help[0]) continue; /* short aliases are listed with their long form */
        char left[64];
        snprintf(left, sizeof left, "  %s%s", f->name,
                 f->kind == 'b' ? "" : (f->kind == 'i' || f->kind == 'f' ? " N" : " S"));
        fprintf(out, "%-26s %s (default: %s)\n", left, f->help, f->def);
    }
    fprintf(out,
            "\nthis binary: %dx%d pixels (or %dx%d portrait), windows of up to %d frames; sampler defaults "
            "%d steps, shift %g, guidance %g\n",
            sky_variant.height, sky_variant.width, sky_variant.width, sky_variant.height, sky_variant.base_num_frames,
            sky_variant.steps, sky_variant.shift, sky_variant.guidance);
    fprintf(out, "\nenvironment (the engine's own start with SKY_):\n");
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++)
        fprintf(out, "  %-28s %s: %s\n", envs[i].name, envs[i].flag, envs[i].help);
    fprintf(out, "exit codes: 0 success, 1 failure (files, weights, memory), 2 usage error, 130 interrupted (SIGINT), "
                 "143 (SIGTERM, SIGHUP)\n");
}

/* s with '|' escaped for a Markdown table cell. */
static void md_cell(FILE *out, const char *s)
{
    for (; *s; s++) {
        if (*s == '|') fputc('\\', out);
        fputc(*s, out);
    }
}

void sky_cli_print_markdown(FILE *out)
{
    fprintf(out,
            "# Command line reference\n\n"
            "Generated by `skyreels-<variant> --help-markdown` from the flag table of runtime/cli/args.c (the table "
            "`--help` prints); tests/runtime/test_cli.sh checks that this file is what the binary prints. The "
            "flags and defaults are those of the original generate_video.py (T2V, I2V) and "
            "generate_video_df.py (DF); \"DF\" marks the flags only diffusion-forcing binaries take (\"DF, FLF2V\": "
            "and first-last-frame ones). "
            "`--flag` alone is a switch, `S` a string, `N` a number.\n\n"
            "| flag | DF | default | meaning |\n|---|---|---|---|\n");
    for (int i = 0; i < N_FLAGS; i++) {
        const flag *f = &flags[i];
        if (!f->help[0]) continue; /* short aliases are listed with their long form */
        fprintf(out, "| `%s%s` | %s | ", f->name,
                f->kind == 'b' ? "" : (f->kind == 'i' || f->kind == 'f' ? " N" : " S"),
                f->df == 2 ? "DF, FLF2V"
                : f->df    ? "DF"
                           : "");
        md_cell(out, f->def);
        fputs(" | ", out);
        md_cell(out, f->help);
        fputs(" |\n", out);
    }
    fprintf(out, "\n## Environment\n\nThe engine's own variables start with SKY_.\n\n| variable | with | meaning "
                 "|\n|---|---|---|\n");
    for (size_t i = 0; i < sizeof envs / sizeof envs[0]; i++) {
        fprintf(out, "| `%s` | `%s` | ", envs[i].name, envs[i].flag);
        md_cell(out, envs[i].help);
        fputs(" |\n", out);
    }
    fprintf(
        out,
        "\nShort forms: `-o` is `--output`, `-q` is `--quiet`. Exit codes: 0 success, 1 failure (files, weights, "
        "memory), 2 usage error, 130 interrupted (SIGINT), 143 terminated (SIGTERM, SIGHUP). Flags may be written "
        "`--name value` or `--name=value`.\n\n"
        "Other commands of a binary: `program` (one generated program on a safetensors file of inputs), "
        "`bench` (docs/bench.md), `selftest`, `lora-merge`, `random-weights`, `random-inputs`, `info`, `--version`; "
        "`skyreels-<variant> program "
        "--help` lists them with their options.\n");
}

/* Print "argv0: error: <msg>" and return the usage exit code. */
int sky_cli_usage(const char *argv0, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", argv0);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(run %s --help for the flags)\n", argv0);
    return SKY_CLI_EXIT_USAGE;
}

int sky_cli_to_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

int sky_cli_to_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v != v) return 0;
    *out = v;
    return 1;
}

/* The table index of argument arg, -1 when it names no flag; *eq: its '=' in the spelling --name=value
 * (argparse's other one: the name before the first '=', the value after it), else NULL. */
static int lookup(const char *arg, const char **eq)
{
    *eq = strncmp(arg, "--", 2) == 0 ? strchr(arg, '=') : NULL;
    if (!*eq) return flag_index(arg);
    char         name[64];
    const size_t n = (size_t)(*eq - arg);
    if (n >= sizeof name) return -1;
    memcpy(name, arg, n);
    name[n] = 0;
    return flag_index(name);
}

int sky_cli_flags_parse(sky_cli_flags *f, int argc, char **argv)
{
    const char *argv0 = argv[0];
    memset(f, 0, sizeof *f);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            sky_cli_print_help(stdout, argv0);
            return 0;
        }
        const char *eq;
        const int   k = lookup(argv[i], &eq);
        if (k < 0) return sky_cli_usage(argv0, "unknown flag %s", argv[i]);
        if (!applies(&flags[k]))
            return sky_cli_usage(argv0, "%s is a diffusion-forcing%s flag; this is the %s variant %s", flags[k].name,
                                 flags[k].df == 2 ? " and first-last-frame (FLF2V)" : "",
                                 sky_family_name(sky_variant.family), sky_variant.name);
        if (f->given[k] && flags[k].kind != 'm') return sky_cli_usage(argv0, "%s given twice", flags[k].name);
        f->given[k] = 1;
        if (flags[k].kind == 'b' && eq) return sky_cli_usage(argv0, "%s takes no value (%s)", flags[k].name, argv[i]);
        if (eq)
            f->value[k] = eq + 1;
        else if (flags[k].kind != 'b') {
            if (i + 1 >= argc) return sky_cli_usage(argv0, "%s needs a value", argv[i]);
            f->value[k] = argv[++i];
        }
        if (flags[k].kind == 'm' && f->n_lora == SKY_CLI_MAX_LORAS)
            return sky_cli_usage(argv0, "--lora: at most %d", SKY_CLI_MAX_LORAS);
        if (flags[k].kind == 'm') f->lora[f->n_lora++] = f->value[k];
    }
    /* Aliases. */
    if (sky_cli_flag_given(f, "-o")) {
        f->given[known("--output")] = 1;
        f->value[known("--output")] = sky_cli_flag(f, "-o");
    }
    return SKY_CLI_GO_ON;
}
