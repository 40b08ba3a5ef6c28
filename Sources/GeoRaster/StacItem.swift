import Core
import Foundation

/// A scene given as a local STAC Item (a GeoJSON Feature whose assets are the band files, as
/// Sentinel-2 and Landsat are catalogued): its id, acquisition time and assets. `files(bands:)`
/// picks the band files by asset key or band name (`eo:bands[].name`/`common_name` of STAC 1.0,
/// `bands[].name`/`eo:common_name` of 1.1), which are then stacked like band files given
/// directly (`SceneSources`, `BandStack`). Every malformed field is refused naming the file
/// and its key.
public struct StacItem: Sendable, Hashable {
    public struct Asset: Sendable, Hashable {
        public var key: String
        /// A local path (relative hrefs resolved against the Item's folder) or a GDAL /vsi… path.
        public var path: String
        /// The band names and common names the asset declares.
        public var bandNames: [String]
        /// How many band objects it declares (0: none declared).
        public var bandCount: Int
    }

    /// The Item file.
    public var file: String
    public var id: String
    /// `properties.datetime` as written (ISO 8601), or nil when the Item gives a range.
    public var datetime: String?
    public var startDatetime: String?
    public var endDatetime: String?
    public var assets: [Asset]

    /// Whether `path` is given as a STAC Item: a `.json` file (GeoTIFFs and folders never are).
    public static func isItemPath(_ path: String) -> Bool {
        URL(fileURLWithPath: path).pathExtension.lowercased() == "json"
    }

    public init(file: String) throws {
        self.file = file
        (id, assets) = ("", [])
        guard let data = try? InputFile.read(file) else {
            let why = InputFile.problem(file).map { ": \($0.problem)" } ?? ""
            throw RasterError(.notFound, path: file, problem: "cannot read the STAC Item\(why)", hint: "Give the path of a STAC Item JSON file")
        }
        guard let root = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any] else {
            throw refused("", "is not a JSON object", hint: "Give a STAC Item (a GeoJSON Feature with assets), e.g. as a STAC API returns it")
        }
        guard root["type"] as? String == "Feature" else {
            throw refused("type", "must be \"Feature\" (a STAC Item), found \(Self.describe(root["type"]))",
                          hint: "Give one Item, not a Collection, Catalog or FeatureCollection: save one of its features")
        }
        guard root["stac_version"] is String else {
            throw refused("stac_version", "must be a version string such as \"1.0.0\", found \(Self.describe(root["stac_version"]))")
        }
        guard let id = root["id"] as? String, !id.isEmpty else {
            throw refused("id", "must be a non-empty string, found \(Self.describe(root["id"]))")
        }
        self.id = id
        guard let properties = root["properties"] as? [String: Any] else {
            throw refused("properties", "must be an object, found \(Self.describe(root["properties"]))")
        }
        (datetime, startDatetime, endDatetime) = try readTimes(properties)
        guard let assets = root["assets"] as? [String: Any], !assets.isEmpty else {
            throw refused("assets", "must be an object of one or more assets, found \(Self.describe(root["assets"]))",
                          hint: "List the band files as assets, each with an href")
        }
        self.assets = try assets.keys.sorted().map { try readAsset(key: $0, assets[$0]) }
    }

    /// The files of `bands` (asset keys or band names, matched ignoring case), in that order.
    /// Without names: refused, listing what the Item offers.
    public func files(bands: [String]?) throws -> [String] {
        guard let bands, !bands.isEmpty else {
            throw refused("assets", "to stack are not named (the Item has \(offered))",
                          hint: "Name them in order (asset keys or band names): --bands for predict, --band-names or data.band_names for training")
        }
        return try bands.map { try asset(named: $0).path }
    }

    /// The asset of `name`: by key first, then by the one asset declaring that band name.
    func asset(named name: String) throws -> Asset {
        let wanted = name.lowercased()
        if let byKey = assets.first(where: { $0.key.lowercased() == wanted }) { return try single(byKey, name) }
        let byBand = assets.filter { $0.bandNames.contains(where: { $0.lowercased() == wanted }) }
        guard byBand.count == 1 else {
            let problem = byBand.isEmpty ? "hold no band \(name)" : "hold band \(name) \(byBand.count) times (\(byBand.map(\.key).joined(separator: ", ")))"
            throw refused("assets", "\(problem) (the Item has \(offered))", hint: "Name each band by its asset key")
        }
        return try single(byBand[0], name)
    }

    /// Refuses an asset of several bands: one band per asset is stacked.
    func single(_ asset: Asset, _ name: String) throws -> Asset {
        guard asset.bandCount <= 1 else {
            throw refused("assets.\(asset.key)", "holds \(asset.bandCount) bands (\(asset.bandNames.joined(separator: ", "))) but band \(name) is asked for",
                          hint: "Name single-band assets (one file per band), or give the file itself as the scene")
        }
        return asset
    }

    /// "assets red (B04), nir (B08), …" for messages.
    var offered: String {
        "assets " + assets.map { $0.bandNames.isEmpty ? $0.key : "\($0.key) (\($0.bandNames.joined(separator: ", ")))" }.joined(separator: ", ")
    }

    func refused(_ key: String, _ problem: String, hint: String? = nil) -> RasterError {
        RasterError(.invalidArgument, path: file, problem: key.isEmpty ? problem : "\(key) \(problem)",
                    hint: hint ?? "Fix the Item (STAC Item specification, https://stacspec.org)")
    }

    static func describe(_ value: Any?) -> String {
        switch value {
        case nil: return "nothing"
        case is NSNull: return "null"
        case let s as String: return "\"\(s.prefix(40))\""
        case is [Any]: return "a list"
        case is [String: Any]: return "an object"
        default: return "\(value!)"
        }
    }
}

