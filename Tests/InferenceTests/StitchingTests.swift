import Core
import Foundation
import GeoRaster
@testable import Inference
import ModelIO
import Models
import Testing
import TestSupport
import Tiling

/// A scene the stitcher tests map: a synthetic one (always), and a crop of the real
/// nc-landsat7 scene when ../shared/data is here. Each is written once per process
/// (debug-build fake models are slow).
struct StitchScene: Sendable, CustomTestStringConvertible {
    let name: String
    let path: String
    let width: Int
    let height: Int
    let bands: Int
    let classes: ClassMap
    var testDescription: String { name }

    static let directory: String = {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("terraseg-stitch-\(getpid())")
        try? FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        return dir.path
    }()

    /// 150×131 Float32, 4 bands, nodata in the top-left triangle (the whole first 32² tile).
    static let synthetic: StitchScene = {
        let s = try! SyntheticScene(in: directory, name: "synthetic", width: 150, height: 131, bands: 4)
        return StitchScene(name: "synthetic", path: s.image, width: 150, height: 131, bands: 4, classes: TinyModel.classMap)
    }()

    /// A 150×137 crop of nc-landsat7's top-left corner (nodata border included), on the scene's own grid.
    static let ncCrop: StitchScene = {
        let path = try! RasterMaker.crop(TestData.path("nc-landsat7/image_6band.tif"), window: Window(column: 0, row: 0, width: 150, height: 137),
                                         to: directory + "/nc-crop.tif", type: .float32, nodata: -99999)
        return StitchScene(name: "nc-crop", path: path, width: 150, height: 137, bands: 6,
                           classes: try! ClassMap(values: [(1, "developed"), (3, "herbaceous"), (5, "forest"), (6, "water")]))
    }()

    /// The synthetic scene, then the real one where ../shared/data is present.
    static var all: [StitchScene] { TestData.available ? [synthetic, ncCrop] : [synthetic] }

    var full: Window { Window(width: width, height: height) }
    /// Tiles of `size` that cover the scene.
    func tiles(_ size: Int) -> Int { ((width + size - 1) / size) * ((height + size - 1) / size) }

    func inputs() throws -> ModelInputs {
        let stats = try BandStatistics.compute(Dataset(path: path))
        return ModelInputs(bands: nil, normalizer: Normalizer(statistics: stats, method: .standardize), classMap: classes)
    }

    func boxModel(radius: Int, pool: Int = 1) -> BoxModel { BoxModel(channels: bands, classes: classes.count, radius: radius, pool: pool) }
}

@Suite struct StitchingTests {
    func predict(_ model: any SceneModel, on scene: StitchScene, tile: Int, margin: Int? = nil, batch: Int = 3, tta: Bool = false,
                 blend: BlendMode = .centre, probabilities: Bool = true, confidence: Bool = false,
                 in dir: TemporaryDirectory, name: String) throws -> (map: RasterBlock, probs: RasterBlock?, run: ScenePrediction) {
        var o = PredictionOptions()
        o.tileSize = tile
        o.margin = margin
        o.batchSize = batch
        o.tta = tta
        o.blend = blend
        o.probabilities = probabilities
        o.confidence = confidence
        o.floatProbabilities = true
        let p = try ScenePredictor(model: model, inputs: scene.inputs(), options: o)
        let outputs = SceneOutputs(map: dir.file(name + "_map.tif"), probabilities: probabilities ? dir.file(name + "_p.tif") : nil,
                                   confidence: confidence ? dir.file(name + "_c.tif") : nil)
        let run = try p.predict(paths: [scene.path], outputs: outputs)
        return (try Dataset(path: outputs.map).read(window: scene.full), try outputs.probabilities.map { try Dataset(path: $0).read(window: scene.full) }, run)
    }

    func maxDifference(_ a: RasterBlock?, _ b: RasterBlock?) -> Float {
        zip(a!.values, b!.values).reduce(0) { max($0, abs($1.0 - $1.1)) }
    }

