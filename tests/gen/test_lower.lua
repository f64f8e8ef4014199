-- tests/gen/test_lower.lua: the lowering stage (gen/lower.lua). On every spec with a cuda target:
-- every op of a lowered graph is declared in ops.lua, with the declared number of inputs and, where the
-- kind has a shape rule, the dims it gives; every op that only lowering makes is marked lowered there
-- (and graph builders may not make it); a lowered graph reads only what is made before it, lists its
-- tensors in id order, and leaves the original graph as it was; the fusions and expansions happen.
-- Then the driver: --stop-after=lower dumps the lowered CUDA graphs and --stop-after=plan both
-- backends' plans.
local t      = require("t")
local spec   = require("spec")
local graph  = require("graph")
local lower  = require("lower")
local ops    = require("ops")
local sorted = require("lib.sorted")

-- The declared inputs of op kind def: how many are required, how many at most.
local function arity(def)
    local required = 0
    for _, name in ipairs(def.inputs) do if not name:find("?", 1, true) then required = required + 1 end end
    return required, #def.inputs
end

-- Every node of lowered graph lg (of original g) is declared, well formed, and reads what exists.
local function check_lowered(what, g, lg)
    local built = {}
    for _, n in ipairs(g.nodes) do built[n.op] = true end
    local made = {}
    for _, x in ipairs(lg.inputs) do made[x.id] = true end
    for _, x in ipairs(lg.states) do made[x.id] = true end
    for i, n in ipairs(lg.nodes) do
        local def = ops[n.op]
        t.check(def ~= nil, "%s: node %s: op %s not declared in ops.lua", what, n.out.name, n.op)
        t.check(built[n.op] or def.lowered == "cuda", "%s: op %s made by lowering is not marked lowered", what, n.op)
        local lo, hi = arity(def)
        t.check(#n.ins >= lo and #n.ins <= hi, "%s: %s reads %d tensors, %s takes %d..%d", what, n.out.name, #n.ins,
                n.op, lo, hi)
        if def.shape then
            t.check_eq(graph.dims_text(def.shape(n.ins, n.attrs)), graph.dims_text(n.out.dims),
                       what .. " " .. n.out.name .. " dims")
        end
        t.check_eq(n.id, i, what .. " node id")
        t.check_eq(lg.producer[n.out.id], i, what .. " producer of " .. n.out.name)
        for _, x in ipairs(n.ins) do
            t.check(made[x.id], "%s: %s reads %s before it is made", what, n.out.name, x.name)
        end
        made[n.out.id] = true
        if n.also then                               -- a second output (residual_norm)
            t.check_eq(lg.producer[n.also.id], i, what .. " producer of " .. n.also.name)
            made[n.also.id] = true
        end
    end
    for i = 2, #lg.tensors do
        t.check(lg.tensors[i - 1].id < lg.tensors[i].id, "%s: tensors not in id order", what)
    end
end

-- Number of nodes of op kind `op` in graph g.
local function count(g, op)
    local c = 0
    for _, n in ipairs(g.nodes) do if n.op == op then c = c + 1 end end
    return c
end

