-- gen/emit/c.lua
-- ===============
-- The CPU backend: the op graph and its plan as plain C11 (fp32 storage, double accumulation),
-- readable first. Each op becomes one call of a kernel instantiated from templates/cpu/*.c.in
-- with the spec's sizes baked in as constants; only the kernels the graph uses are emitted,
-- once each, sorted by name. Files written (paths relative to out/<variant>/):
--   gen/<program>_cpu.c     kernels + the program's function(s), one statement per op
-- (gen/variant.c, which declares these functions, is emit/variant.lua's.)
--
-- Dims in comments: L tokens of the call, F latent frames, Ft timestep rows (1 or F).

local clit    = require("lib.clit")
local cwriter = require("lib.cwriter")
local render  = require("lib.render")
local sorted  = require("lib.sorted")
local graph   = require("graph")
local plan    = require("plan")
local header  = require("emit.header")
local names   = require("emit.names")

local c = {}

-- C identifier part of a model name: "blocks.0.self_attn.q.out" -> "BLOCKS_0_SELF_ATTN_Q_OUT".
local function ident(name)
    return (name:upper():gsub("[^A-Z0-9]", "_"))
end

-- Expression for a dim inside a program function: a literal or a param/symbol name.
local function dim_expr(d)
    if math.type(d) == "integer" then return clit.int(d) end
    assert(type(d) == "string" and d:match("^[%a_][%w_]*$"), "emit/c: bad dim " .. tostring(d))
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

-- How each op kind is emitted (op -> emitter): template name, its constants, and the call.
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
backend.video_out = elementwise("video_out")
backend.add_weight = {                  -- the add kernel with the weight as b
    template = "add",
    consts = function(n) return { COLS = select(2, split_dims(n.out)) } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, %s);", k, act(n.out), act(n.ins[1]), wref(n.attrs.weight),
                             (split_dims(n.out)))
    end,
}
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
-- ", tok0, <modulation rows>" after the usual arguments of a kernel on a rank's slice of the tokens (attrs.at_tok0:
-- dit_forward_usp), else "".
local function at_tok0(n, mod)
    return n.attrs.at_tok0 and (", tok0, " .. rows(mod)) or ""
end
backend.layernorm_modulate = {
    instances = function(n)
        local a = n.attrs
        return { { template = a.at_tok0 and "layernorm_modulate_at" or "layernorm_modulate",
                   consts = { C = a.dim, CHUNKS = a.chunks, SHIFT = a.shift, SCALE = a.scale, EPS = clit.f64(a.eps) },
                   call = function(k)
                       return string.format("%s(%s, %s, %s, %s, tokens_per_row%s);", k, act(n.out), act(n.ins[1]),
                                            act(n.ins[2]), rows(n.ins[1]), at_tok0(n, n.ins[2]))
                   end } }
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
    instances = function(n)
        local a = n.attrs
        return { { template = a.at_tok0 and "gated_residual_at" or "gated_residual",
                   consts = { C = a.dim, CHUNKS = a.chunks, GATE = a.gate },
                   call = function(k)
                       return string.format("%s(%s, %s, %s, %s, %s, tokens_per_row%s);", k, act(n.out), act(n.ins[1]),
                                            act(n.ins[2]), act(n.ins[3]), rows(n.ins[1]), at_tok0(n, n.ins[3]))
                   end } }
    end,
}

-- ---- Ulysses sequence parallelism (dit_forward_usp): symbols P, Ls, Lp, tok0 (programs/dit.lua); the
-- collectives through the runtime's comm (program.h sky_comm) ----
backend.usp_slice = {
    template = "usp_slice",
    consts = function(n) return { COLS = cols(n.out) } end,
    call = function(k, n)
        return string.format("%s(%s, %s, %s, tok0, %s);", k, act(n.out), act(n.ins[1]), rows(n.out), rows(n.ins[1]))
    end,
}
backend.usp_pack_heads = {
    template = "usp_pack_heads",
    consts = function(n) return { C = n.attrs.dim } end,
    call = function(k, n) return string.format("%s(%s, %s, %s, P);", k, act(n.out), act(n.ins[1]), rows(n.ins[1])) end,
}
backend.usp_unpack_heads = {
    template = "usp_unpack_heads",
    consts = function(n) return { C = n.attrs.dim } end,
    call = function(k, n) return string.format("%s(%s, %s, %s, P);", k, act(n.out), act(n.ins[1]), rows(n.out)) end,
}
backend.usp_alltoall = {                -- [Ls, C] elements = P blocks of Ls x C / P
    template = "usp_alltoall",
    consts = function() return {} end,
    call = function(k, n)
        return string.format("%s(%s, %s, (long long)%s * %d / P, comm);", k, act(n.out), act(n.ins[1]), rows(n.ins[1]),
                             cols(n.ins[1]))
    end,
}
backend.usp_allgather = {
    template = "usp_allgather",
    consts = function(n) return { COLS = cols(n.out) } end,
    call = function(k, n) return string.format("%s(%s, %s, %s, comm);", k, act(n.out), act(n.ins[1]), rows(n.ins[1])) end,
}
backend.attention_heads = {             -- Lp queries of NH / P heads over the first L keys
    template = "attention_heads",
    consts = function(n) return { D = n.attrs.head_dim } end,
    call = function(k, n)
        local q, kk, v = n.ins[1], n.ins[2], n.ins[3]
        return string.format("%s(%s, %s, %s, %s, Lp, L, %d / P);", k, act(n.out), act(q), act(kk), act(v),
                             cols(q) // n.attrs.head_dim)
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

-- The (template, consts, call) instances of node n.
local function instances(n, s)
    local b = assert(backend[n.op], "emit/c: no CPU implementation of op " .. n.op)
    if b.instances then return b.instances(n, s) end
    return { { template = b.template, consts = b.consts(n), call = function(k) return b.call(k, n) end } }
end

-- Render the kernel of one instance into `kernels` (name -> text, after a comment naming its template
-- and constants: emit/names.lua); returns its name.
local function instantiate(ctx, kernels, inst)
    local name = names.kernel("cpu", inst.template, inst.consts)
    local path = "templates/cpu/" .. inst.template .. ".c.in"
    local text = ctx.read_template(path)
    local vars = { name = name }
    for _, k in ipairs(sorted.keys(inst.consts)) do
        local v = inst.consts[k]
        vars[k] = type(v) == "string" and v or clit.int(v)
    end
    local rendered = "/* " .. names.comment(name, path, inst.consts) .. " */\n" .. render.render(text, vars, path)
    assert(kernels[name] == nil or kernels[name] == rendered, "emit/c: kernel name " .. name .. " means two texts")
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
-- ("blocks.3", "decoder.upsamples.4", "encoder.middle"), else its part (dit_forward: "context",
-- "embed", "head"), else "input" before the first module and "output" after (`seen`: a module came).
local function section_of(n, seen)
    local name = n.out.name
    local sec = name:match("^(blocks%.%d+)%.") or name:match("^(%a+coder%.%a+%.%d+)%.")
                or name:match("^(%a+coder%.middle)%.") or name:match("^(%a+coder%.head)%.")
    return sec or n.part or (seen and "output" or "input")
