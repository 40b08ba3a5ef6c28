import CGDAL
import Core

/// The MODE overviews of a class map computed from its rows as they come, top to bottom, so a
/// map written in order needs no second pass over the file: GDALBuildOverviews at the end
/// reads the whole map back (12 s of a 20,000² map's 125 s, Benchmarks/README.md, B4).
/// Pixel for pixel what GDAL 3.6 builds (tested against GDALBuildOverviews on odd sizes, with
/// nodata, Byte and UInt16): each level from the level above (GDAL cascades MODE); destination
/// pixel i of a level covers source pixels ⌊i·r + 1e-8⌋ ..< ⌈(i + 1)·r − 1e-8⌉ (at least
/// one, clipped), r the ratio of the two levels' sizes, in x and y; nodata is not counted and
/// of equal counts the value that reached it first, in row-major order, wins.
final class ModeOverviews<Value: FixedWidthInteger & RasterScalar> {
    /// One overview level: its size, the columns each pixel covers, and the rows of the level
    /// above that it still needs.
    fileprivate struct Level {
        let width: Int, height: Int, sourceWidth: Int, sourceHeight: Int
        let columns: [Range<Int>]
        let ratioY: Double
        /// The most columns a pixel covers.
        let widestWindow: Int
        /// Rows `firstRow ..< firstRow + (rows.count - start) / sourceWidth` of the level above,
        /// from `rows[start]` (rows no longer needed are dropped by moving `start`, and removed
        /// when the next rows come).
        var rows: [Value] = []
        var start = 0
        var firstRow = 0
        var nextRow = 0

        func sourceRows(of row: Int) -> Range<Int> { ModeOverviews.window(row, ratio: ratioY, limit: sourceHeight) }
    }

    private var levels: [Level]
    private let nodata: Value

    /// The levels' sizes, as GDAL makes them for `factors` of a `width` × `height` raster.
    let sizes: [(width: Int, height: Int)]

    /// Nil where GDAL would not cascade every level (a level made from a level one pixel wide
    /// or high), which GDAL's own build then covers.
    init?(width: Int, height: Int, factors: [Int], nodata: Value) {
        var sizes: [(width: Int, height: Int)] = []
        var levels: [Level] = []
        var (w, h) = (width, height)
        for f in factors {
            let (ow, oh) = ((width + f - 1) / f, (height + f - 1) / f)
            guard w >= 2, h >= 2, ow < w, oh < h else { return nil }
            let ratioX = Double(w) / Double(ow)
            let columns = (0..<ow).map { ModeOverviews.window($0, ratio: ratioX, limit: w) }
            levels.append(Level(width: ow, height: oh, sourceWidth: w, sourceHeight: h, columns: columns, ratioY: Double(h) / Double(oh),
                                widestWindow: columns.map(\.count).max() ?? 1))
            sizes.append((ow, oh))
            (w, h) = (ow, oh)
        }
        guard !levels.isEmpty else { return nil }
        self.levels = levels
        self.sizes = sizes
        self.nodata = nodata
    }

    /// Whether every level has all its rows.
    var isComplete: Bool { levels.allSatisfy { $0.nextRow == $0.height } }

    /// GDAL's source window of destination pixel `i` (MODE resampling).
    static func window(_ i: Int, ratio: Double, limit: Int) -> Range<Int> {
        let lower = max(0, Int(Double(i) * ratio + 1e-8))
        var upper = Int((Double(i + 1) * ratio - 1e-8).rounded(.up))
        if upper == lower { upper += 1 }
        return lower..<min(upper, limit)
    }

    /// Takes the next `values.count / width` full-width rows of the raster; `emit(level, row,
    /// values)` receives each overview row as soon as it is complete (levels from 0, the largest).
    func push(_ values: UnsafeBufferPointer<Value>, emit: (Int, Int, UnsafeBufferPointer<Value>) throws -> Void) rethrows {
        try push(values, into: 0, emit: emit)
    }

    @_specialize(where Value == UInt8)
    @_specialize(where Value == UInt16)
    private func push(_ values: UnsafeBufferPointer<Value>, into l: Int, emit: (Int, Int, UnsafeBufferPointer<Value>) throws -> Void) rethrows {
        guard l < levels.count else { return }
        levels[l].take(values)
        var out = [Value](repeating: nodata, count: levels[l].width)
        while levels[l].nextRow < levels[l].height {
            let span = levels[l].sourceRows(of: levels[l].nextRow)
            guard span.upperBound <= levels[l].availableRows else { break }
            reduce(levels[l], rows: span, into: &out)
            try out.withUnsafeBufferPointer { row in
                try emit(l, levels[l].nextRow, row)
                try push(row, into: l + 1, emit: emit)
            }
            levels[l].nextRow += 1
            levels[l].dropRowsNoLongerNeeded()
        }
    }

    /// One overview row: the mode of each pixel's window in `rows` of the level above.
    @_specialize(where Value == UInt8)
    @_specialize(where Value == UInt16)
    private func reduce(_ level: Level, rows span: Range<Int>, into out: inout [Value]) {
        let most = span.count * level.widestWindow, nodata = nodata
        withUnsafeTemporaryAllocation(of: Value.self, capacity: most) { values in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: most) { counts in
                level.rows.withUnsafeBufferPointer { source in
                    out.withUnsafeMutableBufferPointer { out in
                        for (i, columns) in level.columns.enumerated() {
                            // A class map's 2 × 2 windows are mostly one value (or all nodata): its mode.
                            if span.count == 2 && columns.count == 2 {
                                let row = level.start + (span.lowerBound - level.firstRow) * level.sourceWidth + columns.lowerBound
                                let v = source[row]
                                if source[row + 1] == v && source[row + level.sourceWidth] == v && source[row + level.sourceWidth + 1] == v {
                                    out[i] = v
                                    continue
                                }
                            }
                            var distinct = 0, best = -1, bestCount = 0
                            for y in span {
                                let row = level.start + (y - level.firstRow) * level.sourceWidth
                                for x in columns {
                                    let v = source[row + x]
                                    guard v != nodata else { continue }
                                    var j = 0
                                    while j < distinct && values[j] != v { j += 1 }
                                    if j == distinct {
                                        values[j] = v
                                        counts[j] = 0
                                        distinct += 1
                                    }
                                    counts[j] += 1
                                    if counts[j] > bestCount { (best, bestCount) = (j, counts[j]) }
                                }
                            }
                            out[i] = best < 0 ? nodata : values[best]
                        }
                    }
                }
            }
        }
    }
}

