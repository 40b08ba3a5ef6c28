#!/bin/bash
# Interleaved rounds of the streaming comparison (issue B4), one launch: the batch bench
# (`terraseg-bench r1 --mode infer`), `predict --blend stream` and `--blend centre` on one
# mosaic, each round in turn, with peak RSS. Compare ratios within a round (shared VM).
#   Benchmarks/stream_rounds.sh BUNDLE MOSAIC.vrt [ROUNDS=3] [BENCH WIDTH FLAGS, e.g. --widths 8,16,32,64]
# Prints per round: bench MP/s, then per mode the MP/s `predict` reports, wall s and peak KB.
set -eu
BIN=${BIN:-.build/release}; BUNDLE=$1; MOSAIC=$2; ROUNDS=${3:-3}; shift $(( $# < 3 ? $# : 3 ))
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
name=$(basename "$MOSAIC")
echo "start $(uptime)"
for r in $(seq "$ROUNDS"); do
  b=$("$BIN/terraseg-bench" r1 --mode infer "$@" --batch 8 --steps 3 --json 2>&1 | tail -1 | grep -o '"megapixels_per_s": [0-9.]*' | cut -d' ' -f2)
  line="round $r bench $b"
  for m in stream centre; do
    /usr/bin/time -o "$OUT/time" -f "%e %M" "$BIN/terraseg" predict --model "$BUNDLE" --input "$MOSAIC" --output "$OUT/$m" --overwrite --blend $m > "$OUT/log" 2>&1
    line="$line $m $(grep "$name  written" "$OUT/log" | awk '{print $5}') $(tail -1 "$OUT/time")"
  done
  echo "$line" | awk '{printf "%s | stream/bench %.2f centre/bench %.2f stream/centre %.2f\n", $0, $6/$4, $10/$4, $6/$10}'
done
echo "end $(uptime)"
