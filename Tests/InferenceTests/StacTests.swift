import Core
import Foundation
import GeoRaster
@testable import Inference
import Testing
import TestSupport
import Tiling

/// STAC in and out: a scene given as a STAC Item maps like its band files given directly, and
/// every map gets a STAC Item beside it that describes it (and validates against the STAC
/// schemas where Benchmarks/.venv has pystac[validation]).
@Suite(.enabled(if: Tool.exists("gdal_translate"), "needs gdal-bin"))
struct StacTests {
    let dir = TemporaryDirectory("terraseg-stac")

    /// The synthetic scene split into one file per band, B04 at 20 m (read onto the 10 m grid
    /// like any coarser band file), and a STAC Item listing them: relative and absolute hrefs,
    /// STAC 1.0 `eo:bands` and 1.1 `bands`, plus a 4-band asset that is not picked.
    func bandFiles() throws -> (files: [String], item: String) {
        let s = try SyntheticScene(in: dir.path, width: 48, height: 40)
        var files: [String] = []
        for b in 1...4 {
            let f = dir.file("T17_B0\(b + 1).tif")
            let coarse = b == 3 ? ["-tr", "20", "20", "-r", "average"] : []
            let r = try Tool.run("gdal_translate", ["-q", "-b", "\(b)"] + coarse + [s.image, f])
            #expect(r.status == 0, "\(r.stderr)")
            files.append(f)
        }
        let item: [String: Any] = [
            "type": "Feature", "stac_version": "1.0.0", "id": "S2A_T17_20200601", "geometry": NSNull(), "links": [],
            "properties": ["datetime": "2020-06-01T10:30:00Z"],
            "assets": [
                "blue": ["href": "T17_B02.tif", "eo:bands": [["name": "B02", "common_name": "blue"]]],
                "green": ["href": "./T17_B03.tif", "eo:bands": [["name": "B03", "common_name": "green"]]],
                "red": ["href": files[2], "bands": [["name": "B04", "eo:common_name": "red"]]],
                "nir": ["href": "file://" + files[3], "eo:bands": [["name": "B08"]]],
                "visual": ["href": "scene.tif", "eo:bands": [["name": "B1"], ["name": "B2"], ["name": "B3"], ["name": "B4"]]],
            ],
        ]
        let path = dir.file("item.json")
        try JSONSerialization.data(withJSONObject: item).write(to: URL(fileURLWithPath: path))
        return (files, path)
    }

    /// A deterministic model whose classes depend on the band order, normalised by the
    /// statistics of the stacked band files.
    func predictor(overwrite: Bool = true) throws -> ScenePredictor {
        let files = (2...5).map { dir.file("T17_B0\($0).tif") }
        let stats = try BandStatistics.compute(BandStack(sources: files.map { SourceSpec(files: [$0]) }), bands: nil)
        let inputs = ModelInputs(bands: nil, normalizer: Normalizer(statistics: stats, method: .standardize), classMap: TinyModel.classMap)
        var o = PredictionOptions()
        o.overwrite = overwrite
        let p = try ScenePredictor(model: BoxModel(channels: 4, classes: 3, radius: 1), inputs: inputs, options: o)
        p.provenance = MapProvenance(terrasegVersion: "test")
        return p
    }

    func classes(_ map: String) throws -> [Float] {
        let d = try Dataset(path: map)
        var block = RasterBlock()
        try d.read(window: Window(column: 0, row: 0, width: d.info.width, height: d.info.height), bands: [1], into: &block)
        return block.values
    }

