import Core
import Engine
import Models
import Testing
import TestSupport
import Foundation

// Finite-difference checks (Double) of each loss's gradient with respect to the logits.

private func target(n: Int, h: Int, w: Int, k: Int, seed: UInt64, masked: Bool) -> SegmentationTarget {
    var rng = SplitMix64(seed: seed)
    let labels = (0..<(n * h * w)).map { _ in Int32.random(in: 0..<Int32(k), using: &rng) }
    let mask = masked ? (0..<(n * h * w)).map { $0 % 5 != 2 } : nil
    return SegmentationTarget(n: n, h: h, w: w, labels: labels, mask: mask, ignoreIndex: masked ? 1 : nil)
}

private func check(_ name: String, _ x: [Double], _ f: (UnsafeBufferPointer<Double>, UnsafeMutableBufferPointer<Double>) -> Double) {
    var grad = [Double](repeating: 0, count: x.count)
    _ = x.withUnsafeBufferPointer { xp in grad.withUnsafeMutableBufferPointer { f(xp, $0) } }
    let numeric = numericalGradient(of: { v in
        var scratch = [Double](repeating: 0, count: v.count)
        return v.withUnsafeBufferPointer { vp in scratch.withUnsafeMutableBufferPointer { f(vp, $0) } }
    }, at: x)
    let e = relativeError(grad, numeric)
    #expect(e < 1e-6, "\(name): relative error \(e)")
}

@Test(arguments: [false, true], [Reduction.mean, .sum])
func lossGradientsMatchFiniteDifferences(masked: Bool, reduction: Reduction) {
    let n = 2, k = 4, h = 3, w = 3
    let t = target(n: n, h: h, w: w, k: k, seed: 7, masked: masked)
    var rng = SplitMix64(seed: 8)
    let logits = rng.uniform(n * k * h * w, -2, 2)
    check("cross-entropy", logits) { crossEntropyCore(logits: $0, classes: k, target: t, classWeights: [1, 2, 0.5, 1], reduction: reduction, gradient: $1) }
    check("focal γ=2", logits) { focalCore(logits: $0, classes: k, target: t, gamma: 2, alpha: [0.25, 0.5, 1, 0.75], reduction: reduction, gradient: $1) }
    check("focal γ=0", logits) { focalCore(logits: $0, classes: k, target: t, gamma: 0, alpha: nil, reduction: reduction, gradient: $1) }
    check("focal γ=1.5", logits) { focalCore(logits: $0, classes: k, target: t, gamma: 1.5, alpha: nil, reduction: reduction, gradient: $1) }
    check("dice", logits) { diceCore(logits: $0, classes: k, target: t, classWeights: [1, 0.5, 2, 1], smoothing: 1, epsilon: 1e-6, reduction: reduction, gradient: $1) }
}

@Test func focalWithGammaZeroIsCrossEntropy() {
    let t = target(n: 1, h: 2, w: 3, k: 3, seed: 9, masked: false)
    let logits = Tensor(shape: Shape(1, 3, 2, 3), values: (0..<18).map { Float($0 % 7) * 0.3 - 1 })
    let f = focalLoss(logits: logits, target: t, gamma: 0)
    let c = crossEntropyLoss(logits: logits, target: t)
    #expect(abs(f.value - c.value) < 1e-6)
    #expect(relativeError(f.gradient.nchwValues(), c.gradient.nchwValues().map(Double.init)) < 1e-6)
}

