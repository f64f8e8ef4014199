#!/usr/bin/env bash
# tests/bench/test_bench.sh — `skyreels-<variant> bench` (runtime/cli/bench.c, docs/bench.md) in CI:
#   1. tiny_df on the CPU backend: dit_forward, text_encode and vae_decode timed once each (--iters 1
#      --warmup 0), the JSON checked by check_bench_json.py (every documented field, typed; the op groups'
#      times sum to the instrumented forward's; the groups' FLOP model equals the spec's count within 1%);
#      with --peak_tflops the floor and the ratio to it;
#   2. tiny_df128 on the CUDA plugin built against the CPU emulator (tests/emu): dit_forward only (the
#      emulated VAE would take minutes), the same checks plus the plugin's hash and the planned device memory;
#   3. usage errors exit 2 and write nothing.
# Times here are the CPU's and the emulator's: they show the mechanism, not a speed.
set -uo pipefail
cd "$(dirname "$0")/../.."
pass=0 fail=0
ok() { echo "ok   $*"; pass=$((pass + 1)); }
bad() { echo "FAIL $*"; fail=$((fail + 1)); }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export TMPDIR=$tmp

checks() {   # json backend parts label
    if python3 tests/bench/check_bench_json.py "$1" "$2" "$3" > "$tmp/chk.txt" 2>&1; then
        ok "$4: $(grep -c '^ok' "$tmp/chk.txt") JSON checks ($(grep -o 'group times [0-9.e-]* s within' "$tmp/chk.txt" | head -1) the forward)"
    else cat "$tmp/chk.txt"; bad "$4: the JSON's checks"; fi
}

B=out/tiny_df/skyreels-tiny_df
if ./build.sh gen tiny_df > "$tmp/gen.log" 2>&1; then
    if "$B" bench --backend cpu --iters 1 --warmup 0 --peak_tflops 1 --peak_gbs 10 --json "$tmp/cpu.json" \
        > "$tmp/cpu.txt" 2> "$tmp/cpu.err"; then
        grep -q 'CPU times' "$tmp/cpu.txt" && ok "tiny_df bench (cpu): the table says CPU times" ||
            { cat "$tmp/cpu.txt"; bad "tiny_df bench (cpu): no 'CPU times' label"; }
        checks "$tmp/cpu.json" cpu dit,t5,vae "tiny_df bench --backend cpu"
    else cat "$tmp/cpu.txt" "$tmp/cpu.err"; bad "tiny_df bench --backend cpu failed"; fi
    for a in "--iters 0" "--parts none" "--warmup -1" "--bogus 1" "--peak_tflops 0"; do
        # shellcheck disable=SC2086
        "$B" bench --backend cpu $a --json "$tmp/no.json" > /dev/null 2> "$tmp/u.err"; rc=$?
        if [ "$rc" -eq 2 ] && [ ! -e "$tmp/no.json" ] && grep -q 'error: bench' "$tmp/u.err"; then ok "bench $a: usage error (exit 2), nothing written"
        else cat "$tmp/u.err"; bad "bench $a: exit $rc (want 2)"; fi
    done
else cat "$tmp/gen.log"; bad "./build.sh gen tiny_df"; fi

v=tiny_df128 CUDA=${CUDA_HOME:-/usr/local/cuda}
P=build/emu/$v/libskyreels-$v-cuda-emu.so
if [ ! -f "$CUDA/include/cuda.h" ]; then
    echo "bench on the emulator: not run (no CUDA toolkit headers under $CUDA/include)"
elif ./build.sh gen "$v" > "$tmp/gen.log" 2>&1 && { [ -f "$P" ] || bash tests/emu/build.sh "$v" > /dev/null 2> "$tmp/emu.log"; }; then
    if SKY_CUDA_PLUGIN="$PWD/$P" out/$v/skyreels-$v bench --backend cuda --parts dit --iters 1 --warmup 0 \
        --json "$tmp/emu.json" > "$tmp/emu.txt" 2> "$tmp/emu.err"; then
        grep -q 'CUDA times' "$tmp/emu.txt" && ok "$v bench (cuda, emulated): the table" ||
            { cat "$tmp/emu.txt"; bad "$v bench (cuda, emulated): no 'CUDA times' label"; }
        checks "$tmp/emu.json" cuda dit "$v bench --backend cuda (emulated)"
    else cat "$tmp/emu.txt" "$tmp/emu.err"; bad "$v bench --backend cuda (emulated) failed"; fi
else cat "$tmp/gen.log" "$tmp/emu.log" 2>/dev/null | tail -20; bad "building $v and its emulated plugin"; fi

echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
