import Core
import Engine
@testable import Models
import Testing
import TestSupport

// bf16 inference (`Bf16ConvolutionKernel`, `Bf16Inference`) against fp32. bf16 keeps 8 bits of
// mantissa: each input and weight is off by ≤ 2⁻⁹ relative, sums are Float32.

private func relative(_ a: [Float], _ b: [Float]) -> Double {
    let d = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
    return (d / max(1e-30, b.reduce(0.0) { $0 + Double($1) * Double($1) })).squareRoot()
}

private func random(_ shape: Shape, seed: UInt64, layout: Layout = .nchw) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let t = Tensor(shape: shape, layout: layout)
    t.setNCHW(rng.uniform(shape.count, -2, 2).map(Float.init))
    return t
}

/// Per output |bf16 − fp32| ≤ 2·2⁻⁹ · Σ|w|·|x| over the footprint (+ Float32 rounding).
@Test(.enabled(if: CPUFeatures.hasBF16), arguments: [1, 2])
func bf16UnitEqualsFloatWithinRounding(_ dilation: Int) {
    let unit = ConvBNReLU(inputChannels: 16, outputChannels: 32, dilation: dilation, seed: 5)
    unit.bn.runningVariance.set((0..<32).map { 0.5 + Float($0) * 0.03 })
    unit.isTraining = false
    let x = random(Shape(2, 16, 12, 10), seed: 6, layout: .nChw16c)
    let expected = unit(x).nchwValues()
    unit.bf16 = Bf16Inference.kernel(unit)
    let got = unit(x).nchwValues()
    #expect(unit.bf16!.implementation.contains("bf16"), "oneDNN's bf16 kernel, not \(unit.bf16!.implementation)")
    let (w, _) = unit.inferenceWeights()
    let wv = w.value.nchwValues(), per = wv.count / 32
    var worst = 0.0
    for o in 0..<32 {
        let bound = 2 * 0x1p-9 * wv[(o * per)..<((o + 1) * per)].reduce(0.0) { $0 + Double(abs($1)) } * 2 + 1e-4  // |x| ≤ 2
        for i in 0..<(2 * 12 * 10) {
            let k = ((i / 120) * 32 + o) * 120 + i % 120
            worst = max(worst, Double(abs(got[k] - expected[k])) / bound)
        }
    }
    #expect(worst <= 1 && worst > 0, "bf16 unit off by \(worst) × the rounding bound")
}

/// A whole U-Net in bf16 (every unit; the head fp32): logits within 1 % normwise of fp32
/// (the documented tolerance), and back to fp32 exactly after uninstalling.
@Test(.enabled(if: CPUFeatures.hasBF16))
func bf16NetworkLogitsFollowFloat() {
    let net = UNet(UNetConfiguration(inputChannels: 4, classes: 3, widths: [16, 32], bottleneckWidth: 32, bottleneckDilations: [1, 2]), seed: 11)
    for s in 0..<2 { _ = net(random(Shape(2, 4, 32, 32), seed: 20 + UInt64(s))) }
    net.isTraining = false
    let x = random(Shape(2, 4, 32, 32), seed: 40)
    let expected = net(x).nchwValues()
    Bf16Inference.install(in: net)
    let e = relative(net(x).nchwValues(), expected)
    #expect(e > 0 && e < 0.01, "bf16 logits differ from fp32 by \(e) normwise")
    Bf16Inference.uninstall(from: net)
    #expect(net(x).nchwValues() == expected)
}
