-- gen/emit/names.lua
-- ===================
-- Kernel names. An instance of a template (rendered with its constants) is named for what it computes
-- and its main size, layernorm_modulate_msa_c1536 or conv_tf32_3x3x3_16to384; the full list of its
-- constants goes in a comment beside the kernel (names.comment). One table per backend, template ->
-- function(consts); a template without an entry is named procedurally, the template then its constants
-- in sorted order (silu_cols1536, linear_k1536_n8960), which is short for those. Within a program a name
-- never means two texts (the emitters check), so a table entry must tell apart the instances a program
-- can have.

local clit   = require("lib.clit")
local sorted = require("lib.sorted")

local names = {}

-- A dtype constant as a name part: float -> f32.
local function dt(t) return ({ float = "f32", bf16 = "bf16" })[t] or t end

-- Dtypes as a name part: one when all are equal ("f32"), else each ("f32_bf16_f32").
local function dts(...)
    local all, same = { ... }, true
    for i = 2, #all do same = same and all[i] == all[1] end
    if same then return dt(all[1]) end
    local parts = {}
    for i, t in ipairs(all) do parts[i] = dt(t) end
    return table.concat(parts, "_")
end

-- The part of the model a modulation chunk belongs to: chunk e[i] of a block's six (shift, scale and gate
-- of the self-attention, then of the feed-forward: msa, ffn), or one of the head's two.
local function chunk_role(chunks, i)
    if chunks == 2 then return "head" end
    assert(chunks == 6, "emit/names: a modulation of " .. chunks .. " chunks has no role names")
    return i < 3 and "msa" or "ffn"
end

-- layernorm_modulate_msa_c1536: the norm of the part its shift and scale chunks belong to.
local function layernorm_modulate(c)
    local role = chunk_role(c.CHUNKS, c.SHIFT)
    assert(role == chunk_role(c.CHUNKS, c.SCALE), "emit/names: shift and scale of two parts")
    return string.format("layernorm_modulate_%s_c%d%s", role, c.C, c.AT == 1 and "_at" or "")
end

-- layernorm_affine_c1536_eps1e05: the model's norms of one width differ by their epsilon.
local function layernorm_affine(c)
    return string.format("layernorm_affine_c%d_eps%s", c.C, tostring(c.EPS):gsub("[^%w]", ""):gsub("f$", ""))
end

local function gated_residual(c)
    return string.format("gated_residual_%s_c%d%s", chunk_role(c.CHUNKS, c.GATE), c.C, c.AT == 1 and "_at" or "")
end
local function modulation(c) return string.format("modulation_%dx%d", c.CHUNKS, c.C) end
local function patchify(c) return "patchify_c" .. c.CX .. (c.C0 > 0 and ("_at" .. c.C0) or "") end
local function split3(c) return string.format("split3_%s_c%d", ({ "q", "k", "v" })[c.PART + 1], c.C) end

-- resnorm_gate_msa_affine_c1536, resnorm_add_mod_ffn_c1536, resnorm_gate_ffn_bf16_mod_msa_c1536 (residual_norm):
-- the residual (its gate's part; the stored dtype where bf16), then the norm (a modulation's part).
local function residual_norm(c)
    local res = c.GATED == 1 and ("gate_" .. chunk_role(c.RCHUNKS, c.GATE)) or "add"
    if c.TR == "bf16" then res = res .. "_bf16" end
    local norm = "affine"
    if c.MODULATE == 1 then
        norm = "mod_" .. chunk_role(c.NCHUNKS, c.SHIFT)
        assert(norm == "mod_" .. chunk_role(c.NCHUNKS, c.SCALE), "emit/names: shift and scale of two parts")
    end
    return string.format("resnorm_%s_%s_c%d%s", res, norm, c.C, c.AT == 1 and "_at" or "")
end

