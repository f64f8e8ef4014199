-- Tests of gen/lib
-- ================
--
-- xxh64 against known answers computed by the C library (`xxhsum -H64` 0.8.1, and
-- XXH64() from xxhash.h for seeded hashes); clit literals by round trip; render's strict
-- errors, each checked by message; cwriter's text shape and write-if-changed; sorted
-- order; fail's error kinds and exit statuses; strict globals (in a child lua5.4, since
-- strict changes _G for good).

local t        = require("t")
local xxh64    = require("lib.xxh64")
local clit     = require("lib.clit")
local render   = require("lib.render")
local cwriter  = require("lib.cwriter")
local sorted   = require("lib.sorted")
local fail     = require("lib.fail")

local check, check_eq, check_error = t.check, t.check_eq, t.check_error

---------------------------------------------------------------------------- xxh64

-- Deterministic test bytes: byte i (from 0) is (31 i^2 + 7 i + 13) mod 256.
local function pattern(n)
    local b = {}
    for i = 0, n - 1 do b[i + 1] = string.char((i * i * 31 + i * 7 + 13) & 255) end
    return table.concat(b)
end

-- From: lua writes pattern(n) to a file per n; `xxhsum -H64 k*` (xxHash 0.8.1).
-- 0..67 covers every tail (0-31 bytes after 0, 1 and 2 stripes); the rest, long inputs.
local pattern_hashes = {
    [0] = "ef46db3751d8e999", [1] = "2078e1ad38ad738b", [2] = "25731e177bdf6849",
    [3] = "3df72b3de5e9f90a", [4] = "c89367cf34de0d2d", [5] = "056660525a68745d",
    [6] = "2fc2d9085aa06841", [7] = "0a6665fc29dd224a", [8] = "7019161c5baae62a",
    [9] = "ac01c77c37e78b0a", [10] = "d6eb6991c9ccaca4", [11] = "57433c43a3ca88bd",
    [12] = "45b22b2b06df7b87", [13] = "7741e333b8a205a8", [14] = "c37d5e4a41ce34b1",
    [15] = "185b96a852f6b102", [16] = "b646b35329c8ed85", [17] = "c19209058db65b2c",
    [18] = "5d9107b8f82b97a2", [19] = "24e9ae47ec274329", [20] = "9ea2b4ae1af26e78",
    [21] = "d8a09ba1203149fe", [22] = "ec51d06c7a7a1e81", [23] = "f532344ea653d81f",
    [24] = "842b3152cdf6c915", [25] = "a1f05ce0cb19be99", [26] = "37b754ef65aa2d28",
    [27] = "5507d6aef320803f", [28] = "ce33044ef87f8275", [29] = "6d6c17077e031c73",
    [30] = "ede9b924e70209cf", [31] = "283d529d0e686a7a", [32] = "3c77f509007cd6b8",
    [33] = "d1a6789459d69c12", [34] = "03857aba501b36bc", [35] = "4a453b563769de9b",
    [36] = "4f5405118e9d7892", [37] = "54812d8d44afe04f", [38] = "6ab6e376cdf0aabc",
    [39] = "c480970d8cc4a9b8", [40] = "304d448320fc0fcd", [41] = "2420957c2103ce05",
    [42] = "45f8ef231b51886b", [43] = "46a14027679bbe73", [44] = "a9c043409247359e",
    [45] = "f8932f26cf7aacaf", [46] = "d9f1212da6af4b87", [47] = "d0b87515fda3051b",
    [48] = "05052cbfcb964821", [49] = "1fa2ea2efc2dee09", [50] = "4325e02c6480c60a",
    [51] = "15ce8587143acd5f", [52] = "fbf483eea4076aaf", [53] = "9f8f93b291626627",
    [54] = "72ada4c83de1d1c5", [55] = "28868cc037af7841", [56] = "e8f7b52301a20f62",
    [57] = "c4179310b7fb5063", [58] = "ee6c5e3e2a36df50", [59] = "c2241c13fb5b43c4",
    [60] = "e22702f70d0f7661", [61] = "616972fad27fcd39", [62] = "fe1b738085eb75f1",
    [63] = "204cb5c6bf13367c", [64] = "650f816b5b70a6bf", [65] = "9f6345e619d35493",
    [66] = "2362bbd21b645caf", [67] = "4accfbfb7a759f32", [100] = "94749901327fed6d",
    [255] = "14ce154ab0814b0f", [256] = "60e92832161acbb6", [1000] = "7255639858185f83",
    [4096] = "77abe1a3cf055c46", [65537] = "db71449ee1f464ff",
    [1048576] = "58fd92fb6b18ae17",
}

