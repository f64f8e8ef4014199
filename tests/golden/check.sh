#!/usr/bin/env bash
# tests/golden/check.sh — regenerate each golden spec into a temporary directory and diff it
# against tests/golden/<variant>/. Ends with "N passed, M failed".
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
pass=0 fail=0
for v in $(grep -v '^#' tests/golden/specs.txt); do
    lua5.4 gen/main.lua "specs/$v.lua" "$tmp/$v" 2>/dev/null
    if diff -ru "tests/golden/$v" "$tmp/$v" > "$tmp/$v.diff"; then
        echo "ok   golden $v ($(find "tests/golden/$v" -type f | wc -l) files)"
        pass=$((pass + 1))
    else
        echo "FAIL golden $v: generated output differs from tests/golden/$v; first hunk:"
        sed -n '1,40p' "$tmp/$v.diff"
        echo "     if intended: tests/golden/update.sh, and commit the golden change with the change that caused it"
        fail=$((fail + 1))
    fi
done
echo "$pass passed, $fail failed"
[ "$fail" -eq 0 ]
