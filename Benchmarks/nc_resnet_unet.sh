#!/bin/sh
# B7: validation mIoU on nc-landsat7 of a resnet18 U-Net trained from scratch against A3's small
# U-Net (16-32-64, bottleneck dilations 1-2-4), same budget: the patches, split, loss, optimiser,
# schedule, augmentation, batch and epochs of compare_training.py, one seed per line.
#   Benchmarks/nc_resnet_unet.sh [BIN] [OUT] [SEEDS...]   (defaults: .build/release/terraseg, /tmp/nc-resnet-unet, 1)
# MODELS="resnet18" runs one of the two; TRAIN_FLAGS="--resume" continues interrupted runs. Prints one line per run: model, seed, best validation mIoU, OA, best epoch, wall seconds.
set -eu
BIN=${1:-.build/release/terraseg}; OUT=${2:-/tmp/nc-resnet-unet}
[ $# -ge 2 ] && shift 2 || set --
SEEDS=${*:-1}
DATA=$(dirname "$0")/../../shared/data/nc-landsat7
mkdir -p "$OUT"
for seed in $SEEDS; do
  for model in ${MODELS:-unet resnet18}; do
    case $model in
      unet) net="--model unet --widths 16,32,64" ;;
      resnet18) net="--model resnet-unet --encoder resnet18" ;;
    esac
    # shellcheck disable=SC2086
    "$BIN" train --image "$DATA/image_6band.tif" --labels "$DATA/labels_landclass96.tif" \
      --classes 1=developed,2=agriculture,3=herbaceous,4=shrubland,5=forest,6=water,7=sediment --ignore 0 \
      $net --epochs 40 --batch-size 16 --patch-size 64 --stride 32 --split rows:0.6 --loss focal+dice \
      --optimizer adam --lr 0.002 --schedule cosine --warmup 1 --seed "$seed" \
      ${TRAIN_FLAGS:-} --output "$OUT/$model-seed$seed" >> "$OUT/$model-seed$seed.log" 2>&1
    python3 -c "import json,sys; m=json.load(open(sys.argv[1])); p=m['provenance']; x=p['metrics']; \
print(sys.argv[2], 'seed', sys.argv[3], 'mIoU %.4f OA %.4f best epoch %s wall %.1f s' % (x['mean_iou'], x['overall_accuracy'], p['best_epoch'], p['wall_seconds']))" \
      "$OUT/$model-seed$seed/model.json" "$model" "$seed"
  done
done