-- From: printf '%s' "$s" | xxhsum -H64
local text_hashes = {
    { "",       "ef46db3751d8e999" },
    { "a",      "d24ec4f1a98c6e5b" },
    { "abc",    "44bc2cf5ad770999" },
    { "xxhash", "32dd38952c4bc720" },
    { "The quick brown fox jumps over the lazy dog", "0b242d361fda71bc" },
}

-- From: XXH64(s, len, seed) of xxhash.h 0.8.1 (XXH_INLINE_ALL), s the string below.
local seeded_text = "The quick brown fox jumps over the lazy dog, twice or more!"
local seeded_hashes = {
    { 0,  1,                  "d5afba1336a3be4b" },
    { 3,  1,                  "4d66b2cb8b62ec76" },
    { 4,  1,                  "7bcaa20519f4fcdc" },
    { 11, 1,                  "1d6fc770578f2418" },
    { 31, 1,                  "3221573b71d0da3b" },
    { 32, 1,                  "85db3c26b849f20c" },
    { 59, 1,                  "8e750b347c580ae3" },
    { 0,  0x9E3779B185EBCA87, "6ec6d05f61c7e7a7" },
    { 11, 0x9E3779B185EBCA87, "aa4eb3ef9ad9bba8" },
    { 32, 0x9E3779B185EBCA87, "a80adeea3e724dd2" },
    { 59, 0x9E3779B185EBCA87, "eed70a74a2bee882" },
    { 0,  -1,                 "298f4c84b24f5380" },
    { 4,  -1,                 "c005e3687e4cc20f" },
    { 31, -1,                 "567ec29fac5f519b" },
    { 59, -1,                 "9c5d25017c964fc0" },
}

local function test_xxh64()
    for _, n in ipairs(sorted.keys(pattern_hashes)) do
        check_eq(xxh64.hex(pattern(n)), pattern_hashes[n], "xxh64 of pattern(" .. n .. ")")
    end
    for _, c in ipairs(text_hashes) do
        check_eq(xxh64.hex(c[1]), c[2], "xxh64 of " .. string.format("%q", c[1]))
    end
    for _, c in ipairs(seeded_hashes) do
        local len, seed, want = c[1], c[2], c[3]
        check_eq(xxh64.hex(seeded_text:sub(1, len), seed), want,
                 string.format("xxh64 of %d bytes, seed %016x", len, seed))
    end
    check_eq(xxh64.hex("abc", 0), xxh64.hex("abc"), "xxh64 default seed is 0")

    -- sum is the integer whose bit pattern hex prints
    local h = xxh64.sum("")
    check_eq(math.type(h), "integer", "xxh64.sum type")
    check_eq(string.format("%016x", h), "ef46db3751d8e999", "xxh64.sum of \"\"")

    -- 5 MB in well under 2 s of CPU
    local big = string.rep(pattern(4096), 5 * 256)
    local t0 = os.clock()
    xxh64.sum(big)
    local dt = os.clock() - t0
    check(dt < 2.0, "xxh64 of 5 MB took %.2f s (limit 2 s)", dt)
end

----------------------------------------------------------------------------- clit

-- The float32 bit pattern of Lua number x.
local function f32_bits(x)
    return string.unpack("<I4", string.pack("<f", x))
end

-- Checks that literal lit (with the f suffix) is well formed and reads back as bits.
local function check_f32_literal(lit, bits, what)
    check(lit:match("^%-?%d+%.?%d*e?[-+]?%d*f$") and lit:find("[.e]"),
          "%s: malformed float literal %s", what, lit)
    local back = f32_bits(tonumber(lit:sub(1, -2)))
    check(back == bits, "%s: %s reads back as %08x, want %08x", what, lit, back, bits)
end

