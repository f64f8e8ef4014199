-- tests/gen/test_plan.lua: memory plan invariants on every shipped spec: every tensor placed
-- and aligned; no two buffers that are live at the same node overlap in bytes; inputs overlap
-- nothing; outputs live to the end; the peak covers every buffer and is at least the most
-- bytes live at once.
local t     = require("t")
local spec  = require("spec")
local graph = require("graph")
local plan  = require("plan")

local p = assert(io.popen("ls specs"))
local paths = {}
for name in p:lines() do if name:match("%.lua$") then paths[#paths + 1] = "specs/" .. name end end
p:close()
table.sort(paths)

for _, path in ipairs(paths) do
    local s = spec.load(path)
  for _, pname in ipairs(require("lib.sorted").keys(graph.build(s))) do
    local g = graph.build(s)[pname]
    local pl = plan.make({ [pname] = g })[pname]
    t.check_eq(#pl.buffers + #pl.prompt, #g.tensors, path .. " buffers")
    -- The prompt arena: the per-prompt tensors one after the other, aligned, within prompt_bytes.
    local at = 0
    for _, b in ipairs(pl.prompt) do
        t.check_eq(b.tensor.kind, "prompt", path .. " prompt arena tensor kind")
        t.check_eq(b.offset, at, path .. " " .. b.tensor.name .. " prompt offset")
        t.check(b.bytes % pl.alignment == 0 and b.bytes >= graph.max_elems(g, b.tensor) * 4, "%s: %s prompt bytes",
                path, b.tensor.name)
        at = at + b.bytes
    end
    t.check_eq(at, pl.prompt_bytes, path .. " prompt arena size")
    t.check_eq(#pl.prompt, #g.prompt_tensors, path .. " per-prompt tensors placed")
    local bufs = pl.buffers
    local last_node = #g.nodes + 1
    for i, a in ipairs(bufs) do
        t.check(a.offset % pl.alignment == 0, "%s: %s offset %d not aligned", path, a.tensor.name, a.offset)
        t.check(a.offset + a.bytes <= pl.peak, "%s: %s beyond the peak", path, a.tensor.name)
        t.check(a.bytes >= graph.max_elems(g, a.tensor) * 4, "%s: %s too small", path, a.tensor.name)
        if a.tensor.kind == "output" then t.check_eq(a.last, last_node, path .. " output lifetime") end
        for j = i + 1, #bufs do
            local b = bufs[j]
            local same_time = a.first <= b.last and b.first <= a.last
            local same_bytes = a.offset < b.offset + b.bytes and b.offset < a.offset + a.bytes
            t.check(not (same_time and same_bytes), "%s: %s and %s overlap while both live", path,
                    a.tensor.name, b.tensor.name)
            local fixed = { input = true, state = true }
            if fixed[a.tensor.kind] or fixed[b.tensor.kind] then
                t.check(not same_bytes, "%s: input %s shares bytes with %s", path, a.tensor.name, b.tensor.name)
            end
        end
    end
    t.check(pl.peak >= pl.live_max, "%s: peak %d below the most bytes live %d", path, pl.peak, pl.live_max)
  end
end
