import Core
import Engine
import Foundation
import GeoRaster
import Models
import Tiling

/// Streaming prediction (`BlendMode.stream`): the scene goes through the network's
/// `RowStream` in full-width strips of rows, each feature computed once, and the map equals one
/// window over the whole scene (its right and bottom padded with invalid pixels up to the
/// network's alignment). A reader thread reads and normalises strips, the calling thread
/// streams them, a writer thread writes the rows that come out (they lag the strips by the
/// network's halo). All-nodata strips farther than the receptive radius from valid rows skip
/// the network: the stream ends a receptive radius below the last valid row and restarts a
/// radius above the next one (at an aligned row), which leaves every valid pixel's receptive
/// field, and so its scores, unchanged.
struct StripPredictor {
    let model: SceneModel
    let inputs: ModelInputs
    let options: PredictionOptions
    let refusesThreadsForTesting: Bool
    let progress: ((Int, Int) -> Void)?

    /// Rows per strip: `options.stripHeight`, or `preferredRows` for the scene's width where
    /// the stream's buffers fit `options.memoryBudget` (else what fits), rounded up to a
    /// multiple of the alignment.
    static func stripHeight(options: PredictionOptions, width: Int, bytesPerPixel: Int, alignment: Int) -> Int {
        let rows = options.stripHeight ?? min(preferredRows(width: width), options.memoryBudget / max(1, width * bytesPerPixel))
        return PredictionGrid.roundUp(max(1, rows), to: alignment)
    }

    /// Strips of about 2¹⁷ pixels (64 rows at 2048 px), 32 to 256 rows: the fastest measured.
    /// Taller strips touch more fresh memory for each row (page faults, caches: the small U-Net
    /// streamed 2048² at 2.2 MP/s in 256-row strips and 3.5 in 48-row ones, R1 0.71 → 0.77
    /// MP/s); below 32 rows the deepest levels get a few rows per call and the halo rows weigh
    /// (R1 at 20,000 px wide: 16-row strips took 15 % more CPU time than 32-row ones).
    static func preferredRows(width: Int) -> Int { min(256, max(32, (1 << 17) / max(1, width))) }

    /// The scene's maps, or nil when the model cannot stream.
    func predict(_ scene: CheckedScene, outputs: SceneOutputs, start: Date) throws -> ScenePrediction? {
        let info = scene.info
        guard let (stream, S) = rowStream(info: info) else { return nil }
        let width = PredictionGrid.roundUp(info.width, to: model.alignment), height = PredictionGrid.roundUp(info.height, to: model.alignment)
        let strips = stride(from: 0, to: height, by: S).map { Window(column: 0, row: $0, width: width, height: min(S, height - $0)) }
        let writers = try SceneWriters(outputs: outputs, like: info, classMap: inputs.classMap, options: options, rowsInOrder: true)
        let skipped = try run(strips, scene: scene, stream: stream, end: height, writers: writers)
        try writers.finish()
        return ScenePrediction(width: info.width, height: info.height, tiles: strips.count, skippedTiles: skipped,
                               seconds: Date().timeIntervalSince(start))
    }

    /// The model's row stream for the scene and its rows per strip, or nil when the model cannot stream.
    func rowStream(info: RasterInfo) -> (stream: RowStream, stripHeight: Int)? {
        let width = PredictionGrid.roundUp(info.width, to: model.alignment)
        let S = StripPredictor.stripHeight(options: options, width: width, bytesPerPixel: model.streamBytesPerPixel, alignment: model.alignment)
        return model.rowStream(rows: S).map { ($0, S) }
    }

    /// Streams `strips` (full width; the stream ends at row `end`) through the reader, network
    /// and writer stages into `writers`: the one pipeline of a whole scene and of a rank's band
    /// (`SceneBands`). On failure the stream is reset, `writers` aborted (no temporary file
    /// stays) and the error rethrown; on success `writers` are left to finish. Returns the strips
    /// skipped as all-nodata.
    func run(_ strips: [Window], scene: CheckedScene, stream: RowStream, end: Int, writers: SceneWriters) throws -> Int {
        let info = scene.info, A = model.alignment, K = model.classCount, width = PredictionGrid.roundUp(info.width, to: A)
        let pipes = StagePipes(batches: 3, refusesThreadsForTesting: refusesThreadsForTesting) { StripBatch(channels: model.inputChannels, classes: K) }
        let done = DispatchGroup()
        StripReader(source: scene.source, sample: scene.sample, bands: scene.bands, normalizer: inputs.normalizer, strips: strips).start(pipes, group: done)
        StripWriter(writers: Handoff(writers), width: info.width, height: info.height, stride: width, classValues: inputs.classMap.classes.map(\.value),
                    classes: K, floatProbabilities: options.floatProbabilities).start(pipes, group: done)
        var network = StripNetwork(stream: stream, alignment: A, radius: model.receptiveRadius, width: width, height: end,
                                   probabilities: writers.probabilities != nil || writers.confidence != nil, progress: progress)
        network.run(pipes, stripCount: strips.count)
        done.wait()
        if let error = pipes.failure.error {
            stream.reset()
            writers.abort()
            throw error
        }
        return network.skipped
    }
}

