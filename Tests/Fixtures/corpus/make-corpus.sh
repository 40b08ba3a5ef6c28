#!/usr/bin/env bash
# Makes the malformed-input corpus that Tests/CLITests/CorpusTests feeds to the real `terraseg`
# executable. Each category folder holds small files (KBs) and a `cases.txt` manifest; the
# generated files are committed, so the tests need neither this script nor its tools.
#
#   Tests/Fixtures/corpus/make-corpus.sh      (bash, GDAL's command-line tools, python3 stdlib)
#
# cases.txt: one case per line, `name | expected text[; more] | arguments`:
#   - arguments follow `terraseg` and are split on spaces; placeholders:
#       {here}  the case's folder (a fresh copy of this corpus, so files may be written beside)
#       {out}   an empty output folder
#       {model} a valid model bundle (4 bands, classes 1-3), made by the test
#   - the command must exit non-zero (not by a signal) within the time and memory limits,
#     print every expected text (the file or key and the problem) on stderr, no backtrace, and
#     leave no new file in the corpus copy or {out}.
#   Lines starting with # are comments. Other folders' manifests (bundles/, made by
#   make-bundles.sh) follow the same format.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"
export GDAL_PAM_ENABLED=NO   # no .aux.xml sidecars

# ---------------------------------------------------------------------------------------------
# rasters/: damaged or inconsistent rasters for predict, evaluate, info and train.
rm -rf rasters yaml stac
mkdir -p rasters yaml stac
tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# 32×32 grids (UTM 17N, 30 m): grid FILE EXPR.
. "$here/grid.sh"
opts=(-q -a_srs EPSG:32617 -co COMPRESS=DEFLATE)
for b in 1 2 3 4; do grid "$tmp/b$b.asc" "(c * 7 + r * $b * 3) % 200 + 10"; done
gdalbuildvrt -q -separate "$tmp/image.vrt" "$tmp"/b{1,2,3,4}.asc
gdal_translate "${opts[@]}" -ot Byte "$tmp/image.vrt" rasters/good-image.tif
grid "$tmp/labels.asc" "1 + (c // 11 + r // 11) % 3"
gdal_translate "${opts[@]}" -ot Byte "$tmp/labels.asc" rasters/good-labels.tif
gdal_translate "${opts[@]}" -ot Byte "$tmp/labels.asc" rasters/good-map.tif

# Truncated GeoTIFF: its first half (uncompressed, so the pixel data is cut).
gdal_translate -q -a_srs EPSG:32617 -ot Byte "$tmp/image.vrt" "$tmp/plain.tif"
head -c "$(( $(stat -c %s "$tmp/plain.tif") / 2 ))" "$tmp/plain.tif" > rasters/truncated.tif
# Zero bytes; a text file named .tif.
: > rasters/zero-size.tif
printf 'This is not a GeoTIFF, only text named like one.\n' > rasters/text.tif
# A header claiming 100000×100000 pixels, 4 bands, whose one strip lies beyond the file's end.
python3 - rasters/huge-header.tif <<'PY'
import struct, sys
W = H = 100000
entries = [  # tag, type (3 SHORT, 4 LONG), count, value
    (256, 4, 1, W), (257, 4, 1, H), (258, 3, 1, 8), (259, 3, 1, 1), (262, 3, 1, 1),
    (273, 4, 1, 1 << 30), (277, 3, 1, 4), (278, 4, 1, H), (279, 4, 1, 0xFFFFFFF0), (284, 3, 1, 1)]
ifd = struct.pack("<H", len(entries))
for tag, typ, count, value in entries:
    ifd += struct.pack("<HHI", tag, typ, count) + (struct.pack("<HH", value, 0) if typ == 3 else struct.pack("<I", value))
ifd += struct.pack("<I", 0)
with open(sys.argv[1], "wb") as f:
    f.write(b"II*\x00" + struct.pack("<I", 8) + ifd)
PY
# A raster with no bands (a VRT may declare none).
cat > rasters/zero-bands.vrt <<'XML'
<VRTDataset rasterXSize="32" rasterYSize="32">
  <GeoTransform>700000, 30, 0, 3900960, 0, -30</GeoTransform>
</VRTDataset>
XML
# Labels of the wrong type: Float32 with fractional values.
grid "$tmp/float.asc" "(c + r) / 7.0"
gdal_translate "${opts[@]}" -ot Float32 "$tmp/float.asc" rasters/float-labels.tif
# Labels on another grid (40×24 instead of 32×32).
gdal_translate "${opts[@]}" -ot Byte -srcwin 0 0 24 32 -outsize 40 24 "$tmp/labels.asc" rasters/labels-other-size.tif
# The good labels placed 200 km east: training warps labels on another grid, but refuses
# labels that do not overlap the image.
cat > rasters/labels-elsewhere.vrt <<'XML'
<VRTDataset rasterXSize="32" rasterYSize="32">
  <SRS>EPSG:32617</SRS>
  <GeoTransform>900000, 30, 0, 3900960, 0, -30</GeoTransform>
  <VRTRasterBand dataType="Byte" band="1">
    <SimpleSource><SourceFilename relativeToVRT="1">good-labels.tif</SourceFilename><SourceBand>1</SourceBand></SimpleSource>
  </VRTRasterBand>
