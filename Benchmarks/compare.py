"""Measures TerraSeg and PyTorch on R1 in one launch, on the same machine, and prints ratios.

    Benchmarks/setup.sh                       # once: venv with PyTorch, jemalloc
    Benchmarks/.venv/bin/python Benchmarks/compare.py [--steps 3] [--modes train infer]
        [--bench PATH_TO_terraseg-bench] [--upsample bilinear|nails] [--encoder resnet34] [--rounds 3]

`--encoder resnet34`: smp's Unet (4 bands, 6 classes) instead of R1, in TerraSeg and smp.
`--rounds N`: N interleaved rounds (TerraSeg, then each PyTorch setup), so a slow spell of a
shared machine hits all; medians, the spread (min–max) and the ratio of medians.

PyTorch runs in three setups: default (NCHW, glibc malloc), channels_last, and tuned
(channels_last + jemalloc preloaded). Results also go to Benchmarks/out/compare.json.
"""
import argparse
import json
import os
import pathlib
import statistics
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
    ap.add_argument("--encoder", choices=["resnet18", "resnet34", "resnet50"], help="smp's Unet of this encoder instead of R1")
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--bench", help="terraseg-bench binary (default: build it in release)")
    a = ap.parse_args()
    bench = a.bench
    if not bench:
        subprocess.run(["swift", "build", "-c", "release", "--product", "terraseg-bench"], cwd=ROOT, check=True)
        bin_dir = subprocess.run(["swift", "build", "-c", "release", "--show-bin-path"], cwd=ROOT, check=True,
                                 capture_output=True, text=True).stdout.strip()
        bench = os.path.join(bin_dir, "terraseg-bench")
    common = ["--batch", str(a.batch), "--steps", str(a.steps), "--upsample", a.upsample, "--size", str(a.size)]
    common += ["--encoder", a.encoder] if a.encoder else []
    env = dict(os.environ, TERRASEG_THREADS=str(a.threads), OMP_NUM_THREADS=str(a.threads))
    tuned_env = dict(env, LD_PRELOAD=JEMALLOC) if os.path.exists(JEMALLOC) else None
    results = []
    network = f"{a.encoder} U-Net" if a.encoder else f"R1 {a.upsample}"
    for mode in a.modes:
        torch_cmd = [sys.executable, str(HERE / "pytorch_r1.py"), "--mode", mode, "--json",
                     "--threads", str(a.threads)] + common
        setups = {"TerraSeg": ([bench, "r1", "--mode", mode, "--json"] + common, env),
                  "PyTorch default": (torch_cmd, env), "PyTorch channels_last": (torch_cmd + ["--channels-last"], env)}
        if tuned_env:
            setups["PyTorch tuned"] = (torch_cmd + ["--channels-last"], tuned_env)
        rounds = {name: [] for name in setups}
        for r in range(a.rounds):
            for name, (cmd, e) in setups.items():
                rounds[name].append(run_json(cmd, e))
                print(f"{mode} round {r + 1} {name}: step {rounds[name][-1]['step_s']:.3f} s", flush=True)
        metric = "images_per_s" if mode == "train" else "megapixels_per_s"
        median = {name: statistics.median(x[metric] for x in rs) for name, rs in rounds.items()}
        print(f"\n{network} {mode}, batch {a.batch}, {a.size}², {a.threads} threads, {a.rounds} rounds ({metric}: median, min–max)")
        for name, rs in rounds.items():
            values = [x[metric] for x in rs]
            ratio = "" if name == "TerraSeg" else f"   TerraSeg/PyTorch = {median['TerraSeg'] / median[name]:.2f}x"
            print(f"  {name:22} {median[name]:8.3f}  ({min(values):.3f}–{max(values):.3f})   "
                  f"peak RSS {max(x['peak_rss_mb'] for x in rs):.0f} MB{ratio}")
        results.append({"mode": mode, "network": network, "medians": median, "rounds": rounds})
    out = HERE / "out"
    out.mkdir(exist_ok=True)
    (out / "compare.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main()
