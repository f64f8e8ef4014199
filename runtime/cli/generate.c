/* runtime/cli/generate.c — the generation command line of a variant binary (cli.h), with the flags of the
 * original generate_video.py / generate_video_df.py (args.c; reference dit-and-sampling.md §10 and
 * conventions-and-reliability.md §1.1, §1.6).
 *
 * Every flag is checked, and every combination the run cannot honour is refused, before any weight is read:
 * usage errors exit 2 with a message naming the flag and the rule. Flags of the original that this engine does
 * not implement yet are refused by name, never ignored. The steps below run in order, each returning
 * SKY_CLI_GO_ON or the exit code of the error it printed; then the pipeline runs.
 */
#include "cli/cli.h"
#include "cli/ranks.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cli/args.h"
#include "cli/checkpoints.h"
#include "core/fs.h"
#include "core/json.h"
#include "cli/summary.h"
#include "dist/usp_cuda.h"
#include "models/cuda_plugin.h"
#include "models/dit.h"
#include "models/latent.h"
#include "models/lora.h"
#include "models/vae.h"
#include "net/http.h"
#include "net/prompt_enhancer.h"
#include "pipeline/forcing.h"
#include "pipeline/pipeline.h"
#include "pipeline/resume.h"
#include "video/video.h"

/* The command line's state: the flags, the run's arguments and the buffers they point into. */
typedef struct gen {
    const char         *argv0;
    sky_cli_flags       f;
    int                 quiet;
    sky_backend         backend;
    sky_gen_args        a;
    const char         *seed_from; /* the --resume_dir the seed was read from */
    sky_df_plan         df_plan;   /* DF without --video_path: the windows checked here, handed to the run */
    sky_cli_paths       paths;     /* checkpoints found under --model_id */
    char                out[4096]; /* the mp4's name */
    char               *json;      /* the run's parameters (describe_run; freed at the end) */
    sky_lora_spec       loras[SKY_CLI_MAX_LORAS];
    sky_prompt_enhancer pe;
    const char         *user_prompt; /* the prompt as given (a->prompt becomes the enhanced one) */
    char                enhanced[SKY_PROMPT_ENHANCER_MAX_PROMPT + 1];
    sky_usp            *usp; /* --use_usp: the ranks (cli/ranks.h); NULL: one process */
} gen;

/* 1 on the rank that prints the progress and writes the outputs: rank 0, or the only process. */
static int writes(const gen *g) { return !g->usp || sky_usp_world_rank(g->usp) == 0; }

/* The first of SIGINT, SIGTERM and SIGHUP received (run: sigaction). */
static volatile sig_atomic_t interrupted;
static void                  on_signal(int sig)
{
    if (!interrupted) interrupted = sig;
}

/* ---- files ---------------------------------------------------------------------------------- */

/* mkdir -p of the folder that holds file path (nothing when path names no folder). */
static sky_status make_parents(const char *path, sky_err *err)
{
    char dir[4096];
    if ((size_t)snprintf(dir, sizeof dir, "%s", path) >= sizeof dir) return sky_fail(err, "the path is too long");
    char *slash = strrchr(dir, '/');
    if (!slash || slash == dir) return SKY_OK;
    *slash = '\0';
    return sky_fs_mkdirs(dir, err);
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

/* ---- the steps ---------------------------------------------------------------------------- */

/* Flags of the original that are refused by name, TeaCache's flags without --teacache, and prompts that are not
 * valid UTF-8 (the tokenizer, the output's name and the mp4's JSON need text; refused before anything is made). */
static int refuse_flags(gen *g)
{
    static const char *const texts[] = {"--prompt", "--negative_prompt"};
    for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
        const char  *s = sky_cli_flag_given(&g->f, texts[i]) ? sky_cli_flag(&g->f, texts[i]) : NULL;
        const size_t n = s ? strlen(s) : 0, ok = s ? sky_utf8_check(s, n) : 0;
        if (ok < n)
            return sky_cli_usage(g->argv0,
                                 "%s: not valid UTF-8 (byte %zu of %zu, 0x%02x, starts an invalid or truncated "
                                 "sequence); give the text in UTF-8",
                                 texts[i], ok + 1, n, (unsigned char)s[ok]);
    }
    static const char *const refused[] = {"--causal_attention"};
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++)
        if (sky_cli_flag_given(&g->f, refused[i]))
            return sky_cli_usage(g->argv0, "%s: %s", refused[i], sky_cli_flag_help(refused[i]));
    if (!sky_cli_flag_given(&g->f, "--teacache") && sky_cli_flag_given(&g->f, "--teacache_thresh"))
        return sky_cli_usage(g->argv0, "--teacache_thresh applies only with --teacache");
    if (!sky_cli_flag_given(&g->f, "--teacache") && sky_cli_flag_given(&g->f, "--use_ret_steps"))
        return sky_cli_usage(g->argv0, "--use_ret_steps applies only with --teacache");
    return SKY_CLI_GO_ON;
}

/* The prompt enhancer's settings: --prompt_enhancer_url, else $SKY_PROMPT_ENHANCER_URL, else the default; the
 * key only from $SKY_PROMPT_ENHANCER_API_KEY (a command line shows in ps). Its flags without --prompt_enhancer,
 * and the runs it cannot serve, are refused. */
