-- Generator test runner
-- =====================
--
-- Runs every tests/gen/test_*.lua in sorted order, each in a fresh global environment
-- and with the modules it loaded forgotten afterwards, so tests cannot lean on each
-- other. A test fails by raising. Run from the repository root:
--   lua5.4 tests/gen/run.lua [test_x.lua ...]
-- Exit status 0 only if every test passed.

package.path = "gen/?.lua;tests/gen/?.lua;" .. package.path

-- Names of the test files to run: those given on the command line, else all of them.
local function test_files(args)
    if #args > 0 then return args end
    local names = {}
    local p = assert(io.popen("ls tests/gen"))
    for name in p:lines() do
        if name:match("^test_.*%.lua$") then names[#names + 1] = name end
    end
    p:close()
    table.sort(names)
    return names
end

-- Runs one test file; returns nil on success, else the error text.
local function run_one(name)
    local env = setmetatable({}, { __index = _G })
    local loaded_before = {}
    for k in pairs(package.loaded) do loaded_before[k] = true end
    local g_meta = getmetatable(_G)

    local chunk, err = loadfile("tests/gen/" .. name, "t", env)
    local ok = chunk ~= nil
    if ok then
        ok, err = xpcall(chunk, function(e)
            if type(e) == "table" and type(e.msg) == "string" then e = e.msg end
            return debug.traceback(tostring(e), 2)
        end)
    end

    setmetatable(_G, g_meta)                -- undo lib.strict and the like
    for k in pairs(package.loaded) do
        if not loaded_before[k] then package.loaded[k] = nil end
    end
    if not ok then return err end
end

local self_file = io.open("tests/gen/run.lua", "r")
if not self_file then
    io.stderr:write("run from the repository root: lua5.4 tests/gen/run.lua\n")
    os.exit(2)
end
self_file:close()

local passed, failed = 0, 0
for _, name in ipairs(test_files(arg)) do
    local err = run_one(name)
    if err then
        failed = failed + 1
        print("FAIL " .. name .. ": " .. err)
    else
        passed = passed + 1
        print("ok   " .. name)
    end
end
print(string.format("%d passed, %d failed", passed, failed))
os.exit(failed == 0)
