#!/usr/bin/env bash
# Creates Benchmarks/.venv with PyTorch (CPU) from PyPI for the side-by-side benchmark and
# for regenerating the engine's PyTorch fixtures. CI never needs it.
set -euo pipefail
cd "$(dirname "$0")"
python3 -m venv .venv
.venv/bin/pip install --upgrade pip >/dev/null
# Prefer the CPU-only build when the PyTorch index is reachable; PyPI's default wheel works too.
.venv/bin/pip install torch numpy safetensors rasterio
# smp's Unet for the ResNet U-Net comparisons and import/export tests (Tests/Fixtures/smp).
.venv/bin/pip install segmentation-models-pytorch==0.6.0
# STAC Item validation (validate_stac.py; pystac ships the core STAC schemas, read offline).
.venv/bin/pip install "pystac[validation]"
# jemalloc for the "tuned PyTorch" configuration (LD_PRELOAD), when apt is available.
if ! ls /usr/lib/x86_64-linux-gnu/libjemalloc.so.2 >/dev/null 2>&1; then
    (apt-get install -y libjemalloc2 >/dev/null 2>&1 || true)
fi
.venv/bin/python -c "import torch; print('torch', torch.__version__, 'threads', torch.get_num_threads())"
