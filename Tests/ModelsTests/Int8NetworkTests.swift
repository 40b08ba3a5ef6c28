import Core
import Engine
@testable import Models
import Testing
import TestSupport

// int8 inference of conv–BN–ReLU units and whole networks against their fp32 inference.
// Needs VNNI (see Int8ConvolutionTests); elsewhere prediction refuses int8.

private func random(_ shape: Shape, seed: UInt64, _ lo: Double, _ hi: Double, layout: Layout = .nchw) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let t = Tensor(shape: shape, layout: layout)
    t.setNCHW(rng.uniform(shape.count, lo, hi).map(Float.init))
    return t
}

private func normwiseError(_ a: [Float], _ b: [Float]) -> Double {
    let d = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
    return (d / max(1e-30, b.reduce(0.0) { $0 + Double($1) * Double($1) })).squareRoot()
}

/// Per output, |int8 − fp32| ≤ ½ input step · Σ|w_folded[o]| + ½ weight step[o] · Σ|x| over the
/// kernel's footprint (plus Float32 rounding): the quantization step, propagated.
@Test(.enabled(if: CPUFeatures.hasInt8DotProduct))
func int8UnitEqualsFoldedFloatWithinQuantization() {
    let unit = ConvBNReLU(inputChannels: 16, outputChannels: 32, dilation: 2, seed: 5)
    unit.bn.runningMean.set((0..<32).map { Float($0) * 0.01 - 0.1 })
    unit.bn.runningVariance.set((0..<32).map { 0.5 + Float($0) * 0.03 })
    unit.bn.weight.set((0..<32).map { 0.8 + Float($0 % 5) * 0.1 })
    unit.isTraining = false
    let x = random(Shape(2, 16, 12, 10), seed: 6, 0, 2, layout: .nChw16c)
    let expected = unit(x).nchwValues()
    let step: Float = 2.0 / 255
    unit.int8 = Int8ConvUnit(unit, inputStep: step)
    let got = unit(x).nchwValues()
    #expect(!unit.int8!.implementation.hasPrefix("ref"), "oneDNN's fast int8 kernel, not \(unit.int8!.implementation)")

    let (w, _) = unit.inferenceWeights()
    let wv = w.value.nchwValues(), per = wv.count / 32
    let weightSteps = Int8Weights(quantizing: wv, outputChannels: 32).steps
    var worst = 0.0
    for o in 0..<32 {
        let sumW = wv[(o * per)..<((o + 1) * per)].reduce(0.0) { $0 + Double(abs($1)) }
        let bound = Double(step) / 2 * sumW + Double(weightSteps[o]) / 2 * Double(per) * 2 + 1e-4
        let plane = 12 * 10
        for n in 0..<2 { for i in 0..<plane {
            let k = (n * 32 + o) * plane + i
            worst = max(worst, Double(abs(got[k] - expected[k])) / bound)
        } }
    }
    #expect(worst <= 1, "int8 unit off by \(worst) × the quantization bound")
}

@Test func unitNamesFollowTheParameterNames() {
    for architecture in [ModelArchitecture.unet(.r1), .dilated(DilatedNetConfiguration(inputChannels: 3, classes: 4))] {
        let net = architecture.build(seed: 1)
        let names = Int8Calibration.units(of: net).map(\.name)
        #expect(names == Int8Calibration.unitNames(architecture))
        let parameters = Set(net.namedParameters.map(\.0))
        #expect(names.allSatisfy { parameters.contains($0 + ".weight") })
        #expect(Int8Calibration.quantizable(net).map(\.name) == Array(names.dropFirst()))
    }
}

/// The whole network in int8 (all units but the first) against fp32: normwise relative error
/// of the logits within 1 % (measured 0.09–0.16 %) on an untrained network with moved batch-norm statistics (the
/// documented tolerance; trained networks agree more, see the map test in BundleTests).
@Test(.enabled(if: CPUFeatures.hasInt8DotProduct), arguments: [
    ModelArchitecture.unet(UNetConfiguration(inputChannels: 4, classes: 3, widths: [16, 32], bottleneckWidth: 32,
                                             bottleneckDilations: [1, 2])),
    .dilated(DilatedNetConfiguration(inputChannels: 4, classes: 3, width: 16, dilations: [1, 2, 4, 1])),
])
func int8NetworkLogitsFollowFloat(_ architecture: ModelArchitecture) {
    let net = architecture.build(seed: 11)
    for s in 0..<3 { _ = net(random(Shape(2, 4, 32, 32), seed: 20 + UInt64(s), -2, 2)) }  // moves running statistics
    net.isTraining = false
    let calibration = (0..<3).map { random(Shape(2, 4, 32, 32), seed: 30 + UInt64($0), -2, 2) }
    let steps = Int8Calibration.calibrate(net, batches: calibration)
    #expect(steps.count == Int8Calibration.quantizable(net).count && steps.values.allSatisfy { $0.isFinite && $0 > 0 })
    let x = random(Shape(2, 4, 32, 32), seed: 40, -2, 2)
    let expected = net(x).nchwValues()
    Int8Calibration.install(steps, in: net)
    let got = net(x).nchwValues()
    let e = normwiseError(got, expected)
    #expect(e < 0.01, "int8 logits differ from fp32 by \(e) normwise")
    #expect(e > 0, "the int8 path ran")
    Int8Calibration.uninstall(from: net)
    #expect(net(x).nchwValues() == expected)
}

/// Calibration runs every unit blocked (its samples take values as laid out, padding
/// included): a U-Net with narrow units (8-16-32, 4 bands) gets the same steps with or without
/// `channelsLast`, and its units' `channelsLast` are as before afterwards.
@Test func calibrationStepsDoNotDependOnChannelsLastUnits() {
    let net = UNet(UNetConfiguration(inputChannels: 4, classes: 3, widths: [8, 16, 32], bottleneckWidth: 32), seed: 12)
    _ = net(random(Shape(2, 4, 32, 32), seed: 21, -2, 2))  // moves running statistics
    let batches = [random(Shape(2, 4, 32, 32), seed: 31, -2, 2)]
    let units = Int8Calibration.units(of: net).map(\.unit)
    let marked = units.map(\.channelsLast)
    #expect(marked.contains(true))
    let steps = Int8Calibration.calibrate(net, batches: batches)
    #expect(units.map(\.channelsLast) == marked)
    for u in units { u.channelsLast = false }
    #expect(Int8Calibration.calibrate(net, batches: batches) == steps)
}
