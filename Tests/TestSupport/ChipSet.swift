import Foundation
import GeoRaster

/// A small tile set written by a test: `images/{id}.tif` (2 Float32 bands, nodata -9999) and
/// `masks/{id}.tif` (Byte: class 1 in the left half, 2 in the right half), under `root`.
public enum ChipSet {
    public static let imageTemplate = "images/{id}.tif"
    public static let maskTemplate = "masks/{id}.tif"
    public static let classes = "1=water,2=forest"

    /// The class of pixel (c, r) in a chip `size` wide.
    public static func label(column c: Int, size: Int) -> Int { c < size / 2 ? 1 : 2 }

    /// Writes chip `id` of `size`²; rows from `nodataFromRow` on are image nodata.
    @discardableResult
    public static func write(root: String, id: String, size: Int = 32, nodataFromRow: Int? = nil) throws -> String {
        for dir in ["images", "masks"] {
            try FileManager.default.createDirectory(atPath: (root as NSString).appendingPathComponent(dir), withIntermediateDirectories: true)
        }
        let image = (root as NSString).appendingPathComponent("images/\(id).tif")
        try RasterMaker.write(image, profile: RasterMaker.utmProfile(width: size, height: size, bands: 2, nodata: -9999)) { b, c, r in
            if let n = nodataFromRow, r >= n { return -9999 }
            return Float(label(column: c, size: size) * 10 + b + (c + r) % 3)
        }
        try RasterMaker.write((root as NSString).appendingPathComponent("masks/\(id).tif"),
                              profile: RasterMaker.utmProfile(width: size, height: size, type: .byte)) { _, c, _ in
            Float(label(column: c, size: size))
        }
        return image
    }

    /// Writes chip `id` whose image is not a raster (a few bytes of text).
    public static func writeUnreadable(root: String, id: String) throws {
        try write(root: root, id: id)
        try Data("not a raster".utf8).write(to: URL(fileURLWithPath: (root as NSString).appendingPathComponent("images/\(id).tif")))
    }
}
