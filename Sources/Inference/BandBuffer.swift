import Core
import Foundation
import GeoRaster

/// Where the predictor's pixels go: an output file (`GeoTIFFWriter`) or, for a band of a scene
/// split across ranks, memory (`BandBuffer`).
protocol PixelSink: AnyObject {
    /// Writes `values` (row-major, window.width × window.height) into `window` of `band` (1-based).
    func write<T: RasterScalar>(_ values: UnsafeBufferPointer<T>, window: Window, band: Int) throws
}

extension PixelSink {
    func write<T: RasterScalar>(_ values: [T], window: Window, band: Int) throws {
        try values.withUnsafeBufferPointer { try write($0, window: window, band: band) }
    }
}

extension GeoTIFFWriter: PixelSink {}

/// Full-width rows `rows` of one output raster, every band, in memory: what a rank predicts of
/// a scene split across ranks (`SceneBands`). Pixels outside the rows are dropped (a stream
/// band also computes context rows above and below, which another rank writes).
final class BandBuffer: PixelSink, @unchecked Sendable {
    let rows: Range<Int>
    let width: Int, bands: Int
    /// Bytes per value: 1 (Byte), 2 (UInt16), 4 (Float32).
    let valueSize: Int
    /// Band after band, row after row.
    var bytes: [UInt8]

    init(rows: Range<Int>, width: Int, bands: Int, valueSize: Int) {
        self.rows = rows
        self.width = width
        self.bands = bands
        self.valueSize = valueSize
        bytes = [UInt8](repeating: 0, count: rows.count * width * bands * valueSize)
    }

    func write<T: RasterScalar>(_ values: UnsafeBufferPointer<T>, window: Window, band: Int) throws {
        guard MemoryLayout<T>.stride == valueSize, (1...bands).contains(band), window.column >= 0, window.column + window.width <= width,
              values.count >= window.pixelCount else {
            throw TerraSegError(.invalidArgument, path: "band of rows \(rows)",
                                problem: "cannot hold \(T.self) values of \(window) in band \(band) of \(bands)")
        }
        let top = max(window.row, rows.lowerBound), bottom = min(window.row + window.height, rows.upperBound)
        guard top < bottom else { return }
        let rowBytes = window.width * valueSize
        bytes.withUnsafeMutableBytes { dst in
            let source = UnsafeRawBufferPointer(values)
            for r in top..<bottom {
                let to = (((band - 1) * rows.count + r - rows.lowerBound) * width + window.column) * valueSize
                let from = (r - window.row) * rowBytes
                (dst.baseAddress! + to).copyMemory(from: source.baseAddress! + from, byteCount: rowBytes)
            }
        }
    }

    /// Writes `window` (inside the rows) into the same window of `file`, band by band (band b
    /// into the file's band b + `offset`).
    func write(_ window: Window, into file: any PixelSink, bandOffset offset: Int = 0) throws {
        guard !window.isEmpty else { return }
        guard window.row >= rows.lowerBound, window.row + window.height <= rows.upperBound, window.column >= 0,
              window.column + window.width <= width else {
            throw TerraSegError(.invalidArgument, path: "band of rows \(rows)", problem: "window \(window) is outside the band")
        }
        let plane = rows.count * width, n = window.pixelCount
        var part = [UInt8](repeating: 0, count: n * valueSize)
        for b in 1...bands {
            bytes.withUnsafeBytes { src in
                part.withUnsafeMutableBytes { dst in
                    let rowBytes = window.width * valueSize
                    for r in 0..<window.height {
                        let from = ((b - 1) * plane + (window.row + r - rows.lowerBound) * width + window.column) * valueSize
                        (dst.baseAddress! + r * rowBytes).copyMemory(from: src.baseAddress! + from, byteCount: rowBytes)
                    }
                }
            }
            try part.withUnsafeBytes { raw in
                switch valueSize {
                case 1: try file.write(raw.bindMemory(to: UInt8.self), window: window, band: b + offset)
                case 2: try file.write(raw.bindMemory(to: UInt16.self), window: window, band: b + offset)
                default: try file.write(raw.bindMemory(to: Float.self), window: window, band: b + offset)
                }
            }
        }
    }
}

/// Writes full-width rows into a file one block row at a time, however the caller cuts them
/// (strips of any height, bands of a scene split across ranks): GDAL then writes the same
/// blocks in the same order with the same padding (a write covering a whole edge block zeroes
/// its padding, a partial one leaves nodata), so the file's bytes do not depend on the cut.
/// Other writes (window cores) go straight to the file, as their cut is the same everywhere.
final class BlockRowWriter: PixelSink, @unchecked Sendable {
    let file: GeoTIFFWriter
    let valueSize: Int
    /// Per band: the block row being filled, and the next row a contiguous full-width write starts at.
    private var pending: [BandBuffer?]
    private var filled: [Int]

    init(_ file: GeoTIFFWriter) {
        self.file = file
        valueSize = file.profile.dataType == .float32 ? 4 : file.profile.dataType == .uint16 ? 2 : 1
        pending = [BandBuffer?](repeating: nil, count: file.profile.bandCount)
        filled = [Int](repeating: 0, count: file.profile.bandCount)
    }

    func write<T: RasterScalar>(_ values: UnsafeBufferPointer<T>, window: Window, band: Int) throws {
        let W = file.profile.width, H = file.profile.height, blockRows = file.profile.options.blockSize
        guard window.column == 0, window.width == W, (1...filled.count).contains(band), window.row == filled[band - 1],
              MemoryLayout<T>.stride == valueSize else {
            try flush()
            try file.write(values, window: window, band: band)
            return
        }
        var row = window.row
        while row < window.row + window.height {
            let top = row / blockRows * blockRows, end = min(top + blockRows, H)
            if pending[band - 1]?.rows.lowerBound != top {
                try flush(band: band)
                pending[band - 1] = BandBuffer(rows: top..<end, width: W, bands: 1, valueSize: valueSize)
            }
            try pending[band - 1]!.write(values, window: window, band: 1)
            row = min(end, window.row + window.height)
            filled[band - 1] = row
            if row == end { try flush(band: band) }
        }
    }

    /// Writes the rows every band has of its pending block row.
    func flush() throws {
        for band in 1...filled.count { try flush(band: band) }
    }

    private func flush(band: Int) throws {
        guard let p = pending[band - 1] else { return }
        pending[band - 1] = nil
        let done = min(filled[band - 1], p.rows.upperBound)
        try p.write(Window(column: 0, row: p.rows.lowerBound, width: p.width, height: max(0, done - p.rows.lowerBound)), into: file,
                    bandOffset: band - 1)
    }
}
