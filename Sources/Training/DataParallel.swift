import Core
import Distributed
import Foundation
import Engine
import Metrics
import Models

/// Data-parallel training over the ranks of a `Communicator`: every rank holds a replica of
/// the network, trains on its shard of each global batch, and the replicas stay equal because
/// they start from rank 0's weights and apply the same averaged gradients. The gradients,
/// in the order the backward pass finishes them, make one virtual flat buffer (each
/// parameter's gradient stays in its own `grad`: nothing is packed); the batch-norm running
/// statistics (averaged, so the replicas' buffers stay equal too) and the loss go in one
/// small all-reduce. For a U-Net the gradients go in buckets of `TERRASEG_ALLREDUCE_BUCKET_KB`
/// (8 MiB), each reduce-scattered (`Communicator.startReduceScatterSum(blocks:into:)`, straight
/// from the gradients) as soon as the backward pass has finished its blocks, while it computes
/// the next ones; `step` adds the rest, waits, and shards the optimiser step (ZeRO-1): each
/// rank updates its block of every bucket (`Communicator.block`) and the updated weights are
/// all-gathered straight into the parameters' values. Sums and updates are element by
/// element, so the weights are those of one all-reduce and one whole update on every rank
/// (bucket size 0, and other networks: one bucket). The optimiser's state is current only in
/// each rank's blocks until `gatherState` (before a checkpoint).
///
/// Batch norm normalises with each rank's own batch statistics (PyTorch DDP's default), so
/// N ranks of batch B/N match one process of batch B only up to that difference (docs/cluster.md).
/// A single-process communicator makes every call the identity (and `step` a whole update).
final class DataParallel {
    let communicator: Communicator
    private let parameters: [Parameter]
    private let buffers: [Parameter]
    /// The running statistics and the loss, all-reduced together.
    private let flat: UnsafeMutableBufferPointer<Float>
    /// This rank's block of each bucket: its summed gradients.
    private let shard: UnsafeMutableBufferPointer<Float>
    private let bucketValues: Int
    private var position: [ObjectIdentifier: Int] = [:]
    /// This step: where each parameter's gradient lies in the virtual flat buffer (nil: not yet
    /// finished), values placed, the start
    /// of the bucket being filled, the buckets started (and their block in `shard`),
    /// the reductions started, the first error of a reduction.
    private var offsets: [Int?]
    private var filled = 0, bucketStart = 0, shardFilled = 0
    private var buckets: [Bucket] = []
    private var reductions: [Communicator.Reduction] = []
    private var failure: Error?
    /// The last step's layout (the same every step), for `gatherState`.
    private var layout: Layout?

    private struct Bucket {
        var values: Range<Int>
        var shardStart: Int
    }

    init(network: any SegmentationNetwork, communicator: Communicator,
         bucketKilobytes: Int = (try? TerraSegEnvironment.current())?.allReduceBucketKilobytes ?? 8192) {
        self.communicator = communicator
        parameters = network.namedParameters.map(\.1)
        buffers = network.namedBuffers.map(\.1)
        bucketValues = bucketKilobytes << 8  // Floats
        let gradients = communicator.isDistributed ? parameters.reduce(0) { $0 + $1.count } : 0
        let count = communicator.isDistributed ? buffers.reduce(1) { $0 + $1.count } : 0
        flat = .allocate(capacity: count)
        flat.initialize(repeating: 0)
        // Every bucket but the last holds at least `bucketValues`; a block is at most count/ranks + 1.
        let bucketCount = bucketValues > 0 ? gradients / bucketValues + 1 : 1
        shard = .allocate(capacity: communicator.isDistributed ? gradients / communicator.size + bucketCount + 1 : 0)
        shard.initialize(repeating: 0)
        offsets = [Int?](repeating: nil, count: parameters.count)
        for (i, p) in parameters.enumerated() { position[ObjectIdentifier(p)] = i }
        if communicator.isDistributed, bucketValues > 0, let unet = network as? UNet {
            unet.gradientsReady = { [weak self] block in self?.ready(block.namedParameters.map(\.1)) }
        }
    }

