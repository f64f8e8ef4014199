-- tests/gen/test_count.lua: the counts of the CUDA lowering (gen/count.lua) against a hand count of
-- tiny_df's dit_forward, written below as arithmetic from the spec's dimensions (specs/tiny_df.lua), not
-- copied from the module: launches, bytes (each operand once at its device dtype) and FLOPs per group,
-- the prompt part counted apart, the times at a stated device; then umT5's per-head attention launches,
-- the released df_1.3b_540p figures that --info prints (launches, FLOPs as graph.flops), and determinism.
local t     = require("t")
local spec  = require("spec")
local graph = require("graph")
local lower = require("lower")
local count = require("count")

local s = spec.load("specs/tiny_df.lua")
local progs = graph.build(s)
local g = lower.cuda(progs.dit_forward)
local c = count.program(g)

-- tiny_df: dim C = 128, ffn FF = 256, 2 layers; text_len Lc = 32; latent 8 x 6 (4 x 3 patches of 2 x 2),
-- at most 9 latent frames: L = 9 * 12 = 108 tokens and Ft = 9 timestep rows (per-frame timesteps).
local C, FF, NL, Lc, L, Ft = 128, 256, 2, 32, 9 * 12, 9
local bf, f4 = 2, 4                                  -- bytes of a bf16 and an fp32 value

local by = {}
for _, grp in ipairs(c.groups) do by[grp.label] = grp end
local function group(label)
    t.check(by[label] ~= nil, "no group %s", label)
    return by[label]
end

-- A bf16 GEMM [M, K] x [K, N] with a bf16 bias: 2 M N K FLOPs; reads x, W, b and writes y once.
local function bf16_gemm_bytes(M, K, N) return (M * K + N * K + N + M * N) * bf end

-- GEMMs of the self-attention: per layer q, k and v as one [L, C] x [C, 3C] (lower.lua's qkv: x read once,
-- [L, 3C] written), then o [L, C] x [C, C].
local sa = group("GEMM self_attn")
t.check_eq(sa.gemms, NL * 2, "self-attention GEMMs")
t.check_eq(sa.kernels, 0, "self-attention GEMMs: no kernels")
t.check_eq(sa.flops, NL * 4 * 2 * L * C * C, "self-attention GEMM FLOPs")
t.check_eq(sa.bytes, NL * (bf16_gemm_bytes(L, C, 3 * C) + bf16_gemm_bytes(L, C, C)), "self-attention GEMM bytes")

-- The cross-attention's q and o per layer (its k and v read the prompt: once per prompt).
local ca = group("GEMM cross_attn")
t.check_eq(ca.gemms, NL * 2, "cross-attention GEMMs")
t.check_eq(ca.flops, NL * 2 * 2 * L * C * C, "cross-attention GEMM FLOPs")
t.check_eq(ca.bytes, NL * 2 * bf16_gemm_bytes(L, C, C), "cross-attention GEMM bytes")

-- The FFN: [L, C] x [C, FF] (GELU in the epilogue) then [L, FF] x [FF, C].
local ffn = group("GEMM ffn")
t.check_eq(ffn.gemms, NL * 2, "FFN GEMMs")
t.check_eq(ffn.flops, NL * (2 * L * FF * C + 2 * L * C * FF), "FFN FLOPs")
t.check_eq(ffn.bytes, NL * (bf16_gemm_bytes(L, C, FF) + bf16_gemm_bytes(L, FF, C)), "FFN bytes")

-- Embed and head GEMMs: the patch embedding (64 = 16 channels x 2 x 2 in, bf16); the time embedding
-- (sinusoid [Ft, 256] bf16 -> fp32 out, then fp32 128 -> 128 and 128 -> 6 x 128); the fps projection (one
-- row, fp32); the head (fp32 [L, C] -> [L, 64]). Weights in their GEMM's input dtype, biases in its output's.
local eh = group("GEMM embed / head")
t.check_eq(eh.gemms, 7, "embed/head GEMMs")
t.check_eq(eh.flops, 2 * L * C * 64 + 2 * Ft * C * 256 + 2 * Ft * C * C + 2 * Ft * 6 * C * C
                     + 2 * C * C + 2 * 6 * C * C + 2 * L * 64 * C, "embed/head GEMM FLOPs")
