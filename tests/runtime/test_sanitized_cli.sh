#!/usr/bin/env bash
# tests/runtime/test_sanitized_cli.sh — the tiny DF binary built with sanitizers, running whole generations on
# the CPU backend (what the unit tests under ASan cannot reach: the pipelines, the generated programs, the
# threads of --use_cfg_parallel):
#   ASan + UBSan (build/sanitize-asan/, gcc -O2 -g, leaks detected, UB halts): random weights, then a DF run
#     from a start image with a prompt through the tokenizer and umT5, 2 steps, an mp4 and the finished window
#     kept (--resume_dir); then the same command again, which resumes from the kept window and must write the
#     same mp4, bit for bit;
#   TSan (build/sanitize-tsan/, without OpenMP so that every thread is one TSan sees; first a deliberate race
#     must be reported): --use_cfg_parallel (the unconditional passes on a second transformer, in a thread of
#     their own), and with --teacache too (the two passes decide in order on one state); latents only (a VAE
#     decode under TSan takes minutes).
# The builds keep out of build/<variant> and out/ (SKY_OUT_DIR). Any sanitizer report fails its check
# (halt_on_error, and the log is searched). Ends with "N passed, M failed".
set -uo pipefail
cd "$(dirname "$0")/../.."
export SKY_BACKEND=cpu
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0

# build NAME FLAGS [CMAKE ARGS...]: tiny_df with the sanitizer flags into build/sanitize-NAME/ (out/ inside it).
build() {
    local name=$1 flags=$2 b=build/sanitize-$1
    shift 2
    local start
    start=$(date +%s)
    if cmake -S . -B "$b" -DSKY_SPECS=specs/tiny_df.lua -DSKY_OUT_DIR="$PWD/$b/out" -DSKY_CUDA=OFF \
        -DCMAKE_C_FLAGS="$flags" -DCMAKE_CXX_FLAGS="$flags" -DCMAKE_EXE_LINKER_FLAGS="$flags" "$@" > "$tmp/cmake-$name.log" 2>&1 &&
        cmake --build "$b" -j "$(nproc)" --target skyreels-tiny_df > "$tmp/build-$name.log" 2>&1; then
        echo "== $name build: $(($(date +%s) - start)) s"
        return 0
    fi
    cat "$tmp/cmake-$name.log"; grep -E -B2 -A6 'error' "$tmp/build-$name.log" | head -n 40
    fail=$((fail + 1)); echo "FAIL $name: the sanitized build of tiny_df failed"
    return 1
}

# check NAME COMMAND...: runs it (its output in $tmp/NAME.log); exit 0 and no sanitizer report.
check() {
    local name=$1 rc=0 start
    shift
    start=$(date +%s)
    "$@" > "$tmp/$name.log" 2>&1 || rc=$?
    if [[ $rc -eq 0 ]] && ! grep -qE 'ERROR: (Address|Leak)Sanitizer|runtime error:|WARNING: ThreadSanitizer|ThreadSanitizer:' "$tmp/$name.log"; then
        pass=$((pass + 1)); echo "ok   $name ($(($(date +%s) - start)) s)"
        return 0
    fi
    fail=$((fail + 1)); echo "FAIL $name: exit $rc"
    grep -v '^denoise' "$tmp/$name.log" | head -n 60
    return 1
}

