#!/bin/bash
# Where a streamed scene's time goes against the network's own speed (issue B4), interleaved
# rounds in one launch: the batch bench, the network's row stream alone over the same scene size
# (terraseg-bench --mode stream: no reading, no writing), and `terraseg predict` on the scene;
# at all threads and with TERRASEG_THREADS=1 (a core left for the reader and writer threads).
#   Benchmarks/stream_bound.sh BIN_DIR BUNDLE MOSAIC.vrt WIDTHS [ROUNDS=5]
# WIDTHS: the bundle's encoder widths for the bench (e.g. 8,16,32,64), or r1.
set -eu
BIN=$1; BUNDLE=$2; MOSAIC=$3; WIDTHS=$4; ROUNDS=${5:-5}
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
name=$(basename "$MOSAIC")
size=$(gdalinfo "$MOSAIC" | sed -n 's/^Size is \([0-9]*\), .*/\1/p')
net=(); [ "$WIDTHS" = r1 ] || net=(--widths "$WIDTHS")
mp() { grep -o '"megapixels_per_s": [0-9.]*' | cut -d' ' -f2; }
bench() { "$BIN/terraseg-bench" r1 --mode infer "${net[@]}" --batch 8 --steps 3 --json 2>&1 | tail -1 | mp; }
rows() { "$BIN/terraseg-bench" r1 --mode stream "${net[@]}" --size "$size" --steps 2 --json 2>&1 | tail -1 | mp; }
scene() { "$BIN/terraseg" predict --model "$BUNDLE" --input "$MOSAIC" --output "$OUT/maps" --overwrite 2>&1 | grep "$name  written" | awk '{print $5}'; }
ratio() { awk "BEGIN{printf \"%.2f\", $1/$2}"; }
echo "start $(date +%T) $(uptime)"
for r in $(seq "$ROUNDS"); do
  b=$(bench); s=$(rows); p=$(scene)
  b1=$(TERRASEG_THREADS=1 bench); p1=$(TERRASEG_THREADS=1 scene)
  echo "round $r all threads: bench $b rows alone $s ($(ratio "$s" "$b")) scene $p ($(ratio "$p" "$b")) | 1 thread: bench $b1 scene $p1 ($(ratio "$p1" "$b1"))"
done
echo "end $(date +%T) $(uptime)"
