import Core
import Foundation
import GeoRaster
@testable import Inference
import Testing
import TestSupport
import Tiling

/// Prediction fitted to the scene: the model/scene check, the tile on small scenes, batch
/// progress and output names.
@Suite struct SceneFitTests {
    let dir = TemporaryDirectory("terraseg-fit")

    func inputs(_ s: SyntheticScene, profile: SceneProfile? = nil, bands: [Int]? = nil) throws -> ModelInputs {
        let stats = try BandStatistics.compute(Dataset(path: s.image), bands: bands)
        return ModelInputs(bands: bands, normalizer: Normalizer(statistics: stats, method: .standardize), classMap: TinyModel.classMap,
                           profile: profile, statistics: stats)
    }

    func predict(_ s: SyntheticScene, inputs: ModelInputs, channels: Int = 4, allowMismatch: Bool = false) throws -> ScenePrediction {
        var o = PredictionOptions()
        o.allowMismatch = allowMismatch
        o.overwrite = true
        let p = try ScenePredictor(model: BoxModel(channels: channels, classes: 3, radius: 1), inputs: inputs, options: o)
        return try p.predict(paths: [s.image], outputs: SceneOutputs(map: dir.file("map.tif")))
    }

    /// A 61×61 scene runs one 64-px core (the scene rounded up to the alignment, 16), not the
    /// default 512-px tile; larger scenes keep the tile.
    @Test func theTileShrinksOnA61By61Scene() throws {
        let s = try SyntheticScene(in: dir.path, width: 61, height: 61)
        let model = BoxModel(channels: 4, classes: 3, radius: 2, pool: 16)
        let p = try ScenePredictor(model: model, inputs: inputs(s), options: PredictionOptions())
        #expect(p.grid(width: 61, height: 61).tileSize == 64)
        #expect(p.grid(width: 2000, height: 61).tileSize == 512)
        let run = try p.predict(paths: [s.image], outputs: SceneOutputs(map: dir.file("small_map.tif")))
        #expect(run.tiles == 1)
        #expect(model.sizes.allSatisfy { $0 == 64 + 2 * 32 }, "\(model.sizes)")
    }

