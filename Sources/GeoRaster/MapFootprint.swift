import CGDAL
import Foundation

/// Where a georeferenced grid lies, as a catalogue entry (STAC Item) states it: its four
/// corners and bounding box in WGS 84 longitude/latitude (through OSR, GIS axis order), its
/// bounding box in its own CRS, and the CRS as an EPSG code or WKT2.
public struct MapFootprint: Sendable, Hashable {
    /// Corners (top-left, top-right, bottom-right, bottom-left, top-left again) as [lon, lat].
    public var ring: [[Double]]
    /// West, south, east, north in WGS 84 (the outline densified, 21 points per edge).
    public var bbox: [Double]
    /// minX, minY, maxX, maxY in the grid's CRS.
    public var nativeBBox: [Double]
    public var epsg: Int?
    /// The CRS as WKT2 (2019), for CRSs without an EPSG code.
    public var wkt2: String?

    /// The footprint of `grid`, or nil when it has no geotransform or CRS.
    public init?(grid: RasterGrid) throws {
        guard let t = grid.geoTransform, let crs = grid.crs, let native = grid.extent else { return nil }
        let wgs84 = try SpatialReference(userInput: "EPSG:4326")
        let corners = [(0, 0), (grid.width, 0), (grid.width, grid.height), (0, grid.height), (0, 0)]
            .map { t.apply(column: Double($0.0), row: Double($0.1)) }
        ring = try crs.transform(points: corners.map { ($0.x, $0.y) }, to: wgs84).map { [$0.0, $0.1] }
        let box = crs.isSame(as: wgs84) ? native : try crs.transform(native, to: wgs84)
        bbox = [box.minX, box.minY, box.maxX, box.maxY]
        nativeBBox = [native.minX, native.minY, native.maxX, native.maxY]
        epsg = crs.epsg
        wkt2 = crs.epsg == nil ? try crs.wkt2() : nil
    }
}

extension SpatialReference {
    /// `points` (x = east / longitude first) from this CRS into `target` (OCTTransform).
    public func transform(points: [(Double, Double)], to target: SpatialReference) throws -> [(Double, Double)] {
        try withTransformation(to: target) { ct in
            var xs = points.map(\.0), ys = points.map(\.1), zs = [Double](repeating: 0, count: points.count)
            guard OCTTransform(ct, Int32(points.count), &xs, &ys, &zs) != 0, xs.allSatisfy(\.isFinite), ys.allSatisfy(\.isFinite) else {
                throw RasterError(.invalidArgument, path: shortName, problem: "the points have no place in \(target.shortName)",
                                  gdalMessage: GDALRuntime.lastErrorMessage(), hint: "Check that the CRS is right (`gdalinfo`)")
            }
            return Array(zip(xs, ys))
        }
    }

    /// The CRS as WKT2 (2019) text (OSRExportToWktEx).
    public func wkt2() throws -> String {
        GDALRuntime.ensureInitialized()
        guard let h = OSRNewSpatialReference(wkt) else {
            throw RasterError(.invalidArgument, path: shortName, problem: "cannot read the CRS \(shortName)")
        }
        defer { OSRDestroySpatialReference(h) }
        let options = GDALRuntime.stringList(["FORMAT=WKT2_2019", "MULTILINE=NO"])
        defer { CSLDestroy(options) }
        var text: UnsafeMutablePointer<CChar>? = nil
        GDALRuntime.resetError()
        guard OSRExportToWktEx(h, &text, options.map { UnsafePointer(OpaquePointer($0)) }) == OGRERR_NONE, let text else {
            throw RasterError(.invalidArgument, path: shortName, problem: "cannot write the CRS as WKT2", gdalMessage: GDALRuntime.lastErrorMessage())
        }
        defer { ts_cpl_free(text) }
        return String(cString: text)
    }
}
