#!/usr/bin/env bash
# tests/compile/plugin_test.sh — the CUDA plugin (models/cuda_abi.h) built and loaded on a machine WITHOUT
# a GPU (COMPILE-ONLY for the numbers: tests/gpu/run.sh compares it with the CPU backend):
#   - ./build.sh gen tiny_df128 builds libskyreels-tiny_df128-cuda.so beside the binary (CMake found
#     the toolkit), linked with --no-undefined, exporting one symbol: sky_cuda_plugin_v1;
#   - --backend cuda without a driver, with the toolkit's stub driver, with a missing plugin and with
#     another variant's plugin each exit 1 with a message that says so, and write no output;
#   - a variant generated for the cpu target only refuses --backend cuda (exit 2);
#   - --backend cuda on text_encode reaches the plugin too (exit 1, no driver); an unknown backend exits 2;
#   - without --backend the run takes the CPU backend here and says why; $SKY_BACKEND overrides;
#   - -DSKY_CUDA_ARCHS with a target that is not one, or that nvcc does not know, stops the configure;
#   - --use_usp's device collectives (runtime/cuda/usp_nccl.c): the plugin loads without NCCL (not linked); the
#     module compiles with gcc and clang -Werror, links alone with --no-undefined without -lnccl, and, run, opens
#     the toolkit's libnccl.so.2 with every function it calls (the version nccl.h names); without the library its
#     message says what to install; without NCCL at build time (usp_nccl_none.c) its calls say what is missing.
# Prints "not run (no CUDA toolkit)" where CMake finds none; ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
CUDA_HOME=${CUDA_HOME:-/usr/local/cuda}
if [ ! -f "$CUDA_HOME/include/cuda.h" ] || [ ! -f "$CUDA_HOME/lib64/stubs/libcuda.so" ]; then
    echo "plugin: not run (no CUDA toolkit at $CUDA_HOME)"
    echo "0 passed, 0 failed"
    exit 0
fi
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
ok()  { pass=$((pass + 1)); echo "ok   $*"; }
bad() { fail=$((fail + 1)); echo "FAIL $*"; }

for v in tiny_df128 tiny_t2v; do
    ./build.sh gen "$v" > "$tmp/gen-$v.log" 2>&1 || { bad "./build.sh gen $v"; cat "$tmp/gen-$v.log"; }
done
B=out/tiny_df128/skyreels-tiny_df128 P=out/tiny_df128/libskyreels-tiny_df128-cuda.so
if [ -f "$P" ]; then ok "the plugin is built beside the binary ($P)"
else bad "no $P (see $tmp/gen-tiny_df128.log: did CMake find the CUDA toolkit?)"; grep -i cuda build/cmake-tiny_df128.log; fi
exported=$(nm -D --defined-only "$P" 2>/dev/null | awk '{print $3}' | grep -v '^_' | tr '\n' ' ')
[ "$exported" = "sky_cuda_plugin_v1 " ] && ok "it exports only sky_cuda_plugin_v1" ||
    bad "exported symbols: '$exported' (want sky_cuda_plugin_v1 only)"

$B random-weights --output "$tmp/w.safetensors" > /dev/null 2>&1
$B random-inputs --output "$tmp/in.safetensors" > /dev/null 2>&1
mkdir -p "$tmp/stub"
ln -s "$CUDA_HOME/lib64/stubs/libcuda.so" "$tmp/stub/libcuda.so.1"

# expect CODE "message substring" ENV... -- command...: exit code, message, and no output file.
expect() {
    local code=$1 want=$2 out rc
    shift 2
    rm -f "$tmp/v.safetensors"
    out=$(env "$@" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -eq "$code" ] && [[ "$out" == *"$want"* ]] && [ ! -e "$tmp/v.safetensors" ]; then
        ok "exit $rc: $want"
    else
        bad "$*: exit $rc (want $code), message: $out (want: $want), output left: $(ls "$tmp/v.safetensors" 2>/dev/null)"
    fi
}
A=(program dit_forward --weights "$tmp/w.safetensors" --inputs "$tmp/in.safetensors" --output "$tmp/v.safetensors")
# Without a driver: libcuda.so.1 is nowhere on the loader's path (the toolkit ships only the stub).
expect 1 "no NVIDIA driver on this machine" LD_LIBRARY_PATH="$CUDA_HOME/lib64" "$B" "${A[@]}" --backend cuda
expect 1 "no usable NVIDIA driver: cuInit failed with CUDA_ERROR_STUB_LIBRARY" \
    LD_LIBRARY_PATH="$tmp/stub:$CUDA_HOME/lib64" "$B" "${A[@]}" --backend cuda
