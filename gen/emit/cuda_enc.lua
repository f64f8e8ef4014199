-- gen/emit/cuda_enc.lua
-- ======================
-- The CUDA backend of the encoders: text_encode (umT5) and clip_encode (CLIP ViT).
--   text_encode   bf16 as the original runs its bf16 checkpoint (reference vae-text-image-files.md §2):
--                 bf16 GEMMs with fp32 accumulation on cuBLASLt, the residual stream in bf16, RMS norms
--                 rounded as the bf16 model rounds them; attention per head as two GEMMs around a
--                 kernel that adds the relative position bias and takes the softmax in fp32.
--   clip_encode   fp32 throughout (true fp32 GEMMs): the original runs CLIP under bf16 autocast, this
--                 is the more accurate side of it and costs little (one image per video).
-- Both run on the real rows only (text: the N tokens of the prompt; the output is zero after them).
-- Files written (relative to out/<variant>/), for each program P the variant has, through the skeleton
-- of emit/cuda.lua:
--   gen/P_kernels.cu, gen/P_kernels_src.c, gen/P_cuda.c    as for the other CUDA programs
--
-- The CUDA view of the graphs is lower.lua's: an attention op with a scratch tensor for one head's scores
-- (made by an "attn_scratch" node that launches nothing), CLIP's patch embedding as patch_cols + a GEMM,
-- and text_encode's output written as fp32 (the runtime's slot).

local clit     = require("lib.clit")
local graph    = require("graph")
local plan     = require("plan")
local cuda     = require("emit.cuda")

local cuda_enc = {}

local ident, ptr, wptr, rows, ctype = cuda.ident, cuda.ptr, cuda.wptr, cuda.rows, cuda.ctype
local elementwise_op, gemm_dtype = cuda.elementwise_op, cuda.gemm_dtype

-- ---- the C lines of each op (op -> function(n, E)) ------------------------------------------------

local emit = {}

emit.attn_scratch = function() return {} end

emit.gather_rows = function(n, E)
    local a = n.attrs
    local k = E:kernel("gather_rows", { COLS = a.dim })
    return { elementwise_op(k, "(long long)" .. rows(n.out) .. " * " .. a.dim, E:out(n),
                            { ptr(n.ins[1]), wptr(a.table), "INT(" .. rows(n.out) .. ")" }) }
end

emit.rmsnorm = function(n, E)
    local a, x = n.attrs, n.ins[1]
    local th = cuda.row_threads(E.s, n, a.dim)
    local k = E:kernel("t5_rmsnorm", { C = a.dim, THREADS = th, EPS = clit.f32(a.eps) })
    return { cuda.op(k, rows(x), 1, th, 0, E:out(n), { ptr(x), wptr(a.weight) }) }
end

emit.linear = function(n, E)
    local a, x = n.attrs, n.ins[1]
    local i = E:gemm({ m_max = graph.max_dim(E.g, x.dims[1]), n = a.n, k = a.k, a_dtype = gemm_dtype(x),
                       out_dtype = gemm_dtype(n.out), epilogue = a.bias and "SKY_GEMM_EPI_BIAS" or "SKY_GEMM_EPI_NONE" },
                     cuda.gemm_role(a.weight.name))
    if a.bias then
        return { string.format("GEMM(%s, %s, OFF_%s, W_%s, W_%s, %s);", i, rows(x), ident(x.name),
                               ident(a.weight.name), ident(a.bias.name), E:out(n)) }
    end
    return { string.format("GEMM_NB(%s, %s, OFF_%s, W_%s, %s);", i, rows(x), ident(x.name), ident(a.weight.name),
                           E:out(n)) }
end

-- The softmax over one head's scores: umT5's adds the relative position bias, CLIP's scales by 1/sqrt(D).
local softmax = {
    attention_relbias = function(n, E, L, maxL)
        local a = n.attrs
        local k = E:kernel("softmax_relbias", { NH = a.num_heads, BUCKETS = a.buckets, MAXDIST = a.max_distance })
        return string.format("    LAUNCH(%s, %s, 1, 256, 0, %s, %s, INT(h), INT(%s), INT(%d));", k, L, ptr(n.ins[4]),
                             wptr(a.bias), L, maxL)
    end,
    attention = function(n, E, L)
        assert(math.type(n.ins[1].dims[1]) == "integer", "emit/cuda_enc: attention over a fixed token count (CLIP)")
        local k = E:kernel("softmax_rows", {})
        return string.format("    LAUNCH(%s, %s, 1, 256, 0, %s, INT(%s), FLT(%s));", k, L, ptr(n.ins[4]), L,
                             clit.f32(1.0 / math.sqrt(n.attrs.head_dim)))
    end,
}

