#!/usr/bin/env python3
"""tests/compile/sass_mem.py LISTING [--skip PART] [--wide-loads REGEX] [--wide-stores REGEX]: the global memory
accesses of each kernel in a `cuobjdump -sass` listing, by width (issue 20 item 2: the elementwise and row kernels
read and write 16 bytes at a time; no 64-bit division in index arithmetic). Kernels whose name holds PART
("attention" by default) are left out. The counts are instructions in the listing, not executed accesses.

Prints one line per kernel, then the totals: LDG and STG instructions of 16, 8, 4, 2 and 1 bytes (.128, .64, none,
.U16/.S16, .U8/.S8), and the 64-bit integer divisions (nvcc's division routine for 64-bit operands starts from
an I2F.U64.RP reciprocal; 32-bit division uses I2F.U32.RP). Exits 1 when a kernel holds a 64-bit division, or a
kernel whose name matches --wide-loads (--wide-stores) a global load (store) of fewer than 16 bytes; 2 when no
kernel was found."""
import argparse
import re
import sys

WIDTHS = (16, 8, 4, 2, 1)
ACCESS = re.compile(r"\b(LDG|STG)((?:\.[A-Z0-9]+)*)\s")
DIV64 = re.compile(r"\bI2F(?:\.[A-Z0-9]+)*\.(?:U64|S64)\.RP\b|\bI2F\.RP(?:\.[A-Z0-9]+)*\.(?:U64|S64)\b")


def width(mods):
    m = set(mods.split("."))
    if "128" in m: return 16
    if "64" in m: return 8
    if m & {"U16", "S16"}: return 2
    if m & {"U8", "S8"}: return 1
    return 4


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("listing")
    ap.add_argument("--skip", default="attention")
    ap.add_argument("--wide-loads", default=None)
    ap.add_argument("--wide-stores", default=None)
    args = ap.parse_args()
    text = open(args.listing).read()
    skip = args.skip
    narrow_kernels = []
    total = {op: dict.fromkeys(WIDTHS, 0) for op in ("LDG", "STG")}
    div_kernels, found = [], False
    for fm in re.finditer(r"Function : (\S+)\n(.*?)(?=\n\s*Function : |\Z)", text, re.S):
        name, body = fm.group(1), fm.group(2)
        if skip and skip in name: continue
        found = True
        count = {op: dict.fromkeys(WIDTHS, 0) for op in ("LDG", "STG")}
        for line in body.splitlines():
            a = ACCESS.search(line)
            if a: count[a.group(1)][width(a.group(2))] += 1
        for op, pat in (("LDG", args.wide_loads), ("STG", args.wide_stores)):
            if pat and re.search(pat, name) and any(count[op][w] for w in WIDTHS if w < 16):
                narrow_kernels.append(f"{name} ({op})")
        div = len(DIV64.findall(body))
        if div: div_kernels.append(name)
        for op in count:
            for w in WIDTHS: total[op][w] += count[op][w]
        cols = " ".join(f"{op} " + " ".join(f"{w}B:{count[op][w]}" for w in WIDTHS if count[op][w]) for op in count)
        print(f"{name}: {cols}{'  64-bit division: %d' % div if div else ''}")
    if not found:
        print("sass_mem.py: no kernel in the listing", file=sys.stderr)
        return 2
    for op in total:
        print(f"total {op}: " + ", ".join(f"{total[op][w]} of {w} bytes" for w in WIDTHS))
    narrow = sum(total[op][w] for op in total for w in (4, 2, 1))
    wide = sum(total[op][16] for op in total)
    print(f"total: {wide} 16-byte, {narrow} accesses of 4 bytes or less; 64-bit divisions in "
          f"{len(div_kernels)} kernels{': ' + ', '.join(div_kernels) if div_kernels else ''}")
    if narrow_kernels: print("accesses of fewer than 16 bytes in: " + ", ".join(narrow_kernels))
    return 1 if div_kernels or narrow_kernels else 0


if __name__ == "__main__":
    sys.exit(main())
