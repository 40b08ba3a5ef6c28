import Core
import Foundation
import GeoRaster
import Inference
import ModelIO
import Models
import Testing
import TestSupport
import Tiling

@Suite(.enabled(if: TestData.available, "needs ../shared/data"))
struct StitchingTests {
    /// A 150×137 crop of nc-landsat7's top-left corner (nodata border included), on the
    /// scene's own grid; made once per process (debug-build fake models are slow).
    static let scene: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("terraseg-stitch-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return try! RasterMaker.crop(TestData.path("nc-landsat7/image_6band.tif"), window: Window(column: 0, row: 0, width: 150, height: 137),
                                     to: dir.appendingPathComponent("nc-crop.tif").path, type: .float32, nodata: -99999)
    }()
    static let width = 150, height = 137
    static let classes = try! ClassMap(values: [(1, "developed"), (3, "herbaceous"), (5, "forest"), (6, "water")])

    func inputs() throws -> ModelInputs {
        let stats = try BandStatistics.compute(Dataset(path: Self.scene))
        return ModelInputs(bands: nil, normalizer: Normalizer(statistics: stats, method: .standardize), classMap: Self.classes)
    }

    func predict(_ model: any SceneModel, tile: Int, margin: Int? = nil, batch: Int = 3, tta: Bool = false, blend: BlendMode = .centre,
                 probabilities: Bool = true, in dir: TemporaryDirectory, name: String) throws -> (map: RasterBlock, probs: RasterBlock?, run: ScenePrediction) {
        var o = PredictionOptions()
        o.tileSize = tile
        o.margin = margin
        o.batchSize = batch
        o.tta = tta
        o.blend = blend
        o.probabilities = probabilities
        o.floatProbabilities = true
        let p = try ScenePredictor(model: model, inputs: inputs(), options: o)
        let outputs = SceneOutputs(map: dir.file(name + "_map.tif"), probabilities: probabilities ? dir.file(name + "_p.tif") : nil)
        let run = try p.predict(paths: [Self.scene], outputs: outputs)
        let full = Window(width: Self.width, height: Self.height)
        return (try Dataset(path: outputs.map).read(window: full), try outputs.probabilities.map { try Dataset(path: $0).read(window: full) }, run)
    }

    func maxDifference(_ a: RasterBlock?, _ b: RasterBlock?) -> Float {
        zip(a!.values, b!.values).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    /// A real U-Net through `NetworkSceneModel`: tiled prediction, which runs the decoder only
    /// over each batch's cores, equals one window over the whole scene, with probabilities
    /// (softmax in the cores) and for the map alone (logits, no softmax).
    @Test(arguments: [UpsamplingMode.bilinear, .nails])
    func aUNetTiledEqualsOneWindow(_ mode: UpsamplingMode) throws {
        let dir = TemporaryDirectory()
        let architecture = ModelArchitecture.unet(UNetConfiguration(inputChannels: 6, classes: 4, widths: [16, 16], bottleneckWidth: 32,
                                                                    bottleneckDilations: [1, 2], upsampling: mode))
        let bundle = ModelBundle(architecture: architecture, bands: Array(1...6), bandDescriptions: Array(repeating: "", count: 6),
                                 normalization: try inputs().normalizer, statistics: nil, classes: Self.classes, patchSize: 32,
                                 provenance: .init(terrasegVersion: "test", trainingData: [], epochs: 0, seed: 5))
        let model = NetworkSceneModel(bundle: bundle, network: architecture.build(seed: 5))
        let whole = try predict(model, tile: 160, in: dir, name: "whole")
        let tiled = try predict(model, tile: 32, batch: 4, in: dir, name: "tiled")
        let mapOnly = try predict(model, tile: 32, batch: 4, probabilities: false, in: dir, name: "map")
        #expect(whole.run.tiles == 1 && tiled.run.tiles == 25)
        #expect(tiled.map.values == whole.map.values, "identical class labels")
        #expect(mapOnly.map.values == whole.map.values, "identical class labels without the softmax")
        #expect(tiled.map.valid == whole.map.valid)
        #expect(maxDifference(tiled.probs, whole.probs) <= 1e-4)
        #expect(Set(whole.map.values.enumerated().filter { whole.map.valid[$0.offset] != 0 }.map(\.element)).count > 1,
                "the untrained network predicts more than one class here")
    }

    @Test(arguments: [1, 4])
    func tiledEqualsOneWindow(pool: Int) throws {
        let dir = TemporaryDirectory()
        let model = BoxModel(channels: 6, classes: 4, radius: 3, pool: pool)
        let tiled = try predict(model, tile: 32, in: dir, name: "tiled")
        let whole = try predict(model, tile: 160, in: dir, name: "whole")
        #expect(whole.run.tiles == 1 && tiled.run.tiles == 25)
        #expect(tiled.map.values == whole.map.values, "identical class labels")
        #expect(tiled.map.valid == whole.map.valid)
        #expect(maxDifference(tiled.probs, whole.probs) <= 1e-4)
    }

    /// Hann blending averages half-overlapping cores. With the full margin every
    /// contribution is exact, so it matches the one-window prediction to rounding (scores
    /// within 1e-5); with a margin too small for the receptive field it stays closer to it
    /// than centre-cropping with the same margin does.
    @Test(arguments: [1, 4])
    func hannBlendMatchesOneWindowAndSoftensSeams(pool: Int) throws {
        let dir = TemporaryDirectory()
        let model = BoxModel(channels: 6, classes: 4, radius: 3, pool: pool)
        let whole = try predict(model, tile: 160, in: dir, name: "whole")
        let blended = try predict(model, tile: 32, blend: .hann, in: dir, name: "hann")
        #expect(maxDifference(blended.probs, whole.probs) <= 1e-5)
        #expect(blended.map.valid == whole.map.valid, "nodata exactly where the input is invalid")
        if pool == 1 {
            let blendedShort = try predict(model, tile: 32, margin: 1, blend: .hann, in: dir, name: "hann1")
            let centreShort = try predict(model, tile: 32, margin: 1, in: dir, name: "centre1")
            func meanDiff(_ a: RasterBlock?) -> Float { zip(a!.values, whole.probs!.values).reduce(0) { $0 + abs($1.0 - $1.1) } / Float(a!.values.count) }
            #expect(meanDiff(blendedShort.probs) < meanDiff(centreShort.probs))
        }
    }

    @Test func tooSmallAMarginShowsSeams() throws {
        let dir = TemporaryDirectory()
        let model = BoxModel(channels: 6, classes: 4, radius: 3)
        let tiled = try predict(model, tile: 32, margin: 1, in: dir, name: "tiled")
        let whole = try predict(model, tile: 160, in: dir, name: "whole")
        #expect(maxDifference(tiled.probs, whole.probs) > 1e-3)
    }

    @Test func alignmentNodataAndEdges() throws {
        let dir = TemporaryDirectory()
        let out = try predict(BoxModel(channels: 6, classes: 4, radius: 2), tile: 32, in: dir, name: "m")
        let image = try Dataset(path: Self.scene)
        let map = try Dataset(path: dir.file("m_map.tif"))
        #expect(map.info.geoTransform == image.info.geoTransform)
        #expect(map.info.crs.map { $0.isSame(as: image.info.crs!) } == true)
        #expect(map.info.crs?.wkt == image.info.crs?.wkt)
        #expect(map.info.bands[0].nodata == 255)
        #expect(map.info.bands[0].hasColorTable && map.info.bands[0].categoryNames[6] == "water")
        let valid = try image.read(window: Window(width: Self.width, height: Self.height)).valid
        // 255 exactly where the input is invalid; class values elsewhere.
        for i in 0..<valid.count {
            if valid[i] == 0 {
                #expect(out.map.valid[i] == 0)
            } else {
                #expect(out.map.valid[i] == 1 && [1, 3, 5, 6].contains(Int(out.map.values[i])))
            }
        }
        #expect(out.run.skippedTiles > 0, "all-nodata tiles in the corners are skipped")
    }

    @Test func ttaOfASymmetricModelChangesLittle() throws {
        let dir = TemporaryDirectory()
        let model = BoxModel(channels: 6, classes: 4, radius: 3)
        let plain = try predict(model, tile: 64, in: dir, name: "plain")
        let tta = try predict(model, tile: 64, tta: true, in: dir, name: "tta")
        #expect(maxDifference(plain.probs, tta.probs) < 1e-5)
    }

    @Test func cogOutputIsACOG() throws {
        let dir = TemporaryDirectory()
        var o = PredictionOptions()
        o.tileSize = 128
        o.creation.cog = true
        o.creation.blockSize = 64
        let p = try ScenePredictor(model: BoxModel(channels: 6, classes: 4, radius: 2), inputs: inputs(), options: o)
        let out = SceneOutputs(map: dir.file("cog.tif"))
        _ = try p.predict(paths: [Self.scene], outputs: out)
        let ds = try Dataset(path: out.map)
        #expect(ds.metadataItem("LAYOUT", domain: "IMAGE_STRUCTURE") == "COG")
        // GDAL's own validator (python3-gdal), when installed.
        if (try? Tool.run("/usr/bin/python3", ["-c", "import osgeo_utils.samples.validate_cloud_optimized_geotiff"]).status) == 0 {
            let v = try Tool.run("/usr/bin/python3", ["-m", "osgeo_utils.samples.validate_cloud_optimized_geotiff", out.map])
            #expect(v.status == 0, "\(v.stdout) \(v.stderr)")
            #expect(v.stdout.contains("is a valid cloud optimized GeoTIFF"))
        }
        #expect(!ds.info.overviews.isEmpty)
        #expect(ds.info.bands[0].hasColorTable)
        #expect(ds.info.bands[0].categoryNames.contains("forest"))
    }

    @Test func nonGeoreferencedInputGivesAMapWithoutCRS() throws {
        let dir = TemporaryDirectory()
        let path = TestData.path("ukis-cloud/landsat7_image.tif")
        let stats = try BandStatistics.compute(Dataset(path: path))
        var o = PredictionOptions()
        o.tileSize = 96
        let p = try ScenePredictor(model: BoxModel(channels: 6, classes: 1 + 3, radius: 1),
                                   inputs: ModelInputs(bands: nil, normalizer: Normalizer(statistics: stats, method: .standardize), classMap: Self.classes),
                                   options: o)
        _ = try p.predict(paths: [path], outputs: SceneOutputs(map: dir.file("m.tif")))
        let map = try Dataset(path: dir.file("m.tif"))
        #expect(map.info.crs == nil && map.info.geoTransform == nil)
        #expect(map.info.width == 512)
        // 512 is not a multiple of the 96-pixel tiles: the last row and column are still predicted.
        let input = try Dataset(path: path).read(window: Window(width: 512, height: 512))
        let output = try map.read(window: Window(width: 512, height: 512))
        #expect(input.valid == output.valid)
        #expect(output.validCount > 500 * 500)
    }
}

