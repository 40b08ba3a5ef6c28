#!/bin/bash
# Tile set larger than the patch cache vs the same patches in memory (issue B9, deliverable 4).
#   Benchmarks/tileset_cache.sh chips DIR       cut 2,016 chips of 256² (100 distinct windows of
#                                               nc-landsat7, 3 bands, repeated) into DIR (1.7 GB)
#   Benchmarks/tileset_cache.sh bench DIR [BIN] train 2 epochs with --cache-megabytes 0 (every patch
#                                               read from its chip each epoch, by the reader thread)
#                                               and 1024 (all 7,980 patches held; PATCH=32 by default), ROUNDS
#                                               interleaved rounds; prints epoch-2 patches/s, wall, peak RSS
set -e
DATA=${TERRASEG_SHARED_DATA:-$(dirname "$0")/../../shared/data}/nc-landsat7
case "$1" in
chips)
  D=$2; mkdir -p "$D/images" "$D/masks"; n=0
  for y in 0 20 40 60 80 100 120 140 160 187; do
    for x in 0 25 50 75 100 125 150 175 200 233; do
      gdal_translate -q -b 1 -b 2 -b 3 -srcwin $x $y 256 256 "$DATA/image_6band.tif" "$D/images/u$n.tif"
      gdal_translate -q -srcwin $x $y 256 256 "$DATA/labels_landclass96.tif" "$D/masks/u$n.tif"
      n=$((n + 1))
    done
  done
  : > "$D/train.txt"; : > "$D/val.txt"
  for i in $(seq 0 2015); do
    cp "$D/images/u$((i % 100)).tif" "$D/images/c$i.tif"; cp "$D/masks/u$((i % 100)).tif" "$D/masks/c$i.tif"
    if [ $i -lt 2000 ]; then echo c$i >> "$D/train.txt"; else echo c$i >> "$D/val.txt"; fi
  done
  rm "$D"/images/u*.tif "$D"/masks/u*.tif ;;
bench)
  D=$2; B=${3:-.build/release/terraseg}; OUT=${OUT:-/tmp/tileset-cache}; mkdir -p "$OUT"
  for r in $(seq 1 "${ROUNDS:-3}"); do
    for cache in 0 1024; do
      rm -rf "$OUT/m$cache" "$OUT/m$cache.training"
      /usr/bin/time -v "$B" train --tiles "$D" --tile-images 'images/{id}.tif' --tile-mask 'masks/{id}.tif' \
        --tile-split "lists:$D/train.txt,$D/val.txt" --ignore 0 \
        --classes 1=developed,2=agriculture,3=herbaceous,4=shrubland,5=forest,6=water,7=sediment \
        --patch-size ${PATCH:-32} --stride 256 --batch-size 8 --epochs 2 --widths 8,16 --cache-megabytes $cache \
        --output "$OUT/m$cache" > "$OUT/r$r-c$cache.log" 2>&1
      rate=$(tr '\r' '\n' < "$OUT/r$r-c$cache.log" | grep '^epoch 2/2  train loss' | sed -E 's/.*, ([0-9.]+) patches\/s.*/\1/')
      echo "round $r cache_mb $cache epoch2_patches_per_s $rate wall $(grep 'Elapsed (wall' "$OUT/r$r-c$cache.log" | awk '{print $NF}')" \
           "peak_rss_kb $(grep 'Maximum resident' "$OUT/r$r-c$cache.log" | awk '{print $NF}')"
    done
  done ;;
*) echo "usage: $0 chips DIR | bench DIR [BIN]" >&2; exit 2 ;;
esac
