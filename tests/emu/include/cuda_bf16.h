/* tests/emu/include/cuda_bf16.h — what `#include <cuda_bf16.h>` finds when the CPU emulator
 * compiles generated kernels: nothing more, because tests/emu/cuda_emu.h (force-included first)
 * already defines __nv_bfloat16 and the conversions the templates use. */
