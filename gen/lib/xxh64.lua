-- XXH64
-- =====
--
-- Pure Lua 5.4 XXH64 (Yann Collet's xxHash, 64-bit variant), used for the hashes in
-- generated headers and in MANIFEST. Lua 5.4 integers are 64-bit two's complement and
-- +, -, * wrap around exactly like C's uint64_t, and `>>` is a logical shift, so the
-- reference algorithm transcribes directly; only the printed form needs care (`%016x`
-- prints the bit pattern, which is the unsigned value). Checked against `xxhsum -H64`
-- in tests/gen/test_lib.lua, for every tail path (32-byte stripes, 8-, 4- and 1-byte
-- tails) and for long inputs.

local xxh64 = {}

local P1 = 0x9E3779B185EBCA87
local P2 = 0xC2B2AE3D27D4EB4F
local P3 = 0x165667B19E3779F9
local P4 = 0x85EBCA77C2B2AE63
local P5 = 0x27D4EB2F165667C5

local unpack = string.unpack

-- One accumulator round: acc = rotl(acc + lane * P2, 31) * P1.
local function round(acc, lane)
    acc = acc + lane * P2
    acc = (acc << 31) | (acc >> 33)
    return acc * P1
end

-- Folds one stripe accumulator into the hash after the stripe loop.
local function merge(h, acc)
    h = h ~ round(0, acc)
    return h * P1 + P4
end

-- XXH64 of string s as a Lua integer (the uint64 bit pattern); seed defaults to 0.
function xxh64.sum(s, seed)
    assert(type(s) == "string", "xxh64.sum: input must be a string")
    seed = seed or 0
    assert(math.type(seed) == "integer", "xxh64.sum: seed must be an integer")
    local len = #s
    local i = 1                                     -- next unread byte (1-based)
    local h

    if len >= 32 then
        local v1 = seed + P1 + P2
        local v2 = seed + P2
        local v3 = seed
        local v4 = seed - P1
        local last = len - 31                       -- last i at which a full stripe starts
        while i <= last do
            local a, b, c, d
            a, b, c, d, i = unpack("<i8i8i8i8", s, i)
            -- round() inlined: this loop is the whole cost for long inputs
            v1 = v1 + a * P2; v1 = ((v1 << 31) | (v1 >> 33)) * P1
            v2 = v2 + b * P2; v2 = ((v2 << 31) | (v2 >> 33)) * P1
            v3 = v3 + c * P2; v3 = ((v3 << 31) | (v3 >> 33)) * P1
            v4 = v4 + d * P2; v4 = ((v4 << 31) | (v4 >> 33)) * P1
        end
        h = ((v1 << 1) | (v1 >> 63)) + ((v2 << 7) | (v2 >> 57))
          + ((v3 << 12) | (v3 >> 52)) + ((v4 << 18) | (v4 >> 46))
        h = merge(h, v1)
        h = merge(h, v2)
        h = merge(h, v3)
        h = merge(h, v4)
    else
        h = seed + P5
    end

    h = h + len

    while i + 7 <= len do                           -- 8-byte tail lanes
        local k
        k, i = unpack("<i8", s, i)
        h = h ~ round(0, k)
        h = ((h << 27) | (h >> 37)) * P1 + P4
    end
    if i + 3 <= len then                            -- one 4-byte lane
        local k
        k, i = unpack("<I4", s, i)
        h = h ~ (k * P1)
        h = ((h << 23) | (h >> 41)) * P2 + P3
    end
    while i <= len do                               -- single bytes
        h = h ~ (s:byte(i) * P5)
        h = ((h << 11) | (h >> 53)) * P1
        i = i + 1
    end

    -- avalanche
    h = h ~ (h >> 33)
    h = h * P2
    h = h ~ (h >> 29)
    h = h * P3
    h = h ~ (h >> 32)
    return h
end

-- XXH64 of s as 16 lowercase hex digits, the canonical (big-endian) form xxhsum prints.
function xxh64.hex(s, seed)
    return string.format("%016x", xxh64.sum(s, seed))
end

return xxh64
