#!/usr/bin/env bash
# tests/runtime/run_sampler_tests.sh — build and run the sampler (UniPC, flow-match Euler) and diffusion-forcing
# unit tests (runtime/pipeline/sampler.c, runtime/pipeline/forcing.c against tests/fixtures/sampler/) twice:
#   plain:     -O2
#   sanitized: -O1 -g -fsanitize=address,undefined (leaks detected, UB halts)
# Binaries go to build/tests/. Ends with one "N passed, M failed" line summing every run; exits
# non-zero if anything fails to build or any case fails. Needs only a C11 compiler (CC, default cc).
set -euo pipefail

cd "$(dirname "$0")/../.."                      # repository root
CC="${CC:-cc}"
OUT=build/tests
mkdir -p "$OUT"

# -std=c11 also keeps floating-point contraction off (no FMA), which the sampler relies on to
# reproduce the original's float32 roundings (runtime/pipeline/sampler.h).
CFLAGS=(-std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime)
SAN_FLAGS=(-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
LIB=(runtime/core/status.c runtime/core/json.c runtime/core/dtype.c runtime/core/fs.c runtime/formats/safetensors.c runtime/formats/safetensors_write.c runtime/formats/checkpoint.c runtime/formats/pickle.c runtime/formats/pth.c runtime/formats/zip.c runtime/models/latent.c runtime/pipeline/sampler.c runtime/pipeline/forcing.c)
TESTS=(test_sampler test_euler test_forcing)

failed=()
summary=()
total_pass=0
total_fail=0

# run_one MODE TEST: build build/tests/TEST[-asan] and run it, recording the result.
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
    if ! "$CC" "${CFLAGS[@]}" "${flags[@]}" "${LIB[@]}" "tests/runtime/$test.c" -lm -lz -o "$exe"; then
        failed+=("$mode/$test (build)")
        summary+=("$(printf '%-10s %-14s %s' "$mode" "$test" "BUILD FAILED")")
        total_fail=$((total_fail + 1))
        return
    fi
    local log="$OUT/$test-$mode.log" rc=0
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$exe" >"$log" 2>&1 || rc=$?
    cat "$log"
    local last p f
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$last")
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$last")
    total_pass=$((total_pass + ${p:-0}))
    # a sanitizer report exits non-zero, but check the output too in case it does not
    if [[ $rc -ne 0 || -z $last ]] || grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$log"; then
        failed+=("$mode/$test")
        summary+=("$(printf '%-10s %-14s %s (exit %d)' "$mode" "$test" "${last:-no summary line}" "$rc")")
        # a crash or sanitizer report counts as one more failure on top of the failed cases
        total_fail=$((total_fail + ${f:-0} + ( ${f:-0} == 0 ? 1 : 0 )))
    else
        summary+=("$(printf '%-10s %-14s %s' "$mode" "$test" "$last")")
        total_fail=$((total_fail + ${f:-0}))
    fi
}

for mode in plain sanitized; do
    for t in "${TESTS[@]}"; do
        run_one "$mode" "$t"
    done
done

echo
echo "sampler + forcing unit tests:"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
