import Core
import Engine
import Foundation
import ModelIO
import Models
import Testing
import TestSupport

/// `import smp`, `train` and `quantize` write their bundle over an existing one (a directory
/// swap, like `predict --overwrite` recomputing a map) and say so once, naming the bundle; a
/// fresh output gets no such notice.
@Suite struct BundleReplacementTests {
    let dir = TemporaryDirectory("terraseg-replace")
    static let notice = "Replaced the existing bundle "

    func terraseg(_ arguments: [String]) throws -> Tool.Result {
        let r = try Tool.run(Tool.terraseg, arguments)
        #expect(!r.crashed && r.status == 0, "terraseg \(arguments[0]): \(r.stderr)")
        return r
    }

    /// The notice appears exactly once, naming `output`, and the bundle there is whole.
    func expectReplaced(_ r: Tool.Result, _ output: String) throws {
        let lines = r.stderr.split(separator: "\n").filter { $0.contains(Self.notice) }
        #expect(lines == [Substring(Self.notice + output)], "\(r.stderr)")
        _ = try ModelBundle.read(output)
    }

    @Test func importSMPSaysItReplaced() throws {
        let net = ModelArchitecture.resnetUNet(SMPImportTests.configuration).build(seed: 3)
        let weights = dir.file("w.safetensors"), output = dir.file("model")
        try SafeTensors.write(ModelBundle.tensors(of: net).map { ($0.name, $0.entry) }, integers: ModelBundle.batchNormSteps(of: net), to: weights)
        let arguments = ["import", "smp", "--weights", weights, "--encoder", "resnet18", "--classes", "1=a,2=b,3=c",
                         "--output", output] + SMPImportTests.normalisation
        let first = try terraseg(arguments)
        #expect(!first.stderr.contains(Self.notice), "\(first.stderr)")
        try expectReplaced(try terraseg(arguments), output)
    }

    @Test func trainSaysItReplaced() throws {
        let scene = try SyntheticScene(in: dir.path, name: "a", width: 96, height: 80)
        let output = dir.file("model")
        let arguments = ["train", "--image", scene.image, "--labels", scene.labels, "--classes", SyntheticScene.classList,
                         "--ignore", "0", "--widths", "8,16", "--patch-size", "32", "--batch-size", "4", "--epochs", "1",
                         "--split", "rows:0.7", "--output", output]
        let first = try terraseg(arguments)
        #expect(!first.stderr.contains(Self.notice), "\(first.stderr)")
        try expectReplaced(try terraseg(arguments), output)
    }

    @Test func quantizeSaysItReplaced() throws {
        let scene = try SyntheticScene(in: dir.path, name: "a", width: 96, height: 80, bands: 4)
        let model = dir.file("model"), output = dir.file("model-int8")
        try TinyModel.seeded(scene, output: model)
        let arguments = ["quantize", "--model", model, "--calibration", scene.image, "--output", output, "--tile", "64"]
        let first = try terraseg(arguments)
        #expect(!first.stderr.contains(Self.notice), "\(first.stderr)")
        try expectReplaced(try terraseg(arguments), output)
    }
}
