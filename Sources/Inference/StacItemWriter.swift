import Core
import Foundation
import GeoRaster
import ModelIO
import Tiling

/// Where a map came from, as its STAC Item's `terraseg:` properties: the model bundle (folder
/// name, fingerprint of its model.json, architecture, training data and the TerraSeg that
/// trained it) and the TerraSeg that mapped.
public struct MapProvenance: Sendable, Hashable {
    public var model: String?
    /// FNV-1a of the bundle's model.json (which holds the training time and metrics).
    public var modelFingerprint: String?
    public var architecture: String?
    public var trainingData: [String] = []
    public var trainedWith: String?
    public var modelCreated: String?
    public var terrasegVersion: String

    public init(terrasegVersion: String = "unknown") { self.terrasegVersion = terrasegVersion }

    /// The provenance of maps of `bundle` (read from `directory`, when known).
    public init(bundle: ModelBundle?, directory: String?, terrasegVersion: String) {
        self.terrasegVersion = terrasegVersion
        guard let bundle else { return }
        architecture = bundle.architecture.name
        trainingData = bundle.provenance.trainingData
        trainedWith = bundle.provenance.terrasegVersion
        modelCreated = bundle.provenance.created
        guard let directory else { return }
        model = URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
        if let json = try? InputFile.read((directory as NSString).appendingPathComponent(ModelBundle.metadataFile)) {
            var hash = FNV1a()
            json.withUnsafeBytes { hash.add($0) }
            modelFingerprint = String(format: "%016llx", hash.value)
        }
    }

    var properties: [String: Any] {
        var p: [String: Any] = ["terraseg:version": terrasegVersion]
        p["terraseg:model"] = model
        p["terraseg:model_fingerprint"] = modelFingerprint
        p["terraseg:architecture"] = architecture
        if !trainingData.isEmpty { p["terraseg:training_data"] = trainingData }
        p["terraseg:trained_with"] = trainedWith
        p["terraseg:model_created"] = modelCreated
        return p
    }
}

/// Writes the STAC Item (1.1.0, projection and classification extensions) of a finished map:
/// `X.stac.json` beside `X.tif`, listing the map and the siblings on disk when it is written
/// (probabilities, confidence, `X.gpkg` polygons, `X.qml` style, `X.png` quicklook), so it
/// is written last. The `.stac.json` suffix says what the file is and cannot be taken for
/// another JSON sidecar (GDAL's `.aux.xml`, a GeoJSON, a model.json).
public struct StacItemWriter {
    public static let extensions = ["https://stac-extensions.github.io/projection/v2.0.0/schema.json",
                                    "https://stac-extensions.github.io/classification/v2.0.0/schema.json"]
    public var classMap: ClassMap
    public var provenance: MapProvenance
    public var cog: Bool

    public init(classMap: ClassMap, provenance: MapProvenance, cog: Bool) {
        self.classMap = classMap
        self.provenance = provenance
        self.cog = cog
    }

    /// `X.stac.json` for the map `X.tif`.
    public static func path(forMap map: String) -> String { MapSiblings(map: map).stacItem }

    static func base(of map: String) -> String { (map as NSString).deletingPathExtension }

