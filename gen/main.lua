-- gen/main.lua: spec -> graph -> lower -> plan -> emitted sources (design.md §1).
--
-- Usage: lua5.4 gen/main.lua <spec.lua> <out_dir> [--stop-after=spec|graph|lower|plan]
--   Writes <out_dir>/gen/*.c, <out_dir>/plan.txt (and plan_cuda.txt), <out_dir>/graph.txt and
--   <out_dir>/MANIFEST (only files whose content changed are rewritten). With --stop-after, prints
--   that stage's dump to stdout and writes nothing.
-- Run from anywhere: paths in generated files are relative to the repository root.

local root = (arg and arg[0] or "gen/main.lua"):match("^(.*)[/\\]gen[/\\]main%.lua$") or "."
package.path = root .. "/gen/?.lua;" .. package.path

require("lib.strict")
local fail     = require("lib.fail")
local xxh64    = require("lib.xxh64")
local sorted   = require("lib.sorted")
local spec     = require("spec")
local graph    = require("graph")
local lower    = require("lower")
local plan     = require("plan")
local emit_c   = require("emit.c")
local emit_variant = require("emit.variant")
local manifest = require("manifest")
local cwriter  = require("lib.cwriter")

local cuda_emitter = require("emit.cuda_programs")   -- the CUDA emitter of each program

-- Parse the command line into { spec_path, out_dir, stop_after }.
local function parse_args(args)
    local opts = {}
    local positional = {}
    for _, a in ipairs(args) do
        local stop = a:match("^%-%-stop%-after=(.+)$")
        if stop then
            if stop ~= "spec" and stop ~= "graph" and stop ~= "lower" and stop ~= "plan" then
                fail.user("--stop-after=%s: must be spec, graph, lower or plan", stop)
            end
            opts.stop_after = stop
        elseif a:sub(1, 2) == "--" then
            fail.user("unknown option %s (usage: gen/main.lua <spec.lua> <out_dir> [--stop-after=spec|graph|lower|plan])", a)
        else
            positional[#positional + 1] = a
        end
    end
    if #positional ~= 2 and not (opts.stop_after and #positional == 1) then
        fail.user("usage: lua5.4 gen/main.lua <spec.lua> <out_dir> [--stop-after=spec|graph|lower|plan]")
    end
    opts.spec_path, opts.out_dir = positional[1], positional[2]
    return opts
end

-- Whole file as a string (generator inputs: spec, templates, gen sources).
local function read_file(path)
    local f = io.open(path, "rb")
    if not f then fail.user("%s: cannot open", path) end
    local text = f:read("a")
    f:close()
    return text
end

-- Relative name of the spec for headers: its path inside the repository, else its file name.
local function spec_rel_path(path)
    local p = path:gsub("\\", "/"):gsub("^%./", "")
    if p:sub(1, 1) ~= "/" and not p:find("%.%.") then return p end
    local abs_root = io.popen("cd '" .. root:gsub("'", "'\\''") .. "' && pwd"):read("l")
    if abs_root and p:sub(1, #abs_root + 1) == abs_root .. "/" then return p:sub(#abs_root + 2) end
    return "(outside the repository)/" .. p:match("[^/]+$")
end

-- xxh64 over every gen/**/*.lua (sorted by path; each file as path, NUL, text, NUL).
local function generator_hash(inputs)
    local list = io.popen("cd '" .. root:gsub("'", "'\\''") .. "' && find gen -name '*.lua' -type f")
    local paths = {}
    for line in list:lines() do paths[#paths + 1] = line end
    list:close()
    table.sort(paths)
    local parts = {}
    for _, p in ipairs(paths) do
        local text = read_file(root .. "/" .. p)
        inputs[p] = xxh64.hex(text)
        parts[#parts + 1] = p .. "\0" .. text .. "\0"
    end
    return xxh64.hex(table.concat(parts)), #paths
end

-- What the generation read, for headers and the MANIFEST: the spec's and every generator file's hash, and
-- ctx.read_template(path), which hashes and lists each template as it reads it.
local function generation_context(s)
    local ctx = { inputs = {}, templates = {} }
    ctx.spec_rel = s.rel_path
    ctx.spec_hash = xxh64.hex(s.text)
    ctx.inputs[ctx.spec_rel] = ctx.spec_hash
    ctx.generator_hash, ctx.generator_count = generator_hash(ctx.inputs)
    ctx.read_template = function(path)
        local text = read_file(root .. "/" .. path)
        ctx.templates[path] = xxh64.hex(text)
        ctx.inputs[path] = ctx.templates[path]
        return text
    end
    return ctx
end

-- Every output file (path -> text): each backend's sources, the variant table, the dumps of the graph
-- and the plans.
local function emit(s, programs, plans, ctx)
    local files = {}
    emit_c.emit(s, plans.cpu, files, ctx)               -- gen/<program>_cpu.c
    emit_variant.emit(s, plans, files, ctx)             -- gen/variant.c (both backends' peaks)
    for _, name in ipairs(sorted.keys(plans.cuda or {})) do
        cuda_emitter[name].emit(s, plans.cuda[name], files, ctx)   -- gen/<program>_cuda.c, _kernels.cu, _src.c
    end
    files["graph.txt"] = graph.dump(programs)
    files["plan.txt"] = plan.dump(plans.cpu)
    if plans.cuda then files["plan_cuda.txt"] = plan.dump(plans.cuda) end
    return files
end

-- One line per program and backend on stderr: its arena peak.
local function report(s, plans)
    for _, backend in ipairs({ "cpu", "cuda" }) do
        for _, name in ipairs(sorted.keys(plans[backend] or {})) do
            local p = plans[backend][name]
            io.stderr:write(string.format("gen: %s %s%s: arena peak %s bytes (%.2f MiB)%s\n", s.variant, name,
                backend == "cuda" and " (cuda)" or "", plan.commas(p.peak), p.peak / 1048576,
                backend == "cpu" and string.format(", %d weights", #p.graph.weights) or ""))
        end
    end
end

-- The stages in order; --stop-after prints a stage's dump and ends there.
local function run(opts)
    local s = spec.load(opts.spec_path)                 -- validated, every derived size filled in
    s.rel_path = spec_rel_path(opts.spec_path)          -- no absolute paths in generated files
    if opts.stop_after == "spec" then io.write(spec.dump(s)); return end

    local programs = graph.build(s)                     -- { dit_forward = g, ... }
    if opts.stop_after == "graph" then io.write(graph.dump(programs)); return end

    local lowered = lower.run(s, programs)              -- { cpu = programs, cuda = their lowered copies }
    if opts.stop_after == "lower" then io.write(lower.dump(lowered, s)); return end

    local plans = plan.make(lowered)                    -- one arena per program and backend, peaks known
    if opts.stop_after == "plan" then io.write(plan.dump_backends(plans)); return end

    local ctx = generation_context(s)
    local files = emit(s, programs, plans, ctx)         -- path -> text
    manifest.add(files, ctx)                            -- xxh64 of every input and output
    cwriter.write_tree(opts.out_dir, files)             -- sorted, write-if-changed
    report(s, plans)
end

os.exit(fail.main(function() run(parse_args(arg)) end))
