/* runtime/cli/selftest.c — `skyreels-<variant> selftest` and the selftest gate of a CUDA run (cli.h).
 *
 * The selftest itself runs in the plugin (runtime/cuda/selftest_cuda.c: the kernels, the shapes, the
 * bounds, the cache); this file prints its table, and before a CUDA run warns about each failed kernel
 * that a fallback replaces, or refuses the run when a failed kernel has none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli/args.h"
#include "cli/cli.h"
#include "models/cuda_plugin.h"
#include "models/program.h"

static void print_table(const sky_selftest_table *t)
{
    printf("selftest of skyreels-%s on %s (%s: %s)\n", sky_variant.name, t->device,
           t->cached ? "cached verdict" : "run now", t->path);
    printf("%-13s %-80s %10s %10s  %s\n", "family", "kernel", "max error", "bound", "verdict");
    for (int i = 0; i < t->n; i++) {
        const sky_selftest_row *r = &t->rows[i];
        printf("%-13s %-80s %10.3e %10.3e  %s%s%s\n", r->family, r->kernel, r->max_err, r->bound,
               r->pass ? "pass" : "FAIL", !r->pass && r->fallback[0] ? " -> fallback " : "",
               r->pass          ? ""
               : r->fallback[0] ? r->fallback
                                : " (no fallback)");
    }
}

/* The plugin's verdict of GPU `device` into t (cached, or run when force or when none is cached). */
static int verdict(const char *argv0, int device, int force, sky_selftest_table *t)
{
    const sky_cuda_plugin *plugin;
    sky_err                err;
    if (sky_cuda_plugin_get(&plugin, sky_variant.name, &err) || plugin->selftest(device, force, t, &err)) {
        fprintf(stderr, "%s: error: selftest: %s\n", argv0, err.msg);
        return 1;
    }
    return 0;
}

int sky_cli_selftest(int argc, char **argv)
{
    long long device = 0;
    int       cached = 0;
    for (int i = 2; i < argc; i++) {
        if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
            printf("usage: %s selftest [--device N] [--cached]\n"
                   "  runs the CUDA kernels of this variant at small shapes on GPU N (default 0) against the CPU\n"
                   "  reference, prints family, kernel, max error, bound and verdict, and caches the verdict\n"
                   "  (beside the kernel cache: $SKY_CACHE, else $XDG_CACHE_HOME/skyreels, else\n"
                   "  ~/.cache/skyreels) for CUDA runs to consult; --cached prints the cached verdict instead\n"
                   "  (running the selftest only when there is none). Exit 0: every kernel passed; 1: one failed.\n",
                   argv[0]);
            return 0;
        } else if (strcmp(argv[i], "--cached") == 0) {
            cached = 1;
        } else if (strcmp(argv[i], "--device") == 0 && i + 1 < argc) {
            if (!sky_cli_to_int(argv[++i], 0, 1023, &device))
                return sky_cli_usage(argv[0], "selftest: --device %s: expected a GPU ordinal", argv[i]);
        } else {
            return sky_cli_usage(argv[0], "selftest: unknown option %s (--device N, --cached)", argv[i]);
        }
    }
    if (!sky_variant.has_cuda)
        return sky_cli_usage(argv[0], "selftest: %s was generated for the cpu target only (its spec's targets)",
                             sky_variant.name);
    sky_selftest_table t;
    if (verdict(argv[0], (int)device, !cached, &t)) return 1;
    print_table(&t);
    int failed = 0;
    for (int i = 0; i < t.n; i++) failed += !t.rows[i].pass;
    return failed ? 1 : 0;
}

/* 1 when r failed but nothing runs it: a kernel that passed names it as its fallback (unused then). */
static int unused_fallback(const sky_selftest_table *t, const sky_selftest_row *r)
{
    for (int i = 0; i < t->n; i++) {
        const sky_selftest_row *p = &t->rows[i];
        if (p->pass && p->fallback[0] && strncmp(r->kernel, p->fallback, strlen(p->fallback)) == 0) return 1;
    }
    return 0;
}

int sky_cli_selftest_gate(const char *argv0, int quiet)
{
    const char *env = getenv("SKY_SELFTEST");
    if (env && strcmp(env, "0") == 0) return 0;
    sky_selftest_table t;
    if (verdict(argv0, 0, 0, &t)) return 1;
    if (!t.cached && !quiet)
        fprintf(stderr, "selftest: first CUDA run of this plugin on %s: %d kernels checked (%s)\n", t.device, t.n,
                t.path);
    for (int i = 0; i < t.n; i++) {
        const sky_selftest_row *r = &t.rows[i];
        if (r->pass) continue;
        if (r->fallback[0])
            fprintf(stderr,
                    "warning: selftest: %s failed on %s (max error %.3g, bound %.3g); this run uses its fallback "
                    "%s\n",
                    r->kernel, t.device, r->max_err, r->bound, r->fallback);
        else if (unused_fallback(&t, r))
            fprintf(stderr, "warning: selftest: %s failed on %s (max error %.3g, bound %.3g); not used here\n",
                    r->kernel, t.device, r->max_err, r->bound);
        else {
            fprintf(stderr,
                    "%s: error: selftest: %s failed on %s (max error %.3g, bound %.3g) and has no fallback: the "
                    "run is refused (`%s selftest` prints the table; SKY_SELFTEST=0 runs anyway)\n",
                    argv0, r->kernel, t.device, r->max_err, r->bound, argv0);
            return 1;
        }
    }
    return 0;
}
