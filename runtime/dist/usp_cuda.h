/* runtime/dist/usp_cuda.h — a --use_usp rank's NCCL communicator in the CUDA plugin (issue 17 item 5): the MPI
 * side of it (the local GPU, the unique id's broadcast), the NCCL side in the plugin (models/cuda_abi.h nccl_*). */
#ifndef SKY_DIST_USP_CUDA_H
#define SKY_DIST_USP_CUDA_H

#include "dist/usp.h"
#include "models/cuda_abi.h"

/* Every rank together: pick this rank's GPU (sky_usp_local_device over p->devices()), then the rank 0 of each
 * group (usp.h: the whole run, or a CFG group) makes an NCCL unique id, the group's ranks get it by MPI and join
 * the group's communicator on their GPU. *device is the GPU, *comm the plugin's communicator (p->nccl_close ends
 * it; NULL where the group is one rank: the CFG axis on 2 ranks). A rank that fails returns its own message; the
 * others return "another rank failed" (no rank waits for a communicator that will not come). */
sky_status sky_usp_cuda_open(const sky_usp *u, const sky_cuda_plugin *p, int *device, void **comm, sky_err *err);

#endif /* SKY_DIST_USP_CUDA_H */
