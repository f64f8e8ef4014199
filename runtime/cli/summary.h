/* runtime/cli/summary.h — the run summary of --json FILE (internal to runtime/cli/): what a script needs to know
 * about a finished run, as one JSON object, written atomically.
 */
#ifndef SKY_CLI_SUMMARY_H
#define SKY_CLI_SUMMARY_H

#include <stddef.h>

#include "pipeline/pipeline.h"

/* What the summary holds beside the run's arguments. */
typedef struct sky_cli_summary {
    const sky_gen_args  *a;         /* the run: outputs, checkpoints, LoRAs, backend, sizes */
    const char          *args_json; /* every parameter as given and resolved (generate.c's describe_run) */
    const sky_run_stats *stats;     /* per-stage times, evaluations, windows, peak memory */
} sky_cli_summary;

/* Write s to path as one JSON object: engine_version (git describe at build time), variant, spec and generator
 * xxh64, backend, device (the CPU's model name; with --backend cuda GPU 0's name from the driver), driver (null on
 * the CPU; "CUDA driver 13.0"), outputs, args, resolution (WIDTHxHEIGHT), windows, checkpoints (each file with the
 * xxh64 of its header: a safetensors file's 8 + N header bytes, another file's first 64 KiB), loras, seconds
 * per stage, total_seconds, evaluations, steps_per_s, peak_rss_mib, peak_device_bytes (null on the CPU; with --backend
 * cuda the most the plugin's own device allocations held at once, over its GPUs), latents_xxh64 (null until the pipeline
 * hands it over). Written to path.tmp.<pid> and renamed onto path: never half-written. 0 on success, else
 * -1 with the reason in why. */
int sky_cli_summary_write(const char *path, const sky_cli_summary *s, char *why, size_t n);

#endif /* SKY_CLI_SUMMARY_H */
