import Core
import Foundation
import GeoRaster
import Testing
import TestSupport

/// End-to-end: the real `terraseg predict` and `terraseg quicklook` executables on synthetic
/// scenes and a seeded tiny U-Net bundle (no shared data, no training in this process).
@Suite struct PredictCommandTests {
    let dir = TemporaryDirectory("terraseg-cli")
    let a: SyntheticScene
    let b: SyntheticScene
    let model: String

    init() throws {
        a = try SyntheticScene(in: dir.path, name: "scene-a", width: 150, height: 110, bands: 4)
        b = try SyntheticScene(in: dir.path, name: "scene-b", width: 97, height: 83, bands: 4, kind: .uint16, seed: 2)
        model = dir.file("model")
        try TinyModel.seeded(a, output: model)
    }

    func predict(_ inputs: [String], to output: String, _ extra: [String] = []) throws -> Tool.Result {
        let r = try Tool.run(Tool.terraseg, ["predict", "--model", model, "--input"] + inputs + ["--output", output, "--tile", "48"] + extra)
        #expect(!r.crashed, "terraseg predict crashed: \(r.stderr)")
        return r
    }

    func modified(_ path: String) throws -> Date {
        try #require(try FileManager.default.attributesOfItem(atPath: path)[.modificationDate] as? Date)
    }

