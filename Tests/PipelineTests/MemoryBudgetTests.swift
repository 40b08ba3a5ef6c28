import Foundation
import Models
import Pipeline
import Testing
import TestSupport
import Training

/// Absurd sizes are refused before any work with the setting to lower: a 16384-pixel tile,
/// a 4096-pixel margin or a patch too large for the budget passed `run --check` before and
/// died in an allocation after training.
@Suite struct MemoryBudgetTests {
    let dir = TemporaryDirectory()

    /// Problems of the broken-pipeline tests' good file with `extra` sections and `training` options.
    func issues(_ extra: String, training: String = "epochs: 3") throws -> [PipelineIssue] {
        try "x".write(toFile: dir.file("scene.tif"), atomically: true, encoding: .utf8)
        try "x".write(toFile: dir.file("labels.tif"), atomically: true, encoding: .utf8)
        let good = BrokenPipelineTests.good.replacingOccurrences(of: "epochs: 3", with: training)
        try (good + "\n" + extra + "\n").write(toFile: dir.file("job.yaml"), atomically: true, encoding: .utf8)
        do {
            _ = try PipelineLoader.load(dir.file("job.yaml"))
            return []
        } catch let e as PipelineError {
            return e.issues
        }
    }

    @Test func anAbsurdTileIsRefusedNamingTheSettingToLower() throws {
        let found = try issues("prediction: {tile: 16384, blend: centre}")
        #expect(found.count == 1)
        #expect(found.first?.key == "prediction.tile")
        #expect(found.first?.line == 11)
        #expect(found.first?.problem.hasPrefix("prediction needs about ") == true, "\(found)")
        #expect(found.first?.problem.contains("windows of 16") == true, "\(found)")
        #expect(found.first?.problem.hasSuffix("of physical memory") == true, "\(found)")
        #expect(found.first?.fix.hasPrefix("Lower prediction.tile (at half it needs about ") == true, "\(found)")
    }

    /// Streaming reads no windows: a tile too large for the budget does not matter there (the
    /// strips are sized to the budget instead).
    @Test func streamingIsNotRefusedForItsWindows() throws {
        #expect(try issues("prediction: {tile: 16384, blend: stream}").isEmpty)
        #expect(try issues("prediction: {tile: 16384}").isEmpty, "streaming is the default")
        #expect(try issues("prediction: {tile: 16384, blend: hann}").first?.key == "prediction.tile")
    }

    /// bf16 predicts in windows even with `blend: stream` (`windowsForBf16`), so `run --check`
    /// estimates its windows too: a tile too large for the budget is refused as at predict time.
    @Test func bf16IsEstimatedInWindowsLikeItPredicts() throws {
        #expect(try issues("prediction: {tile: 16384, blend: stream, precision: bf16}").first?.key == "prediction.tile")
        #expect(try issues("prediction: {tile: 16384, blend: stream, precision: fp32}").isEmpty)
    }

    @Test func anAbsurdMarginIsRefusedNamingTheMargin() throws {
        let found = try issues("prediction: {margin: 4096, batch_size: 16, blend: centre}")
        #expect(found.first?.key == "prediction.margin", "\(found)")
    }

    @Test func aBudgetRefusesTrainingNamingTheSettingThatSavesMost() throws {
        let found = try issues("memory: 256M\nprediction: {enabled: false}", training: "batch_size: 64")
        #expect(found.count == 1)
        // Halving the patch quarters the activations; halving the batch only halves them.
        #expect(found.first?.key == "tiling.patch")
        #expect(found.first?.problem.contains("training needs about") == true)
        #expect(found.first?.fix.contains("training.batch_size, model.widths and training.cache_megabytes count too") == true, "\(found)")
        #expect(found.first?.problem.hasSuffix("more than the memory budget of 256M") == true, "\(found)")
        #expect(try issues("memory: 64G\nprediction: {enabled: false}", training: "batch_size: 64").isEmpty)
        let wide = try issues("memory: 1G\nmodel: {widths: [4096]}\nprediction: {enabled: false}")
        #expect(wide.first?.key == "model.widths", "\(wide)")
        let cache = try issues("memory: 1G\nprediction: {enabled: false}", training: "cache_megabytes: 100000")
        #expect(cache.first?.key == "training.cache_megabytes", "\(cache)")
    }

