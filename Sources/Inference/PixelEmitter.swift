import Core
import Engine
import GeoRaster

/// Turns class scores into the bytes the outputs hold, pixel by pixel: the class value (map,
/// Byte or UInt16 with nodata 255 / 65535), each class's probability (Byte 0–255 or Float32
/// 0–1) and the maximum probability (confidence, Byte 0–255). The one home of the predictor's
/// argmax and quantisation: the centre-mode tile writer and the Hann blender both emit here.
struct PixelEmitter {
    let classValues: [Int]
    let wide: Bool
    let classes: Int
    let floatProbabilities: Bool
    private(set) var pixels = 0
    private var classes8: [UInt8] = []
    private var classes16: [UInt16] = []
    private var probs8: [UInt8] = []
    private var probsFloat: [Float] = []
    private var conf: [UInt8] = []
    private var wantProbabilities = false, wantConfidence = false

    init(classValues: [Int], wide: Bool, classes: Int, floatProbabilities: Bool) {
        self.classValues = classValues
        self.wide = wide
        self.classes = classes
        self.floatProbabilities = floatProbabilities
    }

    /// Byte 0–255 from a probability 0–1 (rounded, clamped).
    @inline(__always)
    static func quantise(_ p: Float) -> UInt8 { UInt8(min(255, max(0, (p * 255).rounded()))) }

    /// Starts a block of `pixels` outputs, all nodata (class nodata, probability and confidence 0).
    mutating func start(pixels m: Int, probabilities: Bool, confidence: Bool) {
        pixels = m
        wantProbabilities = probabilities
        wantConfidence = confidence
        if wide { classes16 = [UInt16](repeating: 65535, count: m) } else { classes8 = [UInt8](repeating: 255, count: m) }
        if probabilities {
            if floatProbabilities { probsFloat = [Float](repeating: 0, count: classes * m) } else { probs8 = [UInt8](repeating: 0, count: classes * m) }
        }
        if confidence { conf = [UInt8](repeating: 0, count: m) }
    }

    /// Output pixel `o` from the scores `scores[k · stride]` (k = 0..<classes), each times `scale`.
    @inline(__always)
    mutating func emit(_ scores: UnsafePointer<Float>, stride: Int, scale: Float = 1, at o: Int) {
        let (best, bestScore) = ClassScores.best(scores, classes: classes, stride: stride, scale: scale)
        if wide { classes16[o] = UInt16(classValues[best]) } else { classes8[o] = UInt8(classValues[best]) }
        if wantProbabilities {
            let m = pixels
            if floatProbabilities {
                for k in 0..<classes { probsFloat[k * m + o] = scores[k * stride] * scale }
            } else {
                for k in 0..<classes { probs8[k * m + o] = PixelEmitter.quantise(scores[k * stride] * scale) }
            }
        }
        if wantConfidence { conf[o] = PixelEmitter.quantise(bestScore) }
    }

    /// Output pixels `o ..< o + count` from `count` pixels of scores (pixel i's at
    /// `scores[i + k · stride]`) where `valid[i] != 0`; the others stay nodata. The map alone
    /// (a streamed scene's usual outputs) takes the best classes straight into its buffer.
    mutating func emitRow(_ scores: UnsafePointer<Float>, stride: Int, valid: UnsafePointer<UInt8>, count: Int, at o: Int) {
        guard !wantProbabilities && !wantConfidence else {
            for i in 0..<count where valid[i] != 0 { emit(scores + i, stride: stride, at: o + i) }
            return
        }
        let K = classes
        classValues.withUnsafeBufferPointer { values in
            if wide {
                classes16.withUnsafeMutableBufferPointer { out in
                    for i in 0..<count where valid[i] != 0 { out[o + i] = UInt16(values[ClassScores.best(scores + i, classes: K, stride: stride).index]) }
                }
            } else {
                classes8.withUnsafeMutableBufferPointer { out in
                    for i in 0..<count where valid[i] != 0 { out[o + i] = UInt8(values[ClassScores.best(scores + i, classes: K, stride: stride).index]) }
                }
            }
        }
    }

    /// Writes the block to `window` of the outputs (probabilities one band per class).
    func write(window: Window, map: any PixelSink, probabilities: (any PixelSink)?, confidence: (any PixelSink)?) throws {
        let m = pixels
        if wide { try map.write(classes16, window: window, band: 1) } else { try map.write(classes8, window: window, band: 1) }
        if let probabilities {
            if floatProbabilities {
                try probsFloat.withUnsafeBufferPointer { p in
                    for k in 0..<classes { try probabilities.write(UnsafeBufferPointer(rebasing: p[(k * m)..<((k + 1) * m)]), window: window, band: k + 1) }
                }
            } else {
                try probs8.withUnsafeBufferPointer { p in
                    for k in 0..<classes { try probabilities.write(UnsafeBufferPointer(rebasing: p[(k * m)..<((k + 1) * m)]), window: window, band: k + 1) }
                }
            }
        }
        if let confidence { try confidence.write(conf, window: window, band: 1) }
    }
}
