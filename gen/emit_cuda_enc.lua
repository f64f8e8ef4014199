-- gen/emit_cuda_enc.lua
-- =====================
-- The CUDA backend of the encoders: text_encode (umT5) and clip_encode (CLIP ViT).
--   text_encode   bf16 as the original runs its bf16 checkpoint (reference vae-text-image-files.md §2):
--                 bf16 GEMMs with fp32 accumulation on cuBLASLt, the residual stream in bf16, RMS norms
--                 rounded as the bf16 model rounds them; attention per head as two GEMMs around a
--                 kernel that adds the relative position bias and takes the softmax in fp32.
--   clip_encode   fp32 throughout (true fp32 GEMMs): the original runs CLIP under bf16 autocast, this
--                 is the more accurate side of it and costs little (one image per video).
-- Both run on the real rows only (text: the N tokens of the prompt; the output is zero after them).
-- Files written (relative to out/<variant>/), for each program P the variant has:
--   gen/P_kernels.cu, gen/P_kernels_src.c, gen/P_cuda.c    as for the other CUDA programs
--
-- The CUDA view of the graphs is lower.lua's: an attention op with a scratch tensor for one head's scores
-- (made by an "attn_scratch" node that launches nothing), CLIP's patch embedding as patch_cols + a GEMM,
-- and text_encode's output written as fp32 (the runtime's slot).

local clit     = require("lib.clit")
local cwriter  = require("lib.cwriter")
local graph    = require("graph")
local header   = require("header")
local plan     = require("plan")
local schedule = require("schedule_sm90")
local fail     = require("lib.fail")
local cuda_kernels = require("cuda_kernels")

local emit_cuda_enc = {}

local ident = cuda_kernels.ident
local THREADS = schedule.elementwise_threads

local function dim_expr(d) return math.type(d) == "integer" and clit.int(d) or d end
local function ptr(t) return "PTR(OFF_" .. ident(t.name) .. ")" end
local function wptr(w) return "WPTR(W_" .. ident(w.name) .. ")" end
local function rows(t) return dim_expr(t.dims[1]) end
local function ctype(t) return ({ bf16 = "bf16", f32 = "float" })[t.dtype] end
local function gemm_dtype(t) return ({ bf16 = "SKY_GEMM_BF16", f32 = "SKY_GEMM_F32" })[t.dtype] end

local function elementwise(k, n, args)
    return string.format("LAUNCH(%s, CDIV(%s, %d), 1, %d, 0, %s);", k, n, THREADS, THREADS, table.concat(args, ", "))
end

local gemm_index = cuda_kernels.gemm_index