    @Test func theMemoryKeyReadsSizesAndRefusesOthers() throws {
        #expect(try issues("memory: 8G").isEmpty)
        #expect(try issues("memory: 8589934592").isEmpty)
        let small = try issues("memory: 1M")
        #expect(small.first?.description.contains("memory: must be at least 64M, got 1M. Give 64M or more, e.g. 8G") == true, "\(small)")
        let text = try issues("memory: lots")
        #expect(text.first?.description.contains("memory: must be a memory size, got 'lots'") == true, "\(text)")
    }

    @Test func sizesReadAndPrintBack() throws {
        #expect(try ByteSize.parse("8G") == 8 << 30)
        #expect(try ByteSize.parse("512m") == 512 << 20)
        #expect(try ByteSize.parse("1.5GiB") == 3 << 29)
        #expect(try ByteSize.parse("4096") == 4096)
        #expect(try ByteSize.parse("-1G") == -(1 << 30))
        #expect(throws: SettingSyntaxError.self) { try ByteSize.parse("G") }
        #expect(throws: SettingSyntaxError.self) { try ByteSize.parse("1e30T") }
        #expect(ByteSize.text(Double(8 << 30)) == "8G")
        #expect(ByteSize.text(Double(3 << 29)) == "1.5G")
        #expect(ByteSize.text(123.4 * 0x1p30) == "123G")
    }

    /// The count made from the configuration is the built network's, without building it.
    @Test(arguments: [
        ModelArchitecture.unet(UNetConfiguration(inputChannels: 4, classes: 3, widths: [8, 16], bottleneckWidth: 16, bottleneckDilations: [1])),
        .unet(UNetConfiguration(inputChannels: 3, classes: 5, widths: [16, 32, 48], bottleneckWidth: 64, bottleneckDilations: [1, 2], upsampling: .transposed)),
        .unet(UNetConfiguration(inputChannels: 2, classes: 2, widths: [16], bottleneckWidth: 32, bottleneckDilations: [1], upsampling: .maxUnpooling)),
        .dilated(DilatedNetConfiguration(inputChannels: 4, classes: 6, width: 16, dilations: [1, 2, 1])),
    ])
    func parameterCountMatchesTheBuiltNetwork(_ a: ModelArchitecture) {
        let net = a.build(seed: 1)
        let built = (net.namedParameters + net.namedBuffers).reduce(0) { $0 + $1.1.count }
        #expect(a.parameterValues == Double(built))
    }

    @Test func estimatesGrowWithEverySetting() {
        let a = ModelArchitecture.unet(.r1)
        let base = MemoryBudget.trainingBytes(a, batch: 4, patch: 128, cacheMegabytes: 0)
        #expect(MemoryBudget.trainingBytes(a, batch: 8, patch: 128, cacheMegabytes: 0) > base)
        #expect(MemoryBudget.trainingBytes(a, batch: 4, patch: 256, cacheMegabytes: 0) > base)
        #expect(MemoryBudget.trainingBytes(a, batch: 4, patch: 128, cacheMegabytes: 1024) == base + 0x1p30)
        let window = MemoryBudget.window(a, tile: 512, margin: nil)
        #expect(window == 512 + 2 * PredictionGridRound.up(a.receptiveRadius, a.alignment))
        #expect(MemoryBudget.predictionBytes(a, batch: 2, window: window) < MemoryBudget.predictionBytes(a, batch: 2, window: 2 * window))
    }
}

enum PredictionGridRound {
    static func up(_ v: Int, _ a: Int) -> Int { (v + a - 1) / a * a }
}
