import Core
import Distributed
import Foundation
import GeoRaster
import Models
import Tiling

/// One scene predicted by several ranks (a batch of one scene under mpirun/srun): each rank
/// predicts a band of full-width rows into memory (`BandBuffer`), rank 0 receives the bands in
/// row order and writes the map once through the same `SceneWriters` as one process (sieve,
/// overviews, COG, siblings, STAC Item), so the files are byte-identical to a single-process
/// run. A writer rank rather than parts assembled afterwards: the sieve and overviews need the
/// whole map, and one writer keeps GDAL's block order, so no second pass or merge is needed.
/// Bands are exact by construction: in windows (`centre`, `--tta`) a band is whole rows of core
/// tiles, each window read with its margin from the scene; streamed, a band's strips start a
/// receptive radius above it (at an aligned row) and end a radius below, and only its own rows
/// are kept. `hann` blends windows across band edges, so its scene goes to one rank.
enum SceneBands {
    /// Rows of each rank: `height` cut into `ranks` bands of whole `step`s, as equal as they come
    /// (a rank whose band is empty predicts nothing).
    static func rows(height: Int, ranks: Int, step: Int) -> [Range<Int>] {
        let units = (height + step - 1) / step
        return (0..<ranks).map { r in min(height, units * r / ranks * step)..<min(height, units * (r + 1) / ranks * step) }
    }

    /// Whether a batch is split: one scene, several ranks, and windows that do not blend.
    static func applies(jobs: Int, ranks: Int, blend: BlendMode) -> Bool { jobs == 1 && ranks > 1 && blend != .hann }

    /// What a rank tells rank 0 of its band.
    struct Status: Codable {
        var failure: String?
        var tiles = 0, skipped = 0
    }
}

/// One rank's band of a scene: its rows in memory and what it took.
struct PredictedBand {
    var info: RasterInfo
    var writers: SceneWriters
    var plan: [Range<Int>]
    /// The windows' grid; nil when streamed.
    var grid: PredictionGrid?
    var tiles: Int, skipped: Int

    /// The windows one process writes `rows` in, in its order: window cores, or full-width rows
    /// up to each block row's end (`BlockRowWriter`), so the files are written alike.
    func writes(_ rows: Range<Int>, blockRows: Int) -> [Window] {
        guard let grid else {
            return stride(from: rows.lowerBound, to: rows.upperBound, by: 1).filter { $0 == rows.lowerBound || $0 % blockRows == 0 }.map {
                Window(column: 0, row: $0, width: info.width, height: min(($0 / blockRows + 1) * blockRows, rows.upperBound) - $0)
            }
        }
        return grid.tiles.filter { rows.contains($0.core.row) }.map(\.core)
    }
}

extension ScenePredictor {
    /// Rank `communicator.rank`'s band of the scene `paths` (`SceneBands`), streamed when the
    /// options and the model stream, else in windows.
    func predictBand(paths: [String], outputs: SceneOutputs, communicator: Communicator) throws -> PredictedBand {
        let scene = try checkedScene(paths: paths)
        defer { scene.sample.log() }
        let info = scene.info
        let streamer = StripPredictor(model: model, inputs: inputs, options: options, refusesThreadsForTesting: refusesThreadsForTesting,
                                      progress: progress)
        if options.blend == .stream, !options.tta, let (stream, S) = streamer.rowStream(info: info) {
            let A = model.alignment
            let width = PredictionGrid.roundUp(info.width, to: A), height = PredictionGrid.roundUp(info.height, to: A)
            let plan = SceneBands.rows(height: info.height, ranks: communicator.size, step: A)
            let rows = plan[communicator.rank]
            let writers = SceneWriters(band: rows, width: info.width, outputs: outputs, classMap: inputs.classMap, options: options)
            guard !rows.isEmpty else { return PredictedBand(info: info, writers: writers, plan: plan, grid: nil, tiles: 0, skipped: 0) }
            let R = model.receptiveRadius
            let top = max(0, rows.lowerBound - R) / A * A, bottom = min(height, PredictionGrid.roundUp(rows.upperBound + R, to: A))
            let strips = stride(from: top, to: bottom, by: S).map { Window(column: 0, row: $0, width: width, height: min(S, bottom - $0)) }
            let skipped = try streamer.run(strips, scene: scene, stream: stream, end: bottom, writers: writers)
            return PredictedBand(info: info, writers: writers, plan: plan, grid: nil, tiles: strips.count, skipped: skipped)
        }
        if options.blend == .stream {
            ScenePredictor.logger.notice("\(options.tta ? "test-time augmentation (--tta) averages windows" : "this model cannot stream its rows (\(model.windowsOnly))"): predicting in windows (--blend centre), exact as well")
        }
        let grid = grid(width: info.width, height: info.height)
        let plan = SceneBands.rows(height: info.height, ranks: communicator.size, step: grid.tileSize)
        let rows = plan[communicator.rank]
        let tiles = grid.tiles.filter { rows.contains($0.core.row) }
        let writers = SceneWriters(band: rows, width: info.width, outputs: outputs, classMap: inputs.classMap, options: options)
        var o = options
        o.blend = .centre
        let windows = try ScenePredictor(model: model, inputs: inputs, options: o)
        windows.progress = progress
        windows.refusesThreadsForTesting = refusesThreadsForTesting
        let skipped = tiles.isEmpty ? 0 : try windows.runWindows(scene, grid: grid, tiles: tiles, writers: writers)
        return PredictedBand(info: info, writers: writers, plan: plan, grid: grid, tiles: tiles.count, skipped: skipped)
    }
}

