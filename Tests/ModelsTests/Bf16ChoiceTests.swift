import Core
import Engine
@testable import Models
import Testing
import TestSupport

// The per-layer choice of bf16 prediction (`Bf16Choice`): timings injected, so the choice is
// deterministic; the real clock is only used in prediction.

/// A scripted clock: each call returns the next time for its precision, and runs nothing timed.
private final class ScriptedClock {
    var fp32: [Double], bf16: [Double]
    init(fp32: [Double], bf16: [Double]) { self.fp32 = fp32; self.bf16 = bf16 }
    func time(_ isBF16: Bool, _ run: () -> Void) -> Double {
        run()
        return isBF16 ? bf16.removeFirst() : fp32.removeFirst()
    }
}

/// The faster precision wins on the fastest of its timed runs; a shape is measured once, a new
/// shape (or layout) again; the runs are one untimed warm-up each plus `rounds` timed.
@Test func bf16ChoiceKeepsTheFasterPerShape() {
    let choice = Bf16Choice()
    let clock = ScriptedClock(fp32: [3, 2, 1, 1], bf16: [2.5, 2.5, 0.5, 0.7])
    choice.clock = clock.time
    var runs = (fp32: 0, bf16: 0)
    let a = Shape(2, 16, 32, 32), b = Shape(1, 16, 32, 32)
    // fp32 best 2 vs bf16 best 2.5: fp32.
    #expect(!choice.usesBF16(a, .nChw16c, fp32: { runs.fp32 += 1 }, bf16: { runs.bf16 += 1 }))
    #expect(runs.fp32 == 1 + Bf16Choice.rounds && runs.bf16 == 1 + Bf16Choice.rounds)
    #expect(!choice.usesBF16(a, .nChw16c, fp32: { runs.fp32 += 1 }, bf16: { runs.bf16 += 1 }))
    #expect(runs.fp32 == 3, "a known shape is not measured again")
    // Another shape: fp32 best 1 vs bf16 best 0.5: bf16.
    #expect(choice.usesBF16(b, .nChw16c, fp32: {}, bf16: {}))
    #expect(choice.decisions.map(\.decision.usesBF16) == [false, true])
    #expect(choice.decisions[1].decision == Bf16Choice.Decision(fp32Seconds: 1, bf16Seconds: 0.5))
}

/// Through a U-Net: the layers whose injected bf16 time is lower choose bf16 and run the bf16
/// kernel, the others run fp32 exactly; the summary names the bf16 layers.
@Test(.enabled(if: CPUFeatures.hasBF16))
func bf16ChoiceRunsEachUnitAtItsChosenPrecision() {
    let net = UNet(UNetConfiguration(inputChannels: 4, classes: 3, widths: [16, 32], bottleneckWidth: 32, bottleneckDilations: [1, 2]), seed: 11)
    var rng = SplitMix64(seed: 3)
    let x = Tensor(shape: Shape(2, 4, 32, 32), layout: .nchw)
    x.setNCHW(rng.uniform(x.shape.count, -2, 2).map(Float.init))
    _ = net(x)
    net.isTraining = false
    let expected = net(x).nchwValues()
    Bf16Inference.install(in: net, choosing: true)
    let units = Int8Calibration.units(of: net)
    #expect(Bf16Inference.summary(of: net) == nil, "nothing measured yet")
    let bottleneck = Set(units.map(\.name).filter { $0.hasPrefix("bottleneck") })
    for (name, unit) in units {
        // bf16 faster in the bottleneck only.
        unit.bf16Choice!.clock = { isBF16, run in run(); return isBF16 == bottleneck.contains(name) ? 1 : 2 }
    }
    let got = net(x).nchwValues()
    #expect(Bf16Inference.chosen(in: net).bf16 == units.map(\.name).filter { bottleneck.contains($0) })
    #expect(Bf16Inference.summary(of: net) == "bf16 per-layer choice: bf16 in \(bottleneck.count) of \(units.count) layers (\(units.map(\.name).filter { bottleneck.contains($0) }.joined(separator: ", "))), fp32 in the rest (the faster, measured at first use)")
    #expect(got != expected, "the bottleneck ran in bf16")
    for (name, unit) in units {  // the losing precision's plans were released
        if bottleneck.contains(name) {
            #expect(unit.foldedKernel?.cachedPlanPrecisions == [], "\(name) keeps its fp32 plan")
        } else {
            #expect(unit.bf16!.implementation == "-", "\(name) keeps its bf16 plan")
        }
    }
    // All fp32 by choice: exactly the fp32 logits.
    Bf16Inference.install(in: net, choosing: true)
    for (_, unit) in units { unit.bf16Choice!.clock = { isBF16, run in run(); return isBF16 ? 2 : 1 } }
    #expect(net(x).nchwValues() == expected)
    #expect(Bf16Inference.chosen(in: net).bf16.isEmpty)
}