local function test_clit_ints()
    check_eq(clit.int(0), "0", "clit.int(0)")
    check_eq(clit.int(-42), "-42", "clit.int(-42)")
    check_eq(clit.int(1536), "1536", "clit.int(1536)")
    check_eq(clit.int(math.maxinteger), "9223372036854775807", "clit.int(max)")
    check_eq(clit.int(math.mininteger), "(-9223372036854775807 - 1)", "clit.int(min)")
    check_error(function() clit.int(1536.0) end, "clit.int: expected an integer, got float",
                "clit.int(1536.0)")
    check_error(function() clit.int("3") end, "expected an integer", "clit.int(\"3\")")

    check_eq(clit.size(0), "(size_t)0", "clit.size(0)")
    check_eq(clit.size(156672000), "(size_t)156672000", "clit.size")
    check_error(function() clit.size(-1) end, "clit.size: negative size -1", "clit.size(-1)")
    check_error(function() clit.size(1.5) end, "expected an integer", "clit.size(1.5)")

    check_eq(clit.i64(-5), "INT64_C(-5)", "clit.i64(-5)")
    check_eq(clit.i64(1 << 40), "INT64_C(1099511627776)", "clit.i64(2^40)")
    check_eq(clit.i64(math.mininteger), "INT64_MIN", "clit.i64(min)")
end

