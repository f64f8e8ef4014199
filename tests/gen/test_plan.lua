-- tests/gen/test_plan.lua: memory plan invariants on every shipped spec, for each backend's graphs
-- (the CPU's as built, the CUDA's lowered): every tensor placed and aligned; no two buffers that are
-- live at the same node overlap in bytes; inputs overlap nothing; outputs live to the end; the peak
-- covers every buffer and is at least the most bytes live at once.
local t      = require("t")
local spec   = require("spec")
local graph  = require("graph")
local lower  = require("lower")
local plan   = require("plan")
local sorted = require("lib.sorted")

local p = assert(io.popen("ls specs"))
local paths = {}
for name in p:lines() do if name:match("%.lua$") then paths[#paths + 1] = "specs/" .. name end end
p:close()
table.sort(paths)

-- The invariants of plan pl of graph g (what: spec, backend and program, for messages); elem_bytes as
-- the backend's.
local function check_plan(what, g, pl, elem_bytes)
    t.check_eq(#pl.buffers + #pl.prompt, #g.tensors, what .. " buffers")
    -- The prompt arena: the per-prompt tensors one after the other, aligned, within prompt_bytes.
    local at = 0
    for _, b in ipairs(pl.prompt) do
        t.check_eq(b.tensor.kind, "prompt", what .. " prompt arena tensor kind")
        t.check_eq(b.offset, at, what .. " " .. b.tensor.name .. " prompt offset")
        t.check(b.bytes % pl.alignment == 0 and b.bytes >= graph.max_elems(g, b.tensor) * elem_bytes(b.tensor),
                "%s: %s prompt bytes", what, b.tensor.name)
        at = at + b.bytes
    end
    t.check_eq(at, pl.prompt_bytes, what .. " prompt arena size")
    t.check_eq(#pl.prompt, #g.prompt_tensors, what .. " per-prompt tensors placed")
    local bufs = pl.buffers
    local last_node = #g.nodes + 1
    for i, a in ipairs(bufs) do
        t.check(a.offset % pl.alignment == 0, "%s: %s offset %d not aligned", what, a.tensor.name, a.offset)
        t.check(a.offset + a.bytes <= pl.peak, "%s: %s beyond the peak", what, a.tensor.name)
        t.check(a.bytes >= graph.max_elems(g, a.tensor) * elem_bytes(a.tensor), "%s: %s too small", what,
                a.tensor.name)
        if a.tensor.kind == "output" then t.check_eq(a.last, last_node, what .. " output lifetime") end
        for j = i + 1, #bufs do
            local b = bufs[j]
            local same_time = a.first <= b.last and b.first <= a.last
            local same_bytes = a.offset < b.offset + b.bytes and b.offset < a.offset + a.bytes
            t.check(not (same_time and same_bytes), "%s: %s and %s overlap while both live", what,
                    a.tensor.name, b.tensor.name)
            local fixed = { input = true, state = true }
            if fixed[a.tensor.kind] or fixed[b.tensor.kind] then
                t.check(not same_bytes, "%s: input %s shares bytes with %s", what, a.tensor.name, b.tensor.name)
            end
        end
    end
    t.check(pl.peak >= pl.live_max, "%s: peak %d below the most bytes live %d", what, pl.peak, pl.live_max)
end

local elem_bytes = { cpu = plan.cpu_elem_bytes, cuda = plan.cuda_elem_bytes }
for _, path in ipairs(paths) do
    local s = spec.load(path)
    local lowered = lower.run(s, graph.build(s))
    local plans = plan.make(lowered)
    t.check_eq(plans.cuda ~= nil, s.targets.cuda == true, path .. ": CUDA plans iff a cuda target")
    for _, backend in ipairs({ "cpu", "cuda" }) do
        for _, pname in ipairs(sorted.keys(plans[backend] or {})) do
            local g = lowered[backend][pname]
            check_plan(path .. " " .. backend .. " " .. pname, g, plans[backend][pname], elem_bytes[backend])
        end
    end
end
