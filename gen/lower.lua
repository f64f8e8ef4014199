-- gen/lower.lua
-- ==============
-- Lowering: each backend's view of the op graphs, the stage between graph.lua and plan.lua. The CPU
-- backend runs the graphs as built (it is the op-by-op reference). The CUDA backend runs a rewritten
-- copy of each program, made here by two kinds of rules:
--
--   fusions      a producer and its only reader become one node, in the reader's place, writing the
--                reader's output; the producer's output leaves the graph (and so the memory plan)
--     linear -> gelu_tanh       linear with the cuBLASLt GELU+bias epilogue   (ffn.0, text_embedding.0)
--     rmsnorm -> rope           rmsnorm_rope: one pass, one bf16 rounding     (self-attention q and k)
--     rms_norm_ch -> silu       rms_norm_ch with silu = true: one kernel      (the VAE's residual blocks)
--   qkv          the self-attention's q, k and v linears on the same input become one linear of 3C
--                outputs (weights adjacent on the device); rmsnorm_rope reads q and k, the attention v,
--                as column views of its [rows, 3C] output                           (dit_forward)
--   residual_norm: a residual (gated_residual, add) and the norm reading it (layernorm_affine,
--                layernorm_modulate) on the same rows become one node in the norm's place writing both
--                outputs (n.also: the residual stream, which later nodes still read); the DiT's
--                x1 -> norm3, x2 -> norm2, and each block's output -> the next block's norm1
--   q_norm       the norm of an attention's q (rmsnorm: cross-attention; rmsnorm_rope: self-attention, q a view
--                of the fused q|k|v) becomes rms_factor, which reads q and writes one fp32 factor per row; the
--                attentions reading the normed q read q itself with the factors (ins[4]), the norm's weight
--                (attrs.q_weight) and, for rmsnorm_rope, the RoPE table (ins[5]), and normalise q where they
--                load it (attrs.q_norm; templates/cuda/attention_sm*.cu.in): the normed q is never stored
--                                                                                   (dit_forward)
--   expansions   one node becomes several, with tensors of their own (ids after the graph's)
--     attention_frames          attn_qk (per frame: S = Q K^T, softmax in place) then attn_pv (O = P V);
--                               the scores [T, H, W, H, W] are planned in the arena       (VAE)
--     causal_conv3 on the input video_cl: [3, T, H, W] -> 4 channels first (the conv's 16-byte copies
--                               need 4; the conv's cache and weights get the padded count)  (VAE encoder)
--     attention, attention_relbias   attn_scratch (one head's scores: a node that launches nothing, so the
--                               plan gives the scratch a lifetime) then the attention reading it (encoders)
--     patch_embed               patch_cols + linear                                       (CLIP)
--     zero_tail                 writes fp32 (the runtime's output slot)                   (umT5)
--
-- The VAE's activations are channels-last on the GPU ([T][H][W][C]); the dims keep the graph's
-- [C, T, H, W] order, which gives the same sizes, and the emitter reads them channels-last.
--
-- Every op a rule creates is declared in ops.lua (lowered = "cuda"). A lowered graph is a graph like
-- graph.lua's (nodes in program order, ids from 1, each output's producer, tensors in id order) sharing
-- the original's tensors and weights; the original is not changed.

local graph  = require("graph")
local ops    = require("ops")
local sorted = require("lib.sorted")

local lower = {}

-- A copy of attribute table a (rules add to the copy, never to the original node's).
local function copy_attrs(a)
    local c = {}
    for _, k in ipairs(sorted.keys(a)) do c[k] = a[k] end
    return c
end

-- A node of a lowered graph; its op must be declared in ops.lua.
local function node(op, ins, out, attrs, part)
    assert(ops[op], "lower: op not declared in ops.lua: " .. tostring(op))
    return { op = op, ins = ins, out = out, attrs = attrs or {}, part = part }
end

-- ---- fusions --------------------------------------------------------------------------------------

-- Each rule: producer op, reader op, and the node made of both (a: producer, b: reader).
local fusions = {
    linear_gelu = {
        first = "linear", second = "gelu_tanh",
        make = function(a, b)
            local attrs = copy_attrs(a.attrs)
            attrs.epilogue = "gelu_tanh"
            return node("linear", a.ins, b.out, attrs)
        end,
    },
    rmsnorm_rope = {
        first = "rmsnorm", second = "rope",
        make = function(a, b)
            local attrs = copy_attrs(a.attrs)
            attrs.num_heads, attrs.head_dim = b.attrs.num_heads, b.attrs.head_dim
            return node("rmsnorm_rope", { a.ins[1], b.ins[2] }, b.out, attrs)
        end,
    },
    rms_norm_silu = {
        first = "rms_norm_ch", second = "silu",
        make = function(a, b)
            local attrs = copy_attrs(a.attrs)
            attrs.silu = true
            return node("rms_norm_ch", a.ins, b.out, attrs)
        end,
    },
}

-- Number of nodes reading each tensor id, and the (last) node reading it.
local function readers(nodes)
    local count, reader = {}, {}
    for _, n in ipairs(nodes) do
        for _, t in ipairs(n.ins) do
            count[t.id] = (count[t.id] or 0) + 1
            reader[t.id] = n
        end
    end
    return count, reader
end

-- Whether rule r fuses producer a with node b: b reads a's output first and is its only reader, in
-- the same part, and the output is an activation (not kept per prompt, not an output).
local function fusable(r, a, b, count)
    return b ~= nil and a.op == r.first and b.op == r.second and b.ins[1] == a.out and count[a.out.id] == 1
           and a.out.kind == "act" and a.part == b.part
end

-- The nodes with the fusions named in `rules` applied (a fused node takes its reader's place).
local function fuse(nodes, rules)
    local count, reader = readers(nodes)
    local fused, absorbed = {}, {}               -- reader -> fused node; producer -> true
    for _, a in ipairs(nodes) do
        local b = reader[a.out.id]
        for _, name in ipairs(rules) do
            local r = fusions[name]
            if not absorbed[a] and not fused[a] and fusable(r, a, b, count) then
                fused[b] = r.make(a, b)
                absorbed[a] = true
            end
        end
    end
    local out = {}
    for _, n in ipairs(nodes) do
        if not absorbed[n] then
            local f = fused[n] or n
            out[#out + 1] = node(f.op, f.ins, f.out, f.attrs, n.part)
        end
    end
    return out
end

-- ---- qkv: the self-attention's q, k and v projections as one GEMM ----------------------------------------

-- The linear node of weight `name` reading x among nodes (nil when none).
local function linear_of(nodes, x, name)
    for _, n in ipairs(nodes) do
        if n.op == "linear" and n.ins[1] == x and n.attrs.weight.name == name then return n end
    end
end

-- The qkv fusion of q (a linear of weight <p>self_attn.q.weight): its k and v siblings on the same input,
-- same shape and dtypes, no epilogue; q and k each read only by an rmsnorm_rope (as its x), v only by an
-- attention (as its v). Returns k, v and the three readers, or nil.
local function qkv_parts(nodes, q, readers_of)
    local p = q.attrs.weight.name:match("^(.*self_attn%.)q%.weight$")
    if not p or q.attrs.epilogue then return nil end
    local k, v = linear_of(nodes, q.ins[1], p .. "k.weight"), linear_of(nodes, q.ins[1], p .. "v.weight")
    if not (k and v) then return nil end
    for _, m in ipairs({ k, v }) do
        if m.attrs.epilogue or m.attrs.n ~= q.attrs.n or m.attrs.k ~= q.attrs.k or m.out.dtype ~= q.out.dtype
           or m.part ~= q.part or m.out.kind ~= "act" then return nil end
    end
    local function only(t, op, slot)
        local r = readers_of[t.id]
        return r and #r == 1 and r[1].op == op and r[1].ins[slot] == t and r[1] or nil
    end
    local rq, rk, rv = only(q.out, "rmsnorm_rope", 1), only(k.out, "rmsnorm_rope", 1), only(v.out, "attention", 3)
    if not (rq and rk and rv) or q.out.kind ~= "act" then return nil end
    return k, v, rq, rk, rv
end

-- Each tensor id's readers, in node order.
local function readers_map(nodes)
    local readers_of = {}
    for _, n in ipairs(nodes) do
        for _, t in ipairs(n.ins) do
            readers_of[t.id] = readers_of[t.id] or {}
            table.insert(readers_of[t.id], n)
        end
    end
    return readers_of
end

-- The nodes with each self-attention's q, k and v linears made one linear of n = 3C (in q's place) writing
-- [rows, 3C]; its weights and biases are laid out adjacently on the device (emit/cuda_dit.lua's weight
-- places), so the q weight's [C, C] is the first third of one [3C, C]. The readers take their third as a
-- view: rmsnorm_rope's col (0 or C) and ld (3C), attention's v_col (2C) and v_ld (3C).
local function fuse_qkv(nodes, L)
    local readers_of = readers_map(nodes)
    local replace, drop, view = {}, {}, {}
    for _, q in ipairs(nodes) do
        local k, v, rq, rk, rv
        if q.op == "linear" then k, v, rq, rk, rv = qkv_parts(nodes, q, readers_of) end
        if k then
            local C = q.attrs.n
            local name = q.out.name:gsub("q%.out$", "qkv.out")
            local qkv = L.tensor(name, { q.out.dims[1], 3 * C }, q.out.dtype, "act")
            local attrs = copy_attrs(q.attrs)
            attrs.n, attrs.qkv = 3 * C, true
            attrs.k_weight, attrs.k_bias = k.attrs.weight, k.attrs.bias
            attrs.v_weight, attrs.v_bias = v.attrs.weight, v.attrs.bias
            replace[q] = node("linear", q.ins, qkv, attrs, q.part)
            drop[k], drop[v] = true, true
            view[rq] = { qkv = qkv, col = 0, ld = 3 * C }
            view[rk] = { qkv = qkv, col = C, ld = 3 * C }
            view[rv] = { qkv = qkv, v_col = 2 * C, v_ld = 3 * C }
        end
    end
    local out = {}
    for _, n in ipairs(nodes) do
        if not drop[n] then
            local m = replace[n] or n
            local vw = view[n]
            if vw then
                local attrs, ins = copy_attrs(n.attrs), {}
                for i, t in ipairs(n.ins) do ins[i] = t end
                if vw.v_col then
                    ins[3], attrs.v_col, attrs.v_ld = vw.qkv, vw.v_col, vw.v_ld
                else
                    ins[1], attrs.col, attrs.ld = vw.qkv, vw.col, vw.ld
                end
                m = node(n.op, ins, n.out, attrs, n.part)
            end
            out[#out + 1] = m
        end
    end
    return out
end

-- ---- residual_norm: a residual and the norm reading it, one pass writing both --------------------------

-- The residual ops and the norms that may follow them on the same rows.
local residual_ops = { gated_residual = true, add = true }
local norm_ops = { layernorm_affine = true, layernorm_modulate = true }

-- The residual_norm node of residual a and norm b: out = b's output, also = a's (still read after b).
local function residual_norm(a, b)
    local ra, nb = a.attrs, b.attrs
    local attrs = { dim = nb.dim, eps = nb.eps, gated = a.op == "gated_residual", modulate = b.op == "layernorm_modulate",
                    at_tok0 = ra.at_tok0 or nb.at_tok0 }
    local ins = { a.ins[1], a.ins[2] }
    if attrs.gated then
        attrs.gate, attrs.rchunks = ra.gate, ra.chunks
        ins[#ins + 1] = a.ins[3]
    end
    if attrs.modulate then
        attrs.shift, attrs.scale, attrs.nchunks = nb.shift, nb.scale, nb.chunks
        ins[#ins + 1] = b.ins[2]
    else
        attrs.weight, attrs.bias, attrs.round_input = nb.weight, nb.bias, nb.round_input
    end
    local n = node("residual_norm", ins, b.out, attrs)
    n.also = a.out
    return n
end

-- Whether residual a and norm b (b later in program order) fuse: b reads a's output first, a row of
-- the norm's width; the same part; a's output an activation whose other readers all come after b (the
-- fused node takes b's place, and writes a's output there).
local function residual_norm_fusable(a, b, pos, readers_of)
    if not (a and residual_ops[a.op] and norm_ops[b.op] and b.ins[1] == a.out and a.part == b.part) then return false end
    local t = a.out
    if t.kind ~= "act" or #t.dims ~= 2 or t.dims[2] ~= b.attrs.dim or a.ins[2].dims[2] ~= t.dims[2] then return false end
    if a.op == "add" and a.ins[1].dims[2] ~= t.dims[2] then return false end
    for _, r in ipairs(readers_of[t.id]) do
        if r ~= b and pos[r] < pos[b] then return false end
    end
    return true
end

-- The nodes with every fusable residual -> norm pair made one residual_norm node, in the norm's place.
local function fuse_residual_norms(nodes)
    local pos, made_by, readers_of = {}, {}, {}
    for i, n in ipairs(nodes) do
        pos[n] = i
        made_by[n.out.id] = n
        for _, t in ipairs(n.ins) do
            readers_of[t.id] = readers_of[t.id] or {}
            table.insert(readers_of[t.id], n)
        end
    end
    local fused, absorbed = {}, {}
    for _, b in ipairs(nodes) do
        local a = b.ins[1] and made_by[b.ins[1].id]
        if not absorbed[a] and residual_norm_fusable(a, b, pos, readers_of) then
            fused[b], absorbed[a] = residual_norm(a, b), true
        end
    end
    local out = {}
    for _, n in ipairs(nodes) do
        if not absorbed[n] then
            local f = fused[n]
            if f then f.part = n.part end
            out[#out + 1] = f or n
        end
    end
    return out
end

-- ---- q_norm: an attention's q normalised where the attention loads it ------------------------------

-- The norms whose output may be normalised at an attention's load instead of stored.
local q_norm_ops = { rmsnorm = true, rmsnorm_rope = true }

-- The nodes with each q norm read only by attentions (as their q) made an rms_factor node, and its readers
-- reading q with the factors (see the header).
local function fuse_q_norms(nodes, L)
    local readers_of = readers_map(nodes)
    local replace = {}
    for _, a in ipairs(nodes) do
        local rs = readers_of[a.out.id]
        local ok = q_norm_ops[a.op] and rs and a.out.kind == "act"
        for _, r in ipairs(rs or {}) do
            ok = ok and r.op == "attention" and #r.ins == 3 and r.ins[1] == a.out and r.ins[2] ~= a.out
                 and r.ins[3] ~= a.out and r.part == a.part
        end
        if ok then
            local x, at = a.ins[1], a.attrs
            local factor = L.tensor(a.out.name .. ".rms", { a.out.dims[1] }, "f32", "act")
            replace[a] = node("rms_factor", { x }, factor, { dim = at.dim, eps = at.eps, col = at.col, ld = at.ld,
                                                            pairs = a.op == "rmsnorm_rope" }, a.part)
            for _, r in ipairs(rs) do
                local attrs = copy_attrs(r.attrs)
                attrs.q_norm, attrs.q_weight, attrs.q_col, attrs.q_ld = true, at.weight, at.col, at.ld
                local ins = { x, r.ins[2], r.ins[3], factor }
                if a.op == "rmsnorm_rope" then ins[5] = a.ins[2] end
                replace[r] = node(r.op, ins, r.out, attrs, r.part)
            end
        end
    end
    local out = {}
    for _, n in ipairs(nodes) do out[#out + 1] = replace[n] or n end
    return out
end

-- ---- expansions -----------------------------------------------------------------------------------

-- Each rule: fn(n, L) -> the nodes replacing n, or nil to keep it. L.tensor(name, dims, dtype, kind)
-- makes a tensor; L.replace_state(old, new) and L.replace_output(old, new) swap a program's cache or
-- output for one the rule made.
local expansions = {}

expansions.attention_frames = function(n, L)
    local qkv = n.ins[1]
    local T, H, W = qkv.dims[2], qkv.dims[3], qkv.dims[4]
    local scores = L.tensor(n.out.name .. ".scores", { T, H, W, H, W }, "f32", "act")
    return { node("attn_qk", { qkv }, scores, { c = n.attrs.c }, n.part),
             node("attn_pv", { scores, qkv }, n.out, { c = n.attrs.c }, n.part) }
end

expansions.causal_conv3 = function(n, L)
    local x, cache = n.ins[1], n.ins[2]
    if x.kind ~= "input" or x.dims[1] % 4 == 0 then return nil end
    local cp = (x.dims[1] + 3) // 4 * 4
    local xcl = L.tensor(x.name .. ".cl", { cp, x.dims[2], x.dims[3], x.dims[4] }, "f32", "act")
    local padded = L.tensor(cache.name, { cp, cache.dims[2], cache.dims[3], cache.dims[4] }, "f32", "state")
    L.replace_state(cache, padded)
    local attrs = copy_attrs(n.attrs)
    attrs.cin_storage = cp
    return { node("video_cl", { x }, xcl, { cin = x.dims[1], cp = cp }, n.part),
             node("causal_conv3", { xcl, padded }, n.out, attrs, n.part) }
end

-- The encoders' attention: a scratch for one head's scores [L, L], then the attention reading it.
local function attention_with_scratch(n, L)
    local q = n.ins[1]
    local scores = L.tensor(n.out.name .. ".scores", { q.dims[1], q.dims[1] }, q.dtype, "act")
    return { node("attn_scratch", {}, scores, {}, n.part),
             node(n.op, { n.ins[1], n.ins[2], n.ins[3], scores }, n.out, n.attrs, n.part) }
end
expansions.attention = attention_with_scratch
expansions.attention_relbias = attention_with_scratch

expansions.patch_embed = function(n, L)
    local a = n.attrs
    local k = 3 * a.patch * a.patch
    local cols = L.tensor(n.out.name .. ".cols", { a.patches, k }, "f32", "act")
    return { node("patch_cols", { n.ins[1] }, cols, { patch = a.patch, side = a.side }, n.part),
             node("linear", { cols }, n.out, { weight = a.weight, n = a.dim, k = k }, n.part) }
end

expansions.zero_tail = function(n, L)
    local out = L.tensor(n.out.name, n.out.dims, "f32", n.out.kind)
    L.replace_output(n.out, out)
    return { node("zero_tail", n.ins, out, n.attrs, n.part) }
end

-- The nodes with the expansions named in `rules` applied, in program order.
local function expand(nodes, rules, L)
    local by_op = {}
    for _, name in ipairs(rules) do by_op[name] = assert(expansions[name], "lower: no expansion " .. name) end
    local out = {}
    for _, n in ipairs(nodes) do
        local rule = by_op[n.op]
        local made = rule and rule(n, L)
        for _, m in ipairs(made or { n }) do out[#out + 1] = m end
    end
    return out
end

-- ---- the CUDA lowering of each program --------------------------------------------------------------

-- Per program: the plan's label (what the lowered graph stores, how), the fusions, then the expansions.
-- The encoders' attention is "attention" in clip_encode and "attention_relbias" in text_encode.
local cuda_lowering = {
    dit_forward = { label = "cuda backend, the original's dtypes", fuse = { "linear_gelu", "rmsnorm_rope" },
                    qkv = true, residual_norm = true, q_norm = true, expand = {} },
    vae_decode  = { label = "cuda backend, fp32, channels-last", fuse = { "rms_norm_silu" },
                    expand = { "attention_frames", "causal_conv3" } },
    text_encode = { label = "cuda backend", fuse = {}, expand = { "attention_relbias", "zero_tail" } },
    clip_encode = { label = "cuda backend", fuse = {}, expand = { "attention", "patch_embed" } },
}
cuda_lowering.dit_forward_usp = cuda_lowering.dit_forward   -- the Ulysses form: the same fusions
cuda_lowering.vae_encode = cuda_lowering.vae_decode
cuda_lowering.vae_decode_tile = cuda_lowering.vae_decode
cuda_lowering.vae_encode_tile = cuda_lowering.vae_decode

-- The lowered copy of graph g with `nodes`: every tensor an input, state, or node reads or writes, in id
-- order (what the plan walks), node ids from 1, each output's producer.
local function finish(g, nodes, L, label)
    local out = graph.new(g.name, g.spec)
    out.params, out.symbols, out.dim, out.weights, out.inputs = g.params, g.symbols, g.dim, g.weights, g.inputs
    out.parts, out.exposed, out.prompt_tensors = g.parts, g.exposed, g.prompt_tensors
    out.by_name, out.states, out.outputs, out.label = L.by_name, L.states, L.outputs, label
    out.tile = g.tile                                -- vae_decode_tile: H x W varies from call to call
    local live = {}
    for _, t in ipairs(g.inputs) do live[t.id] = t end
    for _, t in ipairs(L.states) do live[t.id] = t end
    out.producer = {}
    for id, n in ipairs(nodes) do
        n.id = id
        live[n.out.id] = n.out
        out.producer[n.out.id] = id
        for _, t in ipairs(n.ins) do live[t.id] = t end
        if n.also then                               -- a second output (residual_norm)
            live[n.also.id] = n.also
            out.producer[n.also.id] = id
        end
    end
    for _, id in ipairs(sorted.keys(live)) do out.tensors[#out.tensors + 1] = live[id] end
    out.nodes = nodes
    return out
end

-- The state a lowering carries: new tensors (ids after g's), the program's caches and outputs.
local function lowering_state(g)
    local L = { states = {}, outputs = {}, by_name = setmetatable({}, { __index = g.by_name }) }
    for i, t in ipairs(g.states) do L.states[i] = t end
    for i, t in ipairs(g.outputs) do L.outputs[i] = t end
    local next_id = #g.tensors
    function L.tensor(name, dims, dtype, kind)
        next_id = next_id + 1
        local t = { id = next_id, name = name, dims = dims, dtype = dtype, kind = kind }
        L.by_name[name] = t
        return t
    end
    local function swap(list, old, new)
        for i, t in ipairs(list) do if t == old then list[i] = new end end
    end
    function L.replace_state(old, new) swap(L.states, old, new) end
    function L.replace_output(old, new) swap(L.outputs, old, new) end
    return L
end

-- Program g as the CUDA backend runs it.
function lower.cuda(g)
    local how = assert(cuda_lowering[g.name], "lower: no CUDA lowering of program " .. g.name)
    local L = lowering_state(g)
    local nodes = fuse(g.nodes, how.fuse)
    if how.qkv then nodes = fuse_qkv(nodes, L) end
    if how.residual_norm then nodes = fuse_residual_norms(nodes) end
    if how.q_norm then nodes = fuse_q_norms(nodes, L) end
    nodes = expand(nodes, how.expand, L)
    return finish(g, nodes, L, how.label)
end

-- Every backend's programs: { cpu = programs (as built), cuda = { name = lowered graph } } (cuda only
-- when the spec targets it).
function lower.run(s, programs)
    local out = { cpu = programs }
    if s.targets.cuda then
        out.cuda = {}
        for _, name in ipairs(sorted.keys(programs)) do
            out.cuda[name] = lower.cuda(programs[name])
        end
    end
    return out
end

-- Text dump for --stop-after=lower: the lowered graphs, as graph.dump writes graphs.
function lower.dump(lowered, s)
    local lines = { "# cpu backend: the graphs as built (--stop-after=graph)" }
    if not lowered.cuda then
        lines[#lines + 1] = string.format("# cuda backend: not a target of %s", s.rel_path)
        return table.concat(lines, "\n") .. "\n"
    end
    return table.concat(lines, "\n") .. "\n" .. graph.dump(lowered.cuda, "cuda")
end

return lower
