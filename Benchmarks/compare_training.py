"""A3 acceptance, side by side in one launch: TerraSeg and PyTorch train the same network
(U-Net 16-32-64 or the dilated CNN) with the same loss, optimiser, schedule, augmentation,
patches and epochs on nc-landsat7 (top 60 % trains, bottom 40 % validates), over several
seeds; prints each run and the averages (best validation mIoU, wall time) and the ratio.

    swift build -c release --product terraseg
    Benchmarks/setup.sh                                   # once: venv with PyTorch
    Benchmarks/.venv/bin/python Benchmarks/compare_training.py --model unet --seeds 1 2 3
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys

HERE = pathlib.Path(__file__).resolve().parent
ROOT = HERE.parent
DATA = ROOT.parent / "shared" / "data" / "nc-landsat7"
CLASSES = "1=developed,2=agriculture,3=herbaceous,4=shrubland,5=forest,6=water,7=sediment"
NAMES = CLASSES.replace("=", ",").split(",")[1::2]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="unet", choices=["unet", "dilated"])
    ap.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--bin", default=str(ROOT / ".build" / "release" / "terraseg"))
    ap.add_argument("--matched", action="store_true",
                    help="PyTorch starts from TerraSeg's initial weights and replays its batches and symmetries "
                         "(TERRASEG_TRACE_BATCHES): separates the engines from the luck of the random streams")
    a = ap.parse_args()
    out = HERE / "out" / f"train-{a.model}{'-matched' if a.matched else ''}"
    out.mkdir(parents=True, exist_ok=True)
    common = ["--image", str(DATA / "image_6band.tif"), "--labels", str(DATA / "labels_landclass96.tif"),
              "--classes", CLASSES, "--ignore", "0", "--model", a.model, "--widths", "16,32,64",
              "--epochs", str(a.epochs), "--batch-size", "16", "--patch-size", "64", "--stride", "32",
              "--split", "rows:0.6", "--loss", "focal+dice", "--optimizer", "adam", "--lr", "0.002",
              "--schedule", "cosine", "--warmup", "1"]
    patches = out / "patches.safetensors"
    subprocess.run([a.bin, "train", *common, "--output", str(out / "unused"), "--export-patches", str(patches)],
                   check=True, capture_output=True)
    env = dict(os.environ, TERRASEG_THREADS="2", OMP_NUM_THREADS="2")
    rows = []
    for seed in a.seeds:
        bundle = out / f"terraseg-seed{seed}"
        trace, init = out / f"trace-seed{seed}.jsonl", out / f"init-seed{seed}"
        run_env = dict(env, TERRASEG_TRACE_BATCHES=str(trace)) if a.matched else env
        subprocess.run([a.bin, "train", *common, "--seed", str(seed), "--output", str(bundle)], check=True,
                       capture_output=True, env=run_env)
        meta = json.loads((bundle / "model.json").read_text())
        m = meta["provenance"]["metrics"]
        rows.append({"framework": "terraseg", "seed": seed, "best_miou": m["mean_iou"], "overall_accuracy": m["overall_accuracy"],
                     "best_epoch": meta["provenance"]["best_epoch"], "wall_s": meta["provenance"]["wall_seconds"],
                     "per_class_iou": [m.get(f"iou/{n}", 0.0) for n in NAMES]})
        print(json.dumps(rows[-1]), flush=True)
        cmd = [sys.executable, str(HERE / "pytorch_train.py"), "--patches", str(patches), "--model", a.model,
               "--widths", "16", "32", "64", "--epochs", str(a.epochs), "--batch-size", "16", "--lr", "0.002",
               "--warmup", "1", "--seed", str(seed)]
        if a.matched:
            subprocess.run([a.bin, "train", *common, "--seed", str(seed), "--epochs", "0", "--output", str(init)],
                           check=True, capture_output=True)
            cmd += ["--init-bundle", str(init), "--replay", str(trace)]
        r = json.loads(subprocess.run(cmd, check=True, capture_output=True, text=True, env=env).stdout.strip().splitlines()[-1])
        rows.append(r)
        print(json.dumps(r), flush=True)

    def mean(fw, key):
        v = [r[key] for r in rows if r["framework"] == fw]
        return sum(v) / len(v)

    summary = {fw: {"mean_best_miou": mean(fw, "best_miou"), "mean_overall_accuracy": mean(fw, "overall_accuracy"),
                    "mean_wall_s": mean(fw, "wall_s"),
                    "mean_per_class_iou": dict(zip(NAMES, [sum(r["per_class_iou"][i] for r in rows if r["framework"] == fw) / len(a.seeds) for i in range(len(NAMES))]))}
               for fw in ("terraseg", "pytorch")}
    summary["miou_difference"] = summary["terraseg"]["mean_best_miou"] - summary["pytorch"]["mean_best_miou"]
    summary["wall_ratio_pytorch_over_terraseg"] = summary["pytorch"]["mean_wall_s"] / summary["terraseg"]["mean_wall_s"]
    (out / "summary.json").write_text(json.dumps({"runs": rows, "summary": summary}, indent=2))
    print(f"\n{a.model}: mean best validation mIoU  TerraSeg {summary['terraseg']['mean_best_miou']:.3f}  "
          f"PyTorch {summary['pytorch']['mean_best_miou']:.3f}  (difference {summary['miou_difference']:+.3f})")
    print(f"{a.model}: mean wall time  TerraSeg {summary['terraseg']['mean_wall_s']:.1f} s  PyTorch {summary['pytorch']['mean_wall_s']:.1f} s  "
          f"(PyTorch / TerraSeg = {summary['wall_ratio_pytorch_over_terraseg']:.2f})")


if __name__ == "__main__":
    main()
