"""Fixtures that hold TerraSeg's ResNet U-Net to segmentation_models_pytorch 0.6's `Unet`.

    Benchmarks/.venv/bin/python Benchmarks/smp_fixtures.py     # writes Tests/Fixtures/smp/

Weights, input and the loss's upstream gradient come from a formula that the Swift tests
(Tests/ModelsTests/ResNetUNetSMPTests.swift) reproduce bit for bit, so only results are stored:

- value stream of a tensor: splitmix64 seeded with FNV-1a 64 of its state-dict name (or of
  "input" / "dlogits"); element e (row-major) is u = (z_e >> 40) · 2^-24 in float32, z_e the
  (e+1)-th output;
- convolution weight and bias: (2u − 1) · sqrt(6 / fan_in); batch-norm weight 0.5 + 0.5·u, bias
  1 + 0.5·u, running_mean 0.1·(2u − 1), running_var 0.5 + u; input and dlogits 2u − 1.

The input is the first of the streams "input", "input/1", … whose training step takes no
branch (ReLU sign, max-pooling winner) that float32 rounding flips: smp run in float32 must give
every gradient within 1e-4 of float64 (`float32_rounding_effect`); the stream is stored in the
metadata (`input_stream`). Near such a branch the gradient is discontinuous, and a float32 result
may differ from the exact one by 1e-2 (one ReLU of 128 values of layer2 flipped), whoever computes it.

smp computes in float64 (the float32 values above, `model.double()`), so the reference carries
no rounding of its own and a comparison measures TerraSeg's float32 error alone.

Per configuration, <encoder>-<bands>b-os<stride>.safetensors holds `logits_eval` (eval mode), and
for one training step (train-mode batch norm, loss = sum(logits · dlogits)) `logits_train_samples`,
`grad_norms` (one per parameter, in state-dict order without buffers) and `grad_projections`
(P × 16): projection j of parameter p's gradient g is sum over elements e ≡ j (mod 16) of
v_e · g_e, v = 2u − 1 of the stream "projection/<name>". For a difference d of two gradients,
sum_j (projection_j of d)² / mean(v²) estimates |d|² (unbiased, 16 degrees of freedom; exact
element by element when the tensor has at most 16 elements), so the test holds each tensor's
whole gradient, not only its norm. names-<encoder>.txt lists smp's whole state dict (name and
shape, 4 bands, 3 classes).
"""
import pathlib

import numpy as np
import segmentation_models_pytorch as smp
import torch
from safetensors.torch import save_file

OUT = pathlib.Path(__file__).resolve().parent.parent / "Tests" / "Fixtures" / "smp"
BATCH, SIZE, CLASSES = 2, 64, 3
PROJECTIONS = 16
ATTEMPTS, BRANCH_FREE = 20, 1e-4
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
    return net.double()


def step(net, x, w):
    """One training step's logits and parameter gradients (train-mode batch norm)."""
    net.zero_grad(set_to_none=True)
    net.train()
    logits = net(x)
    (logits * w).sum().backward()
    return logits.detach(), [(n, p.grad.clone()) for n, p in net.named_parameters()]


def largest_rounding_effect(net, x, w, grads):
    """Largest |g32 − g64| / |g64| over the tensors when smp itself runs in float32: above float
    rounding (~1e-5) only where a ReLU input or a max-pooling window's top two sit within float32
    rounding of each other, so float32 and float64 take different branches."""
    _, g32 = step(net.float(), x.float(), w.float())
    net.double()
    return max(((a.double() - b).norm() / b.norm().clamp_min(1e-30)).item() for (_, a), (_, b) in zip(g32, grads))


def fixture(encoder, bands, stride):
    net = build(encoder, bands, stride)
    w = torch.from_numpy(signed("dlogits", BATCH * CLASSES * SIZE * SIZE).reshape(BATCH, CLASSES, SIZE, SIZE)).double()
    # A gradient is continuous only away from ReLU kinks and max-pooling ties: the input is the
    # first stream ("input", "input/1", …) whose step takes no branch that float32 rounding flips.
    for attempt in range(ATTEMPTS):
        stream = "input" if attempt == 0 else f"input/{attempt}"
        x = torch.from_numpy(signed(stream, BATCH * bands * SIZE * SIZE).reshape(BATCH, bands, SIZE, SIZE)).double()
        logits, grads = step(net, x, w)
        effect = largest_rounding_effect(net, x, w, grads)
        print(f"  {stream}: float32 rounding changes a gradient by {effect:.2e}", flush=True)
        if effect < BRANCH_FREE:
            break
    else:
        raise SystemExit(f"no input stream of {ATTEMPTS} is free of flipped branches")
    fresh = build(encoder, bands, stride).eval()  # the running statistics of the formula
    with torch.no_grad():
        eval_logits = fresh(x).contiguous()
    params = grads
    norms = torch.tensor([g.norm().item() for _, g in params], dtype=torch.float32)
    projections = torch.stack([projection(n, g) for n, g in params]).float()
    flat = logits.flatten()
    return {
        "logits_eval": eval_logits.float(),
        "logits_train_samples": flat[:: 97].float().contiguous(),
        "grad_norms": norms,
        "grad_projections": projections.contiguous(),
    }, {"input_stream": stream, "float32_rounding_effect": f"{effect:.2e}"}


def projection(name, grad):
    """PROJECTIONS sums of v_e · g_e over the elements e ≡ j (mod PROJECTIONS), in float64."""
    g = grad.flatten()
    v = torch.from_numpy(signed("projection/" + name, g.numel())).double()
    terms = torch.zeros(-(-g.numel() // PROJECTIONS) * PROJECTIONS, dtype=torch.float64)
    terms[: g.numel()] = v * g
    return terms.reshape(-1, PROJECTIONS).sum(0)


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(4)
    for encoder in ["resnet18", "resnet34", "resnet50"]:
        net = smp.Unet(encoder_name=encoder, encoder_weights=None, in_channels=4, classes=CLASSES)
        (OUT / f"names-{encoder}.txt").write_text("".join(f"{n} {','.join(map(str, t.shape))}\n" for n, t in net.state_dict().items()))
    for encoder, bands, stride in CONFIGURATIONS:
        name = f"{encoder}-{bands}b-os{stride}"
        tensors, metadata = fixture(encoder, bands, stride)
        save_file(tensors, str(OUT / f"{name}.safetensors"), metadata=metadata)
        print("wrote", name)


if __name__ == "__main__":
    main()
