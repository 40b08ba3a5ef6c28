"""Trains TerraSeg's networks in PyTorch on the exact patches TerraSeg trains on, with the
same loss (focal γ=2 + soft Dice), optimiser (Adam), schedule (linear warm-up + cosine, per
step), augmentation (random 90° rotation + flip), batch size (last partial batch dropped)
and epochs, and reports the best validation mIoU and the wall time. 2 threads.

    terraseg train ... --export-patches patches.safetensors     # the patches, normalised
    Benchmarks/.venv/bin/python Benchmarks/pytorch_train.py --patches patches.safetensors \
        --model unet --widths 16 32 64 --epochs 40 --batch-size 16 --lr 0.002 --warmup 1 --seed 1
Prints one JSON object.
"""
import argparse
import json
import math
import time

import numpy as np
import torch
from safetensors.numpy import load_file


from torch_models import DilatedNet, UNet, focal_dice, load_bundle


def lr_factor(t, epochs, warmup):
    if warmup > 0 and t < warmup:
        return t / warmup
    span = max(1e-9, epochs - warmup)
    q = min(1.0, max(0.0, (t - warmup) / span))
    return 0.5 * (1 + math.cos(math.pi * q))


def miou(conf):
    ious = []
    for c in range(conf.shape[0]):
        tp = conf[c, c]
        union = conf[c, :].sum() + conf[:, c].sum() - tp
        if union > 0:
            ious.append(tp / union)
    return float(np.mean(ious)), [float(conf[c, c] / max(1, conf[c, :].sum() + conf[:, c].sum() - conf[c, c])) for c in range(conf.shape[0])]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--patches", required=True)
    ap.add_argument("--model", default="unet", choices=["unet", "dilated"])
    ap.add_argument("--widths", type=int, nargs="+", default=[16, 32, 64])
    ap.add_argument("--bottleneck-dilations", type=int, nargs="+", default=[1, 2, 4])
    ap.add_argument("--upsampling", default="bilinear")
    ap.add_argument("--width", type=int, default=32)
    ap.add_argument("--dilations", type=int, nargs="+", default=[1, 2, 4, 8, 4, 2, 1])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--lr", type=float, default=0.002)
    ap.add_argument("--warmup", type=float, default=1)
    ap.add_argument("--gamma", type=float, default=2)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--replay", help="TERRASEG_TRACE_BATCHES file: use TerraSeg's exact batches and symmetries")
    ap.add_argument("--init-bundle", help="start from this TerraSeg bundle's weights (e.g. trained with --epochs 0)")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    rng = np.random.default_rng(a.seed)
    d = load_file(a.patches)
    tx, ty = torch.from_numpy(d["train_x"]), torch.from_numpy(d["train_y"]).long()
    vx, vy = torch.from_numpy(d["val_x"]), torch.from_numpy(d["val_y"]).long()
    k = int(max(ty.max(), vy.max()).item()) + 1
    k = max(k, 2)
    import safetensors
    meta = safetensors.safe_open(a.patches, "np").metadata() or {}
    k = int(meta.get("classes", k))
    cin = tx.shape[1]
    net = UNet(cin, k, a.widths, a.bottleneck_dilations, a.upsampling) if a.model == "unet" else DilatedNet(cin, k, a.width, a.dilations)
    if a.init_bundle:
        net, _ = load_bundle(a.init_bundle)
    opt = torch.optim.Adam(net.parameters(), lr=a.lr)
    n, B = tx.shape[0], min(a.batch_size, tx.shape[0])
    trace = {}
    if a.replay:
        for line in open(a.replay):
            e = json.loads(line)
            trace.setdefault(e["epoch"], {})[e["batch"]] = e["patches"]
    batches = max(1, n // B)
    start = time.time()
    best, best_epoch, history, train_losses = -1.0, 0, [], []
    for epoch in range(a.epochs):
        net.train()
        order = rng.permutation(n)
        replay = trace[epoch] if a.replay else None
        loss_sum = 0.0
        for b in range(batches):
            t = epoch + b / batches
            for g in opt.param_groups:
                g["lr"] = a.lr * lr_factor(t, a.epochs, a.warmup)
            idx = order[b * B:(b + 1) * B] if replay is None else [p[0] for p in replay[b]]
            xs, ys = tx[idx].clone(), ty[idx].clone()
            for i in range(len(idx)):  # random rotation + flip, image and labels together
                if replay is not None:  # TerraSeg's symmetry: flip first, then quarter turns
                    r, f = replay[b][i][1], bool(replay[b][i][2])
                    if f:
                        xs[i], ys[i] = torch.flip(xs[i], (2,)), torch.flip(ys[i], (1,))
                    if r:
                        xs[i], ys[i] = torch.rot90(xs[i], r, (1, 2)), torch.rot90(ys[i], r, (0, 1))
                    continue
                r, f = int(rng.integers(4)), bool(rng.integers(2))
                if r:
                    xs[i], ys[i] = torch.rot90(xs[i], r, (1, 2)), torch.rot90(ys[i], r, (0, 1))
                if f:
                    xs[i], ys[i] = torch.flip(xs[i], (2,)), torch.flip(ys[i], (1,))
            loss = focal_dice(net(xs), ys, k, a.gamma)
            opt.zero_grad()
            loss.backward()
            opt.step()
            loss_sum += float(loss.detach())
        train_losses.append(round(loss_sum / batches, 4))
        net.eval()
        conf = np.zeros((k, k), dtype=np.int64)
        with torch.no_grad():
            for s in range(0, vx.shape[0], B):
                pred = net(vx[s:s + B]).argmax(1).numpy().ravel()
                truth = vy[s:s + B].numpy().ravel()
                m = truth >= 0
                np.add.at(conf, (truth[m], pred[m]), 1)
        mi, per_class = miou(conf)
        history.append(mi)
        if mi > best:
            best, best_epoch, best_conf, best_pc = mi, epoch + 1, conf.copy(), per_class
    wall = time.time() - start
    print(json.dumps({"framework": "pytorch", "torch": torch.__version__, "model": a.model, "seed": a.seed,
                      "best_miou": best, "best_epoch": best_epoch,
                      "overall_accuracy": float(np.trace(best_conf) / max(1, best_conf.sum())),
                      "per_class_iou": best_pc, "final_miou": history[-1], "history": [round(h, 4) for h in history], "train_loss_history": train_losses, "wall_s": wall,
                      "train_patches": int(n), "validation_patches": int(vx.shape[0])}))


if __name__ == "__main__":
    main()
