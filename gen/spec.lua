-- gen/spec.lua
-- =============
-- Load a model spec (specs/<variant>.lua), validate it and derive every size the later stages
-- need. A spec file is plain data: it runs in an empty environment and must return a table.
-- Validation is a table of rules (one message per rule, all problems reported in one run);
-- derived sizes are computed here once, stored in `s.derived`, and never recomputed
-- downstream. Math of the derivations: shared/reference/dit-and-sampling.md §1, §2.2, §2.8.

local fail     = require("lib.fail")
local sorted   = require("lib.sorted")
local schedule = require("schedule_sm90")

local spec = {}

-- Every field a spec may have: kind, whether required, and the rule's bounds.
-- kind: "int", "float" (an integer literal is accepted), "bool", "string".
local fields = {
    { "variant",                 "string", required = true },
    { "family",                  "string", required = true, one_of = { "t2v", "i2v", "df" } },
    { "dit.dim",                 "int",    required = true, min = 8 },
    { "dit.ffn_dim",             "int",    required = true, min = 1 },
    { "dit.num_heads",           "int",    required = true, min = 1 },
    { "dit.num_layers",          "int",    required = true, min = 1 },
    { "dit.freq_dim",            "int",    required = true, min = 2, even = true },
    { "dit.text_dim",            "int",    required = true, min = 1 },
    { "dit.text_len",            "int",    required = true, min = 1 },
    { "dit.in_dim",              "int",    required = true, min = 1 },
    { "dit.out_dim",             "int",    required = true, min = 1 },
    { "dit.eps",                 "float",  required = true, gt = 0 },
    { "dit.inject_sample_info",  "bool",   required = true },
    { "dit.image_dim",           "int",    min = 1 },
    { "dit.image_len",           "int",    min = 1 },
    { "dit.pos_embed_seq_len",   "int",    min = 1 },
    { "dit.qk_norm",             "bool" },
    { "dit.cross_attn_norm",     "bool" },
    { "dit.rope_theta",          "float",  gt = 0 },
    { "targets",                 "string_list" },
    { "vae.base_dim",            "int",    min = 1 },
    { "vae.z_dim",               "int",    min = 1 },
    { "vae.dim_mult",            "int_list", min = 1 },
    { "vae.num_res_blocks",      "int",    min = 1 },
    { "vae.temporal_downsample", "bool_list" },
    { "vae.latents_mean",        "float_list" },
    { "vae.latents_std",         "float_list", gt = 0 },
    { "vae.tile_px",             "int",    min = 8 },
    { "t5.vocab",                "int",    min = 1 },
    { "t5.dim",                  "int",    min = 1 },
    { "t5.heads",                "int",    min = 1 },
    { "t5.head_dim",             "int",    min = 1 },
    { "t5.ffn_dim",              "int",    min = 1 },
    { "t5.layers",               "int",    min = 1 },
    { "t5.buckets",              "int",    min = 2, even = true },
    { "t5.max_distance",         "int",    min = 1 },
    { "t5.eps",                  "float",  gt = 0 },
    { "clip.image_size",         "int",    min = 1 },
    { "clip.patch",              "int",    min = 1 },
    { "clip.dim",                "int",    min = 1 },
    { "clip.heads",              "int",    min = 1 },
    { "clip.ffn_dim",            "int",    min = 1 },
    { "clip.layers",             "int",    min = 1 },
    { "clip.use_layers",         "int",    min = 1 },
    { "clip.eps",                "float",  gt = 0 },
    { "video.height",            "int",    required = true, min = 16, multiple_of = 16 },
    { "video.width",             "int",    required = true, min = 16, multiple_of = 16 },
    { "video.base_num_frames",   "int",    required = true, min = 1 },
    { "sampler.steps",           "int",    required = true, min = 1 },
    { "sampler.shift",           "float",  required = true, gt = 0 },
    { "sampler.guidance",        "float",  required = true, min = 0 },
    { "teacache.coefficients",   "float_list" },
    { "teacache.ret_coefficients", "float_list" },
    -- the Hopper attention kernel's schedule (gen/schedule_sm90.lua; its default when absent)
    { "cuda.attention90",        "string", one_of = schedule.attention90_names() },
}

