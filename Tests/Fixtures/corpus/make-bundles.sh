#!/usr/bin/env bash
# Makes the tampered model bundles of the malformed-input corpus (bundles/): a small valid
# bundle trained by `terraseg train` (a one-level U-Net, 4 bands, 3 classes, a few KB), then
# one altered copy per case. The generated files are committed; CorpusTests runs
# `terraseg predict` on each case of bundles/cases.txt (format: see make-corpus.sh).
#
#   Tests/Fixtures/corpus/make-bundles.sh [path/to/terraseg]   (default .build/debug/terraseg;
#                                                               GDAL's tools, python3 stdlib)
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
terraseg="$(cd "$(dirname "${1:-.build/debug/terraseg}")" && pwd)/$(basename "${1:-.build/debug/terraseg}")"
cd "$here"
export GDAL_PAM_ENABLED=NO
rm -rf bundles
mkdir -p bundles
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# A 32×32, 4-band scene (UTM 17N, 30 m) and its labels: the scene predict is given.
. "$here/grid.sh"
for b in 1 2 3 4; do grid "$tmp/b$b.asc" "(c * 7 + r * $b * 3) % 200 + 10"; done
gdalbuildvrt -q -separate "$tmp/image.vrt" "$tmp"/b{1,2,3,4}.asc
gdal_translate -q -a_srs EPSG:32617 -co COMPRESS=DEFLATE -ot Byte "$tmp/image.vrt" bundles/scene.tif
grid "$tmp/labels.asc" "1 + (c // 11 + r // 11) % 3"
gdal_translate -q -a_srs EPSG:32617 -co COMPRESS=DEFLATE -ot Byte "$tmp/labels.asc" "$tmp/labels.tif"

# The valid bundle: one level of 4 channels, a 16-channel bottleneck (about 2,000 weights).
cat > "$tmp/job.yaml" <<YAML
name: base
output: $tmp/run
data:
  scenes:
    - {image: $here/bundles/scene.tif, labels: $tmp/labels.tif}
  classes:
    - {value: 1, name: a}
    - {value: 2, name: b}
    - {value: 3, name: c}
tiling: {patch: 16, stride: 16, split: {method: rows, train_fraction: 0.5}}
model: {widths: [4], bottleneck_width: 16, bottleneck_dilations: [1]}
training: {epochs: 1, batch_size: 4}
YAML
"$terraseg" train --config "$tmp/job.yaml" --output "$tmp/base" > /dev/null 2>&1

# One altered copy per case. A case is: name, then python (stdlib) that edits `meta`
# (model.json as a dict), `tensors` (name → [dtype, shape, offsets]) and `blob` (the data
# section as a bytearray), or replaces the header bytes with `raw_header`.
python3 - "$tmp/base" bundles <<'PY'
import json, math, os, shutil, struct, sys
base, out = sys.argv[1], sys.argv[2]

def load():
    meta = json.load(open(os.path.join(base, "model.json")))
    data = open(os.path.join(base, "model.safetensors"), "rb").read()
    n = struct.unpack("<Q", data[:8])[0]
    header = json.loads(data[8:8 + n])
    return meta, header, bytearray(data[8 + n:])

def write(case, meta, header, blob, raw_header=None, length=None):
    d = os.path.join(out, case)
    os.makedirs(d)
    json.dump(meta, open(os.path.join(d, "model.json"), "w"), indent=1, sort_keys=True)
    text = raw_header if raw_header is not None else json.dumps(header, sort_keys=True).encode()
    text += b" " * (-len(text) % 8)
    with open(os.path.join(d, "model.safetensors"), "wb") as f:
        f.write(struct.pack("<Q", length if length is not None else len(text)) + text + bytes(blob))


cases = {}
def case(f):
    cases[f.__name__.replace("_", "-")] = f
    return f

@case
def header_length_overflow(meta, header, blob):
    return dict(length=2**64 - 1)
@case
def header_not_object(meta, header, blob):
    return dict(raw_header=b"[1, 2, 3]")
@case
def negative_shape(meta, header, blob):
    header["head.bias"]["shape"] = [-3]
