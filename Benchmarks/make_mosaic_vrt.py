"""Writes a GDAL VRT that tiles a real scene N×M times into a large mosaic (no pixels are
invented: every pixel is a pixel of the source), for scale benchmarks.

    python3 Benchmarks/make_mosaic_vrt.py SRC.tif OUT.vrt --size 20000 --bands 1 2 3 4
"""
import argparse
import os
import subprocess
import json

p = argparse.ArgumentParser()
p.add_argument("src")
p.add_argument("out")
p.add_argument("--size", type=int, default=20000, help="mosaic width and height in pixels")
p.add_argument("--bands", type=int, nargs="+", default=[1, 2, 3, 4])
a = p.parse_args()

info = json.loads(subprocess.check_output(["gdalinfo", "-json", a.src]))
w, h = info["size"]
dtype = info["bands"][a.bands[0] - 1]["type"]
gt = info.get("geoTransform", [0, 1, 0, 0, 0, -1])
src = os.path.relpath(os.path.abspath(a.src), os.path.dirname(os.path.abspath(a.out)))
srs = info.get("coordinateSystem", {}).get("wkt", "")
nx, ny = -(-a.size // w), -(-a.size // h)
lines = [f'<VRTDataset rasterXSize="{a.size}" rasterYSize="{a.size}">']
if srs:
    lines.append(f"  <SRS>{srs.replace('&', '&amp;').replace('<', '&lt;').replace('>', '&gt;')}</SRS>")
lines.append("  <GeoTransform>" + ", ".join(repr(v) for v in gt) + "</GeoTransform>")
for i, b in enumerate(a.bands, 1):
    lines.append(f'  <VRTRasterBand dataType="{dtype}" band="{i}">')
    for ty in range(ny):
        for tx in range(nx):
            xoff, yoff = tx * w, ty * h
            cw, ch = min(w, a.size - xoff), min(h, a.size - yoff)
            lines.append(
                f'    <SimpleSource><SourceFilename relativeToVRT="1">{src}</SourceFilename><SourceBand>{b}</SourceBand>'
                f'<SrcRect xOff="0" yOff="0" xSize="{cw}" ySize="{ch}"/><DstRect xOff="{xoff}" yOff="{yoff}" xSize="{cw}" ySize="{ch}"/></SimpleSource>')
    lines.append("  </VRTRasterBand>")
lines.append("</VRTDataset>")
with open(a.out, "w") as f:
    f.write("\n".join(lines) + "\n")
print(f"{a.out}: {a.size}x{a.size}, {len(a.bands)} bands, {nx * ny} copies of {a.src}")
