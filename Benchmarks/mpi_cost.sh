#!/usr/bin/env bash
# The cost of distribution (issue B6): 1 rank × 2 threads against 2 ranks × 1 thread (and
# 1 × 1, 2 × 1 with --sync-batchnorm, and 2 × 1 with one all-reduce after the backward pass
# instead of buckets during it), training the NC U-Net and R1 on nc-landsat7, and
# predicting 6 scenes. Release build: swift build -c release --product terraseg.
# Usage: Benchmarks/mpi_cost.sh [ROUNDS]   (data: $TERRASEG_SHARED_DATA or ../shared/data)
#        Benchmarks/mpi_cost.sh r1 [ROUNDS] [EPOCHS]   R1 only, longer (default 3 rounds of 5 epochs,
#        about 4 min on a quiet machine): 1 × 2 against 2 × 1 with all-reduce buckets of
#        TERRASEG_ALLREDUCE_BUCKET_KB = 0 (one after backward), 2048, 8192, 32768, in an order
#        that rotates each round (every 2 x 1 shape shards the optimiser step: gradients
#        reduce-scattered per bucket, weights all-gathered); per step: the training part of epochs 2.. (metrics.jsonl's
#        patches_per_second, so start-up, the first epoch's set-up and validation are left out).
#        Benchmarks/mpi_cost.sh unet [ROUNDS] [EPOCHS]   the NC U-Net (16-32-64) alike (default 3
#        rounds of 20 epochs, about 2 min quiet; buckets 0, 1024 (3 buckets of its 2.55 MB), 8192
#        (one)); start-up: wall minus the epochs' seconds (launch, reading the scene, the bundle).
#        TERRASEG_BIN=path runs another build (e.g. a baseline) with the same arguments.
set -u
ROOT=$(cd "$(dirname "$0")/.." && pwd)
B=${TERRASEG_BIN:-$ROOT/.build/release/terraseg}
D=${TERRASEG_SHARED_DATA:-$ROOT/../shared/data}/nc-landsat7
O=${TMPDIR:-/tmp}/terraseg-mpi-cost; rm -rf "$O"; mkdir -p "$O"
MPI=(mpirun --allow-run-as-root -np 2 -x TERRASEG_THREADS=1)
common=(--image $D/image_6band.tif --labels $D/labels_landclass96.tif --classes 1=developed,2=agriculture,3=herbaceous,4=shrubland,5=forest,6=water,7=sediment
        --ignore 0 --batch-size 16 --patch-size 64 --stride 32 --split rows:0.6 --loss focal+dice --optimizer adam --lr 0.002)
