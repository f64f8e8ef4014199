#!/usr/bin/env bash
# tests/runtime/run_tests.sh — build and run the runtime C unit tests twice:
#   plain:     -O2
#   sanitized: -O1 -g -fsanitize=address,undefined (leaks detected, UB halts)
# Binaries go to build/tests/. Exits non-zero if anything fails to build or any case fails.
# Needs only a C11 compiler (CC, default cc); Debian 12 gcc 12 is enough.
set -euo pipefail

cd "$(dirname "$0")/../.."                      # repository root
CC="${CC:-cc}"
OUT=build/tests
mkdir -p "$OUT"

CFLAGS=(-std=c11 -Wall -Wextra -Werror -D_GNU_SOURCE -Iruntime -Itests/runtime)
SAN_FLAGS=(-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
LIB=(runtime/core/status.c runtime/core/json.c runtime/core/dtype.c runtime/core/fs.c runtime/formats/safetensors.c runtime/formats/safetensors_write.c runtime/formats/checkpoint.c runtime/formats/pickle.c runtime/formats/pth.c runtime/formats/zip.c runtime/formats/weights.c runtime/models/latent.c runtime/models/fp8_quant.c runtime/models/lora.c runtime/models/teacache.c runtime/models/prompt_cache.c runtime/models/device_plan.c runtime/pipeline/resume.c runtime/net/prompt_enhancer.c runtime/net/http_none.c)
TESTS=(test_json test_safetensors test_weights test_fp8 test_latent test_lora test_teacache test_prompt_cache test_device_plan test_resume test_prompt_enhancer)

failed=()
tot_p=0 tot_f=0
summary=()

# run_one MODE TEST: build build/tests/TEST[-MODE] and run it, recording the result.
run_one() {
    local mode=$1 test=$2 exe flags
    if [[ $mode == plain ]]; then
        exe="$OUT/$test"
        flags=(-O2)
    else
        exe="$OUT/$test-asan"
        flags=("${SAN_FLAGS[@]}")
    fi
    echo "== $mode: $CC ${flags[*]} -> $exe"
    if ! "$CC" "${CFLAGS[@]}" "${flags[@]}" "${LIB[@]}" "tests/runtime/$test.c" -lm -lz -lpthread -o "$exe"; then
        failed+=("$mode/$test (build)")
        summary+=("$(printf '%-10s %-18s %s' "$mode" "$test" "BUILD FAILED")")
        return
    fi
    local log="$OUT/$test-$mode.log" rc=0
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$exe" >"$log" 2>&1 || rc=$?
    cat "$log"
    local last
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    if [[ -n $last ]]; then
        tot_p=$((tot_p + ${last%% passed*}))
        tot_f=$((tot_f + $(sed 's/.* \([0-9]*\) failed$/\1/' <<<"$last")))
    fi
    # a sanitizer report exits non-zero, but check the output too in case it does not
    if [[ $rc -ne 0 || -z $last ]] || grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$log"; then
        failed+=("$mode/$test")
        summary+=("$(printf '%-10s %-18s %s (exit %d)' "$mode" "$test" "${last:-no summary line}" "$rc")")
    else
        summary+=("$(printf '%-10s %-18s %s' "$mode" "$test" "$last")")
    fi
}

for mode in plain sanitized; do
    for t in "${TESTS[@]}"; do
        run_one "$mode" "$t"
    done
done

echo
echo "runtime unit tests:"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}"
    echo "$tot_p passed, $(( tot_f > 0 ? tot_f : ${#failed[@]} )) failed"
    exit 1
fi
echo "$tot_p passed, $tot_f failed"
