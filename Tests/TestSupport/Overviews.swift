import CGDAL
import GeoRaster

/// The overviews of a raster as GDAL reads them, for tests of how they are made.
public enum Overviews {
    /// Every overview of `band`, largest first, as integers (row-major).
    public static func values(of path: String, band: Int32 = 1) throws -> [[Int32]] {
        GDALAllRegister()
        guard let ds = GDALOpen(path, GA_ReadOnly) else {
            throw RasterError(.openFailed, path: path, problem: "GDAL cannot open it")
        }
        defer { GDALClose(ds) }
        guard let b = GDALGetRasterBand(ds, band) else { throw RasterError(.badBand, path: path, band: Int(band), problem: "no such band") }
        return (0..<GDALGetOverviewCount(b)).map { o in
            let ov = GDALGetOverview(b, o)!, w = GDALGetRasterBandXSize(ov), h = GDALGetRasterBandYSize(ov)
            var out = [Int32](repeating: -1, count: Int(w * h))
            _ = out.withUnsafeMutableBytes { GDALRasterIO(ov, GF_Read, 0, 0, w, h, $0.baseAddress, w, h, GDT_Int32, 0, 0) }
            return out
        }
    }

    /// Pixels that differ between two sets of overviews (all of a level whose size differs;
    /// `Int.max` when the number of levels does).
    public static func differences(_ a: [[Int32]], _ b: [[Int32]]) -> Int {
        guard a.count == b.count else { return Int.max }
        return zip(a, b).map { x, y in x.count == y.count ? zip(x, y).filter { $0 != $1 }.count : max(x.count, y.count) }.reduce(0, +)
    }
}
