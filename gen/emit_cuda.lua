-- gen/emit_cuda.lua
-- ==================
-- The CUDA backend of dit_forward: bf16 storage and fp32 where the original keeps fp32 (the dtypes
-- recorded on the graph, reference §2.11), fused kernels from templates/cuda/*.cu.in, GEMMs through
-- cuBLASLt (a descriptor table built once at start-up by the runtime), one arena planned for the
-- recorded dtypes. Files written (relative to out/<variant>/):
--   gen/dit_forward_kernels.cu     every kernel the program uses, self-contained (nvcc and NVRTC
--                                  compile this same text)
--   gen/dit_forward_kernels_src.c  that text as a C string, one literal per line, for NVRTC
--   gen/dit_forward_cuda.c         the kernel and GEMM tables and the launch sequence of one forward
--                                  (recorded into a CUDA Graph by the runtime)
-- The CUDA program runs on the graph rewritten by fuse.lua; the CPU backend keeps the unfused one.
--
-- Dims in comments: L tokens of the call, F latent frames, Ft timestep rows (1 or F).

local clit     = require("lib.clit")
local cwriter  = require("lib.cwriter")
local fail     = require("lib.fail")
local cuda_kernels = require("cuda_kernels")
local graph    = require("graph")
local header   = require("header")
local fuse     = require("fuse")
local plan     = require("plan")
local schedule = require("schedule_sm90")

local emit_cuda = {}

local ident = cuda_kernels.ident

-- CUDA type of a tensor's recorded dtype.
local function ctype(t)
    local types = { bf16 = "bf16", f32 = "float", f64 = "double", i64 = "long long" }
    return assert(types[t.dtype], "emit_cuda: no CUDA type for " .. tostring(t.dtype))
end

local function dim_expr(d)
    if math.type(d) == "integer" then return clit.int(d) end
    return d
end

-- Number of elements of t as a C expression.
local function numel(t)
    local parts = {}
    for i, d in ipairs(t.dims) do parts[i] = dim_expr(d) end
    return "(long long)" .. table.concat(parts, " * ")
end

-- A launch argument pointing at tensor t: in the arena, or in the prompt arena (plan.lua).
local function ptr(t) return (t.kind == "prompt" and "PROMPT_PTR(OFF_" or "PTR(OFF_") .. ident(t.name) .. ")" end
-- The tensor-map macro for t (TMAP or TMAP_PROMPT), likewise.
local function tmap(t) return t.kind == "prompt" and "TMAP_PROMPT" or "TMAP" end
local function wptr(w) return "WPTR(W_" .. ident(w.name) .. ")" end
local function rows(t) return dim_expr(t.dims[1]) end

-- Threads of a row kernel over width values, or a user error naming the spec and op.
local function row_threads(s, n, width)
    local t = schedule.row_threads(width)
    if not t then
        fail.user("%s: %s needs a width that is a multiple of 32 for the CUDA backend, got %d", s.path, n.out.name, width)
    end
    return t
end

-- Per op kind: the kernel instance(s) of a node and their launch statement, or a GEMM.
-- inst(n, s) returns { template, consts, launch = function(kernel_index_name) -> C statement }.
local backend = {}

-- Elementwise launch: one thread per element of `over`.
local function elementwise_launch(over, args)
    return function(k)
        return string.format("LAUNCH(%s, CDIV(%s, %d), 1, %d, 0, %s);", k, numel(over), schedule.elementwise_threads,
                             schedule.elementwise_threads, table.concat(args, ", "))
    end
end

backend.patchify = function(n, s)
    local out = {}
    for i, t in ipairs(n.ins) do
        local c0 = (i == 1) and 0 or s.derived.x_channels
        out[i] = { template = "patchify", consts = { CX = t.dims[1], C0 = c0, PATCH_IN = n.attrs.patch_in },
                   launch = function(k)
                       return string.format("LAUNCH(%s, CDIV((long long)L * %d, %d), 1, %d, 0, %s, %s, INT(F), INT(H), INT(W));",
                                            k, t.dims[1], schedule.elementwise_threads, schedule.elementwise_threads,
                                            ptr(n.out), ptr(t))
                   end }
    end
    return out
end
backend.unpatchify = function(n)
    return { { template = "unpatchify", consts = { OUT = n.attrs.out_dim },
               launch = elementwise_launch(n.out, { ptr(n.out), ptr(n.ins[1]), "INT(F)", "INT(H)", "INT(W)" }) } }
end
local function activation(fn)
    return function(n)
        return { { template = "activation", consts = { FN = fn, TX = ctype(n.ins[1]), TY = ctype(n.out) },
                   launch = elementwise_launch(n.out, { ptr(n.out), ptr(n.ins[1]), "LL(" .. numel(n.out) .. ")" }) } }
    end
end
backend.silu = activation("silu")
backend.gelu_tanh = activation("gelu_tanh")
backend.gelu_erf = activation("gelu_erf")
backend.add = function(n)
    return { { template = "add", consts = { TA = ctype(n.ins[1]), TB = ctype(n.ins[2]), TY = ctype(n.out) },
               launch = elementwise_launch(n.out, { ptr(n.out), ptr(n.ins[1]), ptr(n.ins[2]),
                                                    "LL(" .. numel(n.out) .. ")" }) } }
end
backend.add_row = function(n)
    return { { template = "add_row", consts = { COLS = n.out.dims[2] },
               launch = elementwise_launch(n.out, { ptr(n.out), ptr(n.ins[1]), ptr(n.ins[2]), "INT(" .. rows(n.out) .. ")" }) } }
end
backend.embedding = function(n)
    return { { template = "embedding", consts = { ROWS = n.attrs.rows, COLS = n.attrs.dim },
               launch = elementwise_launch(n.out, { ptr(n.out), ptr(n.ins[1]), wptr(n.attrs.table) }) } }
end
backend.sinusoid = function(n)
    return { { template = "sinusoid", consts = { HALF = n.attrs.freq_dim // 2, TY = ctype(n.out) },
               launch = function(k)
                   return string.format("LAUNCH(%s, CDIV((long long)%s * %d, 128), 1, 128, 0, %s, %s, INT(%s));", k,
                                        rows(n.ins[1]), n.attrs.freq_dim // 2, ptr(n.out), ptr(n.ins[1]), rows(n.ins[1]))
               end } }
end
backend.modulation = function(n)
    local a = n.attrs
    return { { template = "modulation",
               consts = { CHUNKS = a.chunks, C = a.dim, ESTRIDE = n.ins[1].dims[2], KSTRIDE = a.per_chunk and a.dim or 0 },
               launch = elementwise_launch(n.out, { ptr(n.out), ptr(n.ins[1]), wptr(a.table), "INT(" .. rows(n.ins[1]) .. ")" }) } }
end
backend.layernorm_modulate = function(n, s)
    local a = n.attrs
    local th = row_threads(s, n, a.dim)
    return { { template = "layernorm_modulate",
               consts = { C = a.dim, THREADS = th, CHUNKS = a.chunks, SHIFT = a.shift, SCALE = a.scale,
                          EPS = clit.f32(a.eps), TX = ctype(n.ins[1]), TY = ctype(n.out) },
               launch = function(k)
                   return string.format("LAUNCH(%s, %s, 1, %d, 0, %s, %s, %s, INT(tokens_per_row));", k, rows(n.ins[1]),
                                        th, ptr(n.out), ptr(n.ins[1]), ptr(n.ins[2]))
               end } }
end
backend.layernorm_affine = function(n, s)
    local a = n.attrs
    local th = row_threads(s, n, a.dim)
    return { { template = "layernorm_affine",
               consts = { C = a.dim, THREADS = th, EPS = clit.f32(a.eps), TX = ctype(n.ins[1]), TY = ctype(n.out),
                          ROUND_IN = a.round_input and 1 or 0 },
               launch = function(k)
                   return string.format("LAUNCH(%s, %s, 1, %d, 0, %s, %s, %s, %s);", k, rows(n.ins[1]), th, ptr(n.out),
                                        ptr(n.ins[1]), wptr(a.weight), wptr(a.bias))
               end } }
end
backend.rmsnorm = function(n, s)
    local a = n.attrs
    local th = row_threads(s, n, a.dim)
    return { { template = "rmsnorm", consts = { C = a.dim, THREADS = th, EPS = clit.f32(a.eps) },
               launch = function(k)
                   return string.format("LAUNCH(%s, %s, 1, %d, 0, %s, %s, %s);", k, rows(n.ins[1]), th, ptr(n.out),
                                        ptr(n.ins[1]), wptr(a.weight))
               end } }
end
backend.rmsnorm_rope = function(n, s)
    local a = n.attrs
    local th = row_threads(s, n, a.dim // 2)
    return { { template = "rmsnorm_rope", consts = { C = a.dim, D = a.head_dim, THREADS = th, EPS = clit.f32(a.eps) },
               launch = function(k)
                   return string.format("LAUNCH(%s, %s, 1, %d, 0, %s, %s, %s, %s);", k, rows(n.ins[1]), th, ptr(n.out),
                                        ptr(n.ins[1]), wptr(a.weight), ptr(n.ins[2]))
               end } }
end
backend.rope_table = function(n)
    local a = n.attrs
    return { { template = "rope_table",
               consts = { D = a.head_dim, TP = a.t_dim // 2, HP = a.h_dim // 2, WP = a.w_dim // 2, THETA = clit.f64(a.theta) },
               launch = function(k)
                   return string.format("LAUNCH(%s, CDIV((long long)L * %d, %d), 1, %d, 0, %s, INT(F), INT(H), INT(W));", k,
                                        a.head_dim // 2, schedule.elementwise_threads, schedule.elementwise_threads,
                                        ptr(n.out))
               end } }
end
backend.gated_residual = function(n)
    local a = n.attrs
    return { { template = "gated_residual",
               consts = { C = a.dim, CHUNKS = a.chunks, GATE = a.gate, TX = ctype(n.ins[1]), TU = ctype(n.ins[2]),
                          TY = ctype(n.out) },
               launch = elementwise_launch(n.out, { ptr(n.out), ptr(n.ins[1]), ptr(n.ins[2]), ptr(n.ins[3]),
                                                    "INT(" .. rows(n.out) .. ")", "INT(tokens_per_row)" }) } }
end
backend.attention = function(n, s)
    local a, sc, sc90 = n.attrs, schedule.attention, schedule.attention90_for(s)
    if a.head_dim ~= 128 then
        fail.user("%s: the CUDA attention kernel is written for head dim 128, this spec has %d "
                  .. "(generate it for the cpu target only)", s.path, a.head_dim)
    end
    local q, k, v = n.ins[1], n.ins[2], n.ins[3]
    local cols = a.num_heads * a.head_dim
    local scale = clit.f32(1.4426950408889634 / math.sqrt(a.head_dim))
    -- Two kernels, one chosen at run time (runtime/cuda/dit_cuda.c: sm_90a on a cc 9.0 GPU).
    return { kernels = {
                 { template = "attention_sm90", consts = schedule.attention90_consts(a.num_heads, a.head_dim, sc90) },
                 { template = "attention_sm80",
                   consts = { NH = a.num_heads, D = a.head_dim, BLOCK_M = sc.block_m, BLOCK_N = sc.block_n,
                              STAGES = sc.stages, THREADS = sc.threads, SMEM = schedule.attention_smem(a.head_dim) } } },
             launch = function(k90, k80)
                 return {
                     "if (st->attn_sm90) {",
                     string.format("    %s(tm_q, OFF_%s, %s, %d, 128);", tmap(q), ident(q.name), rows(q), cols),
                     string.format("    %s(tm_k, OFF_%s, %s, %d, %d);", tmap(k), ident(k.name), rows(k), cols, sc90.block_n),
                     string.format("    %s(tm_v, OFF_%s, %s, %d, %d);", tmap(v), ident(v.name), rows(v), cols, sc90.block_n),
                     string.format("    LAUNCH(%s, CDIV(%s, 128), %d, 384, ATTN90_SMEM, &tm_q, &tm_k, &tm_v, %s, INT(%s), "
                                   .. "INT(%s), FLT(%s));", k90, rows(q), a.num_heads, ptr(n.out), rows(q), rows(k), scale),
                     "} else {",
                     string.format("    LAUNCH(%s, CDIV(%s, %d), %d, %d, ATTN_SMEM, %s, %s, %s, %s, INT(%s), INT(%s), FLT(%s));",
                                   k80, rows(q), sc.block_m, a.num_heads, sc.threads, ptr(q), ptr(k), ptr(v), ptr(n.out),
                                   rows(q), rows(k), scale),
                     "}",
                 }
             end }
end

-- A GEMM descriptor for a linear node: dtypes and epilogue; m is bounded by the plan.
local function gemm_desc(g, n)
    local a = n.attrs
    local epi = a.epilogue == "gelu_tanh" and "SKY_GEMM_EPI_GELU_TANH_BIAS" or "SKY_GEMM_EPI_BIAS"
    local dt = { bf16 = "SKY_GEMM_BF16", f32 = "SKY_GEMM_F32" }
    return { m_max = graph.max_dim(g, n.ins[1].dims[1]), n = a.n, k = a.k, a_dtype = dt[n.ins[1].dtype],
             out_dtype = dt[n.out.dtype], epilogue = epi,
             key = string.format("%d_%d_%d_%s_%s_%s", graph.max_dim(g, n.ins[1].dims[1]), a.n, a.k, n.ins[1].dtype,
                                 n.out.dtype, a.epilogue or "bias") }
end


-- The dtype each weight is stored in on the device: a GEMM's weight has its A dtype and its bias
-- its output dtype (cuBLASLt's bias epilogue reads the bias in the output type: runtime/cuda/gemm.h);
-- everything else is fp32 (norm weights, modulation tables, the fps embedding).
local function weight_dtypes(g)
    local dt = {}
    local function set(w, dtype)
        assert(dt[w.name] == nil or dt[w.name] == dtype,
               "emit_cuda: weight " .. w.name .. " is read by GEMMs of two dtypes")
        dt[w.name] = dtype
    end
    for _, n in ipairs(g.nodes) do
        if n.op == "linear" then
            set(n.attrs.weight, n.ins[1].dtype)
            set(n.attrs.bias, n.out.dtype)
        end
    end
    return dt
end

-- Emit the three files of the CUDA dit_forward into `files`; ctx as emit_c's.
function emit_cuda.emit(s, programs, files, ctx)
    local g = fuse.apply(programs.dit_forward)
    local p = plan.make_one(g, plan.cuda_elem_bytes, 256, "cuda backend, the original's dtypes")
    local set = cuda_kernels.new_set(ctx)
    local gemms, gemm_index = {}, {}
    local bodies, part_names = {}, {}        -- one launch sequence per part (graph.lua), in order
    local body
    local current

    for _, n in ipairs(g.nodes) do
        if not bodies[n.part] then
            bodies[n.part] = cwriter.new()
            part_names[#part_names + 1] = n.part
            current = nil
        end
        body = bodies[n.part]
        local sec = n.out.name:match("^(blocks%.%d+)%.") or n.part
        if sec ~= current then
            body:blank()
            body:line("/* ---- %s %s */", sec, string.rep("-", math.max(4, 72 - #sec)))
            current = sec
        end
        local args = {}
        for i, t in ipairs(n.ins) do args[i] = t.name end
        body:line("/* %s */", clit.comment(string.format("%s = %s(%s)%s  %s %s", n.out.name, n.op,
            table.concat(args, ", "), n.attrs.epilogue and (" + " .. n.attrs.epilogue) or "",
            graph.dims_text(n.out.dims), n.out.dtype)))
        if n.op == "linear" then
            local d = gemm_desc(g, n)
            if not gemm_index[d.key] then
                gemms[#gemms + 1] = d
                gemm_index[d.key] = #gemms - 1
            end
            assert(n.ins[1].kind ~= "prompt", "emit_cuda: a GEMM reads per-prompt tensor " .. n.ins[1].name)
            body:line("%s(%d, %s, OFF_%s, W_%s, W_%s, OFF_%s);", n.out.kind == "prompt" and "GEMM_TO_PROMPT" or "GEMM",
                      gemm_index[d.key], rows(n.ins[1]), ident(n.ins[1].name), ident(n.attrs.weight.name),
                      ident(n.attrs.bias.name), ident(n.out.name))
        else
            local b = assert(backend[n.op], "emit_cuda: no CUDA implementation of op " .. n.op)
            local insts = b(n, s)
            if insts.kernels then              -- kernels chosen between at run time: one launch text
                local names = {}
                for i, inst in ipairs(insts.kernels) do names[i] = "K_" .. ident(set:add(inst.template, inst.consts)) end
                for _, l in ipairs(insts.launch(table.unpack(names))) do body:line("%s", l) end
            else
                for _, inst in ipairs(insts) do
                    body:line("%s", inst.launch("K_" .. ident(set:add(inst.template, inst.consts))))
                end
            end
        end
        body:line("%s(%s, OFF_%s, SKY_TRACE_%s, %s, 0);", n.out.kind == "prompt" and "TRACE_PROMPT" or "TRACE",
                  clit.str(n.out.name), ident(n.out.name), n.out.dtype:upper(), graph.numel_expr(n.out.dims))
    end
    -- TeaCache (reference §8): the residual of a pass through the blocks, and its application.
    local tokens = g.exposed.tokens
    -- runtime/cuda/dit_cuda.c copies the tokens as bf16 and reads the probes e and e0 as fp32
    assert(tokens.dtype == "bf16" and g.exposed.hidden.dtype == "bf16" and g.exposed.e.dtype == "f32"
           and g.exposed.e0.dtype == "f32", "emit_cuda: TeaCache's tensors changed dtype")
    local k_residual = set:add("teacache", { T = ctype(tokens), MODE = "residual", OP = "-" })
    local k_apply = set:add("teacache", { T = ctype(tokens), MODE = "apply", OP = "+" })
    cuda_kernels.write(s, ctx, files, "dit_forward", set, #gemms)

    -- gen/dit_forward_cuda.c: tables and the launch sequence.
    local wdt = weight_dtypes(g)
    local h = cwriter.new()
    local n_context = 0
    for _, n in ipairs(g.nodes) do if n.part == "context" then n_context = n_context + 1 end end
    h:raw(header.c_comment(s, ctx, "gen/dit_forward_cuda.c", {
        string.format("program    dit_forward (cuda): %d ops per step, %d more once per prompt", #g.nodes - n_context,
                      n_context),
        string.format("arena      %s bytes (the original's dtypes; see plan_cuda.txt)", plan.commas(p.peak)),
        string.format("prompt     %s bytes per prompt (the cross-attention keys and values)", plan.commas(p.prompt_bytes)),
    }))
    h:line("#include <stdint.h>")
    h:blank()
    h:line("#include \"cuda/cuda_program.h\"")
    h:blank()
    h:line("/* dynamic shared memory of the attention kernels, sm_80 and sm_90a (gen/schedule_sm90.lua) */")
    h:line("#define ATTN_SMEM %d", schedule.attention_smem(128))
    local sc90, sc90_name = schedule.attention90_for(s)
    h:line("#define ATTN90_SMEM %d /* schedule %s */", schedule.attention90_smem(128, sc90), sc90_name)
    h:blank()
    for _, arena in ipairs({ { "arena offsets (bytes), from gen/plan.lua with the CUDA dtypes", p.buffers },
                             { "prompt arena offsets (bytes): tensors made once per prompt and kept (gen/plan.lua)",
                               p.prompt } }) do
        h:line("/* %s */", arena[1])
        for _, b in ipairs(arena[2]) do h:line("#define OFF_%-40s ((size_t)%d)", ident(b.tensor.name), b.offset) end
        h:blank()
    end
    h:open("enum {                                      /* weights, in the order of variant.c's table */")
    for i, wt in ipairs(g.weights) do h:line("W_%s = %d,", ident(wt.name), i - 1) end
    h:close("};")
    h:blank()
    cuda_kernels.tables(h, "dit_forward", set)
    cuda_kernels.gemm_table(h, "dit_forward", gemms)
    h:line("/* device dtype of each weight: the A dtype of its GEMM, fp32 otherwise */")
    h:open(string.format("const unsigned char dit_forward_weight_bf16[%d] = {", #g.weights))
    for _, wt in ipairs(g.weights) do
        h:line("%d, /* %s */", (wdt[wt.name] == "bf16") and 1 or 0, clit.comment(wt.name))
    end
    h:close("};")
    h:blank()

    -- One record function per part, then a step (every part but the prompt's) calling them; each is
    -- launched on stream s, and the runtime captures a step or a part into a CUDA Graph.
    assert(table.concat(part_names, " ") == "context embed blocks head", "emit_cuda: dit_forward's parts changed")
    local calls = cwriter.new()
    for _, part in ipairs(part_names) do
        cuda_kernels.record_function(h, g, "dit_forward_cuda_record_" .. part, bodies[part]:text(),
                                     string.format("Part \"%s\" of one forward of one sample (gen/programs/dit.lua).", part))
        if part ~= "context" then calls:line("dit_forward_cuda_record_%s(st, s, F, H, W, Ft);", part) end
    end
    cuda_kernels.record_function(h, g, "dit_forward_cuda_record_step", calls:text(),
                                 "One forward of one sample whose prompt part has run: the other parts in order.")

    -- TeaCache's two launches on the tokens [L, dim] (device pointers outside the arena allowed).
    local C = tokens.dims[2]
    h:line("/* TeaCache (reference §8): y = a + b (apply = 1) or y = a - b (apply = 0), over the [L, %d] tokens. */", C)
    h:line("void dit_forward_cuda_teacache(const sky_cuda_program *st, CUstream s, int F, int H, int W, int apply,")
    h:line("                               CUdeviceptr y, CUdeviceptr a, CUdeviceptr b);")
    h:line("void dit_forward_cuda_teacache(const sky_cuda_program *st, CUstream s, int F, int H, int W, int apply,")
    h:line("                               CUdeviceptr y, CUdeviceptr a, CUdeviceptr b)")
    h:open("{")
    local L = assert(g.dim.L, "emit_cuda: dit_forward has no symbol L")
    h:line("const long long n = (long long)(%s) * %d;", L.expr, C)
    h:line("LAUNCH(apply ? K_%s : K_%s, CDIV(n, %d), 1, %d, 0, &y, &a, &b, LL(n));", ident(k_apply), ident(k_residual),
           schedule.elementwise_threads, schedule.elementwise_threads)
    h:close("}")
    h:blank()
    local function slot(name)
        local t = g.by_name[name]
        if not t or not p.by_tensor[t.id] then return "{0, 0}" end
        local b = p.by_tensor[t.id]
        return string.format("{%s, %s}", clit.size(b.offset), clit.size(b.bytes))
    end
    h:line("extern const char dit_forward_kernels_src[];")
    h:blank()
    h:open("const sky_dit_cuda_desc dit_forward_cuda = {")
    h:line(".kernels_src = dit_forward_kernels_src,")
    h:line(".n_kernels = %d, .kernel_names = dit_forward_kernel_names,", #set.order)
    h:line(".n_gemms = %d, .gemms = dit_forward_gemms,", #gemms)
    h:line(".n_weights = %d, .weight_bf16 = dit_forward_weight_bf16,", #g.weights)
    h:line(".arena_bytes = %s, .prompt_bytes = %s,", clit.size(p.peak), clit.size(p.prompt_bytes))
    h:line(".attention_smem = ATTN_SMEM, .attention90_smem = ATTN90_SMEM,")
    for _, name in ipairs({ "x", "y", "t", "context", "clip_fea", "fps", "v" }) do
        h:line(".%s = %s,", name, slot(name))
    end
    for _, name in ipairs({ "tokens", "hidden", "e", "e0" }) do
        h:line(".%s = %s,", name, slot(g.exposed[name].name))
    end
    h:line(".record_step = dit_forward_cuda_record_step,")
    h:line(".record_part = { dit_forward_cuda_record_context, dit_forward_cuda_record_embed, dit_forward_cuda_record_blocks,")
    h:line("                 dit_forward_cuda_record_head },")
    h:line(".teacache = dit_forward_cuda_teacache,")
    h:close("};")
    files["gen/dit_forward_cuda.c"] = h:text()
    return p
end

return emit_cuda
