"""R1 (shared/R1.md) in PyTorch, measured like `terraseg-bench r1`: the same network, loss,
optimiser, batch and random input; prints the same JSON fields.

    Benchmarks/.venv/bin/python Benchmarks/pytorch_r1.py --mode train --batch 8 --steps 3 --json
    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 ... --channels-last   # "tuned PyTorch"
    ... --encoder resnet34    # smp's Unet (4 bands, 6 classes), as `terraseg-bench r1 --encoder resnet34`
"""
import argparse
import json
import resource
import statistics
import time

import torch
import torch.nn.functional as F

from torch_models import UNet


def R1(upsample="bilinear"):
    """R1: 4 bands, 6 classes, widths 32–256, bottleneck 512 with dilations 1-2-4."""
    return UNet(4, 6, [32, 64, 128, 256], (1, 2, 4), "nails" if upsample == "nails" else "bilinear", 512)


def focal_dice(logits, target, gamma=2.0):
    logp = F.log_softmax(logits, dim=1)
    logpt = logp.gather(1, target.unsqueeze(1)).squeeze(1)
    focal = (-(1 - logpt.exp()) ** gamma * logpt).mean()
    p = logp.exp()
    y = F.one_hot(target, logits.shape[1]).permute(0, 3, 1, 2).to(p.dtype)
    inter = (p * y).sum(dim=(0, 2, 3))
    dice = 1 - (2 * inter / (p.sum(dim=(0, 2, 3)) + y.sum(dim=(0, 2, 3)) + 1e-6)).mean()
    return focal + dice


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--mode", choices=["train", "infer"], default="train")
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--upsample", choices=["bilinear", "nails"], default="bilinear")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--bf16", action="store_true", help="run under torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--encoder", choices=["resnet18", "resnet34", "resnet50"], help="smp's Unet of this encoder instead of R1")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(0)
    if a.encoder:
        import segmentation_models_pytorch as smp
        net = smp.Unet(encoder_name=a.encoder, encoder_weights=None, in_channels=4, classes=6)
    else:
        net = R1(a.upsample)
        assert sum(p.numel() for p in net.parameters()) == 10_210_374
    fmt = torch.channels_last if a.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt)
    x = torch.randn(a.batch, 4, a.size, a.size).to(memory_format=fmt)
    target = torch.randint(0, 6, (a.batch, a.size, a.size))
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, betas=(0.9, 0.999), eps=1e-8)
    net.train(a.mode == "train")
    times = []
    for step in range(a.warmup + a.steps):
        t0 = time.perf_counter()
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
            if a.mode == "train":
                opt.zero_grad(set_to_none=True)
                loss = focal_dice(net(x).float(), target)
                loss.backward()
                opt.step()
            else:
                with torch.inference_mode():
                    net(x)
        dt = time.perf_counter() - t0
        if step >= a.warmup:
            times.append(dt)
        if not a.json:
            print(f"step {step}: {dt:.3f} s")
    med = statistics.median(times)
    ips = a.batch / med
    scale = a.size * a.size / 65536
    name = f"{a.encoder}-unet" if a.encoder else "r1" if a.upsample == "bilinear" else "r1-nails"
    res = {"network": name, "mode": a.mode, "batch": a.batch,
           "size": a.size, "threads": a.threads, "steps": a.steps, "channels_last": a.channels_last, "bf16": a.bf16,
           "images_per_s": round(ips, 4), "megapixels_per_s": round(ips * a.size * a.size / 1e6, 4),
           "gflops": 0 if a.encoder else round(ips * (87.35 if a.mode == "train" else 29.17) * scale, 2), "step_s": round(med, 4),
           "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
           "torch": torch.__version__}
    print(json.dumps(res) if a.json else res)


if __name__ == "__main__":
    main()
