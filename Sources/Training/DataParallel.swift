import Core
import Distributed
import Foundation
import Engine
import Metrics
import Models

/// Data-parallel training over the ranks of a `Communicator`: every rank holds a replica of
/// the network, trains on its shard of each global batch, and the replicas stay equal because
/// they start from rank 0's weights and apply the same averaged gradients. One flat buffer
/// carries every gradient, the batch-norm running statistics (averaged, so the replicas'
/// buffers stay equal too) and the loss. For a U-Net the gradients go in buckets of
/// `TERRASEG_ALLREDUCE_BUCKET_KB` (8 MiB), each all-reduced (`MPI_Iallreduce`) as soon as the
/// backward pass has finished its blocks, while it computes the next ones; `average` adds the
/// rest and waits for all before the optimiser step. Sums are element by element, so the
/// result is the one blocking all-reduce's (bucket size 0, and other networks).
///
/// Batch norm normalises with each rank's own batch statistics (PyTorch DDP's default), so
/// N ranks of batch B/N match one process of batch B only up to that difference (docs/cluster.md).
/// A single-process communicator makes every call the identity.
final class DataParallel {
    let communicator: Communicator
    private let parameters: [Parameter]
    private let buffers: [Parameter]
    private let flat: UnsafeMutableBufferPointer<Float>
    private let bucketValues: Int
    private var position: [ObjectIdentifier: Int] = [:]
    /// This step: where each parameter's gradient went (nil: not yet), values placed, the start
    /// of the bucket being filled, the reductions started, the first error of a reduction.
    private var offsets: [Int?]
    private var filled = 0, bucketStart = 0
    private var reductions: [Communicator.Reduction] = []
    private var failure: Error?

    init(network: any SegmentationNetwork, communicator: Communicator,
         bucketKilobytes: Int = (try? TerraSegEnvironment.current())?.allReduceBucketKilobytes ?? 8192) {
        self.communicator = communicator
        parameters = network.namedParameters.map(\.1)
        buffers = network.namedBuffers.map(\.1)
        let count = communicator.isDistributed ? (parameters + buffers).reduce(1) { $0 + $1.count } : 0
        flat = .allocate(capacity: count)
        flat.initialize(repeating: 0)
        bucketValues = bucketKilobytes << 8  // Floats
        offsets = [Int?](repeating: nil, count: parameters.count)
        for (i, p) in parameters.enumerated() { position[ObjectIdentifier(p)] = i }
        if communicator.isDistributed, bucketValues > 0, let unet = network as? UNet {
            unet.gradientsReady = { [weak self] block in self?.ready(block.namedParameters.map(\.1)) }
        }
    }

    deinit { flat.deallocate() }

    var rank: Int { communicator.rank }
    var ranks: Int { communicator.size }

    /// Rank r's slots of a global batch of `batchSize` patches: a contiguous block, so the
    /// ranks' shards in rank order are the single-process batch.
    func shard(of batchSize: Int) -> Range<Int> {
        let local = batchSize / ranks
        return rank * local ..< (rank + 1) * local
    }

    /// Synchronised batch norm: every batch norm's statistics (and their gradient) summed over
    /// the ranks. A collective that fails ends the run: the layer cannot throw mid-pass. One
    /// process runs the same arithmetic over its own batch (statistics summed in Double).
    func synchroniseBatchNorm(_ network: any SegmentationNetwork) {
        let communicator = communicator
        guard communicator.isDistributed else {
            for bn in network.batchNorms { bn.crossReplicaSum = { _ in } }
            return
        }
        for bn in network.batchNorms {
            bn.crossReplicaSum = { values in
                do { try communicator.allReduceSum(values) } catch {
                    FileHandle.standardError.write(Data("\(error)\n".utf8))
                    communicator.abort(status: 1)
                }
            }
        }
    }

    /// Copies rank 0's weights and running statistics to every rank.
    func broadcastState() throws {
        guard communicator.isDistributed else { return }
        for p in parameters + buffers {
            try communicator.broadcast(UnsafeMutableBufferPointer(start: p.value.data, count: p.count))
            p.markChanged()
        }
    }

    /// R·Nᵣ/N, with Nᵣ this rank's labelled pixels and N all ranks': scaling each rank's loss
    /// gradient by it makes the average over the ranks the gradient of the global batch's
    /// per-pixel mean (exact for cross-entropy and focal; Dice is a ratio over each rank's own
    /// batch). 1 in one process.
    func lossScale(labelledPixels: Int) throws -> Float {
        guard communicator.isDistributed else { return 1 }
        var total = [Int64(labelledPixels)]
        try communicator.allReduceSum(&total)
        return total[0] > 0 ? Float(ranks) * Float(labelledPixels) / Float(total[0]) : 1
    }

