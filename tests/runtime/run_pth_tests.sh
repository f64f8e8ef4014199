#!/usr/bin/env bash
# tests/runtime/run_pth_tests.sh — build and run tests/runtime/test_pth.c (runtime/formats/pth.c, pickle.c,
# zip.c) twice:
#   plain:     -O2
#   sanitized: -O1 -g -fsanitize=address,undefined (leaks detected, UB halts)
# Binaries go to build/tests/. Ends with "N passed, M failed" (both runs summed); exits non-zero if
# anything fails to build or any case fails. Needs only a C11 compiler (CC, default cc).
#
#   bash tests/runtime/run_pth_tests.sh              # what CI runs
#   bash tests/runtime/run_pth_tests.sh --fuzz 30    # then also tests/fuzz/fuzz_pth.c for 30 s (tests/fuzz/run.sh)
set -euo pipefail

cd "$(dirname "$0")/../.."                      # repository root
CC="${CC:-cc}"
OUT=build/tests
mkdir -p "$OUT"

FUZZ_SECONDS=0
if [[ ${1:-} == --fuzz ]]; then FUZZ_SECONDS=${2:-30}; fi

CFLAGS=(-std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime)
SAN_FLAGS=(-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
LIB=(runtime/core/status.c runtime/core/json.c runtime/core/dtype.c runtime/core/fs.c runtime/formats/safetensors.c runtime/formats/zip.c runtime/formats/pickle.c runtime/formats/pth.c)

pass=0 fail=0
rows=()

# run_one MODE: build build/tests/test_pth[-asan] and run it, adding its counts.
run_one() {
    local mode=$1 exe flags
    if [[ $mode == plain ]]; then
        exe="$OUT/test_pth"
        flags=(-O2)
    else
        exe="$OUT/test_pth-asan"
        flags=("${SAN_FLAGS[@]}")
    fi
    echo "== $mode: $CC ${flags[*]} -> $exe"
    if ! "$CC" "${CFLAGS[@]}" "${flags[@]}" "${LIB[@]}" tests/runtime/test_pth.c -lm -lz -o "$exe"; then
        fail=$((fail + 1))
        rows+=("$(printf '%-10s %s' "$mode" "BUILD FAILED")")
        return
    fi
    local log="$OUT/test_pth-$mode.log" rc=0
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$exe" >"$log" 2>&1 || rc=$?
    cat "$log"
    local last p f
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    p=$(echo "$last" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
    f=$(echo "$last" | sed -n 's/.* \([0-9]*\) failed$/\1/p'); f=${f:-0}
    # a crash or sanitizer report counts as a failure even if the summary line looked clean
    if [[ $rc -ne 0 || -z $last ]] || grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$log"; then
        [[ $f -eq 0 ]] && f=1
    fi
    pass=$((pass + p)); fail=$((fail + f))
    rows+=("$(printf '%-10s %s (exit %d)' "$mode" "${last:-no summary line}" "$rc")")
}

run_one plain
run_one sanitized

if [[ $FUZZ_SECONDS -gt 0 ]]; then
    # libFuzzer over sky_pth_open_mem (tests/fuzz/fuzz_pth.c, its seeds in tests/fuzz/corpus/pth/)
    if bash tests/fuzz/run.sh --long "$FUZZ_SECONDS" pth; then
        pass=$((pass + 1)); rows+=("$(printf '%-10s %s' fuzz "no crash in $FUZZ_SECONDS s")")
    else
        fail=$((fail + 1)); rows+=("$(printf '%-10s %s' fuzz "FAILED (above)")")
    fi
fi

echo
echo "pth reader tests:"
printf '  %s\n' "${rows[@]}"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