@case
def overflowing_shape(meta, header, blob):
    header["head.weight"]["shape"] = [2**62, 2**62, 1, 1]
@case
def negative_offsets(meta, header, blob):
    b, e = header["head.bias"]["data_offsets"]
    header["head.bias"]["data_offsets"] = [-16, e - b - 16]
@case
def overflowing_offsets(meta, header, blob):
    header["head.bias"]["data_offsets"] = [2**63 - 13, 2**63 - 1]
@case
def overlapping_offsets(meta, header, blob):
    header["head.bias"]["data_offsets"] = list(header["enc1.conv1.weight"]["data_offsets"][0:1]) + [header["enc1.conv1.weight"]["data_offsets"][0] + 12]
@case
def unknown_dtype(meta, header, blob):
    header["head.bias"]["dtype"] = "F33"
@case
def widths_empty(meta, header, blob):
    meta["architecture"]["unet"]["widths"] = []
@case
def widths_negative(meta, header, blob):
    meta["architecture"]["unet"]["widths"] = [-4]
@case
def normalization_short(meta, header, blob):
    for k in ("offset", "scale", "lower", "upper"):
        meta["normalization"][k] = meta["normalization"][k][:2]
@case
def weight_shape_transposed(meta, header, blob):
    o, c, h, w = header["head.weight"]["shape"]
    header["head.weight"]["shape"] = [c, o, h, w]
@case
def nan_weights(meta, header, blob):
    b, e = header["enc1.conv1.weight"]["data_offsets"]
    for i in range(b, e, 4):
        blob[i:i + 4] = struct.pack("<f", math.nan)

for name, edit in cases.items():
    meta, header, blob = load()
    write(name, meta, header, blob, **(edit(meta, header, blob) or {}))
PY

cat > bundles/cases.txt <<'TXT'
# name | expected on stderr | terraseg arguments (see make-corpus.sh; made by make-bundles.sh)
header-length-overflow | header-length-overflow/model.safetensors; header length 18446744073709551615 exceeds the file | predict --model {here}/header-length-overflow --input {here}/scene.tif --output {out}
header-not-object | header-not-object/model.safetensors; not a JSON object | predict --model {here}/header-not-object --input {here}/scene.tif --output {out}
negative-shape | negative-shape/model.safetensors; 'head.bias' has a negative dimension | predict --model {here}/negative-shape --input {here}/scene.tif --output {out}
overflowing-shape | overflowing-shape/model.safetensors; 'head.weight' has shape | predict --model {here}/overflowing-shape --input {here}/scene.tif --output {out}
negative-offsets | negative-offsets/model.safetensors; 'head.bias' has data_offsets | predict --model {here}/negative-offsets --input {here}/scene.tif --output {out}
overflowing-offsets | overflowing-offsets/model.safetensors; 'head.bias' has data_offsets | predict --model {here}/overflowing-offsets --input {here}/scene.tif --output {out}
overlapping-offsets | overlapping-offsets/model.safetensors; overlap | predict --model {here}/overlapping-offsets --input {here}/scene.tif --output {out}
unknown-dtype | unknown-dtype/model.safetensors; 'head.bias' has unknown dtype 'F33' | predict --model {here}/unknown-dtype --input {here}/scene.tif --output {out}
widths-empty | widths-empty/model.json; model.widths is empty | predict --model {here}/widths-empty --input {here}/scene.tif --output {out}
widths-negative | widths-negative/model.json; model.widths[0] must be at least 1, got -4 | predict --model {here}/widths-negative --input {here}/scene.tif --output {out}
normalization-short | normalization-short/model.json; normalization.offset has 2 values for 4 bands | predict --model {here}/normalization-short --input {here}/scene.tif --output {out}
weight-shape-transposed | weight-shape-transposed/model.safetensors; 'head.weight' has shape | predict --model {here}/weight-shape-transposed --input {here}/scene.tif --output {out}
nan-weights | nan-weights/model.safetensors; 'enc1.conv1.weight' holds nan | predict --model {here}/nan-weights --input {here}/scene.tif --output {out}
TXT
ls bundles
