import Core
import Distributed
import Engine
import Foundation
import GeoRaster
import Logging
import Metrics
import ModelIO
import Models
import Tiling

/// Scores of one epoch, one line of `metrics.jsonl`.
public struct EpochMetrics: Codable, Sendable {
    public var epoch: Int
    public var trainLoss: Double
    public var validationLoss: Double?
    public var overallAccuracy: Double?
    public var meanIoU: Double?
    public var perClassIoU: [String: Double]?
    public var perClassF1: [String: Double]?
    public var confusionMatrix: [[Int]]?
    public var learningRate: Double
    public var seconds: Double
    public var patchesPerSecond: Double
    /// A tile set's training chips per second: the epoch's chips over its seconds (nil for scenes).
    public var chipsPerSecond: Double?
}

/// The outcome of `Trainer.run`.
public struct TrainingResult: Sendable {
    public var bundle: String?
    public var interrupted: Bool
    public var epochsCompleted: Int
    public var history: [EpochMetrics]
    public var best: EpochMetrics?
    public var trainPatches: Int
    public var validationPatches: Int
    public var wallSeconds: Double
}

/// Trains a network on labelled scenes: spatially split patches read window by window,
/// normalisation from the training patches' statistics, Dice + focal (or any weighted sum),
/// augmentation, per-epoch validation metrics, best-by-mIoU model, checkpoints that resume
/// the same run exactly, and a clean stop on SIGINT/SIGTERM.
public final class Trainer {
    public let scenes: [LabelledScene]
    public let options: TrainingOptions
    public let architecture: ModelArchitecture
    /// The model bundle directory written at the end.
    public let output: String
    /// Checkpoints and the metrics log live beside the bundle, in `<output>.training/`.
    public var workDirectory: String { output + ".training" }
    public var progress = ProgressReporter()
    /// Provenance: where the training data came from.
    public var dataDescription: [String]
    /// What identifies the data beyond the opened scenes, for the checkpoint's fingerprint
    /// (`Trainer.train` adds vector label files and how they are read).
    public var dataIdentity: [String] = []
    /// Pretrained weights that initialise the encoder (`model.encoder_weights`) before
    /// training or a checkpoint's weights; their file identity is part of the settings fingerprint.
    public var encoderWeights: EncoderWeights?
    public var terrasegVersion = "unknown"
    /// Called after every training step with (epoch, batch), both 0-based (tests use it to
    /// interrupt a run at a known point).
    public var afterStep: ((Int, Int) -> Void)?
    /// Where a stop request comes from: nil, SIGINT/SIGTERM (`StopSignal`). Tests stop one
    /// trainer with a flag of their own, since the process-wide signal stops every trainer
    /// of the process (tests run side by side).
    public var stopRequested: (() -> Bool)?
    /// The ranks training together (`DataParallel`); rank 0 alone writes and reports.
    public var communicator = Communicator.single
    static let logger = Logger(label: "terraseg.train")

    public init(scenes: [LabelledScene], architecture: ModelArchitecture, options: TrainingOptions, output: String) throws {
        guard let first = scenes.first else {
            throw RasterError(.invalidArgument, path: output, problem: "no training scenes given", hint: "List at least one scene with its labels")
        }
        for s in scenes where s.bands.count != first.bands.count {
            throw RasterError(.badBand, path: s.image.info.path, problem: "\(s.bands.count) bands selected but \(first.bands.count) in \(first.image.info.path)",
                              hint: "Every training scene needs the same bands")
        }
        guard architecture.inputChannels == first.bands.count else {
            throw RasterError(.invalidArgument, path: output, problem: "the model takes \(architecture.inputChannels) bands but the scenes give \(first.bands.count)")
        }
        guard architecture.classes == first.classMap.count else {
            throw RasterError(.invalidArgument, path: output, problem: "the model outputs \(architecture.classes) classes but the class map has \(first.classMap.count)")
        }
        guard options.patchSize % architecture.alignment == 0 else {
            throw RasterError(.invalidArgument, path: output,
                              problem: "the patch size \(options.patchSize) is not a multiple of \(architecture.alignment), the network's down-sampling factor",
                              hint: "Use \(PredictionGrid.roundUp(options.patchSize, to: architecture.alignment)) (or another multiple of \(architecture.alignment))")
        }
        self.scenes = scenes
        self.architecture = architecture
        self.options = options
        self.output = output
        dataDescription = scenes.map { "\($0.image.info.path) | \($0.labelPath)" }
    }

