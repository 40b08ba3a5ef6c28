import Core
import Foundation
import GeoRaster
import Inference
import ModelIO
import Models
import Testing
import TestSupport
import Tiling
import Training

/// A small labelled scene cut from nc-landsat7 (nodata corner included), written once.
enum SmallScene {
    static let paths: (image: String, labels: String) = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("terraseg-train-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        let win = Window(column: 0, row: 0, width: 96, height: 96)
        return (try! RasterMaker.crop(TestData.path("nc-landsat7/image_6band.tif"), window: win,
                                      to: dir.appendingPathComponent("image.tif").path, type: .float32, nodata: -99999),
                try! RasterMaker.crop(TestData.path("nc-landsat7/labels_landclass96.tif"), window: win,
                                      to: dir.appendingPathComponent("labels.tif").path, type: .byte))
    }()

    static let classes = "1=developed,2=agriculture,3=herbaceous,4=shrubland,5=forest,6=water,7=sediment"

    static func data() throws -> DataSpec {
        DataSpec(scenes: [SceneSpec(image: [paths.image], labels: paths.labels)], classes: try ClassSpec.parseList(classes), ignore: [0])
    }

    static func options(epochs: Int = 2) -> TrainingOptions {
        var o = TrainingOptions()
        o.patchSize = 32
        o.stride = 32
        o.epochs = epochs
        o.batchSize = 4
        o.split = SplitOptions(method: .rows, trainFraction: 0.67)
        o.seed = 7
        return o
    }

    static func trainer(output: String, epochs: Int = 2) throws -> Trainer {
        let scenes = try data().openScenes()
        var model = ModelSpec()
        model.widths = [8, 16]
        let arch = try model.architecture(inputChannels: 6, classes: 7)
        let t = try Trainer(scenes: scenes, architecture: arch, options: options(epochs: epochs), output: output)
        t.progress.quiet = true
        return t
    }
}

/// One serialized suite for every in-process training: `StopSignal` is process-wide, so an
/// interrupted run must not overlap another training. The real-data tests run when
/// ../shared/data is here; the synthetic ones always.
@Suite(.serialized) struct TrainerTests {
    static let realData = Testing.ConditionTrait.enabled(if: TestData.available, "needs ../shared/data")

    @Test(realData) func trainsAndWritesALoadableBundle() throws {
        let dir = TemporaryDirectory()
        let out = dir.file("model")
        let result = try SmallScene.trainer(output: out).run()
        #expect(result.bundle == out && !result.interrupted)
        #expect(result.history.count == 2)
        #expect(result.trainPatches > 0 && result.validationPatches > 0)
        #expect(result.history.allSatisfy { $0.trainLoss.isFinite && $0.meanIoU != nil })
        let names = Set(try FileManager.default.contentsOfDirectory(atPath: out))
        #expect(names == ["model.json", "model.safetensors", "metrics.jsonl", "training.json"])
        let bundle = try ModelBundle.read(out)
        #expect(bundle.bands == [1, 2, 3, 4, 5, 6])
        #expect(bundle.classes.names.last == "sediment")
        #expect(bundle.normalization.method == .standardize)
        #expect(bundle.receptiveField == bundle.architecture.receptiveField && bundle.alignment == 4)
        #expect(bundle.provenance.epochs == 2)
        let (tensors, _) = try SafeTensors.read(out + "/model.safetensors")
        #expect(tensors["enc1.conv1.weight"]?.shape == [8, 6, 3, 3])
        #expect(tensors["enc1.bn1.running_var"]?.shape == [8])
        #expect(tensors["head.bias"]?.shape == [7])
        // Loading the bundle reproduces the trained network's predictions exactly.
        let model = try NetworkSceneModel(bundleDirectory: out)
        let input = [Float](repeating: 0.25, count: 2 * 6 * 32 * 32)
        var a = [Float](repeating: 0, count: 2 * 7 * 32 * 32), b = a
        try input.withUnsafeBufferPointer { i in try a.withUnsafeMutableBufferPointer { try model.predict(i, batch: 2, size: 32, into: $0) } }
        let again = try NetworkSceneModel(bundleDirectory: out)
        try input.withUnsafeBufferPointer { i in try b.withUnsafeMutableBufferPointer { try again.predict(i, batch: 2, size: 32, into: $0) } }
        #expect(a == b)
        // Probabilities: each pixel's 7 class scores sum to one.
        let n = 32 * 32
        #expect((0..<n).allSatisfy { p in abs((0..<7).reduce(Float(0)) { $0 + a[$1 * n + p] } - 1) < 1e-4 })
    }

