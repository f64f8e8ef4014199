"""tests/bench/diffusers_vae.py — the peer's VAE decode at full size on the GPU: diffusers' AutoencoderKLWan
(the real Wan2.1 configuration) with the given weights, fp32, decoding a seeded random latent.

    python3 tests/bench/diffusers_vae.py --weights VAE.safetensors --out DIR [--frames 25] [--h 68 --w 120]

VAE.safetensors: our random weights in the diffusers layout (skyreels-<variant> random-weights --program vae
--layout diffusers), so both sides decode with the same numbers. Writes into DIR:
  z.safetensors        the normalised latent [1, 16, frames, h, w] (the input of `program vae_decode`)
  ref.safetensors      video decoded in true fp32 (torch.backends.cudnn.allow_tf32 = False): the reference
  peer.safetensors     video decoded with PyTorch's defaults (cuDNN convolutions in tf32): the peer
and prints one JSON line: device, sizes, the peer's time (median of --iters after a warm-up), its peak memory,
and the peer's error against the reference (our CUDA VAE is held to twice that, in tests/gpu/run.sh).
diffusers is pinned as in tests/fixtures/requirements.txt (0.36.0).
"""
import argparse
import json
import os
import statistics
import time

import torch
import safetensors.torch
from diffusers import AutoencoderKLWan


def decode(vae, z_norm):
    mean = torch.tensor(vae.config.latents_mean, device=z_norm.device).view(1, -1, 1, 1, 1)
    inv_std = 1.0 / torch.tensor(vae.config.latents_std, device=z_norm.device).view(1, -1, 1, 1, 1)
    return vae.decode(z_norm / inv_std + mean, return_dict=False)[0].clamp(-1.0, 1.0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--weights", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--frames", type=int, default=25, help="latent frames (25 -> 97 video frames)")
    ap.add_argument("--h", type=int, default=68)
    ap.add_argument("--w", type=int, default=120)
    ap.add_argument("--iters", type=int, default=3)
    a = ap.parse_args()
    os.makedirs(a.out, exist_ok=True)
    vae = AutoencoderKLWan().to("cuda", torch.float32).eval()          # the defaults are Wan2.1's configuration
    sd = safetensors.torch.load_file(a.weights)
    vae.load_state_dict({k: v.float() for k, v in sd.items()}, strict=True)
    g = torch.Generator().manual_seed(7)
    z = torch.randn(1, 16, a.frames, a.h, a.w, generator=g)
    safetensors.torch.save_file({"z": z.contiguous()}, os.path.join(a.out, "z.safetensors"))
    z = z.cuda()
    with torch.no_grad():
        torch.backends.cudnn.allow_tf32 = False
        torch.backends.cuda.matmul.allow_tf32 = False
        ref = decode(vae, z)
        safetensors.torch.save_file({"video": ref.cpu().contiguous()}, os.path.join(a.out, "ref.safetensors"))
        torch.backends.cudnn.allow_tf32 = True                          # PyTorch's default
        times = []
        torch.cuda.reset_peak_memory_stats()
        for i in range(a.iters + 1):
            torch.cuda.synchronize()
            t0 = time.perf_counter()
            peer = decode(vae, z)
            torch.cuda.synchronize()
            if i > 0:
                times.append(time.perf_counter() - t0)
        safetensors.torch.save_file({"video": peer.cpu().contiguous()}, os.path.join(a.out, "peer.safetensors"))
        err = (torch.linalg.vector_norm((peer - ref).double()) / torch.linalg.vector_norm(ref.double())).item()
    print(json.dumps(dict(device=torch.cuda.get_device_name(), latent=[16, a.frames, a.h, a.w],
                          video=list(peer.shape), seconds=statistics.median(times), all=times,
                          peak_gib=torch.cuda.max_memory_allocated() / 2**30, peer_tf32_rel_l2=err,
                          torch=torch.__version__)))


if __name__ == "__main__":
    main()
