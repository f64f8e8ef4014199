-- gen/emit/counts.lua
-- ===================
-- The counts of gen/count.lua as C data in gen/variant.c: one sky_count_table (runtime/models/program.h)
-- for the CUDA lowering of every program, with times at the H200's stated peaks. --info prints it,
-- bench --json writes it (runtime/cli/counts.c). Nothing without a cuda target.

local clit  = require("lib.clit")
local count = require("count")

local counts = {}

-- The C initializer of count c (a group, a total): {label, kernels, gemms, bytes, flops, times}.
local function group_init(c)
    return string.format("{%s, %d, %d, %s, %s, %s, %s, %s}", clit.str(c.label), c.kernels, c.gemms, clit.f64(c.bytes),
                         clit.f64(c.flops), clit.f64(c.compute_s), clit.f64(c.memory_s), clit.f64(c.roofline_s))
end

-- Write the groups of every program and `static const sky_count_table variant_counts` into writer w;
-- returns the C expression for sky_variant_desc.counts ("NULL" without a cuda target).
function counts.emit(w, plans)
    if not plans.cuda then return "NULL" end
    local lowered = {}
    for name, p in pairs(plans.cuda) do lowered[name] = p.graph end
    local r = count.all(lowered, count.devices.H200)
    for _, c in ipairs(r.programs) do
        w:open(string.format("static const sky_count_group %s_count_groups[%d] = {", c.name, #c.groups))
        for _, g in ipairs(c.groups) do w:line("%s,", group_init(g)) end
        w:close("};")
    end
    w:line("/* per call of each program's CUDA lowering at its largest window (gen/count.lua) */")
    w:open(string.format("static const sky_count_program variant_count_programs[%d] = {", #r.programs))
    for _, c in ipairs(r.programs) do
        w:open("{")
        w:line("%s, %d, %s_count_groups,", clit.str(c.name), #c.groups, c.name)
        w:line("%s,", group_init(c.total))
        w:line("%s,", group_init(c.once))
        w:line("%s, %s,", clit.f64(c.roofline_s), clit.f64(c.floor_s))
        w:close("},")
    end
    w:close("};")
    local d = r.device
    w:open("static const sky_count_table variant_counts = {")
    w:line(".device = %s,", clit.str(d.name))
    w:line(".bf16_flops = %s, .tf32_flops = %s, .f32_flops = %s, .hbm_bytes = %s,", clit.f64(d.bf16), clit.f64(d.tf32),
           clit.f64(d.f32), clit.f64(d.hbm))
    w:line(".source = %s,", clit.str(d.source))
    w:line(".n_programs = %d, .programs = variant_count_programs,", #r.programs)
    w:close("};")
    w:blank()
    return "&variant_counts"
end

return counts