    // MARK: - Data

    struct Data {
        var train: [PatchRef]
        var validation: [PatchRef]
        var statistics: BandStatistics
        var normalizer: Normalizer
    }

    func prepareData() throws -> Data {
        let split = options.split.spatialSplit(patchSize: options.patchSize, seed: options.seed)
        let (refs, skips) = try ChipSkips.candidatePatches(of: scenes, patchSize: options.patchSize, stride: options.effectiveStride,
                                                           split: split, minLabelledFraction: 1 - options.maxInvalidFraction)
        if let notice = skips.notice(of: scenes.filter(\.chip).count, what: "that give no patch") { Trainer.logger.warning("\(notice)") }
        let train = refs.filter { $0.role == .train }
        let validation = refs.filter { $0.role == .validation }
        guard !train.isEmpty else {
            throw RasterError(.invalidArgument, path: scenes[0].image.info.path, problem: "no training patch: every patch fell in the validation set",
                              hint: "Give validation a smaller share (tiling.split.validation_fraction or train_fraction, flag --split), or use a larger scene")
        }
        if validation.isEmpty && options.split.method != .none {
            Trainer.logger.warning("no validation patch: metrics and best-model selection are unavailable; use a larger scene or another split")
        }
        let names = scenes[0].classMap.names
        let census = try ClassCensus(scenes: scenes, train: train, validation: validation, classes: names.count)
        census.table(names: names).forEach(progress.line)
        census.warnings(names: names).forEach { Trainer.logger.warning("\($0)") }
        try census.checkSeveralClasses(names: names, path: scenes[0].labelPath)
        // Statistics over the training patches only (validation stays unseen).
        var acc = BandStatisticsAccumulator(bandCount: scenes[0].bands.count, seed: options.seed)
        var block = RasterBlock()
        for r in train {
            try scenes[r.scene].image.read(window: r.window, bands: scenes[r.scene].bands, into: &block)
            acc.add(block)
        }
        let stats = acc.finish()
        for (b, n) in stats.count.enumerated() where n == 0 {
            throw RasterError(.badBand, path: scenes[0].image.info.path, band: scenes[0].bands[b],
                              problem: "the band has no valid pixel in the training patches", hint: "Check its nodata value with `terraseg info`")
        }
        return Data(train: train, validation: validation, statistics: stats,
                    normalizer: Normalizer(statistics: stats, method: options.normalization))
    }

    /// Writes the normalised training and validation patches exactly as the trainer sees
    /// them (before augmentation) to a safetensors file — `train_x` (N, C, P, P), `train_y`
    /// (N, P, P; −1 = excluded), `val_x`, `val_y` — so another framework can train on the
    /// same data (Benchmarks/pytorch_train.py).
    public func exportPatches(to path: String) throws {
        let data = try prepareData()
        let P = options.patchSize, C = scenes[0].bands.count
        var patch = Patch()
        func tensors(_ refs: [PatchRef]) throws -> (SafeTensors.Entry, SafeTensors.Entry) {
            var x = [Float](), y = [Float]()
            x.reserveCapacity(refs.count * C * P * P)
            for r in refs {
                try scenes[r.scene].readPatch(r.window, normalizer: data.normalizer, into: &patch)
                x += patch.image
                y += patch.target.map(Float.init)
            }
            return (SafeTensors.Entry(shape: [refs.count, C, P, P], values: x), SafeTensors.Entry(shape: [refs.count, P, P], values: y))
        }
        let (tx, ty) = try tensors(data.train)
        let (vx, vy) = try tensors(data.validation)
        try SafeTensors.write([("train_x", tx), ("train_y", ty), ("val_x", vx), ("val_y", vy)],
                              metadata: ["classes": String(architecture.classes), "patch_size": String(P)], to: path)
    }

    // MARK: - Run

    /// Trains for `options.epochs` (or from the last checkpoint with `resume`) and writes the
    /// bundle; a stop request (SIGINT/SIGTERM) saves a checkpoint and returns `interrupted`.
    public func run(resume: Bool = false) throws -> TrainingResult {
        try run(start: resume ? .resume : .fresh)
    }