    /// The band count must match the training scenes', always.
    @Test func aSceneWithAnotherBandCountIsRefused() throws {
        let s = try SyntheticScene(in: dir.path, width: 48, height: 40, bands: 4)
        let profile = SceneProfile(bandCount: 3, dataType: "Float32", pixelSize: 10)
        let error = #expect(throws: RasterError.self) {
            try predict(s, inputs: inputs(s, profile: profile, bands: [1, 2, 3]), channels: 3, allowMismatch: true)
        }
        #expect(error?.description.contains("the scene has 4 bands but the model was trained on scenes of 3 bands") == true, "\(String(describing: error))")
    }

    /// Another data type family, or a pixel size more than 1.5× off, is refused unless
    /// allowed; 1.4× passes.
    @Test func typeAndPixelSizeMismatchesNeedAllowMismatch() throws {
        let s = try SyntheticScene(in: dir.path, width: 48, height: 40, bands: 4)  // Float32, 10 m
        let uint16 = SceneProfile(bandCount: 4, dataType: "UInt16", pixelSize: 10)
        let typeError = #expect(throws: RasterError.self) { try predict(s, inputs: inputs(s, profile: uint16)) }
        #expect(typeError?.description.contains("data type Float32 (floating point) but the model was trained on UInt16 (16-bit integer)") == true,
                "\(String(describing: typeError))")
        #expect(typeError?.description.contains("--allow-mismatch (prediction.allow_mismatch: true)") == true)
        let coarse = SceneProfile(bandCount: 4, dataType: "Float32", pixelSize: 30)
        let sizeError = #expect(throws: RasterError.self) { try predict(s, inputs: inputs(s, profile: coarse)) }
        #expect(sizeError?.description.contains("pixel size 10 but the model was trained on 30") == true, "\(String(describing: sizeError))")
        _ = try predict(s, inputs: inputs(s, profile: coarse), allowMismatch: true)
        _ = try predict(s, inputs: inputs(s, profile: SceneProfile(bandCount: 4, dataType: "Float64", pixelSize: 14)))
    }

    /// A scene the bundle's recipe reads onto the training resolution is checked as the file it
    /// is: a UInt16 scene at 10 m, read onto 5 m through the warper's Float32, matches a UInt16
    /// model (it was refused as "data type Float32"), and a bundle whose profile recorded that
    /// Float32 (trained on a warped first band) matches it too; the map is on the 5 m grid.
    @Test func aSceneReadOntoTheTrainingGridIsCheckedAsItsFile() throws {
        let s = try SyntheticScene(in: dir.path, name: "u16", width: 48, height: 40, bands: 4, kind: .uint16)
        let recipe = SceneRecipe(sources: [.init(name: nil, bands: 4, resampling: nil, nodata: nil, resolution: 10)],
                                 resolution: 5, crs: nil, gridFromFirstSource: false)
        let warped = try openRaster([s.image], recipe: recipe).info
        #expect(warped.bands[0].dataType == .float32 && warped.bands[0].fileType == .uint16)
        #expect(SceneProfile(info: warped).dataType == "UInt16")
        for trained in ["UInt16", "Float32"] {
            var i = try inputs(s, profile: SceneProfile(bandCount: 4, dataType: trained, pixelSize: 5))
            i.recipe = recipe
            let run = try predict(s, inputs: i)
            #expect(run.width == 96 && run.height == 80, "\(trained): \(run.width)×\(run.height)")
        }
        var other = try inputs(s, profile: SceneProfile(bandCount: 4, dataType: "Byte", pixelSize: 5))
        other.recipe = recipe
        let error = #expect(throws: RasterError.self) { try predict(s, inputs: other) }
        #expect(error?.description.contains("data type UInt16 (16-bit integer) but the model was trained on Byte") == true, "\(String(describing: error))")
    }

    /// A model trained in degrees given a scene in metres (10 m pixels, a 0.0001° training
    /// resolution): a bundle that keeps its training CRS reads the scene onto that CRS at that
    /// resolution (it was refused as "resolution: … gives a …×… grid; give the resolution in
    /// metres", a key the user never gave); an older bundle, which does not know the training
    /// CRS, refuses it naming the file, the factor and the gdalwarp fix. A resolution that would
    /// coarsen the scene 3000× is refused too.
    @Test func aSceneInOtherUnitsIsReadOntoTheTrainingCRS() throws {
        let s = try SyntheticScene(in: dir.path, name: "utm", width: 48, height: 40, bands: 4)
        let trained = try SceneRecipe(specs: [SourceSpec(files: [s.image])], grid: GridSpec(), scene: Dataset(path: s.image).info)
        #expect(trained.trainingCRS == "EPSG:32617")
        let encoder = JSONEncoder(), decoder = JSONDecoder()
        (encoder.keyEncodingStrategy, decoder.keyDecodingStrategy) = (.convertToSnakeCase, .convertFromSnakeCase)  // as bundles are
        let json = try encoder.encode(trained)
        #expect(String(decoding: json, as: UTF8.self).contains("\"training_crs\":\"EPSG:32617\""))
        #expect(try decoder.decode(SceneRecipe.self, from: json) == trained, "the training CRS survives the bundle")
        var degrees = SceneRecipe(sources: [.init(name: nil, bands: 4, resampling: nil, nodata: nil, resolution: 0.0001)],
                                  resolution: 0.0001, crs: nil, gridFromFirstSource: true, trainingCRS: "EPSG:4326")
        let read = try openRaster([s.image], recipe: degrees).info
        #expect(read.crs?.epsg == 4326 && read.geoTransform?.pixelWidth == 0.0001, "\(String(describing: read.crs)) \(String(describing: read.geoTransform))")
        #expect(read.width > 40 && read.width < 60, "480 m of scene at 0.0001° (about 8.4 m at 40° N): \(read.width)")
        degrees.trainingCRS = nil
        let error = #expect(throws: RasterError.self) { try openRaster([s.image], recipe: degrees) }
        let text = error?.description ?? ""
        #expect(text.contains(s.image) && text.contains("its pixels (10 metre) are 100000× the resolution 0.0001"), "\(text)")
        #expect(text.contains("gdalwarp -tr 0.0001 0.0001"), "\(text)")
        let coarse = SceneRecipe(sources: degrees.sources, resolution: 30_000, crs: nil, gridFromFirstSource: false, trainingCRS: "EPSG:32617")
        let e2 = #expect(throws: RasterError.self) { try openRaster([s.image], recipe: coarse) }
        #expect(e2?.description.contains("its pixels (10 metre) are 1/3000 of the resolution 30000") == true, "\(String(describing: e2))")
    }

    /// A band whose mean lies far from the training statistics is named in a warning.
    @Test func shiftedBandMeansAreReported() throws {
        let s = try SyntheticScene(in: dir.path, width: 150, height: 110, bands: 4)
        var stats = try BandStatistics.compute(Dataset(path: s.image))
        let source = try Dataset(path: s.image)
        #expect(try SceneCheck.meanShifts(source: source, bands: [1, 2, 3, 4], statistics: stats).isEmpty)
        stats.mean[2] += 8 * stats.std[2]
        let warnings = try SceneCheck.meanShifts(source: source, bands: [1, 2, 3, 4], statistics: stats)
        #expect(warnings.count == 1 && warnings[0].contains("band 3 has mean"), "\(warnings)")
        // The sample a scene's reader reads: the same warnings, none before it is read or without statistics.
        let sample = BandMeanSample(bands: [1, 2, 3, 4], statistics: stats)
        #expect(sample.found.isEmpty)
        sample.read(source)
        #expect(sample.found == warnings)
        let none = BandMeanSample(bands: [1, 2, 3, 4], statistics: nil)
        none.read(source)
        #expect(none.found.isEmpty)
    }

    /// A band-mean sample that cannot be read says so, naming the file (the scene's own reads,
    /// which cover the sampled pixels, then fail the scene).
    @Test func anUnreadableSampleSaysSo() throws {
        let profile = try RasterMaker.utmProfile(width: 61, height: 96, bands: 2, options: CreationOptions(blockSize: 16, compression: .none))
        let whole = try RasterMaker.write(dir.file("whole.tif"), profile: profile) { b, c, r in Float(c + r + b) }
        let bytes = try Data(contentsOf: URL(fileURLWithPath: whole))
        let cut = dir.file("cut.tif")
        try bytes.prefix(bytes.count - 61 * 4 * 16 / 2).write(to: URL(fileURLWithPath: cut))
        let stats = try BandStatistics.compute(Dataset(path: whole))
        let sample = BandMeanSample(bands: [1, 2], statistics: stats)
        sample.read(try Dataset(path: cut))
        let warnings = sample.found
        #expect(warnings.count == 1 && warnings[0].contains("cut.tif") && warnings[0].contains("were not checked"), "\(warnings)")
    }

    /// Band files of one product are named after the product id, not their raw common prefix.
    @Test func bandFilesAreNamedAfterTheirProduct() {
        let landsat = SceneJob(paths: ["/d/LC08_L1TP_044034_20200101_20200113_01_RT_B2.TIF", "/d/LC08_L1TP_044034_20200101_20200113_01_RT_B3.TIF"])
        #expect(landsat.stem == "LC08_L1TP_044034_20200101_20200113_01_RT")
        let sentinel = SceneJob(paths: ["/d/T33UUP_20200101T100031_B02_10m.jp2", "/d/T33UUP_20200101T100031_B8A_20m.jp2"])
        #expect(sentinel.stem == "T33UUP_20200101T100031")
        #expect(SceneJob(paths: ["/d/scene.tif"]).stem == "scene")
        #expect(SceneJob(paths: ["/d/a1.tif", "/d/b1.tif"]).stem == "a1", "no shared part: the first file's name")
    }

    /// Batch lines show scene k/N with an ETA; the summary counts done, skipped and failed.
    @Test func batchProgressCountsDoneSkippedAndFailed() {
        func report(_ status: SceneReport.Status) -> SceneReport {
            SceneReport(job: SceneJob(paths: ["/d/x.tif"]), outputs: SceneOutputs(map: "/o/x_map.tif"), status: status, prediction: nil)
        }
        let start = Date()
        var progress = BatchProgress(total: 3, started: start)
        let first = progress.line(for: report(.written), now: start.addingTimeInterval(10))
        #expect(first == "[1/3] written  /o/x_map.tif (ETA 20s)", "\(first)")
        #expect(progress.line(for: report(.skipped), now: start.addingTimeInterval(10)).hasPrefix("[2/3] skipped"))
        let last = progress.line(for: report(.failed("broken")), now: start.addingTimeInterval(20))
        #expect(last == "[3/3] FAILED   /d/x.tif: broken", "\(last)")
        #expect(progress.summary == "3 scene(s): 1 done, 1 skipped, 1 failed")
    }

    /// `NAME=files` names a scene's outputs; a name given to several scenes is refused.
    @Test func namedInputsNameTheirMaps() throws {
        let jobs = try SceneJob.expand(["north=/d/x_B2.tif,/d/x_B3.tif", "/d/plain.tif"])
        #expect(jobs.map(\.stem) == ["north", "plain"])
        #expect(jobs[0].paths == ["/d/x_B2.tif", "/d/x_B3.tif"])
        #expect(SceneOutputs.named(after: jobs[0], in: "/o", options: PredictionOptions()).map == "/o/north_map.tif")
        for n in ["a.tif", "b.tif"] { try "x".write(toFile: dir.file(n), atomically: true, encoding: .utf8) }
        let error = #expect(throws: RasterError.self) { try SceneJob.expand(["both=" + dir.file("*.tif")]) }
        #expect(error?.description.contains("the name 'both' is given to 2 scenes") == true, "\(String(describing: error))")
    }
}
