-- tests/emu/kernel_test.lua — the kernels file of tests/emu/kernel_test.c: chosen templates rendered at
-- sizes the tiny models do not reach (rows longer than a warp, more output channels than one tile,
-- partial channel steps), after the same helpers a generated file holds.
--
--   lua5.4 tests/emu/kernel_test.lua > kernel_test_kernels.cu
--
-- Kernel names are the generator's procedural ones (gen/emit/names.lua: the template and every constant, as
-- the comment beside each generated kernel lists them); kernel_test.c finds them by name.
package.path = "gen/?.lua;" .. package.path
local render = require("lib.render")
local names = require("emit.names")

local function read(path)
    local f = assert(io.open(path, "rb"))
    local t = f:read("a")
    f:close()
    return t
end

local instances = {
    { "softmax_rows", {} },
    { "softmax_relbias", { NH = 4, BUCKETS = 32, MAXDIST = 128 } },
    { "rms_norm_cl", { C = 8, SILU = 0 } },
    { "rms_norm_cl", { C = 96, SILU = 1 } },
    { "rms_norm_cl", { C = 384, SILU = 0 } },
    -- a causal 3x3x3 conv with two column tiles (COUT 96 > 64) and a partial last channel step (CIN 20)
    { "conv_tf32", { CIN = 20, COUT = 96, KT = 3, KH = 3, KW = 3, NC = 2, ST = 1, SH = 1, SW = 1, PH = 1, PW = 1,
                     SPLIT = 0 } },
    -- the encoder's spatial downsample with odd sizes, and the decoder's temporal upsample (split output)
    { "conv_tf32", { CIN = 16, COUT = 72, KT = 1, KH = 3, KW = 3, NC = 0, ST = 1, SH = 2, SW = 2, PH = 0, PW = 0,
                     SPLIT = 0 } },
    { "conv_tf32", { CIN = 16, COUT = 144, KT = 3, KH = 1, KW = 1, NC = 2, ST = 1, SH = 1, SW = 1, PH = 0, PW = 0,
                     SPLIT = 1 } },
    -- attention at several query blocks and key tiles (kernel_test.c: lq 300, lk 600, 512, 257, 40),
    -- the Hopper kernel with two stages, one (its barriers' parity flips every tile) and three (the most
    -- that fit in shared memory)
    { "attention_sm90", { NH = 2, D = 128, STAGES = 2, SMEM = 164928 } },
    { "attention_sm90", { NH = 2, D = 128, STAGES = 1, SMEM = 99392 } },
    { "attention_sm90", { NH = 2, D = 128, STAGES = 3, SMEM = 230464 } },
    { "attention_sm80", { NH = 2, D = 128, BLOCK_M = 128, BLOCK_N = 64, STAGES = 2, THREADS = 256, SMEM = 104448 } },
}

local out = { "// kernel_test_kernels.cu: rendered by tests/emu/kernel_test.lua; do not edit\n" }
for _, h in ipairs({ "templates/cuda/ptx.cuh", "templates/cuda/common.cuh", "templates/cuda/reduce.cuh" }) do
    out[#out + 1] = read(h)
end
for _, inst in ipairs(instances) do
    local template, consts = inst[1], inst[2]
    local name = names.procedural(template, consts)
    local vars = { name = name }
    for k, v in pairs(consts) do vars[k] = tostring(v) end
    local path = "templates/cuda/" .. template .. ".cu.in"
    out[#out + 1] = "\n" .. render.render(read(path), vars, path)
end
io.write(table.concat(out))
