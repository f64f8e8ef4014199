-- Test helpers
-- ============
--
-- The few checks shared by tests/gen/test_*.lua. A test file is a plain script that
-- raises on the first failed check; tests/gen/run.lua runs each one and reports it.
-- Messages name the caller's file and line and show the values involved.

local t = {}

-- Text of an error object: a string as is, a fail.user error's msg, else tostring.
function t.error_text(e)
    if type(e) == "table" and type(e.msg) == "string" then return e.msg end
    return tostring(e)
end

-- Raises with the formatted message unless cond holds.
function t.check(cond, fmt, ...)
    if not cond then
        error(string.format(fmt or "check failed", ...), 2)
    end
end

-- Raises unless got == want; what names the value in the message.
function t.check_eq(got, want, what)
    if got ~= want then
        error(string.format("%s: got %q, want %q", what or "value",
                            type(got) == "string" and got or tostring(got),
                            type(want) == "string" and want or tostring(want)), 2)
    end
end

-- Calls fn, which must raise; the error text must contain want (plain substring).
-- Returns the error object.
function t.check_error(fn, want, what)
    local ok, e = pcall(fn)
    if ok then
        error(string.format("%s: expected an error containing %q, got none",
                            what or "call", want), 2)
    end
    local text = t.error_text(e)
    if not text:find(want, 1, true) then
        error(string.format("%s: error %q does not contain %q", what or "call", text, want), 2)
    end
    return e
end

-- Like check_error, and the error must be a user error (fail.user or a collector).
function t.check_user_error(fn, want, what)
    local e = t.check_error(fn, want, what)
    if not (type(e) == "table" and e.user == true) then
        error(string.format("%s: expected a user error, got %s", what or "call", t.error_text(e)), 2)
    end
    return e
end

return t
