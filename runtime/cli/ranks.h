/* runtime/cli/ranks.h — the command line's side of --use_usp (runtime/dist/usp.h: the ranks over MPI).
 *
 * Launched as `mpirun -np N skyreels-<variant> ... --use_usp`, every rank runs the same command line. Before any
 * work every rank starts MPI and checks that all ranks were given the same arguments. Every rank then checks the
 * arguments and its inputs (sky_cli_ranks_hold ... sky_cli_ranks_agree): a failure on rank 0 is printed by rank 0
 * (the arguments being the same, the other ranks' is the same one), a failure on another rank alone by that rank,
 * with its number; every rank then ends with that exit code. Later, a failure on any rank (a file it cannot read,
 * ...) is printed by that rank with its number and ends every rank (MPI_Abort): no rank waits for a collective
 * that will not come.
 */
#ifndef SKY_CLI_RANKS_H
#define SKY_CLI_RANKS_H

#include <stdio.h>

#include "dist/usp.h"

/* With --use_usp in argv: start the ranks (*u) and check that every rank has the same arguments. Returns
 * SKY_CLI_GO_ON (-1) to go on (*u NULL without --use_usp), else the exit code, the message printed (without MPI:
 * what is missing; other arguments on some rank: by rank 0). */
int sky_cli_ranks_begin(int *argc, char ***argv, sky_usp **u);

/* What a rank other than 0 printed on stderr while the checks ran (sky_cli_ranks_hold). */
typedef struct sky_cli_ranks_held {
    int   saved_fd; /* stderr's descriptor, -1: nothing held */
    FILE *text;
} sky_cli_ranks_held;

/* On ranks other than 0, keep what the checks print on stderr aside (h) until sky_cli_ranks_agree. Does nothing
 * without ranks or on rank 0. */
void sky_cli_ranks_hold(const sky_usp *u, sky_cli_ranks_held *h);

/* Every rank together, after the checks ended with rc (SKY_CLI_GO_ON: passed, else an exit code): stderr back;
 * SKY_CLI_GO_ON when every rank passed, else the exit code every rank ends with (rank 0's when it failed; else a
 * failing rank prints what it held, with its number). Without ranks returns rc. */
int sky_cli_ranks_agree(const sky_usp *u, sky_cli_ranks_held *h, int rc, const char *argv0);

/* A failure: without ranks print "argv0: error: msg" and return code; with ranks print it with this rank's number
 * and end every rank with code (does not return). */
int sky_cli_ranks_fail(sky_usp *u, const char *argv0, const char *msg, int code);

#endif /* SKY_CLI_RANKS_H */
