import ModelIO
import Core
import Foundation
import GeoRaster
import Models
import Tiling

/// The files of a run in `<output>.training/`: `last.ckpt` (resume point, after every epoch
/// and at mid-epoch saves), `best.safetensors` (weights of the best validation mIoU) and
/// `metrics.jsonl` (one line per epoch).
struct CheckpointKeeper {
    let directory: String
    let fingerprint: String
    var lastPath: String { directory + "/last.ckpt" }
    var bestPath: String { directory + "/best.safetensors" }
    var metricsPath: String { directory + "/metrics.jsonl" }

    /// A fresh state (the directory emptied), or with `resume` the state and history of the
    /// last checkpoint, which must belong to the same data and options.
    func begin(resume: Bool, seed: UInt64, network: any SegmentationNetwork, optimizer: any Optimizer,
               progress: ProgressReporter) throws -> (Checkpoint, [EpochMetrics]) {
        let fm = FileManager.default
        var state = Checkpoint(epoch: 0, nextBatch: 0, epochRNG: SplitMix64(seed: seed, stream: .epochOrder),
                               augmentRNG: SplitMix64(seed: seed, stream: .augmentation), optimizerStep: 0,
                               bestMeanIoU: nil, bestEpoch: nil, elapsedSeconds: 0, fingerprint: fingerprint)
        var history: [EpochMetrics] = []
        if resume && fm.fileExists(atPath: lastPath) {
            state = try Checkpoint.load(from: lastPath, network: network, optimizer: optimizer)
            guard state.fingerprint == fingerprint else {
                throw RasterError(.invalidArgument, path: lastPath, problem: "the checkpoint belongs to a run with other data or options",
                                  hint: "Resume with the same configuration, or start afresh without --resume (or delete \(directory))")
            }
            history = Trainer.readHistory(metricsPath).filter { $0.epoch <= state.epoch }
            progress.line("Resuming at epoch \(state.epoch + 1), batch \(state.nextBatch + 1)")
        } else if fm.fileExists(atPath: directory) {
            try fm.removeItem(atPath: directory)
        }
        try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        return (state, history)
    }

    /// Saves the position inside an epoch: batches before `nextBatch` are done.
    func saveMidEpoch(_ state: Checkpoint, nextBatch: Int, lossSum: Double, lossCount: Int, elapsedSeconds: Double,
                      network: any SegmentationNetwork, optimizer: any Optimizer) throws {
        var mid = state
        mid.nextBatch = nextBatch
        mid.optimizerStep = optimizer.step
        mid.epochLossSum = lossSum
        mid.epochLossCount = lossCount
        mid.elapsedSeconds = elapsedSeconds
        try Checkpoint.save(mid, network: network, optimizer: optimizer, to: lastPath)
    }

    /// Closes an epoch: keeps the weights if `metrics` is the best so far (`isBetter`), moves `state`
    /// to the next epoch (whose shuffle starts from `shuffleRNG`), writes the history and the checkpoint.
    func endEpoch(_ state: inout Checkpoint, metrics m: EpochMetrics, history: [EpochMetrics], shuffleRNG: SplitMix64,
                  network: any SegmentationNetwork, optimizer: any Optimizer) throws {
        let best = state.bestEpoch.flatMap { e in history.first { $0.epoch == e } }
        if let miou = m.meanIoU, !miou.isNaN, CheckpointKeeper.isBetter(m, than: best, bestMeanIoU: state.bestMeanIoU) {
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
    }

    /// The best-epoch rule: a higher validation mIoU wins; an equal one wins with a lower
    /// validation loss (so a tie does not keep the first epoch for ever).
    static func isBetter(_ m: EpochMetrics, than best: EpochMetrics?, bestMeanIoU: Double?) -> Bool {
        guard let miou = m.meanIoU, !miou.isNaN else { return false }
        guard let bestMeanIoU else { return true }
        if miou != bestMeanIoU { return miou > bestMeanIoU }
        guard let loss = m.validationLoss, !loss.isNaN, let bestLoss = best?.validationLoss, !bestLoss.isNaN else { return false }
        return loss < bestLoss
    }

    /// Loads the best weights into `network`, if validation ever chose some.
    func restoreBest(into network: any SegmentationNetwork) throws {
        guard FileManager.default.fileExists(atPath: bestPath) else { return }
        let (tensors, _) = try SafeTensors.read(bestPath)
        try ModelBundle.load(tensors, into: network, path: bestPath)
    }
}

/// When to checkpoint inside an epoch, and whether to stop: on SIGINT/SIGTERM (`StopSignal`)
/// save and stop cleanly; otherwise save every 10 minutes so a crash loses little.
struct StopPolicy {
    enum Action { case go, save, saveAndStop }
    var saveInterval: TimeInterval = 600
    private var lastSave = Date()

    func action() -> Action {
        if StopSignal.isRequested { return .saveAndStop }
        return Date().timeIntervalSince(lastSave) > saveInterval ? .save : .go
    }

    mutating func saved() { lastSave = Date() }

    /// The stop has been honoured: a later run in this process starts clean.
    func acknowledgeStop() { StopSignal.reset() }
}
