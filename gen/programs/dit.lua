-- gen/programs/dit.lua
-- ====================
-- The op graph of `dit_forward`: one forward pass of the SkyReels-V2 / Wan2.1 DiT for one
-- sample, mirroring the original `WanModel.forward` (shared/reference/dit-and-sampling.md §2):
-- patch embedding, time embedding (plain or per-frame timesteps; fps injection for
-- inject_sample_info), text embedding, image embedding (I2V), num_layers attention blocks,
-- head and unpatchify. Tensor and weight names follow the original checkpoint; each weight
-- also carries its diffusers name (§4) so the runtime accepts both layouts.
--
-- dtypes recorded on tensors are the original's (§2.11), for the CUDA backend; the CPU
-- backend computes everything in fp32.
--
-- Dims: C model width, FF ffn width, L tokens, F latent frames, Ft timestep rows.
--
-- The same builder makes `dit_forward_usp` (dit.build with usp): Ulysses sequence parallelism as the original
-- does it through xDiT (shared/reference/round2-features.md §1), for P ranks (a run-time value, 2 to NH, P
-- dividing NH). Everything before the blocks runs on all L tokens on every rank; then each rank keeps its Ls =
-- ceil(L / P) tokens from tok0 = rank Ls (the last rank's padded with zero rows), with the RoPE rows of their
-- global positions and the modulation rows of their frames. Around self-attention an all-to-all turns
-- [Ls tokens, all heads] into [all Lp = Ls P tokens, NH / P heads] and back; the padding rows are not keys.
-- Cross-attention and the FFN are local; the head runs on the local tokens and its output is gathered before
-- unpatchify. The arithmetic of every token is the single-process program's, in the same order.

local dit = {}

-- Original -> diffusers names of the global modules (reference §4.1).
local global_alias = {
    ["patch_embedding"]  = "patch_embedding",
    ["text_embedding.0"] = "condition_embedder.text_embedder.linear_1",
    ["text_embedding.2"] = "condition_embedder.text_embedder.linear_2",
    ["time_embedding.0"] = "condition_embedder.time_embedder.linear_1",
    ["time_embedding.2"] = "condition_embedder.time_embedder.linear_2",
    ["time_projection.1"] = "condition_embedder.time_proj",
    ["fps_embedding"]    = "fps_embedding",
    ["fps_projection.0"] = "fps_projection.net.0.proj",
    ["fps_projection.2"] = "fps_projection.net.2",
    ["head.head"]        = "proj_out",
    ["img_emb.proj.0"]   = "condition_embedder.image_embedder.norm1",
    ["img_emb.proj.1"]   = "condition_embedder.image_embedder.ff.net.0.proj",
    ["img_emb.proj.3"]   = "condition_embedder.image_embedder.ff.net.2",
    ["img_emb.proj.4"]   = "condition_embedder.image_embedder.norm2",
}

-- Original -> diffusers names inside `blocks.{i}.` (reference §4.2). Note norm3 <-> norm2.
local block_alias = {
    ["self_attn.q"] = "attn1.to_q", ["self_attn.k"] = "attn1.to_k", ["self_attn.v"] = "attn1.to_v",
    ["self_attn.o"] = "attn1.to_out.0",
    ["self_attn.norm_q"] = "attn1.norm_q", ["self_attn.norm_k"] = "attn1.norm_k",
    ["norm3"] = "norm2",
    ["cross_attn.q"] = "attn2.to_q", ["cross_attn.k"] = "attn2.to_k", ["cross_attn.v"] = "attn2.to_v",
    ["cross_attn.o"] = "attn2.to_out.0",
    ["cross_attn.norm_q"] = "attn2.norm_q", ["cross_attn.norm_k"] = "attn2.norm_k",
    ["cross_attn.k_img"] = "attn2.add_k_proj", ["cross_attn.v_img"] = "attn2.add_v_proj",
    ["cross_attn.norm_k_img"] = "attn2.norm_added_k",
    ["ffn.0"] = "ffn.net.0.proj", ["ffn.2"] = "ffn.net.2",
}

-- Diffusers name of the original checkpoint name `name` (module path + ".weight"/".bias").
local function alias_of(name)
    if name == "head.modulation" then return "scale_shift_table" end
    if name == "img_emb.emb_pos" then return "condition_embedder.image_embedder.pos_embed" end
    local i, rest = name:match("^blocks%.(%d+)%.(.+)$")
    if i then
        if rest == "modulation" then return "blocks." .. i .. ".scale_shift_table" end
        local module, param = rest:match("^(.+)%.(%w+)$")
        local a = assert(block_alias[module], "dit: no diffusers name for " .. name)
        return "blocks." .. i .. "." .. a .. "." .. param
    end
    local module, param = name:match("^(.+)%.(%w+)$")
    local a = assert(global_alias[module], "dit: no diffusers name for " .. name)
    return a .. "." .. param
end

-- The order of the weights table (Graph:order_weights): the global embeddings, then each block's modules,
-- then the head; each module's weight before its bias. It is the order in which the forward reads them with
-- the cross-attention keys and values inside their block (the prompt part reads those first), which is
-- what `random-weights` draws in and what the committed fixtures made from its weights
-- (tests/fixtures/teacache, tests/fixtures/cuda) were made with.
local global_order = { "patch_embedding", "time_embedding.0", "time_embedding.2", "time_projection.1",
                       "fps_embedding", "fps_projection.0", "fps_projection.2", "text_embedding.0",
                       "text_embedding.2", "img_emb.proj.0", "img_emb.proj.1", "img_emb.proj.3", "img_emb.proj.4" }
local block_order = { "modulation", "self_attn.q", "self_attn.k", "self_attn.v", "self_attn.norm_q",
                      "self_attn.norm_k", "self_attn.o", "norm3", "cross_attn.q", "cross_attn.norm_q",
                      "cross_attn.k", "cross_attn.norm_k", "cross_attn.v", "cross_attn.k_img",
                      "cross_attn.norm_k_img", "cross_attn.v_img", "cross_attn.o", "ffn.0", "ffn.2" }
local function position(list, x)
    for i, v in ipairs(list) do if v == x then return i end end
    error("dit: weight of an unknown module: " .. x)
end
local function weight_rank(name)
    local param_rank = { weight = 0, bias = 1 }
    local i, rest = name:match("^blocks%.(%d+)%.(.+)$")
    if i then
        if rest == "modulation" then return 1e6 + tonumber(i) * 1e3 end
        local module, param = rest:match("^(.+)%.(%w+)$")
        return 1e6 + tonumber(i) * 1e3 + position(block_order, module) * 2 + param_rank[param]
    end
    if name == "head.modulation" then return 1e9 end
    if name == "img_emb.emb_pos" then return position(global_order, "img_emb.proj.0") * 2 - 0.5 end   -- read first
    if name:match("^head%.head%.") then return 1e9 + 1 + param_rank[name:match("(%w+)$")] end
    local module, param = name:match("^(.+)%.(%w+)$")
    return position(global_order, module) * 2 + param_rank[param]
end

-- Weight `name` of shape `shape`, registered with its diffusers alias.
local function weight(g, name, shape)
    return g:weight(name, alias_of(name), shape)
end

-- y = x W^T + b for the Linear module `module` ([n, k] weight, [n] bias).
local function linear(g, x, module, n, k, out, dtype, wshape)
    local w = weight(g, module .. ".weight", wshape or { n, k })
    local b = weight(g, module .. ".bias", { n })
    return g:op("linear", { x }, { weight = w, bias = b, n = n, k = k }, out, dtype)
end

-- RMSNorm over the full width with the learned weight of `module` (qk_norm, §2.7).
local function rmsnorm(g, s, x, module, out)
    if not s.dit.qk_norm then return x end
    local w = weight(g, module .. ".weight", { s.dit.dim })
    -- fp32 math; the result is rounded to bf16 once, where RoPE or the attention reads it (§2.7)
    return g:op("rmsnorm", { x }, { weight = w, eps = s.dit.eps, dim = s.dit.dim }, out, "bf16")
end

-- Attention over keys k, v for queries q, NH heads of head_dim each.
local function attention(g, s, q, k, v, out)
    local d = s.derived
    return g:op("attention", { q, k, v },
                { num_heads = s.dit.num_heads, head_dim = d.head_dim }, out, "bf16")
end

-- Ulysses: tensor x [Ls, C] of this rank's tokens (all heads) -> [Lp, C / P] (all tokens, this rank's heads),
-- kept in an [Ls, C] tensor (as many elements). round2-features.md §1.6.
local function to_heads(g, x, C)
    local packed = g:op("usp_pack_heads", { x }, { dim = C }, x.name .. ".packed", x.dtype)
    return g:op("usp_alltoall", { packed }, {}, x.name .. ".heads", x.dtype)
