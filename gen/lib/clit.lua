-- C literals
-- ==========
--
-- Every number, string and comment the generator puts into C or CUDA goes through one of
-- these helpers (Pallene's C.lua), never through tostring(): in Lua 5.4 tostring(1536.0)
-- is "1536.0" and 1/3 prints 14 digits. Floats are written as the shortest decimal that
-- reads back as the same value, so output is exact and stable; strings come out as pure
-- ASCII with octal escapes; comment text can never close its comment early. A value
-- that has no C literal (inf, nan, a float where an integer is required) is a bug in the
-- caller and raises an error.

local clit = {}

-- Checks that n is a Lua integer (not a float with an integral value).
local function check_integer(fn, n)
    if math.type(n) ~= "integer" then
        error(string.format("clit.%s: expected an integer, got %s %s",
                            fn, math.type(n) or type(n), tostring(n)), 3)
    end
end

-- Checks that x is a finite number.
local function check_finite(fn, x)
    if type(x) ~= "number" then
        error(string.format("clit.%s: expected a number, got %s", fn, type(x)), 3)
    end
    if x ~= x or x == math.huge or x == -math.huge then
        error(string.format("clit.%s: %s has no C literal", fn, tostring(x)), 3)
    end
end

-- Decimal integer literal; math.mininteger is spelled so that C sees no overflow.
function clit.int(n)
    check_integer("int", n)
    if n == math.mininteger then return "(-9223372036854775807 - 1)" end
    return string.format("%d", n)
end

-- A size_t constant: clit.size(123) == "(size_t)123".
function clit.size(n)
    check_integer("size", n)
    if n < 0 then error(string.format("clit.size: negative size %d", n), 2) end
    return string.format("(size_t)%d", n)
end

-- An int64_t constant: clit.i64(-5) == "INT64_C(-5)".
function clit.i64(n)
    check_integer("i64", n)
    if n == math.mininteger then return "INT64_MIN" end
    return string.format("INT64_C(%d)", n)
end

-- Rounds a Lua number to the nearest float32 (as a Lua float).
local function to_f32(x)
    return (string.unpack("<f", string.pack("<f", x)))
end

-- True if a C compiler reading decimal s as a float surely gets r. Lua reads s as a
-- double and then rounds to float; C rounds the decimal once. The two agree unless the
-- double lands exactly halfway between r and its neighbour, so that case is refused
-- and the caller tries more digits (9 digits are never that close to a midpoint).
local function reads_back_f32(s, r)
    local v = tonumber(s)
    if v == r then return true end
    if to_f32(v) ~= r then return false end
    local bits = string.unpack("<I4", string.pack("<f", r))
    bits = math.abs(v) > math.abs(r) and bits + 1 or bits - 1
    local neighbour = string.unpack("<f", string.pack("<I4", bits))
    return v ~= (r + neighbour) / 2
end

-- Shortest decimal that reads back as the same float32, as a C float literal.
function clit.f32(x)
    check_finite("f32", x)
    local r = to_f32(x)                                       -- round to float32 first
    if r == math.huge or r == -math.huge then
        error(string.format("clit.f32: %.17g overflows float32", x), 2)
    end
    if r == 0 and x ~= 0 then
        error(string.format("clit.f32: %.17g underflows float32 to zero", x), 2)
    end
    for digits = 1, 9 do                                      -- subnormals may need < 6
        local s = string.format("%." .. digits .. "g", r)
        if reads_back_f32(s, r) then
            if not s:find("[%.eE]") then s = s .. ".0" end
            return s .. "f"
        end
    end
    error("unreachable: 9 significant digits always round-trip a float32")
end

-- Shortest decimal that reads back as the same double, as a C double literal.
function clit.f64(x)
    check_finite("f64", x)
    local r = math.type(x) == "integer" and x + 0.0 or x      -- keeps -0.0
    for digits = 1, 17 do
        local s = string.format("%." .. digits .. "g", r)
        if tonumber(s) == r then
            if not s:find("[%.eE]") then s = s .. ".0" end
            return s
        end
    end
    error("unreachable: 17 significant digits always round-trip a double")
end

local str_escapes = {
    ["\\"] = "\\\\",
    ['"']  = '\\"',
    ["\n"] = "\\n",
    ["\t"] = "\\t",
}

-- A C string literal with quotes; the result is printable ASCII whatever the bytes of s.
-- Other control and non-ASCII bytes become three-digit octal escapes (never ambiguous
-- with a following digit), and a "?" after "?" is escaped so no trigraph can form.
function clit.str(s)
    assert(type(s) == "string", "clit.str: expected a string")
    local body = s:gsub("()([%c\"\\?\128-\255])", function(pos, c)
        if c == "?" then
            return s:sub(pos - 1, pos - 1) == "?" and "\\?" or "?"
        end
        return str_escapes[c] or string.format("\\%03o", c:byte())
    end)
    return '"' .. body .. '"'
end

-- Text that is safe inside /* ... */: "*/" becomes "* /" and "/*" becomes "/ *".
function clit.comment(s)
    assert(type(s) == "string", "clit.comment: expected a string")
    repeat
        local n1, n2
        s, n1 = s:gsub("%*/", "* /")
        s, n2 = s:gsub("/%*", "/ *")
    until n1 + n2 == 0
    return s
end

return clit
