-- tests/emu/prepare.lua — a generated kernels file, made compilable by the CPU emulator.
--
--   lua5.4 tests/emu/prepare.lua <out/<variant>/gen/<program>_kernels.cu> <name> [<fatbin>] > <file>.cpp
--
-- <name> is the file name the runtime gives NVRTC (e.g. gen/dit_forward_kernels.cu); <fatbin>, when the
-- plugin has its kernels built in (CMakeLists.txt, SKY_CUDA_ARCHS), the fat binary nvcc made from the same
-- text: its xxh64 goes into the table, so that the emulated cuModuleLoadData maps those exact bytes to these
-- host-compiled kernels (driver.c). The text is
-- kept as it is, but for two mechanical rewrites that the device language needs on the CPU:
--   extern "C" __global__          -> static   (each program's kernels stay private to its unit)
--   extern __shared__ ... name[];  -> a pointer to the launch's dynamic shared memory
-- and a table of the kernels (name, __launch_bounds__) is appended with the xxh64 of the original
-- text, which the emulated NVRTC checks against the source the runtime compiles. Compile the
-- result with g++ -std=c++17 -include tests/emu/cuda_emu.h (tests/emu/build.sh).
package.path = "gen/?.lua;" .. package.path
local xxh64 = require("lib.xxh64")

local path, name, fatbin_path = arg[1], arg[2], arg[3]
if not path or not name then
    io.stderr:write("usage: lua5.4 tests/emu/prepare.lua <kernels.cu> <name the runtime gives NVRTC> [<fatbin>]\n")
    os.exit(2)
end
local fatbin_hash = "0"
if fatbin_path then
    local fb = assert(io.open(fatbin_path, "rb"))
    fatbin_hash = "0x" .. xxh64.hex(fb:read("a"))
    fb:close()
end
local f = assert(io.open(path, "rb"))
local text = f:read("a")
f:close()

local kernels = {}
for bounds, fn in text:gmatch('extern "C" __global__ void __launch_bounds__%((%d+)[%d, ]*%)%s*([%w_]+)%s*%(') do
    kernels[#kernels + 1] = { name = fn, bounds = tonumber(bounds) }
end
local n_global = select(2, text:gsub('__global__', '__global__'))
if n_global ~= #kernels then
    io.stderr:write(string.format("%s: %d __global__ functions, %d in the form extern \"C\" __global__ void "
                                  .. "__launch_bounds__(N[, M]) name(...): extend tests/emu/prepare.lua\n",
                                  path, n_global, #kernels))
    os.exit(1)
end

local body = text:gsub('extern "C" __global__', "static")
body = body:gsub("extern __shared__ __align__%(%d+%) unsigned char ([%w_]+)%[%];",
                 "unsigned char *const %1 = (unsigned char *)sky_emu_dynamic_smem();")
if body:find("extern __shared__", 1, true) then
    io.stderr:write(path .. ": an extern __shared__ declaration of another form: extend tests/emu/prepare.lua\n")
    os.exit(1)
end

local out = {}
out[#out + 1] = string.format("// %s for the CPU emulator (tests/emu/prepare.lua); do not edit\n", path)
out[#out + 1] = body
out[#out + 1] = "\n// ---- the kernel table (tests/emu/prepare.lua) ----\n"
out[#out + 1] = "static const sky_emu_kernel sky_emu_table[] = {\n"
for _, k in ipairs(kernels) do
    out[#out + 1] = string.format("    SKY_EMU_KERNEL(%s, %d),\n", k.name, k.bounds)
end
out[#out + 1] = "};\n"
out[#out + 1] = string.format("static const sky_emu_module_def sky_emu_module = { %q, 0x%sULL, %d, sky_emu_table, %sULL };\n",
                              name, xxh64.hex(text), #kernels, fatbin_hash)
out[#out + 1] = "__attribute__((used)) static const int sky_emu_registered = (sky_emu_register(&sky_emu_module), 0);\n"
io.write(table.concat(out))