static int read_enhancer(gen *g)
{
    static const char *const own[] = {"--prompt_enhancer_url", "--prompt_enhancer_model", "--prompt_enhancer_timeout"};
    const sky_cli_flags     *f = &g->f;
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        if (sky_cli_flag_given(f, own[i]) && !sky_cli_flag_given(f, "--prompt_enhancer"))
            return sky_cli_usage(g->argv0, "%s applies only with --prompt_enhancer", own[i]);
    if (!sky_cli_flag_given(f, "--prompt_enhancer")) return SKY_CLI_GO_ON;
    if (!sky_http_available()) return sky_cli_usage(g->argv0, "--prompt_enhancer: %s", sky_http_client());
    if (sky_cli_flag_given(f, "--image"))
        return sky_cli_usage(g->argv0,
                             "--prompt_enhancer with --image: the model would rewrite the prompt without seeing the "
                             "image (the original enhances text-to-video prompts only); pass a prompt of your own");
    if (sky_cli_flag_given(f, "--prompt_embeds"))
        return sky_cli_usage(g->argv0,
                             "--prompt_enhancer with --prompt_embeds: the embeddings replace the prompt's encoding, "
                             "so the enhanced prompt would not be used");
    if (sky_cli_flag_given(f, "--resume_dir"))
        return sky_cli_usage(g->argv0,
                             "--prompt_enhancer with --resume_dir: the server may rewrite the prompt differently "
                             "when the run continues, and the kept windows would not match; enhance the prompt "
                             "first (docs/prompt_enhancer.md shows how) and pass it with --prompt");
    sky_prompt_enhancer *pe = &g->pe;
    const char          *env = getenv(SKY_PROMPT_ENHANCER_URL_ENV);
    const int            from_env = !sky_cli_flag_given(f, "--prompt_enhancer_url") && env && env[0];
    pe->url = sky_cli_flag_given(f, "--prompt_enhancer_url") ? sky_cli_flag(f, "--prompt_enhancer_url")
              : from_env                                     ? env
                                                             : SKY_PROMPT_ENHANCER_URL;
    pe->model = sky_cli_flag_given(f, "--prompt_enhancer_model") ? sky_cli_flag(f, "--prompt_enhancer_model")
                                                                 : SKY_PROMPT_ENHANCER_MODEL;
    pe->api_key = getenv(SKY_PROMPT_ENHANCER_KEY_ENV);
    pe->timeout_s = SKY_PROMPT_ENHANCER_TIMEOUT_S;
    long long t;
    if (sky_cli_flag_given(f, "--prompt_enhancer_timeout")) {
        if (!sky_cli_to_int(sky_cli_flag(f, "--prompt_enhancer_timeout"), 1, 3600, &t))
            return sky_cli_usage(g->argv0, "--prompt_enhancer_timeout %s: must be an integer from 1 to 3600 (seconds)",
                                 sky_cli_flag(f, "--prompt_enhancer_timeout"));
        pe->timeout_s = (int)t;
    }
    sky_err e;
    if (sky_prompt_enhancer_check(pe, &e))
        return sky_cli_usage(g->argv0, "%s%s", from_env ? "$" SKY_PROMPT_ENHANCER_URL_ENV ": " : "", e.msg);
    return SKY_CLI_GO_ON;
}

/* The CPU throughput the estimate below assumes: a generous figure for the CPU backend (fp32, OpenMP) on a
 * many-core machine, so that the estimate is a lower bound. */
#define SKY_CLI_CPU_GFLOPS 100.0

/* Without a GPU (or a cuda target), a variant whose run at its defaults would take the CPU over an hour is
 * refused unless the CPU backend is asked for: the estimate is the transformer's FLOPs per forward at the full
 * window (sky_dit_program.flops) x the default steps x 2 (guidance's uncond pass) / SKY_CLI_CPU_GFLOPS. */
static int refuse_slow_cpu(gen *g)
{
    const double forwards = sky_variant.steps * (sky_variant.guidance > 1.0 ? 2.0 : 1.0);
    const double seconds = sky_variant.dit->flops * forwards / (SKY_CLI_CPU_GFLOPS * 1e9);
    if (seconds <= 3600.0) return SKY_CLI_GO_ON;
    return sky_cli_usage(g->argv0,
                         "no GPU: %s on the CPU backend would take about %.0f hours for one window at the defaults "
                         "(%.0f forwards of %.1f TFLOP at an assumed %.0f GFLOP/s); pass --backend cpu to run it "
                         "anyway, or run on a machine with a GPU",
                         sky_variant.name, seconds / 3600.0, forwards, sky_variant.dit->flops / 1e12,
                         SKY_CLI_CPU_GFLOPS);
}

/* --use_usp (cli/ranks.h, the ranks started by sky_cli_generate): a rank count the heads allow, --seed (every rank
 * draws the same noise, as the original requires), and what it does not combine with yet. */
static int check_usp(gen *g)
{
    if (!g->usp) return SKY_CLI_GO_ON;
    sky_err e;
    if (sky_cli_flag_given(&g->f, "--use_cfg_parallel") && sky_usp_split_cfg(g->usp, &e)) /* two groups of N ranks */
        return sky_cli_usage(g->argv0, "%s", e.msg);
    if (sky_cli_flag_given(&g->f, "--resume_dir"))
        return sky_cli_usage(g->argv0, "--use_usp with --resume_dir: not supported yet (one rank would have to keep "
                                       "the windows for all); drop one of them");
    if (!sky_cli_flag_given(&g->f, "--seed"))
        return sky_cli_usage(g->argv0, "--use_usp needs --seed (every rank draws the same noise from it, as the "
                                       "original requires)");
    const sky_comm *c = sky_usp_comm(g->usp); /* N = 1 (CFG axis on 2 ranks): the plain program, no token split */
    if ((c->cfg_group < 0 || c->size > 1) && sky_dit_usp_check(sky_variant.dit, c->size, &e))
        return sky_cli_usage(g->argv0, "%s", e.msg);
    return SKY_CLI_GO_ON;
}

/* --backend, else cuda where a GPU is present and the plugin loads, else cpu ($SKY_BACKEND overrides; dit.h);
 * --use_usp: cpu unless --backend cuda. */
