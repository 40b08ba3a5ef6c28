"""Writes python_written.safetensors with Python's `safetensors` (run once; the output is committed).

    python3 -m venv /tmp/st && /tmp/st/bin/pip install safetensors numpy
    /tmp/st/bin/python Tests/Fixtures/safetensors/make_safetensors_fixture.py
"""
import os
import numpy as np
from safetensors.numpy import save_file

here = os.path.dirname(os.path.abspath(__file__))
save_file(
    {
        "enc1.conv1.weight": np.arange(6, dtype=np.float32).reshape(2, 3),
        "head.bias": np.array([1.5, -2.0, 3.25, 0.0], dtype=np.float32),
    },
    os.path.join(here, "python_written.safetensors"),
    metadata={"format": "terraseg-test"},
)
