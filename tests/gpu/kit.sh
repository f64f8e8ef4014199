#!/usr/bin/env bash
# tests/gpu/kit.sh — build here, on a machine without a GPU, everything the GPU checks run (the carry kit),
# so that the GPU machine spends its minutes running, not building (issue 16 item 3):
#
#   bash tests/gpu/kit.sh [--small] [--out DIR]       default DIR .gpukit (ignored by git)
#
#   DIR/bin/skyreels-tiny_df128, libskyreels-tiny_df128-cuda.so          cuda tiny, teacache, default cuda
#   DIR/bin/skyreels-df_1.3b_540p, libskyreels-df_1.3b_540p-cuda.so      540P forward (bench), VAE 540P
#   DIR/bin/sttool                                                       compares outputs with fixtures
#   DIR/bin/attention_test (nvcc: sm_80 + sm_90a), DIR/bin/runtime_test  the attention and runtime rows
#   DIR/lib/  the shared libraries the binaries load that a CUDA image may lack (libsentencepiece, libxxhash,
#             protobuf-lite, libgomp), copied from this machine; CUDA's own (cudart, cublasLt, nvrtc, the
#             driver) are the GPU machine's
#   DIR/whl/  the diffusers wheel (tests/gpu/carry_wheels.sh's pin, 4.4 MB) from .whl/ or pip download
#   DIR/MANIFEST  every file with its size and sha256, the commit and date it was built from
#
# --small: tiny_df128 and sttool only (what CI's dry run checks, tests/gpu/kit_test.sh; a minute or two).
# The plugins carry their kernels built in for the H200 (-DSKY_CUDA_ARCHS=sm_90a, or $SKY_KIT_ARCHS: "none" leaves
# them to NVRTC on the GPU machine, which then needs the toolkit's headers), so the GPU side compiles nothing.
# Binaries are built with -DSKY_FFMPEG=OFF -DSKY_CURL=OFF (no check reads or writes a video) from a copy of the
# working tree in build/kit/src, so out/ and the build/<variant> folders are left alone. The kit must stay under
# 64 MiB (what a GPU run may carry): the script fails, saying by how much, when it does not.
# Run it on the GPU machine with: bash tests/gpu/kit_run.sh (--dry-run here).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$PWD
small=0 kit=.gpukit
while [ $# -gt 0 ]; do
    case $1 in
        --small) small=1 ;;
        --out) kit=${2:?--out needs a folder}; shift ;;
        *) echo "usage: bash tests/gpu/kit.sh [--small] [--out DIR]" >&2; exit 2 ;;
    esac
    shift
done
variants="tiny_df128"
[ "$small" = 1 ] || variants="tiny_df128 df_1.3b_540p"
LIMIT=$((64 * 1024 * 1024))
src=build/kit/src
CUDA=${CUDA_HOME:-/usr/local/cuda}

# The copy keeps its build folders between runs (tar keeps the files' times: make rebuilds what changed).
echo "== copying the working tree into $src"
mkdir -p "$src"
git ls-files -z | tar --null -T - -cf - 2> /dev/null | tar -xf - -C "$src"

rm -rf "$kit.tmp"
mkdir -p "$kit.tmp/bin" "$kit.tmp/lib" "$kit.tmp/whl"
for v in $variants; do
    echo "== $v (FFmpeg and curl off)"
    (cd "$src" && mkdir -p build && cmake -S . -B "build/$v" -DSKY_SPECS="specs/$v.lua" -DSKY_FFMPEG=OFF -DSKY_CURL=OFF \
        -DSKY_CUDA_ARCHS="${SKY_KIT_ARCHS:-sm_90a}" \
        > "build/cmake-$v.log" 2>&1 || { cat "build/cmake-$v.log" >&2; exit 1; }
     cmake --build "build/$v" -j "$(nproc)" > "build/make-$v.log" 2>&1 || { tail -30 "build/make-$v.log" >&2; exit 1; })
    cp "$src/out/$v/skyreels-$v" "$kit.tmp/bin/"
    [ -f "$src/out/$v/libskyreels-$v-cuda.so" ] ||
        { echo "error: $v: no CUDA plugin built (is the CUDA toolkit and libxxhash-dev here?)" >&2; exit 1; }
    cp "$src/out/$v/libskyreels-$v-cuda.so" "$kit.tmp/bin/"