static int choose_backend(gen *g)
{
    g->backend = SKY_BACKEND_CPU;
    if (g->usp && !sky_cli_flag_given(&g->f, "--backend")) return SKY_CLI_GO_ON;
    if (sky_cli_flag_given(&g->f, "--backend")) {
        sky_err e;
        if (sky_backend_parse(sky_cli_flag(&g->f, "--backend"), &g->backend, &e))
            return sky_cli_usage(g->argv0, "%s", e.msg);
        if (g->backend == SKY_BACKEND_CUDA && !sky_variant.has_cuda)
            return sky_cli_usage(g->argv0,
                                 "--backend cuda: %s was generated for the cpu target only (its spec's targets)",
                                 sky_variant.name);
        return g->backend == SKY_BACKEND_CUDA && sky_cli_selftest_gate(g->argv0, g->quiet) ? SKY_CLI_EXIT_FAIL
                                                                                           : SKY_CLI_GO_ON;
    }
    char    note[1200];
    int     warn;
    sky_err e;
    if (sky_backend_default(sky_variant.name, sky_variant.has_cuda, &g->backend, note, sizeof note, &warn, &e))
        return sky_cli_usage(g->argv0, "%s", e.msg);
    if (note[0] && (!g->quiet || warn)) fprintf(stderr, "%s%s\n", warn ? "warning: " : "", note);
    const char *env = getenv("SKY_BACKEND");
    if (g->backend == SKY_BACKEND_CPU && !warn && !(env && *env)) return refuse_slow_cpu(g);
    return g->backend == SKY_BACKEND_CUDA && sky_cli_selftest_gate(g->argv0, g->quiet) ? SKY_CLI_EXIT_FAIL
                                                                                       : SKY_CLI_GO_ON;
}

/* The prompts and the integer flags (the original's 97 frames, or this binary's window when that is smaller:
 * the tiny variants). */
static int read_numbers(gen *g)
{
    sky_gen_args *a = &g->a;
    a->prompt = sky_cli_flag_given(&g->f, "--prompt") ? sky_cli_flag(&g->f, "--prompt") : sky_cli_default_prompt();
    a->negative_prompt = sky_cli_flag_given(&g->f, "--negative_prompt") ? sky_cli_flag(&g->f, "--negative_prompt")
                                                                        : sky_cli_default_negative_prompt();
    const int default_frames = sky_variant.base_num_frames < 97 ? sky_variant.base_num_frames : 97;
    struct {
        const char *name;
        int        *dst;
        long long   def, lo, hi;
    } ints[] = {
        {"--num_frames", &a->num_frames, default_frames, 1, 100000},
        {"--inference_steps", &a->inference_steps, sky_variant.steps, 1, 1000},
        {"--fps", &a->fps, 24, 1, 1000},
        {"--ar_step", &a->ar_step, 0, 0, 100000},
        {"--causal_block_size", &a->causal_block_size, 1, 1, 100000},
        {"--base_num_frames", &a->base_num_frames, default_frames, 1, 100000},
        {"--overlap_history", &a->overlap_history, 0, 1, 100000},
        {"--addnoise_condition", &a->addnoise_condition, 0, 0, 1000},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        long long v;
        *ints[i].dst = (int)ints[i].def;
        if (!sky_cli_flag_given(&g->f, ints[i].name)) continue;
        if (!sky_cli_to_int(sky_cli_flag(&g->f, ints[i].name), ints[i].lo, ints[i].hi, &v))
            return sky_cli_usage(g->argv0, "%s %s: must be an integer from %lld to %lld", ints[i].name,
                                 sky_cli_flag(&g->f, ints[i].name), ints[i].lo, ints[i].hi);
        *ints[i].dst = (int)v;
    }
    return SKY_CLI_GO_ON;
}