    /// A real U-Net through `NetworkSceneModel`: tiled prediction, which runs the decoder only
    /// over each batch's cores, equals one window over the whole scene, with probabilities
    /// (softmax in the cores) and for the map alone (logits, no softmax).
    @Test(arguments: StitchScene.all, [UpsamplingMode.bilinear, .nails])
    func aUNetTiledEqualsOneWindow(_ scene: StitchScene, _ mode: UpsamplingMode) throws {
        let dir = TemporaryDirectory()
        let architecture = ModelArchitecture.unet(UNetConfiguration(inputChannels: scene.bands, classes: scene.classes.count, widths: [16, 16],
                                                                    bottleneckWidth: 32, bottleneckDilations: [1, 2], upsampling: mode))
        let bundle = ModelBundle(architecture: architecture, bands: Array(1...scene.bands), bandDescriptions: Array(repeating: "", count: scene.bands),
                                 normalization: try scene.inputs().normalizer, statistics: nil, classes: scene.classes, patchSize: 32,
                                 provenance: .init(terrasegVersion: "test", trainingData: [], epochs: 0, seed: 5))
        let model = NetworkSceneModel(bundle: bundle, network: architecture.build(seed: 5))
        let whole = try predict(model, on: scene, tile: 160, in: dir, name: "whole")
        let tiled = try predict(model, on: scene, tile: 32, batch: 4, in: dir, name: "tiled")
        let mapOnly = try predict(model, on: scene, tile: 32, batch: 4, probabilities: false, in: dir, name: "map")
        #expect(whole.run.tiles == 1 && tiled.run.tiles == scene.tiles(32))
        #expect(tiled.map.values == whole.map.values, "identical class labels")
        #expect(mapOnly.map.values == whole.map.values, "identical class labels without the softmax")
        #expect(tiled.map.valid == whole.map.valid)
        #expect(maxDifference(tiled.probs, whole.probs) <= 1e-4)
        // Not a trivial agreement: the untrained network's scores vary over the scene (and on
        // the real scene it predicts more than one class).
        let first = whole.probs!.values.prefix(scene.width * scene.height).enumerated().filter { whole.map.valid[$0.offset] != 0 }.map(\.element)
        #expect((first.max() ?? 0) - (first.min() ?? 0) > 0.002, "class 1's probability varies over the scene")
        if scene.name == "nc-crop" {
            #expect(Set(whole.map.values.enumerated().filter { whole.map.valid[$0.offset] != 0 }.map(\.element)).count > 1,
                    "the untrained network predicts more than one class here")
        }
    }

    @Test(arguments: StitchScene.all, [1, 4])
    func tiledEqualsOneWindow(_ scene: StitchScene, pool: Int) throws {
        let dir = TemporaryDirectory()
        let model = scene.boxModel(radius: 3, pool: pool)
        let tiled = try predict(model, on: scene, tile: 32, in: dir, name: "tiled")
        let whole = try predict(model, on: scene, tile: 160, in: dir, name: "whole")
        #expect(whole.run.tiles == 1 && tiled.run.tiles == scene.tiles(32))
        #expect(tiled.map.values == whole.map.values, "identical class labels")
        #expect(tiled.map.valid == whole.map.valid)
        #expect(maxDifference(tiled.probs, whole.probs) <= 1e-4)
    }

    /// Hann blending averages half-overlapping cores. With the full margin every
    /// contribution is exact, so it matches the one-window prediction to rounding (scores
    /// within 1e-5); with a margin too small for the receptive field it stays closer to it
    /// than centre-cropping with the same margin does.
    @Test(arguments: StitchScene.all, [1, 4])
    func hannBlendMatchesOneWindowAndSoftensSeams(_ scene: StitchScene, pool: Int) throws {
        let dir = TemporaryDirectory()
        let model = scene.boxModel(radius: 3, pool: pool)
        let whole = try predict(model, on: scene, tile: 160, in: dir, name: "whole")
        let blended = try predict(model, on: scene, tile: 32, blend: .hann, in: dir, name: "hann")
        #expect(maxDifference(blended.probs, whole.probs) <= 1e-5)
        #expect(blended.map.valid == whole.map.valid, "nodata exactly where the input is invalid")
        if pool == 1 {
            let blendedShort = try predict(model, on: scene, tile: 32, margin: 1, blend: .hann, in: dir, name: "hann1")
            let centreShort = try predict(model, on: scene, tile: 32, margin: 1, in: dir, name: "centre1")
            func meanDiff(_ a: RasterBlock?) -> Float { zip(a!.values, whole.probs!.values).reduce(0) { $0 + abs($1.0 - $1.1) } / Float(a!.values.count) }
            #expect(meanDiff(blendedShort.probs) < meanDiff(centreShort.probs))
        }
    }

    @Test(arguments: StitchScene.all)
    func tooSmallAMarginShowsSeams(_ scene: StitchScene) throws {
        let dir = TemporaryDirectory()
        let model = scene.boxModel(radius: 3)
        let tiled = try predict(model, on: scene, tile: 32, margin: 1, in: dir, name: "tiled")
        let whole = try predict(model, on: scene, tile: 160, in: dir, name: "whole")
        #expect(maxDifference(tiled.probs, whole.probs) > 1e-3)
    }

    @Test(arguments: StitchScene.all)
    func alignmentNodataAndEdges(_ scene: StitchScene) throws {
        let dir = TemporaryDirectory()
        let out = try predict(scene.boxModel(radius: 2), on: scene, tile: 32, in: dir, name: "m")
        let image = try Dataset(path: scene.path)
        let map = try Dataset(path: dir.file("m_map.tif"))
        #expect(map.info.width == scene.width && map.info.height == scene.height)
        #expect(map.info.geoTransform == image.info.geoTransform)
        #expect(map.info.crs.map { $0.isSame(as: image.info.crs!) } == true)
        #expect(map.info.crs?.wkt == image.info.crs?.wkt)
        #expect(map.info.bands[0].nodata == 255)
        let last = scene.classes.classes.last!
        #expect(map.info.bands[0].hasColorTable && map.info.bands[0].categoryNames[last.value] == last.name)
        let valid = try image.read(window: scene.full).valid
        #expect(valid.contains(0) && valid.contains(1), "the scene has nodata and valid pixels")
        // 255 exactly where the input is invalid; class values elsewhere, up to the last row and column.
        let values = Set(scene.classes.classes.map { Float($0.value) })
        var wrong = 0
        for i in 0..<valid.count where (valid[i] == 0) != (out.map.valid[i] == 0) || (valid[i] != 0 && !values.contains(out.map.values[i])) {
            wrong += 1
        }
        #expect(wrong == 0, "\(wrong) pixels with the wrong validity or a value outside the class map")
        #expect(out.run.skippedTiles > 0, "all-nodata tiles in the corners are skipped")
    }

    /// Probabilities sum to one where the input is valid, the map is their argmax, and the
    /// confidence raster (Byte) is the largest probability × 255, and 0 under nodata.
    @Test(arguments: StitchScene.all)
    func probabilitiesConfidenceAndMapAgree(_ scene: StitchScene) throws {
        let dir = TemporaryDirectory()
        let out = try predict(scene.boxModel(radius: 2), on: scene, tile: 48, confidence: true, in: dir, name: "pc")
        let probs = try #require(out.probs)
        let confidence = try Dataset(path: dir.file("pc_c.tif"))
        #expect(confidence.info.geoTransform == (try Dataset(path: scene.path)).info.geoTransform)
        let conf = try confidence.read(window: scene.full)
        let n = scene.width * scene.height, K = scene.classes.count
        var checked = 0
        for i in 0..<n where out.map.valid[i] != 0 {
            let p = (0..<K).map { probs.values[$0 * n + i] }
            let best = p.indices.max { p[$0] < p[$1] }!
            guard abs(p.reduce(0, +) - 1) < 1e-4, Float(scene.classes.classes[best].value) == out.map.values[i],
                  abs(conf.values[i] - (p[best] * 255).rounded()) <= 1 else {
                Issue.record("pixel \(i): probabilities \(p), map \(out.map.values[i]), confidence \(conf.values[i])")
                return
            }
            checked += 1
        }
        #expect(checked > 0 && checked == out.map.validCount, "every valid pixel checked")
        #expect((0..<n).allSatisfy { out.map.valid[$0] != 0 || conf.values[$0] == 0 }, "confidence is 0 where the map is nodata")
    }

    @Test(arguments: StitchScene.all)
    func ttaOfASymmetricModelChangesLittle(_ scene: StitchScene) throws {
        let dir = TemporaryDirectory()
        let model = scene.boxModel(radius: 3)
        let plain = try predict(model, on: scene, tile: 64, in: dir, name: "plain")
        let tta = try predict(model, on: scene, tile: 64, tta: true, in: dir, name: "tta")
        #expect(maxDifference(plain.probs, tta.probs) < 1e-5)
    }

    @Test func cogOutputIsACOG() throws {
        let dir = TemporaryDirectory()
        let scene = StitchScene.synthetic
        var o = PredictionOptions()
        o.tileSize = 128
        o.creation.cog = true
        o.creation.blockSize = 64
        let p = try ScenePredictor(model: scene.boxModel(radius: 2), inputs: scene.inputs(), options: o)
        let out = SceneOutputs(map: dir.file("cog.tif"))
        _ = try p.predict(paths: [scene.path], outputs: out)
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

    /// A raster without CRS or geotransform (odd size, not a multiple of the tile) gives a
    /// map without them, predicted up to its last row and column.
    @Test func nonGeoreferencedInputGivesAMapWithoutCRS() throws {
        let dir = TemporaryDirectory()
        let profile = RasterProfile(width: 101, height: 77, bandCount: 3, dataType: .uint16, nodata: 0)
        let path = try RasterMaker.write(dir.file("plain.tif"), profile: profile) { b, c, r in c < 5 && r < 5 ? 0 : Float(100 + 37 * b + (c * r) % 50) }
        try checkNonGeoreferenced(path, bands: 3, width: 101, height: 77, tile: 32, hasNodata: true, dir: dir)
    }

    @Test(.enabled(if: TestData.available, "needs ../shared/data"))
    func nonGeoreferencedRealInputGivesAMapWithoutCRS() throws {
        try checkNonGeoreferenced(TestData.path("ukis-cloud/landsat7_image.tif"), bands: 6, width: 512, height: 512, tile: 96, dir: TemporaryDirectory())
    }

    func checkNonGeoreferenced(_ path: String, bands: Int, width: Int, height: Int, tile: Int, hasNodata: Bool = false, dir: TemporaryDirectory) throws {
        let stats = try BandStatistics.compute(Dataset(path: path))
        var o = PredictionOptions()
        o.tileSize = tile
        let p = try ScenePredictor(model: BoxModel(channels: bands, classes: 4, radius: 1),
                                   inputs: ModelInputs(bands: nil, normalizer: Normalizer(statistics: stats, method: .standardize),
                                                       classMap: try ClassMap(values: [(1, "a"), (2, "b"), (3, "c"), (4, "d")])),
                                   options: o)
        _ = try p.predict(paths: [path], outputs: SceneOutputs(map: dir.file("m.tif")))
        let map = try Dataset(path: dir.file("m.tif"))
        #expect(map.info.crs == nil && map.info.geoTransform == nil)
        #expect(map.info.width == width && map.info.height == height)
        // The size is not a multiple of the tiles: the last row and column are still predicted.
        let input = try Dataset(path: path).read(window: Window(width: width, height: height))
        let output = try map.read(window: Window(width: width, height: height))
        #expect(input.valid == output.valid)
        #expect(!hasNodata || input.valid.contains(0), "the input has nodata")
        #expect(output.validCount > width * height * 9 / 10)
    }
}

