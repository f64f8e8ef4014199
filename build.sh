#!/usr/bin/env bash
# build.sh — the one entry point.
#
#   ./build.sh              install what is missing, then run the tiny demo on the CPU backend
#   ./build.sh test         every CPU test tier (what CI runs); ends with "N passed, M failed"
#   ./build.sh test-all     the same, with the compile tier and the emulator's full-size launch checks on every
#                           shipped variant (10) instead of one or a few, every fixture case on both attention
#                           kernels, the fat binary for all five targets and the full GPU carry kit (longer)
#   ./build.sh gen <spec>   generate out/<variant>/ from specs/<spec>.lua (or a path to a spec)
#                           and build out/<variant>/skyreels-<variant>
#   ./build.sh fuzz [S] [T...]  the libFuzzer targets of tests/fuzz/ (clang), S seconds each (default 300),
#                           all of them or the targets T named; new inputs kept in build/fuzz/corpus/
#   ./build.sh deps         install the Debian packages the build and tests need (root, apt-get)
set -euo pipefail
cd "$(dirname "$0")"

# Packages: the generator (lua5.4), the C toolchain, CMake, FFmpeg's libraries (video I/O), zlib (the .pth archives'
# CRC-32), libcurl (the prompt enhancer's HTTP client), clang with libFuzzer (the fuzz tier, tests/fuzz/), and OpenMPI
# (--use_usp's ranks, runtime/dist/; its test tier, tests/runtime/test_usp.sh).
PACKAGES="lua5.4 cmake gcc g++ make pkg-config libavcodec-dev libavformat-dev libswscale-dev libavutil-dev libsentencepiece-dev libxxhash-dev libcurl4-openssl-dev zlib1g-dev clang libclang-rt-14-dev python3 libopenmpi-dev openmpi-bin"

need_cmd() { command -v "$1" >/dev/null 2>&1; }

# deps [fuzz]: check (and as root install) what the build needs; with "fuzz", also clang, libFuzzer and python3 (the
# test tiers and ./build.sh fuzz need them; gen and the demo do not).
deps() {
    local missing=""
    need_cmd lua5.4 || missing="$missing lua5.4"
    need_cmd cmake || missing="$missing cmake"
    need_cmd cc || missing="$missing gcc"
    need_cmd make || missing="$missing make"
    need_cmd g++ || missing="$missing g++"
    [ -e /usr/include/sentencepiece_processor.h ] || missing="$missing libsentencepiece-dev"
    [ -e /usr/include/xxhash.h ] || missing="$missing libxxhash-dev"
    if [ "${1:-}" = fuzz ]; then
        need_cmd python3 || missing="$missing python3"   # the tests' loopback server and JSON checks
        need_cmd clang || missing="$missing clang"
        compgen -G "/usr/lib/llvm-*/lib/clang/*/lib/linux/libclang_rt.fuzzer-*.a" >/dev/null ||
            missing="$missing libclang-rt-14-dev"
    fi
    [ -e /usr/include/zlib.h ] || missing="$missing zlib1g-dev"
    need_cmd pkg-config || missing="$missing pkg-config"
    if need_cmd pkg-config; then
        pkg-config --exists libavformat libavcodec libswscale libavutil 2>/dev/null ||
            missing="$missing libavcodec-dev libavformat-dev libswscale-dev libavutil-dev"
        pkg-config --exists libcurl 2>/dev/null || missing="$missing libcurl4-openssl-dev"
        # OpenMPI only for the test tiers (a build without it refuses --use_usp)
        if [ "${1:-}" = fuzz ]; then
            { pkg-config --exists ompi-c 2>/dev/null && need_cmd mpirun; } || missing="$missing libopenmpi-dev openmpi-bin"
        fi
    fi
    [ -z "$missing" ] && return 0
    if [ "$(id -u)" = 0 ] && need_cmd apt-get; then
        echo "== installing:$missing"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $PACKAGES >/dev/null
    else
        echo "error: missing:$missing; install them with: sudo apt-get install -y $PACKAGES" >&2
        exit 1
    fi
}

# Spec name or path -> path.
spec_path() {
    case "$1" in
        *.lua) echo "$1" ;;
        *) echo "specs/$1.lua" ;;
    esac
}

gen() {
    [ $# -eq 1 ] || { echo "usage: ./build.sh gen <spec name or path>" >&2; exit 2; }
    local spec variant
    spec=$(spec_path "$1")
    [ -f "$spec" ] || { echo "error: $spec: no such spec (see specs/)" >&2; exit 2; }
    variant=$(basename "$spec" .lua)
    echo "== gen $spec -> out/$variant/skyreels-$variant"
    # shellcheck disable=SC2086  # SKY_CMAKE_ARGS: extra configure flags, split on spaces (e.g. -DSKY_FFMPEG=OFF)
    cmake -S . -B "build/$variant" -DSKY_SPECS="$spec" ${SKY_CMAKE_ARGS:-} >"build/cmake-$variant.log" 2>&1 ||
        { cat "build/cmake-$variant.log" >&2; exit 1; }
    cmake --build "build/$variant" -j "$(nproc)" 2>&1 | grep -v -E '^\[ *[0-9]+%\] (Building|Linking|Built)' || true
    [ -x "out/$variant/skyreels-$variant" ] || { echo "error: build of $variant failed" >&2; exit 1; }
}

demo() {
    # The tiny built-in demo: a tiny Diffusion-Forcing model with RANDOM weights (made by our own
    # random-weights tool: the video is noise, by construction), a tiny umT5 text encoder (random
    # weights) with a tiny SentencePiece tokenizer (tests/fixtures/tokenizer/), the real DF pipeline
    # end to end on the CPU backend: a long video of three windows with overlap_history and
    # addnoise_condition, VAE decode, mp4.
    gen tiny_df
    local b=out/tiny_df/skyreels-tiny_df d=out/demo
    mkdir -p "$d"
    "$b" random-weights --output "$d/dit.safetensors" --seed 1
    "$b" random-weights --program vae --output "$d/vae.safetensors" --seed 2
    "$b" random-weights --program t5 --output "$d/t5.safetensors" --seed 3
    "$b" --dit_weights "$d/dit.safetensors" --vae_weights "$d/vae.safetensors" --t5_weights "$d/t5.safetensors" \
         --tokenizer tests/fixtures/tokenizer/tiny_umt5.model --num_frames 37 --base_num_frames 21 \
         --overlap_history 9 --addnoise_condition 20 --inference_steps 10 --seed 42 -o out/demo.mp4
    echo "== demo: wrote out/demo.mp4 (random weights: the video is noise; see README for real checkpoints)"
}

mkdir -p build
case "${1:-}" in
    "") deps; demo ;;
    deps) deps fuzz ;;
    gen) shift; deps; gen "$@" ;;
    test) deps fuzz; exec bash tests/run.sh ;;
    test-all) deps fuzz; SKY_TEST_ALL=1 exec bash tests/run.sh ;;
    fuzz) shift; deps fuzz; exec bash tests/fuzz/run.sh --long "${1:-300}" "${@:2}" ;;
    -h|--help) sed -n '2,13p' "$0" ;;
    *) echo "usage: ./build.sh [test | test-all | gen <spec> | fuzz [seconds] [targets] | deps]" >&2; exit 2 ;;
esac