t() { local s=$(date +%s.%N); "$@" >/dev/null 2>"$O/last.err" || { echo "FAILED: $*" >&2; tail -3 "$O/last.err" >&2; }; echo "$(echo "$(date +%s.%N) - $s" | bc)"; }
if [ "${1:-}" = r1 ] || [ "${1:-}" = unet ]; then
  if [ "$1" = r1 ]; then
    name=R1; model=(r1); rounds=${2:-3}; epochs=${3:-5}; shapes=("1x2" "2x1:0" "2x1:2048" "2x1:8192" "2x1:32768")
  else
    name="U-Net 16-32-64"; model=(unet --widths 16,32,64); rounds=${2:-3}; epochs=${3:-20}; shapes=("1x2" "2x1:0" "2x1:1024" "2x1:8192")
  fi
  for round in $(seq 1 "$rounds"); do
    echo "round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
    for k in $(seq 0 $((${#shapes[@]} - 1))); do
      shape=${shapes[$(( (k + round - 1) % ${#shapes[@]} ))]}; out="$O/$1-$round-${shape/:/-}"
      if [ "$shape" = 1x2 ]; then
        w=$(TERRASEG_THREADS=2 t "$B" train "${common[@]}" --model "${model[@]}" --epochs "$epochs" --output "$out")
      else
        w=$(t "${MPI[@]}" -x TERRASEG_ALLREDUCE_BUCKET_KB=${shape#*:} "$B" train "${common[@]}" --model "${model[@]}" --epochs "$epochs" --output "$out")
      fi
      echo "$shape $round $w $out" >> "$O/$1-runs.txt"
      echo "  $shape: $w s"
    done
  done
  python3 - "$O/$1-runs.txt" "$name" <<'PY'
import json, statistics as st, sys
runs = {}
for line in open(sys.argv[1]):
    shape, rnd, wall, out = line.split()
    epochs = [json.loads(l) for l in open(out + "/metrics.jsonl")]
    steps = [16 / e["patches_per_second"] * 1000 for e in epochs[1:]]   # global batch 16
    start = float(wall) - sum(e["seconds"] for e in epochs)             # launch, data, bundle
    runs.setdefault(shape, []).append((float(wall), steps, open(out + "/model.safetensors", "rb").read(), start))
base = st.median(s for _, steps, _, _ in runs["1x2"] for s in steps)
print("%s, %d epoch(s) per run: ms per training step (epochs 2.., all rounds): median [min-max]; wall s per run: median; start-up: wall - epochs" % (sys.argv[2], len(runs["1x2"][0][1]) + 1))
for shape, rs in runs.items():
    steps = [s for _, ss, _, _ in rs for s in ss]
    same = "" if shape == "1x2" else ", weights %s 2x1:0's" % ("=" if all(w == r[2] for (_, _, w, _), r in zip(rs, runs["2x1:0"])) else "!=")
    print("  %-10s %6.1f [%5.1f-%5.1f] ms (%+5.1f %%)  wall %5.1f s, start-up %4.2f s%s" % (shape, st.median(steps), min(steps), max(steps),
          100 * (st.median(steps) / base - 1), st.median(w for w, _, _, _ in rs), st.median(s for _, _, _, s in rs), same))
PY
  exit 0
fi
for round in $(seq 1 "${1:-2}"); do
  echo "round $round, load $(cut -d' ' -f1-3 /proc/loadavg)"
  for model in "unet --widths 16,32,64:3" "r1:1"; do
    m=${model%:*}; ep=${model##*:}; n=${m%% *}
    a=$(TERRASEG_THREADS=2 t "$B" train "${common[@]}" --model $m --epochs $ep --output "$O/one-$round-$n")
    b=$(t "${MPI[@]}" "$B" train "${common[@]}" --model $m --epochs $ep --output "$O/two-$round-$n")
    c=$(TERRASEG_THREADS=1 t "$B" train "${common[@]}" --model $m --epochs $ep --output "$O/single-$round-$n")
    d=$(t "${MPI[@]}" "$B" train "${common[@]}" --model $m --epochs $ep --sync-batchnorm --output "$O/sync-$round-$n")
    # The gradients in one all-reduce after the backward pass instead of buckets during it.
    e=$(t "${MPI[@]}" -x TERRASEG_ALLREDUCE_BUCKET_KB=0 "$B" train "${common[@]}" --model $m --epochs $ep --output "$O/block-$round-$n")
    same=$(cmp -s "$O/two-$round-$n/model.safetensors" "$O/block-$round-$n/model.safetensors" && echo identical || echo DIFFERENT)
    echo "  train $n, $ep epoch(s): 1x2 $a s, 2x1 $b s, 1x1 $c s, 2x1 sync-batchnorm $d s, 2x1 one all-reduce after backward $e s (weights $same)"
  done
  scenes=(); for k in 1 2 3 4 5 6; do scenes+=(s$k=$D/image_6band.tif); done
  a=$(TERRASEG_THREADS=2 t "$B" predict --model "$O/one-1-unet" --input "${scenes[@]}" --output "$O/maps-one-$round")
  b=$(t "${MPI[@]}" "$B" predict --model "$O/one-1-unet" --input "${scenes[@]}" --output "$O/maps-two-$round")
  same=$(cmp -s "$O/maps-one-$round/s1_map.tif" "$O/maps-two-$round/s1_map.tif" && echo identical || echo DIFFERENT)
  echo "  predict 6 scenes (U-Net 16-32-64): 1x2 $a s, 2x1 $b s (maps $same)"
  # One scene: 2 ranks predict a band of rows each, rank 0 writes the map.
  a=$(TERRASEG_THREADS=2 t "$B" predict --model "$O/one-1-unet" --input s1=$D/image_6band.tif --output "$O/scene-one-$round")
  b=$(t "${MPI[@]}" "$B" predict --model "$O/one-1-unet" --input s1=$D/image_6band.tif --output "$O/scene-two-$round")
  same=$(cmp -s "$O/scene-one-$round/s1_map.tif" "$O/scene-two-$round/s1_map.tif" && echo identical || echo DIFFERENT)
  echo "  predict 1 scene (bands of rows on 2 ranks): 1x2 $a s, 2x1 $b s (maps $same)"
done
