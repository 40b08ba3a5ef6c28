import Core
import Engine
import Foundation
import ModelIO
import Models

/// Everything needed to continue a run exactly where it stopped: weights and batch-norm
/// statistics, optimiser state, position (epoch and next batch), random generators, and the
/// best score so far. One safetensors file (state as JSON metadata), written atomically.
struct Checkpoint: Codable {
    var epoch: Int
    var nextBatch: Int
    /// Shuffle generator state at the start of `epoch` (to rebuild its order).
    var epochRNG: SplitMix64
    /// Augmentation generator state at `nextBatch`.
    var augmentRNG: SplitMix64
    var optimizerStep: Int
    var bestMeanIoU: Double?
    var bestEpoch: Int?
    var elapsedSeconds: Double
    /// Running training loss of the interrupted epoch.
    var epochLossSum = 0.0
    var epochLossCount = 0
    /// Fingerprint of the options and data that must match to resume (`TrainingFingerprint`).
    var fingerprint: String
    /// The epochs the run was asked for (nil in checkpoints written before this field): the
    /// run is finished when `epoch` reaches it.
    var epochs: Int?

    var isFinished: Bool { epochs.map { epoch >= $0 } ?? false }

    static func save(_ state: Checkpoint, network: any SegmentationNetwork, optimizer: any Optimizer, to path: String) throws {
        var tensors = ModelBundle.tensors(of: network)
        for (name, storage, count) in optimizer.stateBuffers {
            tensors.append((name, SafeTensors.Entry(shape: [count], values: Array(UnsafeBufferPointer(start: storage.pointer, count: count)))))
        }
        let json = String(decoding: try JSONEncoder().encode(state), as: UTF8.self)
        try SafeTensors.write(tensors, metadata: ["terraseg_checkpoint": json], to: path)
    }

    /// The state and tensors of the checkpoint at `path`, without applying them.
    static func read(from path: String) throws -> (state: Checkpoint, tensors: [String: SafeTensors.Entry]) {
        let (tensors, meta) = try SafeTensors.read(path)
        guard let json = meta["terraseg_checkpoint"], let state = try? JSONDecoder().decode(Checkpoint.self, from: Data(json.utf8)) else {
            throw TerraSegError(.readFailed, path: path, problem: "not a TerraSeg training checkpoint",
                                hint: "Discard it with --restart (or delete it)")
        }
        return (state, tensors)
    }

    /// Loads the weights and optimiser state of a checkpoint read by `read(from:)`.
    static func apply(_ state: Checkpoint, tensors: [String: SafeTensors.Entry], path: String,
                      network: any SegmentationNetwork, optimizer: any Optimizer) throws {
        let modelNames = Set((network.namedParameters + network.namedBuffers).map(\.0))
        try ModelBundle.load(tensors.filter { modelNames.contains($0.key) }, into: network, path: path)
        for (name, storage, count) in optimizer.stateBuffers {
            guard let t = tensors[name], t.values.count == count else {
                throw TerraSegError(.readFailed, path: path, problem: "the checkpoint has no optimiser state '\(name)'",
                                     hint: "It was written with another optimiser; discard it with --restart")
            }
            t.values.withUnsafeBufferPointer { storage.pointer.update(from: $0.baseAddress!, count: count) }
        }
        optimizer.step = state.optimizerStep
    }
}
