import Core
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
    public var terrasegVersion = "unknown"
    /// Called after every training step with (epoch, batch), both 0-based (tests use it to
    /// interrupt a run at a known point).
    public var afterStep: ((Int, Int) -> Void)?
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
        for warning in Trainer.performanceWarnings(architecture, patchSize: options.patchSize) {
            Trainer.logger.warning("\(warning)")
        }
    }

    /// Configurations oneDNN 2.6 has no fast kernel for, so they run on its reference
    /// kernels (10–100× slower): layers narrower than a multiple of 16 channels, unless
    /// Winograd covers them (3×3, undilated, and not switched off with TERRASEG_WINOGRAD=0).
    public static func performanceWarnings(_ a: ModelArchitecture, patchSize: Int,
                                           winograd: Bool = Runtime.winograd != .off) -> [String] {
        let plain: [Int], dilated: [Int]
        switch a {
        case .unet(let c):
            plain = c.widths
            dilated = c.bottleneckDilations.contains { $0 > 1 } ? [c.bottleneckWidth] : []
        case .dilated(let c):
            plain = []
            dilated = [c.width]
        }
        let slow = dilated.filter { $0 % 16 != 0 } + (winograd ? [] : plain.filter { $0 % 16 != 0 })
        guard let narrow = slow.first else { return [] }
        return ["a layer of \(narrow) channels is not a multiple of 16\(winograd ? " and is dilated" : ""): oneDNN runs it on its slow reference kernel; use widths that are multiples of 16"]
    }

    // MARK: - Data

    struct Data {
        var train: [PatchRef]
        var validation: [PatchRef]
        var statistics: BandStatistics
        var normalizer: Normalizer
    }

    func prepareData() throws -> Data {
        var refs: [PatchRef] = []
        let split = options.split.spatialSplit(patchSize: options.patchSize, seed: options.seed)
        for (i, s) in scenes.enumerated() {
            refs += try s.candidatePatches(sceneIndex: i, patchSize: options.patchSize, stride: options.effectiveStride,
                                           split: split, minLabelledFraction: 1 - options.maxInvalidFraction)
        }
        let train = refs.filter { $0.role == .train }
        let validation = refs.filter { $0.role == .validation }
        guard !train.isEmpty else {
            throw RasterError(.invalidArgument, path: scenes[0].image.info.path, problem: "no training patch: every patch fell in the validation set",
                              hint: "Lower the validation fraction or use a larger scene")
        }
        if validation.isEmpty && options.split.method != .none {
            Trainer.logger.warning("no validation patch: metrics and best-model selection are unavailable; use a larger scene or another split")
        }
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

    public func run(resume: Bool = false) throws -> TrainingResult {
        let start = Date()
        let fm = FileManager.default
        let parent = URL(fileURLWithPath: output).deletingLastPathComponent().path
        try AtomicFile.checkWritableDirectory(parent, for: output)
        let data = try prepareData()
        progress.line("Training \(architecture.name) on \(data.train.count) patches of \(options.patchSize)×\(options.patchSize), validating on \(data.validation.count)")

        let network = architecture.build(seed: options.seed)
        network.isTraining = true
        let optimizer = options.optimizer.make(parameters: network.namedParameters)
        let loss = CompositeLoss(options.loss)
        let fingerprint = self.fingerprint(data)
        let lastPath = workDirectory + "/last.ckpt", bestPath = workDirectory + "/best.safetensors"
        let metricsPath = workDirectory + "/metrics.jsonl"

        var state = Checkpoint(epoch: 0, nextBatch: 0, epochRNG: SplitMix64(seed: options.seed, stream: .epochOrder),
                               augmentRNG: SplitMix64(seed: options.seed, stream: .augmentation), optimizerStep: 0,
                               bestMeanIoU: nil, bestEpoch: nil, elapsedSeconds: 0, fingerprint: fingerprint)
        var history: [EpochMetrics] = []
        if resume && fm.fileExists(atPath: lastPath) {
            state = try Checkpoint.load(from: lastPath, network: network, optimizer: optimizer)
            guard state.fingerprint == fingerprint else {
                throw RasterError(.invalidArgument, path: lastPath, problem: "the checkpoint belongs to a run with other data or options",
                                  hint: "Resume with the same configuration, or start afresh without --resume (or delete \(workDirectory))")
            }
            history = Trainer.readHistory(metricsPath).filter { $0.epoch <= state.epoch }
            progress.line("Resuming at epoch \(state.epoch + 1), batch \(state.nextBatch + 1)")
        } else if fm.fileExists(atPath: workDirectory) {
            try fm.removeItem(atPath: workDirectory)
        }
        try fm.createDirectory(atPath: workDirectory, withIntermediateDirectories: true)

        let P = options.patchSize, C = scenes[0].bands.count, B = min(options.batchSize, data.train.count)
        let batchesPerEpoch = max(1, data.train.count / B)  // the last partial batch is dropped
        var cache = PatchCache(limitBytes: options.cacheMegabytes << 20, patchBytes: (C + 1) * P * P * 4)
        let input = Tensor(shape: Shape(B, C, P, P))
        var labels = [Int32](repeating: -1, count: B * P * P)
        var patch = Patch()
        var lastSave = Date()
        var interrupted = false
        // Side-by-side checks (Benchmarks/pytorch_train.py --replay): which patches and symmetries each batch used.
        let trace = try TerraSegEnvironment.current().traceBatches.flatMap(BatchTrace.init(path:))

        epochLoop: while state.epoch < options.epochs {
            let epochStart = Date()
            progress.startEpoch()
            var shuffleRNG = state.epochRNG
            let order = data.train.indices.shuffled(using: &shuffleRNG)
            var lossSum = state.epochLossSum, lossCount = state.epochLossCount
            for b in state.nextBatch..<batchesPerEpoch {
                let t = Double(state.epoch) + Double(b) / Double(batchesPerEpoch)
                optimizer.learningRate = options.optimizer.learningRate * options.schedule.factor(at: t, epochs: options.epochs)
                var drawn: [[Int]] = []
                for k in 0..<B {
                    let ref = data.train[order[b * B + k]]
                    try load(ref, index: order[b * B + k], normalizer: data.normalizer, cache: &cache, into: &patch)
                    let symmetry = options.augmentation.apply(to: &patch, using: &state.augmentRNG)
                    Trainer.copy(patch, slot: k, into: input, labels: &labels)
                    if trace != nil { drawn.append([order[b * B + k], symmetry.quarterTurns, symmetry.flip ? 1 : 0]) }
                }
                trace?.record(epoch: state.epoch, batch: b, patches: drawn)
                let logits = network(input)
                let target = SegmentationTarget(n: B, h: P, w: P, labels: labels, ignoreIndex: -1)
                let l = loss(logits: logits, target: target)
                network.backward(l.gradient)
                optimizer.update()
                if !l.value.isFinite {
                    throw RasterError(.invalidArgument, path: output, problem: "the training loss became \(l.value) at epoch \(state.epoch + 1)",
                                      hint: "Lower the learning rate, or check the input for extreme values (terraseg info)")
                }
                lossSum += Double(l.value)
                lossCount += 1
                let elapsed = Date().timeIntervalSince(epochStart)
                progress.batch(epoch: state.epoch + 1, epochs: options.epochs, batch: b + 1, batches: batchesPerEpoch,
                               loss: lossSum / Double(lossCount), patchesPerSecond: Double((b + 1 - state.nextBatch) * B) / max(elapsed, 1e-9))
                afterStep?(state.epoch, b)
                let stop = StopSignal.isRequested
                if stop || Date().timeIntervalSince(lastSave) > 600 {
                    var mid = state
                    mid.nextBatch = b + 1
                    mid.optimizerStep = optimizer.step
                    mid.epochLossSum = lossSum
                    mid.epochLossCount = lossCount
                    mid.elapsedSeconds = state.elapsedSeconds + Date().timeIntervalSince(start)
                    try Checkpoint.save(mid, network: network, optimizer: optimizer, to: lastPath)
                    lastSave = Date()
                    if stop {
                        StopSignal.reset()
                        interrupted = true
                        progress.line("Stopped at epoch \(state.epoch + 1), batch \(b + 1) of \(batchesPerEpoch); checkpoint saved. Resume with --resume.")
                        break epochLoop
                    }
                }
            }
            // Validation.
            var m = EpochMetrics(epoch: state.epoch + 1, trainLoss: lossSum / Double(max(1, lossCount)),
                                 learningRate: Double(optimizer.learningRate), seconds: 0,
                                 patchesPerSecond: Double(max(0, batchesPerEpoch - state.nextBatch) * B) / max(1e-9, Date().timeIntervalSince(epochStart)))
            if !data.validation.isEmpty {
                let v = try validate(network: network, loss: loss, refs: data.validation, normalizer: data.normalizer, cache: &cache)
                m.validationLoss = v.loss
                let names = scenes[0].classMap.names
                m.overallAccuracy = v.matrix.overallAccuracy
                m.meanIoU = v.matrix.meanIoU
                m.perClassIoU = Dictionary(uniqueKeysWithValues: names.enumerated().compactMap { i, n in v.matrix.iou(i).isNaN ? nil : (n, v.matrix.iou(i)) })
                m.perClassF1 = Dictionary(uniqueKeysWithValues: names.enumerated().compactMap { i, n in v.matrix.f1(i).isNaN ? nil : (n, v.matrix.f1(i)) })
                m.confusionMatrix = (0..<v.matrix.classCount).map { t in (0..<v.matrix.classCount).map { v.matrix[t, $0] } }
            }
            m.seconds = Date().timeIntervalSince(epochStart)
            history.append(m)
            progress.line(Trainer.summary(m, epochs: options.epochs))

            if let miou = m.meanIoU, !miou.isNaN, miou > (state.bestMeanIoU ?? -1) {
                state.bestMeanIoU = miou
                state.bestEpoch = m.epoch
                try SafeTensors.write(ModelBundle.tensors(of: network), to: bestPath)
            }
            state.epoch += 1
            state.nextBatch = 0
            state.epochLossSum = 0
            state.epochLossCount = 0
            state.epochRNG = shuffleRNG
            state.optimizerStep = optimizer.step
            try Trainer.writeHistory(history, to: metricsPath)
            try Checkpoint.save(state, network: network, optimizer: optimizer, to: lastPath)
            lastSave = Date()
        }

        let wall = state.elapsedSeconds + Date().timeIntervalSince(start)
        let best = state.bestEpoch.flatMap { e in history.first { $0.epoch == e } }
        if interrupted {
            return TrainingResult(bundle: nil, interrupted: true, epochsCompleted: state.epoch, history: history, best: best,
                                  trainPatches: data.train.count, validationPatches: data.validation.count, wallSeconds: wall)
        }
        // The bundle carries the best weights by validation mIoU (the last ones without validation).
        if fm.fileExists(atPath: bestPath) {
            let (tensors, _) = try SafeTensors.read(bestPath)
            try ModelBundle.load(tensors, into: network, path: bestPath)
        }
        network.isTraining = false
        var metrics: [String: Double] = [:]
        if let best {
            metrics["overall_accuracy"] = best.overallAccuracy
            metrics["mean_iou"] = best.meanIoU
            metrics["validation_loss"] = best.validationLoss
            for (k, v) in best.perClassIoU ?? [:] { metrics["iou/\(k)"] = v }
        }
        metrics["train_loss"] = history.last?.trainLoss
        let info = scenes[0].image.info
        let bundle = ModelBundle(
            architecture: architecture, bands: scenes[0].bands,
            bandDescriptions: scenes[0].bands.map { b in info.bands[b - 1].description.isEmpty ? "band \(b)" : info.bands[b - 1].description },
            normalization: data.normalizer, statistics: data.statistics, classes: scenes[0].classMap, patchSize: options.patchSize,
            provenance: ModelBundle.Provenance(terrasegVersion: terrasegVersion, trainingData: dataDescription, epochs: state.epoch,
                                               bestEpoch: state.bestEpoch, seed: options.seed, metrics: metrics, wallSeconds: wall))
        let historyData = (try? Foundation.Data(contentsOf: URL(fileURLWithPath: metricsPath))) ?? Foundation.Data()
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        encoder.keyEncodingStrategy = .convertToSnakeCase
        try bundle.write(network: network, to: output,
                         extraFiles: ["metrics.jsonl": historyData, "training.json": try encoder.encode(options)])
        return TrainingResult(bundle: output, interrupted: false, epochsCompleted: state.epoch, history: history, best: best,
                              trainPatches: data.train.count, validationPatches: data.validation.count, wallSeconds: wall)
    }

    // MARK: - Pieces

    func load(_ ref: PatchRef, index: Int, normalizer: Normalizer, cache: inout PatchCache, into patch: inout Patch) throws {
        if let cached = cache.get(ref) {
            patch = cached
            return
        }
        try scenes[ref.scene].readPatch(ref.window, normalizer: normalizer, into: &patch)
        cache.put(ref, patch)
    }

    static func copy(_ patch: Patch, slot: Int, into input: Tensor, labels: inout [Int32]) {
        let n = patch.window.pixelCount
        patch.image.withUnsafeBufferPointer { src in
            (input.data + slot * patch.channels * n).update(from: src.baseAddress!, count: patch.channels * n)
        }
        labels.withUnsafeMutableBufferPointer { dst in
            patch.target.withUnsafeBufferPointer { src in
                (dst.baseAddress! + slot * n).update(from: src.baseAddress!, count: n)
            }
        }
    }

    func validate(network: any SegmentationNetwork, loss: CompositeLoss, refs: [PatchRef], normalizer: Normalizer,
                  cache: inout PatchCache) throws -> (loss: Double, matrix: ConfusionMatrix) {
        network.isTraining = false
        defer { network.isTraining = true }
        let P = options.patchSize, C = scenes[0].bands.count, K = architecture.classes
        var matrix = ConfusionMatrix(classCount: K)
        var lossSum = 0.0, weight = 0.0
        var patch = Patch()
        var start = 0
        var input: Tensor? = nil
        while start < refs.count {
            let B = min(options.batchSize, refs.count - start)
            let x = (input?.shape.n == B) ? input! : Tensor(shape: Shape(B, C, P, P))
            input = x
            var labels = [Int32](repeating: -1, count: B * P * P)
            for k in 0..<B {
                try load(refs[start + k], index: -1, normalizer: normalizer, cache: &cache, into: &patch)
                Trainer.copy(patch, slot: k, into: x, labels: &labels)
            }
            let logits = network(x)
            let target = SegmentationTarget(n: B, h: P, w: P, labels: labels, ignoreIndex: -1)
            let valid = labels.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
            if valid > 0 {
                lossSum += Double(loss(logits: logits, target: target).value) * Double(valid)
                weight += Double(valid)
            }
            let n = P * P
            let l = logits.data
            for b in 0..<B {
                for p in 0..<n {
                    let t = labels[b * n + p]
                    guard t >= 0 else { continue }
                    var best = 0
                    var bestValue = l[(b * K) * n + p]
                    for k in 1..<K where l[(b * K + k) * n + p] > bestValue {
                        best = k
                        bestValue = l[(b * K + k) * n + p]
                    }
                    matrix.add(truth: Int(t), predicted: best)
                }
            }
            start += B
        }
        return (weight > 0 ? lossSum / weight : .nan, matrix)
    }

    func fingerprint(_ data: Data) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys
        let text = [String(decoding: (try? encoder.encode(options)) ?? Foundation.Data(), as: UTF8.self),
                    String(decoding: (try? encoder.encode(architecture)) ?? Foundation.Data(), as: UTF8.self),
                    dataDescription.joined(separator: ";"), "\(data.train.count)/\(data.validation.count)"].joined(separator: "|")
        return String(Tiling.fingerprint(text), radix: 16)
    }

    static func summary(_ m: EpochMetrics, epochs: Int) -> String {
        var s = String(format: "epoch %d/%d  train loss %.4f", m.epoch, epochs, m.trainLoss)
        if let v = m.validationLoss { s += String(format: "  val loss %.4f", v) }
        if let oa = m.overallAccuracy { s += String(format: "  OA %.3f", oa) }
        if let mi = m.meanIoU { s += String(format: "  mIoU %.3f", mi) }
        s += String(format: "  (%.1f s, %.1f patches/s, lr %.2g)", m.seconds, m.patchesPerSecond, m.learningRate)
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

/// Normalised patches kept in memory while they fit the budget (small training sets are
/// read from disk once; large ones are read window by window every epoch).
struct PatchCache {
    let limit: Int
    var store: [PatchRef: Patch] = [:]

    init(limitBytes: Int, patchBytes: Int) { limit = max(0, limitBytes / max(1, patchBytes)) }

    func get(_ ref: PatchRef) -> Patch? { store[ref] }

    mutating func put(_ ref: PatchRef, _ patch: Patch) {
        if store.count < limit { store[ref] = patch }
    }
}

/// JSON lines `{"epoch": e, "batch": b, "patches": [[training patch index, quarter turns, flip], …]}`,
/// written when TERRASEG_TRACE_BATCHES names a file, so another framework can replay the exact
/// batches and augmentations (a debugging aid for side-by-side comparisons, not a user option).
final class BatchTrace {
    private let handle: FileHandle

    init?(path: String) {
        guard FileManager.default.createFile(atPath: path, contents: nil), let h = FileHandle(forWritingAtPath: path) else { return nil }
        handle = h
    }

    func record(epoch: Int, batch: Int, patches: [[Int]]) {
        let list = patches.map { "[\($0.map(String.init).joined(separator: ","))]" }.joined(separator: ",")
        handle.write(Data("{\"epoch\":\(epoch),\"batch\":\(batch),\"patches\":[\(list)]}\n".utf8))
    }

    deinit { try? handle.close() }
}
