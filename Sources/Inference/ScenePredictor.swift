import Core
import Foundation
import GeoRaster
import Logging
import Models
import Tiling

/// How a scene is cut for the network. `centre`: windows whose cores are written, so the map
/// equals one huge window's (exact when the margin covers the receptive field); `hann`:
/// weighted mean of overlapping windows; `stream`: full-width strips through the network's
/// row stream, each feature computed once, equal to one window over the scene (`RowStream`).
public enum BlendMode: String, Sendable, Codable, CaseIterable { case centre, hann, stream }

/// Options of `terraseg predict`.
public struct PredictionOptions: Sendable {
    /// Side of the core tile each window writes (rounded up to the model's alignment).
    public var tileSize = 512
    /// Context added around each core; nil = the model's receptive-field radius (exact).
    public var margin: Int? = nil
    /// Windows per network call.
    public var batchSize = 2
    /// Streaming by default: exact, each feature computed once (R1 in 0.56–0.63× the time of
    /// centre windows, Benchmarks/README.md, issue B4). Models that cannot stream, and
    /// test-time augmentation, predict in centre windows (with a notice).
    public var blend = BlendMode.stream
    /// Average the scores of the 8 flips/rotations.
    public var tta = false
    /// Also write per-class probabilities (Byte 0–255) and the maximum probability.
    public var probabilities = false
    public var confidence = false
    /// Write probabilities as Float32 0–1 instead of Byte 0–255.
    public var floatProbabilities = false
    /// Streaming: rows per strip; nil = what fits `memoryBudget`.
    public var stripHeight: Int? = nil
    /// Streaming: bytes the network's strip buffers may hold (`MemoryBudget.streamBytes`).
    public var memoryBudget = 1 << 30
    public var creation = CreationOptions(blockSize: 256, compression: .deflate, predictor: .none, overviews: .mode)
    public var overwrite = false
    /// Map scenes whose data type family or pixel size differ from the training scenes',
    /// with a warning, instead of refusing them.
    public var allowMismatch = false
    /// Minimum mapping unit in pixels: class patches smaller than this take their largest
    /// neighbour's class before overviews and polygons (0 or 1: none).
    public var minMappingUnit = 0
    /// Which neighbours join pixels into one patch, for the minimum mapping unit and polygons.
    public var mmuConnectedness = Connectedness.four
    /// Also write the map's class polygons (`MapSiblings.polygons`, a GeoPackage).
    public var polygons = false
    /// Simplification tolerance of the polygons in CRS units (0: the pixel edges).
    public var polygonSimplify = 0.0

    public init() {}
}

/// What prediction needs besides the network: the bands it reads, how they are normalised
/// and the classes it outputs (all from the model bundle).
public struct ModelInputs: Sendable {
    public var bands: [Int]?
    public var normalizer: Normalizer
    public var classMap: ClassMap
    /// The training scenes' kind and band statistics, for the model/scene check (nil: unchecked).
    public var profile: SceneProfile?
    public var statistics: BandStatistics?
    /// How to put a scene's band files together (from the bundle); nil = stack them as given.
    public var recipe: SceneRecipe?

    public init(bands: [Int]?, normalizer: Normalizer, classMap: ClassMap, profile: SceneProfile? = nil, statistics: BandStatistics? = nil,
                recipe: SceneRecipe? = nil) {
        self.bands = bands
        self.normalizer = normalizer
        self.classMap = classMap
        self.profile = profile
        self.statistics = statistics
        self.recipe = recipe
    }
}

/// The files one scene produces.
public struct SceneOutputs: Sendable, Hashable {
    public var map: String
    public var probabilities: String?
    public var confidence: String?
    /// The class polygons (`MapSiblings.polygons`), when asked for.
    public var polygons: String?
    /// The QGIS style written beside every map (`MapSiblings.style`).
    public var style: String { MapSiblings(map: map).style }

    public init(map: String, probabilities: String? = nil, confidence: String? = nil, polygons: String? = nil) {
        self.map = map
        self.probabilities = probabilities
        self.confidence = confidence
        self.polygons = polygons
    }

    /// `DIR/<scene name>_map.tif` (+ `_probabilities.tif`, `_confidence.tif`).
    public static func named(after job: SceneJob, in directory: String, options: PredictionOptions) -> SceneOutputs {
        named(stem: job.stem, in: directory, options: options)
    }

