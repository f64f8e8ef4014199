-- gen/emit_c.lua
-- ===============
-- The CPU backend: the op graph and its plan as plain C11 (fp32 storage, double accumulation),
-- readable first. Each op becomes one call of a kernel instantiated from templates/cpu/*.c.in
-- with the spec's sizes baked in as constants; only the kernels the graph uses are emitted,
-- once each, sorted by name. Files written (paths relative to out/<variant>/):
--   gen/dit_forward_cpu.c   kernels + the forward of one sample, one statement per op
--   gen/variant.c           the weights table and the sky_variant description (runtime/models/program.h)
--
-- Dims in comments: L tokens of the call, F latent frames, Ft timestep rows (1 or F).

local clit    = require("lib.clit")
local cwriter = require("lib.cwriter")
local render  = require("lib.render")
local sorted  = require("lib.sorted")
local graph   = require("graph")
local header  = require("header")

local emit_c = {}

-- C identifier part of a model name: "blocks.0.self_attn.q.out" -> "BLOCKS_0_SELF_ATTN_Q_OUT".
local function ident(name)
    return (name:upper():gsub("[^A-Z0-9]", "_"))
end

-- Expression for a dim inside a program function: a literal or a param/symbol name.
local function dim_expr(d)
    if math.type(d) == "integer" then return clit.int(d) end
    assert(type(d) == "string" and d:match("^[%a_][%w_]*$"), "emit_c: bad dim " .. tostring(d))
    return d
end

local function rows(t) return dim_expr(t.dims[1]) end
local function cols(t) return t.dims[#t.dims] end

-- A tensor as [rows, COLS]: COLS = product of the trailing integer dims, rows = the product of
-- the other dims as a C expression ([L, 128] -> "L", 128; [8, T2, H3, W3] -> "8 * T2 * H3 * W3", 1).
local function split_dims(t)
    local n = #t.dims
    local c = 1
    while n > 0 and math.type(t.dims[n]) == "integer" do
        c = c * t.dims[n]
        n = n - 1
    end
    if n == 0 then return clit.int(1), c end
    local parts = {}
    for i = 1, n do parts[i] = dim_expr(t.dims[i]) end
    return table.concat(parts, " * "), c
end

-- Positions per channel of a channels-first [C, T, H, W] tensor, as C: "T0 * H0 * W0".
local function positions(t)
    local parts = {}
    for i = 2, #t.dims do parts[#parts + 1] = dim_expr(t.dims[i]) end
    return table.concat(parts, " * ")
end

-- C initializer of per-channel constants rounded to float32: "-0.7571f, ...".
local function f32_list(values, map)
    local parts = {}
    for i, v in ipairs(values) do parts[i] = clit.f32(map and map(v) or v) end
    return table.concat(parts, ", ")
end

-- fp32(1 / fp32(std)), as the original computes inv_std (reference vae-text-image-files.md §1.6).
local function inv_f32(x)
    local f = string.unpack("<f", string.pack("<f", x))
    return 1.0 / f
end

-- Pointer to tensor t in the arena (or the prompt arena: plan.lua), typed by its CPU storage.
local function act(t)
    if t.kind == "prompt" then return "PACT(OFF_" .. ident(t.name) .. ")" end
    if t.dtype == "f64" then return "ACT_F64(OFF_" .. ident(t.name) .. ")" end
    if t.dtype == "i64" then return "ACT_I64(OFF_" .. ident(t.name) .. ")" end
    return "ACT(OFF_" .. ident(t.name) .. ")"
end

local function wref(w) return "W(W_" .. ident(w.name) .. ")" end

-- How each op kind is emitted: template name, its constants, and the call.
-- `k` is the instantiated kernel name; the call is one C statement.
local backend = {}

backend.patchify = {
    instances = function(n, s)
        local out, r = {}, s.derived
        for i, t in ipairs(n.ins) do
            local c0 = (i == 1) and 0 or r.x_channels
            out[i] = { template = "patchify", consts = { CX = t.dims[1], C0 = c0, PATCH_IN = n.attrs.patch_in },
                       call = function(k) return string.format("%s(%s, %s, F, H, W);", k, act(n.out), act(t)) end }
        end
        return out
    end,
}
backend.linear = {
    instances = function(n)
        local a = n.attrs
        return { { template = a.bias and "linear" or "linear_nobias", consts = { N = a.n, K = a.k },
                   call = function(k)
                       if a.bias then
                           return string.format("%s(%s, %s, %s, %s, %s);", k, act(n.out), act(n.ins[1]),
                                                wref(a.weight), wref(a.bias), rows(n.ins[1]))
                       end
                       return string.format("%s(%s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(a.weight),
                                            rows(n.ins[1]))
                   end } }
    end,
}
-- Elementwise ops over [rows, COLS].
local function elementwise(template)
    return {
        template = template,
        consts = function(n) return { COLS = select(2, split_dims(n.out)) } end,
        call = function(k, n)
            local args = {}
            for i, t in ipairs(n.ins) do args[i] = act(t) end
            return string.format("%s(%s, %s, %s);", k, act(n.out), table.concat(args, ", "), (split_dims(n.out)))
        end,
    }
end
backend.silu      = elementwise("silu")
backend.gelu_tanh = elementwise("gelu_tanh")
backend.gelu_erf  = elementwise("gelu_erf")
backend.add       = elementwise("add")
backend.add_row   = elementwise("add_row")
backend.clamp     = elementwise("clamp")
backend.sinusoid = {
    template = "sinusoid",
    consts = function(n) return { HALF = n.attrs.freq_dim // 2 } end,
    call = function(k, n) return string.format("%s(%s, %s, %s);", k, act(n.out), act(n.ins[1]), rows(n.ins[1])) end,
}
backend.embedding = {
    template = "embedding",
    consts = function(n) return { ROWS = n.attrs.rows, COLS = n.attrs.dim } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.table))
    end,
}
backend.modulation = {
    template = "modulation",
    consts = function(n)
        local a = n.attrs
        return { CHUNKS = a.chunks, C = a.dim, ESTRIDE = cols(n.ins[1]), KSTRIDE = a.per_chunk and a.dim or 0 }
    end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.table), rows(n.ins[1]))
    end,
}
backend.layernorm_modulate = {
    template = "layernorm_modulate",
    consts = function(n)
        local a = n.attrs
        return { C = a.dim, CHUNKS = a.chunks, SHIFT = a.shift, SCALE = a.scale, EPS = clit.f64(a.eps) }
    end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s, tokens_per_row);", k, act(n.out), act(n.ins[1]), act(n.ins[2]),
                             rows(n.ins[1]))
    end,
}
backend.layernorm_affine = {
    template = "layernorm_affine",
    consts = function(n) return { C = n.attrs.dim, EPS = clit.f64(n.attrs.eps) } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.weight),
                             wref(n.attrs.bias), rows(n.ins[1]))
    end,
}
backend.rmsnorm = {
    template = "rmsnorm",
    consts = function(n) return { C = n.attrs.dim, EPS = clit.f64(n.attrs.eps) } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.weight), rows(n.ins[1]))
    end,
}
backend.rope_table = {
    template = "rope_table",
    consts = function(n)
        local a = n.attrs
        return { D = a.head_dim, TP = a.t_dim // 2, HP = a.h_dim // 2, WP = a.w_dim // 2, THETA = clit.f64(a.theta) }
    end,
    call = function(k, n) return string.format("%s(%s, F, H, W);", k, act(n.out)) end,
}
backend.rope = {
    template = "rope",
    consts = function(n) return { NH = n.attrs.num_heads, D = n.attrs.head_dim } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), act(n.ins[2]), rows(n.ins[1]))
    end,
}
backend.attention = {
    template = "attention",
    consts = function(n) return { NH = n.attrs.num_heads, D = n.attrs.head_dim } end,
    call = function(k, n)
        local q, kk, v = n.ins[1], n.ins[2], n.ins[3]
        return string.format("%s(%s, %s, %s, %s, %s, %s);", k, act(n.out), act(q), act(kk), act(v), rows(q), rows(kk))
    end,
}
backend.gated_residual = {
    template = "gated_residual",
    consts = function(n) return { C = n.attrs.dim, CHUNKS = n.attrs.chunks, GATE = n.attrs.gate } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s, %s, tokens_per_row);", k, act(n.out), act(n.ins[1]), act(n.ins[2]),
                             act(n.ins[3]), rows(n.ins[1]))
    end,
}
backend.unpatchify = {
    template = "unpatchify",
    consts = function(n) return { OUT = n.attrs.out_dim } end,
    call = function(k, n) return string.format("%s(%s, %s, F, H, W);", k, act(n.out), act(n.ins[1])) end,
}

-- ---- VAE ops: channels-first [C, T, H, W] tensors; spatial sizes are runtime symbols ----
backend.vae_denorm = {
    template = "vae_denorm",
    consts = function(n)
        local a = n.attrs
        return { Z = a.z, MEAN = f32_list(a.mean), INV_STD = f32_list(a.std, inv_f32) }
    end,
    call = function(k, n) return string.format("%s(%s, %s, %s);", k, act(n.out), act(n.ins[1]), positions(n.ins[1])) end,
}
backend.vae_normalize = {
    template = "vae_normalize",
    consts = function(n)
        local a = n.attrs
        return { Z = a.z, MEAN = f32_list(a.mean), INV_STD = f32_list(a.std, inv_f32) }
    end,
    call = function(k, n) return string.format("%s(%s, %s, %s);", k, act(n.out), act(n.ins[1]), positions(n.ins[1])) end,
}
backend.conv1x1 = {
    template = "conv1x1",
    consts = function(n) return { CIN = n.attrs.cin, COUT = n.attrs.cout } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.weight),
                             wref(n.attrs.bias), positions(n.ins[1]))
    end,
}
-- Frames, height and width of a [C, T, H, W] tensor as C expressions.
local function thw(t) return dim_expr(t.dims[2]), dim_expr(t.dims[3]), dim_expr(t.dims[4]) end
backend.causal_conv3 = {
    template = "causal_conv3",
    consts = function(n) return { CIN = n.attrs.cin, COUT = n.attrs.cout } end,
    call = function(k, n)
        local T, H, W = thw(n.ins[1])
        return string.format("%s(%s, %s, %s, %s, %s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), act(n.ins[2]),
                             wref(n.attrs.weight), wref(n.attrs.bias), T, H, W)
    end,
}
backend.rms_norm_ch = {
    template = "rms_norm_ch",
    consts = function(n) return { C = n.attrs.c } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.gamma), positions(n.ins[1]))
    end,
}
backend.attention_frames = {
    template = "attention_frames",
    consts = function(n) return { C = n.attrs.c } end,
    call = function(k, n)
        local T, H, W = thw(n.ins[1])
        return string.format("%s(%s, %s, %s, %s * %s);", k, act(n.out), act(n.ins[1]), T, H, W)
    end,
}
-- time_conv_up / time_conv_down: (y, x, cache, w, b, T, H*W, first).
local function time_conv(template)
    return {
        template = template,
        consts = function(n) return { C = n.attrs.c } end,
        call = function(k, n)
            local T, H, W = thw(n.ins[1])
            return string.format("%s(%s, %s, %s, %s, %s, %s, %s * %s, first);", k, act(n.out), act(n.ins[1]),
                                 act(n.ins[2]), wref(n.attrs.weight), wref(n.attrs.bias), T, H, W)
        end,
    }
end
backend.time_conv_up = time_conv("time_conv_up")
backend.time_conv_down = time_conv("time_conv_down")
backend.upsample_nearest2x = {
    template = "upsample_nearest2x",
    consts = function(n) return { C = n.ins[1].dims[1] } end,
    call = function(k, n)
        local T, H, W = thw(n.ins[1])
        return string.format("%s(%s, %s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), T, H, W)
    end,
}
backend.conv2d_k3 = {
    template = "conv2d_k3",
    consts = function(n) return { CIN = n.attrs.cin, COUT = n.attrs.cout } end,
    call = function(k, n)
        local T, H, W = thw(n.ins[1])
        return string.format("%s(%s, %s, %s, %s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.weight),
                             wref(n.attrs.bias), T, H, W)
    end,
}
backend.conv2d_k3_s2 = {
    template = "conv2d_k3_s2",
    consts = function(n) return { C = n.attrs.c } end,
    call = function(k, n)
        local T, H, W = thw(n.ins[1])
        return string.format("%s(%s, %s, %s, %s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.weight),
                             wref(n.attrs.bias), T, H, W)
    end,
}

-- ---- text and image encoders ----
backend.gather_rows = {
    template = "gather_rows",
    consts = function(n) return { ROWS = n.attrs.rows, C = n.attrs.dim } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.table), rows(n.ins[1]))
    end,
}
backend.attention_relbias = {
    template = "attention_relbias",
    consts = function(n)
        local a = n.attrs
        return { NH = a.num_heads, D = a.head_dim, BUCKETS = a.buckets, MAXDIST = a.max_distance }
    end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), act(n.ins[2]),
                             act(n.ins[3]), wref(n.attrs.bias), rows(n.ins[1]))
    end,
}
backend.gated_gelu = elementwise("gated_gelu")
backend.zero_tail = {
    template = "zero_tail",
    consts = function(n) return { ROWS = n.attrs.rows, C = n.attrs.dim } end,
    call = function(k, n) return string.format("%s(%s, %s, %s);", k, act(n.out), act(n.ins[1]), rows(n.ins[1])) end,
}
backend.patch_embed = {
    template = "patch_embed",
    consts = function(n) return { C = n.attrs.dim, PATCH = n.attrs.patch, SIDE = n.attrs.side } end,
    call = function(k, n) return string.format("%s(%s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.weight)) end,
}
backend.cls_pos = {
    template = "cls_pos",
    consts = function(n) return { P = n.ins[1].dims[1], C = n.attrs.dim } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.cls), wref(n.attrs.pos))
    end,
}
backend.split3 = {
    template = "split3",
    consts = function(n) return { C = n.attrs.dim, PART = n.attrs.part } end,
    call = function(k, n) return string.format("%s(%s, %s, %s);", k, act(n.out), act(n.ins[1]), rows(n.ins[1])) end,
}

-- Kernel name: template, then its integer-like constants in sorted order (CUTLASS-style
-- procedural name). List constants (per-channel arrays) stay out of the name: there is one set
-- per variant, and instantiate() checks that one name never means two texts.
local function kernel_name(template, consts)
    local parts = { template }
    for _, key in ipairs(sorted.keys(consts)) do
        local v = tostring(consts[key])
        if not v:find(",", 1, true) then
            parts[#parts + 1] = key:lower():gsub("_", "") .. v:gsub("[^%w]", "")
        end
    end
    return table.concat(parts, "_")
end

-- The (template, consts, call) instances of node n.
local function instances(n, s)
    local b = assert(backend[n.op], "emit_c: no CPU implementation of op " .. n.op)
    if b.instances then return b.instances(n, s) end
    return { { template = b.template, consts = b.consts(n), call = function(k) return b.call(k, n) end } }
end

-- Render the kernel of one instance into `kernels` (name -> text); returns its name.
local function instantiate(ctx, kernels, inst)
    local name = kernel_name(inst.template, inst.consts)
    local path = "templates/cpu/" .. inst.template .. ".c.in"
    local text = ctx.read_template(path)
    local vars = { name = name }
    for _, k in ipairs(sorted.keys(inst.consts)) do
        local v = inst.consts[k]
        vars[k] = type(v) == "string" and v or clit.int(v)
    end
    local rendered = render.render(text, vars, path)
    assert(kernels[name] == nil or kernels[name] == rendered, "emit_c: kernel name " .. name .. " means two texts")
    kernels[name] = rendered
    return name
end

-- Attributes worth a comment (weights already appear in the call; sizes in the kernel name).
local comment_attrs = { eps = true, shift = true, scale = true, gate = true }

-- Comment line for a node: what it computes and its output dims.
local function node_comment(n)
    local args, extra = {}, {}
    for i, t in ipairs(n.ins) do args[i] = t.name end
    for _, k in ipairs(sorted.keys(n.attrs)) do
        if comment_attrs[k] then extra[#extra + 1] = k .. "=" .. graph.attrs_text({ [k] = n.attrs[k] }):match("=(.*)") end
    end
    return clit.comment(string.format("%s = %s(%s)%s  %s", n.out.name, n.op, table.concat(args, ", "),
                                      #extra > 0 and ("  " .. table.concat(extra, " ")) or "",
                                      graph.dims_text(n.out.dims)))
end

-- Section of a node for the "---- name ----" separators: the top module of its output's name
-- ("blocks.3", "decoder.upsamples.4", "encoder.middle"), else "embeddings" / "head".
local function section_of(n, seen, program)
    local name = n.out.name
    local sec = name:match("^(blocks%.%d+)%.") or name:match("^(%a+coder%.%a+%.%d+)%.")
                or name:match("^(%a+coder%.middle)%.") or name:match("^(%a+coder%.head)%.")
    if sec then return sec end
    if program == "dit_forward" then return seen and "head" or "embeddings" end
    return seen and "output" or "input"
end

-- C prototype of program g's CPU function (arena, the prompt arena where it keeps tensors per prompt,
-- fp32 weights, then its runtime params).
local function prototype(g, part)
    local params = { "unsigned char *arena", "const float *const *w" }
    if #g.prompt_tensors > 0 then table.insert(params, 2, "unsigned char *prompt") end
    for _, p in ipairs(g.params) do params[#params + 1] = "int " .. p.name end
    return string.format("void %s%s_cpu(%s)", g.name, part and ("_" .. part) or "", table.concat(params, ", "))
end

-- gen/<program>_cpu.c: the program's kernels and its function (plus a reset for its caches).
local function emit_program(s, p, ctx, extra_header)
    local g = p.graph
    local kernels = {}
    local bodies, part_names = {}, {}               -- one body per part (graph.lua), in order
    local body
    local current, seen = nil, false
    for _, n in ipairs(g.nodes) do
        local part = n.part or "all"
        if not bodies[part] then
            bodies[part] = cwriter.new()
            part_names[#part_names + 1] = part
            current = nil
        end
        body = bodies[part]
        local sec = section_of(n, seen, g.name)
        seen = seen or (sec ~= "embeddings" and sec ~= "input")
        if sec ~= current then
            body:blank()
            body:line("/* ---- %s %s */", sec, string.rep("-", math.max(4, 72 - #sec)))
            current = sec
        end
        body:line("/* %s */", node_comment(n))
        for _, inst in ipairs(instances(n, s)) do
            body:line("%s", inst.call(instantiate(ctx, kernels, inst)))
            p.templates_used = p.templates_used or {}
            p.templates_used["templates/cpu/" .. inst.template .. ".c.in"] = true
        end
        local stored = (n.out.dtype == "f64" or n.out.dtype == "i64") and n.out.dtype:upper() or "F32"
        body:line("%s(%s, OFF_%s, SKY_TRACE_%s, %s);", n.out.kind == "prompt" and "TRACE_PROMPT" or "TRACE",
                  clit.str(n.out.name), ident(n.out.name), stored, graph.numel_expr(n.out.dims))
    end

    local common = ctx.read_template("templates/cpu/common.h.in")
    local used = { ["templates/cpu/common.h.in"] = ctx.templates["templates/cpu/common.h.in"] }
    for _, path in ipairs(sorted.keys(p.templates_used or {})) do used[path] = ctx.templates[path] end

    local w = cwriter.new()
    local lines = { string.format("program    %s (cpu, fp32)", g.name) }
    for _, l in ipairs(extra_header) do lines[#lines + 1] = l end
    lines[#lines + 1] = string.format("arena      %s bytes (see plan.txt)", require("plan").commas(p.peak))
    w:raw(header.c_comment(s, ctx, "gen/" .. g.name .. "_cpu.c", lines, used))
    w:raw(common)
    w:line("#include \"models/program.h\"")
    w:blank()
    w:line("#define ACT_F64(off) ((double *)(arena + (off)))")
    w:line("#define ACT_I64(off) ((int64_t *)(arena + (off)))")
    w:line("#define W(i) (w[i])")
    w:line("/* --trace: every op's output to the runtime's hook (program.h); one test when not tracing */")
    w:line("#define TRACE(name, off, dtype, n) \\")
    w:line("    do { if (sky_trace_hook) sky_trace_hook(sky_trace_ctx, (name), arena + (off), (dtype), (n), 0); } while (0)")
    if #p.prompt > 0 then
        w:line("#define PACT(off) ((float *)(prompt + (off)))")
        w:line("#define TRACE_PROMPT(name, off, dtype, n) \\")
        w:line("    do { if (sky_trace_hook) sky_trace_hook(sky_trace_ctx, (name), prompt + (off), (dtype), (n), 0); } while (0)")
    end
    w:blank()
    local function offsets(title, buffers)
        w:line("/* %s */", title)
        for _, b in ipairs(buffers) do
            w:line("#define OFF_%-40s ((size_t)%d)  /* %s bytes */", ident(b.tensor.name), b.offset,
                   require("plan").commas(b.bytes))
        end
    end
    offsets("arena offsets (bytes), from gen/plan.lua", p.buffers)
    if #p.prompt > 0 then
        w:blank()
        offsets("prompt arena offsets (bytes): tensors made once per prompt and kept (gen/plan.lua)", p.prompt)
    end
    w:blank()
    w:line("/* weights, in the order of the table in variant.c */")
    w:open("enum {")
    for i, wt in ipairs(g.weights) do w:line("W_%s = %d,", ident(wt.name), i - 1) end
    w:close("};")
    w:blank()
    w:line("/* ======== kernels (templates/cpu/) ======== */")
    for _, name in ipairs(sorted.keys(kernels)) do
        w:blank()
        w:raw(kernels[name])
    end
    if #g.states > 0 then
        w:blank()
        w:line("/* ======== %s: caches kept between calls ======== */", g.name)
        w:blank()
        w:line("void %s_cpu_reset(unsigned char *arena);", g.name)
        w:line("void %s_cpu_reset(unsigned char *arena)", g.name)
        w:open("{")
        for _, t in ipairs(g.states) do
            local b = p.by_tensor[t.id]
            w:line("memset(arena + OFF_%s, 0, %s);", ident(t.name), clit.size(b.bytes))
        end
        w:close("}")
    end
    w:blank()
    w:line("/* ======== %s ======== */", g.name)
    w:blank()
    -- One function per part (the whole program when it has none), then the program calling them.
    local function emit_function(proto, text)
        w:line("%s;", proto)
        w:line("%s", proto)
        w:open("{")
        for _, l in ipairs(graph.prologue(g, text)) do w:line("%s", l) end
        if #p.prompt > 0 and not text:find("PACT(", 1, true) then w:line("(void)prompt;") end
        w:raw(text:gsub("[^\n]+", "    %0"))
        w:close("}")
    end
    if #g.parts == 0 then
        emit_function(prototype(g), bodies.all:text())
    else
        -- One function per part; the runtime calls them in order (and the first only for a new prompt).
        for i, part in ipairs(part_names) do
            if i > 1 then w:blank() end
            w:line("/* ---- part \"%s\" of %s (gen/graph.lua: the runtime runs the parts one by one) */", part, g.name)
            emit_function(prototype(g, part), bodies[part]:text())
        end
    end
    return w:text()
end

-- C initializer of a shape: {128, 16, 1, 2, 2}.
local function shape_init(shape)
    local parts = {}
    for i, d in ipairs(shape) do parts[i] = clit.int(d) end
    return "{" .. table.concat(parts, ", ") .. "}"
end

-- The weights table of program g.
local function weights_table(w, g)
    w:open(string.format("static const sky_weight_desc %s_weights[%d] = {", g.name, #g.weights))
    for _, wt in ipairs(g.weights) do
        w:line("{%s, %s, %d, %s},", clit.str(wt.name), clit.str(wt.alias), #wt.shape, shape_init(wt.shape))
    end
    w:close("};")
    w:blank()
end

-- {offset, bytes} of tensor `name` of plan p, or {0, 0}.
local function slot(p, name)
    local t = p.graph.by_name[name]
    if not t then return "{0, 0}" end
    local b = p.by_tensor[t.id]
    return string.format("{%s, %s}", clit.size(b.offset), clit.size(b.bytes))
end

-- gen/variant.c: the weights tables and the variant description (runtime/models/program.h).
local function emit_variant(s, plans, ctx, cuda_plans)
    -- the CUDA plan's arena peak of a program (0 without the cuda target)
    local function cuda_peak(name) return clit.size(cuda_plans[name] and cuda_plans[name].peak or 0) end
    local d, r = s.dit, s.derived
    local w = cwriter.new()
    local lines = {}
    for _, name in ipairs(sorted.keys(plans)) do
        lines[#lines + 1] = string.format("weights    %d tensors of %s (original name, diffusers name, shape)",
                                          #plans[name].graph.weights, name)
    end
    w:raw(header.c_comment(s, ctx, "gen/variant.c", lines))
    w:line("#include \"models/program.h\"")
    w:blank()
    for _, name in ipairs(sorted.keys(plans)) do
        local g = plans[name].graph
        for _, part in ipairs(g.parts) do w:line("%s;", prototype(g, part)) end
        if #g.parts == 0 then w:line("%s;", prototype(g)) end
        if #g.states > 0 then w:line("void %s_cpu_reset(unsigned char *arena);", g.name) end
    end
    w:blank()
    for _, name in ipairs(sorted.keys(plans)) do weights_table(w, plans[name].graph) end

    local p = plans.dit_forward
    w:open("static const sky_dit_program dit_forward = {")
    w:line(".dim = %d, .ffn_dim = %d, .num_heads = %d, .num_layers = %d, .freq_dim = %d,",
           d.dim, d.ffn_dim, d.num_heads, d.num_layers, d.freq_dim)
    w:line(".text_len = %d, .text_dim = %d,", d.text_len, d.text_dim)
    w:line(".image_len = %d, .image_dim = %d,", d.image_len or 0, d.image_dim or 0)
    w:line(".x_channels = %d, .y_channels = %d, .out_dim = %d,", r.x_channels, r.y_channels, d.out_dim)
    w:line(".lat_h = %d, .lat_w = %d, .max_frames = %d,", r.lat_h, r.lat_w, r.max_frames)
    w:line(".patch_t = %d, .patch_h = %d, .patch_w = %d,", r.patch_t, r.patch_h, r.patch_w)
    w:line(".inject_sample_info = %d,", d.inject_sample_info and 1 or 0)
    w:line(".arena_bytes = %s, .prompt_bytes = %s,", clit.size(p.peak), clit.size(p.prompt_bytes))
    w:line(".cuda_arena_bytes = %s, .cuda_prompt_bytes = %s,", cuda_peak("dit_forward"),
           clit.size(cuda_plans.dit_forward and cuda_plans.dit_forward.prompt_bytes or 0))
    w:line(".flops = %s,   /* one call at the largest window, GEMMs + attention, the prompt's part not counted */",
           string.format("%.17g", graph.flops(p.graph, "context")))
    w:line(".prompt_flops = %s,", string.format("%.17g", graph.flops(p.graph) - graph.flops(p.graph, "context")))
    for _, name in ipairs({ "x", "y", "t", "context", "clip_fea", "fps", "v" }) do
        w:line(".%s = %s,", name, slot(p, name))
    end
    w:line(".n_weights = %d,", #p.graph.weights)
    w:line(".weights = dit_forward_weights,")
    assert(table.concat(p.graph.parts, " ") == "context embed blocks head", "emit_c: dit_forward's parts changed")
    w:line(".context_cpu = dit_forward_context_cpu, .embed_cpu = dit_forward_embed_cpu,")
    w:line(".blocks_cpu = dit_forward_blocks_cpu, .head_cpu = dit_forward_head_cpu,")
    for _, name in ipairs({ "tokens", "hidden", "e", "e0" }) do
        w:line(".%s = %s,", name, slot(p, p.graph.exposed[name].name))
    end
    if s.teacache then
        local function poly(c)
            local parts = {}
            for i, x in ipairs(c) do parts[i] = clit.f64(x) end
            return "{ " .. table.concat(parts, ", ") .. " }"
        end
        w:line(".has_teacache = 1,")
        w:line(".teacache_coef = { %s,", poly(s.teacache.coefficients))
        w:line("                   %s },", poly(s.teacache.ret_coefficients))
    end
    w:close("};")
    w:blank()
    for _, name in ipairs({ "vae_decode", "vae_encode" }) do
        local vp = plans[name]
        if vp then
            local decode = name == "vae_decode"
            w:open(string.format("static const sky_vae_program %s = {", name))
            w:line(".z_dim = %d, .lat_h = %d, .lat_w = %d, .height = %d, .width = %d,", s.vae.z_dim, r.lat_h, r.lat_w,
                   s.video.height, s.video.width)
            w:line(".stride_t = %d, .stride_s = %d,", r.vae_stride_t, r.vae_stride_s)
            w:line(".arena_bytes = %s, .cuda_arena_bytes = %s,", clit.size(vp.peak), cuda_peak(name))
            w:line(".in = %s, .out = %s,", slot(vp, decode and "z" or "video"), slot(vp, decode and "video" or "z"))
            w:line(".n_weights = %d,", #vp.graph.weights)
            w:line(".weights = %s_weights,", name)
            w:line(".forward_cpu = %s_cpu,", name)
            w:line(".reset_cpu = %s_cpu_reset,", name)
            w:close("};")
            w:blank()
        end
    end
    if plans.text_encode then
        local tp = plans.text_encode
        w:open("static const sky_encoder_program text_encode = {")
        w:line(".rows = %d, .dim = %d, .vocab = %d,", d.text_len, s.t5.dim, s.t5.vocab)
        w:line(".arena_bytes = %s, .cuda_arena_bytes = %s,", clit.size(tp.peak), cuda_peak("text_encode"))
        w:line(".in = %s, .out = %s,", slot(tp, "ids"), slot(tp, "context"))
        w:line(".n_weights = %d,", #tp.graph.weights)
        w:line(".weights = text_encode_weights,")
        w:line(".forward_cpu = text_encode_cpu,")
        w:close("};")
        w:blank()
    end
    if plans.clip_encode then
        local cp = plans.clip_encode
        w:open("static const sky_encoder_program clip_encode = {")
        w:line(".rows = %d, .dim = %d, .image_size = %d,", d.image_len, s.clip.dim, s.clip.image_size)
        w:line(".arena_bytes = %s, .cuda_arena_bytes = %s,", clit.size(cp.peak), cuda_peak("clip_encode"))
        w:line(".in = %s, .out = %s,", slot(cp, "pixels"), slot(cp, "clip_fea"))
        w:line(".n_weights = %d,", #cp.graph.weights)
        w:line(".weights = clip_encode_weights,")
        w:line(".forward_cpu = clip_encode_cpu,")
        w:close("};")
        w:blank()
    end
    w:open("const sky_variant_desc sky_variant = {")
    w:line(".name = %s,", clit.str(s.variant))
    w:line(".family = %s,", clit.str(s.family))
    w:line(".spec_path = %s,", clit.str(ctx.spec_rel))
    w:line(".spec_xxh64 = %s,", clit.str(ctx.spec_hash))
    w:line(".generator_xxh64 = %s,", clit.str(ctx.generator_hash))
    w:line(".has_cuda = %d,", s.targets.cuda and 1 or 0)
    w:line(".steps = %d, .shift = %s, .guidance = %s,", s.sampler.steps, clit.f64(s.sampler.shift),
           clit.f64(s.sampler.guidance))
    w:line(".height = %d, .width = %d, .base_num_frames = %d,", s.video.height, s.video.width,
           s.video.base_num_frames)
    w:line(".vae_stride_t = %d, .vae_stride_s = %d,", r.vae_stride_t, r.vae_stride_s)
    w:line(".dit = &dit_forward,")
    w:line(".vae_decode = %s,", plans.vae_decode and "&vae_decode" or "NULL")
    w:line(".vae_encode = %s,", plans.vae_encode and "&vae_encode" or "NULL")
    w:line(".text_encode = %s,", plans.text_encode and "&text_encode" or "NULL")
    w:line(".clip_encode = %s,", plans.clip_encode and "&clip_encode" or "NULL")
    w:close("};")
    return w:text()
end

-- Add the CPU backend's files to `files` (path -> text): one gen/<program>_cpu.c per program
-- and gen/variant.c (which also records the peaks of cuda_plans, the CUDA emitters' plans).
function emit_c.emit(s, plans, files, ctx, cuda_plans)
    local r, d = s.derived, s.dit
    local describe = {
        dit_forward = {
            string.format("model      %d blocks, C %d, %d heads x %d, ffn %d", d.num_layers, d.dim, d.num_heads,
                          r.head_dim, d.ffn_dim),
            string.format("window     up to %d latent frames x %d tokens (frame count is a runtime argument)",
                          r.max_frames, r.tokens_per_frame),
        },
        vae_decode = { "chunk      one latent frame per call -> 1 frame (first call) or 4 frames" },
        vae_encode = { "chunk      1 frame (first call) or 4 frames per call -> one latent frame" },
        text_encode = { "encoder    umT5 on the N real tokens of a prompt; rows after them are zeros" },
        clip_encode = { "encoder    CLIP ViT visual tower, the first use_layers blocks, no post-norm" },
    }
    for _, name in ipairs(sorted.keys(plans)) do
        files["gen/" .. name .. "_cpu.c"] = emit_program(s, plans[name], ctx, describe[name])
    end
    files["gen/variant.c"] = emit_variant(s, plans, ctx, cuda_plans or {})
end

return emit_c