/// Batches of scenes on the synthetic scene (no shared data needed).
@Suite struct BatchPredictionTests {
    static let scene = StitchScene.synthetic

    func predictor(overwrite: Bool = false, compression: Compression = .deflate) throws -> ScenePredictor {
        var o = PredictionOptions()
        o.tileSize = 256
        o.overwrite = overwrite
        o.creation.compression = compression
        return try ScenePredictor(model: Self.scene.boxModel(radius: 1), inputs: Self.scene.inputs(), options: o)
    }

    @Test func aCorruptSceneFailsAloneAndReRunsSkipCompletedOutputs() throws {
        let dir = TemporaryDirectory()
        let listFile = dir.file("scenes.txt")
        try FileManager.default.copyItem(atPath: Self.scene.path, toPath: dir.file("scene-a.tif"))
        try FileManager.default.copyItem(atPath: Self.scene.path, toPath: dir.file("scene-b.tif"))
        try """
        # two good scenes and a corrupt one (corrupt 6-band input: the zoo's file has 3 bands,
        # so make a truncated copy of a good scene)
        scene-a.tif
        broken.tif
        scene-b.tif
        """.write(toFile: listFile, atomically: true, encoding: .utf8)
        let good = try Data(contentsOf: URL(fileURLWithPath: Self.scene.path))
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: dir.file("broken.tif")))
        let jobs = try SceneJob.expand(["@" + listFile])
        #expect(jobs.count == 3)
        let out = dir.file("maps")
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        let first = try predictor().run(jobs: jobs, directory: out)
        #expect(first.map(\.status) == [.written, first[1].status, .written])
        guard case .failed(let message) = first[1].status else { Issue.record("corrupt scene did not fail"); return }
        #expect(message.contains("broken.tif"))
        #expect(Set(try FileManager.default.contentsOfDirectory(atPath: out)) == ["scene-a_map.tif", "scene-a_map.tif.aux.xml", "scene-a_map.qml", "scene-a_map.stac.json",
                                                                                  "scene-b_map.tif", "scene-b_map.tif.aux.xml", "scene-b_map.qml", "scene-b_map.stac.json"],
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
        let error = #expect(throws: TerraSegError.self) {
            try predictor().run(jobs: [SceneJob(paths: [Self.scene.path])], directory: dir.file("file/out"))
        }
        #expect(error?.description.contains("cannot create the output directory") == true)
        #expect(error?.description.contains("file/out") == true)
        // In plain words, never Foundation's "The operation could not be completed. (NSCocoaErrorDomain error 512.)".
        #expect(error?.description.contains("Domain") == false && error?.description.contains("operation could not") == false,
                "\(String(describing: error))")
    }

    /// Whether this process may mount a tmpfs (root in a container may lack the right), so
    /// that the test is reported as skipped rather than passing without a check.
    static let canMountTmpfs: Bool = {
        guard getuid() == 0 else { return false }
        let probe = TemporaryDirectory("terraseg-mount-probe")
        guard (try? Tool.run("mount", ["-t", "tmpfs", "-o", "size=8k", "tmpfs", probe.path]))?.status == 0 else { return false }
        _ = try? Tool.run("umount", [probe.path])
        return true
    }()

    @Test(.enabled(if: canMountTmpfs, "mounting a small tmpfs needs root and the right to mount"))
    func aFullDiskFailsCleanlyAndLeavesNoFile() throws {
        let dir = TemporaryDirectory()
        let mnt = dir.file("tiny")
        try FileManager.default.createDirectory(atPath: mnt, withIntermediateDirectories: true)
        try #require(try Tool.run("mount", ["-t", "tmpfs", "-o", "size=8k", "tmpfs", mnt]).status == 0)
        defer { _ = try? Tool.run("umount", [mnt]) }
        let reports = try predictor(compression: .none).run(jobs: [SceneJob(paths: [Self.scene.path])], directory: mnt)
        guard case .failed(let message) = reports[0].status else { Issue.record("a full disk did not fail"); return }
        #expect(message.contains("synthetic_map.tif"))
        #expect(message.contains("space") || message.contains("No space"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: mnt).isEmpty, "nothing left, not even a temporary file")
    }
}

/// A reader or writer thread that cannot start must fail the scene, not leave the other stages
/// waiting forever (seen under `ulimit -v` and `ulimit -u`).
@Suite struct StageThreadTests {
    @Test func aStageThatCannotStartFailsTheSceneInsteadOfHanging() throws {
        let dir = TemporaryDirectory()
        let scene = StitchScene.synthetic
        let p = try ScenePredictor(model: scene.boxModel(radius: 1), inputs: scene.inputs(), options: PredictionOptions())
        p.refusesThreadsForTesting = true
        let error = #expect(throws: TerraSegError.self) {
            try p.predict(paths: [scene.path], outputs: SceneOutputs(map: dir.file("m_map.tif")))
        }
        #expect(error?.description.contains("could not start the prediction's reader thread") == true)
        #expect(!FileManager.default.fileExists(atPath: dir.file("m_map.tif")))
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir.path).filter { $0.contains("partial") }
        #expect(leftovers.isEmpty)
    }
}
