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
                    expand = {} },
    vae_decode  = { label = "cuda backend, fp32, channels-last", fuse = { "rms_norm_silu" },
                    expand = { "attention_frames", "causal_conv3" } },
    text_encode = { label = "cuda backend", fuse = {}, expand = { "attention_relbias", "zero_tail" } },
    clip_encode = { label = "cuda backend", fuse = {}, expand = { "attention", "patch_embed" } },
}
cuda_lowering.vae_encode = cuda_lowering.vae_decode

-- The lowered copy of graph g with `nodes`: every tensor an input, state, or node reads or writes, in id
-- order (what the plan walks), node ids from 1, each output's producer.
local function finish(g, nodes, L, label)
    local out = graph.new(g.name, g.spec)
    out.params, out.symbols, out.dim, out.weights, out.inputs = g.params, g.symbols, g.dim, g.weights, g.inputs
    out.parts, out.exposed, out.prompt_tensors = g.parts, g.exposed, g.prompt_tensors
    out.by_name, out.states, out.outputs, out.label = L.by_name, L.states, L.outputs, label
    local live = {}
    for _, t in ipairs(g.inputs) do live[t.id] = t end
    for _, t in ipairs(L.states) do live[t.id] = t end
    out.producer = {}
    for id, n in ipairs(nodes) do
        n.id = id
        live[n.out.id] = n.out
        out.producer[n.out.id] = id
        for _, t in ipairs(n.ins) do live[t.id] = t end
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
    nodes = expand(nodes, how.expand, L)
    return finish(g, nodes, L, how.label)
end

-- Every backend's programs: { cpu = programs (as built), cuda = { name = lowered graph } } (cuda only
-- when the spec targets it, and without the programs marked cpu_only: dit_forward_usp).
function lower.run(s, programs)
    local out = { cpu = programs }
    if s.targets.cuda then
        out.cuda = {}
        for _, name in ipairs(sorted.keys(programs)) do
            if not programs[name].cpu_only then out.cuda[name] = lower.cuda(programs[name]) end
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
