"""A4 performance, side by side in one launch: `terraseg predict` against the PyTorch +
rasterio sliding-window peer (default, and tuned: channels_last + jemalloc), same bundle,
window grid and margin, on a mosaic of real data (landsat-large repeated to SIZE²).

    swift build -c release --product terraseg
    Benchmarks/.venv/bin/python Benchmarks/compare_predict.py --model BUNDLE [--size 4000] [--tile 512] [--repeat 3]
        [--input SCENE] [--blend centre|stream] [--peers default tuned whole-scene]

Peers: `default` and `tuned` are sliding windows, which read zeros beyond the scene out to the
margin (the equal reference of `--blend centre`); `whole-scene` is smp's `model(scene)` in one
tensor (`pytorch_predict.py --whole-scene`), the equal reference of `--blend stream`. Each
peer's map is compared with TerraSeg's (pixels equal, of the pixels valid in both).
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
JEMALLOC = "/usr/lib/x86_64-linux-gnu/libjemalloc.so.2"
# peer: (pytorch_predict.py flags, library preloaded)
PEERS = {"default": ([], None), "tuned": (["--channels-last"], JEMALLOC), "whole-scene": (["--whole-scene"], None)}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", required=True)
    ap.add_argument("--size", type=int, default=4000)
    ap.add_argument("--tile", type=int, default=512)
    ap.add_argument("--batch-size", type=int, default=2)
    ap.add_argument("--blend", default="centre", help="TerraSeg's blend: centre (the peer's window grid) or stream")
    ap.add_argument("--repeat", type=int, default=1, help="interleaved rounds; the fastest of each side is compared")
    ap.add_argument("--bin", default=str(ROOT / ".build" / "release" / "terraseg"))
    ap.add_argument("--input", help="scene to map (default: the SIZE² mosaic of landsat-large, made here)")
    ap.add_argument("--peers", nargs="+", default=["default", "tuned"], choices=list(PEERS))
    a = ap.parse_args()
    a.model = str(pathlib.Path(a.model).resolve())
    out = HERE / "out" / "predict"
    out.mkdir(parents=True, exist_ok=True)
    vrt = pathlib.Path(a.input).resolve() if a.input else out / f"mosaic{a.size}.vrt"
    if not a.input:
        subprocess.run([sys.executable, str(HERE / "make_mosaic_vrt.py"), str(ROOT.parent / "shared/data/landsat-large/landsat.tif"),
                        str(vrt), "--size", str(a.size)], check=True, capture_output=True)
    meta = json.loads((pathlib.Path(a.model) / "model.json").read_text())
    margin = meta["receptive_field"] // 2
    env = dict(os.environ, TERRASEG_THREADS="2", OMP_NUM_THREADS="2")
    import rasterio
    with rasterio.open(vrt) as src:
        megapixels = src.width * src.height / 1e6
    results = {}
    peers = [(f"pytorch {p}", *PEERS[p]) for p in a.peers]
    runs = {"terraseg": [], **{name: [] for name, _, _ in peers}}

    def run_terraseg():
        start = time.time()
        r = subprocess.run(["/usr/bin/time", "-f", "%M", a.bin, "predict", "--model", a.model, "--input", str(vrt),
                            "--output", str(out / "terraseg"), "--tile", str(a.tile), "--batch-size", str(a.batch_size),
                            "--blend", a.blend, "--overwrite"], check=True, capture_output=True, text=True, env=env)
        seconds = time.time() - start
        rss = int(r.stderr.strip().splitlines()[-1]) / 1024  # /usr/bin/time's %M, KB
        return {"seconds": seconds, "megapixels_per_s": megapixels / seconds, "peak_rss_mb": rss}

    def run_peer(name, extra, preload):
        e = dict(env)
        if preload and os.path.exists(preload):
            e["LD_PRELOAD"] = preload
        r = subprocess.run([sys.executable, str(HERE / "pytorch_predict.py"), "--model", a.model, "--input", str(vrt),
                            "--output", str(out / f"{name.replace(' ', '_')}.tif"), "--tile", str(a.tile), "--margin", str(margin), *extra],
                           check=True, capture_output=True, text=True, env=e, cwd=HERE)
        return json.loads(r.stdout.strip().splitlines()[-1])

    # Rounds interleave the three, so a slow spell of a shared machine hits all of them; each
    # side's fastest round is reported (and every round is kept in the JSON).
    for round_ in range(a.repeat):
        runs["terraseg"].append(run_terraseg())
        print(f"round {round_ + 1} terraseg", json.dumps(runs["terraseg"][-1]), flush=True)
        for name, extra, preload in peers:
            runs[name].append(run_peer(name, extra, preload))
            print(f"round {round_ + 1} {name}", json.dumps(runs[name][-1]), flush=True)
    for name, rs in runs.items():
        results[name] = max(rs, key=lambda r: r["megapixels_per_s"])
    results["rounds"] = runs
    ts = results["terraseg"]["megapixels_per_s"]
    ours = out / "terraseg" / (vrt.stem + "_map.tif")
    print(f"\nTerraSeg ({a.blend}) {ts:.3f} MP/s, peak RSS {results['terraseg']['peak_rss_mb']:.0f} MB")
    for name, _, _ in peers:
        results[f"ratio vs {name}"] = ts / results[name]["megapixels_per_s"]
        results[f"maps equal vs {name}"] = equal, total = map_equality(ours, out / f"{name.replace(' ', '_')}.tif")
        print(f"  {name}: {results[name]['megapixels_per_s']:.3f} MP/s, peak RSS {results[name]['peak_rss_mb']:.0f} MB, "
              f"TerraSeg ×{results[f'ratio vs {name}']:.2f}; maps equal on {equal} of {total} pixels ({100 * equal / max(1, total):.5f} %)")
    (out / f"compare-{pathlib.Path(a.model).name}.json").write_text(json.dumps(results, indent=2))


def map_equality(ours, theirs):
    """(pixels of equal class, pixels valid in both maps)."""
    import numpy as np
    import rasterio
    with rasterio.open(ours) as a, rasterio.open(theirs) as b:
        x, y = a.read(1), b.read(1)
        valid = np.ones(x.shape, bool)
        for m, src in ((x, a), (y, b)):
            if src.nodata is not None:
                valid &= m != src.nodata
    return int(((x == y) & valid).sum()), int(valid.sum())


if __name__ == "__main__":
    main()
