#!/usr/bin/env python3
"""tests/runtime/check_device_plan.py OUT_DIR INFO_FILE — --info's device memory plan of a generated variant,
recomputed from the generated tables the CUDA plugin itself reads (not from the generator's sums):

  - the transformer: every weight of out/<v>/gen/variant.c's dit_forward_weights at the dtype
    out/<v>/gen/dit_forward_cuda.c's dit_forward_weight_bf16 gives it (bf16 2 bytes, else fp32 4), each
    padded to 256 bytes (runtime/cuda/cuda_program.c sky_cuda_prog_weights), plus plan_cuda.txt's arena
    peak, the 32 MiB cuBLASLt workspace (models/cuda_abi.h) and two prompt arenas of plan_cuda.txt's
    size padded to 256 (runtime/cuda/dit_cuda.c);
  - the peaks: every model kept = the transformer (+ TeaCache's buffers) + the VAE decoder + encoder; with
    --offload the largest single stage (the text encoder, the image encoder, the transformer with TeaCache's
    buffers, the VAE decoder, the VAE encoder);
  - where the variant has vae_decode_tile (the tiled decode's program): the tiled VAE decoder = the VAE decoder
    with plan_cuda.txt's vae_decode_tile arena peak in place of vae_decode's (the same weights), and every peak
    again with --vae_tiling, the tiled decoder in place of the decoder.
Prints what it checked; exit 1 on a mismatch. (The emulator tier checks that the plugin's measured peak
equals the printed plan to the byte, tests/emu/run.sh step 6.)"""
import re
import sys

out, info = sys.argv[1], open(sys.argv[2]).read()
pad = lambda n: (n + 255) // 256 * 256

variant = open(f"{out}/gen/variant.c").read()
table = variant[variant.index("dit_forward_weights["):]
table = table[: table.index("};")]
shapes = [[int(d) for d in m.group(1).split(",")] for m in re.finditer(r'\{"[^"]*", "[^"]*", \d+, \{([^}]*)\}\}', table)]
cuda = open(f"{out}/gen/dit_forward_cuda.c").read()
flags = cuda[cuda.index("dit_forward_weight_bf16["):]
flags = [int(x) for x in re.findall(r"^\s+([01]), /\*", flags[: flags.index("};")], re.M)]
assert len(shapes) == len(flags) > 0, (len(shapes), len(flags))
weights = 0
for shape, bf in zip(shapes, flags):
    n = 1
    for d in shape:
        n *= d
    weights += pad(n * (2 if bf else 4))
plan = open(f"{out}/plan_cuda.txt").read()
arena = int(re.search(r"^# arena dit_forward \(cuda[^)]*\): peak ([0-9,]+) B", plan, re.M).group(1).replace(",", ""))
prompt = int(re.search(r"^# prompt arena dit_forward: ([0-9,]+) B", plan, re.M).group(1).replace(",", ""))
want = weights + arena + (32 << 20) + 2 * pad(prompt)

part = {m.group(1): int(m.group(2)) for m in re.finditer(r"^ {12}(the [a-zA-Z ]+?|TeaCache's buffers) +[0-9.]+ [GM]iB \((\d+) bytes\)$", info, re.M)}
peak = {m.group(1).strip(): int(m.group(2)) for m in re.finditer(r"^ {12}peak (.+?) +[0-9.]+ [GM]iB \((\d+) bytes\):", info, re.M)}
fail = []
if part.get("the transformer") != want:
    fail.append(f"the transformer: --info {part.get('the transformer')}, recomputed {want} ({weights} weights + {arena} arena + 32 MiB + 2 x {pad(prompt)})")
tc = part.get("TeaCache's buffers", 0)
vae = part.get("the VAE decoder", 0) + part.get("the VAE encoder", 0)
stages = [part.get(k, 0) for k in ("the text encoder", "the image encoder", "the VAE decoder", "the VAE encoder")]
expect = {"(every model kept)": part["the transformer"] + vae, "--offload": max(stages + [part["the transformer"]])}
if tc:
    expect["--teacache"] = part["the transformer"] + tc + vae
    expect["--offload --teacache"] = max(stages + [part["the transformer"] + tc])
for k, v in expect.items():
    if peak.get(k) != v:
        fail.append(f"peak {k}: --info {peak.get(k)}, the parts give {v}")
tiled = [m for m in re.finditer(r"^ {12}the VAE decoder, tiled +[0-9.]+ [GM]iB \((\d+) bytes\)$", info, re.M)]
if "vae_decode_tile (cuda" in plan:
    arena_of = lambda name: int(re.search(r"^# arena %s \(cuda[^)]*\): peak ([0-9,]+) B" % name, plan, re.M)
                                .group(1).replace(",", ""))
    want_tiled = part["the VAE decoder"] - arena_of("vae_decode") + arena_of("vae_decode_tile")
    if len(tiled) != 1 or int(tiled[0].group(1)) != want_tiled:
        fail.append(f"the VAE decoder, tiled: --info {[int(m.group(1)) for m in tiled]}, recomputed {want_tiled}")
    d = want_tiled - part["the VAE decoder"]
    stages_t = [part.get(k, 0) for k in ("the text encoder", "the image encoder", "the VAE encoder")] + [want_tiled]
    for k in list(expect):
        kt = (k + " --vae_tiling") if k != "(every model kept)" else "--vae_tiling"
        if "offload" in k:
            expect[kt] = max(stages_t + [part["the transformer"] + tc * ("teacache" in k)])
        else:
            expect[kt] = expect[k] + d
elif tiled:
    fail.append("--info shows a tiled VAE decoder, plan_cuda.txt has no vae_decode_tile")
if fail:
    print("\n".join(fail))
    sys.exit(1)
print(f"the transformer {want} bytes ({len(shapes)} weights {weights} + arena {arena} + workspace + 2 prompt arenas {pad(prompt)}); "
      + ", ".join(f"peak {k} {v}" for k, v in expect.items()))
