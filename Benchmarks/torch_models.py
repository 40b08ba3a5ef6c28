"""TerraSeg's networks in PyTorch, for side-by-side runs, and loading of TerraSeg model
bundles (model.json + model.safetensors) into them.

Parameter names map one to one: TerraSeg `enc1.conv1.weight` ↔ PyTorch `enc.0.0.weight`,
`enc1.bn1.*` ↔ `enc.0.1.*`, `enc1.conv2` ↔ `enc.0.3`, `enc1.bn2` ↔ `enc.0.4`; `bottleneck.convN`
↔ `bottleneck.{3(N-1)}`, `bottleneck.bnN` ↔ `bottleneck.{3(N-1)+1}`; `dec{L}` (deepest) ↔
`dec.0`; `dec{L}.up.*` (learned upsampling) ↔ `up.{levels-L}.*`; `body.convN`/`body.bnN`
(dilated CNN) ↔ `body.{3(N-1)}`/`body.{3(N-1)+1}`; `head.*`.

Upsampling: bilinear, nearest, nails (fixed; the decoder reads below + w channels), transposed
(ConvTranspose2d below → w, 2×2 stride 2) and max-unpooling (Conv2d 1×1 below → w, then
max_unpool2d with the indices of the encoder's pooling at that level); learned modes read 2w.
Both max poolings keep the first maximum of a window in row-major order (TerraSeg's
MaxPool2x2 compares with a strict >, as PyTorch's CPU kernel does), so ties — common at
ReLU zeros — unpool to the same place.
"""
import json
import math
import pathlib
import re

import torch
import torch.nn as nn
import torch.nn.functional as F


def cbr(cin, cout, d=1):
    return [nn.Conv2d(cin, cout, 3, padding=d, dilation=d, bias=False), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)]


class UNet(nn.Module):
    def __init__(self, cin, k, widths, dilations=(1, 2, 4), upsampling="bilinear", bottleneck_width=None):
        super().__init__()
        self.enc = nn.ModuleList()
        c = cin
        for w in widths:
            self.enc.append(nn.Sequential(*cbr(c, w), *cbr(w, w)))
            c = w
        b = bottleneck_width or 2 * widths[-1]
        layers = []
        for d in dilations:
            layers += cbr(c, b, d)
            c = b
        self.bottleneck = nn.Sequential(*layers)
        self.upsampling = upsampling
        learned = upsampling in ("transposed", "max-unpooling")
        self.dec = nn.ModuleList()
        self.up = nn.ModuleList()  # learned upsampling only, deepest first like dec
        below = b
        for w in reversed(widths):
            if upsampling == "transposed":
                self.up.append(nn.ConvTranspose2d(below, w, 2, stride=2))
            elif upsampling == "max-unpooling":
                self.up.append(nn.Conv2d(below, w, 1))
            self.dec.append(nn.Sequential(*cbr((w if learned else below) + w, w), *cbr(w, w)))
            below = w
        self.head = nn.Conv2d(widths[0], k, 1, bias=True)

    def upsample(self, x, level, indices):
        """×2 upsampling of x for decoder level `level` (0 = deepest)."""
        if self.upsampling == "transposed":
            return self.up[level](x)
        if self.upsampling == "max-unpooling":
            return F.max_unpool2d(self.up[level](x), indices, 2)
        if self.upsampling == "bilinear":
            return F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
        if self.upsampling == "nearest":
            return F.interpolate(x, scale_factor=2, mode="nearest")
        y = x.new_zeros(x.shape[0], x.shape[1], 2 * x.shape[2], 2 * x.shape[3])
        y[:, :, ::2, ::2] = x  # bed of nails
        return y

    def forward(self, x):
        skips, indices = [], []
        for e in self.enc:
            x = e(x)
            skips.append(x)
            x, i = F.max_pool2d(x, 2, return_indices=True)
            indices.append(i)
        x = self.bottleneck(x)
        for level, (d, s, i) in enumerate(zip(self.dec, reversed(skips), reversed(indices))):
            x = d(torch.cat([self.upsample(x, level, i), s], 1))
        return self.head(x)


