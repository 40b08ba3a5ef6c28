import Core
import Engine
import Foundation
import ModelIO
import Models
import Testing
import TestSupport

/// `model.encoder_weights`: torchvision/timm and smp state dicts initialise a ResNet U-Net's
/// encoder; names that do not match are refused, all listed; 3-band weights adapt to N bands
/// as smp's `patch_first_conv` does.
@Suite struct EncoderWeightsTests {
    let dir = TemporaryDirectory("terraseg-encoder")

    static func network(bands: Int, encoder: ResNetEncoder = .resnet18, seed: UInt64) -> any SegmentationNetwork {
        ModelArchitecture.resnetUNet(ResNetUNetConfiguration(inputChannels: bands, classes: 2, encoder: encoder,
                                                             decoderChannels: [32, 16, 16, 16, 16])).build(seed: seed)
    }

    static func values(_ net: any SegmentationNetwork, encoder: Bool) -> [String: [Float]] {
        Dictionary(uniqueKeysWithValues: ModelBundle.tensors(of: net).filter { $0.name.hasPrefix("encoder.") == encoder }.map { ($0.name, $0.entry.values) })
    }

    /// `net`'s encoder as a torchvision ResNet's state dict (no `encoder.` prefix), with a
    /// classifier and the batch norms' step counts, as `save_file(resnet.state_dict())` writes it.
    func torchvision(_ net: any SegmentationNetwork, extra: [(String, SafeTensors.Entry)] = []) throws -> String {
        let encoder = ModelBundle.tensors(of: net).filter { $0.name.hasPrefix("encoder.") }.map { (String($0.name.dropFirst(8)), $0.entry) }
        let fc = [("fc.weight", SafeTensors.Entry(shape: [10, 512], values: [Float](repeating: 0.5, count: 5120))),
                  ("fc.bias", SafeTensors.Entry(shape: [10], values: [Float](repeating: 0, count: 10)))]
        let steps = ModelBundle.batchNormSteps(of: net).filter { $0.name.hasPrefix("encoder.") }.map { (String($0.name.dropFirst(8)), Int64(7)) }
        let path = dir.file("resnet.safetensors")
        try SafeTensors.write(encoder + fc + extra, integers: steps.map { (name: $0.0, value: $0.1) }, to: path)
        return path
    }

    @Test func torchvisionNamesInitialiseTheEncoderOnly() throws {
        let source = Self.network(bands: 3, seed: 1), target = Self.network(bands: 3, seed: 2)
        let decoder = Self.values(target, encoder: false)
        let notices = try EncoderWeights(path: try torchvision(source)).apply(to: target)
        #expect(Self.values(target, encoder: true) == Self.values(source, encoder: true))
        #expect(Self.values(target, encoder: false) == decoder, "the decoder and head keep their initialisation")
        #expect(notices.contains { $0.contains("2 tensors of fc are not part of the encoder and are not used") }, "\(notices)")
        #expect(notices.last?.hasPrefix("Encoder initialised from") == true)
    }

    /// A whole smp Unet's state dict: the encoder is taken, decoder and head left out (said).
    @Test func smpNamesInitialiseTheEncoderAndLeaveTheRest() throws {
        let source = Self.network(bands: 4, seed: 1), target = Self.network(bands: 4, seed: 2)
        let decoder = Self.values(target, encoder: false)
        let path = dir.file("unet.safetensors")
        try SafeTensors.write(ModelBundle.tensors(of: source), integers: ModelBundle.batchNormSteps(of: source), to: path)
        let notices = try EncoderWeights(path: path).apply(to: target)
        #expect(Self.values(target, encoder: true) == Self.values(source, encoder: true))
        #expect(Self.values(target, encoder: false) == decoder)
        #expect(notices.contains { $0.contains("tensors of decoder, segmentation_head are not part of the encoder") }, "\(notices)")
    }

    /// Weights of another depth, and names of no encoder, are refused with every name listed
    /// as the file spells it.
    @Test func namesThatDoNotMatchAreRefusedListingThem() throws {
        let path = try torchvision(Self.network(bands: 3, seed: 1), extra: [("backbone.stem.weight", SafeTensors.Entry(shape: [1], values: [0]))])
        let error = #expect(throws: TerraSegError.self) { try EncoderWeights(path: path).apply(to: Self.network(bands: 3, encoder: .resnet34, seed: 2)) }
        #expect(error?.problem.hasPrefix("the weights have no tensors 'layer1.2.conv1.weight', 'layer1.2.bn1.weight'") == true, "\(String(describing: error))")
        #expect(error?.problem.contains("unexpected tensor 'backbone.stem.weight'") == true, "\(String(describing: error))")
        #expect(error?.hint?.contains("torchvision or timm ResNet of the same depth") == true)

        let smp = dir.file("smp.safetensors")
        try SafeTensors.write([("encoder.conv1.weight", SafeTensors.Entry(shape: [1], values: [0])), ("model.head.weight", SafeTensors.Entry(shape: [1], values: [0]))], to: smp)
        let foreign = #expect(throws: TerraSegError.self) { try EncoderWeights(path: smp).apply(to: Self.network(bands: 3, seed: 2)) }
        #expect(foreign?.problem.contains("unexpected tensor 'model.head.weight'") == true, "\(String(describing: foreign))")
    }

