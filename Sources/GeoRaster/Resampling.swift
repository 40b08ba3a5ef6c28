import CGDAL

/// How a source is read onto a grid it is not on (GDAL's warp kernels).
public enum Resampling: String, Codable, Sendable, CaseIterable {
    case nearest, bilinear, cubic, average, mode

    var gdal: GDALResampleAlg {
        switch self {
        case .nearest: GRA_NearestNeighbour
        case .bilinear: GRA_Bilinear
        case .cubic: GRA_Cubic
        case .average: GRA_Average
        case .mode: GRA_Mode
        }
    }

    /// Whether the kernel only ever returns one of the source's values (safe for classes).
    public var keepsValues: Bool { self == .nearest || self == .mode }

    /// The default for a band read onto a grid: categorical bands (colour table, category
    /// names or attribute table) keep their values (nearest, mode when coarsening);
    /// continuous ones are interpolated (bilinear, average when coarsening).
    public static func automatic(categorical: Bool, coarsening: Bool) -> Resampling {
        if categorical { return coarsening ? .mode : .nearest }
        return coarsening ? .average : .bilinear
    }
}

extension BandInfo {
    /// Whether the band holds classes rather than measurements.
    public var isCategorical: Bool { hasColorTable || !categoryNames.isEmpty || hasAttributeTable }
}
