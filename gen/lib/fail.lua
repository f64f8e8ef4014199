-- Errors in the generator
-- =======================
--
-- Two kinds, like DynASM's werror/wfatal. A user error (bad spec, impossible schedule)
-- is raised with fail.user as a table { user = true, msg = ... }; fail.main prints the
-- message and returns exit status 1. Anything else is a bug (a failed assert, a nil
-- index): fail.main prints it with a traceback and returns 2. A collector gathers many
-- user errors (all spec problems in one run, at most 20 shown) and raises them as one.

local fail = {}

local MAX_SHOWN = 20                        -- messages shown by a collector's raise()

local UserError = {}
UserError.__index = UserError
UserError.__tostring = function(e) return e.msg end

-- Raises a user error whose message is string.format(fmt, ...).
function fail.user(fmt, ...)
    assert(type(fmt) == "string", "fail.user: fmt must be a string")
    local msg = select("#", ...) > 0 and string.format(fmt, ...) or fmt
    error(setmetatable({ user = true, msg = msg }, UserError), 0)
end

-- True if e is an error object raised by fail.user (or a collector).
function fail.is_user(e)
    return type(e) == "table" and e.user == true and type(e.msg) == "string"
end

local Collector = {}
Collector.__index = Collector

-- A new collector: c:add(fmt, ...) records a message, c:raise() raises them as one.
function fail.collect()
    return setmetatable({ msgs = {} }, Collector)
end

-- Records one user error message (string.format(fmt, ...)).
function Collector:add(fmt, ...)
    assert(type(fmt) == "string", "fail.collect: add() needs a format string")
    self.msgs[#self.msgs + 1] = select("#", ...) > 0 and string.format(fmt, ...) or fmt
end

-- Number of messages recorded so far.
function Collector:count()
    return #self.msgs
end

-- Raises one user error holding every message (one per line, capped); no-op if none.
function Collector:raise()
    local n = #self.msgs
    if n == 0 then return end
    local shown = {}
    for i = 1, math.min(n, MAX_SHOWN) do shown[i] = self.msgs[i] end
    if n > MAX_SHOWN then
        shown[#shown + 1] = string.format("... and %d more", n - MAX_SHOWN)
    end
    fail.user("%s", table.concat(shown, "\n"))
end

-- Message handler for xpcall: user errors pass through, bugs get a traceback.
local function on_error(e)
    if fail.is_user(e) then return e end
    local text = type(e) == "string" and e or tostring(e)
    return { bug = debug.traceback(text, 2) }
end

-- Runs fn; returns 0 on success, 1 after printing a user error, 2 after printing a bug
-- with its traceback. Errors go to out (default io.stderr).
-- Use: os.exit(fail.main(function() ... end)).
function fail.main(fn, out)
    out = out or io.stderr
    local ok, e = xpcall(fn, on_error)
    if ok then return 0 end
    if fail.is_user(e) then
        out:write("error: ", e.msg, "\n")
        return 1
    end
    out:write("internal error (a bug in the generator): ", e.bug, "\n")
    return 2
end

return fail