</VRTDataset>
XML

{
    echo "# name | expected on stderr | terraseg arguments (see make-corpus.sh)"
    for f in truncated.tif zero-size.tif text.tif huge-header.tif zero-bands.vrt; do
        echo "predict-${f%.*} | $f | predict --model {model} --input {here}/$f --output {out}"
        echo "evaluate-map-${f%.*} | $f | evaluate --prediction {here}/$f --labels {here}/good-labels.tif"
        echo "evaluate-labels-${f%.*} | $f | evaluate --prediction {here}/good-map.tif --labels {here}/$f"
        echo "train-image-${f%.*} | $f | train --image {here}/$f --labels {here}/good-labels.tif --classes 1=a,2=b,3=c --epochs 1 --patch-size 16 --output {out}/model"
    done
    for f in zero-size.tif text.tif; do   # (info reads only the header, intact in truncated.tif)
        echo "info-${f%.*} | $f | info {here}/$f"
    done
    echo "evaluate-float-labels | float-labels.tif | evaluate --prediction {here}/good-map.tif --labels {here}/float-labels.tif"
    echo "train-float-labels | float-labels.tif | train --image {here}/good-image.tif --labels {here}/float-labels.tif --classes 1=a,2=b,3=c --epochs 1 --patch-size 16 --output {out}/model"
    echo "evaluate-labels-other-size | labels-other-size.tif | evaluate --prediction {here}/good-map.tif --labels {here}/labels-other-size.tif"
    echo "train-labels-elsewhere | labels-elsewhere.vrt; does not overlap the scene | train --image {here}/good-image.tif --labels {here}/labels-elsewhere.vrt --classes 1=a,2=b,3=c --epochs 1 --patch-size 16 --output {out}/model"
} > rasters/cases.txt

# ---------------------------------------------------------------------------------------------
# yaml/: pipeline files, each checked by `terraseg run --check` and `terraseg run`. They read
# the good rasters above, so each is refused for its own flaw alone.
valid_head='data:
  scenes:
    - image: ../rasters/good-image.tif
      labels: ../rasters/good-labels.tif
  classes:
    - {value: 1, name: a}
    - {value: 2, name: b}
    - {value: 3, name: c}
model: {widths: [8, 16]}
tiling: {patch: 16, stride: 16}
training: {epochs: 1, batch_size: 2}'
pipeline() { printf 'name: %s\noutput: %s\n%s\n' "$1" "${3:-runs/$1}" "$valid_head" > "yaml/$1.yaml"; }

# Billion laughs: nine levels of nine aliases (10^9 integers once expanded), used as a key.
python3 - yaml/billion-laughs.yaml <<'PY'
import sys
lines = ["name: billion-laughs", "l0: &l0 [1, 1, 1, 1, 1, 1, 1, 1, 1]"]
for i in range(1, 10):
    lines.append(f"l{i}: &l{i} [" + ", ".join([f"*l{i-1}"] * 9) + "]")
lines.append("? *l9\n: a key that Yams hashes whole (minutes) unless aliases are refused")
open(sys.argv[1], "w").write("\n".join(lines) + "\n")
PY
# Deep nesting: 20000 flow sequences; 300 block levels (indented 300 columns).
python3 -c 'import sys; open(sys.argv[1], "w").write("name: deep\ndata: {ignore: " + "[" * 20000 + "]" * 20000 + "}\n")' yaml/deep-flow.yaml
python3 -c 'import sys; open(sys.argv[1], "w").write("name: deep\ndata:\n  ignore:\n" + "".join(" " * (4 + i) + "-\n" for i in range(300)) + " " * 305 + "- 1\n")' yaml/deep-block.yaml
python3 -c 'import sys; open(sys.argv[1], "w").write("name: deep\ndata:\n  ignore:\n    " + "- " * 3000 + "1\n")' yaml/deep-compact.yaml
# Huge and non-finite numbers.
printf 'name: huge\n%s\n' "${valid_head/epochs: 1, batch_size: 2/epochs: 99999999999999999999999999, batch_size: 1e400}" > yaml/huge-numbers.yaml
printf 'name: nan\n%s\noptimizer: {learning_rate: .nan}\n' "$valid_head" > yaml/nan-number.yaml
printf 'name: big-patch\n%s\n' "${valid_head/patch: 16, stride: 16/patch: 9223372036854775807, stride: 16}" > yaml/huge-patch.yaml
# Wrong types, unknown keys, duplicate keys.
printf 'name: wrong-types\ndata: just text\nmodel: {widths: hello}\ntraining: [1, 2]\n' > yaml/wrong-types.yaml
printf 'name: unknown\n%s\ntrainig: {epochs: 3}\n' "$valid_head" > yaml/unknown-keys.yaml
printf 'name: duplicate\n%s\ntraining: {epochs: 2}\n' "$valid_head" > yaml/duplicate-keys.yaml
printf '? [a, b]\n: 1\nname: complex-key\n' > yaml/complex-key.yaml
# Not YAML at all: binary junk (seeded), an empty file, a scalar, a syntax error, a tab.
python3 -c 'import random, sys; r = random.Random(7); open(sys.argv[1], "wb").write(bytes(r.randrange(256) for _ in range(2048)))' yaml/binary-junk.yaml
: > yaml/empty.yaml
printf 'just a sentence\n' > yaml/scalar.yaml
printf 'name: [unclosed\ndata: {\n' > yaml/syntax-error.yaml
printf 'name: tab\ndata:\n\tscenes: []\n' > yaml/tab-indent.yaml
# Names that would write outside the output folder.
pipeline 'name-parent' && sed -i 's|^name: .*|name: ../../escaped|' yaml/name-parent.yaml
pipeline 'name-slash' && sed -i 's|^name: .*|name: sub/dir|' yaml/name-slash.yaml
sed -i '/^output:/d' yaml/name-parent.yaml yaml/name-slash.yaml

