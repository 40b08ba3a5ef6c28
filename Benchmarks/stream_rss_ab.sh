#!/bin/bash
# A/B of `predict --blend stream` between two builds on one scene: MP/s as predict reports it,
# wall seconds and peak RSS (KB, /usr/bin/time). Compare within one launch (shared VM).
#   Benchmarks/stream_rss_ab.sh BIN_A BIN_B SCENE BUNDLE...
set -eu
A=$1; B=$2; SCENE=$3; shift 3
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
name=$(basename "$SCENE")
echo "start $(uptime)"
for model in "$@"; do
  for bin in "$A" "$B"; do
    /usr/bin/time -o "$OUT/time" -f "%e %M" "$bin/terraseg" predict --model "$model" --input "$SCENE" --output "$OUT/maps" --overwrite --blend stream > "$OUT/log" 2>&1
    echo "$model $bin $(grep "$name  written" "$OUT/log" | awk '{print $5}') MP/s, wall s / peak KB: $(cat "$OUT/time")"
  done
done
echo "end $(uptime)"