-- Defaults of the optional fields (the original ignores these keys in config.json and always
-- uses these values: reference §1).
local defaults = {
    ["dit.qk_norm"] = true, ["dit.cross_attn_norm"] = true, ["dit.rope_theta"] = 10000.0,
}

local sections = { dit = true, vae = true, t5 = true, clip = true, video = true, sampler = true, teacache = true,
                   cuda = true }

-- Per-channel latent normalisation of the Wan2.1 VAE (reference vae-text-image-files.md §1.6):
-- the default of vae.latents_mean / vae.latents_std when z_dim is 16.
local wan_latents_mean = { -0.7571, -0.7089, -0.9113, 0.1075, -0.1745, 0.9653, -0.1517, 1.5508,
                           0.4134, -0.0715, 0.5517, -0.3632, -0.1922, -0.9497, 0.2503, -0.2921 }
local wan_latents_std = { 2.8184, 1.4541, 2.3275, 2.6558, 1.2196, 1.7708, 2.6052, 2.0743,
                          3.2687, 2.1526, 2.8652, 1.5579, 1.6382, 1.1253, 2.8251, 1.9160 }

-- Read a spec file in a sandbox: no io, os or require; it may only build a table.
local function read_spec_file(path)
    local f = io.open(path, "rb")
    if not f then fail.user("%s: cannot open spec file", path) end
    local text = f:read("a")
    f:close()
    local chunk, err = load(text, "@" .. path, "t", {})
    if not chunk then fail.user("%s", err) end
    local ok, t = pcall(chunk)
    if not ok then fail.user("%s", tostring(t)) end
    if type(t) ~= "table" then fail.user("%s: must return a table, got %s", path, type(t)) end
    return t, text
end

-- Value at a dotted path ("dit.dim") or nil.
local function get(t, dotted)
    local v = t
    for part in dotted:gmatch("[^.]+") do
        if type(v) ~= "table" then return nil end
        v = v[part]
    end
    return v
end

-- Number in the shortest form a reader expects: 1536, 1e-06, 8.0.
local function show(v)
    if math.type(v) == "integer" then return string.format("%d", v) end
    if type(v) == "number" then return string.format("%.9g", v) end
    if type(v) == "string" then return string.format("%q", v) end
    return tostring(v)
end

