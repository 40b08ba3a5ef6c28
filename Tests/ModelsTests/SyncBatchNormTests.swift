import Engine
import Foundation
import Models
import Testing

/// Sums in place across two threads standing for two ranks (what MPI_Allreduce does).
final class TwoReplicaSum: @unchecked Sendable {
    private let condition = NSCondition()
    private var pending: [Double]?
    private var result: [Double] = []
    private var generation = 0

    func callAsFunction(_ values: UnsafeMutableBufferPointer<Double>) {
        condition.lock()
        defer { condition.unlock() }
        let myGeneration = generation
        if let other = pending {
            result = zip(other, values).map { $0 + $1 }
            pending = nil
            generation += 1
            condition.broadcast()
        } else {
            pending = Array(values)
            while generation == myGeneration { condition.wait() }
        }
        _ = values.update(from: result)
    }
}

/// Synchronised batch norm on two replicas, each with half the batch, equals batch norm over
/// the whole batch (the naive Double reference): outputs, input gradients and the sum of the
/// replicas' dγ, dβ — in every layout, with and without the fused ReLU, with padded channel blocks.
@Test(arguments: [(Layout.nchw, false), (.nChw16c, false), (.nChw16c, true), (.nhwc, true)])
func synchronisedBatchNormEqualsWholeBatch(_ layout: Layout, _ relu: Bool) {
    let C = 12, half = Shape(2, C, 5, 4), whole = Shape(4, C, 5, 4)
    var rng = SystemRandomNumberGenerator()
    let x = RefTensor(whole, (0..<whole.count).map { i in Double(i % 7) * 0.3 - 1 + Double.random(in: -0.5...0.5, using: &rng) })
    let dy = RefTensor(whole, (0..<whole.count).map { _ in Double.random(in: -1...1, using: &rng) })
    let gamma = (0..<C).map { 0.5 + Double($0) * 0.1 }, beta = (0..<C).map { Double($0) * 0.03 - 0.2 }
    let xs = (0..<2).map { r in RefTensor(half, Array(x.values[(r * half.count)..<((r + 1) * half.count)])) }
    let dys = (0..<2).map { r in RefTensor(half, Array(dy.values[(r * half.count)..<((r + 1) * half.count)])) }
    let sum = TwoReplicaSum()
    let results = Results()
    DispatchQueue.concurrentPerform(iterations: 2) { r in
        let bn = BatchNorm2d(channels: C, fusedReLU: relu)
        bn.weight.set(gamma.map(Float.init))
        bn.bias.set(beta.map(Float.init))
        bn.crossReplicaSum = { sum($0) }
        let y = RefTensor(bn(xs[r].tensor(layout: layout))).values
        let dx = RefTensor(bn.backward(dys[r].tensor(layout: layout))).values
        results.put(r, [y, dx, (0..<C).map { Double(bn.weight.grad.data[$0]) }, (0..<C).map { Double(bn.bias.grad.data[$0]) }])
    }
    let (outputs, dInputs) = (results.get(0)[0] + results.get(1)[0], results.get(0)[1] + results.get(1)[1])
    let dGamma = zip(results.get(0)[2], results.get(1)[2]).map { $0 + $1 }, dBeta = zip(results.get(0)[3], results.get(1)[3]).map { $0 + $1 }
    let ref = ReferenceBatchNorm.forwardTraining(x, gamma, beta, eps: 1e-5, relu: relu)
    let rb = ReferenceBatchNorm.backward(x, gamma, beta, dy, eps: 1e-5, relu: relu)
    func close(_ a: [Double], _ b: [Double], _ what: String) {
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
        #expect(a.count == b.count && worst < 1e-4, "\(what): max |Δ| \(worst)")
    }
    close(outputs, ref.y.values, "forward")
    close(dInputs, rb.dx.values, "dx")
    close(dGamma, rb.dGamma, "dγ")
    close(dBeta, rb.dBeta, "dβ")
}

/// What each replica's thread hands back, under a lock.
final class Results: @unchecked Sendable {
    private let lock = NSLock()
    private var byReplica: [Int: [[Double]]] = [:]
    func put(_ r: Int, _ values: [[Double]]) { lock.lock(); byReplica[r] = values; lock.unlock() }
    func get(_ r: Int) -> [[Double]] { lock.lock(); defer { lock.unlock() }; return byReplica[r] ?? [[], [], [], []] }
}
