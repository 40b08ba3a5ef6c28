import Core
import Engine
import Foundation
import GeoRaster
@testable import Pipeline
import Training
import Testing
import TestSupport

/// `prediction.precision`: checked like the other choices, and a pipeline at int8 calibrates its
/// trained model on the first scene and maps it in int8, like fp32 (refused before training
/// without VNNI).
@Suite struct PrecisionKeyTests {
    let dir = TemporaryDirectory()

    func job(_ precision: String) throws -> String {
        let yaml = SyntheticPipeline.yaml(prediction: "tile: 64, precision: \(precision)")
        #expect(yaml.contains("precision: \(precision)"))
        try yaml.write(toFile: dir.file("job.yaml"), atomically: true, encoding: .utf8)
        return dir.file("job.yaml")
    }

    @Test func anUnknownPrecisionIsRefusedWithTheKeyAndTheChoices() throws {
        _ = try SyntheticScene(in: dir.path, width: 40, height: 40, bands: 3)
        let error = #expect(throws: PipelineError.self) { try PipelineLoader.load(try job("int16")) }
        let issue = try #require(error?.issues.first { $0.key == "prediction.precision" })
        #expect(issue.problem.contains("must be one of fp32, bf16, int8, auto, got 'int16'"), "\(issue.problem)")
        #expect(try PipelineLoader.load(try job("auto")).spec.prediction.precision == .auto)
        #expect(try PipelineLoader.load(try job("fp32")).spec.prediction.precision == .fp32)
    }

    /// `training.precision`: fp32, bf16 or auto (int8 is refused with the key); fp32 keeps the
    /// training fingerprint of runs without the key, any other value changes it (retrains).
    @Test func trainingPrecisionIsAChoiceInTheFingerprint() throws {
        _ = try SyntheticScene(in: dir.path, width: 40, height: 40, bands: 3)
        func load(_ precision: String) throws -> PipelineSpec {
            let yaml = SyntheticPipeline.yaml() + "\n"
            try yaml.replacingOccurrences(of: "training: {", with: "training: {precision: \(precision), ")
                .write(toFile: dir.file("train.yaml"), atomically: true, encoding: .utf8)
            return try PipelineLoader.load(dir.file("train.yaml")).spec
        }
        let error = #expect(throws: PipelineError.self) { try load("int8") }
        #expect(error?.issues.first { $0.key == "training.precision" }?.problem.contains("must be one of fp32, bf16, auto, got 'int8'") == true, "\(String(describing: error?.issues))")
        let encoder = JSONEncoder()
        encoder.outputFormatting = .sortedKeys  // as the trainer's fingerprint
        let fp32 = try load("fp32").trainingOptions
        let fp32JSON = String(decoding: try encoder.encode(fp32), as: UTF8.self)
        #expect(fp32.precision == nil && !fp32JSON.contains("precision"))
        let (bf16Options, autoOptions) = (try load("bf16").trainingOptions, try load("auto").trainingOptions)
        #expect(bf16Options.precision == .bf16 && autoOptions.precision == .auto)
        try (SyntheticPipeline.yaml() + "\n").write(toFile: dir.file("plain.yaml"), atomically: true, encoding: .utf8)
        let none = try encoder.encode(try PipelineLoader.load(dir.file("plain.yaml")).spec.trainingOptions)
        let bf16 = try encoder.encode(bf16Options), plain = try encoder.encode(fp32)
        #expect(bf16 != plain && plain == none)
    }

    @Test(.enabled(if: CPUFeatures.hasInt8DotProduct)) func anInt8PipelineCalibratesAndMapsLikeFloat() throws {
        _ = try SyntheticScene(in: dir.path, width: 130, height: 100, bands: 3)
        let fp32 = try Tool.run(Tool.terraseg, ["run", try job("fp32")])
        #expect(fp32.status == 0, "\(fp32.stderr)")
        let map = dir.file("run/maps/scene_map.tif")
        let window = Window(width: 130, height: 100)
        let reference = try Dataset(path: map).read(window: window)
        let int8 = try Tool.run(Tool.terraseg, ["run", try job("int8")])
        #expect(int8.status == 0, "\(int8.stderr)")
        let log = int8.stdout + int8.stderr
        #expect(log.contains("calibrating int8 on \(dir.file("scene.tif"))") && log.contains("Precision int8: int8 in"), "\(log)")
        #expect(int8.stdout.contains("Up to date, skipped: train ("), "only the prediction reruns: \(int8.stdout)")
        let got = try Dataset(path: map).read(window: window)
        let valid = reference.valid.filter { $0 != 0 }.count
        let same = (0..<reference.values.count).filter { reference.valid[$0] != 0 && reference.values[$0] == got.values[$0] }.count
        #expect(valid > 0 && Double(same) >= 0.99 * Double(valid), "int8 agrees on \(same) of \(valid) pixels")
    }

    @Test func int8WithoutVNNIIsRefusedBeforeTraining() throws {
        _ = try SyntheticScene(in: dir.path, width: 64, height: 64, bands: 3)
        let r = try Tool.run(Tool.terraseg, ["run", try job("int8")], environment: ["DNNL_MAX_CPU_ISA": "AVX2"])
        #expect(r.status != 0 && !r.crashed)
        #expect(r.stderr.contains("prediction.precision") && r.stderr.contains("no VNNI") && r.stderr.contains("auto"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("run/model/model.json")), "refused before training")
    }
}
