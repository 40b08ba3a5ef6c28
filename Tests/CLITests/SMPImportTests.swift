import Core
import Engine
import Foundation
import GeoRaster
import ModelIO
import Models
import Testing
import TestSupport
import Tiling

/// `terraseg import smp`: a state dict with smp's names becomes a bundle whose weights are the
/// same tensors (and load back into smp strictly); names, shapes and every flag are checked,
/// each problem with one message.
@Suite struct SMPImportTests {
    let dir = TemporaryDirectory("terraseg-smp")
    static let configuration = ResNetUNetConfiguration(inputChannels: 4, classes: 3, encoder: .resnet18, decoderChannels: [32, 16, 16, 16, 16])
    static let normalisation = ["--mean", "1,2,3,4", "--std", "2,4,8,0.5"]

    /// A state dict under smp's names made by TerraSeg's own network, with `num_batches_tracked`.
    func stateDict(integers: [(name: String, value: Int64)]? = nil, _ edit: (inout [String: SafeTensors.Entry]) -> Void = { _ in }) throws -> String {
        let net = ModelArchitecture.resnetUNet(Self.configuration).build(seed: 3)
        var tensors = Dictionary(uniqueKeysWithValues: ModelBundle.tensors(of: net).map { ($0.name, $0.entry) })
        edit(&tensors)
        let path = dir.file("w.safetensors")
        try SafeTensors.write(tensors.sorted { $0.key < $1.key }.map { ($0.key, $0.value) },
                              integers: integers ?? ModelBundle.batchNormSteps(of: net).map { ($0.name, 5) }, to: path)
        return path
    }

    func importSMP(_ weights: String, _ flags: [String], encoder: String = "resnet18", classes: String = "1=a,2=b,3=c") throws -> Tool.Result {
        let r = try Tool.run(Tool.terraseg, ["import", "smp", "--weights", weights, "--encoder", encoder, "--classes", classes,
                                             "--output", dir.file("model")] + flags)
        #expect(!r.crashed && !r.stderr.contains("Fatal error"), "\(r.stderr)")
        return r
    }

    /// The bundle holds the state dict's tensors unchanged, a step count for every batch norm
    /// (so smp loads it strictly), the architecture read from the shapes, and (x − mean) / std.
    @Test func aStateDictRoundTrips() throws {
        let weights = try stateDict()
        let r = try importSMP(weights, Self.normalisation)
        #expect(r.status == 0, "\(r.stderr)")
        let original = try SafeTensors.contents(weights), exported = try SafeTensors.contents(dir.file("model/model.safetensors"))
        #expect(exported.tensors == original.tensors)
        #expect(Set(exported.integers.keys) == Set(original.integers.keys) && exported.integers.values.allSatisfy { $0 == 0 })
        let bundle = try ModelBundle.read(dir.file("model"))
        #expect(bundle.architecture == .resnetUNet(Self.configuration))
        #expect(bundle.bands == [1, 2, 3, 4] && bundle.classes.names == ["a", "b", "c"])
        #expect(bundle.normalization.method == .standardize)
        #expect(bundle.normalization.offset == [1, 2, 3, 4] && bundle.normalization.scale == [0.5, 0.25, 0.125, 2])
        _ = try bundle.network(directory: dir.file("model"))
        // Without num_batches_tracked (some exporters drop them), or with them as float32.
        #expect(try importSMP(try stateDict(integers: []), Self.normalisation).status == 0)
        let floats = try stateDict(integers: []) { t in t["encoder.bn1.num_batches_tracked"] = SafeTensors.Entry(shape: [], values: [3]) }
        #expect(try importSMP(floats, Self.normalisation).status == 0)
    }

