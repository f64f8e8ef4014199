/* runtime/cli/cli.h — the generation command line of a variant binary: generate.c runs it, args.c holds the
 * flag table, checkpoints.c finds the checkpoints under --model_id. */
#ifndef SKY_CLI_H
#define SKY_CLI_H

#include <stdio.h>

#include "models/program.h"

/* Parse the generation flags of argv, validate them, run the pipeline; returns the exit code
 * (0 success, 1 failure, 2 usage error, 130/143 interrupted). */
int sky_cli_generate(int argc, char **argv);

/* `skyreels-<variant> selftest [--device N] [--cached]` (selftest.c): the CUDA kernel selftest's table on
 * stdout; returns the exit code (0 every kernel passed, 1 one failed or it could not run, 2 usage). */
int sky_cli_selftest(int argc, char **argv);

/* Before a CUDA run (unless $SKY_SELFTEST is 0): the selftest's verdict of GPU 0 (cached; run on first use),
 * a warning on stderr for each failed kernel a fallback replaces; 1 (the error printed) when a failed kernel
 * has no fallback and the run must be refused, else 0. */
int sky_cli_selftest_gate(const char *argv0, int quiet);

/* The flags with their defaults and ranges. */
void sky_cli_print_help(FILE *out, const char *argv0);

/* docs/cli.md: every flag of the table (both families: the DF-only ones marked) as Markdown, from the same
 * table as --help, so that the reference cannot drift from the binary (tests/runtime/test_cli.sh compares). */
void sky_cli_print_markdown(FILE *out);

#endif /* SKY_CLI_H */
