#!/usr/bin/env python3
"""tests/bench/check_bench_json.py FILE BACKEND PARTS — check a `bench --json` file (docs/bench.md).

Every documented field is present with the documented type; the timed parts have their statistics;
the op groups' times sum to the instrumented forward's time (the gap is what runs outside the ops:
the inputs' conversion and the output's copy, bounded below); the FLOP model of the groups agrees
with the spec's FLOP count of the generator (gen/ops.lua's rules: the same sums, so within 1%).
Prints one "ok ..." or "FAIL ..." line per check; exits 1 if any failed.
"""
import json
import sys

path, backend, parts = sys.argv[1], sys.argv[2], sys.argv[3].split(",")
doc = json.load(open(path))
fails = 0


def check(cond, what):
    global fails
    print(("ok   " if cond else "FAIL ") + what)
    fails += 0 if cond else 1


num = (int, float)
fields = {
    "variant": str, "backend": str, "device": str, "driver": str, "plugin": str, "plugin_hash": str,
    "attention_schedule": str, "peak_source": str, "weights": str, "peak_tflops": num + (type(None),),
    "peak_gbs": num + (type(None),), "iters": int, "warmup": int, "window": dict, "flops_spec": num,
    "flops_model": num, "dit_forward": (dict, type(None)), "text_encode": (dict, type(None)),
    "vae_decode": (dict, type(None)), "floor_s": num + (type(None),), "forward_over_floor": num + (type(None),),
    "achieved_tflops": num + (type(None),), "eager_s": num + (type(None),), "attributed_s": num + (type(None),), "breakdown_clock": str,
    "groups": dict, "device_used_bytes": num + (type(None),), "planned_device_bytes": num + (type(None),),
    "peak_device_bytes": num + (type(None),), "host_peak_bytes": num + (type(None),),
}
optional = {"static_counts": dict}   # the generator's counts: present when the variant has a CUDA target
missing = [k for k in fields if k not in doc]
wrong = [k for k in fields if k in doc and not isinstance(doc[k], fields[k])]
wrong += [k for k in optional if k in doc and not isinstance(doc[k], optional[k])]
extra = [k for k in doc if k not in fields and k not in optional]
check(not missing and not wrong and not extra,
      f"{len(fields)} top-level fields, typed (missing {missing}, wrong type {wrong}, undocumented {extra})")
check(doc["backend"] == backend, f"backend {doc['backend']}")
check(set(doc["window"]) == {"frames", "height", "width", "tokens"} and doc["window"]["tokens"] > 0,
      f"window {doc['window']}")
names = {"dit": "dit_forward", "t5": "text_encode", "vae": "vae_decode"}
for p, k in names.items():
    s = doc[k]
    if p in parts:
        good = isinstance(s, dict) and set(s) == {"runs", "mean_s", "median_s", "min_s", "max_s"} and \
            s["runs"] >= 1 and 0 < s["min_s"] <= s["median_s"] <= s["max_s"] and s["min_s"] <= s["mean_s"] <= s["max_s"]
        check(good, f"{k}: {s}")
    else:
        check(s is None, f"{k}: not asked for, null")
groups = ["self_attention", "cross_attention", "gemm_self_attn", "gemm_cross_attn", "gemm_ffn",
          "norm_rope_residual", "embed_head"]
g = doc["groups"]
check(list(g) == groups and all(set(g[n]) == {"ops", "s", "flops", "bytes", "tflops", "gbs"} for n in groups),
      f"the {len(groups)} op groups, each with ops, s, flops, bytes, tflops, gbs")
if "dit" in parts:
    tsum = sum(g[n]["s"] for n in groups)
    check(abs(tsum - doc["attributed_s"]) <= 1e-6 * max(1.0, tsum), f"group times sum to attributed_s ({tsum:.6g} s)")
    # the ops are the forward, save converting x in and v out: at least 80% of it, never more
    check(0.8 * doc["eager_s"] <= tsum <= doc["eager_s"] * (1 + 1e-9),
          f"group times {tsum:.6g} s within [0.8, 1] x the instrumented forward {doc['eager_s']:.6g} s")
    check(all(g[n]["ops"] > 0 for n in groups), "every group saw ops: " + ", ".join(f"{n} {g[n]['ops']}" for n in groups))
    rel = abs(doc["flops_model"] - doc["flops_spec"]) / doc["flops_spec"]
    check(rel < 0.01, f"the groups' FLOP model {doc['flops_model']:.6g} vs the spec's {doc['flops_spec']:.6g}: rel {rel:.2e} < 1%")
    a = doc["achieved_tflops"]
    check(abs(a - doc["flops_spec"] / doc["dit_forward"]["median_s"] / 1e12) <= 1e-6 * a, f"achieved_tflops {a:.6g}")
    if doc["peak_tflops"] is not None:
        fl = doc["flops_spec"] / (doc["peak_tflops"] * 1e12)
        check(abs(doc["floor_s"] - fl) <= 1e-6 * fl and doc["forward_over_floor"] > 1,
              f"floor {doc['floor_s']:.6g} s, forward / floor {doc['forward_over_floor']:.6g}")
if backend == "cuda":
    check(doc["plugin_hash"] != "none" and len(doc["plugin_hash"]) == 16, f"plugin hash {doc['plugin_hash']}")
    check(doc["planned_device_bytes"] and doc["planned_device_bytes"] > 0, "planned_device_bytes")
    # the plugin's allocation peak (weights, arenas, workspace) and the device's name, both asked of the plugin
    check(doc["peak_device_bytes"] is not None and doc["peak_device_bytes"] > 0, f"peak_device_bytes {doc['peak_device_bytes']}")
    check(not doc["device"].startswith("cuda (no device name"), f"device from the plugin: {doc['device']}")
    check(doc["breakdown_clock"] == ("cuda events" if "dit" in parts else "none"), f"breakdown by {doc['breakdown_clock']}")
    sc = doc.get("static_counts")
    check(isinstance(sc, dict) and "dit_forward" in sc.get("programs", {}) and
          sc["programs"]["dit_forward"]["total"]["flops"] > 0, "static_counts: dit_forward's count")
else:
    check(doc["device"].startswith("cpu"), f"device {doc['device']}")
    check(doc["peak_device_bytes"] is None, "peak_device_bytes: null on the CPU")
    check(doc["breakdown_clock"] == ("host clock" if "dit" in parts else "none"), f"breakdown by {doc['breakdown_clock']}")
print(f"{fails} failed checks" if fails else "all checks passed")
sys.exit(1 if fails else 0)
