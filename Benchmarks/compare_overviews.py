#!/usr/bin/python3
"""Compares a map's overviews with GDAL's MODE overviews of the same pixels (issue B4).

    /usr/bin/python3 Benchmarks/compare_overviews.py MAP.tif [SCRATCH.tif]

Copies band 1 of MAP.tif (with its nodata) into SCRATCH.tif, builds MODE overviews there with
GDAL (what `gdaladdo -r mode` does) at MAP.tif's levels, and prints, per level, how many pixels
differ. Needs Debian's python3-gdal (the system Python, not Benchmarks/.venv)."""
import sys

from osgeo import gdal

gdal.UseExceptions()
source = gdal.Open(sys.argv[1])
scratch = sys.argv[2] if len(sys.argv) > 2 else "/tmp/compare_overviews.tif"
band = source.GetRasterBand(1)
copy = gdal.GetDriverByName("GTiff").Create(scratch, source.RasterXSize, source.RasterYSize, 1, band.DataType,
                                             ["TILED=YES", "COMPRESS=DEFLATE"])
copied = copy.GetRasterBand(1)
copied.SetNoDataValue(band.GetNoDataValue())
copied.WriteArray(band.ReadAsArray())
levels = [2 ** (i + 1) for i in range(band.GetOverviewCount())]
copy.BuildOverviews("MODE", levels)
differing = 0
for i in range(band.GetOverviewCount()):
    mine, gdals = band.GetOverview(i).ReadAsArray(), copied.GetOverview(i).ReadAsArray()
    count = int((mine != gdals).sum()) if mine.shape == gdals.shape else mine.size
    differing += count
    print(f"level {i + 1} ({mine.shape[1]}×{mine.shape[0]}): {count} pixels differ")
copy = None
gdal.Unlink(scratch)
sys.exit(1 if differing else 0)
