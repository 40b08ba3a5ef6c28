"""Generates the PyTorch fixtures the engine tests compare against (run once; CI needs no PyTorch).

    Benchmarks/setup.sh && Benchmarks/.venv/bin/python Tests/EngineTests/Fixtures/make_fixtures.py

Writes small JSON files next to this script: inputs, parameters, upstream gradients and
PyTorch's outputs and gradients, all float32 values in NCHW order. Also writes the U-Net
fixtures of the learned upsampling modes (Tests/Fixtures/unet/<mode>.safetensors, read by
ModelsTests): a tiny U-Net of Benchmarks/torch_models.py with TerraSeg's tensor names, its
input, logits (eval and training mode), an upstream gradient and some parameter gradients.
"""
import json
import pathlib
import sys
import tempfile

import torch

torch.manual_seed(20261121)
HERE = pathlib.Path(__file__).parent


def flat(t):
    return [float("%.9g" % v) for v in t.detach().reshape(-1).tolist()]


def write(name, obj):
    (HERE / name).write_text(json.dumps(obj, separators=(",", ":")) + "\n")


def conv_case(dilation):
    x = torch.randn(2, 3, 9, 9, requires_grad=True)
    conv = torch.nn.Conv2d(3, 4, 3, padding=dilation, dilation=dilation, bias=True)
    y = conv(x)
    dy = torch.randn_like(y)
    y.backward(dy)
    return {
        "dilation": dilation, "padding": dilation,
        "x_shape": list(x.shape), "w_shape": list(conv.weight.shape),
        "x": flat(x), "w": flat(conv.weight), "b": flat(conv.bias),
        "dy": flat(dy), "y": flat(y), "dx": flat(x.grad), "dw": flat(conv.weight.grad), "db": flat(conv.bias.grad),
    }


write("conv_dilated.json", {"cases": [conv_case(2), conv_case(4)]})

x = torch.randn(2, 4, 5, 5) * 2 + 0.5
x.requires_grad_(True)
bn = torch.nn.BatchNorm2d(4, eps=1e-5, momentum=0.1)
with torch.no_grad():
    bn.weight.copy_(torch.rand(4) + 0.5)
    bn.bias.copy_(torch.randn(4) * 0.1)
bn.train()
y = bn(x)
dy = torch.randn_like(y)
y.backward(dy)
write("batchnorm.json", {
    "x_shape": list(x.shape), "eps": 1e-5, "momentum": 0.1,
    "x": flat(x), "gamma": flat(bn.weight), "beta": flat(bn.bias), "dy": flat(dy),
    "y": flat(y), "dx": flat(x.grad), "dgamma": flat(bn.weight.grad), "dbeta": flat(bn.bias.grad),
    "running_mean": flat(bn.running_mean), "running_var": flat(bn.running_var),
})

x = torch.randn(2, 3, 4, 5, requires_grad=True)
y = torch.nn.functional.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
dy = torch.randn_like(y)
y.backward(dy)
write("bilinear.json", {"x_shape": list(x.shape), "x": flat(x), "dy": flat(dy), "y": flat(y), "dx": flat(x.grad)})


# U-Net with learned upsampling. Widths 8-16: level 1 (8 channels) concatenates in NCHW in
# TerraSeg, level 2 (16) in the blocked layout.
ROOT = HERE.parents[2]
sys.path.insert(0, str(ROOT / "Benchmarks"))
from safetensors.torch import save_file  # noqa: E402
from torch_models import UNet, load_bundle  # noqa: E402

UNET = {"input_channels": 3, "classes": 3, "widths": [8, 16], "bottleneck_width": 16, "bottleneck_dilations": [2]}
GRADIENTS = ["enc1.conv1.weight", "enc1.bn1.weight", "dec2.up.weight", "dec2.up.bias", "dec1.up.weight", "dec1.up.bias",
             "head.weight"]


def terraseg_name(name, levels):
    """PyTorch state-dict name → TerraSeg's (the inverse of torch_models.load_bundle); None to skip."""
    parts = name.split(".")
    if parts[-1] == "num_batches_tracked":
        return None
    if parts[0] == "head":
        return name
    if parts[0] == "up":
        return f"dec{levels - int(parts[1])}.up.{parts[2]}"
    kind = "conv" if int(parts[-2]) % 3 == 0 else "bn"
    unit = int(parts[-2]) // 3 + 1
    if parts[0] == "bottleneck":
        return f"bottleneck.{kind}{unit}.{parts[-1]}"
    level = int(parts[1]) + 1 if parts[0] == "enc" else levels - int(parts[1])
    return f"{parts[0]}{level}.{kind}{unit}.{parts[-1]}"


def unet_case(mode):
    torch.manual_seed(20261122)
    u = UNET
    net = UNet(u["input_channels"], u["classes"], u["widths"], u["bottleneck_dilations"], mode, u["bottleneck_width"])
    with torch.no_grad():  # batch norms away from their defaults, so every tensor's name matters
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.weight.copy_(torch.rand_like(m.weight) + 0.5)
                m.bias.copy_(torch.randn_like(m.bias) * 0.1)
                m.running_mean.copy_(torch.randn_like(m.running_mean) * 0.2)
                m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)
    levels = len(u["widths"])
    weights = {}
    for name, t in net.state_dict().items():
        if (ours := terraseg_name(name, levels)) is not None:
            weights[ours] = t.detach().clone().contiguous()
    # The names round-trip through load_bundle: a bundle of these weights builds the same network.
    with tempfile.TemporaryDirectory() as tmp:
        save_file(weights, f"{tmp}/model.safetensors")
        arch = {"kind": "unet", "unet": dict(u, upsampling=mode)}
        pathlib.Path(f"{tmp}/model.json").write_text(json.dumps({"architecture": arch}))
        loaded, _ = load_bundle(tmp)
    x = torch.randn(2, u["input_channels"], 12, 12)
    net.eval()
    with torch.no_grad():
        logits_eval = net(x)
        assert torch.equal(loaded(x), logits_eval), "load_bundle maps the names"
    net.train()
    logits = net(x)
    dlogits = torch.randn_like(logits)
    logits.backward(dlogits)
    params = {terraseg_name(n, levels): p for n, p in net.named_parameters()}
    out = dict(weights)
    out.update({"fixture.input": x, "fixture.logits_eval": logits_eval, "fixture.logits_train": logits.detach(),
                "fixture.dlogits": dlogits})
    for name in GRADIENTS:
        out[f"fixture.grad.{name}"] = params[name].grad.detach().clone()
    (ROOT / "Tests/Fixtures/unet").mkdir(exist_ok=True)
    save_file({k: v.contiguous() for k, v in out.items()}, str(ROOT / f"Tests/Fixtures/unet/{mode}.safetensors"),
              metadata={"torch": torch.__version__, "unet": json.dumps(u)})


for mode in ["transposed", "max-unpooling"]:
    unet_case(mode)
print("fixtures written with torch", torch.__version__)
