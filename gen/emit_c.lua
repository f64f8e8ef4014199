-- gen/emit_c.lua
-- ===============
-- The CPU backend: the op graph and its plan as plain C11 (fp32 storage, double accumulation),
-- readable first. Each op becomes one call of a kernel instantiated from templates/cpu/*.c.in
-- with the spec's sizes baked in as constants; only the kernels the graph uses are emitted,
-- once each, sorted by name. Files written (paths relative to out/<variant>/):
--   gen/dit_forward_cpu.c   kernels + the forward of one sample, one statement per op
--   gen/variant.c           the weights table and the sky_variant description (runtime/program.h)
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

-- Expression for a dim inside the forward function.
local function dim_expr(d)
    if math.type(d) == "integer" then return clit.int(d) end
    assert(d == "L" or d == "F" or d == "Ft", "emit_c: unknown dim " .. tostring(d))
    return d
end

local function rows(t) return dim_expr(t.dims[1]) end
local function cols(t) return t.dims[#t.dims] end

-- Pointer to tensor t in the arena, typed by its CPU storage.
local function act(t)
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
    template = "linear",
    consts = function(n) return { N = n.attrs.n, K = n.attrs.k } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.weight),
                             wref(n.attrs.bias), rows(n.ins[1]))
    end,
}
-- Elementwise ops over [rows, COLS].
local function elementwise(template)
    return {
        template = template,
        consts = function(n) return { COLS = cols(n.out) } end,
        call = function(k, n)
            local args = {}
            for i, t in ipairs(n.ins) do args[i] = act(t) end
            return string.format("%s(%s, %s, %s);", k, act(n.out), table.concat(args, ", "), rows(n.out))
        end,
    }
end
backend.silu      = elementwise("silu")
backend.gelu_tanh = elementwise("gelu_tanh")
backend.gelu_erf  = elementwise("gelu_erf")
backend.add       = elementwise("add")
backend.add_row   = elementwise("add_row")
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

-- Kernel name: template, then its constants in sorted order (CUTLASS-style procedural name).
local function kernel_name(template, consts)
    local parts = { template }
    for _, key in ipairs(sorted.keys(consts)) do
        local v = tostring(consts[key]):gsub("[^%w]", "")
        parts[#parts + 1] = key:lower():gsub("_", "") .. v
    end
    return table.concat(parts, "_")
end

-- The (template, consts, call) instances of node n.
local function instances(n, s)
    local b = assert(backend[n.op], "emit_c: no CPU implementation of op " .. n.op)
    if b.instances then return b.instances(n, s) end
    return { { template = b.template, consts = b.consts(n), call = function(k) return b.call(k, n) end } }
end

-- Render the kernel of one instance; `templates` caches template texts and their hashes.
local function instantiate(ctx, inst)
    local name = kernel_name(inst.template, inst.consts)
    if not ctx.kernels[name] then
        local path = "templates/cpu/" .. inst.template .. ".c.in"
        local text = ctx.read_template(path)
        local vars = { name = name }
        for k, v in pairs(inst.consts) do vars[k] = type(v) == "string" and v or clit.int(v) end
        ctx.kernels[name] = render.render(text, vars, path)
    end
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

-- gen/dit_forward_cpu.c
local function emit_forward(s, p, ctx)
    local g = p.graph
    local body = cwriter.new()
    local current_section
    local seen_block = false
    for _, n in ipairs(g.nodes) do
        local block = n.out.name:match("^(blocks%.%d+)%.")
        seen_block = seen_block or block ~= nil
        local section = block or (seen_block and "head" or "embeddings")
        if section ~= current_section then
            body:blank()
            body:line("/* ---- %s %s */", section, string.rep("-", 72 - #section))
            current_section = section
        end
        body:line("/* %s */", node_comment(n))
        for _, inst in ipairs(instances(n, s)) do
            body:line("%s", inst.call(instantiate(ctx, inst)))
        end
    end

    local w = cwriter.new()
    w:raw(header.c_comment(s, ctx, "gen/dit_forward_cpu.c", {
        string.format("program    dit_forward (cpu, fp32): %d blocks, C %d, %d heads x %d, ffn %d",
                      s.dit.num_layers, s.dit.dim, s.dit.num_heads, s.derived.head_dim, s.dit.ffn_dim),
        string.format("window     up to %d latent frames x %d tokens (frame count is a runtime argument)",
                      s.derived.max_frames, s.derived.tokens_per_frame),
        string.format("arena      %s bytes (see plan.txt)", require("plan").commas(p.peak)),
    }, ctx.templates))
    w:raw(ctx.read_template("templates/cpu/common.h.in"))
    w:line("#include \"program.h\"")
    w:blank()
    w:line("#define ACT_F64(off) ((double *)(arena + (off)))")
    w:line("#define ACT_I64(off) ((int64_t *)(arena + (off)))")
    w:line("#define W(i) (w[i])")
    w:blank()
    w:line("/* arena offsets (bytes), from gen/plan.lua */")
    for _, b in ipairs(p.buffers) do
        w:line("#define OFF_%-40s ((size_t)%d)  /* %s bytes */", ident(b.tensor.name), b.offset, require("plan").commas(b.bytes))
    end
    w:blank()
    w:line("/* weights, in the order of the table in variant.c */")
    w:open("enum {")
    for i, wt in ipairs(g.weights) do w:line("W_%s = %d,", ident(wt.name), i - 1) end
    w:close("};")
    w:blank()
    w:line("/* ======== kernels (templates/cpu/) ======== */")
    for _, name in ipairs(sorted.keys(ctx.kernels)) do
        w:blank()
        w:raw(ctx.kernels[name])
    end
    w:blank()
    w:line("/* ======== dit_forward: one sample ======== */")
    w:blank()
    w:line("void dit_forward_cpu(unsigned char *arena, const float *const *w, int F, int H, int W, int Ft);")
    w:line("void dit_forward_cpu(unsigned char *arena, const float *const *w, int F, int H, int W, int Ft)")
    w:open("{")
    w:line("const int L = F * (H / 2) * (W / 2);                 /* tokens of this call */")
    w:line("const int tokens_per_row = (Ft == 1) ? L : L / F;     /* tokens sharing one modulation row */")
    w:raw(body:text():gsub("[^\n]+", "    %0"))
    w:close("}")
    return w:text()
