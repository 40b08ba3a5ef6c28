import Core
import Foundation
import Logging

/// One source of a scene as users give it: a raster file, or several adjacent files of the
/// same bands (mosaicked); its band name (e.g. Sentinel-2's "B8A"), how it is resampled
/// onto the scene grid (nil: bilinear, average when coarsening; nearest/mode for classes),
/// and a nodata value for files that carry none.
public struct SourceSpec: Codable, Sendable, Hashable {
    public var files: [String]
    public var name: String?
    public var resampling: Resampling?
    public var nodata: Double?

    public init(files: [String], name: String? = nil, resampling: Resampling? = nil, nodata: Double? = nil) {
        self.files = files
        self.name = name
        self.resampling = resampling
        self.nodata = nodata
    }

    /// "a.tif" or "a.tif + b.tif" (a mosaic).
    public var label: String { files.joined(separator: " + ") }

    /// Opens the file, or the mosaic of the files, with the nodata override applied.
    func open() throws -> Dataset {
        guard !files.isEmpty else {
            throw RasterError(.invalidArgument, path: "(none)", problem: "a source lists no file", hint: "Give at least one file per source")
        }
        let d = files.count == 1 ? try Dataset(path: files[0]) : try Dataset.mosaic(files, nodata: nodata)
        if let nodata { d.overrideNodata(nodata) }
        return d
    }
}

extension Dataset {
    /// Treats `value` as nodata in every band (for files without a nodata tag); says so when
    /// it replaces a tag the file has.
    func overrideNodata(_ value: Double) {
        for i in info.bands.indices {
            if let own = info.bands[i].nodata, own != value, !(own.isNaN && value.isNaN) {
                SceneNotices.say("\(info.path): nodata \(RasterGrid.fmt(value)) given replaces the file's own nodata \(RasterGrid.fmt(own)) (band \(i + 1))")
            }
            info.bands[i].nodata = value
        }
    }
}

/// Notices about what TerraSeg changed in its inputs (resampled sources, warped labels),
/// logged once per process each, however many threads open the same scene.
public enum SceneNotices {
    static let logger = Logger(label: "terraseg.grid")
    nonisolated(unsafe) private static var said: Set<String> = []
    private static let lock = NSLock()

    public static func say(_ text: String) {
        let isNew = lock.withLock { said.insert(text).inserted }
        if isNew { logger.notice("\(text)") }
    }
}

/// Several sources read as one N-band raster on one scene grid, bands in source order (for
/// example Landsat's or Sentinel-2's one file per band). Sources on another grid (resolution,
/// extent or CRS) are read onto it through GDAL's warper, window by window, each with a
/// one-line notice; a source that does not overlap the grid is refused.
public final class BandStack: RasterSource {
    public let members: [Dataset]
    public let info: RasterInfo
    /// One line per source read onto the scene grid through the warper.
    public let notices: [String]
    /// For each stack band (0-based): which member, and its band there (1-based).
    private let bandMap: [(member: Int, band: Int)]
    private var scratch = RasterBlock()

    public convenience init(paths: [String]) throws {
        try self.init(sources: paths.map { SourceSpec(files: [$0]) })
    }

    public init(sources: [SourceSpec], grid spec: GridSpec = GridSpec()) throws {
        guard !sources.isEmpty else {
            throw RasterError(.invalidArgument, path: "(none)", problem: "a band stack needs at least one file")
        }
        let opened = try sources.map { try $0.open() }
        let grid = try spec.resolve(first: opened[0].info)
        var members: [Dataset] = [], notices: [String] = []
        var bands: [BandInfo] = []
        var map: [(Int, Int)] = []
        for (source, d) in zip(sources, opened) {
            var member = d, own = d.info.bands
            let diffs = grid.differences(from: d.info.grid)
            if !diffs.isEmpty {
                guard grid.geoTransform != nil, d.info.geoTransform != nil else {
                    throw RasterError(.gridMismatch, path: d.info.path,
                                      problem: "not on the grid of \(sources[0].label): " + diffs.joined(separator: "; "),
                                      hint: "Without georeferencing it cannot be warped: give band files of one size, or georeferenced ones (or resample with `gdalwarp` onto the first file's grid)")
                }
                let resampling = try source.resampling ?? BandStack.automaticResampling(d.info, onto: grid)
                try BandStack.checkOverlap(d.info, grid: grid, what: "source")
                member = try d.warped(onto: grid, resampling: resampling, nodata: source.nodata)
                own = Array(member.info.bands.dropLast())  // the warper's alpha band is the validity
                let note = "\(source.label): read onto the scene grid (\(grid.resamplingSummary(of: d.info.grid))) with \(resampling.rawValue) resampling"
                notices.append(note)
                SceneNotices.say(note)
            }
            for b in own {
                var copy = b
                copy.index = bands.count + 1
                bands.append(copy)
                map.append((members.count, b.index))
            }
            members.append(member)
        }
        self.members = members
        self.notices = notices
        bandMap = map
        var combined = members[0].info
        combined.path = sources.map(\.label).joined(separator: " + ")
        combined.bands = bands
        (combined.width, combined.height, combined.geoTransform, combined.crs) = (grid.width, grid.height, grid.geoTransform, grid.crs)
        info = combined
    }

