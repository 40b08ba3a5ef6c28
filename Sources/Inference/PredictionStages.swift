import Core
import Foundation
import GeoRaster
import Tiling

/// The output rasters of one scene (temporary names until `finish()`): the class map, and
/// optionally per-class probabilities and the confidence band. A band of a scene split across
/// ranks (`SceneBands`) writes into memory instead (`BandBuffer`), for rank 0 to write.
struct SceneWriters {
    let map: any PixelSink
    let probabilities: (any PixelSink)?
    let confidence: (any PixelSink)?
    /// The files, nil for a band in memory.
    private let files: (map: GeoTIFFWriter, others: [GeoTIFFWriter])?
    /// Class values above 254 need a UInt16 map (nodata 65535).
    let wide: Bool
    /// The minimum mapping unit applied to the finished map before its overviews.
    let minMappingUnit: Int
    let connectedness: Connectedness

    /// `rowsInOrder`: the map comes top to bottom in full-width rows (streamed), so its MODE
    /// overviews are computed as it is written (`GeoTIFFWriter.writeOverviewsWithRows`) unless
    /// the minimum mapping unit changes it afterwards.
    init(outputs: SceneOutputs, like info: RasterInfo, classMap: ClassMap, options: PredictionOptions, rowsInOrder: Bool = false) throws {
        let values = classMap.classes.map(\.value)
        wide = (values.max() ?? 0) > 254
        minMappingUnit = options.minMappingUnit
        connectedness = options.mmuConnectedness
        var mapProfile = RasterProfile(like: info, bandCount: 1, dataType: wide ? .uint16 : .byte,
                                       nodata: wide ? 65535 : 255, options: options.creation)
        mapProfile.options.predictor = .none
        let mapFile = try GeoTIFFWriter(path: outputs.map, profile: mapProfile)
        try mapFile.setClasses(classMap.classes)
        try mapFile.setDescription("class", band: 1)
        if rowsInOrder && options.minMappingUnit <= 1 { try mapFile.writeOverviewsWithRows() }
        map = BlockRowWriter(mapFile)
        let probabilityFile = try outputs.probabilities.map { path in
            var profile = RasterProfile(like: info, bandCount: classMap.count, dataType: options.floatProbabilities ? .float32 : .byte,
                                        options: options.creation)
            profile.options.overviews = options.creation.overviews == nil ? nil : .average
            profile.options.predictor = .automatic
            let w = try GeoTIFFWriter(path: path, profile: profile)
            let unit = options.floatProbabilities ? "" : " (×255)"
            for (k, c) in classMap.classes.enumerated() { try w.setDescription("probability of \(c.name)\(unit)", band: k + 1) }
            return w
        }
        let confidenceFile = try outputs.confidence.map { path in
            var profile = RasterProfile(like: info, bandCount: 1, dataType: .byte, options: options.creation)
            profile.options.overviews = options.creation.overviews == nil ? nil : .average
            let w = try GeoTIFFWriter(path: path, profile: profile)
            try w.setDescription("maximum class probability (×255)", band: 1)
            return w
        }
        (probabilities, confidence) = (probabilityFile.map(BlockRowWriter.init), confidenceFile.map(BlockRowWriter.init))
        files = (mapFile, [probabilityFile, confidenceFile].compactMap { $0 })
    }

    /// Rows `rows` of the scene's outputs, in memory (full width, other rows dropped).
    init(band rows: Range<Int>, width: Int, outputs: SceneOutputs, classMap: ClassMap, options: PredictionOptions) {
        wide = (classMap.classes.map(\.value).max() ?? 0) > 254
        minMappingUnit = options.minMappingUnit
        connectedness = options.mmuConnectedness
        map = BandBuffer(rows: rows, width: width, bands: 1, valueSize: wide ? 2 : 1)
        probabilities = outputs.probabilities.map { _ in
            BandBuffer(rows: rows, width: width, bands: classMap.count, valueSize: options.floatProbabilities ? 4 : 1)
        }
        confidence = outputs.confidence.map { _ in BandBuffer(rows: rows, width: width, bands: 1, valueSize: 1) }
        files = nil
    }