    deinit {
        flat.deallocate()
        shard.deallocate()
    }

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
    /// reduce-scattered once full; started reductions advance.
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

    /// The parameter's gradient joins the virtual flat buffer (where it lies: its own `grad`).
    private func place(_ i: Int) {
        offsets[i] = filled
        filled += parameters[i].count
    }

    /// Reduce-scatters the gradients placed since the last bucket, from their own `grad`s:
    /// this rank gets its block's sums.
    private func startBucket() throws {
        guard filled > bucketStart else { return }
        let values = bucketStart..<filled, mine = communicator.block(of: values.count)
        precondition(shardFilled + mine.count <= shard.count, "DataParallel: shard buffer too small")
        let target = UnsafeMutableBufferPointer(rebasing: shard[shardFilled..<shardFilled + mine.count])
        let bucket = Bucket(values: values, shardStart: shardFilled)
        let placed = Layout(offsets: offsets, buckets: [])
        if let r = try communicator.startReduceScatterSum(blocks: blocks(bucket, placed) { parameters[$0].grad.data }, into: target) {
            reductions.append(r)
        }
        buckets.append(bucket)
        shardFilled += mine.count
        bucketStart = filled
    }

    /// Averages the gradients over the ranks and takes `optimizer`'s step: the gradients not
    /// yet in a bucket go in a last one, the running statistics and `loss` are all-reduced;
    /// once every reduction is done each rank updates its blocks and the updated weights are
    /// all-gathered. Returns the mean loss (the same on every rank). One process: a whole update.
    func step(_ optimizer: any Optimizer, loss: Float) throws -> Float {
        guard communicator.isDistributed else {
            optimizer.update()
            return loss
        }
        precondition(optimizer.parameters.count == parameters.count && zip(optimizer.parameters, parameters).allSatisfy { $0.1 === $1 },
                     "DataParallel: the optimiser's parameters are not the network's")
        defer {
            offsets = [Int?](repeating: nil, count: parameters.count)
            (filled, bucketStart, shardFilled, buckets, reductions) = (0, 0, 0, [], [])
        }
        if let failure { throw failure }
        for i in parameters.indices where offsets[i] == nil { place(i) }
        try startBucket()
        var o = 0
        for b in buffers { (flat.baseAddress! + o).update(from: b.value.data, count: b.count); o += b.count }
        flat[o] = loss
        if let r = try communicator.startAllReduceSum(flat) { reductions.append(r) }
        try communicator.wait(reductions)
        let scale = 1 / Float(ranks)
        for i in flat.indices { flat[i] *= scale }
        o = 0
        for b in buffers { b.value.data.update(from: flat.baseAddress! + o, count: b.count); b.markChanged(); o += b.count }
        let current = Layout(offsets: offsets, buckets: buckets)
        layout = current
        try updateAndGather(optimizer, current, scale: scale)
        for p in parameters { p.markChanged() }
        return flat[flat.count - 1]
    }

    /// This rank's blocks of `layout`'s buckets updated by `optimizer`; each bucket's updated
    /// values all-gathered as soon as its block is done, while the next blocks are updated.
    private func updateAndGather(_ optimizer: any Optimizer, _ layout: Layout, scale: Float) throws {
        let own = layout.buckets.map { ownParts($0, layout) }
        var lastPart: [Int: Int] = [:]  // index of a bucket's last part → the bucket
        var end = 0
        for (k, parts) in own.enumerated() where !parts.isEmpty { end += parts.count; lastPart[end - 1] = k }
        var gathers: [Communicator.Reduction] = []
        var started = 0, error: Error?
        // Every rank starts the gathers in bucket order (a bucket of fewer values than ranks
        // has no block on some ranks, so it starts with the next one that has).
        func start(through k: Int) throws {
            while started <= k {
                let b = layout.buckets[started]
                if let r = try communicator.startAllGather(blocks: blocks(b, layout) { parameters[$0].value.data }) { gathers.append(r) }
                started += 1
            }
        }
        optimizer.update(own.flatMap { $0 }, gradientScale: scale) { part in
            guard let k = lastPart[part], error == nil else { return }
            do {
                try start(through: k)
                try communicator.progress(gathers)
            } catch let e { error = e }
        }
        if let error { throw error }
        try start(through: layout.buckets.count - 1)
        try communicator.wait(gathers)
    }