    /// Bilinear (average when the grid is coarser than the source); nearest (mode when
    /// coarser) for categorical bands.
    static func automaticResampling(_ source: RasterInfo, onto grid: RasterGrid) throws -> Resampling {
        let categorical = source.bands.first?.isCategorical ?? false
        var coarsening = false
        if let e = try source.grid.extent(in: grid.crs), let target = grid.pixelSize {
            let sourcePixel = max((e.maxX - e.minX) / Double(source.width), (e.maxY - e.minY) / Double(source.height))
            coarsening = sourcePixel < target * 0.999
        }
        return Resampling.automatic(categorical: categorical, coarsening: coarsening)
    }

    /// Refuses a raster that does not overlap `grid`, naming both extents in the grid's CRS.
    public static func checkOverlap(_ source: RasterInfo, grid: RasterGrid, what: String) throws {
        guard let target = grid.extent, let e = try source.grid.extent(in: grid.crs) else { return }
        if !e.intersects(target) {
            let crs = grid.crs?.shortName ?? "map units"
            throw RasterError(.gridMismatch, path: source.path,
                              problem: "the \(what) does not overlap the scene: it covers \(e), the scene \(target) (both in \(crs))",
                              hint: "Give files of the same place (check them with `gdalinfo`), or the right grid:/bounds:")
        }
    }

    public func read(window: Window, bands: [Int]?, into block: inout RasterBlock) throws {
        let selection = try resolveBands(bands)
        block.reshape(window: window, bandCount: selection.count)
        let n = window.pixelCount
        block.valid.withUnsafeMutableBufferPointer { $0.update(repeating: 1) }
        // Read each member once with the bands it contributes, then scatter the planes.
        var positionsByMember: [Int: [(position: Int, band: Int)]] = [:]
        for (pos, b) in selection.enumerated() {
            let (m, local) = bandMap[b - 1]
            positionsByMember[m, default: []].append((pos, local))
        }
        for m in positionsByMember.keys.sorted() {
            let entries = positionsByMember[m]!
            try members[m].read(window: window, bands: entries.map(\.band), into: &scratch)
            scratch.values.withUnsafeBufferPointer { src in
                block.values.withUnsafeMutableBufferPointer { dst in
                    for (k, e) in entries.enumerated() {
                        dst.baseAddress!.advanced(by: e.position * n).update(from: src.baseAddress! + k * n, count: n)
                    }
                }
            }
            scratch.valid.withUnsafeBufferPointer { src in
                block.valid.withUnsafeMutableBufferPointer { dst in
                    for i in 0..<n where src[i] == 0 { dst[i] = 0 }
                }
            }
        }
        // A pixel invalid in one member reads as 0 in every band.
        block.valid.withUnsafeBufferPointer { valid in
            block.values.withUnsafeMutableBufferPointer { vals in
                for pos in 0..<selection.count {
                    let plane = vals.baseAddress! + pos * n
                    for i in 0..<n where valid[i] == 0 { plane[i] = 0 }
                }
            }
        }
    }
}

/// Opens one raster, or stacks several (read onto the first one's grid where they differ).
public func openRaster(_ paths: [String]) throws -> any RasterSource {
    if paths.count == 1 { return try Dataset(path: paths[0]) }
    return try BandStack(paths: paths)
}

/// Opens a scene from its sources on the grid `grid` says: one plain file is read as it is;
/// anything else (several sources, a mosaic, an override, another grid) as a `BandStack`.
public func openScene(_ sources: [SourceSpec], grid: GridSpec = GridSpec()) throws -> any RasterSource {
    if sources.count == 1, sources[0].files.count == 1, grid.isDefault, sources[0].nodata == nil {
        return try Dataset(path: sources[0].files[0])
    }
    return try BandStack(sources: sources, grid: grid)
}
