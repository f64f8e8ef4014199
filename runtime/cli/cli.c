/* runtime/cli/cli.c — the generation command line of a variant binary, with the flags of the
 * original generate_video.py / generate_video_df.py (same names, same defaults; reference
 * dit-and-sampling.md §10 and conventions-and-reliability.md §1.1, §1.6).
 *
 * Every flag is checked, and every combination the run cannot honour is refused, before any
 * weight is read: usage errors exit 2 with a message naming the flag and the rule. Flags of the
 * original that this engine does not implement yet are refused by name, never ignored.
 */
#include "cli/cli.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "models/dit.h"
#include "net/http.h"
#include "net/prompt_enhancer.h"
#include "pipeline/forcing.h"
#include "pipeline/pipeline.h"
#include "pipeline/resume.h"
#include "video/video.h"

enum { EXIT_FAIL = 1, EXIT_USAGE = 2 };

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

#define STR_(x) #x
#define STR(x)  STR_(x)

/* The flags. `df`: only in the DF script. Kinds: s string, i int, f float, b flag. */
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
    {"--guidance_scale", 'f', 0, "6.0", "classifier-free guidance scale, >= 0 (DF skips the uncond pass at <= 1)"},
    {"--shift", 'f', 0, "8.0", "flow-matching sigma shift, > 0"},
    {"--seed", 'i', 0, "random", "seed of the noise, 0 .. 2^64-1 (printed when random)"},
    {"--fps", 'i', 0, "24", "frames per second of the mp4 (DF-1.3B: also the fps embedding, 16 or other)"},
    {"--resolution", 's', 0, "the binary's",
     "540P (544x960), 720P (720x1280) or HxW; must be the size this "
     "binary was generated for"},
    {"--image", 's', 0, "none", "I2V: the first frame (required); DF: a start frame"},
    {"--end_image", 's', 1, "none", "DF: an end frame (needs --causal_block_size 1)"},
    {"--video_path", 's', 1, "none", "DF: extend this video (needs --overlap_history)"},
    {"--ar_step", 'i', 1, "0", "DF: asynchronous step offset between blocks, >= 0 (0 = synchronous)"},
    {"--causal_block_size", 'i', 1, "1", "DF: latent frames per block, >= 1; must divide every window"},
    {"--base_num_frames", 'i', 1, "97, or the binary's window if smaller",
     "DF: frames per window, 4k+1, at most the binary's window"},
    {"--overlap_history", 'i', 1, "none", "DF: frames shared by consecutive windows, 4k+1 (17 or 37 recommended)"},
    {"--addnoise_condition", 'i', 1, "0", "DF: noise level added to the prefix, >= 0 (20 recommended; >60 warns)"},
    {"--outdir", 's', 0, "video_out / diffusion_forcing", "output under result/<outdir>/"},
    {"-o", 's', 0, "", ""},
    {"--output", 's', 0, "result/<outdir>/<prompt>_<seed>_<time>.mp4", "the mp4 to write (-o)"},
    {"--model_id", 's', 0, "Skywork/SkyReels-V2-<variant>", "checkpoint directory (original or diffusers layout)"},
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
     "cpu, or cuda: every program on the GPU (the CUDA plugin; checked on a CPU emulator, not yet on a GPU)"},
    {"--teacache", 'b', 0, "off",
     "TeaCache: skip the transformer's blocks on calls whose time embedding moved "
     "little, reusing the last residual (faster, approximate)"},
    {"--teacache_thresh", 'f', 0, "0.2", "TeaCache threshold > 0: larger skips more (0.1 ~2x, 0.2 ~3x faster)"},
    {"--use_ret_steps", 'b', 0, "off", "TeaCache: measure e0 and keep the first 5 steps (the original's option)"},
    {"--offload", 'b', 0, "off",
     "hold one model at a time (transformer, VAE decoder, VAE encoder): each is loaded "
     "for each use and freed after it (less memory, reloads per DF window)"},
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
    {"-q", 'b', 0, "", ""},
    {"--quiet", 'b', 0, "off", "no progress lines (-q)"},
    /* Flags of the original that this engine refuses for now (never silently ignored). */
    {"--use_usp", 'b', 0, "off",
     "multi-GPU sequence parallelism: not supported yet (--use_cfg_parallel runs the "
     "two guidance passes on two GPUs)"},
    {"--causal_attention", 'b', 1, "off",
     "DF: block-causal mask; not supported (the released weights do not "
     "support it, issues #58, #78)"},
};
enum { N_FLAGS = sizeof flags / sizeof flags[0] };