done
strip --strip-debug "$kit.tmp"/bin/* 2> /dev/null || true

echo "== sttool"
(cd "$src" && bash tests/numeric/build_sttool.sh) && cp "$src/build/tools/sttool" "$kit.tmp/bin/"

if [ "$small" = 0 ]; then
    echo "== attention_test (nvcc, sm_80 + sm_90a) and runtime_test"
    (cd "$src" && bash tests/gpu/build_attention_test.sh > build/attention_build.log 2>&1) ||
        { tail -20 "$src/build/attention_build.log" >&2; exit 1; }
    cp "$src/build/gpu/attention_test" "$kit.tmp/bin/"
    (cd "$src" && bash tests/compile/runtime_cuda_compile.sh > build/runtime_build.log 2>&1) ||
        { tail -20 "$src/build/runtime_build.log" >&2; exit 1; }
    cp "$src/build/tests/gpu/runtime_test" "$kit.tmp/bin/"
    echo "== the diffusers wheel"
    # the pin of tests/gpu/carry_wheels.sh (pure Python; the GPU image has torch and diffusers' other needs)
    if ls .whl/diffusers-*.whl > /dev/null 2>&1; then cp .whl/diffusers-*.whl "$kit.tmp/whl/"
    elif ! python3 -m pip download -q --no-deps --only-binary=:all: -d "$kit.tmp/whl" diffusers==0.36.0; then
        echo "warning: no diffusers wheel (none in .whl/, pip download failed): the diffusers rows will fail"
    fi
fi

# The libraries the binaries load from outside glibc, the C++ runtime and CUDA: copied so the GPU image needs
# none of our Debian packages (ldd resolves them here; kit_run.sh puts DIR/lib on LD_LIBRARY_PATH).
echo "== libraries"
for f in "$kit.tmp"/bin/*; do
    ldd "$f" 2> /dev/null | awk '$2 == "=>" && $3 ~ /^\// { print $3 }'
done | sort -u | while read -r lib; do
    case $(basename "$lib") in
        libc.so*|libm.so*|libdl.so*|libpthread.so*|librt.so*|ld-linux*|libstdc++.so*|libgcc_s.so*) ;;
        libcuda.so*|libcudart.so*|libcublas*|libnvrtc*|libnvJitLink*) ;;
        *) cp -L "$lib" "$kit.tmp/lib/" ;;
    esac
done

{
    echo "# carry kit: built by tests/gpu/kit.sh$([ "$small" = 1 ] && echo " --small") from $(git rev-parse HEAD)$(
        git diff --quiet HEAD || echo ' (with uncommitted changes)') on $(date -u +%FT%TZ)"
    (cd "$kit.tmp" && find . -type f ! -name MANIFEST | sort | while read -r f; do
        printf '%s %10d %s\n' "$(sha256sum "$f" | cut -c1-16)" "$(stat -c %s "$f")" "${f#./}"
    done)
} > "$kit.tmp/MANIFEST"
size=$(du -sb "$kit.tmp" | cut -f1)
if [ "$size" -gt "$LIMIT" ]; then
    echo "error: the kit is $size bytes, $((size - LIMIT)) over 64 MiB; see $kit.tmp/MANIFEST" >&2
    exit 1
fi
rm -rf "$kit"
mv "$kit.tmp" "$kit"
echo "== $kit: $(awk -v s="$size" 'BEGIN { printf "%.1f MiB", s / 1048576 }') ($(grep -vc '^#' "$kit/MANIFEST") files)"
echo "   on the GPU machine: bash tests/gpu/kit_run.sh$([ "$kit" = .gpukit ] || echo " --kit $kit")   (here: --dry-run)"
