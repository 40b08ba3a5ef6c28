import Foundation

/// How a band's invalid pixels are defined (GDAL's GMF_* mask flags).
public struct MaskFlags: OptionSet, Hashable, Sendable, Codable {
    public let rawValue: Int32
    public init(rawValue: Int32) { self.rawValue = rawValue }
    /// No mask: every pixel is valid (GMF_ALL_VALID).
    public static let allValid = MaskFlags(rawValue: 0x01)
    /// One mask shared by all bands (GMF_PER_DATASET), e.g. an internal .msk.
    public static let perDataset = MaskFlags(rawValue: 0x02)
    /// The mask is an alpha band (GMF_ALPHA).
    public static let alpha = MaskFlags(rawValue: 0x04)
    /// The mask is derived from the nodata value (GMF_NODATA).
    public static let nodata = MaskFlags(rawValue: 0x08)

    public var names: [String] {
        var out: [String] = []
        if contains(.allValid) { out.append("all_valid") }
        if contains(.perDataset) { out.append("per_dataset") }
        if contains(.alpha) { out.append("alpha") }
        if contains(.nodata) { out.append("nodata") }
        if out.isEmpty { out.append("mask_band") }
        return out
    }

    /// Whether a separate mask band must be read (anything but "all valid" or "nodata only").
    public var needsMaskBand: Bool { !contains(.allValid) && self != .nodata }
}

/// What GDAL reports about one band.
public struct BandInfo: Hashable, Sendable {
    /// 1-based index of this band in the source it belongs to (a stack renumbers its bands).
    public var index: Int
    /// The file this band is read from, and its index there.
    public var path: String
    public var sourceBand: Int
    /// The type values are read in (a warped band's: Float32 when its kernel interpolates).
    public var dataType: DataType
    /// The file's own pixel type where it differs from `dataType` (a band read through the
    /// warper), else nil: what the user gave, as `gdalinfo` shows it.
    public var fileDataType: DataType? = nil
    public var nodata: Double?
    public var maskFlags: MaskFlags
    /// GDAL colour interpretation name: "Red", "Gray", "Alpha", "Palette", "Undefined", ...
    public var colorInterpretation: String
    public var description: String
    public var blockWidth: Int
    public var blockHeight: Int
    public var overviewCount: Int
    public var scale: Double?
    public var offset: Double?
    public var hasColorTable: Bool
    public var hasAttributeTable: Bool
    public var categoryNames: [String]

    public var isAlpha: Bool { colorInterpretation == "Alpha" }
    /// The file's own pixel type.
    public var fileType: DataType { fileDataType ?? dataType }
}

/// A raster's size, grid, georeferencing and bands.
public struct RasterInfo: Hashable, Sendable {
    public var path: String
    public var driver: String
    public var width: Int
    public var height: Int
    public var bands: [BandInfo]
    /// nil when the file has no geotransform.
    public var geoTransform: GeoTransform?
    /// nil when the file has no CRS.
    public var crs: SpatialReference?
    /// Number of ground control points; a GCP-only file has GCPs and no geotransform.
    public var gcpCount: Int
    public var gcpCRS: SpatialReference?
    /// Overview sizes of the first band, largest first.
    public var overviews: [[Int]]
    /// "PIXEL" or "BAND", when GDAL reports it.
    public var interleave: String?
    public var compression: String?
    /// "Area" or "Point" (GDAL's AREA_OR_POINT).
    public var pixelIs: String?

    public var bandCount: Int { bands.count }
    public var grid: RasterGrid { RasterGrid(width: width, height: height, geoTransform: geoTransform, crs: crs) }
    public var isGeoreferenced: Bool { geoTransform != nil || gcpCount > 0 }

    /// All bands that are not alpha bands: the default band selection for models.
    public var dataBandIndices: [Int] { bands.filter { !$0.isAlpha }.map(\.index) }
}

/// The pixel grid of a raster: size, geotransform and CRS. Two rasters on the same grid
/// line up pixel for pixel.
public struct RasterGrid: Hashable, Sendable {
    public var width: Int
    public var height: Int
    public var geoTransform: GeoTransform?
    public var crs: SpatialReference?

    public init(width: Int, height: Int, geoTransform: GeoTransform?, crs: SpatialReference?) {
        self.width = width
        self.height = height
        self.geoTransform = geoTransform
        self.crs = crs
    }

    /// Human-readable differences between two grids; empty when they line up.
    /// `self` is the reference ("expected"), `other` the one being checked.
    public func differences(from other: RasterGrid) -> [String] {
        var out: [String] = []
        if width != other.width || height != other.height {
            out.append("size \(other.width)×\(other.height) instead of \(width)×\(height)")
        }
        switch (geoTransform, other.geoTransform) {
        case let (a?, b?):
            if !a.isClose(to: b, width: max(width, other.width), height: max(height, other.height), tolerance: 1e-3) {
                if abs(a.pixelWidth - b.pixelWidth) > 1e-9 * abs(a.pixelWidth) + 1e-12
                    || abs(a.pixelHeight - b.pixelHeight) > 1e-9 * abs(a.pixelHeight) + 1e-12 {
                    out.append("pixel size \(Self.fmt(b.pixelWidth))×\(Self.fmt(abs(b.pixelHeight))) instead of \(Self.fmt(a.pixelWidth))×\(Self.fmt(abs(a.pixelHeight)))")
                }
                if let inv = a.inverted() {
                    let p = inv.apply(column: b.originX, row: b.originY)
                    if abs(p.x) > 1e-3 || abs(p.y) > 1e-3 {
                        out.append("origin shifted by \(Self.fmt(p.x)) columns and \(Self.fmt(p.y)) rows (\(Self.fmt(b.originX)), \(Self.fmt(b.originY)) instead of \(Self.fmt(a.originX)), \(Self.fmt(a.originY)))")
                    }
                }
                if a.isRotated != b.isRotated { out.append("rotation differs") }
            }
        case (nil, _?): out.append("georeferenced while the reference is not")
        case (_?, nil): out.append("not georeferenced while the reference is")
        case (nil, nil): break
        }
        switch (crs, other.crs) {
        case let (a?, b?):
            if !a.isSame(as: b) { out.append("CRS \(b.shortName) instead of \(a.shortName)") }
        case (nil, let b?): out.append("CRS \(b.shortName) while the reference has none")
        case (let a?, nil): out.append("no CRS while the reference has \(a.shortName)")
        case (nil, nil): break
        }
        return out
    }

    static func fmt(_ v: Double) -> String {
        if v == v.rounded() && abs(v) < 1e15 { return String(Int64(v)) }
        var s = String(format: "%.6f", v)
        while s.hasSuffix("0") { s.removeLast() }
        if s.hasSuffix(".") { s.removeLast() }
        return s
    }
}
