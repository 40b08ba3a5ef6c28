#!/usr/bin/env bash
# Installs the Debian 12 packages TerraSeg builds and runs with: GDAL (library and tools),
# libtiff, oneDNN and Open MPI (library and mpirun, for runs across processes), and python3-gdal (GDAL's COG validator, used by the tests). Does nothing when they are already installed.
set -euo pipefail

PACKAGES=(libgdal-dev libtiff-dev libdnnl-dev gdal-bin python3-gdal unzip libopenmpi-dev openmpi-bin)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
done
if [ ${#missing[@]} -eq 0 ]; then
    exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive

install() {
    $SUDO apt-get update && $SUDO apt-get install -y "${missing[@]}"
}

echo "Installing system packages: ${missing[*]}"
# A first install has been seen to fail on a missing .deb: refresh the lists and retry once.
if ! install; then
    echo "apt-get failed; retrying once after refreshing the package lists"
    sleep 5
    install
fi
