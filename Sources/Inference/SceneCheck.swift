import Foundation
import Core
import GeoRaster
import Tiling

/// The model/scene check before a scene is mapped: a scene unlike the training scenes is
/// refused (band count always; data type family and pixel size unless `allowMismatch`) or
/// reported, and band means far from the training statistics are reported by band.
enum SceneCheck {
    /// Band means further than this many training standard deviations are reported.
    static let meanShiftLimit = 5.0

    /// Throws for a scene the model cannot map; returns the warnings to print (those of the
    /// profile; the band means' come from `BandMeanSample`).
    static func warnings(info: RasterInfo, inputs: ModelInputs, allowMismatch: Bool) throws -> [String] {
        var out: [String] = []
        if let profile = inputs.profile {
            let scene = SceneProfile(info: info)
            guard scene.bandCount == profile.bandCount else {
                throw RasterError(.badBand, path: info.path,
                                  problem: "the scene has \(scene.bandCount) bands but the model was trained on scenes of \(profile.bandCount) bands",
                                  hint: "Give a scene with the \(profile.bandCount) bands of the training scenes, in the same order")
            }
            let mismatches = profile.mismatches(with: scene)
            if !mismatches.isEmpty && !allowMismatch {
                throw RasterError(.invalidArgument, path: info.path,
                                  problem: "the scene is unlike the training scenes: " + mismatches.joined(separator: "; "),
                                  hint: "Give a scene like the training data (gdalwarp -tr to resample, gdal_translate -ot to convert), or pass --allow-mismatch (prediction.allow_mismatch: true) to map it anyway")
            }
            out += mismatches.map { "\(info.path): \($0); mapped anyway (--allow-mismatch)" }
        }
        return out
    }

    /// Compares band means of a cheap sample (at most 16 windows of 64 × 64 on a 4 × 4 grid)
    /// with the training means.
    static func meanShifts(source: any RasterSource, bands: [Int], statistics: BandStatistics) throws -> [String] {
        let info = source.info, side = 64
        var windows: [Window] = []
        for gy in 0..<4 {
            for gx in 0..<4 {
                let w = Window(column: max(0, info.width - side) * gx / 3, row: max(0, info.height - side) * gy / 3,
                               width: min(side, info.width), height: min(side, info.height))
                if !windows.contains(w) { windows.append(w) }
            }
        }
        var sums = [Double](repeating: 0, count: bands.count), counts = [Int](repeating: 0, count: bands.count)
        var block = RasterBlock()
        for w in windows {
            try source.read(window: w, bands: bands, into: &block)
            let n = w.pixelCount
            for b in bands.indices {
                for p in 0..<n where block.valid[p] != 0 {
                    sums[b] += Double(block.values[b * n + p])
                    counts[b] += 1
                }
            }
        }
        return bands.indices.compactMap { b in
            let std = statistics.std[b], mean = statistics.mean[b]
            guard counts[b] > 0, std > 0, std.isFinite else { return nil }
            let sceneMean = sums[b] / Double(counts[b]), z = abs(sceneMean - mean) / std
            guard z > meanShiftLimit else { return nil }
            return "\(info.path): band \(bands[b]) has mean \(sceneMean.shortText) in a sample, \(Int(z)) standard deviations from the training mean \(mean.shortText) (std \(std.shortText)); check the band order, data type and scaling (e.g. reflectance × 10000)"
        }
    }
}

/// The band-mean part of the scene check (`SceneCheck.meanShifts`: 16 windows of 64 × 64), read
/// by the scene's reader thread from its dataset once the reader's batches are all in flight
/// (a thread and a dataset of its own cost a 2048² scene 2–3 % of its time: another open, and
/// the source tiles decoded twice), its warnings given once the scene is mapped. A
/// sample that cannot be read says so (the scene's own reads, which cover every sampled pixel,
/// then fail with the error).
final class BandMeanSample: @unchecked Sendable {
    private let bands: [Int]
    private let statistics: BandStatistics?
    private let lock = NSLock()
    private var warnings: [String] = []

    /// A sample of `bands` to compare with the training `statistics` (none: nothing to read).
    init(bands: [Int], statistics: BandStatistics?) {
        self.bands = bands
        self.statistics = statistics.flatMap { $0.bandCount == bands.count ? $0 : nil }
    }

    /// Reads the sample from `source` (on the reader's thread, its only user).
    func read(_ source: any RasterSource) {
        guard let statistics else { return }
        let found: [String]
        do {
            found = try SceneCheck.meanShifts(source: source, bands: bands, statistics: statistics)
        } catch {
            found = ["\(source.info.path): the band means were not checked against the training statistics: \(error)"]
        }
        lock.withLock { warnings = found }
    }

    /// The warnings of the sample read (none before it is).
    var found: [String] { lock.withLock { warnings } }
}