end

-- Self-attention of block p on the modulated, normalised tokens a (§2.7 step 2).
local function self_attention(g, s, p, a, rope)
    local C = s.dit.dim
    local m = p .. "self_attn."
    local q = linear(g, a, m .. "q", C, C, m .. "q.out", "bf16")
    local k = linear(g, a, m .. "k", C, C, m .. "k.out", "bf16")
    local v = linear(g, a, m .. "v", C, C, m .. "v.out", "bf16")
    q = rmsnorm(g, s, q, m .. "norm_q", m .. "norm_q.out")
    k = rmsnorm(g, s, k, m .. "norm_k", m .. "norm_k.out")
    q = g:op("rope", { q, rope }, { num_heads = s.dit.num_heads, head_dim = s.derived.head_dim },
             m .. "q.rope", "bf16")
    k = g:op("rope", { k, rope }, { num_heads = s.dit.num_heads, head_dim = s.derived.head_dim },
             m .. "k.rope", "bf16")
    local o
    if g.usp then
        o = g:op("attention_heads", { to_heads(g, q, C), to_heads(g, k, C), to_heads(g, v, C) },
                 { head_dim = s.derived.head_dim }, m .. "attn.heads", "bf16")
        o = g:op("usp_alltoall", { o }, {}, m .. "attn.back", "bf16")
        o = g:op("usp_unpack_heads", { o }, { dim = C }, m .. "attn", "bf16")
    else
        o = attention(g, s, q, k, v, m .. "attn")
    end
    return linear(g, o, m .. "o", C, C, m .. "o.out", "bf16")
