import Core
import Engine
import Foundation
import GeoRaster
import ModelIO
import Models
import Testing
import TestSupport
import Tiling

@Suite struct ModelBundleTests {
    /// A U-Net written as a bundle and built again from it predicts exactly as before, in every
    /// upsampling mode (the learned ones add dec{L}.up.* tensors in PyTorch's shapes).
    @Test(arguments: UpsamplingMode.allCases)
    func uNetRoundTripsThroughABundle(_ mode: UpsamplingMode) throws {
        let architecture = ModelArchitecture.unet(UNetConfiguration(inputChannels: 3, classes: 4, widths: [16, 32], bottleneckWidth: 32,
                                                                    bottleneckDilations: [1, 2], upsampling: mode))
        let net = architecture.build(seed: 3)
        var rng = SplitMix64(seed: 1)
        let x = Tensor(shape: Shape(2, 3, 16, 16), values: rng.uniform(2 * 3 * 16 * 16).map(Float.init))
        _ = net(x)  // a training step moves the running statistics off their defaults
        net.isTraining = false
        let expected = net(x).nchwValues()

        let bundle = ModelBundle(architecture: architecture, bands: [1, 2, 3], bandDescriptions: ["", "", ""],
                                 normalization: Normalizer(method: .standardize, offset: [0, 0, 0], scale: [1, 1, 1]),
                                 statistics: nil, classes: try ClassMap(values: [(1, "a"), (2, "b"), (3, "c"), (4, "d")]),
                                 patchSize: 16, provenance: .init(terrasegVersion: "test", trainingData: [], epochs: 0, seed: 99))
        let dir = TemporaryDirectory()
        let path = dir.file("model")
        try bundle.write(network: net, to: path)
        let read = try ModelBundle.read(path)
        #expect(read.architecture == architecture)
        let again = try read.network(directory: path)  // seed 99: every weight comes from the file
        #expect(again(x).nchwValues() == expected)

        let (tensors, _) = try SafeTensors.read(path + "/" + ModelBundle.weightsFile)
        switch mode {
        case .transposed: #expect(tensors["dec2.up.weight"]?.shape == [32, 32, 2, 2])
        case .maxUnpooling: #expect(tensors["dec1.up.weight"]?.shape == [16, 32, 1, 1])
        case .bilinear, .nearest, .nails: #expect(!tensors.keys.contains { $0.contains(".up.") })
        }
    }
}

/// Tampered bundles are refused naming the file and what is wrong, instead of stopping at a
/// precondition in the reader thread or mapping every pixel to one class.
@Suite struct TamperedBundleTests {
    /// A seeded TinyModel bundle (4 bands, 3 classes) in `dir`/model.
    static func bundle(in dir: TemporaryDirectory) throws -> String {
        let scene = try SyntheticScene(in: dir.path, width: 40, height: 40, bands: 4)
        try TinyModel.seeded(scene, output: dir.file("model"))
        return dir.file("model")
    }

    /// Rewrites model.json through `edit` on its JSON object.
    static func editMetadata(_ bundle: String, _ edit: (inout [String: Any]) -> Void) throws {
        let path = bundle + "/" + ModelBundle.metadataFile
        var json = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as! [String: Any]
        edit(&json)
        try JSONSerialization.data(withJSONObject: json).write(to: URL(fileURLWithPath: path))
    }

    /// Rewrites model.safetensors through `edit` on its tensors.
    static func editWeights(_ bundle: String, _ edit: (inout [String: SafeTensors.Entry]) -> Void) throws {
        let path = bundle + "/" + ModelBundle.weightsFile
        var (tensors, _) = try SafeTensors.read(path)
        edit(&tensors)
        try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) }, to: path)
    }

    @Test func normalisationShorterThanTheBandsIsRefused() throws {
        let dir = TemporaryDirectory()
        let model = try Self.bundle(in: dir)
        try Self.editMetadata(model) { json in
            var n = json["normalization"] as! [String: Any]
            n["scale"] = Array((n["scale"] as! [Any]).prefix(2))
            json["normalization"] = n
        }
        let error = #expect(throws: TerraSegError.self) { try ModelBundle.read(model) }
        #expect(error?.path == model + "/model.json")
        #expect(error?.problem == "normalization.scale has 2 values for 4 bands")
    }

    @Test func classesThatDisagreeWithTheNetworkAreRefused() throws {
        let dir = TemporaryDirectory()
        let model = try Self.bundle(in: dir)
        try Self.editMetadata(model) { json in
            var c = json["classes"] as! [String: Any]
            c["classes"] = Array((c["classes"] as! [Any]).prefix(2))
            json["classes"] = c
        }
        let error = #expect(throws: TerraSegError.self) { try ModelBundle.read(model) }
        #expect(error?.problem == "the network has 3 classes but classes lists 2")
    }

    @Test func aWeightOfTheRightCountButWrongShapeIsRefused() throws {
        let dir = TemporaryDirectory()
        let model = try Self.bundle(in: dir)
        try Self.editWeights(model) { t in
            let w = t["head.weight"]!
            #expect(w.shape == [3, 8, 1, 1])
            t["head.weight"] = SafeTensors.Entry(shape: [8, 3, 1, 1], values: w.values)
        }
        let bundle = try ModelBundle.read(model)
        let error = #expect(throws: TerraSegError.self) { try bundle.network(directory: model) }
        #expect(error?.path == model + "/model.safetensors")
        #expect(error?.problem == "tensor 'head.weight' has shape [8, 3, 1, 1], the network expects [3, 8, 1, 1]")
    }

    @Test(arguments: [Float.nan, .infinity])
    func nonFiniteWeightsAreRefused(_ value: Float) throws {
        let dir = TemporaryDirectory()
        let model = try Self.bundle(in: dir)
        try Self.editWeights(model) { t in t["enc1.conv1.weight"]!.values[5] = value }
        let bundle = try ModelBundle.read(model)
        let error = #expect(throws: TerraSegError.self) { try bundle.network(directory: model) }
        #expect(error?.problem == "tensor 'enc1.conv1.weight' holds \(value) at element 5")
    }

    @Test func aNamedPipeAsModelJSONIsRefusedWithoutBlocking() throws {
        let dir = TemporaryDirectory()
        let model = try Self.bundle(in: dir)
        try FileManager.default.removeItem(atPath: model + "/model.json")
        #expect(mkfifo(model + "/model.json", 0o600) == 0)
        let error = #expect(throws: TerraSegError.self) { try ModelBundle.read(model) }
        #expect(error?.description.contains("model.json: is a named pipe (FIFO)") == true)
    }

    @Test func aFileGivenAsTheBundleDirectoryIsRefused() throws {
        let dir = TemporaryDirectory()
        let model = try Self.bundle(in: dir)
        let error = #expect(throws: TerraSegError.self) { try ModelBundle.read(model + "/model.safetensors") }
        #expect(error?.problem == "no model bundle here: is a file, not a directory")
    }
}