expect 1 "cannot load the CUDA plugin $tmp/none.so" SKY_CUDA_PLUGIN="$tmp/none.so" "$B" "${A[@]}" --backend cuda
# Another variant's plugin: a second CUDA-capable spec (tiny_df128 under another name, outside specs/).
sed 's/variant = "tiny_df128"/variant = "tiny_df128_other"/' specs/tiny_df128.lua > "$tmp/tiny_df128_other.lua"
./build.sh gen "$tmp/tiny_df128_other.lua" > "$tmp/gen-other.log" 2>&1 || { bad "./build.sh gen tiny_df128_other"; cat "$tmp/gen-other.log"; }
O=out/tiny_df128_other/skyreels-tiny_df128_other
expect 1 "was generated for tiny_df128, this binary is tiny_df128_other" SKY_CUDA_PLUGIN="$PWD/$P" \
    LD_LIBRARY_PATH="$tmp/stub:$CUDA_HOME/lib64" "$O" "${A[@]}" --backend cuda
rm -rf out/tiny_df128_other build/tiny_df128_other build/cmake-tiny_df128_other.log
# A variant generated for the cpu target only (head dim 16) refuses --backend cuda as usage.
T=out/tiny_t2v/skyreels-tiny_t2v
$T random-weights --output "$tmp/wt.safetensors" > /dev/null 2>&1
$T random-inputs --output "$tmp/int.safetensors" > /dev/null 2>&1
expect 2 "--backend cuda: this variant was generated for the cpu target only" "$T" program dit_forward \
    --weights "$tmp/wt.safetensors" --inputs "$tmp/int.safetensors" --output "$tmp/v.safetensors" --backend cuda
expect 2 "--backend rocm: unknown backend (cpu or cuda)" "$B" "${A[@]}" --backend rocm
# every program goes through the plugin with --backend cuda (here: to the missing driver, before any input)
expect 1 "no NVIDIA driver on this machine" LD_LIBRARY_PATH="$CUDA_HOME/lib64" "$B" program text_encode \
    --weights "$tmp/w.safetensors" --inputs "$tmp/in.safetensors" --output "$tmp/v.safetensors" --backend cuda
# The CPU backend of the same binary still runs.
if "$B" "${A[@]}" --backend cpu > /dev/null 2>&1 && [ -s "$tmp/v.safetensors" ]; then ok "--backend cpu runs"
else bad "--backend cpu failed"; fi
# Without --backend (and without $SKY_BACKEND, which tests/run.sh sets to cpu) the default is cuda only where
# a GPU answers: here the run takes the CPU backend and says why, without a driver and with the stub one;
# SKY_BACKEND=cuda asks for the GPU as --backend cuda does; another value is a usage error.
default_cpu() {   # $1 the reason expected in the note; the rest: env assignments
    local want=$1
    shift
    rm -f "$tmp/v.safetensors"
    out=$(env -u SKY_BACKEND "$@" "$B" "${A[@]}" 2>&1 >/dev/null); rc=$?
    if [ "$rc" -eq 0 ] && [ -s "$tmp/v.safetensors" ] && [[ "$out" == *"backend: cpu ($want"* ]]; then
        ok "no --backend: the CPU backend, noting: $want"
    else bad "no --backend with $*: exit $rc, $out (want backend: cpu ($want...)"; fi
}
default_cpu "no NVIDIA driver (libcuda.so.1)" LD_LIBRARY_PATH="$CUDA_HOME/lib64"
default_cpu "no usable NVIDIA driver: cuInit failed with CUDA_ERROR_STUB_LIBRARY" LD_LIBRARY_PATH="$tmp/stub:$CUDA_HOME/lib64"
expect 1 "no usable NVIDIA driver: cuInit failed with CUDA_ERROR_STUB_LIBRARY" SKY_BACKEND=cuda \
    LD_LIBRARY_PATH="$tmp/stub:$CUDA_HOME/lib64" "$B" "${A[@]}"
