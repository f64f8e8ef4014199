-- tests/emu/kernel_test.lua — the kernels file of tests/emu/kernel_test.c: chosen templates rendered at
-- sizes the tiny models do not reach (rows longer than a warp, more output channels than one tile,
-- partial channel steps), after the same helpers a generated file holds.
--
--   lua5.4 tests/emu/kernel_test.lua DIR     writes DIR/kernel_test_kernels.cu and DIR/kernel_test_attention.inc
--
-- Kernel names are the generator's procedural ones (gen/emit/names.lua: the template and every constant, as
-- the comment beside each generated kernel lists them); kernel_test.c finds them by name, the Hopper
-- attention kernels through kernel_test_attention.inc: one row per schedule of gen/schedule_sm90.lua (all of
-- them, so a schedule added there is tested here), and one with a single stage.
package.path = "gen/?.lua;" .. package.path
local render = require("lib.render")
local names = require("emit.names")
local schedule = require("schedule_sm90")

local dir = arg[1] or error("usage: lua5.4 tests/emu/kernel_test.lua DIR")

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
    -- a causal 3x3x3 conv with one 96-column tile and a partial last channel step (CIN 20), and with two
    -- 64-column tiles (COUT 128)
    { "conv_tf32", { CIN = 20, COUT = 96, KT = 3, KH = 3, KW = 3, NC = 2, ST = 1, SH = 1, SW = 1, PH = 1, PW = 1,
                     SPLIT = 0, BN = 96 } },
    { "conv_tf32", { CIN = 20, COUT = 128, KT = 3, KH = 3, KW = 3, NC = 2, ST = 1, SH = 1, SW = 1, PH = 1, PW = 1,
                     SPLIT = 0, BN = 64 } },
    -- the encoder's spatial downsample with odd sizes (five 16-column tiles, the last partial), the decoder's
    -- temporal upsample (split output, nine 16-column tiles), a 3-channel output (one partial 16-column tile),
    -- one 32-column tile
    { "conv_tf32", { CIN = 16, COUT = 72, KT = 1, KH = 3, KW = 3, NC = 0, ST = 1, SH = 2, SW = 2, PH = 0, PW = 0,
                     SPLIT = 0, BN = 16 } },
    { "conv_tf32", { CIN = 16, COUT = 144, KT = 3, KH = 1, KW = 1, NC = 2, ST = 1, SH = 1, SW = 1, PH = 0, PW = 0,
                     SPLIT = 1, BN = 16 } },
    { "conv_tf32", { CIN = 32, COUT = 3, KT = 3, KH = 3, KW = 3, NC = 2, ST = 1, SH = 1, SW = 1, PH = 1, PW = 1,
                     SPLIT = 0, BN = 16 } },
    { "conv_tf32", { CIN = 8, COUT = 32, KT = 1, KH = 3, KW = 3, NC = 0, ST = 1, SH = 1, SW = 1, PH = 1, PW = 1,
                     SPLIT = 0, BN = 32 } },
    -- a residual and its norm in one pass (residual_norm) beside the unfused kernels it replaces, 1536 channels
    -- (one value at a time, 6 per thread of 256; and in 16-byte chunks of 8, one per thread of 192): the DiT's
    -- three pairs (x1 -> norm3, x2 -> norm2, out -> the next norm1)
    { "residual_norm", { AT = 0, C = 1536, THREADS = 256, VEC = 1, GATED = 1, GATE = 2, RCHUNKS = 6, MODULATE = 0, SHIFT = 0, SCALE = 0,
                         NCHUNKS = 0, ROUND_IN = 1, EPS = "1e-06f", TX = "bf16", TU = "bf16", TR = "float", TY = "bf16" } },
    { "residual_norm", { AT = 0, C = 1536, THREADS = 256, VEC = 1, GATED = 0, GATE = 0, RCHUNKS = 0, MODULATE = 1, SHIFT = 3, SCALE = 4,
                         NCHUNKS = 6, ROUND_IN = 0, EPS = "1e-06f", TX = "float", TU = "bf16", TR = "float", TY = "bf16" } },
    { "residual_norm", { AT = 0, C = 1536, THREADS = 256, VEC = 1, GATED = 1, GATE = 5, RCHUNKS = 6, MODULATE = 1, SHIFT = 0, SCALE = 1,
                         NCHUNKS = 6, ROUND_IN = 0, EPS = "1e-06f", TX = "float", TU = "bf16", TR = "bf16", TY = "bf16" } },
    { "residual_norm", { AT = 0, C = 1536, THREADS = 192, VEC = 8, GATED = 1, GATE = 2, RCHUNKS = 6, MODULATE = 0, SHIFT = 0, SCALE = 0,
                         NCHUNKS = 0, ROUND_IN = 1, EPS = "1e-06f", TX = "bf16", TU = "bf16", TR = "float", TY = "bf16" } },
    { "residual_norm", { AT = 0, C = 1536, THREADS = 192, VEC = 8, GATED = 0, GATE = 0, RCHUNKS = 0, MODULATE = 1, SHIFT = 3, SCALE = 4,
                         NCHUNKS = 6, ROUND_IN = 0, EPS = "1e-06f", TX = "float", TU = "bf16", TR = "float", TY = "bf16" } },
    { "residual_norm", { AT = 0, C = 1536, THREADS = 192, VEC = 8, GATED = 1, GATE = 5, RCHUNKS = 6, MODULATE = 1, SHIFT = 0, SCALE = 1,
                         NCHUNKS = 6, ROUND_IN = 0, EPS = "1e-06f", TX = "float", TU = "bf16", TR = "bf16", TY = "bf16" } },
    { "gated_residual", { AT = 0, C = 1536, CHUNKS = 6, GATE = 2, VEC = 8, TX = "bf16", TU = "bf16", TY = "float" } },
    { "gated_residual", { AT = 0, C = 1536, CHUNKS = 6, GATE = 5, VEC = 8, TX = "float", TU = "bf16", TY = "bf16" } },
    { "gated_residual", { AT = 0, C = 1536, CHUNKS = 6, GATE = 5, VEC = 1, TX = "float", TU = "bf16", TY = "bf16" } },
    { "add", { TA = "float", TB = "bf16", TY = "float" } },
    { "layernorm_affine", { C = 1536, THREADS = 256, VEC = 1, EPS = "1e-06f", TX = "float", TY = "bf16", ROUND_IN = 1 } },
    { "layernorm_modulate", { AT = 0, C = 1536, THREADS = 256, VEC = 1, CHUNKS = 6, SHIFT = 3, SCALE = 4, EPS = "1e-06f",
                              TX = "float", TY = "bf16" } },
    { "layernorm_modulate", { AT = 0, C = 1536, THREADS = 256, VEC = 1, CHUNKS = 6, SHIFT = 0, SCALE = 1, EPS = "1e-06f",
                              TX = "bf16", TY = "bf16" } },
    -- q's row factors (rms_factor, lower.lua's q_norm) beside the norms whose sums they reproduce, 1536 channels
    -- with df_1.3b_540p's threads
    { "rmsnorm", { C = 1536, THREADS = 256, VEC = 1, EPS = "1e-06f" } },
    { "rmsnorm_rope", { C = 1536, D = 128, THREADS = 256, VEC = 1, EPS = "1e-06f" } },
    { "rms_factor", { C = 1536, THREADS = 256, VEC = 1, PAIRS = 0, EPS = "1e-06f" } },
    { "rms_factor", { C = 1536, THREADS = 256, VEC = 1, PAIRS = 1, EPS = "1e-06f" } },
    -- the same row kernels with 16-byte accesses (VEC 8: the row staged in shared memory), and the elementwise
    -- ones of 16-byte accesses beside one value at a time (kernel_test.c: bit for bit); the head's norm to fp32
    { "layernorm_affine", { C = 1536, THREADS = 256, VEC = 8, EPS = "1e-06f", TX = "float", TY = "bf16", ROUND_IN = 1 } },
    { "layernorm_modulate", { AT = 0, C = 1536, THREADS = 256, VEC = 8, CHUNKS = 6, SHIFT = 3, SCALE = 4, EPS = "1e-06f",
                              TX = "float", TY = "bf16" } },
    { "layernorm_modulate", { AT = 0, C = 1536, THREADS = 256, VEC = 8, CHUNKS = 6, SHIFT = 0, SCALE = 1, EPS = "1e-06f",
                              TX = "bf16", TY = "bf16" } },
    { "layernorm_modulate", { AT = 0, C = 1536, THREADS = 256, VEC = 1, CHUNKS = 2, SHIFT = 0, SCALE = 1, EPS = "1e-06f",
                              TX = "bf16", TY = "float" } },
    { "layernorm_modulate", { AT = 0, C = 1536, THREADS = 256, VEC = 8, CHUNKS = 2, SHIFT = 0, SCALE = 1, EPS = "1e-06f",
                              TX = "bf16", TY = "float" } },
    { "rmsnorm", { C = 1536, THREADS = 256, VEC = 8, EPS = "1e-06f" } },
    { "rmsnorm_rope", { C = 1536, D = 128, THREADS = 256, VEC = 8, EPS = "1e-06f" } },
    { "rms_factor", { C = 1536, THREADS = 256, VEC = 8, PAIRS = 0, EPS = "1e-06f" } },
    { "rms_factor", { C = 1536, THREADS = 256, VEC = 8, PAIRS = 1, EPS = "1e-06f" } },
    { "add_row", { COLS = 1536, VEC = 4 } },
    { "add_row", { COLS = 1536, VEC = 1 } },
    { "modulation", { CHUNKS = 6, C = 1536, ESTRIDE = 9216, KSTRIDE = 1536, VEC = 4 } },
    { "modulation", { CHUNKS = 6, C = 1536, ESTRIDE = 9216, KSTRIDE = 1536, VEC = 1 } },
    { "modulation", { CHUNKS = 2, C = 1536, ESTRIDE = 1536, KSTRIDE = 0, VEC = 4 } },
    { "modulation", { CHUNKS = 2, C = 1536, ESTRIDE = 1536, KSTRIDE = 0, VEC = 1 } },
    { "teacache", { T = "bf16", MODE = "residual", OP = "-", VEC = 8 } },
    { "teacache", { T = "bf16", MODE = "residual", OP = "-", VEC = 1 } },
    -- on a rank's slice of the tokens (AT 1, dit_forward_usp): the per-frame modulation row follows the tokens
    { "layernorm_modulate", { AT = 1, C = 1536, THREADS = 256, VEC = 8, CHUNKS = 6, SHIFT = 0, SCALE = 1, EPS = "1e-06f",
                              TX = "bf16", TY = "bf16" } },
    { "gated_residual", { AT = 1, C = 1536, CHUNKS = 6, GATE = 5, VEC = 8, TX = "float", TU = "bf16", TY = "bf16" } },
    { "residual_norm", { AT = 1, C = 1536, THREADS = 192, VEC = 8, GATED = 1, GATE = 5, RCHUNKS = 6, MODULATE = 1, SHIFT = 0,
                         SCALE = 1, NCHUNKS = 6, ROUND_IN = 0, EPS = "1e-06f", TX = "float", TU = "bf16", TR = "bf16",
                         TY = "bf16" } },
    -- --use_usp's data movement (dit_forward_usp): a rank's slice of the tokens (bf16 tokens, fp32 RoPE rows) and
    -- the head groups packed for the all-to-all and back
    { "usp_slice", { COLS = 1536, T = "unsigned short" } },
    { "usp_slice", { COLS = 128, T = "float" } },
    { "usp_pack_heads", { C = 1536, T = "unsigned short", UNPACK = 0 } },
    { "usp_pack_heads", { C = 1536, T = "unsigned short", UNPACK = 1 } },
    -- attention at several query blocks and key tiles (kernel_test.c), the sm_80 kernel, then the Hopper one
    { "attention_sm80", { NH = 2, D = 128, BLOCK_M = 128, BLOCK_N = 64, STAGES = 2, THREADS = 256, SMEM = 104448 } },
}
-- the Hopper kernel with every named schedule, the default first, and with one stage (its barriers' parity
-- flips every tile)
local hopper = { { schedule.attention90_default, schedule.attention90_schedules[schedule.attention90_default] } }
for _, name in ipairs(schedule.attention90_names()) do
    if name ~= schedule.attention90_default then hopper[#hopper + 1] = { name, schedule.attention90_schedules[name] } end
end
hopper[#hopper + 1] = { "s1", { block_n = 128, stages = 1, desc_inc = 0, kv_split = 0 } }
local table_rows = { "// kernel_test_attention.inc: rendered by tests/emu/kernel_test.lua; do not edit\n" }
for _, h in ipairs(hopper) do
    local consts = schedule.attention90_consts(2, 128, h[2])
    instances[#instances + 1] = { "attention_sm90", consts }
    table_rows[#table_rows + 1] = string.format("{ %q, %q, %d, %d },\n", h[1],
                                                names.procedural("attention_sm90", consts), consts.SMEM,
                                                consts.BLOCK_N)
end

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
local function write(path, text)
    local f = assert(io.open(path, "wb"))
    f:write(text)
    f:close()
end
write(dir .. "/kernel_test_kernels.cu", table.concat(out))
write(dir .. "/kernel_test_attention.inc", table.concat(table_rows))
