#!/bin/bash
# Tile sets read from their chips every epoch vs the same patches in memory (issue B9, deliverable 4).
#   Benchmarks/tileset_cache.sh chips ROOT          cut ROOT/c64, ROOT/c128, ROOT/c256: chips of 64², 128², 256²
#                                                   (100 distinct windows of nc-landsat7, 3 bands, repeated) to
#                                                   1,016 / 516 / 266 chips (16 validate), ~50 / 100 / 230 MB
#   Benchmarks/tileset_cache.sh bench ROOT [BIN]    per round and chip size, interleaved: one patch per chip
#                                                   (patch = chip), U-Net 8-16, batch 8, 2 epochs, with
#                                                   --cache-megabytes 1024 (epoch 2 from memory) and 0 with
#                                                   --reader-threads 1 and 2 (epoch 2 read from the chips);
#                                                   prints epoch-2 patches/s, wall and peak RSS. ROUNDS (3),
#                                                   SIZES ("64 128 256"), TRAIN_64 … (first N training chips: all);
#                                                   BASELINE=BIN0 adds BIN0's read run (1 thread) to each round
set -e
DATA=${TERRASEG_SHARED_DATA:-$(dirname "$0")/../../shared/data}/nc-landsat7
chips() { # DIR SIZE COUNT
  local D=$1 s=$2 count=$3 n=0; mkdir -p "$D/images" "$D/masks"
  for i in $(seq 0 9); do
    for j in $(seq 0 9); do
      local x=$(( (489 - s) * j / 9 )) y=$(( (443 - s) * i / 9 ))
      gdal_translate -q -b 1 -b 2 -b 3 -srcwin $x $y $s $s "$DATA/image_6band.tif" "$D/images/u$n.tif"
      gdal_translate -q -srcwin $x $y $s $s "$DATA/labels_landclass96.tif" "$D/masks/u$n.tif"
      n=$((n + 1))
    done
  done
  : > "$D/train.txt"; : > "$D/val.txt"
  for i in $(seq 0 $((count - 1))); do
    cp "$D/images/u$((i % 100)).tif" "$D/images/c$i.tif"; cp "$D/masks/u$((i % 100)).tif" "$D/masks/c$i.tif"
    if [ $i -lt $((count - 16)) ]; then echo c$i >> "$D/train.txt"; else echo c$i >> "$D/val.txt"; fi
  done
  rm "$D"/images/u*.tif "$D"/masks/u*.tif
}
case "$1" in
chips) chips "$2/c64" 64 1016; chips "$2/c128" 128 516; chips "$2/c256" 256 266 ;;
bench)
  R=$2; B=${3:-.build/release/terraseg}; OUT=${OUT:-/tmp/tileset-cache}; mkdir -p "$OUT"
  for r in $(seq 1 "${ROUNDS:-3}"); do
    for s in ${SIZES:-64 128 256}; do
      D=$R/c$s; eval "n=\${TRAIN_$s:-100000}"; head -n "$n" "$D/train.txt" > "$OUT/train-$s.txt"
      for run in "1024 1 $B" "0 1 $B" "0 2 $B" ${BASELINE:+"0 1 $BASELINE"}; do
        set -- $run; cache=$1; threads=$2; bin=$3; name=s$s-c$cache-t$threads; [ "$bin" = "$B" ] || name=$name-baseline
        rm -rf "$OUT/$name" "$OUT/$name.training"
        /usr/bin/time -v "$bin" train --tiles "$D" --tile-images 'images/{id}.tif' --tile-mask 'masks/{id}.tif' \
          --tile-split "lists:$OUT/train-$s.txt,$D/val.txt" --ignore 0 --max-invalid 0.9 \
          --classes 1=developed,2=agriculture,3=herbaceous,4=shrubland,5=forest,6=water,7=sediment \
          --patch-size $s --stride $s --batch-size 8 --epochs 2 --widths 8,16 --cache-megabytes $cache --reader-threads $threads \
          --output "$OUT/$name" > "$OUT/r$r-$name.log" 2>&1 || { echo "round $r $name FAILED (see $OUT/r$r-$name.log)"; continue; }
        rate=$(tr '\r' '\n' < "$OUT/r$r-$name.log" | grep '^epoch 2/2  train loss' | sed -E 's/.*, ([0-9.]+) patches\/s.*/\1/')
        echo "round $r size $s cache_mb $cache threads $threads epoch2_patches_per_s $rate${BASELINE:+ bin $([ "$bin" = "$B" ] && echo new || echo baseline)}" \
             "wall $(grep 'Elapsed (wall' "$OUT/r$r-$name.log" | awk '{print $NF}')" \
             "peak_rss_kb $(grep 'Maximum resident' "$OUT/r$r-$name.log" | awk '{print $NF}') load $(cut -d' ' -f1 /proc/loadavg)"
      done
    done
  done ;;
*) echo "usage: $0 chips ROOT | bench ROOT [BIN]" >&2; exit 2 ;;
esac
