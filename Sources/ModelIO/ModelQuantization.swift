import Core
import Engine
import Models

/// The `quantization` section of model.json, written by `terraseg quantize`: which layers run in
/// int8 and the calibrated step of each int8 layer's u8 input. Weights stay Float32 in
/// model.safetensors (one file, still loadable by PyTorch); their per-channel s8 steps are
/// recomputed at load (max |w| / 127 after folding the batch norm: deterministic and cheap).
public struct ModelQuantization: Codable, Sendable, Equatable {
    public struct Layer: Codable, Sendable, Equatable {
        /// A conv–BN–ReLU unit by its parameters' prefix ("enc1.conv2"), or "head".
        public var name: String
        /// "int8" or "fp32".
        public var precision: String
        /// int8 only: real value of one u8 code of the layer's input.
        public var inputStep: Float?
        /// fp32 only: why the layer stays fp32.
        public var reason: String?
        public init(name: String, precision: String, inputStep: Float? = nil, reason: String? = nil) {
            self.name = name; self.precision = precision; self.inputStep = inputStep; self.reason = reason
        }
    }

    public static let schemeName = "u8 activations, s8 per-channel symmetric weights"
    public var scheme = ModelQuantization.schemeName
    /// The calibration rule, in words.
    public var rule = "input step = \(Int8Calibration.percentile)th percentile of the layer's inputs / 255"
    public var calibrationScenes: [String]
    public var calibrationPatches: Int
    public var layers: [Layer]

    public init(calibrationScenes: [String], calibrationPatches: Int, layers: [Layer]) {
        self.calibrationScenes = calibrationScenes; self.calibrationPatches = calibrationPatches; self.layers = layers
    }

    /// The section for `architecture` with these calibrated steps: the first unit and the head fp32.
    public init(architecture: ModelArchitecture, steps: [String: Float], scenes: [String], patches: Int) {
        let names = Int8Calibration.unitNames(architecture)
        var layers = names.map { name in
            steps[name].map { Layer(name: name, precision: "int8", inputStep: $0) }
                ?? Layer(name: name, precision: "fp32", reason: "input is the normalised bands (signed)")
        }
        layers.append(Layer(name: "head", precision: "fp32", reason: "1×1 convolution to the logits"))
        self.init(calibrationScenes: scenes, calibrationPatches: patches, layers: layers)
    }

    /// int8 layers and their input steps.
    public var int8Steps: [String: Float] {
        Dictionary(uniqueKeysWithValues: layers.compactMap { l in l.inputStep.map { (l.name, $0) } })
    }

    /// What disagrees with `architecture` or itself: one entry per unit and the head, in order;
    /// a known precision; every int8 step finite and > 0 (a step reaches a division); no step on
    /// fp32 layers; only units that can run int8 marked int8. Nil when all agree.
    public func problem(for architecture: ModelArchitecture) -> String? {
        let names = Int8Calibration.unitNames(architecture) + ["head"]
        guard layers.map(\.name) == names else {
            return "layers are \(layers.map(\.name).prefix(4).joined(separator: ", "))…, the network's are \(names.prefix(4).joined(separator: ", "))… (\(layers.count) vs \(names.count))"
        }
        guard calibrationPatches > 0 else { return "calibration_patches is \(calibrationPatches)" }
        for (i, l) in layers.enumerated() {
            switch l.precision {
            case "int8":
                guard i > 0, l.name != "head" else { return "layer \(l.name) cannot run in int8 (its input is signed or it is the head)" }
                guard let s = l.inputStep else { return "int8 layer \(l.name) has no input_step" }
                guard s.isFinite, s > 0 else { return "int8 layer \(l.name) has input_step \(s); it must be finite and > 0" }
            case "fp32":
                if l.inputStep != nil { return "fp32 layer \(l.name) has an input_step" }
            default:
                return "layer \(l.name) has precision '\(l.precision)'; expected int8 or fp32"
            }
        }
        return nil
    }
}

/// Arithmetic of prediction (`terraseg predict --precision`).
public enum Precision: String, CaseIterable, Codable, Sendable {
    /// Float32 everywhere (the default).
    case fp32
    /// bf16 convolutions with Float32 sums (`Bf16Inference`); refused without AVX512_BF16/AMX.
    case bf16
    /// int8 convolutions with the bundle's calibration; refused without it or without VNNI.
    case int8
    /// int8 when the bundle is quantized and the CPU has VNNI, else bf16 (per-layer choice)
    /// where the CPU has native bf16, else fp32; says which.
    case auto

