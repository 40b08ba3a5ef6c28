import Core
/// Pixels of a window of selected bands, as Float32 in band-row-column order, with a
/// per-pixel validity mask (1 = valid in every selected band, 0 = nodata, NaN, masked,
/// alpha 0, or outside the raster).
public struct RasterBlock: Sendable {
    public var window: Window
    public var bandCount: Int
    /// bandCount × height × width values.
    public var values: [Float]
    /// height × width flags.
    public var valid: [UInt8]

    public init(window: Window = Window(width: 0, height: 0), bandCount: Int = 0) {
        self.window = window
        self.bandCount = bandCount
        values = [Float](repeating: 0, count: bandCount * window.pixelCount)
        valid = [UInt8](repeating: 0, count: window.pixelCount)
    }

    /// Resizes for a new window, reusing storage when it is large enough.
    mutating func reshape(window: Window, bandCount: Int) {
        self.window = window
        self.bandCount = bandCount
        let n = bandCount * window.pixelCount
        if values.count != n { values = [Float](repeating: 0, count: n) }
        if valid.count != window.pixelCount { valid = [UInt8](repeating: 0, count: window.pixelCount) }
    }

    /// Value of `band` (0-based position in the selection) at (column, row) of the window.
    public func value(band: Int, column: Int, row: Int) -> Float {
        values[(band * window.height + row) * window.width + column]
    }

    public func isValid(column: Int, row: Int) -> Bool { valid[row * window.width + column] != 0 }

    public var validCount: Int { valid.reduce(0) { $0 + Int($1) } }
}

/// Anything that reads windows of bands: one GDAL dataset, or several single-band files
/// stacked on one grid.
public protocol RasterSource: AnyObject {
    var info: RasterInfo { get }
    /// Reads `window` of `bands` (1-based, any order and subset; nil = all data bands) into
    /// `block`, reusing its storage. Parts outside the raster are 0 and invalid.
    func read(window: Window, bands: [Int]?, into block: inout RasterBlock) throws
}

extension RasterSource {
    public func read(window: Window, bands: [Int]? = nil) throws -> RasterBlock {
        var block = RasterBlock()
        try read(window: window, bands: bands, into: &block)
        return block
    }

    /// Checks a band selection against this source and returns it (nil = all data bands).
    public func resolveBands(_ bands: [Int]?) throws -> [Int] {
        let selection = bands ?? info.dataBandIndices
        if selection.isEmpty {
            throw RasterError(.badBand, path: info.path, problem: "no bands selected",
                              hint: "The file has \(info.bandCount) band(s); select at least one")
        }
        for b in selection where b < 1 || b > info.bandCount {
            throw RasterError(.badBand, path: info.path, band: b,
                              problem: "band \(b) does not exist",
                              hint: "The file has \(info.bandCount) band(s), numbered 1 to \(info.bandCount)")
        }
        return selection
    }
}
