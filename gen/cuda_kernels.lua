-- gen/cuda_kernels.lua
-- ====================
-- What the CUDA emitters share (emit_cuda.lua: dit_forward; emit_cuda_vae.lua: vae_decode and
-- vae_encode): kernel instances rendered once per name from templates/cuda/, the kernels file that
-- nvcc and NVRTC both compile (helpers first, then every kernel in name order), its copy as a C
-- string for NVRTC, and the rows of a GEMM table.

local clit    = require("lib.clit")
local cwriter = require("lib.cwriter")
local render  = require("lib.render")
local sorted  = require("lib.sorted")
local graph   = require("graph")
local header  = require("header")

local cuda_kernels = {}

-- C identifier of a tensor, weight or kernel name: upper case, [^A-Z0-9] -> _.
function cuda_kernels.ident(name) return (name:upper():gsub("[^A-Z0-9]", "_")) end

-- Kernel name: template, then its constants in sorted order.
function cuda_kernels.kernel_name(template, consts)
    local parts = { template }
    for _, key in ipairs(sorted.keys(consts)) do
        local v = tostring(consts[key]):gsub("long long", "i64"):gsub("[^%w]", "")
        parts[#parts + 1] = key:lower():gsub("_", "") .. v
    end
    return table.concat(parts, "_")
end

-- A set of kernel instances: set:add(template, consts[, named]) renders templates/cuda/<template>.cu.in
-- once per distinct name and returns the name. The name is made of the constants, or only of those
-- listed in `named` (for long per-channel tables: one instance per program; two instances that share a
-- name must render the same text).
function cuda_kernels.new_set(ctx)
    local set = { kernels = {}, order = {}, templates_used = {} }
    function set:add(template, consts, named)
        local key_consts = consts
        if named then
            key_consts = {}
            for _, k in ipairs(named) do key_consts[k] = consts[k] end
        end
        local name = cuda_kernels.kernel_name(template, key_consts)
        if self.kernels[name] and named then
            local vars = { name = name }
            for _, key in ipairs(sorted.keys(consts)) do
                local v = consts[key]
                vars[key] = type(v) == "string" and v or clit.int(v)
            end
            local path = "templates/cuda/" .. template .. ".cu.in"
            assert(render.render(ctx.read_template(path), vars, path) == self.kernels[name],
                   "cuda_kernels: kernel name " .. name .. " means two texts")
        end
        if not self.kernels[name] then
            local path = "templates/cuda/" .. template .. ".cu.in"
            local vars = { name = name }
            for _, key in ipairs(sorted.keys(consts)) do
                local v = consts[key]
                vars[key] = type(v) == "string" and v or clit.int(v)
            end
            self.kernels[name] = render.render(ctx.read_template(path), vars, path)
            self.order[#self.order + 1] = name
            self.templates_used[path] = true
        end
        return name
    end
    return set
end

-- gen/<program>_kernels.cu (the helpers, then every kernel of the set in name order) and
-- gen/<program>_kernels_src.c (the same text as a C string for NVRTC). Sorts set.order.
function cuda_kernels.write(s, ctx, files, program, set, n_gemms)
    table.sort(set.order)
    local helpers = { "templates/cuda/ptx.cuh", "templates/cuda/common.cuh", "templates/cuda/reduce.cuh" }
    local texts = {}
    for i, path in ipairs(helpers) do
        texts[i] = ctx.read_template(path)
        set.templates_used[path] = true
    end
    local used = {}
    for path in pairs(set.templates_used) do used[path] = ctx.templates[path] end
    local rel = "gen/" .. program .. "_kernels.cu"
    local cu = cwriter.new()
    cu:raw(header.c_comment(s, ctx, rel, {
        string.format("program    %s (cuda): %d kernels, %d GEMM shapes (cuBLASLt)", program, #set.order, n_gemms),
        "compile    nvcc -gencode=arch=compute_90a,code=sm_90a (or sm_80), or NVRTC at run time (same text)",
    }, used))
    for _, text in ipairs(texts) do cu:raw(text) end
    for _, name in ipairs(set.order) do
        cu:blank()
        cu:raw(set.kernels[name])
    end
    files[rel] = cu:text()

    local src = cwriter.new()
    src:raw(header.c_comment(s, ctx, "gen/" .. program .. "_kernels_src.c",
                             { "source     " .. rel .. " as a C string, for NVRTC" }))
    src:line("const char %s_kernels_src[] =", program)
    for line in files[rel]:gmatch("([^\n]*)\n") do src:line("    %s", clit.str(line .. "\n")) end
    src:line("    ;")
    files["gen/" .. program .. "_kernels_src.c"] = src:text()
end

-- The kernel enum and name table of a set (after write(), which sorts it) into writer h.
function cuda_kernels.tables(h, program, set)
    h:open(string.format("enum {                                      /* kernels, in the order of %s_kernel_names */",
                         program))
    for i, name in ipairs(set.order) do h:line("K_%s = %d,", cuda_kernels.ident(name), i - 1) end
    h:close("};")
    h:blank()
    h:open(string.format("const char *const %s_kernel_names[%d] = {", program, #set.order))
    for _, name in ipairs(set.order) do h:line("%s,", clit.str(name)) end
    h:close("};")
    h:blank()
end

-- The GEMM table {m_max, n, k, a_dtype, out_dtype, epilogue, ldx, ldw, ldy, w_kn} into writer h.
function cuda_kernels.gemm_table(h, program, gemms)
    h:line("/* GEMMs: y[m, n] = x[m, k] W[n, k]^T (+ b), m <= m_max; built once at start-up (runtime/gemm.h) */")
    h:open(string.format("const sky_gemm_desc %s_gemms[%d] = {", program, #gemms))
    for _, d in ipairs(gemms) do
        h:line("{%d, %d, %d, %s, %s, %s, %d, %d, %d, %d},", d.m_max, d.n, d.k, d.a_dtype, d.out_dtype, d.epilogue,
               d.ldx or 0, d.ldw or 0, d.ldy or 0, d.w_kn and 1 or 0)
    end
    h:close("};")
    h:blank()
end

-- Index of GEMM descriptor d in gemms (appended when new; equal shapes share a row).
function cuda_kernels.gemm_index(gemms, index, d)
    local key = string.format("%d_%d_%d_%s_%s_%s_%d_%d_%d_%s", d.m_max, d.n, d.k, d.a_dtype, d.out_dtype, d.epilogue,
                              d.ldx or 0, d.ldw or 0, d.ldy or 0, tostring(d.w_kn))
    if not index[key] then
        gemms[#gemms + 1] = d
        index[key] = #gemms - 1
    end
    return index[key]
end

-- Record function `fname` of graph g into writer h: its runtime parameters, the symbols its launches read
-- (graph.prologue: and a (void) for each parameter nothing reads), then the launch sequence `body`.
function cuda_kernels.record_function(h, g, fname, body, doc)
    local params = {}
    for _, par in ipairs(g.params) do params[#params + 1] = "int " .. par.name end
    local proto = string.format("void %s(const sky_cuda_program *st, CUstream s, %s)", fname, table.concat(params, ", "))
    h:line("/* %s */", doc)
    h:line("%s;", proto)
    h:line("%s", proto)
    h:open("{")
    for _, l in ipairs(graph.prologue(g, body)) do h:line("%s", l) end
    h:raw(body:gsub("[^\n]+", "    %0"))
    h:close("}")
    h:blank()
end

-- The opening of program `name`'s descriptor (a `ctype` value) into writer h: the kernels and the
-- GEMM table; the caller adds its own fields and closes it.
function cuda_kernels.desc_open(h, ctype, name, set, gemms)
    h:line("extern const char %s_kernels_src[];", name)
    h:blank()
    h:open(string.format("const %s %s_cuda = {", ctype, name))
    h:line(".kernels_src = %s_kernels_src, .kernels_file = %s,", name, clit.str("gen/" .. name .. "_kernels.cu"))
    h:line(".n_kernels = %d, .kernel_names = %s_kernel_names,", #set.order, name)
    h:line(".n_gemms = %d, .gemms = %s_gemms,", #gemms, name)
end

-- "{offset, bytes}" of tensor t in plan p.
function cuda_kernels.slot(p, t)
    local b = p.by_tensor[t.id]
    return string.format("{%s, %s}", clit.size(b.offset), clit.size(b.bytes))
end

return cuda_kernels
