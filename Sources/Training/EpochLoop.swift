import Core
import Engine
import Foundation
import GeoRaster
import Models
import Tiling

/// The training steps of one epoch: the training patches in the order of the epoch's shuffle
/// (read ahead by a `PatchPrefetcher`), batches assembled with augmentation, one optimiser
/// step per batch (the last partial batch is dropped), progress, and after every step the
/// `StopPolicy`'s save-or-stop decision.
final class EpochLoop {
    let network: any SegmentationNetwork
    let optimizer: any Optimizer
    let loss: TrainingLoss
    let options: TrainingOptions
    let train: [PatchRef]
    let progress: ProgressReporter
    let keeper: CheckpointKeeper
    let afterStep: ((Int, Int) -> Void)?
    /// This rank's shard of each global batch, gradient averaging and agreed stops.
    let parallel: DataParallel
    /// Side-by-side checks (Benchmarks/pytorch_train.py --replay): which patches and symmetries each batch used.
    let trace: BatchTrace?
    /// The encoder held fixed in the first epochs (`training.freeze_encoder_epochs`), or nil.
    let freeze: EncoderFreeze?
    /// A tile set's training chips per training patch, so progress shows chips/s (nil for scenes).
    var chipsPerPatch: Double?
    /// Patches per (global) batch and batches per epoch.
    let batchSize: Int, batchesPerEpoch: Int
    private let input: Tensor
    private var labels: [Int32]
    private let errorPath: String

    /// What an epoch's steps leave: the running loss, the shuffle generator after the shuffle,
    /// when the epoch began, and whether a stop was requested (the checkpoint is saved then).
    struct Outcome {
        var lossSum: Double
        var lossCount: Int
        var shuffleRNG: SplitMix64
        var started: Date
        var stopped: Bool
    }

    init(network: any SegmentationNetwork, optimizer: any Optimizer, loss: TrainingLoss, options: TrainingOptions, train: [PatchRef],
         channels: Int, progress: ProgressReporter, keeper: CheckpointKeeper, afterStep: ((Int, Int) -> Void)?, errorPath: String,
         parallel: DataParallel) throws {
        self.network = network
        self.optimizer = optimizer
        self.loss = loss
        self.options = options
        self.train = train
        self.progress = progress
        self.keeper = keeper
        self.afterStep = afterStep
        self.errorPath = errorPath
        self.parallel = parallel
        freeze = try EncoderFreeze(network: network, optimizer: optimizer, epochs: options.freezeEncoderEpochs ?? 0, errorPath: errorPath)
        let P = options.patchSize
        batchSize = min(options.batchSize, train.count)
        batchesPerEpoch = max(1, train.count / batchSize)
        try DataParallel.check(batchSize: batchSize, ranks: parallel.ranks, path: errorPath)
        let local = parallel.shard(of: batchSize).count
        input = Tensor(shape: Shape(local, channels, P, P))
        labels = [Int32](repeating: -1, count: local * P * P)
        // The trace lists whole batches: single process only.
        trace = parallel.ranks > 1 ? nil : try TerraSegEnvironment.current().traceBatches.flatMap(BatchTrace.init(path:))
    }

