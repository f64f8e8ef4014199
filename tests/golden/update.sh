#!/usr/bin/env bash
# tests/golden/update.sh — regenerate the golden copies of generated code (tests/golden/<variant>/).
# Run after an intended generator, template or spec change, and commit the golden change together
# with the change that caused it.
set -euo pipefail
cd "$(dirname "$0")/../.."
for v in $(grep -v '^#' tests/golden/specs.txt); do
    rm -rf "tests/golden/$v"
    lua5.4 gen/main.lua "specs/$v.lua" "tests/golden/$v" 2>/dev/null
    echo "updated tests/golden/$v"
done
