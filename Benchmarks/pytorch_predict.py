"""The A4 peer: a PyTorch + rasterio sliding-window predictor, as people write it: read a
window, predict it, write its core, one after another. Same weights (the TerraSeg bundle's
safetensors), same window grid, margin and normalisation as `terraseg predict`.

    Benchmarks/.venv/bin/python Benchmarks/pytorch_predict.py --model BUNDLE --input SCENE.vrt \
        --output map.tif --tile 512 --margin 208 [--channels-last] [--threads 2]
`--whole-scene`: smp's `model(scene)` instead, the reference of `terraseg predict`'s stream
(its default for ResNet U-Nets): the whole scene normalised in one tensor, zero-padded on the
right and bottom to the network's alignment (smp needs sizes divisible by 32; TerraSeg's stream
pads alike) and the logits cropped back; no windows, so nothing beyond the scene is read.
Prints one JSON object (megapixels_per_s, seconds, peak_rss_mb).
"""
import argparse
import json
import resource
import time

import numpy as np
import rasterio
import torch
from rasterio.windows import Window

from torch_models import load_bundle, round_up


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--input", required=True)
    ap.add_argument("--output", required=True)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--margin", type=int, default=None)
    ap.add_argument("--channels-last", action="store_true")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--bf16", action="store_true", help="run the network under torch.autocast('cpu', dtype=torch.bfloat16)")
    ap.add_argument("--whole-scene", action="store_true", help="one model(scene) call instead of sliding windows")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    net, meta = load_bundle(a.model)
    align = meta["alignment"]
    tile = round_up(a.tile, align)
    margin = round_up(a.margin if a.margin is not None else meta["receptive_field"] // 2, align)
    size = tile + 2 * margin
    norm = meta["normalization"]
    offset, scale = np.array(norm["offset"], np.float32), np.array(norm["scale"], np.float32)
    lower, upper = np.array(norm["lower"], np.float32), np.array(norm["upper"], np.float32)
    values = np.array([c["value"] for c in meta["classes"]["classes"]], np.uint8)
    bands = meta["bands"]
    if a.channels_last:
        net = net.to(memory_format=torch.channels_last)
    start = time.time()
    if a.whole_scene:
        return whole_scene(a, net, bands, (offset, scale, lower, upper), values, align, start)
    with rasterio.open(a.input) as src:
        profile = src.profile.copy()
        profile.update(driver="GTiff", count=1, dtype="uint8", nodata=255, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate", BIGTIFF="IF_SAFER")
        nodata = [src.nodatavals[b - 1] for b in bands]
        with rasterio.open(a.output, "w", **profile) as dst, torch.no_grad():
            for r in range(0, src.height, tile):
                for c in range(0, src.width, tile):
                    win = Window(c - margin, r - margin, size, size)
                    x = src.read(bands, window=win, boundless=True, fill_value=0, masked=True).astype(np.float32)
                    x, valid = normalise(x, nodata, offset, scale, lower, upper)
                    t = torch.from_numpy(x)[None]
                    if a.channels_last:
                        t = t.contiguous(memory_format=torch.channels_last)
                    with torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
                        logits = net(t)
                    probs = torch.softmax(logits.float(), 1)[0]
                    h, w = min(tile, src.height - r), min(tile, src.width - c)
                    core = probs[:, margin:margin + h, margin:margin + w].argmax(0).numpy()
                    out = values[core]
                    out[~valid[margin:margin + h, margin:margin + w]] = 255
                    dst.write(out, 1, window=Window(c, r, w, h))
        seconds = time.time() - start
        mp = src.width * src.height / 1e6
    print(json.dumps({"framework": "pytorch+rasterio", "channels_last": a.channels_last, "bf16": a.bf16, "torch": torch.__version__,
                      "megapixels": mp, "seconds": seconds, "megapixels_per_s": mp / seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                      "tile": tile, "margin": margin}))


def normalise(x, nodata, offset, scale, lower, upper):
    """Masked bands (C, H, W) → normalised float32 with invalid pixels 0, and the validity mask."""
    valid = ~np.ma.getmaskarray(x).any(0)
    for i, nd in enumerate(nodata):
        if nd is not None:
            valid &= x.data[i] != nd
    x = (np.clip(x.data, lower[:, None, None], upper[:, None, None]) - offset[:, None, None]) * scale[:, None, None]
    x[:, ~valid] = 0
    return x, valid


def whole_scene(a, net, bands, norm, values, align, start):
    """smp's model(scene): one tensor, padded right and bottom to the alignment, cropped back."""
    with rasterio.open(a.input) as src:
        profile = src.profile.copy()
        profile.update(driver="GTiff", count=1, dtype="uint8", nodata=255, tiled=True, blockxsize=256, blockysize=256,
                       compress="deflate", BIGTIFF="IF_SAFER")
        x, valid = normalise(src.read(bands, masked=True).astype(np.float32), [src.nodatavals[b - 1] for b in bands], *norm)
        h, w = src.height, src.width
    t = torch.nn.functional.pad(torch.from_numpy(x)[None], (0, round_up(w, align) - w, 0, round_up(h, align) - h))
    del x
    if a.channels_last:
        t = t.contiguous(memory_format=torch.channels_last)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16, enabled=a.bf16):
        core = net(t)[0, :, :h, :w].float().argmax(0).numpy()
    out = values[core]
    out[~valid] = 255
    with rasterio.open(a.output, "w", **profile) as dst:
        dst.write(out, 1)
    seconds = time.time() - start
    print(json.dumps({"framework": "pytorch whole scene", "channels_last": a.channels_last, "bf16": a.bf16, "torch": torch.__version__,
                      "megapixels": w * h / 1e6, "seconds": seconds, "megapixels_per_s": w * h / 1e6 / seconds,
                      "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))


if __name__ == "__main__":
    main()
