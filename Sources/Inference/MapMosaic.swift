import Core
import Foundation
import GeoRaster

/// The mosaic of a batch's maps (`terraseg predict` over a folder of chips): `DIR/mosaic.vrt`,
/// a GDALBuildVRT of every map written or kept, when they are all georeferenced in one CRS.
/// Otherwise no mosaic, and `reason` says why.
public struct MapMosaic: Sendable, Equatable {
    public static let fileName = "mosaic.vrt"
    /// The VRT written, or nil.
    public var path: String?
    public var mapCount: Int
    /// Why no mosaic was written (nil when one was).
    public var reason: String?

    /// One line for the summary.
    public var summary: String {
        if let path { return "Mosaic of \(mapCount) maps: \(path)" }
        return "No mosaic: \(reason ?? "")"
    }

    /// Writes the mosaic of `reports`' maps into `directory` when there are two or more maps
    /// in one CRS; returns nil for a single scene (nothing to mosaic).
    public static func write(_ reports: [SceneReport], directory: String) throws -> MapMosaic? {
        let maps = reports.filter { $0.status == .written || $0.status == .skipped }.map(\.outputs.map)
        guard maps.count > 1 else { return nil }
        let path = (directory as NSString).appendingPathComponent(fileName)
        if let reason = try whyNot(maps) {
            // A mosaic of an earlier batch would no longer describe these maps.
            let stale = FileManager.default.fileExists(atPath: path)
            if stale { try FileManager.default.removeItem(atPath: path) }
            return MapMosaic(path: nil, mapCount: maps.count, reason: reason + (stale ? " (the earlier \(fileName) was removed)" : ""))
        }
        try Dataset.writeMosaicVRT(maps, to: path)
        return MapMosaic(path: path, mapCount: maps.count, reason: nil)
    }

    /// Why `maps` cannot be mosaicked (not georeferenced, several CRSs), or nil.
    static func whyNot(_ maps: [String]) throws -> String? {
        var crss: [SpatialReference] = []
        for m in maps {
            let info = try Dataset(path: m).info
            guard info.geoTransform != nil, let crs = info.crs else { return "\(m) is not georeferenced (its chip has no CRS or geotransform)" }
            if !crss.contains(where: { $0.isSame(as: crs) }) { crss.append(crs) }
        }
        guard crss.count > 1 else { return nil }
        return "the maps are in \(crss.count) CRSs (\(crss.map(\.shortName).joined(separator: ", "))); reproject the chips to one CRS for a mosaic"
    }
}
