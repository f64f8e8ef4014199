/* runtime/core/status.h — status codes, error messages, element types, internal asserts.
 *
 * Every library function that can fail on input (files, flags, weights) returns a
 * sky_status and fills a caller-owned sky_err with one readable sentence: what went
 * wrong, where (file, tensor), and what to do when that is known. Library code never
 * prints and never exits; cli/ decides. See shared/style.md §7.
 *
 * SKY_ASSERT is only for internal invariants (a bug in this program), never for input.
 */
#ifndef SKY_STATUS_H
#define SKY_STATUS_H

#include <stddef.h>
#include <stdint.h>

typedef enum sky_status { SKY_OK = 0, SKY_ERR = 1 } sky_status;

/* One error message, owned by the caller (usually on its stack). */
typedef struct sky_err {
    char msg[2048];
} sky_err;

#if defined(__GNUC__) || defined(__clang__)
#define SKY_PRINTF(fmt_idx, arg_idx) __attribute__((format(printf, fmt_idx, arg_idx)))
#else
#define SKY_PRINTF(fmt_idx, arg_idx)
#endif

/* Format a message into err->msg (when err != NULL; truncated to fit) and return
 * SKY_ERR, so that a failing check reads `return sky_fail(err, "...", ...);`. */
sky_status sky_fail(sky_err *err, const char *fmt, ...) SKY_PRINTF(2, 3);

/* Most dimensions a tensor may have anywhere in the runtime (safetensors rank limit). */
#define SKY_MAX_DIMS 8

/* Element types: every dtype safetensors knows (names and bit sizes in dtype.h). */
typedef enum sky_dtype {
    SKY_DTYPE_BOOL,
    SKY_DTYPE_U8,
    SKY_DTYPE_I8,
    SKY_DTYPE_I16,
    SKY_DTYPE_U16,
    SKY_DTYPE_F16,
    SKY_DTYPE_BF16,
    SKY_DTYPE_I32,
    SKY_DTYPE_U32,
    SKY_DTYPE_F32,
    SKY_DTYPE_I64,
    SKY_DTYPE_U64,
    SKY_DTYPE_F64,
    SKY_DTYPE_C64,
    SKY_DTYPE_F8_E5M2,
    SKY_DTYPE_F8_E4M3,
    SKY_DTYPE_F8_E8M0,
    SKY_DTYPE_F8_E4M3FNUZ,
    SKY_DTYPE_F8_E5M2FNUZ,
    SKY_DTYPE_F6_E2M3,
    SKY_DTYPE_F6_E3M2,
    SKY_DTYPE_F4,
    SKY_DTYPE_COUNT
} sky_dtype;

/* Called by SKY_ASSERT: prints the condition text, function and file:line to stderr,
 * then abort()s. */
_Noreturn void sky_assert_fail_(const char *cond, const char *func, const char *file, int line);

/* Internal invariant check (ggml's GGML_ASSERT). Not for validating user input. */
#define SKY_ASSERT(cond)                                                    \
    do {                                                                    \
        if (!(cond)) sky_assert_fail_(#cond, __func__, __FILE__, __LINE__); \
    } while (0)

#endif /* SKY_STATUS_H */