    /// Where the map, probabilities and confidence go, in this order.
    var sinks: [any PixelSink] { [map, probabilities, confidence].compactMap { $0 } }

    /// The band buffers (map, probabilities, confidence), for a band in memory.
    var buffers: [BandBuffer] { sinks.compactMap { $0 as? BandBuffer } }

    /// The files (map, probabilities, confidence), empty for a band in memory.
    var fileWriters: [GeoTIFFWriter] { files.map { [$0.map] + $0.others } ?? [] }

    /// Sieves the map (minimum mapping unit), then finishes every output (overviews, rename).
    func finish() throws {
        guard let files else { return }
        do {
            for case let rows as BlockRowWriter in [map, probabilities, confidence] { try rows.flush() }
            try files.map.sieve(minimumPixels: minMappingUnit, connectedness: connectedness)
        } catch {
            abort()
            throw error
        }
        try files.map.finish()
        for f in files.others { try f.finish() }
    }

    func abort() {
        for f in fileWriters { f.abort() }
    }
}

/// The queues between the three stages: a pool of reusable batches, batches read and waiting
/// for the network, batches scored and waiting for the writer. The first error closes them all.
final class StagePipes<Batch: Sendable>: Sendable {
    let pool: BoundedQueue<Batch>
    /// Batches in flight: the reader can be this many ahead of the writer.
    let batches: Int
    let toNetwork = BoundedQueue<Batch>(capacity: 2)
    let toWriter = BoundedQueue<Batch>(capacity: 2)
    let failure = ErrorBox()
    /// Fault injection for tests: stage threads fail to start as if the system had refused them.
    let refusesThreadsForTesting: Bool

    init(batches: Int, refusesThreadsForTesting: Bool = false, make: () -> Batch) {
        self.refusesThreadsForTesting = refusesThreadsForTesting
        self.batches = batches
        pool = BoundedQueue<Batch>(capacity: batches)
        for _ in 0..<batches { pool.push(make()) }
    }

    func stopAll(_ error: Error) {
        failure.record(error)
        pool.close(); toNetwork.close(); toWriter.close()
    }
}

/// Starts a stage on its own thread. A thread that cannot start (no memory for its stack, a
/// process limit) closes the pipes with an error, so the other stages stop instead of waiting
/// for it forever (Foundation's `Thread` gives no such answer, hence pthreads).
enum StageThread {
    static func start<Batch>(_ name: String, _ pipes: StagePipes<Batch>, group: DispatchGroup, _ body: @escaping @Sendable () throws -> Void) {
        group.enter()
        let status = DetachedThread.start(refused: pipes.refusesThreadsForTesting) {
            defer { group.leave() }
            do { try body() } catch { pipes.stopAll(error) }
        }
        if status != 0 {
            pipes.stopAll(TerraSegError(.createFailed, path: name,
                                        problem: "could not start the prediction's \(name) thread (\(String(cString: strerror(status))))",
                                        hint: "Raise the process's thread or memory limit (ulimit -u, ulimit -v) or free memory"))
            group.leave()
        }
    }
}

/// A detached pthread running `body`: 0, or the error number when the system (or `refused`,
/// for tests) refuses the thread, and `body` does not run.
enum DetachedThread {
    private final class Body {
        let run: () -> Void
        init(_ run: @escaping () -> Void) { self.run = run }
    }

    static func start(refused: Bool = false, _ body: @escaping () -> Void) -> Int32 {
        let box = Unmanaged.passRetained(Body(body))
        var thread = pthread_t()
        let status = refused ? EAGAIN : pthread_create(&thread, nil, { raw in
            Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue().run()
            return nil
        }, box.toOpaque())
        if status == 0 { pthread_detach(thread) } else { box.release() }
        return status
    }
}

/// Reader stage (its own thread, the only user of the scene's dataset from then on: GDAL handles
/// are used by one thread at a time): reads each tile's window, normalises it and queues full
/// batches for the network; reads the band-mean sample once every batch is in flight (it would
/// wait for the network then), or at the end.
struct ReaderStage: Sendable {
    let source: Handoff<any RasterSource>
    let sample: BandMeanSample
    let bands: [Int]
    let normalizer: Normalizer
    let tiles: [PredictionGrid.Tile]