    /// Bands picked by band name, common name and asset key, in the order asked, stacked like
    /// the files given directly (B04's 20 m file resampled alike): the same class raster.
    @Test func aStacItemGivesTheSameMapAsItsBandFiles() throws {
        let (files, item) = try bandFiles()
        let jobs = try SceneJob.expand([item], stacBands: ["B02", "green", "B04", "nir"])
        #expect(jobs.count == 1 && jobs[0].paths == files, "\(jobs.map(\.paths))")
        #expect(jobs[0].stem == "S2A_T17_20200601")
        let direct = try predictor().run(jobs: [SceneJob(paths: files, outputName: "direct")], directory: dir.file("direct"))
        let stac = try predictor().run(jobs: jobs, directory: dir.file("stac"))
        #expect(direct[0].status == .written && stac[0].status == .written, "\(direct[0].status) \(stac[0].status)")
        let a = try classes(direct[0].outputs.map), b = try classes(stac[0].outputs.map)
        #expect(a.count == 48 * 40 && a == b, "the maps differ")
        #expect(Set(a).count > 1, "a map of one class cannot tell band orders apart")
        let swapped = try predictor().run(jobs: SceneJob.expand([item], stacBands: ["B03", "B02", "B04", "B08"]), directory: dir.file("swapped"))
        #expect(try classes(swapped[0].outputs.map) != a, "band order matters to this model, so the test can fail")
        // The map's Item keeps the scene's time and links to the scene's Item.
        let written = try Self.json(StacItemWriter.path(forMap: stac[0].outputs.map))
        #expect((written["properties"] as? [String: Any])?["datetime"] as? String == "2020-06-01T10:30:00Z")
        let link = (written["links"] as? [[String: Any]])?.first
        #expect(link?["rel"] as? String == "derived_from" && link?["href"] as? String == URL(fileURLWithPath: item).standardizedFileURL.path)
    }

