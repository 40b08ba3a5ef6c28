import Engine
import Foundation

/// bf16 inference of a network's conv–BN–ReLU units (`--precision bf16`): each unit's folded
/// weights are rounded to bf16 once, its Float32 input is reordered to bf16 by oneDNN, sums,
/// bias and output stay Float32 (`Bf16ConvolutionKernel`). The 1×1 head, pooling, upsampling
/// and concat stay Float32. No calibration: bf16 keeps Float32's range (8 bits of mantissa).
/// With `choosing`, each unit keeps the faster of bf16 and fp32 per input shape (`Bf16Choice`).
public enum Bf16Inference {
    /// Runs every unit in bf16 (weights as they are now; later changes are not seen), or, with
    /// `choosing`, the faster of bf16 and fp32 per unit, measured at its first input of each shape.
    public static func install(in network: any SegmentationNetwork, choosing: Bool = false) {
        for (_, unit) in Int8Calibration.units(of: network) {
            unit.bf16 = kernel(unit)
            unit.bf16Choice = choosing ? Bf16Choice() : nil
        }
    }

    /// Why `network` cannot run bf16 (it has no conv–BN–ReLU units bf16 covers: a ResNet U-Net);
    /// nil when it can.
    public static func unsupported(by network: any SegmentationNetwork) -> String? {
        Int8Calibration.units(of: network).isEmpty
            ? "bf16 covers the U-Net's and the dilated CNN's conv–BN–ReLU units, and a ResNet U-Net has none yet" : nil
    }

    /// `unit`'s bf16 convolution with its folded batch norm and fused ReLU.
    public static func kernel(_ unit: ConvBNReLU) -> Bf16ConvolutionKernel {
        var g = unit.conv.geometry
        g.bias = true
        let (w, b) = unit.inferenceWeights()
        return Bf16ConvolutionKernel(g, weight: w.value.nchwValues(), bias: b.value.nchwValues(), relu: true)
    }

    /// Back to Float32 everywhere.
    public static func uninstall(from network: any SegmentationNetwork) {
        for (_, unit) in Int8Calibration.units(of: network) { unit.bf16 = nil; unit.bf16Choice = nil }
    }

    /// The layers that chose bf16 (each at its first measured shape), in network order: in
    /// prediction, or in `training` (`Bf16Training`).
    public static func chosen(in network: any SegmentationNetwork, training: Bool = false) -> (bf16: [String], measured: Int) {
        let decided = Int8Calibration.units(of: network).compactMap { name, unit in
            (training ? unit.conv.bf16Choice : unit.bf16Choice)?.decisions.first.map { (name, $0.decision) }
        }
        return (decided.filter { $0.1.usesBF16 }.map(\.0), decided.count)
    }

    /// One line on the per-layer choice once it was measured (nil before, or without a choice).
    public static func summary(of network: any SegmentationNetwork, training: Bool = false) -> String? {
        let (bf16, measured) = chosen(in: network, training: training)
        guard measured > 0 else { return nil }
        let names = bf16.isEmpty ? "" : " (\(bf16.joined(separator: ", ")))"
        return "bf16 per-layer choice: bf16 in \(bf16.count) of \(measured) layers\(names), fp32 in the rest (the faster, measured at first use)"
    }
}

/// The per-layer choice of bf16 prediction: at a unit's first input of each shape it runs its
/// fp32 convolution (Winograd where oneDNN picks it) and its bf16 direct one once each untimed
/// (creating the primitives), then `rounds` timed runs of each, and keeps the faster (the
/// fastest run of each counts). Later inputs of that shape use the kept choice; the loser's
/// cached primitives and buffers are released at once (`dropLoser`).
public final class Bf16Choice {
    public struct Decision: Sendable, Equatable {
        public var fp32Seconds: Double
        public var bf16Seconds: Double
        public var usesBF16: Bool { bf16Seconds < fp32Seconds }
    }
    public struct Key: Hashable, Sendable {
        public var shape: Shape
        public var layout: Layout
    }
    /// The decisions, in the order the shapes came.
    public private(set) var decisions: [(key: Key, decision: Decision)] = []
    /// Seconds one run takes (its first argument: whether it is the bf16 run). Tests inject timings.
    public var clock: (_ bf16: Bool, _ run: () -> Void) -> Double = { _, run in
        let start = DispatchTime.now().uptimeNanoseconds
        run()
        return Double(DispatchTime.now().uptimeNanoseconds - start) * 1e-9
    }
    public static let rounds = 2

    public init() {}

    /// Whether bf16 is used for an input of `shape` and `layout`, measuring `fp32` and `bf16` the
    /// first time; then `dropLoser` is called once with whether the losing precision is bf16.
    public func usesBF16(_ shape: Shape, _ layout: Layout, fp32: () -> Void, bf16: () -> Void,
                         dropLoser: (_ bf16Lost: Bool) -> Void = { _ in }) -> Bool {
        let key = Key(shape: shape, layout: layout)
        if let known = decisions.first(where: { $0.key == key }) { return known.decision.usesBF16 }
        fp32(); bf16()
        var f = Double.infinity, b = Double.infinity
        for _ in 0..<Self.rounds {
            f = min(f, clock(false, fp32))
            b = min(b, clock(true, bf16))
        }
        let decision = Decision(fp32Seconds: f, bf16Seconds: b)
        decisions.append((key, decision))
        dropLoser(!decision.usesBF16)
        return decision.usesBF16
    }
}

/// bf16 training of a network's conv–BN–ReLU convolutions (`train --precision bf16|auto`):
/// bf16 forward, backward-data and backward-weights (`ConvolutionKernel.bf16`: bf16 operands,
/// Float32 outputs and weight gradients); the master weights, the optimiser, the loss, batch
/// norm (statistics and running averages), pooling, upsampling and the 1×1 head stay Float32.
public enum Bf16Training {
    /// bf16 in every unit's convolution, or with `choosing`, the faster of bf16 and fp32 per
    /// unit, measured at its first training input of each shape (`Conv2d.bf16Choice`).
    /// Returns the number of units.
    @discardableResult
    public static func install(in network: any SegmentationNetwork, choosing: Bool) -> Int {
        let units = Int8Calibration.units(of: network)
        for (_, unit) in units {
            unit.conv.bf16Choice = choosing ? Bf16Choice() : nil
            unit.conv.kernel.bf16 = !choosing
        }
        return units.count
    }
}
