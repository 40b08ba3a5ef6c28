import GeoRaster

/// How band values are scaled before they reach a network.
public enum NormalizationMethod: String, Codable, Sendable, CaseIterable {
    /// (v − mean) / std per band.
    case standardize
    /// Clip to the [low, high] percentiles, then map that range to [0, 1].
    case percentileClip = "percentile_clip"
    /// Values as read.
    case none
}

/// A per-band affine map `out = (clamp(v, lower, upper) − offset) × scale`, built from
/// `BandStatistics` at training time and stored in the bundle. No assumption about the data
/// range: UInt16 reflectance, Float32 TOA and Byte all work. Invalid pixels become exactly 0.
public struct Normalizer: Codable, Hashable, Sendable {
    public var method: NormalizationMethod
    public var offset: [Float]
    public var scale: [Float]
    public var lower: [Float]
    public var upper: [Float]

    public var bandCount: Int { offset.count }

    public init(method: NormalizationMethod, offset: [Float], scale: [Float], lower: [Float]? = nil, upper: [Float]? = nil) {
        self.method = method
        self.offset = offset
        self.scale = scale
        self.lower = lower ?? Array(repeating: -.greatestFiniteMagnitude, count: offset.count)
        self.upper = upper ?? Array(repeating: .greatestFiniteMagnitude, count: offset.count)
    }

    public init(statistics s: BandStatistics, method: NormalizationMethod, lowPercentile: Double = 2, highPercentile: Double = 98) {
        let k = s.bandCount
        switch method {
        case .none:
            self.init(method: .none, offset: Array(repeating: 0, count: k), scale: Array(repeating: 1, count: k))
        case .standardize:
            self.init(method: .standardize, offset: s.mean.map { Float($0.isFinite ? $0 : 0) },
                      scale: s.std.map { $0.isFinite && $0 > 1e-12 ? Float(1 / $0) : 1 })
        case .percentileClip:
            let lo = s.percentiles[lowPercentile] ?? s.minimum
            let hi = s.percentiles[highPercentile] ?? s.maximum
            self.init(method: .percentileClip, offset: lo.map { Float($0.isFinite ? $0 : 0) },
                      scale: zip(lo, hi).map { l, h in h - l > 1e-12 ? Float(1 / (h - l)) : 1 },
                      lower: lo.map { Float($0.isFinite ? $0 : -.greatestFiniteMagnitude) },
                      upper: hi.map { Float($0.isFinite ? $0 : .greatestFiniteMagnitude) })
        }
    }

    /// Normalises `block` in place: every band mapped, invalid pixels set to 0.
    public func apply(to block: inout RasterBlock) {
        precondition(block.bandCount == bandCount, "normaliser has \(bandCount) bands, block \(block.bandCount)")
        guard block.window.pixelCount > 0 else { return }
        block.valid.withUnsafeBufferPointer { valid in
            block.values.withUnsafeMutableBufferPointer { values in
                map(values.baseAddress!, valid: valid.baseAddress!, pixels: block.window.pixelCount, into: values.baseAddress!)
            }
        }
    }

    /// Writes `block` normalised to `output` (bandCount × the window's pixels, band planes, as
    /// `apply` leaves the block): the strip reader's one pass into the network's input.
    public func write(_ block: RasterBlock, into output: UnsafeMutablePointer<Float>) {
        precondition(block.bandCount == bandCount, "normaliser has \(bandCount) bands, block \(block.bandCount)")
        guard block.window.pixelCount > 0 else { return }
        block.valid.withUnsafeBufferPointer { valid in
            block.values.withUnsafeBufferPointer { values in
                map(values.baseAddress!, valid: valid.baseAddress!, pixels: block.window.pixelCount, into: output)
            }
        }
    }

    /// `output` = every band of `values` mapped, 0 where invalid (`output` may be `values`).
    private func map(_ values: UnsafePointer<Float>, valid: UnsafePointer<UInt8>, pixels n: Int, into output: UnsafeMutablePointer<Float>) {
        for b in 0..<bandCount {
            let plane = values + b * n, out = output + b * n
            let o = offset[b], s = scale[b], lo = lower[b], hi = upper[b]
            for i in 0..<n {
                out[i] = valid[i] != 0 ? (min(max(plane[i], lo), hi) - o) * s : 0
            }
        }
    }
}
