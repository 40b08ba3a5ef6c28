import Engine

/// Post-training int8 quantization of a network's conv–BN–ReLU units.
///
/// Rule: a unit's input step is the 99.99th percentile of its inputs over the calibration
/// batches divided by 255 (u8 codes 0…255; inputs are non-negative), so one value in 10⁴ saturates
/// and the rest keep a fine step; weights get per-output-channel symmetric steps
/// (`Int8Weights`). The first unit stays fp32 (its input, normalised bands, is signed) and the
/// 1×1 head is not a unit (its output is the logits; a few channels, < 1 % of the work).
public enum Int8Calibration {
    public static let percentile = 99.99

    /// The conv–BN–ReLU units named by their parameters' prefix ("enc1.conv1",
    /// "bottleneck.conv2", "dec4.conv1", "body.conv3"), in forward order.
    public static func units(of network: any SegmentationNetwork) -> [(name: String, unit: ConvBNReLU)] {
        func named(_ prefix: String, _ block: ConvBlock) -> [(name: String, unit: ConvBNReLU)] {
            block.units.enumerated().map { ("\(prefix).conv\($0.offset + 1)", $0.element) }
        }
        switch network {
        case let u as UNet:
            let levels = u.encoders.count
            return u.encoders.enumerated().flatMap { named("enc\($0.offset + 1)", $0.element) }
                + named("bottleneck", u.bottleneck)
                + u.decoders.enumerated().flatMap { named("dec\(levels - $0.offset)", $0.element) }
        case let d as DilatedNet:
            return named("body", d.body)
        default:
            return []
        }
    }

    /// Units that may run in int8: all but the first (whose input is signed).
    public static func quantizable(_ network: any SegmentationNetwork) -> [(name: String, unit: ConvBNReLU)] {
        Array(units(of: network).dropFirst())
    }

    /// The names `units(of:)` gives a network of this architecture, without building it.
    public static func unitNames(_ architecture: ModelArchitecture) -> [String] {
        func block(_ prefix: String, _ count: Int) -> [String] { (1...count).map { "\(prefix).conv\($0)" } }
        switch architecture {
        case .unet(let c):
            let levels = c.widths.count
            return (1...levels).flatMap { block("enc\($0)", 2) } + block("bottleneck", c.bottleneckDilations.count)
                + (1...levels).reversed().flatMap { block("dec\($0)", 2) }
        case .dilated(let c):
            return block("body", c.dilations.count)
        case .resnetUNet:
            return []  // fp32 only
        }
    }

    /// Runs `batches` (N, C, H, W NCHW, normalised) through the network in inference mode and
    /// returns each quantizable unit's input step by the rule above.
    public static func calibrate(_ network: any SegmentationNetwork, batches: [Tensor]) -> [String: Float] {
        let calibrator = Int8Calibrator(network)
        let wasTraining = network.isTraining
        network.isTraining = false
        for b in batches { _ = network(b) }
        network.isTraining = wasTraining
        return calibrator.finish()
    }

    /// Runs the named units in int8 with these input steps (folding and quantizing their
    /// weights now); units not named stay fp32. Unknown names are a programming error: bundles
    /// are checked against `quantizable` before this. `chained`: a U-Net passes u8 between its
    /// int8 layers where it can (`Int8UNetChain`), else each unit quantizes its Float32 input.
    public static func install(_ steps: [String: Float], in network: any SegmentationNetwork, chained: Bool = true) {
        let targets = Dictionary(uniqueKeysWithValues: quantizable(network).map { ($0.name, $0.unit) })
        for (name, step) in steps {
            guard let unit = targets[name] else { preconditionFailure("no quantizable unit \(name)") }
            unit.int8 = Int8ConvUnit(unit, inputStep: step)
        }
        if let u = network as? UNet { u.int8Chain = chained ? Int8UNetChain.make(u) : nil }
    }

    /// Back to fp32 everywhere.
    public static func uninstall(from network: any SegmentationNetwork) {
        for u in units(of: network) { u.unit.int8 = nil }
        (network as? UNet)?.int8Chain = nil
    }
}

/// Watches the inputs of a network's quantizable units while it predicts (any way: windows,
/// `calibrate`), then gives their steps. `images` counts the first unit's input images. Every
/// unit runs blocked meanwhile (no `channelsLast`): the samples take values as laid out,
/// padding included, so the steps do not depend on which units would run NHWC.
public final class Int8Calibrator {
    private let targets: [(name: String, unit: ConvBNReLU)]
    private let samples: [ValueSample]
    /// Every unit and its `channelsLast`, given back by `finish`.
    private let layouts: [(unit: ConvBNReLU, channelsLast: Bool)]
    public private(set) var images = 0

    public init(_ network: any SegmentationNetwork) {
        targets = Int8Calibration.quantizable(network)
        samples = targets.map { _ in ValueSample() }
        layouts = Int8Calibration.units(of: network).map { ($0.unit, $0.unit.channelsLast) }
        for u in layouts { u.unit.channelsLast = false }
        for (i, (t, s)) in zip(targets, samples).enumerated() {
            t.unit.inputObserver = { [unowned self] x in
                s.add(x)
                if i == 0 { self.images += x.shape.n }
            }
        }
    }

    /// Stops watching; each unit's input step.
    public func finish() -> [String: Float] {
        for t in targets { t.unit.inputObserver = nil }
        for u in layouts { u.unit.channelsLast = u.channelsLast }
        var steps: [String: Float] = [:]
        for (t, s) in zip(targets, samples) { steps[t.name] = s.step(percentile: Int8Calibration.percentile) }
        return steps
    }
}

/// A deterministic subsample (about 64 Ki values per call, evenly strided) of the values a
/// unit sees, and their exact maximum.
final class ValueSample {
    private var values: [Float] = []
    private var top: Float = 0

    func add(_ t: Tensor) {
        let n = t.physicalCount, stride = max(1, n / 65_536), p = t.data
        var i = 0
        while i < n { values.append(p[i]); i += stride }
        for j in 0..<n where p[j] > top { top = p[j] }
    }

    /// The `percentile`-th value / 255, at most the maximum / 255; 1 when nothing positive was seen.
    func step(percentile: Double) -> Float {
        guard top > 0, !values.isEmpty else { return 1 }
        values.sort()
        let i = min(values.count - 1, Int((percentile / 100 * Double(values.count - 1)).rounded(.up)))
        let v = min(top, values[i])
        return (v > 0 ? v : top) / 255
    }
}
