import CGDAL
import Core
import Foundation

/// The class polygons of a finished class map, in a GeoPackage beside it (`MapSiblings.polygons`):
/// one layer (`layerName`) of polygons made by GDALPolygonize (which streams over the raster),
/// nodata pixels (the band's mask) excluded, with fields `class` (the pixel value), `name` (the
/// class name) and `area` (of the polygon's pixels: in the CRS's units squared, m² for a
/// geographic CRS). Written under a temporary name and renamed when complete.
public enum ClassPolygons {
    public static let layerName = "classes"

    public struct Summary: Sendable, Equatable {
        public var path: String
        public var polygons: Int
        public var seconds: Double
    }

    /// Polygonizes band 1 of `map` into `MapSiblings(map:).polygons`. Pixels form polygons
    /// with their 4 or 8 neighbours (`connectedness`, as the minimum mapping unit). With
    /// `simplify` > 0 each polygon is simplified alone (OGR_G_SimplifyPreserveTopology, tolerance
    /// in CRS units): neighbouring polygons' shared edges may then no longer coincide. The
    /// `area` field stays that of the pixels.
    public static func write(map: String, classes: [ClassEntry], connectedness: Connectedness = .four,
                             simplify: Double = 0) throws -> Summary {
        let start = Date()
        let path = MapSiblings(map: map).polygons
        let source = try Dataset(path: map)
        let folder: String
        do { folder = try AtomicFile.createTemporaryDirectory(for: path) } catch let e as TerraSegError {
            throw RasterError(.createFailed, path: path, problem: e.problem, hint: e.hint)
        }
        defer { try? FileManager.default.removeItem(atPath: folder) }
        let staged = folder + "/" + URL(fileURLWithPath: path).lastPathComponent
        let count = try withGeoPackage(staged, for: path) { ds in
            let layer = try createLayer(ds, srs: GDALGetSpatialRef(source.handle), for: path)
            try polygonize(source, into: layer, of: ds, connectedness: connectedness, for: path)
            return try describe(layer, of: ds, classes: classes, simplify: simplify, for: path)
        }
        do { try AtomicFile.moveIntoPlace(staged, path) } catch let e as TerraSegError {
            throw RasterError(.writeFailed, path: path, problem: e.problem, hint: e.hint)
        }
        return Summary(path: path, polygons: count, seconds: Date().timeIntervalSince(start))
    }

    /// Creates a GeoPackage at `staged`, runs `body` on it and closes it, turning an error GDAL
    /// reports while closing into a throw.
    static func withGeoPackage<T>(_ staged: String, for path: String, _ body: (GDALDatasetH) throws -> T) throws -> T {
        GDALRuntime.ensureInitialized()
        guard let driver = GDALGetDriverByName("GPKG") else {
            throw RasterError(.createFailed, path: path, problem: "this GDAL has no GeoPackage (GPKG) driver",
                              hint: "Install a GDAL built with SQLite, or leave out --polygons")
        }
        GDALRuntime.resetError()
        guard let ds = GDALCreate(driver, staged, 0, 0, 0, GDT_Unknown, nil) else {
            throw RasterError(.createFailed, path: path, problem: "cannot create the GeoPackage", gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "Check free space and permissions of \(AtomicFile.directory(of: path))")
        }
        let result: T
        do { result = try body(ds) } catch {
            GDALClose(ds)
            throw error
        }
        GDALRuntime.resetError()
        GDALClose(ds)
        if CPLGetLastErrorType().rawValue >= CE_Failure.rawValue {
            throw RasterError(.writeFailed, path: path, problem: "writing the GeoPackage failed", gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "Check free space of \(AtomicFile.directory(of: path))")
        }
        return result
    }

    /// The polygon layer in the map's CRS, with its three fields.
    static func createLayer(_ ds: GDALDatasetH, srs: OGRSpatialReferenceH?, for path: String) throws -> OGRLayerH {
        GDALRuntime.resetError()
        guard let layer = GDALDatasetCreateLayer(ds, layerName, srs, wkbPolygon, nil) else {
            throw RasterError(.createFailed, path: path, problem: "cannot create the polygon layer", gdalMessage: GDALRuntime.lastErrorMessage())
        }
        for (name, type) in [("class", OFTInteger), ("name", OFTString), ("area", OFTReal)] {
            guard let field = OGR_Fld_Create(name, type) else { continue }
            defer { OGR_Fld_Destroy(field) }
            guard OGR_L_CreateField(layer, field, 1) == OGRERR_NONE else {
                throw RasterError(.createFailed, path: path, problem: "cannot create the field '\(name)'", gdalMessage: GDALRuntime.lastErrorMessage())
            }
        }
        return layer
    }