end

-- C prototype of program g's CPU function, or of its part `part` (arena, the prompt arena where it keeps
-- tensors per prompt, fp32 weights, then its runtime params; last the ranks' collectives for dit_forward_usp).
function c.prototype(g, part)
    local params = { "unsigned char *arena", "const float *const *w" }
    if #g.prompt_tensors > 0 then table.insert(params, 2, "unsigned char *prompt") end
    for _, p in ipairs(g.params) do params[#params + 1] = "int " .. p.name end
    if g.usp then params[#params + 1] = "const sky_comm *comm" end
    return string.format("void %s%s_cpu(%s)", g.name, part and ("_" .. part) or "", table.concat(params, ", "))
end

-- "OUT(name, OFF_X, count)": tensor t as an op's output, which --trace records once the op has run
-- (OUT_PROMPT in the prompt arena).
local function out(t)
    return string.format("%s(%s, OFF_%s, %s)", t.kind == "prompt" and "OUT_PROMPT" or "OUT", clit.str(t.name),
                         ident(t.name), graph.numel_expr(t.dims))
end

-- The op statement of call `text` (kernel k writing n's output, its first argument): OP(k, OUT(...), the
-- other arguments), which records the output for --trace after the call.
local function op_call(text, k, n)
    local head = k .. "(" .. act(n.out) .. ", "
    assert(text:sub(1, #head) == head, "emit/c: the call of " .. k .. " does not write its output first")
    return "OP(" .. k .. ", " .. out(n.out) .. ", " .. text:sub(#head + 1)
end

-- The statements of plan p's program, one writer per part (graph.lua; "all" when it has none), and the
-- part names in order. Per node: a "---- section ----" line where the section changes, a comment, the
-- calls of its kernels (rendered into `kernels`, name -> text), the last one an op statement (op_call).
-- Records the templates used in p.templates_used.
local function program_body(s, p, ctx, kernels)
    local g = p.graph
    local bodies, part_names = {}, {}
    local current, seen = nil, false
    p.templates_used = p.templates_used or {}
    for _, n in ipairs(g.nodes) do
        local part = n.part or "all"
        if not bodies[part] then
            bodies[part] = cwriter.new()
            part_names[#part_names + 1] = part
            current = nil
        end
        local body = bodies[part]
        local sec = section_of(n, seen)
        seen = seen or sec ~= "input"
        if sec ~= current then
            body:blank()
            body:line("/* ---- %s %s */", sec, string.rep("-", math.max(4, 72 - #sec)))
            current = sec
        end
        body:line("/* %s */", node_comment(n))
        assert(n.out.dtype ~= "f64" and n.out.dtype ~= "i64", "emit/c: an op writes " .. n.out.dtype)
        local insts = instances(n, s)
        for i, inst in ipairs(insts) do
            local k = instantiate(ctx, kernels, inst)
            local call = inst.call(k)
            body:line("%s", i == #insts and op_call(call, k, n) or call)
            p.templates_used["templates/cpu/" .. inst.template .. ".c.in"] = true
        end
    end
    return bodies, part_names
end

-- The macros the statements use: typed arena pointers, the weights, an op's output and the op statement
-- that hands it to the trace hook (program.h).
local function macros(w, p)
    w:line("#include \"models/program.h\"")
    w:blank()
    w:line("#define ACT_F64(off) ((double *)(arena + (off)))")
    w:line("#define ACT_I64(off) ((int64_t *)(arena + (off)))")
    w:line("#define W(i) (w[i])")
    if #p.prompt > 0 then w:line("#define PACT(off) ((float *)(prompt + (off)))") end
    w:line("/* An op's output: where it is, and what --trace records of it once the op has run (the graph's name,")
    w:line(" * the element count). OP(k, y, ...) calls kernel k with y's address first, then hands y to the runtime's")
    w:line(" * hook (program.h); one test when not tracing. */")
    w:line("typedef struct { float *p; const char *name; long long n; } op_out;")
    w:line("#define OUT(name, off, n) (&(op_out){ ACT(off), (name), (long long)(n) })")
    if #p.prompt > 0 then w:line("#define OUT_PROMPT(name, off, n) (&(op_out){ PACT(off), (name), (long long)(n) })") end
    w:line("#define OP(k, y, ...) \\")
    w:line("    do { \\")
    w:line("        const op_out *y_ = (y); \\")
    w:line("        k(y_->p, __VA_ARGS__); \\")
    w:line("        if (sky_trace_hook) sky_trace_hook(sky_trace_ctx, y_->name, y_->p, SKY_TRACE_F32, y_->n, 0); \\")
    w:line("    } while (0)")
    w:blank()
end

-- The arena offsets (and the prompt arena's) and the weights enum.
local function tables(w, p)
    local function offsets(title, buffers)
        w:line("/* %s */", title)
        for _, b in ipairs(buffers) do
            w:line("#define OFF_%-40s ((size_t)%d)  /* %s bytes */", ident(b.tensor.name), b.offset, plan.commas(b.bytes))
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
    for i, wt in ipairs(p.graph.weights) do w:line("W_%s = %d,", ident(wt.name), i - 1) end
    w:close("};")
    w:blank()
end

-- The reset function of a program with caches: zeroes them.
local function reset_function(w, p)
    local g = p.graph
    w:blank()
    w:line("/* ======== %s: caches kept between calls ======== */", g.name)
    w:blank()
    w:line("void %s_cpu_reset(unsigned char *arena);", g.name)
    w:line("void %s_cpu_reset(unsigned char *arena)", g.name)
    w:open("{")
    for _, t in ipairs(g.states) do
        w:line("memset(arena + OFF_%s, 0, %s);", ident(t.name), clit.size(p.by_tensor[t.id].bytes))
    end
    w:close("}")
end

-- The program's function, or one function per part (the runtime calls them in order, and the first
-- only for a new prompt).
local function program_functions(w, p, bodies, part_names)
    local g = p.graph
    local function emit_function(proto, text)
        w:line("%s;", proto)
        w:line("%s", proto)
        w:open("{")
        if g.usp then w:line("(void)comm;") end
        for _, l in ipairs(graph.prologue(g, text)) do w:line("%s", l) end
        if #p.prompt > 0 and not text:find("PACT(", 1, true) and not text:find("OUT_PROMPT(", 1, true) then
            w:line("(void)prompt;")
        end
        w:raw(text:gsub("[^\n]+", "    %0"))
        w:close("}")
    end
    if #g.parts == 0 then
        emit_function(c.prototype(g), bodies.all:text())
        return
    end
    for i, part in ipairs(part_names) do
        if i > 1 then w:blank() end
        w:line("/* ---- part \"%s\" of %s (gen/graph.lua: the runtime runs the parts one by one) */", part, g.name)
        emit_function(c.prototype(g, part), bodies[part]:text())
    end
end

-- gen/<program>_cpu.c: the program's kernels and its function (plus a reset for its caches).
local function emit_program(s, p, ctx, extra_header)
    local g = p.graph
    local kernels = {}
    local bodies, part_names = program_body(s, p, ctx, kernels)
    local common = ctx.read_template("templates/cpu/common.h.in")
    local used = { ["templates/cpu/common.h.in"] = ctx.templates["templates/cpu/common.h.in"] }
    for _, path in ipairs(sorted.keys(p.templates_used)) do used[path] = ctx.templates[path] end

    local w = cwriter.new()
    local lines = { string.format("program    %s (cpu, fp32)", g.name) }
    for _, l in ipairs(extra_header) do lines[#lines + 1] = l end
    lines[#lines + 1] = string.format("arena      %s bytes (see plan.txt)", plan.commas(p.peak))
    w:raw(header.c_comment(s, ctx, "gen/" .. g.name .. "_cpu.c", lines, used))
    w:raw(common)
    macros(w, p)
    tables(w, p)
    w:line("/* ======== kernels (templates/cpu/) ======== */")
    for _, name in ipairs(sorted.keys(kernels)) do
        w:blank()
        w:raw(kernels[name])
    end
    if #g.states > 0 then reset_function(w, p) end
    w:blank()
    w:line("/* ======== %s ======== */", g.name)
    w:blank()
    program_functions(w, p, bodies, part_names)
    return w:text()
end

-- Add the CPU backend's gen/<program>_cpu.c to `files` (path -> text), one per program of plans (the
-- CPU plans).
function c.emit(s, plans, files, ctx)
    local r, d = s.derived, s.dit
    local describe = {
        dit_forward = {
            string.format("model      %d blocks, C %d, %d heads x %d, ffn %d", d.num_layers, d.dim, d.num_heads,
                          r.head_dim, d.ffn_dim),
            string.format("window     up to %d latent frames x %d tokens (frame count is a runtime argument)",
                          r.max_frames, r.tokens_per_frame),
        },
        dit_forward_usp = {
            string.format("model      %d blocks, C %d, %d heads x %d, ffn %d", d.num_layers, d.dim, d.num_heads,
                          r.head_dim, d.ffn_dim),
            string.format("ranks      Ulysses sequence parallelism over 2 to %d ranks dividing the heads (comm)",
                          d.num_heads),
        },
        vae_decode = { "chunk      one latent frame per call -> 1 frame (first call) or 4 frames" },
        vae_decode_tile = { "chunk      one latent tile of one frame per call -> its 1 or 4 frames, not clamped" },
        vae_encode = { "chunk      1 frame (first call) or 4 frames per call -> one latent frame" },
        vae_encode_tile = { "chunk      one video tile of 1 frame (first call) or 4 frames per call -> its latent frame" },
        text_encode = { "encoder    umT5 on the N real tokens of a prompt; rows after them are zeros" },
        clip_encode = { "encoder    CLIP ViT visual tower, the first use_layers blocks, no post-norm" },
    }
    for _, name in ipairs(sorted.keys(plans)) do
        files["gen/" .. name .. "_cpu.c"] = emit_program(s, plans[name], ctx, describe[name])
    end
end

return c
