#!/usr/bin/env bash
# tests/compile/runtime_cuda_compile.sh — the CUDA runtime modules (runtime/cuda/cuda_ctx.c, gemm.c,
# nvrtc.c) and their GPU test (tests/gpu/runtime_test.c), checked on a machine WITHOUT a GPU:
#   - each file compiles with -std=c11 -Wall -Wextra -Werror (gcc -O2, gcc -O0 -g, clang -O2)
#     against the CUDA headers; each header compiles on its own; a GEMM table in the generator's
#     row format compiles against gemm.h;
#   - a runtime/ directory listed with -I ahead of the CUDA headers is caught by a clear #error
#     (the modules are cuda_ctx.* and nvrtc_cache.*, so they never shadow <cuda.h> / <nvrtc.h>);
#   - the GPU test links against -lcuda (the toolkit's stub) -lcudart -lcublasLt -lnvrtc -lxxhash;
#   - run against the stub driver it says "not run (no GPU)" and exits 77;
#   - its --nvrtc-only mode runs here (NVRTC needs no GPU): sm_90a compile, cache miss then hit,
#     a compile error's message, a source including cuda_bf16.h — plain and under ASan/UBSan.
# The binary for a GPU machine is build/tests/gpu/runtime_test (run it there; exit 77 = no GPU).
# Prints one line per check and "N passed, M failed"; exits 1 if anything failed, 77 when the
# CUDA toolkit is absent. CUDA_HOME (default /usr/local/cuda) and CC/CLANG may be set.
set -uo pipefail
cd "$(dirname "$0")/../.."                      # repository root

CUDA_HOME="${CUDA_HOME:-/usr/local/cuda}"
CC="${CC:-cc}"
CLANG="${CLANG:-clang}"
OUT=build/tests/gpu
if [ ! -f "$CUDA_HOME/include/cuda.h" ] || [ ! -f "$CUDA_HOME/include/cublasLt.h" ]; then
    echo "not run (no CUDA toolkit at $CUDA_HOME; set CUDA_HOME)"
    exit 77
fi
if ! echo '#include <xxhash.h>' | cc -E -x c - > /dev/null 2>&1; then     # the compiler's search path (CPATH too)
    echo "FAIL xxhash.h not found: apt-get install -y libxxhash-dev"
    echo "0 passed, 1 failed"
    exit 1
fi
mkdir -p "$OUT"
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

# -iquote keeps runtime/ out of the <...> search path.
CFLAGS=(-std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -iquote runtime -I"$CUDA_HOME/include")
LIBS=(-L"$CUDA_HOME/lib64/stubs" -L"$CUDA_HOME/lib64" -lcuda -lcudart -lcublasLt -lnvrtc -lxxhash -lm)
SRC=(runtime/core/status.c runtime/cuda/cuda_ctx.c runtime/cuda/fatbin.c runtime/cuda/gemm.c runtime/cuda/nvrtc_cache.c
     tests/gpu/runtime_test.c)

# The stub libcuda.so answers every call with CUDA_ERROR_STUB_LIBRARY; its soname is
# libcuda.so.1, which the loader needs to find to start the test at all.
ln -s "$CUDA_HOME/lib64/stubs/libcuda.so" "$tmp/libcuda.so.1"
STUB_ENV=(env "LD_LIBRARY_PATH=$tmp:$CUDA_HOME/lib64${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}")

pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $1"; }
bad() { fail=$((fail + 1)); echo "FAIL $1"; [ -n "${2:-}" ] && sed 's/^/     /' "$2" | head -40; }

# check NAME CMD...: passes when CMD exits 0; shows its output when not.
check() {
    local name=$1 log="$tmp/log"
    shift
    if "$@" > "$log" 2>&1; then ok "$name"; else bad "$name" "$log"; fi
}

for f in "${SRC[@]:1}"; do
    check "gcc -O2 $f"    "$CC" "${CFLAGS[@]}" -O2 -c "$f" -o "$tmp/o.o"
    check "gcc -O0 -g $f" "$CC" "${CFLAGS[@]}" -O0 -g -c "$f" -o "$tmp/o.o"
    if command -v "$CLANG" > /dev/null; then
        check "clang -O2 $f" "$CLANG" "${CFLAGS[@]}" -O2 -c "$f" -o "$tmp/o.o"
    fi