{
    echo "# name | expected on stderr | terraseg arguments (see make-corpus.sh)"
    expect() {
        case "$1" in
            billion-laughs) echo "alias" ;;
            deep-*) echo "nest" ;;
            huge-numbers) echo "training.epochs; training.batch_size" ;;
            nan-number) echo "optimizer.learning_rate" ;;
            huge-patch) echo "tiling.patch" ;;
            wrong-types) echo "data; model.widths; training" ;;
            unknown-keys) echo "trainig" ;;
            duplicate-keys) echo "training" ;;
            name-parent|name-slash) echo "name" ;;
            *) echo "" ;;
        esac
    }
    for f in yaml/*.yaml; do
        n="$(basename "$f" .yaml)"
        e="$(expect "$n")"
        echo "check-$n | $n.yaml${e:+; $e} | run --check {here}/$n.yaml"
        echo "run-$n | $n.yaml${e:+; $e} | run {here}/$n.yaml"
    done
} > yaml/cases.txt

# ---------------------------------------------------------------------------------------------
# stac/: malformed STAC Items given as predict scenes; each is refused naming the Item and the key.
python3 - <<'PY'
import json
good = {"type": "Feature", "stac_version": "1.0.0", "id": "scene", "geometry": None, "links": [],
        "properties": {"datetime": "2020-06-01T10:30:00Z"},
        "assets": {"image": {"href": "../rasters/good-image.tif",
                             "eo:bands": [{"name": "B02"}, {"name": "B03"}, {"name": "B04"}, {"name": "B08"}]}}}
def item(name, change=None, text=None):
    with open(f"stac/{name}.json", "w") as f:
        if text is not None:
            f.write(text)
            return
        d = json.loads(json.dumps(good))
        change(d)
        json.dump(d, f, indent=1)
item("not-json", text="{\"type\": \"Feature\", \"assets\": {")
item("collection", lambda d: d.update(type="Collection"))
item("no-id", lambda d: d.pop("id"))
item("no-assets", lambda d: d.update(assets={}))
item("href-number", lambda d: d["assets"]["image"].update(href=5))
item("href-missing-file", lambda d: d["assets"]["image"].update(href="no-such-band.tif"))
item("href-remote", lambda d: d["assets"]["image"].update(href="https://example.org/B04.tif"))
item("bad-datetime", lambda d: d["properties"].update(datetime="yesterday"))
item("null-datetime-no-range", lambda d: d["properties"].update(datetime=None, start_datetime="2020-06-01T00:00:00Z"))
item("eo-bands-not-list", lambda d: d["assets"]["image"].update({"eo:bands": "B04"}))
item("band-name-number", lambda d: d["assets"]["image"]["eo:bands"][2].update(name=4))
item("good", lambda d: None)  # refused only for the bands asked
PY
{
    echo "# name | expected on stderr | terraseg arguments (see make-corpus.sh)"
    stac_case() { echo "stac-$1 | $1.json; $2 | predict --model {model} --input {here}/$1.json --bands ${3:-image} --output {out}"; }
    stac_case not-json "is not a JSON object"
    stac_case collection "type must be \"Feature\""
    stac_case no-id "id must be a non-empty string"
    stac_case no-assets "assets must be an object"
    stac_case href-number "assets.image.href must be"
    stac_case href-missing-file "assets.image.href names"
    stac_case href-remote "assets.image.href is a remote URL"
    stac_case bad-datetime "properties.datetime must be an RFC 3339 time"
    stac_case null-datetime-no-range "properties.end_datetime must be given"
    stac_case eo-bands-not-list "assets.image.eo:bands must be a list"
    stac_case band-name-number "assets.image.eo:bands[2].name must be a non-empty string"
    echo "stac-unknown-band | good.json; assets hold no band B99 | predict --model {model} --input {here}/good.json --bands B99 --output {out}"
    echo "stac-multi-band-asset | good.json; assets.image holds 4 bands | predict --model {model} --input {here}/good.json --bands B04 --output {out}"
} > stac/cases.txt

# bundles/: tampered model bundles, made by their own script when present.
if [ -x "$here/make-bundles.sh" ]; then "$here/make-bundles.sh"; fi
du -sh "$here"/*/ | sed 's|'"$here"'/||'
