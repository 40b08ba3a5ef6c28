import Core
import Foundation
import GeoRaster
import Inference
import Metrics
import Testing
import Tiling
import TestSupport

@Suite(.enabled(if: TestData.available, "needs ../shared/data"))
struct MapEvaluatorTests {
    let labels = TestData.path("nc-landsat7/labels_landclass96.tif")
    static let classes = ["developed", "agriculture", "herbaceous", "shrubland", "forest", "water", "sediment"]

    /// A class map made from the labels: sediment (7) predicted as water (6), the first 100
    /// pixels of row 200 left as nodata.
    func makeMap(_ dir: TemporaryDirectory) throws -> String {
        let src = try Dataset(path: labels)
        let w = src.info.width, h = src.info.height
        let block = try src.read(window: Window(width: w, height: h))
        var bytes = block.values.map { UInt8($0 == 7 ? 6 : $0) }
        for c in 0..<100 { bytes[200 * w + c] = 255 }
        let path = dir.file("map.tif")
        let writer = try GeoTIFFWriter(path: path, profile: RasterProfile(like: src.info, dataType: .byte, nodata: 255))
        try writer.write(bytes, window: Window(width: w, height: h), band: 1)
        try writer.setClasses(Self.classes.enumerated().map { ClassEntry(value: $0 + 1, name: $1, color: RGBA(0, 0, 0)) })
        try writer.finish()
        return path
    }

    @Test func scoresAKnownMap() throws {
        let dir = TemporaryDirectory()
        let map = try makeMap(dir)
        let r = try MapEvaluator.evaluate(prediction: map, labels: labels, ignore: [0])
        #expect(r.unpredictedPixels == 100)
        let rep = r.report
        #expect(rep.classes.map(\.value) == [1, 2, 3, 4, 5, 6, 7])
        #expect(rep.classes.map(\.name) == Self.classes, "names come from the map's categories")
        let sediment = rep.classes[6], water = rep.classes[5]
        #expect(sediment.referencePixels > 150 && sediment.referencePixels <= 194)
        #expect(sediment.predictedPixels == 0 && sediment.iou == 0)
        #expect(rep.confusionMatrix[6][5] == sediment.referencePixels)
        #expect(water.recall == 1)
        #expect(rep.pixels == 489 * 443 - r.ignoredPixels - 100)
        #expect(rep.overallAccuracy < 1 && rep.overallAccuracy > 0.99)
    }

    @Test func refusesMapsOnAnotherGrid() throws {
        let other = TestData.path("ukis-cloud/landsat7_mask.tif")
        let error = #expect(throws: RasterError.self) { try MapEvaluator.evaluate(prediction: other, labels: labels) }
        #expect(error?.kind == .gridMismatch)
        #expect(error?.description.contains("size 489×443 instead of 512×512") == true)
        #expect(error?.description.contains("gdalwarp") == true)
    }

    @Test func commandLinePrintsJSON() throws {
        let dir = TemporaryDirectory()
        let map = try makeMap(dir)
        let r = try Tool.run(Tool.terraseg, ["evaluate", "--prediction", map, "--labels", labels, "--ignore", "0", "--json"])
        #expect(r.status == 0, "\(r.stderr)")
        let json = try #require(try JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        let report = try #require(json["report"] as? [String: Any])
        #expect((report["mean_iou"] as? Double ?? 0) > 0.8)
        #expect((report["classes"] as? [[String: Any]])?.count == 7)
        let text = try Tool.run(Tool.terraseg, ["evaluate", "--prediction", map, "--labels", labels, "--ignore", "0"])
        #expect(text.stdout.contains("Confusion matrix"))
        #expect(text.stdout.contains("sediment"))
    }
}

/// Maps of remapped labels are scored against the labels remapped the same way (`data.remap`).
@Suite struct RemappedEvaluationTests {
    @Test func labelsAreRemappedBeforeScoring() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 40, height: 30, bands: 2)
        let same = try MapEvaluator.evaluate(prediction: scene.labels, labels: scene.labels, ignore: [0])
        #expect(same.report.overallAccuracy == 1)
        // Swapping classes 1 and 2 in the reference only: those pixels no longer agree.
        let swap = try LabelRemap(rules: [(from: [1], to: 2), (from: [2], to: 1), (from: [3], to: 3)], ignore: [0])
        let swapped = try MapEvaluator.evaluate(prediction: scene.labels, labels: scene.labels, ignore: [0], remap: swap)
        #expect(swapped.report.overallAccuracy < 0.9)
    }
}
