-- tests/gen/test_usp_cost.lua: gen/usp_cost.lua (the cost model of --use_usp, docs/usp.md) against a hand count
-- on tiny_df: dim 128, 2 heads, 2 layers, 64x48 pixels and 33 frames -> 9 latent frames of 8x6 latents,
-- 4x3 = 12 tokens per frame after the 1x2x2 patch, L = 108 tokens; the head writes 16 x 2 x 2 = 64 fp32 per token.
local t    = require("t")
local spec = require("spec")
local usp  = require("usp_cost")

local s = spec.load("specs/tiny_df.lua")
-- P = 2: each rank holds 54 tokens; one of q, k, v, out is 54 x 128 bf16 = 13824 bytes, half of which leaves the
-- rank, four times per layer over 2 layers: 2 * 4 * 6912 = 55296; the head's [54, 64] fp32 goes to the other
-- rank: 54 * 64 * 4 = 13824. In all 69120 bytes.
t.check_eq(usp.bytes_per_rank(s, 2), 2 * 4 * (54 * 128 * 2) / 2 + 54 * 64 * 4, "bytes per rank, P = 2")
t.check_eq(usp.bytes_per_rank(s, 2), 69120, "bytes per rank, P = 2 (the sum)")
t.check(usp.valid(s, 2), "P = 2 divides 2 heads and 12 tokens per frame")
t.check(not usp.valid(s, 3), "P = 3 does not divide 2 heads")
t.check(not usp.valid(s, 4), "P = 4 does not divide 2 heads")
-- The estimate: P ranks share the FLOPs; the link time is the bytes at the stated rate; one rank sends nothing.
local e1, e2 = usp.estimate(s, 1e12, 1), usp.estimate(s, 1e12, 2)
t.check_eq(e1.speedup, 1.0, "one rank: no speed-up")
t.check_eq(e1.bytes, 0, "one rank: no communication")
t.check(math.abs(e2.compute_s - 1e12 / usp.rates.flops_per_s / 2) < 1e-15, "P = 2: half the compute time")
t.check(math.abs(e2.comm_s - 69120 / usp.rates.link_bytes_per_s) < 1e-15, "P = 2: the bytes at the link rate")
-- 1.3B's 12 heads: 8 GPUs do not divide them; 14B's 40 heads: 8 do, 3 do not.
t.check(not usp.valid(spec.load("specs/df_1.3b_540p.lua"), 8), "df_1.3b_540p: 12 heads, P = 8 refused")
t.check(usp.valid(spec.load("specs/df_14b_540p.lua"), 8), "df_14b_540p: 40 heads and 2040 tokens per frame, P = 8")
t.check(not usp.valid(spec.load("specs/df_14b_540p.lua"), 3), "df_14b_540p: P = 3 does not divide 40 heads")
