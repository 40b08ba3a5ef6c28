import Core
import Foundation
import GeoRaster
import Testing
import TestSupport

/// End-to-end with the real executable: a Sentinel-2-like scene of 10 m and 20 m band files
/// trains and predicts on the 10 m grid; the bundle's band recipe maps a second scene given
/// as a folder of band files, and that map equals the map of the same scene pre-warped by
/// `gdalwarp` into one file.
@Suite(.enabled(if: Tool.exists("gdalwarp") && Tool.exists("gdalbuildvrt"), "needs gdal-bin"))
struct MixedGridCommandTests {
    let dir = TemporaryDirectory("terraseg-grids")
    /// (band name, source band of the synthetic scene, pixel size)
    static let layout = [("B02", 1, 10), ("B03", 2, 10), ("B05", 3, 20), ("B06", 4, 20)]

    func gdal(_ tool: String, _ args: [String]) throws {
        let r = try Tool.run(tool, args)
        try #require(r.status == 0, "\(tool) \(args): \(r.stderr)")
    }

    /// A folder of one file per band, named like Sentinel-2 tiles (T31_…_B05.tif).
    func tile(_ scene: SyntheticScene, name: String) throws -> String {
        let folder = dir.file(name)
        try FileManager.default.createDirectory(atPath: folder, withIntermediateDirectories: true)
        for (band, source, size) in Self.layout {
            try gdal("gdal_translate", ["-q", "-b", String(source), "-tr", String(size), String(size), "-r", "average",
                                        scene.image, folder + "/T31_\(name)_\(band).tif"])
        }
        return folder
    }

    /// The same folder warped by `gdalwarp` (bilinear, Float32) onto the B02 grid and stacked into one file.
    func prewarped(_ folder: String, name: String) throws -> String {
        let ref = try Dataset(path: folder + "/T31_\(name)_B02.tif").info.grid
        let e = try #require(ref.extent)
        var parts: [String] = []
        for (band, _, size) in Self.layout {
            let file = folder + "/T31_\(name)_\(band).tif"
            if size == 10 { parts.append(file); continue }
            let out = dir.file("\(name)_\(band)_10m.tif")
            try gdal("gdalwarp", ["-q", "-r", "bilinear", "-ot", "Float32", "-tr", "10", "10",
                                  "-te", "\(e.minX)", "\(e.minY)", "\(e.maxX)", "\(e.maxY)", file, out])
            parts.append(out)
        }
        let stack = dir.file("\(name)_prewarped.tif")
        try gdal("gdalbuildvrt", ["-q", "-separate", dir.file("\(name).vrt")] + parts)
        try gdal("gdal_translate", ["-q", dir.file("\(name).vrt"), stack])
        return stack
    }

    @Test func trainsOnMixedResolutionsAndTheRecipeMapsAnotherTile() throws {
        let a = try SyntheticScene(in: dir.path, name: "a", width: 150, height: 110)
        let b = try SyntheticScene(in: dir.path, name: "b", width: 120, height: 96, seed: 2)
        let tileA = try tile(a, name: "A"), tileB = try tile(b, name: "B")
        let model = dir.file("model")
        let train = try Tool.run(Tool.terraseg, ["train", "--image", tileA, "--band-names", "B02,B03,B05,B06", "--labels", a.labels,
                                                 "--classes", SyntheticScene.classList, "--ignore", "0", "--widths", "8,16",
                                                 "--patch-size", "32", "--batch-size", "4", "--epochs", "1", "--split", "rows:0.7",
                                                 "--output", model])
        try #require(train.status == 0, "\(train.stderr)")
        #expect(train.stderr.contains("T31_A_B05.tif: read onto the scene grid (pixels 20 metre → 10 metre) with bilinear resampling"), "\(train.stderr)")
        #expect(!train.stderr.contains("T31_A_B03.tif: read onto"))
        let json = try #require(try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: model + "/model.json"))) as? [String: Any])
        let recipe = try #require(json["recipe"] as? [String: Any])
        #expect((recipe["sources"] as? [[String: Any]])?.compactMap { $0["name"] as? String } == ["B02", "B03", "B05", "B06"])
        #expect(recipe["resolution"] as? Double == 10)

        // A second tile, given as a folder: the recipe finds its band files and grid.
        let out = dir.file("maps")
        let stack = try prewarped(tileB, name: "B")
        let predict = try Tool.run(Tool.terraseg, ["predict", "--model", model, "--input", tileB, stack, "--output", out, "--tile", "48"])
        try #require(predict.status == 0, "\(predict.stderr)")
        let map = try Dataset(path: out + "/B_map.tif"), reference = try Dataset(path: out + "/B_prewarped_map.tif")
        #expect(map.info.width == 120 && map.info.height == 96 && map.info.geoTransform?.pixelWidth == 10)
        let ours = try map.read(window: Window(width: 120, height: 96)), theirs = try reference.read(window: Window(width: 120, height: 96))
        var same = 0, compared = 0
        for i in 0..<ours.values.count where ours.valid[i] != 0 && theirs.valid[i] != 0 {
            compared += 1
            if ours.values[i] == theirs.values[i] { same += 1 }
        }
        #expect(compared > 120 * 96 / 2)
        #expect(Double(same) >= 0.999 * Double(compared), "\(same) of \(compared) pixels equal")

        // The same tile as a STAC Item: its assets, picked by the model's band names, give the same map.
        let assets = Dictionary(uniqueKeysWithValues: Self.layout.reversed().map { band, _, _ in
            ("asset_\(band)", ["href": "B/T31_B_\(band).tif", "eo:bands": [["name": band]]] as [String: Any])
        })
        let item: [String: Any] = ["type": "Feature", "stac_version": "1.0.0", "id": "S2_tile_B", "geometry": NSNull(), "links": [],
                                   "properties": ["datetime": "2020-06-01T10:30:00Z"], "assets": assets]
        try JSONSerialization.data(withJSONObject: item).write(to: URL(fileURLWithPath: dir.file("item.json")))
        let fromItem = try Tool.run(Tool.terraseg, ["predict", "--model", model, "--input", dir.file("item.json"), "--output", out, "--tile", "48"])
        try #require(fromItem.status == 0, "\(fromItem.stderr)")
        #expect(try Dataset(path: out + "/S2_tile_B_map.tif").read(window: Window(width: 120, height: 96)).values == ours.values)
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: out + "/S2_tile_B_map.stac.json"))) as? [String: Any]
        let properties = written?["properties"] as? [String: Any]
        #expect(properties?["terraseg:model"] as? String == "model" && (properties?["terraseg:model_fingerprint"] as? String)?.count == 16)
        #expect(properties?["datetime"] as? String == "2020-06-01T10:30:00Z")
    }

    @Test func aFolderWithoutTheBandIsRefusedNamingWhatItHolds() throws {
        let a = try SyntheticScene(in: dir.path, name: "a", width: 96, height: 80)
        let tileA = try tile(a, name: "A")
        let r = try Tool.run(Tool.terraseg, ["train", "--image", tileA, "--band-names", "B02,B8A", "--labels", a.labels,
                                             "--classes", SyntheticScene.classList, "--output", dir.file("m")])
        #expect(r.status != 0 && !r.crashed)
        #expect(r.stderr.contains("no file of band B8A (band files found: B02, B03, B05, B06)"), "\(r.stderr)")
    }
}
