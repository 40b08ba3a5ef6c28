import Core
import Foundation
import Models

/// Pretrained encoder weights (`model.encoder_weights`, `--encoder-weights`) put into a
/// network's `encoder.…` tensors before training. The file is a safetensors state dict of a
/// torchvision or timm ResNet (`conv1.weight`, `bn1.*`, `layer1.0.conv1.weight`, …; its
/// classifier `fc.*` is left out, said once) or any state dict with smp's encoder names
/// (`encoder.conv1.weight`, …; an smp model's `decoder.*` and `segmentation_head.*` are left
/// out, said once). `num_batches_tracked` scalars are not used.
///
/// Weights for 3 bands on a scene of N bands adapt the first convolution as smp's
/// `patch_first_conv` does: band i takes RGB channel i mod 3, all scaled by 3/N (N = 1: the
/// sum of the three), so that the first layer's response keeps its size.
public struct EncoderWeights: Sendable {
    public let path: String
    /// The file's `FileIdentity`, for the training fingerprint.
    public let identity: String
    /// The file's tensors, under the network's names.
    public private(set) var tensors: [String: SafeTensors.Entry] = [:]
    /// The file's I64 scalars, under the network's names.
    public private(set) var integers: [String: Int64] = [:]
    /// What was left out of the file, said when the weights are applied.
    public private(set) var notices: [String] = []
    /// Names neither encoder nor a known head: refused by `apply`.
    public private(set) var foreign: [String] = []
    /// Whether the file's names are torchvision's (`conv1.weight`), given `encoder.` here.
    public private(set) var prefixed = false

    static let firstConv = "encoder.conv1.weight"

    /// Reads `path` and renames its tensors to smp's encoder names.
    public init(path: String) throws {
        self.path = path
        let contents = try SafeTensors.contents(path)
        identity = "\(FileIdentity.of(path))"
        let names = Array(contents.tensors.keys) + Array(contents.integers.keys)
        let smpNames = names.contains { $0.hasPrefix("encoder.") }
        prefixed = !smpNames
        let heads = smpNames ? ["decoder.", "segmentation_head.", "classification_head."] : ["fc."]
        var left: [String] = []
        func rename(_ name: String) -> String? {
            if heads.contains(where: { name.hasPrefix($0) }) { left.append(name); return nil }
            if smpNames && !name.hasPrefix("encoder.") { foreign.append(name); return nil }
            return smpNames ? name : "encoder." + name
        }
        for (name, t) in contents.tensors { if let n = rename(name) { tensors[n] = t } }
        for (name, v) in contents.integers { if let n = rename(name) { integers[n] = v } }
        if !left.isEmpty {
            let kinds = Set(left.map { String($0.prefix { $0 != "." }) }).sorted().joined(separator: ", ")
            notices.append("\(path): \(left.count) tensors of \(kinds) are not part of the encoder and are not used")
        }
    }

    /// Copies the weights into `network`'s encoder, checking names (missing and unexpected
    /// ones listed), shapes and values; returns the notices to print (left-out tensors, an
    /// adapted first convolution).
    public func apply(to network: any SegmentationNetwork) throws -> [String] {
        let own = network.namedParameters + network.namedBuffers
        let encoder = own.map(\.0).filter { $0.hasPrefix("encoder.") }
        let hint = "model.encoder_weights takes the state dict of a torchvision or timm ResNet of the same depth as model.encoder "
            + "(conv1.weight, bn1.*, layer1.0.conv1.weight, …) or one with smp's encoder names (encoder.conv1.weight, …)"
        guard !encoder.isEmpty else {
            throw TerraSegError(.invalidArgument, path: path, problem: "the network has no pretrained encoder to initialise",
                                hint: "Encoder weights are for ResNet U-Nets (model.kind resnet_unet); remove model.encoder_weights")
        }
        let steps = Set(ModelBundle.batchNormSteps(of: network).map(\.name))
        let missing = encoder.filter { tensors[$0] == nil }
        let unexpected = Set(tensors.keys).subtracting(encoder).union(Set(integers.keys).subtracting(steps))
        // Names as the file spells them.
        func inFile(_ names: [String]) -> [String] { prefixed ? names.map { String($0.dropFirst("encoder.".count)) } : names }
        if let problem = ModelBundle.namesProblem(missing: inFile(missing), unexpected: foreign + inFile(unexpected.sorted())) {
            throw TerraSegError(.invalidArgument, path: path, problem: problem, hint: hint)
        }
        var all = Dictionary(uniqueKeysWithValues: ModelBundle.tensors(of: network).map { ($0.name, $0.entry) })
        var notices = notices
        let firstShape = all[Self.firstConv]!.shape
        for (name, t) in tensors { all[name] = t }
        if let adapted = try adaptedFirstConvolution(to: firstShape) {
            all[Self.firstConv] = adapted.entry
            notices.append(adapted.notice)
        }
        try ModelBundle.load(all, into: network, path: path, hint: hint)
        return notices + ["Encoder initialised from \(path) (\(encoder.count) tensors)"]
    }

    /// The first convolution for the network's N bands from weights for 3 (smp's
    /// `patch_first_conv`); nil when the file already has N. Other band counts are refused.
    func adaptedFirstConvolution(to expected: [Int]) throws -> (entry: SafeTensors.Entry, notice: String)? {
        let given = tensors[Self.firstConv]!
        guard given.shape != expected, given.shape.count == 4, expected.count == 4,
              given.shape[0] == expected[0], given.shape[2...] == expected[2...] else { return nil }
        let m = given.shape[1], n = expected[1]
        guard m == 3 else {
            throw TerraSegError(.invalidArgument, path: path, problem: "the encoder's first convolution takes \(m) bands but the scenes have \(n)",
                                hint: "Use encoder weights for \(n) bands, or 3-band (RGB) weights, which are adapted to any band count")
        }
        return (Self.repeatBands(given, to: n),
                n == 1 ? "\(path): conv1 takes 3 bands, the scenes have 1: its weights are summed over the 3 (as smp's patch_first_conv)"
                       : "\(path): conv1 takes 3 bands, the scenes have \(n): band i takes RGB weight i mod 3, scaled by 3/\(n) (as smp's patch_first_conv)")
    }

    /// smp's `patch_first_conv` for pretrained weights: (O, 3, k, k) → (O, N, k, k), channel i
    /// taking channel i mod 3 scaled by 3/N; N = 1 sums the three.
    public static func repeatBands(_ w: SafeTensors.Entry, to n: Int) -> SafeTensors.Entry {
        let o = w.shape[0], plane = w.shape[2] * w.shape[3]
        var out = [Float](repeating: 0, count: o * n * plane)
        for f in 0..<o {
            for c in 0..<n {
                for k in 0..<plane {
                    let src = { (ch: Int) in w.values[(f * 3 + ch) * plane + k] }
                    out[(f * n + c) * plane + k] = n == 1 ? src(0) + src(1) + src(2) : src(c % 3) * (3 / Float(n))
                }
            }
        }
        return SafeTensors.Entry(shape: [o, n] + w.shape[2...], values: out)
    }
}