    public static func named(stem: String, in directory: String, options: PredictionOptions) -> SceneOutputs {
        let base = (directory as NSString).appendingPathComponent(stem)
        let map = base + "_map.tif"
        return SceneOutputs(map: map, probabilities: options.probabilities ? base + "_probabilities.tif" : nil,
                            confidence: options.confidence ? base + "_confidence.tif" : nil,
                            polygons: options.polygons ? MapSiblings(map: map).polygons : nil)
    }

    /// Every file the scene produces (a scene is up to date when all exist).
    public var all: [String] { [map, style] + [probabilities, confidence, polygons].compactMap { $0 } }
}

extension PredictionOptions {
    /// The window settings (`tile`, `margin`, `batch_size`) changed from their defaults that
    /// streaming does not use, said once instead of ignored silently; nil when none is, or when
    /// the scene is predicted in windows after all (`tta`).
    public var streamingNote: String? {
        guard blend == .stream, !tta else { return nil }
        let defaults = PredictionOptions()
        var unused: [String] = []
        if tileSize != defaults.tileSize { unused.append("tile \(tileSize)") }
        if let margin { unused.append("margin \(margin)") }
        if batchSize != defaults.batchSize { unused.append("batch size \(batchSize)") }
        guard !unused.isEmpty else { return nil }
        return "streaming uses full-width strips sized from the memory budget, so the window settings "
            + unused.joined(separator: ", ") + " are not used (models that cannot stream still predict in windows with them)"
    }

    /// bf16 runs in windows (row streaming has no bf16 kernels and would map in fp32): with
    /// `stream`, the scene is predicted in centre windows instead, said once (the notice
    /// returned); nil when nothing changes.
    public mutating func windowsForBf16(_ bf16: Bool, _ architecture: ModelArchitecture) -> String? {
        guard bf16, blend == .stream, !tta, architecture.windowsOnly == nil else { return nil }
        blend = .centre
        return "bf16 runs in windows (streaming has no bf16 kernels): predicting in windows (--blend centre), exact as well"
    }
}

/// Statistics of one predicted scene.
public struct ScenePrediction: Sendable {
    public var width: Int
    public var height: Int
    public var tiles: Int
    /// Tiles whose core had no valid pixel: written as nodata without running the network.
    public var skippedTiles: Int
    public var seconds: Double
    /// The polygons written (`--polygons`), with their count and time.
    public var polygons: ClassPolygons.Summary? = nil
    public var megapixelsPerSecond: Double { Double(width * height) / 1e6 / max(seconds, 1e-9) }
}

/// Predicts whole scenes window by window and writes georeferenced class maps. Three stages
/// overlap: a reader thread reads and normalises the next windows, the calling thread runs
/// the network on batches, a writer thread turns scores into classes and writes finished
/// cores. Memory is bounded by a small pool of batch buffers, whatever the scene size.
public final class ScenePredictor {
    public let model: SceneModel
    public let inputs: ModelInputs
    public let options: PredictionOptions
    static let logger = Logger(label: "terraseg.predict")
    /// Called on the network thread after each batch with (tiles done, tiles in the scene).
    public var progress: ((Int, Int) -> Void)?

    /// Fault injection for tests (see `StageThread`).
    var refusesThreadsForTesting = false
    /// What each map's STAC Item says of the model (`run(jobs:)`); nil: what the model tells.
    public var provenance: MapProvenance?

    public init(model: SceneModel, inputs: ModelInputs, options: PredictionOptions) throws {
        guard inputs.classMap.count == model.classCount else {
            throw RasterError(.invalidArgument, path: "model", problem: "the network outputs \(model.classCount) classes but the class map has \(inputs.classMap.count)")
        }
        self.model = model
        self.inputs = inputs
        self.options = options
    }

    public var margin: Int { options.margin ?? model.receptiveRadius }

    /// The windows of a `width` × `height` scene. The core tile shrinks to the scene (rounded
    /// up to the network's alignment) when the scene is smaller than `options.tileSize`, so a
    /// small scene does not run a window mostly made of padding.
    public func grid(width: Int, height: Int) -> PredictionGrid {
        let fitted = min(options.tileSize, PredictionGrid.roundUp(max(1, width, height), to: model.alignment))
        return PredictionGrid(width: width, height: height, tileSize: fitted, margin: margin, alignment: model.alignment,
                              overlapping: options.blend == .hann)
    }

    /// Predicts the scene made of `paths` (one raster, or band files stacked) into `outputs`:
    /// the map (sieved to the minimum mapping unit), then beside it its QGIS style and, when
    /// `outputs.polygons` is set, its class polygons.
    public func predict(paths: [String], outputs: SceneOutputs) throws -> ScenePrediction {
        var prediction = try predictRasters(paths: paths, outputs: outputs)
        prediction.polygons = try MapSiblingWriter(classes: inputs.classMap.classes, options: options).write(besideMap: outputs.map,
                                                                                                             polygons: outputs.polygons != nil)
        return prediction
    }

