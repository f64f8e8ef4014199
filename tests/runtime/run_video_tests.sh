#!/usr/bin/env bash
# tests/runtime/run_video_tests.sh — build and run tests/runtime/test_video.c (runtime/video/video.c
# against the system FFmpeg) twice:
#   plain:     -O2
#   sanitized: -O1 -g -fsanitize=address,undefined (leaks detected, UB halts)
# Binaries and logs go to build/tests/. Exits non-zero if a package is missing, anything
# fails to build, or any case fails. Needs a C11 compiler (CC, default cc), pkg-config and
# the FFmpeg development packages (Debian 12: FFmpeg 5.1 with libx264):
#   apt-get install -y pkg-config libavcodec-dev libavformat-dev libswscale-dev libavutil-dev
set -euo pipefail

cd "$(dirname "$0")/../.."                      # repository root
CC="${CC:-cc}"
OUT=build/tests
mkdir -p "$OUT"

APT_LINE="apt-get install -y pkg-config libavcodec-dev libavformat-dev libswscale-dev libavutil-dev"
PKGS=(libavformat libavcodec libswscale libavutil)
if ! command -v pkg-config >/dev/null 2>&1; then
    echo "run_video_tests.sh: pkg-config not found; install it with: $APT_LINE" >&2
    exit 1
fi
missing=()
for p in "${PKGS[@]}"; do
    pkg-config --exists "$p" || missing+=("$p")
done
if [[ ${#missing[@]} -gt 0 ]]; then
    echo "run_video_tests.sh: pkg-config does not find ${missing[*]}; install them with: $APT_LINE" >&2
    exit 1
fi
read -r -a AV_CFLAGS <<<"$(pkg-config --cflags "${PKGS[@]}")"
read -r -a AV_LIBS <<<"$(pkg-config --libs "${PKGS[@]}")"
echo "FFmpeg: libavformat $(pkg-config --modversion libavformat), libavcodec $(pkg-config --modversion libavcodec)," \
     "libswscale $(pkg-config --modversion libswscale), libavutil $(pkg-config --modversion libavutil)"

CFLAGS=(-std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime)
SAN_FLAGS=(-O1 -g -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined)
LIB=(runtime/core/status.c runtime/core/fs.c runtime/video/video.c runtime/video/video_frame.c)
TEST=test_video

failed=()
tot_p=0 tot_f=0
summary=()

# run_one MODE: build build/tests/test_video[-asan] and run it, recording the result.
run_one() {
    local mode=$1 exe flags
    if [[ $mode == plain ]]; then
        exe="$OUT/$TEST"
        flags=(-O2)
    else
        exe="$OUT/$TEST-asan"
        flags=("${SAN_FLAGS[@]}")
    fi
    echo "== $mode: $CC ${flags[*]} -> $exe"
    if ! "$CC" "${CFLAGS[@]}" "${AV_CFLAGS[@]}" "${flags[@]}" "${LIB[@]}" "tests/runtime/$TEST.c" \
            "${AV_LIBS[@]}" -lm -o "$exe"; then
        failed+=("$mode (build)")
        summary+=("$(printf '%-10s %-12s %s' "$mode" "$TEST" "BUILD FAILED")")
        return
    fi
    local log="$OUT/$TEST-$mode.log" rc=0
    # Leak detection stays on with no suppressions: libav and x264 free everything we
    # open when their contexts are closed, so any report is ours (or a real libav leak).
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1 \
        "$exe" >"$log" 2>&1 || rc=$?
    cat "$log"
    local last
    last=$(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -n 1 || true)
    if [[ -n $last ]]; then
        tot_p=$((tot_p + ${last%% passed*}))
        tot_f=$((tot_f + $(sed 's/.* \([0-9]*\) failed$/\1/' <<<"$last")))
    fi
    if [[ $rc -ne 0 || -z $last ]] || grep -qE 'runtime error:|ERROR: (Address|Leak)Sanitizer' "$log"; then
        failed+=("$mode")
        summary+=("$(printf '%-10s %-12s %s (exit %d)' "$mode" "$TEST" "${last:-no summary line}" "$rc")")
    else
        summary+=("$(printf '%-10s %-12s %s' "$mode" "$TEST" "$last")")
    fi
}

run_one plain
run_one sanitized

echo
echo "video unit tests:"
printf '  %s\n' "${summary[@]}"
if [[ ${#failed[@]} -gt 0 ]]; then
    echo "FAILED: ${failed[*]}"
    echo "$tot_p passed, $(( tot_f > 0 ? tot_f : ${#failed[@]} )) failed"
    exit 1
fi
echo "$tot_p passed, $tot_f failed"