-- Per head h: S = Q_h K_h^T (the L keys of this call), probabilities in place, O_h = P V_h.
local function attention(n, E)
    local a = n.attrs
    local q, kk, v, scores = n.ins[1], n.ins[2], n.ins[3], n.ins[4]
    local H, D = a.num_heads, a.head_dim
    local C, L, maxL = H * D, rows(q), graph.max_dim(E.g, q.dims[1])
    local module = cuda.gemm_role(n.out.name:gsub("%.out$", ""))                -- blocks.N.attn.out -> blocks.attn
    local qk = E:gemm({ m_max = maxL, n = maxL, k = D, a_dtype = gemm_dtype(q), out_dtype = gemm_dtype(scores),
                        epilogue = "SKY_GEMM_EPI_NONE", ldx = C, ldw = C, ldy = maxL }, module .. ".qk")
    local pv = E:gemm({ m_max = maxL, n = D, k = maxL, a_dtype = gemm_dtype(scores), out_dtype = gemm_dtype(n.out),
                        epilogue = "SKY_GEMM_EPI_NONE", ldx = maxL, ldw = C, ldy = C, w_kn = true }, module .. ".pv")
    local eb = q.dtype == "bf16" and 2 or 4
    return {
        string.format("for (int h = 0; h < %d; h++) {", H),
        string.format("    GEMM_DIMS(%s, %s, %s, %d, OFF_%s + (size_t)h * %d, OFF_%s + (size_t)h * %d, "
                      .. "OFF_%s);  /* S = Q_h K_h^T */", qk, L, L, D, ident(q.name), D * eb, ident(kk.name), D * eb,
                      ident(scores.name)),
        softmax[n.op](n, E, L, maxL),
        string.format("    GEMM_DIMS(%s, %s, %d, %s, OFF_%s, OFF_%s + (size_t)h * %d, OFF_%s + "
                      .. "(size_t)h * %d);  /* O_h = P V_h */", pv, L, D, L, ident(scores.name), ident(v.name), D * eb,
                      ident(n.out.name), D * (n.out.dtype == "bf16" and 2 or 4)),
        "}",
    }
end
emit.attention_relbias = attention
emit.attention = attention

