import Core
import Foundation
import GeoRaster

/// A small labelled scene that the tests make themselves, so that the stitcher, trainer,
/// pipeline and CLI tests run on a fresh clone without ../shared/data.
///
/// The image is a GeoTIFF on a UTM grid (EPSG:32617, 10 m pixels) with `bands` bands of
/// Float32 reflectance (nodata -9999) or UInt16 digital numbers (reflectance × 10000,
/// nodata 0). Every pixel belongs to one of three classes laid out as smooth blobs (sums of
/// sines); each class has its own spectrum (band values) plus a little seeded noise, so a
/// tiny U-Net separates them within an epoch or two. The top-left corner (a triangle, like
/// a scene's edge) is nodata in every band.
///
/// The labels are a Byte raster on the same grid: class values 1, 2, 3 (`classes`), 255
/// (the band's nodata) under the image's nodata corner, and 0 (unlabelled, to be listed
/// under `ignore`) in a small rectangle.
public struct SyntheticScene: Sendable {
    public enum Kind: String, Sendable, CaseIterable { case float32, uint16 }

    public static let classes: [(value: Int, name: String)] = [(1, "water"), (2, "forest"), (3, "bare")]
    /// `name=value` list for `terraseg train --classes`.
    public static let classList = "1=water,2=forest,3=bare"
    /// The label value that marks unlabelled pixels.
    public static let ignoreValue = 0
    /// The label band's nodata value (under the image's nodata corner).
    public static let labelNodata = 255
    public static let crs = "EPSG:32617"
    public static let geoTransform = GeoTransform(originX: 600_000, pixelWidth: 10, originY: 4_500_000, pixelHeight: -10)

    public let image: String
    public let labels: String
    public let width: Int
    public let height: Int
    public let bands: Int
    public let kind: Kind
    /// The image bands' nodata value.
    public var nodata: Double { kind == .float32 ? -9999 : 0 }

    /// Writes `<name>.tif` and `<name>_labels.tif` into `directory`. Sizes need not be
    /// multiples of 16; 96×80 to 200×150 keeps every test fast.
    public init(in directory: String, name: String = "scene", width: Int = 150, height: Int = 110, bands: Int = 4,
                kind: Kind = .float32, seed: UInt64 = 1) throws {
        precondition(bands >= 1 && width >= 16 && height >= 16, "SyntheticScene: \(width)×\(height), \(bands) bands is too small")
        self.width = width
        self.height = height
        self.bands = bands
        self.kind = kind
        image = (directory as NSString).appendingPathComponent(name + ".tif")
        labels = (directory as NSString).appendingPathComponent(name + "_labels.tif")
        try writeImage(seed: seed)
        try writeLabels()
    }

    // MARK: - The pattern

    /// Class value (1, 2 or 3) of a pixel, ignoring nodata and the unlabelled rectangle.
    public static func classValue(column c: Int, row r: Int) -> Int {
        let x = Double(c), y = Double(r)
        let v = sin(x * 2 * .pi / 41 + 0.5) + sin(y * 2 * .pi / 33) + 0.5 * sin((x + y) * 2 * .pi / 57)
        return v < -0.55 ? 1 : v < 0.55 ? 2 : 3
    }

    /// Whether the image is nodata at a pixel: the triangle c + r < min(width, height) / 2
    /// (in a scene at least 126 pixels each way, it covers the whole top-left 32×32 tile).
    public func isNodata(column c: Int, row r: Int) -> Bool { c + r < min(width, height) / 2 }

    /// Whether a pixel lies in the unlabelled (label 0) rectangle, right of centre.
    public func isUnlabelled(column c: Int, row r: Int) -> Bool {
        (width * 6 / 10..<width * 7 / 10).contains(c) && (height * 4 / 10..<height * 55 / 100).contains(r)
    }

    /// The label raster's value at a pixel.
    public func label(column c: Int, row r: Int) -> Int {
        if isNodata(column: c, row: r) { return Self.labelNodata }
        if isUnlabelled(column: c, row: r) { return Self.ignoreValue }
        return Self.classValue(column: c, row: r)
    }

    /// Reflectance of class value `k` in band `b` (0-based): classes differ in every band.
    public static func reflectance(classValue k: Int, band b: Int) -> Double {
        let level = Double(k - 1) * 0.25
        return b % 2 == 0 ? 0.15 + level : 0.65 - level
    }

    /// Seeded noise in [-0.04, 0.04), the same for the same pixel, band and seed.
    static func noise(_ c: Int, _ r: Int, _ b: Int, seed: UInt64) -> Double {
        var z = seed &+ UInt64(c) &* 0x9E37_79B9_7F4A_7C15 &+ UInt64(r) &* 0xBF58_476D_1CE4_E5B9 &+ UInt64(b) &* 0x94D0_49BB_1331_11EB
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return (Double(z >> 11) / Double(1 << 53) - 0.5) * 0.08
    }

    // MARK: - Writing

    func profile(bands: Int, type: DataType, nodata: Double) throws -> RasterProfile {
        RasterProfile(width: width, height: height, bandCount: bands, dataType: type, geoTransform: Self.geoTransform,
                      crs: try SpatialReference(userInput: Self.crs), nodata: nodata)
    }

    func writeImage(seed: UInt64) throws {
        let w = try GeoTIFFWriter(path: image, profile: profile(bands: bands, type: kind == .float32 ? .float32 : .uint16, nodata: nodata))
        for b in 0..<bands {
            var plane = [Float](repeating: Float(nodata), count: width * height)
            for r in 0..<height {
                for c in 0..<width where !isNodata(column: c, row: r) {
                    let value = Self.reflectance(classValue: Self.classValue(column: c, row: r), band: b) + Self.noise(c, r, b, seed: seed)
                    plane[r * width + c] = kind == .float32 ? Float(value) : Float((value * 10_000).rounded())
                }
            }
            try w.write(plane, window: Window(width: width, height: height), band: b + 1)
            try w.setDescription("synthetic band \(b + 1)", band: b + 1)
        }
        try w.finish()
    }

    func writeLabels() throws {
        let w = try GeoTIFFWriter(path: labels, profile: profile(bands: 1, type: .byte, nodata: Double(Self.labelNodata)))
        var plane = [UInt8](repeating: 0, count: width * height)
        for r in 0..<height { for c in 0..<width { plane[r * width + c] = UInt8(label(column: c, row: r)) } }
        try w.write(plane, window: Window(width: width, height: height), band: 1)
        try w.finish()
    }
}
