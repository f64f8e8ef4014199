#!/usr/bin/env bash
# tests/numeric/build_sttool.sh — build build/tools/sttool (tests/numeric/sttool.c) for the numeric tiers.
set -euo pipefail
cd "$(dirname "$0")/../.."
mkdir -p build/tools
cc -std=c11 -O2 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime tests/numeric/sttool.c \
   runtime/formats/safetensors.c runtime/formats/safetensors_write.c runtime/formats/checkpoint.c runtime/formats/pickle.c \
   runtime/formats/pth.c runtime/formats/zip.c runtime/core/fs.c runtime/core/json.c runtime/core/dtype.c runtime/core/status.c \
   runtime/models/encoders.c runtime/formats/weights.c runtime/models/cuda_plugin.c runtime/models/trace.c -lm -lz -ldl -o "build/tools/sttool.$$"
# renamed into place: tiers running side by side may build it while another runs it
mv -f "build/tools/sttool.$$" build/tools/sttool
