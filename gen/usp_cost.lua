-- gen/usp_cost.lua: what Ulysses sequence parallelism (--use_usp, issue 17) should cost, counted from a spec.
--
-- Usage: lua5.4 gen/usp_cost.lua <spec.lua> [...]    (prints a markdown table per spec; docs/usp.md holds the
--        table of the released variants)
--
-- The model follows the original's USP as reference round2-features.md §1 describes it: every rank holds the whole
-- DiT and L/P of the tokens; around each block's self-attention four all-to-alls (q, k and v from a token slice with
-- all heads to all tokens with NH/P heads, and the output back), each over a local tensor of (L/P) x dim bf16 of
-- which (P-1)/P leaves the rank; the head's output [L, 64] fp32 is all-gathered once per forward; everything else
-- (text and image encoders, VAE, sampler) runs on every rank. Counted per forward of the full window.
--
-- The time model, an upper bound on the speed-up: a rank's forward takes its share of the FLOPs at a sustained rate
-- plus its all-to-all bytes at a sustained per-GPU link rate, communication not overlapped with compute.
-- The rates are assumptions, stated in rates below and in docs/usp.md; nothing here was measured.
local usp = {}

-- Sustained rates assumed for the estimate (H100 SXM, 8 GPUs on NVLink 4 / NVSwitch).
usp.rates = {
    flops_per_s = 0.55 * 989e12,   -- 55% of the dense BF16 peak (989 TFLOP/s), a good DiT forward's share
    link_bytes_per_s = 350e9,      -- an all-to-all's sustained send rate per GPU (of NVLink 4's 450 GB/s per
                                   -- direction): NCCL's all-to-all does not reach the link's peak
}

-- The rank counts P that work: P divides the heads (the all-to-all splits them) and the tokens of a frame (so the
-- slices are equal for any frame count).
function usp.valid(s, p)
    return s.dit.num_heads % p == 0 and s.derived.tokens_per_frame % p == 0
end

-- Bytes one rank sends per forward of the full window with P ranks: the self-attention all-to-alls and the head's
-- all-gather.
function usp.bytes_per_rank(s, p)
    local L, D = s.derived.max_tokens, s.dit.dim
    local local_bf16 = (L // p) * D * 2                                -- one of q, k, v, out on one rank
    local a2a = s.dit.num_layers * 4 * local_bf16 * (p - 1) / p        -- (P-1)/P of each leaves the rank
    local gather = (L // p) * s.derived.head_out * 4 * (p - 1)         -- its [L/P, 64] fp32 to the P-1 others
    return a2a + gather
end

-- { p, ok, bytes, compute_s, comm_s, speedup } for P ranks, flops: one forward's FLOPs (graph.flops).
function usp.estimate(s, flops, p)
    local r = usp.rates
    local t1 = flops / r.flops_per_s
    local compute = t1 / p
    local comm = p > 1 and usp.bytes_per_rank(s, p) / r.link_bytes_per_s or 0
    return { p = p, ok = usp.valid(s, p), bytes = p > 1 and usp.bytes_per_rank(s, p) or 0,
             compute_s = compute, comm_s = comm, speedup = t1 / (compute + comm) }
end

-- The markdown rows of spec s for P = 1, 2, 4, 8.
function usp.table(s, flops)
    local rows = {}
    for _, p in ipairs({ 1, 2, 4, 8 }) do
        local e = usp.estimate(s, flops, p)
        rows[#rows + 1] = string.format("| %s | %d | %s | %.2f | %.3f | %.3f | %.2fx |", s.variant, p,
            e.ok and "yes" or "no (heads or tokens per frame)", e.bytes / 1e9, e.compute_s, e.comm_s, e.speedup)
    end
    return rows
end

-- Command line: one table per spec given.
if arg and arg[0] and arg[0]:match("usp_cost%.lua$") then
    local root = arg[0]:match("^(.*)[/\\]gen[/\\]usp_cost%.lua$") or "."
    package.path = root .. "/gen/?.lua;" .. package.path
    local spec, graph = require("spec"), require("graph")
    print("| variant | GPUs | valid | all-to-all GB sent per rank per forward | compute s | communication s | speed-up |")
    print("|---|---|---|---|---|---|---|")
    for _, path in ipairs(arg) do
        local s = spec.load(path)
        local flops = graph.flops(graph.build(s).dit_forward)
        for _, row in ipairs(usp.table(s, flops)) do print(row) end
    end
end

return usp