    /// Writes the Item of `outputs` (atomically) and returns its path.
    @discardableResult
    public func write(outputs: SceneOutputs, job: SceneJob, now: Date = Date()) throws -> String {
        let path = Self.path(forMap: outputs.map)
        let item = try self.item(outputs: outputs, job: job, now: now)
        let data = try JSONSerialization.data(withJSONObject: item, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
        try AtomicFile.write(data + Data("\n".utf8), to: path)
        return path
    }

    func item(outputs: SceneOutputs, job: SceneJob, now: Date) throws -> [String: Any] {
        let info = try Dataset(path: outputs.map).info
        let footprint = try MapFootprint(grid: info.grid)
        var properties = provenance.properties.merging(projection(info.grid, footprint)) { a, _ in a }
        properties.merge(times(job.item, now: now)) { a, _ in a }
        var item: [String: Any] = ["type": "Feature", "stac_version": "1.1.0", "stac_extensions": Self.extensions,
                                   "id": URL(fileURLWithPath: Self.base(of: outputs.map)).lastPathComponent,
                                   "properties": properties, "assets": assets(outputs: outputs, info: info), "links": links(job)]
        if let footprint {
            item["geometry"] = ["type": "Polygon", "coordinates": [footprint.ring]]
            item["bbox"] = footprint.bbox
        } else {
            item["geometry"] = NSNull()
        }
        return item
    }

    /// The scene's time when its Item gave one (or its range: `datetime` null with start and
    /// end, as the specification requires), otherwise the time of prediction; `created` always.
    func times(_ scene: StacItem?, now: Date) -> [String: Any] {
        let created = ISO8601DateFormatter().string(from: now)
        guard let scene else { return ["datetime": created, "created": created] }
        if let datetime = scene.datetime { return ["datetime": datetime, "created": created] }
        return ["datetime": NSNull(), "start_datetime": scene.startDatetime ?? created, "end_datetime": scene.endDatetime ?? created, "created": created]
    }

    /// proj:code (or proj:wkt2 for CRSs without an EPSG code), proj:shape, proj:transform
    /// (the affine coefficients a…f), proj:bbox.
    func projection(_ grid: RasterGrid, _ footprint: MapFootprint?) -> [String: Any] {
        var p: [String: Any] = ["proj:shape": [grid.height, grid.width]]
        guard let t = grid.geoTransform?.coefficients, let footprint else { return p }
        p["proj:transform"] = [t[1], t[2], t[0], t[4], t[5], t[3]]
        p["proj:bbox"] = footprint.nativeBBox
        p["proj:code"] = footprint.epsg.map { "EPSG:\($0)" } ?? NSNull()
        if let wkt2 = footprint.wkt2 { p["proj:wkt2"] = wkt2 }
        return p
    }

    func assets(outputs: SceneOutputs, info: RasterInfo) -> [String: Any] {
        let geotiff = "image/tiff; application=geotiff"
        let wide = info.bands.first?.dataType == .uint16
        var map: [String: Any] = ["href": Self.href(outputs.map), "type": geotiff + (cog ? "; profile=cloud-optimized" : ""),
                                  "roles": ["data"], "title": "Class map", "data_type": wide ? "uint16" : "uint8", "nodata": wide ? 65535 : 255]
        map["classification:classes"] = classes(nodata: wide ? 65535 : 255)
        var assets: [String: Any] = ["map": map]
        if let p = outputs.probabilities {
            assets["probabilities"] = ["href": Self.href(p), "type": geotiff, "roles": ["data"], "title": "Class probabilities"]
        }
        if let c = outputs.confidence {
            assets["confidence"] = ["href": Self.href(c), "type": geotiff, "roles": ["data"], "title": "Maximum class probability"]
        }
        let names = MapSiblings(map: outputs.map)
        let siblings: [(String, String, String, [String], String)] = [
            ("polygons", names.polygons, "application/geopackage+sqlite3", ["data"], "Class polygons"),
            ("style", names.style, "application/xml", ["metadata"], "QGIS style"),
            ("quicklook", names.quicklook, "image/png", ["overview"], "Quicklook"),
        ]
        for (key, path, type, roles, title) in siblings where FileManager.default.fileExists(atPath: path) {
            assets[key] = ["href": Self.href(path), "type": type, "roles": roles, "title": title]
        }
        return assets
    }

    /// classification:classes: value, name (letters, digits, - and _), title, color_hint
    /// (hex without #), and the nodata value.
    func classes(nodata: Int) -> [[String: Any]] {
        classMap.classes.map { c in
            ["value": c.value, "name": Self.identifier(c.name), "title": c.name,
             "color_hint": String(format: "%02X%02X%02X", c.color.r, c.color.g, c.color.b)]
        } + [["value": nodata, "name": "nodata", "title": "no data", "nodata": true]]
    }

    /// A class name as the classification extension's `name`: other characters become `_`.
    static func identifier(_ name: String) -> String {
        let id = String(name.map { $0.isASCII && ($0.isLetter || $0.isNumber || $0 == "-" || $0 == "_") ? $0 : "_" })
        return id.isEmpty ? "class" : id
    }

    static func href(_ path: String) -> String { "./" + URL(fileURLWithPath: path).lastPathComponent }

    func links(_ job: SceneJob) -> [[String: Any]] {
        guard let scene = job.item else { return [] }
        return [["rel": "derived_from", "href": URL(fileURLWithPath: scene.file).standardizedFileURL.path, "type": "application/geo+json",
                 "title": "Scene (STAC Item)"]]
    }
}
