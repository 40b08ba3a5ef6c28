import CGDAL
import Core
import Foundation

/// Rasterises vector labels (GeoPackage, GeoJSON, Shapefile, any OGR source) onto a raster
/// grid through GDALRasterize, reprojecting the geometries when their CRS differs.
///
/// Classes come from an attribute (numeric: the label value; text: a class name, matched
/// case-insensitively) or from `burn` (every feature one class). Attribute values that match
/// no class are refused, listed with their feature counts, unless `ignoreUnmatched`. Pixels no
/// feature covers get `background` (one-class labels: "not a building") or stay unlabelled.
/// Overlap rule: a pixel covered by features of different classes is left unlabelled
/// (excluded from loss and metrics), as eo-learn's `overlap_value` does; features of one
/// class may overlap freely.
public enum VectorLabels {
    /// How the features become label values (a scene's vector-label settings).
    public struct Options: Sendable {
        public var layer: String?
        /// Attribute holding the class value (numeric) or class name (text); nil with `burn`.
        public var attribute: String?
        /// Every feature gets this label value.
        public var burn: Int?
        /// Label value of the pixels outside every feature; nil leaves them unlabelled.
        public var background: Int?
        /// Skip features whose attribute value matches no class instead of refusing them.
        public var ignoreUnmatched: Bool
        /// Value (the raster's nodata) of unlabelled pixels and of overlaps between classes.
        public var fill: Int32

        public init(layer: String? = nil, attribute: String? = nil, burn: Int? = nil, background: Int? = nil,
                    ignoreUnmatched: Bool = false, fill: Int32 = -1) {
            self.layer = layer
            self.attribute = attribute
            self.burn = burn
            self.background = background
            self.ignoreUnmatched = ignoreUnmatched
            self.fill = fill
        }
    }

    /// The label raster, and what was assumed or dropped on the way (one line each).
    public struct Rasterized {
        public let dataset: Dataset
        public let notices: [String]
    }

    /// One GDALRasterize pass: the features matching `condition` (nil: all) get `value`.
    struct Rule {
        var value: Int32
        var condition: String?
    }

    /// Rasterises `path` onto `grid` as an Int32 single-band raster held in memory (/vsimem),
    /// nodata `options.fill`. `classes` maps class names to label values; `knownValues` are
    /// the label values a numeric attribute may hold (classes and ignored values).
    public static func rasterize(path: String, options o: Options, classes: [String: Int], knownValues: Set<Int>,
                                 onto grid: RasterGrid) throws -> Rasterized {
        let src = try openVector(path)
        defer { GDALClose(src) }
        let (lh, layerName) = try findLayer(o.layer, in: src, path: path)
        guard o.attribute != nil || o.burn != nil else {
            throw RasterError(.invalidArgument, path: path, problem: "no class for the features: neither an attribute nor a burn value is given",
                              hint: "Set label_attribute: <field> (--label-attribute), or burn: <class value> when every feature is one class")
        }
        let isNumeric = try o.attribute.map { try attributeIsNumeric($0, layer: lh, layerName: layerName, path: path) } ?? true
        let survey = try VectorSurvey(layer: lh, attribute: o.burn == nil ? o.attribute : nil, grid: grid, path: path)
        var notices = try survey.notices(layerName: layerName, path: path, grid: grid)
        let rules: [Rule]
        if let burn = o.burn {
            rules = [Rule(value: Int32(burn), condition: nil)]
        } else {
            let (r, ignored) = try matchRules(survey.values, attribute: o.attribute!, isNumeric: isNumeric, classes: classes,
                                              knownValues: knownValues, ignoreUnmatched: o.ignoreUnmatched, path: path)
            rules = r
            if let ignored { notices.append(ignored) }
        }
        let overlaps = try LabelBurner(grid: grid, path: path).burn(src, layerName: layerName, rules: rules,
                                                                      background: o.background.map(Int32.init), fill: o.fill)
        if overlaps.pixels > 0 {
            notices.append("\(path): \(overlaps.pixels) pixels where features of different classes overlap are left unlabelled (not trained on)")
        }
        let ds = try Dataset(path: overlaps.memPath)
        ds.removeOnClose = overlaps.memPath
        return Rasterized(dataset: ds, notices: notices)
    }

    /// Burn rules for the attribute values that name a class; unmatched values throw, listed
    /// with their feature counts (or, with `ignoreUnmatched`, are skipped and reported).
    static func matchRules(_ values: [String: Int], attribute: String, isNumeric: Bool, classes: [String: Int], knownValues: Set<Int>,
                           ignoreUnmatched: Bool, path: String) throws -> ([Rule], String?) {
        let byName = Dictionary(classes.map { ($0.key.lowercased().trimmingCharacters(in: .whitespaces), $0.value) }, uniquingKeysWith: { a, _ in a })
        var matched: [Int: [String]] = [:], unmatched: [(String, Int)] = []
        for (raw, count) in values.sorted(by: { $0.key < $1.key }) {
            let value: Int? = isNumeric ? Double(raw).flatMap { Int(exactly: $0) }.flatMap { knownValues.contains($0) ? $0 : nil }
                                        : byName[raw.lowercased().trimmingCharacters(in: .whitespaces)]
            if let value, raw != nullValue { matched[value, default: []].append(raw) } else { unmatched.append((raw, count)) }
        }
        let field = "\"" + attribute.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        let rules = matched.sorted { $0.key < $1.key }.map { value, raws in
            let list = raws.map { isNumeric ? $0 : "'" + $0.replacingOccurrences(of: "'", with: "''") + "'" }.joined(separator: ", ")
            return Rule(value: Int32(value), condition: "\(field) IN (\(list))")
        }
        guard !unmatched.isEmpty else { return (rules, nil) }
        let listed = unmatched.map { "'\($0.0)' (\($0.1) feature\($0.1 == 1 ? "" : "s"))" }.joined(separator: ", ")
        let known = isNumeric ? knownValues.sorted().map(String.init) : classes.keys.sorted()
        if !ignoreUnmatched {
            throw RasterError(.invalidArgument, path: path,
                              problem: "values of attribute '\(attribute)' that match no class: \(listed)",
                              hint: "Classes are matched by \(isNumeric ? "value" : "name, ignoring case"): \(known.joined(separator: ", ")). Add the missing classes, fix the values, or set unmatched: ignore to skip these features")
        }
        let n = unmatched.reduce(0) { $0 + $1.1 }
        return (rules, "\(path): \(n) feature\(n == 1 ? "" : "s") with values of '\(attribute)' that match no class skipped (unmatched: ignore): \(listed)")
    }

    /// The key of features whose attribute is empty (never matches a class).
    static let nullValue = "(empty)"

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

    /// The destination: a GeoTIFF (Int32 by default) in /vsimem on the image grid, filled with `fill`
    /// (the caller closes it and unlinks its path).
    static func labelRaster(onto grid: RasterGrid, fill: Int32, path: String, type: GDALDataType = GDT_Int32) throws -> (GDALDatasetH, String) {
        guard let gt = grid.geoTransform else {
            throw RasterError(.notGeoreferenced, path: path, problem: "the image has no geotransform, so vector labels cannot be placed on it",
                              hint: "Use a label raster instead, or georeference the image")
        }
        let memPath = "/vsimem/terraseg-labels-\(UUID().uuidString).tif"
        guard let driver = GDALGetDriverByName("GTiff"),
              let dst = GDALCreate(driver, memPath, Int32(grid.width), Int32(grid.height), 1, type, nil) else {
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