    /// Trains from scratch or from the last checkpoint, as `start` says (see `TrainingStart`).
    public func run(start mode: TrainingStart) throws -> TrainingResult {
        let start = Date()
        let root = communicator.isRoot
        try prepareOutputs(root: root)
        let data = try prepareData()
        progress.line("Training \(architecture.name) on \(data.train.count) patches of \(options.patchSize)×\(options.patchSize), validating on \(data.validation.count)")

        let network = architecture.build(seed: options.seed)
        network.isTraining = true
        for notice in try encoderWeights?.apply(to: network) ?? [] { progress.line(notice) }
        if let notice = try Self.installPrecision(options.precision, in: network) { progress.line(notice) }
        let optimizer = options.optimizer.make(parameters: network.namedParameters)
        let loss = TrainingLoss(options.loss)
        var keeper = CheckpointKeeper(directory: workDirectory, fingerprint: fingerprint(data))
        keeper.writes = root
        let parallel = DataParallel(network: network, communicator: communicator)
        if options.syncBatchNorm { parallel.synchroniseBatchNorm(network) }
        var (state, history) = try begin(mode, keeper: keeper, network: network, optimizer: optimizer, parallel: parallel)
        let batches = BatchAssembler(scenes: scenes, normalizer: data.normalizer, patchSize: options.patchSize,
                                     cacheMegabytes: options.cacheMegabytes)
        let loop = try EpochLoop(network: network, optimizer: optimizer, loss: loss, options: options, train: data.train,
                             channels: scenes[0].bands.count, progress: progress, keeper: keeper, afterStep: afterStep, errorPath: output,
                             parallel: parallel)
        loop.chipsPerPatch = Trainer.chipsPerPatch(scenes: scenes, train: data.train)
        let validator = Validator(refs: data.validation, batchSize: options.batchSize, patchSize: options.patchSize,
                                  channels: scenes[0].bands.count, classNames: scenes[0].classMap.names, parallel: parallel)
        var stop = StopPolicy(requested: stopRequested)
        var interrupted = false
        while state.epoch < options.epochs {
            let epoch = try loop.run(&state, batches: batches, stop: &stop, runStart: start)
            if epoch.stopped {
                interrupted = true
                break
            }
            var m = Self.trainingMetrics(epoch, of: loop, state: state, learningRate: optimizer.learningRate)
            if !data.validation.isEmpty { try validator.score(into: &m, network: network, loss: loss, batches: batches) }
            m.seconds = Date().timeIntervalSince(epoch.started)
            history.append(m)
            progress.line(Trainer.summary(m, epochs: options.epochs))
            if history.count == 1, let choice = Bf16Inference.summary(of: network, training: true) { progress.line(choice) }
            try parallel.gatherState(of: optimizer)
            try keeper.endEpoch(&state, metrics: m, history: history, shuffleRNG: epoch.shuffleRNG,
                                elapsedSeconds: state.elapsedSeconds + Date().timeIntervalSince(start), network: network, optimizer: optimizer)
            stop.saved()
        }

        let wall = state.elapsedSeconds + Date().timeIntervalSince(start)
        let best = state.bestEpoch.flatMap { e in history.first { $0.epoch == e } }
        var result = TrainingResult(bundle: nil, interrupted: interrupted, epochsCompleted: state.epoch, history: history, best: best,
                                    trainPatches: data.train.count, validationPatches: data.validation.count, wallSeconds: wall)
        guard !interrupted, root else { return result }
        // The bundle carries the best weights by validation mIoU (the last ones without validation).
        try keeper.restoreBest(into: network)
        network.isTraining = false
        try writeBundle(network: network, data: data, state: state, best: best, lastTrainLoss: history.last?.trainLoss,
                        metricsPath: keeper.metricsPath, wallSeconds: wall)
        result.bundle = output
        return result
    }

    /// An epoch's training figures (loss, learning rate, patches and chips per second), before validation.
    static func trainingMetrics(_ epoch: EpochLoop.Outcome, of loop: EpochLoop, state: Checkpoint, learningRate: Float) -> EpochMetrics {
        var m = EpochMetrics(epoch: state.epoch + 1, trainLoss: epoch.lossSum / Double(max(1, epoch.lossCount)),
                             learningRate: Double(learningRate), seconds: 0,
                             patchesPerSecond: Double(max(0, loop.batchesPerEpoch - state.nextBatch) * loop.batchSize)
                                 / max(1e-9, Date().timeIntervalSince(epoch.started)))
        m.chipsPerSecond = loop.chipsPerPatch.map { $0 * m.patchesPerSecond }
        return m
    }