    @Test(realData) func anInterruptedRunResumesWhereItStopped() throws {
        let dir = TemporaryDirectory()
        // Reference: an uninterrupted run.
        let full = try SmallScene.trainer(output: dir.file("full")).run()
        // Stop during epoch 2 (after its first batch), then resume.
        let out = dir.file("resumed")
        let t = try SmallScene.trainer(output: out)
        var stopNow = false
        t.stopRequested = { stopNow }
        t.afterStep = { epoch, batch in if epoch == 1 && batch == 0 { stopNow = true } }
        let stopped = try t.run()
        #expect(stopped.interrupted && stopped.bundle == nil)
        #expect(!FileManager.default.fileExists(atPath: out), "no bundle that looks finished")
        let work = try FileManager.default.contentsOfDirectory(atPath: out + ".training")
        #expect(work.allSatisfy { !$0.contains("partial") }, "no half-written file: \(work)")
        let resumed = try SmallScene.trainer(output: out).run(resume: true)
        #expect(!resumed.interrupted && resumed.history.count == 2)
        #expect(resumed.history.last?.trainLoss == full.history.last?.trainLoss)
        let (a, _) = try SafeTensors.read(dir.file("full") + "/model.safetensors")
        let (b, _) = try SafeTensors.read(out + "/model.safetensors")
        #expect(a == b, "the resumed run ends with the same weights as the uninterrupted one")
    }

    @Test(realData) func clearErrors() throws {
        let dir = TemporaryDirectory()
        // Missing file.
        var data = try SmallScene.data()
        data.scenes[0].image = [dir.file("missing.tif")]
        let missing = #expect(throws: RasterError.self) { try data.openScenes() }
        #expect(missing?.description.contains("missing.tif: file not found") == true)
        // Unwritable output directory.
        try "x".write(toFile: dir.file("file"), atomically: true, encoding: .utf8)
        let unwritable = #expect(throws: TerraSegError.self) { try SmallScene.trainer(output: dir.file("file/model")).run() }
        #expect(unwritable?.description.contains("does not exist") == true)
        // Patch size not a multiple of the U-Net's down-sampling.
        var o = SmallScene.options()
        o.patchSize = 30
        let scenes = try SmallScene.data().openScenes()
        let arch = try ModelSpec().architecture(inputChannels: 6, classes: 7)
        let e = #expect(throws: RasterError.self) { try Trainer(scenes: scenes, architecture: arch, options: o, output: dir.file("m")) }
        #expect(e?.description.contains("not a multiple of 16") == true)
    }

    // MARK: - Synthetic scenes (no shared data)

    /// Maps `scene` with the bundle at `bundle` and scores the map against the labels.
    static func meanIoU(bundle: String, on scene: SyntheticScene, dir: TemporaryDirectory) throws -> Double {
        let model = try NetworkSceneModel(bundleDirectory: bundle)
        var o = PredictionOptions()
        o.tileSize = 64
        let map = dir.file(URL(fileURLWithPath: bundle).lastPathComponent + "_map.tif")
        _ = try ScenePredictor(model: model, inputs: model.inputs, options: o).predict(paths: [scene.image], outputs: SceneOutputs(map: map))
        return try MapEvaluator.evaluate(prediction: map, labels: scene.labels, ignore: [SyntheticScene.ignoreValue]).report.meanIoU
    }

