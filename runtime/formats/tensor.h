/* runtime/formats/tensor.h — one tensor of a checkpoint file, as every reader returns it.
 *
 * The safetensors reader (safetensors.h), the .pth reader (pth.h) and the checkpoint opener over
 * both (checkpoint.h) hand out this view, so a weights binder (weights.h) treats the formats alike.
 * Nothing is copied: data points into the reader's read-only mapping, is NOT aligned in general
 * (use dtype.h or memcpy) and stays valid until the reader that returned it is closed.
 */
#ifndef SKY_TENSOR_H
#define SKY_TENSOR_H

#include "core/status.h"

typedef struct sky_st_tensor {
    const char *name; /* unique, non-empty, NUL-terminated */
    sky_dtype   dtype;
    int         ndim;                /* 0 for a scalar (1 element) */
    int64_t     shape[SKY_MAX_DIMS]; /* shape[ndim..] are 0 */
    const void *data;                /* into the mapping; any alignment */
    size_t      nbytes;              /* 0 for an empty tensor */
    const char *file;                /* path of the file holding it */
} sky_st_tensor;

#endif /* SKY_TENSOR_H */
