#!/bin/bash
# A/B of `predict --blend stream` between two builds on one scene: MP/s as predict reports it,
# wall seconds and peak RSS (KB, /usr/bin/time), and with perf installed CPU time (task-clock ms)
# and page faults, which a loaded machine disturbs less than wall time. Compare within one launch (shared VM).
#   Benchmarks/stream_rss_ab.sh BIN_A BIN_B SCENE BUNDLE...
set -eu
A=$1; B=$2; SCENE=$3; shift 3
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
PERF=$(command -v perf > /dev/null && echo "perf stat -e task-clock,page-faults -x, -o $OUT/stat" || true)
name=$(basename "$SCENE")
echo "start $(uptime)"
for model in "$@"; do
  for bin in "$A" "$B"; do
    $PERF /usr/bin/time -o "$OUT/time" -f "%e %M" "$bin/terraseg" predict --model "$model" --input "$SCENE" --output "$OUT/maps" --overwrite --blend stream > "$OUT/log" 2>&1
    stat=$([ -n "$PERF" ] && echo ", task-clock ms / page faults: $(grep -v '^#' "$OUT/stat" | cut -d, -f1 | xargs)" || true)
    echo "$model $bin $(grep "$name  written" "$OUT/log" | awk '{print $5}') MP/s, wall s / peak KB: $(cat "$OUT/time")$stat"
  done
done
echo "end $(uptime)"