    /// A tiny U-Net learns the synthetic pattern in three epochs (Float32 and UInt16 inputs):
    /// its map of the scene scores a mean IoU that seeded, untrained weights do not reach,
    /// and the bundle it writes loads and predicts like the trained network.
    @Test(arguments: SyntheticScene.Kind.allCases)
    func aTinyUNetLearnsTheSyntheticPattern(_ kind: SyntheticScene.Kind) throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 150, height: 110, bands: 4, kind: kind)
        let result = try TinyModel.train(scene, output: dir.file("model"), epochs: 3)
        #expect(result.bundle == dir.file("model") && !result.interrupted && result.epochsCompleted == 3)
        #expect(result.trainPatches > 0 && result.validationPatches > 0)
        #expect(result.history.allSatisfy { $0.trainLoss.isFinite && $0.meanIoU != nil })
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: dir.file("model"))) == ["model.json", "model.safetensors", "metrics.jsonl", "training.json"])
        let bundle = try ModelBundle.read(dir.file("model"))
        #expect(bundle.bands == [1, 2, 3, 4] && bundle.classes.names == ["water", "forest", "bare"])
        #expect(bundle.alignment == 4 && bundle.patchSize == 32 && bundle.provenance.epochs == 3)
        #expect(bundle.bandDescriptions.first == "synthetic band 1")
        let (tensors, _) = try SafeTensors.read(dir.file("model/model.safetensors"))
        #expect(tensors["enc1.conv1.weight"]?.shape == [8, 4, 3, 3] && tensors["head.bias"]?.shape == [3])

        try TinyModel.seeded(scene, output: dir.file("untrained"))
        let trained = try Self.meanIoU(bundle: dir.file("model"), on: scene, dir: dir)
        let untrained = try Self.meanIoU(bundle: dir.file("untrained"), on: scene, dir: dir)
        #expect(trained > 0.75, "mean IoU of the trained tiny U-Net: \(trained)")
        #expect(untrained < 0.5, "mean IoU of seeded weights: \(untrained)")
        #expect((result.best?.meanIoU ?? 0) > 0.6, "validation mean IoU: \(result.best?.meanIoU ?? .nan)")
    }

    /// Stopped after the first batch of epoch 2 and resumed, a run ends with the weights and
    /// losses of the uninterrupted run, and leaves no bundle or half-written file meanwhile.
    @Test func anInterruptedSyntheticRunResumesExactly() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 120, height: 100, bands: 3, seed: 3)
        let full = try TinyModel.trainer([scene], output: dir.file("full")).run()
        let out = dir.file("resumed")
        let t = try TinyModel.trainer([scene], output: out)
        var stopNow = false
        t.stopRequested = { stopNow }
        t.afterStep = { epoch, batch in if epoch == 1 && batch == 0 { stopNow = true } }
        let stopped = try t.run()
        #expect(stopped.interrupted && stopped.bundle == nil && stopped.epochsCompleted == 1)
        #expect(!FileManager.default.fileExists(atPath: out), "no bundle that looks finished")
        let work = try FileManager.default.contentsOfDirectory(atPath: out + ".training")
        #expect(work.contains("last.ckpt") && work.allSatisfy { !$0.contains("partial") }, "\(work)")
        let resumed = try TinyModel.trainer([scene], output: out).run(resume: true)
        #expect(!resumed.interrupted && resumed.history.count == 2)
        #expect(resumed.history.map(\.trainLoss) == full.history.map(\.trainLoss))
        #expect(resumed.history.map(\.meanIoU) == full.history.map(\.meanIoU))
        let (a, _) = try SafeTensors.read(dir.file("full") + "/model.safetensors")
        let (b, _) = try SafeTensors.read(out + "/model.safetensors")
        #expect(a == b, "the resumed run ends with the same weights as the uninterrupted one")
    }

    /// With no patch cache every patch is read from disk each epoch by the reader thread, ahead
    /// of the network: the run is the cached run, loss for loss and weight for weight.
    @Test func patchesReadAheadFromDiskTrainAsCachedOnes() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 120, height: 100, bands: 3, seed: 5)
        var uncached = TinyModel.options()
        uncached.cacheMegabytes = 0
        let cachedRun = try TinyModel.trainer([scene], output: dir.file("cached")).run()
        let readRun = try TinyModel.trainer([scene], output: dir.file("read"), options: uncached).run()
        #expect(readRun.history.count == 2 && readRun.history.allSatisfy { $0.patchesPerSecond > 0 })
        #expect(readRun.history.map(\.trainLoss) == cachedRun.history.map(\.trainLoss))
        #expect(readRun.history.map(\.meanIoU) == cachedRun.history.map(\.meanIoU))
        let (a, _) = try SafeTensors.read(dir.file("cached") + "/model.safetensors")
        let (b, _) = try SafeTensors.read(dir.file("read") + "/model.safetensors")
        #expect(a == b, "patches read ahead give the weights of cached patches")
    }

    @Test func clearErrorsOnSyntheticData() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 96, height: 80, bands: 2)
        // Missing file.
        var data = TinyModel.data([scene])
        data.scenes[0].image = [dir.file("missing.tif")]
        let missing = #expect(throws: RasterError.self) { try data.openScenes() }
        #expect(missing?.description.contains("missing.tif: file not found") == true)
        // A label value outside the class map names the file, the value and the fix.
        var unknown = TinyModel.data([scene])
        unknown.ignore = []
        let opened = try unknown.openScenes()
        let arch = try TinyModel.model.architecture(inputChannels: 2, classes: 3)
        let e0 = #expect(throws: RasterError.self) { try Trainer(scenes: opened, architecture: arch, options: TinyModel.options(), output: dir.file("m1")).run() }
        #expect(e0?.description.contains("label value 0") == true && e0?.description.contains("not in the class map") == true)
        // Unwritable output directory.
        try "x".write(toFile: dir.file("file"), atomically: true, encoding: .utf8)
        let unwritable = #expect(throws: TerraSegError.self) { try TinyModel.trainer([scene], output: dir.file("file/model")).run() }
        #expect(unwritable?.description.contains("does not exist") == true)
        // Patch size not a multiple of the U-Net's down-sampling (4 for two levels).
        var o = TinyModel.options()
        o.patchSize = 30
        let e = #expect(throws: RasterError.self) { try TinyModel.trainer([scene], output: dir.file("m"), options: o) }
        #expect(e?.description.contains("not a multiple of 4") == true)
    }

    @Test func nanInTheInputIsExcludedNotPropagated() throws {
        let dir = TemporaryDirectory()
        let img = try RasterMaker.write(dir.file("nan.tif"), profile: RasterMaker.utmProfile(width: 32, height: 32, bands: 2)) { b, c, r in
            (c + r) % 5 == 0 ? .nan : Float(b * 10 + c % 3)
        }
        let lab = try RasterMaker.write(dir.file("lab.tif"), profile: RasterMaker.utmProfile(width: 32, height: 32, type: .byte)) { _, c, _ in c < 16 ? 1 : 2 }
        let scene = try LabelledScene(image: Dataset(path: img), labels: Dataset(path: lab),
                                      classMap: ClassMap(values: [(1, "a"), (2, "b")]))
        var patch = Patch()
        try scene.readPatch(Window(width: 32, height: 32), normalizer: nil, into: &patch)
        #expect(patch.image.allSatisfy { !$0.isNaN })
        #expect(patch.target[0] == -1 && patch.target[1] >= 0, "NaN pixels are excluded from loss and metrics")
    }
}

@Suite struct ScheduleTests {
    @Test func warmupCosineAndStep() {
        var s = ScheduleOptions()
        s.kind = .cosine
        s.warmupEpochs = 1
        #expect(s.factor(at: 0.5, epochs: 11) == 0.5)
        #expect(abs(s.factor(at: 1, epochs: 11) - 1) < 1e-6)
        #expect(abs(s.factor(at: 6, epochs: 11) - 0.5) < 1e-6)
        #expect(s.factor(at: 11, epochs: 11) < 1e-6)
        s = ScheduleOptions()
        s.kind = .step
        s.stepEpochs = 3
        s.gamma = 0.5
        #expect(s.factor(at: 2.9, epochs: 10) == 1 && s.factor(at: 3, epochs: 10) == 0.5 && s.factor(at: 6.1, epochs: 10) == 0.25)
    }
}
