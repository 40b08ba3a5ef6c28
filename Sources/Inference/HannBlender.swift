import Core
import Foundation
import GeoRaster
import Tiling

/// `--blend hann`: cores overlap by half a tile, and each window's probabilities count over
/// its core with a Hann (sin²) weight that is flat on any side reaching the scene border; the
/// weighted mean is taken per pixel. With the full margin every contribution equals the
/// one-window prediction; with a smaller `--margin` (faster, less exact) the cross-fade hides
/// the seams that centre-cropping would show. Tiles arrive in scan order; a strip one core
/// high and as wide as the scene accumulates a row of cores, and the rows no later core
/// reaches are finalised and written. Memory grows with the scene's width, not its size.
struct HannBlender {
    let width: Int, height: Int
    let grid: PredictionGrid
    let classes: Int
    var emitter: PixelEmitter
    let hann: [Float]
    var currentRow = -1
    /// Scene row of strip row 0.
    var stripTop = 0
    var acc: [Float]
    var weight: [Float]
    var valid: [UInt8]

    init(width: Int, height: Int, grid: PredictionGrid, classes: Int, classValues: [Int], wide: Bool, floatProbabilities: Bool) {
        self.width = width
        self.height = height
        self.grid = grid
        self.classes = classes
        emitter = PixelEmitter(classValues: classValues, wide: wide, classes: classes, floatProbabilities: floatProbabilities)
        let T = grid.tileSize
        hann = (0..<T).map { i in
            let s = Foundation.sin(Double.pi * (Double(i) + 0.5) / Double(T))
            return Float(s * s) + 1e-6
        }
        acc = [Float](repeating: 0, count: classes * T * width)
        weight = [Float](repeating: 0, count: T * width)
        valid = [UInt8](repeating: 0, count: T * width)
    }

    /// Weights along one axis of a core starting at `start`: Hann, but 1 on a half that
    /// lies at the scene border (nothing else covers those pixels).
    func axisWeights(start: Int, length: Int) -> [Float] {
        let T = grid.tileSize
        var w = hann
        if start == 0 { for i in 0..<(T / 2) { w[i] = 1 } }
        if start + T >= length { for i in (T / 2)..<T { w[i] = 1 } }
        return w
    }

    mutating func add(tile: PredictionGrid.Tile, slot: Int?, batch: TileBatch,
                      map: any PixelSink, probabilities: (any PixelSink)?, confidence: (any PixelSink)?) throws {
        let row = tile.core.row / grid.stride
        if row != currentRow {
            if currentRow >= 0 { try finalize(last: false, map: map, probabilities: probabilities, confidence: confidence) }
            start(row: row)
        }
        guard let slot else { return }  // an all-nodata core adds nothing
        let S = grid.inputSize, n = S * S, K = classes, W = width, T = grid.tileSize
        let wx = axisWeights(start: tile.core.column, length: width)
        let wy = axisWeights(start: tile.core.row, length: height)
        let core = tile.core
        batch.scores.withUnsafeBufferPointer { scores in
            batch.valid.withUnsafeBufferPointer { v in
                let s = scores.baseAddress! + slot * K * n, vb = v.baseAddress! + slot * n
                for y in 0..<core.height {
                    let sy = core.row + y - stripTop  // strip row
                    let py = tile.coreOffsetRow + y
                    for x in 0..<core.width {
                        let p = py * S + tile.coreOffsetColumn + x, o = sy * W + core.column + x
                        let w = wy[y] * wx[x]
                        weight[o] += w
                        if vb[p] != 0 { valid[o] = 1 }
                        for k in 0..<K { acc[k * T * W + o] += w * s[k * n + p] }
                    }
                }
            }
        }
    }

    mutating func finish(map: any PixelSink, probabilities: (any PixelSink)?, confidence: (any PixelSink)?) throws {
        if currentRow >= 0 { try finalize(last: true, map: map, probabilities: probabilities, confidence: confidence) }
    }

    /// Begins core row `row`: the strip moves down, keeping the rows the previous cores
    /// share with this one.
    mutating func start(row: Int) {
        let T = grid.tileSize, W = width
        let newTop = row * grid.stride
        let shift = currentRow < 0 ? T : newTop - stripTop
        for r in 0..<T {
            let from = r + shift
            for k in 0..<classes {
                let dst = k * T * W + r * W
                if from < T { for c in 0..<W { acc[dst + c] = acc[k * T * W + from * W + c] } } else { for c in 0..<W { acc[dst + c] = 0 } }
            }
            if from < T {
                for c in 0..<W { weight[r * W + c] = weight[from * W + c]; valid[r * W + c] = valid[from * W + c] }
            } else {
                for c in 0..<W { weight[r * W + c] = 0; valid[r * W + c] = 0 }
            }
        }
        currentRow = row
        stripTop = newTop
    }

    /// Writes the rows no later core reaches: [top, top + stride), or to the bottom at the end.
    mutating func finalize(last: Bool, map: any PixelSink, probabilities: (any PixelSink)?, confidence: (any PixelSink)?) throws {
        let T = grid.tileSize, W = width
        let from = stripTop, to = last ? height : min(height, stripTop + grid.stride)
        guard to > from else { return }
        let rows = to - from
        emitter.start(pixels: rows * W, probabilities: probabilities != nil, confidence: confidence != nil)
        let scores = acc  // a reference to the same storage, so the emitter can change while it is read
        scores.withUnsafeBufferPointer { a in
            for o in 0..<(rows * W) where valid[o] != 0 && weight[o] > 0 {
                emitter.emit(a.baseAddress! + o, stride: T * W, scale: 1 / weight[o], at: o)
            }
        }
        try emitter.write(window: Window(column: 0, row: from, width: W, height: rows), map: map, probabilities: probabilities,
                          confidence: confidence)
    }
}
