import CGDAL
import Core
import Foundation

/// Rasterises vector labels (GeoPackage, GeoJSON, Shapefile, any OGR source) onto a raster
/// grid through GDALRasterize, reprojecting the geometries when their CRS differs. Pixels no
/// polygon covers get `fill` (the caller's "no label" value).
public enum VectorLabels {
    /// How a feature's class value is found.
    public enum ClassSource: Sendable {
        /// A numeric attribute holds the class value.
        case numericAttribute(String)
        /// A text attribute holds a class name; names map to values.
        case namedAttribute(String, values: [String: Int])
    }

    /// Rasterises `layer` (default: the first) of `path` onto `grid`, returning an Int32
    /// single-band raster held in memory (/vsimem), with nodata `fill`.
    public static func rasterize(path: String, layer: String? = nil, attribute: String,
                                 classNames: [String: Int]? = nil, onto grid: RasterGrid,
                                 fill: Int32 = -1) throws -> Dataset {
        let src = try openVector(path)
        defer { GDALClose(src) }
        let (lh, layerName) = try findLayer(layer, in: src, path: path)
        let isNumeric = try attributeIsNumeric(attribute, layer: lh, layerName: layerName, path: path)
        let (dst, memPath) = try labelRaster(onto: grid, fill: fill, path: path)
        var closed = false
        defer { if !closed { GDALClose(dst); VSIUnlink(memPath) } }
        if !isNumeric && classNames == nil {
            throw RasterError(.invalidArgument, path: path, problem: "attribute '\(attribute)' holds text, not class values",
                              hint: "List the classes with their names so names can be mapped to values")
        }

        func run(_ args: [String]) throws {
            try burn(src, into: dst, arguments: args, layerName: layerName, path: path)
        }
        if let classNames {
            for (name, value) in classNames.sorted(by: { $0.value < $1.value }) {
                let quoted = name.replacingOccurrences(of: "'", with: "''")
                let condition = isNumeric ? "\"\(attribute)\" = \(value)" : "\"\(attribute)\" = '\(quoted)'"
                try run(["-l", layerName, "-where", condition, "-burn", String(value)])
            }
        } else {
            try run(["-l", layerName, "-a", attribute])
        }
        GDALRuntime.resetError()
        GDALClose(dst)
        closed = true
        let ds = try Dataset(path: memPath)
        ds.removeOnClose = memPath
        return ds
    }

    /// Opens `path` as vector data (GDALOpenEx); the caller closes it.
    static func openVector(_ path: String) throws -> GDALDatasetH {
        GDALRuntime.ensureInitialized()
        if !path.hasPrefix("/vsi"), let (problem, hint) = InputFile.problem(path, expecting: .fileOrDirectory) {
            throw RasterError(problem == "not found" ? .notFound : .openFailed, path: path,
                              problem: problem == "not found" ? "file not found" : problem,
                              hint: problem == "not found" ? "Check the path of the vector labels" : hint)
        }
        GDALRuntime.resetError()
        guard let src = GDALOpenEx(path, UInt32(GDAL_OF_VECTOR | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR), nil, nil, nil) else {
            throw RasterError(.openFailed, path: path, problem: "GDAL cannot open this file as vector data",
                              gdalMessage: GDALRuntime.lastErrorMessage(),
                              hint: "Give polygons in a format OGR reads (GeoPackage, GeoJSON, Shapefile); check with `ogrinfo \(path)`")
        }
        return src
    }

    /// The layer named `layer` (default: the first) and its name.
    static func findLayer(_ layer: String?, in src: GDALDatasetH, path: String) throws -> (OGRLayerH, String) {
        let layerHandle: OGRLayerH? = layer.map { GDALDatasetGetLayerByName(src, $0) } ?? (GDALDatasetGetLayerCount(src) > 0 ? GDALDatasetGetLayer(src, 0) : nil)
        guard let lh = layerHandle else {
            let names = (0..<GDALDatasetGetLayerCount(src)).compactMap { GDALDatasetGetLayer(src, $0) }.map { String(cString: OGR_L_GetName($0)) }
            throw RasterError(.invalidArgument, path: path, problem: layer.map { "no layer named '\($0)'" } ?? "the file has no vector layer",
                              hint: names.isEmpty ? "Give a file with polygons" : "Layers: " + names.joined(separator: ", "))
        }
        return (lh, String(cString: OGR_L_GetName(lh)))
    }

