-- tests/gen/test_specs.lua: every shipped spec loads; every bad spec fails with its message;
-- derived sizes of the released variants equal the reference's (dit-and-sampling.md §1, §2.8).
local t    = require("t")
local spec = require("spec")

-- Sorted .lua files of a directory.
local function lua_files(dir)
    local names = {}
    local p = assert(io.popen("ls " .. dir))
    for name in p:lines() do
        if name:match("%.lua$") then names[#names + 1] = dir .. "/" .. name end
    end
    p:close()
    table.sort(names)
    return names
end

-- Every shipped spec is valid.
local shipped = lua_files("specs")
t.check(#shipped >= 11, "expected the 8 released variants and 3 tiny specs, found %d specs", #shipped)
for _, path in ipairs(shipped) do
    local ok, e = pcall(spec.load, path)
    t.check(ok, "%s: %s", path, t.error_text(e))
end

-- Bad specs: each file starts with "-- expect: <substring>" lines; all must appear in the one
-- error, which must be a user error that names the file.
local bad = lua_files("tests/gen/bad_specs")
t.check(#bad >= 20, "expected at least 20 bad specs, found %d", #bad)
for _, path in ipairs(bad) do
    local f = assert(io.open(path, "rb"))
    local text = f:read("a")
    f:close()
    local expects = {}
    for line in text:gmatch("[^\n]+") do
        local e = line:match("^%-%- expect: (.+)$")
        if e then expects[#expects + 1] = e end
    end
    t.check(#expects > 0, "%s: no '-- expect:' line", path)
    local ok, e = pcall(spec.load, path)
    t.check(not ok, "%s: loaded, but it must fail with %q", path, expects[1])
    t.check(type(e) == "table" and e.user, "%s: failed with an internal error, not a user error: %s", path,
            t.error_text(e))
    for _, want in ipairs(expects) do
        t.check(e.msg:find(want, 1, true), "%s: message lacks %q; message was:\n%s", path, want, e.msg)
    end
    t.check(e.msg:find(path:match("[^/]+$"), 1, true), "%s: message does not name the file:\n%s", path, e.msg)
end

-- Derived sizes of released variants (reference §1: 540P 34x60 = 2040 tokens/frame, 97 frames ->
-- 25 latents -> 51,000 tokens; 720P 45x80 = 3600, 121 -> 31 -> 111,600; §2.8: RoPE 44/42/42).
local function derived(name) return spec.load("specs/" .. name .. ".lua").derived end
local d = derived("df_1.3b_540p")
t.check_eq(d.tokens_per_frame, 2040, "540P tokens per frame")
t.check_eq(d.max_frames, 25, "540P latent frames of 97")
t.check_eq(d.max_tokens, 51000, "540P tokens")
t.check_eq(d.head_dim, 128, "head dim")
t.check_eq(d.rope_t_dim, 44, "RoPE frame dims")
t.check_eq(d.rope_h_dim, 42, "RoPE height dims")
t.check_eq(d.rope_w_dim, 42, "RoPE width dims")
d = derived("t2v_14b_720p")
t.check_eq(d.tokens_per_frame, 3600, "720P tokens per frame")
t.check_eq(d.max_tokens, 111600, "720P tokens")
t.check_eq(derived("i2v_14b_540p").patch_in, 144, "I2V patch entries (36 channels x 4)")
