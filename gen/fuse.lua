-- gen/fuse.lua
-- =============
-- Pattern rewrites for the CUDA backend, on a copy of a program's graph (the CPU backend keeps the
-- unfused graph: it is the op-by-op reference). Each rule replaces a producer and its only
-- consumer by one node that writes the consumer's output tensor; the producer's output disappears
-- from the graph and so from the memory plan.
--
--   linear -> gelu_tanh      linear with the cuBLASLt GELU+bias epilogue   (ffn.0, text_embedding.0)
--   rmsnorm -> rope          rmsnorm_rope: one pass, one bf16 rounding     (self-attention q and k)

local graph = require("graph")

local fuse = {}

-- Number of nodes that read each tensor id.
local function consumers(g)
    local n = {}
    for _, node in ipairs(g.nodes) do
        for _, t in ipairs(node.ins) do n[t.id] = (n[t.id] or 0) + 1 end
    end
    return n
end

-- The rules: producer op, consumer op, and the fused node built from both.
local rules = {
    {
        first = "linear", second = "gelu_tanh",
        make = function(a, b)
            local attrs = {}
            for k, v in pairs(a.attrs) do attrs[k] = v end
            attrs.epilogue = "gelu_tanh"
            return { op = "linear", ins = a.ins, out = b.out, attrs = attrs }
        end,
    },
    {
        first = "rmsnorm", second = "rope",
        make = function(a, b)
            local attrs = {}
            for k, v in pairs(a.attrs) do attrs[k] = v end
            attrs.num_heads, attrs.head_dim = b.attrs.num_heads, b.attrs.head_dim
            return { op = "rmsnorm_rope", ins = { a.ins[1], b.ins[2] }, out = b.out, attrs = attrs }
        end,
    },
}

-- A fused copy of graph g (g itself is not changed). The fused node takes the consumer's place in
-- program order (its other inputs are defined by then); node ids are renumbered; tensors keep their
-- ids; outputs of absorbed producers are dropped from the tensor list.
function fuse.apply(g)
    local uses = consumers(g)
    local consumer_of = {}                  -- tensor id -> the node reading it (when it is the only one)
    for _, node in ipairs(g.nodes) do
        for _, t in ipairs(node.ins) do consumer_of[t.id] = node end
    end
    local replaced, absorbed = {}, {}       -- node -> fused node; producer -> true
    for _, a in ipairs(g.nodes) do
        local b = consumer_of[a.out.id]
        for _, r in ipairs(rules) do
            if b and not absorbed[a] and not replaced[a] and a.op == r.first and b.op == r.second
               and b.ins[1] == a.out and uses[a.out.id] == 1 and a.out.kind == "act" and a.part == b.part then
                replaced[b] = r.make(a, b)
                absorbed[a] = true
            end
        end
    end
    local nodes, dropped = {}, {}
    for _, n in ipairs(g.nodes) do
        if absorbed[n] then
            dropped[n.out.id] = true
        else
            local f = replaced[n] or n
            nodes[#nodes + 1] = { op = f.op, ins = f.ins, out = f.out, attrs = f.attrs, part = n.part }
        end
    end
    local out = graph.new(g.name, g.spec)
    out.params, out.symbols, out.dim = g.params, g.symbols, g.dim
    out.weights, out.inputs, out.outputs, out.states = g.weights, g.inputs, g.outputs, g.states
    out.by_name = g.by_name
    out.parts, out.exposed, out.prompt_tensors = g.parts, g.exposed, g.prompt_tensors
    -- Tensors are shared with g, so the producer ids used by the plan live beside them.
    out.producer = {}
    for id, n in ipairs(nodes) do
        n.id = id
        out.producer[n.out.id] = id
    end
    out.nodes = nodes
    for _, t in ipairs(g.tensors) do
        if not dropped[t.id] then out.tensors[#out.tensors + 1] = t end
    end
    return out
end

return fuse