    /// Whether the layer's `attribute` is numeric (integer or real); throws when it has none.
    static func attributeIsNumeric(_ attribute: String, layer lh: OGRLayerH, layerName: String, path: String) throws -> Bool {
        let defn = OGR_L_GetLayerDefn(lh)
        let field = OGR_FD_GetFieldIndex(defn, attribute)
        guard field >= 0 else {
            let fields = (0..<OGR_FD_GetFieldCount(defn)).map { String(cString: OGR_Fld_GetNameRef(OGR_FD_GetFieldDefn(defn, $0))) }
            throw RasterError(.invalidArgument, path: path, problem: "layer '\(layerName)' has no attribute '\(attribute)'",
                              hint: "Attributes: " + fields.joined(separator: ", "))
        }
        let type = OGR_Fld_GetType(OGR_FD_GetFieldDefn(defn, field))
        return type == OFTInteger || type == OFTInteger64 || type == OFTReal
    }

    /// The destination: an Int32 GeoTIFF in /vsimem on the image grid, filled with `fill`
    /// (the caller closes it and unlinks its path).
    static func labelRaster(onto grid: RasterGrid, fill: Int32, path: String) throws -> (GDALDatasetH, String) {
        guard let gt = grid.geoTransform else {
            throw RasterError(.notGeoreferenced, path: path, problem: "the image has no geotransform, so vector labels cannot be placed on it",
                              hint: "Use a label raster instead, or georeference the image")
        }
        let memPath = "/vsimem/terraseg-labels-\(UUID().uuidString).tif"
        guard let driver = GDALGetDriverByName("GTiff"),
              let dst = GDALCreate(driver, memPath, Int32(grid.width), Int32(grid.height), 1, GDT_Int32, nil) else {
            throw RasterError(.createFailed, path: path, problem: "cannot allocate the label raster", gdalMessage: GDALRuntime.lastErrorMessage())
        }
        var c = gt.coefficients
        _ = c.withUnsafeMutableBufferPointer { GDALSetGeoTransform(dst, $0.baseAddress) }
        if let crs = grid.crs, let srs = OSRNewSpatialReference(crs.wkt) {
            _ = GDALSetSpatialRef(dst, srs)
            OSRDestroySpatialReference(srs)
        }
        let band = GDALGetRasterBand(dst, 1)
        _ = GDALSetRasterNoDataValue(band, Double(fill))
        _ = GDALFillRaster(band, Double(fill), 0)
        return (dst, memPath)
    }

    /// One GDALRasterize call with command-line `arguments` (gdal_rasterize's).
    static func burn(_ src: GDALDatasetH, into dst: GDALDatasetH, arguments args: [String], layerName: String, path: String) throws {
        let argv = GDALRuntime.stringList(args)
        defer { CSLDestroy(argv) }
        guard let options = GDALRasterizeOptionsNew(argv, nil) else {
            throw RasterError(.invalidArgument, path: path, problem: "bad rasterize options \(args)", gdalMessage: GDALRuntime.lastErrorMessage())
        }
        defer { GDALRasterizeOptionsFree(options) }
        GDALRuntime.resetError()
        var usageError: Int32 = 0
        if GDALRasterize(nil, dst, src, options, &usageError) == nil {
            throw RasterError(.readFailed, path: path, problem: "rasterising layer '\(layerName)' failed",
                              gdalMessage: GDALRuntime.lastErrorMessage(), hint: "Check the geometries with `ogrinfo -al \(path)`")
        }
    }
}
