import Foundation
import GeoRaster
import Testing
import TestSupport

/// A pipeline whose prediction scene is a STAC Item: its assets, picked by the band names the
/// model was trained with, are mapped, and the map gets its own Item.
@Suite(.enabled(if: Tool.exists("gdal_translate"), "needs gdal-bin"))
struct StacPipelineTests {
    @Test func aStacItemIsAPredictionScene() throws {
        let dir = TemporaryDirectory("terraseg-stac-run")
        let yaml = SyntheticPipeline.yaml(name: "stac", image: "[T_B02.tif, T_B03.tif, T_B04.tif]", stride: 32, epochs: 1,
                                          prediction: "tile: 64, scenes: [tile.json]", dataExtra: "band_names: [B02, B03, B04]",
                                          extra: "evaluation: {enabled: false}")
        let (scene, job) = try SyntheticPipeline.write(in: dir.path, width: 96, height: 80, yaml: yaml)
        let names = ["B02", "B03", "B04"]
        for (i, name) in names.enumerated() {
            let r = try Tool.run("gdal_translate", ["-q", "-b", "\(i + 1)", scene.image, dir.file("T_\(name).tif")])
            try #require(r.status == 0, "\(r.stderr)")
        }
        let assets = Dictionary(uniqueKeysWithValues: names.enumerated().map { i, name in
            ("band\(i)", ["href": "T_\(name).tif", "eo:bands": [["name": name]]] as [String: Any])
        })
        let item: [String: Any] = ["type": "Feature", "stac_version": "1.0.0", "id": "tile", "geometry": NSNull(), "links": [],
                                   "properties": ["datetime": "2022-05-01T00:00:00Z"], "assets": assets]
        try JSONSerialization.data(withJSONObject: item).write(to: URL(fileURLWithPath: dir.file("tile.json")))
        let r = try Tool.run(Tool.terraseg, ["run", job])
        try #require(r.status == 0 && !r.crashed, "\(r.stderr)")
        let map = try Dataset(path: dir.file("run/maps/tile_map.tif"))
        #expect(map.info.width == 96 && map.info.height == 80)
        let written = try JSONSerialization.jsonObject(with: Data(contentsOf: URL(fileURLWithPath: dir.file("run/maps/tile_map.stac.json")))) as? [String: Any]
        let properties = written?["properties"] as? [String: Any]
        #expect(properties?["terraseg:model"] as? String == "model" && properties?["datetime"] as? String == "2022-05-01T00:00:00Z")
    }
}
