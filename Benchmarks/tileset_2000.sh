#!/bin/bash
# The issue's tile-set case (B9, deliverable 4): 2,000 training chips of 256² (+16 validation;
# 100 distinct windows of nc-landsat7, 3 bands, repeated), one 64² patch per chip, U-Net 8-16,
# batch 8, 2 epochs; epoch 2 read from the chips (--cache-megabytes 0) against the same
# patches in memory (1024), interleaved rounds; prints epoch-2 patches/s, wall and peak RSS.
#   Benchmarks/tileset_2000.sh chips ROOT          cut the set into ROOT (~1.7 GB, outside the repo)
#   Benchmarks/tileset_2000.sh bench ROOT [BIN]    ROUNDS (3) rounds; BIN defaults to .build/release/terraseg
set -eu
D=${TERRASEG_SHARED_DATA:-$(cd "$(dirname "$0")/../.." && pwd)/shared/data}/nc-landsat7
chips() {
  mkdir -p "$1/images" "$1/masks"; cd "$1"; n=0
  for y in 0 20 40 60 80 100 120 140 160 187; do for x in 0 25 50 75 100 125 150 175 200 233; do
    gdal_translate -q -b 1 -b 2 -b 3 -srcwin $x $y 256 256 "$D/image_6band.tif" images/u$n.tif
    gdal_translate -q -srcwin $x $y 256 256 "$D/labels_landclass96.tif" masks/u$n.tif
    n=$((n+1))
  done; done
  : > train.txt; : > val.txt
  for i in $(seq 0 2015); do
    cp images/u$((i % 100)).tif images/c$i.tif; cp masks/u$((i % 100)).tif masks/c$i.tif
    if [ $i -lt 2000 ]; then echo c$i >> train.txt; else echo c$i >> val.txt; fi
  done
  rm images/u*.tif masks/u*.tif
}
bench() {
  R=$1; B=${2:-.build/release/terraseg}; OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
  for r in $(seq 1 "${ROUNDS:-3}"); do for cache in 0 1024; do
    /usr/bin/time -v "$B" train --tiles "$R" --tile-images 'images/{id}.tif' --tile-mask 'masks/{id}.tif' \
      --tile-split "lists:$R/train.txt,$R/val.txt" \
      --classes 1=developed,2=agriculture,3=herbaceous,4=shrubland,5=forest,6=water,7=sediment --ignore 0 \
      --patch-size 64 --stride 256 --batch-size 8 --epochs 2 --widths 8,16 --cache-megabytes $cache \
      --output "$OUT/m$cache" > "$OUT/log" 2>&1
    rate=$(tr '\r' '\n' < "$OUT/log" | grep '^epoch 2/2  train loss' | sed -E 's/.*, ([0-9.]+) patches\/s.*/\1/')
    echo "round $r cache_mb $cache epoch2_patches_per_s $rate wall $(grep 'Elapsed (wall' "$OUT/log" | awk '{print $NF}')" \
         "peak_rss_kb $(grep 'Maximum resident' "$OUT/log" | awk '{print $NF}') load $(cut -d' ' -f1 /proc/loadavg)"
    rm -rf "$OUT/m$cache" "$OUT/m$cache.training"
  done; done
}
case "${1:-}" in
chips) chips "$2" ;;
bench) bench "$2" "${3:-}" ;;
*) echo "usage: $0 chips ROOT | bench ROOT [BIN]" >&2; exit 2 ;;
esac