    @Test func aNetworkWithoutEncoderIsRefused() throws {
        let path = try torchvision(Self.network(bands: 3, seed: 1))
        let unet = ModelArchitecture.unet(UNetConfiguration(inputChannels: 3, classes: 2, widths: [8, 16], bottleneckWidth: 16,
                                                            bottleneckDilations: [1], upsampling: .bilinear)).build(seed: 1)
        let error = #expect(throws: TerraSegError.self) { try EncoderWeights(path: path).apply(to: unet) }
        #expect(error?.problem == "the network has no pretrained encoder to initialise")
    }

    /// 3-band (RGB) weights on N bands: band i takes channel i mod 3 scaled by 3/N, one band the
    /// sum; the rest of the encoder is copied as it is.
    @Test(arguments: [1, 2, 4, 5]) func threeBandWeightsAdaptToTheScenesBands(_ n: Int) throws {
        let source = Self.network(bands: 3, seed: 1), target = Self.network(bands: n, seed: 2)
        let notices = try EncoderWeights(path: try torchvision(source)).apply(to: target)
        #expect(notices.contains { $0.contains("conv1 takes 3 bands, the scenes have \(n)") }, "\(notices)")
        let rgb = try #require(Self.values(source, encoder: true)["encoder.conv1.weight"])
        let adapted = try #require(Self.values(target, encoder: true)["encoder.conv1.weight"])
        #expect(adapted.count == 64 * n * 49)
        for (o, k) in [(0, 0), (5, 17), (63, 48)] {
            for c in 0..<n {
                let w = { (ch: Int) in rgb[(o * 3 + ch) * 49 + k] }
                let expected = n == 1 ? w(0) + w(1) + w(2) : w(c % 3) * 3 / Float(n)
                #expect(abs(adapted[(o * n + c) * 49 + k] - expected) <= 1e-7 * max(1, abs(expected)))
            }
        }
        #expect(Self.values(target, encoder: true)["encoder.layer1.0.conv1.weight"] == Self.values(source, encoder: true)["encoder.layer1.0.conv1.weight"])
    }

    @Test func weightsForAnotherBandCountAreRefused() throws {
        let path = try torchvision(Self.network(bands: 5, seed: 1))
        let error = #expect(throws: TerraSegError.self) { try EncoderWeights(path: path).apply(to: Self.network(bands: 4, seed: 2)) }
        #expect(error?.problem == "the encoder's first convolution takes 5 bands but the scenes have 4", "\(String(describing: error))")
    }

    static let python = TestData.repositoryRoot.appendingPathComponent("Benchmarks/.venv/bin/python").path
    static var smpAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: python)
            && (try? Tool.run(python, ["-c", "import segmentation_models_pytorch, torchvision, safetensors"]).status) == 0
    }

    /// The adaptation equals smp's own `patch_first_conv` on the same weights.
    @Test(.enabled(if: EncoderWeightsTests.smpAvailable, "needs Benchmarks/.venv with segmentation-models-pytorch (Benchmarks/setup.sh)"),
          arguments: [1, 2, 4, 13])
    func adaptationEqualsSmps(_ n: Int) throws {
        let source = Self.network(bands: 3, seed: 1)
        let rgb = try torchvision(source)
        let out = dir.file("adapted-\(n).safetensors")
        let r = try Tool.run(Self.python, [TestData.fixture("smp/smp_roundtrip.py"), "adapt", rgb, "--bands", "\(n)", "--out", out])
        #expect(r.status == 0, "\(r.stderr)")
        let theirs = try #require(try SafeTensors.read(out).tensors["conv1.weight"])
        let ours = EncoderWeights.repeatBands(try #require(SafeTensors.read(rgb).tensors["conv1.weight"]), to: n)
        #expect(ours.shape == theirs.shape)
        let worst = zip(ours.values, theirs.values).map { abs($0 - $1) / max(1, abs($1)) }.max() ?? 0
        #expect(worst <= 1e-7, "largest difference \(worst)")
    }
}
