import Core
import Engine
import Foundation
import GeoRaster
import Models
import Tiling

/// A trained model as a directory: `model.safetensors` (weights and batch-norm statistics,
/// F32, loadable by Python's safetensors) and `model.json` (everything prediction needs:
/// architecture, input bands, normalisation, classes, patch size, receptive field, and
/// provenance). Written to a temporary directory and renamed into place when complete.
///
/// Tensor names follow the network's structure, e.g. for a U-Net `enc1.conv1.weight`
/// (out, in, 3, 3), `enc1.bn1.weight`/`bias`/`running_mean`/`running_var` (C), …,
/// `bottleneck.conv3.weight`, `dec4.conv1.weight` (deepest decoder level = depth),
/// `dec4.up.weight`/`bias` with learned upsampling ((in, out, 2, 2) transposed, (out, in, 1, 1)
/// before max-unpooling), `head.weight` (K, C, 1, 1), `head.bias` (K); the dilated CNN uses
/// `body.convN`/`body.bnN` and `head`. Shapes are PyTorch's (`nn.Conv2d`,
/// `nn.ConvTranspose2d`, `nn.BatchNorm2d`).
public struct ModelBundle: Codable, Sendable {
    public static let formatName = "terraseg-model"
    public static let formatVersion = 1
    public static let weightsFile = "model.safetensors"
    public static let metadataFile = "model.json"

    public struct Provenance: Codable, Sendable {
        public var terrasegVersion: String
        public var created: String
        public var trainingData: [String]
        public var epochs: Int
        public var bestEpoch: Int?
        public var seed: UInt64
        /// Final validation metrics (overall accuracy, mean IoU, per-class IoU, …).
        public var metrics: [String: Double]
        public var wallSeconds: Double?

        public init(terrasegVersion: String, created: String = ISO8601DateFormatter().string(from: Date()),
                    trainingData: [String], epochs: Int, bestEpoch: Int? = nil, seed: UInt64,
                    metrics: [String: Double] = [:], wallSeconds: Double? = nil) {
            self.terrasegVersion = terrasegVersion
            self.created = created
            self.trainingData = trainingData
            self.epochs = epochs
            self.bestEpoch = bestEpoch
            self.seed = seed
            self.metrics = metrics
            self.wallSeconds = wallSeconds
        }
    }

    public var format = ModelBundle.formatName
    public var formatVersion = ModelBundle.formatVersion
    public var architecture: ModelArchitecture
    /// 1-based bands of the input scenes, in network channel order.
    public var bands: [Int]
    public var bandDescriptions: [String]
    public var normalization: Normalizer
    public var statistics: BandStatistics?
    public var classes: ClassMap
    public var patchSize: Int
    public var receptiveField: Int
    public var alignment: Int
    public var provenance: Provenance
    /// How the training scenes' band sources were put together (names, order, resampling,
    /// grid resolution); `predict` reads new scenes the same way. Absent in older bundles.
    public var recipe: SceneRecipe? = nil
    /// The training scenes' band count, data type and pixel size (checked at predict); nil
    /// in bundles written before it existed.
    public var sceneProfile: SceneProfile?
    /// int8 layers and their calibrated activation steps (`terraseg quantize`); nil: fp32 only.
    public var quantization: ModelQuantization? = nil

    public init(architecture: ModelArchitecture, bands: [Int], bandDescriptions: [String], normalization: Normalizer,
                statistics: BandStatistics?, classes: ClassMap, patchSize: Int, provenance: Provenance) {
        self.architecture = architecture
        self.bands = bands
        self.bandDescriptions = bandDescriptions
        self.normalization = normalization
        self.statistics = statistics
        self.classes = classes
        self.patchSize = patchSize
        receptiveField = architecture.receptiveField
        alignment = architecture.alignment
        self.provenance = provenance
    }

    // MARK: - Weights

    /// Parameters and buffers of `network` as safetensors entries with PyTorch shapes.
    public static func tensors(of network: any SegmentationNetwork) -> [(name: String, entry: SafeTensors.Entry)] {
        let norms = batchNorms(of: network)
        return (network.namedParameters + network.namedBuffers).map { name, p in
            (name, SafeTensors.Entry(shape: torchShape(name: name, p.value.shape, batchNorms: norms), values: p.value.nchwValues()))
        }
    }

    /// The names of the network's batch norms (`enc1.bn1`, `encoder.layer1.0.bn1`,
    /// `decoder.blocks.0.conv1.1`): the prefixes of its `running_mean` buffers.
    public static func batchNorms(of network: any SegmentationNetwork) -> Set<String> {
        Set(network.namedBuffers.map(\.0).filter { $0.hasSuffix(".running_mean") }.map { String($0.dropLast(".running_mean".count)) })
    }