t.check_eq(eh.bytes, bf16_gemm_bytes(L, 64, C)
                     + Ft * 256 * bf + C * 256 * bf + C * f4 + Ft * C * f4                -- time_embedding.0
                     + (Ft * C + C * C + C + Ft * C) * f4                                 -- time_embedding.2
                     + (Ft * C + 6 * C * C + 6 * C + Ft * 6 * C) * f4                     -- time_projection.1
                     + (C + C * C + C + C) * f4 + (C + 6 * C * C + 6 * C + 6 * C) * f4    -- fps_projection
                     + (L * C + 64 * C + 64 + L * 64) * f4, "embed/head GEMM bytes")     -- head
t.check_eq(eh.math.f32, 2 * Ft * C * C + 2 * Ft * 6 * C * C + 2 * C * C + 2 * 6 * C * C + 2 * L * 64 * C,
           "embed/head FLOPs on fp32 inputs (true fp32 GEMMs)")

-- Attention: one kernel per layer each; 4 Lq Lk C FLOPs (QK^T and PV); q, k, v (q and v their thirds of the
-- fused q|k|v), o once in bf16. Each normalises q where it loads it (lower.lua's q_norm), so it also reads q's
-- row factors (L fp32) and its norm's weight (C fp32), and the self-attention the RoPE table ([L, 64] fp32);
-- the normalised q is never written or read back.
local self_attn, cross_attn = group("attention (self)"), group("attention (cross)")
t.check_eq(self_attn.kernels, NL, "self-attention launches")
t.check_eq(self_attn.flops, NL * 4 * L * L * C, "self-attention FLOPs")
t.check_eq(self_attn.bytes, NL * (4 * L * C * bf + L * f4 + C * f4 + L * 64 * f4), "self-attention bytes")
t.check_eq(cross_attn.flops, NL * 4 * L * Lc * C, "cross-attention FLOPs")
t.check_eq(cross_attn.bytes, NL * ((2 * L * C + 2 * Lc * C) * bf + L * f4 + C * f4), "cross-attention bytes")

-- Norms: block 0's norm1 (bf16 in, the [Ft, 6, C] fp32 modulation, bf16 out), per layer the row factors of the
-- self- and the cross-attention's q (rms_factor: q read in bf16, the self-attention's its third of the fused
-- q|k|v; one fp32 per row written; the attention applies them), then the head's norm (bf16 in, [Ft, 2, C]
-- modulation, fp32 out). The other norms run fused with the residual before them (below). No FLOPs counted.
local norms = group("norms")
t.check_eq(norms.kernels, 1 + 2 * NL + 1, "norm launches")
t.check_eq(norms.flops, 0, "norms: no FLOPs counted")
t.check_eq(norms.bytes, (L * C * bf + Ft * 6 * C * f4 + L * C * bf)
                        + NL * 2 * (L * C * bf + L * f4)
                        + (L * C * bf + Ft * 2 * C * f4 + L * C * f4), "norm bytes")

