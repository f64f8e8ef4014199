#!/usr/bin/env python3
"""tests/compile/sass_loop.py LISTING [NAME_PART]: the tensor-core share of each kernel's main loop in a
`cuobjdump -sass` listing (issue 20 item 3: the VAE conv's target is >= 25 %).

The main loop is the backward-branch loop holding the most mma instructions (HMMA, HGMMA, IMMA). Its
"step path" leaves out the largest block inside it that a forward branch skips and that holds no mma, no
cp.async (LDGSTS) and no barrier: the conv's per-tap decode, which a step runs once per CIN / 16 steps.
Prints one line per kernel; exits 1 when none matched."""
import re, sys
text = open(sys.argv[1]).read()
pat = sys.argv[2] if len(sys.argv) > 2 else ""
found = False
MMA = re.compile(r"\b(HMMA|HGMMA|IMMA)\b")
for fm in re.finditer(r"Function : (\S+)\n(.*?)(?=\n\s*Function : |\Z)", text, re.S):
    name, body = fm.group(1), fm.group(2)
    if pat not in name: continue
    ins = [(int(a, 16), o.strip()) for a, o in re.findall(r"/\*([0-9a-f]{4,})\*/\s+([^;]*);", body)]
    def target(o):
        t = re.search(r"BRA(?:\.\S+)?\s+(?:[!UP\d]+\s+)?0x([0-9a-f]+)", o)
        return int(t.group(1), 16) if t else None
    best = None
    for addr, op in ins:
        tgt = target(op)
        if tgt is None or tgt >= addr: continue
        loop = [(a, o) for a, o in ins if tgt <= a <= addr]
        mma = sum(1 for _, o in loop if MMA.search(o))
        if mma and (best is None or mma > best[1] or (mma == best[1] and len(loop) < len(best[0]))):
            best = (loop, mma)
    if not best: continue
    loop, mma = best
    skip = 0
    for a, o in loop:
        t = target(o)
        if t is None or t <= a or "@" not in o: continue
        inside = [x for x in loop if a < x[0] < t]
        if inside and not any(MMA.search(x[1]) or "LDGSTS" in x[1] or "BAR" in x[1] for x in inside) and len(inside) > skip: skip = len(inside)
    n = len(loop)
    lds = sum(1 for _, o in loop if re.search(r"\bLDS", o))
    found = True
    print(f"{name}: main loop {n} instructions, {mma} mma ({100.0*mma/n:.1f}%); step path {n-skip} ({100.0*mma/(n-skip):.1f}%), {lds} LDS")
sys.exit(0 if found else 1)
