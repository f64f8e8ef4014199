#!/usr/bin/env bash
# tests/gpu/carry_wheels.sh — on this (CPU) machine, before a GPU call: download the pinned diffusers wheel
# into .whl/ (ignored by git through .git/info/exclude), for the `run` tool to carry (`carry: [".whl"]`).
# The GPU machine's image has PyTorch, huggingface-hub, safetensors, regex, requests, filelock, numpy and
# Pillow but not diffusers, and cannot download; tests/gpu/run.sh installs .whl/*.whl with --no-deps when the
# directory is there. diffusers is pure Python, so one wheel fits any Python 3 there.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.whl/' .git/info/exclude 2>/dev/null || echo '/.whl/' >> .git/info/exclude
mkdir -p .whl
python3 -m pip download -q --no-deps --only-binary=:all: -d .whl diffusers==0.36.0
ls -l .whl