    @Test func missingAndUnknownNamesAreListed() throws {
        let weights = try stateDict(integers: [("encoder.bn1.num_batches_tracked", 0), ("aux.num_batches_tracked", 0)]) { t in
            t["encoder.layer1.0.bn1.running_var"] = nil
            t["segmentation_head.0.bias"] = nil
            t["aux.weight"] = SafeTensors.Entry(shape: [1], values: [0])
        }
        let r = try importSMP(weights, Self.normalisation)
        #expect(r.status != 0)
        #expect(r.stderr.contains("the weights have no tensors 'segmentation_head.0.bias', 'encoder.layer1.0.bn1.running_var'; unexpected tensors 'aux.num_batches_tracked', 'aux.weight'"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("model")))
        // Many missing names are counted, not all printed.
        let bare = try stateDict(integers: []) { t in t = t.filter { $0.key.hasSuffix("conv1.0.weight") || $0.key.hasPrefix("segmentation_head.0.weight") || $0.key == "encoder.conv1.weight" } }
        let many = try importSMP(bare, Self.normalisation)
        #expect(many.stderr.contains("(and ") && many.stderr.contains(" more)"), "\(many.stderr)")
        // The tensors the architecture is read from are named when absent.
        let noHead = try importSMP(try stateDict { $0["segmentation_head.0.weight"] = nil }, Self.normalisation)
        #expect(noHead.stderr.contains("the weights have no tensor 'segmentation_head.0.weight'"), "\(noHead.stderr)")
    }

    @Test func wrongShapesAndEncodersAreNamed() throws {
        let reshaped = try stateDict { t in t["encoder.layer1.0.conv1.weight"]!.shape = [64, 64, 1, 9] }
        let r = try importSMP(reshaped, Self.normalisation)
        #expect(r.stderr.contains("tensor 'encoder.layer1.0.conv1.weight' has shape [64, 64, 1, 9], the network expects [64, 64, 3, 3]"), "\(r.stderr)")
        let other = try importSMP(try stateDict(), Self.normalisation, encoder: "resnet50")
        #expect(other.status != 0 && other.stderr.contains("'encoder.layer1.0.conv3.weight'") && other.stderr.contains("check --encoder"), "\(other.stderr)")
        let vector = try importSMP(try stateDict { t in t["encoder.conv1.weight"]!.shape = [64 * 4 * 49] }, Self.normalisation)
        #expect(vector.stderr.contains("tensor 'encoder.conv1.weight' has shape [12544]; a convolution weight (out, in, kh, kw)"), "\(vector.stderr)")
    }

    /// Each flag problem with its own message, before anything is written.
    static let badFlags: [(flags: [String], classes: String, expected: String)] = [
        ([], "1=a,2=b,3=c", "give --mean and --std (the values the PyTorch side normalised each band with), or --statistics-from SCENE"),
        (["--mean", "1,2,3,4"], "1=a,2=b,3=c", "--mean needs --std"),
        (["--std", "1,2,3,4"], "1=a,2=b,3=c", "--std needs --mean"),
        (normalisation + ["--statistics-from", "/nonexistent.tif"], "1=a,2=b,3=c", "give --mean/--std or --statistics-from, not both"),
        (["--mean", "1,2,3", "--std", "1,1,1,1"], "1=a,2=b,3=c", "--mean has 3 values but the weights take 4 bands (encoder.conv1.weight of"),
        (["--mean", "1,2,3,4", "--std", "1,1,1,1,1"], "1=a,2=b,3=c", "--std has 5 values but the weights take 4 bands"),
        (["--mean", "nan,2,3,4", "--std", "1,1,1,1"], "1=a,2=b,3=c", "--mean value 1 (nan) is not a finite number"),
        (["--mean", "1,2,3,1e39", "--std", "1,1,1,1"], "1=a,2=b,3=c", "--mean value 4 (1e+39) is not a finite number"),
        (["--mean", "1,2,3,4", "--std", "1,0,1,1"], "1=a,2=b,3=c", "--std value 2 (0.0) must be a positive number"),
        (["--mean", "1,2,3,4", "--std", "1,1,-2,1"], "1=a,2=b,3=c", "--std value 3 (-2.0) must be a positive number"),
        (["--mean", "1,2,3,4", "--std", "1,1,1,1e-300"], "1=a,2=b,3=c", "--std value 4 (1e-300) must be a positive number"),
        (["--mean", "1,2,3,4", "--std", "1,1,1,inf"], "1=a,2=b,3=c", "--std value 4 (inf) must be a positive number"),
        (normalisation, "1=a,2=b", "--classes lists 2 classes but the weights output 3 (segmentation_head.0.weight of"),
        (normalisation, "1=a,1=b,2=c", "classes"),
        (normalisation + ["--bands", "1,2,3"], "1=a,2=b,3=c", "--bands lists 3 bands but the weights take 4"),
        (normalisation + ["--bands", "1,2,0,3"], "1=a,2=b,3=c", "--bands: must be at least 1, got 0"),
        (normalisation + ["--output-stride", "4"], "1=a,2=b,3=c", "--output-stride must be 8, 16 or 32, got 4"),
    ]

