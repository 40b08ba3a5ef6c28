import Core
import Foundation
import GeoRaster
import Testing
import TestSupport

/// `terraseg predict` over a folder of chips (issue B9, deliverable 5): a georeferenced map
/// per chip and, when the chips share a CRS, `mosaic.vrt` over the union of their extents.
@Suite struct PredictFolderTests {
    let dir = TemporaryDirectory("terraseg-chips")
    let scene: SyntheticScene
    let model: String
    let chips: String

    /// Four 64×48 chips cut from one 128×96 scene (each with its own geotransform).
    init() throws {
        scene = try SyntheticScene(in: dir.path, name: "scene", width: 128, height: 96, bands: 4)
        model = dir.file("model")
        try TinyModel.seeded(scene, output: model)
        chips = dir.file("chips")
        try FileManager.default.createDirectory(atPath: chips, withIntermediateDirectories: true)
        for (i, (c, r)) in [(0, 0), (64, 0), (0, 48), (64, 48)].enumerated() {
            try RasterMaker.crop(scene.image, window: Window(column: c, row: r, width: 64, height: 48), to: chips + "/chip\(i).tif",
                                 type: .float32, nodata: scene.nodata)
        }
    }

    func predict(_ input: String, to output: String, _ extra: [String] = []) throws -> Tool.Result {
        let r = try Tool.run(Tool.terraseg, ["predict", "--model", model, "--input", input, "--output", output, "--tile", "48"] + extra)
        #expect(!r.crashed, "terraseg predict crashed: \(r.stderr)")
        return r
    }

    @Test func aFolderOfChipsGivesAMapPerChipAndAMosaic() throws {
        let out = dir.file("maps")
        let r = try predict(chips, to: out)
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("4 scene(s): 4 done, 0 skipped, 0 failed"), "\(r.stdout)")
        #expect(r.stdout.contains("Mosaic of 4 maps: \(out)/mosaic.vrt"), "\(r.stdout)")
        for i in 0..<4 {
            let chip = try Dataset(path: chips + "/chip\(i).tif"), map = try Dataset(path: out + "/chip\(i)_map.tif")
            #expect(map.info.width == 64 && map.info.height == 48)
            #expect(map.info.geoTransform == chip.info.geoTransform)
            #expect(map.info.crs.map { $0.isSame(as: chip.info.crs!) } == true)
            #expect(FileManager.default.fileExists(atPath: out + "/chip\(i)_map.qml"), "each chip's map has its QGIS style")
        }
        // gdalinfo opens the mosaic: the scene's size and extent, the union of the chips'.
        let vrt = out + "/mosaic.vrt"
        #expect(FileManager.default.fileExists(atPath: out + "/mosaic.qml"), "the mosaic has the maps' QGIS style")
        let text = try String(contentsOfFile: vrt, encoding: .utf8)
        #expect(text.contains("relativeToVRT=\"1\""), "sources beside the VRT are named relative to it")
        #expect(try FileManager.default.contentsOfDirectory(atPath: out).allSatisfy { !$0.hasPrefix(".") }, "no temporary left")
        if Tool.exists("gdalinfo") {
            let info = try Tool.run("gdalinfo", ["-json", vrt])
            #expect(info.status == 0, "\(info.stderr)")
            let json = try #require(try JSONSerialization.jsonObject(with: Data(info.stdout.utf8)) as? [String: Any])
            #expect(json["size"] as? [Int] == [128, 96])
            let corners = try #require(json["cornerCoordinates"] as? [String: [Double]])
            #expect(corners["upperLeft"] == [600_000, 4_500_000])
            #expect(corners["lowerRight"] == [601_280, 4_499_040])
        }
        // The mosaic reads like the scene's own map, chip by chip.
        let mosaic = try Dataset(path: vrt)
        let whole = try mosaic.read(window: Window(width: 128, height: 96))
        let last = try Dataset(path: out + "/chip3_map.tif").read(window: Window(width: 64, height: 48))
        #expect(whole.value(band: 0, column: 64 + 10, row: 48 + 7) == last.value(band: 0, column: 10, row: 7))
    }

    @Test func chipsInTwoCRSsGetMapsButNoMosaic() throws {
        try RasterMaker.write(chips + "/other.tif", profile: RasterMaker.utmProfile(width: 64, height: 48, bands: 4)) { b, _, _ in
            Float(SyntheticScene.reflectance(classValue: 2, band: b))
        }
        let out = dir.file("maps2")
        // An earlier batch's mosaic in the folder no longer describes its maps: removed, and said.
        try FileManager.default.createDirectory(atPath: out, withIntermediateDirectories: true)
        try "<VRTDataset/>".write(toFile: out + "/mosaic.vrt", atomically: true, encoding: .utf8)
        let r = try predict(chips + "/*.tif", to: out, ["--allow-mismatch"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("5 scene(s): 5 done"), "\(r.stdout)")
        #expect(r.stdout.contains("No mosaic: the maps are in 2 CRSs (EPSG:32617, EPSG:32615)"), "\(r.stdout)")
        #expect(r.stdout.contains("(the earlier mosaic.vrt was removed)"), "\(r.stdout)")
        #expect(!FileManager.default.fileExists(atPath: out + "/mosaic.vrt"))
    }

    /// PNG chips without georeferencing (as LandCover.ai-style sets ship): maps on the pixel
    /// grid only, and no mosaic, saying why.
    @Test(.enabled(if: Tool.exists("gdal_translate")))
    func chipsWithoutGeoreferenceGetPlainMaps() throws {
        let png = dir.file("png")
        try FileManager.default.createDirectory(atPath: png, withIntermediateDirectories: true)
        for i in 0..<2 {
            let t = try Tool.run("gdal_translate", ["-q", "-of", "PNG", "-ot", "UInt16", "-scale", "0", "1", "0", "10000",
                                                    chips + "/chip\(i).tif", png + "/chip\(i).png"])
            #expect(t.status == 0, "\(t.stderr)")
            try? FileManager.default.removeItem(atPath: png + "/chip\(i).png.aux.xml")  // PAM georeferencing
            #expect(try Dataset(path: png + "/chip\(i).png").info.geoTransform == nil)
        }
        let out = dir.file("maps3")
        let r = try predict(png, to: out, ["--allow-mismatch"])
        #expect(r.status == 0, "\(r.stderr)")
        #expect(r.stdout.contains("2 scene(s): 2 done"), "\(r.stdout)")
        let map = try Dataset(path: out + "/chip0_map.tif")
        #expect(map.info.width == 64 && map.info.height == 48 && map.info.geoTransform == nil && map.info.crs == nil)
        #expect(r.stdout.contains("No mosaic: \(out)/chip0_map.tif is not georeferenced"), "\(r.stdout)")
    }

    @Test func aFolderWithoutRastersIsRefused() throws {
        let empty = dir.file("empty")
        try FileManager.default.createDirectory(atPath: empty, withIntermediateDirectories: true)
        let r = try predict(empty, to: dir.file("none"))
        #expect(r.status != 0)
        #expect(r.stderr.contains("the folder holds no raster"), "\(r.stderr)")
    }
}
