"""Numerical side-by-side of one network in TerraSeg and PyTorch: same starting weights (an
untrained TerraSeg bundle loaded into PyTorch), same fixed batch of exported patches, training
mode, focal (γ=2) + Dice loss; compares the logits, the loss, every parameter's gradient after
the first step and every weight and batch-norm statistic after `--steps` Adam steps.

    swift build -c release --product terraseg --product terraseg-bench
    Benchmarks/.venv/bin/python Benchmarks/compare_gradients.py --model dilated --steps 20
"""
import argparse
import pathlib
import subprocess

import numpy as np
import torch
from safetensors.numpy import load_file

from compare_training import CLASSES, DATA
from torch_models import focal_dice, load_bundle, torch_name

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent


def rel(a, b):
    return float(np.linalg.norm(a - b) / max(np.linalg.norm(b), 1e-12))


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="dilated", choices=["unet", "dilated"])
    ap.add_argument("--count", type=int, default=16)
    ap.add_argument("--steps", type=int, default=1)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--interleave-validation", action="store_true",
                    help="TerraSeg runs an inference-mode forward between steps (must not change the result)")
    a = ap.parse_args()
    out = HERE / "out" / f"gradients-{a.model}"
    out.mkdir(parents=True, exist_ok=True)
    bin_dir = ROOT / ".build" / "release"
    common = ["--image", str(DATA / "image_6band.tif"), "--labels", str(DATA / "labels_landclass96.tif"),
              "--classes", CLASSES, "--ignore", "0", "--model", a.model, "--widths", "16,32,64",
              "--batch-size", "16", "--patch-size", "64", "--stride", "32", "--split", "rows:0.6", "--seed", str(a.seed)]
    patches, bundle = out / "patches.safetensors", out / "bundle"
    subprocess.run([bin_dir / "terraseg", "train", *common, "--output", str(out / "unused"), "--export-patches", str(patches)],
                   check=True, capture_output=True)
    subprocess.run([bin_dir / "terraseg", "train", *common, "--epochs", "0", "--output", str(bundle)], check=True, capture_output=True)
    result = out / "terraseg.safetensors"
    subprocess.run([bin_dir / "terraseg-bench", "gradcheck", "--bundle", str(bundle), "--patches", str(patches),
                    "--count", str(a.count), "--steps", str(a.steps), "--lr", str(a.lr), "--output", str(result)]
                   + (["--interleave-validation"] if a.interleave_validation else []), check=True)
    ts = load_file(str(result))

    torch.set_num_threads(2)
    net, meta = load_bundle(bundle)
    net.train()
    levels = len(meta["architecture"].get("unet", {}).get("widths", []))
    names = {n[len("final."):]: torch_name(n[len("final."):], levels) for n in ts if n.startswith("final.")}
    d = load_file(str(patches))
    x = torch.from_numpy(d["train_x"][:a.count]).contiguous()
    y = torch.from_numpy(d["train_y"][:a.count]).long()
    k = int(meta["architecture"][meta["architecture"]["kind"]]["classes"])
    params = dict(net.named_parameters())
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    losses = []
    for step in range(a.steps):
        logits = net(x)
        loss = focal_dice(logits, y, k)
        losses.append(float(loss.detach()))
        opt.zero_grad()
        loss.backward()
        if step == 0:
            print(f"logits: relative difference {rel(ts['logits'], logits.detach().numpy()):.2e}")
            print("first-step gradients (relative difference, |g| TerraSeg / PyTorch):")
            for n, t in names.items():
                key = "grad." + n
                if key in ts:
                    g = params[t].grad.numpy().ravel()
                    print(f"  {n:28s} {rel(ts[key], g):.2e}  {np.linalg.norm(ts[key]):.4e} / {np.linalg.norm(g):.4e}")
        opt.step()
    print("losses TerraSeg:", [round(float(v), 5) for v in ts["losses"]])
    print("losses PyTorch: ", [round(v, 5) for v in losses])
    print(f"after {a.steps} steps (relative difference of weights and statistics):")
    state = net.state_dict()
    for n, t in names.items():
        print(f"  {n:28s} {rel(ts['final.' + n], state[t].numpy().ravel()):.2e}")
    # Inference with TerraSeg's final weights and statistics in both: isolates the inference path.
    state = net.state_dict()
    for n, t in names.items():
        state[t].copy_(torch.from_numpy(ts["final." + n]).reshape(state[t].shape))
    net.eval()
    with torch.no_grad():
        v = torch.from_numpy(d["val_x"][:a.count]).contiguous()
        e = net(v).numpy()
    print(f"inference-mode logits on validation patches, same weights: relative difference {rel(ts['eval_logits'], e):.2e}, "
          f"argmax agreement {float((ts['eval_logits'].argmax(1) == e.argmax(1)).mean()):.5f}")

if __name__ == "__main__":
    main()
