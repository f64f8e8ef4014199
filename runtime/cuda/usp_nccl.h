/* runtime/cuda/usp_nccl.h — the device collectives of --use_usp (issue 17 items 1 and 5), over NCCL.
 *
 * One communicator per rank of a run: rank 0 makes an NCCL unique id (sky_nccl_make_id), the host runtime
 * broadcasts its SKY_NCCL_ID_BYTES bytes with MPI (dist/usp.h sky_usp_bcast: the MPI side stays in the binary),
 * and every rank opens its communicator on its local GPU with them (sky_nccl_open). The collectives then run on
 * device buffers, queued on a stream (and so also inside a CUDA Graph captured on it, which NCCL supports):
 *   - all-to-all: block p (count elements at send + p count) goes to rank p; recv + p count gets rank p's block
 *     (one ncclGroupStart / ncclGroupEnd of size ncclSend and size ncclRecv calls);
 *   - all-gather: every rank's count elements of send, in rank order, into recv (size x count elements;
 *     send may be recv + rank count, in place).
 * Every NCCL call is checked: a failure returns SKY_ERR naming the call, NCCL's error string and last error, the
 * rank and the GPU. Built over NCCL when CMake finds nccl.h (usp_nccl.c, which opens libnccl.so.2 on first use:
 * the plugin loads without it); otherwise usp_nccl_none.c, whose calls say what is missing. Element types: SKY_DTYPE_F32 and SKY_DTYPE_BF16.
 */
#ifndef SKY_CUDA_USP_NCCL_H
#define SKY_CUDA_USP_NCCL_H

#include <stddef.h>

#include "core/status.h"

/* The bytes of an NCCL unique id (nccl.h NCCL_UNIQUE_ID_BYTES; usp_nccl.c checks they agree). */
#define SKY_NCCL_ID_BYTES 128

typedef struct sky_nccl sky_nccl;

/* 1 when built over NCCL, else 0. */
int sky_nccl_built(void);

/* The NCCL version of the library loaded (e.g. 22803 for 2.28.3); 0 without NCCL. */
int sky_nccl_version(void);

/* A new unique id (ncclGetUniqueId), on rank 0 only: every rank of the communicator then gets these bytes. */
sky_status sky_nccl_make_id(unsigned char id[SKY_NCCL_ID_BYTES], sky_err *err);

/* Join the communicator of `size` ranks named by id as rank `rank`, on GPU `device` (made current on the calling
 * thread first). Every rank calls it at the same time (ncclCommInitRank waits for all of them). */
sky_status sky_nccl_open(sky_nccl **out, int device, int rank, int size, const unsigned char id[SKY_NCCL_ID_BYTES],
                         sky_err *err);

/* This rank and the rank count of c. */
int sky_nccl_rank(const sky_nccl *c);
int sky_nccl_size(const sky_nccl *c);

/* The GPU c was opened on (-1 for NULL). */
int sky_nccl_device(const sky_nccl *c);

/* The all-to-all above, on stream (a CUstream / cudaStream_t; NULL is the default stream): send and recv are
 * device buffers of size x count elements of type t, not overlapping. */
sky_status sky_nccl_alltoall(sky_nccl *c, const void *send, void *recv, size_t count, sky_dtype t, void *stream,
                             sky_err *err);

/* The all-gather above, on stream: count elements of type t from send, size x count into recv. */
sky_status sky_nccl_allgather(sky_nccl *c, const void *send, void *recv, size_t count, sky_dtype t, void *stream,
                              sky_err *err);

/* Leave and free the communicator (ncclCommDestroy); NULL is fine. */
void sky_nccl_close(sky_nccl *c);

#endif /* SKY_CUDA_USP_NCCL_H */
