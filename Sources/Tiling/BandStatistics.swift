import Core
import GeoRaster

/// Per-band statistics of the valid pixels of one or more scenes: count, mean, standard
/// deviation, range and percentiles (from a seeded reservoir sample). Stored in the model
/// bundle so prediction normalises exactly as training did.
public struct BandStatistics: Codable, Hashable, Sendable {
    public var count: [Int]
    public var mean: [Double]
    public var std: [Double]
    public var minimum: [Double]
    public var maximum: [Double]
    /// Percentile levels (0–100) and, for each, the value per band (from the sample).
    public var percentileLevels: [Double]
    public var percentileValues: [[Double]]

    /// Percentile level → value per band.
    public var percentiles: [Double: [Double]] {
        Dictionary(uniqueKeysWithValues: zip(percentileLevels, percentileValues))
    }

    public var bandCount: Int { mean.count }
}

/// Streams `RasterBlock`s into `BandStatistics` without holding a scene in memory: exact
/// mean and variance (Chan's parallel merge in Double), range, and a fixed-size reservoir
/// sample per band for percentiles.
public struct BandStatisticsAccumulator: Sendable {
    public let bandCount: Int
    public let sampleSize: Int
    public static let defaultPercentiles: [Double] = [1, 2, 5, 50, 95, 98, 99]

    private var n: [Int]
    private var mean: [Double]
    private var m2: [Double]
    private var lo: [Double]
    private var hi: [Double]
    private var samples: [[Float]]
    private var seen: [Int]
    private var rng: SplitMix64

    public init(bandCount: Int, sampleSize: Int = 200_000, seed: UInt64 = 0) {
        self.bandCount = bandCount
        self.sampleSize = sampleSize
        n = Array(repeating: 0, count: bandCount)
        mean = Array(repeating: 0, count: bandCount)
        m2 = Array(repeating: 0, count: bandCount)
        lo = Array(repeating: .infinity, count: bandCount)
        hi = Array(repeating: -.infinity, count: bandCount)
        samples = Array(repeating: [], count: bandCount)
        seen = Array(repeating: 0, count: bandCount)
        rng = SplitMix64(seed: seed)
    }

    /// Adds the valid pixels of `block` (its bands in order).
    public mutating func add(_ block: RasterBlock) {
        precondition(block.bandCount == bandCount, "block has \(block.bandCount) bands, statistics \(bandCount)")
        let pixels = block.window.pixelCount
        block.values.withUnsafeBufferPointer { values in
            block.valid.withUnsafeBufferPointer { valid in
                for b in 0..<bandCount {
                    let plane = values.baseAddress! + b * pixels
                    var count = 0
                    var sum = 0.0
                    var bmin = Double.infinity, bmax = -Double.infinity
                    for i in 0..<pixels where valid[i] != 0 {
                        let v = Double(plane[i])
                        count += 1
                        sum += v
                        bmin = min(bmin, v)
                        bmax = max(bmax, v)
                    }
                    guard count > 0 else { continue }
                    let bmean = sum / Double(count)
                    var bm2 = 0.0
                    for i in 0..<pixels where valid[i] != 0 {
                        let d = Double(plane[i]) - bmean
                        bm2 += d * d
                    }
                    // Chan et al.: merge (n, mean, M2) of this block into the running totals.
                    let total = n[b] + count
                    let delta = bmean - mean[b]
                    mean[b] += delta * Double(count) / Double(total)
                    m2[b] += bm2 + delta * delta * Double(n[b]) * Double(count) / Double(total)
                    n[b] = total
                    lo[b] = min(lo[b], bmin)
                    hi[b] = max(hi[b], bmax)
                    // Reservoir sample (Algorithm R).
                    for i in 0..<pixels where valid[i] != 0 {
                        seen[b] += 1
                        if samples[b].count < sampleSize {
                            samples[b].append(plane[i])
                        } else {
                            let j = Int(rng.next() % UInt64(seen[b]))
                            if j < sampleSize { samples[b][j] = plane[i] }
                        }
                    }
                }
            }
        }
    }

    public func finish(percentiles: [Double] = BandStatisticsAccumulator.defaultPercentiles) -> BandStatistics {
        var pct: [Double: [Double]] = [:]
        let sorted = samples.map { $0.sorted() }
        for p in percentiles {
            pct[p] = sorted.map { s in
                guard !s.isEmpty else { return .nan }
                let x = p / 100 * Double(s.count - 1)
                let i = Int(x.rounded(.down)), j = min(i + 1, s.count - 1)
                return Double(s[i]) + (x - Double(i)) * (Double(s[j]) - Double(s[i]))
            }
        }
        return BandStatistics(
            count: n, mean: zip(mean, n).map { $1 > 0 ? $0 : .nan },
            std: zip(m2, n).map { $1 > 1 ? ($0 / Double($1)).squareRoot() : ($1 == 1 ? 0 : .nan) },
            minimum: zip(lo, n).map { $1 > 0 ? $0 : .nan }, maximum: zip(hi, n).map { $1 > 0 ? $0 : .nan },
            percentileLevels: percentiles, percentileValues: percentiles.map { pct[$0]! })
    }
}

extension BandStatistics {
    /// Streams `windows` (default: the whole raster in strips) of `bands` of `source`.
    public static func compute(_ source: any RasterSource, bands: [Int]? = nil, windows: [Window]? = nil,
                               sampleSize: Int = 200_000, seed: UInt64 = 0) throws -> BandStatistics {
        let selection = try source.resolveBands(bands)
        var acc = BandStatisticsAccumulator(bandCount: selection.count, sampleSize: sampleSize, seed: seed)
        let w = source.info.width, h = source.info.height
        let rowsPerStrip = max(1, 1_048_576 / max(1, w))
        let strips = windows ?? Swift.stride(from: 0, to: h, by: rowsPerStrip).map {
            Window(column: 0, row: $0, width: w, height: min(rowsPerStrip, h - $0))
        }
        var block = RasterBlock()
        for win in strips {
            try source.read(window: win, bands: selection, into: &block)
            acc.add(block)
        }
        return acc.finish()
    }
}

/// FNV-1a (`Core.FNV1a`) over the UTF-8 bytes of `text`: a stable fingerprint (checkpoints,
/// stage stamps, chip assignment), unlike Swift's per-process-seeded `Hasher`.
public func fingerprint(_ text: String, seed: UInt64 = 0) -> UInt64 {
    var h = FNV1a(seed: seed)
    h.add(text)
    return h.value
}