end

-- C initializer of a shape: {128, 16, 1, 2, 2}.
local function shape_init(shape)
    local parts = {}
    for i, d in ipairs(shape) do parts[i] = clit.int(d) end
    return "{" .. table.concat(parts, ", ") .. "}"
end

-- gen/variant.c: weights table and the variant description.
local function emit_variant(s, p, ctx)
    local g, d, r = p.graph, s.dit, s.derived
    local w = cwriter.new()
    w:raw(header.c_comment(s, ctx, "gen/variant.c", {
        string.format("weights    %d tensors of dit_forward (original name, diffusers name, shape)", #g.weights),
    }))
    w:line("#include \"program.h\"")
    w:blank()
    w:line("void dit_forward_cpu(unsigned char *arena, const float *const *w, int F, int H, int W, int Ft);")
    w:blank()
    w:open(string.format("static const sky_weight_desc dit_weights[%d] = {", #g.weights))
    for _, wt in ipairs(g.weights) do
        w:line("{%s, %s, %d, %s},", clit.str(wt.name), clit.str(wt.alias), #wt.shape, shape_init(wt.shape))
    end
    w:close("};")
    w:blank()
    local function slot(name)
        local t = g.by_name[name]
        if not t then return "{0, 0}" end
        local b = p.by_tensor[t.id]
        return string.format("{%s, %s}", clit.size(b.offset), clit.size(b.bytes))
    end
    w:open("static const sky_dit_program dit_forward = {")
    w:line(".dim = %d, .ffn_dim = %d, .num_heads = %d, .num_layers = %d, .freq_dim = %d,",
           d.dim, d.ffn_dim, d.num_heads, d.num_layers, d.freq_dim)
    w:line(".text_len = %d, .text_dim = %d,", d.text_len, d.text_dim)
    w:line(".image_len = %d, .image_dim = %d,", d.image_len or 0, d.image_dim or 0)
    w:line(".x_channels = %d, .y_channels = %d, .out_dim = %d,", r.x_channels, r.y_channels, d.out_dim)
    w:line(".lat_h = %d, .lat_w = %d, .max_frames = %d,", r.lat_h, r.lat_w, r.max_frames)
    w:line(".inject_sample_info = %d,", d.inject_sample_info and 1 or 0)
    w:line(".arena_bytes = %s,", clit.size(p.peak))
    for _, name in ipairs({ "x", "y", "t", "context", "clip_fea", "fps", "v" }) do
        w:line(".%s = %s,", name, slot(name))
    end
    w:line(".n_weights = %d,", #g.weights)
    w:line(".weights = dit_weights,")
    w:line(".forward_cpu = dit_forward_cpu,")
    w:close("};")
    w:blank()
    w:open("const sky_variant_desc sky_variant = {")
    w:line(".name = %s,", clit.str(s.variant))
    w:line(".family = %s,", clit.str(s.family))
    w:line(".spec_path = %s,", clit.str(ctx.spec_rel))
    w:line(".spec_xxh64 = %s,", clit.str(ctx.spec_hash))
    w:line(".generator_xxh64 = %s,", clit.str(ctx.generator_hash))
    w:line(".steps = %d, .shift = %s, .guidance = %s,", s.sampler.steps, clit.f64(s.sampler.shift),
           clit.f64(s.sampler.guidance))
    w:line(".height = %d, .width = %d, .base_num_frames = %d,", s.video.height, s.video.width,
           s.video.base_num_frames)
    w:line(".dit = &dit_forward,")
    w:close("};")
    return w:text()
end

-- Add the CPU backend's files to `files` (path -> text).
function emit_c.emit(s, plans, files, ctx)
    ctx.kernels = {}
    local p = plans.dit_forward
    files["gen/dit_forward_cpu.c"] = emit_forward(s, p, ctx)
    files["gen/variant.c"] = emit_variant(s, p, ctx)
end

return emit_c
