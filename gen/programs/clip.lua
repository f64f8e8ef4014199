-- gen/programs/clip.lua
-- =====================
-- The op graph of `clip_encode`: the CLIP ViT-H/14 visual tower as the I2V pipelines use it
-- (shared/reference/vae-text-image-files.md §3.2): patch embedding, class token and positions,
-- the pre-norm, the first use_layers blocks (31 of 32), no post-norm, no projection. Input: the
-- preprocessed pixels (§3.3, done by the runtime). Names follow the original open-clip XLM-R .pth;
-- each weight carries its Hugging Face name too (§3.4): the fused q|k|v projection is stored as
-- three HF tensors ("cat0:" aliases, concatenated on load) and the class and position embeddings
-- carry leading unit dims in the original file.
--
-- Dims: P patches, T = P + 1 tokens, C width, H heads.

local clip = {}

local function weight(g, name, alias, shape) return g:weight(name, alias, shape) end

-- y = x W^T + b for the module `name` (original) / `alias` (HF), [n, k].
local function linear(g, x, name, alias, n, k, out, wshape)
    local w = weight(g, name .. ".weight", (alias:gsub("%%s", "weight")), wshape or { n, k })
    local b = weight(g, name .. ".bias", (alias:gsub("%%s", "bias")), { n })
    return g:op("linear", { x }, { weight = w, bias = b, n = n, k = k }, out, "f32")
end

-- LayerNorm with weight and bias.
local function layernorm(g, s, x, name, alias, out)
    local C = s.clip.dim
    local w = weight(g, name .. ".weight", alias .. ".weight", { C })
    local b = weight(g, name .. ".bias", alias .. ".bias", { C })
    return g:op("layernorm_affine", { x }, { weight = w, bias = b, eps = s.clip.eps, dim = C }, out, "f32")
end

-- Fill g with clip_encode for spec s.
function clip.build(g, s)
    local c, C = s.clip, s.clip.dim
    local side = c.image_size // c.patch
    local P, T = side * side, side * side + 1
    local hd = C // c.heads
    -- One image per call; `n` is the encoder programs' shared argument (text_encode's token count).
    g:param("n", nil, "unused by clip_encode")
    local pixels = g:input("pixels", { 3, c.image_size, c.image_size }, "f32")
    local pe = weight(g, "visual.patch_embedding.weight", "vision_model.embeddings.patch_embedding.weight",
                      { C, 3, c.patch, c.patch })
    local x = g:op("patch_embed", { pixels }, { weight = pe, dim = C, patch = c.patch, side = side, patches = P },
                   "visual.patches", "f32")
    local cls = weight(g, "visual.cls_embedding", "vision_model.embeddings.class_embedding", { 1, 1, C })
    local pos = weight(g, "visual.pos_embedding", "vision_model.embeddings.position_embedding.weight", { 1, T, C })
    x = g:op("cls_pos", { x }, { cls = cls, pos = pos, dim = C }, "visual.embeddings", "f32")
    x = layernorm(g, s, x, "visual.pre_norm", "vision_model.pre_layrnorm", "visual.pre_norm.out")
    for l = 0, c.use_layers - 1 do
        local p, hp = "visual.transformer." .. l .. ".", "vision_model.encoder.layers." .. l .. "."
        local h = layernorm(g, s, x, p .. "norm1", hp .. "layer_norm1", p .. "norm1.out")
        local qkv = linear(g, h, p .. "attn.to_qkv",
                           "cat0:" .. hp .. "self_attn.q_proj.%s," .. hp .. "self_attn.k_proj.%s," .. hp ..
                           "self_attn.v_proj.%s", 3 * C, C, p .. "attn.to_qkv.out")
        local q = g:op("split3", { qkv }, { part = 0, dim = C }, p .. "attn.q", "f32")
        local k = g:op("split3", { qkv }, { part = 1, dim = C }, p .. "attn.k", "f32")
        local v = g:op("split3", { qkv }, { part = 2, dim = C }, p .. "attn.v", "f32")
        local o = g:op("attention", { q, k, v }, { num_heads = c.heads, head_dim = hd }, p .. "attn.out", "f32")
        o = linear(g, o, p .. "attn.proj", hp .. "self_attn.out_proj.%s", C, C, p .. "attn.proj.out")
        x = g:op("add", { x, o }, {}, p .. "x1", "f32")
        h = layernorm(g, s, x, p .. "norm2", hp .. "layer_norm2", p .. "norm2.out")
        h = linear(g, h, p .. "mlp.0", hp .. "mlp.fc1.%s", c.ffn_dim, C, p .. "mlp.0.out")
        h = g:op("gelu_erf", { h }, {}, p .. "mlp.1.out", "f32")
        h = linear(g, h, p .. "mlp.2", hp .. "mlp.fc2.%s", C, c.ffn_dim, p .. "mlp.2.out")
        -- the last block's output is the program's output (the DiT's clip_fea)
        x = g:op("add", { x, h }, {}, l == c.use_layers - 1 and "clip_fea" or (p .. "out"), "f32")
    end
    g:output(x)
    return g
end

return clip
