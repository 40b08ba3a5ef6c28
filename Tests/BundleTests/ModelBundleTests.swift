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
