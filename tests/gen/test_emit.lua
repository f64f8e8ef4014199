-- tests/gen/test_emit.lua: the emitters (gen/emit/). Every CUDA template has a name rule (emit/names.lua);
-- a GEMM's role drops only a repeated block's index. Then, on the generated code of tiny_df128 and
-- df_1.3b_540p (in a temporary directory): every op's output is recorded for --trace exactly once, by its
-- statement (OUT...) or, after a loop, by a TRACE line, and dit_forward has no TRACE line left; the
-- attention's sm_90a/sm_80 choice is made in one function per attention shape; every GEMM call names an
-- entry of its file's GEMM enum; kernel names are short, each listed beside its kernel with its template
-- and constants; the CPU code records every op once too.
local t      = require("t")
local spec   = require("spec")
local graph  = require("graph")
local lower  = require("lower")
local names  = require("emit.names")
local cuda   = require("emit.cuda")
local sorted = require("lib.sorted")

local p = assert(io.popen("ls templates/cuda"))
for file in p:lines() do
    local template = file:match("^(.*)%.cu%.in$")
    if template then t.check(names.cuda[template], "templates/cuda/%s has no name rule in emit/names.lua", file) end
end
p:close()

t.check_eq(cuda.gemm_role("blocks.3.self_attn.q.weight"), "blocks.self_attn.q", "role of a block's weight")
t.check_eq(cuda.gemm_role("blocks.12.ffn.0.weight"), "blocks.ffn.0", "the index of a Sequential stays")
t.check_eq(cuda.gemm_role("time_embedding.0.weight"), "time_embedding.0", "no block list, the index stays")
t.check_eq(cuda.gemm_role("decoder.upsamples.4.shortcut.weight"), "decoder.upsamples.4.shortcut", "VAE stages differ")
t.check_eq(cuda.gemm_role("visual.transformer.7.attn.to_qkv.weight"), "visual.transformer.attn.to_qkv", "CLIP")

local function read(path)
    local f = assert(io.open(path, "rb"))
    local text = f:read("a")
    f:close()
    return text
end

-- Every name in `text` that an op statement or a TRACE line records, with its count.
local function traced_names(text)
    local seen = {}
    for _, pattern in ipairs({ '%f[%w_]OUT%("([^"]+)"', '%f[%w_]OUT_PROMPT%("([^"]+)"', '%f[%w_]OUT_CL%("([^"]+)"',
                               '%f[%w_]TRACE%("([^"]+)"' }) do
        for name in text:gmatch(pattern) do seen[name] = (seen[name] or 0) + 1 end
    end
    return seen
end

-- The output names of graph g's ops that the backend records (not the scratch that no op computes), and
-- the op making each.
local function op_outputs(g)
    local out = {}
    for _, n in ipairs(g.nodes) do
        if n.op ~= "attn_scratch" then out[n.out.name] = n.op end
        if n.also then out[n.also.name] = n.op end   -- a fused node's second output (residual_norm)
    end
    return out
end

-- Each op output of g recorded once in text (a VAE time conv's twice: once per branch of its if).
local function check_traced(what, g, text)
    local seen, want = traced_names(text), op_outputs(g)
    for _, name in ipairs(sorted.keys(want)) do
        local n, branches = seen[name] or 0, want[name]:match("^time_conv") ~= nil
        t.check(n == 1 or (n == 2 and branches), "%s: %s recorded %d times", what, name, n)
    end
    for _, name in ipairs(sorted.keys(seen)) do t.check(want[name], "%s: %s recorded, not an op's output", what, name) end
end

local tmp = os.tmpname()
os.remove(tmp)
for _, v in ipairs({ "tiny_df128", "df_1.3b_540p" }) do
    local dir = tmp .. "/" .. v
    t.check(os.execute("lua5.4 gen/main.lua specs/" .. v .. ".lua " .. dir .. " 2>/dev/null"), "%s: generation", v)
    local s = spec.load("specs/" .. v .. ".lua")
    local programs = graph.build(s)
    local lowered = lower.run(s, programs)
    for _, pname in ipairs(sorted.keys(programs)) do
        local what = v .. " " .. pname
        if pname == "dit_forward_usp" then        -- lowered and planned for CUDA, emitted for the CPU only so far
            check_traced(what .. " (cpu)", programs[pname], read(dir .. "/gen/" .. pname .. "_cpu.c"))
        else
            local host = read(dir .. "/gen/" .. pname .. "_cuda.c")
            check_traced(what .. " (cuda)", lowered.cuda[pname], host)
            check_traced(what .. " (cpu)", programs[pname], read(dir .. "/gen/" .. pname .. "_cpu.c"))
            local enum = {}
            for name in host:gmatch("\n    (GEMM_[%w_]+)%s*= %d+,") do enum[name] = true end
            for name in host:gmatch("GEMM%w*%((GEMM_[%w_]+),") do t.check(enum[name], "%s: %s not in the enum", what, name) end
            local kernels = read(dir .. "/gen/" .. pname .. "_kernels.cu")
            local list = host:match("_kernel_names%[%d+%] = {\n(.-)\n};")
            for name in list:gmatch('"([^"]+)"') do
                t.check(#name <= 40, "%s: kernel name %s is long", what, name)
                t.check(kernels:find("\n// " .. name .. ": templates/cuda/", 1, true), "%s: no comment beside %s", what, name)
            end
        end
    end
    local dit = read(dir .. "/gen/dit_forward_cuda.c")
    t.check(not dit:find("TRACE(", 1, true), "%s: a TRACE line left in dit_forward_cuda.c", v)
    local _, choices = dit:gsub("if %(st%->attn_sm90%)", "")
    t.check_eq(choices, 1, v .. ": the attention kernel chosen in one place")
    local _, calls = dit:gsub("\n    attention_h%d+_d128%(st, s,", "")
    local attn = 0
    for _, n in ipairs(lowered.cuda.dit_forward.nodes) do if n.op == "attention" then attn = attn + 1 end end
    t.check_eq(calls, attn, v .. ": one attention call per attention op")
end
os.execute("rm -rf '" .. tmp .. "'")
