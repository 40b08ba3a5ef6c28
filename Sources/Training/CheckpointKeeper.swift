import ModelIO
import Core
import Foundation
import GeoRaster
import Models
import Tiling

/// How a training run treats the checkpoint an earlier run left in `<output>.training/`.
public enum TrainingStart: Sendable, Equatable {
    /// A new run (`terraseg train`): refused while an interrupted run's checkpoint is there, so
    /// it is never lost without a word; a finished run's checkpoint is replaced.
    case fresh
    /// Continue the checkpoint (`--resume`), which must be of the same data and settings.
    case resume
    /// Discard any checkpoint and start over (`--restart`, `terraseg run --force`).
    case restart
    /// Continue the checkpoint when it is of the same data and settings, else start over and
    /// say why (`terraseg run`).
    case resumeIfCurrent
}

/// What a checkpoint must share with a run to be continued: its settings (options and
/// architecture) and its data (input files' paths and content, classes, bands, patch counts),
/// kept apart so that a refusal says which changed. Stored as "settings <hex> data <hex>".
struct TrainingFingerprint: Equatable {
    var settings: String
    var data: String

    var text: String { "settings \(settings) data \(data)" }

    init(settings: String, data: String) {
        self.settings = settings
        self.data = data
    }

    /// Nil for a checkpoint written before fingerprints had two parts.
    init?(text: String) {
        let words = text.split(separator: " ")
        guard words.count == 4, words[0] == "settings", words[2] == "data" else { return nil }
        self.init(settings: String(words[1]), data: String(words[3]))
    }

    /// What changed since `old` was taken, in words.
    func change(since old: TrainingFingerprint?) -> String {
        guard let old else { return "the checkpoint was written by an earlier TerraSeg" }
        switch (settings == old.settings, data == old.data) {
        case (true, false): return "the training data changed (an input file, the classes or the bands)"
        case (false, true): return "the training settings changed"
        default: return "the training data and settings changed"
        }
    }
}

/// The files of a run in `<output>.training/`: `last.ckpt` (resume point, after every epoch
/// and at mid-epoch saves), `best.safetensors` (weights of the best validation mIoU) and
/// `metrics.jsonl` (one line per epoch).
struct CheckpointKeeper {
    let directory: String
    let fingerprint: TrainingFingerprint
    /// False on every rank but 0 of a distributed run: the state moves alike, rank 0 alone writes.
    var writes = true
    var lastPath: String { directory + "/last.ckpt" }
    var bestPath: String { directory + "/best.safetensors" }
    var metricsPath: String { directory + "/metrics.jsonl" }

    /// The state to train from: the last checkpoint's (weights and optimiser loaded) with its
    /// history where `start` continues it, else a fresh state in an emptied directory.
    func begin(_ start: TrainingStart, seed: UInt64, epochs: Int, network: any SegmentationNetwork, optimizer: any Optimizer,
               progress: ProgressReporter) throws -> (Checkpoint, [EpochMetrics]) {
        let fm = FileManager.default
        if fm.fileExists(atPath: lastPath), let read = try previous(start, progress: progress) {
            try Checkpoint.apply(read.state, tensors: read.tensors, path: lastPath, network: network, optimizer: optimizer)
            var state = read.state
            state.epochs = epochs  // same fingerprint, same epochs (older checkpoints lack the field)
            if state.isFinished {
                progress.line("The checkpoint in \(directory) is of a finished run of the same data and settings; writing its bundle")
            } else {
                progress.line("Resuming at epoch \(state.epoch + 1), batch \(state.nextBatch + 1)")
            }
            return (state, Trainer.readHistory(metricsPath).filter { $0.epoch <= state.epoch })
        }
        if writes && fm.fileExists(atPath: directory) {
            do {
                try fm.removeItem(atPath: directory)
            } catch {
                throw TerraSegError(.writeFailed, path: directory, action: "cannot remove the previous run's checkpoints", error,
                                    hint: "Remove it yourself")
            }
        }
        if writes { try AtomicFile.createDirectory(directory) }
        let state = Checkpoint(epoch: 0, nextBatch: 0, epochRNG: SplitMix64(seed: seed, stream: .epochOrder),
                               augmentRNG: SplitMix64(seed: seed, stream: .augmentation), optimizerStep: 0,
                               bestMeanIoU: nil, bestEpoch: nil, elapsedSeconds: 0, fingerprint: fingerprint.text, epochs: epochs)
        return (state, [])
    }

