#!/bin/bash
# R1 inference across precisions beside PyTorch (issue B5), one launch, interleaved rounds:
# `terraseg-bench r1 --mode infer --int8` (TerraSeg fp32, int8 chained and bf16 in every unit,
# its own interleaved steps), then tuned PyTorch (channels_last + jemalloc) in fp32 and under
# torch.autocast("cpu", dtype=torch.bfloat16) (`pytorch_r1.py --bf16`). Batch 8, 256², 2 threads.
#   Benchmarks/precision_infer_rounds.sh [ROUNDS=3] [STEPS=5]      (SIZE=64 for a quick check)
# Prints per round each median step (s) and the speed ratios against TerraSeg fp32 and int8,
# then the medians over rounds. Quiet 2-core Zen 4: about 1.5 minutes at the defaults.
# Needs `swift build -c release --product terraseg-bench` and Benchmarks/.venv (setup.sh).
set -eu
BIN=${BIN:-.build/release}; ROUNDS=${1:-3}; STEPS=${2:-5}
PY=${PY:-Benchmarks/.venv/bin/python}; JEMALLOC=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2; SIZE=${SIZE:-256}
[ -x "$PY" ] || { echo "no $PY: run Benchmarks/setup.sh, or set PY to a Python with PyTorch" >&2; exit 1; }
[ -r "$JEMALLOC" ] || { echo "no $JEMALLOC: run Benchmarks/setup.sh (installs jemalloc)" >&2; exit 1; }
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
echo "start $(uptime)"
for r in $(seq "$ROUNDS"); do
  "$BIN/terraseg-bench" r1 --mode infer --int8 --batch 8 --size "$SIZE" --steps "$STEPS" > "$OUT/ts.log"
  for p in fp32 bf16; do
    LD_PRELOAD=$JEMALLOC "$PY" Benchmarks/pytorch_r1.py --mode infer --batch 8 --size "$SIZE" --steps "$STEPS" --threads 2 \
      --channels-last --json $([ $p = bf16 ] && echo --bf16) | tail -1 > "$OUT/pt-$p.json"
  done
  python3 - "$OUT" "$r" >> "$OUT/rounds" <<'PY'
import json, re, sys
out, r = sys.argv[1], sys.argv[2]
log = open(f"{out}/ts.log").read()
t = {name: float(re.search(rf"^{name}: median ([0-9.]+) s", log, re.M).group(1)) for name in ("fp32", "int8 chained", "bf16")}
for p in ("fp32", "bf16"):
    t[f"pytorch {p}"] = json.load(open(f"{out}/pt-{p}.json"))["step_s"]
print(json.dumps(t))
PY
  python3 - "$r" "$(tail -1 "$OUT/rounds")" <<'PY'
import json, sys
t = json.loads(sys.argv[2])
print(f"round {sys.argv[1]}: " + ", ".join(f"{k} {v:.3f} s" for k, v in t.items()))
print("  speed vs TerraSeg fp32: " + ", ".join(f"{k} {t['fp32'] / v:.2f}x" for k, v in t.items() if k != "fp32")
      + f"; TerraSeg int8 vs PyTorch fp32 {t['pytorch fp32'] / t['int8 chained']:.2f}x, vs PyTorch bf16 {t['pytorch bf16'] / t['int8 chained']:.2f}x")
PY
done
python3 - "$OUT/rounds" <<'PY'
import json, statistics, sys
rounds = [json.loads(l) for l in open(sys.argv[1])]
def ratio(a, b):
    v = sorted(x[a] / x[b] for x in rounds)
    return f"{statistics.median(v):.2f}x ({v[0]:.2f}-{v[-1]:.2f})"
print(f"medians over {len(rounds)} rounds (speed = time ratio, spread over rounds):")
for k in rounds[0]:
    if k != "fp32": print(f"  {k} vs TerraSeg fp32: {ratio('fp32', k)}")
print(f"  TerraSeg int8 vs PyTorch fp32: {ratio('pytorch fp32', 'int8 chained')}, vs PyTorch bf16: {ratio('pytorch bf16', 'int8 chained')}")
print(f"  TerraSeg bf16 vs PyTorch bf16: {ratio('pytorch bf16', 'bf16')}")
PY
echo "end $(uptime)"
