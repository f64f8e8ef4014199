#!/usr/bin/env bash
# tests/gen/determinism.sh — every spec in specs/ generates byte-identical output twice: once from
# the repository root with a relative spec path, once from another working directory with absolute
# paths (a fresh Lua state each time, so a stray pairs() order shows). Prints each plan's peak.
# Also compiles the generated CPU C of every spec with -Werror (compile-only: no numbers checked).
set -euo pipefail
cd "$(dirname "$0")/../.."
root=$(pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
for spec in specs/*.lua; do
    v=$(basename "$spec" .lua)
    lua5.4 gen/main.lua "$spec" "$tmp/a/$v" 2>"$tmp/$v.log"
    (cd "$tmp" && lua5.4 "$root/gen/main.lua" "$root/$spec" "$tmp/b/$v" 2>/dev/null)
    peak=$(sed -n 's/^gen: [^ ]* \([a-z_]*\( (cuda)\)*\): arena peak [0-9,]* bytes (\([0-9.]*\) MiB).*/\1 \3 MiB/p' "$tmp/$v.log" |
           paste -sd ',' - | sed 's/,/, /g')
    if diff -r "$tmp/a/$v" "$tmp/b/$v" > "$tmp/$v.diff"; then
        ok=1
        for c in "$tmp/a/$v"/gen/*_cpu.c "$tmp/a/$v"/gen/variant.c; do   # (the CUDA files: tests/compile/)
            cc -std=c11 -O0 -Wall -Wextra -Werror -D_POSIX_C_SOURCE=200809L -Iruntime -c "$c" -o "$tmp/x.o" || ok=0
        done
        if [ "$ok" = 1 ]; then
            printf 'ok   %-16s identical twice (%d files), compiles; arena peaks: %s\n' "$v" \
                   "$(find "$tmp/a/$v" -type f | wc -l)" "$peak"
            pass=$((pass + 1))
        else
            echo "FAIL $v: generated C does not compile"
            fail=$((fail + 1))
        fi
    else
        echo "FAIL $v: two generations differ:"
        head -n 20 "$tmp/$v.diff"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