class DilatedNet(nn.Module):
    def __init__(self, cin, k, width=32, dilations=(1, 2, 4, 8, 4, 2, 1)):
        super().__init__()
        layers, c = [], cin
        for d in dilations:
            layers += cbr(c, width, d)
            c = width
        self.body = nn.Sequential(*layers)
        self.head = nn.Conv2d(width, k, 1, bias=True)

    def forward(self, x):
        return self.head(self.body(x))


def focal_dice(logits, y, k, gamma=2.0):
    """Focal (softmax, mean over valid pixels) + soft Dice (1 − mean over classes), y = −1 excluded."""
    valid = y >= 0
    onehot = F.one_hot(y.clamp(min=0), k).permute(0, 3, 1, 2).float() * valid.unsqueeze(1)
    logp = F.log_softmax(logits, 1)
    logpt = (logp * onehot).sum(1)
    focal = (-(1 - logpt.exp()) ** gamma * logpt * valid).sum() / valid.sum().clamp(min=1)
    pv = logp.exp() * valid.unsqueeze(1)
    inter = (pv * onehot).sum((0, 2, 3))
    dice = 1 - (2 * inter / (pv.sum((0, 2, 3)) + onehot.sum((0, 2, 3)) + 1e-6)).mean()
    return focal + dice


def torch_name(name, levels):
    """TerraSeg tensor name → PyTorch parameter/buffer name (`levels`: the U-Net's depth, 0 otherwise)."""
    m = re.match(r"dec(\d+)\.up\.(.+)", name)
    if m:
        return f"up.{levels - int(m.group(1))}.{m.group(2)}"
    m = re.match(r"(enc|dec)(\d+)\.(conv|bn)(\d+)\.(.+)", name)
    if m:
        kind, level, layer, unit, rest = m.groups()
        index = int(level) - 1 if kind == "enc" else levels - int(level)
        return f"{kind}.{index}.{3 * (int(unit) - 1) + (1 if layer == 'bn' else 0)}.{rest}"
    m = re.match(r"(bottleneck|body)\.(conv|bn)(\d+)\.(.+)", name)
    if m:
        block, layer, unit, rest = m.groups()
        return f"{block}.{3 * (int(unit) - 1) + (1 if layer == 'bn' else 0)}.{rest}"
    return name


def load_bundle(path):
    """Builds the bundle's network in PyTorch, loads its weights; returns (model, metadata)."""
    from safetensors.numpy import load_file
    path = pathlib.Path(path)
    meta = json.loads((path / "model.json").read_text())
    arch = meta["architecture"]
    if arch["kind"] == "resnet-unet":
        return load_smp_bundle(path, meta)
    if arch["kind"] == "unet":
        u = arch["unet"]
        net = UNet(u["input_channels"], u["classes"], u["widths"], u["bottleneck_dilations"], u["upsampling"], u["bottleneck_width"])
        levels = len(u["widths"])
    else:
        d = arch["dilated"]
        net = DilatedNet(d["input_channels"], d["classes"], d["width"], d["dilations"])
        levels = 0
    state = net.state_dict()
    for name, array in load_file(str(path / "model.safetensors")).items():
        target = torch_name(name, levels)
        state[target].copy_(torch.from_numpy(array).reshape(state[target].shape))
    net.eval()
    return net, meta


def load_smp_bundle(path, meta):
    """A ResNet U-Net bundle is smp's own `Unet`: its safetensors hold smp's names, loaded strictly
    (the export carries `num_batches_tracked`, so nothing is missing)."""
    import segmentation_models_pytorch as smp
    from safetensors.torch import load_file
    arch = meta["architecture"]
    r = next(v for k, v in arch.items() if k != "kind")
    net = smp.Unet(encoder_name=r["encoder"], encoder_weights=None, in_channels=r["input_channels"],
                   classes=r["classes"], decoder_channels=r["decoder_channels"],
                   output_stride=r.get("output_stride", 32))
    net.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    net.eval()
    return net, meta


def round_up(v, a):
    return (v + a - 1) // a * a
