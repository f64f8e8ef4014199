-- gen/programs/vae.lua
-- ====================
-- The op graphs of `vae_decode` and `vae_encode`: the Wan2.1 causal 3-D VAE, run one temporal
-- chunk per call with per-layer caches kept in the arena between calls, exactly as the original
-- (shared/reference/vae-text-image-files.md §1.2-§1.6).
--
--   vae_decode: one latent frame per call -> 1 video frame (first call) or 4 (later calls)
--   vae_encode: 1 video frame (first call) or 4 (later calls) -> one latent frame
--   vae_decode_tile: vae_decode at a latent tile of at most tile x tile (the tiled decode, models/vae.h), its
--               output the video before the clamp (diffusers blends the tiles, then clamps)
--   vae_encode_tile: vae_encode at a video tile of at most 8 tile x 8 tile pixels (the tiled encode, models/vae.h),
--               its output the tile's normalised latent (the blend is linear: it commutes with the normalisation)
--
-- The chunk rules: every causal k=3 conv prepends its cached last 2 input frames (zeros at the
-- start of a sequence, which equals the original's zero front pad); the decoder's upsample3d
-- time_conv is skipped on the first chunk (no temporal doubling) and otherwise runs on its
-- cache ++ x; the encoder's downsample3d time_conv passes the first chunk through and otherwise
-- convolves [last frame of the previous chunk] ++ x with stride 2. `first` is a runtime argument.
--
-- Names follow the original Wan2.1_VAE.pth; each weight carries its diffusers name too (§1.9).
-- Dims: C channels, T frames of this call, H x W the spatial size of a stage.

local vae = {}

-- Largest value of dim d of graph g.
local function graph_max(g, d)
    return math.type(d) == "integer" and d or g.dim[d].max
end

-- Diffusers name of an original VAE key (reference §1.9 notes).
local function alias_of(name)
    local rules = {
        { "^conv1%.", "quant_conv." }, { "^conv2%.", "post_quant_conv." },
        { "%.conv1%.", ".conv_in." }, { "%.head%.0%.", ".norm_out." }, { "%.head%.2%.", ".conv_out." },
        { "%.middle%.0%.", ".mid_block.resnets.0." }, { "%.middle%.2%.", ".mid_block.resnets.1." },
        { "%.middle%.1%.", ".mid_block.attentions.0." },
        { "%.residual%.0%.", ".norm1." }, { "%.residual%.2%.", ".conv1." }, { "%.residual%.3%.", ".norm2." },
        { "%.residual%.6%.", ".conv2." }, { "%.shortcut%.", ".conv_shortcut." },
    }
    local a = name
    -- Stage lists first: encoder downsamples.i -> down_blocks.i; decoder upsamples.i -> up_blocks.s.
    a = a:gsub("^encoder%.downsamples%.", "encoder.down_blocks.")
    local i = a:match("^decoder%.upsamples%.(%d+)%.")
    if i then
        i = tonumber(i)
        local per = 4                                  -- 3 resblocks + 1 resample per decoder stage
        local stage, k = i // per, i % per
        local target = k < 3 and string.format("decoder.up_blocks.%d.resnets.%d.", stage, k)
                             or string.format("decoder.up_blocks.%d.upsamplers.0.", stage)
        a = a:gsub("^decoder%.upsamples%.%d+%.", target)
    end
    for _, r in ipairs(rules) do a = a:gsub(r[1], r[2]) end
    return a
end

-- Checkpoint tensor `name` of `shape`.
local function weight(g, name, shape)
    return g:weight(name, alias_of(name), shape)
end

-- Channel ladders (reference §1.3, §1.4; the original's Encoder3d/Decoder3d constructors).
local function ladders(s)
    local v = s.vae
    local enc = { v.base_dim }
    for i, m in ipairs(v.dim_mult) do enc[i + 1] = v.base_dim * m end     -- 96, 96, 192, 384, 384
    local dec = { v.base_dim * v.dim_mult[#v.dim_mult] }
    for i = #v.dim_mult, 1, -1 do dec[#dec + 1] = v.base_dim * v.dim_mult[i] end  -- 384, 384, 384, 192, 96
    return enc, dec
end

-- Builder state shared by both programs: the graph, the current frame/height/width symbols.
local Builder = {}
Builder.__index = Builder

local function builder(g, s)
    return setmetatable({ g = g, s = s }, Builder)
end

-- Causal conv, kernel 3 in time, 3x3 spatial, with its cache of the last 2 input frames.
function Builder:causal_conv3(x, prefix, cin, cout, out)
    local g = self.g
    local w = weight(g, prefix .. ".weight", { cout, cin, 3, 3, 3 })
    local b = weight(g, prefix .. ".bias", { cout })
    local cache = g:state(prefix .. ".cache", { cin, 2, x.dims[3], x.dims[4] }, "f32")
    return g:op("causal_conv3", { x, cache }, { weight = w, bias = b, cin = cin, cout = cout },
                out or (prefix .. ".out"), "f32")
end

-- 1x1x1 (or 1x1) conv: a per-position channel mix.
function Builder:conv1x1(x, prefix, cin, cout, wshape, out)
    local g = self.g
    local w = weight(g, prefix .. ".weight", wshape or { cout, cin, 1, 1, 1 })
    local b = weight(g, prefix .. ".bias", { cout })
    return g:op("conv1x1", { x }, { weight = w, bias = b, cin = cin, cout = cout },
                out or (prefix .. ".out"), "f32")
end

-- The VAE's RMS norm over channels (gamma of shape gshape) followed, when silu, by SiLU.
function Builder:rms(x, gamma_name, gshape, out, silu)
    local g = self.g
    local c = x.dims[1]
    local gm = weight(g, gamma_name, gshape)
    local y = g:op("rms_norm_ch", { x }, { gamma = gm, c = c }, out, "f32")
    if silu then y = g:op("silu", { y }, {}, out .. ".silu", "f32") end
    return y
end

-- ResidualBlock(cin -> cout) (reference §1.2).
function Builder:resblock(x, p, cin, cout)
    local g = self.g
    local h = x
    if cin ~= cout then h = self:conv1x1(x, p .. ".shortcut", cin, cout) end
    local a = self:rms(x, p .. ".residual.0.gamma", { cin, 1, 1, 1 }, p .. ".residual.0.out", true)
    local y = self:causal_conv3(a, p .. ".residual.2", cin, cout)
    local b = self:rms(y, p .. ".residual.3.gamma", { cout, 1, 1, 1 }, p .. ".residual.3.out", true)
    y = self:causal_conv3(b, p .. ".residual.6", cout, cout)
    return g:op("add", { y, h }, {}, p .. ".out", "f32")
end

-- AttentionBlock(C): single head over the tokens of each frame (reference §1.2).
function Builder:attention(x, p, c)
    local g = self.g
    local n = self:rms(x, p .. ".norm.gamma", { c, 1, 1 }, p .. ".norm.out", false)
    local qkv = self:conv1x1(n, p .. ".to_qkv", c, 3 * c, { 3 * c, c, 1, 1 })
    local o = g:op("attention_frames", { qkv }, { c = c }, p .. ".attn", "f32")
    local y = self:conv1x1(o, p .. ".proj", c, c, { c, c, 1, 1 })
    return g:op("add", { x, y }, {}, p .. ".out", "f32")
end

-- Decoder Resample upsample3d/upsample2d of width c (c -> c/2, spatial x2; 3d doubles frames).
function Builder:upsample(x, p, c, temporal, stage)
    local g = self.g
    local t = x
    if temporal then
        local w = weight(g, p .. ".time_conv.weight", { 2 * c, c, 3, 1, 1 })
        local b = weight(g, p .. ".time_conv.bias", { 2 * c })
        local cache = g:state(p .. ".time_conv.cache", { c, 2, x.dims[3], x.dims[4] }, "f32")
        local T = g:symbol("T" .. stage, 2 * graph_max(g, x.dims[2]),
                           string.format("first ? 1 : 2 * %s", x.dims[2]), "frames after " .. p)
        t = g:op("time_conv_up", { x, cache }, { weight = w, bias = b, c = c }, p .. ".time_conv.out", "f32",
                 { c, T, x.dims[3], x.dims[4] })
    end
    local H, W = self:spatial(stage, "*", x.dims[3], x.dims[4])
    local u = g:op("upsample_nearest2x", { t }, {}, p .. ".resample.0.out", "f32", { c, t.dims[2], H, W })
    local w = weight(g, p .. ".resample.1.weight", { c // 2, c, 3, 3 })
    local b = weight(g, p .. ".resample.1.bias", { c // 2 })
    return g:op("conv2d_k3", { u }, { weight = w, bias = b, cin = c, cout = c // 2 }, p .. ".out", "f32",
                { c // 2, t.dims[2], H, W })
end

-- Encoder Resample downsample2d/downsample3d of width c (spatial /2; 3d halves frames).
function Builder:downsample(x, p, c, temporal, stage)
    local g = self.g
    local H, W = self:spatial(stage, "/", x.dims[3], x.dims[4])
    local w = weight(g, p .. ".resample.1.weight", { c, c, 3, 3 })
    local b = weight(g, p .. ".resample.1.bias", { c })
    local y = g:op("conv2d_k3_s2", { x }, { weight = w, bias = b, c = c }, p .. ".resample.out", "f32",
                   { c, x.dims[2], H, W })
    if not temporal then return y end
    local tw = weight(g, p .. ".time_conv.weight", { c, c, 3, 1, 1 })
    local tb = weight(g, p .. ".time_conv.bias", { c })
    local cache = g:state(p .. ".time_conv.cache", { c, 1, H, W }, "f32")
    local T = g:symbol("T" .. stage, math.max(1, graph_max(g, x.dims[2]) // 2),
                       string.format("first ? 1 : %s / 2", x.dims[2]), "frames after " .. p)
    return g:op("time_conv_down", { y, cache }, { weight = tw, bias = tb, c = c }, p .. ".out", "f32",
                { c, T, H, W })
end

-- New height and width symbols for a stage: the previous ones times or over 2.
function Builder:spatial(stage, how, H, W)
    local g = self.g
    local function next_dim(prev, axis)
        local max = how == "*" and 2 * g.dim[prev].max or g.dim[prev].max // 2
        local expr = how == "*" and ("2 * " .. prev) or (prev .. " / 2")
        return g:symbol(axis .. stage, max, expr)
    end
    return next_dim(H, "H"), next_dim(W, "W")
end

-- Fill g with vae_decode: one normalised latent frame -> 1 or 4 frames in [-1, 1]; or, with tile (latents),
-- vae_decode_tile: a latent tile of at most tile x tile -> its 1 or 4 frames before the clamp.
function vae.build_decode(g, s, tile)
    local v, r = s.vae, s.derived
    local b = builder(g, s)
    local _, dec = ladders(s)
    local Z = v.z_dim
    local max_h, max_w = tile or r.lat_h, tile or r.lat_w
    g.tile = tile                                      -- H x W of a call varies (the CUDA attention: emit/cuda_vae.lua)
    g:param("H", max_h, tile and "latent height of this tile" or "latent height of this call (width and height may be swapped)")
    g:param("W", max_w, tile and "latent width of this tile" or "latent width")
    g:param("first", nil, "1 for the first latent frame of a sequence, else 0")
    -- Sizes are planned for the landscape H x W; a portrait call swaps them, same product.
    g:symbol("H0", max_h, "H")
    g:symbol("W0", max_w, "W")
    g:symbol("T0", 1, "1", "latent frames per call")
    -- [Z, 1, H, W] normalised latent -> z * std + mean (reference §1.6), then post_quant_conv.
    local z = g:input("z", { Z, "T0", "H0", "W0" }, "f32")
    local x = g:op("vae_denorm", { z }, { mean = v.latents_mean, std = v.latents_std, z = Z }, "z.denorm", "f32")
    x = b:conv1x1(x, "conv2", Z, Z)
    x = b:causal_conv3(x, "decoder.conv1", Z, dec[1])
    x = b:resblock(x, "decoder.middle.0", dec[1], dec[1])
    x = b:attention(x, "decoder.middle.1", dec[1])
    x = b:resblock(x, "decoder.middle.2", dec[1], dec[1])
    local temporal_up = {}
    for i = 1, #v.temporal_downsample do temporal_up[i] = v.temporal_downsample[#v.temporal_downsample + 1 - i] end
    local idx = 0
    for stage = 1, #v.dim_mult do
        local cin, cout = dec[stage], dec[stage + 1]
        if stage > 1 then cin = cin // 2 end               -- each upsample halved the width
        for k = 0, v.num_res_blocks do
            x = b:resblock(x, "decoder.upsamples." .. idx, k == 0 and cin or cout, cout)
            idx = idx + 1
        end
        if stage < #v.dim_mult then
            x = b:upsample(x, "decoder.upsamples." .. idx, cout, temporal_up[stage], stage)
            idx = idx + 1
        end
    end
    x = b:rms(x, "decoder.head.0.gamma", { dec[#dec], 1, 1, 1 }, "decoder.head.0.out", true)
    x = b:causal_conv3(x, "decoder.head.2", dec[#dec], 3)
    g:output(g:op(tile and "video_out" or "clamp", { x }, {}, "video", "f32"))
    return g
end

-- Fill g with vae_encode: 1 or 4 video frames in [-1, 1] -> one normalised latent frame (the
-- posterior mean, reference §1.3 and §1.6).
function vae.build_encode(g, s, tile)
    local v, r = s.vae, s.derived
    local b = builder(g, s)
    local enc = ladders(s)
    local Z = v.z_dim
    local px_h = tile and tile * r.vae_stride_s or s.video.height
    local px_w = tile and tile * r.vae_stride_s or s.video.width
    g.tile = tile                                      -- H x W of a call varies (the CUDA attention: emit/cuda_vae.lua)
    g:param("H", px_h, tile and "video height of this tile" or "video height of this call (width and height may be swapped)")
    g:param("W", px_w, tile and "video width of this tile" or "video width")
    g:param("first", nil, "1 for the first frame of a sequence (1 frame), else 0 (4 frames)")
    g:symbol("H0", px_h, "H")
    g:symbol("W0", px_w, "W")
    g:symbol("T0", 4, "first ? 1 : 4", "video frames per call")
    local x = g:input("video", { 3, "T0", "H0", "W0" }, "f32")
    x = b:causal_conv3(x, "encoder.conv1", 3, enc[1])
    local idx = 0
    for stage = 1, #v.dim_mult do
        local cin, cout = enc[stage], enc[stage + 1]
        for k = 0, v.num_res_blocks - 1 do
            x = b:resblock(x, "encoder.downsamples." .. idx, k == 0 and cin or cout, cout)
            idx = idx + 1
        end
        if stage < #v.dim_mult then
            x = b:downsample(x, "encoder.downsamples." .. idx, cout, v.temporal_downsample[stage], stage)
            idx = idx + 1
        end
    end
    local c = enc[#enc]
    x = b:resblock(x, "encoder.middle.0", c, c)
    x = b:attention(x, "encoder.middle.1", c)
    x = b:resblock(x, "encoder.middle.2", c, c)
    x = b:rms(x, "encoder.head.0.gamma", { c, 1, 1, 1 }, "encoder.head.0.out", true)
    x = b:causal_conv3(x, "encoder.head.2", c, 2 * Z)
    x = b:conv1x1(x, "conv1", 2 * Z, 2 * Z)                -- quant_conv; channels Z.. are log-variance
    g:output(g:op("vae_normalize", { x }, { mean = v.latents_mean, std = v.latents_std, z = Z }, "z", "f32"))
    return g
end

return vae
