"""segmentation_models_pytorch's side of Tests/CLITests/SMPImportTests (run by the test with
Benchmarks/.venv/bin/python; the test is skipped when that venv has no smp).

    smp_roundtrip.py save OUT.safetensors --encoder resnet18 --bands 4 --classes 3 [--seed 0]
        A Unet with random weights and batch-norm statistics, its state dict saved as users do:
        save_file(model.state_dict(), OUT) (num_batches_tracked included, as int64 scalars).

    smp_roundtrip.py check --original W --bundle DIR --raster SCENE.tif --mean m,.. --std s,..
                           [--logits L.safetensors] [--map MAP.tif]
        Loads DIR/model.safetensors into smp.Unet (built from DIR/model.json) with
        load_state_dict(strict=True); every tensor must equal W's. Normalises SCENE as
        (x - mean) / std and runs the Unet in eval mode: TerraSeg's logits (L, tensor
        "logits") must lie within 1e-4 (times the largest |logit| when above 1), and its class map (MAP, class values of model.json in
        output order) must equal the argmax wherever smp's two best logits differ by more than 1e-4.

    smp_roundtrip.py adapt W3.safetensors --bands N --out OUT.safetensors
        smp's own patch_first_conv on a torchvision ResNet whose conv1 is W3's conv1.weight:
        the first convolution smp makes for N bands from 3-band pretrained weights.
"""
import argparse
import json
import sys

import numpy as np
import torch
import segmentation_models_pytorch as smp
from safetensors.torch import load_file, save_file


def unet(arch):
    r = next(v for k, v in arch.items() if k != "kind")
    return smp.Unet(encoder_name=r["encoder"], encoder_weights=None, in_channels=r["input_channels"],
                    classes=r["classes"], decoder_channels=r["decoder_channels"],
                    output_stride=r.get("output_stride", 32))


def save(a):
    torch.manual_seed(a.seed)
    net = smp.Unet(encoder_name=a.encoder, encoder_weights=None, in_channels=a.bands, classes=a.classes,
                   decoder_channels=[int(c) for c in a.decoder.split(",")])
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    save_file(net.state_dict(), a.out)


def check(a):
    meta = json.load(open(f"{a.bundle}/model.json"))
    net = unet(meta["architecture"])
    exported = load_file(f"{a.bundle}/model.safetensors")
    net.load_state_dict(exported, strict=True)  # raises on a missing or unexpected name
    original = load_file(a.original)
    for name, t in original.items():
        if t.is_floating_point() and not torch.equal(t, exported[name]):
            sys.exit(f"{name} differs after the round trip")
    net.eval()
    import rasterio
    with rasterio.open(a.raster) as src:
        x = src.read().astype(np.float32)
    mean = np.array([float(v) for v in a.mean.split(",")], dtype=np.float32)[:, None, None]
    std = np.array([float(v) for v in a.std.split(",")], dtype=np.float32)[:, None, None]
    x = torch.from_numpy((x - mean) / std)[None]
    with torch.no_grad():
        logits = net(x)
    report = {}
    if a.logits:
        ours = load_file(a.logits)["logits"]
        diff = (ours - logits).abs().max().item()
        report["max_logit_difference"] = diff
        report["logit_range"] = [logits.min().item(), logits.max().item()]
        if not diff <= 1e-4 * max(1.0, logits.abs().max().item()):
            sys.exit(f"logits differ by {diff} (smp range {report['logit_range']})")
    if a.map:
        # `--edges stream` (predict's default): TerraSeg's map is one window over the scene
        # alone, smp's `model(scene)`. `--edges windows` (`--blend centre`): windows read invalid
        # input (zero after normalisation) all around, so smp sees the scene padded by the
        # receptive-field radius, on the network's alignment, and the scene's part is compared.
        if a.edges == "stream":
            padded = logits
        else:
            align, radius = meta["alignment"], meta["receptive_field"] // 2
            h, w = x.shape[2], x.shape[3]
            pad = -(-radius // align) * align
            bottom, right = pad + (-(-h // align) * align - h), pad + (-(-w // align) * align - w)
            with torch.no_grad():
                padded = net(torch.nn.functional.pad(x, (pad, right, pad, bottom)))[:, :, pad:pad + h, pad:pad + w]
        with rasterio.open(a.map) as src:
            ours = src.read(1).astype(np.int64)
        values = np.array([c["value"] for c in meta["classes"]["classes"]])
        logits = padded
        top2 = torch.topk(logits[0], 2, dim=0).values
        clear = (top2[0] - top2[1] > 1e-4).numpy()
        theirs = values[logits[0].argmax(0).numpy()]
        wrong = int(((ours != theirs) & clear).sum())
        report["map_pixels"] = int(ours.size)
        report["map_differences"] = int((ours != theirs).sum())
        if wrong:
            sys.exit(f"{wrong} pixels of the map differ from smp's argmax where smp's top two logits are apart")
    print(json.dumps(report))


def adapt(a):
    from segmentation_models_pytorch.encoders._utils import patch_first_conv
    import torchvision
    model = torchvision.models.resnet18()
    with torch.no_grad():
        model.conv1.weight.copy_(load_file(a.weights)["conv1.weight"])
    patch_first_conv(model, new_in_channels=a.bands, pretrained=True)
    save_file({"conv1.weight": model.conv1.weight.detach().contiguous()}, a.out)


def main():
    p = argparse.ArgumentParser()
    sub = p.add_subparsers(dest="command", required=True)
    s = sub.add_parser("save")
    s.add_argument("out")
    s.add_argument("--encoder", default="resnet18")
    s.add_argument("--bands", type=int, default=4)
    s.add_argument("--classes", type=int, default=3)
    s.add_argument("--decoder", default="256,128,64,32,16")
    s.add_argument("--seed", type=int, default=0)
    c = sub.add_parser("check")
    for flag in ["--original", "--bundle", "--raster", "--mean", "--std"]:
        c.add_argument(flag, required=True)
    c.add_argument("--logits")
    c.add_argument("--map")
    c.add_argument("--edges", choices=["stream", "windows"], default="stream")
    d = sub.add_parser("adapt")
    d.add_argument("weights")
    d.add_argument("--bands", type=int, required=True)
    d.add_argument("--out", required=True)
    a = p.parse_args()
    {"save": save, "check": check, "adapt": adapt}[a.command](a)


if __name__ == "__main__":
    main()
