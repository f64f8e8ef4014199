/* runtime/dist/usp_device.c — the GPU of a --use_usp rank on its machine (usp.h sky_usp_local_device). */
#include "dist/usp.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The local rank the launcher set (>= 0), or -1 when none of the known variables is set to a number. */
static int launcher_local_rank(const char **name)
{
    static const char *const vars[] = {"OMPI_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID", "MPI_LOCALRANKID"};
    for (size_t i = 0; i < sizeof vars / sizeof vars[0]; i++) {
        const char *v = getenv(vars[i]);
        char       *end = NULL;
        if (!v || !*v) continue;
        const long r = strtol(v, &end, 10);
        if (*end == '\0' && r >= 0 && r < 1 << 20) {
            *name = vars[i];
            return (int)r;
        }
    }
    return -1;
}

sky_status sky_usp_local_device(int world_rank, int n_devices, int *device, sky_err *err)
{
    const char *from = "its world rank: no OMPI_COMM_WORLD_LOCAL_RANK, SLURM_LOCALID or MPI_LOCALRANKID";
    int         local = launcher_local_rank(&from);
    if (local < 0) local = world_rank;
    char host[256] = "?";
    if (gethostname(host, sizeof host - 1) != 0) strcpy(host, "?");
    host[sizeof host - 1] = '\0';
    if (local >= n_devices)
        return sky_fail(err,
                        "--use_usp with --backend cuda: rank %d on host %s has no GPU: it is local rank %d there (%s) "
                        "and the host shows %d GPU%s (CUDA_VISIBLE_DEVICES=%s); start at most %d rank%s per machine "
                        "(mpirun --map-by ppr:%d:node, srun --ntasks-per-node=%d)",
                        world_rank, host, local, from, n_devices, n_devices == 1 ? "" : "s",
                        getenv("CUDA_VISIBLE_DEVICES") ? getenv("CUDA_VISIBLE_DEVICES") : "unset", n_devices,
                        n_devices == 1 ? "" : "s", n_devices > 0 ? n_devices : 1, n_devices > 0 ? n_devices : 1);
    *device = local;
    return SKY_OK;
}
