/* runtime/dist/usp_cuda.c — a --use_usp rank's NCCL communicator in the CUDA plugin (usp_cuda.h). */
#include "dist/usp_cuda.h"

#include <string.h>

/* Every rank together: SKY_OK when every rank's s was SKY_OK; else this rank's own failure, or, on the ranks
 * that did not fail, a message saying another one did. */
static sky_status all_agree(const sky_usp *u, sky_status s, const char *step, sky_err *err)
{
    if (sky_usp_all_ok(u, s == SKY_OK)) return SKY_OK;
    if (s != SKY_OK) return s;
    return sky_fail(err,
                    "--use_usp with --backend cuda: another rank failed %s (its message on that rank); every "
                    "rank stops",
                    step);
}

sky_status sky_usp_cuda_open(const sky_usp *u, const sky_cuda_plugin *p, int *device, void **comm, sky_err *err)
{
    *comm = NULL;
    const sky_comm *c = sky_usp_comm(u);
    sky_status      s = sky_usp_local_device(sky_usp_world_rank(u), p->devices(), device, err);
    if (s == SKY_OK) s = p->set_device(*device, err); /* the rank's GPU current on this thread from here on */
    if (all_agree(u, s, "to find its GPU", err)) return SKY_ERR;
    if (c->size == 1) return SKY_OK; /* the CFG axis on 2 ranks: one rank per group, nothing to split, no NCCL */
    unsigned char id[SKY_PLUGIN_NCCL_ID_BYTES];
    memset(id, 0, sizeof id);
    s = c->rank == 0 ? p->nccl_id(id, err) : SKY_OK;
    if (all_agree(u, s, "to make the NCCL unique id", err)) return SKY_ERR;
    sky_usp_group_bytes(u, id, (int)sizeof id);
    s = p->nccl_open(comm, *device, c->rank, c->size, id, err);
    if (all_agree(u, s, "to join the NCCL communicator", err)) {
        p->nccl_close(*comm);
        *comm = NULL;
        return SKY_ERR;
    }
    return SKY_OK;
}
