"""Fixtures that hold TerraSeg's ResNet U-Net to segmentation_models_pytorch 0.6's `Unet`.

    Benchmarks/.venv/bin/python Benchmarks/smp_fixtures.py     # writes Tests/Fixtures/smp/

Weights, input and the loss's upstream gradient come from a formula that the Swift tests
(Tests/ModelsTests/ResNetUNetSMPTests.swift) reproduce bit for bit, so only results are stored:

- value stream of a tensor: splitmix64 seeded with FNV-1a 64 of its state-dict name (or of
  "input" / "dlogits"); element e (row-major) is u = (z_e >> 40) · 2^-24 in float32, z_e the
  (e+1)-th output;
- convolution weight and bias: (2u − 1) · sqrt(6 / fan_in); batch-norm weight 0.5 + 0.5·u, bias
  1 + 0.5·u, running_mean 0.1·(2u − 1), running_var 0.5 + u; input and dlogits 2u − 1.

Per configuration, <encoder>-<bands>b-os<stride>.safetensors holds `logits_eval` (eval mode), and
for one training step (train-mode batch norm, loss = sum(logits · dlogits)) `logits_train_samples`,
`grad_norms` (one per parameter, in state-dict order without buffers) and `grad_samples`
(elements 0, n/3, 2n/3, n − 1 of each). names-<encoder>.txt lists smp's whole state dict
(name and shape, 4 bands, 3 classes).
"""
import pathlib

import numpy as np
import segmentation_models_pytorch as smp
import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "smp"
BATCH, SIZE, CLASSES = 2, 64, 3
CONFIGURATIONS = [("resnet18", 4, 32), ("resnet18", 6, 32), ("resnet34", 4, 32), ("resnet34", 6, 32), ("resnet18", 4, 16), ("resnet50", 4, 32)]


def fnv1a(text):
    h = 0xCBF29CE484222325
    for b in text.encode():
        h = ((h ^ b) * 0x100000001B3) & 0xFFFFFFFFFFFFFFFF
    return h


def uniform(name, n):
    """u in [0, 1) (float32, 24 bits) of splitmix64 seeded with fnv1a(name), n values."""
    k = np.arange(1, n + 1, dtype=np.uint64)
    with np.errstate(over="ignore"):
        z = np.uint64(fnv1a(name)) + k * np.uint64(0x9E3779B97F4A7C15)
        z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
        z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
        z = z ^ (z >> np.uint64(31))
    return (z >> np.uint64(40)).astype(np.float32) * np.float32(2.0 ** -24)


def signed(name, n):
    return np.float32(2) * uniform(name, n) - np.float32(1)


def value(name, shape, fan_in):
    n = int(np.prod(shape)) if shape else 1
    u = uniform(name, n)
    if name.endswith("running_mean"):
        v = np.float32(0.1) * (np.float32(2) * u - np.float32(1))
    elif name.endswith("running_var"):
        v = np.float32(0.5) + u
    elif fan_in is not None:  # convolution weight or bias
        v = (np.float32(2) * u - np.float32(1)) * np.sqrt(np.float32(6) / np.float32(fan_in))
    elif name.endswith("weight"):
        v = np.float32(0.5) + np.float32(0.5) * u
    else:  # batch-norm bias: positive, so few ReLU inputs sit near their kink (see below)
        v = np.float32(1) + np.float32(0.5) * u
    return torch.from_numpy(v.astype(np.float32).reshape(shape))


def build(encoder, bands, stride):
    net = smp.Unet(encoder_name=encoder, encoder_weights=None, in_channels=bands, classes=CLASSES, output_stride=stride)
    convs = {n + ".weight": m for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d)}
    convs.update({n + ".bias": m for n, m in net.named_modules() if isinstance(m, torch.nn.Conv2d) and m.bias is not None})
    state = {}
    for name, t in net.state_dict().items():
        if name.endswith("num_batches_tracked"):
            state[name] = t
            continue
        m = convs.get(name)
        fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1] if m is not None else None
        state[name] = value(name, list(t.shape), fan_in)
    net.load_state_dict(state, strict=True)
    return net


def fixture(encoder, bands, stride):
    net = build(encoder, bands, stride)
    x = torch.from_numpy(signed("input", BATCH * bands * SIZE * SIZE).reshape(BATCH, bands, SIZE, SIZE))
    w = torch.from_numpy(signed("dlogits", BATCH * CLASSES * SIZE * SIZE).reshape(BATCH, CLASSES, SIZE, SIZE))
    net.eval()
    with torch.no_grad():
        eval_logits = net(x).contiguous()
    net.train()
    logits = net(x)
    (logits * w).sum().backward()
    params = [(n, p) for n, p in net.named_parameters()]
    norms = torch.tensor([p.grad.double().norm().item() for _, p in params], dtype=torch.float32)
    samples = torch.stack([p.grad.flatten()[[0, p.numel() // 3, 2 * p.numel() // 3, p.numel() - 1]] for _, p in params]).float()
    flat = logits.detach().flatten()
    return {
        "logits_eval": eval_logits,
        "logits_train_samples": flat[:: 97].contiguous(),
        "grad_norms": norms,
        "grad_samples": samples.contiguous(),
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(4)
    for encoder in ["resnet18", "resnet34", "resnet50"]:
        net = smp.Unet(encoder_name=encoder, encoder_weights=None, in_channels=4, classes=CLASSES)
        (OUT / f"names-{encoder}.txt").write_text("".join(f"{n} {','.join(map(str, t.shape))}\n" for n, t in net.state_dict().items()))
    for encoder, bands, stride in CONFIGURATIONS:
        name = f"{encoder}-{bands}b-os{stride}"
        save_file(fixture(encoder, bands, stride), str(OUT / f"{name}.safetensors"))
        print("wrote", name)


if __name__ == "__main__":
    main()
