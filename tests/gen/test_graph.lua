-- tests/gen/test_graph.lua: the dit_forward graph of each released variant reads exactly the
-- reference's tensor table: parameter counts equal dit-and-sampling.md §1 (computed there from
-- the §4 table), 27 tensors per block (32 for I2V), original and diffusers names each unique.
local t     = require("t")
local spec  = require("spec")
local graph = require("graph")

-- Parameter counts from reference §1.
local want_params = {
    df_1_3b = 1435525696, i2v_1_3b = 1564428608, t2v_df_14b = 14288491584, i2v_14b = 16394878784,
}
-- FLF2V-1.3B: the I2V-1.3B network plus the position embedding [1, 514, 1280] (round2-features.md §3.1, §3.2)
want_params.flf2v_1_3b = want_params.i2v_1_3b + 514 * 1280
local cases = {
    { "df_1.3b_540p", want_params.df_1_3b },  { "i2v_1.3b_540p", want_params.i2v_1_3b },
    { "df_14b_540p", want_params.t2v_df_14b }, { "df_14b_720p", want_params.t2v_df_14b },
    { "t2v_14b_540p", want_params.t2v_df_14b }, { "t2v_14b_720p", want_params.t2v_df_14b },
    { "i2v_14b_540p", want_params.i2v_14b },  { "i2v_14b_720p", want_params.i2v_14b },
    { "flf2v_1.3b_540p", want_params.flf2v_1_3b },
}
for _, c in ipairs(cases) do
    local s = spec.load("specs/" .. c[1] .. ".lua")
    local g = graph.build(s).dit_forward
    local params, names, aliases, per_block = 0, {}, {}, {}
    for _, w in ipairs(g.weights) do
        local n = 1
        for _, dim in ipairs(w.shape) do n = n * dim end
        params = params + n
        t.check(not names[w.name], "%s: weight %s twice", c[1], w.name)
        t.check(not aliases[w.alias], "%s: diffusers name %s twice", c[1], w.alias)
        names[w.name], aliases[w.alias] = true, true
        local b = w.name:match("^blocks%.(%d+)%.")
        if b then per_block[b] = (per_block[b] or 0) + 1 end
    end
    t.check_eq(params, c[2], c[1] .. " parameter count")
    local want_block = s.family == "i2v" and 32 or 27
    for i = 0, s.dit.num_layers - 1 do
        t.check_eq(per_block[tostring(i)], want_block, c[1] .. " tensors in block " .. i)
    end
end

-- Spot checks of the name map (reference §4, including the norm2/norm3 swap).
local g = graph.build(spec.load("specs/i2v_14b_540p.lua")).dit_forward
local alias = {}
for _, w in ipairs(g.weights) do alias[w.name] = w.alias end
t.check_eq(alias["blocks.3.norm3.weight"], "blocks.3.norm2.weight", "norm3 -> norm2")
t.check_eq(alias["blocks.0.modulation"], "blocks.0.scale_shift_table", "block modulation")
t.check_eq(alias["head.modulation"], "scale_shift_table", "head modulation")
t.check_eq(alias["blocks.7.cross_attn.norm_k_img.weight"], "blocks.7.attn2.norm_added_k.weight", "norm_k_img")
t.check_eq(alias["time_projection.1.weight"], "condition_embedder.time_proj.weight", "time_projection")
t.check_eq(alias["img_emb.proj.3.bias"], "condition_embedder.image_embedder.ff.net.2.bias", "img_emb.proj.3")
t.check_eq(alias["blocks.1.self_attn.o.weight"], "blocks.1.attn1.to_out.0.weight", "self_attn.o")
local gf = graph.build(spec.load("specs/flf2v_1.3b_540p.lua")).dit_forward
local pos
for _, w in ipairs(gf.weights) do if w.name == "img_emb.emb_pos" then pos = w end end
t.check(pos ~= nil, "flf2v_1.3b_540p: no weight img_emb.emb_pos")
t.check_eq(pos and pos.alias, "condition_embedder.image_embedder.pos_embed", "emb_pos -> pos_embed")
t.check_eq(pos and table.concat(pos.shape, "x"), "1x514x1280", "emb_pos shape")
t.check_eq(gf.by_name.clip_fea and table.concat(gf.by_name.clip_fea.dims, "x"), "514x1280", "FLF2V clip_fea: 2 x 257 tokens")

