#!/usr/bin/env bash
# tests/fuzz/run.sh — build the libFuzzer targets of tests/fuzz/ (clang, ASan + UBSan, the runtime libraries
# instrumented for coverage) in build/fuzz/ and fuzz each one from its committed seed corpus
# tests/fuzz/corpus/<target>/. Ends with "N passed, M failed": one check per target (its seeds run and it
# fuzzes for the time given without a crash, a leak, a sanitizer report or a timeout).
#
#   bash tests/fuzz/run.sh                       # the test tier: every target SKY_FUZZ_SECONDS (default 3) s
#   bash tests/fuzz/run.sh --long 300            # ./build.sh fuzz: 300 s per target, corpora kept (below)
#   bash tests/fuzz/run.sh --long 600 prompt pth # some targets only
#
# Runs are deterministic in their choices (-seed=1) but not in how many inputs a time allows. The test tier
# fuzzes into a scratch corpus; --long keeps what it finds in build/fuzz/corpus/<target>/ (fold new seeds
# into the committed corpus with: build/fuzz/fuzz/fuzz_<t> -merge=1 tests/fuzz/corpus/<t> build/fuzz/corpus/<t>).
# A crash leaves its input in build/fuzz/artifacts/ (rerun it: build/fuzz/fuzz/fuzz_<t> FILE); fix the
# runtime and add the input to the target's corpus as a regression seed.
# Needs clang with libFuzzer (Debian: apt-get install -y clang libclang-rt-14-dev); without it the tier
# fails, saying so.
set -uo pipefail
cd "$(dirname "$0")/../.."

long=0
secs=${SKY_FUZZ_SECONDS:-3}
if [[ ${1:-} == --long ]]; then
    long=1
    secs=${2:-300}
    shift 2 || shift $#
fi
targets=("$@")
[[ ${#targets[@]} -gt 0 ]] || targets=(json safetensors checkpoint pth spm_model tokenizer_json prompt resume prompt_enhancer image video)

B=build/fuzz
log=$B/logs
mkdir -p "$B" "$log" "$B/artifacts"

fail_all() {   # the tier cannot run: one failed check, said plainly
    echo "fuzz: NOT RUN ($1)"
    echo "0 passed, 1 failed"
    exit 1
}

command -v clang >/dev/null && command -v clang++ >/dev/null ||
    fail_all "no clang; install it with: apt-get install -y clang libclang-rt-14-dev"
probe=$(mktemp -d)
printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { (void)d; (void)n; return 0; }\n' > "$probe/p.c"
clang -fsanitize=fuzzer,address,undefined "$probe/p.c" -o "$probe/p" 2> "$probe/err" ||
    { cat "$probe/err"; rm -rf "$probe"; fail_all "clang cannot link libFuzzer; install it with: apt-get install -y libclang-rt-14-dev"; }
rm -rf "$probe"

# The build: runtime libraries with coverage, ASan and UBSan (UB halts); pth's data.pkl CRC check off so that
# mutations reach the unpickler (pth.c). Only the fuzz targets and what they link are built.
san="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer"
start=$(date +%s)
echo "== build: clang $san -fsanitize=fuzzer-no-link -> $B/fuzz/"
cmake -S . -B "$B" -DSKY_FUZZ=ON -DSKY_CUDA=OFF -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ \
    -DCMAKE_BUILD_TYPE=Debug -DCMAKE_C_FLAGS_DEBUG="-O1 -g" -DCMAKE_CXX_FLAGS_DEBUG="-O1 -g" \
    -DCMAKE_C_FLAGS="$san -fsanitize=fuzzer-no-link -DFUZZING_BUILD_MODE_UNSAFE_FOR_PRODUCTION" \
    -DCMAKE_CXX_FLAGS="$san -fsanitize=fuzzer-no-link" -DCMAKE_EXE_LINKER_FLAGS="$san" > "$log/cmake.log" 2>&1 ||
    { cat "$log/cmake.log"; fail_all "cmake failed (above)"; }
build_targets=()
for t in "${targets[@]}"; do build_targets+=("fuzz_$t"); done
cmake --build "$B" -j "$(nproc)" --target "${build_targets[@]}" > "$log/build.log" 2>&1 ||
    { grep -E -B2 -A8 'error|Error' "$log/build.log" | head -n 60; fail_all "build failed (above; $log/build.log)"; }
echo "   built in $(($(date +%s) - start)) s"

pass=0 fail=0
rows=()
export ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
for t in "${targets[@]}"; do
    exe=$B/fuzz/fuzz_$t
    seeds=tests/fuzz/corpus/$t
    if [[ ! -x $exe ]]; then
        fail=$((fail + 1)); rows+=("$(printf '%-15s %s' "$t" "FAIL: no binary $exe (SKY_FFMPEG=OFF?)")"); continue
    fi
    if [[ ! -d $seeds ]] || [[ -z $(ls -A "$seeds") ]]; then
        fail=$((fail + 1)); rows+=("$(printf '%-15s %s' "$t" "FAIL: no seed corpus $seeds")"); continue
    fi
    if [[ $long -eq 1 ]]; then
        work=$B/corpus/$t
        mkdir -p "$work"
    else
        work=$(mktemp -d)
    fi
    start=$(date +%s)
    rc=0
    "$exe" -seed=1 -max_total_time="$secs" -timeout=25 -rss_limit_mb=2560 -print_final_stats=1 \
        -artifact_prefix="$B/artifacts/$t-" "$work" "$seeds" > "$log/$t.log" 2>&1 || rc=$?
    took=$(($(date +%s) - start))
    runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log/$t.log" | tail -n 1)
    corpus=$(ls "$work" | wc -l)
    [[ $long -eq 1 ]] || rm -rf "$work"
    if [[ $rc -eq 0 ]] && ! grep -qE 'ERROR: (Address|Leak|Undefined)Sanitizer|runtime error:|ERROR: libFuzzer' "$log/$t.log"; then
        pass=$((pass + 1))
        rows+=("$(printf '%-15s ok   %4d s, %8s runs, %4d seeds, %5d new inputs' "$t" "$took" "${runs:-?}" "$(ls "$seeds" | wc -l)" "$corpus")")
    else
        fail=$((fail + 1))
        art=$(grep -o "$B/artifacts/$t-[a-z-]*[0-9a-f]*" "$log/$t.log" | tail -n 1)
        echo "---- fuzz_$t (exit $rc):"
        grep -E -A30 'ERROR:|runtime error:|fuzz harness|failed with the message' "$log/$t.log" | head -n 50
        if [[ -n $art ]]; then what="reproducer $art (rerun: $exe $art)"; else what="see $log/$t.log"; fi
        rows+=("$(printf '%-15s FAIL %4d s: %s' "$t" "$took" "$what")")
    fi
done

echo
echo "fuzz targets ($([[ $long -eq 1 ]] && echo "--long, ")$secs s each):"
printf '  %s\n' "${rows[@]}"
echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
