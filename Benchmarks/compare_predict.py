"""A4 performance, side by side in one launch: `terraseg predict` against the PyTorch +
rasterio sliding-window peer (default, and tuned: channels_last + jemalloc), same bundle,
window grid and margin, on a mosaic of real data (landsat-large repeated to SIZE²).

    swift build -c release --product terraseg
    Benchmarks/.venv/bin/python Benchmarks/compare_predict.py --model BUNDLE [--size 4000] [--tile 512]
"""
import argparse
import json
import os
import pathlib
import resource
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--bin", default=str(ROOT / ".build" / "release" / "terraseg"))
    a = ap.parse_args()
    a.model = str(pathlib.Path(a.model).resolve())
    out = HERE / "out" / "predict"
    out.mkdir(parents=True, exist_ok=True)
    vrt = out / f"mosaic{a.size}.vrt"
    subprocess.run([sys.executable, str(HERE / "make_mosaic_vrt.py"), str(ROOT.parent / "shared/data/landsat-large/landsat.tif"),
                    str(vrt), "--size", str(a.size)], check=True, capture_output=True)
    meta = json.loads((pathlib.Path(a.model) / "model.json").read_text())
    margin = meta["receptive_field"] // 2
    env = dict(os.environ, TERRASEG_THREADS="2", OMP_NUM_THREADS="2")
    results = {}
    # TerraSeg (wall time of the whole command, peak RSS from the child).
    t0 = time.time()
    subprocess.run(["/usr/bin/time", "-f", "%M", a.bin, "predict", "--model", a.model, "--input", str(vrt), "--output", str(out / "terraseg"),
                    "--tile", str(a.tile), "--batch-size", str(a.batch_size), "--overwrite"], check=True, capture_output=True, env=env)
    seconds = time.time() - t0
    rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    results["terraseg"] = {"seconds": seconds, "megapixels_per_s": a.size * a.size / 1e6 / seconds, "peak_rss_mb": rss}
    print("terraseg", json.dumps(results["terraseg"]), flush=True)
    for name, extra, preload in [("pytorch default", [], None), ("pytorch tuned", ["--channels-last"], JEMALLOC)]:
        e = dict(env)
        if preload and os.path.exists(preload):
            e["LD_PRELOAD"] = preload
        r = subprocess.run([sys.executable, str(HERE / "pytorch_predict.py"), "--model", a.model, "--input", str(vrt),
                            "--output", str(out / f"{name.replace(' ', '_')}.tif"), "--tile", str(a.tile), "--margin", str(margin), *extra],
                           check=True, capture_output=True, text=True, env=e, cwd=HERE)
        results[name] = json.loads(r.stdout.strip().splitlines()[-1])
        print(name, json.dumps(results[name]), flush=True)
    ts = results["terraseg"]["megapixels_per_s"]
    for name in ("pytorch default", "pytorch tuned"):
        results[f"ratio vs {name}"] = ts / results[name]["megapixels_per_s"]
    (out / f"compare-{pathlib.Path(a.model).name}.json").write_text(json.dumps(results, indent=2))
    print(f"\nTerraSeg {ts:.3f} MP/s; ×{results['ratio vs pytorch default']:.2f} PyTorch default, ×{results['ratio vs pytorch tuned']:.2f} PyTorch tuned")


if __name__ == "__main__":
    main()
