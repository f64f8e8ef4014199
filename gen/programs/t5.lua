-- gen/programs/t5.lua
-- ===================
-- The op graph of `text_encode`: the umT5 encoder (shared/reference/vae-text-image-files.md §2)
-- on the first N tokens of a prompt (the real ones, EOS included), then zeros for the rows after
-- them. Running on the real tokens only is exact (§2.2: padded keys are masked, the relative bias
-- depends only on b - a, padded rows are zeroed at the end) and saves most of the work for short
-- prompts. Names follow the original models_t5_umt5-xxl-enc-bf16.pth; each weight carries its
-- Hugging Face name too (§2.6).
--
-- Dims: N real tokens of this call (runtime), C model width, H heads of D.

local t5 = {}

-- Hugging Face name of an original umT5 key (§2.6).
local function alias_of(name)
    if name == "token_embedding.weight" then return "shared.weight" end
    if name == "norm.weight" then return "encoder.final_layer_norm.weight" end
    local i, rest = name:match("^blocks%.(%d+)%.(.+)$")
    local map = {
        ["norm1.weight"] = "layer.0.layer_norm.weight",
        ["attn.q.weight"] = "layer.0.SelfAttention.q.weight", ["attn.k.weight"] = "layer.0.SelfAttention.k.weight",
        ["attn.v.weight"] = "layer.0.SelfAttention.v.weight", ["attn.o.weight"] = "layer.0.SelfAttention.o.weight",
        ["pos_embedding.embedding.weight"] = "layer.0.SelfAttention.relative_attention_bias.weight",
        ["norm2.weight"] = "layer.1.layer_norm.weight",
        ["ffn.gate.0.weight"] = "layer.1.DenseReluDense.wi_0.weight",
        ["ffn.fc1.weight"] = "layer.1.DenseReluDense.wi_1.weight",
        ["ffn.fc2.weight"] = "layer.1.DenseReluDense.wo.weight",
    }
    return "encoder.block." .. i .. "." .. assert(map[rest], "t5: no HF name for " .. name)
end

local function weight(g, name, shape) return g:weight(name, alias_of(name), shape) end

-- y = x W^T (umT5's Linears have no bias).
local function linear(g, x, name, n, k, out)
    local w = weight(g, name, { n, k })
    return g:op("linear", { x }, { weight = w, n = n, k = k }, out, "bf16")
end

-- T5 RMSNorm: x * rsqrt(mean(x^2) + eps) * w (no mean subtraction, no bias).
local function rms(g, s, x, name, out)
    local w = weight(g, name, { s.t5.dim })
    return g:op("rmsnorm", { x }, { weight = w, eps = s.t5.eps, dim = s.t5.dim }, out, "bf16")
end

-- Fill g with text_encode for spec s.
function t5.build(g, s)
    local c, C = s.t5, s.t5.dim
    local inner = c.heads * c.head_dim
    g:param("N", s.dit.text_len, "real tokens of this prompt, EOS included (1 .. text_len)")
    local ids = g:input("ids", { "N" }, "i64")
    local emb = weight(g, "token_embedding.weight", { c.vocab, C })
    local x = g:op("gather_rows", { ids }, { table = emb, dim = C, rows = c.vocab }, "token_embedding.out", "bf16")
    for i = 0, c.layers - 1 do
        local p = "blocks." .. i .. "."
        local h = rms(g, s, x, p .. "norm1.weight", p .. "norm1.out")
        local q = linear(g, h, p .. "attn.q.weight", inner, C, p .. "attn.q.out")
        local k = linear(g, h, p .. "attn.k.weight", inner, C, p .. "attn.k.out")
        local v = linear(g, h, p .. "attn.v.weight", inner, C, p .. "attn.v.out")
        local bias = weight(g, p .. "pos_embedding.embedding.weight", { c.buckets, c.heads })
        local o = g:op("attention_relbias", { q, k, v },
                       { bias = bias, num_heads = c.heads, head_dim = c.head_dim, buckets = c.buckets,
                         max_distance = c.max_distance }, p .. "attn.out", "bf16")
        o = linear(g, o, p .. "attn.o.weight", C, inner, p .. "attn.o.out")
        x = g:op("add", { x, o }, {}, p .. "x1", "bf16")
        h = rms(g, s, x, p .. "norm2.weight", p .. "norm2.out")
        local gate = linear(g, h, p .. "ffn.gate.0.weight", c.ffn_dim, C, p .. "ffn.gate.out")
        local up = linear(g, h, p .. "ffn.fc1.weight", c.ffn_dim, C, p .. "ffn.fc1.out")
        local f = g:op("gated_gelu", { gate, up }, {}, p .. "ffn.act", "bf16")
        f = linear(g, f, p .. "ffn.fc2.weight", C, c.ffn_dim, p .. "ffn.fc2.out")
        x = g:op("add", { x, f }, {}, p .. "out", "bf16")
    end
    x = rms(g, s, x, "norm.weight", "norm.out")
    g:output(g:op("zero_tail", { x }, { rows = s.dit.text_len, dim = C }, "context", "bf16"))
    return g
end

return t5