/* Parsed values, one slot per flag (NULL: not given). */
typedef struct parsed {
    const char *value[N_FLAGS];
    int         given[N_FLAGS];
} parsed;

static int flag_index(const char *name)
{
    for (int i = 0; i < N_FLAGS; i++)
        if (strcmp(flags[i].name, name) == 0) return i;
    return -1;
}

static const char *get(const parsed *p, const char *name)
{
    int i = flag_index(name);
    SKY_ASSERT(i >= 0);
    return p->value[i];
}

static int given(const parsed *p, const char *name)
{
    int i = flag_index(name);
    SKY_ASSERT(i >= 0);
    return p->given[i];
}

static int is_df(void) { return strcmp(sky_variant.family, "df") == 0; }

void sky_cli_print_help(FILE *out, const char *argv0)
{
    fprintf(out, "usage: %s [generation flags]      generate a video (%s, %s)\n", argv0, sky_variant.name,
            sky_variant.family);
    fprintf(out, "       %s program|random-weights|random-inputs|info|--version ...  (see %s program --help)\n\n",
            argv0, argv0);
    fprintf(out, "generation flags (names and defaults of the original %s):\n",
            is_df() ? "generate_video_df.py" : "generate_video.py");
    for (int i = 0; i < N_FLAGS; i++) {
        const flag *f = &flags[i];
        if (f->df && !is_df()) continue;
        if (!f->help[0]) continue; /* short aliases are listed with their long form */
        char left[64];
        snprintf(left, sizeof left, "  %s%s", f->name, f->kind == 'b' ? "" : (f->kind == 's' ? " S" : " N"));
        fprintf(out, "%-26s %s (default: %s)\n", left, f->help, f->def);
    }
    fprintf(out,
            "\nthis binary: %dx%d pixels (or %dx%d portrait), windows of up to %d frames; sampler defaults "
            "%d steps, shift %g, guidance %g\n",
            sky_variant.height, sky_variant.width, sky_variant.width, sky_variant.height, sky_variant.base_num_frames,
            sky_variant.steps, sky_variant.shift, sky_variant.guidance);
    fprintf(out, "exit codes: 0 success, 1 failure (files, weights, memory), 2 usage error, 130 interrupted\n");
}

/* Print "argv0: error: <msg>" and return the usage exit code. */
static int usage(const char *argv0, const char *fmt, ...) SKY_PRINTF(2, 3);
static int usage(const char *argv0, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: error: ", argv0);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(run %s --help for the flags)\n", argv0);
    return EXIT_USAGE;
}

/* Strict number parsing: the whole string, in range. */
static int to_int(const char *s, long long lo, long long hi, long long *out)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (errno || end == s || *end || v < lo || v > hi) return 0;
    *out = v;
    return 1;
}

static int to_double(const char *s, double *out)
{
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (errno || end == s || *end || v != v) return 0;
    *out = v;
    return 1;
}

/* JSON string body of s into buf (quotes, backslashes and controls escaped). */
static size_t json_str(char *buf, size_t n, const char *s)
{
    size_t k = 0;
    k += (size_t)snprintf(buf + k, n > k ? n - k : 0, "\"");
    for (const unsigned char *c = (const unsigned char *)s; *c; c++) {
        if (*c == '"' || *c == '\\')
            k += (size_t)snprintf(buf + k, n > k ? n - k : 0, "\\%c", *c);
        else if (*c < 0x20)
            k += (size_t)snprintf(buf + k, n > k ? n - k : 0, "\\u%04x", *c);
        else
            k += (size_t)snprintf(buf + k, n > k ? n - k : 0, "%c", *c);
    }
    k += (size_t)snprintf(buf + k, n > k ? n - k : 0, "\"");
    return k;
}

/* The original's output name: result/<outdir>/<prompt[:100] without '/'>_<seed>_<time>.mp4, with
 * the prompt cut to 100 characters and then to at most 200 bytes on a UTF-8 boundary (100 CJK
 * characters are 300 bytes: the original's name could exceed NAME_MAX and fail after the run). */
