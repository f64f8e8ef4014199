-- gen/graph.lua
-- ==============
-- The op graph of one program: a list of nodes in program order and the tensors they read
-- and write. Builders (gen/programs/*.lua) call g:input, g:weight, g:op and g:output; every
-- op kind must be declared in ops.lua. Tensors are single-assignment: an op always makes a
-- new tensor, and plan.lua decides which ones share memory.
--
-- A tensor records its dims (ops.lua explains the symbols), the dtype the original keeps it
-- in under its autocast policy (reference §2.11: "bf16" or "f32"; inputs may be "f64"/"i64")
-- for the CUDA backend to honour, and a name that follows the checkpoint's module names.

local ops    = require("ops")
local sorted = require("lib.sorted")

local graph = {}

local Graph = {}
Graph.__index = Graph

-- A new, empty graph for program `name` of spec `s`.
function graph.new(name, s)
    return setmetatable({ name = name, spec = s, nodes = {}, tensors = {}, by_name = {},
                          weights = {}, inputs = {}, outputs = {}, states = {},
                          params = {}, symbols = {}, dim = {}, parts = {}, exposed = {},
                          prompt_tensors = {} }, Graph)
end

-- Start part `name` of the program: the nodes added from now on belong to it. A program with parts
-- is emitted as one function per part (and the whole program calling them in order), so the runtime
-- can run them separately, e.g. skip dit_forward's blocks for TeaCache. A program that never calls
-- this is one part.
function Graph:part(name)
    for _, p in ipairs(self.parts) do assert(p ~= name, "graph: part defined twice: " .. name) end
    self.parts[#self.parts + 1] = name
    self.current_part = name
end

-- Give tensor t a name the runtime knows it by (its arena slot is handed to the runtime), e.g. the
-- tokens entering the blocks. Exposing changes nothing in the plan: the runtime may read t only while
-- it is live, i.e. between the part that makes it and the last part that reads it.
function Graph:expose(name, t)
    assert(not self.exposed[name], "graph: exposed twice: " .. name)
    self.exposed[name] = t
    return t
end

-- Mark tensor t as computed once per prompt: it lives in the program's prompt arena (plan.lua), not in
-- the arena of a call, and keeps its value between calls. The runtime keeps one prompt arena per prompt
-- it alternates between (cond and uncond) and runs the first part, which makes these tensors, only when
-- the prompt changes. check_prompt_part says what "the prompt" is.
function Graph:per_prompt(t)
    assert(t.kind == "act", "graph: only an op's output can be kept per prompt: " .. t.name)
    t.kind = "prompt"
    self.prompt_tensors[#self.prompt_tensors + 1] = t
    return t
end

-- Check that the first part depends on the inputs named in `prompt_inputs` only (and weights), and that
-- every per-prompt tensor is made there: then its results are the same for the same prompt inputs, which
-- is what the runtime compares to decide whether to run it.
function Graph:check_prompt_part(prompt_inputs)
    local first = assert(self.parts[1], "graph: per-prompt tensors need parts")
    local allowed = {}
    for _, name in ipairs(prompt_inputs) do
        if self.by_name[name] then allowed[self.by_name[name].id] = true end
    end
    for _, n in ipairs(self.nodes) do
        if n.part == first then
            for _, t in ipairs(n.ins) do
                assert(allowed[t.id], string.format("graph: part %s must depend on the prompt only, but %s reads %s",
                                                    first, n.out.name, t.name))
            end
            allowed[n.out.id] = true
        elseif n.out.kind == "prompt" then
            error("graph: per-prompt tensor " .. n.out.name .. " is made outside part " .. first)
        end
    end
end

-- A runtime integer argument of the program (e.g. F, the latent frames of this call), at most
-- `max`; usable as a dim.
function Graph:param(name, max, doc)
    assert(not self.dim[name], "graph: dim symbol defined twice: " .. name)
    local p = { name = name, max = max, doc = doc }
    self.params[#self.params + 1] = p
    self.dim[name] = p
    return name
end

-- A value computed from the params at the start of the program: `expr` is C over earlier
-- params and symbols; `max` bounds it (nil for values that are not dims).
function Graph:symbol(name, max, expr, doc)
    assert(not self.dim[name], "graph: dim symbol defined twice: " .. name)
    local d = { name = name, max = max, expr = expr, doc = doc }
    self.symbols[#self.symbols + 1] = d
    self.dim[name] = d
    return name
end

-- State kept across calls of the program (a cache): placed like an input, never reused, and
-- zeroed by the program's reset function.
function Graph:state(name, dims, dtype)
    local t = self:tensor(name, dims, dtype, "state")
    self.states[#self.states + 1] = t
    return t
end

-- Register a tensor; names must be unique within the program.
function Graph:tensor(name, dims, dtype, kind)
    assert(not self.by_name[name], "graph: duplicate tensor name " .. name)
    local t = { id = #self.tensors + 1, name = name, dims = dims, dtype = dtype, kind = kind }
    self.tensors[#self.tensors + 1] = t
    self.by_name[name] = t
    return t
end

-- A program input, written by the runtime before the program runs.
function Graph:input(name, dims, dtype)
    local t = self:tensor(name, dims, dtype, "input")
    self.inputs[#self.inputs + 1] = t
    return t
end

-- A checkpoint tensor: `name` in the original layout, `alias` in the diffusers layout.
function Graph:weight(name, alias, shape)
    assert(not self.weights[name], "graph: weight used twice: " .. name)
    local w = { name = name, alias = alias, shape = shape, index = #self.weights + 1 }
    self.weights[#self.weights + 1] = w
    self.weights[name] = w
    return w
end

-- Reorder the weights table by rank(weight name) -> number (ties keep their order of registration).
function Graph:order_weights(rank)
    local keyed = {}
    for i, w in ipairs(self.weights) do keyed[i] = { w = w, rank = rank(w.name), i = i } end
    table.sort(keyed, function(a, b)
        if a.rank ~= b.rank then return a.rank < b.rank end
        return a.i < b.i
    end)
    for i, k in ipairs(keyed) do
        self.weights[i] = k.w
        k.w.index = i
    end
end

-- Append op `kind` reading tensors `ins`; returns the new output tensor named `name`. Ops whose
-- output dims depend on symbols the builder makes (ops.lua: no shape rule) pass `dims`.
function Graph:op(kind, ins, attrs, name, dtype, dims)
    local def = ops[kind]
    assert(def, "graph: op kind not declared in ops.lua: " .. tostring(kind))
    assert(not def.lowered, "graph: op " .. kind .. " is made only by lower.lua")
    assert((dims == nil) == (def.shape ~= nil), "graph: op " .. kind .. ": dims given iff it has no shape rule")
    attrs = attrs or {}
    local out = self:tensor(name, dims or def.shape(ins, attrs), dtype, "act")
    local node = { id = #self.nodes + 1, op = kind, ins = ins, out = out, attrs = attrs, part = self.current_part }
    out.producer = node.id
    self.nodes[#self.nodes + 1] = node
    return out
end

-- Mark a tensor as a program output (never reused by the plan).
function Graph:output(t)
    t.kind = "output"
    self.outputs[#self.outputs + 1] = t
    return t
end

-- The value of a dim of graph g at its largest.
function graph.max_dim(g, d)
    if math.type(d) == "integer" then return d end
    local sym = g.dim[d]
    assert(sym and sym.max, "graph: unknown dim symbol " .. tostring(d))
    return sym.max
end

-- Number of elements of a tensor of graph g at its largest.
function graph.max_elems(g, t)
    local n = 1
    for _, d in ipairs(t.dims) do n = n * graph.max_dim(g, d) end
    return n
end

-- FLOPs of one call of graph g at its largest window (multiply-add = 2), from the op kinds'
-- flops rules (GEMMs, attention and convolutions; the rest is memory-bound and not counted); the
-- nodes of part `skip_part`, when given, are not counted. `at`, when given, sets dim symbols to other
-- sizes ({L = 100}: the call at 100 tokens; symbols derived from them keep their largest size).
function graph.flops(g, skip_part, at)
    local total = 0
    local function n(d) return at and at[d] or graph.max_dim(g, d) end
    for _, node in ipairs(g.nodes) do
        local def = ops[node.op]
        if def.flops and (skip_part == nil or node.part ~= skip_part) then total = total + def.flops(n, node.ins, node.out, node.attrs) end
    end
    return total
end

-- What a function whose statements are `text` must declare: the symbols it reads and those they read,
-- in definition order, and the params that neither it nor those symbols read (to be voided).
function graph.symbols_read(g, text)
    -- a name followed by "(" is a call (the weight macro W(i)), not a read of a param or symbol
    local function reads(s, name) return s:find("%f[%w_]" .. name .. "%f[^%w_(]") ~= nil end
    local need = {}
    for i = #g.symbols, 1, -1 do
        local read = reads(text, g.symbols[i].name)
        for j = i + 1, #g.symbols do
            read = read or (need[j] and reads(g.symbols[j].expr, g.symbols[i].name))
        end
        need[i] = read
    end
    local syms, unread = {}, {}
    for i, sym in ipairs(g.symbols) do if need[i] then syms[#syms + 1] = sym end end
    for _, par in ipairs(g.params) do
        local read = reads(text, par.name)
        for _, sym in ipairs(syms) do read = read or reads(sym.expr, par.name) end
        if not read then unread[#unread + 1] = par end
    end
    return syms, unread
end

-- The first lines of a C function of graph g whose statements are `text`: a const int per symbol it
-- needs (with its doc) and one line voiding the params nothing reads (none when all are read).
function graph.prologue(g, text)
    local clit = require("lib.clit")
    local syms, unread = graph.symbols_read(g, text)
    local lines = {}
    for _, sym in ipairs(syms) do
        lines[#lines + 1] = string.format("const int %s = %s;%s", sym.name, sym.expr,
                                          sym.doc and ("  /* " .. clit.comment(sym.doc) .. " */") or "")
    end
    local voids = {}
    for _, par in ipairs(unread) do voids[#voids + 1] = "(void)" .. par.name .. ";" end
    if #voids > 0 then lines[#lines + 1] = table.concat(voids, " ") end
    return lines
end

-- Dims as text: [L,128], [16,F,8,8].
function graph.dims_text(dims)
    local parts = {}
    for i, d in ipairs(dims) do parts[i] = tostring(d) end
    return "[" .. table.concat(parts, ",") .. "]"
end

-- Element count of dims as a C expression: "(long long)L * 256" (symbols are C names in scope).
function graph.numel_expr(dims)
    local parts = {}
    for i, d in ipairs(dims) do parts[i] = tostring(d) end
    return "(long long)" .. table.concat(parts, " * ")
end

-- Attributes as sorted key=value text for dumps and comments.
function graph.attrs_text(attrs)
    local parts = {}
    for _, k in ipairs(sorted.keys(attrs)) do
        local v = attrs[k]
        if type(v) == "table" then v = v.name or "{...}" end
        if math.type(v) == "float" then v = string.format("%.9g", v) end
        parts[#parts + 1] = k .. "=" .. tostring(v)
    end
    return table.concat(parts, " ")
end

-- Build every program the spec's variant needs: { dit_forward = g, vae_decode = g, ... }.
function graph.build(s)
    local dit = require("programs.dit")
    local programs = { dit_forward = dit.build(graph.new("dit_forward", s), s) }
    -- Ulysses sequence parallelism (--use_usp) where some rank count divides the heads (issue 17)
    if #dit.usp_ranks(s) > 0 then
        programs.dit_forward_usp = dit.build(graph.new("dit_forward_usp", s), s, true)
    end
    if s.t5 then programs.text_encode = require("programs.t5").build(graph.new("text_encode", s), s) end
    if s.clip then programs.clip_encode = require("programs.clip").build(graph.new("clip_encode", s), s) end
    if s.vae then
        local vae = require("programs.vae")
        programs.vae_decode = vae.build_decode(graph.new("vae_decode", s), s)
        programs.vae_encode = vae.build_encode(graph.new("vae_encode", s), s)
        -- The tiled decode's and encode's programs (models/vae.h sky_vae_decode_tiled, sky_vae_encode_tiled): the
        -- decoder and the encoder at one tile of vae.tile_px, where the frame is larger than a tile, so that their
        -- arenas are the tile's.
        local tile = s.vae.tile_px // s.derived.vae_stride_s
        if tile < s.derived.lat_h or tile < s.derived.lat_w then
            programs.vae_decode_tile = vae.build_decode(graph.new("vae_decode_tile", s), s, tile)
            programs.vae_encode_tile = vae.build_encode(graph.new("vae_encode_tile", s), s, tile)
        end
    end
    return programs
end

-- Text dump for --stop-after=graph: one line per node, a reviewer can diff it. `backend` names the
-- backend whose lowered graphs these are (lower.lua), nil for the graphs as built.
function graph.dump(programs, backend)
    local lines = {}
    for _, pname in ipairs(sorted.keys(programs)) do
        local g = programs[pname]
        if backend then
            lines[#lines + 1] = string.format("# %s, lowered for %s (%s)  (%s)", pname, backend, g.label, g.spec.rel_path)
        else
            lines[#lines + 1] = string.format("# %s  (%s)", pname, g.spec.rel_path)
        end
        for _, t in ipairs(g.inputs) do
            lines[#lines + 1] = string.format("%%%-4d = input %-22s %-16s %s", t.id, t.name,
                                              graph.dims_text(t.dims), t.dtype)
        end
        for _, n in ipairs(g.nodes) do
            local args = {}
            for i, t in ipairs(n.ins) do args[i] = "%" .. t.id end
            lines[#lines + 1] = string.format("%%%-4d = %-18s(%s)  %s  %s %s  %s", n.out.id, n.op,
                table.concat(args, ", "), graph.attrs_text(n.attrs), graph.dims_text(n.out.dims),
                n.out.dtype, n.out.name)
            if n.also then                           -- a lowered node's second output (lower.lua)
                lines[#lines + 1] = string.format("%%%-4d   also %s %s  %s", n.also.id, graph.dims_text(n.also.dims),
                                                  n.also.dtype, n.also.name)
            end
        end
        for _, t in ipairs(g.outputs) do
            lines[#lines + 1] = string.format("output %%%d %s", t.id, t.name)
        end
        lines[#lines + 1] = string.format("# %d nodes, %d tensors, %d weights", #g.nodes, #g.tensors,
                                          #g.weights)
    end
    return table.concat(lines, "\n") .. "\n"
end

return graph