-- The VAE programs read the reference's VAE table (vae-text-image-files.md §1.8, §1.9): 194 tensors,
-- encoder + quant_conv 53,596,928 parameters, decoder + post_quant_conv 73,295,603; names unique.
local s = spec.load("specs/df_14b_720p.lua")
local progs = graph.build(s)
local want_vae = { vae_encode = 53596928, vae_decode = 73295603 }
local count, seen = 0, {}
for name, want in pairs(want_vae) do
    local params = 0
    for _, w in ipairs(progs[name].weights) do
        local n = 1
        for _, dim in ipairs(w.shape) do n = n * dim end
        params = params + n
        t.check(not seen[w.name] and not seen[w.alias], "%s: weight %s twice", name, w.name)
        seen[w.name], seen[w.alias] = true, true
        count = count + 1
    end
    t.check_eq(params, want, name .. " parameter count")
end
t.check_eq(count, 194, "VAE tensors")
local dec_alias = {}
for _, w in ipairs(progs.vae_decode.weights) do dec_alias[w.name] = w.alias end
t.check_eq(dec_alias["decoder.upsamples.4.shortcut.weight"], "decoder.up_blocks.1.resnets.0.conv_shortcut.weight",
           "decoder shortcut name")
t.check_eq(dec_alias["decoder.upsamples.11.resample.1.bias"], "decoder.up_blocks.2.upsamplers.0.resample.1.bias",
           "decoder upsampler name")
t.check_eq(dec_alias["conv2.weight"], "post_quant_conv.weight", "post_quant_conv name")
t.check_eq(dec_alias["decoder.middle.1.to_qkv.weight"], "decoder.mid_block.attentions.0.to_qkv.weight",
           "decoder attention name")

-- The tiled VAE's programs (models/vae.h): where the frame is larger than vae.tile_px (256 px), vae_decode_tile and
-- vae_encode_tile are the decoder and the encoder at one tile (32 latents, 256 px), with the untiled programs'
-- weights in the same order; a frame that fits one tile has neither.
for _, name in ipairs({ "decode", "encode" }) do
    local tile, plain = progs["vae_" .. name .. "_tile"], progs["vae_" .. name]
    t.check(tile ~= nil, "df_14b_720p: no vae_%s_tile", name)
    if tile then
        t.check_eq(tile.tile, 32, "vae_" .. name .. "_tile: its tile in latents")
        t.check_eq(tile.dim.H.max, name == "decode" and 32 or 256, "vae_" .. name .. "_tile: H at most one tile")
        t.check_eq(tile.dim.W.max, name == "decode" and 32 or 256, "vae_" .. name .. "_tile: W at most one tile")
        t.check_eq(#tile.weights, #plain.weights, "vae_" .. name .. "_tile: its weights are vae_" .. name .. "'s")
        for i, w in ipairs(tile.weights) do
            t.check(w.name == plain.weights[i].name, "vae_%s_tile: weight %d is %s, vae_%s's %s", name, i, w.name,
                    name, plain.weights[i].name)
        end
    end
end
local tiny = graph.build(spec.load("specs/tiny_df.lua"))
t.check(tiny.vae_decode_tile == nil and tiny.vae_encode_tile == nil, "tiny_df: its frame fits a tile, no tile programs")

-- FLOPs per forward at the full window equal the reference's counts (performance.md §4: 612 TFLOP
-- for 1.3B 540P, 12,920 TFLOP for 14B 720P; the table rounds, hence 0.5%).
for name, want in pairs({ df_1_3b = 612e12, t2v_14b_720p = 12920e12 }) do
    local file = name == "df_1_3b" and "specs/df_1.3b_540p.lua" or "specs/t2v_14b_720p.lua"
    local f = graph.flops(graph.build(spec.load(file)).dit_forward)
    t.check(math.abs(f - want) / want < 0.005, "%s: %.4g FLOP per forward, the reference counts %.4g", file, f, want)