    /// The map and the other rasters of the scene.
    func predictRasters(paths: [String], outputs: SceneOutputs) throws -> ScenePrediction {
        let start = Date()
        let scene = try checkedScene(paths: paths)
        defer { scene.sample.log() }
        return try predict(scene, outputs: outputs, start: start)
    }

    /// The rasters of a checked scene: streamed, or in windows.
    func predict(_ scene: CheckedScene, outputs: SceneOutputs, start: Date) throws -> ScenePrediction {
        if options.blend == .stream {
            if options.tta {
                return try predictInWindows(scene, outputs: outputs, start: start, because: "test-time augmentation (--tta) averages windows")
            }
            if let streamed = try StripPredictor(model: model, inputs: inputs, options: options,
                                                 refusesThreadsForTesting: refusesThreadsForTesting, progress: progress)
                .predict(scene, outputs: outputs, start: start) { return streamed }
            return try predictInWindows(scene, outputs: outputs, start: start, because: "this model cannot stream its rows (\(model.windowsOnly))")
        }
        let info = scene.info, grid = grid(width: info.width, height: info.height)
        let writers = try SceneWriters(outputs: outputs, like: info, classMap: inputs.classMap, options: options)
        let skipped = try runWindows(scene, grid: grid, tiles: grid.tiles, writers: writers)
        try writers.finish()
        return ScenePrediction(width: info.width, height: info.height, tiles: grid.tiles.count, skippedTiles: skipped,
                               seconds: Date().timeIntervalSince(start))
    }

    /// The scene's raster, checked against the model (bands, `SceneCheck`, georeferencing), and
    /// its band means read while the scene is (`BandMeanSample`: log them when it is mapped).
    func checkedScene(paths: [String]) throws -> CheckedScene {
        let source = try openRaster(paths, recipe: inputs.recipe)
        let info = source.info
        let bands = try source.resolveBands(inputs.bands)
        guard bands.count == model.inputChannels else {
            throw RasterError(.badBand, path: info.path,
                              problem: "the model reads \(model.inputChannels) bands but \(bands.count) are selected (the scene has \(info.bandCount))",
                              hint: "Give a scene with the bands the model was trained on (\(inputs.bands.map { "bands \($0)" } ?? "all data bands"))")
        }
        for warning in try SceneCheck.warnings(info: info, inputs: inputs, allowMismatch: options.allowMismatch) {
            ScenePredictor.logger.warning("\(warning)")
        }
        if !info.isGeoreferenced {
            ScenePredictor.logger.warning("\(info.path) has no CRS or geotransform: the map will not be georeferenced either")
        }
        return CheckedScene(info: info, bands: bands, source: Handoff(source), sample: BandMeanSample(bands: bands, statistics: inputs.statistics))
    }

    /// Runs the windows `tiles` of `grid` through the reader, network and writer stages into
    /// `writers` (aborted on failure, not finished); returns the tiles skipped as all-nodata.
    func runWindows(_ scene: CheckedScene, grid: PredictionGrid, tiles: [PredictionGrid.Tile], writers: SceneWriters) throws -> Int {
        let info = scene.info
        let S = grid.inputSize, C = model.inputChannels, K = model.classCount
        let B = max(1, options.batchSize)
        let pipes = StagePipes(batches: 3, refusesThreadsForTesting: refusesThreadsForTesting) { TileBatch(batch: B, channels: C, classes: K, size: S) }
        let done = DispatchGroup()
        ReaderStage(source: scene.source, sample: scene.sample, bands: scene.bands, normalizer: inputs.normalizer, tiles: tiles).start(pipes, group: done)
        WriterStage(writers: Handoff(writers), grid: grid, width: info.width, height: info.height,
                    classValues: inputs.classMap.classes.map(\.value), classes: K, blend: options.blend,
                    floatProbabilities: options.floatProbabilities).start(pipes, group: done)
        var network = NetworkStage(model: model, coreSize: options.blend == .centre ? grid.tileSize : nil,
                                   needsProbabilities: options.blend == .hann || writers.probabilities != nil || writers.confidence != nil,
                                   tta: options.tta ? TTABuffers(batch: B, channels: C, classes: K, size: S) : nil, progress: progress)
        let counts = network.run(pipes, tileCount: tiles.count)
        done.wait()
        if let error = pipes.failure.error {
            writers.abort()
            throw error
        }
        return counts.skipped
    }
}

