-- gen/main.lua: spec -> graph -> plan -> emitted sources (design.md §1).
--
-- Usage: lua5.4 gen/main.lua <spec.lua> <out_dir> [--stop-after=spec|graph|plan]
--   Writes <out_dir>/gen/*.c, <out_dir>/plan.txt, <out_dir>/graph.txt and <out_dir>/MANIFEST
--   (only files whose content changed are rewritten). With --stop-after, prints that stage's
--   dump to stdout and writes nothing.
-- Run from anywhere: paths in generated files are relative to the repository root.

local root = (arg and arg[0] or "gen/main.lua"):match("^(.*)[/\\]gen[/\\]main%.lua$") or "."
package.path = root .. "/gen/?.lua;" .. package.path

require("lib.strict")
local fail     = require("lib.fail")
local xxh64    = require("lib.xxh64")
local sorted   = require("lib.sorted")
local spec     = require("spec")
local graph    = require("graph")
local plan     = require("plan")
local emit_c   = require("emit_c")
local emit_cuda = require("emit_cuda")
local emit_cuda_vae = require("emit_cuda_vae")
local emit_cuda_enc = require("emit_cuda_enc")
local manifest = require("manifest")
local cwriter  = require("lib.cwriter")

-- Parse the command line into { spec_path, out_dir, stop_after }.
local function parse_args(args)
    local opts = {}
    local positional = {}
    for _, a in ipairs(args) do
        local stop = a:match("^%-%-stop%-after=(.+)$")
        if stop then
            if stop ~= "spec" and stop ~= "graph" and stop ~= "plan" then
                fail.user("--stop-after=%s: must be spec, graph or plan", stop)
            end
            opts.stop_after = stop
        elseif a:sub(1, 2) == "--" then
            fail.user("unknown option %s (usage: gen/main.lua <spec.lua> <out_dir> [--stop-after=spec|graph|plan])", a)
        else
            positional[#positional + 1] = a
        end
    end
    if #positional ~= 2 and not (opts.stop_after and #positional == 1) then
        fail.user("usage: lua5.4 gen/main.lua <spec.lua> <out_dir> [--stop-after=spec|graph|plan]")
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

local function run(opts)
    local s = spec.load(opts.spec_path)                 -- validated, every derived size filled in
    s.rel_path = spec_rel_path(opts.spec_path)          -- no absolute paths in generated files
    if opts.stop_after == "spec" then io.write(spec.dump(s)); return end

    local programs = graph.build(s)                     -- { dit_forward = g }
    if opts.stop_after == "graph" then io.write(graph.dump(programs)); return end

    local plans = plan.make(programs)                -- one arena per program, peak known
    if opts.stop_after == "plan" then io.write(plan.dump(plans)); return end

    local ctx = { inputs = {}, templates = {} }
    ctx.spec_rel = s.rel_path
    ctx.spec_hash = xxh64.hex(s.text)
    ctx.inputs[ctx.spec_rel] = ctx.spec_hash
    ctx.generator_hash, ctx.generator_count = generator_hash(ctx.inputs)
    ctx.read_template = function(path)                  -- templates read are hashed and listed
        local text = read_file(root .. "/" .. path)
        ctx.templates[path] = xxh64.hex(text)
        ctx.inputs[path] = ctx.templates[path]
        return text
    end

    local files = {}                                    -- path -> text, written at the end
    local cuda_plan = s.targets.cuda and emit_cuda.emit(s, programs, files, ctx) or nil
    local cuda_vae = s.targets.cuda and emit_cuda_vae.emit(s, programs, files, ctx) or {}
    if s.targets.cuda then
        for name, p in pairs(emit_cuda_enc.emit(s, programs, files, ctx)) do cuda_vae[name] = p end
    end
    local cuda_plans = {}                               -- program -> CUDA plan (none without the cuda target)
    if cuda_plan then
        cuda_plans.dit_forward = cuda_plan
        for name, p in pairs(cuda_vae) do cuda_plans[name] = p end
        files["plan_cuda.txt"] = plan.dump(cuda_plans)
    end
    emit_c.emit(s, plans, files, ctx, cuda_plans)       -- variant.c records the CUDA plans' peaks too
    files["plan.txt"] = plan.dump(plans)
    files["graph.txt"] = graph.dump(programs)
    manifest.add(files, ctx)
    cwriter.write_tree(opts.out_dir, files)             -- sorted, write-if-changed
    for _, name in ipairs(sorted.keys(plans)) do
        io.stderr:write(string.format("gen: %s %s: arena peak %s bytes (%.2f MiB), %d weights\n", s.variant, name,
            plan.commas(plans[name].peak), plans[name].peak / 1048576, #programs[name].weights))
    end
    if cuda_plan then
        io.stderr:write(string.format("gen: %s dit_forward (cuda): arena peak %s bytes (%.2f MiB)\n", s.variant,
            plan.commas(cuda_plan.peak), cuda_plan.peak / 1048576))
    end
    for _, name in ipairs(sorted.keys(cuda_vae)) do
        io.stderr:write(string.format("gen: %s %s (cuda): arena peak %s bytes (%.2f MiB)\n", s.variant, name,
            plan.commas(cuda_vae[name].peak), cuda_vae[name].peak / 1048576))
    end
end

os.exit(fail.main(function() run(parse_args(arg)) end))
