-- Sorted iteration
-- ================
--
-- The only way the generator iterates a map. Lua 5.4 seeds its string hash per run, so
-- pairs() visits the same table in a different order from one run to the next; anything
-- that reaches output must walk keys through sorted.keys or sorted.spairs instead.
-- Order: numbers (by value), then strings (byte order), then booleans (false, true).
-- Keys of any other type (tables, functions) have no stable order and raise an error.

local sorted = {}

local type_rank = { number = 1, string = 2, boolean = 3 }

-- Total order on keys: by type rank, then by value within the type.
local function key_less(a, b)
    local ta, tb = type(a), type(b)
    if ta ~= tb then return type_rank[ta] < type_rank[tb] end
    if ta == "boolean" then return (not a) and b end
    return a < b
end

-- The keys of t in the order described above, as a new list.
function sorted.keys(t)
    assert(type(t) == "table", "sorted.keys: expected a table, got " .. type(t))
    local keys = {}
    for k in pairs(t) do
        if not type_rank[type(k)] then
            error("sorted.keys: a key of type " .. type(k) .. " has no deterministic order", 2)
        end
        keys[#keys + 1] = k
    end
    table.sort(keys, key_less)
    return keys
end

-- Iterator over t in sorted.keys order: `for k, v in sorted.spairs(t) do ... end`.
function sorted.spairs(t)
    local keys = sorted.keys(t)
    local i = 0
    return function()
        i = i + 1
        local k = keys[i]
        if k ~= nil then return k, t[k] end
    end
end

return sorted