    func start(_ pipes: StagePipes<TileBatch>, group: DispatchGroup) {
        StageThread.start("reader", pipes, group: group) { try run(pipes) }
    }

    func run(_ pipes: StagePipes<TileBatch>) throws {
        let src = source.value
        var block = RasterBlock(), queued = 0
        guard var batch = pipes.pool.pop() else { return }
        for tile in tiles {
            try StopSignal.check()  // SIGINT/SIGTERM: the scene's outputs are discarded
            try src.read(window: tile.input, bands: bands, into: &block)
            normalizer.apply(to: &block)
            if batch.add(tile, block: block) == .full {
                guard pipes.toNetwork.push(batch) else { return }
                queued += 1
                if queued == pipes.batches { sample.read(src) }
                guard let next = pipes.pool.pop() else { return }
                batch = next
            }
        }
        if !batch.isEmpty { pipes.toNetwork.push(batch) } else { pipes.pool.push(batch) }
        if queued < pipes.batches { sample.read(src) }
        pipes.toNetwork.close()
    }
}

/// Network stage (the calling thread): scores each batch, plain or with test-time augmentation.
/// Centre mode reads only the cores (the network may skip work in the margins); a map alone
/// needs only each pixel's best class: no softmax.
struct NetworkStage {
    let model: SceneModel
    let coreSize: Int?
    let needsProbabilities: Bool
    var tta: TTABuffers?
    let progress: ((Int, Int) -> Void)?

    /// Runs until the reader is done; returns (tiles processed, tiles skipped as all-nodata).
    mutating func run(_ pipes: StagePipes<TileBatch>, tileCount: Int) -> (processed: Int, skipped: Int) {
        var skipped = 0, processed = 0
        while let batch = pipes.toNetwork.pop() {
            skipped += batch.empty.count
            processed += batch.sequence.count
            progress?(processed, tileCount)
            if !batch.tiles.isEmpty {
                do {
                    if tta != nil {
                        try tta!.predict(model: model, batch: batch)
                    } else {
                        try batch.predict(model: model, coreSize: coreSize, probabilities: needsProbabilities)
                    }
                } catch {
                    pipes.stopAll(error)
                    break
                }
            }
            if !pipes.toWriter.push(batch) { break }
        }
        pipes.toWriter.close()
        return (processed, skipped)
    }
}

/// Writer stage (its own thread): turns scores into the outputs' pixels, centre-cropped
/// (`TileWriter`) or Hann-blended (`HannBlender`), and hands each batch back to the pool.
struct WriterStage: Sendable {
    let writers: Handoff<SceneWriters>
    let grid: PredictionGrid
    let width: Int, height: Int
    let classValues: [Int]
    let classes: Int
    let blend: BlendMode
    let floatProbabilities: Bool

    func start(_ pipes: StagePipes<TileBatch>, group: DispatchGroup) {
        StageThread.start("writer", pipes, group: group) { try run(pipes) }
    }

    func run(_ pipes: StagePipes<TileBatch>) throws {
        let w = writers.value
        var out = TileWriter(classValues: classValues, wide: w.wide, classes: classes, size: grid.inputSize,
                             floatProbabilities: floatProbabilities)
        var blender = blend == .hann
            ? HannBlender(width: width, height: height, grid: grid, classes: classes, classValues: classValues, wide: w.wide,
                          floatProbabilities: floatProbabilities) : nil
        while let batch = pipes.toWriter.pop() {
            for (tile, slot) in batch.sequence {
                if blender != nil {
                    try blender!.add(tile: tile, slot: slot, batch: batch, map: w.map, probabilities: w.probabilities, confidence: w.confidence)
                } else if let slot {
                    try out.write(tile: tile, slot: slot, batch: batch, map: w.map, probabilities: w.probabilities, confidence: w.confidence)
                } else {
                    try out.writeNodata(tile: tile, map: w.map, probabilities: w.probabilities, confidence: w.confidence)
                }
            }
            batch.reset()
            pipes.pool.push(batch)
        }
        try blender?.finish(map: w.map, probabilities: w.probabilities, confidence: w.confidence)
    }
}
