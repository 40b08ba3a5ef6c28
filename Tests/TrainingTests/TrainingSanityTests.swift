import Core
import Foundation
import GeoRaster
import Testing
import TestSupport
import Tiling
@testable import Training

/// Training data checked before the first epoch, validation over each pixel once, and the
/// best-epoch rule.
@Suite struct TrainingSanityTests {
    let dir = TemporaryDirectory("terraseg-sanity")

    func metrics(_ epoch: Int, miou: Double?, loss: Double?) -> EpochMetrics {
        EpochMetrics(epoch: epoch, trainLoss: 1, validationLoss: loss, meanIoU: miou, learningRate: 0.01, seconds: 1, patchesPerSecond: 1)
    }

    /// A higher mIoU wins; an equal mIoU wins only with a lower validation loss.
    @Test func tiesInMeanIoUGoToTheLowerValidationLoss() {
        let best = metrics(1, miou: 0.5, loss: 0.8)
        #expect(CheckpointKeeper.isBetter(metrics(2, miou: 0.5, loss: 0.6), than: best, bestMeanIoU: 0.5))
        #expect(!CheckpointKeeper.isBetter(metrics(2, miou: 0.5, loss: 0.9), than: best, bestMeanIoU: 0.5))
        #expect(!CheckpointKeeper.isBetter(metrics(2, miou: 0.5, loss: 0.8), than: best, bestMeanIoU: 0.5))
        #expect(CheckpointKeeper.isBetter(metrics(2, miou: 0.6, loss: 2), than: best, bestMeanIoU: 0.5))
        #expect(!CheckpointKeeper.isBetter(metrics(2, miou: 0.4, loss: 0.1), than: best, bestMeanIoU: 0.5))
        #expect(CheckpointKeeper.isBetter(metrics(1, miou: 0.1, loss: nil), than: nil, bestMeanIoU: nil))
        #expect(!CheckpointKeeper.isBetter(metrics(2, miou: .nan, loss: 0.1), than: best, bestMeanIoU: 0.5))
    }

    /// Labels of one class only are refused before training, naming the class and the fix.
    @Test func oneClassIsRefused() throws {
        let s = try SyntheticScene(in: dir.path, width: 96, height: 80)
        let labels = try RasterMaker.write(dir.file("one.tif"), profile: RasterProfile(like: try Dataset(path: s.image).info, dataType: .byte)) { _, _, _ in 2 }
        var data = TinyModel.data([s])
        data.scenes[0].labels = labels
        let scenes = try data.openScenes()
        let architecture = try TinyModel.model.architecture(inputChannels: 4, classes: 3)
        let trainer = try Trainer(scenes: scenes, architecture: architecture, options: TinyModel.options(epochs: 1), output: dir.file("model"))
        trainer.progress.quiet = true
        let error = #expect(throws: RasterError.self) { try trainer.run() }
        let text = error?.description ?? ""
        #expect(text.contains("is class 'forest'") && text.contains("background:"), "\(text)")
    }

    /// The census counts each pixel once, and warns about classes the training area lacks.
    @Test func censusWarnsAboutClassesMissingFromTraining() {
        let census = ClassCensus(train: [10, 0, 0], validation: [3, 4, 0])
        let warnings = census.warnings(names: ["water", "forest", "bare"])
        #expect(warnings.count == 2)
        #expect(warnings[0].contains("'forest' has 4 pixels in the validation area but none in the training area"))
        #expect(warnings[1].contains("'bare' has no labelled pixel"))
        #expect(census.table(names: ["water", "forest", "bare"]).count == 5)
        #expect(throws: RasterError.self) { try census.checkSeveralClasses(names: ["water", "forest", "bare"], path: "labels.tif") }
        #expect(throws: Never.self) { try ClassCensus(train: [1, 1, 0], validation: [0, 0, 0]).checkSeveralClasses(names: ["a", "b", "c"], path: "x") }
    }

    /// Validation patches overlap (32 px every 16 px), yet the confusion matrix of an epoch
    /// holds each labelled validation pixel once: its total equals the labelled pixels of the
    /// union of the validation windows.
    @Test func validationCountsEachPixelOnce() throws {
        let s = try SyntheticScene(in: dir.path, width: 96, height: 160)
        let trainer = try TinyModel.trainer([s], output: dir.file("model"), options: TinyModel.options(epochs: 1))
        let data = try trainer.prepareData()
        var labelled = Set<Int>(), perPatch = 0
        var patch = Patch()
        for r in data.validation {
            try trainer.scenes[0].readPatch(r.window, normalizer: nil, into: &patch)
            for (i, t) in patch.target.enumerated() where t >= 0 {
                labelled.insert((r.window.row + i / 32) * 96 + r.window.column + i % 32)
                perPatch += 1
            }
        }
        #expect(perPatch > labelled.count, "the validation patches overlap")
        let result = try trainer.run()
        let matrix = try #require(result.history.first?.confusionMatrix)
        #expect(matrix.joined().reduce(0, +) == labelled.count)
        let census = try ClassCensus(scenes: trainer.scenes, train: data.train, validation: data.validation, classes: 3)
        #expect(census.validation.reduce(0, +) == labelled.count)
    }

    /// One-class vector labels through the data spec: `burn:` and `background:` must be class
    /// values; with both, the scene has labels of two classes.
    @Test func burnedVectorScenesOpenWithBackground() throws {
        let s = try SyntheticScene(in: dir.path, width: 96, height: 80)
        let path = dir.file("houses.geojson")
        try #"{"type": "FeatureCollection", "crs": {"type": "name", "properties": {"name": "urn:ogc:def:crs:EPSG::32617"}}, "features": [{"type": "Feature", "properties": {}, "geometry": {"type": "Polygon", "coordinates": [[[600500, 4499500], [600800, 4499500], [600800, 4499300], [600500, 4499300], [600500, 4499500]]]}}]}"#
            .write(toFile: path, atomically: true, encoding: .utf8)
        var data = TinyModel.data([s])
        data.scenes = [SceneSpec(image: [s.image], vectorLabels: path, burn: 9)]
        let error = #expect(throws: TerraSegError.self) { try data.openScenes() }
        #expect(error?.description.contains("burn: 9 is not a class value") == true, "\(String(describing: error))")
        data.scenes = [SceneSpec(image: [s.image], vectorLabels: path, burn: 3, background: 1)]
        let scene = try #require(try data.openScenes().first)
        var patch = Patch()
        try scene.readPatch(Window(width: 96, height: 80), normalizer: nil, into: &patch)
        #expect(patch.target.filter { $0 == 2 }.count == 30 * 20)
        #expect(patch.target.filter { $0 == 0 }.count > 3000)
    }
}