/* --offload, --use_cfg_parallel, --resume_dir (created now) and TeaCache's flags. */
static int read_options(gen *g)
{
    sky_gen_args *a = &g->a;
    double        dv;
    a->offload = sky_cli_flag_given(&g->f, "--offload");
    if (sky_cli_flag_given(&g->f, "--offload_blocks")) {
        const char *v = sky_cli_flag(&g->f, "--offload_blocks");
        char       *end;
        const long  n = strtol(v, &end, 10);
        if (strcmp(v, "auto") == 0)
            a->offload_blocks = -1;
        else if (*v && !*end && n >= 0 && n <= 100000)
            a->offload_blocks = (int)n;
        else
            return sky_cli_usage(g->argv0, "--offload_blocks %s: want a block count (0: off) or auto", v);
    }
    a->vae_tiling = sky_cli_flag_given(&g->f, "--vae_tiling");
    a->vae_tile_px = 256, a->vae_tile_stride_px = 192;
    if (sky_cli_flag_given(&g->f, "--vae_tile_size")) {
        const char *v = sky_cli_flag(&g->f, "--vae_tile_size");
        char        sep = 0, end = 0;
        if (!a->vae_tiling) return sky_cli_usage(g->argv0, "--vae_tile_size applies only with --vae_tiling");
        if (sscanf(v, "%d%c%d%c", &a->vae_tile_px, &sep, &a->vae_tile_stride_px, &end) != 3 || sep != ':' ||
            a->vae_tile_stride_px <= 0 || a->vae_tile_stride_px > a->vae_tile_px ||
            a->vae_tile_px % sky_variant.vae_stride_s || a->vae_tile_stride_px % sky_variant.vae_stride_s)
            return sky_cli_usage(g->argv0,
                                 "--vae_tile_size %s: want TILE:STRIDE in pixels, multiples of %d, 0 < STRIDE <= TILE",
                                 v, sky_variant.vae_stride_s);
    }
    const sky_vae_program *dec = sky_variant.vae_decode;
    const sky_vae_tiling   tiling = {a->vae_tile_px, a->vae_tile_stride_px};
    if (a->vae_tiling && g->backend == SKY_BACKEND_CUDA && dec &&
        (dec->lat_h > a->vae_tile_px / dec->stride_s || dec->lat_w > a->vae_tile_px / dec->stride_s) &&
        sky_vae_tiled_program(&sky_variant, &tiling) == dec)
        return sky_cli_usage(
            g->argv0,
            "--vae_tiling: on the CUDA backend the tiles are decoded by the variant's vae_decode_tile, "
            "%s%d pixels (the spec's vae.tile_px): use a --vae_tile_size TILE of at most that, or "
            "--backend cpu",
            sky_variant.vae_decode_tile ? "generated for tiles of up to " : "absent: its frame fits a tile of ",
            sky_variant.vae_decode_tile ? sky_variant.vae_decode_tile->tile * dec->stride_s
                                        : (dec->lat_h > dec->lat_w ? dec->lat_h : dec->lat_w) * dec->stride_s);
    a->cfg_parallel = sky_cli_flag_given(&g->f, "--use_cfg_parallel") && !g->usp; /* --use_usp: the CFG axis */
    a->resume_dir = sky_cli_flag(&g->f, "--resume_dir");
    a->teacache = sky_cli_flag_given(&g->f, "--teacache");
    if (a->resume_dir && a->teacache)
        return sky_cli_usage(g->argv0, "--resume_dir with --teacache: not supported (TeaCache's state spans the "
                                       "windows and is not kept)");
    sky_err de;
    if (a->resume_dir && sky_fs_mkdirs(a->resume_dir, &de)) {
        fprintf(stderr, "%s: error: --resume_dir %s: %s\n", g->argv0, a->resume_dir, de.msg);
        return SKY_CLI_EXIT_FAIL;
    }
    if (a->resume_dir && access(a->resume_dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "%s: error: --resume_dir %s: cannot write into it: %s; give a folder you can write\n", g->argv0,
                a->resume_dir, strerror(errno));
        return SKY_CLI_EXIT_FAIL;
    }
    a->use_ret_steps = sky_cli_flag_given(&g->f, "--use_ret_steps");
    a->teacache_thresh = 0.2;
    if (sky_cli_flag_given(&g->f, "--teacache_thresh")) {
        if (!sky_cli_to_double(sky_cli_flag(&g->f, "--teacache_thresh"), &dv) || !(dv > 0))
            return sky_cli_usage(g->argv0, "--teacache_thresh %s: must be a number > 0",
                                 sky_cli_flag(&g->f, "--teacache_thresh"));
        a->teacache_thresh = dv;
    }
    if (a->teacache && !sky_variant.dit->has_teacache)
        return sky_cli_usage(g->argv0,
                             "--teacache: variant %s has no TeaCache coefficients (its spec has no teacache section)",
                             sky_variant.name);
    return SKY_CLI_GO_ON;
}

/* --sample_solver, --lora (the files are read before the first step: models/lora.h), --guidance_scale and
 * --shift (the spec's defaults). */
static int read_sampler(gen *g)
{
    double  dv;
    sky_err le;
    if (sky_cli_flag_given(&g->f, "--sample_solver") &&
        sky_solver_parse(sky_cli_flag(&g->f, "--sample_solver"), &g->a.solver, &le))
        return sky_cli_usage(g->argv0, "%s", le.msg);
    for (int i = 0; i < g->f.n_lora; i++) {
        if (sky_lora_parse_arg(g->f.lora[i], &g->loras[i], &le)) return sky_cli_usage(g->argv0, "%s", le.msg);
        if (!sky_cli_path_exists(g->loras[i].path))
            return sky_cli_usage(g->argv0, "--lora %s: no such file", g->f.lora[i]);
    }
    g->a.loras = g->loras;
    g->a.n_loras = g->f.n_lora;
    if (sky_cli_flag_given(&g->f, "--lora_unknown_keys")) {
        const char *u = sky_cli_flag(&g->f, "--lora_unknown_keys");
        if (!g->f.n_lora) return sky_cli_usage(g->argv0, "--lora_unknown_keys applies only with --lora");
        if (strcmp(u, "warn") != 0 && strcmp(u, "error") != 0)
            return sky_cli_usage(g->argv0, "--lora_unknown_keys %s: must be error or warn", u);
        g->a.lora_skip_unknown = strcmp(u, "warn") == 0;
    }
    if (sky_cli_flag_given(&g->f, "--weight_dtype")) {
        const char *u = sky_cli_flag(&g->f, "--weight_dtype");
        if (strcmp(u, "fp8") != 0 && strcmp(u, "checkpoint") != 0)
            return sky_cli_usage(g->argv0, "--weight_dtype %s: must be checkpoint or fp8", u);
        g->a.weight_fp8 = strcmp(u, "fp8") == 0;
    }
    g->a.guidance_scale = sky_variant.guidance;
    g->a.shift = sky_variant.shift;
    if (sky_cli_flag_given(&g->f, "--guidance_scale")) {
        if (!sky_cli_to_double(sky_cli_flag(&g->f, "--guidance_scale"), &dv) || dv < 0)
            return sky_cli_usage(g->argv0, "--guidance_scale %s: must be a number >= 0",
                                 sky_cli_flag(&g->f, "--guidance_scale"));
        g->a.guidance_scale = dv;
    }
    if (sky_cli_flag_given(&g->f, "--shift")) {
        if (!sky_cli_to_double(sky_cli_flag(&g->f, "--shift"), &dv) || !(dv > 0) || dv > 1e6)
            return sky_cli_usage(g->argv0, "--shift %s: must be a number > 0", sky_cli_flag(&g->f, "--shift"));
        g->a.shift = dv;
    }
    return SKY_CLI_GO_ON;
}

