-- gen/emit/variant.lua
-- ====================
-- gen/variant.c: what the binary knows of its variant (runtime/models/program.h): the prototypes of the CPU
-- programs (emit/c.lua writes them), every program's weights table (checkpoint name, diffusers name,
-- shape), one description per program (sizes, both backends' arena peaks, input and output slots, the
-- CPU functions), the CUDA lowering's counts (emit/counts.lua) and the sky_variant description with the
-- spec's sampler defaults and hashes.

local clit    = require("lib.clit")
local cwriter = require("lib.cwriter")
local sorted  = require("lib.sorted")
local graph   = require("graph")
local header  = require("emit.header")
local c       = require("emit.c")
local counts  = require("emit.counts")

local cuda_emitters = require("emit.cuda_programs")   -- its weights' device bytes (weight_device_bytes)

local variant = {}

-- C initializer of a shape: {128, 16, 1, 2, 2}.
local function shape_init(shape)
    local parts = {}
    for i, d in ipairs(shape) do parts[i] = clit.int(d) end
    return "{" .. table.concat(parts, ", ") .. "}"
end

-- The weights table of program g.
local function weights_table(w, g)
    w:open(string.format("static const sky_weight_desc %s_weights[%d] = {", g.name, #g.weights))
    for _, wt in ipairs(g.weights) do
        w:line("{%s, %s, %d, %s},", clit.str(wt.name), clit.str(wt.alias), #wt.shape, shape_init(wt.shape))
    end
    w:close("};")
    w:blank()
end

-- {offset, bytes} of tensor `name` of plan p, or {0, 0}.
local function slot(p, name)
    local t = p.graph.by_name[name]
    if not t then return "{0, 0}" end
    local b = p.by_tensor[t.id]
    return string.format("{%s, %s}", clit.size(b.offset), clit.size(b.bytes))
end

-- The CUDA plan's arena peak of program `name` (0 without the cuda target).
local function cuda_peak(plans, name)
    local p = plans.cuda and plans.cuda[name]
    return clit.size(p and p.peak or 0)
end

-- The device bytes of program `name`'s weights as the CUDA plugin uploads them (0 without the cuda target).
local function cuda_weights(plans, name)
    local p = plans.cuda and plans.cuda[name]
    return clit.size(p and cuda_emitters[name].weight_device_bytes(p.graph) or 0)
end

-- TeaCache's device buffers of program `name` (runtime/cuda/dit_cuda.c teacache_open: the tokens and two residuals,
-- each the CUDA plan's tokens slot padded to 256 bytes; 0 without the cuda target).
local function cuda_teacache(plans, name)
    local p = plans.cuda and plans.cuda[name]
    if not p then return clit.size(0) end
    local each = (p.by_tensor[p.graph.exposed.tokens.id].bytes + 255) // 256 * 256
    return clit.size(3 * each)
end

-- TeaCache's rescale polynomial as a C initializer.
local function poly(coefficients)
    local parts = {}
    for i, x in ipairs(coefficients) do parts[i] = clit.f64(x) end
    return "{ " .. table.concat(parts, ", ") .. " }"
end

-- The forward's FLOPs at L tokens as c + a L + b L^2 (the prompt part not counted): "{c, a, b}", fitted
-- exactly from the counts at 0, Lmax / 2 and Lmax tokens (the count is a polynomial of degree 2 in L:
-- linear layers and cross-attention grow with L, self-attention with L^2).
local function flops_by_tokens(g, max_tokens)
    local m = max_tokens
    local c = graph.flops(g, "context", { L = 0 })
    local half, full = graph.flops(g, "context", { L = m / 2 }), graph.flops(g, "context", { L = m })
    local b = (full - 2 * half + c) * 2 / (m * m)
    local a = (full - c - b * m * m) / m
    return string.format("{%.17g, %.17g, %.17g}", c, a, b)
end

-- static const sky_dit_program dit_forward, or dit_forward_usp (name; the Ulysses form: its CPU part functions take
-- the ranks' collectives, program.h; it reads dit_forward's weights table, the same weights in the same order). The
-- CUDA sizes are the program's own plan's (arena, prompt, TeaCache); the weights', blocks' and fp8 sizes dit_forward's,
-- as the plugin uploads them once for both (runtime/cuda/dit_cuda.c use_comm).
local function dit_program(w, s, plans, name)
    local d, r = s.dit, s.derived
    local p = plans.cpu[name]
    local usp = name == "dit_forward_usp"
    local pc = plans.cuda and plans.cuda.dit_forward
    local pu = plans.cuda and plans.cuda[name]
    w:open(string.format("static const sky_dit_program %s = {", name))
    w:line(".dim = %d, .ffn_dim = %d, .num_heads = %d, .num_layers = %d, .freq_dim = %d,",
           d.dim, d.ffn_dim, d.num_heads, d.num_layers, d.freq_dim)
    w:line(".text_len = %d, .text_dim = %d,", d.text_len, d.text_dim)
    w:line(".image_len = %d, .image_dim = %d,", r.image_tokens, d.image_dim or 0)
    if r.has_image then w:line(".num_images = %d,", r.num_images) end
    w:line(".x_channels = %d, .y_channels = %d, .out_dim = %d,", r.x_channels, r.y_channels, d.out_dim)
    w:line(".lat_h = %d, .lat_w = %d, .max_frames = %d,", r.lat_h, r.lat_w, r.max_frames)
    w:line(".patch_t = %d, .patch_h = %d, .patch_w = %d,", r.patch_t, r.patch_h, r.patch_w)
    w:line(".inject_sample_info = %d,", d.inject_sample_info and 1 or 0)
    w:line(".arena_bytes = %s, .prompt_bytes = %s,", clit.size(p.peak), clit.size(p.prompt_bytes))
    w:line(".cuda_arena_bytes = %s, .cuda_prompt_bytes = %s,", cuda_peak(plans, name), clit.size(pu and pu.prompt_bytes or 0))
    w:line(".cuda_weight_bytes = %s, .cuda_teacache_bytes = %s,", cuda_weights(plans, "dit_forward"),
           cuda_teacache(plans, name))
    local block_bytes, n_blocks = 0, 0
    if pc then block_bytes, n_blocks = cuda_emitters.dit_forward.block_device_bytes(pc.graph) end
    w:line(".cuda_block_bytes = %s, .cuda_blocks = %d,", clit.size(block_bytes), n_blocks)
    local fp8_bf16, fp8_bytes, fp8_block = 0, 0, 0
    if pc then fp8_bf16, fp8_bytes, fp8_block = cuda_emitters.dit_forward.fp8_device_bytes(pc.graph) end
    w:line(".cuda_fp8_bf16_bytes = %s, .cuda_fp8_bytes = %s, .cuda_fp8_block_bytes = %s,", clit.size(fp8_bf16),
           clit.size(fp8_bytes), clit.size(fp8_block))
    -- (dit_forward_usp: the whole forward's, dit_forward's count; each of P ranks does about 1 / P of it)
    local fg = plans.cpu.dit_forward.graph
    w:line(".flops = %s,   /* one call at the largest window, GEMMs + attention, the prompt's part not counted */",
           string.format("%.17g", graph.flops(fg, "context")))
    w:line(".prompt_flops = %s,", string.format("%.17g", graph.flops(fg) - graph.flops(fg, "context")))
    w:line(".flops_by_tokens = %s,", flops_by_tokens(fg, r.max_tokens))
    for _, name in ipairs({ "x", "y", "t", "context", "clip_fea", "fps", "v" }) do
        w:line(".%s = %s,", name, slot(p, name))
    end
    w:line(".n_weights = %d,", #p.graph.weights)
    w:line(".weights = dit_forward_weights,")   -- (dit_forward_usp: the same table)
    assert(table.concat(p.graph.parts, " ") == "context embed blocks head", "emit/variant: dit_forward's parts changed")
    if usp then
        local plain = plans.cpu.dit_forward.graph.weights
        for i, wt in ipairs(p.graph.weights) do
            assert(plain[i].name == wt.name, "emit/variant: dit_forward_usp's weights differ from dit_forward's")
        end
        w:line(".context_usp = dit_forward_usp_context_cpu, .embed_usp = dit_forward_usp_embed_cpu,")
        w:line(".blocks_usp = dit_forward_usp_blocks_cpu, .head_usp = dit_forward_usp_head_cpu,")
        local ranks = {}
        for i, n in ipairs(require("programs.dit").usp_ranks(s)) do ranks[i] = tostring(n) end
        assert(#ranks < 16, "emit/variant: more rank counts than program.h's usp_ranks holds")
        w:line(".usp_ranks = { %s },   /* the rank counts it takes: 2 .. heads, dividing the heads */",
               table.concat(ranks, ", "))
    else
        w:line(".context_cpu = dit_forward_context_cpu, .embed_cpu = dit_forward_embed_cpu,")
        w:line(".blocks_cpu = dit_forward_blocks_cpu, .head_cpu = dit_forward_head_cpu,")
        if plans.cpu.dit_forward_usp then w:line(".usp = &dit_forward_usp,") end
    end
    for _, name in ipairs({ "tokens", "hidden", "e", "e0" }) do
        w:line(".%s = %s,", name, slot(p, p.graph.exposed[name].name))
    end
    if s.teacache then
        w:line(".has_teacache = 1,")
        w:line(".teacache_coef = { %s,", poly(s.teacache.coefficients))
        w:line("                   %s },", poly(s.teacache.ret_coefficients))
    end
    w:close("};")
    w:blank()
end

-- vae_decode's clamp input (the video before the clamp to [-1, 1]) as a slot: it is the last op's input, and its
-- buffer does not overlap the output's, so it still holds the unclamped video after a call (the tiled decode,
-- runtime/models/vae.c, blends the tiles before clamping, as diffusers does). vae_decode_tile's output (it has no
-- clamp); "{0, 0}" for vae_encode and vae_encode_tile.
local function unclamped_slot(vp)
    local g = vp.graph
    local last = g.nodes[#g.nodes]
    if last.op == "video_out" then return slot(vp, g.outputs[1].name) end
    if last.op ~= "clamp" or last.out ~= g.outputs[1] then return "{0, 0}" end
    local a, b = vp.by_tensor[last.ins[1].id], vp.by_tensor[last.out.id]
    assert(a.offset + a.bytes <= b.offset or b.offset + b.bytes <= a.offset,
           "emit/variant: vae_decode's clamp input shares its buffer with the output")
    return slot(vp, last.ins[1].name)
end

-- The untiled program whose weights table a tile program shares (the same builder, the same weights in order).
local tile_of = { vae_decode_tile = "vae_decode", vae_encode_tile = "vae_encode" }

-- static const sky_vae_program vae_decode / vae_encode / vae_decode_tile / vae_encode_tile.
local function vae_program(w, s, plans, name)
    local vp, r = plans.cpu[name], s.derived
    local decode = name == "vae_decode" or name == "vae_decode_tile"
    w:open(string.format("static const sky_vae_program %s = {", name))
    w:line(".z_dim = %d, .lat_h = %d, .lat_w = %d, .height = %d, .width = %d,", s.vae.z_dim, r.lat_h, r.lat_w,
           s.video.height, s.video.width)
    w:line(".stride_t = %d, .stride_s = %d,", r.vae_stride_t, r.vae_stride_s)
    w:line(".arena_bytes = %s, .cuda_arena_bytes = %s,", clit.size(vp.peak), cuda_peak(plans, name))
    w:line(".cuda_weight_bytes = %s,", cuda_weights(plans, name))
    w:line(".in = %s, .out = %s,", slot(vp, decode and "z" or "video"), slot(vp, decode and "video" or "z"))
    w:line(".out_unclamped = %s,", unclamped_slot(vp))
    w:line(".n_weights = %d,", #vp.graph.weights)
    w:line(".weights = %s_weights,", tile_of[name] or name)
    w:line(".forward_cpu = %s_cpu,", name)
    w:line(".reset_cpu = %s_cpu_reset,", name)
    w:line(".flops = %s,   /* one call at its largest (4 video frames), convolutions + attention */",
           string.format("%.17g", graph.flops(vp.graph)))
    if tile_of[name] then
        w:line(".tile = %d,   /* latents: a call's latent H and W at most this (the spec's vae.tile_px / %d) */",
               s.vae.tile_px // r.vae_stride_s, r.vae_stride_s)
    end
    w:close("};")
    w:blank()
end

-- How each encoder is described: its sizes, input and output slot names.
local encoders = {
    text_encode = { sizes = function(s) return string.format(".rows = %d, .dim = %d, .vocab = %d,", s.dit.text_len,
                                                             s.t5.dim, s.t5.vocab) end,
                    input = "ids", output = "context" },
    clip_encode = { sizes = function(s) return string.format(".rows = %d, .dim = %d, .image_size = %d,",
                                                             s.dit.image_len, s.clip.dim, s.clip.image_size) end,
                    input = "pixels", output = "clip_fea" },
}

-- static const sky_encoder_program text_encode / clip_encode.
local function encoder_program(w, s, plans, name)
    local ep, e = plans.cpu[name], encoders[name]
    w:open(string.format("static const sky_encoder_program %s = {", name))
    w:line("%s", e.sizes(s))
    w:line(".arena_bytes = %s, .cuda_arena_bytes = %s,", clit.size(ep.peak), cuda_peak(plans, name))
    w:line(".cuda_weight_bytes = %s,", cuda_weights(plans, name))
    w:line(".in = %s, .out = %s,", slot(ep, e.input), slot(ep, e.output))
    w:line(".n_weights = %d,", #ep.graph.weights)
    w:line(".weights = %s_weights,", name)
    w:line(".forward_cpu = %s_cpu,", name)
    w:line(".flops = %s,   /* one call at its largest (every token), GEMMs + attention */",
           string.format("%.17g", graph.flops(ep.graph)))
    w:close("};")
    w:blank()
end

-- const sky_variant_desc sky_variant: the spec, its hashes, the sampler defaults, the programs.
local function variant_desc(w, s, plans, ctx, counts_expr)
    w:open("const sky_variant_desc sky_variant = {")
    w:line(".name = %s,", clit.str(s.variant))
    w:line(".family = SKY_FAMILY_%s,", s.family:upper())
    w:line(".spec_path = %s,", clit.str(ctx.spec_rel))
    w:line(".spec_xxh64 = %s,", clit.str(ctx.spec_hash))
    w:line(".generator_xxh64 = %s,", clit.str(ctx.generator_hash))
    w:line(".has_cuda = %d,", s.targets.cuda and 1 or 0)
    w:line(".steps = %d, .shift = %s, .guidance = %s,", s.sampler.steps, clit.f64(s.sampler.shift),
           clit.f64(s.sampler.guidance))
    w:line(".height = %d, .width = %d, .base_num_frames = %d,", s.video.height, s.video.width,
           s.video.base_num_frames)
    w:line(".vae_stride_t = %d, .vae_stride_s = %d,", s.derived.vae_stride_t, s.derived.vae_stride_s)
    w:line(".dit = &dit_forward,")
    for _, name in ipairs({ "vae_decode", "vae_encode", "text_encode", "clip_encode" }) do
        w:line(".%s = %s,", name, plans.cpu[name] and ("&" .. name) or "NULL")
    end
    w:line(".counts = %s,", counts_expr)
    w:line(".vae_decode_tile = %s,", plans.cpu.vae_decode_tile and "&vae_decode_tile" or "NULL")
    w:line(".vae_encode_tile = %s,", plans.cpu.vae_encode_tile and "&vae_encode_tile" or "NULL")
    w:close("};")
end

-- Add gen/variant.c to `files`, from plans (both backends': lower.lua, plan.lua).
function variant.emit(s, plans, files, ctx)
    local w = cwriter.new()
    local lines = {}
    for _, name in ipairs(sorted.keys(plans.cpu)) do
        lines[#lines + 1] = string.format("weights    %d tensors of %s (original name, diffusers name, shape)",
                                          #plans.cpu[name].graph.weights, name)
    end
    w:raw(header.c_comment(s, ctx, "gen/variant.c", lines))
    w:line("#include \"models/program.h\"")
    w:blank()
    for _, name in ipairs(sorted.keys(plans.cpu)) do
        local g = plans.cpu[name].graph
        for _, part in ipairs(g.parts) do w:line("%s;", c.prototype(g, part)) end
        if #g.parts == 0 then w:line("%s;", c.prototype(g)) end
        if #g.states > 0 then w:line("void %s_cpu_reset(unsigned char *arena);", g.name) end
    end
    w:blank()
    for _, name in ipairs(sorted.keys(plans.cpu)) do
        if name ~= "dit_forward_usp" and not tile_of[name] then weights_table(w, plans.cpu[name].graph) end
    end
    for _, name in ipairs(sorted.keys(tile_of)) do   -- the same builder, the same weights in the same order
        if plans.cpu[name] then
            local plain, of = plans.cpu[tile_of[name]].graph.weights, tile_of[name]
            assert(#plain == #plans.cpu[name].graph.weights, "emit/variant: " .. name .. "'s weights differ from " .. of .. "'s")
            for i, wt in ipairs(plans.cpu[name].graph.weights) do
                assert(plain[i].name == wt.name, "emit/variant: " .. name .. "'s weights differ from " .. of .. "'s")
            end
        end
    end
    if plans.cpu.dit_forward_usp then dit_program(w, s, plans, "dit_forward_usp") end
    dit_program(w, s, plans, "dit_forward")
    for _, name in ipairs({ "vae_decode", "vae_encode", "vae_decode_tile", "vae_encode_tile" }) do
        if plans.cpu[name] then vae_program(w, s, plans, name) end
    end
    for _, name in ipairs({ "text_encode", "clip_encode" }) do
        if plans.cpu[name] then encoder_program(w, s, plans, name) end
    end
    variant_desc(w, s, plans, ctx, counts.emit(w, plans))      -- the CUDA lowering's counts (gen/count.lua)
    files["gen/variant.c"] = w:text()
end

return variant