    @Test(arguments: badFlags.indices) func badFlagsAreRefused(_ i: Int) throws {
        let c = Self.badFlags[i]
        let r = try importSMP(try stateDict(), c.flags, classes: c.classes)
        #expect(r.status != 0, "\(c.flags) accepted")
        #expect(r.stderr.contains(c.expected), "\(c.flags): \(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("model")))
    }

    /// `--statistics-from`: each band's mean and std of the scene's valid pixels; a constant
    /// band, or a scene of another band count, is refused.
    @Test func statisticsComeFromAScene() throws {
        let scene = try SyntheticScene(in: dir.path, width: 64, height: 48, bands: 4)
        let r = try importSMP(try stateDict(), ["--statistics-from", scene.image])
        #expect(r.status == 0, "\(r.stderr)")
        let bundle = try ModelBundle.read(dir.file("model"))
        let stats = try BandStatistics.compute(try Dataset(path: scene.image))
        #expect(bundle.normalization.offset == stats.mean.map(Float.init))
        #expect(bundle.normalization.scale == stats.std.map { Float(1 / $0) })
        #expect(bundle.statistics == stats && bundle.sceneProfile != nil)

        let profile = try RasterMaker.utmProfile(width: 32, height: 32, bands: 5)
        let five = try RasterMaker.write(dir.file("five.tif"), profile: profile) { b, c, r in b == 2 ? 7 : Float(b + c * r) }
        let wide = try importSMP(try stateDict(), ["--statistics-from", five])
        #expect(wide.stderr.contains("--statistics-from's scene has 5 bands but the weights take 4 bands"), "\(wide.stderr)")
        let constant = try importSMP(try stateDict(), ["--statistics-from", five, "--bands", "1,2,3,4"])
        #expect(constant.stderr.contains("band 3") && constant.stderr.contains("the band is constant"), "\(constant.stderr)")
    }