extension ScenePredictor {
    /// A model that cannot stream (learned upsampling, test models), or TTA, predicts the checked
    /// scene in centre windows.
    func predictInWindows(_ scene: CheckedScene, outputs: SceneOutputs, start: Date, because reason: String) throws -> ScenePrediction {
        ScenePredictor.logger.notice("\(reason): predicting in windows (--blend centre), exact as well")
        var o = options
        o.blend = .centre
        let windows = try ScenePredictor(model: model, inputs: inputs, options: o)
        windows.progress = progress
        windows.refusesThreadsForTesting = refusesThreadsForTesting
        return try windows.predict(scene, outputs: outputs, start: start)
    }
}

/// Reusable buffers for up to `batch` windows: normalised inputs, validity, scores.
final class TileBatch: @unchecked Sendable {
    let capacity: Int, channels: Int, classes: Int, size: Int
    var tiles: [PredictionGrid.Tile] = []
    var empty: [PredictionGrid.Tile] = []
    /// Every tile in read (scan) order, with its slot; nil for skipped all-nodata tiles.
    var sequence: [(tile: PredictionGrid.Tile, slot: Int?)] = []
    var input: [Float]
    var valid: [UInt8]
    var scores: [Float]

    init(batch: Int, channels: Int, classes: Int, size: Int) {
        capacity = batch
        self.channels = channels
        self.classes = classes
        self.size = size
        input = [Float](repeating: 0, count: batch * channels * size * size)
        valid = [UInt8](repeating: 0, count: batch * size * size)
        scores = [Float](repeating: 0, count: batch * classes * size * size)
    }

    var isEmpty: Bool { tiles.isEmpty && empty.isEmpty }

    enum AddResult { case added, full }

    /// Queues a tile: all-invalid cores go to `empty`, others into the next slot.
    func add(_ tile: PredictionGrid.Tile, block: RasterBlock) -> AddResult {
        let n = size * size
        var anyValid = false
        block.valid.withUnsafeBufferPointer { v in
            for r in 0..<tile.core.height where !anyValid {
                let base = (tile.coreOffsetRow + r) * size + tile.coreOffsetColumn
                for c in 0..<tile.core.width where v[base + c] != 0 { anyValid = true; break }
            }
        }
        if !anyValid {
            empty.append(tile)
            sequence.append((tile, nil))
            return .added
        }
        let slot = tiles.count
        sequence.append((tile, slot))
        input.withUnsafeMutableBufferPointer { dst in
            block.values.withUnsafeBufferPointer { src in
                (dst.baseAddress! + slot * channels * n).update(from: src.baseAddress!, count: channels * n)
            }
        }
        valid.withUnsafeMutableBufferPointer { dst in
            block.valid.withUnsafeBufferPointer { src in
                (dst.baseAddress! + slot * n).update(from: src.baseAddress!, count: n)
            }
        }
        tiles.append(tile)
        return tiles.count == capacity ? .full : .added
    }

    /// Scores of the queued windows' cores (with `coreSize`, the grid's core tile; otherwise of
    /// whole windows): probabilities, or with `probabilities` false whatever the model gives
    /// whose maximum is the class (logits).
    func predict(model: SceneModel, coreSize: Int? = nil, probabilities: Bool = true) throws {
        let count = tiles.count, n = size * size
        var region = Window(column: 0, row: 0, width: size, height: size)
        if let coreSize, let first = tiles.first {
            // The cores' bounding box, widened to a whole core tile where it is smaller (partial
            // tiles at the scene's edges), so the network sees one region shape per scene and
            // keeps its primitives and buffers.
            var top = first.coreOffsetRow, left = first.coreOffsetColumn
            var bottom = top + first.core.height, right = left + first.core.width
            for t in tiles.dropFirst() {
                top = min(top, t.coreOffsetRow); left = min(left, t.coreOffsetColumn)
                bottom = max(bottom, t.coreOffsetRow + t.core.height); right = max(right, t.coreOffsetColumn + t.core.width)
            }
            func widen(_ lo: inout Int, _ hi: inout Int) {
                guard hi - lo < coreSize, coreSize <= size else { return }
                lo = min(lo, size - coreSize)
                hi = lo + coreSize
            }
            widen(&top, &bottom)
            widen(&left, &right)
            region = Window(column: left, row: top, width: right - left, height: bottom - top)
        }
        try input.withUnsafeBufferPointer { i in
            try scores.withUnsafeMutableBufferPointer { s in
                try model.predictScores(UnsafeBufferPointer(rebasing: i[0..<(count * channels * n)]), batch: count, size: size,
                                        region: region, probabilities: probabilities,
                                        into: UnsafeMutableBufferPointer(rebasing: s[0..<(count * classes * n)]))
            }
        }
    }