static int default_output(char *buf, size_t n, const char *outdir, const char *prompt, uint64_t seed)
{
    char   stem[256];
    size_t k = 0;
    int    chars = 0;
    for (const unsigned char *c = (const unsigned char *)prompt; *c && chars < 100;) {
        size_t len = *c < 0x80 ? 1 : (*c >> 5) == 6 ? 2 : (*c >> 4) == 14 ? 3 : (*c >> 3) == 30 ? 4 : 1;
        if (k + len > 200) break;
        if (*c != '/') {
            memcpy(stem + k, c, len);
            k += len;
        }
        c += len;
        chars++;
    }
    stem[k] = 0;
    char   when[32];
    time_t now = time(NULL);
    strftime(when, sizeof when, "%Y-%m-%d_%H-%M-%S", localtime(&now));
    return snprintf(buf, n, "result/%s/%s_%llu_%s.mp4", outdir, stem, (unsigned long long)seed, when) < (int)n;
}

/* mkdir -p of the directory part of path. */
static int make_parents(const char *path)
{
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0777) != 0 && errno != EEXIST) return 0;
        *p = '/';
    }
    return 1;
}

/* mkdir -p of directory dir. */
static int make_parents_dir(const char *dir)
{
    char tmp[4096];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s/x", dir) >= sizeof tmp) {
        errno = ENAMETOOLONG;
        return 0;
    }
    return make_parents(tmp);
}

/* Whether this process may create files in the folder that holds file `path` ("." when it names none): 0, or
 * -1 with errno set (EACCES, EROFS, ENOENT, ...). Checked before any weight is read, so that a run whose
 * output cannot be written fails at once, not after the generation. The folder is written into dir. */
