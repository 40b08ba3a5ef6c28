import Core
import Foundation
import GeoRaster
@testable import Inference
import Testing
import TestSupport
import Tiling

/// What goes beside each predicted map: the minimum mapping unit applied to the map, its
/// QGIS style and its class polygons, in the windowed and the streamed paths alike.
@Suite struct MapSiblingWriterTests {
    let dir = TemporaryDirectory("terraseg-siblings")

    func predictor(_ s: SyntheticScene, blend: BlendMode, unit: Int) throws -> ScenePredictor {
        let stats = try BandStatistics.compute(Dataset(path: s.image))
        let inputs = ModelInputs(bands: nil, normalizer: Normalizer(statistics: stats, method: .standardize), classMap: TinyModel.classMap)
        var o = PredictionOptions()
        o.blend = blend
        o.polygons = true
        o.minMappingUnit = unit
        o.mmuConnectedness = .eight
        return try ScenePredictor(model: BoxModel(channels: 4, classes: 3, radius: 1), inputs: inputs, options: o)
    }

    @Test(arguments: [BlendMode.centre, .stream])
    func everyMapGetsItsStyleAndPolygonsAfterTheSieve(_ blend: BlendMode) throws {
        let s = try SyntheticScene(in: dir.path, width: 150, height: 110)
        let unit = 12
        let out = dir.file("maps-\(blend)")
        let reports = try predictor(s, blend: blend, unit: unit).run(jobs: [SceneJob(paths: [s.image])], directory: out)
        let report = try #require(reports.first)
        #expect(report.status == .written)
        let siblings = MapSiblings(map: report.outputs.map)
        #expect(report.outputs.polygons == siblings.polygons && report.outputs.style == siblings.style)
        for file in [report.outputs.map, siblings.style, siblings.polygons] { #expect(FileManager.default.fileExists(atPath: file), "\(file)") }
        #expect((report.prediction?.polygons?.polygons ?? 0) > 0)
        let names = try FileManager.default.contentsOfDirectory(atPath: out)
        #expect(!names.contains { $0.hasPrefix(".") }, "temporary files left: \(names)")
        let (map, width) = try ClassPatches.read(report.outputs.map)
        #expect(ClassPatches(map, width: width, connectedness: .eight).sizes.allSatisfy { $0 >= unit })

        // Without the unit the same model leaves patches below it: the sieve did the work.
        let plain = try predictor(s, blend: blend, unit: 0).run(jobs: [SceneJob(paths: [s.image])], directory: out + "-plain")
        let (raw, _) = try ClassPatches.read(plain[0].outputs.map)
        #expect(ClassPatches(raw, width: width, connectedness: .eight).sizes.contains { $0 < unit })
    }

    /// A scene is up to date only with its style and polygons: a missing one is remade.
    @Test func aMissingSiblingRemakesTheScene() throws {
        let s = try SyntheticScene(in: dir.path, name: "again", width: 96, height: 80)
        let p = try predictor(s, blend: .centre, unit: 4)
        let out = dir.file("again")
        _ = try p.run(jobs: [SceneJob(paths: [s.image])], directory: out)
        #expect(try p.run(jobs: [SceneJob(paths: [s.image])], directory: out)[0].status == .skipped)
        let outputs = SceneOutputs.named(stem: "again", in: out, options: p.options)
        try FileManager.default.removeItem(atPath: try #require(outputs.polygons))
        #expect(try p.run(jobs: [SceneJob(paths: [s.image])], directory: out)[0].status == .written)
        #expect(FileManager.default.fileExists(atPath: outputs.polygons!))
    }
}