    /// Runs the epoch `state.epoch` from `state.nextBatch`; `runStart` and `state.elapsedSeconds`
    /// time the run for mid-epoch checkpoints.
    func run(_ state: inout Checkpoint, batches: BatchAssembler, stop: inout StopPolicy, runStart: Date) throws -> Outcome {
        let epochStart = Date()
        progress.startEpoch()
        freeze?.begin(epoch: state.epoch)
        var shuffleRNG = state.epochRNG
        let order = train.indices.shuffled(using: &shuffleRNG)
        // This rank's slots of every remaining batch, in the epoch's order.
        let mine = parallel.shard(of: batchSize)
        let refs = (state.nextBatch..<batchesPerEpoch).flatMap { b in mine.map { train[order[b * batchSize + $0]] } }
        let patchBytes = (input.shape.c + 1) * options.patchSize * options.patchSize * 4
        let reader = PatchPrefetcher(assembler: batches, refs: refs, depth: PatchPrefetcher.depth(batchSize: batchSize, patchBytes: patchBytes),
                                     threads: options.readerThreads,
                                     progress: progress)
        defer { reader.finish() }
        var outcome = Outcome(lossSum: state.epochLossSum, lossCount: state.epochLossCount, shuffleRNG: shuffleRNG,
                              started: epochStart, stopped: false)
        for b in state.nextBatch..<batchesPerEpoch {
            let value = try step(batch: b, order: order, state: &state, reader: reader)
            outcome.lossSum += Double(value)
            outcome.lossCount += 1
            let elapsed = Date().timeIntervalSince(epochStart)
            let rate = Double((b + 1 - state.nextBatch) * batchSize) / max(elapsed, 1e-9)
            progress.batch(epoch: state.epoch + 1, epochs: options.epochs, batch: b + 1, batches: batchesPerEpoch,
                           loss: outcome.lossSum / Double(outcome.lossCount), patchesPerSecond: rate,
                           chipsPerSecond: chipsPerPatch.map { $0 * rate })
            afterStep?(state.epoch, b)
            let action = try parallel.agree(stop.action())
            guard action != .go else { continue }
            try parallel.gatherState(of: optimizer)
            try keeper.saveMidEpoch(state, nextBatch: b + 1, lossSum: outcome.lossSum, lossCount: outcome.lossCount,
                                    elapsedSeconds: state.elapsedSeconds + Date().timeIntervalSince(runStart),
                                    network: network, optimizer: optimizer)
            stop.saved()
            if action == .saveAndStop {
                stop.acknowledgeStop()
                progress.line("Stopped at epoch \(state.epoch + 1), batch \(b + 1) of \(batchesPerEpoch); checkpoint saved. Resume with --resume.")
                outcome.stopped = true
                return outcome
            }
        }
        return outcome
    }

    /// One optimiser step on batch `b` of the epoch (this rank's shard of it, read ahead by
    /// `reader`; the other slots only advance the augmentation generator; each rank updates
    /// its block of the weights, `DataParallel.step`); returns its loss, averaged over the ranks.
    private func step(batch b: Int, order: [Int], state: inout Checkpoint, reader: PatchPrefetcher) throws -> Float {
        let B = batchSize, P = options.patchSize, mine = parallel.shard(of: B)
        let t = Double(state.epoch) + Double(b) / Double(batchesPerEpoch)
        optimizer.learningRate = options.optimizer.learningRate * options.schedule.factor(at: t, epochs: options.epochs)
        var drawn: [[Int]] = []
        for k in 0..<B {
            let index = order[b * B + k]
            guard mine.contains(k) else {
                options.augmentation.skip(channels: input.shape.c, using: &state.augmentRNG)
                continue
            }
            var patch = try reader.next()
            let symmetry = BatchAssembler.placeAugmented(&patch, slot: k - mine.lowerBound, into: input, labels: &labels,
                                                         augmentation: options.augmentation, rng: &state.augmentRNG)
            if trace != nil { drawn.append([index, symmetry.quarterTurns, symmetry.flip ? 1 : 0]) }
        }
        trace?.record(epoch: state.epoch, batch: b, patches: drawn)
        let logits = network(input)
        let l = loss(logits: logits, target: SegmentationTarget(n: mine.count, h: P, w: P, labels: labels, ignoreIndex: -1))
        let scale = try parallel.lossScale(labelledPixels: labels.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) })
        if scale != 1 {
            let g = l.gradient.data
            for i in 0..<l.gradient.shape.count { g[i] *= scale }
        }
        network.backward(l.gradient)
        let value = try parallel.step(optimizer, loss: l.value * scale)
        freeze?.hold()
        if !value.isFinite {
            throw RasterError(.invalidArgument, path: errorPath, problem: "the training loss became \(value) at epoch \(state.epoch + 1)",
                              hint: "Lower the learning rate, or check the input for extreme values (terraseg info)")
        }
        return value
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