    static func json(_ path: String) throws -> [String: Any] {
        try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: path))) as? [String: Any] ?? [:]
    }

    /// The Item beside a map: WGS 84 footprint of the UTM grid, projection fields, the classes
    /// with names and colours, provenance, and the siblings on disk as assets.
    @Test func everyMapGetsAStacItemThatDescribesIt() throws {
        let (files, _) = try bandFiles()
        let out = dir.file("maps")
        try AtomicFile.createDirectory(out)
        for ext in ["gpkg", "qml"] { try Data("x".utf8).write(to: URL(fileURLWithPath: out + "/scene_map.\(ext)")) }
        let report = try predictor().run(jobs: [SceneJob(paths: files, outputName: "scene")], directory: out)
        let path = StacItemWriter.path(forMap: report[0].outputs.map)
        #expect(path == out + "/scene_map.stac.json")
        let item = try Self.json(path)
        #expect(item["type"] as? String == "Feature" && item["stac_version"] as? String == "1.1.0" && item["id"] as? String == "scene_map")
        let ring = ((item["geometry"] as? [String: Any])?["coordinates"] as? [[[Double]]])?.first ?? []
        #expect(ring.count == 5 && ring.first == ring.last)
        // 600 000 E, 4 500 000 N in UTM 17N is about 79.8° W, 40.6° N.
        #expect(ring.allSatisfy { abs($0[0] + 79.82) < 0.02 && abs($0[1] - 40.64) < 0.02 }, "\(ring)")
        let bbox = item["bbox"] as? [Double] ?? []
        #expect(bbox.count == 4 && bbox[0] < bbox[2] && bbox[1] < bbox[3])
        let p = item["properties"] as? [String: Any] ?? [:]
        #expect(p["proj:code"] as? String == "EPSG:32617")
        #expect(p["proj:shape"] as? [Int] == [40, 48])
        #expect(p["proj:transform"] as? [Double] == [10, 0, 600_000, 0, -10, 4_500_000])
        #expect(StacItem.parseTime(p["datetime"] as? String ?? "") != nil, "no scene time: the time of prediction")
        #expect(p["terraseg:version"] as? String == "test")
        let assets = item["assets"] as? [String: [String: Any]] ?? [:]
        #expect(Set(assets.keys) == ["map", "polygons", "style"])
        #expect(assets["map"]?["href"] as? String == "./scene_map.tif" && assets["map"]?["type"] as? String == "image/tiff; application=geotiff")
        #expect(assets["polygons"]?["type"] as? String == "application/geopackage+sqlite3")
        let classes = assets["map"]?["classification:classes"] as? [[String: Any]] ?? []
        #expect(classes.map { $0["value"] as? Int } == [1, 2, 3, 255])
        #expect(classes.map { $0["name"] as? String } == ["water", "forest", "bare", "nodata"])
        let hex = TinyModel.classMap.classes[0].color
        #expect(classes[0]["color_hint"] as? String == String(format: "%02X%02X%02X", hex.r, hex.g, hex.b))
        #expect(classes[3]["nodata"] as? Bool == true)
        #expect((item["stac_extensions"] as? [String])?.count == 2)
    }

    /// A map kept from an earlier run (skipped) gets the Item it lacks; one written again gets a new one.
    @Test func aKeptMapGetsItsMissingItem() throws {
        let (files, _) = try bandFiles()
        let out = dir.file("kept")
        let first = try predictor().run(jobs: [SceneJob(paths: files, outputName: "scene")], directory: out)
        let item = StacItemWriter.path(forMap: first[0].outputs.map)
        try FileManager.default.removeItem(atPath: item)
        let second = try predictor(overwrite: false).run(jobs: [SceneJob(paths: files, outputName: "scene")], directory: out)
        #expect(second[0].status == .skipped)
        #expect(FileManager.default.fileExists(atPath: item))
    }

    /// A scene Item with a time range gives the map's Item a null datetime with the range, as
    /// the specification requires; a scene without a time, the time of prediction.
    @Test func theSceneTimeOrRangeIsKept() throws {
        let writer = StacItemWriter(classMap: TinyModel.classMap, provenance: MapProvenance(), cog: false)
        let path = dir.file("range.json")
        let text = #"{"type": "Feature", "stac_version": "1.0.0", "id": "r", "properties": {"datetime": null, "start_datetime": "2021-01-01T00:00:00Z", "end_datetime": "2021-02-01T00:00:00Z"}, "assets": {"a": {"href": "/vsimem/a.tif"}}}"#
        try text.write(toFile: path, atomically: true, encoding: .utf8)
        let range = writer.times(try StacItem(file: path), now: Date(timeIntervalSince1970: 0))
        #expect(range["datetime"] is NSNull && range["start_datetime"] as? String == "2021-01-01T00:00:00Z"
                && range["end_datetime"] as? String == "2021-02-01T00:00:00Z")
        #expect(writer.times(nil, now: Date(timeIntervalSince1970: 0))["datetime"] as? String == "1970-01-01T00:00:00Z")
    }

    /// A class name becomes the extension's identifier (letters, digits, - and _); the title
    /// keeps it as written.
    @Test func classNamesBecomeIdentifiers() {
        #expect(StacItemWriter.identifier("Tree cover (dense)") == "Tree_cover__dense_")
        #expect(StacItemWriter.identifier("forêt") == "for_t")
        #expect(StacItemWriter.identifier("") == "class")
    }

    static let python = TestData.repositoryRoot.appendingPathComponent("Benchmarks/.venv/bin/python").path
    static let validator = TestData.repositoryRoot.appendingPathComponent("Benchmarks/validate_stac.py").path
    static var validatorAvailable: Bool {
        FileManager.default.isExecutableFile(atPath: python) && (try? Tool.run(python, ["-c", "import pystac.validation.local_validator, jsonschema"]).status) == 0
    }

    /// The Items validate against STAC's Item schema (pystac's local copy, offline), and a
    /// broken one does not, so the check can fail.
    @Test(.enabled(if: StacTests.validatorAvailable, "needs Benchmarks/.venv with pystac[validation] (Benchmarks/setup.sh)"))
    func itemsValidateAgainstTheStacSchemas() throws {
        let (files, item) = try bandFiles()
        let plain = try predictor().run(jobs: [SceneJob(paths: files, outputName: "plain")], directory: dir.file("v"))
        let stac = try predictor().run(jobs: SceneJob.expand([item], stacBands: ["B02", "B03", "B04", "B08"]), directory: dir.file("v"))
        let items = [plain[0], stac[0]].map { StacItemWriter.path(forMap: $0.outputs.map) }
        let r = try Tool.run(Self.python, [Self.validator] + items)
        #expect(r.status == 0, "\(r.stdout)\(r.stderr)")
        var broken = try Self.json(items[0])
        broken["links"] = nil
        let bad = dir.file("broken.stac.json")
        try JSONSerialization.data(withJSONObject: broken).write(to: URL(fileURLWithPath: bad))
        #expect(try Tool.run(Self.python, [Self.validator, bad]).status == 1)
    }
}
