import Core
import Engine
@testable import Models
import Testing
import TestSupport

// bf16 training (`Bf16Training`): the conv–BN–ReLU convolutions in bf16, everything else fp32.

private func random(_ shape: Shape, seed: UInt64) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let t = Tensor(shape: shape, layout: .nchw)
    t.setNCHW(rng.uniform(shape.count, -1, 1).map(Float.init))
    return t
}

private func normwise(_ a: [Float], _ b: [Float]) -> Double {
    let d = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
    return (d / max(1e-30, b.reduce(0.0) { $0 + Double($1) * Double($1) })).squareRoot()
}

/// bf16 rounds each conv weight, activation and gradient to 8 bits of mantissa. At this
/// untrained U-Net with random output gradients, batch norm's backward makes the parameter
/// gradients sums with much cancellation: rounding only the fp32 network's conv weights to bf16
/// already moves them by 1-30 % normwise. The tolerance is that: one bf16 training step's
/// logits within 3 % of fp32's and 2× (+ 0.005) what the weight rounding does, and every gradient tensor within 2× (+ 0.01) of what the
/// weight rounding alone does to it, overall within 1.6×; batch norm stays fp32.
@Test(.enabled(if: CPUFeatures.hasBF16))
func bf16TrainingGradientsFollowFloat() {
    let config = UNetConfiguration(inputChannels: 4, classes: 3, widths: [16, 32], bottleneckWidth: 32, bottleneckDilations: [1, 2])
    func step(bf16: Bool, roundedWeights: Bool = false) -> (logits: [Float], grads: [(String, [Float])], implementation: String) {
        let net = UNet(config, seed: 11)
        net.isTraining = true
        if bf16 { #expect(Bf16Training.install(in: net, choosing: false) == Int8Calibration.units(of: net).count) }
        if roundedWeights {  // to nearest even bf16
            for (_, unit) in Int8Calibration.units(of: net) {
                unit.conv.weight.set(unit.conv.weight.value.nchwValues().map { Float(bitPattern: ($0.bitPattern &+ 0x7FFF &+ (($0.bitPattern >> 16) & 1)) & 0xFFFF_0000) })
            }
        }
        let y = net(random(Shape(2, 4, 32, 32), seed: 3))
        _ = net.backward(random(y.shape, seed: 4))
        return (y.nchwValues(), net.namedParameters.map { ($0.0, $0.1.grad.nchwValues()) },
                net.bottleneck.units[1].conv.kernel.implementations.joined(separator: " "))
    }
    let f = step(bf16: false), b = step(bf16: true), r = step(bf16: false, roundedWeights: true)
    #expect(b.implementation.contains("bf16") && !f.implementation.contains("bf16"), "\(b.implementation)")
    let e = normwise(b.logits, f.logits), logitsReference = normwise(r.logits, f.logits)
    #expect(e > 0 && e < 0.03 && e <= 2 * logitsReference + 0.005, "bf16 logits off by \(e), weight rounding alone \(logitsReference)")
    var all = (bf16: [Float](), rounded: [Float](), fp32: [Float]())
    for (((name, got), (_, rounded)), (_, want)) in zip(zip(b.grads, r.grads), f.grads) {
        all.bf16 += got; all.rounded += rounded; all.fp32 += want
        let reference = normwise(rounded, want)
        #expect(normwise(got, want) <= 2 * reference + 0.01, "\(name) gradient off by \(normwise(got, want)), weight rounding alone \(reference)")
    }
    let overall = normwise(all.bf16, all.fp32), reference = normwise(all.rounded, all.fp32)
    #expect(overall > 0 && overall < 1.6 * reference, "gradients off by \(overall) overall, weight rounding alone \(reference)")
}

/// The per-layer choice in training: timings injected; the faster precision is kept and used.
@Test(.enabled(if: CPUFeatures.hasBF16), arguments: [true, false])
func bf16TrainingChoiceKeepsTheFaster(_ bf16Faster: Bool) {
    let conv = Conv2d(inputChannels: 16, outputChannels: 16, kernelSize: 3, seed: 2)
    conv.bf16Choice = Bf16Choice()
    conv.bf16Choice!.clock = { isBF16, run in run(); return isBF16 == bf16Faster ? 1 : 2 }
    let x = random(Shape(2, 16, 16, 16), seed: 1)
    let y = conv(x)
    _ = conv.backward(random(y.shape, seed: 5))
    #expect(conv.kernel.bf16 == bf16Faster)
    #expect(conv.kernel.implementations[0].contains("bf16") == bf16Faster, "\(conv.kernel.implementations)")
    #expect(conv.bf16Choice!.decisions.count == 1)
}

/// After the choice only the kept precision's plan stays cached: the loser's primitives,
/// reordered weights and bf16 buffers are released (they cost +1.3 GB peak RSS in R1's first step).
@Test(.enabled(if: CPUFeatures.hasBF16), arguments: [true, false])
func bf16TrainingChoiceReleasesTheLoser(_ bf16Faster: Bool) {
    let conv = Conv2d(inputChannels: 16, outputChannels: 16, kernelSize: 3, seed: 2)
    conv.bf16Choice = Bf16Choice()
    conv.bf16Choice!.clock = { isBF16, run in run(); return isBF16 == bf16Faster ? 1 : 2 }
    let x = random(Shape(2, 16, 16, 16), seed: 1)
    _ = conv.backward(random(conv(x).shape, seed: 5))
    #expect(conv.kernel.cachedPlanPrecisions == [bf16Faster], "plans cached: \(conv.kernel.cachedPlanPrecisions)")
    // Another shape is measured on its own; the first shape's kept plan stays.
    _ = conv(random(Shape(1, 16, 8, 8), seed: 6))
    #expect(conv.kernel.cachedPlanPrecisions == [bf16Faster, bf16Faster])
}

/// `releasePlans` drops only the given input shape's plans of the given precision.
@Test(.enabled(if: CPUFeatures.hasBF16))
func convolutionKernelReleasesOnePrecisionOfOneShape() {
    let conv = Conv2d(inputChannels: 16, outputChannels: 16, kernelSize: 3, seed: 2)
    let a = random(Shape(2, 16, 16, 16), seed: 1), b = random(Shape(1, 16, 8, 8), seed: 2)
    for bf16 in [false, true] { conv.kernel.bf16 = bf16; _ = conv(a) }
    _ = conv(b)
    #expect(conv.kernel.cachedPlanPrecisions == [true, true, false])
    #expect(conv.kernel.releasePlans(inputShape: a.shape, layout: a.layout, bf16: false) == 1)
    #expect(conv.kernel.cachedPlanPrecisions == [true, true])
    #expect(conv.kernel.releasePlans(inputShape: b.shape, layout: b.layout, bf16: nil) == 1)
    #expect(conv.kernel.cachedPlanPrecisions == [true])
    #expect(conv.kernel.implementations[0].contains("bf16"), "the kept plan still runs")
    _ = conv(a)
    #expect(conv.kernel.cachedPlanPrecisions == [true], "reused, not made again")
}
