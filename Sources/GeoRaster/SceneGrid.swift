import CGDAL
import Core
import Foundation

/// A rectangle in the map units of a CRS (west, south, east, north).
public struct Extent: Hashable, Sendable, CustomStringConvertible {
    public var minX: Double, minY: Double, maxX: Double, maxY: Double

    public init(minX: Double, minY: Double, maxX: Double, maxY: Double) {
        self.minX = minX; self.minY = minY; self.maxX = maxX; self.maxY = maxY
    }

    public func intersects(_ o: Extent) -> Bool { minX < o.maxX && o.minX < maxX && minY < o.maxY && o.minY < maxY }

    public var description: String {
        "x \(RasterGrid.fmt(minX))…\(RasterGrid.fmt(maxX)), y \(RasterGrid.fmt(minY))…\(RasterGrid.fmt(maxY))"
    }
}

extension RasterGrid {
    /// The area the grid covers in its own CRS; nil without a geotransform.
    public var extent: Extent? {
        guard let t = geoTransform else { return nil }
        let corners = [(0.0, 0.0), (Double(width), 0.0), (0.0, Double(height)), (Double(width), Double(height))]
            .map { t.apply(column: $0.0, row: $0.1) }
        return Extent(minX: corners.map(\.x).min()!, minY: corners.map(\.y).min()!,
                      maxX: corners.map(\.x).max()!, maxY: corners.map(\.y).max()!)
    }

    /// The larger side of a pixel, in map units; nil without a geotransform.
    public var pixelSize: Double? { geoTransform.map { max(abs($0.pixelWidth), abs($0.pixelHeight)) } }

    /// The grid's area in `crs` (its own when nil or the same).
    public func extent(in crs: SpatialReference?) throws -> Extent? {
        guard let e = extent else { return nil }
        guard let target = crs, let own = self.crs, !own.isSame(as: target) else { return e }
        return try own.transform(e, to: target)
    }

    /// How `other` differs from this grid, for a notice: "pixels 20 metre → 10 metre", "CRS A → B".
    public func resamplingSummary(of other: RasterGrid) -> String {
        var parts: [String] = []
        if let a = pixelSize, let b = other.pixelSize, abs(a - b) > 1e-9 * a {
            let unit = { (g: RasterGrid) in g.crs?.unitName ?? "unit" }
            parts.append("pixels \(Self.fmt(b)) \(unit(other)) → \(Self.fmt(a)) \(unit(self))")
        }
        if let a = crs, let b = other.crs, !a.isSame(as: b) { parts.append("CRS \(b.shortName) → \(a.shortName)") }
        if parts.isEmpty { parts.append("shifted or differently sized (\(width)×\(height) vs \(other.width)×\(other.height))") }
        return parts.joined(separator: ", ")
    }
}

extension SpatialReference {
    /// Runs `body` with an OGR transformation from this CRS to `target`, both in x = east /
    /// longitude order: the one place such a transformation is made.
    func withTransformation<T>(to target: SpatialReference, _ body: (OGRCoordinateTransformationH) throws -> T) throws -> T {
        GDALRuntime.ensureInitialized()
        guard let src = OSRNewSpatialReference(wkt), let dst = OSRNewSpatialReference(target.wkt) else {
            throw RasterError(.invalidArgument, path: shortName, problem: "cannot read the CRS \(shortName)")
        }
        defer { OSRDestroySpatialReference(src); OSRDestroySpatialReference(dst) }
        OSRSetAxisMappingStrategy(src, OAMS_TRADITIONAL_GIS_ORDER)
        OSRSetAxisMappingStrategy(dst, OAMS_TRADITIONAL_GIS_ORDER)
        GDALRuntime.resetError()
        guard let ct = OCTNewCoordinateTransformation(src, dst) else {
            throw RasterError(.invalidArgument, path: shortName, problem: "no transformation from \(shortName) to \(target.shortName)",
                              gdalMessage: GDALRuntime.lastErrorMessage(), hint: "Check both CRSs with `gdalsrsinfo`")
        }
        defer { OCTDestroyCoordinateTransformation(ct) }
        return try body(ct)
    }

    /// `extent` (in this CRS) as the bounding box of its outline in `target`
    /// (OCTTransformBounds, 21 points per edge), both in x = east / longitude order.
    public func transform(_ extent: Extent, to target: SpatialReference) throws -> Extent {
        try withTransformation(to: target) { ct in
            var out = Extent(minX: 0, minY: 0, maxX: 0, maxY: 0)
            guard OCTTransformBounds(ct, extent.minX, extent.minY, extent.maxX, extent.maxY,
                                     &out.minX, &out.minY, &out.maxX, &out.maxY, 21) != 0 else {
                throw RasterError(.invalidArgument, path: shortName, problem: "the area \(extent) has no place in \(target.shortName)",
                                  gdalMessage: GDALRuntime.lastErrorMessage(), hint: "Check that the CRSs are right (`gdalinfo`)")
            }
            return out
        }
    }
}

/// The grid a scene is read on: by default the first source's; or another raster's
/// (`grid: FILE`); or a pixel size (`resolution:`), with an optional CRS and bounds
/// (default: the first source's CRS and area).
public struct GridSpec: Codable, Sendable, Hashable {
    public var file: String?
    public var resolution: Double?
    public var crs: String?
    /// minX, minY, maxX, maxY in `crs` (or the first source's CRS).
    public var bounds: [Double]?

    public init(file: String? = nil, resolution: Double? = nil, crs: String? = nil, bounds: [Double]? = nil) {
        self.file = file
        self.resolution = resolution
        self.crs = crs
        self.bounds = bounds
    }

    public var isDefault: Bool { file == nil && resolution == nil && crs == nil && bounds == nil }