end

-- The keys and values of block p's cross-attention (§2.7 step 4): from the text context (and, for I2V,
-- the image context). They depend on the prompt only, so they are made in the "context" part and kept
-- in the prompt arena (graph.lua: per_prompt): the runtime computes them once per prompt, not per step.
local function cross_kv(g, s, p, ctx, img)
    local C = s.dit.dim
    local m = p .. "cross_attn."
    local kv = {}
    local k = linear(g, ctx, m .. "k", C, C, m .. "k.out", "bf16")
    kv.k = g:per_prompt(rmsnorm(g, s, k, m .. "norm_k", m .. "norm_k.out"))
    kv.v = g:per_prompt(linear(g, ctx, m .. "v", C, C, m .. "v.out", "bf16"))
    if img then
        local ki = linear(g, img, m .. "k_img", C, C, m .. "k_img.out", "bf16")
        kv.k_img = g:per_prompt(rmsnorm(g, s, ki, m .. "norm_k_img", m .. "norm_k_img.out"))
        kv.v_img = g:per_prompt(linear(g, img, m .. "v_img", C, C, m .. "v_img.out", "bf16"))
    end
    return kv
end

-- Cross-attention of block p: queries from c over the prompt's keys and values kv (cross_kv; for I2V a
-- second attention over the image's, outputs summed; §2.7 step 4).
local function cross_attention(g, s, p, c, kv)
    local C = s.dit.dim
    local m = p .. "cross_attn."
    local q = linear(g, c, m .. "q", C, C, m .. "q.out", "bf16")
    q = rmsnorm(g, s, q, m .. "norm_q", m .. "norm_q.out")
    local o = attention(g, s, q, kv.k, kv.v, m .. "attn")
    if kv.k_img then
        local oi = attention(g, s, q, kv.k_img, kv.v_img, m .. "attn_img")
        o = g:op("add", { o, oi }, {}, m .. "attn_sum", "bf16")
    end
    return linear(g, o, m .. "o", C, C, m .. "o.out", "bf16")