    /// What this precision runs as on this CPU (`int8Ready`: the bundle is or will be calibrated
    /// and the CPU has VNNI): `auto` resolved; refusals of bf16 and int8 are not decided here.
    public func effective(int8Ready: Bool) -> Precision {
        guard self == .auto else { return self }
        return int8Ready ? .int8 : Precision.bf16Unavailable == nil ? .bf16 : .fp32
    }

    /// Why this CPU cannot run int8 (oneDNN's effective ISA lacks VNNI); nil when it can.
    public static var int8Unavailable: String? {
        CPUFeatures.hasInt8DotProduct ? nil
            : "this CPU (oneDNN ISA \(CPUFeatures.effectiveISA)) has no VNNI int8 dot products, without which oneDNN 2.6's int8 convolutions saturate"
    }

    /// Why this CPU cannot run bf16 (no AVX512_BF16 or AMX for oneDNN); nil when it can.
    public static var bf16Unavailable: String? {
        CPUFeatures.hasBF16 ? nil
            : "this CPU (oneDNN ISA \(CPUFeatures.effectiveISA)) has no native bf16 arithmetic (AVX512_BF16 or AMX), where oneDNN's bf16 convolutions are emulated and slower than fp32"
    }
}

extension ModelBundle {
    /// Builds the network at `precision`: for int8, the bundle's int8 layers run in int8.
    /// Returns what was chosen and, for `auto` or a fallback, a notice saying why.
    public func network(directory: String, precision: Precision) throws
        -> (network: any SegmentationNetwork, chosen: Precision, notice: String?) {
        let net = try network(directory: directory)
        if precision == .bf16 || precision.effective(int8Ready: quantization != nil && Precision.int8Unavailable == nil) == .bf16 {
            if let why = Precision.bf16Unavailable {
                throw TerraSegError(.invalidArgument, path: directory, problem: "--precision bf16 is refused: \(why)",
                                    hint: "Use --precision fp32 (or auto, which picks what this CPU has)")
            }
            if let why = Bf16Inference.unsupported(by: net) {
                guard precision == .auto else {
                    throw TerraSegError(.invalidArgument, path: directory, problem: "--precision bf16 is refused: \(why)",
                                        hint: "Use --precision fp32 (or auto, which falls back by itself)")
                }
                return (net, .fp32, "Precision auto: fp32, because \(why)")
            }
            Bf16Inference.install(in: net, choosing: true)
            let count = Int8Calibration.units(of: net).count
            let because = precision == .auto ? " (no int8: \(quantization == nil ? "the bundle has no int8 calibration" : "no VNNI"))" : ""
            return (net, .bf16, "Precision \(precision.rawValue): bf16 or fp32 per layer, the faster at first use, in \(count) of \(count + 1) layers, the head fp32 (\(CPUFeatures.effectiveISA))\(because)")
        }
        let why: String?
        if quantization == nil {
            why = "the bundle \(directory) has no int8 calibration"
        } else {
            why = Precision.int8Unavailable
        }
        switch (precision, why) {
        case (.fp32, _), (.bf16, _):
            return (net, .fp32, nil)
        case (.int8, let why?):
            let fix = quantization == nil
                ? "Run `terraseg quantize --model \(directory) --calibration SCENE… --output \(directory)-int8` and predict with that bundle, or use --precision fp32"
                : "Use --precision fp32 (or auto, which falls back by itself)"
            throw TerraSegError(.invalidArgument, path: directory, problem: "--precision int8 is refused: \(why)", hint: fix)
        case (.auto, let why?):
            return (net, .fp32, "Precision auto: fp32, because \(why), and \(Precision.bf16Unavailable ?? "bf16 is not used")")
        case (.int8, nil), (.auto, nil):
            Int8Calibration.install(quantization!.int8Steps, in: net)
            let count = quantization!.int8Steps.count
            return (net, .int8, "Precision \(precision.rawValue): int8 in \(count) of \(quantization!.layers.count) layers (VNNI, \(CPUFeatures.effectiveISA))")
        }
    }
}
