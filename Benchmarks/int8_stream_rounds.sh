#!/bin/bash
# int8 against fp32 through the streaming path (issue B5), one launch, interleaved rounds:
# `terraseg predict --model BUNDLE --input MOSAIC --precision fp32|int8` at the default strip
# height and at `--memory 512M` (smaller strips), each binary in turn (BINS: `terraseg`
# executables, e.g. a baseline then this build), with wall seconds and peak RSS.
#   Benchmarks/int8_stream_rounds.sh BUNDLE MOSAIC.vrt [ROUNDS=3]
#   e.g. BINS="/tmp/q8/terraseg .build/release/terraseg" Benchmarks/int8_stream_rounds.sh /tmp/int8-7/r1-int8 /tmp/b4/mosaic2048.vrt 3
# Prints per round and binary the int8/fp32 speed ratio per memory setting, by whole-process
# wall time and by the scene's own MP/s (what `predict` reports, as B4 measures), then the
# medians over rounds. Quiet 2-core Zen 4, R1 on the 2048² mosaic: about 20 s per round and binary (3 rounds of two binaries: ~2 min).
set -eu
BINS=${BINS:-.build/release/terraseg}; BUNDLE=$1; MOSAIC=$2; ROUNDS=${3:-3}
OUT=$(mktemp -d); trap 'rm -rf "$OUT"' EXIT
echo "start $(uptime)"
for r in $(seq "$ROUNDS"); do
  for bin in $BINS; do
    for mem in default 512M; do
      flags=$([ $mem = default ] || echo "--memory $mem")
      for p in fp32 int8; do
        # shellcheck disable=SC2086
        /usr/bin/time -o "$OUT/time" -f "%e %M" "$bin" predict --model "$BUNDLE" --input "$MOSAIC" --output "$OUT/o" --overwrite \
          --precision $p $flags > "$OUT/log" 2>&1 || { cat "$OUT/log" >&2; exit 1; }
        read -r s kb < "$OUT/time"; eval "t_$p=$s; m_$p=$kb"
        eval "mps_$p=$(grep "$(basename "$MOSAIC") *written" "$OUT/log" | awk '{print $5}')"  # the scene's own MP/s
      done
      echo "$r $bin $mem $t_fp32 $t_int8 $m_fp32 $m_int8 $mps_fp32 $mps_int8" | tee -a "$OUT/rounds" |
        awk '{printf "round %s %s %s: fp32 %.2f s, int8 %.2f s: int8 %.2fx fp32 (scene MP/s %.3f / %.3f: %.2fx; peak %.2f / %.2f GB)\n", $1, $2, $3, $4, $5, $4/$5, $8, $9, $9/$8, $6/1e6, $7/1e6}'
    done
  done
done
for measure in "whole-process walls" "the scenes' own MP/s"; do
  echo "medians over $ROUNDS rounds (int8/fp32 speed by $measure, spread):"
  sort -k2,3 "$OUT/rounds" | awk -v m="$measure" '{k=$2" "$3; r[k]=r[k]" "(m ~ /walls/ ? $4/$5 : $9/$8)} END {for (k in r) print k, r[k]}' |
    while read -r bin mem ratios; do
      echo "$ratios" | tr ' ' '\n' | sort -n | awk -v k="$bin $mem" '{v[NR]=$1} END {printf "  %s: %.2fx (%.2f-%.2f)\n", k, (NR%2 ? v[(NR+1)/2] : (v[NR/2]+v[NR/2+1])/2), v[1], v[NR]}'
    done
done
echo "end $(uptime)"