-- The C lines of node n.
local function launches(s, g, n, set, gemms, gidx)
    local a, x = n.attrs, n.ins[1]
    if n.op == "attn_scratch" then
        return {}
    elseif n.op == "gather_rows" then
        local k = "K_" .. ident(set:add("gather_rows", { COLS = a.dim }))
        return { elementwise(k, "(long long)" .. rows(n.out) .. " * " .. a.dim,
                             { ptr(n.out), ptr(x), wptr(a.table), "INT(" .. rows(n.out) .. ")" }) }
    elseif n.op == "rmsnorm" then
        local th = schedule.row_threads(a.dim) or fail.user("%s: text_encode needs a width that is a multiple of 32 "
                                                             .. "for the CUDA backend, got %d", s.path, a.dim)
        local k = "K_" .. ident(set:add("t5_rmsnorm", { C = a.dim, THREADS = th, EPS = clit.f32(a.eps) }))
        return { string.format("LAUNCH(%s, %s, 1, %d, 0, %s, %s, %s);", k, rows(x), th, ptr(n.out), ptr(x),
                               wptr(a.weight)) }
    elseif n.op == "linear" then
        local i = gemm_index(gemms, gidx, { m_max = graph.max_dim(g, x.dims[1]), n = a.n, k = a.k,
                                            a_dtype = gemm_dtype(x), out_dtype = gemm_dtype(n.out),
                                            epilogue = a.bias and "SKY_GEMM_EPI_BIAS" or "SKY_GEMM_EPI_NONE" })
        if a.bias then
            return { string.format("GEMM(%d, %s, OFF_%s, W_%s, W_%s, OFF_%s);", i, rows(x), ident(x.name),
                                   ident(a.weight.name), ident(a.bias.name), ident(n.out.name)) }
        end
        return { string.format("GEMM_NB(%d, %s, OFF_%s, W_%s, OFF_%s);", i, rows(x), ident(x.name), ident(a.weight.name),
                               ident(n.out.name)) }
    elseif n.op == "attention_relbias" or n.op == "attention" then
        -- Per head h: S = Q_h K_h^T (the L keys of this call), probabilities in place, O_h = P V_h.
        local q, kk, v, scores = n.ins[1], n.ins[2], n.ins[3], n.ins[4]
        local H, D = a.num_heads, a.head_dim
        local C, L, maxL = H * D, rows(q), graph.max_dim(g, q.dims[1])
        local qk = gemm_index(gemms, gidx, { m_max = maxL, n = maxL, k = D, a_dtype = gemm_dtype(q),
                                             out_dtype = gemm_dtype(scores), epilogue = "SKY_GEMM_EPI_NONE",
                                             ldx = C, ldw = C, ldy = maxL })
        local pv = gemm_index(gemms, gidx, { m_max = maxL, n = D, k = maxL, a_dtype = gemm_dtype(scores),
                                             out_dtype = gemm_dtype(n.out), epilogue = "SKY_GEMM_EPI_NONE",
                                             ldx = maxL, ldw = C, ldy = C, w_kn = true })
        local eb = q.dtype == "bf16" and 2 or 4
        local lines = { string.format("for (int h = 0; h < %d; h++) {", H) }
        lines[#lines + 1] = string.format("    GEMM_DIMS(%d, %s, %s, %d, OFF_%s + (size_t)h * %d, OFF_%s + (size_t)h * %d, "
                                          .. "OFF_%s);  /* S = Q_h K_h^T */", qk, L, L, D, ident(q.name), D * eb,
                                          ident(kk.name), D * eb, ident(scores.name))
        if n.op == "attention_relbias" then
            local k = "K_" .. ident(set:add("softmax_relbias", { NH = H, BUCKETS = a.buckets, MAXDIST = a.max_distance }))
            lines[#lines + 1] = string.format("    LAUNCH(%s, %s, 1, 256, 0, %s, %s, INT(h), INT(%s), INT(%d));", k, L,
                                              ptr(scores), wptr(a.bias), L, maxL)
        else
            assert(math.type(q.dims[1]) == "integer", "emit_cuda_enc: attention over a fixed token count (CLIP)")
            local k = "K_" .. ident(set:add("softmax_rows", {}))
            lines[#lines + 1] = string.format("    LAUNCH(%s, %s, 1, 256, 0, %s, INT(%s), FLT(%s));", k, L, ptr(scores), L,
                                              clit.f32(1.0 / math.sqrt(D)))
        end
        lines[#lines + 1] = string.format("    GEMM_DIMS(%d, %s, %d, %s, OFF_%s, OFF_%s + (size_t)h * %d, OFF_%s + "
                                          .. "(size_t)h * %d);  /* O_h = P V_h */", pv, L, D, L, ident(scores.name),
                                          ident(v.name), D * eb, ident(n.out.name), D * (n.out.dtype == "bf16" and 2 or 4))
        lines[#lines + 1] = "}"
        return lines
    elseif n.op == "add" then
        local k = "K_" .. ident(set:add("add", { TA = ctype(x), TB = ctype(n.ins[2]), TY = ctype(n.out) }))
        local cnt = graph.numel_expr(n.out.dims)
        return { elementwise(k, cnt, { ptr(n.out), ptr(x), ptr(n.ins[2]), "LL(" .. cnt .. ")" }) }
    elseif n.op == "gated_gelu" then
        local k = "K_" .. ident(set:add("gated_gelu", {}))
        local cnt = graph.numel_expr(n.out.dims)
        return { elementwise(k, cnt, { ptr(n.out), ptr(x), ptr(n.ins[2]), "LL(" .. cnt .. ")" }) }
    elseif n.op == "zero_tail" then
        local k = "K_" .. ident(set:add("zero_tail", { ROWS = a.rows, COLS = a.dim }))
        return { elementwise(k, a.rows * a.dim, { ptr(n.out), ptr(x), "INT(" .. rows(x) .. ")" }) }
    elseif n.op == "patch_cols" then
        local k = "K_" .. ident(set:add("patch_cols", { PATCH = a.patch, SIDE = a.side }))
        return { elementwise(k, a.side * a.side * 3 * a.patch * a.patch, { ptr(n.out), ptr(x) }) }
    elseif n.op == "cls_pos" then
        local P = x.dims[1]
        local k = "K_" .. ident(set:add("cls_pos", { C = a.dim, P = P }))
        return { elementwise(k, (P + 1) * a.dim, { ptr(n.out), ptr(x), wptr(a.cls), wptr(a.pos) }) }
    elseif n.op == "layernorm_affine" then
        local th = schedule.row_threads(a.dim) or fail.user("%s: clip_encode needs a width that is a multiple of 32 "
                                                             .. "for the CUDA backend, got %d", s.path, a.dim)
        local k = "K_" .. ident(set:add("layernorm_affine", { C = a.dim, THREADS = th, EPS = clit.f32(a.eps),
                                                              TX = ctype(x), TY = ctype(n.out), ROUND_IN = 0 }))
        return { string.format("LAUNCH(%s, %s, 1, %d, 0, %s, %s, %s, %s);", k, rows(x), th, ptr(n.out), ptr(x),
                               wptr(a.weight), wptr(a.bias)) }
    elseif n.op == "split3" then
        local k = "K_" .. ident(set:add("split3", { C = a.dim, PART = a.part }))
        return { elementwise(k, "(long long)" .. rows(x) .. " * " .. a.dim, { ptr(n.out), ptr(x), "INT(" .. rows(x) .. ")" }) }
    elseif n.op == "gelu_erf" then
        local k = "K_" .. ident(set:add("activation", { FN = "gelu_erf", TX = ctype(x), TY = ctype(n.out) }))
        local cnt = graph.numel_expr(n.out.dims)
        return { elementwise(k, cnt, { ptr(n.out), ptr(x), "LL(" .. cnt .. ")" }) }
    end
    error("emit_cuda_enc: no CUDA implementation of op " .. n.op)
end

-- Device dtype of each weight: bf16 for what a bf16 GEMM reads and for the bf16 token table, fp32 else.
local function weight_bf16(g)
    local bf = {}
    for _, n in ipairs(g.nodes) do
        if n.op == "linear" and n.ins[1].dtype == "bf16" then bf[n.attrs.weight.name] = true end
        if n.op == "gather_rows" then bf[n.attrs.table.name] = true end
    end
    return bf
end

-- Emit one encoder's CUDA files from its plan p (of the lowered graph).
local function emit_program(s, p, files, ctx)
    local g = p.graph
    local name = g.name
    local set = cuda_kernels.new_set(ctx)
    local gemms, gidx = {}, {}
    local body = cwriter.new()
    for _, n in ipairs(g.nodes) do
        local args = {}
        for i, t in ipairs(n.ins) do args[i] = t.name end
        body:line("/* %s */", clit.comment(string.format("%s = %s(%s)  %s %s", n.out.name, n.op, table.concat(args, ", "),
                                                         graph.dims_text(n.out.dims), n.out.dtype)))
        for _, l in ipairs(launches(s, g, n, set, gemms, gidx)) do body:line("%s", l) end
        if n.op ~= "attn_scratch" then
            body:line("TRACE(%s, OFF_%s, SKY_TRACE_%s, %s, 0);", clit.str(n.out.name), ident(n.out.name),
                      n.out.dtype:upper(), graph.numel_expr(n.out.dims))
        end
    end
    cuda_kernels.write(s, ctx, files, name, set, #gemms)

    local bf = weight_bf16(g)
    local h = cwriter.new()
    h:raw(header.c_comment(s, ctx, "gen/" .. name .. "_cuda.c", {
        string.format("program    %s (cuda): %d ops per call", name, #g.nodes),
        string.format("arena      %s bytes (see plan_cuda.txt)", plan.commas(p.peak)),
    }))
    h:line("#include <stdint.h>")
    h:blank()
    h:line("#include \"cuda_program.h\"")
    h:blank()
    h:line("/* arena offsets (bytes), from gen/plan.lua with the CUDA dtypes */")
    for _, b in ipairs(p.buffers) do h:line("#define OFF_%-48s ((size_t)%d)", ident(b.tensor.name), b.offset) end
    h:blank()
    h:open("enum {                                      /* weights, in the order of variant.c's table */")
    for i, wt in ipairs(g.weights) do h:line("W_%s = %d,", ident(wt.name), i - 1) end
    h:close("};")
    h:blank()
    cuda_kernels.tables(h, name, set)
    cuda_kernels.gemm_table(h, name, gemms)
    h:line("/* device dtype of each weight: bf16 where a bf16 GEMM or the token table reads it, fp32 otherwise */")
    h:open(string.format("const unsigned char %s_weight_bf16[%d] = {", name, #g.weights))
    for _, wt in ipairs(g.weights) do h:line("%d, /* %s */", bf[wt.name] and 1 or 0, clit.comment(wt.name)) end
    h:close("};")
    h:blank()
    cuda_kernels.record_function(h, g, name .. "_cuda_record", body:text(), "One call, launched on stream s.")
    cuda_kernels.desc_open(h, "sky_enc_cuda_desc", name, set, gemms)
    h:line(".n_weights = %d, .weight_bf16 = %s_weight_bf16,", #g.weights, name)
    h:line(".arena_bytes = %s,", clit.size(p.peak))
    h:line(".in = %s, .out = %s,", cuda_kernels.slot(p, g.inputs[1]), cuda_kernels.slot(p, g.outputs[1]))
    h:line(".record = %s_cuda_record,", name)
    h:close("};")
    files["gen/" .. name .. "_cuda.c"] = h:text()
end

-- Emit text_encode and clip_encode (those in plans, the CUDA plans) for the CUDA backend.
function emit_cuda_enc.emit(s, plans, files, ctx)
    for _, name in ipairs({ "clip_encode", "text_encode" }) do
        if plans[name] then emit_program(s, plans[name], files, ctx) end
    end
end

return emit_cuda_enc
