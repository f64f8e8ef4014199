#!/usr/bin/env bash
# tests/runtime/run_text_tests.sh — build and run the prompt cleaning + tokenizer tests
# (runtime/text/*.c + runtime/text/spm_shim.cc against tests/fixtures/tokenizer/) twice:
#   plain:     -O2
#   sanitized: -O1 -g -fsanitize=address,undefined (leaks detected, UB halts)
# Binaries go to build/tests/. Ends with one "N passed, M failed" line summing both runs; exits non-zero
# if anything fails to build or any case fails.
# Needs a C11 compiler (CC, default cc), a C++17 compiler for the shim only (CXX, default g++) and
# Debian's libsentencepiece-dev:   apt-get install -y libsentencepiece-dev
set -euo pipefail

cd "$(dirname "$0")/../.."                      # repository root
CC="${CC:-cc}"
CXX="${CXX:-g++}"
OUT=build/tests
mkdir -p "$OUT"

if ! printf '#include <sentencepiece_processor.h>\n' | "$CXX" -std=c++17 -fsyntax-only -x c++ - 2>/dev/null; then
    echo "libsentencepiece-dev is missing (no sentencepiece_processor.h). Install it with:"
    echo "    apt-get install -y libsentencepiece-dev"
    echo "0 passed, 1 failed"
    exit 1
fi

CFLAGS=(-std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime -Itests/runtime)
CXXFLAGS=(-std=c++17 -Wall -Wextra -Werror -Iruntime)
SAN_FLAGS=(-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
LIB=(runtime/core/status.c runtime/core/json.c runtime/core/fs.c runtime/text/clean.c runtime/text/tokenizer.c
     runtime/text/tokenizer_encode.c runtime/text/unicode.c runtime/text/utf8.c)
LIBS=(-lsentencepiece -lstdc++ -lm)

failed=()
summary=()
total_pass=0
total_fail=0

# run_one MODE: build build/tests/test_text[-asan] and run it, recording the result.
run_one() {
    local mode=$1 exe flags
    if [[ $mode == plain ]]; then
        exe="$OUT/test_text"
        flags=(-O2)
    else
        exe="$OUT/test_text-asan"
        flags=("${SAN_FLAGS[@]}")
    fi
    echo "== $mode: $CC/$CXX ${flags[*]} -> $exe"
    if ! "$CXX" "${CXXFLAGS[@]}" "${flags[@]}" -c runtime/text/spm_shim.cc -o "$exe-spm_shim.o" ||
       ! "$CC" "${CFLAGS[@]}" "${flags[@]}" "${LIB[@]}" tests/runtime/test_text.c "$exe-spm_shim.o" \
            "${LIBS[@]}" -o "$exe"; then
        failed+=("$mode (build)")
        summary+=("$(printf '%-10s %s' "$mode" "BUILD FAILED")")
        total_fail=$((total_fail + 1))
        return
    fi
    local log="$OUT/test_text-$mode.log" rc=0 start end
    start=$(date +%s.%N)
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$exe" >"$log" 2>&1 || rc=$?
    end=$(date +%s.%N)
    cat "$log"
    local last p f
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    p=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\1/p' <<<"$last")
    f=$(sed -n 's/^\([0-9]*\) passed, \([0-9]*\) failed$/\2/p' <<<"$last")
    total_pass=$((total_pass + ${p:-0}))
    local secs
    secs=$(awk -v a="$start" -v b="$end" 'BEGIN { printf "%.2f", b - a }')
    if [[ $rc -ne 0 || -z $last ]] || grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$log"; then
        failed+=("$mode")
        summary+=("$(printf '%-10s %s (exit %d, %ss)' "$mode" "${last:-no summary line}" "$rc" "$secs")")
        total_fail=$((total_fail + ${f:-0} + ( ${f:-0} == 0 ? 1 : 0 )))
    else
        summary+=("$(printf '%-10s %s (%ss)' "$mode" "$last" "$secs")")
        total_fail=$((total_fail + ${f:-0}))
    fi
}

for mode in plain sanitized; do
    run_one "$mode"
done

echo
echo "text cleaning + tokenizer tests:"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}"
fi
echo "$total_pass passed, $total_fail failed"
[[ $total_fail -eq 0 ]]