    /// PyTorch's `num_batches_tracked` of every batch norm (I64 scalars, 0), which
    /// `load_state_dict(strict=True)` expects; TerraSeg does not use them.
    public static func batchNormSteps(of network: any SegmentationNetwork) -> [(name: String, value: Int64)] {
        batchNorms(of: network).sorted().map { ($0 + ".num_batches_tracked", 0) }
    }

    /// Convolution weights keep (O, C, kh, kw); batch-norm tensors and biases are vectors.
    static func torchShape(name: String, _ s: Shape, batchNorms: Set<String>) -> [Int] {
        let owner = name.split(separator: ".").dropLast().joined(separator: ".")
        let isConvWeight = name.hasSuffix(".weight") && !batchNorms.contains(owner)
        return isConvWeight ? [s.n, s.c, s.h, s.w] : [s.count]
    }

    /// Copies `tensors` into `network`, checking every name, exact shape and value (NaN or
    /// infinite weights would make every pixel one class without a word). Missing and
    /// unexpected names are listed together; `integers` may hold each batch norm's
    /// `num_batches_tracked` (PyTorch's step count, not used). `hint` says where the weights
    /// should have come from.
    public static func load(_ tensors: [String: SafeTensors.Entry], integers: [String: Int64] = [:], into network: any SegmentationNetwork,
                            path: String, hint: String = "The weights do not belong to this architecture; use the bundle's own model.json") throws {
        let expected = network.namedParameters + network.namedBuffers
        let steps = Set(batchNormSteps(of: network).map(\.name))
        let missing = expected.map(\.0).filter { tensors[$0] == nil }
        // A step count converted to float along with the weights is still a step count.
        let extra = Set(tensors.keys).subtracting(expected.map(\.0)).subtracting(steps).union(Set(integers.keys).subtracting(steps))
        if let problem = namesProblem(missing: missing, unexpected: extra.sorted()) {
            throw TerraSegError(.readFailed, path: path, problem: problem, hint: hint)
        }
        let norms = batchNorms(of: network)
        for (name, p) in expected {
            let t = tensors[name]!
            let shape = torchShape(name: name, p.value.shape, batchNorms: norms)
            guard t.shape == shape else {
                throw TerraSegError(.readFailed, path: path, problem: "tensor '\(name)' has shape \(t.shape), the network expects \(shape)", hint: hint)
            }
            if let bad = t.values.firstIndex(where: { !$0.isFinite }) {
                throw TerraSegError(.readFailed, path: path, problem: "tensor '\(name)' holds \(t.values[bad]) at element \(bad)",
                                     hint: "The weights are damaged (training diverged or the file was altered); retrain or restore them")
            }
            p.set(t.values)
        }
    }

    /// "the weights have no tensors a, b (and 3 more); unexpected tensors c": nil when both are empty.
    public static func namesProblem(missing: [String], unexpected: [String], shown: Int = 6) -> String? {
        func list(_ names: [String]) -> String {
            names.prefix(shown).map { "'\($0)'" }.joined(separator: ", ") + (names.count > shown ? " (and \(names.count - shown) more)" : "")
        }
        var parts: [String] = []
        if !missing.isEmpty { parts.append("the weights have no tensor\(missing.count > 1 ? "s" : "") \(list(missing))") }
        if !unexpected.isEmpty { parts.append("unexpected tensor\(unexpected.count > 1 ? "s" : "") \(list(unexpected))") }
        return parts.isEmpty ? nil : parts.joined(separator: "; ")
    }

    // MARK: - Files

    static func encoder() -> JSONEncoder {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
        e.keyEncodingStrategy = .convertToSnakeCase
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }

    static func decoder() -> JSONDecoder {
        let d = JSONDecoder()
        d.keyDecodingStrategy = .convertFromSnakeCase
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }

    /// Writes the bundle directory `path` atomically: a temporary sibling directory is
    /// filled and put in place of `path` (`AtomicFile.replaceDirectory`) only when every file
    /// is complete, so `path` holds the previous bundle or the new one whole, never neither.
    /// `extraFiles` (name → contents) are written into the bundle too (metrics log, options).
    /// Replacing an existing bundle is said on standard error ("Replaced the existing bundle …").
    public func write(network: any SegmentationNetwork, to path: String, extraFiles: [String: Data] = [:]) throws {
        let fm = FileManager.default
        let tmp = try AtomicFile.createTemporaryDirectory(for: path)
        do {
            // A ResNet U-Net's weights are smp's state dict, loadable with strict=True.
            let steps = if case .resnetUNet = architecture { ModelBundle.batchNormSteps(of: network) } else { [(name: String, value: Int64)]() }
            try SafeTensors.write(ModelBundle.tensors(of: network), integers: steps,
                                  metadata: ["format": ModelBundle.formatName, "architecture": architecture.name],
                                  to: tmp + "/" + ModelBundle.weightsFile)
            try AtomicFile.write(ModelBundle.encoder().encode(self), to: tmp + "/" + ModelBundle.metadataFile)
            for (name, data) in extraFiles { try AtomicFile.write(data, to: tmp + "/" + name) }
            // An existing bundle is swapped with the new one in one step, then deleted; said once.
            let replacing = fm.fileExists(atPath: path)
            try AtomicFile.replaceDirectory(path, with: tmp)
            if replacing { FileHandle.standardError.write(Data("Replaced the existing bundle \(path)\n".utf8)) }
        } catch {
            try? fm.removeItem(atPath: tmp)
            throw error
        }
    }

    /// Reads `model.json` of the bundle directory (or the file itself) and checks that its
    /// parts agree (`consistencyProblem`). The ranges of the architecture's settings are the
    /// pipeline schema's, checked above this module (Pipeline's `ModelBundle.issues()`).
    public static func read(_ path: String) throws -> ModelBundle {
        let json = path.hasSuffix(".json") ? path : path + "/" + metadataFile
        if !path.hasSuffix(".json"), let (problem, hint) = InputFile.problem(path, expecting: .directory) {
            throw TerraSegError(problem == "not found" ? .notFound : .readFailed, path: path, problem: "no model bundle here: \(problem)",
                                 hint: problem == "not found" ? "Give the directory written by `terraseg train --output`" : hint)
        }
        let data: Data
        do {
            data = try InputFile.read(json)
        } catch let e as TerraSegError where e.kind == .notFound {
            throw TerraSegError(.notFound, path: json, problem: "no model bundle here",
                                 hint: "Give the directory written by `terraseg train --output`")
        }
        let bundle: ModelBundle
        do {
            bundle = try decoder().decode(ModelBundle.self, from: data)
        } catch {
            throw TerraSegError(.readFailed, path: json, problem: "the bundle's metadata is not valid: \(error)",
                                 hint: "The bundle may be damaged; retrain or restore it")
        }
        guard bundle.format == formatName, bundle.formatVersion <= formatVersion else {
            throw TerraSegError(.readFailed, path: json, problem: "not a TerraSeg model bundle of a version this build reads (\(bundle.format) v\(bundle.formatVersion))",
                                 hint: "Use the TerraSeg version that wrote it, or retrain")
        }
        if let problem = bundle.consistencyProblem() {
            throw TerraSegError(.readFailed, path: json, problem: problem, hint: "The bundle may be damaged; retrain or restore it")
        }
        return bundle
    }

    /// What in model.json disagrees with itself: bands, normalisation arrays and the
    /// network's input channels; the class list and the network's classes. Nil when all agree.
    public func consistencyProblem() -> String? {
        let k = bands.count
        guard k > 0 else { return "bands is empty" }
        guard architecture.inputChannels == k else { return "the network takes \(architecture.inputChannels) channels but bands lists \(k)" }
        for (name, values) in [("offset", normalization.offset), ("scale", normalization.scale),
                               ("lower", normalization.lower), ("upper", normalization.upper)] {
            guard values.count == k else { return "normalization.\(name) has \(values.count) values for \(k) bands" }
            if let bad = values.first(where: { !$0.isFinite }) { return "normalization.\(name) holds \(bad)" }
        }
        if let s = statistics, s.bandCount != k { return "statistics cover \(s.bandCount) bands for \(k) bands" }
        do {
            _ = try ClassMap(classes: classes.classes, ignoreValues: classes.ignoreValues)
        } catch let e as TerraSegError {
            return "classes: \(e.problem)"
        } catch {
            return "classes: \(error)"
        }
        guard architecture.classes == classes.count else { return "the network has \(architecture.classes) classes but classes lists \(classes.count)" }
        if let problem = quantization?.problem(for: architecture) { return "quantization: \(problem)" }
        return nil
    }

    /// Builds the network described by the bundle and loads its weights.
    public func network(directory: String) throws -> any SegmentationNetwork {
        let net = architecture.build(seed: provenance.seed)
        let weights = directory + "/" + ModelBundle.weightsFile
        let contents = try SafeTensors.contents(weights)
        try ModelBundle.load(contents.tensors, integers: contents.integers, into: net, path: weights)
        net.isTraining = false
        return net
    }
}
