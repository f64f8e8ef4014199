-- C writer
-- ========
--
-- A line buffer with indentation for emitting C and CUDA, and the one function that puts
-- generated files on disk. Emitters build text with w:line / w:open / w:close and hand
-- whole files to write_tree at the end (buffer everything, write once). write_tree
-- writes a file only when its content changed (LuaJIT's write_file), so CMake does not
-- rebuild what did not change, and writes through a temporary file and a rename, so a
-- failed run never leaves a half-written file behind.

local sorted = require("lib.sorted")

local cwriter = {}

local Writer = {}
Writer.__index = Writer

-- A new, empty writer; indent_str is one level of indentation (default four spaces).
function cwriter.new(indent_str)
    indent_str = indent_str or "    "
    assert(type(indent_str) == "string", "cwriter.new: indent_str must be a string")
    return setmetatable({ lines = {}, depth = 0, indent_str = indent_str }, Writer)
end

-- Appends one line at the current indentation: string.format(fmt, ...) when arguments
-- follow, fmt literally otherwise. Embedded newlines give several lines, each indented.
function Writer:line(fmt, ...)
    assert(type(fmt) == "string", "cwriter: line() needs a string")
    local text = select("#", ...) > 0 and string.format(fmt, ...) or fmt
    local prefix = self.indent_str:rep(self.depth)
    for piece in (text .. "\n"):gmatch("(.-)\n") do
        self.lines[#self.lines + 1] = piece == "" and "" or prefix .. piece
    end
end

-- Appends an empty line (no indentation, so no trailing spaces).
function Writer:blank()
    self.lines[#self.lines + 1] = ""
end

-- Writes line (if given) and indents what follows by one level.
function Writer:open(line)
    if line ~= nil then self:line(line) end
    self.depth = self.depth + 1
end

-- Dedents by one level and writes line (if given).
function Writer:close(line)
    assert(self.depth > 0, "cwriter: close() without a matching open()")
    self.depth = self.depth - 1
    if line ~= nil then self:line(line) end
end

-- Appends a block of text verbatim, without indentation (a rendered template, say).
function Writer:raw(text)
    assert(type(text) == "string", "cwriter: raw() needs a string")
    if text == "" then return end
    if text:sub(-1) ~= "\n" then text = text .. "\n" end
    for piece in text:gmatch("(.-)\n") do
        self.lines[#self.lines + 1] = piece
    end
end

-- The whole text; trailing blank lines dropped, ending in exactly one "\n" ("" if empty).
function Writer:text()
    assert(self.depth == 0, string.format("cwriter: text() with %d unclosed open()", self.depth))
    local n = #self.lines
    while n > 0 and self.lines[n]:match("^%s*$") do n = n - 1 end
    if n == 0 then return "" end
    return table.concat(self.lines, "\n", 1, n) .. "\n"
end

-- Quotes s for a POSIX shell.
local function shell_quote(s)
    return "'" .. s:gsub("'", "'\\''") .. "'"
end

-- True if path names an existing file or directory.
local function exists(path)
    return os.rename(path, path) == true
end

-- Creates directory dir and its parents, unless it exists.
local function make_dir(dir)
    if exists(dir) then return end
    local ok = os.execute("mkdir -p " .. shell_quote(dir))
    assert(ok, "cwriter.write_tree: cannot create directory " .. dir)
end

-- Contents of the file at path, or nil if it cannot be read.
local function read_file(path)
    local f = io.open(path, "rb")
    if not f then return nil end
    local text = f:read("a")
    f:close()
    return text
end

-- Checks that path is relative, with no "..", "." or empty components.
local function check_relative(path)
    assert(type(path) == "string" and path ~= "",
           "cwriter.write_tree: path must be a non-empty string")
    assert(path:sub(1, 1) ~= "/", "cwriter.write_tree: absolute path " .. path)
    assert(not path:find("\\", 1, true), "cwriter.write_tree: backslash in path " .. path)
    for part in (path .. "/"):gmatch("(.-)/") do
        assert(part ~= "" and part ~= "." and part ~= "..",
               "cwriter.write_tree: path must be relative without '.', '..' or '//': " .. path)
    end
end

-- Writes files (relative path -> text) under out_dir in sorted path order, rewriting a
-- file only if its content differs. Returns the sorted list of all paths, and the sorted
-- list of those actually written.
function cwriter.write_tree(out_dir, files)
    assert(type(out_dir) == "string" and out_dir ~= "", "cwriter.write_tree: out_dir needed")
    assert(type(files) == "table", "cwriter.write_tree: files must be a table")
    local paths = sorted.keys(files)
    for _, rel in ipairs(paths) do
        check_relative(rel)
        assert(type(files[rel]) == "string",
               "cwriter.write_tree: content of " .. tostring(rel) .. " is not a string")
    end

    local written = {}
    for _, rel in ipairs(paths) do
        local text = files[rel]
        local path = out_dir .. "/" .. rel
        make_dir(path:match("^(.*)/[^/]*$"))
        if read_file(path) ~= text then
            local tmp = path .. ".tmp"
            local f = assert(io.open(tmp, "wb"))
            assert(f:write(text))
            assert(f:close())
            assert(os.rename(tmp, path))
            written[#written + 1] = rel
        end
    end
    return paths, written
end

return cwriter
