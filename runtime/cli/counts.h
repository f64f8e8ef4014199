/* runtime/cli/counts.h — the generator's counts of the CUDA lowering (gen/count.lua), for --info and
 * bench --json.
 *
 * sky_cli_print_counts prints, per program, one row per kind of kernel (launches, GB, GFLOP and the
 * compute, memory and roofline times at the table's stated device), the total, and the roofline next to
 * the floor of the math (FLOPs / the BF16 peak); guidance > 1 notes that a step is two forwards.
 * sky_cli_json_counts writes the same table as one JSON member "static_counts": {...} followed by ",\n".
 * Both do nothing (print nothing, write nothing) when t is NULL (a variant without a cuda target).
 */
#ifndef SKY_CLI_COUNTS_H
#define SKY_CLI_COUNTS_H

#include <stdio.h>

#include "models/program.h"

void sky_cli_print_counts(const sky_count_table *t, double guidance);
void sky_cli_json_counts(FILE *f, const sky_count_table *t);

#endif /* SKY_CLI_COUNTS_H */
