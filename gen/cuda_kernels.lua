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

return cuda_kernels
