#!/usr/bin/env bash
# The main job for a newcomer: install what is missing, build TerraSeg in release mode, fetch
# the North Carolina Landsat-7 sample and describe it. (Training and mapping join this script
# as the pipeline lands; see README.md.)
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-system.sh
swift build -c release --product terraseg
scripts/fetch-sample.sh

BIN=$(swift build -c release --show-bin-path)/terraseg
S=samples/nc-landsat7
"$BIN" info $S/lsat7_2000_10.tif $S/lsat7_2000_20.tif $S/lsat7_2000_30.tif \
            $S/lsat7_2000_40.tif $S/lsat7_2000_50.tif $S/lsat7_2000_70.tif
echo
"$BIN" info $S/strata.tif