-- The CUDA templates (templates/cuda/).
names.cuda = {
    activation         = function(c) return c.FN .. "_" .. dts(c.TX, c.TY) end,
    add                = function(c) return "add_" .. dts(c.TA, c.TB, c.TY) end,
    add_row            = function(c) return "add_row_c" .. c.COLS end,
    attention_sm80     = function(c) return string.format("attention_sm80_h%d_d%d", c.NH, c.D) end,
    attention_sm90     = function(c) return string.format("attention_sm90_h%d_d%d", c.NH, c.D) end,
    cache_update       = function(c) return "cache_update_nc" .. c.NC end,
    clamp_cf           = function(c) return "clamp_cf_c" .. c.C end,
    video_cf           = function(c) return "video_cf_c" .. c.C end,
    cls_pos            = function(c) return "cls_pos_c" .. c.C end,
    conv_tf32          = function(c)    -- the runtime finds the convs by the prefix conv_tf32
        local stride = (c.ST == 1 and c.SH == 1 and c.SW == 1) and "" or string.format("_s%dx%dx%d", c.ST, c.SH, c.SW)
        return string.format("conv_tf32_%dx%dx%d%s_%dto%d", c.KT, c.KH, c.KW, stride, c.CIN, c.COUT)
    end,
    copy               = function() return "copy" end,
    embedding          = function(c) return "embedding_c" .. c.COLS end,
    fp8_expand         = function() return "fp8_expand" end,
    gated_gelu         = function() return "gated_gelu" end,
    gated_residual     = gated_residual,
    gather_rows        = function(c) return "gather_rows_c" .. c.COLS end,
    layernorm_affine   = layernorm_affine,
    layernorm_modulate = layernorm_modulate,
    modulation         = modulation,
    patch_cols         = function(c) return "patch_cols_p" .. c.PATCH end,
    patchify           = patchify,
    residual_norm      = residual_norm,
    rms_factor         = function(c) return (c.PAIRS == 1 and "rms_factor_pairs_c" or "rms_factor_c") .. c.C end,
    rms_norm_cl        = function(c) return (c.SILU == 1 and "rms_norm_silu_cl_c" or "rms_norm_cl_c") .. c.C end,
    rmsnorm            = function(c) return "rmsnorm_c" .. c.C end,
    rmsnorm_rope       = function(c) return "rmsnorm_rope_c" .. c.C end,
    rope_table         = function(c) return "rope_table_d" .. c.D end,
    sinusoid           = function(c) return "sinusoid_c" .. 2 * c.HALF end,
    softmax_relbias    = function(c) return "softmax_relbias_h" .. c.NH end,
    softmax_rows       = function() return "softmax_rows" end,
    softmax_rows_ld    = function() return "softmax_rows_ld" end,
    split3             = split3,
    t5_rmsnorm         = function(c) return "t5_rmsnorm_c" .. c.C end,
    teacache           = function(c) return "teacache_" .. c.MODE end,
    unpatchify         = function(c) return "unpatchify_c" .. c.OUT end,
    upsample2x_cl      = function(c) return "upsample2x_cl_c" .. c.C end,
    usp_pack_heads     = function(c) return (c.UNPACK == 1 and "usp_unpack_heads_c" or "usp_pack_heads_c") .. c.C end,
    usp_slice          = function(c) return "usp_slice_" .. (c.T == "float" and "f32" or "b16") .. "_c" .. c.COLS end,
    vae_denorm_cl      = function(c) return "vae_denorm_cl_c" .. c.Z end,
    vae_normalize_cl   = function(c) return "vae_normalize_cl_c" .. c.Z end,
    video_cl           = function(c) return string.format("video_cl_%dto%d", c.CIN, c.CP) end,
    zero_tail          = function(c) return "zero_tail_c" .. c.COLS end,
}

-- The CPU templates (templates/cpu/) whose procedural names would carry more than their size.
names.cpu = {
    attention          = function(c) return string.format("attention_h%d_d%d", c.NH, c.D) end,
    attention_relbias  = function(c) return string.format("attention_relbias_h%d_d%d", c.NH, c.D) end,
    embedding          = function(c) return "embedding_c" .. c.COLS end,
    gated_residual     = gated_residual,
    gather_rows        = function(c) return "gather_rows_c" .. c.C end,
    layernorm_affine   = layernorm_affine,
    layernorm_modulate = layernorm_modulate,
    modulation         = modulation,
    patch_embed        = function(c) return string.format("patch_embed_c%d_p%d", c.C, c.PATCH) end,
    patchify           = patchify,
    rmsnorm            = function(c) return "rmsnorm_c" .. c.C end,
    rope               = function(c) return string.format("rope_h%d_d%d", c.NH, c.D) end,
    rope_table         = function(c) return "rope_table_d" .. c.D end,
    sinusoid           = function(c) return "sinusoid_c" .. 2 * c.HALF end,
    split3             = split3,
    vae_denorm         = function(c) return "vae_denorm_c" .. c.Z end,
    vae_normalize      = function(c) return "vae_normalize_c" .. c.Z end,
    zero_tail          = function(c) return "zero_tail_c" .. c.C end,
}

-- Whether constant value v is a list (per-channel tables: kept out of names and comments).
local function is_list(v) return type(v) == "string" and v:find(",", 1, true) ~= nil end

-- The procedural name: template, then its constants (not the lists) in sorted order, each as its
-- lower-case key and its value's letters and digits (layernorm_modulate_c1536_chunks6_eps1e06f_...).
function names.procedural(template, consts)
    local parts = { template }
    for _, key in ipairs(sorted.keys(consts)) do
        local v = consts[key]
        if not is_list(v) then
            parts[#parts + 1] = key:lower():gsub("_", "") .. tostring(v):gsub("long long", "i64"):gsub("[^%w]", "")
        end
    end
    return table.concat(parts, "_")
end

-- The name of an instance of `template` with consts on backend ("cuda" or "cpu").
function names.kernel(backend, template, consts)
    local short = names[backend][template]
    if short then return short(consts) end
    assert(backend == "cpu", "emit/names: no name rule for CUDA template " .. template)
    return names.procedural(template, consts)
end

-- The comment beside kernel `name`: its template file and every constant but the lists.
function names.comment(name, path, consts)
    local parts = {}
    for _, key in ipairs(sorted.keys(consts)) do
        local v = consts[key]
        if not is_list(v) then parts[#parts + 1] = key .. "=" .. tostring(v) end
    end
    return clit.comment(string.format("%s: %s%s", name, path, #parts > 0 and (" with " .. table.concat(parts, " ")) or ""))
end

return names
