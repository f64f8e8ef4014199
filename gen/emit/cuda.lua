-- gen/emit/cuda.lua
-- ==================
-- The skeleton the three CUDA emitters share (cuda_dit.lua: dit_forward; cuda_vae.lua: vae_decode and
-- vae_encode; cuda_enc.lua: text_encode and clip_encode). Each emits, from a program's CUDA plan (of
-- its lowered graph, lower.lua):
--   gen/P_kernels.cu      every kernel the program uses, rendered once per name from templates/cuda/
--                         after the helpers; nvcc and NVRTC compile this same text
--   gen/P_kernels_src.c   that text as a C string, one literal per line, for NVRTC
--   gen/P_cuda.c          the tables (arena offsets, weights, kernels, GEMMs) and the launch sequence
-- An emitter is a table op -> function(n, E) returning the C lines of node n; E is the program's emission
-- state (program_state below: the kernel set and the GEMM table filled as the lines are made). This
-- module walks the graph (launch_sequence), and writes the files' common parts in the order a _cuda.c
-- file has them: header and includes, offsets, the weights enum, the kernel and GEMM tables, the record
-- functions, the descriptor's opening.
--
-- Dims in comments: L tokens of the call, F latent frames, Ft timestep rows (1 or F).

local clit     = require("lib.clit")
local cwriter  = require("lib.cwriter")
local fail     = require("lib.fail")
local render   = require("lib.render")
local sorted   = require("lib.sorted")
local graph    = require("graph")
local header   = require("emit.header")
local names    = require("emit.names")
local schedule = require("schedule_sm90")

local cuda = {}

-- ---- names, types and launch arguments --------------------------------------------------------------

-- C identifier of a tensor, weight or kernel name: upper case, [^A-Z0-9] -> _.
function cuda.ident(name) return (name:upper():gsub("[^A-Z0-9]", "_")) end
local ident = cuda.ident

-- A dim as C: a literal or the name of a param or symbol in scope.
function cuda.dim_expr(d)
    if math.type(d) == "integer" then return clit.int(d) end
    return d
end

-- The leading dim of t as C.
function cuda.rows(t) return cuda.dim_expr(t.dims[1]) end

-- CUDA type of a tensor's recorded dtype.
function cuda.ctype(t)
    local types = { bf16 = "bf16", f32 = "float", f64 = "double", i64 = "long long" }
    return assert(types[t.dtype], "emit/cuda: no CUDA type for " .. tostring(t.dtype))
end

-- The GEMM table's name of a tensor's dtype.
function cuda.gemm_dtype(t)
    return assert(({ bf16 = "SKY_GEMM_BF16", f32 = "SKY_GEMM_F32" })[t.dtype], "emit/cuda: no GEMM dtype " .. t.dtype)
end

-- A launch argument pointing at tensor t: in the arena, or in the prompt arena (plan.lua).
function cuda.ptr(t) return (t.kind == "prompt" and "PROMPT_PTR(OFF_" or "PTR(OFF_") .. ident(t.name) .. ")" end

-- A launch argument pointing at weight w.
function cuda.wptr(w) return "WPTR(W_" .. ident(w.name) .. ")" end

-- "OUT(name, OFF_X, dtype, count)": tensor t as an op's output, which --trace records once the op has
-- run (OUT_PROMPT in the prompt arena; OUT_CL for a channels-last tensor of cl channels).
function cuda.out(t, cl)
    if cl and cl > 0 then
        assert(t.dtype == "f32", "emit/cuda: a channels-last output is fp32")
        return string.format("OUT_CL(%s, OFF_%s, %s, %d)", clit.str(t.name), ident(t.name), graph.numel_expr(t.dims), cl)
    end
    return string.format("%s(%s, OFF_%s, %s, %s)", t.kind == "prompt" and "OUT_PROMPT" or "OUT", clit.str(t.name),
                         ident(t.name), t.dtype:upper(), graph.numel_expr(t.dims))