static int folder_writable(const char *path, char *dir, size_t n)
{
    snprintf(dir, n, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash)
        snprintf(dir, n, ".");
    else
        slash[slash == dir] = 0; /* "/x.mp4" -> "/" */
    return access(dir, W_OK | X_OK);
}

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}
static int is_dir(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* The prompt enhancer's settings: --prompt_enhancer_url, else $SKY_PROMPT_ENHANCER_URL, else the default; the
 * key only from $SKY_PROMPT_ENHANCER_API_KEY (a command line shows in ps). Its flags without --prompt_enhancer,
 * and the runs it cannot serve, are refused. Returns 0, or the usage exit code having said why. */
static int prompt_enhancer_settings(const char *argv0, const parsed *p, sky_prompt_enhancer *pe)
{
    static const char *const own[] = {"--prompt_enhancer_url", "--prompt_enhancer_model", "--prompt_enhancer_timeout"};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (given(p, own[i]) && !given(p, "--prompt_enhancer"))
            return usage(argv0, "%s applies only with --prompt_enhancer", own[i]);
    if (!given(p, "--prompt_enhancer")) return 0;
    if (!sky_http_available()) return usage(argv0, "--prompt_enhancer: %s", sky_http_client());
    if (given(p, "--image"))
        return usage(argv0, "--prompt_enhancer with --image: the model would rewrite the prompt without seeing the "
                            "image (the original enhances text-to-video prompts only); pass a prompt of your own");
    if (given(p, "--prompt_embeds"))
        return usage(argv0, "--prompt_enhancer with --prompt_embeds: the embeddings replace the prompt's encoding, so "
                            "the enhanced prompt would not be used");
    if (given(p, "--resume_dir"))
        return usage(argv0,
                     "--prompt_enhancer with --resume_dir: the server may rewrite the prompt differently when the run "
                     "continues, and the kept windows would not match; enhance the prompt first "
                     "(docs/prompt_enhancer.md shows how) and pass it with --prompt");
    const char *env = getenv(SKY_PROMPT_ENHANCER_URL_ENV);
    const int   from_env = !given(p, "--prompt_enhancer_url") && env && env[0];
    pe->url = given(p, "--prompt_enhancer_url") ? get(p, "--prompt_enhancer_url")
              : from_env                        ? env
                                                : SKY_PROMPT_ENHANCER_URL;
    pe->model = given(p, "--prompt_enhancer_model") ? get(p, "--prompt_enhancer_model") : SKY_PROMPT_ENHANCER_MODEL;
    pe->api_key = getenv(SKY_PROMPT_ENHANCER_KEY_ENV);
    pe->timeout_s = SKY_PROMPT_ENHANCER_TIMEOUT_S;
    long long t;
    if (given(p, "--prompt_enhancer_timeout")) {
        if (!to_int(get(p, "--prompt_enhancer_timeout"), 1, 3600, &t))
            return usage(argv0, "--prompt_enhancer_timeout %s: must be an integer from 1 to 3600 (seconds)",
                         get(p, "--prompt_enhancer_timeout"));
        pe->timeout_s = (int)t;
    }
    sky_err e;
    if (sky_prompt_enhancer_check(pe, &e))
        return usage(argv0, "%s%s", from_env ? "$" SKY_PROMPT_ENHANCER_URL_ENV ": " : "", e.msg);
    return 0;
}

/* Ask the prompt enhancer's server to rewrite *prompt; *prompt becomes its answer. Returns 0, or EXIT_FAIL having
 * said why (nothing has been read or written yet). */
static int enhance_prompt(const char *argv0, const sky_prompt_enhancer *pe, int quiet, const char **prompt)
{
    static char enhanced[SKY_PROMPT_ENHANCER_MAX_PROMPT + 1];
    char       *text;
    int         cut;
    sky_err     err;
    if (!quiet) fprintf(stderr, "prompt enhancer: asking %s at %s\n", pe->model, pe->url);
    if (sky_prompt_enhance(pe, *prompt, &text, &cut, &err)) {
        fprintf(stderr, "%s: error: %s\n", argv0, err.msg);
        return EXIT_FAIL;
    }
    snprintf(enhanced, sizeof enhanced, "%s", text);
    free(text);
    if (cut)
        fprintf(stderr,
                "warning: the prompt enhancer's answer stopped at its limit of %d tokens (it may end "
                "mid-sentence)\n",
                SKY_PROMPT_ENHANCER_MAX_TOKENS);
    if (!quiet) fprintf(stderr, "enhanced prompt: %s\n", enhanced);
    *prompt = enhanced;
    return 0;
}

static volatile int interrupted;
static void         on_signal(int sig) { interrupted = sig; }

int sky_cli_generate(int argc, char **argv)
{
    const char *argv0 = argv[0];
    parsed      p = {0};
    for (int i = 1; i < argc; i++) {
        int k = flag_index(argv[i]);
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            sky_cli_print_help(stdout, argv0);
            return 0;
        }
        if (k < 0) {
            const char *eq = strchr(argv[i], '=');
            if (eq && argv[i][0] == '-') return usage(argv0, "%s: write flags as '--name value'", argv[i]);
            return usage(argv0, "unknown flag %s", argv[i]);
        }
        if (flags[k].df && !is_df())
            return usage(argv0, "%s is a diffusion-forcing flag; this is the %s variant %s", argv[i],
                         sky_variant.family, sky_variant.name);
        if (p.given[k]) return usage(argv0, "%s given twice", argv[i]);
        p.given[k] = 1;
        if (flags[k].kind != 'b') {
            if (i + 1 >= argc) return usage(argv0, "%s needs a value", argv[i]);
            p.value[k] = argv[++i];
        }
    }
    /* Aliases. */
    if (given(&p, "-o")) {
        p.given[flag_index("--output")] = 1;
        p.value[flag_index("--output")] = get(&p, "-o");
    }
    const int quiet = given(&p, "-q") || given(&p, "--quiet");

    /* Refused flags, by name. */
    static const char *const refused[] = {"--use_usp", "--causal_attention"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (flag_index(refused[i]) >= 0 && given(&p, refused[i]))
            return usage(argv0, "%s: %s", refused[i], flags[flag_index(refused[i])].help);
    sky_prompt_enhancer pe = {0};
    const int           pe_rc = prompt_enhancer_settings(argv0, &p, &pe);
    if (pe_rc) return pe_rc;
    if (!given(&p, "--teacache") && given(&p, "--teacache_thresh"))
        return usage(argv0, "--teacache_thresh applies only with --teacache");
    if (!given(&p, "--teacache") && given(&p, "--use_ret_steps"))
        return usage(argv0, "--use_ret_steps applies only with --teacache");
    sky_backend backend = SKY_BACKEND_CPU;
    if (given(&p, "--backend")) {
        sky_err e;
        if (sky_backend_parse(get(&p, "--backend"), &backend, &e)) return usage(argv0, "%s", e.msg);
        if (backend == SKY_BACKEND_CUDA && !sky_variant.has_cuda)
            return usage(argv0, "--backend cuda: %s was generated for the cpu target only (its spec's targets)",
                         sky_variant.name);
    } else {
        /* cuda where a GPU is present and the plugin loads, else cpu; $SKY_BACKEND overrides (dit.h) */
        char    note[1200];
        int     warn;
        sky_err e;
        if (sky_backend_default(sky_variant.name, sky_variant.has_cuda, &backend, note, sizeof note, &warn, &e))
            return usage(argv0, "%s", e.msg);
        if (note[0] && (!quiet || warn)) fprintf(stderr, "%s%s\n", warn ? "warning: " : "", note);
    }

    sky_gen_args a = {0};
    a.prompt = given(&p, "--prompt") ? get(&p, "--prompt") : (is_df() ? prompt_df : prompt_t2v);
    a.negative_prompt =
        given(&p, "--negative_prompt") ? get(&p, "--negative_prompt") : (is_df() ? negative_zh : negative_en);
    long long iv;
    double    dv;
    /* The original's 97 frames, or this binary's window when that is smaller (the tiny variants). */
    const int default_frames = sky_variant.base_num_frames < 97 ? sky_variant.base_num_frames : 97;
    struct {
        const char *name;
        int        *dst;
        long long   def, lo, hi;
    } ints[] = {
        {"--num_frames", &a.num_frames, default_frames, 1, 100000},
        {"--inference_steps", &a.inference_steps, sky_variant.steps, 1, 1000},
        {"--fps", &a.fps, 24, 1, 1000},
        {"--ar_step", &a.ar_step, 0, 0, 100000},
        {"--causal_block_size", &a.causal_block_size, 1, 1, 100000},
        {"--base_num_frames", &a.base_num_frames, default_frames, 1, 100000},
        {"--overlap_history", &a.overlap_history, 0, 1, 100000},
        {"--addnoise_condition", &a.addnoise_condition, 0, 0, 1000},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        *ints[i].dst = (int)ints[i].def;
        if (flag_index(ints[i].name) < 0 || !given(&p, ints[i].name)) continue;
        if (!to_int(get(&p, ints[i].name), ints[i].lo, ints[i].hi, &iv))
            return usage(argv0, "%s %s: must be an integer from %lld to %lld", ints[i].name, get(&p, ints[i].name),
                         ints[i].lo, ints[i].hi);
        *ints[i].dst = (int)iv;
    }
    a.offload = given(&p, "--offload");
    a.cfg_parallel = given(&p, "--use_cfg_parallel");
    a.resume_dir = get(&p, "--resume_dir");
    a.teacache = given(&p, "--teacache");
    if (a.resume_dir && a.teacache)
        return usage(argv0, "--resume_dir with --teacache: not supported (TeaCache's state spans the windows and is "
                            "not kept)");
    if (a.resume_dir && !make_parents_dir(a.resume_dir)) {
        fprintf(stderr, "%s: error: --resume_dir %s: cannot create it: %s\n", argv0, a.resume_dir, strerror(errno));
        return EXIT_FAIL;
    }
    if (a.resume_dir && access(a.resume_dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "%s: error: --resume_dir %s: cannot write into it: %s; give a folder you can write\n", argv0,
                a.resume_dir, strerror(errno));
        return EXIT_FAIL;
    }
    a.use_ret_steps = given(&p, "--use_ret_steps");
    a.teacache_thresh = 0.2;
    if (given(&p, "--teacache_thresh")) {
        if (!to_double(get(&p, "--teacache_thresh"), &dv) || !(dv > 0))
            return usage(argv0, "--teacache_thresh %s: must be a number > 0", get(&p, "--teacache_thresh"));
        a.teacache_thresh = dv;
    }
    if (a.teacache && !sky_variant.dit->has_teacache)
        return usage(argv0, "--teacache: variant %s has no TeaCache coefficients (its spec has no teacache section)",
                     sky_variant.name);
    a.guidance_scale = sky_variant.guidance;
    a.shift = sky_variant.shift;
    if (given(&p, "--guidance_scale")) {
        if (!to_double(get(&p, "--guidance_scale"), &dv) || dv < 0)
            return usage(argv0, "--guidance_scale %s: must be a number >= 0", get(&p, "--guidance_scale"));
        a.guidance_scale = dv;
    }
    if (given(&p, "--shift")) {
        if (!to_double(get(&p, "--shift"), &dv) || !(dv > 0) || dv > 1e6)
            return usage(argv0, "--shift %s: must be a number > 0", get(&p, "--shift"));
        a.shift = dv;
    }
    const char *seed_from = NULL;
    if (given(&p, "--seed")) {
        char *end;
        errno = 0;
        unsigned long long s = strtoull(get(&p, "--seed"), &end, 10);
        if (errno || *end || get(&p, "--seed")[0] == '-' || !get(&p, "--seed")[0])
            return usage(argv0, "--seed %s: must be an integer from 0 to 2^64-1", get(&p, "--seed"));
        a.seed = s;
    } else if (a.resume_dir && sky_resume_seed(a.resume_dir, &a.seed)) {
        seed_from = a.resume_dir; /* the interrupted run's (its first window file) */
    } else {
        /* Random, as the original's random.randrange(4294967294). */
        uint64_t s = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        int      fd = open("/dev/urandom", O_RDONLY);
        if (fd >= 0) {
            if (read(fd, &s, sizeof s) != (ssize_t)sizeof s) s ^= (uint64_t)clock();
            close(fd);
        }
        a.seed = s % 4294967294ull;
    }

    /* Size: this binary's, swapped for a portrait image / video. */
    a.height = sky_variant.height;
    a.width = sky_variant.width;
    if (given(&p, "--resolution")) {
        const char *r = get(&p, "--resolution");
        int         rh = 0, rw = 0;
        if (strcmp(r, "540P") == 0) {
            rh = 544;
            rw = 960;
        } else if (strcmp(r, "720P") == 0) {
            rh = 720;
            rw = 1280;
        } else if (sscanf(r, "%dx%d", &rh, &rw) != 2)
            return usage(argv0, "--resolution %s: must be 540P, 720P or HxW", r);
        if (!((rh == a.height && rw == a.width) || (rh == a.width && rw == a.height)))
            return usage(argv0,
                         "--resolution %s is %dx%d; this binary was generated for %dx%d (use the binary of "
                         "that resolution)",
                         r, rh, rw, a.height, a.width);
    }

    a.image = get(&p, "--image");
    if (is_df()) {
        a.end_image = get(&p, "--end_image");
        a.video_path = get(&p, "--video_path");
        if (a.video_path && !a.video_path[0]) a.video_path = NULL; /* the original's default '' */
    }
    const int i2v = sky_variant.dit->y_channels > 0;
    if (i2v && !a.image) return usage(argv0, "--image is required: %s is an image-to-video variant", sky_variant.name);
    if (!i2v && !is_df() && a.image)
        return usage(argv0, "--image needs an image-to-video (I2V) or diffusion-forcing variant; %s is text-to-video",
                     sky_variant.name);
    const char *files[] = {a.image, a.end_image, a.video_path};
    for (int i = 0; i < 3; i++)
        if (files[i] && !exists(files[i])) return usage(argv0, "%s: no such file", files[i]);
    if (a.image || a.video_path) {
        /* A portrait input (height > width) swaps the video's height and width (reference §7.1);
         * unlike the original's extension path, whose typo made it square (§11.9). */
        sky_err err;
        int     ih = 0, iw = 0;
        if (a.video_path) {
            sky_frames fr;
            if (sky_video_read(a.video_path, 1, 0, 0, &fr, &err)) {
                fprintf(stderr, "%s: error: %s\n", argv0, err.msg);
                return EXIT_FAIL;
            }
            ih = fr.height, iw = fr.width;
            sky_frames_free(&fr);
        } else {
            sky_image img;
            if (sky_image_read(a.image, &img, &err)) {
                fprintf(stderr, "%s: error: %s\n", argv0, err.msg);
                return EXIT_FAIL;
            }
            ih = img.height, iw = img.width;
            sky_image_free(&img);
        }
        if ((ih > iw) != (a.height > a.width)) {
            int t = a.height;
            a.height = a.width;
            a.width = t;
        }
    }

    /* Frame counts against this binary's window. */
    const int window = sky_variant.dit->max_frames;
    const int F = (a.num_frames - 1) / 4 + 1;
    if ((a.num_frames - 1) % 4 != 0 && !quiet)
        fprintf(stderr, "note: --num_frames %d is not 4k+1; the video will have %d frames\n", a.num_frames,
                4 * (F - 1) + 1);
    if (!is_df()) {
        if (F > window)
            return usage(argv0, "--num_frames %d gives %d latent frames; this binary's window is %d (%d frames)",
                         a.num_frames, F, window, sky_variant.base_num_frames);
    } else {
        const int Fb = (a.base_num_frames - 1) / 4 + 1, extra = a.end_image ? 1 : 0;
        const int long_video = a.overlap_history > 0 && (a.num_frames > a.base_num_frames || a.video_path);
        const int need = long_video ? Fb : F;
        if (need + extra > window)
            return usage(argv0, "%s %d gives windows of %d latent frames%s; this binary's window is %d (%d frames)%s",
                         long_video ? "--base_num_frames" : "--num_frames",
                         long_video ? a.base_num_frames : a.num_frames, need, extra ? " plus the end frame" : "",
                         window, sky_variant.base_num_frames,
                         long_video ? "" : "; for longer videos use --overlap_history");
        if (!a.video_path) {
            /* Every window and prefix against --causal_block_size etc. (forcing.c); an extension's
             * windows depend on the input video's length and are checked when it is read. */
            sky_df_request req = {a.num_frames,
                                  a.base_num_frames,
                                  a.overlap_history,
                                  a.causal_block_size,
                                  a.image != NULL,
                                  a.end_image != NULL,
                                  0};
            sky_df_plan    plan;
            sky_err        err;
            if (sky_df_plan_make(&req, &plan, &err)) return usage(argv0, "%s", err.msg);
        }
        if (a.addnoise_condition > 60 && !quiet)
            fprintf(stderr,
                    "warning: --addnoise_condition %d is above 60 (the original warns too; 20 is recommended)\n",
                    a.addnoise_condition);
    }

    /* Weights. */
    char        model_dir[4096] = "", dit_path[4096], vae_path[4096];
    const char *model_id = get(&p, "--model_id");
    if (model_id) {
        if (!is_dir(model_id))
            return usage(argv0,
                         "--model_id %s: no such directory (download the checkpoint, e.g. huggingface-cli "
                         "download <repo> --local-dir DIR, and pass DIR)",
                         model_id);
        snprintf(model_dir, sizeof model_dir, "%s", model_id);
    }
    a.dit_weights = get(&p, "--dit_weights");
    if (!a.dit_weights) {
        if (!model_dir[0]) return usage(argv0, "give --model_id DIR (or --dit_weights)");
        snprintf(dit_path, sizeof dit_path, "%s/transformer", model_dir);
        a.dit_weights = is_dir(dit_path) ? dit_path : model_dir;
    }
    a.vae_weights = get(&p, "--vae_weights");
    if (!a.vae_weights && model_dir[0] && sky_variant.vae_decode) {
        snprintf(vae_path, sizeof vae_path, "%s/vae", model_dir);
        if (is_dir(vae_path))
            a.vae_weights = vae_path;
        else {
            snprintf(vae_path, sizeof vae_path, "%s/Wan2.1_VAE.pth", model_dir);
            if (exists(vae_path)) a.vae_weights = vae_path;
        }
    }
    a.output_latents = get(&p, "--output_latents");
    if (!a.vae_weights && !a.output_latents)
        return usage(argv0,
                     "no VAE found (looked for %s/vae and %s/Wan2.1_VAE.pth): give --vae_weights, or "
                     "--output_latents to stop before the VAE",
                     model_dir[0] ? model_dir : "<model_id>", model_dir[0] ? model_dir : "<model_id>");
    a.prompt_embeds = get(&p, "--prompt_embeds");
    /* The encoders' files: flags first, then the original layout, then the diffusers layout. */
    static char t5_path[4096], tok_path[4096], clip_path[4096];
    struct {
        const char  *flag;
        const char **dst;
        char        *buf;
        const char  *orig, *diff;
    } enc[] = {
        {"--t5_weights", &a.text_weights, t5_path, "models_t5_umt5-xxl-enc-bf16.pth", "text_encoder"},
        {"--tokenizer", &a.tokenizer, tok_path, "google/umt5-xxl", "tokenizer"},
        {"--clip_weights", &a.clip_weights, clip_path, "models_clip_open-clip-xlm-roberta-large-vit-huge-14.pth",
         "image_encoder"},
    };
    for (size_t i = 0; i < sizeof enc / sizeof enc[0]; i++) {
        *enc[i].dst = get(&p, enc[i].flag);
        if (*enc[i].dst || !model_dir[0]) continue;
        snprintf(enc[i].buf, 4096, "%s/%s", model_dir, enc[i].orig);
        if (exists(enc[i].buf)) {
            *enc[i].dst = enc[i].buf;
            continue;
        }
        snprintf(enc[i].buf, 4096, "%s/%s", model_dir, enc[i].diff);
        if (exists(enc[i].buf)) *enc[i].dst = enc[i].buf;
    }
    if (!a.prompt_embeds && (!a.text_weights || !a.tokenizer || !sky_variant.text_encode))
        return usage(argv0,
                     "no text encoder found (the umT5 weights and tokenizer under --model_id, or --t5_weights "
                     "and --tokenizer); --prompt_embeds FILE gives the embeddings instead (context and context_null "
                     "[%d, %d]%s)",
                     sky_variant.dit->text_len, sky_variant.dit->text_dim, i2v ? " and clip_fea" : "");
    a.noise_file = get(&p, "--noise");
    a.quiet = quiet;
    a.backend = backend;
    a.interrupted = &interrupted;

    /* --prompt_enhancer: after every check, before anything is read or written; the output's default name keeps
     * the prompt as given, as the original's does. */
    const char *user_prompt = a.prompt;
    if (given(&p, "--prompt_enhancer") && enhance_prompt(argv0, &pe, quiet, &a.prompt)) return EXIT_FAIL;

    /* Output name. */
    char out[4096];
    if (given(&p, "--output"))
        snprintf(out, sizeof out, "%s", get(&p, "--output"));
    else if (!default_output(out, sizeof out,
                             given(&p, "--outdir") ? get(&p, "--outdir")
                                                   : (is_df() ? "diffusion_forcing" : "video_out"),
                             user_prompt, a.seed))
        return usage(argv0, "--outdir is too long");
    a.output = a.vae_weights ? out : NULL;
    if (a.output && !make_parents(a.output)) {
        fprintf(stderr, "%s: error: cannot create the directories of %s: %s\n", argv0, a.output, strerror(errno));
        return EXIT_FAIL;
    }
    char dir[4096];
    if (a.output && folder_writable(a.output, dir, sizeof dir) != 0) {
        fprintf(stderr, "%s: error: -o %s: cannot write into %s: %s; give an -o in a folder you can write\n", argv0,
                a.output, dir, strerror(errno));
        return EXIT_FAIL;
    }
    if (a.output_latents && folder_writable(a.output_latents, dir, sizeof dir) != 0) {
        fprintf(stderr, "%s: error: --output_latents %s: cannot write into %s: %s; give a folder you can write\n",
                argv0, a.output_latents, dir, strerror(errno));
        return EXIT_FAIL;
    }

    /* The run's parameters, for the mp4's metadata. */
    static char json[16384];
    size_t      k = 0;
    k += (size_t)snprintf(json + k, sizeof json - k, "{\"prompt\": ");
    k += json_str(json + k, sizeof json - k, a.prompt);
    k += (size_t)snprintf(json + k, sizeof json - k, ", \"negative_prompt\": ");
    k += json_str(json + k, sizeof json - k, a.negative_prompt);
    k += (size_t)snprintf(json + k, sizeof json - k,
                          ", \"seed\": %llu, \"num_frames\": %d, \"inference_steps\": %d, \"shift\": %g, "
                          "\"guidance_scale\": %g, \"fps\": %d, \"resolution\": \"%dx%d\", \"variant\": \"%s\", "
                          "\"spec_xxh64\": \"%s\"",
                          (unsigned long long)a.seed, a.num_frames, a.inference_steps, a.shift, a.guidance_scale, a.fps,
                          a.height, a.width, sky_variant.name, sky_variant.spec_xxh64);
    if (is_df())
        k += (size_t)snprintf(json + k, sizeof json - k,
                              ", \"ar_step\": %d, \"causal_block_size\": %d, "
                              "\"base_num_frames\": %d, \"overlap_history\": %d, \"addnoise_condition\": %d",
                              a.ar_step, a.causal_block_size, a.base_num_frames, a.overlap_history,
                              a.addnoise_condition);
    if (a.teacache)
        k += (size_t)snprintf(json + k, sizeof json - k, ", \"teacache_thresh\": %g, \"use_ret_steps\": %s",
                              a.teacache_thresh, a.use_ret_steps ? "true" : "false");
    if (a.prompt != user_prompt) { /* json_str with no room only measures */
        if (k + json_str(json + k, 0, user_prompt) + json_str(json + k, 0, pe.model) + 64 >= sizeof json)
            return usage(argv0, "--prompt is too long to be kept with its enhanced form in the run's metadata");
        k += (size_t)snprintf(json + k, sizeof json - k, ", \"original_prompt\": ");
        k += json_str(json + k, sizeof json - k, user_prompt);
        k += (size_t)snprintf(json + k, sizeof json - k, ", \"prompt_enhancer_model\": ");
        k += json_str(json + k, sizeof json - k, pe.model);
    }
    snprintf(json + k, sizeof json - k, "}");
    a.args_json = json;

    if (!quiet)
        fprintf(stderr, "seed: %llu%s%s%s\n", (unsigned long long)a.seed,
                seed_from ? " (the seed of the run kept in " : "", seed_from ? seed_from : "", seed_from ? ")" : "");
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    sky_err err;
    if (sky_pipeline_run(&sky_variant, &a, &err) != SKY_OK) {
        if (interrupted) {
            fprintf(stderr, "\n%s: interrupted; nothing was written\n", argv0);
            return interrupted == SIGTERM ? 143 : 130;
        }
        fprintf(stderr, "%s: error: %s\n", argv0, err.msg);
        return EXIT_FAIL;
    }
    if (a.output) printf("%s\n", a.output);
    return 0;
}
