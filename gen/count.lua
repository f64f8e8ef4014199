-- gen/count.lua
-- ==============
-- What one call of a lowered program asks of the device, counted from the CUDA lowering (lower.lua)
-- at the program's largest window: per kind of kernel (a group: attention, the GEMMs by role, norms,
-- RoPE, residuals and other elementwise ops, embed/head, convolutions) the launches (kernels and
-- GEMMs, as emit/cuda_*.lua issue them), the bytes (each operand of each launch group read or written
-- once at its device dtype: the minimal traffic, not what a kernel's tiling re-reads) and the FLOPs
-- (multiply-add = 2; elementwise ops and norms count none). With a device's stated peaks, each group's
-- compute floor (FLOPs / the peak of its math), memory floor (bytes / HBM bandwidth) and roofline
-- time (the larger); the sum of the rooflines is what the emitted program costs at best, next to the
-- floor of the math alone (all FLOPs / the dense BF16 peak). --info and bench --json print these
-- (emit/counts.lua writes them into gen/variant.c).
--
-- dit_forward's first part ("context") runs once per prompt; its nodes are counted apart ("once").
-- Iteration is in program order and groups come out sorted by key: the output is deterministic.

local graph  = require("graph")
local ops    = require("ops")
local sorted = require("lib.sorted")

local count = {}

-- Bytes per value of each dtype.
local dtype_bytes = { bf16 = 2, f32 = 4, f64 = 8, i64 = 8, i32 = 4 }

-- Stated peaks of the devices we plan for (vendor datasheets; dense, i.e. without structured sparsity,
-- which halves the datasheets' "with sparsity" figures): BF16 and TF32 on the tensor cores, FP32 on
-- the CUDA cores, HBM bandwidth. The H200 is the device the tables are emitted for.
count.devices = {
    H200 = { name = "H200 SXM", bf16 = 989e12, tf32 = 494e12, f32 = 67e12, hbm = 4.8e12,
             source = "NVIDIA H200 datasheet: BF16 1,979 and TF32 989 TFLOP/s with sparsity (halved), FP32 67, HBM3e 4.8 TB/s" },
    H100 = { name = "H100 SXM", bf16 = 989e12, tf32 = 494e12, f32 = 67e12, hbm = 3.35e12,
             source = "NVIDIA H100 datasheet: BF16 1,979 and TF32 989 TFLOP/s with sparsity (halved), FP32 67, HBM3 3.35 TB/s" },
}

-- The groups' labels (keys sort in print order: attention, GEMMs, then the memory-bound kinds).
local labels = {
    ["1 attention self"]  = "attention (self)",
    ["1 attention cross"] = "attention (cross)",
    ["1 attention"]       = "attention (per head: 2 GEMMs + softmax)",
    ["1 attention frames"] = "attention (per frame: 2 GEMMs + softmax)",
    ["3 conv"]            = "convolutions (3x3x3, 3x3, time)",
    ["4 norm"]            = "norms",
    ["4 norm rope"]       = "rmsnorm + RoPE",
    ["4 residual norm"]   = "residual + norm (fused)",
    ["5 elementwise"]     = "residuals / elementwise",
    ["6 embed head"]      = "embed / head (non-GEMM)",
}

-- The group of a GEMM reading weight w: its module inside a repeated block (blocks.3.ffn.0 -> ffn,
-- visual.transformer.7.attn.to_qkv -> attn), else embed/head (the VAE's 1x1 convs: conv1x1).
local function gemm_group(w, op)
    if op == "conv1x1" then return "2 gemm 1x1 conv", "GEMM 1x1 conv" end
    local parts = {}
    for p in w.name:gmatch("[^.]+") do parts[#parts + 1] = p end
    for i = 2, #parts - 1 do
        if parts[i]:match("^%d+$") and (parts[i - 1] == "blocks" or parts[i - 1] == "transformer") then
            return "2 gemm " .. parts[i + 1], "GEMM " .. parts[i + 1]
        end
    end
    return "2 gemm embed head", "GEMM embed / head"
end

-- The kinds of memory-bound op.
local kind_of = {
    layernorm_modulate = "4 norm", layernorm_affine = "4 norm", rmsnorm = "4 norm", rms_norm_ch = "4 norm",
    residual_norm = "4 residual norm", rmsnorm_rope = "4 norm rope", rms_factor = "4 norm", rope = "4 norm rope", rope_table = "4 norm rope",
    patchify = "6 embed head", unpatchify = "6 embed head", sinusoid = "6 embed head", embedding = "6 embed head",
    gather_rows = "6 embed head", patch_cols = "6 embed head", cls_pos = "6 embed head",
    causal_conv3 = "3 conv", conv2d_k3 = "3 conv", conv2d_k3_s2 = "3 conv", time_conv_up = "3 conv",
    time_conv_down = "3 conv",
}

-- The largest value of each of t's dims, multiplied.
local function elems(g, t) return graph.max_elems(g, t) end

-- Positions (T * H * W) of a [C, T, H, W] tensor at its largest.
local function positions(g, t) return elems(g, t) // graph.max_dim(g, t.dims[1]) end

-- FLOPs of the ops ops.lua has no rule for (ops.lua's rule wins where it has one).
local flops_rule = {
    attn_qk = function(g, n)         -- per frame: S = Q K^T, [N, C] x [C, N]
        local q = n.ins[1]
        local N = graph.max_dim(g, q.dims[3]) * graph.max_dim(g, q.dims[4])
        return 2 * graph.max_dim(g, q.dims[2]) * N * N * n.attrs.c
    end,
    attn_pv = function(g, n)         -- per frame: O = P V, [N, N] x [N, C]
        local qkv = n.ins[2]
        local N = graph.max_dim(g, qkv.dims[3]) * graph.max_dim(g, qkv.dims[4])
        return 2 * graph.max_dim(g, qkv.dims[2]) * N * N * n.attrs.c
    end,
    conv1x1 = function(g, n) return 2 * positions(g, n.out) * n.attrs.cout * n.attrs.cin end,
    causal_conv3 = function(g, n) return 2 * positions(g, n.out) * n.attrs.cout * n.attrs.cin * 27 end,
    conv2d_k3 = function(g, n) return 2 * positions(g, n.out) * n.attrs.cout * n.attrs.cin * 9 end,
    conv2d_k3_s2 = function(g, n) return 2 * positions(g, n.out) * n.attrs.c * n.attrs.c * 9 end,
    -- the time convs: c -> 2c over the input's frames (up), c -> c over every other frame (down); k = 3
    time_conv_up = function(g, n) return 2 * positions(g, n.ins[1]) * 2 * n.attrs.c * n.attrs.c * 3 end,
    time_conv_down = function(g, n) return 2 * positions(g, n.out) * n.attrs.c * n.attrs.c * 3 end,
}
-- umT5's attention: 4 * N * N * C as ops.lua's attention (q [N, C], k [N, C]).
flops_rule.attention_relbias = function(g, n)
    local q = n.ins[1]
    return 4 * graph.max_dim(g, q.dims[1]) * graph.max_dim(g, n.ins[2].dims[1]) * graph.max_dim(g, q.dims[2])
end

-- Launches of node n of program g as emitted: kernels, GEMMs (emit/cuda_dit.lua, cuda_enc.lua, cuda_vae.lua;
-- the VAE's time convs and conv caches as on every chunk after the first).
local function launches(g, n)
    local op = n.op
    if op == "attn_scratch" then return 0, 0 end
    if op == "linear" or op == "conv1x1" then return 0, 1 end
    if op == "patchify" then return #n.ins, 0 end
    if op == "causal_conv3" or op == "time_conv_up" or op == "time_conv_down" then return 2, 0 end   -- conv + cache
    if op == "attn_qk" then local T = graph.max_dim(g, n.ins[1].dims[2]); return T, T end         -- softmax, S = QK^T
    if op == "attn_pv" then return 0, graph.max_dim(g, n.ins[2].dims[2]) end
    if (op == "attention" or op == "attention_relbias") and n.ins[4] and not n.attrs.q_norm then   -- per head
        return n.attrs.num_heads, 2 * n.attrs.num_heads
    end
    return 1, 0
end

-- The math a node's FLOPs run in: "bf16" (tensor cores), "tf32" (the VAE's convs and 1x1 GEMMs),
-- "f32" (true fp32 GEMMs: CLIP, the VAE's attention, dit_forward's fp32 time-embedding GEMMs).
local function math_of(g, n)
    if n.op == "conv1x1" or kind_of[n.op] == "3 conv" then return "tf32" end
    return n.ins[1] and n.ins[1].dtype == "bf16" and "bf16" or "f32"
end

-- The group key and label of node n of program g.
local function group_of(g, n)
    if n.op == "linear" or n.op == "conv1x1" then return gemm_group(n.attrs.weight, n.op) end
    if n.op == "attention" and (not n.ins[4] or n.attrs.q_norm) then
        local key = n.out.name:find("cross_attn", 1, true) and "1 attention cross" or "1 attention self"
        return key, labels[key]
    end
    if n.op == "attention" or n.op == "attention_relbias" then return "1 attention", labels["1 attention"] end
    if n.op == "attn_qk" or n.op == "attn_pv" then return "1 attention frames", labels["1 attention frames"] end
    local key = kind_of[n.op] or "5 elementwise"
    return key, labels[key]
end

-- The device dtype of weight w read by node n (as emit/cuda_*.lua upload them): a GEMM's weight in its
-- input's dtype and its bias in its output's, the token table in its output's; fp32 otherwise.
local function weight_dtype(n, key, w)
    if n.op == "linear" and key:match("weight$") then return n.ins[1].dtype end     -- (q|k|v_)weight: lower.lua's qkv
    if n.op == "linear" and key:match("bias$") then return n.out.dtype end
    if n.op == "gather_rows" and key == "table" then return n.out.dtype end
    return "f32"
end

-- Bytes node n moves: each distinct tensor it reads and the one (or, fused, two) it writes once, and each
-- weight its attributes name once (of a lookup table, the rows it reads), at their dtypes and largest sizes.
local function bytes_of(g, n)
    if n.op == "attn_scratch" then return 0 end
    local seen, total = {}, 0
    local function tensor(t, cols, ld)
        if seen[t] then return end
        local e = elems(g, t) // (ld or 1) * (cols or 1)
        total = total + e * assert(dtype_bytes[t.dtype], "count: no size of dtype " .. tostring(t.dtype))
    end
    -- column views of a fused q|k|v (lower.lua's qkv): only their columns are read (q's and v's of one
    -- q|k|v by an attention: two thirds)
    local a = n.attrs
    if a.ld then tensor(n.ins[1], a.dim, a.ld) end
    if a.q_ld then tensor(n.ins[1], a.q_ld // 3, a.q_ld) end
    if a.v_ld then tensor(n.ins[3], a.v_ld // 3, a.v_ld) end
    if a.ld or a.q_ld then seen[n.ins[1]] = true end
    if a.v_ld then seen[n.ins[3]] = true end
    for _, t in ipairs(n.ins) do
        tensor(t)
        seen[t] = true
    end
    tensor(n.out)
    seen[n.out] = true
    if n.also then tensor(n.also) end                -- a second output (lower.lua's residual_norm)
    for _, key in ipairs(sorted.keys(n.attrs)) do
        local w = n.attrs[key]
        if type(w) == "table" and w.shape and g.weights[w.name] == w and not seen[w] then
            seen[w] = true
            local e = 1
            for _, d in ipairs(w.shape) do e = e * d end
            if n.op == "gather_rows" or n.op == "embedding" then e = elems(g, n.out) end   -- the rows read
            total = total + e * dtype_bytes[weight_dtype(n, key, w)]
        end
    end
    return total
end

-- FLOPs of node n of program g.
local function flops_of(g, n)
    local def = ops[n.op]
    if def.flops then return def.flops(function(d) return graph.max_dim(g, d) end, n.ins, n.out, n.attrs) end
    local rule = flops_rule[n.op]
    return rule and rule(g, n) or 0
end

-- An empty count.
local function zero(key, label)
    return { key = key, label = label, kernels = 0, gemms = 0, bytes = 0, flops = 0,
             math = { bf16 = 0, tf32 = 0, f32 = 0 } }
end

local function add(into, n_kernels, n_gemms, bytes, flops, m)
    into.kernels, into.gemms = into.kernels + n_kernels, into.gemms + n_gemms
    into.bytes, into.flops = into.bytes + bytes, into.flops + flops
    into.math[m] = into.math[m] + flops
end

-- The counts of one call of lowered program g: { name, groups (sorted by key), total, once (the prompt
-- part's nodes, dit_forward only) }. Each group and total: kernels, gemms, bytes, flops, math (flops by
-- math: bf16, tf32, f32).
function count.program(g)
    local by_key, total, once = {}, zero("total", "total"), zero("once", "once per prompt")
    for _, n in ipairs(g.nodes) do
        local k, gm = launches(g, n)
        local b, f, m = bytes_of(g, n), flops_of(g, n), math_of(g, n)
        if n.part == "context" then
            add(once, k, gm, b, f, m)
        else
            local key, label = group_of(g, n)
            by_key[key] = by_key[key] or zero(key, label)
            add(by_key[key], k, gm, b, f, m)
            add(total, k, gm, b, f, m)
        end
    end
    local groups = {}
    for _, key in ipairs(sorted.keys(by_key)) do groups[#groups + 1] = by_key[key] end
    return { name = g.name, groups = groups, total = total, once = once }
end

-- Count c's times on device dev (count.devices): compute_s (each math at its peak), memory_s (bytes / HBM)
-- and roofline_s (the larger), set on c.
function count.time(c, dev)
    c.compute_s = c.math.bf16 / dev.bf16 + c.math.tf32 / dev.tf32 + c.math.f32 / dev.f32
    c.memory_s = c.bytes / dev.hbm
    c.roofline_s = math.max(c.compute_s, c.memory_s)
    return c
end

-- Every program's counts with times on dev: { programs = { counts, sorted by name }, device = dev };
-- per program: roofline_s, the sum of its groups' rooflines (also the total's), and floor_s, its FLOPs at
-- the BF16 peak.
function count.all(lowered_programs, dev)
    local out = { device = dev, programs = {} }
    for _, name in ipairs(sorted.keys(lowered_programs)) do
        local c = count.program(lowered_programs[name])
        c.roofline_s = 0
        for _, grp in ipairs(c.groups) do
            count.time(grp, dev)
            c.roofline_s = c.roofline_s + grp.roofline_s
        end
        count.time(c.total, dev)
        c.total.roofline_s = c.roofline_s            -- the total's roofline: its groups' (each at its own floor)
        count.time(c.once, dev)
        c.floor_s = c.total.flops / dev.bf16
        out.programs[#out.programs + 1] = c
    end
    return out
end

return count