end

-- An op of one launch: kernel k writing `out` (its first parameter, cuda.out), then args.
function cuda.op(k, gx, gy, bx, smem, out, args)
    local all = { out }
    for _, a in ipairs(args) do all[#all + 1] = a end
    return string.format("OP(%s, %s, %s, %s, %s, %s);", k, gx, gy, bx, smem, table.concat(all, ", "))
end

-- Elementwise launch of kernel k over n values (a C expression): one thread per value.
function cuda.elementwise(k, n, args)
    local th = schedule.elementwise_threads
    return string.format("LAUNCH(%s, CDIV(%s, %d), 1, %d, 0, %s);", k, n, th, th, table.concat(args, ", "))
end

-- The same as an op writing `out` (cuda.out), args the other parameters.
function cuda.elementwise_op(k, n, out, args)
    local th = schedule.elementwise_threads
    return cuda.op(k, string.format("CDIV(%s, %d)", n, th), 1, th, 0, out, args)
end

-- Threads of a row kernel over `width` values of node n, or a user error naming the spec and tensor.
function cuda.row_threads(s, n, width)
    local t = schedule.row_threads(width)
    if not t then
        fail.user("%s: %s needs a width that is a multiple of 32 for the CUDA backend, got %d", s.path, n.out.name, width)
    end
    return t
end

-- ---- kernel instances ---------------------------------------------------------------------------------

-- The text of template `template` rendered with consts as kernel `name`, and the template's path.
local function render_kernel(ctx, template, consts, name)
    local path = "templates/cuda/" .. template .. ".cu.in"
    local vars = { name = name }
    for _, key in ipairs(sorted.keys(consts)) do
        local v = consts[key]
        vars[key] = type(v) == "string" and v or clit.int(v)
    end
    return render.render(ctx.read_template(path), vars, path), path
end

-- A set of kernel instances: set:add(template, consts) renders templates/cuda/<template>.cu.in once per
-- distinct name (emit/names.lua) and returns the name; two instances that share a name must render the
-- same text. set.comments[name]: the comment beside the kernel (its template and constants);
-- set.instance[name]: { template, consts } (cuda.tables writes them as the kernel info table).
function cuda.new_set(ctx)
    local set = { kernels = {}, order = {}, templates_used = {}, comments = {}, consts_of = {}, instance = {} }
    function set:add(template, consts)
        local name = names.kernel("cuda", template, consts)
        local full = names.procedural(template, consts)
        if self.kernels[name] and self.consts_of[name] ~= full then
            assert(render_kernel(ctx, template, consts, name) == self.kernels[name],
                   "emit/cuda: kernel name " .. name .. " means two texts")
        end
        if not self.kernels[name] then
            local text, path = render_kernel(ctx, template, consts, name)
            self.kernels[name], self.consts_of[name] = text, full
            self.comments[name] = names.comment(name, path, consts)
            self.instance[name] = { template = template, consts = consts }
            self.order[#self.order + 1] = name
            self.templates_used[path] = true
        end
        return name
    end
    return set
end

-- Index of GEMM descriptor d in gemms (appended when new; equal shapes share a row).
function cuda.gemm_index(gemms, index, d)
    local key = string.format("%d_%d_%d_%s_%s_%s_%d_%d_%d_%s", d.m_max, d.n, d.k, d.a_dtype, d.out_dtype, d.epilogue,
                              d.ldx or 0, d.ldw or 0, d.ldy or 0, tostring(d.w_kn))
    if not index[key] then
        gemms[#gemms + 1] = d
        index[key] = #gemms - 1
    end
    return index[key]
end

-- Lists of repeated blocks of one shape: the index after them leaves a GEMM's role (blocks.3.ffn.0 ->
-- blocks.ffn.0; time_embedding.0 and decoder.upsamples.4.shortcut keep theirs).
local block_lists = { blocks = true, transformer = true }

-- The role of a GEMM reading weight (or, for the attention's GEMMs, module) `name`: the name without
-- ".weight" and without a repeated block's index.
function cuda.gemm_role(name)
    local parts, out = {}, {}
    for part in name:gsub("%.weight$", ""):gmatch("[^.]+") do parts[#parts + 1] = part end
    for i, part in ipairs(parts) do
        if not (part:match("^%d+$") and block_lists[parts[i - 1]]) then out[#out + 1] = part end
    end
    return table.concat(out, ".")
end

-- The emission state of one program: E:kernel(template, consts) -> "K_<NAME>" (the instance added to
-- the set), E:gemm(desc, role) -> "GEMM_<ROLE>", the name of its row in the GEMM table (roles
-- of one shape share a row; one role never has two), E:helper(name, make) -> name, a static C function
-- of the file whose lines make() gives (made once), E:out(n) -> node n's output as an op's (cuda.out; the
-- statement that takes it records n's output for --trace, so no TRACE line follows n).
function cuda.program_state(s, p, ctx)
    local E = { s = s, p = p, g = p.graph, set = cuda.new_set(ctx), gemms = {}, gemm_rows = {}, gemm_roles = {},
                gemm_role_row = {}, helpers = {}, traced = {}, cl = function() return 0 end }
    function E:out(n)
        self.traced[n] = true
        return cuda.out(n.out, self.cl(n))
    end
    function E:helper(name, make)
        if not self.helpers[name] then
            self.helpers[name] = make()
            self.helpers[#self.helpers + 1] = name
        end
        return name
    end
    function E:kernel(template, consts) return "K_" .. ident(self.set:add(template, consts)) end
    function E:gemm(d, role)
        local row = cuda.gemm_index(self.gemms, self.gemm_rows, d)
        local name = "GEMM_" .. ident(role)
        if self.gemm_role_row[name] == nil then
            self.gemm_roles[#self.gemm_roles + 1] = name
            self.gemm_role_row[name] = row
        end
        assert(self.gemm_role_row[name] == row, "emit/cuda: GEMM role " .. role .. " has two shapes")
        return name
    end
    return E
end

-- ---- the launch sequence ------------------------------------------------------------------------------

-- "/* out = op(in, ...)[ + fused]  [dims][ dtype] */" for node n.
function cuda.node_comment(n, fused, with_dtype)
    local args = {}
    for i, t in ipairs(n.ins) do args[i] = t.name end
    return string.format("/* %s */", clit.comment(string.format("%s = %s(%s)%s  %s%s", n.out.name, n.op,
        table.concat(args, ", "), fused and (" + " .. fused) or "", graph.dims_text(n.out.dims),
        with_dtype and (" " .. n.out.dtype) or "")))
end

-- "TRACE(name, OFF_X, dtype, count, cl);": tensor t (in the arena) to --trace, after an op of several
-- statements.
function cuda.trace_line(t, cl)
    assert(t.kind ~= "prompt", "emit/cuda: a TRACE line for per-prompt tensor " .. t.name)
    return string.format("TRACE(%s, OFF_%s, SKY_TRACE_%s, %s, %d);", clit.str(t.name), ident(t.name), t.dtype:upper(),
                         graph.numel_expr(t.dims), cl)
end

-- The launch sequence of E's graph, one writer per part (graph.lua; "all" when it has none), and the
-- part names in order. Per node: a "---- section ----" line where hooks.section(n) changes (none without
-- hooks.section), hooks.comment(n), the lines of the op's emitter emitters[n.op](n, E), and a TRACE line
-- when the op's output is traced (unless hooks.untraced(n)) but no statement of the op took it as its
-- output (E:out: a loop or branches). hooks.cl(n): the output's channels-last width (0: none).
-- hooks.enter(sec) and hooks.leave(sec), where given: a line (or nil) at a section's start, after its "----"
-- line, and at its end (before the next section's line, or at the end of its part).
function cuda.launch_sequence(E, emitters, hooks)
    E.cl = hooks.cl or E.cl
    local bodies, part_names = {}, {}
    local current, current_body
    local function leave()
        local l = current and hooks.leave and hooks.leave(current)
        if l then current_body:line("%s", l) end
        current = nil
    end
    for _, n in ipairs(E.g.nodes) do
        local part = n.part or "all"
        if not bodies[part] then
            leave()
            bodies[part] = cwriter.new()
            part_names[#part_names + 1] = part
        end
        local body = bodies[part]
        local sec = hooks.section and hooks.section(n)
        if sec and sec ~= current then
            leave()
            body:blank()
            body:line("/* ---- %s %s */", sec, string.rep("-", math.max(4, 72 - #sec)))
            current, current_body = sec, body
            local l = hooks.enter and hooks.enter(sec)
            if l then body:line("%s", l) end
        end
        body:line("%s", hooks.comment(n))
        local emit = assert(emitters[n.op], "emit/cuda: no CUDA implementation of op " .. n.op)
        for _, l in ipairs(emit(n, E)) do body:line("%s", l) end
        if not E.traced[n] and not (hooks.untraced and hooks.untraced(n)) then
            body:line("%s", cuda.trace_line(n.out, E.cl(n)))
        end
    end
    leave()
    return bodies, part_names
end

-- ---- the files ----------------------------------------------------------------------------------------

-- gen/<program>_kernels.cu (the helpers, then every kernel of E's set in name order) and
-- gen/<program>_kernels_src.c (the same text as a C string for NVRTC). Sorts the set's order.
function cuda.write_kernels(E, ctx, files)
    local s, program, set = E.s, E.g.name, E.set
    table.sort(set.order)
    local helpers = { "templates/cuda/ptx.cuh", "templates/cuda/common.cuh", "templates/cuda/reduce.cuh" }
    local texts = {}
    for i, path in ipairs(helpers) do
        texts[i] = ctx.read_template(path)
        set.templates_used[path] = true
    end
    local used = {}
    for _, path in ipairs(sorted.keys(set.templates_used)) do used[path] = ctx.templates[path] end
    local rel = "gen/" .. program .. "_kernels.cu"
    local cu = cwriter.new()
    cu:raw(header.c_comment(s, ctx, rel, {
        string.format("program    %s (cuda): %d kernels, %d GEMM shapes (cuBLASLt)", program, #set.order, #E.gemms),
        "compile    nvcc -gencode=arch=compute_90a,code=sm_90a (or sm_80), or NVRTC at run time (same text)",
    }, used))
    for _, text in ipairs(texts) do cu:raw(text) end
    for _, name in ipairs(set.order) do
        cu:blank()
        cu:line("// %s", set.comments[name])
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

-- A writer opened with gen/<program>_cuda.c's header (`lines` describe the program) and its includes.
function cuda.file_open(E, ctx, lines)
    local h = cwriter.new()
    h:raw(header.c_comment(E.s, ctx, "gen/" .. E.g.name .. "_cuda.c", lines))
    h:line("#include <stdint.h>")
    h:blank()
    h:line("#include \"cuda/cuda_program.h\"")
    h:blank()
    return h
end

-- "#define OFF_<TENSOR> ((size_t)offset)" for each buffer, under a comment `title`; names padded to `width`.
function cuda.offsets(h, title, buffers, width)
    h:line("/* %s */", title)
    for _, b in ipairs(buffers) do
        h:line("#define OFF_%-" .. width .. "s ((size_t)%d)", ident(b.tensor.name), b.offset)
    end
    h:blank()
end

-- The fields of GEMM descriptor d, "name = value" (the strides and w_kn only where not 0).
local function gemm_fields(d)
    local f = { ".m_max = " .. d.m_max, ".n = " .. d.n, ".k = " .. d.k, ".a_dtype = " .. d.a_dtype,
                ".out_dtype = " .. d.out_dtype, ".epilogue = " .. d.epilogue }
    for _, key in ipairs({ "ldx", "ldw", "ldy" }) do
        if (d[key] or 0) ~= 0 then f[#f + 1] = "." .. key .. " = " .. d[key] end
    end
    if d.w_kn then f[#f + 1] = ".w_kn = 1" end
    return f
end

-- The GEMM names (one per role, in order of first use) and the table, one row per shape, each named by
-- its first role, fields by name and aligned in columns.
local function gemm_tables(h, E)
    local program, gemms = E.g.name, E.gemms
    h:line("/* GEMMs: y[m, n] = x[m, k] W[n, k]^T (+ b), m <= m_max; built once at start-up (runtime/cuda/gemm.h). A name")
    h:line(" * per role (the weight's name without a block's index); the roles of one shape share a row. */")
    h:open("enum {")
    local width, first = 0, {}
    for _, name in ipairs(E.gemm_roles) do width = math.max(width, #name) end
    for _, name in ipairs(E.gemm_roles) do
        local row = E.gemm_role_row[name]
        h:line("%-" .. width .. "s = %d,", name, row)
        first[row] = first[row] or name
    end
    h:close("};")
    h:blank()
    local rows, widths = {}, {}
    for i, d in ipairs(gemms) do
        rows[i] = gemm_fields(d)
        for j, f in ipairs(rows[i]) do widths[j] = math.max(widths[j] or 0, #f + 1) end
    end
    h:open(string.format("const sky_gemm_desc %s_gemms[%d] = {", program, #gemms))
    for i, fields in ipairs(rows) do
        local cells = {}
        for j, f in ipairs(fields) do
            cells[j] = j < #fields and string.format("%-" .. widths[j] .. "s", f .. ",") or f
        end
        h:line("%-" .. (width + 2) .. "s = { %s },", "[" .. first[i - 1] .. "]", table.concat(cells, " "))
    end
    h:close("};")
    h:blank()
end

-- Each kernel's template and compile-time constants as data (the selftest reads them: runtime/cuda/
-- selftest_cuda.c): "static const sky_kernel_const KC_<NAME>[]" of {key, value} in key order, the value as
-- the template got it (per-channel lists left out, as in the comments), then <program>_kernel_info, one
-- row per kernel in table order (cuda_program.h: sky_kernel_info).
local function kernel_info(h, E)
    local program, set = E.g.name, E.set
    h:line("/* each kernel's template and constants, table order (the per-channel lists left out) */")
    local counts = {}
    for _, name in ipairs(set.order) do
        local inst, kv = set.instance[name], {}
        for _, key in ipairs(sorted.keys(inst.consts)) do
            local v = inst.consts[key]
            if not (type(v) == "string" and v:find(",", 1, true)) then
                kv[#kv + 1] = string.format("{%s, %s}", clit.str(key), clit.str(tostring(v)))
            end
        end
        counts[name] = #kv
        if #kv > 0 then
            h:line("static const sky_kernel_const KC_%s[] = {%s};", ident(name), table.concat(kv, ", "))
        end
    end
    h:open(string.format("const sky_kernel_info %s_kernel_info[%d] = {", program, #set.order))
    for _, name in ipairs(set.order) do
        h:line("{%s, %s, %d, %s},", clit.str(name), clit.str(set.instance[name].template), counts[name],
               counts[name] > 0 and ("KC_" .. ident(name)) or "NULL")
    end
    h:close("};")
    h:blank()
end

-- The weights enum, the kernel enum, name table and info table (kernel_info), the GEMM names and table of E's program (after
-- write_kernels, which sorts the kernels).
function cuda.tables(h, E)
    local program, set = E.g.name, E.set
    h:open("enum {                                      /* weights, in the order of variant.c's table */")
    for i, wt in ipairs(E.g.weights) do h:line("W_%s = %d,", ident(wt.name), i - 1) end
    h:close("};")
    h:blank()
    h:open(string.format("enum {                                      /* kernels, in the order of %s_kernel_names */",
                         program))
    for i, name in ipairs(set.order) do h:line("K_%s = %d,", ident(name), i - 1) end
    h:close("};")
    h:blank()
    h:open(string.format("const char *const %s_kernel_names[%d] = {", program, #set.order))
    for _, name in ipairs(set.order) do h:line("%s,", clit.str(name)) end
    h:close("};")
    h:blank()
    kernel_info(h, E)
    gemm_tables(h, E)
end

-- The helper functions of E's program (E:helper), in order of first use.
function cuda.helpers(h, E)
    for _, name in ipairs(E.helpers) do
        for _, l in ipairs(E.helpers[name]) do h:line("%s", l) end
        h:blank()
    end
end

-- The C line naming the ranks of dit_forward_usp (cuda_program.h sky_cuda_usp) `comm`, as its symbols read them
-- (gen/programs/dit.lua: P and tok0), before the symbol lines `lines` where one reads it; `lines` otherwise.
local function with_comm(lines)
    for _, l in ipairs(lines) do
        if l:find("comm->", 1, true) then
            table.insert(lines, 1, "const sky_cuda_usp *const comm = st->usp; /* the ranks (dit_forward_usp) */")
            break
        end
    end
    return lines
end

-- The const int line of each symbol of graph g that C statements `text` read (and of those these read), with
-- the ranks' line where one needs it; for functions whose parameters are not g's.
function cuda.symbol_lines(g, text)
    local lines = {}
    for _, sym in ipairs((graph.symbols_read(g, text))) do
        lines[#lines + 1] = string.format("const int %s = %s;%s", sym.name, sym.expr,
                                          sym.doc and ("  /* " .. clit.comment(sym.doc) .. " */") or "")
    end
    return with_comm(lines)
end

-- Record function `fname` of graph g into writer h: its runtime parameters, the symbols its launches read
-- (graph.prologue: and a (void) for each parameter nothing reads), then the launch sequence `body`.
function cuda.record_function(h, g, fname, body, doc)
    local params = {}
    for _, par in ipairs(g.params) do params[#params + 1] = "int " .. par.name end
    local proto = string.format("void %s(const sky_cuda_program *st, CUstream s, %s)", fname, table.concat(params, ", "))
    h:line("/* %s */", doc)
    h:line("%s;", proto)
    h:line("%s", proto)
    h:open("{")
    for _, l in ipairs(with_comm(graph.prologue(g, body))) do h:line("%s", l) end
    h:raw(body:gsub("[^\n]+", "    %0"))
    h:close("}")
    h:blank()
end

-- The opening of the program's descriptor (a `ctype` value) into writer h: the kernels (and the name
-- NVRTC compiles them under, where `ctype` has the field) and the GEMM table; the caller adds its own
-- fields and closes it.
function cuda.desc_open(h, E, ctype, kernels_file)
    local name = E.g.name
    h:line("extern const char %s_kernels_src[];", name)
    h:blank()
    h:open(string.format("const %s %s_cuda = {", ctype, name))
    if kernels_file then
        h:line(".kernels_src = %s_kernels_src, .kernels_file = %s,", name, clit.str("gen/" .. name .. "_kernels.cu"))
    else
        h:line(".kernels_src = %s_kernels_src,", name)
    end
    h:line(".n_kernels = %d, .kernel_names = %s_kernel_names, .kernel_info = %s_kernel_info,", #E.set.order, name, name)
    h:line(".n_gemms = %d, .gemms = %s_gemms,", #E.gemms, name)
end

-- "{offset, bytes}" of tensor t in plan p.
function cuda.slot(p, t)
    local b = p.by_tensor[t.id]
    return string.format("{%s, %s}", clit.size(b.offset), clit.size(b.bytes))
end

return cuda