    /// The backward pass finished `ready`'s gradients: they join the bucket, which is
    /// all-reduced once full; started reductions advance.
    private func ready(_ ready: [Parameter]) {
        guard failure == nil else { return }
        for p in ready { if let i = position[ObjectIdentifier(p)], offsets[i] == nil { place(i) } }
        do {
            if filled - bucketStart >= bucketValues { try startBucket() }
            try communicator.progress(reductions)
        } catch {
            failure = error
        }
    }

    private func place(_ i: Int) {
        let p = parameters[i]
        (flat.baseAddress! + filled).update(from: p.grad.data, count: p.count)
        offsets[i] = filled
        filled += p.count
    }

    private func startBucket() throws {
        guard filled > bucketStart else { return }
        if let r = try communicator.startAllReduceSum(UnsafeMutableBufferPointer(rebasing: flat[bucketStart..<filled])) { reductions.append(r) }
        bucketStart = filled
    }

    /// Averages the gradients, the running statistics and `loss` over the ranks (the gradients
    /// not yet in a bucket, then the rest in a last one), waits for every reduction of the step;
    /// returns the mean loss (the same on every rank).
    func average(loss: Float) throws -> Float {
        guard communicator.isDistributed else { return loss }
        defer {
            offsets = [Int?](repeating: nil, count: parameters.count)
            (filled, bucketStart, reductions) = (0, 0, [])
        }
        if let failure { throw failure }
        for i in parameters.indices where offsets[i] == nil { place(i) }
        let statistics = filled
        for b in buffers { (flat.baseAddress! + filled).update(from: b.value.data, count: b.count); filled += b.count }
        flat[filled] = loss
        filled += 1
        try startBucket()
        try communicator.wait(reductions)
        let scale = 1 / Float(ranks)
        for i in 0..<filled { flat[i] *= scale }
        for (p, o) in zip(parameters, offsets) { p.grad.data.update(from: flat.baseAddress! + o!, count: p.count) }
        var o = statistics
        for b in buffers { b.value.data.update(from: flat.baseAddress! + o, count: b.count); b.markChanged(); o += b.count }
        return flat[filled - 1]
    }

    /// Whether any rank asks to stop (2), to save (1) or neither (0): every rank then acts alike,
    /// so a SIGTERM to one rank stops all of them at the same batch with one checkpoint, and
    /// all exit with that signal's status (the ranks that got none take it as requested).
    func agree(_ action: StopPolicy.Action) throws -> StopPolicy.Action {
        guard communicator.isDistributed else { return action }
        let mine: Int64 = switch action { case .go: 0; case .save: 1; case .saveAndStop: 2 }
        let signal = StopSignal.isRequested ? Int64(StopSignal.lastSignal) : 0
        let agreed = try communicator.allReduceMax(mine * 64 + signal)
        switch agreed / 64 {
        case 0: return .go
        case 1: return .save
        default:
            if !StopSignal.isRequested { StopSignal.request(Int32(agreed % 64)) }
            return .saveAndStop
        }
    }

    /// Every rank's values summed (validation's loss and pixel weight).
    func sum(_ values: [Double]) throws -> [Double] {
        var v = values
        try communicator.allReduceSum(&v)
        return v
    }

    /// Every rank's confusion matrix summed (each rank scored its share of the validation batches).
    func sum(_ matrix: ConfusionMatrix) throws -> ConfusionMatrix {
        guard communicator.isDistributed else { return matrix }
        var counts = matrix.counts.map(Int64.init)
        try communicator.allReduceSum(&counts)
        var total = ConfusionMatrix(classCount: matrix.classCount)
        for (i, c) in counts.enumerated() where c > 0 {
            total.add(truth: i / matrix.classCount, predicted: i % matrix.classCount, count: Int(c))
        }
        return total
    }

    /// Checks that the global batch divides among the ranks.
    static func check(batchSize: Int, ranks: Int, path: String) throws {
        guard batchSize % ranks != 0 else { return }
        throw TerraSegError(.invalidArgument, path: path,
                            problem: "the batch size \(batchSize) does not divide among \(ranks) ranks",
                            hint: "Use a batch size that is a multiple of \(ranks) (training.batch_size, flag --batch-size), or another number of ranks")
    }
}
