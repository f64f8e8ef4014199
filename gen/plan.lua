-- gen/plan.lua
-- =============
-- The static memory plan: every tensor of a program gets a fixed byte offset in one arena,
-- computed here from liveness, so the emitted code allocates once and never inside a call.
--
-- Contract (ggml-alloc's): program inputs are placed first and live for the whole program;
-- outputs are never reused; an activation lives from the node that makes it to the last node
-- that reads it. Placement is first-fit in tensor-id order with a fixed tie-break (lowest
-- offset), so the plan is deterministic. Sizes use each dim at its spec-bounded maximum; a
-- call with fewer frames uses a prefix of each buffer.
--
-- Tensors kept per prompt (graph.lua: per_prompt) are not in the arena: they go one after the other
-- into the program's prompt arena, of which the runtime keeps one per prompt; every one of them is live
-- whenever the program runs.
--
-- Each backend plans its own graphs (lower.lua): the CPU backend the graphs as built, the CUDA
-- backend their lowered copies. Bytes per element come from the backend (`elem_bytes(tensor)`): the
-- CPU backend stores every float tensor as fp32, the CUDA backend follows the recorded dtypes (bf16
-- or fp32).

local graph  = require("graph")
local sorted = require("lib.sorted")

local plan = {}

-- Round n up to a multiple of a (a power of two).
local function align_up(n, a) return (n + a - 1) // a * a end

-- Lifetimes: first and last node index touching each tensor (inputs/outputs span everything).
local function lifetimes(g)
    local first, last = {}, {}
    local n_end = #g.nodes + 1
    for _, t in ipairs(g.tensors) do
        -- A lowered graph (lower.lua) shares its tensors with the original and renumbers nodes.
        local producer = g.producer and g.producer[t.id] or t.producer
        if t.kind == "input" or t.kind == "state" then first[t.id], last[t.id] = 0, n_end
        else first[t.id], last[t.id] = producer, producer end
    end
    for _, n in ipairs(g.nodes) do
        for _, t in ipairs(n.ins) do
            if last[t.id] < n.id then last[t.id] = n.id end
        end
    end
    for _, t in ipairs(g.outputs) do last[t.id] = n_end end
    return first, last
end

-- Plan one graph. `elem_bytes(t)` gives the bytes per element of tensor t on this backend.
function plan.make_one(g, elem_bytes, alignment, label)
    local first, last = lifetimes(g)
    local placed = {}                    -- list of buffers, kept sorted by offset
    local buffers, prompt = {}, {}
    local prompt_bytes = 0
    for _, t in ipairs(g.tensors) do
        local bytes = align_up(graph.max_elems(g, t) * elem_bytes(t), alignment)
        if t.kind == "prompt" then
            prompt[#prompt + 1] = { tensor = t, offset = prompt_bytes, bytes = bytes, prompt = true }
            prompt_bytes = prompt_bytes + bytes
        else
            -- Buffers whose lifetime overlaps t's, in offset order: t goes in the first gap.
            local offset = 0
            for _, b in ipairs(placed) do
                local overlaps_time = b.first <= last[t.id] and first[t.id] <= b.last
                if overlaps_time and b.offset < offset + bytes and offset < b.offset + b.bytes then
                    offset = b.offset + b.bytes
                end
            end
            local buf = { tensor = t, offset = offset, bytes = bytes, first = first[t.id], last = last[t.id] }
            buffers[#buffers + 1] = buf
            local pos = #placed + 1
            for i, b in ipairs(placed) do
                if b.offset > offset or (b.offset == offset and b.tensor.id > t.id) then pos = i; break end
            end
            table.insert(placed, pos, buf)
        end
    end
    local peak = 0
    for _, b in ipairs(buffers) do peak = math.max(peak, b.offset + b.bytes) end
    -- The lower bound: the most bytes live at any one node.
    local live_max = 0
    for step = 0, #g.nodes + 1 do
        local live = 0
        for _, b in ipairs(buffers) do
            if b.first <= step and step <= b.last then live = live + b.bytes end
        end
        live_max = math.max(live_max, live)
    end
    local by_tensor = {}
    for _, b in ipairs(buffers) do by_tensor[b.tensor.id] = b end
    for _, b in ipairs(prompt) do by_tensor[b.tensor.id] = b end
    return { program = g.name, graph = g, buffers = buffers, peak = peak, live_max = live_max,
             prompt = prompt, prompt_bytes = prompt_bytes, alignment = alignment, label = label,
             by_tensor = by_tensor }
end

-- CPU backend: float tensors are fp32, f64/i64 inputs are 8 bytes.
function plan.cpu_elem_bytes(t)
    if t.dtype == "f64" or t.dtype == "i64" then return 8 end
    return 4
end

-- CUDA backend: the original's dtypes (bf16 2 bytes, f32 4, f64 and i64 8).
function plan.cuda_elem_bytes(t)
    local bytes = { bf16 = 2, f32 = 4, f64 = 8, i64 = 8 }
    return assert(bytes[t.dtype], "plan: unknown dtype " .. tostring(t.dtype))
end

-- Plans of every program of every backend, from lower.run's graphs:
-- { cpu = { dit_forward = plan, ... }, cuda = { ... } } (cuda only when the spec targets it).
function plan.make(lowered)
    local plans = { cpu = {} }
    for _, name in ipairs(sorted.keys(lowered.cpu)) do
        plans.cpu[name] = plan.make_one(lowered.cpu[name], plan.cpu_elem_bytes, 64, "cpu backend, fp32")
    end
    if lowered.cuda then
        plans.cuda = {}
        for _, name in ipairs(sorted.keys(lowered.cuda)) do
            local g = lowered.cuda[name]
            plans.cuda[name] = plan.make_one(g, plan.cuda_elem_bytes, 256, g.label)
        end
    end
    return plans
end

-- 1234567 -> "1,234,567".
function plan.commas(n)
    local s = string.format("%d", n)
    local out = s:reverse():gsub("(%d%d%d)", "%1,"):reverse()
    return (out:gsub("^,", ""))
end

-- Text of plan.txt (the CPU plans) or plan_cuda.txt (the CUDA plans): { name = plan } of one backend.
function plan.dump(plans)
    local lines = {}
    for _, name in ipairs(sorted.keys(plans)) do
        local p = plans[name]
        lines[#lines + 1] = string.format("# arena %s (%s): peak %s B (%.2f MiB), %d buffers, "
            .. "alignment %d; most bytes live at once %s B", p.program, p.label, plan.commas(p.peak), p.peak / 1048576,
            #p.buffers, p.alignment, plan.commas(p.live_max))
        lines[#lines + 1] = string.format("%-16s %-16s %-11s %s", "offset", "bytes", "live", "tensor")
        for _, b in ipairs(p.buffers) do
            lines[#lines + 1] = string.format("%-16s %-16s %-11s %s %s", plan.commas(b.offset), plan.commas(b.bytes),
                b.first .. ".." .. b.last, b.tensor.name, graph.dims_text(b.tensor.dims))
        end
        if #p.prompt > 0 then
            lines[#lines + 1] = string.format("# prompt arena %s: %s B (%.2f MiB), %d buffers, kept per prompt",
                p.program, plan.commas(p.prompt_bytes), p.prompt_bytes / 1048576, #p.prompt)
            lines[#lines + 1] = string.format("%-16s %-16s %s", "offset", "bytes", "tensor")
            for _, b in ipairs(p.prompt) do
                lines[#lines + 1] = string.format("%-16s %-16s %s %s", plan.commas(b.offset), plan.commas(b.bytes),
                    b.tensor.name, graph.dims_text(b.tensor.dims))
            end
        end
    end
    return table.concat(lines, "\n") .. "\n"
end

-- Text dump for --stop-after=plan: every backend's plans, the CPU's first (each arena's header names
-- its backend).
function plan.dump_backends(plans)
    return plan.dump(plans.cpu) .. (plans.cuda and plan.dump(plans.cuda) or "")
end

return plan
