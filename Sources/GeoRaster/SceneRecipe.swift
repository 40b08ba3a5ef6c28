import Foundation

/// Sentinel-2 band names (B01…B12, B8A) found in file names, so a scene can be given as a
/// folder of band files and a list of band names.
public enum SentinelBands {
    public static let names = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B10", "B11", "B12"]

    /// The band name in a file name ("T31TCJ_20200101T103431_B8A_20m.jp2" → "B8A"), or nil
    /// when none, or more than one, appears as a separate token.
    public static func name(in path: String) -> String? {
        let stem = URL(fileURLWithPath: path).deletingPathExtension().lastPathComponent.uppercased()
        let tokens = stem.split(whereSeparator: { !$0.isLetter && !$0.isNumber }).map(String.init)
        let found = Set(tokens.filter { names.contains($0) })
        return found.count == 1 ? found.first : nil
    }

    static let rasterExtensions: Set<String> = ["tif", "tiff", "jp2", "vrt", "img"]

    /// The file of each band name in `folder`, in the order of `bands`. Refuses a name with
    /// no file or with several, listing what the folder holds.
    public static func files(in folder: String, bands: [String]) throws -> [String] {
        let entries = ((try? FileManager.default.contentsOfDirectory(atPath: folder)) ?? []).sorted()
            .filter { rasterExtensions.contains(URL(fileURLWithPath: $0).pathExtension.lowercased()) }
        var byName: [String: [String]] = [:]
        for e in entries { if let n = name(in: e) { byName[n, default: []].append((folder as NSString).appendingPathComponent(e)) } }
        let available = byName.keys.sorted().joined(separator: ", ")
        return try bands.map { band in
            let key = band.uppercased()
            guard let matches = byName[key], !matches.isEmpty else {
                throw RasterError(.notFound, path: folder, problem: "no file of band \(band) (band files found: \(available.isEmpty ? "none" : available))",
                                  hint: "Give a folder with one file per band named like *_\(key).tif, or list the band files joined by commas")
            }
            guard matches.count == 1 else {
                throw RasterError(.invalidArgument, path: folder, problem: "band \(band) has \(matches.count) files: " + matches.map { URL(fileURLWithPath: $0).lastPathComponent }.joined(separator: ", "),
                                  hint: "Keep one file per band in the folder (e.g. only the 10 m or only the 20 m one), or list the band files joined by commas")
            }
            return matches[0]
        }
    }
}

/// How a scene's sources were put together for training, kept in the model bundle so that
/// `predict` reads a new scene the same way: band names, source order, resampling, nodata
/// overrides, and the scene grid's resolution.
public struct SceneRecipe: Codable, Sendable, Hashable {
    public struct Source: Codable, Sendable, Hashable {
        /// Sentinel-2 band name, or nil when the file name has none.
        public var name: String?
        public var bands: Int
        public var resampling: Resampling?
        public var nodata: Double?
        /// The source's pixel size at training (for messages).
        public var resolution: Double?

        public init(name: String?, bands: Int, resampling: Resampling?, nodata: Double?, resolution: Double?) {
            self.name = name
            self.bands = bands
            self.resampling = resampling
            self.nodata = nodata
            self.resolution = resolution
        }
    }

    public var sources: [Source]
    /// The scene grid's pixel size at training.
    public var resolution: Double?
    /// The grid's CRS when training named one (`crs:`); nil = the first source's.
    public var crs: String?
    /// Whether the scene grid was the first source's (no `grid:` / `resolution:`).
    public var gridFromFirstSource: Bool
    /// The training grid's CRS ("EPSG:4326", or its WKT), the units of `resolution`; nil in
    /// bundles made before it was kept.
    public var trainingCRS: String?

    /// Bundles are written in snake case: "training_crs" reads back as "trainingCrs".
    enum CodingKeys: String, CodingKey {
        case sources, resolution, crs, gridFromFirstSource, trainingCRS = "trainingCrs"
    }

    public init(sources: [Source], resolution: Double?, crs: String?, gridFromFirstSource: Bool, trainingCRS: String? = nil) {
        self.sources = sources
        self.resolution = resolution
        self.crs = crs
        self.gridFromFirstSource = gridFromFirstSource
        self.trainingCRS = trainingCRS
    }

    /// The recipe of a scene opened from `specs` on the grid `grid` said.
    public init(specs: [SourceSpec], grid: GridSpec, scene: RasterInfo) throws {
        var sources: [Source] = []
        for s in specs {
            let info = try s.open().info
            sources.append(Source(name: s.name, bands: info.dataBandIndices.count, resampling: s.resampling, nodata: s.nodata,
                                  resolution: info.grid.pixelSize))
        }
        self.init(sources: sources, resolution: scene.grid.pixelSize, crs: grid.crs, gridFromFirstSource: grid.isDefault,
                  trainingCRS: scene.crs.map { $0.epsg.map { "EPSG:\($0)" } ?? $0.wkt })
    }

    /// The sources' band names when every source has one (a folder is then one scene's band files).
    public var bandNames: [String]? {
        let names = sources.compactMap(\.name)
        return names.count == sources.count ? names : nil
    }