end

-- One attention block (WanAttentionBlock.forward, §2.7). e0 is [Ft, 6C].
-- Modulation chunks: shift_sa (e[0]), scale_sa (e[1]), gate_sa (e[2]),
--                    shift_ff (e[3]), scale_ff (e[4]), gate_ff (e[5]).
local function attention_block(g, s, i, x, e0, kv, rope)
    local C, eps = s.dit.dim, s.dit.eps
    local p = "blocks." .. i .. "."
    local table6 = weight(g, p .. "modulation", { 1, 6, C })
    local mod = g:op("modulation", { e0 }, { table = table6, chunks = 6, dim = C, per_chunk = true },
                     p .. "mod", "f32")                                       -- [Ft, 6, C]

    local a = g:op("layernorm_modulate", { x, mod }, { eps = eps, shift = 0, scale = 1, chunks = 6, dim = C, at_tok0 = g.usp },
                   p .. "norm1.out", "bf16")                                  -- LN1, no affine
    local sa = self_attention(g, s, p, a, rope)
    local x1 = g:op("gated_residual", { x, sa, mod }, { gate = 2, chunks = 6, dim = C, at_tok0 = g.usp },
                    p .. "x1", "f32")                                         -- x + sa * gate_sa

    local c = x1
    if s.dit.cross_attn_norm then                                             -- norm3: affine LN
        local nw = weight(g, p .. "norm3.weight", { C })
        local nb = weight(g, p .. "norm3.bias", { C })
        -- cast_ctx (§2.7 step 4): T2V/DF round the fp32 residual to bf16 (the context's dtype) before
        -- the LayerNorm, I2V does not (its context is fp32); the output enters the bf16 q GEMM either way.
        c = g:op("layernorm_affine", { x1 }, { weight = nw, bias = nb, eps = eps, dim = C, round_input = not kv.k_img },
                 p .. "norm3.out", "bf16")
    end
    local ca = cross_attention(g, s, p, c, kv)
    local x2 = g:op("add", { x1, ca }, {}, p .. "x2", "f32")

    local f = g:op("layernorm_modulate", { x2, mod }, { eps = eps, shift = 3, scale = 4, chunks = 6, dim = C, at_tok0 = g.usp },
                   p .. "norm2.out", "bf16")                                  -- LN2, no affine
    local h = linear(g, f, p .. "ffn.0", s.dit.ffn_dim, C, p .. "ffn.0.out", "bf16")
    h = g:op("gelu_tanh", { h }, {}, p .. "ffn.1.out", "bf16")
    local ff = linear(g, h, p .. "ffn.2", C, s.dit.ffn_dim, p .. "ffn.2.out", "bf16")
    return g:op("gated_residual", { x2, ff, mod }, { gate = 5, chunks = 6, dim = C, at_tok0 = g.usp },
                p .. "out", "bf16")                                           -- rounded at block end
end

-- The rank counts dit_forward_usp takes for spec s: 2 .. NH, dividing the heads (round2-features.md §1.8).
function dit.usp_ranks(s)
    local list = {}
    for p = 2, s.dit.num_heads do
        if s.dit.num_heads % p == 0 then list[#list + 1] = p end
    end
    return list
end

-- Fill graph g with dit_forward for spec s (usp: dit_forward_usp, the Ulysses form, for 2 or more ranks);
-- returns g.
function dit.build(g, s, usp)
    local d, r = s.dit, s.derived
    local C = d.dim
    g.usp = usp or nil

    -- Runtime arguments and the values derived from them (the plan sizes every buffer for
    -- the largest window; a call may have fewer frames; H and W may be swapped, same product).
    g:param("F", r.max_frames, "latent frames of this call")
    g:param("H", nil, "latent height of this call")
    g:param("W", nil, "latent width of this call")
    g:param("Ft", r.max_frames, "timestep rows: 1 (plain) or F (per frame)")
    g:symbol("L", r.max_tokens, "F * (H / 2) * (W / 2)", "tokens of this call")
    g:symbol("tokens_per_row", nil, "(Ft == 1) ? L : L / F", "tokens sharing one modulation row")
    if usp then                                 -- the ranks: comm (program.h sky_comm), 2 .. NH of them
        g:symbol("P", nil, "comm->size", "ranks (2 to num_heads, dividing num_heads: the runtime checked)")
        g:symbol("Ls", (r.max_tokens + 1) // 2, "(L + P - 1) / P", "tokens per rank (the last rank's padded)")
        g:symbol("Lp", r.max_tokens + d.num_heads - 1, "Ls * P", "tokens with the padding")
        g:symbol("tok0", nil, "comm->rank * Ls", "this rank's first token")
    end

    -- Inputs of one sample (the runtime loops over the batch).
    local x   = g:input("x", { r.x_channels, "F", r.lat_h, r.lat_w }, "f32")         -- noisy latent
    local y   = r.has_image and g:input("y", { r.y_channels, "F", r.lat_h, r.lat_w }, "f32") or nil
    local t   = g:input("t", { "Ft" }, "f64")                                        -- timesteps
    local ctx_in = g:input("context", { d.text_len, d.text_dim }, "bf16")            -- umT5 output
    local clip = r.has_image and g:input("clip_fea", { r.image_tokens, d.image_dim }, "f32") or nil
    local fps = d.inject_sample_info and g:input("fps", { 1 }, "i64") or nil          -- 0 or 1

    -- Four parts (graph.lua). "context" makes what depends on the prompt only: the text and image
    -- embeddings and every block's cross-attention keys and values, kept in the prompt arena, so the
    -- runtime runs it once per prompt (cond, uncond), not once per step. "embed" makes the tokens and the
    -- time embeddings, "blocks" runs the attention blocks and "head" the output; TeaCache (reference §8)
    -- may skip the blocks.
    g:part("context")

    -- Text embedding (§2.5): [text_len, C], GELU tanh approximation.
    local ctx = linear(g, ctx_in, "text_embedding.0", C, d.text_dim, "text_embedding.0.out", "bf16")
    ctx = g:op("gelu_tanh", { ctx }, {}, "text_embedding.1.out", "bf16")
    ctx = linear(g, ctx, "text_embedding.2", C, C, "text_embedding.2.out", "bf16")

    -- Image embedding (§2.6, I2V): LN(eps 1e-5) -> Linear -> GELU (erf) -> Linear -> LN. FLF2V first adds the
    -- learned position embedding over the first and the last image's tokens (round2-features.md §3.2).
    local img
    if clip and d.pos_embed_seq_len then
        local pos = weight(g, "img_emb.emb_pos", { 1, d.pos_embed_seq_len, d.image_dim })
        clip = g:op("add_weight", { clip }, { weight = pos }, "img_emb.emb_pos.out", "f32")
    end
    if clip then
        local n0w = weight(g, "img_emb.proj.0.weight", { d.image_dim })
        local n0b = weight(g, "img_emb.proj.0.bias", { d.image_dim })
        img = g:op("layernorm_affine", { clip }, { weight = n0w, bias = n0b, eps = 1e-5, dim = d.image_dim },
                   "img_emb.proj.0.out", "f32")
        img = linear(g, img, "img_emb.proj.1", d.image_dim, d.image_dim, "img_emb.proj.1.out", "f32")
        img = g:op("gelu_erf", { img }, {}, "img_emb.proj.2.out", "f32")
        img = linear(g, img, "img_emb.proj.3", C, d.image_dim, "img_emb.proj.3.out", "f32")
        local n4w = weight(g, "img_emb.proj.4.weight", { C })
        local n4b = weight(g, "img_emb.proj.4.bias", { C })
        -- fp32 in the original, but read only by the k_img / v_img GEMMs, which autocast it to bf16
        img = g:op("layernorm_affine", { img }, { weight = n4w, bias = n4b, eps = 1e-5, dim = C },
                   "img_emb.proj.4.out", "bf16")
    end

    -- Every block's cross-attention keys and values.
    local kvs = {}
    for i = 0, d.num_layers - 1 do kvs[i] = cross_kv(g, s, "blocks." .. i .. ".", ctx, img) end

    g:part("embed")

    -- Patch embedding (§2.2): [L, Cin*4] x [C, Cin*4]^T.
    local patches = g:op("patchify", { x, y }, { patch_in = r.patch_in, lat_h = r.lat_h, lat_w = r.lat_w },
                         "patches", "bf16")
    local tok = linear(g, patches, "patch_embedding", C, r.patch_in, "patch_embedding.out", "bf16",
                       { C, d.in_dim, 1, 2, 2 })
    if usp then tok = g:op("usp_slice", { tok }, {}, "patch_embedding.local", "bf16") end

    -- Time embedding (§2.4): e [Ft, C], e0 [Ft, 6C].
    local sin = g:op("sinusoid", { t }, { freq_dim = d.freq_dim }, "time_sinusoid", "bf16")
    local e = linear(g, sin, "time_embedding.0", C, d.freq_dim, "time_embedding.0.out", "f32")
    e = g:op("silu", { e }, {}, "time_embedding.1.out", "f32")
    e = linear(g, e, "time_embedding.2", C, C, "time_embedding.2.out", "f32")
    local e0 = g:op("silu", { e }, {}, "time_projection.0.out", "f32")
    e0 = linear(g, e0, "time_projection.1", 6 * C, C, "time_projection.1.out", "f32")
    if fps then                                  -- DF-1.3B: fps MLP added to e0 only (§2.4 step 6)
        local table2 = weight(g, "fps_embedding.weight", { 2, C })
        local fe = g:op("embedding", { fps }, { table = table2, dim = C, rows = 2 }, "fps_embedding.out", "f32")
        fe = linear(g, fe, "fps_projection.0", C, C, "fps_projection.0.out", "f32")
        fe = g:op("silu", { fe }, {}, "fps_projection.1.out", "f32")
        fe = linear(g, fe, "fps_projection.2", 6 * C, C, "fps_projection.2.out", "f32")
        e0 = g:op("add_row", { e0, fe }, {}, "time_projection.fps", "f32")
    end

    -- 3-D RoPE table for this call's (F, H/2, W/2) grid, shared by all blocks (§2.8).
    local rope = g:op("rope_table", {}, { head_dim = r.head_dim, t_dim = r.rope_t_dim, h_dim = r.rope_h_dim,
                                          w_dim = r.rope_w_dim, theta = d.rope_theta }, "rope", "f32")
    if usp then rope = g:op("usp_slice", { rope }, {}, "rope.local", "f32") end   -- global positions (§1.4)

    -- What the runtime reads between the parts for TeaCache: the tokens entering the blocks and the
    -- tokens leaving them (the cached residual is their difference), and the time embeddings it
    -- measures (e, or e0 with --use_ret_steps).
    g:expose("tokens", tok)
    g:expose("e", e)
    g:expose("e0", e0)

    g:part("blocks")
    local h = tok
    for i = 0, d.num_layers - 1 do
        h = attention_block(g, s, i, h, e0, kvs[i], rope)
    end
    g:expose("hidden", h)

    g:part("head")

    -- Head (§2.10): modulation from e (not e0), fp32, then unpatchify.
    local table2 = weight(g, "head.modulation", { 1, 2, C })
    local hm = g:op("modulation", { e }, { table = table2, chunks = 2, dim = C, per_chunk = false },
                    "head.mod", "f32")                                        -- [Ft, 2, C]
    local hn = g:op("layernorm_modulate", { h, hm }, { eps = d.eps, shift = 0, scale = 1, chunks = 2, dim = C,
                                                       at_tok0 = g.usp }, "head.norm.out", "f32")
    local out = linear(g, hn, "head.head", r.head_out, C, "head.head.out", "f32")
    if usp then out = g:op("usp_allgather", { out }, {}, "head.head.gathered", "f32") end     -- §1.7
    local v = g:op("unpatchify", { out }, { out_dim = d.out_dim, lat_h = r.lat_h, lat_w = r.lat_w }, "v", "f32")
    g:output(v)
    g:check_prompt_part({ "context", "clip_fea" })
    g:order_weights(weight_rank)
    return g
end

return dit
