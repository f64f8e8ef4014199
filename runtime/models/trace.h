/* runtime/models/trace.h — op-by-op traces of a program call, for debugging and for comparing backends.
 *
 *   skyreels-<variant> program dit_forward ... --trace trace.safetensors [--backend cuda]
 *
 * While a trace is open, the generated programs hand every op's output to sky_trace_hook
 * (program.h): the CPU backend directly, the CUDA plugin after copying it to the host (graphs
 * are off while tracing). The trace keeps each output as fp32, named as the graph names it
 * (blocks.0.self_attn.q.out, ...), and writes one safetensors file: tensors flat [n], and the
 * metadata key "ops" listing the names in execution order. A name seen twice in a call (a second
 * sample of a batch) is kept once, from the first call. Compare two traces with
 * `build/tools/sttool compare-trace A B` (tests/numeric/sttool.c).
 */
#ifndef SKY_TRACE_H
#define SKY_TRACE_H

#include "models/program.h"
#include "core/status.h"

typedef struct sky_trace sky_trace;

/* Start collecting (sets sky_trace_hook). One trace at a time. */
sky_status sky_trace_open(sky_trace **out, sky_err *err);

/* Stop collecting (clears the hook) and write what was collected to path. */
sky_status sky_trace_write(sky_trace *t, const char *path, sky_err *err);

/* Clear the hook if still set, free everything. NULL is fine. */
void sky_trace_free(sky_trace *t);

#endif /* SKY_TRACE_H */
