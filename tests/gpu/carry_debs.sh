#!/usr/bin/env bash
# tests/gpu/carry_debs.sh — on this (Debian, CPU) machine, before a GPU call: download into .deb/ (ignored by
# git through .git/info/exclude) the packages our build needs that the GPU machine's image lacks and cannot
# download: the Lua 5.4 interpreter (the generator), libxxhash (the NVRTC cache), libsentencepiece (the
# tokenizer shim), with the libraries they load. About 1.2 MB; the `run` tool carries it (`carry: [".deb",
# ".whl"]`) and tests/gpu/run.sh unpacks it into a private root. FFmpeg is not carried (hundreds of
# packages): there the binaries are built with -DSKY_FFMPEG=OFF.
set -euo pipefail
cd "$(dirname "$0")/../.."
grep -qx '/.deb/' .git/info/exclude 2>/dev/null || echo '/.deb/' >> .git/info/exclude
rm -rf .deb
mkdir -p .deb
(cd .deb && apt-get download lua5.4 liblua5.4-0 libreadline8 libxxhash0 libxxhash-dev libsentencepiece0 \
     libsentencepiece-dev > /dev/null)
ls -l .deb