/// One strip on its way: the reader's normalised rows and validity, then the rows the network
/// finished while streaming it (scores for rows the stream produced, nodata for skipped rows).
final class StripBatch: @unchecked Sendable {
    let channels: Int, classes: Int
    var window = Window(width: 0, height: 0)
    var input: Tensor?
    var valid: [UInt8] = []
    var anyValid = false
    /// Finished rows: [row, row + rows), with scores (K × rows × width, then `validity`) or nodata.
    struct Piece { var row: Int; var rows: Int; var scoreOffset: Int?; var validOffset: Int }
    var pieces: [Piece] = []
    var scores: [Float] = []
    var validity: [UInt8] = []

    init(channels: Int, classes: Int) {
        self.channels = channels
        self.classes = classes
    }

    /// Takes the reader's block: values normalised into the input tensor (1, C, rows, width), validity.
    func load(_ block: RasterBlock, normalizer: Normalizer) {
        window = block.window
        let x = reuse(input, Shape(1, channels, block.window.height, block.window.width), .nchw)
        input = x
        normalizer.write(block, into: x.data)
        valid = block.valid
        anyValid = block.valid.contains { $0 != 0 }
    }

    func clearOutput() {
        pieces.removeAll(keepingCapacity: true)
        scores.removeAll(keepingCapacity: true)
        validity.removeAll(keepingCapacity: true)
    }
}

/// Reader stage of streaming (its own thread, the only user of the scene's dataset from then
/// on): reads each strip, normalises it, and reads the band-mean sample once every batch is in
/// flight (it would wait for the network then), or at the end; a stop signal ends the scene at
/// the next strip.
struct StripReader: Sendable {
    let source: Handoff<any RasterSource>
    let sample: BandMeanSample
    let bands: [Int]
    let normalizer: Normalizer
    let strips: [Window]

    func start(_ pipes: StagePipes<StripBatch>, group: DispatchGroup) {
        StageThread.start("reader", pipes, group: group) { try run(pipes) }
    }

    func run(_ pipes: StagePipes<StripBatch>) throws {
        let src = source.value
        var block = RasterBlock()
        for (i, strip) in strips.enumerated() {
            guard let batch = pipes.pool.pop() else { return }
            try StopSignal.check()  // SIGINT/SIGTERM: the scene's outputs are discarded
            try src.read(window: strip, bands: bands, into: &block)
            batch.load(block, normalizer: normalizer)
            guard pipes.toNetwork.push(batch) else { return }
            if i == pipes.batches - 1 { sample.read(src) }
        }
        if strips.count < pipes.batches { sample.read(src) }
        pipes.toNetwork.close()
    }
}

/// Network stage of streaming (the calling thread): pushes strips through the stream, keeps the
/// validity of rows not yet out, and hands finished rows to the writer with the strip.
struct StripNetwork {
    let stream: RowStream
    let alignment: Int, radius: Int, width: Int, height: Int
    let probabilities: Bool
    let progress: ((Int, Int) -> Void)?
    private(set) var skipped = 0
    /// Stream state: active segment, next row its output starts at, rows fed, end of the last
    /// valid strip; rows before `written` went to the writer.
    private var active = false
    private var outRow = 0, fedEnd = 0, lastValidEnd = 0, written = 0
    private var pendingValid: [UInt8] = []
    private var zeros: Tensor?, softmax: Tensor?

    init(stream: RowStream, alignment: Int, radius: Int, width: Int, height: Int, probabilities: Bool, progress: ((Int, Int) -> Void)?) {
        self.stream = stream; self.alignment = alignment; self.radius = radius
        self.width = width; self.height = height; self.probabilities = probabilities; self.progress = progress
    }

    mutating func run(_ pipes: StagePipes<StripBatch>, stripCount: Int) {
        var count = 0
        while let batch = pipes.toNetwork.pop() {
            batch.clearOutput()
            step(batch)
            count += 1
            progress?(count, stripCount)
            if !pipes.toWriter.push(batch) { break }
        }
        pipes.toWriter.close()
    }

