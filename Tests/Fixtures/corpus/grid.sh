# Sourced by make-corpus.sh and make-bundles.sh: the one maker of their 32×32 test grids.
# grid FILE EXPR writes an ESRI ASCII grid (UTM 17N, 30 m; GDAL reads it) whose value at
# column c, row r is the python expression EXPR of (c, r).
grid() {
    python3 - "$1" "$2" <<'PY'
import sys
path, expr = sys.argv[1], sys.argv[2]
with open(path, "w") as f:
    f.write("ncols 32\nnrows 32\nxllcorner 700000\nyllcorner 3900000\ncellsize 30\n")
    for r in range(32):
        f.write(" ".join(str(eval(expr, {"c": c, "r": r})) for c in range(32)) + "\n")
PY
}