    /// Checks that the bundle's folder is writable; rank 0 removes partial outputs of killed runs
    /// (another rank's could look like one) and the other ranks stay quiet.
    func prepareOutputs(root: Bool) throws {
        let parent = URL(fileURLWithPath: output).deletingLastPathComponent().path
        try AtomicFile.checkWritableDirectory(parent, for: output)
        guard root else {
            progress.quiet = true
            return
        }
        for stale in AtomicFile.removeStale(in: parent) + AtomicFile.removeStale(in: workDirectory) {
            progress.line("Removed \(stale): a partial output of a run that was killed")
        }
    }

    /// Rank 0 starts the run as `mode` says (continuing, refusing or clearing the checkpoint);
    /// then the other ranks continue what it kept, and every rank takes rank 0's weights.
    func begin(_ mode: TrainingStart, keeper: CheckpointKeeper, network: any SegmentationNetwork, optimizer: any Optimizer,
               parallel: DataParallel) throws -> (Checkpoint, [EpochMetrics]) {
        func begin(_ mode: TrainingStart) throws -> (Checkpoint, [EpochMetrics]) {
            try keeper.begin(mode, seed: options.seed, epochs: options.epochs, network: network, optimizer: optimizer, progress: progress)
        }
        guard parallel.ranks > 1 else { return try begin(mode) }
        let first = parallel.rank == 0 ? try begin(mode) : nil
        try parallel.communicator.barrier()
        let started = try first ?? begin(FileManager.default.fileExists(atPath: keeper.lastPath) ? .resume : .restart)
        try parallel.broadcastState()
        return started
    }

    /// Writes the model bundle to `output`, with the run's metrics log and options beside the weights.
    func writeBundle(network: any SegmentationNetwork, data: Data, state: Checkpoint, best: EpochMetrics?, lastTrainLoss: Double?,
                     metricsPath: String, wallSeconds: Double) throws {
        var metrics: [String: Double] = [:]
        if let best {
            metrics["overall_accuracy"] = best.overallAccuracy
            metrics["mean_iou"] = best.meanIoU
            metrics["validation_loss"] = best.validationLoss
            for (k, v) in best.perClassIoU ?? [:] { metrics["iou/\(k)"] = v }
        }
        metrics["train_loss"] = lastTrainLoss
        let info = scenes[0].image.info
        var bundle = ModelBundle(
            architecture: architecture, bands: scenes[0].bands,
            bandDescriptions: scenes[0].bands.map { b in info.bands[b - 1].description.isEmpty ? "band \(b)" : info.bands[b - 1].description },
            normalization: data.normalizer, statistics: data.statistics, classes: scenes[0].classMap, patchSize: options.patchSize,
            provenance: ModelBundle.Provenance(terrasegVersion: terrasegVersion, trainingData: dataDescription, epochs: state.epoch,
                                               bestEpoch: state.bestEpoch, seed: options.seed, metrics: metrics, wallSeconds: wallSeconds))
        bundle.recipe = scenes[0].recipe
        bundle.sceneProfile = SceneProfile(info: info)
        let historyData = (try? Foundation.Data(contentsOf: URL(fileURLWithPath: metricsPath))) ?? Foundation.Data()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try bundle.write(network: network, to: output,
                         extraFiles: ["metrics.jsonl": historyData, "training.json": try encoder.encode(options)])
    }

    /// Settings: the options and the architecture. Data: every input file's path and content
    /// identity (`FileIdentity`), each scene's bands and role, the classes, `dataIdentity`
    /// and the patch counts; so a label raster rewritten in place does not match.
    func fingerprint(_ data: Data) -> TrainingFingerprint {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        func json<T: Encodable>(_ value: T) -> String { String(decoding: (try? encoder.encode(value)) ?? Foundation.Data(), as: UTF8.self) }
        func hex(_ text: String) -> String { String(Tiling.fingerprint(text), radix: 16) }
        var lines = scenes.map { scene in
            // A mosaic member is named "a.tif + b.tif": each file counts. A chip (opened when
            // read) names its band files in its bands; chips come by the thousand: `ofChip`.
            let images = (scene.image as? BandStack)?.members.flatMap { $0.info.path.components(separatedBy: " + ") }
                ?? (scene.chip ? scene.image.info.bands.map(\.path).reduce(into: [String]()) { if !$0.contains($1) { $0.append($1) } }
                    : [scene.image.info.path])
            let identity = scene.chip ? FileIdentity.ofChip : FileIdentity.of
            return (images + [scene.labelPath]).map { "\($0) \(identity($0))" }.joined(separator: ", ")
                + " bands \(scene.bands) role \(scene.role?.rawValue ?? "split")"
        }
        let classes = scenes[0].classMap
        lines.append("classes \(classes.classes.map { "\($0.value)=\($0.name)" }) ignore \(classes.ignoreValues)")
        lines += dataIdentity
        // How band sources were put together (grid, resampling, nodata) changes the pixels too;
        // the training CRS kept for messages is the files' own (their identities cover it).
        lines.append("recipe \(json(scenes.map { scene in scene.recipe.map { var r = $0; r.trainingCRS = nil; return r } }))")
        lines.append("patches \(data.train.count)/\(data.validation.count)")
        // How patches are cached and read does not change the result (PatchPrefetcher).
        var settings = options
        settings.cacheMegabytes = TrainingOptions().cacheMegabytes
        settings.readerThreads = TrainingOptions().readerThreads
        let weights = encoderWeights.map { "|encoder weights \($0.path) \($0.identity)" } ?? ""
        return TrainingFingerprint(settings: hex(json(settings) + "|" + json(architecture) + weights), data: hex(lines.joined(separator: "\n")))
    }

