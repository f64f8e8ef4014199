#!/usr/bin/env bash
# tests/numeric/build_sttool.sh — build build/tools/sttool (tests/numeric/sttool.c) for the numeric tiers.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/tools
cc -std=c11 -O2 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime tests/numeric/sttool.c \
   runtime/safetensors.c runtime/pth.c runtime/zip.c runtime/json.c runtime/dtype.c runtime/status.c \
   runtime/encoders.c runtime/weights.c runtime/plugin.c runtime/trace.c -lm -ldl -o build/tools/sttool
