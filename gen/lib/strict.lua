-- Strict globals
-- ==============
--
-- After require("lib.strict"), reading or assigning a global that did not exist when
-- this module was loaded raises an error naming it (as Terra and LuaJIT do), so a typo
-- or a missing `local` fails loudly instead of yielding nil or leaking state between
-- passes. Globals present at load time (the standard library, `arg`) stay usable; a
-- new global, if one is ever really needed, is made with strict.declare(name, value).

local strict = {}

-- Makes table env strict: unknown names raise on read and on write.
function strict.apply(env, what)
    what = what or "global"
    assert(getmetatable(env) == nil, "strict.apply: table already has a metatable")
    setmetatable(env, {
        __index = function(_, name)
            error(string.format("strict: read of undeclared %s '%s'", what, tostring(name)), 2)
        end,
        __newindex = function(_, name)
            error(string.format("strict: assignment to undeclared %s '%s' (missing 'local'?)",
                                what, tostring(name)), 2)
        end,
    })
    return env
end

-- Declares global name with value, bypassing the check.
function strict.declare(name, value)
    assert(type(name) == "string", "strict.declare: name must be a string")
    rawset(_G, name, value)
end

strict.apply(_G)

return strict