extension StacItem {
    /// `datetime`, or with a null `datetime` both `start_datetime` and `end_datetime` (the
    /// specification's rule), each an RFC 3339 time.
    func readTimes(_ properties: [String: Any]) throws -> (String?, String?, String?) {
        func time(_ key: String) throws -> String? {
            switch properties[key] {
            case nil, is NSNull: return nil
            case let s as String where Self.parseTime(s) != nil: return s
            case let other: throw refused("properties.\(key)", "must be an RFC 3339 time such as \"2020-06-01T10:30:00Z\", found \(Self.describe(other))")
            }
        }
        let datetime = try time("datetime"), start = try time("start_datetime"), end = try time("end_datetime")
        if datetime == nil {
            guard properties.keys.contains("datetime") else {
                throw refused("properties.datetime", "is missing", hint: "Give datetime (null with start_datetime and end_datetime for a range)")
            }
            guard start != nil, end != nil else {
                throw refused("properties.\(start == nil ? "start_datetime" : "end_datetime")", "must be given when datetime is null (a time range)")
            }
        }
        return (datetime, start, end)
    }

    /// The time in an RFC 3339 text (fractional seconds allowed), or nil.
    public static func parseTime(_ text: String) -> Date? {
        let f = ISO8601DateFormatter()
        if let d = f.date(from: text) { return d }
        f.formatOptions.insert(.withFractionalSeconds)
        return f.date(from: text)
    }

    func readAsset(key: String, _ value: Any?) throws -> Asset {
        guard let asset = value as? [String: Any] else { throw refused("assets.\(key)", "must be an object, found \(Self.describe(value))") }
        guard let href = asset["href"] as? String, !href.isEmpty else {
            throw refused("assets.\(key).href", "must be the asset's path, found \(Self.describe(asset["href"]))")
        }
        var names: [String] = [], bandCount = 0
        for field in ["eo:bands", "bands"] where asset[field] != nil {
            guard let list = asset[field] as? [[String: Any]] else {
                throw refused("assets.\(key).\(field)", "must be a list of band objects, found \(Self.describe(asset[field]))")
            }
            bandCount = max(bandCount, list.count)
            for (i, band) in list.enumerated() {
                for nameKey in ["name", "common_name", "eo:common_name"] where band[nameKey] != nil {
                    guard let n = band[nameKey] as? String, !n.isEmpty else {
                        throw refused("assets.\(key).\(field)[\(i)].\(nameKey)", "must be a non-empty string, found \(Self.describe(band[nameKey]))")
                    }
                    if !names.contains(n) { names.append(n) }
                }
            }
        }
        return Asset(key: key, path: try resolve(href, key: key), bandNames: names, bandCount: bandCount)
    }

    /// A local path: absolute, relative to the Item's folder, `file://…`, or a GDAL /vsi… path.
    /// Remote URLs are refused (TerraSeg reads local scenes).
    func resolve(_ href: String, key: String) throws -> String {
        if href.hasPrefix("/vsi") { return href }
        var path = href
        if href.hasPrefix("file://") { path = URL(string: href)?.path ?? String(href.dropFirst(7)) }
        else if let scheme = href.range(of: "://") {
            throw refused("assets.\(key).href", "is a remote URL (\(href[..<scheme.lowerBound])://…), not a local file",
                          hint: "Download the asset and point href at the file, or use a GDAL virtual path such as /vsicurl/\(href)")
        }
        if !path.hasPrefix("/") {
            path = URL(fileURLWithPath: file).deletingLastPathComponent().appendingPathComponent(path).standardizedFileURL.path
        }
        guard FileManager.default.fileExists(atPath: path) else {
            throw refused("assets.\(key).href", "names \(path), which does not exist", hint: "Keep the band files where the Item says (relative hrefs are read from the Item's folder)")
        }
        return path
    }
}
