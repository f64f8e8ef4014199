/* runtime/cli/args.h — the generation flags of a variant binary (internal to runtime/cli/): the flag table
 * (the original generate_video.py / generate_video_df.py's names and defaults), argv parsed into it, the
 * usage errors, strict numbers.
 */
#ifndef SKY_CLI_ARGS_H
#define SKY_CLI_ARGS_H

#include "core/status.h" /* SKY_PRINTF */

/* Exit codes (cli.h), and what a step of the command line returns to let the next one run. */
enum { SKY_CLI_EXIT_FAIL = 1, SKY_CLI_EXIT_USAGE = 2, SKY_CLI_GO_ON = -1 };

enum { SKY_CLI_MAX_FLAGS = 64, SKY_CLI_MAX_LORAS = 16 };

/* argv by flag: one slot per entry of the table; the values of --lora (the one flag that may repeat) in order. */
typedef struct sky_cli_flags {
    const char *value[SKY_CLI_MAX_FLAGS]; /* NULL: not given, or a flag without a value */
    int         given[SKY_CLI_MAX_FLAGS];
    const char *lora[SKY_CLI_MAX_LORAS];
    int         n_lora;
} sky_cli_flags;

/* Parse argv into *f (zeroed first): SKY_CLI_GO_ON, or the exit code after printing --help (0) or a usage
 * error (2): an unknown flag, a DF flag for another family, a flag given twice or without its value. The
 * alias -o gives --output its value; -q stays itself (sky_cli_quiet). */
int sky_cli_flags_parse(sky_cli_flags *f, int argc, char **argv);

/* The value of flag `name` (a name of the table), NULL when not given. */
const char *sky_cli_flag(const sky_cli_flags *f, const char *name);
/* 1 when flag `name` (a name of the table) was given. */
int sky_cli_flag_given(const sky_cli_flags *f, const char *name);
/* The help text of flag `name` (a name of the table). */
const char *sky_cli_flag_help(const char *name);
/* -q or --quiet. */
int sky_cli_quiet(const sky_cli_flags *f);

/* Print "argv0: error: <msg>" and the --help hint; returns SKY_CLI_EXIT_USAGE. */
int sky_cli_usage(const char *argv0, const char *fmt, ...) SKY_PRINTF(2, 3);

/* Strict numbers: the whole string, in range (to_int) or not NaN (to_double); 0 when not. */
int sky_cli_to_int(const char *s, long long lo, long long hi, long long *out);
int sky_cli_to_double(const char *s, double *out);

/* 1 for a diffusion-forcing variant (the DF script's flags). */
int sky_cli_is_df(void);
/* 1 when this binary is a first-last-frame (FLF2V) variant: an I2V network reading two images' CLIP tokens. */
int sky_cli_is_flf2v(void);

/* The original scripts' default prompt and negative prompt for this variant's family (reference §7.1, §10). */
const char *sky_cli_default_prompt(void);
const char *sky_cli_default_negative_prompt(void);

#endif /* SKY_CLI_ARGS_H */
