#!/usr/bin/env bash
# tests/run.sh — every CPU test tier (design.md §6), what `./build.sh test` and CI run.
# Each tier is a script that prints its own checks and ends with "N passed, M failed"; this
# script sums them, prints a table, and exits non-zero if anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."
# These tiers check the CPU backend wherever they run: on a machine with a GPU a run that names no
# --backend would take the CUDA one (models/backend.h: sky_backend_default). The CUDA checks name it.
export SKY_BACKEND=cpu

tiers=(
    "generator units         | lua5.4 tests/gen/run.lua"
    "golden generated code   | bash tests/golden/check.sh"
    "CUDA on the CPU emulator | & bash tests/emu/run.sh"
    "determinism + compile   | bash tests/gen/determinism.sh"
    "runtime units (+ASan)   | bash tests/runtime/run_tests.sh"
    "pth reader (+ASan)      | bash tests/runtime/run_pth_tests.sh"
    "tokenizer (+ASan)       | bash tests/runtime/run_text_tests.sh"
    "sampler + forcing (+ASan) | bash tests/runtime/run_sampler_tests.sh"
    "video I/O (+ASan)       | bash tests/runtime/run_video_tests.sh"
    "command line            | bash tests/runtime/test_cli.sh"
    "numbers + reproducibility | bash tests/runtime/test_checks.sh"
    "--use_usp under mpirun  | bash tests/runtime/test_usp.sh"
    "prompt enhancer (HTTP)  | bash tests/runtime/test_prompt_enhancer.sh"
    "permissions (as nobody) | bash tests/runtime/test_permissions.sh"
    "life cycle (FIFO, signals) | bash tests/runtime/test_life_cycle.sh"
    "compile: generated CUDA | bash tests/compile/run.sh"
    "compile: attention cfgs | bash tests/compile/attention_compile.sh"
    "compile: CUDA runtime   | bash tests/compile/runtime_cuda_compile.sh"
    "tiny_df under ASan, TSan | bash tests/runtime/test_sanitized_cli.sh"
    "fuzz: every parser      | bash tests/fuzz/run.sh"
    "GPU carry kit (dry run)  | bash tests/gpu/kit_test.sh"
    "                         | wait"
    "compile: CUDA plugin    | bash tests/compile/plugin_test.sh"
    "bench: cpu + emulator    | bash tests/bench/test_bench.sh"
    "DiT numerics vs diffusers | bash tests/numeric/run.sh"
    "LoRA vs diffusers        | bash tests/numeric/run_lora.sh"
    "fp8 weights vs diffusers | bash tests/numeric/run_fp8.sh"
    "TeaCache vs the original | bash tests/numeric/run_teacache.sh"
    "VAE numerics vs diffusers | bash tests/numeric/run_vae.sh"
    "encoders vs transformers | bash tests/numeric/run_encoders.sh"
    "pipelines vs diffusers  | bash tests/numeric/run_pipeline.sh"
)

total_pass=0 total_fail=0
rows=()
logs=$(mktemp -d)
trap 'rm -rf "$logs"' EXIT
# record NAME LOG RC SECS: the tier's row and totals, from its own last "N passed, M failed" line
record() {
    local line p f
    line=$(grep -E '^[0-9]+ passed, [0-9]+ failed' "$2" | tail -n 1)
    p=$(echo "$line" | sed -n 's/^\([0-9]*\) passed.*/\1/p'); p=${p:-0}
    f=$(echo "$line" | sed -n 's/.* \([0-9]*\) failed.*/\1/p'); f=${f:-0}
    if [ "$3" -ne 0 ] && [ "$f" -eq 0 ]; then f=1; fi      # a tier that crashed counts as failed
    total_pass=$((total_pass + p)); total_fail=$((total_fail + f))
    rows+=("$(printf '%-26s %6d %6d %6ss  %s' "$1" "$p" "$f" "$4" "$([ "$f" -eq 0 ] && echo ok || echo FAIL)")")
}
# A tier whose command starts with "&" runs in the background (the emulator: one core most of the time) while
# the tiers after it run, up to the "wait" entry, which prints its output and records it. It starts early, beside
# most tiers: they keep out of its variants (tiny_df128, tiny_i2v128, emu_*; its full-size launch checks generate
# into its own temporary folder), and build/tools/sttool, which both build, is renamed into place. The CUDA plugin
# test builds tiny_df128 too, so it runs after the wait. On one core, nothing runs beside.
bg_pid="" bg_name="" bg_start=0
for t in "${tiers[@]}"; do
    name=${t%%|*}
    cmd=${t#*|}
    cmd=${cmd# }
    if [ "$cmd" = wait ]; then
        [ -n "$bg_pid" ] || continue
        wait "$bg_pid"; rc=$?
        echo
        echo "==== $bg_name (in the background; its output)"
        cat "$logs/bg.log"
        record "$bg_name" "$logs/bg.log" "$rc" $(( $(date +%s) - bg_start ))
        bg_pid=""
        continue
    fi
    if [ "${cmd:0:2}" = "& " ]; then
        cmd=${cmd:2}
        if [ "$(nproc)" -ge 2 ]; then
            echo
            echo "==== $name ($cmd ) started in the background"
            bg_name=$name bg_start=$(date +%s)
            bash -c "$cmd" > "$logs/bg.log" 2>&1 &
            bg_pid=$!
            continue
        fi
    fi
    echo
    echo "==== $name ($cmd )"
    start=$(date +%s)
    bash -c "$cmd" 2>&1 | tee "$logs/fg.log"
    rc=${PIPESTATUS[0]}
    record "$name" "$logs/fg.log" "$rc" $(( $(date +%s) - start ))
done

echo
echo "tier                        passed failed   time"
for r in "${rows[@]}"; do echo "$r"; done
echo "GPU tier: not run (no GPU in this tier; tests/gpu/ runs on a lent GPU)"
echo
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" -eq 0 ]
