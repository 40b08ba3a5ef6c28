#!/usr/bin/env bash
# The main job for a newcomer: installs what is missing, builds TerraSeg in release mode,
# fetches the North Carolina Landsat-7 sample, then trains a U-Net on it, maps the whole
# scene and writes the report (pipelines/nc-landcover.yaml). Prints where the map and the
# report are, with the headline metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-system.sh
echo "Building TerraSeg (release)…"
swift build -c release --product terraseg
scripts/fetch-sample.sh

BIN=$(swift build -c release --show-bin-path)/terraseg
"$BIN" run pipelines/nc-landcover.yaml