    /// The sources of a new scene: `paths` as band files in training order (a path may join
    /// mosaic parts with "+"), or one folder of band files found by their band names.
    public func sources(for paths: [String]) throws -> [SourceSpec] {
        let files = try SceneSources.files(paths, bandNames: bandNames)
        if sources.count > 1 && files.count != sources.count {
            let names = sources.enumerated().map { $0.element.name ?? "source \($0.offset + 1)" }.joined(separator: ", ")
            throw RasterError(.badBand, path: paths.joined(separator: ","),
                              problem: "the model was trained on \(sources.count) band sources (\(names)) but the scene gives \(files.count)",
                              hint: "Give the same kinds of band files, in the same order, joined by commas (or a folder of Sentinel-2 band files)")
        }
        return files.enumerated().map { i, f in
            let s = i < sources.count ? sources[i] : nil
            return SourceSpec(files: f, name: s?.name ?? SentinelBands.name(in: f[0]), resampling: s?.resampling, nodata: s?.nodata)
        }
    }

    /// The grid of a new scene: the first source's when training used it and the pixel size
    /// matches; otherwise the training resolution over the first source's area, in the first
    /// source's CRS, or in the training CRS where the two measure in other units (a scene in
    /// metres for a model trained in degrees: its resolution means nothing in metres).
    public func grid(firstSource: RasterInfo) -> GridSpec {
        guard let resolution else { return GridSpec() }
        if gridFromFirstSource, let own = firstSource.grid.pixelSize, abs(own - resolution) <= 1e-6 * resolution { return GridSpec() }
        if crs == nil, let trainingCRS, let own = firstSource.crs, let trained = try? SpatialReference(userInput: trainingCRS),
           trained.unitName != own.unitName {
            return GridSpec(resolution: resolution, crs: trainingCRS)
        }
        return GridSpec(resolution: resolution, crs: crs)
    }
}

/// Scene paths as users give them, turned into sources.
public enum SceneSources {
    /// Each path's files: "a.tif+b.tif" is a mosaic of one source; one folder is read as
    /// Sentinel-2 band files by `bandNames`, one STAC Item as its assets of `bandNames`.
    public static func files(_ paths: [String], bandNames: [String]?) throws -> [[String]] {
        if paths.count == 1, StacItem.isItemPath(paths[0]) {
            return try StacItem(file: paths[0]).files(bands: bandNames).map { [$0] }
        }
        var isDirectory: ObjCBool = false
        if paths.count == 1, FileManager.default.fileExists(atPath: paths[0], isDirectory: &isDirectory), isDirectory.boolValue {
            guard let bandNames, !bandNames.isEmpty else {
                throw RasterError(.invalidArgument, path: paths[0], problem: "a folder is given as the scene but no band names",
                                  hint: "Train with the band names (--band-names B02,B03,B04,B08 or data.band_names: the model then finds them in a folder), or give the band files joined by commas")
            }
            return try SentinelBands.files(in: paths[0], bands: bandNames).map { [$0] }
        }
        return paths.map { $0.split(separator: "+").map(String.init) }
    }

    /// The sources of a scene with per-source settings: a list of one value applies to every
    /// source, otherwise one value per source.
    public static func make(_ paths: [String], bandNames: [String]?, resampling: [Resampling], nodata: [Double]) throws -> [SourceSpec] {
        let files = try files(paths, bandNames: bandNames)
        func pick<T>(_ list: [T], _ what: String, _ i: Int) throws -> T? {
            if list.isEmpty { return nil }
            if list.count == 1 { return list[0] }
            guard list.count == files.count else {
                throw RasterError(.invalidArgument, path: paths.joined(separator: ","),
                                  problem: "\(list.count) \(what) values for \(files.count) sources",
                                  hint: "Give one \(what) value for all sources, or one per source in order")
            }
            return list[i]
        }
        let named = bandNames.flatMap { $0.count == files.count ? $0 : nil }
        return try files.enumerated().map { i, f in
            SourceSpec(files: f, name: named?[i] ?? SentinelBands.name(in: f[0]),
                       resampling: try pick(resampling, "resampling", i), nodata: try pick(nodata, "nodata", i))
        }
    }
}

/// Opens a scene the way a model bundle's recipe says (nil: as `openRaster`).
public func openRaster(_ paths: [String], recipe: SceneRecipe?) throws -> any RasterSource {
    guard let recipe else { return try openRaster(paths) }
    // One file holding all the recipe's bands: the scene was stacked (and warped) beforehand.
    if paths.count == 1, recipe.sources.count > 1, !paths[0].contains("+"), let single = try? Dataset(path: paths[0]),
       single.info.dataBandIndices.count == recipe.sources.map(\.bands).reduce(0, +) {
        return single
    }
    let sources = try recipe.sources(for: paths)
    guard let firstSource = sources.first else {
        throw RasterError(.invalidArgument, path: "(none)", problem: "the scene lists no file", hint: "Give the scene's band files")
    }
    let first = try firstSource.open().info
    return try openScene(sources, grid: recipe.grid(firstSource: first))
}
