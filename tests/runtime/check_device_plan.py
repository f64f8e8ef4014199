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
  - with --offload_blocks 2 (runtime/cuda/offload.c): the transformer keeps its weights of no block
    (dit_forward_weight_block -1) and 2 slots of the largest block's weights (each padded to 256), the blocks
    (count x that) in pinned host memory; the same peaks with TeaCache's buffers.
  - with --weight_dtype fp8 (runtime/cuda/offload.c, fp8 mode): the blocks' linear weights (the 2-D weights named
    blocks.*, models/fp8_quant.c) as e4m3 codes (one byte each) and fp32 row scales, each padded to 256, in place of
    bf16, and 2 bf16 slots of the largest block's linear weights (1 with --offload_blocks 1); TeaCache off.
  - where the variant has vae_decode_tile (the tiled decode's program): the tiled VAE decoder = the VAE decoder
    with plan_cuda.txt's vae_decode_tile arena peak in place of vae_decode's (the same weights), and every peak
    again with --vae_tiling, the tiled decoder in place of the decoder; likewise the tiled VAE encoder
    (vae_encode_tile's arena in place of vae_encode's) in place of the encoder where the family has one.
Prints what it checked; exit 1 on a mismatch. (The emulator tier checks that the plugin's measured peak
equals the printed plan to the byte, tests/emu/run.sh step 6.)"""
import re
import sys

out, info = sys.argv[1], open(sys.argv[2]).read()
pad = lambda n: (n + 255) // 256 * 256

variant = open(f"{out}/gen/variant.c").read()
table = variant[variant.index("dit_forward_weights["):]
table = table[: table.index("};")]
rows_re = list(re.finditer(r'\{"([^"]*)", "[^"]*", \d+, \{([^}]*)\}\}', table))
shapes = [[int(d) for d in m.group(2).split(",")] for m in rows_re]
names = [m.group(1) for m in rows_re]
cuda = open(f"{out}/gen/dit_forward_cuda.c").read()
flags = cuda[cuda.index("dit_forward_weight_bf16["):]
flags = [int(x) for x in re.findall(r"^\s+([01]), /\*", flags[: flags.index("};")], re.M)]
assert len(shapes) == len(flags) > 0, (len(shapes), len(flags))
blk = cuda[cuda.index("dit_forward_weight_block["):]
blk = [int(x) for x in re.findall(r"^\s+(-?\d+), /\*", blk[: blk.index("};")], re.M)]
assert len(blk) == len(flags), (len(blk), len(flags))
weights, per_block = 0, {}
for shape, bf, b in zip(shapes, flags, blk):
    n = 1
    for d in shape:
        n *= d
    weights += pad(n * (2 if bf else 4))
    if b >= 0:
        per_block[b] = per_block.get(b, 0) + pad(n * (2 if bf else 4))
n_blocks, block = len(per_block), max(per_block.values())
# --weight_dtype fp8: the quantised weights at bf16, as fp8 (codes + row scales), and the largest block's at bf16
q_bf16, q_fp8, q_block = 0, 0, {}
for name, shape, bf, b in zip(names, shapes, flags, blk):
    if len(shape) == 2 and name.startswith("blocks."):
        assert bf and b >= 0, name
        q_bf16 += pad(shape[0] * shape[1] * 2)
        q_fp8 += pad(shape[0] * shape[1]) + pad(shape[0] * 4)
        q_block[b] = q_block.get(b, 0) + pad(shape[0] * shape[1] * 2)
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
# each peak row as (its flags, the transformer's term), with each decoder; every model kept: the transformer with
# the VAE programs, or an encoder where it is larger (the encoders run alone, before); --offload: the largest stage
rows = [("", part["the transformer"])]
if tc:
    rows.append(("--teacache", part["the transformer"] + tc))
pinned = [int(m.group(1)) for m in re.finditer(r"offload_blocks 2 .*\((\d+) bytes\) pinned host$", info, re.M)]
if n_blocks > 2:  # --offload_blocks 2 rows (with --teacache where the variant has it): 2 blocks resident
    rows.append(("--teacache " * (tc > 0) + "--offload_blocks 2", part["the transformer"] - (n_blocks - 2) * block + tc))
tiled = [m for m in re.finditer(r"^ {12}the VAE decoder, tiled +[0-9.]+ [GM]iB \((\d+) bytes\)$", info, re.M)]
enc_tiled = [m for m in re.finditer(r"^ {12}the VAE encoder, tiled +[0-9.]+ [GM]iB \((\d+) bytes\)$", info, re.M)]
# (flags, the VAE decoder's bytes, the VAE encoder's)
decoders = [("", part.get("the VAE decoder", 0), part.get("the VAE encoder", 0))]
if "vae_decode_tile (cuda" in plan:
    arena_of = lambda name: int(re.search(r"^# arena %s \(cuda[^)]*\): peak ([0-9,]+) B" % name, plan, re.M)
                                .group(1).replace(",", ""))
    want_tiled = part["the VAE decoder"] - arena_of("vae_decode") + arena_of("vae_decode_tile")
    if len(tiled) != 1 or int(tiled[0].group(1)) != want_tiled:
        fail.append(f"the VAE decoder, tiled: --info {[int(m.group(1)) for m in tiled]}, recomputed {want_tiled}")
    want_enc = part.get("the VAE encoder", 0)
    if want_enc:
        want_enc += arena_of("vae_encode_tile") - arena_of("vae_encode")
        if len(enc_tiled) != 1 or int(enc_tiled[0].group(1)) != want_enc:
            fail.append(f"the VAE encoder, tiled: --info {[int(m.group(1)) for m in enc_tiled]}, recomputed {want_enc}")
    decoders.append((" --vae_tiling", want_tiled, want_enc))
elif tiled or enc_tiled:
    fail.append("--info shows a tiled VAE program, plan_cuda.txt has no vae_decode_tile")
if n_blocks > 2 and pinned != [n_blocks * block] * (2 * len(decoders)):
    fail.append(f"--offload_blocks 2 pinned host: --info {pinned}, recomputed {n_blocks} x {block}")
expect = {}
for tflag, dec, enc in decoders:
    stages = [part.get(k, 0) for k in ("the text encoder", "the image encoder")] + [enc, dec]
    for flags, dit in rows:
        kept = " ".join(x for x in (flags, tflag.strip()) if x) or "(every model kept)"
        expect[kept] = max(part.get("the text encoder", 0), part.get("the image encoder", 0), dit + dec + enc)
        off = "--offload" + (" " + flags if flags else "") + tflag
        expect[off] = max(stages + [dit])
# the fp8 rows (TeaCache off): kept, --offload, each with each decoder; --offload_blocks 2 (the default's 2 slots) and
# --offload --offload_blocks 1 with the tiled decoder
fp8_dit = lambda slots: part["the transformer"] - q_bf16 + q_fp8 + slots * max(q_block.values())
fp8_info = re.search(r"linear weights [0-9.]+ [GM]iB \((\d+) bytes\) at bf16; .* row scales, [0-9.]+ [GM]iB \((\d+) bytes\), "
                     r"and expands them into bf16 block slots of [0-9.]+ [GM]iB \((\d+) bytes\)", info)
if not fp8_info or [int(x) for x in fp8_info.groups()] != [q_bf16, q_fp8, max(q_block.values())]:
    fail.append(f"--weight_dtype fp8's bytes: --info {fp8_info and fp8_info.groups()}, recomputed {q_bf16} {q_fp8} {max(q_block.values())}")
for tflag, dec, enc in decoders:
    stages = [part.get(k, 0) for k in ("the text encoder", "the image encoder")] + [enc, dec]
    for offload, blocks in ((0, 0), (1, 0)) + (((0, 2), (1, 1)) if tflag and n_blocks > 2 else ()):
        slots = blocks or 2
        k = "--weight_dtype fp8" + " --offload" * offload + (f" --offload_blocks {blocks}" if blocks else "") + tflag
        dit = fp8_dit(slots)
        expect[k] = max(stages + [dit]) if offload else max(part.get("the text encoder", 0),
                                                          part.get("the image encoder", 0), dit + dec + enc)
for k, v in expect.items():
    if peak.get(k) != v:
        fail.append(f"peak {k}: --info {peak.get(k)}, the parts give {v}")
if fail:
    print("\n".join(fail))
    sys.exit(1)
print(f"the transformer {want} bytes ({len(shapes)} weights {weights} + arena {arena} + workspace + 2 prompt arenas {pad(prompt)}); "
      + ", ".join(f"peak {k} {v}" for k, v in expect.items()))
