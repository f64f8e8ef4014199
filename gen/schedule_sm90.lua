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

-- The Hopper attention (templates/cuda/attention_sm90.cu.in): 128 query rows (two consumer
-- warpgroups of 64) and 128 keys per tile are fixed by the template; the K/V pipeline depth is set
-- here. Shared memory: 1024 bytes of alignment slack, the Q tile and STAGES K and V tiles of 32 KiB,
-- 64 bytes of mbarriers (the template checks the same formula).
schedule.attention90 = { stages = 2 }

function schedule.attention90_smem(head_dim)
    assert(head_dim == 128, "attention_sm90 is written for head dim 128")
    return 1024 + 32768 * (1 + 2 * schedule.attention90.stages) + 64
end

return schedule
