#!/usr/bin/env bash
# tests/emu/build.sh <variant> — the CUDA plugin of a generated variant, built against the CPU
# emulator instead of a GPU (README.md):
#
#   build/emu/<variant>/libskyreels-<variant>-cuda-emu.so
#   build/emu/<variant>/launch_check        (launch_check.c: the launch sequence at full size, dry)
#
# The same runtime sources and generated host code as the real plugin (CMakeLists.txt), linked
# with tests/emu/driver.c (the CUDA driver, runtime, cuBLASLt and NVRTC calls over host memory),
# tests/emu/emu.c (the fiber GPU) and the generated kernels compiled by g++ through
# tests/emu/prepare.lua + cuda_emu.h. Load it with SKY_CUDA_PLUGIN=<that .so> and --backend cuda.
# When the variant's build made fat binaries (SKY_CUDA_ARCHS, in build/<variant>/fatbin/<variant>/), their C
# files are linked in as in the real plugin, and prepare.lua records each fat binary's xxh64, so that the
# emulated cuModuleLoadData runs the host-compiled kernels of exactly that build (driver.c).
# --use_usp's device collectives (runtime/cuda/usp_nccl.c) are linked with tests/emu/nccl_double.c, NCCL's calls
# over MPI between the rank processes (OpenMPI's mpicc gives the flags); without mpicc, runtime/cuda/usp_nccl_none.c.
# Needs out/<variant>/ generated (./build.sh gen <variant>), or EMU_GEN=<folder>/gen, and the CUDA toolkit's headers.
set -euo pipefail
cd "$(dirname "$0")/../.."
v=${1:?usage: tests/emu/build.sh <variant>}
CUDA=${CUDA_HOME:-/usr/local/cuda}
gen=${EMU_GEN:-out/$v/gen}     # EMU_GEN: generated code outside out/ (run.sh step 7: beside other tiers)
b=build/emu/$v
[ -f "$gen/dit_forward_cuda.c" ] || { echo "error: $gen/dit_forward_cuda.c missing: ./build.sh gen $v (a CUDA target)" >&2; exit 1; }
[ -f "$CUDA/include/cuda.h" ] || { echo "error: no CUDA headers under $CUDA/include (set CUDA_HOME)" >&2; exit 1; }
mkdir -p "$b"

CFLAGS=(-std=c11 -O2 -g -fPIC -fvisibility=hidden -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L
        -Iruntime -Itests/emu -I"$CUDA/include")
CXXFLAGS=(-std=c++17 -O2 -g -fPIC -fvisibility=hidden -Wall -Wno-unused-function -Wno-unknown-pragmas -Wno-psabi -Werror
          -Itests/emu/include -Itests/emu -include tests/emu/cuda_emu.h)

objs=()
cc_one() {   # source object [extra flags...]
    local src=$1 obj=$2
    shift 2
    gcc "${CFLAGS[@]}" "$@" -c "$src" -o "$obj"
    objs+=("$obj")
}
for f in cuda/cuda_ctx cuda/cuda_program cuda/dit_cuda core/dtype cuda/enc_cuda cuda/fatbin cuda/gemm cuda/nvrtc_cache cuda/offload cuda/selftest_cuda cuda/selftest_families core/status cuda/vae_cuda models/fp8_quant; do
    cc_one "runtime/$f.c" "$b/${f#*/}.o" -DSKY_PLUGIN_VARIANT="\"$v\""
done
progs=()
fb=build/$v/fatbin/$v
[ -z "${EMU_GEN:-}" ] || fb=$gen/../fatbin     # generated outside out/: no build of it made fat binaries
# The fat binary of a program, when the variant's build made one from the text now in gen/ (a later generation
# without a build leaves a stale one, which the real plugin would refuse: not linked here).
fatbin_of() {
    local c=$fb/$1_kernels_fatbin.c h
    [ -f "$c" ] || return 1
    h=$(F="$gen/$1_kernels.cu" lua5.4 -e 'package.path = "gen/?.lua;" .. package.path
        local f = assert(io.open(os.getenv("F"), "rb")); io.write(require("lib.xxh64").hex(f:read("a")))')
    if grep -q "(xxh64 $h)" "$c"; then return 0; fi
    echo "tests/emu/build.sh: $c was built from another gen/$1_kernels.cu: not linked (./build.sh gen $v rebuilds it)" >&2
    return 1
}
for f in "$gen"/*_cuda.c; do
    prog=$(basename "$f" _cuda.c)
    progs+=("$prog")
    cc_one "$f" "$b/${prog}_cuda.o"
    cc_one "$gen/${prog}_kernels_src.c" "$b/${prog}_kernels_src.o"
    if fatbin_of "$prog"; then cc_one "$fb/${prog}_kernels_fatbin.c" "$b/${prog}_kernels_fatbin.o"; fi
done
cc_one tests/emu/driver.c "$b/driver.o" -D_GNU_SOURCE
mpi_link=()
if command -v mpicc > /dev/null 2>&1; then
    read -r -a mpi_cflags <<< "$(mpicc --showme:compile)"
    read -r -a mpi_link <<< "$(mpicc --showme:link)"
    cc_one runtime/cuda/usp_nccl.c "$b/usp_nccl.o" -DSKY_NCCL_LINKED
    cc_one tests/emu/nccl_double.c "$b/nccl_double.o" "${mpi_cflags[@]}"
else
    cc_one runtime/cuda/usp_nccl_none.c "$b/usp_nccl_none.o"
fi
cc_one tests/emu/emu.c "$b/emu.o"

for prog in "${progs[@]}"; do
    fatbin=()
    if fatbin_of "$prog" 2> /dev/null; then fatbin=("$fb/${prog}_kernels.fatbin"); fi
    lua5.4 tests/emu/prepare.lua "$gen/${prog}_kernels.cu" "gen/${prog}_kernels.cu" "${fatbin[@]}" > "$b/${prog}_kernels_emu.cpp"
    g++ "${CXXFLAGS[@]}" -c "$b/${prog}_kernels_emu.cpp" -o "$b/${prog}_kernels_emu.o"
    objs+=("$b/${prog}_kernels_emu.o")
done

g++ -shared -o "$b/libskyreels-$v-cuda-emu.so" "${objs[@]}" "${mpi_link[@]}" -lxxhash -lm -Wl,--no-undefined
# launch_check: the same objects walking the full-size launch sequence in dry mode (launch_check.c)
gcc "${CFLAGS[@]}" -c tests/emu/launch_check.c -o "$b/launch_check.o"
g++ -o "$b/launch_check" "$b/launch_check.o" "${objs[@]}" "${mpi_link[@]}" -lxxhash -lm
echo "$b/libskyreels-$v-cuda-emu.so"
