-- gen/schedule_sm90.lua
-- =====================
-- Launch shapes of the CUDA backend's kernels, one table (algorithm and schedule kept apart, as
-- Halide does). No number here has a measurement behind it yet: no GPU was lent while it was
-- written. Change a number only with a measurement in tests/bench/RESULTS.md, and note it here.

local schedule = {}

-- Threads for a row kernel over `width` values per row: the largest of 256, 128, 64, 32 that
-- divides it (every thread then owns width / threads values in registers). nil if none does.
function schedule.row_threads(width)
    for _, t in ipairs({ 256, 128, 64, 32 }) do
        if width % t == 0 then return t end
    end
    return nil
end

-- Elementwise kernels: threads per block (grid = ceil(n / threads)).
schedule.elementwise_threads = 256

-- Attention (templates/cuda/attention_sm80.cu.in): tile sizes and pipeline depth. The shared
-- memory it needs follows from them (the template's header gives the formula).
schedule.attention = { block_m = 128, block_n = 64, stages = 2, threads = 256 }

-- Dynamic shared memory of the attention kernel: the Q tile and STAGES K and V tiles, rows padded
-- by 8 bf16 (the template's header gives the same formula and checks it).
function schedule.attention_smem(head_dim)
    local a = schedule.attention
    return (a.block_m + 2 * a.stages * a.block_n) * (head_dim + 8) * 2
end

-- The Hopper attention (templates/cuda/attention_sm90.cu.in): 128 query rows per block (two consumer
-- warpgroups of 64) are fixed by the template; the rest is a schedule, by name (the template's header says
-- what each field does):
--   block_n   keys per tile (128, or 176)          stages    K/V pipeline depth (1 to 3)
--   desc_inc  1: wgmma descriptors advanced by increment, 0: rebuilt from the address at every k-step
--   kv_split  1: K and V loaded by two producer threads (K prefetched whatever V's release), 0: by one
-- A spec picks one with cuda = { attention90 = "<name>" } (gen/spec.lua); without it, the default below.
-- The choice is made at generation time: the plugin holds one Hopper attention kernel per head count, its
-- launches take that kernel's shared memory and tensor-map boxes as constants, and the spec records what
-- was built. Measuring needs no plugin: tests/gpu/attention_test.cu times every schedule here (tests/gpu/
-- build_attention_test.sh renders them all); a spec copy with another cuda.attention90 times a whole forward.
schedule.attention90_schedules = {
    sm90_s2   = { block_n = 128, stages = 2, desc_inc = 0, kv_split = 0 },   -- the first one written
    sm90_s3   = { block_n = 128, stages = 3, desc_inc = 0, kv_split = 0 },   -- one more stage (the most that fit)
    sm90_n176 = { block_n = 176, stages = 2, desc_inc = 0, kv_split = 0 },   -- FlashAttention-3's tile for head dim 128
    sm90_inc  = { block_n = 128, stages = 2, desc_inc = 1, kv_split = 0 },   -- descriptors advanced by increment
    sm90_kpre = { block_n = 128, stages = 2, desc_inc = 0, kv_split = 1 },   -- K prefetched independently of V
    sm90_fa3  = { block_n = 176, stages = 2, desc_inc = 1, kv_split = 1 },   -- the last three together
}
-- No measurement yet (tests/bench/RESULTS.md has none for these): the first schedule stays the default.
schedule.attention90_default = "sm90_s2"

-- The schedule names, sorted (for messages and for the tests that render them all).
function schedule.attention90_names()
    local names = {}
    for name in pairs(schedule.attention90_schedules) do names[#names + 1] = name end
    table.sort(names)
    return names
end

-- The schedule a spec asks for (its cuda.attention90), or the default.
function schedule.attention90_for(s)
    local name = s.cuda and s.cuda.attention90 or schedule.attention90_default
    return assert(schedule.attention90_schedules[name], "schedule_sm90: no Hopper attention schedule " .. name), name
end

-- Dynamic shared memory of the Hopper attention kernel with schedule a (the default when nil): 1024 bytes of
-- alignment slack (the dynamic window is only 16-byte aligned, the tiles need 1024), the Q tile (32 KiB),
-- `stages` K and V tiles of 256 bytes per key, and 8 bytes per mbarrier: q_full, and k_full, v_full,
-- k_empty, v_empty per stage (the template checks the same formula).
function schedule.attention90_smem(head_dim, a)
    assert(head_dim == 128, "attention_sm90 is written for head dim 128")
    a = a or schedule.attention90_schedules[schedule.attention90_default]
    return 1024 + 32768 + 2 * a.stages * 256 * a.block_n + 8 * (1 + 4 * a.stages)
end

-- The template constants of the Hopper attention kernel for NH heads with schedule a.
function schedule.attention90_consts(num_heads, head_dim, a)
    return { NH = num_heads, D = head_dim, BLOCK_N = a.block_n, STAGES = a.stages, DESC_INC = a.desc_inc,
             KV_SPLIT = a.kv_split, SMEM = schedule.attention90_smem(head_dim, a) }
end

return schedule
