-- Template rendering
-- ==================
--
-- Strict `${name}` substitution for templates/*.in (Pallene's util.render, not CUTLASS's
-- SubstituteTemplate). Names match [A-Za-z_][A-Za-z0-9_]*. Every value must be a string
-- (the caller formats numbers with lib/clit.lua), every placeholder must have a value,
-- every value must be used, and no "${" may survive into the output. Any breach is a
-- generator bug: the error is a plain string that starts with the template's name, so
-- fail.main reports it with a traceback.

local sorted = require("lib.sorted")

local render = {}

local NAME = "[%a_][%w_]*"

-- Line number (1-based) of byte offset pos in text.
local function line_of(text, pos)
    local _, newlines = text:sub(1, pos - 1):gsub("\n", "")
    return newlines + 1
end

-- Raises "<template_name>: <message>" without Lua's position prefix.
local function fail_render(template_name, fmt, ...)
    error(template_name .. ": " .. string.format(fmt, ...), 0)
end

-- Substitutes vars into template_text; template_name names the template in errors.
function render.render(template_text, vars, template_name)
    assert(type(template_name) == "string", "render.render: template_name must be a string")
    if type(template_text) ~= "string" then
        fail_render(template_name, "template text is a %s, not a string", type(template_text))
    end
    if type(vars) ~= "table" then
        fail_render(template_name, "vars is a %s, not a table", type(vars))
    end

    for _, key in ipairs(sorted.keys(vars)) do
        local value = vars[key]
        if type(key) ~= "string" or not key:match("^" .. NAME .. "$") then
            fail_render(template_name, "%s is not a valid placeholder name", tostring(key))
        end
        if type(value) ~= "string" then
            fail_render(template_name, "value for ${%s} is a %s (%s), not a string; "
                        .. "format it with lib/clit.lua", key, type(value), tostring(value))
        end
    end

    -- every placeholder needs a value; report all missing names, each at its first line
    local missing, seen = {}, {}
    for pos, name in template_text:gmatch("()%${(" .. NAME .. ")}") do
        if vars[name] == nil and not seen[name] then
            seen[name] = true
            missing[#missing + 1] = string.format("${%s} (line %d)", name,
                                                  line_of(template_text, pos))
        end
    end
    if #missing > 0 then
        fail_render(template_name, "no value for %s", table.concat(missing, ", "))
    end

    local used = {}
    local out = template_text:gsub("%${(" .. NAME .. ")}", function(name)
        used[name] = true
        return vars[name]
    end)

    local unused = {}
    for _, key in ipairs(sorted.keys(vars)) do
        if not used[key] then unused[#unused + 1] = "${" .. key .. "}" end
    end
    if #unused > 0 then
        fail_render(template_name, "value given but not used in the template: %s",
                    table.concat(unused, ", "))
    end

    local left = out:find("${", 1, true)
    if left then
        local line_end = out:find("\n", left, true) or #out + 1
        fail_render(template_name, "\"${\" left in the output at line %d: %s",
                    line_of(out, left), out:sub(left, math.min(line_end - 1, left + 40)))
    end
    return out
end

return render