local function test_clit_f32()
    check_eq(clit.f32(1e-6), "1e-06f", "clit.f32(1e-6)")
    check_eq(clit.f32(1 / 3), "0.33333334f", "clit.f32(1/3)")
    check_eq(clit.f32(3), "3.0f", "clit.f32(3)")
    check_eq(clit.f32(0.1), "0.1f", "clit.f32(0.1)")
    check_eq(clit.f32(-2.5), "-2.5f", "clit.f32(-2.5)")
    check_eq(clit.f32(0.0), "0.0f", "clit.f32(0.0)")
    check_eq(clit.f32(-0.0), "-0.0f", "clit.f32(-0.0)")
    check_eq(clit.f32(16777217), "16777216.0f", "clit.f32 rounds to float32 first")
    check_eq(clit.f32(1e10), "1e+10f", "clit.f32(1e10)")
    check_eq(clit.f32(1.4e-45), "1e-45f", "clit.f32(smallest subnormal)")
    check_eq(clit.f32(3.4028234663852886e38), "3.4028235e+38f", "clit.f32(FLT_MAX)")
    check_error(function() clit.f32(1 / 0) end, "has no C literal", "clit.f32(inf)")
    check_error(function() clit.f32(-1 / 0) end, "has no C literal", "clit.f32(-inf)")
    check_error(function() clit.f32(0 / 0) end, "has no C literal", "clit.f32(nan)")
    check_error(function() clit.f32(1e39) end, "overflows float32", "clit.f32(1e39)")
    check_error(function() clit.f32(1e-50) end, "underflows float32", "clit.f32(1e-50)")
    check_error(function() clit.f32("1") end, "expected a number", "clit.f32(\"1\")")

    -- 10000 random float32 values: any pattern, subnormals, extreme exponents, near 1
    math.randomseed(20240601)
    local extreme = { 1, 2, 3, 4, 250, 251, 252, 253, 254 }
    for i = 1, 10000 do
        local sign = math.random(0, 1) << 31
        local bits
        if i % 4 == 0 then
            bits = math.random(0, 0xFFFFFFFF)
        elseif i % 4 == 1 then
            bits = sign | math.random(1, 0x7FFFFF)                            -- subnormal
        elseif i % 4 == 2 then
            bits = sign | (extreme[math.random(#extreme)] << 23) | math.random(0, 0x7FFFFF)
        else
            bits = sign | (math.random(120, 134) << 23) | math.random(0, 0x7FFFFF)
        end
        if (bits >> 23) & 0xFF == 0xFF then bits = bits & ~(1 << 30) end       -- no inf/nan
        local x = string.unpack("<f", string.pack("<I4", bits))
        if x ~= 0 then
            check_f32_literal(clit.f32(x), bits, string.format("clit.f32(%08x)", bits))
        end
    end
end

local function test_clit_f64()
    check_eq(clit.f64(3), "3.0", "clit.f64(3)")
    check_eq(clit.f64(0.1), "0.1", "clit.f64(0.1)")
    check_eq(clit.f64(1 / 3), "0.3333333333333333", "clit.f64(1/3)")
    check_eq(clit.f64(-0.0), "-0.0", "clit.f64(-0.0)")
    check_eq(clit.f64(1e-6), "1e-06", "clit.f64(1e-6)")
    check_eq(clit.f64(5e-324), "5e-324", "clit.f64(smallest subnormal)")
    check_eq(clit.f64(1.7976931348623157e308), "1.7976931348623157e+308", "clit.f64(DBL_MAX)")
    check_error(function() clit.f64(0 / 0) end, "has no C literal", "clit.f64(nan)")
    check_error(function() clit.f64(1 / 0) end, "has no C literal", "clit.f64(inf)")

    math.randomseed(777)
    for i = 1, 10000 do
        local bits = math.random(math.mininteger, math.maxinteger)
        if i % 3 == 0 then bits = bits & 0x800FFFFFFFFFFFFF end                -- subnormal
        if (bits >> 52) & 0x7FF == 0x7FF then bits = bits & ~(1 << 62) end    -- no inf/nan
        local x = string.unpack("<d", string.pack("<i8", bits))
        local lit = clit.f64(x)
        check(lit:find("[.e]"), "clit.f64: %s has no '.' or exponent", lit)
        local back = string.unpack("<i8", string.pack("<d", tonumber(lit)))
        check(back == bits, "clit.f64: %s reads back as %016x, want %016x", lit, back, bits)
    end
end

local function test_clit_str()
    check_eq(clit.str(""), '""', "clit.str(\"\")")
    check_eq(clit.str("hello, world"), '"hello, world"', "clit.str plain")
    check_eq(clit.str('a"b\\c'), '"a\\"b\\\\c"', "clit.str quote, backslash")
    check_eq(clit.str("x\ny\tz"), '"x\\ny\\tz"', "clit.str newline, tab")
    check_eq(clit.str("\0" .. "7"), '"\\0007"', "clit.str NUL then a digit")
    check_eq(clit.str("\r\127"), '"\\015\\177"', "clit.str control bytes")
    check_eq(clit.str("é"), '"\\303\\251"', "clit.str UTF-8")
    check_eq(clit.str("what? ??= ???"), '"what? ?\\?= ?\\?\\?"', "clit.str trigraphs")
    -- every byte value: output is printable ASCII
    local all = {}
    for b = 0, 255 do all[#all + 1] = string.char(b) end
    local lit = clit.str(table.concat(all))
    check(not lit:find("[^\32-\126]"), "clit.str output is not printable ASCII")

    check_eq(clit.comment("plain text"), "plain text", "clit.comment plain")
    check_eq(clit.comment("gen/**/x.lua"), "gen/ ** /x.lua", "clit.comment glob")
    check_eq(clit.comment("a */ b /* c"), "a * / b / * c", "clit.comment both")
    check_eq(clit.comment("*/*/"), "* / * /", "clit.comment overlapping")
    for _, s in ipairs({ "/*/", "*/*", "**//**", "/**/", "///***" }) do
        local c = clit.comment(s)
        check(not c:find("*/", 1, true) and not c:find("/*", 1, true),
              "clit.comment(%q) = %q still opens or closes a comment", s, c)
    end
end

--------------------------------------------------------------------------- render

local function test_render()
    local tpl = "kernel ${name}(float *y)\n{\n    enum { C = ${C} };\n    float eps = ${EPS};\n}\n"
    local out = render.render(tpl, { name = "ln_c64", C = "64", EPS = "1e-06f" }, "ln.cu.in")
    check_eq(out, "kernel ln_c64(float *y)\n{\n    enum { C = 64 };\n    float eps = 1e-06f;\n}\n",
             "render output")
    check_eq(render.render("${a}${a}-${_b1}", { a = "x", _b1 = "y" }, "t"), "xx-y",
             "render repeated and underscore names")
    check_eq(render.render("no placeholders", {}, "t"), "no placeholders", "render no vars")

    check_error(function() render.render(tpl, { name = "k", C = 64, EPS = "1f" }, "ln.cu.in") end,
                "ln.cu.in: value for ${C} is a number (64), not a string", "render number value")
    check_error(function() render.render(tpl, { name = "k", EPS = "1f" }, "ln.cu.in") end,
                "ln.cu.in: no value for ${C} (line 3)", "render missing value")
    check_error(function() render.render(tpl, { name = "k" }, "ln.cu.in") end,
                "ln.cu.in: no value for ${C} (line 3), ${EPS} (line 4)", "render missing values")
    check_error(function()
                    render.render(tpl, { name = "k", C = "1", EPS = "1f", THREADS = "256" },
                                  "ln.cu.in")
                end,
                "ln.cu.in: value given but not used in the template: ${THREADS}",
                "render unused value")
    check_error(function() render.render("x ${ bad } y", {}, "bad.in") end,
                "bad.in: \"${\" left in the output at line 1: ${ bad }", "render bad placeholder")
    check_error(function() render.render("${1x}", {}, "num.in") end,
                "num.in: \"${\" left in the output", "render placeholder starting with a digit")
    check_error(function() render.render("${a}", { a = "${b}" }, "nest.in") end,
                "nest.in: \"${\" left in the output", "render value containing ${")
    check_error(function() render.render("${a}", { a = "x", [1] = "y" }, "key.in") end,
                "key.in: 1 is not a valid placeholder name", "render bad key")
    check_error(function() render.render(nil, {}, "nil.in") end,
                "nil.in: template text is a nil", "render nil text")
    -- errors are plain strings starting with the template name (no "file:line:" prefix)
    local ok, e = pcall(render.render, "${x}", {}, "start.in")
    check(not ok and type(e) == "string" and e:sub(1, 9) == "start.in:",
          "render error must start with the template name, got %s", tostring(e))
end

-------------------------------------------------------------------------- cwriter

-- Quotes s for a POSIX shell.
local function shell_quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- A fresh empty directory under the system temp dir.
local function temp_dir()
    local path = os.tmpname()
    os.remove(path)
    assert(os.execute("mkdir -p " .. shell_quote(path)))
    return path
end

-- Contents of a file, or nil.
local function slurp(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local s = f:read("a")
    f:close()
    return s
end

-- Modification time of path with nanoseconds, from stat(1).
local function mtime(path)
    local p = assert(io.popen("stat -c %y " .. shell_quote(path)))
    local s = p:read("a")
    assert(p:close() and s ~= "", "stat failed on " .. path)
    return s
end

local function test_cwriter_text()
    local w = cwriter.new()
    w:line("/* header */")
    w:blank()
    w:open("static void f(int n)")
    w:open("{")
    w:line("int a = %d;", 3)
    w:line("printf(\"100%\");")
    w:line("x = %d%%;", 5)
    w:line("literal %d stays")
    w:open("for (int i = 0; i < n; i++) {")
    w:line("a += i;\nb += i;")
    w:close("}")
    w:blank()
    w:close("}")
    w:close()
    w:raw("#define X 1\n  verbatim\n")
    w:blank()
    w:blank()
    local want = "/* header */\n\nstatic void f(int n)\n    {\n        int a = 3;\n"
              .. "        printf(\"100%\");\n        x = 5%;\n        literal %d stays\n"
              .. "        for (int i = 0; i < n; i++) {\n            a += i;\n            b += i;\n"
              .. "        }\n\n    }\n#define X 1\n  verbatim\n"
    check_eq(w:text(), want, "cwriter text")

    local w2 = cwriter.new("\t")
    w2:open("{")
    w2:line("x;")
    w2:close("}")
    w2:raw("no newline at end")
    check_eq(w2:text(), "{\n\tx;\n}\nno newline at end\n", "cwriter tab indent, raw")
    check_eq(cwriter.new():text(), "", "cwriter empty text")

    local w3 = cwriter.new()
    w3:open("{")
    check_error(function() w3:text() end, "cwriter: text() with 1 unclosed open()",
                "cwriter unclosed")
    check_error(function() cwriter.new():close("}") end,
                "cwriter: close() without a matching open()", "cwriter close without open")
end

local function test_cwriter_write_tree()
    local dir = temp_dir()
    local out = dir .. "/out dir's"                             -- space and quote in name
    local files = {
        ["b.c"] = "int b;\n",
        ["gen/dit_launch.c"] = "int x;\n",
        ["a.h"] = "#pragma once\n",
        ["gen/sub/deep.txt"] = "deep\n",
    }
    local paths, written = cwriter.write_tree(out, files)
    local want = { "a.h", "b.c", "gen/dit_launch.c", "gen/sub/deep.txt" }
    check_eq(table.concat(paths, ","), table.concat(want, ","), "write_tree paths")
    check_eq(table.concat(written, ","), table.concat(want, ","), "write_tree first write")
    for rel, text in pairs(files) do
        check_eq(slurp(out .. "/" .. rel), text, "write_tree content of " .. rel)
    end

    local before = mtime(out .. "/gen/dit_launch.c")
    local before_b = mtime(out .. "/b.c")
    os.execute("sleep 0.05")
    files["b.c"] = "int b2;\n"
    paths, written = cwriter.write_tree(out, files)
    check_eq(#paths, 4, "write_tree second run path count")
    check_eq(table.concat(written, ","), "b.c", "write_tree rewrites only the changed file")
    check_eq(mtime(out .. "/gen/dit_launch.c"), before, "unchanged file keeps its mtime")
    check(mtime(out .. "/b.c") ~= before_b, "changed file gets a new mtime")
    check_eq(slurp(out .. "/b.c"), "int b2;\n", "write_tree new content")
    check_eq(slurp(out .. "/b.c.tmp"), nil, "write_tree leaves no temporary file")

    local _, written_again = cwriter.write_tree(out, files)
    check_eq(#written_again, 0, "write_tree third run writes nothing")

    for _, bad in ipairs({ "/abs.c", "../up.c", "a/../b.c", "./a.c", "a//b.c", "" }) do
        check_error(function() cwriter.write_tree(out, { [bad] = "x" }) end,
                    "cwriter.write_tree:", "write_tree rejects " .. string.format("%q", bad))
    end
    check_error(function() cwriter.write_tree(out, { ["x.c"] = 1 }) end,
                "content of x.c is not a string", "write_tree non-string content")

    assert(os.execute("rm -rf " .. shell_quote(dir)))
end

--------------------------------------------------------------------------- sorted

local function test_sorted()
    local mixed = { b = 1, a = 2, [10] = 3, [2] = 4, [1.5] = 5, [true] = 6, [false] = 7,
                    ["B"] = 8, ["10"] = 9, [-3] = 10 }
    local got = {}
    for _, k in ipairs(sorted.keys(mixed)) do got[#got + 1] = tostring(k) end
    check_eq(table.concat(got, " "), "-3 1.5 2 10 10 B a b false true", "sorted.keys order")

    local seen = {}
    for k, v in sorted.spairs({ z = 26, y = 25, x = 24 }) do seen[#seen + 1] = k .. "=" .. v end
    check_eq(table.concat(seen, ","), "x=24,y=25,z=26", "sorted.spairs")
    check_eq(#sorted.keys({}), 0, "sorted.keys of {}")
    local n = 0
    for _ in sorted.spairs({}) do n = n + 1 end
    check_eq(n, 0, "sorted.spairs of {}")
    check_error(function() sorted.keys({ [{}] = 1 }) end,
                "a key of type table has no deterministic order", "sorted.keys table key")

    -- same order whatever the insertion order (and whatever the string hash seed)
    local names = {}
    for i = 1, 12 do names[i] = "blocks." .. i .. ".weight" end
    local t1, t2 = {}, {}
    for i = 1, 12 do t1[names[i]] = i; t2[names[13 - i]] = 13 - i end
    check_eq(table.concat(sorted.keys(t1), ","), table.concat(sorted.keys(t2), ","),
             "sorted.keys independent of insertion order")
end

----------------------------------------------------------------------------- fail

-- Runs fail.main(fn) with its output captured in a temp file; returns status, text.
local function run_main(fn)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    local ok, status = pcall(fail.main, fn, f)
    f:close()
    local text = slurp(path)
    os.remove(path)
    assert(ok, status)
    return status, text
end

local function test_fail()
    local e = t.check_user_error(function() fail.user("%s: bad %d", "specs/x.lua", 7) end,
                                 "specs/x.lua: bad 7", "fail.user")
    check(e.user == true and e.msg == "specs/x.lua: bad 7", "fail.user error shape")
    check_eq(tostring(e), "specs/x.lua: bad 7", "fail.user error tostring")
    check(fail.is_user(e) and not fail.is_user("x") and not fail.is_user({}), "fail.is_user")

    local c = fail.collect()
    c:raise()                                                   -- nothing added: no error
    c:add("one %d", 1)
    c:add("two")
    check_eq(c:count(), 2, "collector count")
    t.check_user_error(function() c:raise() end, "one 1\ntwo", "collector with two")
    local ok, e2 = pcall(c.raise, c)
    check(not ok and e2.msg == "one 1\ntwo", "collector message is exactly the lines")

    local many = fail.collect()
    for i = 1, 25 do many:add("problem %d", i) end
    local _, e3 = pcall(many.raise, many)
    local lines = {}
    for line in (e3.msg .. "\n"):gmatch("(.-)\n") do lines[#lines + 1] = line end
    check_eq(#lines, 21, "collector caps at 20 lines plus a summary")
    check_eq(lines[1], "problem 1", "collector first line")
    check_eq(lines[20], "problem 20", "collector last shown line")
    check_eq(lines[21], "... and 5 more", "collector summary line")

    local status, text = run_main(function() end)
    check_eq(status, 0, "fail.main success status")
    check_eq(text, "", "fail.main success prints nothing")

    status, text = run_main(function() fail.user("specs/x.lua: dit.dim = 7 is too small") end)
    check_eq(status, 1, "fail.main user error status")
    check_eq(text, "error: specs/x.lua: dit.dim = 7 is too small\n", "fail.main user error text")

    status, text = run_main(function() c:raise() end)
    check_eq(status, 1, "fail.main collected errors status")
    check_eq(text, "error: one 1\ntwo\n", "fail.main collected errors text")

    status, text = run_main(function() assert(false, "plan: tensor 3 overlaps 4") end)
    check_eq(status, 2, "fail.main bug status")
    check(text:find("internal error (a bug in the generator): ", 1, true) == 1,
          "fail.main bug header, got %q", text)
    check(text:find("plan: tensor 3 overlaps 4", 1, true), "fail.main bug message, got %q", text)
    check(text:find("stack traceback:", 1, true), "fail.main bug traceback, got %q", text)

    status, text = run_main(function() local x = nil; return x.field end)
    check_eq(status, 2, "fail.main runtime error status")
    check(text:find("attempt to index", 1, true), "fail.main runtime error text, got %q", text)
end

--------------------------------------------------------------------------- strict

-- Runs a Lua snippet in a child lua5.4 with gen/ on the path; returns ok, output.
local function run_child(code)
    local path = os.tmpname()
    local f = assert(io.open(path, "w"))
    f:write('package.path = "gen/?.lua;" .. package.path\n', code)
    f:close()
    local p = assert(io.popen("lua5.4 " .. shell_quote(path) .. " 2>&1"))
    local out = p:read("a")
    local ok = p:close()
    os.remove(path)
    return ok, out
end

local function test_strict()
    local ok, out = run_child('require("lib.strict")\nlocal x = undeclared_name\n')
    check(not ok, "strict: reading an undeclared global must fail")
    check(out:find("strict: read of undeclared global 'undeclared_name'", 1, true),
          "strict read message, got %q", out)

    ok, out = run_child('require("lib.strict")\nnew_global = 1\n')
    check(not ok, "strict: assigning an undeclared global must fail")
    check(out:find("strict: assignment to undeclared global 'new_global'", 1, true),
          "strict write message, got %q", out)

    ok, out = run_child('existing = 1\nrequire("lib.strict")\nexisting = existing + 1\n'
                        .. 'local strict = require("lib.strict")\n'
                        .. 'strict.declare("later", 5)\nlater = later + string.len("ab")\n'
                        .. 'print(existing, later, type(print))\n')
    check(ok, "strict: globals from before load and declared ones must work, got %q", out)
    check_eq(out, "2\t7\tfunction\n", "strict child output")

    -- strict.apply works on any table, so it can be checked in-process too
    local strict_env = { a = 1 }
    package.loaded["lib.strict"] = nil
    local saved = getmetatable(_G)
    local strict = require("lib.strict")
    setmetatable(_G, saved)                                     -- keep this process lenient
    strict.apply(strict_env, "field")
    check_eq(strict_env.a, 1, "strict.apply keeps existing fields")
    check_error(function() return strict_env.b end, "read of undeclared field 'b'",
                "strict.apply read")
    check_error(function() strict_env.c = 1 end, "assignment to undeclared field 'c'",
                "strict.apply write")
end

test_xxh64()
test_clit_ints()
test_clit_f32()
test_clit_f64()
test_clit_str()
test_render()
test_cwriter_text()
test_cwriter_write_tree()
test_sorted()
test_fail()
test_strict()