-- A residual and the norm reading it, one pass (lower.lua's residual_norm), each writing both: per layer
-- x1 = x + gate * attn (x bf16, the attention's o bf16, the modulation) with norm3 (fp32 weight and bias;
-- x1 fp32 and the norm bf16 out); x2 = x1 + the cross-attention's o with norm2 (the modulation; x2 fp32, the
-- norm bf16); and but for the last layer (its output goes to the head's part) the block's output (x2 fp32,
-- the FFN's bf16, the modulation; out bf16) with the next block's norm1 (its modulation; bf16 out).
local rn = group("residual + norm (fused)")
t.check_eq(rn.kernels, 2 * NL + (NL - 1), "residual+norm launches")
t.check_eq(rn.bytes, NL * ((2 * L * C * bf + Ft * 6 * C * f4 + 2 * C * f4 + L * C * f4 + L * C * bf)
                           + (L * C * f4 + L * C * bf + Ft * 6 * C * f4 + L * C * f4 + L * C * bf))
                     + (NL - 1) * (L * C * f4 + L * C * bf + 2 * Ft * 6 * C * f4 + 2 * L * C * bf),
           "residual+norm bytes")

-- The residual left alone: the last block's output; with the embed part's elementwise kernels (3 silu,
-- add_row) and the modulations (one per block, the head's).
local res = group("residuals / elementwise")
t.check_eq(res.kernels, 1 + 4 + NL + 1, "residual and elementwise launches")

-- rmsnorm + RoPE: k per layer (bf16 in, its third of the fused q|k|v, and out, fp32 weight, the fp32 [L, 64]
-- table; q's is applied by the attention), and the table's own kernel (writes [L, 64] fp32).
local rope = group("rmsnorm + RoPE")
t.check_eq(rope.kernels, NL + 1, "rmsnorm+rope launches")
t.check_eq(rope.bytes, NL * (2 * L * C * bf + C * f4 + L * 64 * f4) + L * 64 * f4, "rmsnorm+rope bytes")

-- Launches per forward: the embed part 8 kernels (patchify, sinusoid, 3 silu, embedding, add_row, rope
-- table) and 6 GEMMs; per block 8 kernels (modulation, the self-attention q's rms_factor, k's rmsnorm_rope,
-- 2 attentions, the cross-attention q's rms_factor, 2 residual_norm) and 6 GEMMs (q|k|v, o, the cross-attention's q and o, 2 FFN), and but for the last block a third residual_norm (the output with the next
-- norm1); block 0's norm1 and the last block's gated residual alone; the head 3 kernels and 1 GEMM.
t.check_eq(c.total.kernels, 8 + 8 * NL + (NL - 1) + 2 + 3, "kernels per forward")
t.check_eq(c.total.gemms, 6 + 6 * NL + 1, "GEMMs per forward")
-- The prompt part, once per prompt: text_embedding.0 and .2, per layer the cross-attention's k and v GEMMs
-- and the k rmsnorm.
t.check_eq(c.once.gemms, 2 + 2 * NL, "GEMMs once per prompt")
t.check_eq(c.once.kernels, NL, "kernels once per prompt")
-- FLOPs: what graph.flops counts (--info's figure), split the same way.
t.check_eq(c.total.flops, graph.flops(g, "context"), "FLOPs per forward as graph.flops")
t.check_eq(c.once.flops, graph.flops(g) - graph.flops(g, "context"), "FLOPs once per prompt")
local sum_bytes = 0
for _, grp in ipairs(c.groups) do sum_bytes = sum_bytes + grp.bytes end
t.check_eq(c.total.bytes, sum_bytes, "total bytes are the groups' sum")

-- Times: the compute floor at each math's peak, the memory floor at the HBM bandwidth, the larger.
local dev = { bf16 = 1000e12, tf32 = 500e12, f32 = 50e12, hbm = 4e12 }
count.time(self_attn, dev)
t.check(math.abs(self_attn.compute_s - NL * 4 * L * L * C / 1000e12) < 1e-18, "self-attention compute floor")
t.check(math.abs(self_attn.memory_s - NL * (4 * L * C * bf + L * f4 + C * f4 + L * 64 * f4) / 4e12) < 1e-18,
        "self-attention memory floor")
t.check_eq(self_attn.roofline_s, math.max(self_attn.compute_s, self_attn.memory_s), "roofline = the larger")
count.time(eh, dev)
t.check(math.abs(eh.compute_s - (eh.math.bf16 / 1000e12 + eh.math.f32 / 50e12)) < 1e-18, "mixed math compute floor")

-- umT5 on the GPU runs its attention per head: S = Q_h K_h^T, softmax (+ relative bias), O_h = P V_h.
local t5 = count.program(lower.cuda(progs.text_encode))
for _, grp in ipairs(t5.groups) do
    if grp.label:match("^attention") then
        t.check_eq(grp.kernels, s.t5.layers * s.t5.heads, "umT5 attention softmax launches")
        t.check_eq(grp.gemms, s.t5.layers * s.t5.heads * 2, "umT5 attention GEMMs")
    end
end

-- The released df_1.3b_540p (what --info prints): 282 kernels + 187 GEMMs per forward (issue 20's static
-- reading was 371 + 247 before the residual_norm fusions, 3 x 30 - 1 fewer kernels, and the q|k|v GEMMs, 2 x 30
-- fewer GEMMs), FLOPs equal to graph.flops; and the same counts twice (deterministic).
local big = spec.load("specs/df_1.3b_540p.lua")
local bg = lower.cuda(graph.build(big).dit_forward)
local a1, a2 = count.program(bg), count.program(bg)
t.check_eq(a1.total.kernels, 371 - (3 * 30 - 1), "df_1.3b_540p kernels per forward")
t.check_eq(a1.total.gemms, 247 - 2 * 30, "df_1.3b_540p GEMMs per forward")
t.check_eq(a1.total.flops, graph.flops(bg, "context"), "df_1.3b_540p FLOPs")
-- issue 20's target: under 240 GB per forward (248.5 before q's norm moved into the attention's load)
t.check(a1.total.bytes < 240e9, "df_1.3b_540p bytes per forward %.3f GB, target < 240", a1.total.bytes / 1e9)
for i, grp in ipairs(a1.groups) do
    t.check_eq(grp.label, a2.groups[i].label, "group order")
    t.check_eq(grp.bytes, a2.groups[i].bytes, "group bytes")
end
