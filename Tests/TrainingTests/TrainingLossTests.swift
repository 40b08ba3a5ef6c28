import Engine
import Models
import Testing
@testable import Training

/// The trainer's default Dice + focal runs as the fused `FocalDiceLoss`; it must agree with
/// `CompositeLoss` (focal + Dice term by term) to float rounding. Not bit for bit: the fused
/// loss accumulates its sums in Double and multiplies by 1/Σexp where the terms divide.
@Test(arguments: [false, true])
func fusedLossMatchesCompositeLoss(masked: Bool) {
    let n = 4, k = 7, h = 32, w = 32, hw = h * w
    var state: UInt64 = 2024
    func next() -> UInt64 {  // a fixed linear congruential sequence: the test needs no shared generator
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 33
    }
    let logits = Tensor(shape: Shape(n, k, h, w), values: (0..<(n * k * hw)).map { _ in Float(next() % 8001) / 1000 - 4 })
    let labels = (0..<(n * hw)).map { _ in masked && next() % 5 == 0 ? Int32(-1) : Int32(next() % UInt64(k)) }
    let target = SegmentationTarget(n: n, h: h, w: w, labels: labels, ignoreIndex: -1)
    var options = LossOptions()
    options.alpha = [0.5, 1, 1, 0.25, 2, 1, 1.5]
    #expect(TrainingLoss.isFusable(options))
    #expect(TrainingLoss(options).isFused)

    let fused = TrainingLoss(options)(logits: logits, target: target)
    let composite = CompositeLoss(options)(logits: logits, target: target)
    let gf = fused.gradient.nchwValues(), gc = composite.gradient.nchwValues()
    let valueDifference = abs(fused.value - composite.value)
    let gradientDifference = zip(gf, gc).map { abs($0 - $1) }.max() ?? 0
    let gradientScale = gc.map { abs($0) }.max() ?? 0
    // The exact loss (Double) for reference: the fused loss's Double sums are the closer.
    let z = logits.nchwValues().map(Double.init)
    var g = [Double](repeating: 0, count: z.count)
    let exact = z.withUnsafeBufferPointer { zp in
        g.withUnsafeMutableBufferPointer { gp in
            focalCore(logits: zp, classes: k, target: target, gamma: 2, alpha: options.alpha!.map(Double.init), reduction: .mean, gradient: gp)
                + diceCore(logits: zp, classes: k, target: target, classWeights: nil, smoothing: 0, epsilon: 1e-6, reduction: .mean, gradient: gp)
        }
    }
    #expect(abs(Double(fused.value) - exact) <= abs(Double(composite.value) - exact) + 1e-7)
    print("fused vs composite (masked: \(masked)): loss \(fused.value) vs \(composite.value) (exact \(exact)), |Δloss| \(valueDifference), "
          + "max |Δgradient| \(gradientDifference) (max |gradient| \(gradientScale)), bit-identical: \(valueDifference == 0 && gf == gc)")
    #expect(valueDifference <= 1e-5 * abs(composite.value))  // Float sums over 4096 pixels in CompositeLoss
    #expect(gradientDifference <= 16 * Float.ulpOfOne * gradientScale)
}

@Test func otherLossMixesUseCompositeLoss() {
    var weighted = LossOptions()
    weighted.terms = [.init(.focal, weight: 2), .init(.dice)]
    var smoothed = LossOptions()
    smoothed.smoothing = 1
    var crossEntropy = LossOptions()
    crossEntropy.terms = [.init(.crossEntropy), .init(.dice)]
    var reversed = LossOptions()
    reversed.terms = [.init(.dice), .init(.focal)]
    #expect(!TrainingLoss(weighted).isFused)
    #expect(!TrainingLoss(smoothed).isFused)
    #expect(!TrainingLoss(crossEntropy).isFused)
    #expect(TrainingLoss(reversed).isFused)
}
