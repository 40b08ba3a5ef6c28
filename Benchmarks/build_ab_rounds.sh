#!/bin/bash
# Two builds of TerraSeg side by side, interleaved in one launch (issue B4): per round and build,
# the batch bench and the streamed scene for a small U-Net bundle and an R1 bundle, with the
# stream / bench ratio and peak RSS; then the maps' checksums (equal when only speed changed).
#   Benchmarks/build_ab_rounds.sh OLD_BIN_DIR NEW_BIN_DIR SMALL_BUNDLE R1_BUNDLE MOSAIC.vrt [ROUNDS=3]
# The small bundle's widths are 8,16,32,64 (the bench is told so).
set -eu
OLD=$1; NEW=$2; SMALL=$3; R1=$4; MOSAIC=$5; ROUNDS=${6:-3}
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
name=$(basename "$MOSAIC")
mp() { grep -o '"megapixels_per_s": [0-9.]*' | cut -d' ' -f2; }
stream() {  # BIN BUNDLE DIR: MP/s as predict reports it; peak KB into $OUT/peak
  /usr/bin/time -o "$OUT/peak" -f "%M" "$1/terraseg" predict --model "$2" --input "$MOSAIC" --output "$3" --overwrite 2>&1 \
    | grep "$name  written" | awk '{print $5}'
}
echo "start $(date +%T) $(uptime)"
for r in $(seq "$ROUNDS"); do
  for B in "$OLD" "$NEW"; do
    tag=$([ "$B" = "$OLD" ] && echo old || echo new)
    bs=$("$B/terraseg-bench" r1 --mode infer --widths 8,16,32,64 --batch 8 --steps 3 --json 2>&1 | tail -1 | mp)
    ss=$(stream "$B" "$SMALL" "$OUT/small-$tag"); rs=$(cat "$OUT/peak")
    br=$("$B/terraseg-bench" r1 --mode infer --batch 8 --steps 3 --json 2>&1 | tail -1 | mp)
    sr=$(stream "$B" "$R1" "$OUT/r1-$tag"); rr=$(cat "$OUT/peak")
    echo "round $r $tag small bench $bs stream $ss ($(awk "BEGIN{printf \"%.2f\", $ss/$bs}")) ${rs}KB | r1 bench $br stream $sr ($(awk "BEGIN{printf \"%.2f\", $sr/$br}")) ${rr}KB"
  done
done
for tag in old new; do
  echo "$tag small $(gdalinfo -checksum "$OUT/small-$tag/${name%.*}_map.tif" | grep -m1 Checksum) r1 $(gdalinfo -checksum "$OUT/r1-$tag/${name%.*}_map.tif" | grep -m1 Checksum)"
done
echo "end $(date +%T) $(uptime)"
