"""Measures TerraSeg and PyTorch on R1 in one launch, on the same machine, and prints ratios.

    Benchmarks/setup.sh                       # once: venv with PyTorch, jemalloc
    Benchmarks/.venv/bin/python Benchmarks/compare.py [--steps 3] [--modes train infer]
        [--bench PATH_TO_terraseg-bench] [--upsample bilinear|nails]

PyTorch runs in three setups: default (NCHW, glibc malloc), channels_last, and tuned
(channels_last + jemalloc preloaded). Results also go to Benchmarks/out/compare.json.
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def run_json(cmd, env=None):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=3)
    ap.add_argument("--batch", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--modes", nargs="+", default=["train", "infer"])
    ap.add_argument("--upsample", default="bilinear")
    ap.add_argument("--bench", help="terraseg-bench binary (default: build it in release)")
    a = ap.parse_args()
    bench = a.bench
    if not bench:
        subprocess.run(["swift", "build", "-c", "release", "--product", "terraseg-bench"], cwd=ROOT, check=True)
        bin_dir = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.strip()
        bench = os.path.join(bin_dir, "terraseg-bench")
    common = ["--batch", str(a.batch), "--steps", str(a.steps), "--upsample", a.upsample]
    env = dict(os.environ, TERRASEG_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    tuned_env = dict(env, LD_PRELOAD=JEMALLOC) if os.path.exists(JEMALLOC) else None
    results = []
    for mode in a.modes:
        ours = run_json([bench, "r1", "--mode", mode, "--json"] + common, env)
        torch_cmd = [sys.executable, str(HERE / "pytorch_r1.py"), "--mode", mode, "--json",
                     "--threads", str(a.threads)] + common
        setups = {"default": run_json(torch_cmd, env), "channels_last": run_json(torch_cmd + ["--channels-last"], env)}
        if tuned_env:
            setups["tuned"] = run_json(torch_cmd + ["--channels-last"], tuned_env)
        metric = "images_per_s" if mode == "train" else "megapixels_per_s"
        print(f"\nR1 {a.upsample} {mode}, batch {a.batch}, {a.threads} threads ({metric})")
        print(f"  TerraSeg          {ours[metric]:8.3f}   {ours['gflops']:6.1f} GFLOP/s   step {ours['step_s']:.3f} s   "
              f"peak RSS {ours['peak_rss_mb']:.0f} MB")
        for name, r in setups.items():
            print(f"  PyTorch {name:13} {r[metric]:8.3f}   {r['gflops']:6.1f} GFLOP/s   step {r['step_s']:.3f} s   "
                  f"peak RSS {r['peak_rss_mb']:.0f} MB   TerraSeg/PyTorch = {ours[metric] / r[metric]:.2f}x")
        results.append({"mode": mode, "terraseg": ours, "pytorch": setups})
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "compare.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