san="-g -fno-omit-frame-pointer"
if build asan "$san -fsanitize=address,undefined -fno-sanitize-recover=undefined"; then
    export ASAN_OPTIONS=halt_on_error=1:detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
    A=build/sanitize-asan/out/tiny_df/skyreels-tiny_df
    check "asan: random-weights" bash -c "$A random-weights --output $tmp/dit.safetensors --seed 1 &&
        $A random-weights --program vae --output $tmp/vae.safetensors --seed 2 &&
        $A random-weights --program t5 --output $tmp/t5.safetensors --seed 3"
    RUN=(--dit_weights "$tmp/dit.safetensors" --vae_weights "$tmp/vae.safetensors" --t5_weights "$tmp/t5.safetensors"
         --tokenizer tests/fixtures/tokenizer/tiny_umt5.model --prompt "A red fox &amp; a cat in ＦＵＬＬ width"
         --image tests/fixtures/pipeline/df_image_start.png --num_frames 17 --inference_steps 2 --seed 42
         --resume_dir "$tmp/resume")
    check "asan: DF from an image, prompt through the tokenizer, mp4, --resume_dir" "$A" "${RUN[@]}" -o "$tmp/a.mp4" &&
        check "asan: the same run resumed from its window" "$A" "${RUN[@]}" -o "$tmp/b.mp4" &&
        { if cmp -s "$tmp/a.mp4" "$tmp/b.mp4"; then pass=$((pass + 1)); echo "ok   asan: the resumed run's mp4 equals the first"
          else fail=$((fail + 1)); echo "FAIL asan: the resumed run's mp4 differs from the first"; fi; }
    unset ASAN_OPTIONS UBSAN_OPTIONS
fi

# TSan must work here before its silence means anything: a deliberate race is reported. Kernels with 32 bits
# of mmap randomness stop gcc 12's TSan at its start ("unexpected memory mapping"); setarch -R (no address
# randomisation) avoids that.
tsan_wrap=()
tsan_probe() {
    printf '%s\n' '#include <pthread.h>' 'static int shared;' \
        'static void *bump(void *p) { (void)p; shared++; return 0; }' \
        'int main(void) { pthread_t t; pthread_create(&t, 0, bump, 0); shared++; pthread_join(t, 0); return 0; }' \
        > "$tmp/race.c"
    cc -g -fsanitize=thread "$tmp/race.c" -o "$tmp/race" 2> "$tmp/race.log" || return 1
    "${tsan_wrap[@]}" "$tmp/race" > "$tmp/race.log" 2>&1
    grep -q 'WARNING: ThreadSanitizer: data race' "$tmp/race.log"
}
tsan_ok=1
if ! tsan_probe; then
    tsan_wrap=(setarch "$(uname -m)" -R)
    if tsan_probe; then
        echo "== tsan: runs under setarch -R (this kernel's address randomisation stops it otherwise)"
    else
        tsan_ok=0; fail=$((fail + 1)); echo "FAIL tsan: a deliberate data race is not reported here:"; head -n 5 "$tmp/race.log"
    fi
fi
[[ $tsan_ok -eq 1 ]] && { pass=$((pass + 1)); echo "ok   tsan: a deliberate data race is reported (the sanitizer works here)"; }

# OpenMP's runtime is not instrumented (TSan would report its barriers): off, and the pragmas it leaves are fine.
if [[ $tsan_ok -eq 1 ]] && build tsan "$san -fsanitize=thread -Wno-unknown-pragmas" -DCMAKE_DISABLE_FIND_PACKAGE_OpenMP=ON; then
    export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
    T=build/sanitize-tsan/out/tiny_df/skyreels-tiny_df
    W=("${tsan_wrap[@]}")
    [[ -f $tmp/dit.safetensors ]] || "${tsan_wrap[@]}" "$T" random-weights --output "$tmp/dit.safetensors" --seed 1 > /dev/null
    [[ -f $tmp/t5.safetensors ]] || "${tsan_wrap[@]}" "$T" random-weights --program t5 --output "$tmp/t5.safetensors" --seed 3 > /dev/null
    CFG=(--dit_weights "$tmp/dit.safetensors" --t5_weights "$tmp/t5.safetensors"
         --tokenizer tests/fixtures/tokenizer/tiny_umt5.model --num_frames 17 --inference_steps 3 --seed 42
         --use_cfg_parallel)
    check "tsan: --use_cfg_parallel (two transformers in two threads)" "${W[@]}" "$T" "${CFG[@]}" --output_latents "$tmp/c.safetensors"
    check "tsan: --use_cfg_parallel --teacache" "${W[@]}" "$T" "${CFG[@]}" --teacache --teacache_thresh 0.05 --output_latents "$tmp/t.safetensors"
    unset TSAN_OPTIONS
fi

echo "$pass passed, $fail failed"
[[ $fail -eq 0 ]]