/* --seed, else the seed of the run kept in --resume_dir, else random as the original's
 * random.randrange(4294967294). */
static int choose_seed(gen *g)
{
    const char *s = sky_cli_flag(&g->f, "--seed");
    if (s && strcmp(s, "-1") == 0) s = NULL; /* the original's -1: a random seed (drawn below, printed) */
    if (s) {
        char *end;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || s[0] == '-' || !s[0])
            return sky_cli_usage(g->argv0, "--seed %s: must be an integer from 0 to 2^64-1", s);
        g->a.seed = v;
    } else if (g->a.resume_dir && sky_resume_seed(g->a.resume_dir, &g->a.seed)) {
        g->seed_from = g->a.resume_dir; /* the interrupted run's (its first window file) */
    } else {
        uint64_t r = (uint64_t)time(NULL) ^ ((uint64_t)getpid() << 32);
        int      fd = open("/dev/urandom", O_RDONLY);
        if (fd >= 0) {
            if (read(fd, &r, sizeof r) != (ssize_t)sizeof r) r ^= (uint64_t)clock();
            close(fd);
        }
        g->a.seed = r % 4294967294ull;
    }
    return SKY_CLI_GO_ON;
}

/* The size: this binary's; --resolution may only name it, or its portrait as HxW (the transposed size: the
 * same tokens, so the same program; a portrait video, as a portrait image gives). An --image or --video_path
 * still decides the orientation (orient below), as in the original. */
static int check_resolution(gen *g)
{
    sky_gen_args *a = &g->a;
    a->height = sky_variant.height;
    a->width = sky_variant.width;
    const char *r = sky_cli_flag(&g->f, "--resolution");
    if (!r) return SKY_CLI_GO_ON;
    int rh = 0, rw = 0;
    if (strcmp(r, "540P") == 0) {
        rh = 544;
        rw = 960;
    } else if (strcmp(r, "720P") == 0) {
        rh = 720;
        rw = 1280;
    } else if (sscanf(r, "%dx%d", &rh, &rw) != 2)
        return sky_cli_usage(g->argv0, "--resolution %s: must be 540P, 720P or HxW", r);
    if (!((rh == a->height && rw == a->width) || (rh == a->width && rw == a->height)))
        return sky_cli_usage(g->argv0,
                             "--resolution %s is %dx%d; this binary was generated for %dx%d (use the binary of "
                             "that resolution)",
                             r, rh, rw, a->height, a->width);
    a->height = rh;
    a->width = rw;
    return SKY_CLI_GO_ON;
}

/* A portrait input (height > width) swaps the video's height and width (reference §7.1); unlike the
 * original's extension path, whose typo made it square (§11.9). The image or the video's first frame is
 * read for its size. */
static int orient(gen *g)
{
    sky_gen_args *a = &g->a;
    sky_err       err;
    int           ih = 0, iw = 0;
    if (a->video_path) {
        sky_frames fr;
        if (sky_video_read(a->video_path, 1, 0, 0, &fr, &err)) {
            fprintf(stderr, "%s: error: %s\n", g->argv0, err.msg);
            return SKY_CLI_EXIT_FAIL;
        }
        ih = fr.height, iw = fr.width;
        sky_frames_free(&fr);
    } else {
        sky_image img;
        if (sky_image_read(a->image, &img, &err)) {
            fprintf(stderr, "%s: error: %s\n", g->argv0, err.msg);
            return SKY_CLI_EXIT_FAIL;
        }
        ih = img.height, iw = img.width;
        sky_image_free(&img);
    }
    if ((ih > iw) != (a->height > a->width)) {
        const int t = a->height;
        a->height = a->width;
        a->width = t;
    }
    return SKY_CLI_GO_ON;
}

/* --image (required by I2V, refused by T2V), --end_image (DF; required by FLF2V) and --video_path (DF): they
 * exist; the video's orientation from them. */
static int read_inputs(gen *g)
{
    sky_gen_args *a = &g->a;
    a->image = sky_cli_flag(&g->f, "--image");
    if (sky_cli_is_df() || sky_cli_is_flf2v()) a->end_image = sky_cli_flag(&g->f, "--end_image");
    if (sky_cli_is_df()) {
        a->video_path = sky_cli_flag(&g->f, "--video_path");
        if (a->video_path && !a->video_path[0]) a->video_path = NULL; /* the original's default '' */
    }
    const int i2v = sky_variant.dit->y_channels > 0;
    if (i2v && !a->image)
        return sky_cli_usage(g->argv0, "--image is required: %s is an image-to-video variant", sky_variant.name);
    if (sky_cli_is_flf2v() && !a->end_image)
        return sky_cli_usage(g->argv0, "--end_image is required: %s is a first-last-frame (FLF2V) variant",
                             sky_variant.name);
    if (!i2v && !sky_cli_is_df() && a->image)
        return sky_cli_usage(g->argv0,
                             "--image needs an image-to-video (I2V) or diffusion-forcing variant; %s is text-to-video",
                             sky_variant.name);
    const char *files[] = {a->image, a->end_image, a->video_path};
    for (int i = 0; i < 3; i++)
        if (files[i] && !sky_cli_path_exists(files[i])) return sky_cli_usage(g->argv0, "%s: no such file", files[i]);
    return a->image || a->video_path ? orient(g) : SKY_CLI_GO_ON;
}

/* Frame counts against this binary's window (in latent frames: models/latent.h); for DF without --video_path
 * every window and prefix against --causal_block_size etc. (forcing.c): the plan the run is handed. An
 * extension's windows depend on the input video's length and are checked when it is read. */