    func reset() {
        tiles.removeAll(keepingCapacity: true)
        empty.removeAll(keepingCapacity: true)
        sequence.removeAll(keepingCapacity: true)
    }
}

/// Test-time augmentation: the network sees the 8 flips/rotations of each window and the
/// back-transformed probabilities are averaged.
struct TTABuffers {
    let channels: Int, classes: Int, size: Int
    var input: [Float]
    var scores: [Float]
    /// For each symmetry, source index of every destination pixel.
    let maps: [[Int]]

    init(batch: Int, channels: Int, classes: Int, size: Int) {
        self.channels = channels
        self.classes = classes
        self.size = size
        input = [Float](repeating: 0, count: batch * channels * size * size)
        scores = [Float](repeating: 0, count: batch * classes * size * size)
        maps = Symmetry.all.map { $0.sourceMap(size: size) }
    }

    mutating func predict(model: SceneModel, batch: TileBatch) throws {
        let count = batch.tiles.count, n = size * size
        batch.scores.withUnsafeMutableBufferPointer { $0.update(repeating: 0) }
        for map in maps {
            for plane in 0..<(count * channels) {
                let base = plane * n
                for i in 0..<n { input[base + i] = batch.input[base + map[i]] }
            }
            try input.withUnsafeBufferPointer { i in
                try scores.withUnsafeMutableBufferPointer { s in
                    try model.predict(UnsafeBufferPointer(rebasing: i[0..<(count * channels * n)]), batch: count, size: size,
                                      into: UnsafeMutableBufferPointer(rebasing: s[0..<(count * classes * n)]))
                }
            }
            for plane in 0..<(count * classes) {
                let base = plane * n
                for i in 0..<n { batch.scores[base + map[i]] += scores[base + i] / 8 }
            }
        }
    }
}

/// Writes each window's core through the `PixelEmitter` (centre blending).
struct TileWriter {
    var emitter: PixelEmitter
    let size: Int

    init(classValues: [Int], wide: Bool, classes: Int, size: Int, floatProbabilities: Bool) {
        emitter = PixelEmitter(classValues: classValues, wide: wide, classes: classes, floatProbabilities: floatProbabilities)
        self.size = size
    }

    mutating func write(tile: PredictionGrid.Tile, slot: Int, batch: TileBatch,
                        map: any PixelSink, probabilities: (any PixelSink)?, confidence: (any PixelSink)?) throws {
        let core = tile.core, n = size * size, K = emitter.classes
        emitter.start(pixels: core.pixelCount, probabilities: probabilities != nil, confidence: confidence != nil)
        batch.scores.withUnsafeBufferPointer { scores in
            batch.valid.withUnsafeBufferPointer { valid in
                let s = scores.baseAddress! + slot * K * n
                let v = valid.baseAddress! + slot * n
                for r in 0..<core.height {
                    let p = (tile.coreOffsetRow + r) * size + tile.coreOffsetColumn
                    emitter.emitRow(s + p, stride: n, valid: v + p, count: core.width, at: r * core.width)
                }
            }
        }
        try emitter.write(window: core, map: map, probabilities: probabilities, confidence: confidence)
    }

    /// A core with no valid pixel: nodata classes, zero probabilities and confidence.
    mutating func writeNodata(tile: PredictionGrid.Tile, map: any PixelSink, probabilities: (any PixelSink)?, confidence: (any PixelSink)?) throws {
        emitter.start(pixels: tile.core.pixelCount, probabilities: probabilities != nil, confidence: confidence != nil)
        try emitter.write(window: tile.core, map: map, probabilities: probabilities, confidence: confidence)
    }
}

extension BandMeanSample {
    /// Logs the sample's warnings (once the scene's reader is done).
    func log() { for warning in found { ScenePredictor.logger.warning("\(warning)") } }
}

/// A scene checked against the model (`ScenePredictor.checkedScene`): its raster's info, the
/// bands the model reads, the dataset the check opened (handed to the scene's reader thread,
/// its next and only user: a VRT mosaic takes 15–25 ms to open) and the band-mean sample that
/// reader reads.
struct CheckedScene {
    let info: RasterInfo
    let bands: [Int]
    let source: Handoff<any RasterSource>
    let sample: BandMeanSample
}