    /// Each scene gets a map (and probabilities and confidence on request) on its own grid:
    /// same size, geotransform and CRS, nodata 255 under the input's nodata, class names.
    @Test func mapsEveryScene() throws {
        let out = dir.file("maps")
        let r = try predict([a.image, b.image], to: out, ["--probabilities", "--confidence", "--batch-size", "3"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("2 scene(s): 2 done, 0 skipped, 0 failed"), "\(r.stdout)")
        #expect(r.stderr.contains("written"))
        for scene in [a, b] {
            let stem = URL(fileURLWithPath: scene.image).deletingPathExtension().lastPathComponent
            let input = try Dataset(path: scene.image)
            for (suffix, bands) in [("map", 1), ("probabilities", 3), ("confidence", 1)] {
                let output = try Dataset(path: out + "/\(stem)_\(suffix).tif")
                #expect(output.info.width == scene.width && output.info.height == scene.height, "\(stem)_\(suffix)")
                #expect(output.info.bandCount == bands, "\(stem)_\(suffix)")
                #expect(output.info.geoTransform == input.info.geoTransform, "\(stem)_\(suffix)")
                #expect(output.info.crs.map { $0.isSame(as: input.info.crs!) } == true, "\(stem)_\(suffix)")
            }
            let map = try Dataset(path: out + "/\(stem)_map.tif")
            #expect(map.info.bands[0].nodata == 255 && map.info.bands[0].categoryNames[3] == "bare")
            let block = try map.read(window: Window(width: scene.width, height: scene.height))
            let valid = try input.read(window: Window(width: scene.width, height: scene.height)).valid
            #expect(block.valid == valid, "255 exactly where \(stem) is nodata")
            #expect(zip(block.values, block.valid).allSatisfy { $1 == 0 || [1, 2, 3].contains($0) })
        }
    }

    /// --polygons, --min-mapping-unit and --mmu-connectedness: the console says what is done
    /// to each map, which gets its style and polygons; a connectedness other than 4 or 8 is refused.
    @Test func polygonsAndMinimumMappingUnitFromTheCommandLine() throws {
        let out = dir.file("gis")
        let r = try predict([a.image], to: out, ["--polygons", "--polygon-simplify", "5", "--min-mapping-unit", "9", "--mmu-connectedness", "8"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stderr.contains("minimum mapping unit 9 px (8-connected)"), "\(r.stderr)")
        #expect(r.stdout.contains("Polygons: \(out)/scene-a_map.gpkg ("), "\(r.stdout)")
        for name in ["scene-a_map.tif", "scene-a_map.qml", "scene-a_map.gpkg"] {
            #expect(FileManager.default.fileExists(atPath: out + "/" + name), "\(name)")
        }
        let (map, width) = try ClassPatches.read(out + "/scene-a_map.tif")
        #expect(ClassPatches(map, width: width, connectedness: .eight).sizes.allSatisfy { $0 >= 9 })
        let refused = try predict([a.image], to: dir.file("gis-5"), ["--mmu-connectedness", "5"])
        #expect(refused.status != 0 && refused.stderr.contains("--mmu-connectedness") && refused.stderr.contains("one of '4' and '8'"), "\(refused.stderr)")
    }

    /// The band means are checked on the reader's sample whether the scene streams or goes in
    /// windows: a scene whose third band is scaled unlike the training scenes' (reflectance × 100)
    /// is mapped, with one warning naming the file and the band (once too when the streamed scene
    /// goes to windows for `--tta`); the training scene gets none.
    @Test func aBandUnlikeTheTrainingMeansIsSaid() throws {
        let source = try Dataset(path: a.image)
        var block = RasterBlock()
        try source.read(window: Window(width: a.width, height: a.height), bands: nil, into: &block)
        let n = a.width * a.height
        let scaled = try RasterMaker.write(dir.file("scaled.tif"), profile: RasterProfile(like: source.info, bandCount: 4, dataType: .float32, nodata: a.nodata)) { b, c, r in
            let i = r * a.width + c
            return block.valid[i] == 0 ? Float(a.nodata) : block.values[b * n + i] * (b == 2 ? 100 : 1)
        }
        for extra in [["--blend", "stream"], ["--blend", "centre"], ["--tta"]] {
            let r = try predict([scaled, a.image], to: dir.file("means\(extra.joined())"), extra)
            let blend = extra.joined(separator: " ")
            #expect(r.status == 0, "\(r.stderr)")
            #expect(r.stderr.components(separatedBy: "\(scaled): band 3 has mean").count == 2, "\(blend): \(r.stderr)")
            #expect(!r.stderr.contains("\(a.image): band"), "\(blend): \(r.stderr)")
        }
    }

    /// Streaming does not use the window settings: a tile or margin given with `--blend stream`
    /// is said to be unused, not ignored silently; with windows nothing is said.
    @Test func windowSettingsUnusedWhenStreamingAreSaid() throws {
        let streamed = try predict([a.image], to: dir.file("stream-tile"), ["--blend", "stream", "--tile", "64", "--margin", "8"])
        #expect(streamed.status == 0, "\(streamed.stderr)")
        #expect(streamed.stderr.contains("window settings tile 64, margin 8 are not used"), "\(streamed.stderr)")
        let windows = try predict([a.image], to: dir.file("centre-tile"), ["--blend", "centre", "--tile", "64"])
        #expect(windows.status == 0 && !windows.stderr.contains("are not used"), "\(windows.stderr)")
    }

    /// `--bands` picks a STAC Item's assets: with plain band files it is refused, not ignored.
    @Test func bandsWithoutAStacItemAreRefused() throws {
        let r = try predict([a.image], to: dir.file("bands"), ["--bands", "B02,B03"])
        #expect(r.status != 0 && r.stderr.contains("--bands") && r.stderr.contains("no input is a STAC Item"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("bands") + "/scene-a_map.tif"))
    }

    /// A second run skips scenes whose outputs exist (exit 0, files untouched); --overwrite
    /// recomputes them.
    @Test func existingOutputsAreSkippedUnlessOverwrite() throws {
        let out = dir.file("maps")
        #expect(try predict([a.image], to: out).status == 0)
        let map = out + "/scene-a_map.tif"
        let first = try modified(map)
        Thread.sleep(forTimeInterval: 1.1)  // file times have a resolution of a second on some filesystems
        let again = try predict([a.image], to: out)
        #expect(again.status == 0)
        #expect(again.stderr.contains("skipped") && again.stdout.contains("skipped"), "\(again.stderr)")
        #expect(try modified(map) == first, "a skipped scene's map is untouched")
        let forced = try predict([a.image], to: out, ["--overwrite"])
        #expect(forced.status == 0)
        #expect(forced.stderr.contains("written"))
        #expect(try modified(map) > first)
    }

    /// A corrupt scene among good ones fails alone: exit status 1, a line naming it, maps
    /// for the others and no output (not even a temporary file) for it.
    @Test func aFailingSceneIsReportedWhileOthersSucceed() throws {
        let good = try Data(contentsOf: URL(fileURLWithPath: a.image))
        let broken = dir.file("broken.tif")
        try good.prefix(good.count / 2).write(to: URL(fileURLWithPath: broken))
        let list = dir.file("scenes.txt")
        try "\(a.image)\n\(broken)\n\(b.image)\n".write(toFile: list, atomically: true, encoding: .utf8)
        let out = dir.file("maps")
        let r = try predict(["@" + list], to: out)
        #expect(r.status == 1, "\(r.stdout)\n\(r.stderr)")
        #expect(r.stderr.contains("FAILED") && r.stderr.contains("broken.tif"), "\(r.stderr)")
        #expect(r.stdout.contains("3 scene(s): 2 done, 0 skipped, 1 failed"), "\(r.stdout)")
        let files = Set(try FileManager.default.contentsOfDirectory(atPath: out))
        #expect(files.contains("scene-a_map.tif") && files.contains("scene-b_map.tif"))
        #expect(!files.contains { $0.hasPrefix("broken") }, "\(files)")
    }

    @Test func clearErrorsForAMissingModelOrScene() throws {
        let noModel = try Tool.run(Tool.terraseg, ["predict", "--model", dir.file("nowhere"), "--input", a.image, "--output", dir.file("o")])
        #expect(noModel.status != 0 && !noModel.crashed)
        #expect(noModel.stderr.contains("nowhere"), "\(noModel.stderr)")
        let noScene = try predict([dir.file("missing.tif")], to: dir.file("o"))
        #expect(noScene.status != 0)
        #expect(noScene.stderr.contains("missing.tif"), "\(noScene.stderr)")
    }

    /// A tile the machine cannot hold is refused before any output, naming the flag to lower.
    @Test func anAbsurdTileIsRefusedBeforeAnyWork() throws {
        let r = try predict([a.image], to: dir.file("huge"), ["--tile", "16384", "--blend", "centre"])
        #expect(r.status != 0)
        #expect(r.stderr.contains("--tile (prediction.tile): prediction needs about "), "\(r.stderr)")
        #expect(r.stderr.contains("Lower prediction.tile"), "\(r.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("huge")))
        let budget = try predict([a.image], to: dir.file("small"), ["--memory", "64M", "--batch-size", "64", "--blend", "centre"])
        #expect(budget.stderr.contains("--batch-size (prediction.batch_size): prediction needs about "), "\(budget.stderr)")
        #expect(budget.stderr.contains("more than the memory budget of 64M"), "\(budget.stderr)")
    }

    /// A class map previews in its colours (RGBA, longest side --max-size); a scene in false
    /// colour, beside the input by default.
    @Test func quicklookOfAMapAndOfAScene() throws {
        let out = dir.file("maps")
        #expect(try predict([a.image], to: out).status == 0)
        let png = dir.file("map.png")
        let r = try Tool.run(Tool.terraseg, ["quicklook", out + "/scene-a_map.tif", "-o", png, "--max-size", "60"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == png)
        let preview = try Dataset(path: png)
        #expect(preview.info.driver == "PNG" && preview.info.width == 60 && preview.info.height == 44 && preview.info.bandCount == 4)

        let scene = try Tool.run(Tool.terraseg, ["quicklook", b.image, "--bands", "1,2,3"])
        #expect(scene.status == 0, "\(scene.stderr)")
        let beside = dir.file("scene-b.png")
        #expect(scene.stdout.contains(beside))
        let colour = try Dataset(path: beside)
        #expect(colour.info.width == 97 && colour.info.height == 83 && colour.info.bandCount == 4)
        let alpha = try colour.read(window: Window(width: 97, height: 83), bands: [4])
        #expect(alpha.values.contains(0) && alpha.values.contains(255), "the nodata corner is transparent")

        let bad = try Tool.run(Tool.terraseg, ["quicklook", b.image, "--bands", "9,1,1", "-o", dir.file("bad.png")])
        #expect(bad.status != 0 && !bad.crashed)
        #expect(bad.stderr.contains("band 9 does not exist"), "\(bad.stderr)")
        #expect(!FileManager.default.fileExists(atPath: dir.file("bad.png")))
    }
}

/// `--ignore -1` is a label value, not a flag, in `train` and `evaluate`.
@Suite struct NegativeIgnoreValueTests {
    @Test func evaluateTakesANegativeIgnoreValue() throws {
        let dir = TemporaryDirectory("terraseg-cli")
        let scene = try SyntheticScene(in: dir.path, width: 40, height: 30, bands: 2)
        let r = try Tool.run(Tool.terraseg, ["evaluate", "--prediction", scene.labels, "--labels", scene.labels, "--ignore", "-1", "--ignore", "0"])
        #expect(r.status == 0 && !r.crashed, "\(r.stderr)")
        #expect(r.stdout.contains("1.000"), "\(r.stdout)")
    }
}