static int check_frames(gen *g)
{
    sky_gen_args *a = &g->a;
    const int     window = sky_variant.dit->max_frames, st = sky_variant.vae_stride_t;
    const int     F = sky_latent_frames(a->num_frames, st);
    if (sky_latent_video_frames(F, st) != a->num_frames && !g->quiet)
        fprintf(stderr, "note: --num_frames %d is not 4k+1; the video will have %d frames\n", a->num_frames,
                sky_latent_video_frames(F, st));
    if (!sky_cli_is_df()) {
        if (F > window)
            return sky_cli_usage(g->argv0,
                                 "--num_frames %d gives %d latent frames; this binary's window is %d (%d frames)",
                                 a->num_frames, F, window, sky_variant.base_num_frames);
        return SKY_CLI_GO_ON;
    }
    const int Fb = sky_latent_frames(a->base_num_frames, st), extra = a->end_image ? 1 : 0;
    const int long_video = a->overlap_history > 0 && (a->num_frames > a->base_num_frames || a->video_path);
    const int need = long_video ? Fb : F;
    if (need + extra > window)
        return sky_cli_usage(g->argv0,
                             "%s %d gives windows of %d latent frames%s; this binary's window is %d (%d "
                             "frames)%s",
                             long_video ? "--base_num_frames" : "--num_frames",
                             long_video ? a->base_num_frames : a->num_frames, need, extra ? " plus the end frame" : "",
                             window, sky_variant.base_num_frames,
                             long_video ? "" : "; for longer videos use --overlap_history");
    if (!a->video_path) {
        sky_err err;
        if (sky_pipeline_df_plan(&sky_variant, a, 0, &g->df_plan, &err)) return sky_cli_usage(g->argv0, "%s", err.msg);
        a->df_plan = &g->df_plan;
    }
    if (a->addnoise_condition > 60 && !g->quiet)
        fprintf(stderr, "warning: --addnoise_condition %d is above 60 (the original warns too; 20 is recommended)\n",
                a->addnoise_condition);
    return SKY_CLI_GO_ON;
}

/* The checkpoints (checkpoints.c) and the remaining run arguments. */
static int find_checkpoints(gen *g)
{
    sky_gen_args *a = &g->a;
    a->output_latents = sky_cli_flag(&g->f, "--output_latents");
    a->prompt_embeds = sky_cli_flag(&g->f, "--prompt_embeds");
    const int rc = sky_cli_checkpoints_find(g->argv0, &g->f, a, &g->paths);
    a->noise_file = sky_cli_flag(&g->f, "--noise");
    a->quiet = g->quiet;
    a->backend = g->backend;
    a->interrupted = &interrupted;
    return rc;
}

/* --prompt_enhancer: after every check, before anything is read or written; a->prompt becomes the server's
 * answer (the output's default name keeps the prompt as given, as the original's does). */
static int enhance_prompt(gen *g)
{
    g->user_prompt = g->a.prompt;
    if (!sky_cli_flag_given(&g->f, "--prompt_enhancer")) return SKY_CLI_GO_ON;
    char   *text;
    int     cut;
    sky_err err;
    if (!g->quiet) fprintf(stderr, "prompt enhancer: asking %s at %s\n", g->pe.model, g->pe.url);
    if (sky_prompt_enhance(&g->pe, g->a.prompt, &text, &cut, &err)) {
        fprintf(stderr, "%s: error: %s\n", g->argv0, err.msg);
        return SKY_CLI_EXIT_FAIL;
    }
    snprintf(g->enhanced, sizeof g->enhanced, "%s", text);
    free(text);
    if (cut)
        fprintf(stderr,
                "warning: the prompt enhancer's answer stopped at its limit of %d tokens (it may end "
                "mid-sentence)\n",
                SKY_PROMPT_ENHANCER_MAX_TOKENS);
    if (!g->quiet) fprintf(stderr, "enhanced prompt: %s\n", g->enhanced);
    g->a.prompt = g->enhanced;
    return SKY_CLI_GO_ON;
}

/* The original's output name: result/<outdir>/<prompt[:100] without '/'>_<seed>_<time>.mp4 (<outdir>/... when
 * --outdir is absolute), with
 * the prompt cut to 100 characters and then to at most 200 bytes on a UTF-8 boundary (100 CJK
 * characters are 300 bytes: the original's name could exceed NAME_MAX and fail after the run). */
