import Engine
import Foundation
import Testing
import TestSupport

/// Training and streamed prediction run none of oneDNN's reference kernels (naive loops, 10–100×
/// slower) on this CPU, nor with oneDNN held to AVX2: the network's blocked layout follows the
/// ISA (`Layout.blocked`). With blocks of 16 under AVX2, batch norm ran `bnorm_ref` in training
/// (R1 trained 4× slower) and every convolution reordered its input and output.
@Suite struct KernelChoiceCommandTests {
    let dir = TemporaryDirectory("terraseg-kernels")

    /// The reference primitives that ran (`onednn_verbose,exec,…` lines whose implementation,
    /// the fifth field, is one of oneDNN's reference kernels).
    static func referenceKernels(_ log: String) -> [String] {
        log.split(separator: "\n").filter { line in
            let fields = line.split(separator: ",", omittingEmptySubsequences: false)
            return line.hasPrefix("onednn_verbose,exec") && fields.count > 4 && isReferenceImplementation(fields[4])
        }.map(String.init)
    }

    /// A U-Net 8-16 (its bottleneck of 32 channels dilated 1-2-4), or a dilated CNN of 24
    /// channels (not a whole number of 16-channel blocks).
    static func model(_ kind: String, scene: SyntheticScene, in dir: TemporaryDirectory) throws -> [String] {
        guard kind == "dilated" else {
            return ["--image", scene.image, "--labels", scene.labels, "--classes", SyntheticScene.classList, "--ignore", "0",
                    "--widths", "8,16", "--patch-size", "32", "--batch-size", "4", "--epochs", "1", "--split", "rows:0.7"]
        }
        let classes = SyntheticScene.classes.map { "{value: \($0.value), name: \($0.name)}" }.joined(separator: ", ")
        let job = dir.file("dilated.yaml")
        try """
            data: {scenes: [{image: \(scene.image), labels: \(scene.labels)}], classes: [\(classes)], ignore: [0]}
            tiling: {patch: 32, split: {method: rows, train_fraction: 0.7}}
            model: {kind: dilated, width: 24, dilations: [1, 2, 4, 2, 1]}
            training: {epochs: 1, batch_size: 4}
            """.write(toFile: job, atomically: true, encoding: .utf8)
        return ["--config", job]
    }

    @Test(arguments: [nil, "AVX2"], ["unet", "dilated"])
    func trainingAndStreamingRunNoReferenceKernels(_ isa: String?, _ kind: String) throws {
        let scene = try SyntheticScene(in: dir.path, name: "a", width: 96, height: 80)
        var environment = ["DNNL_VERBOSE": "1"]
        if let isa { environment["DNNL_MAX_CPU_ISA"] = isa }
        let model = dir.file("model-\(kind)-\(isa ?? "native")")
        let train = try Tool.run(Tool.terraseg, ["train"] + Self.model(kind, scene: scene, in: dir) + ["--output", model], environment: environment)
        #expect(train.status == 0, "\(train.stderr)")
        #expect(train.stdout.contains("onednn_verbose,exec"), "DNNL_VERBOSE printed nothing: the check would be empty")
        #expect(Self.referenceKernels(train.stdout).isEmpty, "\(Self.referenceKernels(train.stdout).prefix(5))")
        let predict = try Tool.run(Tool.terraseg, ["predict", "--model", model, "--input", scene.image, "--output", dir.file("maps-\(kind)-\(isa ?? "native")")],
                                   environment: environment)
        #expect(predict.status == 0, "\(predict.stderr)")
        #expect(Self.referenceKernels(predict.stdout).isEmpty, "\(Self.referenceKernels(predict.stdout).prefix(5))")
    }
}