local p = assert(io.popen("ls specs"))
local checked = 0
for name in p:lines() do
    local s = name:match("%.lua$") and spec.load("specs/" .. name)
    if s and s.targets.cuda then
        s.rel_path = "specs/" .. name
        local programs = graph.build(s)
        local before = graph.dump(programs)
        local lowered = lower.run(s, programs)
        t.check_eq(graph.dump(programs), before, name .. ": lowering changed the graphs as built")
        t.check(lowered.cpu == programs, "%s: the CPU backend runs the graphs as built", name)
        for _, pname in ipairs(sorted.keys(programs)) do
            check_lowered(name .. " " .. pname, programs[pname], lowered.cuda[pname])
        end
        checked = checked + 1
        local usp = lowered.cuda.dit_forward_usp   -- the Ulysses form: every collective kept, the slice rows known
        if usp then                                 -- to each fused norm (the DF per-frame modulation follows tokens)
            t.check_eq(count(usp, "usp_alltoall"), 4 * s.dit.num_layers, name .. ": 4 all-to-alls per block")
            t.check_eq(count(usp, "usp_allgather"), 1, name .. ": the head's all-gather")
            t.check_eq(count(usp, "rope"), 0, name .. ": usp: every rope fused")
            for _, n in ipairs(usp.nodes) do
                if n.op == "residual_norm" or n.op == "layernorm_modulate" or n.op == "gated_residual" then
                    t.check(n.attrs.at_tok0, "%s: usp %s (%s) lost at_tok0", name, n.out.name, n.op)
                end
            end
        end
        local dit, ldit = programs.dit_forward, lowered.cuda.dit_forward
        t.check_eq(count(ldit, "rope"), 0, name .. ": every rope fused")
        -- q's norm where the attention loads it (q_norm): k's rmsnorm_rope per block remains, q's is an rms_factor
        -- as is the cross-attention q's rmsnorm; every attention reads q with its factors
        local layers = s.dit.num_layers
        t.check_eq(count(ldit, "rmsnorm_rope"), count(dit, "rope") // 2, name .. ": rmsnorm_rope per k rope")
        t.check_eq(count(ldit, "rms_factor"), 2 * layers, name .. ": rms_factor per q norm")
        t.check_eq(count(ldit, "rmsnorm"), count(dit, "rmsnorm") - count(dit, "rope") - layers,
                   name .. ": rmsnorm left: the cross-attention's k (per prompt)")
        for _, n in ipairs(ldit.nodes) do
            if n.op == "attention" then
                t.check(n.attrs.q_norm and n.ins[4].dims[1] == n.ins[1].dims[1] and n.ins[4].dtype == "f32",
                        "%s: %s reads q with its row factors", name, n.out.name)
                t.check_eq(n.ins[5] ~= nil, n.out.name:find("self_attn", 1, true) ~= nil, name .. ": RoPE at load")
            end
        end
        t.check_eq(count(ldit, "gelu_tanh"), 0, name .. ": every gelu_tanh fused into its linear")
        -- per block: x1 -> norm3, x2 -> norm2 and (but the last block's, read by the head) out -> the next norm1
        t.check_eq(count(ldit, "residual_norm"), 3 * layers - 1, name .. ": residual_norm per residual and norm")
        t.check_eq(count(ldit, "layernorm_affine"), count(dit, "layernorm_affine") - layers, name .. ": norm3 fused")
        t.check_eq(count(ldit, "gated_residual"), 1, name .. ": the last block's output not fused (the head's part)")
        -- per block one linear for q, k and v (reading q's input), 3C outputs; its readers take views
        local qkv = 0
        for _, n in ipairs(ldit.nodes) do
            if n.op == "linear" and n.attrs.qkv then
                qkv = qkv + 1
                t.check_eq(n.attrs.n, 3 * s.dit.dim, name .. ": the fused q|k|v's width")
                t.check_eq(n.out.dims[2], 3 * s.dit.dim, name .. ": the fused q|k|v's output")
            end
            if n.op == "rmsnorm_rope" then t.check_eq(n.attrs.ld, 3 * s.dit.dim, name .. ": rmsnorm_rope reads a view") end
        end
        t.check_eq(qkv, layers, name .. ": one q|k|v GEMM per block")
        t.check_eq(#ldit.nodes, #dit.nodes - count(dit, "rope") - count(dit, "gelu_tanh") - (3 * layers - 1) - 2 * layers,
                   name .. ": dit nodes")
        if programs.vae_decode then
            local lv = lowered.cuda.vae_decode
            t.check_eq(count(lv, "attention_frames"), 0, name .. ": vae attention expanded")
            t.check_eq(count(lv, "attn_qk"), count(programs.vae_decode, "attention_frames"), name .. ": attn_qk")
            t.check_eq(count(lowered.cuda.vae_encode, "video_cl"), 1, name .. ": video_cl before the first conv")
        end
        if programs.text_encode then
            local lt = lowered.cuda.text_encode
            t.check_eq(count(lt, "attn_scratch"), count(lt, "attention_relbias"), name .. ": a scratch per attention")
            t.check_eq(lt.outputs[1].dtype, "f32", name .. ": text_encode's output written as fp32")
        end
    end
end
p:close()
t.check(checked >= 10, "only %d specs with a cuda target", checked)

-- Graph builders may not make an op only lowering makes.
local s = spec.load("specs/tiny_df128.lua")
local g = graph.new("x", s)
local x = g:input("x", { 4, 8 }, "bf16")
t.check_error(function() g:op("rmsnorm_rope", { x, x }, {}, "y", "bf16") end, "made only by lower.lua")

-- The driver's dumps: lower shows the lowered CUDA graphs, plan both backends' plans.
local function run(args)
    local f = assert(io.popen("lua5.4 gen/main.lua " .. args .. " 2>&1"))
    local text = f:read("a")
    f:close()
    return text
end
local lowered_text = run("specs/tiny_df128.lua --stop-after=lower")
for _, pname in ipairs({ "dit_forward", "text_encode", "vae_decode", "vae_encode" }) do
    t.check(lowered_text:find("# " .. pname .. ", lowered for cuda", 1, true), "--stop-after=lower shows %s", pname)
end
for _, op in ipairs({ "rmsnorm_rope", "attn_qk", "attn_pv", "video_cl", "attn_scratch" }) do
    t.check(lowered_text:find("= " .. op, 1, true), "--stop-after=lower shows a %s node", op)
end
t.check(run("specs/tiny_t2v.lua --stop-after=lower"):find("cuda backend: not a target", 1, true),
        "--stop-after=lower without a cuda target says so")
local plan_text = run("specs/tiny_df128.lua --stop-after=plan")
for _, pname in ipairs({ "dit_forward", "text_encode", "vae_decode", "vae_encode" }) do
    t.check(plan_text:find("# arena " .. pname .. " (cpu backend", 1, true), "--stop-after=plan: cpu %s", pname)
    t.check(plan_text:find("# arena " .. pname .. " (cuda backend", 1, true), "--stop-after=plan: cuda %s", pname)
end
t.check(not run("specs/tiny_t2v.lua --stop-after=plan"):find("(cuda backend", 1, true),
        "--stop-after=plan without a cuda target: the cpu plans only")
