#!/bin/bash
# bf16 training against fp32 (issue B5), one launch: R1 training steps in fp32 and with the
# per-layer bf16 choice (`--precision bf16`: per convolution the faster of bf16 and fp32,
# measured in the first step), in interleaved rounds, each run its own process so that each
# has its own peak RSS. Compare ratios within a round (shared machine).
#   Benchmarks/bf16_train_rounds.sh [ROUNDS=3] [STEPS=3] [more terraseg-bench r1 flags, e.g. --size 64]
# Prints per round and run: images/s, median step, first step (the choice's timing runs are in
# bf16's), peak RSS, the layers that chose bf16; then the medians over rounds and bf16 / fp32.
# Quiet 2-core Zen 4: about 2 minutes at the defaults. Needs `swift build -c release --product terraseg-bench`.
set -eu
BIN=${BIN:-.build/release}; ROUNDS=${1:-3}; STEPS=${2:-3}; shift $(( $# < 2 ? $# : 2 ))
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
echo "start $(uptime)"
for r in $(seq "$ROUNDS"); do
  for p in fp32 bf16; do
    "$BIN/terraseg-bench" r1 --mode train --batch 8 --steps "$STEPS" --precision $p "$@" --json | tail -1 > "$OUT/$r-$p.json"
  done
  python3 - "$OUT" "$r" <<'PY'
import json, sys
out, r = sys.argv[1], sys.argv[2]
runs = {p: json.load(open(f"{out}/{r}-{p}.json")) for p in ("fp32", "bf16")}
for p, j in runs.items():
    chose = f", bf16 in {len(j['bf16_layers'])} of {j['bf16_measured']}: {' '.join(j['bf16_layers']) or '-'}" if "bf16_layers" in j else ""
    print(f"round {r} {p}: {j['images_per_s']:.3f} images/s, median step {j['step_s']:.2f} s, first step {j['first_step_s']:.1f} s, "
          f"peak RSS {j['peak_rss_mb']:.0f} MB{chose}")
f, b = runs["fp32"], runs["bf16"]
print(f"round {r}: bf16 / fp32 images/s {b['images_per_s'] / f['images_per_s']:.2f}, peak RSS {b['peak_rss_mb'] - f['peak_rss_mb']:+.0f} MB")
PY
done
python3 - "$OUT" "$ROUNDS" <<'PY'
import json, statistics, sys
out, rounds = sys.argv[1], int(sys.argv[2])
runs = {p: [json.load(open(f"{out}/{r}-{p}.json")) for r in range(1, rounds + 1)] for p in ("fp32", "bf16")}
med = {p: {k: statistics.median(j[k] for j in js) for k in ("images_per_s", "peak_rss_mb")} for p, js in runs.items()}
ratios = sorted(b["images_per_s"] / f["images_per_s"] for f, b in zip(runs["fp32"], runs["bf16"]))
for p, m in med.items():
    print(f"median of {rounds} rounds {p}: {m['images_per_s']:.3f} images/s, peak RSS {m['peak_rss_mb']:.0f} MB")
print(f"bf16 / fp32: images/s {statistics.median(ratios):.2f} (rounds {ratios[0]:.2f}-{ratios[-1]:.2f}), "
      f"peak RSS {med['bf16']['peak_rss_mb'] - med['fp32']['peak_rss_mb']:+.0f} MB")
PY
echo "end $(uptime)"
