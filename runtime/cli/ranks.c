/* runtime/cli/ranks.c — the command line's side of --use_usp (ranks.h): start the ranks, the checks' messages
 * printed once, a rank's failure ends every rank. */
#include "cli/ranks.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"

int sky_cli_ranks_begin(int *argc, char ***argv, sky_usp **u)
{
    *u = NULL;
    int wanted = 0;
    for (int i = 1; i < *argc; i++) wanted |= strcmp((*argv)[i], "--use_usp") == 0;
    if (!wanted) return SKY_CLI_GO_ON;
    const char *argv0 = (*argv)[0];
    sky_err     err;
    if (sky_usp_start(u, argc, argv, &err)) {
        fprintf(stderr, "%s: error: %s\n", argv0, err.msg);
        return SKY_CLI_EXIT_USAGE;
    }
    if (sky_usp_check_same_args(*u, *argc, *argv, &err)) {
        if (sky_usp_world_rank(*u) == 0) fprintf(stderr, "%s: error: %s\n", argv0, err.msg);
        sky_usp_end(*u);
        *u = NULL;
        return SKY_CLI_EXIT_USAGE;
    }
    return SKY_CLI_GO_ON;
}

void sky_cli_ranks_hold(const sky_usp *u, sky_cli_ranks_held *h)
{
    h->saved_fd = -1;
    h->text = NULL;
    if (!u || sky_usp_world_rank(u) == 0) return;
    fflush(stderr);
    h->text = tmpfile();
    h->saved_fd = h->text ? dup(2) : -1;
    if (h->saved_fd < 0 || dup2(fileno(h->text), 2) < 0) { /* nothing held: this rank prints as it goes */
        if (h->saved_fd >= 0) close(h->saved_fd);
        if (h->text) fclose(h->text);
        h->saved_fd = -1;
        h->text = NULL;
    }
}

/* Copy what h held to stderr, each line after "(rank r of n) ". */
static void print_held(const sky_cli_ranks_held *h, const sky_usp *u)
{
    char line[4096];
    rewind(h->text);
    while (fgets(line, sizeof line, h->text))
        fprintf(stderr, "(rank %d of %d) %s", sky_usp_world_rank(u), sky_usp_world_size(u), line);
}

int sky_cli_ranks_agree(const sky_usp *u, sky_cli_ranks_held *h, int rc, const char *argv0)
{
    if (!u) return rc;
    if (h->saved_fd >= 0) {
        fflush(stderr);
        dup2(h->saved_fd, 2);
        close(h->saved_fd);
        h->saved_fd = -1;
    }
    const int all = sky_usp_all_ok(u, rc == SKY_CLI_GO_ON), rc0 = sky_usp_root_int(u, rc);
    if (!all && rc0 == SKY_CLI_GO_ON) { /* rank 0 passed, another rank did not */
        if (rc != SKY_CLI_GO_ON && h->text) print_held(h, u);
        if (sky_usp_world_rank(u) == 0)
            fprintf(stderr, "%s: error: another rank failed its checks (its message above); every rank stops\n", argv0);
    }
    if (h->text) fclose(h->text);
    h->text = NULL;
    if (all) return SKY_CLI_GO_ON;
    if (rc0 != SKY_CLI_GO_ON) return rc0;
    return rc != SKY_CLI_GO_ON ? rc : SKY_CLI_EXIT_FAIL;
}

int sky_cli_ranks_fail(sky_usp *u, const char *argv0, const char *msg, int code)
{
    if (!u) {
        fprintf(stderr, "%s: error: %s\n", argv0, msg);
        return code;
    }
    fprintf(stderr, "%s: error (rank %d of %d): %s\n", argv0, sky_usp_world_rank(u), sky_usp_world_size(u), msg);
    fflush(stderr);
    sky_usp_abort(u, code);
    return code; /* not reached */
}
