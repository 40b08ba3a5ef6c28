"""Generates the PyTorch fixtures the engine tests compare against (run once; CI needs no PyTorch).

    Benchmarks/setup.sh && Benchmarks/.venv/bin/python Tests/EngineTests/Fixtures/make_fixtures.py

Writes small JSON files next to this script: inputs, parameters, upstream gradients and
PyTorch's outputs and gradients, all float32 values in NCHW order.
"""
import json
import pathlib

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
print("fixtures written with torch", torch.__version__)