    /// One strip: start a segment a radius above valid rows, feed, end a segment a radius below
    /// the last valid rows, or skip.
    private mutating func step(_ batch: StripBatch) {
        let strip = batch.window
        let end = strip.row + strip.height
        if batch.anyValid {
            if !active {
                let start = max(0, (strip.row - radius) / alignment * alignment)
                active = true
                outRow = start
                fedEnd = start
                pendingValid.removeAll(keepingCapacity: true)
                if start < strip.row { feed(nil, rows: strip.row - start, valid: nil, final: false, into: batch) }
            }
            lastValidEnd = end
        } else if !active {
            emitNodata(upTo: end, into: batch)
            skipped += 1
            return
        }
        let finishes = end == height || (!batch.anyValid && end - lastValidEnd >= radius)
        feed(batch.input, rows: strip.height, valid: batch.valid, final: finishes, into: batch)
        if finishes { active = false }
    }

    /// Pushes rows (nil: zero rows) through the stream and hands what comes out to the batch.
    private mutating func feed(_ rows: Tensor?, rows count: Int, valid: [UInt8]?, final: Bool, into batch: StripBatch) {
        var x = rows
        if x == nil {
            let z = reuse(zeros, Shape(1, batch.channels, count, width), .nchw)
            z.zero()
            zeros = z
            x = z
        }
        pendingValid += valid ?? [UInt8](repeating: 0, count: count * width)
        fedEnd += count
        stream.push(x!, final: final) { logits in
            var out = logits
            if probabilities {
                let p = reuseRows(softmax, out.shape, .nchw)
                softmax = p
                ChannelSoftmax.forward(input: out, output: p)
                out = p
            }
            emit(out, into: batch)
        }
    }

    /// Output rows [outRow, outRow + n): those not written yet go to the batch with their validity.
    private mutating func emit(_ scores: Tensor, into batch: StripBatch) {
        let n = scores.shape.h, plane = n * width
        let skip = min(n, max(0, written - outRow))
        if skip < n {
            let rows = n - skip
            let validOffset = batch.validity.count, scoreOffset = batch.scores.count
            batch.validity += pendingValid[(skip * width)..<(n * width)]
            for k in 0..<batch.classes {
                let base = k * plane + skip * width
                batch.scores += UnsafeBufferPointer(start: scores.data + base, count: rows * width)
            }
            batch.pieces.append(.init(row: outRow + skip, rows: rows, scoreOffset: scoreOffset, validOffset: validOffset))
            written = outRow + n
        }
        pendingValid.removeFirst(n * width)
        outRow += n
    }

    /// Rows [written, end) as nodata (skipped strips).
    private mutating func emitNodata(upTo end: Int, into batch: StripBatch) {
        guard end > written else { return }
        batch.pieces.append(.init(row: written, rows: end - written, scoreOffset: nil, validOffset: 0))
        written = end
    }
}

/// Writer stage of streaming (its own thread): finished rows through the `PixelEmitter`,
/// clipped to the scene.
struct StripWriter: Sendable {
    let writers: Handoff<SceneWriters>
    /// Scene size; `stride` = the strips' width (the scene's, rounded up to the alignment).
    let width: Int, height: Int, stride: Int
    let classValues: [Int]
    let classes: Int
    let floatProbabilities: Bool

    func start(_ pipes: StagePipes<StripBatch>, group: DispatchGroup) {
        StageThread.start("writer", pipes, group: group) { try run(pipes) }
    }

    func run(_ pipes: StagePipes<StripBatch>) throws {
        let w = writers.value
        var emitter = PixelEmitter(classValues: classValues, wide: w.wide, classes: classes, floatProbabilities: floatProbabilities)
        while let batch = pipes.toWriter.pop() {
            for piece in batch.pieces where piece.row < height {
                let rows = min(piece.rows, height - piece.row)
                emitter.start(pixels: rows * width, probabilities: w.probabilities != nil, confidence: w.confidence != nil)
                if let scoreOffset = piece.scoreOffset {
                    let plane = piece.rows * stride
                    batch.scores.withUnsafeBufferPointer { scores in
                        batch.validity.withUnsafeBufferPointer { validity in
                            for r in 0..<rows {
                                emitter.emitRow(scores.baseAddress! + scoreOffset + r * stride, stride: plane,
                                                valid: validity.baseAddress! + piece.validOffset + r * stride, count: width, at: r * width)
                            }
                        }
                    }
                }
                try emitter.write(window: Window(column: 0, row: piece.row, width: width, height: rows),
                                  map: w.map, probabilities: w.probabilities, confidence: w.confidence)
            }
            batch.clearOutput()
            pipes.pool.push(batch)
        }
    }
}
