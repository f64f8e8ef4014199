/* runtime/cuda/usp_nccl_none.c — usp_nccl.h in a plugin built without NCCL: every call says what is missing. */
#include "cuda/usp_nccl.h"

#define MISSING                                                                                           \
    "--use_usp with --backend cuda: this plugin was built without NCCL (install NCCL, e.g. libnccl-dev, " \
    "or the CUDA toolkit's, and rebuild)"

int sky_nccl_built(void) { return 0; }

int sky_nccl_version(void) { return 0; }

sky_status sky_nccl_make_id(unsigned char id[SKY_NCCL_ID_BYTES], sky_err *err)
{
    (void)id;
    return sky_fail(err, MISSING);
}

sky_status sky_nccl_open(sky_nccl **out, int device, int rank, int size, const unsigned char id[SKY_NCCL_ID_BYTES],
                         sky_err *err)
{
    (void)device, (void)rank, (void)size, (void)id;
    *out = NULL;
    return sky_fail(err, MISSING);
}

int sky_nccl_rank(const sky_nccl *c) { return c ? 0 : -1; }

int sky_nccl_size(const sky_nccl *c) { return c ? 1 : 0; }

int sky_nccl_device(const sky_nccl *c) { return c ? 0 : -1; }

sky_status sky_nccl_alltoall(sky_nccl *c, const void *send, void *recv, size_t count, sky_dtype t, void *stream,
                             sky_err *err)
{
    (void)c, (void)send, (void)recv, (void)count, (void)t, (void)stream;
    return sky_fail(err, MISSING);
}

sky_status sky_nccl_allgather(sky_nccl *c, const void *send, void *recv, size_t count, sky_dtype t, void *stream,
                              sky_err *err)
{
    (void)c, (void)send, (void)recv, (void)count, (void)t, (void)stream;
    return sky_fail(err, MISSING);
}

void sky_nccl_close(sky_nccl *c) { (void)c; }