    static let python = TestData.repositoryRoot.appendingPathComponent("Benchmarks/.venv/bin/python").path
    static var smpAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: python)
            && (try? Tool.run(python, ["-c", "import segmentation_models_pytorch, rasterio, safetensors"]).status) == 0
    }

    /// smp's own Unet, saved as users save it, imported; the bundle's weights load back into smp
    /// strictly and equal the original; TerraSeg's logits on a raster equal smp's within 1e-4 of
    /// their largest magnitude, and `terraseg predict`'s map equals smp's argmax where smp's top two logits
    /// differ: streamed (the default), of `model(scene)`; in windows, of the scene padded by the receptive radius.
    @Test(.enabled(if: SMPImportTests.smpAvailable, "needs Benchmarks/.venv with segmentation-models-pytorch (Benchmarks/setup.sh)"),
          arguments: ["resnet18", "resnet50"])
    func smpsOwnUnetRoundTripsAndPredictsAlike(_ encoder: String) throws {
        let script = TestData.fixture("smp/smp_roundtrip.py")
        let weights = dir.file("smp.safetensors")
        let saved = try Tool.run(Self.python, [script, "save", weights, "--encoder", encoder, "--bands", "4", "--classes", "3", "--decoder", "64,32,16,16,16"])
        try #require(saved.status == 0, "\(saved.stderr)")
        let mean = "100,200,300,400", std = "50,60,70,80"
        let r = try importSMP(weights, ["--mean", mean, "--std", std], encoder: encoder)
        try #require(r.status == 0, "\(r.stderr)")
        let profile = try RasterMaker.utmProfile(width: 64, height: 64, bands: 4)
        let raster = try RasterMaker.write(dir.file("scene.tif"), profile: profile) { b, c, r in
            Float(100 * (b + 1)) + 60 * sin(Float(c) * 0.3 + Float(b)) * cos(Float(r) * 0.2 - Float(b))
        }
        // TerraSeg's logits of the whole raster, normalised by the bundle.
        let bundle = try ModelBundle.read(dir.file("model"))
        let net = try bundle.network(directory: dir.file("model"))
        var block = try Dataset(path: raster).read(window: Window(width: 64, height: 64), bands: bundle.bands)
        bundle.normalization.apply(to: &block)
        let input = Tensor(shape: Shape(1, 4, 64, 64))
        input.setNCHW(block.values)
        let logits = net(input).nchwValues()
        try SafeTensors.write([("logits", SafeTensors.Entry(shape: [1, 3, 64, 64], values: logits))], to: dir.file("logits.safetensors"))
        let predicted = try Tool.run(Tool.terraseg, ["predict", "--model", dir.file("model"), "--input", raster, "--output", dir.file("maps")])
        try #require(predicted.status == 0, "\(predicted.stderr)")
        let check = try Tool.run(Self.python, [script, "check", "--original", weights, "--bundle", dir.file("model"), "--raster", raster,
                                               "--mean", mean, "--std", std, "--logits", dir.file("logits.safetensors"),
                                               "--map", dir.file("maps/scene_map.tif")])
        #expect(check.status == 0, "\(check.stdout)\(check.stderr)")
        print("smp \(encoder) round trip: \(check.stdout)")
        // Windows read invalid input beyond the scene, as smp's sliding window does: their map is smp's on the padded scene.
        let windows = try Tool.run(Tool.terraseg, ["predict", "--model", dir.file("model"), "--input", raster, "--output", dir.file("windows"), "--blend", "centre"])
        try #require(windows.status == 0, "\(windows.stderr)")
        let padded = try Tool.run(Self.python, [script, "check", "--original", weights, "--bundle", dir.file("model"), "--raster", raster,
                                                "--mean", mean, "--std", std, "--map", dir.file("windows/scene_map.tif"), "--edges", "windows"])
        #expect(padded.status == 0, "\(padded.stdout)\(padded.stderr)")
    }
}

/// `terraseg train --encoder-weights` and `--freeze-encoder-epochs` are for ResNet U-Nets:
/// refused for another network before any data is read, naming flag and key.
@Suite struct EncoderFlagTests {
    @Test func otherNetworksRefuseEncoderFlags() throws {
        let r = try Tool.run(Tool.terraseg, ["train", "--image", "/nonexistent/scene.tif", "--labels", "/nonexistent/labels.tif", "--classes", "1=a,2=b",
                                             "--output", "/nonexistent/model", "--encoder-weights", "/nonexistent/w.safetensors", "--freeze-encoder-epochs", "2"])
        #expect(r.status != 0 && !r.crashed)
        #expect(r.stderr.contains("--encoder-weights (model.encoder_weights): is given but model.kind is unet, which has no pretrained encoder"), "\(r.stderr)")
        #expect(r.stderr.contains("--freeze-encoder-epochs (training.freeze_encoder_epochs): is 2 but model.kind is unet"), "\(r.stderr)")
        #expect(!r.stderr.contains("scene.tif"), "data was read before the settings were checked: \(r.stderr)")
    }
}