static int default_output(char *buf, size_t n, const char *outdir, const char *prompt, uint64_t seed)
{
    char   stem[256];
    size_t k = 0;
    int    chars = 0;
    for (const unsigned char *c = (const unsigned char *)prompt; *c && chars < 100;) {
        size_t len = *c < 0x80 ? 1 : (*c >> 5) == 6 ? 2 : (*c >> 4) == 14 ? 3 : (*c >> 3) == 30 ? 4 : 1;
        /* a character cut at the end or not valid UTF-8 ends the name: never read past the NUL, never take a
         * '/' from inside a sequence (the prompt is checked before, so only a defence) */
        if (strnlen((const char *)c, len) < len || sky_utf8_check((const char *)c, len) != len) break;
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
    const char *root = outdir[0] == '/' ? "" : "result/"; /* an absolute --outdir is used as given */
    return snprintf(buf, n, "%s%s/%s_%llu_%s.mp4", root, outdir, stem, (unsigned long long)seed, when) < (int)n;
}

/* The temporary files an earlier run killed by SIGKILL or a crash left beside this run's outputs (core/fs.h:
 * ".<name>.sky-<pid>.XXXXXX" of a process that is gone), and in --resume_dir. */
static int remove_stale_temps(gen *g)
{
    const char *outs[3] = {g->a.output, g->a.output_latents, g->a.resume_dir};
    for (int i = 0; i < 3; i++) {
        if (!outs[i]) continue;
        char        dir[4096];
        const char *base = sky_fs_base_name(outs[i]);
        snprintf(dir, sizeof dir, "%.*s", base == outs[i] ? 1 : (int)(base - outs[i]), base == outs[i] ? "." : outs[i]);
        int     removed = 0;
        sky_err err;
        if (sky_fs_remove_stale_temps(i == 2 ? outs[i] : dir, i == 2 ? NULL : base, &removed, &err)) {
            fprintf(stderr, "%s: error: %s\n", g->argv0, err.msg);
            return SKY_CLI_EXIT_FAIL;
        }
        if (removed && !g->quiet)
            fprintf(stderr, "removed %d temporary file%s left by an earlier run that was killed, beside %s\n", removed,
                    removed > 1 ? "s" : "", outs[i]);
    }
    return SKY_CLI_GO_ON;
}

/* The mp4's name (-o, else the original's under --outdir) and its directories (none without a VAE), then -o's and
 * --output_latents's folders checked writable. */
static int name_output(gen *g)
{
    sky_gen_args *a = &g->a;
    if (!writes(g)) { /* --use_usp: rank 0 names, writes and reports the outputs */
        a->output = a->output_latents = NULL;
        return SKY_CLI_GO_ON;
    }
    if (sky_cli_flag_given(&g->f, "--output"))
        snprintf(g->out, sizeof g->out, "%s", sky_cli_flag(&g->f, "--output"));
    else if (!default_output(g->out, sizeof g->out,
                             sky_cli_flag_given(&g->f, "--outdir")
                                 ? sky_cli_flag(&g->f, "--outdir")
                                 : (sky_cli_is_df() ? "diffusion_forcing" : "video_out"),
                             g->user_prompt, a->seed))
        return sky_cli_usage(g->argv0, "--outdir is too long");
    a->output = a->vae_weights ? g->out : NULL;
    sky_err de;
    if (a->output && make_parents(a->output, &de)) {
        fprintf(stderr, "%s: error: -o %s: %s\n", g->argv0, a->output, de.msg);
        return SKY_CLI_EXIT_FAIL;
    }
    char dir[4096];
    if (a->output && folder_writable(a->output, dir, sizeof dir) != 0) {
        fprintf(stderr, "%s: error: -o %s: cannot write into %s: %s; give an -o in a folder you can write\n", g->argv0,
                a->output, dir, strerror(errno));
        return SKY_CLI_EXIT_FAIL;
    }
    if (a->output_latents && folder_writable(a->output_latents, dir, sizeof dir) != 0) {
        fprintf(stderr, "%s: error: --output_latents %s: cannot write into %s: %s; give a folder you can write\n",
                g->argv0, a->output_latents, dir, strerror(errno));
        return SKY_CLI_EXIT_FAIL;
    }
    return remove_stale_temps(g);
}

/* The run's parameters as JSON, for the mp4's metadata (and --resume_dir's key), in a buffer that grows with the
 * prompts and paths (no length limit but memory). */
static int describe_run(gen *g)
{
    sky_gen_args *a = &g->a;
    size_t        n = 0;
    FILE         *j = open_memstream(&g->json, &n);
    if (!j) {
        fprintf(stderr, "%s: error: out of host memory for the run's parameters\n", g->argv0);
        return SKY_CLI_EXIT_FAIL;
    }
    fprintf(j, "{\"prompt\": ");
    sky_json_write_str(j, a->prompt);
    fprintf(j, ", \"negative_prompt\": ");
    sky_json_write_str(j, a->negative_prompt);
    fprintf(j,
            ", \"seed\": %llu, \"num_frames\": %d, \"inference_steps\": %d, \"shift\": %g, "
            "\"guidance_scale\": %g, \"fps\": %d, \"resolution\": \"%dx%d\", \"variant\": \"%s\", "
            "\"spec_xxh64\": \"%s\"",
            (unsigned long long)a->seed, a->num_frames, a->inference_steps, a->shift, a->guidance_scale, a->fps,
            a->width, a->height, sky_variant.name, sky_variant.spec_xxh64); /* resolution as ffprobe: WxH */
    if (sky_cli_is_df())
        fprintf(j,
                ", \"ar_step\": %d, \"causal_block_size\": %d, "
                "\"base_num_frames\": %d, \"overlap_history\": %d, \"addnoise_condition\": %d",
                a->ar_step, a->causal_block_size, a->base_num_frames, a->overlap_history, a->addnoise_condition);
    if (a->teacache)
        fprintf(j, ", \"teacache_thresh\": %g, \"use_ret_steps\": %s", a->teacache_thresh,
                a->use_ret_steps ? "true" : "false");
    if (a->prompt != g->user_prompt) {
        fprintf(j, ", \"original_prompt\": ");
        sky_json_write_str(j, g->user_prompt);
        fprintf(j, ", \"prompt_enhancer_model\": ");
        sky_json_write_str(j, g->pe.model);
    }
    fprintf(j, ", \"sample_solver\": \"%s\"", sky_solver_name(a->solver));
    for (int i = 0; i < a->n_loras; i++) {
        fprintf(j, "%s{\"file\": ", i ? ", " : ", \"lora\": [");
        sky_json_write_str(j, a->loras[i].path);
        fprintf(j, ", \"scale\": %.15g}%s", a->loras[i].scale, i + 1 == a->n_loras ? "]" : "");
    }
    if (a->lora_skip_unknown) fprintf(j, ", \"lora_unknown_keys\": \"warn\"");
    if (a->weight_fp8) fprintf(j, ", \"weight_dtype\": \"fp8\"");
    fprintf(j, "}");
    if (fclose(j) != 0 || !g->json) {
        fprintf(stderr, "%s: error: out of host memory for the run's parameters\n", g->argv0);
        return SKY_CLI_EXIT_FAIL;
    }
    a->args_json = g->json;
    return SKY_CLI_GO_ON;
}

/* SIGINT, SIGTERM and SIGHUP set `interrupted` (sigaction: no SA_RESTART, so that a blocking read returns
 * EINTR; no SA_RESETHAND, so that a second Ctrl-C does not kill the process before it removes its temporary
 * files). */
static void catch_signals(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    const int sigs[] = {SIGINT, SIGTERM, SIGHUP};
    for (int i = 0; i < 3; i++) sigaddset(&sa.sa_mask, sigs[i]);
    for (int i = 0; i < 3; i++) sigaction(sigs[i], &sa, NULL);
}

/* --progress: bar (text on stderr, the default) or json (one JSON object per line on stderr, the text off). */
static int read_progress(gen *g)
{
    const char *p = sky_cli_flag(&g->f, "--progress");
    if (!p || strcmp(p, "bar") == 0) return SKY_CLI_GO_ON;
    if (strcmp(p, "json") != 0) return sky_cli_usage(g->argv0, "--progress %s: bar or json", p);
    g->a.progress_json = 1;
    g->quiet = 1;
    return SKY_CLI_GO_ON;
}

/* The run, stopped by SIGINT (exit 130), SIGTERM or SIGHUP (exit 143) in any phase: the pipeline checks at
 * each phase and step, and removes what it wrote when the signal came before the end (nothing is left). */
static int run(gen *g)
{
    if (!g->quiet)
        fprintf(stderr, "seed: %llu%s%s%s\n", (unsigned long long)g->a.seed,
                g->seed_from ? " (the seed of the run kept in " : "", g->seed_from ? g->seed_from : "",
                g->seed_from ? ")" : "");
    if (g->a.progress_json)
        fprintf(stderr, "{\"event\": \"start\", \"variant\": \"%s\", \"seed\": %llu, \"args\": %s}\n", sky_variant.name,
                (unsigned long long)g->a.seed, g->json ? g->json : "{}");
    catch_signals();
    sky_err       err;
    sky_run_stats stats;
    memset(&stats, 0, sizeof stats);
    g->a.stats = &stats;
    const sky_status st = sky_pipeline_run(&sky_variant, &g->a, &err);
    if (interrupted) { /* also when the signal came after the pipeline's last check: its outputs are removed */
        if (st == SKY_OK) {
            if (g->a.output) unlink(g->a.output);
            if (g->a.output_latents) unlink(g->a.output_latents);
        }
        fprintf(stderr, "\n%s: interrupted; nothing was written\n", g->argv0);
        return interrupted == SIGINT ? 130 : 143;
    }
    if (st != SKY_OK) return sky_cli_ranks_fail(g->usp, g->argv0, err.msg, SKY_CLI_EXIT_FAIL);
    const char *summary = writes(g) ? sky_cli_flag(&g->f, "--json") : NULL;
    char        why[4200];
    if (summary && sky_cli_summary_write(summary, &(sky_cli_summary){&g->a, g->json, &stats}, why, sizeof why)) {
        fprintf(stderr, "%s: error: --json %s: %s (the video was written)\n", g->argv0, summary, why);
        return SKY_CLI_EXIT_FAIL;
    }
    if (g->a.output) printf("%s\n", g->a.output);
    return 0;
}

int sky_cli_generate(int argc, char **argv)
{
    static int (*const steps[])(gen *) = {refuse_flags,     read_enhancer, check_usp,    choose_backend,
                                          read_numbers,     read_options,  read_sampler, choose_seed,
                                          check_resolution, read_inputs,   check_frames, find_checkpoints,
                                          enhance_prompt,   name_output,   describe_run};
    sky_usp *usp = NULL; /* --use_usp: the ranks, started before anything else (cli/ranks.h) */
    int      rc = sky_cli_ranks_begin(&argc, &argv, &usp);
    if (rc != SKY_CLI_GO_ON) return rc;
    gen *g = calloc(1, sizeof *g); /* ~45 KiB of paths and JSON, alive for the whole run */
    if (!g) { return sky_cli_ranks_fail(usp, argv[0], "out of host memory", SKY_CLI_EXIT_FAIL); }
    g->argv0 = argv[0];
    g->usp = usp;
    sky_cli_ranks_held held;
    sky_cli_ranks_hold(usp, &held);
    rc = sky_cli_flags_parse(&g->f, argc, argv);
    g->quiet = sky_cli_quiet(&g->f) || !writes(g);
    if (rc == SKY_CLI_GO_ON) rc = read_progress(g);
    if (!writes(g)) g->a.progress_json = 0;
    for (size_t i = 0; rc == SKY_CLI_GO_ON && i < sizeof steps / sizeof steps[0]; i++) rc = steps[i](g);
    rc = sky_cli_ranks_agree(usp, &held, rc, argv[0]); /* every rank passed its checks, or every rank stops */
    if (usp) g->a.comm = sky_usp_comm(usp);
    /* --use_usp --backend cuda: every rank's GPU (its programs' GPU from here on: set_device) and its NCCL
     * communicator (dist/usp_cuda.h), before any model */
    const sky_cuda_plugin *pl = NULL;
    sky_err                e;
    if (rc == SKY_CLI_GO_ON && usp && g->backend == SKY_BACKEND_CUDA &&
        (sky_cuda_plugin_get(&pl, sky_variant.name, &e) || sky_usp_cuda_open(usp, pl, &g->a.device, &g->a.nccl, &e)))
        rc = sky_cli_ranks_fail(usp, argv[0], e.msg, SKY_CLI_EXIT_FAIL);
    if (rc == SKY_CLI_GO_ON) rc = run(g);
    if (g->a.nccl) pl->nccl_close(g->a.nccl);
    free(g->json);
    free(g);
    sky_usp_end(usp);
    return rc;
}
