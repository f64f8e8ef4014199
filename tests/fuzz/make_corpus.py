#!/usr/bin/env python3
"""tests/fuzz/make_corpus.py — write the seed corpora of the fuzz targets (tests/fuzz/corpus/<target>/) and
tests/fuzz/data/small_spm.model, from the repository's fixtures plus hand-made edge cases. Deterministic;
Python 3 standard library only. Most image and video seeds come from make_media.c.

    bash tests/fuzz/make_corpus.sh             # runs this script and make_media.c

Seeds are small real examples (fixture files, their headers, the tokenizer fixtures' prompts) and edge cases
that sit on a rule of the parser (a limit, an off-by-one, a refused form), so that a few seconds of fuzzing
start next to the checks. Each file is named <what>.<ext>; the target's own input format is described at the
top of tests/fuzz/fuzz_<target>.c. Reproducers of fixed crashes are added by hand as crash-<what> and are
kept (this script never deletes a file it did not write).
"""
import glob
import json
import os
import re
import struct
import sys
import zipfile

ROOT = os.path.normpath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
CORPUS = os.path.join(ROOT, "tests", "fuzz", "corpus")
DATA = os.path.join(ROOT, "tests", "fuzz", "data")


def put(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- safetensors ---------------------------------------------------------------------------------------


def st_header(tensors, meta=None):
    """tensors: [(name, dtype, shape, nbytes)] laid out in order -> header JSON text."""
    h, off = {}, 0
    if meta is not None:
        h["__metadata__"] = meta
    for name, dtype, shape, nbytes in tensors:
        h[name] = {"dtype": dtype, "shape": shape, "data_offsets": [off, off + nbytes]}
        off += nbytes
    return json.dumps(h, separators=(",", ":")).encode(), off


def composed(header, data):
    """fuzz_common.h's form: header JSON, NUL, data."""
    return header + b"\0" + data


def raw(header, data):
    return struct.pack("<Q", len(header)) + header + data


def split_st(path):
    b = open(path, "rb").read()
    n = struct.unpack("<Q", b[:8])[0]
    return b[8 : 8 + n], b[8 + n :]


DTYPE_BITS = {
    "BOOL": 8, "U8": 8, "I8": 8, "I16": 16, "U16": 16, "F16": 16, "BF16": 16, "I32": 32, "U32": 32, "F32": 32,
    "I64": 64, "U64": 64, "F64": 64, "C64": 64, "F8_E5M2": 8, "F8_E4M3": 8, "F8_E8M0": 8, "F8_E4M3FNUZ": 8,
    "F8_E5M2FNUZ": 8, "F6_E2M3": 6, "F6_E3M2": 6, "F4": 4,
}


def safetensors_seeds():
    t = "safetensors"
    for f in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/pth/*.safetensors"))):
        h, d = split_st(f)
        put(t, "fixture-" + os.path.basename(f), composed(h, d))
    h, d = split_st(os.path.join(ROOT, "tests/fixtures/encoders/umt5_tiny/short_n5.safetensors"))
    put(t, "fixture-umt5-short.safetensors", composed(h, d))
    # every dtype once, with a shape that makes whole bytes (sub-byte types packed)
    ts = [(dt.lower(), dt, [2, 4], 8 * b // 8) for dt, b in sorted(DTYPE_BITS.items())]
    h, n = st_header(ts, {"format": "pt", "k": "v"})
    put(t, "all-dtypes.st", composed(h, bytes(range(256)) * (n // 256) + bytes(n % 256)))
    h, n = st_header([("scalar", "F32", [], 4), ("empty", "F32", [0, 3], 0), ("e2", "BF16", [5, 0], 0)])
    put(t, "scalar-empty.st", composed(h, b"\x00\x00\x80\x3f"))
    h, n = st_header([("odd", "F4", [3], 2)])  # 12 bits: not a whole number of bytes
    put(t, "subbyte-odd.st", composed(h, b"\x12\x34"))
    put(t, "gap.st", composed(b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', b"xyz"))
    put(t, "overlap.st", composed(b'{"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},'
                                  b'"b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}}', b"xyz"))
    put(t, "rank9.st", composed(b'{"a":{"dtype":"U8","shape":[1,1,1,1,1,1,1,1,1],"data_offsets":[0,1]}}', b"x"))
    put(t, "huge-dims.st", composed(b'{"a":{"dtype":"F64","shape":[4294967296,4294967296],"data_offsets":[0,0]}}',
                                    b""))
    put(t, "u64-max.st", composed(b'{"a":{"dtype":"U8","shape":[18446744073709551615],'
                                  b'"data_offsets":[0,18446744073709551615]}}', b""))
    put(t, "meta-not-string.st", composed(b'{"__metadata__":{"a":1}}', b""))
    put(t, "empty-object.st", composed(b"{}", b""))
    put(t, "trailing.st", composed(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"xy"))
    put(t, "extra-field.st", composed(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1],"x":0}}', b"x"))
    put(t, "dup-key.st", composed(b'{"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]},'
                                  b'"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}}', b"x"))
    # raw files: the length prefix's own checks
    h, d = split_st(os.path.join(ROOT, "tests/fixtures/pth/wrapped.safetensors"))
    put(t, "raw-valid.bin", raw(h, d))
    put(t, "raw-short.bin", b"\x02\x00\x00\x00\x00\x00\x00")
    put(t, "raw-len-past-end.bin", struct.pack("<Q", 1000) + b"{}")
    put(t, "raw-len-huge.bin", struct.pack("<Q", 2**63) + b"{}")
    put(t, "raw-space-padded.bin", struct.pack("<Q", 8) + b" {}     ")


# ---- checkpoint (index + shards) ----------------------------------------------------------------------

SHARD_SEP = b"\n--shard--\n"


def checkpoint_seeds():
    t = "checkpoint"
    s1, n1 = st_header([("a.weight", "F32", [2], 8), ("b.bias", "F16", [2], 4)])
    s2, n2 = st_header([("c.weight", "BF16", [1, 2], 4)])
    d1, d2 = bytes(range(n1)), bytes(range(n2))
    name1, name2 = "model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"
    index = {"metadata": {"total_size": n1 + n2},
             "weight_map": {"a.weight": name1, "b.bias": name1, "c.weight": name2}}
    ij = json.dumps(index).encode()
    put(t, "index-2-shards", ij + SHARD_SEP + composed(s1, d1) + SHARD_SEP + composed(s2, d2))
    put(t, "no-index-2-shards", SHARD_SEP + composed(s1, d1) + SHARD_SEP + composed(s2, d2))
    put(t, "no-index-clash", SHARD_SEP + composed(s1, d1) + SHARD_SEP + composed(s1, d1))
    bad = dict(index, weight_map=dict(index["weight_map"], **{"c.weight": "../" + name2}))
    put(t, "index-dotdot", json.dumps(bad).encode() + SHARD_SEP + composed(s1, d1) + SHARD_SEP + composed(s2, d2))
    bad = dict(index, weight_map=dict(index["weight_map"], **{"c.weight": name1}))
    put(t, "index-wrong-shard", json.dumps(bad).encode() + SHARD_SEP + composed(s1, d1) + SHARD_SEP +
        composed(s2, d2))
    bad = dict(index, weight_map=dict(index["weight_map"], **{"d.missing": name2}))
    put(t, "index-missing-tensor", json.dumps(bad).encode() + SHARD_SEP + composed(s1, d1) + SHARD_SEP +
        composed(s2, d2))
    bad = dict(index, metadata={"total_size": n1 + n2 + 1})
    put(t, "index-total-size", json.dumps(bad).encode() + SHARD_SEP + composed(s1, d1) + SHARD_SEP +
        composed(s2, d2))
    put(t, "index-only", ij)
    put(t, "index-not-object", b'{"weight_map": []}' + SHARD_SEP + composed(s1, d1))
    ij1 = json.dumps({"weight_map": {"a.weight": "model-00001-of-00001.safetensors",
                                     "b.bias": "model-00001-of-00001.safetensors"}}).encode()
    put(t, "index-1-shard", ij1 + SHARD_SEP + composed(s1, d1))


# ---- JSON ---------------------------------------------------------------------------------------------


def json_seeds():
    t = "json"
    for f in ["tests/fixtures/pth/state_dict.safetensors", "tests/fixtures/encoders/umt5_tiny/short_n5.safetensors",
              "tests/fixtures/sampler/schedules.safetensors"]:
        h, _ = split_st(os.path.join(ROOT, f))
        put(t, "header-" + os.path.basename(f) + ".json", h)
    put(t, "index.json", json.dumps({"metadata": {"total_size": 123},
                                     "weight_map": {"a": "model-00001-of-00002.safetensors"}}, indent=2))
    put(t, "tokenizer-head.json", open(os.path.join(DATA, "small_tokenizer.json"), "rb").read()[:3000])
    cases = {
        "scalars": b'[null, true, false, 0, -0, 1.5e-3, 18446744073709551615, 18446744073709551616, "s"]',
        "escapes": b'["\\u0000\\"\\\\\\/\\b\\f\\n\\r\\t", "\\ud83d\\ude00", "\\u00e9"]',
        "lone-surrogate": b'["\\ud83d"]',
        "utf8": '{"k\u00e9y": "\u65e5\u672c \U0001F600"}'.encode(),
        "overlong": b'["\xc0\xaf"]',
        "surrogate-utf8": b'["\xed\xa0\x80"]',
        "deep": b"[" * 64 + b"]" * 64,
        "too-deep": b"[" * 65 + b"]" * 65,
        "dup-keys": b'{"a": 1, "b": 2, "a": 3}',
        "trailing-comma": b"[1, 2,]",
        "leading-zero": b"[01]",
        "bom": b"\xef\xbb\xbf{}",
        "whitespace": b" \t\r\n{} \n",
        "nan": b"[NaN, Infinity]",
        "control-char": b'["a\x01b"]',
        "empty": b"",
        "big-exponent": b"[1e400, -1E-400, 0.0e+0]",
        "nested-objects": b'{"a": {"b": {"c": [1, {"d": null}]}}}',
    }
    for name, text in cases.items():
        put(t, name + ".json", text)


# ---- pth ----------------------------------------------------------------------------------------------


def pth_seeds():
    t = "pth"
    for f in sorted(glob.glob(os.path.join(ROOT, "tests/fixtures/pth/*.pth"))):
        put(t, os.path.basename(f), open(f, "rb").read())
        # fuzz_pth.c's wrapped-pickle mode (first byte 0xA5): the fixture's data.pkl
        z = zipfile.ZipFile(f)
        pkl = [n for n in z.namelist() if n.endswith("/data.pkl")][0]
        put(t, "pkl-" + os.path.basename(f), b"\xa5" + z.read(pkl))


# ---- SentencePiece model and tokenizer.json -----------------------------------------------------------


def pb_varint(v):
    out = b""
    v &= (1 << 64) - 1
    while True:
        c = v & 0x7F
        v >>= 7
        if v:
            out += bytes([c | 0x80])
        else:
            return out + bytes([c])


def pb_field(num, wt, v):
    key = pb_varint((num << 3) | wt)
    if wt == 0:
        return key + pb_varint(v)
    if wt == 5:
        return key + struct.pack("<f", v)
    return key + pb_varint(len(v)) + v


# A small Unigram model in umT5's shape: <pad> </s> <unk> (ids 0, 1, 2), byte-ish pieces, words with U+2581.
SMALL_PIECES = (["<pad>", "</s>", "<unk>"] +
                ["\u2581", "\u2581the", "\u2581a", "\u2581cat", "\u2581dog", "\u2581walks", "\u2581in", "\u2581red",
                 "\u2581forest", "\u2581realistic", "\u25814", "k", ".", ",", "s", "e", "t", "a", "o", "i", "n", "r",
                 "l", "d", "w", "c", "g", "f", "h", "m", "p", "u", "x", "<", ">", "_", "/", "&", ";", "0", "9",
                 "\u65e5", "\u672c", "\u00e9", "\U0001F600", "...", "..", "\u2581\u2581"])


def small_model(pieces=SMALL_PIECES, model_type=1, charsmap=None):
    out = b""
    for i, p in enumerate(pieces):
        typ = 3 if p in ("<pad>", "</s>") else 2 if p == "<unk>" else 1
        score = 0.0 if typ != 1 else -1.0 - 0.25 * i
        sp = pb_field(1, 2, p.encode()) + pb_field(2, 5, score) + (pb_field(3, 0, typ) if typ != 1 else b"")
        out += pb_field(1, 2, sp)
    trainer = (pb_field(3, 0, model_type) + pb_field(4, 0, len(pieces)) + pb_field(40, 0, 2) + pb_field(41, 0, -1) +
               pb_field(42, 0, 1) + pb_field(43, 0, 0) + pb_field(45, 2, b"<unk>") + pb_field(47, 2, b"</s>") +
               pb_field(48, 2, b"<pad>"))
    norm = pb_field(1, 2, b"identity") + pb_field(3, 0, 1) + pb_field(4, 0, 1)
    if charsmap is not None:
        norm += pb_field(2, 2, charsmap)
    return out + pb_field(2, 2, trainer) + pb_field(3, 2, norm)


def tokenizer_json(pieces, extra_ids=4, added_extra=None, vocab_extra=None):
    """What transformers writes for a T5 tokenizer: added tokens <pad> </s> <unk> and the sentinels, the
    Unigram vocabulary with the sentinels appended (<extra_id_0> last)."""
    vocab = [[p, 0.0 if i < 3 else -1.0 - 0.25 * i] for i, p in enumerate(pieces)]
    sentinels = ["<extra_id_%d>" % k for k in range(extra_ids - 1, -1, -1)]
    vocab += [[s, 0.0] for s in sentinels] + (vocab_extra or [])
    added = [{"id": i, "content": p, "single_word": False, "lstrip": False, "rstrip": False, "normalized": False,
              "special": True} for i, p in enumerate(pieces[:3])]
    added += [{"id": len(pieces) + j, "content": s, "single_word": False, "lstrip": False, "rstrip": False,
               "normalized": False, "special": True} for j, s in enumerate(sentinels)]
    added += added_extra or []
    return {"version": "1.0", "truncation": None, "padding": None, "added_tokens": added,
            "normalizer": {"type": "Sequence", "normalizers": []},
            "pre_tokenizer": {"type": "Metaspace", "replacement": "\u2581", "prepend_scheme": "always", "split": True},
            "post_processor": None, "decoder": None,
            "model": {"type": "Unigram", "unk_id": 2, "vocab": vocab, "byte_fallback": False}}


def dump(o):
    return json.dumps(o, ensure_ascii=False, indent=1).encode()


def text_seeds():
    os.makedirs(DATA, exist_ok=True)
    small = small_model()
    open(os.path.join(DATA, "small_spm.model"), "wb").write(small)
    tj = tokenizer_json(SMALL_PIECES)
    open(os.path.join(DATA, "small_tokenizer.json"), "wb").write(dump(tj))

    t = "spm_model"
    put(t, "small.model", small)
    put(t, "small-bpe.model", small_model(model_type=2))
    put(t, "small-no-pad.model", small_model(pieces=["</s>", "<unk>", "a", "b"]))
    put(t, "small-truncated.model", small[: len(small) // 2])
    put(t, "charsmap-bad-size.model", small_model(charsmap=struct.pack("<I", 1000) + b"\0" * 8))
    put(t, "charsmap-bad-utf8.model", small_model(charsmap=struct.pack("<I", 4) + b"\0" * 4 + b"\xff\xfe"))
    put(t, "charsmap-empty-trie.model", small_model(charsmap=struct.pack("<I", 0) + b"a\0"))
    # the tiny umT5 model of the tokenizer tests, with its real nmt_nfkc charsmap (240 KB): a link
    link = os.path.join(CORPUS, t, "tiny_umt5.model")
    if not os.path.lexists(link):
        os.symlink("../../../fixtures/tokenizer/tiny_umt5.model", link)

    t = "tokenizer_json"
    put(t, "small.json", dump(tj))
    put(t, "strip-flags.json", dump(tokenizer_json(SMALL_PIECES, added_extra=[
        {"id": 5, "content": "\u2581cat", "single_word": False, "lstrip": True, "rstrip": True, "normalized": False,
         "special": False}])))
    put(t, "extra-vocab.json", dump(tokenizer_json(SMALL_PIECES, vocab_extra=[["zz", -3.5], ["\u2581zz", -1e30]])))
    put(t, "single-word.json", dump(tokenizer_json(SMALL_PIECES, added_extra=[
        {"id": 4, "content": "\u2581the", "single_word": True, "lstrip": False, "rstrip": False}])))
    put(t, "id-out-of-range.json", dump(tokenizer_json(SMALL_PIECES, added_extra=[{"id": 999, "content": "x"}])))
    put(t, "empty-content.json", dump(tokenizer_json(SMALL_PIECES, added_extra=[{"id": 4, "content": ""}])))
    bad = tokenizer_json(SMALL_PIECES)
    bad["model"]["vocab"][5][0] = "\u2581other"
    put(t, "vocab-mismatch.json", dump(bad))
    bad = tokenizer_json(SMALL_PIECES)
    bad["model"]["vocab"] = bad["model"]["vocab"][:10]
    put(t, "vocab-short.json", dump(bad))
    bad = tokenizer_json(SMALL_PIECES)
    bad["model"]["type"] = "BPE"
    put(t, "not-unigram.json", dump(bad))
    bad = tokenizer_json(SMALL_PIECES)
    del bad["added_tokens"]
    put(t, "no-added-tokens.json", dump(bad))
    bad = tokenizer_json(SMALL_PIECES)
    bad["model"]["vocab"][7] = ["\u2581cat", "high"]
    put(t, "score-not-number.json", dump(bad))

    t = "prompt"
    cases = json.load(open(os.path.join(ROOT, "tests/fixtures/tokenizer/expected.json"), encoding="utf-8"))["cases"]
    # the first three of each kind of fixture prompt (html_00, html_01, ...: 291 in all would take the
    # test tier's whole time to load)
    kinds = {}
    for c in cases:
        kind = re.sub(r"_\d+.*$", "", c["name"])
        kinds[kind] = kinds.get(kind, 0) + 1
        if kinds[kind] <= 3:
            put(t, "fixture-" + c["name"], c["prompt"].encode("utf-8", "surrogatepass"))
    hand = {
        "invalid-utf8": b"a cat \xff\xfe walks",
        "overlong": b"\xc0\xaf",
        "truncated-seq": b"caf\xc3",
        "only-space": b" \t\n\r\xe3\x80\x80 ",
        "added-tokens": b"<extra_id_0><extra_id_99></s><pad> <unk>x</s>",
        "html": b"&amp;amp; &lt;b&gt; &#x1F600; &#128512; &#0; &#xD800; &notit; &NotANamedEntity;",
        "html-with-tag": b"<b>&amp;</b> &eacute;",
        "terminal-escape": b"\x1b[31mred\x1b[0m text",
        "c1-controls": b"\xc2\x80\xc2\x93\xc2\x9f quotes",
        "ligatures-width": "\ufb01\ufb02 \uff21\uff42 \u3000 \u2018x\u2019 \u201cy\u201d".encode(),
        "combining": "e\u0301 a\u0308\u0308 \u1100\u1161\u11a8 \U0001F469\u200d\U0001F467 \U0001F1EF\U0001F1F5".encode(),
        "line-breaks": "a\r\nb\rc\u2028d\u2029e\u0085f".encode(),
        "long-repeat": b"ab " * 700,
        "dots": b"....... ... .",
        "bidi-controls": "\u202ex\u206a\ufeff\ufff9".encode(),
    }
    for name, b in hand.items():
        put(t, name, b)


# ---- resume -------------------------------------------------------------------------------------------

WINDOW_SEP = b"\n--window--\n"
KEY = '{"prompt": "a cat", "seed": 7, "num_frames": 9}; backend cpu; dit /w/dit.safetensors'  # fuzz_resume.c


def window(key=KEY, seed="7", shape=(4, 1, 2, 2), state=(0x1234, 16), drop=None):
    n = 4
    for s in shape:
        n *= s
    ts = [("latents", "F32", list(shape), n), ("noise_state", "I64", [2], 16)]
    ts = [x for x in ts if x[0] != drop]
    meta = {"made_by": "skyreels --resume_dir", "resume_key": key, "seed": seed}
    h, total = st_header(ts, meta)
    data = b""
    for name, _, _, nb in ts:
        data += struct.pack("<%df" % (nb // 4), *[0.5 * i for i in range(nb // 4)]) if name == "latents" else \
            struct.pack("<qq", *state)
    return composed(h, data)


def resume_seeds():
    t = "resume"
    put(t, "two-windows", window() + WINDOW_SEP + window(state=(0x5678, 32)))
    put(t, "one-window", window())
    put(t, "other-key", window(key=KEY.replace("a cat", "a dog")))
    put(t, "second-other-key", window() + WINDOW_SEP + window(key=KEY + "; vae /w/vae.safetensors"))
    put(t, "no-key", window(key=""))
    put(t, "wrong-shape", window(shape=(4, 2, 2, 2)))
    put(t, "bad-draw-index", window(state=(1, -1)))
    put(t, "draw-index-2-31", window(state=(1, 2**31)))
    put(t, "no-noise-state", window(drop="noise_state"))
    put(t, "no-latents", window(drop="latents"))
    put(t, "seed-negative", window(seed="-1"))
    put(t, "seed-too-big", window(seed="18446744073709551616"))
    put(t, "seed-spaces", window(seed=" 7"))


# ---- image and video: what make_media.c cannot make ----------------------------------------------------


def media_seeds():
    put("image", "fixture-i2v_start.png", b"\x00" + open(os.path.join(ROOT, "tests/fixtures/pipeline/i2v_start.png"),
                                                          "rb").read())
    put("image", "garbage.png", b"\x00not a png at all")
    put("image", "empty.jpg", b"\x01")
    # YUV4MPEG2 (extension index 6 of fuzz_video.c): 4:2:0, 16x8, 3 frames; and one that lies about its size
    w, h = 16, 8
    frame = b"FRAME\n" + bytes((x * 13) & 255 for x in range(w * h)) + bytes([128]) * (w * h // 2)
    put("video", "yuv420.y4m", b"\x06" + b"YUV4MPEG2 W16 H8 F8:1 Ip A1:1 C420jpeg\n" + frame * 3)
    put("video", "y4m-huge.y4m", b"\x06" + b"YUV4MPEG2 W16384 H16384 F8:1 Ip A1:1 C420jpeg\n" + frame)
    put("video", "y4m-zero-fps.y4m", b"\x06" + b"YUV4MPEG2 W16 H8 F0:0 Ip A0:0 C444\n" + frame)


# ---- the prompt enhancer's answers ---------------------------------------------------------------------


def enhancer_seeds():
    t = "prompt_enhancer"

    def answer(content, finish="stop", **extra):
        a = {"id": "chatcmpl-1", "object": "chat.completion", "model": "Qwen/Qwen2.5-32B-Instruct",
             "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                          "finish_reason": finish}],
             "usage": {"prompt_tokens": 180, "completion_tokens": 60, "total_tokens": 240}}
        a.update(extra)
        return json.dumps(a, ensure_ascii=False).encode()

    put(t, "ok.json", answer("A red fox trots through fresh snow at dawn, its breath visible in the cold air."))
    put(t, "length.json", answer("A cat \u00e9 \U0001F600 sits", finish="length"))
    put(t, "whitespace.json", answer("  A\t cat\n\n sits \r\n on a mat.  "))
    put(t, "control.json", answer("a\u0001b"))
    put(t, "nul.json", answer("a\u0000b"))
    put(t, "empty-content.json", answer(" \n "))
    put(t, "too-long.json", answer("x" * 4097))
    put(t, "null-content.json", answer(None))
    put(t, "error.json", b'{"error": {"message": "The model `x` does not exist.", "type": "NotFoundError", "code": 404}}')
    put(t, "no-choices.json", b'{"choices": []}')
    put(t, "not-json.txt", b"<html><body>502 Bad Gateway</body></html>")
    put(t, "invalid-utf8.json", b'{"choices": [{"message": {"content": "caf\xc3"}}]}')
    put(t, "escapes.json", b'{"choices": [{"message": {"content": "\\u00e9 \\ud83d\\ude00 \\"q\\" \\\\ \\/"}}]}')


def main():
    text_seeds()  # first: json_seeds reads data/small_tokenizer.json
    json_seeds()
    safetensors_seeds()
    checkpoint_seeds()
    pth_seeds()
    resume_seeds()
    enhancer_seeds()
    media_seeds()
    for t in sorted(os.listdir(CORPUS)):
        d = os.path.join(CORPUS, t)
        print("%-15s %4d seeds, %7d bytes" % (t, len(os.listdir(d)),
                                              sum(os.path.getsize(os.path.join(d, f)) for f in os.listdir(d))))


if __name__ == "__main__":
    sys.exit(main())
