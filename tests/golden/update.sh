#!/usr/bin/env bash
# tests/golden/update.sh — regenerate the golden copies of generated code (tests/golden/<variant>/).
# Run after an intended generator, template or spec change, and commit the golden change together
# with the change that caused it.
set -euo pipefail
cd "$(dirname "$0")/../.."
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
for v in $(grep -v '^#' tests/golden/specs.txt); do
    lua5.4 gen/main.lua "specs/$v.lua" "$tmp/$v" > /dev/null 2> "$tmp/$v.log" || { cat "$tmp/$v.log"; exit 1; }
    rm -rf "tests/golden/$v"
    mv "$tmp/$v" "tests/golden/$v"
    echo "updated tests/golden/$v"
done