-- Levenshtein distance, for "did you mean" on unknown fields.
local function distance(a, b)
    local prev = {}
    for j = 0, #b do prev[j] = j end
    for i = 1, #a do
        local cur = { [0] = i }
        for j = 1, #b do
            local cost = (a:sub(i, i) == b:sub(j, j)) and 0 or 1
            cur[j] = math.min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + cost)
        end
        prev = cur
    end
    return prev[#b]
end

-- Closest known field name to `name`, if it is close enough to be a typo.
local function suggest(name)
    local best, best_d = nil, 4
    for _, rule in ipairs(fields) do
        local d = distance(name, rule[1])
        if d < best_d then best, best_d = rule[1], d end
    end
    return best
end

-- Report fields the rules do not know (typos must not pass silently).
local function check_unknown(path, t, errs)
    local known = {}
    for _, rule in ipairs(fields) do known[rule[1]] = true end
    for _, k in ipairs(sorted.keys(t)) do
        local v = t[k]
        if type(k) ~= "string" then
            errs:add("%s: unexpected non-string key %s at top level", path, show(k))
        elseif sections[k] then
            if type(v) ~= "table" then
                errs:add("%s: %s must be a table, got %s", path, k, type(v))
            else
                for _, sub in ipairs(sorted.keys(v)) do
                    local name = k .. "." .. tostring(sub)
                    if not known[name] then
                        local s = suggest(name)
                        errs:add("%s: unknown field %s%s", path, name, s and (" (" .. s .. "?)") or "")
                    end
                end
            end
        elseif not known[k] then
            local s = suggest(k)
            errs:add("%s: unknown field %s%s", path, k, s and (" (" .. s .. "?)") or "")
        end
    end
end

-- Check a list field (int_list, bool_list, float_list): a non-empty sequence whose items are
-- each of the element kind and within the rule's bounds.
local function check_list(path, name, kind, v, rule, errs)
    local elem = kind:match("^(%a+)_list$")
    if type(v) ~= "table" or #v == 0 then
        errs:add("%s: %s must be a non-empty list of %s values", path, name, elem); return nil
    end
    for i, x in ipairs(v) do
        local ok = (elem == "int" and math.type(x) == "integer") or (elem == "bool" and type(x) == "boolean")
                   or (elem == "string" and (x == "cpu" or x == "cuda"))
                   or (elem == "float" and type(x) == "number" and x == x and math.abs(x) ~= math.huge)
        if not ok then
            errs:add("%s: %s[%d] = %s must be %s", path, name, i, show(x),
                     ({ int = "an integer", bool = "true or false", float = "a finite number",
                        string = "\"cpu\" or \"cuda\"" })[elem])
            return nil
        end
        if rule.min and x < rule.min then
            errs:add("%s: %s[%d] = %s must be at least %s", path, name, i, show(x), show(rule.min)); return nil
        end
        if rule.gt and not (x > rule.gt) then
            errs:add("%s: %s[%d] = %s must be greater than %s", path, name, i, show(x), show(rule.gt)); return nil
        end
    end
    return v
end

-- Check one field against its rule; returns the value if it is well-formed.
local function check_field(path, t, rule, errs)
    local name, kind = rule[1], rule[2]
    local v = get(t, name)
    if v == nil then
        if rule.required then errs:add("%s: %s is required", path, name) end
        return nil
    end
    if kind:match("_list$") then return check_list(path, name, kind, v, rule, errs) end
    local ok
    if kind == "int" then ok = math.type(v) == "integer"
    elseif kind == "float" then ok = type(v) == "number" and v == v and v ~= math.huge and v ~= -math.huge
    elseif kind == "bool" then ok = type(v) == "boolean"
    else ok = type(v) == "string" end
    if not ok then
        local want = ({ int = "an integer", float = "a finite number", bool = "true or false",
                        string = "a string" })[kind]
        errs:add("%s: %s = %s must be %s", path, name, show(v), want)
        return nil
    end
    if rule.min and v < rule.min then
        errs:add("%s: %s = %s must be at least %s", path, name, show(v), show(rule.min)); return nil
    end
    if rule.gt and not (v > rule.gt) then
        errs:add("%s: %s = %s must be greater than %s", path, name, show(v), show(rule.gt)); return nil
    end
    if rule.even and v % 2 ~= 0 then
        errs:add("%s: %s = %s must be even", path, name, show(v)); return nil
    end
    if rule.multiple_of and v % rule.multiple_of ~= 0 then
        errs:add("%s: %s = %s must be a multiple of %d (the VAE's 8x and the patch's 2x)",
                 path, name, show(v), rule.multiple_of)
        return nil
    end
    if rule.one_of then
        local found = false
        for _, o in ipairs(rule.one_of) do if o == v then found = true end end
        if not found then
            errs:add("%s: %s = %s must be one of %s", path, name, show(v), table.concat(rule.one_of, ", "))
            return nil
        end
    end
    return v
end

-- Rules that relate several fields. `v` holds the values that passed their own rule.
local function check_relations(path, v, errs)
    local stem = path:match("([^/\\]+)%.lua$")
    if v.variant then
        if not v.variant:match("^[a-z0-9][a-z0-9_.]*$") then
            errs:add("%s: variant = %s must use only a-z, 0-9, '_' and '.'", path, show(v.variant))
        elseif stem and stem ~= v.variant then
            errs:add("%s: variant = %s must match the file name (%s.lua)", path, show(v.variant), v.variant)
        end
    end
    local tc, tcr = v["teacache.coefficients"], v["teacache.ret_coefficients"]
    for _, pair in ipairs({ { "teacache.coefficients", tc }, { "teacache.ret_coefficients", tcr } }) do
        if pair[2] and #pair[2] ~= 5 then
            errs:add("%s: %s has %d values; TeaCache's rescale polynomial has 5 (highest power first)", path,
                     pair[1], #pair[2])
        end
    end
    if (tc == nil) ~= (tcr == nil) then
        errs:add("%s: teacache needs both coefficients (for e) and ret_coefficients (for e0, --use_ret_steps)", path)
    end
    local dim, heads = v["dit.dim"], v["dit.num_heads"]
    if dim and heads then
        if dim % heads ~= 0 then
            errs:add("%s: dit.num_heads = %d must divide dit.dim = %d", path, heads, dim)
        else
            local d = dim // heads
            if d % 2 ~= 0 or d < 8 then
                errs:add("%s: head dim dit.dim / dit.num_heads = %d must be even and at least 8 "
                         .. "(3-D RoPE splits it into frame, height and width pairs)", path, d)
            end
        end
    end
    local family = v.family
    local has_image = v["dit.image_dim"] ~= nil or v["dit.image_len"] ~= nil
    if family == "i2v" then
        if v["dit.image_dim"] == nil then errs:add("%s: dit.image_dim is required for family i2v", path) end
        if v["dit.image_len"] == nil then errs:add("%s: dit.image_len is required for family i2v", path) end
        local pos, len = v["dit.pos_embed_seq_len"], v["dit.image_len"]
        if pos and len and pos ~= 2 * len then
            errs:add("%s: dit.pos_embed_seq_len = %d must be 2 * dit.image_len = %d (the first and the last image's "
                     .. "CLIP tokens, FLF2V)", path, pos, 2 * len)
        end
        local i, o = v["dit.in_dim"], v["dit.out_dim"]
        if i and o and i ~= 2 * o + 4 then
            errs:add("%s: dit.in_dim = %d must be 2 * dit.out_dim + 4 = %d for family i2v "
                     .. "(noise, 4 mask channels, conditioning latent)", path, i, 2 * o + 4)
        end
    elseif family then
        if has_image or v["dit.pos_embed_seq_len"] ~= nil then
            errs:add("%s: dit.image_dim, dit.image_len and dit.pos_embed_seq_len are only for family i2v (family is %s)",
                     path, family)
        end
        local i, o = v["dit.in_dim"], v["dit.out_dim"]
        if i and o and i ~= o then
            errs:add("%s: dit.in_dim = %d must equal dit.out_dim = %d for family %s", path, i, o, family)
        end
    end
    if v["dit.inject_sample_info"] == true and family and family ~= "df" then
        errs:add("%s: dit.inject_sample_info = true needs family df (only the DF pipeline passes fps)", path)
    end
    local vae_fields = { "vae.base_dim", "vae.z_dim", "vae.dim_mult", "vae.num_res_blocks", "vae.temporal_downsample" }
    local any_vae = false
    for _, f in ipairs(vae_fields) do any_vae = any_vae or v[f] ~= nil end
    if any_vae then
        for _, f in ipairs(vae_fields) do
            if v[f] == nil then errs:add("%s: %s is required when the spec has a vae section", path, f) end
        end
        local mult, td = v["vae.dim_mult"], v["vae.temporal_downsample"]
        if mult and #mult ~= 4 then
            errs:add("%s: vae.dim_mult has %d entries; the Wan VAE has 4 stages (spatial stride 8)", path, #mult)
        end
        if mult and td then
            local down = 0
            for _, b in ipairs(td) do if b then down = down + 1 end end
            if #td ~= #mult - 1 then
                errs:add("%s: vae.temporal_downsample has %d entries; it needs one per downsampling stage (%d)",
                         path, #td, #mult - 1)
            elseif down ~= 2 then
                errs:add("%s: vae.temporal_downsample has %d temporal steps; the pipelines assume stride 4 (2 steps)",
                         path, down)
            end
        end
        local z, o = v["vae.z_dim"], v["dit.out_dim"]
        if z and o and z ~= o then
            errs:add("%s: vae.z_dim = %d must equal dit.out_dim = %d (the DiT denoises VAE latents)", path, z, o)
        end
        for _, f in ipairs({ "vae.latents_mean", "vae.latents_std" }) do
            local list = v[f]
            if list and z and #list ~= z then
                errs:add("%s: %s has %d values; it needs vae.z_dim = %d", path, f, #list, z)
            elseif not list and z and z ~= 16 then
                errs:add("%s: %s is required when vae.z_dim is not 16 (the Wan2.1 constants have 16)", path, f)
            end
        end
        local tile = v["vae.tile_px"]
        if tile and tile % 8 ~= 0 then
            errs:add("%s: vae.tile_px = %d must be a multiple of 8 pixels (one latent is 8 x 8 pixels)", path, tile)
        end
    end
    local targets = v["targets"]
    if targets and dim and heads and dim % heads == 0 then
        for _, t in ipairs(targets) do
            if t == "cuda" and dim // heads ~= 128 then
                errs:add("%s: targets has \"cuda\" but the head dim is %d; the CUDA attention kernel needs 128", path,
                         dim // heads)
            end
        end
    end
    -- The encoders: all fields or none; their outputs must fit the DiT's inputs.
    local function section_complete(name, list)
        local any = false
        for _, f in ipairs(list) do any = any or v[name .. "." .. f] ~= nil end
        if not any then return false end
        for _, f in ipairs(list) do
            if v[name .. "." .. f] == nil then errs:add("%s: %s.%s is required when the spec has a %s section", path, name, f, name) end
        end
        return true
    end
    if section_complete("t5", { "vocab", "dim", "heads", "head_dim", "ffn_dim", "layers", "buckets", "max_distance", "eps" }) then
        if v["t5.dim"] and v["dit.text_dim"] and v["t5.dim"] ~= v["dit.text_dim"] then
            errs:add("%s: t5.dim = %d must equal dit.text_dim = %d (the DiT reads the encoder's output)", path,
                     v["t5.dim"], v["dit.text_dim"])
        end
    end
    if section_complete("clip", { "image_size", "patch", "dim", "heads", "ffn_dim", "layers", "use_layers", "eps" }) then
        local is, pt = v["clip.image_size"], v["clip.patch"]
        if is and pt and is % pt ~= 0 then
            errs:add("%s: clip.patch = %d must divide clip.image_size = %d", path, pt, is)
        elseif is and pt and v["dit.image_len"] and (is // pt) * (is // pt) + 1 ~= v["dit.image_len"] then
            errs:add("%s: clip gives (%d/%d)^2 + 1 = %d tokens; dit.image_len is %d", path, is, pt, (is // pt) * (is // pt) + 1,
                     v["dit.image_len"])
        end
        if v["clip.dim"] and v["dit.image_dim"] and v["clip.dim"] ~= v["dit.image_dim"] then
            errs:add("%s: clip.dim = %d must equal dit.image_dim = %d", path, v["clip.dim"], v["dit.image_dim"])
        end
        if v["clip.use_layers"] and v["clip.layers"] and v["clip.use_layers"] > v["clip.layers"] then
            errs:add("%s: clip.use_layers = %d must be at most clip.layers = %d", path, v["clip.use_layers"], v["clip.layers"])
        end
        if v["clip.dim"] and v["clip.heads"] and v["clip.dim"] % v["clip.heads"] ~= 0 then
            errs:add("%s: clip.heads = %d must divide clip.dim = %d", path, v["clip.heads"], v["clip.dim"])
        end
        if v.family and v.family ~= "i2v" then
            errs:add("%s: a clip section is only for family i2v (family is %s)", path, v.family)
        end
    end
    local n = v["video.base_num_frames"]
    if n and (n - 1) % 4 ~= 0 then
        errs:add("%s: video.base_num_frames = %d must be 4k+1 (the VAE maps 4k+1 frames to k+1 latents)",
                 path, n)
    end
end

-- Sizes every later stage uses, computed once (reference §1 and §2.8).
local function derive(s)
    local d = s.dit
    local hd = d.dim // d.num_heads
    -- The Wan VAE's strides and the DiT's patch (check_relations holds the specs to them); the runtime
    -- reads them from the variant description (runtime/models/latent.h).
    local stride_t, stride_s, patch_t, patch_h, patch_w = 4, 8, 1, 2, 2
    local lat_h, lat_w = s.video.height // stride_s, s.video.width // stride_s
    local frames = (s.video.base_num_frames - 1) // stride_t + 1
    local rope_h = 2 * (hd // 6)                -- height and width axes, in dims
    local out = {
        head_dim        = hd,
        rope_t_dim      = hd - 2 * rope_h,      -- frame axis: d - 4*(d//6) dims
        rope_h_dim      = rope_h,
        rope_w_dim      = rope_h,
        vae_stride_t    = stride_t,             -- 1 + (T - 1) / stride_t latent frames of T video frames
        vae_stride_s    = stride_s,             -- latent height and width = pixels / stride_s
        patch_t         = patch_t,              -- one token per patch_t x patch_h x patch_w latents
        patch_h         = patch_h,
        patch_w         = patch_w,
        lat_h           = lat_h,                -- latent height and width (pixels / 8)
        lat_w           = lat_w,
        grid_h          = lat_h // patch_h,     -- tokens per column / row after the 1x2x2 patch
        grid_w          = lat_w // patch_w,
        tokens_per_frame = (lat_h // patch_h) * (lat_w // patch_w),
        max_frames      = frames,               -- latent frames of the largest window
        max_tokens      = frames * (lat_h // patch_h) * (lat_w // patch_w),
        x_channels      = d.out_dim,            -- channels of the noisy latent x
        y_channels      = d.in_dim - d.out_dim, -- conditioning channels y (I2V), else 0
        patch_in        = d.in_dim * patch_h * patch_w, -- (c, ph, pw) entries of one patch
        head_out        = d.out_dim * patch_h * patch_w,
        has_image       = s.family == "i2v",
        -- images whose CLIP tokens the DiT reads: 2 (first and last frame) with the position embedding (FLF2V)
        num_images      = s.family == "i2v" and (d.pos_embed_seq_len and 2 or 1) or 0,
        image_tokens    = s.family == "i2v" and (d.pos_embed_seq_len or d.image_len) or 0, -- rows of clip_fea
    }
    return out
end

-- Load, validate and derive. Raises one user error listing every problem found.
function spec.load(path)
    local t, text = read_spec_file(path)
    local errs = fail.collect()
    check_unknown(path, t, errs)
    local values = {}
    for _, rule in ipairs(fields) do values[rule[1]] = check_field(path, t, rule, errs) end
    check_relations(path, values, errs)
    errs:raise()

    -- rel_path: how generated files name the spec (gen/main.lua makes it repository-relative).
    local s = { path = path, rel_path = path, text = text, variant = t.variant, family = t.family,
                dit = {}, vae = {}, t5 = {}, clip = {}, video = {}, sampler = {}, teacache = {}, cuda = {} }
    for _, rule in ipairs(fields) do
        local section, key = rule[1]:match("^(%w+)%.(.+)$")
        if section then
            local v = values[rule[1]]
            if v == nil then v = defaults[rule[1]] end
            s[section][key] = v
        end
    end
    -- Targets: cpu always; cuda by default where the CUDA kernels apply (head dim 128).
    s.targets = {}
    local default_targets = { "cpu", (t.dit.dim // t.dit.num_heads == 128) and "cuda" or nil }
    for _, target in ipairs(values["targets"] or default_targets) do s.targets[target] = true end
    s.targets.cpu = true
    for _, sec in ipairs({ "t5", "clip", "teacache" }) do
        if next(s[sec]) == nil then s[sec] = nil end           -- no encoder of that kind
    end
    if s.t5 then s.t5.eps = s.t5.eps + 0.0 end
    if s.clip then s.clip.eps = s.clip.eps + 0.0 end
    if next(s.vae) == nil then
        s.vae = nil                                     -- no VAE: the variant has DiT programs only
    else
        s.vae.latents_mean = s.vae.latents_mean or wan_latents_mean
        s.vae.latents_std = s.vae.latents_std or wan_latents_std
        s.vae.tile_px = s.vae.tile_px or 256            -- diffusers' tile_sample_min_height/width
    end
    s.dit.eps = s.dit.eps + 0.0
    s.dit.rope_theta = s.dit.rope_theta + 0.0
    s.sampler.shift = s.sampler.shift + 0.0
    s.sampler.guidance = s.sampler.guidance + 0.0
    s.derived = derive(s)
    return s
end

-- Text dump for --stop-after=spec: every field and derived size, sorted.
function spec.dump(s)
    local lines = { "# spec " .. s.rel_path }
    lines[#lines + 1] = "variant = " .. s.variant
    lines[#lines + 1] = "family = " .. s.family
    for _, section in ipairs({ "dit", "vae", "t5", "clip", "video", "sampler", "teacache", "cuda", "derived" }) do
        for _, k in ipairs(sorted.keys(s[section] or {})) do
            local v = s[section][k]
            if type(v) == "table" then
                local parts = {}
                for i, x in ipairs(v) do parts[i] = show(x) end
                v = "{ " .. table.concat(parts, ", ") .. " }"
            else
                v = show(v)
            end
            lines[#lines + 1] = section .. "." .. k .. " = " .. v
        end
    end
    return table.concat(lines, "\n") .. "\n"
end

return spec