    /// The checkpoint to continue, or nil to start over where `start` allows it: refused when
    /// `.fresh` would discard an interrupted run or `.resume` meets other data or settings.
    func previous(_ start: TrainingStart, progress: ProgressReporter) throws -> (state: Checkpoint, tensors: [String: SafeTensors.Entry])? {
        if start == .restart {
            progress.line("Discarding the checkpoint in \(directory) (restart)")
            return nil
        }
        let read: (state: Checkpoint, tensors: [String: SafeTensors.Entry])
        do {
            read = try Checkpoint.read(from: lastPath)
        } catch let error as TerraSegError where start == .resumeIfCurrent {
            progress.line("Training from scratch: \(error.problem) (\(lastPath))")
            return nil
        }
        let change = fingerprint.change(since: TrainingFingerprint(text: read.state.fingerprint))
        let current = read.state.fingerprint == fingerprint.text
        switch start {
        case .fresh:
            guard read.state.isFinished else {
                let epochs = read.state.epochs.map { " of \($0)" } ?? ""
                throw TerraSegError(.invalidArgument, path: lastPath,
                                    problem: "an interrupted run is here (stopped in epoch \(read.state.epoch + 1)\(epochs), batch \(read.state.nextBatch + 1))",
                                    hint: "Continue it with --resume, or discard it and start over with --restart")
            }
            progress.line("Replacing the checkpoint of the finished run in \(directory)")
            return nil
        case .resume:
            guard current else {
                throw TerraSegError(.invalidArgument, path: lastPath, problem: "the checkpoint belongs to a run with other data or settings: \(change)",
                                    hint: "Resume with the same data and settings, or start over with --restart (discards \(directory))")
            }
            return read
        case .resumeIfCurrent:
            guard current else {
                progress.line("Training from scratch: \(change) since the checkpoint in \(directory) was written")
                return nil
            }
            return read
        case .restart:
            return nil
        }
    }

    /// Saves the position inside an epoch: batches before `nextBatch` are done.
    func saveMidEpoch(_ state: Checkpoint, nextBatch: Int, lossSum: Double, lossCount: Int, elapsedSeconds: Double,
                      network: any SegmentationNetwork, optimizer: any Optimizer) throws {
        guard writes else { return }
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
    /// `elapsedSeconds` (all sessions of the run so far) goes into the saved checkpoint only:
    /// `state` keeps the seconds of the sessions before this one, as mid-epoch saves expect.
    func endEpoch(_ state: inout Checkpoint, metrics m: EpochMetrics, history: [EpochMetrics], shuffleRNG: SplitMix64,
                  elapsedSeconds: Double, network: any SegmentationNetwork, optimizer: any Optimizer) throws {
        let best = state.bestEpoch.flatMap { e in history.first { $0.epoch == e } }
        if let miou = m.meanIoU, !miou.isNaN, CheckpointKeeper.isBetter(m, than: best, bestMeanIoU: state.bestMeanIoU) {
            state.bestMeanIoU = miou
            state.bestEpoch = m.epoch
            if writes { try SafeTensors.write(ModelBundle.tensors(of: network), to: bestPath) }
        }
        state.epoch += 1
        state.nextBatch = 0
        state.epochLossSum = 0
        state.epochLossCount = 0
        state.epochRNG = shuffleRNG
        state.optimizerStep = optimizer.step
        guard writes else { return }
        try Trainer.writeHistory(history, to: metricsPath)
        var saved = state
        saved.elapsedSeconds = elapsedSeconds
        try Checkpoint.save(saved, network: network, optimizer: optimizer, to: lastPath)
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
    /// The stop request (nil: `StopSignal`).
    var requested: (() -> Bool)? = nil
    var saveInterval: TimeInterval = 600
    private var lastSave = Date()

    init(requested: (() -> Bool)? = nil) { self.requested = requested }

    func action() -> Action {
        if requested?() ?? StopSignal.isRequested { return .saveAndStop }
        return Date().timeIntervalSince(lastSave) > saveInterval ? .save : .go
    }

    mutating func saved() { lastSave = Date() }

    /// The stop has been honoured: a later run in this process starts clean.
    func acknowledgeStop() { if requested == nil { StopSignal.reset() } }
}