-- Elementwise ops over every value of the output: template and its constants from node n.
local function per_value(template, consts)
    return function(n, E)
        local k = E:kernel(template, consts(n))
        local cnt = graph.numel_expr(n.out.dims)
        local args = {}
        for _, t in ipairs(n.ins) do args[#args + 1] = ptr(t) end
        args[#args + 1] = "LL(" .. cnt .. ")"
        return { elementwise_op(k, cnt, E:out(n), args) }
    end
end
emit.add = per_value("add", function(n)
    return { TA = ctype(n.ins[1]), TB = ctype(n.ins[2]), TY = ctype(n.out) }
end)
emit.gated_gelu = per_value("gated_gelu", function() return {} end)
emit.gelu_erf = per_value("activation", function(n)
    return { FN = "gelu_erf", TX = ctype(n.ins[1]), TY = ctype(n.out) }
end)

emit.zero_tail = function(n, E)
    local a = n.attrs
    local k = E:kernel("zero_tail", { ROWS = a.rows, COLS = a.dim })
    return { elementwise_op(k, a.rows * a.dim, E:out(n), { ptr(n.ins[1]), "INT(" .. rows(n.ins[1]) .. ")" }) }
end

emit.patch_cols = function(n, E)
    local a = n.attrs
    local k = E:kernel("patch_cols", { PATCH = a.patch, SIDE = a.side })
    return { elementwise_op(k, a.side * a.side * 3 * a.patch * a.patch, E:out(n), { ptr(n.ins[1]) }) }
end

emit.cls_pos = function(n, E)
    local a, P = n.attrs, n.ins[1].dims[1]
    local k = E:kernel("cls_pos", { C = a.dim, P = P })
    return { elementwise_op(k, (P + 1) * a.dim, E:out(n), { ptr(n.ins[1]), wptr(a.cls), wptr(a.pos) }) }
end

emit.layernorm_affine = function(n, E)
    local a, x = n.attrs, n.ins[1]
    local th = cuda.row_threads(E.s, n, a.dim)
    local k = E:kernel("layernorm_affine", { C = a.dim, THREADS = th, EPS = clit.f32(a.eps), TX = ctype(x),
                                             TY = ctype(n.out), ROUND_IN = 0, VEC = 1 })
    return { cuda.op(k, rows(x), 1, th, 0, E:out(n), { ptr(x), wptr(a.weight), wptr(a.bias) }) }
end

emit.split3 = function(n, E)
    local a, x = n.attrs, n.ins[1]
    local k = E:kernel("split3", { C = a.dim, PART = a.part })
    return { elementwise_op(k, "(long long)" .. rows(x) .. " * " .. a.dim, E:out(n), { ptr(x), "INT(" .. rows(x) .. ")" }) }
end

-- ---- the file -------------------------------------------------------------------------------------

-- Device dtype of each weight: bf16 for what a bf16 GEMM reads and for the bf16 token table, fp32 else.
local function weight_bf16(g)
    local bf = {}
    for _, n in ipairs(g.nodes) do
        if n.op == "linear" and n.ins[1].dtype == "bf16" then bf[n.attrs.weight.name] = true end
        if n.op == "gather_rows" then bf[n.attrs.table.name] = true end
    end
    return bf
end

-- The device bytes of the program's weights as the plugin uploads them (runtime/cuda/cuda_program.c
-- sky_cuda_prog_upload: each weight at its device dtype, padded to 256 bytes, in one allocation).
function cuda_enc.weight_device_bytes(g)
    local bf, total = weight_bf16(g), 0
    for _, wt in ipairs(g.weights) do
        local n = 1
        for _, d in ipairs(wt.shape) do n = n * d end
        total = total + (n * (bf[wt.name] and 2 or 4) + 255) // 256 * 256
    end
    return total
end

-- The launch sequence's hooks: no sections; a comment per op; the scratch (no op runs) is not traced.
local hooks = {
    comment  = function(n) return cuda.node_comment(n, nil, true) end,
    untraced = function(n) return n.op == "attn_scratch" end,
}

-- Emit one encoder's CUDA files from its plan p (of the lowered graph).
function cuda_enc.emit(s, p, files, ctx)
    local E = cuda.program_state(s, p, ctx)
    local g, name = p.graph, p.graph.name
    local bodies = cuda.launch_sequence(E, emit, hooks)
    cuda.write_kernels(E, ctx, files)

    local h = cuda.file_open(E, ctx, {
        string.format("program    %s (cuda): %d ops per call", name, #g.nodes),
        string.format("arena      %s bytes (see plan_cuda.txt)", plan.commas(p.peak)),
    })
    cuda.offsets(h, "arena offsets (bytes), from gen/plan.lua with the CUDA dtypes", p.buffers, 48)
    cuda.tables(h, E)
    local bf = weight_bf16(g)
    h:line("/* device dtype of each weight: bf16 where a bf16 GEMM or the token table reads it, fp32 otherwise */")
    h:open(string.format("const unsigned char %s_weight_bf16[%d] = {", name, #g.weights))
    for _, wt in ipairs(g.weights) do h:line("%d, /* %s */", bf[wt.name] and 1 or 0, clit.comment(wt.name)) end
    h:close("};")
    h:blank()
    cuda.record_function(h, g, name .. "_cuda_record", bodies.all:text(), "One call, launched on stream s.")
    cuda.desc_open(h, E, "sky_enc_cuda_desc", true)
    h:line(".n_weights = %d, .weight_bf16 = %s_weight_bf16,", #g.weights, name)
    h:line(".arena_bytes = %s,", clit.size(p.peak))
    h:line(".in = %s, .out = %s,", cuda.slot(p, g.inputs[1]), cuda.slot(p, g.outputs[1]))
    h:line(".record = %s_cuda_record,", name)
    h:close("};")
    files["gen/" .. name .. "_cuda.c"] = h:text()
end

return cuda_enc
