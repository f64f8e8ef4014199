/* runtime/cli/cli.h — the generation command line of a variant binary: generate.c runs it, args.c holds the
 * flag table, checkpoints.c finds the checkpoints under --model_id. */
#ifndef SKY_CLI_H
#define SKY_CLI_H

#include <stdio.h>

#include "models/program.h"

/* Parse the generation flags of argv, validate them, run the pipeline; returns the exit code
 * (0 success, 1 failure, 2 usage error, 130/143 interrupted). */
int sky_cli_generate(int argc, char **argv);

/* The flags with their defaults and ranges. */
void sky_cli_print_help(FILE *out, const char *argv0);

#endif /* SKY_CLI_H */