done

for h in cuda/cuda_ctx.h cuda/fatbin.h cuda/gemm.h cuda/nvrtc_cache.h; do
    printf '#include "%s"\n' "$h" > "$tmp/only_${h#*/}.c"
    check "header $h compiles on its own" "$CC" "${CFLAGS[@]}" -iquote runtime -c "$tmp/only_${h#*/}.c" -o "$tmp/o.o"
done

# A GEMM table as gen/emit/cuda.lua writes it (a name per role, rows by name, fields by name) compiles
# against gemm.h.
cat > "$tmp/table.c" <<'EOF'
#include "cuda/gemm.h"
enum {
    GEMM_BLOCKS_SELF_ATTN_Q = 0,
    GEMM_BLOCKS_SELF_ATTN_K = 0,
    GEMM_BLOCKS_FFN_0       = 1,
    GEMM_ATTN_PV            = 2,
};
const sky_gemm_desc table[3] = {
    [GEMM_BLOCKS_SELF_ATTN_Q] = { .m_max = 32760, .n = 1536, .k = 1536, .a_dtype = SKY_GEMM_BF16, .out_dtype = SKY_GEMM_BF16, .epilogue = SKY_GEMM_EPI_BIAS },
    [GEMM_BLOCKS_FFN_0]       = { .m_max = 32760, .n = 8960, .k = 1536, .a_dtype = SKY_GEMM_BF16, .out_dtype = SKY_GEMM_BF16, .epilogue = SKY_GEMM_EPI_GELU_TANH_BIAS },
    [GEMM_ATTN_PV]            = { .m_max = 8160,  .n = 384,  .k = 8160, .a_dtype = SKY_GEMM_F32,  .out_dtype = SKY_GEMM_F32,  .epilogue = SKY_GEMM_EPI_NONE, .ldw = 1152, .w_kn = 1 },
};
EOF
check "a generated GEMM table (gen/emit/cuda.lua's rows) compiles against gemm.h" \
    "$CC" "${CFLAGS[@]}" -c "$tmp/table.c" -o "$tmp/o.o"

check "link runtime_test (-lcuda stub -lcudart -lcublasLt -lnvrtc -lxxhash)" \
    "$CC" "${CFLAGS[@]}" -O2 "${SRC[@]}" "${LIBS[@]}" -o "$OUT/runtime_test"

# No GPU here: the test must say so and exit 77.
if [ -x "$OUT/runtime_test" ]; then
    "${STUB_ENV[@]}" "$OUT/runtime_test" > "$tmp/log" 2>&1
    rc=$?
    if [ "$rc" -eq 77 ] && grep -q "^not run (no GPU)" "$tmp/log"; then
        ok "runtime_test without a GPU: exit 77, $(head -n 1 "$tmp/log")"
    else
        bad "runtime_test without a GPU: exit $rc (want 77 and 'not run (no GPU)')" "$tmp/log"
    fi
    if "${STUB_ENV[@]}" "$OUT/runtime_test" --nvrtc-only > "$tmp/log" 2>&1 && grep -q "^3 passed, 0 failed" "$tmp/log"; then
        ok "runtime_test --nvrtc-only (sm_90a compile, cache hit, error message, cuda_bf16.h)"
        grep '^ok   nvrtc_cubin_cache' "$tmp/log" | sed 's/^ok   /     /'
    else
        bad "runtime_test --nvrtc-only" "$tmp/log"
    fi
fi

# The same under AddressSanitizer + UBSan (leaks included).
SAN=(-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
if "$CC" "${CFLAGS[@]}" "${SAN[@]}" "${SRC[@]}" "${LIBS[@]}" -o "$OUT/runtime_test-asan" > "$tmp/log" 2>&1; then
    if "${STUB_ENV[@]}" ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$OUT/runtime_test-asan" --nvrtc-only > "$tmp/log" 2>&1 \
        && grep -q "^3 passed, 0 failed" "$tmp/log" && ! grep -qE 'runtime error:|Sanitizer' "$tmp/log"; then
        ok "runtime_test --nvrtc-only under ASan/UBSan"
    else
        bad "runtime_test --nvrtc-only under ASan/UBSan" "$tmp/log"
    fi
else
    bad "link runtime_test with ASan/UBSan" "$tmp/log"
fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