@Test func maskedPixelsDoNotContribute() {
    let k = 3
    var t = target(n: 1, h: 2, w: 4, k: k, seed: 10, masked: false)
    t.mask = [true, true, false, true, true, false, true, true]
    var values = (0..<(k * 8)).map { Float($0 % 5) * 0.4 - 0.8 }
    let a = diceLoss(logits: Tensor(shape: Shape(1, k, 2, 4), values: values), target: t).value
    // Changing the logits of masked pixels changes neither the loss nor gets a gradient.
    for c in 0..<k { values[c * 8 + 2] += 3; values[c * 8 + 5] -= 2 }
    let b = diceLoss(logits: Tensor(shape: Shape(1, k, 2, 4), values: values), target: t)
    #expect(a == b.value)
    let g = b.gradient.nchwValues()
    for c in 0..<k { #expect(g[c * 8 + 2] == 0 && g[c * 8 + 5] == 0) }
}

@Test func perfectPredictionHasNearZeroLoss() {
    let t = SegmentationTarget(n: 1, h: 1, w: 4, labels: [0, 1, 2, 1])
    var v = [Float](repeating: -20, count: 12)
    for (p, l) in t.labels.enumerated() { v[Int(l) * 4 + p] = 20 }
    let logits = Tensor(shape: Shape(1, 3, 1, 4), values: v)
    #expect(FocalDiceLoss()(logits: logits, target: t).value < 1e-5)
}

@Test(arguments: [false, true])
func fusedFocalDiceEqualsSumOfLosses(masked: Bool) {
    let k = 6
    let t = target(n: 2, h: 8, w: 8, k: k, seed: 11, masked: masked)
    var rng = SplitMix64(seed: 12)
    let logits = Tensor(shape: Shape(2, k, 8, 8), values: rng.uniform(2 * k * 64, -3, 3).map(Float.init))
    let alpha: [Float] = [0.5, 1, 1, 0.25, 2, 1]
    let fused = FocalDiceLoss(gamma: 2, alpha: alpha)(logits: logits, target: t)
    let f = focalLoss(logits: logits, target: t, gamma: 2, alpha: alpha)
    let d = diceLoss(logits: logits, target: t, gradient: f.gradient, accumulate: true)
    #expect(abs(fused.value - (f.value + d.value)) < 1e-5)
    #expect(relativeError(fused.gradient.nchwValues(), d.gradient.nchwValues().map(Double.init)) < 1e-5)
}

@Test func adamMatchesTheTextbookUpdate() {
    let p = Parameter(name: "w", shape: Shape(3, 1, 1, 1))
    p.set([1, -2, 0.5])
    let adam = Adam(parameters: [("w", p)], learningRate: 0.1)
    var m = [Double](repeating: 0, count: 3), v = m, w: [Double] = [1, -2, 0.5]
    for t in 1...3 {
        let g: [Double] = [0.3 * Double(t), -1, 0.05]
        for i in 0..<3 { p.grad.data[i] = Float(g[i]) }
        adam.update()
        for i in 0..<3 {
            m[i] = 0.9 * m[i] + 0.1 * g[i]; v[i] = 0.999 * v[i] + 0.001 * g[i] * g[i]
            let mh = m[i] / (1 - pow(0.9, Double(t))), vh = v[i] / (1 - pow(0.999, Double(t)))
            w[i] -= 0.1 * mh / (vh.squareRoot() + 1e-8)
        }
    }
    #expect(relativeError((0..<3).map { Double(p.value.data[$0]) }, w) < 1e-5)
    #expect(p.version > 0)
}

/// A data-parallel rank updates only its block of the flat gradient buffer (DataParallel's
/// sharded step): the blocks of 1, 2 and 3 ranks, cut across parameters of odd lengths and
/// updated in any order from a buffer of summed gradients × 1/ranks, give the whole update's
/// weights and state bit for bit (Adam, AdamW, SGD with Nesterov momentum).
@Test(arguments: [1, 2, 3])
func anOptimizerStepInBlocksEqualsTheWholeStep(ranks: Int) {
    let lengths = [7, 13, 1, 6]
    func parameters() -> [(String, Parameter)] {
        var rng = SplitMix64(seed: 11)
        return lengths.enumerated().map { k, n in
            let p = Parameter(name: "p\(k)", shape: Shape(n, 1, 1, 1))
            p.set((0..<n).map { _ in Float(rng.next() % 2001) / 1000 - 1 })
            return ("p\(k)", p)
        }
    }
    let makers: [([(String, Parameter)]) -> any Optimizer] = [
        { Adam(parameters: $0, learningRate: 0.01, weightDecay: 0.1) },
        { Adam(parameters: $0, learningRate: 0.01, weightDecay: 0.1, decoupledWeightDecay: true) },
        { SGD(parameters: $0, learningRate: 0.05, momentum: 0.9, nesterov: true, weightDecay: 0.01) },
    ]
    for make in makers {
        let whole = parameters(), blocks = parameters()
        let a = make(whole), b = make(blocks)
        let total = lengths.reduce(0, +)
        var rng = SplitMix64(seed: 5)
        for _ in 0..<3 {
            // The ranks' summed gradients; the whole step reads them × 1/ranks, as the blocks do.
            let summed = (0..<total).map { _ in Float(rng.next() % 1001) / 1000 - 0.5 }
            var o = 0
            for (_, p) in whole { for i in 0..<p.count { p.grad.data[i] = summed[o + i] * (1 / Float(ranks)) }; o += p.count }
            a.update()
            summed.withUnsafeBufferPointer { flat in
                var parts: [OptimizerPart] = []
                for r in (0..<ranks).reversed() {
                    let block = total * r / ranks ..< total * (r + 1) / ranks
                    var start = 0
                    for (k, n) in lengths.enumerated() {
                        let lo = max(block.lowerBound, start), hi = min(block.upperBound, start + n)
                        if lo < hi { parts.append(OptimizerPart(parameter: k, range: lo - start ..< hi - start, gradient: flat.baseAddress! + lo)) }
                        start += n
                    }
                }
                b.update(parts, gradientScale: 1 / Float(ranks))
            }
        }
        for ((_, p), (_, q)) in zip(whole, blocks) {
            #expect(Array(UnsafeBufferPointer(start: p.value.data, count: p.count)) == Array(UnsafeBufferPointer(start: q.value.data, count: q.count)))
        }
        for (s, t) in zip(a.stateBuffers, b.stateBuffers) {
            #expect(Array(UnsafeBufferPointer(start: s.storage.pointer, count: s.count)) == Array(UnsafeBufferPointer(start: t.storage.pointer, count: t.count)), "\(s.name)")
        }
        #expect(a.step == b.step)
    }
}