    /// Where each parameter's gradient lies in the virtual flat buffer, and the buckets (the same every step).
    private struct Layout {
        var offsets: [Int?]
        var buckets: [Bucket]
    }

    /// The parameters' elements at `range` of the virtual flat buffer, in its order: (parameter,
    /// its elements, start in it).
    private func pieces(_ range: Range<Int>, _ layout: Layout) -> [(parameter: Int, elements: Range<Int>, start: Int)] {
        layout.offsets.enumerated().compactMap { i, o -> (parameter: Int, elements: Range<Int>, start: Int)? in
            guard let o else { return nil }
            let start = max(range.lowerBound, o), end = min(range.upperBound, o + parameters[i].count)
            return start < end ? (i, start - o ..< end - o, start) : nil
        }.sorted { $0.start < $1.start }
    }

    /// Rank `r`'s block of bucket `b`, in the virtual flat buffer.
    private func block(_ b: Bucket, rank r: Int? = nil) -> Range<Int> {
        let mine = communicator.block(of: b.values.count, rank: r)
        return b.values.lowerBound + mine.lowerBound ..< b.values.lowerBound + mine.upperBound
    }

    /// This rank's block of bucket `b` as optimiser parts, their gradients in `shard`.
    private func ownParts(_ b: Bucket, _ layout: Layout) -> [OptimizerPart] {
        let mine = block(b)
        return pieces(mine, layout).map {
            OptimizerPart(parameter: $0.parameter, range: $0.elements, gradient: shard.baseAddress! + b.shardStart + ($0.start - mine.lowerBound))
        }
    }

    /// Every rank's block of bucket `b` as pieces of the per-parameter arrays `base(i)`.
    private func blocks(_ b: Bucket, _ layout: Layout, _ base: (Int) -> UnsafeMutablePointer<Float>) -> [[UnsafeMutableBufferPointer<Float>]] {
        (0..<ranks).map { r in
            pieces(block(b, rank: r), layout).map { UnsafeMutableBufferPointer(start: base($0.parameter) + $0.elements.lowerBound, count: $0.elements.count) }
        }
    }

    /// Every rank's blocks of the per-parameter arrays `base(i)` on every rank.
    private func allGather(_ layout: Layout, _ base: (Int) -> UnsafeMutablePointer<Float>) throws {
        var gathers: [Communicator.Reduction] = []
        for b in layout.buckets {
            if let r = try communicator.startAllGather(blocks: blocks(b, layout, base)) { gathers.append(r) }
        }
        try communicator.wait(gathers)
    }

    /// Brings every rank's blocks of `optimizer`'s state to every rank (after `step`, each rank
    /// updated only its own), so a checkpoint holds the whole state. All ranks call it together.
    func gatherState(of optimizer: any Optimizer) throws {
        guard communicator.isDistributed, let layout else { return }
        let index = Dictionary(uniqueKeysWithValues: optimizer.parameters.enumerated().map { ($0.element.0, $0.offset) })
        let kinds = Dictionary(grouping: optimizer.stateBuffers) { String($0.name.prefix { $0 != "/" }) }
        for kind in kinds.keys.sorted() {
            var pointers = [UnsafeMutablePointer<Float>?](repeating: nil, count: parameters.count)
            for b in kinds[kind]! { pointers[index[String(b.name.dropFirst(kind.count + 1))]!] = b.storage.pointer }
            try allGather(layout) { pointers[$0]! }
        }
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
