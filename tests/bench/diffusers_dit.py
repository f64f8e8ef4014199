"""tests/bench/diffusers_dit.py — the peer's timing: diffusers' SkyReelsV2Transformer3DModel forward
at full size with random weights, bf16, on the GPU, for the shapes of one denoising step.

    python3 tests/bench/diffusers_dit.py --variant df_1.3b_540p [--frames 25] [--batch 2] [--iters 5]

Prints one JSON line: device, variant, tokens, batch, seconds per forward (median of --iters after a
warm-up), and the attention backend torch picked. diffusers is pinned as in tests/fixtures/requirements.txt
(0.36.0); on the GPU machine it is installed from a carried wheel (see tests/gpu/run.sh).
"""
import argparse, json, statistics, time

import torch
from diffusers import SkyReelsV2Transformer3DModel

# Sizes of the released variants (shared/reference/dit-and-sampling.md §1).
SIZES = {
    "df_1.3b_540p": dict(dim=1536, ffn=8960, heads=12, layers=30, in_ch=16, fps=True, lat=(68, 120)),
    "df_14b_540p": dict(dim=5120, ffn=13824, heads=40, layers=40, in_ch=16, fps=False, lat=(68, 120)),
    "df_14b_720p": dict(dim=5120, ffn=13824, heads=40, layers=40, in_ch=16, fps=False, lat=(90, 160)),
}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--variant", default="df_1.3b_540p", choices=sorted(SIZES))
    ap.add_argument("--frames", type=int, default=25, help="latent frames (25 = 97 video frames)")
    ap.add_argument("--batch", type=int, default=2, help="2 = cond + uncond in one batch (CFG)")
    ap.add_argument("--iters", type=int, default=5)
    a = ap.parse_args()
    s = SIZES[a.variant]
    torch.manual_seed(0)
    model = SkyReelsV2Transformer3DModel(
        patch_size=(1, 2, 2), num_attention_heads=s["heads"], attention_head_dim=128, in_channels=s["in_ch"],
        out_channels=16, text_dim=4096, freq_dim=256, ffn_dim=s["ffn"], num_layers=s["layers"],
        cross_attn_norm=True, qk_norm="rms_norm_across_heads", eps=1e-6, inject_sample_info=s["fps"],
    ).to("cuda", torch.bfloat16).eval()
    h, w = s["lat"]
    x = torch.randn(a.batch, 16, a.frames, h, w, device="cuda", dtype=torch.bfloat16)
    t = torch.full((a.batch, a.frames), 500, device="cuda", dtype=torch.long)
    ctx = torch.randn(a.batch, 512, 4096, device="cuda", dtype=torch.bfloat16)
    kw = dict(enable_diffusion_forcing=True)
    if s["fps"]:
        kw["fps"] = [1] * a.batch
    times = []
    with torch.no_grad():
        for i in range(a.iters + 1):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            model(x, t, ctx, return_dict=False, **kw)
            torch.cuda.synchronize()
            if i > 0:
                times.append(time.perf_counter() - t0)
    print(json.dumps(dict(device=torch.cuda.get_device_name(), variant=a.variant, tokens=a.frames * h * w // 4,
                          batch=a.batch, seconds=statistics.median(times), all=times,
                          torch=torch.__version__, peak_gib=torch.cuda.max_memory_allocated() / 2**30)))


if __name__ == "__main__":
    main()