@Suite(.enabled(if: TestData.available, "needs ../shared/data"))
struct BatchPredictionTests {
    func predictor(overwrite: Bool = false, compression: Compression = .deflate) throws -> ScenePredictor {
        var o = PredictionOptions()
        o.tileSize = 256
        o.overwrite = overwrite
        o.creation.compression = compression
        let stats = try BandStatistics.compute(Dataset(path: StitchingTests.scene))
        return try ScenePredictor(model: BoxModel(channels: 6, classes: 4, radius: 1),
                                  inputs: ModelInputs(bands: nil, normalizer: Normalizer(statistics: stats, method: .standardize), classMap: StitchingTests.classes),
                                  options: o)
    }

    @Test func aCorruptSceneFailsAloneAndReRunsSkipCompletedOutputs() throws {
        let dir = TemporaryDirectory()
        let listFile = dir.file("scenes.txt")
        try FileManager.default.copyItem(atPath: StitchingTests.scene, toPath: dir.file("scene-a.tif"))
        try FileManager.default.copyItem(atPath: StitchingTests.scene, toPath: dir.file("scene-b.tif"))
        try """
        # two good scenes and a corrupt one (corrupt 6-band input: the zoo's file has 3 bands,
        # so make a truncated copy of a good scene)
        scene-a.tif
        broken.tif
        scene-b.tif
        """.write(toFile: listFile, atomically: true, encoding: .utf8)
        let good = try Data(contentsOf: URL(fileURLWithPath: StitchingTests.scene))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: dir.file("broken.tif")))
        let jobs = try SceneJob.expand(["@" + listFile])
        #expect(jobs.count == 3)
        let out = dir.file("maps")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let first = try predictor().run(jobs: jobs, directory: out)
        #expect(first.map(\.status) == [.written, first[1].status, .written])
        guard case .failed(let message) = first[1].status else { Issue.record("corrupt scene did not fail"); return }
        #expect(message.contains("broken.tif"))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: out)) == ["scene-a_map.tif", "scene-a_map.tif.aux.xml", "scene-b_map.tif", "scene-b_map.tif.aux.xml"],
                "no output, not even a temporary file, for the failed scene")
        let second = try predictor().run(jobs: jobs, directory: out)
        #expect(second[0].status == .skipped && second[2].status == .skipped)
        let third = try predictor(overwrite: true).run(jobs: [jobs[0]], directory: out)
        #expect(third[0].status == .written)
    }

    @Test func unwritableOutputDirectoryIsAClearError() throws {
        // A path below a regular file can never be created, even by root.
        let dir = TemporaryDirectory()
        try "x".write(toFile: dir.file("file"), atomically: true, encoding: .utf8)
        let error = #expect(throws: RasterError.self) {
            try predictor().run(jobs: [SceneJob(paths: [StitchingTests.scene])], directory: dir.file("file/out"))
        }
        #expect(error?.description.contains("cannot create the output directory") == true)
        #expect(error?.description.contains("file/out") == true)
    }

    @Test(.enabled(if: getuid() == 0, "mounting a small tmpfs needs root"))
    func aFullDiskFailsCleanlyAndLeavesNoFile() throws {
        let dir = TemporaryDirectory()
        let mnt = dir.file("tiny")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        guard try Tool.run("mount", ["-t", "tmpfs", "-o", "size=8k", "tmpfs", mnt]).status == 0 else { return }
        defer { _ = try? Tool.run("umount", [mnt]) }
        let reports = try predictor(compression: .none).run(jobs: [SceneJob(paths: [StitchingTests.scene])], directory: mnt)
        guard case .failed(let message) = reports[0].status else { Issue.record("a full disk did not fail"); return }
        #expect(message.contains("nc-crop_map.tif"))
        #expect(message.contains("space") || message.contains("No space"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: mnt).isEmpty, "nothing left, not even a temporary file")
    }
}
