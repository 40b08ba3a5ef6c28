import Core
import Engine
import Foundation
import Testing
import TestSupport

/// `terraseg train --precision`: bf16 trains and says which layers chose bf16; on a CPU without
/// native bf16 (oneDNN limited to AVX512_CORE) bf16 is refused and auto falls back to fp32 with
/// a notice; int8 is for prediction only.
@Suite struct Bf16TrainCommandTests {
    let dir = TemporaryDirectory("terraseg-bf16-train")

    func train(_ scene: SyntheticScene, _ precision: String, environment: [String: String]? = nil) throws -> Tool.Result {
        let r = try Tool.run(Tool.terraseg, ["train", "--image", scene.image, "--labels", scene.labels, "--classes", SyntheticScene.classList,
                                             "--ignore", "0", "--widths", "8,16", "--patch-size", "32", "--batch-size", "4", "--epochs", "1",
                                             "--split", "rows:0.7", "--precision", precision, "--output", dir.file("model-\(precision)")],
                             environment: environment)
        #expect(!r.crashed, "\(r.stderr)")
        return r
    }

    @Test func trainPrecisionIsChosenPerCPU() throws {
        let scene = try SyntheticScene(in: dir.path, name: "a", width: 96, height: 80)
        if CPUFeatures.hasBF16 {
            let bf = try train(scene, "bf16")
            #expect(bf.status == 0, "\(bf.stderr)")
            let log = bf.stdout + bf.stderr
            #expect(log.contains("Precision bf16: bf16 or fp32 per convolution") && log.contains("bf16 per-layer choice: bf16 in "), "\(log)")
        }
        let core = ["DNNL_MAX_CPU_ISA": "AVX512_CORE"]
        let refused = try train(scene, "bf16", environment: core)
        #expect(refused.status != 0 && refused.stderr.contains("bf16 is refused") && refused.stderr.contains("no native bf16"), "\(refused.stderr)")
        let auto = try train(scene, "auto", environment: core)
        #expect(auto.status == 0 && (auto.stdout + auto.stderr).contains("Precision auto: fp32, because this CPU"), "\(auto.stdout + auto.stderr)")
        let int8 = try train(scene, "int8")
        #expect(int8.status != 0 && int8.stderr.contains("int8 is for prediction only") && int8.stderr.contains("--precision"), "\(int8.stderr)")
    }
}