expect 2 "SKY_BACKEND=gpu: expected cpu or cuda" SKY_BACKEND=gpu "$B" "${A[@]}"
expect 2 "SKY_BACKEND=cuda: tiny_t2v was generated for the cpu target only" SKY_BACKEND=cuda "$T" program dit_forward \
    --weights "$tmp/wt.safetensors" --inputs "$tmp/int.safetensors" --output "$tmp/v.safetensors"
# SKY_CUDA_ARCHS (CMakeLists.txt): a target that is not one, and one nvcc does not know, stop the configure with a
# message that names the option (a scratch build directory: the variant's own keeps its setting).
for bad_arch in "sm90a:is not sm_XY" "sm_12:cannot compile for sm_12"; do
    want=${bad_arch#*:}
    out=$(cmake -S . -B "$tmp/archs" -DSKY_SPECS=specs/tiny_df128.lua -DSKY_CUDA_ARCHS="${bad_arch%%:*}" 2>&1); rc=$?
    if [ "$rc" -ne 0 ] && [[ "$out" == *"SKY_CUDA_ARCHS"*"$want"* ]]; then ok "-DSKY_CUDA_ARCHS=${bad_arch%%:*}: configure stops: $want"
    else bad "-DSKY_CUDA_ARCHS=${bad_arch%%:*}: configure exit $rc, want a message with '$want': $(echo "$out" | grep -A2 'Error' | head -3)"; fi
    rm -rf "$tmp/archs"
done
# --use_usp over NCCL (runtime/cuda/usp_nccl.h): the plugin does not link NCCL (it loads without it, and runs
# single-GPU); the module opens libnccl.so.2 when --use_usp first needs it, every function it calls looked up at once.
if ldd "$P" | grep -q libnccl || nm -D -u "$P" | awk '$2 ~ /^nccl/' | grep -q .; then
    bad "the plugin needs libnccl at load: $(ldd "$P" | grep nccl) $(nm -D -u "$P" | awk '$2 ~ /^nccl/ { print $2 }' | tr '\n' ' ')"
else ok "the plugin loads without NCCL (no libnccl in ldd, no nccl* symbol undefined)"; fi
if [ -f "$CUDA_HOME/include/nccl.h" ]; then
    for c in "gcc -O2" "gcc -O0 -g" "clang -O2"; do
        if ${c%% *} ${c#* } -std=c11 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -fPIC -iquote runtime -I"$CUDA_HOME/include" \
              -c runtime/cuda/usp_nccl.c -o "$tmp/usp_nccl.o" 2> "$tmp/nccl.log"; then ok "$c -Werror runtime/cuda/usp_nccl.c"
        else bad "$c runtime/cuda/usp_nccl.c: $(head -5 "$tmp/nccl.log")"; fi
    done
    if cc -shared -o "$tmp/usp_nccl.so" "$tmp/usp_nccl.o" runtime/core/status.c runtime/core/dtype.c -fPIC -iquote runtime \
          -Wl,--no-undefined -L"$CUDA_HOME/lib64" -lcudart -ldl -lpthread -lm 2> "$tmp/nccl.log"; then
        ok "runtime/cuda/usp_nccl.c links alone against -lcudart -ldl (--no-undefined, no -lnccl)"
    else bad "runtime/cuda/usp_nccl.c without -lnccl: $(head -5 "$tmp/nccl.log")"; fi
    # Loaded: the toolkit's libnccl.so.2 has every function the module looks up, and the version the header names;
    # with the library out of reach, the message says what to install.
    printf '%s\n' '#include <stdio.h>' '#include "cuda/usp_nccl.h"' 'int main(void)' '{' \
        '    unsigned char id[SKY_NCCL_ID_BYTES];' '    sky_err err;' '    const int v = sky_nccl_version();' \
        '    if (v) { printf("%d\n", v); return 0; }' '    if (sky_nccl_make_id(id, &err) == SKY_OK) return 1;' \
        '    puts(err.msg);' '    return 2;' '}' > "$tmp/nccl_load.c"
    want=$(awk '$2 == "NCCL_VERSION_CODE" { print $3 }' "$CUDA_HOME/include/nccl.h")
    if cc -std=c11 -iquote runtime -I"$CUDA_HOME/include" "$tmp/nccl_load.c" runtime/cuda/usp_nccl.c runtime/core/status.c \
          runtime/core/dtype.c -L"$CUDA_HOME/lib64" -lcudart -ldl -lpthread -lm -Wl,-rpath,"$CUDA_HOME/lib64" \
          -o "$tmp/nccl_load" 2> "$tmp/nccl.log"; then
        libdir=$(dirname "$(readlink -f "$CUDA_HOME/lib64/libnccl.so.2" 2> /dev/null || echo /none/x)")
        got=$(LD_LIBRARY_PATH="$libdir" "$tmp/nccl_load" 2>&1)
        if [ -n "$want" ] && [ "$got" = "$want" ]; then ok "libnccl.so.2 loaded when needed: every function found, version $got as nccl.h"
        elif [ ! -e "$libdir/libnccl.so.2" ]; then ok "no libnccl.so.2 beside the toolkit: the load is checked where one is"
        else bad "loading libnccl.so.2 from $libdir: '$got', nccl.h says $want"; fi
        got=$(SKY_NCCL_LIBRARY="$tmp/none/libnccl.so.2" "$tmp/nccl_load" 2>&1); rc=$?
        if [ "$rc" -eq 2 ] && [[ "$got" == *"NCCL could not be loaded: $tmp/none/libnccl.so.2"*"install NCCL"* ]]; then
            ok "without libnccl.so.2 (SKY_NCCL_LIBRARY names none): ${got:0:150}"
        else bad "without libnccl.so.2: exit $rc, '$got'"; fi
        got=$(SKY_NCCL_LIBRARY="$(readlink -f "$CUDA_HOME/lib64/libcudart.so")" "$tmp/nccl_load" 2>&1); rc=$?
        if [ "$rc" -eq 2 ] && [[ "$got" == *"lacks ncclGetVersion"* ]]; then ok "a library that is not NCCL: ${got:0:150}"
        else bad "SKY_NCCL_LIBRARY naming libcudart: exit $rc, '$got'"; fi
    else bad "building a loader of usp_nccl.c: $(head -5 "$tmp/nccl.log")"; fi
else ok "no NCCL headers under $CUDA_HOME: the plugin is built with usp_nccl_none.c (--use_usp on CUDA refused)"; fi
printf '%s\n' '#include <stdio.h>' '#include "cuda/usp_nccl.h"' 'int main(void)' '{' \
    '    unsigned char id[SKY_NCCL_ID_BYTES];' '    sky_err err;' \
    '    if (sky_nccl_built() || sky_nccl_make_id(id, &err) == SKY_OK) return 1;' '    puts(err.msg);' '    return 0;' \
    '}' > "$tmp/nccl_none.c"
out=""
if cc -std=c11 -Wall -Wextra -Werror -iquote runtime "$tmp/nccl_none.c" runtime/cuda/usp_nccl_none.c runtime/core/status.c \
      -lm -o "$tmp/nccl_none" 2> "$tmp/nccl.log" && out=$("$tmp/nccl_none") &&
   [[ "$out" == *"this plugin was built without NCCL (install NCCL"* ]]; then
    ok "a plugin without NCCL (usp_nccl_none.c) says: $out"
else bad "usp_nccl_none.c: $(cat "$tmp/nccl.log") $out"; fi
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