    /// GDALPolygonize of band 1 into `layer`'s field 0 (`class`), the mask (nodata) excluded,
    /// in one transaction.
    static func polygonize(_ source: Dataset, into layer: OGRLayerH, of ds: GDALDatasetH, connectedness: Connectedness,
                           for path: String) throws {
        guard let band = GDALGetRasterBand(source.handle, 1) else {
            throw RasterError(.badBand, path: source.info.path, band: 1, problem: "the map has no band 1")
        }
        let options = GDALRuntime.stringList(connectedness == .eight ? ["8CONNECTED=8"] : [])
        defer { CSLDestroy(options) }
        try transaction(ds, for: path) {
            GDALRuntime.resetError()
            guard GDALPolygonize(band, GDALGetMaskBand(band), layer, 0, options, nil, nil) == CE_None else {
                throw RasterError(.writeFailed, path: path, problem: "polygonizing \(source.info.path) failed",
                                  gdalMessage: GDALRuntime.lastErrorMessage(), hint: "Check free space of \(AtomicFile.directory(of: path))")
            }
        }
    }

    /// Fills each polygon's `name` and `area` (and simplifies it); returns the polygon count.
    static func describe(_ layer: OGRLayerH, of ds: GDALDatasetH, classes: [ClassEntry], simplify: Double, for path: String) throws -> Int {
        let names = Dictionary(classes.map { ($0.value, $0.name) }, uniquingKeysWith: { first, _ in first })
        let measure = PolygonArea(srs: OGR_L_GetSpatialRef(layer))
        var count = 0
        try transaction(ds, for: path) {
            OGR_L_ResetReading(layer)
            while let feature = OGR_L_GetNextFeature(layer) {
                defer { OGR_F_Destroy(feature) }
                let value = Int(OGR_F_GetFieldAsInteger(feature, 0))
                OGR_F_SetFieldString(feature, 1, names[value] ?? "class \(value)")
                if let g = OGR_F_GetGeometryRef(feature) {
                    OGR_F_SetFieldDouble(feature, 2, measure.area(of: g))
                    if simplify > 0, let simpler = OGR_G_SimplifyPreserveTopology(g, simplify) { OGR_F_SetGeometryDirectly(feature, simpler) }
                }
                GDALRuntime.resetError()
                guard OGR_L_SetFeature(layer, feature) == OGRERR_NONE else {
                    throw RasterError(.writeFailed, path: path, problem: "writing polygon \(OGR_F_GetFID(feature)) failed",
                                      gdalMessage: GDALRuntime.lastErrorMessage())
                }
                count += 1
            }
        }
        return count
    }

    /// Runs `body` in one transaction (a GeoPackage commits once instead of per polygon).
    static func transaction(_ ds: GDALDatasetH, for path: String, _ body: () throws -> Void) throws {
        guard GDALDatasetStartTransaction(ds, 0) == OGRERR_NONE else {
            throw RasterError(.writeFailed, path: path, problem: "cannot start a GeoPackage transaction", gdalMessage: GDALRuntime.lastErrorMessage())
        }
        do { try body() } catch {
            _ = GDALDatasetRollbackTransaction(ds)  // the staged file is deleted anyway
            throw error
        }
        guard GDALDatasetCommitTransaction(ds) == OGRERR_NONE else {
            throw RasterError(.writeFailed, path: path, problem: "writing the polygons failed", gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "Check free space of \(AtomicFile.directory(of: path))")
        }
    }
}

/// Areas of polygons: OGR_G_Area in the CRS's units squared, or for a geographic CRS in m²,
/// each polygon projected to a Lambert azimuthal equal-area centred on it (GDAL 3.6 has no
/// geodesic area; at a polygon's scale the difference is far below a pixel).
final class PolygonArea {
    /// The geographic CRS (longitude, latitude order), or nil for planar areas.
    private let geographic: OGRSpatialReferenceH?

    init(srs: OGRSpatialReferenceH?) {
        if let srs, OSRIsGeographic(srs) != 0, let clone = OSRClone(srs) {
            OSRSetAxisMappingStrategy(clone, OAMS_TRADITIONAL_GIS_ORDER)
            geographic = clone
        } else {
            geographic = nil
        }
    }

    deinit { if let geographic { OSRDestroySpatialReference(geographic) } }

    func area(of g: OGRGeometryH) -> Double {
        guard let geographic else { return OGR_G_Area(g) }
        var box = OGREnvelope()
        OGR_G_GetEnvelope(g, &box)
        guard let laea = OSRNewSpatialReference(nil) else { return .nan }
        defer { OSRDestroySpatialReference(laea) }
        _ = OSRSetProjCS(laea, "Lambert azimuthal equal-area on the polygon")
        _ = OSRCopyGeogCSFrom(laea, geographic)
        _ = OSRSetLAEA(laea, (box.MinY + box.MaxY) / 2, (box.MinX + box.MaxX) / 2, 0, 0)
        OSRSetAxisMappingStrategy(laea, OAMS_TRADITIONAL_GIS_ORDER)
        guard let transform = OCTNewCoordinateTransformation(geographic, laea), let local = OGR_G_Clone(g) else { return .nan }
        defer { OCTDestroyCoordinateTransformation(transform); OGR_G_DestroyGeometry(local) }
        guard OGR_G_Transform(local, transform) == OGRERR_NONE else { return .nan }
        return OGR_G_Area(local)
    }
}
