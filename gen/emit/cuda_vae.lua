-- gen/emit/cuda_vae.lua
-- ======================
-- The CUDA backend of vae_decode and vae_encode: fp32 storage as the original (SkyReels runs the VAE
-- in fp32), convolutions on the tensor cores in tf32 (what PyTorch's default cuDNN convolutions do),
-- one arena per program (plan.lua), the per-layer caches kept in it between calls.
--
-- Layout: activations are channels-last on the GPU, [T][H][W][C] (the implicit-GEMM convolution reads
-- contiguous channels), the graph's dims [C, T, H, W] giving the same sizes. The program's input and
-- output keep the runtime's channels-first layout; the first and last kernels convert.
--
-- The CUDA view of a VAE graph is lower.lua's (rms_norm_ch + silu fused, attention_frames as attn_qk
-- and attn_pv, video_cl before the encoder's first conv, whose weights are padded with zeros).
-- Files written (relative to out/<variant>/), for each program P, through the skeleton of emit/cuda.lua:
--   gen/P_kernels.cu, gen/P_kernels_src.c   as for dit_forward
--   gen/P_cuda.c                            the tables and the launch sequence of one call (one chunk)

local clit     = require("lib.clit")
local graph    = require("graph")
local plan     = require("plan")
local schedule = require("schedule_sm90")
local cuda     = require("emit.cuda")

local cuda_vae = {}

local ident, ptr, wptr, elementwise, elementwise_op = cuda.ident, cuda.ptr, cuda.wptr, cuda.elementwise,
                                                     cuda.elementwise_op

-- Positions (T * H * W) of a [C, T, H, W] tensor, as a C expression.
local function positions(t)
    return string.format("(long long)%s * %s * %s", cuda.dim_expr(t.dims[2]), cuda.dim_expr(t.dims[3]),
                         cuda.dim_expr(t.dims[4]))
end
local function thw(t) return cuda.dim_expr(t.dims[2]), cuda.dim_expr(t.dims[3]), cuda.dim_expr(t.dims[4]) end

-- Per-channel constants as float literals: "-0.7571f, ...", and fp32(1 / fp32(std)) (§1.6).
local function f32_list(values, map)
    local parts = {}
    for i, v in ipairs(values) do parts[i] = clit.f32(map and map(v) or v) end
    return table.concat(parts, ", ")
end
local function inv_f32(x) return 1.0 / string.unpack("<f", string.pack("<f", x)) end

-- The conv kernel's column tile (templates/cuda/conv_tf32.cu.in: BN of 16, 32, 64 or 96 output channels):
-- the largest that divides cout, else the one that wastes the smallest share of its columns (the larger on
-- a tie). 96, 192, 384 and 768 channels waste none; the decoder's 3-channel output uses 16.
local CONV_BN = { 96, 64, 32, 16 }
local function conv_bn(cout)
    for _, bn in ipairs(CONV_BN) do
        if cout % bn == 0 then return bn end
    end
    local best, best_use = nil, -1
    for _, bn in ipairs(CONV_BN) do
        local use = cout / (((cout + bn - 1) // bn) * bn)
        if use > best_use then best, best_use = bn, use end
    end
    return best
end

-- Dynamic shared memory of a conv kernel with column tile bn: 3 stages of 128 + bn rows of 16 floats;
-- CONV_SMEM, the most any takes, is what the runtime allows every conv kernel.
local function conv_smem(bn) return 3 * (128 + bn) * 16 * 4 end
local CONV_SMEM = conv_smem(CONV_BN[1])

-- The op of one conv_tf32 launch (and what its template needs). geo: KT, KH, KW, NC, ST, SH, SW, PH, PW,
-- SPLIT; T: output frames computed; io: { y (the output, cuda.out), x, cache, HO, WO, H, W } as C.
-- One block per (row tile, column tile), column tiles fastest (the template's numbering).
local function conv(E, cin, cout, geo, w, b, T, io)
    local bn = conv_bn(cout)
    local k = E:kernel("conv_tf32", { CIN = cin, COUT = cout, KT = geo.KT, KH = geo.KH, KW = geo.KW, NC = geo.NC,
                                      ST = geo.ST, SH = geo.SH, SW = geo.SW, PH = geo.PH, PW = geo.PW,
                                      SPLIT = geo.SPLIT or 0, BN = bn })
    return cuda.op(k, string.format("CDIV((long long)%s * %s * %s, 128) * %d", T, io.HO, io.WO, (cout + bn - 1) // bn), "1",
                   128, tostring(conv_smem(bn)), io.y, { io.x, io.cache, wptr(w), wptr(b), "INT(" .. T .. ")",
                                                        "INT(" .. io.H .. ")", "INT(" .. io.W .. ")",
                                                        "INT(" .. io.HO .. ")", "INT(" .. io.WO .. ")" })
end

-- The new cache of a causal conv: the last nc frames of [cache ++ x] (x: T frames of H x W x C).
local function cache_update(E, nc, cache, x, T, H, W, C)
    local k = E:kernel("cache_update", { NC = nc })
    local n = string.format("(long long)%s * %s * %d", H, W, C)
    return elementwise(k, n, { ptr(cache), ptr(x), "INT(" .. T .. ")", "LL(" .. n .. ")" })
end

-- ---- the C lines of each op (op -> function(n, E)) ------------------------------------------------

local emit = {}

-- A per-position kernel over the z channels of x with per-channel tables (one instance per program).
local function per_channel(template)
    return function(n, E)
        local a, x = n.attrs, n.ins[1]
        local k = E:kernel(template, { Z = a.z, MEAN = f32_list(a.mean), INV_STD = f32_list(a.std, inv_f32) })
        return { elementwise_op(k, positions(x) .. " * " .. a.z, E:out(n), { ptr(x), "LL(" .. positions(x) .. ")" }) }
    end
end
emit.vae_denorm = per_channel("vae_denorm_cl")
emit.vae_normalize = per_channel("vae_normalize_cl")

emit.clamp = function(n, E)
    local x = n.ins[1]
    local C = x.dims[1]
    local k = E:kernel("clamp_cf", { C = C })
    return { elementwise_op(k, positions(x) .. " * " .. C, E:out(n), { ptr(x), "LL(" .. positions(x) .. ")" }) }
end

emit.video_out = function(n, E)
    local x = n.ins[1]
    local C = x.dims[1]
    local k = E:kernel("video_cf", { C = C })
    return { elementwise_op(k, positions(x) .. " * " .. C, E:out(n), { ptr(x), "LL(" .. positions(x) .. ")" }) }
end

emit.video_cl = function(n, E)
    local a, x = n.attrs, n.ins[1]
    local k = E:kernel("video_cl", { CIN = a.cin, CP = a.cp })
    return { elementwise_op(k, positions(x) .. " * " .. a.cp, E:out(n), { ptr(x), "LL(" .. positions(x) .. ")" }) }
end

emit.conv1x1 = function(n, E)
    local a, x = n.attrs, n.ins[1]
    local i = E:gemm({ m_max = graph.max_elems(E.g, x) // a.cin, n = a.cout, k = a.cin, a_dtype = "SKY_GEMM_TF32",
                       out_dtype = "SKY_GEMM_F32", epilogue = "SKY_GEMM_EPI_BIAS" }, cuda.gemm_role(a.weight.name))
    return { string.format("GEMM(%s, %s, OFF_%s, W_%s, W_%s, %s);", i, positions(x), ident(x.name),
                           ident(a.weight.name), ident(a.bias.name), E:out(n)) }
end

emit.causal_conv3 = function(n, E)
    local a, x, cache = n.attrs, n.ins[1], n.ins[2]
    local T, H, W = thw(x)
    local cin = a.cin_storage or a.cin
    local geo = { KT = 3, KH = 3, KW = 3, NC = 2, ST = 1, SH = 1, SW = 1, PH = 1, PW = 1 }
    return { conv(E, cin, a.cout, geo, a.weight, a.bias, T,
                  { y = E:out(n), x = ptr(x), cache = ptr(cache), H = H, W = W, HO = H, WO = W }),
             cache_update(E, 2, cache, x, T, H, W, cin) }
end

emit.rms_norm_ch = function(n, E)
    local a, x = n.attrs, n.ins[1]
    local k = E:kernel("rms_norm_cl", { C = a.c, SILU = a.silu and 1 or 0 })
    return { cuda.op(k, string.format("CDIV(%s, 8)", positions(x)), 1, 256, 0, E:out(n),
                     { ptr(x), wptr(a.gamma), "LL(" .. positions(x) .. ")" }) }
end

emit.silu = function(n, E)
    local x = n.ins[1]
    local k = E:kernel("activation", { FN = "silu", TX = "float", TY = "float" })
    local cnt = positions(x) .. " * " .. x.dims[1]
    return { elementwise_op(k, cnt, E:out(n), { ptr(x), "LL(" .. cnt .. ")" }) }
end

emit.add = function(n, E)
    local x = n.ins[1]
    local k = E:kernel("add", { TA = "float", TB = "float", TY = "float" })
    local cnt = positions(x) .. " * " .. x.dims[1]
    return { elementwise_op(k, cnt, E:out(n), { ptr(x), ptr(n.ins[2]), "LL(" .. cnt .. ")" }) }
end

-- Attention among the N = H * W tokens of each frame f of T: qkv rows of 3C (q, k, v at columns 0, C, 2C).
-- The frame's offset into qkv, its token count as C, and the largest N.
local function frame_attention(n, E, qkv)
    local C = n.attrs.c
    local T, H, W = thw(qkv)
    local N = string.format("%s * %s", H, W)
    local maxN = graph.max_dim(E.g, qkv.dims[3]) * graph.max_dim(E.g, qkv.dims[4])
    return T, N, maxN, string.format("(size_t)f * %s * %d * 4", N, 3 * C)
end

-- vae_decode_tile (E.g.tile): the token count N = H * W changes from call to call (a tile at the frame's edge is
-- smaller), while the GEMMs' strides are fixed when they are built: S = Q K^T is [N, N] at a row stride of maxN,
-- the GEMMs take N as their n or k at each call (GEMM_DIMS), the softmax its row stride (softmax_rows_ld).
local function tile_attn_qk(n, E, C, qkv, T, N, maxN, frame_qkv)
    local i = E:gemm({ m_max = maxN, n = maxN, k = C, a_dtype = "SKY_GEMM_F32", out_dtype = "SKY_GEMM_F32",
                       epilogue = "SKY_GEMM_EPI_NONE", ldx = 3 * C, ldw = 3 * C, ldy = maxN },
                     cuda.gemm_role(n.out.name:gsub("%.scores$", "")) .. ".qk")
    local k = E:kernel("softmax_rows_ld", {})
    local S = string.format("OFF_%s + (size_t)f * %s * %d * 4", ident(n.out.name), N, maxN)
    return {
        string.format("for (int f = 0; f < %s; f++) {", T),
        string.format("    GEMM_DIMS(%s, %s, %s, %d, OFF_%s + %s, OFF_%s + %s + %d, %s);  /* S = Q K^T */", i, N, N, C,
                      ident(qkv.name), frame_qkv, ident(qkv.name), frame_qkv, 4 * C, S),
        string.format("    LAUNCH(%s, %s, 1, 256, 0, PTR(%s), INT(%s), INT(%d), FLT(%s));", k, N, S, N, maxN,
                      clit.f32(1.0 / math.sqrt(C))),
        "}",
    }
end

local function tile_attn_pv(n, E, C, scores, qkv, T, N, maxN, frame_qkv)
    local i = E:gemm({ m_max = maxN, n = C, k = maxN, a_dtype = "SKY_GEMM_F32", out_dtype = "SKY_GEMM_F32",
                       epilogue = "SKY_GEMM_EPI_NONE", ldx = maxN, ldw = 3 * C, w_kn = true }, cuda.gemm_role(n.out.name) .. ".pv")
    return {
        string.format("for (int f = 0; f < %s; f++) {", T),
        string.format("    GEMM_DIMS(%s, %s, %d, %s, OFF_%s + (size_t)f * %s * %d * 4, OFF_%s + %s + %d, "
                      .. "OFF_%s + (size_t)f * %s * %d * 4);  /* O = P V */", i, N, C, N, ident(scores.name), N, maxN,
                      ident(qkv.name), frame_qkv, 8 * C, ident(n.out.name), N, C),
        "}",
    }
end

emit.attn_qk = function(n, E)
    local C, qkv = n.attrs.c, n.ins[1]
    local T, N, maxN, frame_qkv = frame_attention(n, E, qkv)
    if E.g.tile then return tile_attn_qk(n, E, C, qkv, T, N, maxN, frame_qkv) end
    local i = E:gemm({ m_max = maxN, n = maxN, k = C, a_dtype = "SKY_GEMM_F32", out_dtype = "SKY_GEMM_F32",
                       epilogue = "SKY_GEMM_EPI_NONE", ldx = 3 * C, ldw = 3 * C },
                     cuda.gemm_role(n.out.name:gsub("%.scores$", "")) .. ".qk")
    local k = E:kernel("softmax_rows", {})
    local S = string.format("OFF_%s + (size_t)f * %s * %s * 4", ident(n.out.name), N, N)
    return {
        string.format("for (int f = 0; f < %s; f++) {", T),
        string.format("    GEMM_ACT(%s, %s, OFF_%s + %s, OFF_%s + %s + %d, %s);  /* S = Q K^T */", i, N, ident(qkv.name),
                      frame_qkv, ident(qkv.name), frame_qkv, 4 * C, S),
        string.format("    LAUNCH(%s, %s, 1, 256, 0, PTR(%s), INT(%s), FLT(%s));", k, N, S, N, clit.f32(1.0 / math.sqrt(C))),
        "}",
    }
end

emit.attn_pv = function(n, E)
    local C, scores, qkv = n.attrs.c, n.ins[1], n.ins[2]
    local T, N, maxN, frame_qkv = frame_attention(n, E, qkv)
    if E.g.tile then return tile_attn_pv(n, E, C, scores, qkv, T, N, maxN, frame_qkv) end
    local i = E:gemm({ m_max = maxN, n = C, k = maxN, a_dtype = "SKY_GEMM_F32", out_dtype = "SKY_GEMM_F32",
                       epilogue = "SKY_GEMM_EPI_NONE", ldx = 0, ldw = 3 * C, w_kn = true }, cuda.gemm_role(n.out.name) .. ".pv")
    return {
        string.format("for (int f = 0; f < %s; f++) {", T),
        string.format("    GEMM_ACT(%s, %s, OFF_%s + (size_t)f * %s * %s * 4, OFF_%s + %s + %d, "
                      .. "OFF_%s + (size_t)f * %s * %d * 4);  /* O = P V */", i, N, ident(scores.name), N, N,
                      ident(qkv.name), frame_qkv, 8 * C, ident(n.out.name), N, C),
        "}",
    }
end

-- The time convs skip the first chunk (a copy); geo as conv(); up doubles the frames (SPLIT), down halves
-- them and updates its cache on every chunk.
emit.time_conv_up = function(n, E)
    local a, x, cache = n.attrs, n.ins[1], n.ins[2]
    local T, H, W = thw(x)
    local cnt = string.format("(long long)%s * %s * %s * %d", T, H, W, a.c)
    local geo = { KT = 3, KH = 1, KW = 1, NC = 2, ST = 1, SH = 1, SW = 1, PH = 0, PW = 0, SPLIT = 1 }
    return { "if (first) {",
             "    " .. elementwise_op(E:kernel("copy", {}), cnt, E:out(n), { ptr(x), "LL(" .. cnt .. ")" }),
             "} else {",
             "    " .. conv(E, a.c, 2 * a.c, geo, a.weight, a.bias, T,
                            { y = E:out(n), x = ptr(x), cache = ptr(cache), H = H, W = W, HO = H, WO = W }),
             "    " .. cache_update(E, 2, cache, x, T, H, W, a.c),
             "}" }
end

emit.time_conv_down = function(n, E)
    local a, x, cache = n.attrs, n.ins[1], n.ins[2]
    local T, H, W = thw(x)
    local cnt = string.format("(long long)%s * %s * %s * %d", T, H, W, a.c)
    local geo = { KT = 3, KH = 1, KW = 1, NC = 1, ST = 2, SH = 1, SW = 1, PH = 0, PW = 0 }
    return { "if (first) {",
             "    " .. elementwise_op(E:kernel("copy", {}), cnt, E:out(n), { ptr(x), "LL(" .. cnt .. ")" }),
             "} else {",
             "    " .. conv(E, a.c, a.c, geo, a.weight, a.bias, T .. " / 2",
                            { y = E:out(n), x = ptr(x), cache = ptr(cache), H = H, W = W, HO = H, WO = W }),
             "}",
             cache_update(E, 1, cache, x, T, H, W, a.c) }
end

emit.upsample_nearest2x = function(n, E)
    local x = n.ins[1]
    local T, H, W = thw(x)
    local C = x.dims[1]
    local k = E:kernel("upsample2x_cl", { C = C })
    local cnt = string.format("(long long)%s * 4 * %s * %s * %d", T, H, W, C)
    return { elementwise_op(k, cnt, E:out(n), { ptr(x), "INT(" .. T .. ")", "INT(" .. H .. ")", "INT(" .. W .. ")" }) }
end

emit.conv2d_k3 = function(n, E)
    local a, x = n.attrs, n.ins[1]
    local T, H, W = thw(x)
    local geo = { KT = 1, KH = 3, KW = 3, NC = 0, ST = 1, SH = 1, SW = 1, PH = 1, PW = 1 }
    return { conv(E, a.cin, a.cout, geo, a.weight, a.bias, T,
                  { y = E:out(n), x = ptr(x), cache = ptr(x), H = H, W = W, HO = H, WO = W }) }
end

emit.conv2d_k3_s2 = function(n, E)
    local a, x = n.attrs, n.ins[1]
    local T, H, W = thw(x)
    local geo = { KT = 1, KH = 3, KW = 3, NC = 0, ST = 1, SH = 2, SW = 2, PH = 0, PW = 0 }
    return { conv(E, a.c, a.c, geo, a.weight, a.bias, T,
                  { y = E:out(n), x = ptr(x), cache = ptr(x), H = H, W = W, HO = H .. " / 2", WO = W .. " / 2" }) }
end

-- ---- the file -------------------------------------------------------------------------------------

-- The convolutions' weights, per op: (cin, cin as stored, cout) from the node's attributes.
local conv_weights = {
    causal_conv3   = function(a) return a.cin, a.cin_storage or a.cin, a.cout end,
    conv2d_k3      = function(a) return a.cin, a.cin, a.cout end,
    conv2d_k3_s2   = function(a) return a.c, a.c, a.c end,
    time_conv_up   = function(a) return a.c, a.c, 2 * a.c end,
    time_conv_down = function(a) return a.c, a.c, a.c end,
}


-- How each weight is uploaded: convolution kernels with their input channel moved last (and padded
-- to the stored channel count); everything else as it is.
local function weight_layouts(g)
    local lay = {}
    for _, n in ipairs(g.nodes) do
        local cw = conv_weights[n.op]
        if cw then
            local cin, cin_pad, cout = cw(n.attrs)
            local shape = n.attrs.weight.shape
            local taps = 1
            for i = 3, #shape do taps = taps * shape[i] end
            lay[n.attrs.weight.name] = { cout = cout, cin = cin, taps = taps, cin_pad = cin_pad }
        end
    end
    return lay
end

-- The device bytes of the program's weights as the plugin uploads them (runtime/cuda/vae_cuda.c: fp32, the
-- convolution kernels padded to cin_pad input channels; each padded to 256 bytes, in one allocation).
function cuda_vae.weight_device_bytes(g)
    local lay, total = weight_layouts(g), 0
    for _, wt in ipairs(g.weights) do
        local l, n = lay[wt.name], 1
        if l then n = l.cout * l.taps * l.cin_pad
        else for _, d in ipairs(wt.shape) do n = n * d end end
        total = total + (n * 4 + 255) // 256 * 256
    end
    return total
end

-- The launch sequence's hooks: a section per encoder/decoder stage, a comment per op, and each output's
-- channels-last width for --trace.
local hooks = {
    section = function(n)
        local name = n.out.name
        return name:match("^(%a+coder%.%a+%.%d+)%.") or name:match("^(%a+coder%.middle)%.")
               or name:match("^(%a+coder%.head)%.") or "input / output"
    end,
    comment = function(n) return cuda.node_comment(n, n.attrs.silu and "silu", false) end,
    -- channels-last [T, H, W, C] tensors are traced with their channel count, so the trace holds them in
    -- the CPU backend's [C, T, H, W] order; the attention scores have no CPU counterpart; clamp and
    -- vae_normalize (and video_out) write channels-first
    cl = function(n)
        if n.op == "clamp" or n.op == "video_out" or n.op == "vae_normalize" or n.op == "attn_qk" or #n.out.dims ~= 4 then
            return 0
        end
        return n.out.dims[1]
    end,
}

-- The upload layouts and the caches' slots of E's program into writer h.
local function weight_and_state_tables(h, E)
    local g, p, name = E.g, E.p, E.g.name
    local lay = weight_layouts(g)
    h:line("/* how each weight is uploaded: {cout, cin, taps, cin_pad} moves a conv kernel's input channel last")
    h:line(" * ([cout][cin][taps] -> [cout][taps][cin_pad], zeros past cin); {0, 0, 0, 0}: as stored */")
    h:open(string.format("const sky_weight_layout %s_weight_layout[%d] = {", name, #g.weights))
    for _, wt in ipairs(g.weights) do
        local l = lay[wt.name]
        if l then h:line("{%d, %d, %d, %d}, /* %s */", l.cout, l.cin, l.taps, l.cin_pad, clit.comment(wt.name))
        else h:line("{0, 0, 0, 0}, /* %s */", clit.comment(wt.name)) end
    end
    h:close("};")
    h:blank()
    h:line("/* the caches kept between calls: zeroed at the start of every sequence */")
    h:open(string.format("const sky_slot %s_states[%d] = {", name, #g.states))
    for _, t in ipairs(g.states) do
        local b = p.by_tensor[t.id]
        h:line("{%s, %s}, /* %s */", clit.size(b.offset), clit.size(b.bytes), clit.comment(t.name))
    end
    h:close("};")
    h:blank()
end

-- Emit one VAE program's CUDA files from its plan p (of the lowered graph).
function cuda_vae.emit(s, p, files, ctx)
    local E = cuda.program_state(s, p, ctx)
    local g, name = p.graph, p.graph.name
    local bodies = cuda.launch_sequence(E, emit, hooks)
    cuda.write_kernels(E, ctx, files)

    local h = cuda.file_open(E, ctx, {
        string.format("program    %s (cuda): %d ops per call (one chunk), fp32 channels-last, convs in tf32", name,
                      #g.nodes),
        string.format("arena      %s bytes (see plan_cuda.txt)", plan.commas(p.peak)),
    })
    h:line("/* dynamic shared memory of the conv kernel (templates/cuda/conv_tf32.cu.in) */")
    h:line("#define CONV_SMEM %d", CONV_SMEM)
    h:blank()
    cuda.offsets(h, "arena offsets (bytes), from gen/plan.lua (fp32)", p.buffers, 48)
    cuda.tables(h, E)
    weight_and_state_tables(h, E)
    cuda.record_function(h, g, name .. "_cuda_record", bodies.all:text(),
                         "One call (one chunk), launched on stream s (captured into a CUDA Graph by the runtime).")
    cuda.desc_open(h, E, "sky_vae_cuda_desc", true)
    h:line(".n_weights = %d, .weight_layout = %s_weight_layout,", #g.weights, name)
    h:line(".arena_bytes = %s, .conv_smem = CONV_SMEM,", clit.size(p.peak))
    h:line(".in = %s, .out = %s,", cuda.slot(p, g.inputs[1]), cuda.slot(p, g.outputs[1]))
    h:line(".n_states = %d, .states = %s_states,", #g.states, name)
    h:line(".record = %s_cuda_record,", name)
    h:close("};")
    files["gen/" .. name .. "_cuda.c"] = h:text()
end

return cuda_vae
