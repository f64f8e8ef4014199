-- runtime/cuda/embed_fatbin.lua — a fat binary nvcc made from a generated kernels file, as a C file for the
-- plugin.
--
--   lua5.4 runtime/cuda/embed_fatbin.lua <out>/gen/<program>_kernels.cu <program>_kernels.fatbin "<archs>" <out.c>
--
-- Run by the build (CMakeLists.txt, SKY_CUDA_ARCHS) after nvcc -fatbin; <archs> is what nvcc was asked for
-- ("sm_80 sm_90a compute_90"). The C file holds the fat binary's bytes (16-byte aligned), the xxh64 of the
-- kernels text it was compiled from (the runtime checks it against the text it holds for NVRTC) and the
-- archs, and registers them with runtime/cuda/fatbin.h's sky_fatbin_register at load time. Its bytes depend
-- only on its inputs.
package.path = "gen/?.lua;" .. package.path
local xxh64 = require("lib.xxh64")

local cu_path, fatbin_path, archs, out_path = arg[1], arg[2], arg[3], arg[4]
if not out_path then
    io.stderr:write("usage: lua5.4 runtime/cuda/embed_fatbin.lua <kernels.cu> <kernels.fatbin> <archs> <out.c>\n")
    os.exit(2)
end

local function read(path)
    local f, e = io.open(path, "rb")
    if not f then
        io.stderr:write("embed_fatbin: " .. e .. "\n")
        os.exit(1)
    end
    local t = f:read("a")
    f:close()
    return t
end

local source, fatbin = read(cu_path), read(fatbin_path)
-- nvcc -fatbin output starts with the fat binary magic 0xBA55ED50 (little-endian)
if #fatbin < 16 or string.unpack("<I4", fatbin) ~= 0xBA55ED50 then
    io.stderr:write("embed_fatbin: " .. fatbin_path .. " is not a fat binary (nvcc -fatbin)\n")
    os.exit(1)
end
local program = cu_path:match("([%w_]+)_kernels%.cu$") or error("embed_fatbin: not a <program>_kernels.cu: " .. cu_path)
local file = "gen/" .. program .. "_kernels.cu"

local hex = {}
for i = 0, 255 do hex[string.char(i)] = string.format("\\x%02x", i) end
local out = {
    string.format("/* %s_kernels_fatbin.c: made by runtime/cuda/embed_fatbin.lua at build time; do not edit.\n",
                  program),
    string.format(" * %s (xxh64 %s) compiled by nvcc for %s: %d bytes of fat binary,\n", file, xxh64.hex(source),
                  archs, #fatbin),
    " * loaded by runtime/cuda/cuda_program.c through cuModuleLoadData where it covers the GPU (cuda/fatbin.h). */\n",
    "#include \"cuda/fatbin.h\"\n\n",
    string.format("_Alignas(16) static const unsigned char fatbin[%d] =\n", #fatbin + 1),
}
for i = 1, #fatbin, 64 do out[#out + 1] = "    \"" .. fatbin:sub(i, i + 63):gsub(".", hex) .. "\"\n" end
out[#out + 1] = "    ;\n\n"
out[#out + 1] = string.format("static sky_fatbin entry = {\"%s\", fatbin, %d, 0x%sULL, \"%s\", 0};\n\n", file,
                              #fatbin, xxh64.hex(source), archs)
out[#out + 1] = "__attribute__((constructor)) static void register_fatbin(void)\n"
out[#out + 1] = "{\n    sky_fatbin_register(&entry);\n}\n"

local tmp = out_path .. ".tmp"
local f = assert(io.open(tmp, "wb"))
f:write(table.concat(out))
f:close()
assert(os.rename(tmp, out_path))
