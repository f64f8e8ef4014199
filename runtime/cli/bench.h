/* runtime/cli/bench.h — `skyreels-<variant> bench`: the variant's steady-state timings (docs/bench.md).
 *
 *   skyreels-<variant> bench [--backend cpu|cuda] [--iters N] [--warmup N] [--weights PATH]
 *                      [--vae_weights PATH] [--t5_weights PATH] [--parts dit,t5,vae] [--json FILE]
 *                      [--peak_tflops X] [--peak_gbs X] [-q]
 *
 * Times dit_forward at the variant's full window (the prompt arena reused: the steady state of a
 * denoising loop), the text encoder on a full-length prompt and the VAE decode of a full window, with
 * random weights unless given; then one instrumented eager forward broken down by op group, with
 * achieved TFLOP/s and GB/s per group and the forward's ratio to its floor (FLOPs / the stated peak).
 * Prints a table on stdout; --json FILE writes every number. Returns the exit code (0, 1, 2).
 */
#ifndef SKY_CLI_BENCH_H
#define SKY_CLI_BENCH_H

int sky_cli_bench(int argc, char **argv);

#endif /* SKY_CLI_BENCH_H */
