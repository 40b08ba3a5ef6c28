import Core
/// Several rasters on one grid read as one N-band source, bands in file order (for example
/// Landsat's one file per band). Files whose grids differ are refused, saying how.
public final class BandStack: RasterSource {
    public let members: [Dataset]
    public let info: RasterInfo
    /// For each stack band (0-based): which member, and its band there (1-based).
    private let bandMap: [(member: Int, band: Int)]
    private var scratch = RasterBlock()

    public convenience init(paths: [String]) throws {
        try self.init(datasets: paths.map { try Dataset(path: $0) })
    }

    public init(datasets: [Dataset]) throws {
        guard let first = datasets.first else {
            throw RasterError(.invalidArgument, path: "(none)", problem: "a band stack needs at least one file")
        }
        let reference = first.info.grid
        for d in datasets.dropFirst() {
            let diffs = reference.differences(from: d.info.grid)
            if !diffs.isEmpty {
                throw RasterError(.gridMismatch, path: d.info.path,
                                  problem: "not on the grid of \(first.info.path): " + diffs.joined(separator: "; "),
                                  hint: "Stacked band files must share size, geotransform and CRS; resample with `gdalwarp` onto the first file's grid")
            }
        }
        members = datasets
        var bands: [BandInfo] = []
        var map: [(Int, Int)] = []
        for (m, d) in datasets.enumerated() {
            for b in d.info.bands {
                var copy = b
                copy.index = bands.count + 1
                bands.append(copy)
                map.append((m, b.index))
            }
        }
        bandMap = map
        var combined = first.info
        combined.path = datasets.map(\.info.path).joined(separator: " + ")
        combined.bands = bands
        info = combined
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

/// Opens one raster, or stacks several on one grid.
public func openRaster(_ paths: [String]) throws -> any RasterSource {
    if paths.count == 1 { return try Dataset(path: paths[0]) }
    return try BandStack(paths: paths)
}
