-- gen/emit_cuda_vae.lua
-- =====================
-- The CUDA backend of vae_decode and vae_encode: fp32 storage as the original (SkyReels runs the VAE
-- in fp32), convolutions on the tensor cores in tf32 (what PyTorch's default cuDNN convolutions do),
-- one arena per program planned here, the per-layer caches kept in it between calls.
--
-- Layout: activations are channels-last on the GPU, [T][H][W][C] (the implicit-GEMM convolution reads
-- contiguous channels), the graph's dims [C, T, H, W] giving the same sizes. The program's input and
-- output keep the runtime's channels-first layout; the first and last kernels convert.
--
-- The CUDA view of a VAE graph is lower.lua's (rms_norm_ch + silu fused, attention_frames as attn_qk
-- and attn_pv, video_cl before the encoder's first conv, whose weights are padded with zeros).
-- Files written (relative to out/<variant>/), for each program P:
--   gen/P_kernels.cu, gen/P_kernels_src.c   as for dit_forward (cuda_kernels.lua)
--   gen/P_cuda.c                            the tables and the launch sequence of one call (one chunk)

local clit     = require("lib.clit")
local cwriter  = require("lib.cwriter")
local graph    = require("graph")
local header   = require("header")
local plan     = require("plan")
local schedule = require("schedule_sm90")
local cuda_kernels = require("cuda_kernels")

local emit_cuda_vae = {}

local ident = cuda_kernels.ident
local THREADS = schedule.elementwise_threads

local function dim_expr(d)
    if math.type(d) == "integer" then return clit.int(d) end
    return d
end

local function ptr(t) return "PTR(OFF_" .. ident(t.name) .. ")" end
local function wptr(w) return "WPTR(W_" .. ident(w.name) .. ")" end
-- Positions (T * H * W) of a [C, T, H, W] tensor, as a C expression.
local function positions(t)
    return string.format("(long long)%s * %s * %s", dim_expr(t.dims[2]), dim_expr(t.dims[3]), dim_expr(t.dims[4]))
end
local function thw(t) return dim_expr(t.dims[2]), dim_expr(t.dims[3]), dim_expr(t.dims[4]) end

-- Per-channel constants as float literals: "-0.7571f, ...", and fp32(1 / fp32(std)) (§1.6).
local function f32_list(values, map)
    local parts = {}
    for i, v in ipairs(values) do parts[i] = clit.f32(map and map(v) or v) end
    return table.concat(parts, ", ")
end
local function inv_f32(x) return 1.0 / string.unpack("<f", string.pack("<f", x)) end

-- Elementwise launch of kernel k over n values.
local function elementwise(k, n, args)
    return string.format("LAUNCH(%s, CDIV(%s, %d), 1, %d, 0, %s);", k, n, THREADS, THREADS, table.concat(args, ", "))
end

-- ---- kernels and launches per op -------------------------------------------------------------

-- Shared memory of the conv kernel (templates/cuda/conv_tf32.cu.in: 3 stages of 128 + 64 rows of 20
-- floats).
local CONV_SMEM = 3 * (128 + 64) * 20 * 4

-- One conv_tf32 launch (and what its template needs). geo: KT, KH, KW, NC, ST, SH, SW, PH, PW, SPLIT;
-- T: output frames computed; io: { y, x, cache, HO, WO, H, W } as C expressions.
local function conv(set, cin, cout, geo, w, b, T, io)
    local consts = { CIN = cin, COUT = cout, KT = geo.KT, KH = geo.KH, KW = geo.KW, NC = geo.NC, ST = geo.ST,
                     SH = geo.SH, SW = geo.SW, PH = geo.PH, PW = geo.PW, SPLIT = geo.SPLIT or 0 }
    local k = "K_" .. ident(set:add("conv_tf32", consts))
    return string.format("LAUNCH(%s, CDIV((long long)%s * %s * %s, 128), CDIV(%d, 64), 128, CONV_SMEM, %s, %s, %s, "
                         .. "%s, %s, INT(%s), INT(%s), INT(%s), INT(%s), INT(%s));", k, T, io.HO, io.WO, cout, io.y,
                         io.x, io.cache, wptr(w), wptr(b), T, io.H, io.W, io.HO, io.WO)
end

-- The new cache of a causal conv: the last nc frames of [cache ++ x] (x: T frames of H x W x C).
local function cache_update(set, nc, cache, x, T, H, W, C)
    local k = "K_" .. ident(set:add("cache_update", { NC = nc }))
    local n = string.format("(long long)%s * %s * %d", H, W, C)
    return elementwise(k, n, { ptr(cache), ptr(x), "INT(" .. T .. ")", "LL(" .. n .. ")" })
end

local gemm_index = cuda_kernels.gemm_index

-- Statement(s) for node n: a list of C lines.
local function launches(g, n, set, gemms, gidx)
    local a = n.attrs
    local x = n.ins[1]
    if n.op == "vae_denorm" then
        local k = "K_" .. ident(set:add("vae_denorm_cl", { Z = a.z, MEAN = f32_list(a.mean),
                                                           INV_STD = f32_list(a.std, inv_f32) }, { "Z" }))
        return { elementwise(k, positions(x) .. " * " .. a.z, { ptr(n.out), ptr(x), "LL(" .. positions(x) .. ")" }) }
    elseif n.op == "vae_normalize" then
        local k = "K_" .. ident(set:add("vae_normalize_cl", { Z = a.z, MEAN = f32_list(a.mean),
                                                              INV_STD = f32_list(a.std, inv_f32) }, { "Z" }))
        return { elementwise(k, positions(x) .. " * " .. a.z, { ptr(n.out), ptr(x), "LL(" .. positions(x) .. ")" }) }
    elseif n.op == "clamp" then
        local C = x.dims[1]
        local k = "K_" .. ident(set:add("clamp_cf", { C = C }))
        return { elementwise(k, positions(x) .. " * " .. C, { ptr(n.out), ptr(x), "LL(" .. positions(x) .. ")" }) }
    elseif n.op == "video_cl" then
        local k = "K_" .. ident(set:add("video_cl", { CIN = a.cin, CP = a.cp }))
        return { elementwise(k, positions(x) .. " * " .. a.cp, { ptr(n.out), ptr(x), "LL(" .. positions(x) .. ")" }) }
    elseif n.op == "conv1x1" then
        local i = gemm_index(gemms, gidx, { m_max = graph.max_elems(g, x) // a.cin, n = a.cout, k = a.cin,
                                            a_dtype = "SKY_GEMM_TF32", out_dtype = "SKY_GEMM_F32",
                                            epilogue = "SKY_GEMM_EPI_BIAS" })
        return { string.format("GEMM(%d, %s, OFF_%s, W_%s, W_%s, OFF_%s);", i, positions(x), ident(x.name),
                               ident(a.weight.name), ident(a.bias.name), ident(n.out.name)) }
    elseif n.op == "causal_conv3" then
        local cache = n.ins[2]
        local T, H, W = thw(x)
        local cin = a.cin_storage or a.cin
        local geo = { KT = 3, KH = 3, KW = 3, NC = 2, ST = 1, SH = 1, SW = 1, PH = 1, PW = 1 }
        return { conv(set, cin, a.cout, geo, a.weight, a.bias, T,
                      { y = ptr(n.out), x = ptr(x), cache = ptr(cache), H = H, W = W, HO = H, WO = W }),
                 cache_update(set, 2, cache, x, T, H, W, cin) }
    elseif n.op == "rms_norm_ch" then
        local k = "K_" .. ident(set:add("rms_norm_cl", { C = a.c, SILU = a.silu and 1 or 0 }))
        return { string.format("LAUNCH(%s, CDIV(%s, 8), 1, 256, 0, %s, %s, %s, LL(%s));", k, positions(x),
                               ptr(n.out), ptr(x), wptr(a.gamma), positions(x)) }
    elseif n.op == "silu" then
        local k = "K_" .. ident(set:add("activation", { FN = "silu", TX = "float", TY = "float" }))
        local cnt = positions(x) .. " * " .. x.dims[1]
        return { elementwise(k, cnt, { ptr(n.out), ptr(x), "LL(" .. cnt .. ")" }) }
    elseif n.op == "add" then
        local k = "K_" .. ident(set:add("add", { TA = "float", TB = "float", TY = "float" }))
        local cnt = positions(x) .. " * " .. x.dims[1]
        return { elementwise(k, cnt, { ptr(n.out), ptr(x), ptr(n.ins[2]), "LL(" .. cnt .. ")" }) }
    elseif n.op == "attn_qk" or n.op == "attn_pv" then
        -- Per frame f of T: qkv rows of 3C (q, k, v at columns 0, C, 2C), N = H * W tokens.
        local C = a.c
        local qkv = n.op == "attn_qk" and x or n.ins[2]
        local T, H, W = thw(qkv)
        local N = string.format("%s * %s", H, W)
        local maxN = graph.max_dim(g, qkv.dims[3]) * graph.max_dim(g, qkv.dims[4])
        local frame_qkv = string.format("(size_t)f * %s * %d * 4", N, 3 * C)
        local lines = { string.format("for (int f = 0; f < %s; f++) {", T) }
        if n.op == "attn_qk" then
            local i = gemm_index(gemms, gidx, { m_max = maxN, n = maxN, k = C, a_dtype = "SKY_GEMM_F32",
                                                out_dtype = "SKY_GEMM_F32", epilogue = "SKY_GEMM_EPI_NONE",
                                                ldx = 3 * C, ldw = 3 * C })
            local k = "K_" .. ident(set:add("softmax_rows", {}))
            local S = string.format("OFF_%s + (size_t)f * %s * %s * 4", ident(n.out.name), N, N)
            lines[#lines + 1] = string.format("    GEMM_ACT(%d, %s, OFF_%s + %s, OFF_%s + %s + %d, %s);  /* S = Q K^T */",
                                              i, N, ident(qkv.name), frame_qkv, ident(qkv.name), frame_qkv, 4 * C, S)
            lines[#lines + 1] = string.format("    LAUNCH(%s, %s, 1, 256, 0, PTR(%s), INT(%s), FLT(%s));", k, N, S, N,
                                              clit.f32(1.0 / math.sqrt(C)))
        else
            local scores = x
            local i = gemm_index(gemms, gidx, { m_max = maxN, n = C, k = maxN, a_dtype = "SKY_GEMM_F32",
                                                out_dtype = "SKY_GEMM_F32", epilogue = "SKY_GEMM_EPI_NONE",
                                                ldx = 0, ldw = 3 * C, w_kn = true })
            lines[#lines + 1] = string.format("    GEMM_ACT(%d, %s, OFF_%s + (size_t)f * %s * %s * 4, OFF_%s + %s + %d, "
                                              .. "OFF_%s + (size_t)f * %s * %d * 4);  /* O = P V */", i, N,
                                              ident(scores.name), N, N, ident(qkv.name), frame_qkv, 8 * C,
                                              ident(n.out.name), N, C)
        end
        lines[#lines + 1] = "}"
        return lines
    elseif n.op == "time_conv_up" then
        local cache, C = n.ins[2], a.c
        local T, H, W = thw(x)
        local cnt = string.format("(long long)%s * %s * %s * %d", T, H, W, C)
        local copy = "K_" .. ident(set:add("copy", {}))
        local geo = { KT = 3, KH = 1, KW = 1, NC = 2, ST = 1, SH = 1, SW = 1, PH = 0, PW = 0, SPLIT = 1 }
        return { "if (first) {",
                 "    " .. elementwise(copy, cnt, { ptr(n.out), ptr(x), "LL(" .. cnt .. ")" }),
                 "} else {",
                 "    " .. conv(set, C, 2 * C, geo, a.weight, a.bias, T,
                                { y = ptr(n.out), x = ptr(x), cache = ptr(cache), H = H, W = W, HO = H, WO = W }),
                 "    " .. cache_update(set, 2, cache, x, T, H, W, C),
                 "}" }
    elseif n.op == "time_conv_down" then
        local cache, C = n.ins[2], a.c
        local T, H, W = thw(x)
        local cnt = string.format("(long long)%s * %s * %s * %d", T, H, W, C)
        local copy = "K_" .. ident(set:add("copy", {}))
        local geo = { KT = 3, KH = 1, KW = 1, NC = 1, ST = 2, SH = 1, SW = 1, PH = 0, PW = 0 }
        return { "if (first) {",
                 "    " .. elementwise(copy, cnt, { ptr(n.out), ptr(x), "LL(" .. cnt .. ")" }),
                 "} else {",
                 "    " .. conv(set, C, C, geo, a.weight, a.bias, T .. " / 2",
                                { y = ptr(n.out), x = ptr(x), cache = ptr(cache), H = H, W = W, HO = H, WO = W }),
                 "}",
                 cache_update(set, 1, cache, x, T, H, W, C) }
    elseif n.op == "upsample_nearest2x" then
        local T, H, W = thw(x)
        local C = x.dims[1]
        local k = "K_" .. ident(set:add("upsample2x_cl", { C = C }))
        local cnt = string.format("(long long)%s * 4 * %s * %s * %d", T, H, W, C)
        return { elementwise(k, cnt, { ptr(n.out), ptr(x), "INT(" .. T .. ")", "INT(" .. H .. ")", "INT(" .. W .. ")" }) }
    elseif n.op == "conv2d_k3" then
        local T, H, W = thw(x)
        local geo = { KT = 1, KH = 3, KW = 3, NC = 0, ST = 1, SH = 1, SW = 1, PH = 1, PW = 1 }
        return { conv(set, a.cin, a.cout, geo, a.weight, a.bias, T,
                      { y = ptr(n.out), x = ptr(x), cache = ptr(x), H = H, W = W, HO = H, WO = W }) }
    elseif n.op == "conv2d_k3_s2" then
        local T, H, W = thw(x)
        local geo = { KT = 1, KH = 3, KW = 3, NC = 0, ST = 1, SH = 2, SW = 2, PH = 0, PW = 0 }
        return { conv(set, a.c, a.c, geo, a.weight, a.bias, T,
                      { y = ptr(n.out), x = ptr(x), cache = ptr(x), H = H, W = W, HO = H .. " / 2", WO = W .. " / 2" }) }
    end
    error("emit_cuda_vae: no CUDA implementation of op " .. n.op)
end

-- How each weight is uploaded: convolution kernels with their input channel moved last (and padded
-- to the stored channel count); everything else as it is.
local function weight_layouts(g)
    local lay = {}
    for _, n in ipairs(g.nodes) do
        local a = n.attrs
        local function conv_weight(cin, cin_pad, cout)
            local shape = a.weight.shape
            local taps = 1
            for i = 3, #shape do taps = taps * shape[i] end
            lay[a.weight.name] = { cout = cout, cin = cin, taps = taps, cin_pad = cin_pad }
        end
        if n.op == "causal_conv3" then conv_weight(a.cin, a.cin_storage or a.cin, a.cout)
        elseif n.op == "conv2d_k3" then conv_weight(a.cin, a.cin, a.cout)
        elseif n.op == "conv2d_k3_s2" then conv_weight(a.c, a.c, a.c)
        elseif n.op == "time_conv_up" then conv_weight(a.c, a.c, 2 * a.c)
        elseif n.op == "time_conv_down" then conv_weight(a.c, a.c, a.c)
        end
    end
    return lay
end

-- Emit one VAE program's CUDA files from its plan p (of the lowered graph).
local function emit_program(s, p, files, ctx)
    local g = p.graph
    local name = g.name
    local set = cuda_kernels.new_set(ctx)
    local gemms, gidx = {}, {}
    local body = cwriter.new()
    local current
    for _, n in ipairs(g.nodes) do
        local sec = n.out.name:match("^(%a+coder%.%a+%.%d+)%.") or n.out.name:match("^(%a+coder%.middle)%.")
                    or n.out.name:match("^(%a+coder%.head)%.") or "input / output"
        if sec ~= current then
            body:blank()
            body:line("/* ---- %s %s */", sec, string.rep("-", math.max(4, 72 - #sec)))
            current = sec
        end
        local args = {}
        for i, t in ipairs(n.ins) do args[i] = t.name end
        body:line("/* %s */", clit.comment(string.format("%s = %s(%s)%s  %s", n.out.name, n.op, table.concat(args, ", "),
                  n.attrs.silu and " + silu" or "", graph.dims_text(n.out.dims))))
        for _, l in ipairs(launches(g, n, set, gemms, gidx)) do body:line("%s", l) end
        -- channels-last [T, H, W, C] tensors are traced with their channel count, so the trace holds
        -- them in the CPU backend's [C, T, H, W] order; the attention scores have no CPU counterpart
        local cl = (#n.out.dims == 4 and n.op ~= "attn_qk") and n.out.dims[1] or 0
        if n.op == "clamp" or n.op == "vae_normalize" then cl = 0 end      -- written channels-first
        body:line("TRACE(%s, OFF_%s, SKY_TRACE_F32, %s, %d);", clit.str(n.out.name), ident(n.out.name),
                  graph.numel_expr(n.out.dims), cl)
    end
    cuda_kernels.write(s, ctx, files, name, set, #gemms)

    local lay = weight_layouts(g)
    local h = cwriter.new()
    h:raw(header.c_comment(s, ctx, "gen/" .. name .. "_cuda.c", {
        string.format("program    %s (cuda): %d ops per call (one chunk), fp32 channels-last, convs in tf32", name,
                      #g.nodes),
        string.format("arena      %s bytes (see plan_cuda.txt)", plan.commas(p.peak)),
    }))
    h:line("#include <stdint.h>")
    h:blank()
    h:line("#include \"cuda_program.h\"")
    h:blank()
    h:line("/* dynamic shared memory of the conv kernel (templates/cuda/conv_tf32.cu.in) */")
    h:line("#define CONV_SMEM %d", CONV_SMEM)
    h:blank()
    h:line("/* arena offsets (bytes), from gen/plan.lua (fp32) */")
    for _, b in ipairs(p.buffers) do h:line("#define OFF_%-48s ((size_t)%d)", ident(b.tensor.name), b.offset) end
    h:blank()
    h:open("enum {                                      /* weights, in the order of variant.c's table */")
    for i, wt in ipairs(g.weights) do h:line("W_%s = %d,", ident(wt.name), i - 1) end
    h:close("};")
    h:blank()
    cuda_kernels.tables(h, name, set)
    cuda_kernels.gemm_table(h, name, gemms)
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
    cuda_kernels.record_function(h, g, name .. "_cuda_record", body:text(),
                                 "One call (one chunk), launched on stream s (captured into a CUDA Graph by the runtime).")
    cuda_kernels.desc_open(h, "sky_vae_cuda_desc", name, set, gemms)
    h:line(".n_weights = %d, .weight_layout = %s_weight_layout,", #g.weights, name)
    h:line(".arena_bytes = %s, .conv_smem = CONV_SMEM,", clit.size(p.peak))
    h:line(".in = %s, .out = %s,", cuda_kernels.slot(p, g.inputs[1]), cuda_kernels.slot(p, g.outputs[1]))
    h:line(".n_states = %d, .states = %s_states,", #g.states, name)
    h:line(".record = %s_cuda_record,", name)
    h:close("};")
    files["gen/" .. name .. "_cuda.c"] = h:text()
end

-- Emit vae_decode and vae_encode (those in plans, the CUDA plans) for the CUDA backend.
function emit_cuda_vae.emit(s, plans, files, ctx)
    for _, name in ipairs({ "vae_decode", "vae_encode" }) do
        if plans[name] then emit_program(s, plans[name], files, ctx) end
    end
end

return emit_cuda_vae
