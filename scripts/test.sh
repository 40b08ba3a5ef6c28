#!/usr/bin/env bash
# Runs TerraSeg's tests: installs system packages if missing, builds, runs every test.
# Tests that need ../shared/data are skipped (and say so) when it is not there.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/setup-system.sh
swift build --build-tests
swift test --skip-build --disable-xctest
