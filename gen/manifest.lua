-- gen/manifest.lua
-- =================
-- MANIFEST: `input|output  path  xxh64` for every file that went into a generation and every
-- file it wrote, sorted, so anyone can check a build (design.md §1). Paths are relative: inputs
-- to the repository, outputs to out/<variant>/.

local sorted = require("lib.sorted")
local xxh64  = require("lib.xxh64")

local manifest = {}

-- Add "MANIFEST" to `files`, covering ctx.inputs (path -> hash) and every file in `files`.
function manifest.add(files, ctx)
    local lines = { "# MANIFEST: xxh64 of every input (relative to the repository) and output (relative to this directory)" }
    for _, path in ipairs(sorted.keys(ctx.inputs)) do
        lines[#lines + 1] = string.format("input   %-48s %s", path, ctx.inputs[path])
    end
    for _, path in ipairs(sorted.keys(files)) do
        lines[#lines + 1] = string.format("output  %-48s %s", path, xxh64.hex(files[path]))
    end
    files["MANIFEST"] = table.concat(lines, "\n") .. "\n"
end

return manifest