extension ScenePredictor {
    /// The one scene of a batch across the ranks of `communicator` (`SceneBands`): rank 0
    /// returns its report (calling `progress`), the other ranks none. A rank's failure fails
    /// the scene, reported by rank 0 with the rank; an interruption ends the job.
    func predictSplit(_ job: SceneJob, outputs: SceneOutputs, communicator: Communicator,
                      progress: (SceneReport) -> Void) throws -> [SceneReport] {
        let exists = !options.overwrite && outputs.all.allSatisfy { FileManager.default.fileExists(atPath: $0) }
        if try communicator.broadcast([exists ? 1 : 0]) == [1] {
            guard communicator.isRoot else { return [] }
            let report = try predict(job, outputs: outputs, kept: [])
            progress(report)
            return [report]
        }
        if communicator.isRoot {
            ScenePredictor.logger.notice("One scene on \(communicator.size) ranks: each predicts a band of rows, rank 0 writes the map")
        }
        let start = Date()
        var band: PredictedBand?, status = SceneBands.Status()
        do {
            let b = try predictBand(paths: job.paths, outputs: outputs, communicator: communicator)
            (band, status.tiles, status.skipped) = (b, b.tiles, b.skipped)
        } catch let stop as Interrupted {
            communicator.abandon()  // the other ranks wait for this one's band
            throw stop
        } catch {
            status.failure = String(describing: error)
        }
        let statuses = try communicator.gather([UInt8](JSONEncoder().encode(status)))
            .map { try JSONDecoder().decode(SceneBands.Status.self, from: Data($0)) }
        var failure = statuses.enumerated().first { $0.element.failure != nil }.map { "rank \($0.offset): \($0.element.failure!)" }
        var files: SceneWriters?
        if communicator.isRoot, failure == nil, let band {
            do {
                files = try SceneWriters(outputs: outputs, like: band.info, classMap: inputs.classMap, options: options, rowsInOrder: band.grid == nil)
            } catch {
                failure = String(describing: error)
            }
        }
        guard try communicator.broadcast([files != nil ? 1 : 0]) == [1], let band else {
            guard communicator.isRoot else { return [] }
            let report = failed(job, outputs, failure)
            progress(report)
            return [report]
        }
        guard communicator.isRoot, let files else {
            for buffer in band.writers.buffers { try buffer.bytes.withUnsafeBytes { try communicator.send(bytes: $0, to: 0, tag: Self.bandTag) } }
            return []
        }
        let report = gatherBands(band, into: files, job: job, outputs: outputs, communicator: communicator, statuses: statuses, start: start)
        progress(report)
        return [report]
    }

    static let bandTag = 73

    private func failed(_ job: SceneJob, _ outputs: SceneOutputs, _ failure: String?) -> SceneReport {
        SceneReport(job: job, outputs: outputs, status: .failed(failure ?? "a rank could not predict its band"), prediction: nil)
    }

    /// Rank 0: writes its band and every other rank's (received in rank order, all of them even
    /// after a failure, so no rank waits), finishes the files, then the map's siblings and Item.
    private func gatherBands(_ mine: PredictedBand, into files: SceneWriters, job: SceneJob, outputs: SceneOutputs,
                             communicator: Communicator, statuses: [SceneBands.Status], start: Date) -> SceneReport {
        var failure: String?
        func write(_ writers: SceneWriters, rows: Range<Int>) {
            guard failure == nil else { return }
            do {
                for window in mine.writes(rows, blockRows: options.creation.blockSize) {
                    for (buffer, sink) in zip(writers.buffers, files.sinks) { try buffer.write(window, into: sink) }
                }
            } catch {
                failure = String(describing: error)
            }
        }
        write(mine.writers, rows: mine.plan[0])
        for r in 1..<communicator.size {
            let theirs = SceneWriters(band: mine.plan[r], width: mine.info.width, outputs: outputs, classMap: inputs.classMap, options: options)
            do {
                for buffer in theirs.buffers {
                    try buffer.bytes.withUnsafeMutableBytes { try communicator.receive(into: $0, from: r, tag: Self.bandTag) }
                }
            } catch {
                files.abort()
                return failed(job, outputs, String(describing: error))
            }
            write(theirs, rows: mine.plan[r])
        }
        do {
            if let failure { throw TerraSegError(.writeFailed, path: outputs.map, problem: failure) }
            try files.finish()
            var p = ScenePrediction(width: mine.info.width, height: mine.info.height, tiles: statuses.map(\.tiles).reduce(0, +),
                                    skippedTiles: statuses.map(\.skipped).reduce(0, +), seconds: Date().timeIntervalSince(start))
            p.polygons = try MapSiblingWriter(classes: inputs.classMap.classes, options: options).write(besideMap: outputs.map,
                                                                                                        polygons: outputs.polygons != nil)
            try stacWriter.write(outputs: outputs, job: job)
            return SceneReport(job: job, outputs: outputs, status: .written, prediction: p)
        } catch {
            files.abort()
            return failed(job, outputs, String(describing: error))
        }
    }
}