    /// Largest side of a grid built from a resolution, so that a unit mistake (degrees for
    /// metres) is refused rather than allocated.
    public static let maximumSide = 1_000_000
    /// Most a resolution may refine the first source's pixels per side (Sentinel-2's 60 m bands
    /// onto 10 m: 6×): a scene far coarser than the training resolution, or georeferenced in
    /// other units, would otherwise become a map of its pixels times this squared (a 128² scene
    /// in 2-unit pixels onto 0.000269° made a 949,927² grid).
    public static let maximumRefinement = 16.0
    /// Most a resolution may coarsen the first source's pixels per side: beyond it the grid is
    /// a few pixels over the scene (a resolution of 30 read as degrees over a scene in degrees).
    public static let maximumCoarsening = 1000.0

    /// The scene grid for sources whose first is `first`.
    public func resolve(first: RasterInfo) throws -> RasterGrid {
        if let file {
            guard resolution == nil, crs == nil, bounds == nil else {
                throw RasterError(.invalidArgument, path: file, problem: "grid: and resolution:/crs:/bounds: both given",
                                  hint: "Give the scene grid either as a raster (grid:) or as resolution: (+ crs:, bounds:), not both")
            }
            let info = try Dataset(path: file).info
            guard info.geoTransform != nil else {
                throw RasterError(.notGeoreferenced, path: file, problem: "the grid file has no geotransform", hint: "Give a georeferenced raster as grid:")
            }
            return info.grid
        }
        guard let resolution else {
            if crs != nil || bounds != nil {
                throw RasterError(.invalidArgument, path: first.path, problem: "crs: or bounds: given without resolution:",
                                  hint: "Add resolution: (the pixel size in the CRS's units) or leave crs:/bounds: out")
            }
            return first.grid
        }
        return try resolutionGrid(resolution, first: first)
    }

    private func resolutionGrid(_ resolution: Double, first: RasterInfo) throws -> RasterGrid {
        guard resolution.isFinite, resolution > 0 else {
            throw RasterError(.invalidArgument, path: "resolution", problem: "resolution \(resolution) is not a positive number",
                              hint: "Give the pixel size in the CRS's units, e.g. resolution: 10")
        }
        let target = try crs.map { try SpatialReference(userInput: $0) } ?? first.crs
        let area: Extent
        if let bounds {
            guard bounds.count == 4, bounds.allSatisfy(\.isFinite), bounds[0] < bounds[2], bounds[1] < bounds[3] else {
                throw RasterError(.invalidArgument, path: "bounds", problem: "bounds \(bounds) are not minX, minY, maxX, maxY with min < max",
                                  hint: "Write bounds: [west, south, east, north] in the grid's CRS")
            }
            area = Extent(minX: bounds[0], minY: bounds[1], maxX: bounds[2], maxY: bounds[3])
        } else {
            guard let e = try first.grid.extent(in: target) else {
                throw RasterError(.notGeoreferenced, path: first.path, problem: "the first source has no geotransform, so resolution: has no area",
                                  hint: "Give bounds: too, or georeferenced sources")
            }
            area = e
        }
        let w = ((area.maxX - area.minX) / resolution - 1e-6).rounded(.up), h = ((area.maxY - area.minY) / resolution - 1e-6).rounded(.up)
        let units = target?.unitName ?? "unit"
        // The source's scale first: it names the file and the factor where the grid's size alone
        // would blame a `resolution:` key (a model's training resolution comes from its bundle).
        if let e = try first.grid.extent(in: target) {
            let pixel = max((e.maxX - e.minX) / Double(first.width), (e.maxY - e.minY) / Double(first.height)), refinement = pixel / resolution
            guard refinement >= 1 / Self.maximumCoarsening else {
                throw RasterError(.gridMismatch, path: first.path,
                                  problem: "its pixels (\(RasterGrid.fmt(pixel)) \(units)) are 1/\(RasterGrid.fmt((1 / refinement).rounded())) of the resolution \(RasterGrid.fmt(resolution)) per side: reading it onto that grid would leave \(RasterGrid.fmt(w))×\(RasterGrid.fmt(h)) pixels of its \(first.width)×\(first.height)",
                                  hint: "Check the raster's georeferencing and the resolution's units (a model's is its training resolution)")
            }
            guard refinement <= Self.maximumRefinement else {
                throw RasterError(.gridMismatch, path: first.path,
                                  problem: "its pixels (\(RasterGrid.fmt(pixel)) \(units)) are \(RasterGrid.fmt(refinement.rounded()))× the resolution \(RasterGrid.fmt(resolution)) per side: reading it onto that grid would make \(RasterGrid.fmt(w))×\(RasterGrid.fmt(h)) pixels of its \(first.width)×\(first.height)",
                                  hint: "Check the raster's georeferencing and the resolution's units (a model's is its training resolution); to map it anyway, resample it yourself first (gdalwarp -tr \(resolution) \(resolution))")
            }
        }
        guard w >= 1, h >= 1, w <= Double(Self.maximumSide), h <= Double(Self.maximumSide) else {
            throw RasterError(.invalidArgument, path: "resolution", problem: "resolution \(RasterGrid.fmt(resolution)) over \(area) gives a \(RasterGrid.fmt(w))×\(RasterGrid.fmt(h)) grid",
                              hint: "Give the resolution in the units of \(target?.shortName ?? "the CRS") (\(units)); at most \(Self.maximumSide) pixels a side")
        }
        return RasterGrid(width: Int(w), height: Int(h),
                          geoTransform: GeoTransform(originX: area.minX, pixelWidth: resolution, originY: area.maxY, pixelHeight: -resolution),
                          crs: target)
    }
}
