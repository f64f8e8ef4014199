/* runtime/cli/counts.c — the generator's counts of the CUDA lowering, printed (counts.h). */
#include "cli/counts.h"

#include <string.h>

/* How often a program's call runs, for the heading of its table. */
static const char *per_call(const char *name, double guidance)
{
    if (strcmp(name, "dit_forward") == 0)
        return guidance > 1 ? "per forward; a step is 2 forwards with CFG (x2)" : "per forward (one per step)";
    if (strncmp(name, "vae_", 4) == 0) return "per call (one latent frame's chunk)";
    return "per call (once per prompt)";
}

static void print_row(const sky_count_group *g)
{
    printf("    %-42s %7d %6d %10.3f %12.3f %10.3f %10.3f %10.3f\n", g->label, g->kernels, g->gemms, g->bytes / 1e9,
           g->flops / 1e9, 1e3 * g->compute_s, 1e3 * g->memory_s, 1e3 * g->roofline_s);
}

void sky_cli_print_counts(const sky_count_table *t, double guidance)
{
    if (!t) return;
    printf("counts      the CUDA lowering at the largest window (gen/count.lua): launches, minimal bytes (each\n"
           "            operand once), FLOPs; times at the %s's stated peaks: %.0f TFLOP/s BF16, %.0f TF32,\n"
           "            %.0f FP32, %.2f TB/s HBM\n            (%s)\n",
           t->device, t->bf16_flops / 1e12, t->tf32_flops / 1e12, t->f32_flops / 1e12, t->hbm_bytes / 1e12, t->source);
    for (int i = 0; i < t->n_programs; i++) {
        const sky_count_program *p = &t->programs[i];
        printf("  %s, %s\n", p->name, per_call(p->name, guidance));
        printf("    %-42s %7s %6s %10s %12s %10s %10s %10s\n", "group", "kernels", "GEMMs", "GB", "GFLOP", "compute ms",
               "memory ms", "roofline");
        for (int j = 0; j < p->n_groups; j++) print_row(&p->groups[j]);
        print_row(&p->total);
        if (p->once.kernels + p->once.gemms > 0) print_row(&p->once);
        printf("    roofline %.3f ms (the groups' sum) vs the math's floor %.3f ms (FLOPs / the BF16 peak): %.2fx\n",
               1e3 * p->roofline_s, 1e3 * p->floor_s, p->floor_s > 0 ? p->roofline_s / p->floor_s : 0);
    }
}

static void json_group(FILE *f, const sky_count_group *g)
{
    fprintf(f,
            "{\"label\": \"%s\", \"kernels\": %d, \"gemms\": %d, \"bytes\": %.17g, \"flops\": %.17g, "
            "\"compute_s\": %.9g, \"memory_s\": %.9g, \"roofline_s\": %.9g}",
            g->label, g->kernels, g->gemms, g->bytes, g->flops, g->compute_s, g->memory_s, g->roofline_s);
}

void sky_cli_json_counts(FILE *f, const sky_count_table *t)
{
    if (!t) return;
    fprintf(f, "  \"static_counts\": {\"device\": \"%s\", \"bf16_flops\": %.17g, \"tf32_flops\": %.17g, ", t->device,
            t->bf16_flops, t->tf32_flops);
    fprintf(f, "\"f32_flops\": %.17g, \"hbm_bytes_per_s\": %.17g, \"source\": \"%s\", \"programs\": {", t->f32_flops,
            t->hbm_bytes, t->source);
    for (int i = 0; i < t->n_programs; i++) {
        const sky_count_program *p = &t->programs[i];
        fprintf(f, "%s\n    \"%s\": {\"roofline_s\": %.9g, \"floor_s\": %.9g, \"total\": ", i ? "," : "", p->name,
                p->roofline_s, p->floor_s);
        json_group(f, &p->total);
        fprintf(f, ", \"once\": ");
        json_group(f, &p->once);
        fprintf(f, ", \"groups\": [");
        for (int j = 0; j < p->n_groups; j++) {
            fprintf(f, "%s\n      ", j ? "," : "");
            json_group(f, &p->groups[j]);
        }
        fprintf(f, "]}");
    }
    fprintf(f, "\n  }},\n");
}