    /// A tile set's training chips per training patch (for chips/s), nil for scenes.
    static func chipsPerPatch(scenes: [LabelledScene], train: [PatchRef]) -> Double? {
        guard !train.isEmpty, scenes.allSatisfy(\.chip) else { return nil }
        return Double(Set(train.map(\.scene)).count) / Double(train.count)
    }

    static func summary(_ m: EpochMetrics, epochs: Int) -> String {
        var s = String(format: "epoch %d/%d  train loss %.4f", m.epoch, epochs, m.trainLoss)
        if let v = m.validationLoss { s += String(format: "  val loss %.4f", v) }
        if let oa = m.overallAccuracy { s += String(format: "  OA %.3f", oa) }
        if let mi = m.meanIoU { s += String(format: "  mIoU %.3f", mi) }
        s += String(format: "  (%.1f s, %.1f patches/s", m.seconds, m.patchesPerSecond)
        if let chips = m.chipsPerSecond { s += String(format: ", %.1f chips/s", chips) }
        s += String(format: ", lr %.2g)", m.learningRate)
        return s
    }

    static func writeHistory(_ history: [EpochMetrics], to path: String) throws {
        let encoder = JSONEncoder()
        encoder.keyEncodingStrategy = .convertToSnakeCase
        encoder.outputFormatting = .sortedKeys
        encoder.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        let lines = try history.map { String(decoding: try encoder.encode($0), as: UTF8.self) }
        try AtomicFile.write(lines.joined(separator: "\n") + "\n", to: path)
    }

    public static func readHistory(_ path: String) -> [EpochMetrics] {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return [] }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        decoder.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return text.split(separator: "\n").compactMap { try? decoder.decode(EpochMetrics.self, from: Foundation.Data($0.utf8)) }
    }
}

extension Trainer {
    /// Sets the convolutions' arithmetic (`Bf16Training`) for `precision` (nil: fp32); returns
    /// what was chosen, for bf16 or auto. bf16 on a CPU without native bf16 is refused.
    static func installPrecision(_ precision: Precision?, in network: any SegmentationNetwork) throws -> String? {
        switch precision ?? .fp32 {
        case .fp32, .int8:
            return nil
        case .bf16 where Precision.bf16Unavailable != nil:
            throw TerraSegError(.invalidArgument, path: "training.precision", problem: "bf16 is refused: \(Precision.bf16Unavailable!)",
                                hint: "Use --precision fp32 (training.precision: fp32), or auto, which picks what this CPU has")
        case .auto where Precision.bf16Unavailable != nil:
            return "Precision auto: fp32, because \(Precision.bf16Unavailable!)"
        case .bf16 where Bf16Inference.unsupported(by: network) != nil:
            throw TerraSegError(.invalidArgument, path: "training.precision", problem: "bf16 is refused: \(Bf16Inference.unsupported(by: network)!)",
                                hint: "Use --precision fp32 (training.precision: fp32), or auto, which falls back by itself")
        case .auto where Bf16Inference.unsupported(by: network) != nil:
            return "Precision auto: fp32, because \(Bf16Inference.unsupported(by: network)!)"
        case .bf16, .auto:
            let count = Bf16Training.install(in: network, choosing: true)
            return "Precision \(precision!.rawValue): bf16 or fp32 per convolution, the faster at the first step, in \(count) conv–BN–ReLU units; weights, optimiser, loss and batch norm fp32 (\(CPUFeatures.effectiveISA))"
        }
    }
}