end

-- The encoders read the reference's tables: umT5-XXL 5,680,910,336 parameters (§2.1), the CLIP path
-- used (31 blocks, no post-norm or head) 611,086,080 (§3.1).
local i2v = graph.build(spec.load("specs/i2v_14b_720p.lua"))
for name, want in pairs({ text_encode = 5680910336, clip_encode = 611086080 }) do
    local params = 0
    for _, w in ipairs(i2v[name].weights) do
        local n = 1
        for _, dim in ipairs(w.shape) do n = n * dim end
        params = params + n
    end
    t.check_eq(params, want, name .. " parameter count")
end

-- dit_forward in four parts (gen/programs/dit.lua): context, embed, blocks, head in program order, every
-- node in one; a block's nodes are in blocks except its cross-attention keys and values, which are the
-- context part's per-prompt tensors (and only they are); the exposed tensors are where the runtime expects
-- them; the lowered (CUDA) graph keeps the parts and no fusion crosses one.
do
    local lower = require("lower")
    local gd = graph.build(spec.load("specs/df_1.3b_540p.lua")).dit_forward
    t.check_eq(table.concat(gd.parts, " "), "context embed blocks head", "dit_forward parts")
    local function kv(name)
        return name:match("^blocks%.%d+%.cross_attn%.norm_k") ~= nil or name:match("^blocks%.%d+%.cross_attn%.v") ~= nil
    end
    for _, gg in ipairs({ gd, lower.cuda(gd) }) do
        local order, last = { context = 1, embed = 2, blocks = 3, head = 4 }, 1
        for _, n in ipairs(gg.nodes) do
            local k = order[n.part]
            t.check(k and k >= last, "node %s: part %s out of order", n.out.name, tostring(n.part))
            last = k or last
            local cross_k = n.out.name:match("^blocks%.%d+%.cross_attn%.k") ~= nil
            t.check((n.out.name:match("^blocks%.") ~= nil and not kv(n.out.name) and not cross_k) == (n.part == "blocks"),
                    "node %s is in part %s", n.out.name, n.part)
            t.check((n.out.kind == "prompt") == kv(n.out.name), "node %s: kind %s", n.out.name, n.out.kind)
        end
    end
    t.check_eq(#gd.prompt_tensors, 2 * 30, "per-prompt tensors of DF-1.3B (k and v of 30 blocks)")
    local gi = graph.build(spec.load("specs/i2v_14b_720p.lua")).dit_forward
    t.check_eq(#gi.prompt_tensors, 4 * 40, "per-prompt tensors of I2V-14B (k, v, k_img, v_img of 40 blocks)")
    -- The prompt part may read the prompt inputs only: a graph whose first part reads x is refused.
    local bad = graph.new("bad", gd.spec)
    local x = bad:input("x", { 4 }, "f32")
    local c = bad:input("context", { 4 }, "f32")
    bad:part("context")
    bad:per_prompt(bad:op("silu", { c }, {}, "ok", "f32"))
    bad:op("silu", { x }, {}, "reads_x", "f32")
    local ok, msg = pcall(bad.check_prompt_part, bad, { "context" })
    t.check(not ok and msg:find("reads x", 1, true), "a prompt part reading x is refused: %s", tostring(msg))
    local late = graph.new("late", gd.spec)
    local c2 = late:input("context", { 4 }, "f32")
    late:part("context")
    local y1 = late:op("silu", { c2 }, {}, "y1", "f32")
    late:part("embed")
    late:per_prompt(late:op("silu", { y1 }, {}, "y2", "f32"))
    ok, msg = pcall(late.check_prompt_part, late, { "context" })
    t.check(not ok and msg:find("made outside part context", 1, true), "a per-prompt tensor made later is refused: %s",
            tostring(msg))
    t.check_eq(gd.exposed.tokens.name, "patch_embedding.out", "tokens")
    t.check_eq(gd.exposed.hidden.name, "blocks.29.out", "hidden")
    t.check_eq(gd.exposed.e.name, "time_embedding.2.out", "e")
    t.check_eq(gd.exposed.e0.name, "time_projection.fps", "e0 (with the fps term, DF-1.3B)")
    local g14 = graph.build(spec.load("specs/t2v_14b_720p.lua")).dit_forward
    t.check_eq(g14.exposed.e0.name, "time_projection.1.out", "e0 without fps")
end

-- The VAE programs' FLOPs (sky_vae_program.flops, the ETA's unit of VAE work) equal a count by hand of
-- tiny_df's VAE (base_dim 8, dim_mult 1 2 4 4, 2 res blocks; latent 8x6, video 64x48) at one call's largest:
-- every convolution's outputs x cin x taps x 2, and the middle attention's 4 x tokens^2 x C per frame.
do
    local tiny = graph.build(spec.load("specs/tiny_df.lua"))
    local function c3(ci, co, e) return 2 * 27 * ci * co * e end   -- causal 3x3x3 conv, e output positions
    local function c1(ci, co, e) return 2 * ci * co * e end        -- 1x1 conv
    local function mid(c, e)                                       -- resblock, attention, resblock at width c
        return 4 * c3(c, c, e) + c1(c, 3 * c, e) + 4 * e * e * c + c1(c, c, e)
    end
    -- decode: 1 latent frame (8x6) -> 4 frames (64x48); decoder widths 32 32 32 16 8
    local P = 48
    local dec = c1(16, 16, P) + c3(16, 32, P) + mid(32, P)
    dec = dec + 6 * c3(32, 32, P) + 2 * (32 * 2 * P) * 32 * 3 + 2 * (16 * 2 * 192) * 32 * 9  -- stage 1, up x2 (t, s)
    local e = 2 * 192
    dec = dec + c1(16, 32, e) + c3(16, 32, e) + c3(32, 32, e) + 4 * c3(32, 32, e)            -- stage 2
    dec = dec + 2 * (32 * 4 * 192) * 32 * 3 + 2 * (16 * 4 * 768) * 32 * 9                     -- up x2 (t, s)
    e = 4 * 768
    dec = dec + 6 * c3(16, 16, e) + 2 * (8 * 4 * 3072) * 16 * 9                               -- stage 3, up (s)
    e = 4 * 3072
    dec = dec + 6 * c3(8, 8, e) + c3(8, 3, e)                                                 -- stage 4, head
    t.check_eq(graph.flops(tiny.vae_decode), dec, "tiny_df vae_decode FLOPs, counted by hand")
    -- encode: 4 frames (64x48) -> 1 latent frame; encoder widths 8 8 16 32 32
    e = 4 * 3072
    local enc = c3(3, 8, e) + 4 * c3(8, 8, e) + 2 * (8 * 4 * 768) * 8 * 9                     -- stage 1, down (s)
    e = 4 * 768
    enc = enc + c1(8, 16, e) + c3(8, 16, e) + c3(16, 16, e) + 2 * c3(16, 16, e)              -- stage 2
    enc = enc + 2 * (16 * 4 * 192) * 16 * 9 + 2 * (16 * 2 * 192) * 16 * 3                     -- down (s, t)
    e = 2 * 192
    enc = enc + c1(16, 32, e) + c3(16, 32, e) + c3(32, 32, e) + 2 * c3(32, 32, e)            -- stage 3
    enc = enc + 2 * (32 * 2 * 48) * 32 * 9 + 2 * (32 * 1 * 48) * 32 * 3                      -- down (s, t)
    enc = enc + 4 * c3(32, 32, P) + mid(32, P) + c3(32, 32, P) + c1(32, 32, P)               -- stage 4, mid, head
    t.check_eq(graph.flops(tiny.vae_encode), enc, "tiny_df vae_encode FLOPs, counted by hand")
    -- the DiT at L tokens: self-attention is the only L^2 term, 2 layers x 4 L^2 dim
    local g, L = tiny.dit_forward, 50
    local f0, f1 = graph.flops(g, "context", { L = 0 }), graph.flops(g, "context", { L = L })
    local f2 = graph.flops(g, "context", { L = 2 * L })
    t.check_eq(f2 - 2 * f1 + f0, 2 * 2 * 4 * L * L * 128, "tiny_df dit_forward: the L^2 part of its FLOPs")
end
