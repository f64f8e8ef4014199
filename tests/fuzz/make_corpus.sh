#!/usr/bin/env bash
# tests/fuzz/make_corpus.sh — (re)write the committed seed corpora tests/fuzz/corpus/<target>/ and
# tests/fuzz/data/: make_corpus.py (fixtures and hand-made edge cases) and make_media.c (images and videos
# through FFmpeg's encoders). Deterministic for one FFmpeg; files it does not write (crash reproducers) stay.
set -euo pipefail
cd "$(dirname "$0")/../.."
python3 tests/fuzz/make_corpus.py
mkdir -p build tests/fuzz/corpus/image tests/fuzz/corpus/video
# shellcheck disable=SC2046  # pkg-config's flags are words
cc -std=c11 -Wall -Wextra -O1 tests/fuzz/make_media.c \
    $(pkg-config --cflags --libs libavformat libavcodec libswscale libavutil) -o build/make_media
build/make_media tests/fuzz/corpus
