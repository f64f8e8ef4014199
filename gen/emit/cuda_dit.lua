-- gen/emit/cuda_dit.lua
-- ======================
-- The CUDA backend of dit_forward: bf16 storage and fp32 where the original keeps fp32 (the dtypes
-- recorded on the graph, reference §2.11), fused kernels from templates/cuda/*.cu.in, GEMMs through
-- cuBLASLt (a descriptor table built once at start-up by the runtime), one arena planned for the
-- recorded dtypes. Files written (relative to out/<variant>/), through the skeleton of emit/cuda.lua:
--   gen/dit_forward_kernels.cu     every kernel the program uses, self-contained (nvcc and NVRTC
--                                  compile this same text)
--   gen/dit_forward_kernels_src.c  that text as a C string, one literal per line, for NVRTC
--   gen/dit_forward_cuda.c         the kernel and GEMM tables and the launch sequence of one forward
--                                  in its parts (recorded into a CUDA Graph by the runtime)
-- The CUDA program runs on the graph lowered by lower.lua (fused) and its plan; the CPU backend keeps
-- the unfused one.
--
-- Dims in comments: L tokens of the call, F latent frames, Ft timestep rows (1 or F).

local clit     = require("lib.clit")
local cwriter  = require("lib.cwriter")
local fail     = require("lib.fail")
local graph    = require("graph")
local plan     = require("plan")
local schedule = require("schedule_sm90")
local cuda     = require("emit.cuda")
local dit      = require("programs.dit")

local cuda_dit = {}

local ident, ctype, ptr, wptr, rows = cuda.ident, cuda.ctype, cuda.ptr, cuda.wptr, cuda.rows
local elementwise_op = cuda.elementwise_op
local THREADS = schedule.elementwise_threads

-- Number of elements of t as a C expression.
local function numel(t)
    local parts = {}
    for i, d in ipairs(t.dims) do parts[i] = cuda.dim_expr(d) end
    return "(long long)" .. table.concat(parts, " * ")
end

-- Values per access of a row kernel over rows of `width` values (`ld` apart, starting `col` values in): 8 where
-- a row is whole 16-byte chunks of bf16 (and of fp32: two chunks) and its start stays 16-byte aligned (the
-- arena's 256-byte alignment, rows a multiple of 8 values apart), else 1 (one value at a time).
local function row_vec(width, ld, col)
    if width % 8 == 0 and (ld or width) % 8 == 0 and (col or 0) % 8 == 0 then return 8 end
    return 1
end

-- A user error unless t holds fewer than 2^31 values at its largest: the elementwise kernels and patchify,
-- unpatchify and rope_table index in 32 bits.
local function check_int32(E, t)
    if graph.max_elems(E.g, t) >= 2 ^ 31 then
        fail.user("%s: %s has %d values, too many for the CUDA kernels' 32-bit indices", E.s.path, t.name,
                  graph.max_elems(E.g, t))
    end
end

-- ---- the C lines of each op (op -> function(n, E)) ------------------------------------------------

local emit = {}

-- One launch per input (x, and y for I2V: the channels after x's); the last one writes the whole output. 32-bit
-- indices (patchify, unpatchify and rope_table: sizes checked here).
emit.patchify = function(n, E)
    local lines = {}
    check_int32(E, n.out)
    for i, t in ipairs(n.ins) do
        check_int32(E, t)
        local c0 = (i == 1) and 0 or E.s.derived.x_channels
        local k = E:kernel("patchify", { CX = t.dims[1], C0 = c0, PATCH_IN = n.attrs.patch_in })
        local grid = string.format("CDIV((long long)L * %d, %d)", t.dims[1], THREADS)
        local args = { ptr(t), "INT(F)", "INT(H)", "INT(W)" }
        if i < #n.ins then
            lines[i] = string.format("LAUNCH(%s, %s, 1, %d, 0, %s, %s);", k, grid, THREADS, ptr(n.out), table.concat(args, ", "))
        else
            lines[i] = cuda.op(k, grid, 1, THREADS, 0, E:out(n), args)
        end
    end
    return lines
end

emit.unpatchify = function(n, E)
    check_int32(E, n.ins[1])
    check_int32(E, n.out)
    local k = E:kernel("unpatchify", { OUT = n.attrs.out_dim })
    return { elementwise_op(k, numel(n.out), E:out(n), { ptr(n.ins[1]), "INT(F)", "INT(H)", "INT(W)" }) }
end

-- An activation fn over every value of its input.
local function activation(fn)
    return function(n, E)
        local k = E:kernel("activation", { FN = fn, TX = ctype(n.ins[1]), TY = ctype(n.out) })
        return { elementwise_op(k, numel(n.out), E:out(n), { ptr(n.ins[1]), "LL(" .. numel(n.out) .. ")" }) }
    end
end
emit.silu = activation("silu")
emit.gelu_tanh = activation("gelu_tanh")
emit.gelu_erf = activation("gelu_erf")

emit.add = function(n, E)
    local k = E:kernel("add", { TA = ctype(n.ins[1]), TB = ctype(n.ins[2]), TY = ctype(n.out) })
    return { elementwise_op(k, numel(n.out), E:out(n), { ptr(n.ins[1]), ptr(n.ins[2]), "LL(" .. numel(n.out) .. ")" }) }
end

-- The add kernel with the weight (fp32 on the device: weight_dtypes) as b.
emit.add_weight = function(n, E)
    local k = E:kernel("add", { TA = ctype(n.ins[1]), TB = "float", TY = ctype(n.out) })
    return { elementwise_op(k, numel(n.out), E:out(n), { ptr(n.ins[1]), wptr(n.attrs.weight), "LL(" .. numel(n.out) .. ")" }) }
end

-- One thread per 4 fp32 values (a 16-byte access) where the row allows, else per value; 32-bit indices.
emit.add_row = function(n, E)
    check_int32(E, n.out)
    local cols = n.out.dims[2]
    local vec = cols % 4 == 0 and 4 or 1
    local k = E:kernel("add_row", { COLS = cols, VEC = vec })
    return { elementwise_op(k, string.format("%s / %d", numel(n.out), vec), E:out(n),
                            { ptr(n.ins[1]), ptr(n.ins[2]), "INT(" .. rows(n.out) .. ")" }) }
end

emit.embedding = function(n, E)
    local k = E:kernel("embedding", { ROWS = n.attrs.rows, COLS = n.attrs.dim })
    return { elementwise_op(k, numel(n.out), E:out(n), { ptr(n.ins[1]), wptr(n.attrs.table) }) }
end

emit.sinusoid = function(n, E)
    local half = n.attrs.freq_dim // 2
    local k = E:kernel("sinusoid", { HALF = half, TY = ctype(n.out) })
    return { cuda.op(k, string.format("CDIV((long long)%s * %d, 128)", rows(n.ins[1]), half), 1, 128, 0, E:out(n),
                     { ptr(n.ins[1]), "INT(" .. rows(n.ins[1]) .. ")" }) }
end

-- One thread per 4 fp32 values (16-byte accesses) where the widths allow, else per value; 32-bit indices.
emit.modulation = function(n, E)
    local a = n.attrs
    check_int32(E, n.out)
    local vec = (a.dim % 4 == 0 and n.ins[1].dims[2] % 4 == 0) and 4 or 1
    local k = E:kernel("modulation", { CHUNKS = a.chunks, C = a.dim, ESTRIDE = n.ins[1].dims[2],
                                       KSTRIDE = a.per_chunk and a.dim or 0, VEC = vec })
    return { elementwise_op(k, string.format("%s / %d", numel(n.out), vec), E:out(n),
                            { ptr(n.ins[1]), wptr(a.table), "INT(" .. rows(n.ins[1]) .. ")" }) }
end

-- args, then on a rank's slice of the tokens (attrs.at_tok0, dit_forward_usp) the slice's first token and the rows
-- of modulation mod (common.cuh SKY_AT_ARGS_1).
local function at_tok0_args(n, mod, args)
    if n.attrs.at_tok0 then
        args[#args + 1] = "INT(tok0)"
        args[#args + 1] = "INT(" .. rows(mod) .. ")"
    end
    return args
end

emit.layernorm_modulate = function(n, E)
    local a = n.attrs
    local th = cuda.row_threads(E.s, n, a.dim)
    local k = E:kernel("layernorm_modulate", { C = a.dim, THREADS = th, VEC = row_vec(a.dim), CHUNKS = a.chunks,
                                               SHIFT = a.shift,
                                               SCALE = a.scale, EPS = clit.f32(a.eps), TX = ctype(n.ins[1]),
                                               TY = ctype(n.out), AT = a.at_tok0 and 1 or 0 })
    return { cuda.op(k, rows(n.ins[1]), 1, th, 0, E:out(n),
                     at_tok0_args(n, n.ins[2], { ptr(n.ins[1]), ptr(n.ins[2]), "INT(tokens_per_row)" })) }
end

emit.layernorm_affine = function(n, E)
    local a = n.attrs
    local th = cuda.row_threads(E.s, n, a.dim)
    local k = E:kernel("layernorm_affine", { C = a.dim, THREADS = th, VEC = row_vec(a.dim), EPS = clit.f32(a.eps),
                                             TX = ctype(n.ins[1]),
                                             TY = ctype(n.out), ROUND_IN = a.round_input and 1 or 0 })
    return { cuda.op(k, rows(n.ins[1]), 1, th, 0, E:out(n), { ptr(n.ins[1]), wptr(a.weight), wptr(a.bias) }) }
end

emit.rmsnorm = function(n, E)
    local a = n.attrs
    local th = cuda.row_threads(E.s, n, a.dim)
    local k = E:kernel("rmsnorm", { C = a.dim, THREADS = th, VEC = row_vec(a.dim), EPS = clit.f32(a.eps) })
    return { cuda.op(k, rows(n.ins[1]), 1, th, 0, E:out(n), { ptr(n.ins[1]), wptr(a.weight) }) }
end

-- A launch argument pointing at column col of tensor t's rows (a view of lower.lua's fused q|k|v).
local function col_ptr(t, col)
    assert(t.kind ~= "prompt", "emit/cuda_dit: a column view of per-prompt tensor " .. t.name)
    if col == 0 then return ptr(t) end
    return string.format("PTR(OFF_%s + %d)", cuda.ident(t.name), col * 2)
end

emit.rmsnorm_rope = function(n, E)
    local a = n.attrs
    local th = cuda.row_threads(E.s, n, a.dim // 2)
    local vec = a.head_dim % 8 == 0 and row_vec(a.dim, a.ld, a.col) or 1
    local k = E:kernel("rmsnorm_rope", { C = a.dim, D = a.head_dim, THREADS = th, VEC = vec, EPS = clit.f32(a.eps) })
    return { cuda.op(k, rows(n.ins[1]), 1, th, 0, E:out(n), { col_ptr(n.ins[1], a.col or 0), wptr(a.weight),
                                                            ptr(n.ins[2]), "INT(" .. (a.ld or a.dim) .. ")" }) }
end

-- q's row factors (lower.lua's q_norm): THREADS and the summation as the kernel it replaces (rmsnorm, or
-- rmsnorm_rope reading pairs), so that the attention's normalised q is that kernel's bit for bit.
emit.rms_factor = function(n, E)
    local a = n.attrs
    local th = cuda.row_threads(E.s, n, a.pairs and a.dim // 2 or a.dim)
    local k = E:kernel("rms_factor", { C = a.dim, THREADS = th, VEC = row_vec(a.dim, a.ld, a.col),
                                       PAIRS = a.pairs and 1 or 0, EPS = clit.f32(a.eps) })
    return { cuda.op(k, rows(n.ins[1]), 1, th, 0, E:out(n), { col_ptr(n.ins[1], a.col or 0),
                                                            "INT(" .. (a.ld or a.dim) .. ")" }) }
end

emit.rope_table = function(n, E)
    local a = n.attrs
    check_int32(E, n.out)
    local k = E:kernel("rope_table", { D = a.head_dim, TP = a.t_dim // 2, HP = a.h_dim // 2, WP = a.w_dim // 2,
                                       THETA = clit.f64(a.theta) })
    return { cuda.op(k, string.format("CDIV((long long)L * %d, %d)", a.head_dim // 2, THREADS), 1, THREADS, 0, E:out(n),
                     { "INT(F)", "INT(H)", "INT(W)" }) }
end

-- One thread per 8 values (16-byte accesses) where the width allows, else per value; 32-bit indices.
emit.gated_residual = function(n, E)
    local a = n.attrs
    check_int32(E, n.out)
    local vec = a.dim % 8 == 0 and 8 or 1
    local k = E:kernel("gated_residual", { C = a.dim, CHUNKS = a.chunks, GATE = a.gate, VEC = vec, TX = ctype(n.ins[1]),
                                           TU = ctype(n.ins[2]), TY = ctype(n.out), AT = a.at_tok0 and 1 or 0 })
    return { elementwise_op(k, string.format("%s / %d", numel(n.out), vec), E:out(n),
                            at_tok0_args(n, n.ins[3], { ptr(n.ins[1]), ptr(n.ins[2]), ptr(n.ins[3]),
                                                        "INT(" .. rows(n.out) .. ")", "INT(tokens_per_row)" })) }
end

-- A residual and its norm (lower.lua's residual_norm): writes the norm's output (the op's) and the residual
-- stream (n.also), both traced (OP2). Arguments the variant does not read get the modulation's pointer.
-- Threads and values per access of a residual_norm row of C channels: one 16-byte chunk of 8 per thread per pass,
-- with as few passes as keep the threads at most 1024 and a multiple of 32; else one value at a time.
local function residual_norm_shape(E, n, C)
    if C % 8 == 0 then
        local chunks = C // 8
        for per = 1, chunks do
            local th = chunks // per
            if chunks % per == 0 and th <= 1024 and th % 32 == 0 then return th, 8 end
        end
    end
    return cuda.row_threads(E.s, n, C), 1
end

emit.residual_norm = function(n, E)
    local a = n.attrs
    local th, vec = residual_norm_shape(E, n, a.dim)
    local rmod = a.gated and ptr(n.ins[3]) or nil
    local nmod = a.modulate and ptr(n.ins[#n.ins]) or nil
    local any = rmod or nmod or ptr(n.ins[1])
    local k = E:kernel("residual_norm", { C = a.dim, THREADS = th, VEC = vec, GATED = a.gated and 1 or 0,
                                          GATE = a.gate or 0,
                                          RCHUNKS = a.rchunks or 0, MODULATE = a.modulate and 1 or 0,
                                          SHIFT = a.shift or 0, SCALE = a.scale or 0, NCHUNKS = a.nchunks or 0,
                                          ROUND_IN = a.round_input and 1 or 0, EPS = clit.f32(a.eps),
                                          TX = ctype(n.ins[1]), TU = ctype(n.ins[2]), TR = ctype(n.also),
                                          TY = ctype(n.out), AT = a.at_tok0 and 1 or 0 })
    local w = a.modulate and any or wptr(a.weight)
    local b = a.modulate and any or wptr(a.bias)
    return { string.format("OP2(%s, %s, 1, %d, 0, %s, %s, %s);", k, rows(n.ins[1]), th, E:out(n), cuda.out(n.also),
                           table.concat(at_tok0_args(n, n.ins[#n.ins], { ptr(n.ins[1]), ptr(n.ins[2]), rmod or any,
                                                                    nmod or any, w, b, "INT(tokens_per_row)" }), ", ")) }
end

-- The attention over `heads` heads of 128 as one function of the file: q and o [lq, C], k and v [lk, C]
-- (C = heads x 128, bf16); two kernels, one chosen at run time (runtime/cuda/dit_cuda.c: the sm_90a one, TMA
-- and wgmma, on a cc 9.0 GPU; else the sm_80 one).
local function attention_function(E, heads, D)
    local sc, sc90 = schedule.attention, schedule.attention90_for(E.s)
    local C = heads * D
    local scale = clit.f32(1.4426950408889634 / math.sqrt(D))
    local name = string.format("attention_h%d_d%d", heads, D)
    return E:helper(name, function()
        local k90 = E:kernel("attention_sm90", schedule.attention90_consts(heads, D, sc90))
        local k80 = E:kernel("attention_sm80", { NH = heads, D = D, BLOCK_M = sc.block_m, BLOCK_N = sc.block_n,
                                                 STAGES = sc.stages, THREADS = sc.threads,
                                                 SMEM = schedule.attention_smem(D) })
        return {
            string.format("/* o = softmax(q k^T / sqrt(%d)) v over %d heads of %d: q and o [lq, %d], k and v [lk, %d], "
                          .. "bf16;", D, heads, D, C, C),
            " * v's rows ldv values apart (a third of a fused q|k|v: 3 x its width).",
            " * The sm_90a kernel (TMA, wgmma) where the runtime chose it (st->attn_sm90), else the sm_80 one;",
            " * q's rows ldq values apart; q_rs, q_g, q_tab: q's norm (and RoPE) applied where the kernel loads q",
            " * (pointers to null device pointers for none; lower.lua's q_norm).",
            " * o is the op's output (OUT...), traced once the kernel has run. */",
            string.format("static void %s(const sky_cuda_program *st, CUstream s, sky_cuda_out *o, CUdeviceptr *q, "
                          .. "int ldq,", name),
            string.format("%s CUdeviceptr *k, CUdeviceptr *v, int ldv, int lq, int lk, CUdeviceptr *q_rs, "
                          .. "CUdeviceptr *q_g,", string.rep(" ", #name + 12)),
            string.format("%s CUdeviceptr *q_tab)", string.rep(" ", #name + 12)),
            "{",
            "    if (st->attn_sm90) {",
            "        CUtensorMap tm_q, tm_k, tm_v;",
            string.format("        sky_cuda_tmap_bf16_ld(&tm_q, *q, lq, %d, ldq, 128);", C),
            string.format("        sky_cuda_tmap_bf16(&tm_k, *k, lk, %d, %d);", C, sc90.block_n),
            string.format("        sky_cuda_tmap_bf16_ld(&tm_v, *v, lk, %d, ldv, %d);", C, sc90.block_n),
            string.format("        LAUNCH(%s, CDIV(lq, 128), %d, 384, ATTN90_SMEM, &tm_q, &tm_k, &tm_v, &o->p, INT(lq), "
                          .. "INT(lk), FLT(%s), q_rs, q_g, q_tab);", k90, heads, scale),
            "    } else {",
            string.format("        LAUNCH(%s, CDIV(lq, %d), %d, %d, ATTN_SMEM, q, k, v, &o->p, INT(lq), INT(lk), FLT(%s), "
                          .. "INT(ldv), INT(ldq), q_rs, q_g, q_tab);", k80, sc.block_m, heads, sc.threads, scale),
            "    }",
            "    sky_cuda_trace_out(st, s, o);",
            "}",
        }
    end)
end

-- The attention: a call of its shape's function.
emit.attention = function(n, E)
    local a = n.attrs
    if a.head_dim ~= 128 then
        fail.user("%s: the CUDA attention kernel is written for head dim 128, this spec has %d "
                  .. "(generate it for the cpu target only)", E.s.path, a.head_dim)
    end
    local q, k, v = n.ins[1], n.ins[2], n.ins[3]
    assert(rows(k) == rows(v), "emit/cuda_dit: attention keys and values of two lengths")
    local f = attention_function(E, a.num_heads, a.head_dim)
    local C = a.num_heads * a.head_dim
    local vp = a.v_col and col_ptr(v, a.v_col) or ptr(v)
    local qp = a.q_col and col_ptr(q, a.q_col) or ptr(q)
    local none = "&(CUdeviceptr){0}"
    local rs, g, tab = none, none, none
    if a.q_norm then
        rs, g = ptr(n.ins[4]), wptr(a.q_weight)
        if n.ins[5] then tab = ptr(n.ins[5]) end
    end
    return { string.format("%s(st, s, %s, %s, %d, %s, %s, %d, %s, %s, %s, %s, %s);", f, E:out(n), qp, a.q_ld or C,
                           ptr(k), vp, a.v_ld or C, rows(q), rows(k), rs, g, tab) }
end

-- ---- Ulysses sequence parallelism (dit_forward_usp): the symbols P, Ls, Lp and tok0 (gen/programs/dit.lua) read
-- the ranks (cuda_program.h sky_cuda_usp); the collectives go through its hooks on the step's stream, so that a
-- captured CUDA Graph records them.

-- The type the data movement kernels copy a tensor's values as: their raw bits (bf16 as unsigned short).
local function raw_type(t) return t.dtype == "bf16" and "unsigned short" or ctype(t) end

-- This rank's rows [tok0, tok0 + Ls) of the [L, cols] input, the rows past L zero.
emit.usp_slice = function(n, E)
    local k = E:kernel("usp_slice", { COLS = n.out.dims[2], T = raw_type(n.out) })
    return { elementwise_op(k, numel(n.out), E:out(n), { ptr(n.ins[1]), "INT(" .. rows(n.out) .. ")", "INT(tok0)",
                                                         "INT(" .. rows(n.ins[1]) .. ")" }) }
end

-- The head groups of the rank's rows as P blocks for the all-to-all (unpack: back).
local function usp_pack(unpack)
    return function(n, E)
        local k = E:kernel("usp_pack_heads", { C = n.attrs.dim, T = raw_type(n.out), UNPACK = unpack })
        return { elementwise_op(k, numel(n.out), E:out(n), { ptr(n.ins[1]), "INT(" .. rows(n.out) .. ")", "INT(P)" }) }
    end
end
emit.usp_pack_heads = usp_pack(0)
emit.usp_unpack_heads = usp_pack(1)

-- [Ls, C] as P blocks of Ls x C / P values: block p to rank p, rank p's into block p.
emit.usp_alltoall = function(n, E)
    local x = n.ins[1]
    return { string.format("ALLTOALL(OFF_%s, %s, (long long)%s * %d / P);", ident(x.name), E:out(n), rows(x),
                           x.dims[2]) }
end

-- Every rank's [Ls, cols] in rank order into [Lp, cols].
emit.usp_allgather = function(n, E)
    local x = n.ins[1]
    return { string.format("ALLGATHER(OFF_%s, %s, (long long)%s * %d);", ident(x.name), E:out(n), rows(x), x.dims[2]) }
end

-- The self-attention of this rank's NH / P heads over the Lp = Ls x P queries the all-to-all brought (q, k and v
-- [Lp, C / P]) and the first L keys (the padding rows are not keys): the attention function of NH / P heads, one
-- per rank count the spec allows (programs/dit.lua usp_ranks), chosen on P.
emit.attention_heads = function(n, E)
    local D = n.attrs.head_dim
    if D ~= 128 then
        fail.user("%s: the CUDA attention kernel is written for head dim 128, this spec has %d "
                  .. "(generate it for the cpu target only)", E.s.path, D)
    end
    local q, k, v = n.ins[1], n.ins[2], n.ins[3]
    local NH = q.dims[2] // D
    local none = "&(CUdeviceptr){0}"
    local lines = { "switch (P) { /* the heads of this rank */" }
    for _, P in ipairs(dit.usp_ranks(E.s)) do
        local f = attention_function(E, NH // P, D)
        local C = NH // P * D
        lines[#lines + 1] = string.format("case %d: %s(st, s, %s, %s, %d, %s, %s, %d, Lp, L, %s, %s, %s); break;", P, f,
                                          E:out(n), ptr(q), C, ptr(k), ptr(v), C, none, none, none)
    end
    lines[#lines + 1] = "default: break; /* no other rank count (the plugin's use_comm refuses it) */"
    lines[#lines + 1] = "}"
    return lines
end

-- A GEMM: dtypes and epilogue from the node; m is bounded by the plan.
emit.linear = function(n, E)
    local a, x = n.attrs, n.ins[1]
    assert(x.kind ~= "prompt", "emit/cuda_dit: a GEMM reads per-prompt tensor " .. x.name)
    -- the fused q|k|v (lower.lua's qkv): q's weight and bias are the first thirds of [3C, C] and [3C] (weight_places)
    local role = cuda.gemm_role(a.weight.name)
    if a.qkv then role = role:gsub("%.q$", ".qkv") end
    local i = E:gemm({ m_max = graph.max_dim(E.g, x.dims[1]), n = a.n, k = a.k, a_dtype = cuda.gemm_dtype(x),
                       out_dtype = cuda.gemm_dtype(n.out),
                       epilogue = a.epilogue == "gelu_tanh" and "SKY_GEMM_EPI_GELU_TANH_BIAS" or "SKY_GEMM_EPI_BIAS" },
                     role)
    return { string.format("GEMM(%s, %s, OFF_%s, W_%s, W_%s, %s);", i, rows(x), ident(x.name), ident(a.weight.name),
                           ident(a.bias.name), E:out(n)) }
end

-- ---- the file -------------------------------------------------------------------------------------

-- The dtype each weight is stored in on the device: a GEMM's weight has its A dtype and its bias
-- its output dtype (cuBLASLt's bias epilogue reads the bias in the output type: runtime/cuda/gemm.h);
-- everything else is fp32 (norm weights, modulation tables, the fps embedding).
local function weight_dtypes(g)
    local dt = {}
    local function set(w, dtype)
        assert(dt[w.name] == nil or dt[w.name] == dtype,
               "emit/cuda_dit: weight " .. w.name .. " is read by GEMMs of two dtypes")
        dt[w.name] = dtype
    end
    for _, n in ipairs(g.nodes) do
        if n.op == "linear" then
            for _, w in ipairs({ n.attrs.weight, n.attrs.k_weight, n.attrs.v_weight }) do set(w, n.ins[1].dtype) end
            for _, b in ipairs({ n.attrs.bias, n.attrs.k_bias, n.attrs.v_bias }) do set(b, n.out.dtype) end
        end
    end
    return dt
end

-- Each weight's place in the device buffer (runtime/cuda/cuda_program.c: in place order, each 256-byte
-- aligned): the weights' order, but a fused q|k|v's k and v weights right after its q weight and their biases
-- after its bias, so that q's [C, C] and [C] start one [3C, C] and one [3C] (no padding between: C C and C
-- values of the device dtype are multiples of 256 bytes, checked here).
local function weight_places(g, dt)
    local after = {}
    for _, n in ipairs(g.nodes) do
        local a = n.attrs
        if n.op == "linear" and a.qkv then
            for _, w in ipairs({ a.weight, a.k_weight, a.v_weight, a.bias, a.k_bias, a.v_bias }) do
                local e = 1
                for _, d in ipairs(w.shape) do e = e * d end
                assert(e * (dt[w.name] == "bf16" and 2 or 4) % 256 == 0,
                       "emit/cuda_dit: " .. w.name .. " does not fill whole 256-byte steps; the fused q|k|v needs it")
            end
            after[a.weight.name] = { a.k_weight, a.v_weight }
            after[a.bias.name] = { a.k_bias, a.v_bias }
        end
    end
    local moved, order = {}, {}
    for _, list in pairs(after) do for _, w in ipairs(list) do moved[w.name] = true end end
    for _, w in ipairs(g.weights) do
        if not moved[w.name] then
            order[#order + 1] = w.name
            for _, m in ipairs(after[w.name] or {}) do order[#order + 1] = m.name end
        end
    end
    assert(#order == #g.weights, "emit/cuda_dit: the weight places lost a weight")
    local place = {}
    for i, name in ipairs(order) do place[name] = i - 1 end
    return place
end

-- The device bytes of the program's weights as the plugin uploads them (runtime/cuda/cuda_program.c
-- sky_cuda_prog_weights: each weight at its device dtype, padded to 256 bytes, in one allocation).
function cuda_dit.weight_device_bytes(g)
    local dt, total = weight_dtypes(g), 0
    for _, wt in ipairs(g.weights) do
        local n = 1
        for _, d in ipairs(wt.shape) do n = n * d end
        total = total + (n * (dt[wt.name] == "bf16" and 2 or 4) + 255) // 256 * 256
    end
    return total
end

-- The device bytes of one block's weights as the plugin lays them out under --offload_blocks (runtime/cuda/
-- offload.c: the weights named blocks.<b>.*, each at its device dtype padded to 256 bytes; the largest block)
-- and the number of blocks.
function cuda_dit.block_device_bytes(g)
    local dt, per, n_blocks = weight_dtypes(g), {}, 0
    for _, wt in ipairs(g.weights) do
        local b = tonumber(wt.name:match("^blocks%.(%d+)%."))
        if b then
            local n = 1
            for _, d in ipairs(wt.shape) do n = n * d end
            per[b] = (per[b] or 0) + (n * (dt[wt.name] == "bf16" and 2 or 4) + 255) // 256 * 256
            n_blocks = math.max(n_blocks, b + 1)
        end
    end
    local most = 0
    for _, bytes in pairs(per) do most = math.max(most, bytes) end
    return most, n_blocks
end

-- Whether weight wt is quantised by --weight_dtype fp8 (runtime/models/fp8_quant.c sky_fp8_quantised: a 2-D
-- tensor named blocks.*, a block linear weight).
local function fp8_quantised(wt) return #wt.shape == 2 and wt.name:match("^blocks%.") ~= nil end

-- The device bytes of --weight_dtype fp8 (runtime/cuda/offload.c, fp8 mode), each piece padded to 256 bytes:
-- what the quantised weights take at their device dtype (bf16), what they take as fp8 (the codes, one byte each,
-- and one fp32 scale per row), and the largest block's quantised weights at bf16 (one block slot).
function cuda_dit.fp8_device_bytes(g)
    local dt, as_bf16, as_fp8, per = weight_dtypes(g), 0, 0, {}
    local function pad(n) return (n + 255) // 256 * 256 end
    for _, wt in ipairs(g.weights) do
        if fp8_quantised(wt) then
            assert(dt[wt.name] == "bf16", "emit/cuda_dit: fp8 weight " .. wt.name .. " is not bf16 on the device")
            local rows, cols = wt.shape[1], wt.shape[2]
            local b = tonumber(wt.name:match("^blocks%.(%d+)%."))
            as_bf16 = as_bf16 + pad(rows * cols * 2)
            as_fp8 = as_fp8 + pad(rows * cols) + pad(rows * 4)
            per[b] = (per[b] or 0) + pad(rows * cols * 2)
        end
    end
    local most = 0
    for _, bytes in pairs(per) do most = math.max(most, bytes) end
    return as_bf16, as_fp8, most
end

-- The launch sequence's hooks: a section per block (else the part), a comment per op; a block's section opens
-- with BLOCK_BEGIN(b) and closes with BLOCK_END(b) (runtime/cuda/cuda_program.h: with --offload_blocks, the wait
-- for the block's weights and the copy of a later block's; nothing otherwise).
local hooks = {
    section = function(n) return n.out.name:match("^(blocks%.%d+)%.") or n.part end,
    comment = function(n) return cuda.node_comment(n, n.attrs.epilogue, true) end,
    enter = function(sec)
        local b = sec:match("^blocks%.(%d+)$")
        return b and string.format("BLOCK_BEGIN(%s);", b) or nil
    end,
    leave = function(sec)
        local b = sec:match("^blocks%.(%d+)$")
        return b and string.format("BLOCK_END(%s);", b) or nil
    end,
}

-- The weights node n reads (its attributes that are entries of g's weights table).
local function node_weights(g, n)
    local ws = {}
    for _, v in pairs(n.attrs) do
        if type(v) == "table" and v.name and g.weights[v.name] == v then ws[#ws + 1] = v end
    end
    return ws
end

-- Each weight's block (blocks.<b>.*: b, else -1) and the number of blocks, checked against the launch sequence:
-- a block's weights are read only inside its own section, and every part that has block sections goes through
-- blocks 0 .. n-1 once each, in order (the slot rotation of --offload_blocks relies on both).
local function weight_blocks(g)
    local block, n_blocks = {}, 0
    for _, wt in ipairs(g.weights) do
        local b = wt.name:match("^blocks%.(%d+)%.")
        block[wt.name] = b and tonumber(b) or -1
        if b then n_blocks = math.max(n_blocks, tonumber(b) + 1) end
    end
    local seen = {}
    for _, n in ipairs(g.nodes) do
        local sec = tonumber(n.out.name:match("^blocks%.(%d+)%."))
        for _, w in ipairs(node_weights(g, n)) do
            assert(block[w.name] == -1 or block[w.name] == sec,
                   "emit/cuda_dit: " .. w.name .. " is read outside its block's section by " .. n.out.name)
        end
        local part = n.part or "all"
        seen[part] = seen[part] or { last = -1 }
        if sec and sec ~= seen[part].last then
            assert(sec == seen[part].last + 1, "emit/cuda_dit: part " .. part .. " does not go through the blocks in order")
            seen[part].last = sec
        end
    end
    for part, s in pairs(seen) do
        assert(s.last == -1 or s.last == n_blocks - 1, "emit/cuda_dit: part " .. part .. " skips blocks")
    end
    return block, n_blocks
end

-- TeaCache's two kernels (reference §8): the residual of a pass through the blocks, and its application.
local function teacache_kernels(E)
    local g = E.g
    local tokens = g.exposed.tokens
    -- runtime/cuda/dit_cuda.c copies the tokens as bf16 and reads the probes e and e0 as fp32
    assert(tokens.dtype == "bf16" and g.exposed.hidden.dtype == "bf16" and g.exposed.e.dtype == "f32"
           and g.exposed.e0.dtype == "f32", "emit/cuda_dit: TeaCache's tensors changed dtype")
    check_int32(E, tokens)
    local vec = tokens.dims[2] % 8 == 0 and 8 or 1
    local residual = E:kernel("teacache", { T = ctype(tokens), MODE = "residual", OP = "-", VEC = vec })
    local apply = E:kernel("teacache", { T = ctype(tokens), MODE = "apply", OP = "+", VEC = vec })
    return residual, apply, vec
end

-- TeaCache's launch function on the tokens [L, dim] (dit_forward_usp: this rank's [Ls, dim]; device pointers outside
-- the arena allowed).
local function teacache_function(h, E, k_residual, k_apply, vec)
    local tokens = E.g.exposed.tokens
    local C, rows_name = tokens.dims[2], tokens.dims[1]
    local fname = E.g.name .. "_cuda_teacache"
    h:line("/* TeaCache (reference §8): y = a + b (apply = 1) or y = a - b (apply = 0), over the [%s, %d] tokens. */",
           rows_name, C)
    local pad = string.rep(" ", #fname + 6)
    h:line("void %s(const sky_cuda_program *st, CUstream s, int F, int H, int W, int apply,", fname)
    h:line("%sCUdeviceptr y, CUdeviceptr a, CUdeviceptr b);", pad)
    h:line("void %s(const sky_cuda_program *st, CUstream s, int F, int H, int W, int apply,", fname)
    h:line("%sCUdeviceptr y, CUdeviceptr a, CUdeviceptr b)", pad)
    h:open("{")
    local count = string.format("const int n = (int)(%s) * %d; /* < 2^31 at the largest size (gen/emit/cuda_dit.lua) */",
                                rows_name, C)
    for _, l in ipairs(cuda.symbol_lines(E.g, count)) do h:line("%s", l) end
    h:line("%s", count)
    h:line("LAUNCH(apply ? %s : %s, CDIV(n, %d), 1, %d, 0, &y, &a, &b, INT(n));", k_apply, k_residual, vec * THREADS,
           THREADS)
    h:close("}")
    h:blank()
end

-- --weight_dtype fp8 on the device (runtime/cuda/offload.h): the kernel expanding one block linear weight's e4m3 codes
-- and row scales into its bf16 block slot, and its launch function (device pointers outside the arena).
local function fp8_expand_function(h, pn, k)
    h:line("/* --weight_dtype fp8: y [rows, cols] bf16 = e4m3 codes x the row's fp32 scale (templates/cuda/fp8_expand.cu.in). */")
    h:line("void " .. pn .. "_cuda_fp8_expand(const sky_cuda_program *st, CUstream s, CUdeviceptr y, CUdeviceptr codes,")
    h:line("                                 CUdeviceptr scale, long long rows, long long cols);")
    h:line("void " .. pn .. "_cuda_fp8_expand(const sky_cuda_program *st, CUstream s, CUdeviceptr y, CUdeviceptr codes,")
    h:line("                                 CUdeviceptr scale, long long rows, long long cols)")
    h:open("{")
    h:line("LAUNCH(%s, CDIV(cols, %d), rows, %d, 0, &y, &codes, &scale, INT(cols));", k, THREADS, THREADS)
    h:close("}")
    h:blank()
end

-- One record function per part, then a step (every part but the prompt's) calling them; each is launched
-- on stream s, and the runtime captures a step or a part into a CUDA Graph.
local function record_functions(h, g, bodies, part_names)
    assert(table.concat(part_names, " ") == "context embed blocks head", "emit/cuda_dit: dit_forward's parts changed")
    local calls = cwriter.new()
    for _, part in ipairs(part_names) do
        cuda.record_function(h, g, g.name .. "_cuda_record_" .. part, bodies[part]:text(),
                             string.format("Part \"%s\" of one forward of one sample (gen/programs/dit.lua).", part))
        if part ~= "context" then calls:line("%s_cuda_record_%s(st, s, F, H, W, Ft);", g.name, part) end
    end
    cuda.record_function(h, g, g.name .. "_cuda_record_step", calls:text(),
                         "One forward of one sample whose prompt part has run: the other parts in order.")
end

-- The sky_dit_cuda_desc of the program (runtime/cuda/cuda_program.h).
local function descriptor(h, E)
    local g, p = E.g, E.p
    local function slot(name)
        local t = g.by_name[name]
        if not t or not p.by_tensor[t.id] then return "{0, 0}" end
        return cuda.slot(p, t)
    end
    cuda.desc_open(h, E, "sky_dit_cuda_desc", false)
    local pn = g.name
    h:line(".n_weights = %d, .weight_bf16 = %s_weight_bf16, .weight_place = %s_weight_place,", #g.weights, pn, pn)
    h:line(".weight_block = %s_weight_block, .n_blocks = %d,", pn, E.n_blocks)
    h:line(".arena_bytes = %s, .prompt_bytes = %s,", clit.size(p.peak), clit.size(p.prompt_bytes))
    h:line(".attention_smem = ATTN_SMEM, .attention90_smem = ATTN90_SMEM,")
    for _, name in ipairs({ "x", "y", "t", "context", "clip_fea", "fps", "v" }) do h:line(".%s = %s,", name, slot(name)) end
    for _, name in ipairs({ "tokens", "hidden", "e", "e0" }) do
        h:line(".%s = %s,", name, slot(g.exposed[name].name))
    end
    h:line(".record_step = %s_cuda_record_step,", pn)
    h:line(".record_part = { %s_cuda_record_context, %s_cuda_record_embed, %s_cuda_record_blocks,", pn, pn, pn)
    h:line("                 %s_cuda_record_head },", pn)
    h:line(".teacache = %s_cuda_teacache,", pn)
    h:line(".fp8_expand = %s_cuda_fp8_expand,", pn)
    h:close("};")
end

-- Emit the three files of the CUDA dit_forward (its plan p, of the lowered graph) into `files`.
function cuda_dit.emit(s, p, files, ctx)
    local E = cuda.program_state(s, p, ctx)
    local g = p.graph
    local bodies, part_names = cuda.launch_sequence(E, emit, hooks)
    local k_residual, k_apply, tc_vec = teacache_kernels(E)
    local k_fp8 = E:kernel("fp8_expand", {})
    cuda.write_kernels(E, ctx, files)

    local n_context = 0
    for _, n in ipairs(g.nodes) do if n.part == "context" then n_context = n_context + 1 end end
    local h = cuda.file_open(E, ctx, {
        string.format("program    %s (cuda): %d ops per step, %d more once per prompt", g.name, #g.nodes - n_context,
                      n_context),
        string.format("arena      %s bytes (the original's dtypes; see plan_cuda.txt)", plan.commas(p.peak)),
        string.format("prompt     %s bytes per prompt (the cross-attention keys and values)", plan.commas(p.prompt_bytes)),
    })
    h:line("/* dynamic shared memory of the attention kernels, sm_80 and sm_90a (gen/schedule_sm90.lua) */")
    h:line("#define ATTN_SMEM %d", schedule.attention_smem(128))
    local sc90, sc90_name = schedule.attention90_for(s)
    h:line("#define ATTN90_SMEM %d /* schedule %s */", schedule.attention90_smem(128, sc90), sc90_name)
    h:blank()
    cuda.offsets(h, "arena offsets (bytes), from gen/plan.lua with the CUDA dtypes", p.buffers, 40)
    cuda.offsets(h, "prompt arena offsets (bytes): tensors made once per prompt and kept (gen/plan.lua)", p.prompt, 40)
    cuda.tables(h, E)
    local wdt = weight_dtypes(g)
    h:line("/* device dtype of each weight: the A dtype of its GEMM, fp32 otherwise */")
    h:open(string.format("const unsigned char %s_weight_bf16[%d] = {", g.name, #g.weights))
    for _, wt in ipairs(g.weights) do
        h:line("%d, /* %s */", (wdt[wt.name] == "bf16") and 1 or 0, clit.comment(wt.name))
    end
    h:close("};")
    h:blank()
    local place = weight_places(g, wdt)
    h:line("/* each weight's place in the device buffer: its index, but each fused q|k|v's weights adjacent */")
    h:open(string.format("const int %s_weight_place[%d] = {", g.name, #g.weights))
    for _, wt in ipairs(g.weights) do h:line("%d, /* %s */", place[wt.name], clit.comment(wt.name)) end
    h:close("};")
    h:blank()
    local block
    block, E.n_blocks = weight_blocks(g)
    h:line("/* each weight's block (-1: none; kept on the device under --offload_blocks) */")
    h:open(string.format("const short %s_weight_block[%d] = {", g.name, #g.weights))
    for _, wt in ipairs(g.weights) do h:line("%d, /* %s */", block[wt.name], clit.comment(wt.name)) end
    h:close("};")
    h:blank()
    cuda.helpers(h, E)
    record_functions(h, g, bodies, part_names)
    teacache_function(h, E, k_residual, k_apply, tc_vec)
    fp8_expand_function(h, g.name, k_fp8)
    descriptor(h, E)
    files["gen/" .. g.name .. "_cuda.c"] = h:text()
end

return cuda_dit