extension ModeOverviews.Level {
    /// The end of the rows of the level above held.
    fileprivate var availableRows: Int { firstRow + (rows.count - start) / sourceWidth }

    /// Appends rows of the level above, first removing those dropped.
    fileprivate mutating func take(_ values: UnsafeBufferPointer<Value>) {
        rows.removeFirst(start)
        start = 0
        rows.append(contentsOf: values)
    }

    /// Drops the rows of the level above that no row from `nextRow` on needs.
    fileprivate mutating func dropRowsNoLongerNeeded() {
        let keep = nextRow < height ? sourceRows(of: nextRow).lowerBound : sourceHeight
        guard keep > firstRow else { return }
        start = min(rows.count, start + (keep - firstRow) * sourceWidth)
        firstRow = keep
    }
}

/// What `GeoTIFFWriter` hands the rows it writes to, when its overviews come with the rows.
protocol RowOverviewBuilding: AnyObject {
    /// Takes the rows of `window` just written to the band; false when they are not the next
    /// full-width rows (or not of the band's type): the overviews are then left to GDAL.
    func took<T: RasterScalar>(_ values: UnsafeBufferPointer<T>, window: Window) throws -> Bool
    var isComplete: Bool { get }
}

/// A one-band map's MODE overviews written with its rows (`GeoTIFFWriter.writeOverviewsWithRows`):
/// the rows go through `ModeOverviews`, each overview row into its overview band, and each block
/// row of the map and of its overviews is flushed once complete, so GDAL compresses and writes
/// every block once, while the map is written, instead of holding them all to the end.
final class RowOverviews<Value: FixedWidthInteger & RasterScalar>: RowOverviewBuilding {
    private let band: GDALRasterBandH
    private let overviewBands: [GDALRasterBandH]
    private let modes: ModeOverviews<Value>
    private let path: String
    private let width: Int, height: Int
    /// Rows per block of the map and of each overview: a block row is flushed when complete.
    private let blockRows: Int, overviewBlockRows: [Int]
    private var nextRow = 0

    /// Nil when GDAL's overview bands are not the levels `modes` computes.
    init?(band: GDALRasterBandH, modes: ModeOverviews<Value>, path: String) {
        let bands = (0..<Int(GDALGetOverviewCount(band))).compactMap { GDALGetOverview(band, Int32($0)) }
        guard bands.count == modes.sizes.count,
              zip(bands, modes.sizes).allSatisfy({ Int(GDALGetRasterBandXSize($0)) == $1.width && Int(GDALGetRasterBandYSize($0)) == $1.height })
        else { return nil }
        self.band = band
        overviewBands = bands
        self.modes = modes
        self.path = path
        width = Int(GDALGetRasterBandXSize(band))
        height = Int(GDALGetRasterBandYSize(band))
        blockRows = RowOverviews.blockRows(band)
        overviewBlockRows = bands.map(RowOverviews.blockRows)
    }

    private static func blockRows(_ band: GDALRasterBandH) -> Int {
        var (x, y): (Int32, Int32) = (0, 0)
        GDALGetBlockSize(band, &x, &y)
        return max(1, Int(y))
    }

    var isComplete: Bool { nextRow == height && modes.isComplete }

    func took<T: RasterScalar>(_ values: UnsafeBufferPointer<T>, window: Window) throws -> Bool {
        guard T.self == Value.self, window.column == 0, window.width == width, window.row == nextRow else { return false }
        let rows = UnsafeBufferPointer(start: UnsafeRawPointer(values.baseAddress!).assumingMemoryBound(to: Value.self), count: window.pixelCount)
        try modes.push(rows) { level, row, out in
            let ob = overviewBands[level], w = Int(GDALGetRasterBandXSize(ob)), h = Int(GDALGetRasterBandYSize(ob))
            var extra = GDALRasterIOExtraArg()
            ts_init_rasterio_extra_arg(&extra)
            let size = MemoryLayout<Value>.stride
            try check(GDALRasterIOEx(ob, GF_Write, 0, Int32(row), Int32(w), 1, UnsafeMutableRawPointer(mutating: out.baseAddress),
                                     Int32(w), 1, Value.gdalType, GSpacing(size), GSpacing(size * w), &extra), "writing overview \(level + 1)")
            if (row + 1) % overviewBlockRows[level] == 0 || row + 1 == h { try check(GDALFlushRasterCache(ob), "writing overview \(level + 1)") }
        }
        nextRow += window.height
        // Only at a block row's end: flushing a block not yet complete would write it twice.
        if nextRow % blockRows == 0 || nextRow == height { try check(GDALFlushRasterCache(band), "writing rows up to \(nextRow)") }
        return true
    }

    private func check(_ err: CPLErr, _ what: String) throws {
        guard err != CE_None else { return }
        throw RasterError(.writeFailed, path: path, band: 1, problem: "\(what) failed", gdalMessage: GDALRuntime.lastErrorMessage(),
                          hint: "Check free space and permissions of the output directory")
    }
}
