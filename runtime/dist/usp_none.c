/* runtime/dist/usp_none.c — a build without MPI (usp.h): --use_usp is refused, saying what is missing. */
#include "dist/usp.h"

#include <stdlib.h>

int sky_usp_built(void) { return 0; }

sky_status sky_usp_start(sky_usp **out, int *argc, char ***argv, sky_err *err)
{
    (void)argc;
    (void)argv;
    *out = NULL;
    return sky_fail(err, "--use_usp: built without MPI: install libopenmpi-dev and rebuild (apt-get install -y "
                         "libopenmpi-dev openmpi-bin; then launch with mpirun -np N)");
}

sky_status sky_usp_split_cfg(sky_usp *u, sky_err *err)
{
    (void)u;
    return sky_fail(err, "--use_usp: built without MPI");
}

const sky_comm *sky_usp_comm(const sky_usp *u)
{
    (void)u;
    return NULL;
}

int sky_usp_world_rank(const sky_usp *u)
{
    (void)u;
    return 0;
}

int sky_usp_world_size(const sky_usp *u)
{
    (void)u;
    return 1;
}

sky_status sky_usp_check_same_args(const sky_usp *u, int argc, char **argv, sky_err *err)
{
    (void)u;
    (void)argc;
    (void)argv;
    (void)err;
    return SKY_OK;
}

int sky_usp_all_ok(const sky_usp *u, int ok)
{
    (void)u;
    return ok;
}

int sky_usp_root_int(const sky_usp *u, int v)
{
    (void)u;
    return v;
}

void sky_usp_group_bytes(const sky_usp *u, void *buf, int n) { (void)u, (void)buf, (void)n; }

void sky_usp_abort(const sky_usp *u, int code)
{
    (void)u;
    exit(code);
}

void sky_usp_end(sky_usp *u) { (void)u; }
