-- gen/ops.lua
-- ============
-- Every op kind an op graph may contain, as data. graph.lua refuses a kind not listed here;
-- each backend says how it implements each kind (emit/c.lua for the CPU, emit/cuda_*.lua for CUDA).
-- The kinds marked `lowered = "cuda"` are made only by lower.lua, in the CUDA backend's copy of a
-- graph; graph builders may not create them.
--
-- Shapes are lists of dims; a dim is an integer or a symbol whose value is known only at run
-- time and bounded by the spec:
--   "L"  tokens of this call        (F * tokens_per_frame, at most derived.max_tokens)
--   "F"  latent frames of this call (at most derived.max_frames)
--   "Ft" timestep rows: 1 for a plain timestep, F for per-frame (diffusion forcing) timesteps
-- `shape(ins, attrs)` returns the output dims from the input tensors and attributes.
-- `flops(dims_of, ins, out, attrs)` counts multiply-adds as 2 FLOPs (for --info / plan.txt).

local ops = {}

-- The leading dim and the last dim of a [rows, cols] tensor.
local function rows(t) return t.dims[1] end
local function cols(t) return t.dims[#t.dims] end
-- Elements of tensor t at its largest (n: a dim's size).
local function elems(n, t)
    local e = 1
    for _, d in ipairs(t.dims) do e = e * n(d) end
    return e
end
-- A convolution's FLOPs: every output element is `taps` x cin multiply-adds.
local function conv_flops(taps)
    return function(n, _, out, a) return 2 * elems(n, out) * (a.cin or a.c) * taps end
end

ops.patchify = {        -- latent [C, F, H, W] (+ conditioning) -> patches [L, Cin*4] (§2.2)
    inputs = { "x", "y?" },
    shape  = function(_, a) return { "L", a.patch_in } end,
}
ops.linear = {          -- y = x W^T + b; W is [N, K] (PyTorch layout); attrs.weight, attrs.bias
                        -- (lowered for cuda: attrs.epilogue = "gelu_tanh", a linear -> gelu_tanh fused)
    inputs = { "x" },
    shape  = function(ins, a) return { rows(ins[1]), a.n } end,
    flops  = function(n, ins, _, a) return 2 * n(rows(ins[1])) * a.n * a.k end,
}
ops.silu      = { inputs = { "x" }, shape = function(ins) return ins[1].dims end }
ops.gelu_tanh = { inputs = { "x" }, shape = function(ins) return ins[1].dims end }   -- tanh approx.
ops.gelu_erf  = { inputs = { "x" }, shape = function(ins) return ins[1].dims end }   -- exact
ops.add       = { inputs = { "a", "b" }, shape = function(ins) return ins[1].dims end }
ops.add_weight = {      -- y = x + weight, a learned tensor of x's size (FLF2V's image position embedding)
    inputs = { "x" },
    shape  = function(ins) return ins[1].dims end,
}
ops.add_row = {         -- y[r, :] = a[r, :] + b[0, :] (broadcast one row over all rows)
    inputs = { "a", "b" },
    shape  = function(ins) return ins[1].dims end,
}
ops.sinusoid = {        -- t [Ft] (float64) -> [Ft, freq_dim]: cos half, then sin half (§2.4)
    inputs = { "t" },
    shape  = function(ins, a) return { ins[1].dims[1], a.freq_dim } end,
}
ops.embedding = {       -- y[0, :] = table[index, :] (fps embedding, §2.4 step 6)
    inputs = { "index" },
    shape  = function(_, a) return { 1, a.dim } end,
}
ops.modulation = {      -- mod[r, k, :] = table[k, :] + e[r, k-th slice or the whole row] (§2.7, §2.10)
    inputs = { "e" },
    shape  = function(ins, a) return { rows(ins[1]), a.chunks, a.dim } end,
}
ops.layernorm_modulate = {  -- y = LN(x) * (1 + mod[shift+1]) + mod[shift], no affine (§2.7)
                            -- (attrs.at_tok0: x is a rank's slice from token tok0, dit_forward_usp)
    inputs = { "x", "mod" },
    shape  = function(ins) return ins[1].dims end,
}
ops.layernorm_affine = {    -- y = LN(x) * weight + bias (norm3, image embedder)
    inputs = { "x" },
    shape  = function(ins) return ins[1].dims end,
}
ops.rmsnorm = {         -- y = x / sqrt(mean(x^2) + eps) * weight over the full width (§2.7)
    inputs = { "x" },
    shape  = function(ins) return ins[1].dims end,
}
ops.rope_table = {      -- cos/sin of every (token, pair) for the (F, H/2, W/2) grid (§2.8)
    inputs = {},
    shape  = function(_, a) return { "L", a.head_dim } end,
}
ops.rope = {            -- rotate interleaved pairs of every head of q or k (§2.8)
    inputs = { "x", "table" },
    shape  = function(ins) return ins[1].dims end,
}
ops.attention = {       -- softmax(q k^T / sqrt(d)) v per head, no mask
    -- 4th: the CUDA encoders' scratch of scores, or (attrs.q_norm) q's row factors, then the RoPE table (lower.lua)
    inputs = { "q", "k", "v", "scores_or_q_rs?", "table?" },
    shape  = function(ins, a)                   -- q a column view of a [rows, q_ld] q|k|v: [rows, q_ld / 3]
        if a.q_ld then return { ins[1].dims[1], a.q_ld // 3 } end
        return ins[1].dims
    end,
    flops  = function(n, ins, out) return 4 * n(rows(ins[1])) * n(rows(ins[2])) * cols(out) end,
}
ops.gated_residual = {  -- y = x + u * mod[gate] (fp32 residual stream, §2.7; attrs.at_tok0 as layernorm_modulate)
    inputs = { "x", "u", "mod" },
    shape  = function(ins) return ins[1].dims end,
}
ops.unpatchify = {      -- [L, out_dim*4] -> velocity [out_dim, F, H, W] (§2.10: c fastest)
    inputs = { "x" },
    shape  = function(_, a) return { a.out_dim, "F", a.lat_h, a.lat_w } end,
}

-- ---- Ulysses sequence parallelism (dit_forward_usp, round2-features.md §1): dims "Ls" (tokens per rank, the
-- last rank's padded) and "Lp" (Ls x ranks) ----

ops.usp_slice = {       -- this rank's rows [tok0, tok0 + Ls) of x [L, COLS], zeros past L (§1.3)
    inputs = { "x" },
    shape  = function(ins) return { "Ls", cols(ins[1]) } end,
}
ops.usp_pack_heads = {  -- [Ls, C] -> [P, Ls, C/P], block p head group p (same element count, kept as [Ls, C])
    inputs = { "x" },
    shape  = function(ins) return ins[1].dims end,
}
ops.usp_alltoall = {    -- block p to rank p; [P, Ls, C/P] sent -> [P, Ls, C/P] received = [Lp, C/P] (§1.6)
    inputs = { "x" },
    shape  = function(ins) return ins[1].dims end,
}
ops.usp_unpack_heads = { -- [P, Ls, C/P] received -> [Ls, C] (inverse of usp_pack_heads)
    inputs = { "x" },
    shape  = function(ins) return ins[1].dims end,
}
ops.attention_heads = { -- attention of this rank's NH/P heads over all tokens: q [Lp, C/P], keys the first L rows
    inputs = { "q", "k", "v" },                 -- (each stored in an [Ls, C] tensor: Lp x C/P elements)
    shape  = function(ins) return ins[1].dims end,
    flops  = function(n, ins) return 4 * n(rows(ins[1])) * n("L") * cols(ins[1]) end,
}
ops.usp_allgather = {   -- every rank's [Ls, COLS] in rank order -> [Lp, COLS] (§1.7: the head's output)
    inputs = { "x" },
    shape  = function(ins) return { "Lp", cols(ins[1]) } end,
}

-- ---- the VAE (reference vae-text-image-files.md §1): tensors [C, T, H, W], channels first ----

-- [C, rest...] with C replaced.
local function with_channels(t, c)
    local d = { c }
    for i = 2, #t.dims do d[i] = t.dims[i] end
    return d
end

ops.vae_denorm = {      -- z * std[c] + mean[c], as z / inv_std + mean (§1.6)
    inputs = { "z" },
    shape  = function(ins) return ins[1].dims end,
}
ops.vae_normalize = {   -- (mu[c] - mean[c]) * inv_std[c] for the first z channels (§1.6)
    inputs = { "x" },
    shape  = function(ins, a) return with_channels(ins[1], a.z) end,
}
ops.conv1x1 = {         -- per-position channel mix with bias (1x1x1 and 1x1 convs)
    inputs = { "x" },
    shape  = function(ins, a) return with_channels(ins[1], a.cout) end,
    flops  = conv_flops(1),
}
ops.causal_conv3 = {    -- 3x3x3 causal conv over [cache (2 frames) ++ x]; updates the cache (§1.2, §1.5)
                        -- (lowered for cuda: attrs.cin_storage, the input's channels padded to 4)
    inputs = { "x", "cache" },
    shape  = function(ins, a) return with_channels(ins[1], a.cout) end,
    flops  = conv_flops(27),
}
ops.rms_norm_ch = {     -- x / max(||x||_C, 1e-12) * sqrt(C) * gamma at every position (§1.2)
                        -- (lowered for cuda: attrs.silu = true, a rms_norm_ch -> silu fused)
    inputs = { "x" },
    shape  = function(ins) return ins[1].dims end,
}
ops.attention_frames = { -- single-head attention among the tokens of each frame; q|k|v channels (§1.2)
    inputs = { "qkv" },
    shape  = function(ins, a) return with_channels(ins[1], a.c) end,
    flops  = function(n, ins, _, a)            -- per frame: Q K^T and P V over its H W tokens
        local q = ins[1].dims
        local tokens = n(q[3]) * n(q[4])
        return 4 * n(q[2]) * tokens * tokens * a.c
    end,
}
ops.time_conv_up = {    -- upsample3d time_conv: C -> 2C causal (3,1,1) conv, frames doubled (§1.5)
    inputs = { "x", "cache" },                  -- (out [C, 2T, H, W]: as many elements as 2C channels x T)
    flops  = conv_flops(3),
}
ops.time_conv_down = {  -- downsample3d time_conv: stride-2 (3,1,1) conv over [last frame ++ x] (§1.5)
    inputs = { "x", "cache" },
    flops  = conv_flops(3),
}
ops.upsample_nearest2x = { inputs = { "x" } }   -- out[i, j] = in[i / 2, j / 2] per frame
ops.conv2d_k3 = { inputs = { "x" }, flops = conv_flops(9) }     -- 3x3 conv, pad 1, per frame
ops.conv2d_k3_s2 = { inputs = { "x" }, flops = conv_flops(9) }  -- zero row/column at bottom/right, 3x3 stride 2, per frame
ops.clamp = {           -- clamp to [-1, 1] (the decoder's output)
    inputs = { "x" },
    shape  = function(ins) return ins[1].dims end,
}
ops.video_out = {       -- y = x: the tile decoder's output, the video before the clamp (channels-first on every backend)
    inputs = { "x" },
    shape  = function(ins) return ins[1].dims end,
}

-- ---- the text encoder (umT5, reference vae-text-image-files.md §2) and CLIP (§3) ----

ops.gather_rows = {     -- y[i, :] = table[ids[i], :] (token embedding); the runtime checked the ids
    inputs = { "ids" },
    shape  = function(_, a) return { "N", a.dim } end,
}
ops.attention_relbias = { -- softmax(q k^T + bias[bucket(b - a), head]) v, no scaling, keys b < N (§2.2-§2.3)
    inputs = { "q", "k", "v", "scores?" },      -- scores: the CUDA scratch (lower.lua)
    shape  = function(ins) return ins[1].dims end,
    flops  = function(n, ins) return 4 * n(rows(ins[1])) * n(rows(ins[2])) * n(cols(ins[1])) end,
}
ops.gated_gelu = {      -- y = GELU_tanh(g) * u (umT5's gated feed-forward)
    inputs = { "g", "u" },
    shape  = function(ins) return ins[1].dims end,
}
ops.zero_tail = {       -- y[:N] = x, y[N:rows] = 0 (the encoder's output after the real tokens, §2.5)
    inputs = { "x" },
    shape  = function(_, a) return { a.rows, a.dim } end,
}
ops.patch_embed = {     -- conv k = s = patch, no bias: pixels [3, S, S] -> tokens [P, C] row-major (§3.2)
    inputs = { "pixels" },
    shape  = function(_, a) return { a.patches, a.dim } end,
}
ops.cls_pos = {         -- [cls; tokens] + pos: [P, C] -> [P + 1, C] (§3.2)
    inputs = { "x" },
    shape  = function(ins) return { ins[1].dims[1] + 1, ins[1].dims[2] } end,
}
ops.split3 = {          -- part `part` (0, 1, 2) of a fused [rows, 3C] q|k|v projection -> [rows, C]
    inputs = { "x" },
    shape  = function(ins, a) return { ins[1].dims[1], a.dim } end,
}

-- ---- made by lower.lua for the CUDA backend ----

ops.rmsnorm_rope = {    -- rmsnorm -> rope in one pass (one bf16 rounding): q or k of self-attention
    inputs  = { "x", "table" },                 -- x: [rows, dim], or a column view of a [rows, ld] qkv (lower.lua)
    shape   = function(ins, a) return { ins[1].dims[1], a.dim } end,
    lowered = "cuda",
}
ops.rms_factor = {      -- rsqrt(mean(x^2) + eps) of each row of q, fp32 (lower.lua's q_norm): [rows]
    inputs  = { "x" },                          -- x: [rows, dim], or a column view of a [rows, ld] qkv
    shape   = function(ins) return { ins[1].dims[1] } end,
    lowered = "cuda",
}
ops.residual_norm = {   -- a residual (gated_residual or add) and the norm reading it (layernorm_affine or
                        -- layernorm_modulate) in one pass: out = the norm's output, also = the residual
    inputs  = { "x", "u", "rmod?", "nmod?" },   -- rmod where attrs.gated, nmod (last) where attrs.modulate
    shape   = function(ins) return ins[1].dims end,
    lowered = "cuda",
}
ops.attn_qk = {         -- per frame: S = Q K^T / sqrt(C) softmaxed, q and k the first two thirds of qkv;
    inputs  = { "qkv" },                        -- dims [T, H, W, H, W] given by lower.lua
    lowered = "cuda",
}
ops.attn_pv = {         -- per frame: O = P V, v the last third of qkv (attention_frames' second half)
    inputs  = { "scores", "qkv" },
    shape   = function(ins, a) return with_channels(ins[2], a.c) end,
    lowered = "cuda",
}
ops.video_cl = {        -- the video [CIN, T, H, W] channels-last with CP >= CIN channels, zeros past CIN
    inputs  = { "x" },
    shape   = function(ins, a) return with_channels(ins[1], a.cp) end,
    lowered = "cuda",
}
ops.attn_scratch = {    -- one head's scores [L, L]: launches nothing, gives the scratch a lifetime
    inputs  = {},                               -- dims given by lower.lua
    lowered = "cuda",
}
ops.patch_cols = {      -- pixels -> [side^2 patches, 3 * patch^2] (CLIP's patch embedding as patch_cols + linear)
    inputs  = { "pixels" },
    shape   = function(_, a) return { a.side * a.side, 3 * a.patch * a.patch } end,
    lowered = "cuda",
}

return ops
