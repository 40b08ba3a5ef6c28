import Foundation
import GeoRaster
import ModelIO
import Testing
import TestSupport

/// The band recipe in model.json: written with the bundle, optional when reading (bundles
/// written before it existed still load), and applied to a new scene's files.
@Suite struct RecipeBundleTests {
    @Test func bundlesWithoutARecipeStillLoadAndOnesWithItRoundTrip() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 64, height: 48)
        var bundle = try TinyModel.seeded(scene, output: dir.file("old"))
        #expect(try ModelBundle.read(dir.file("old")).recipe == nil)
        let text = try String(contentsOfFile: dir.file("old/model.json"), encoding: .utf8)
        #expect(!text.contains("\"recipe\""))
        bundle.recipe = SceneRecipe(sources: [.init(name: "B02", bands: 1, resampling: nil, nodata: nil, resolution: 10),
                                              .init(name: "B8A", bands: 1, resampling: .nearest, nodata: 0, resolution: 20)],
                                    resolution: 10, crs: nil, gridFromFirstSource: true)
        let architecture = bundle.architecture
        try bundle.write(network: architecture.build(seed: 1), to: dir.file("new"))
        #expect(try ModelBundle.read(dir.file("new")).recipe == bundle.recipe)
    }

    @Test func theRecipeSaysWhichFilesAndSettingsAScenesBandsGet() throws {
        let recipe = SceneRecipe(sources: [.init(name: "B02", bands: 1, resampling: nil, nodata: nil, resolution: 10),
                                           .init(name: "B8A", bands: 1, resampling: .nearest, nodata: 0, resolution: 20)],
                                 resolution: 10, crs: nil, gridFromFirstSource: true)
        let sources = try recipe.sources(for: ["x_B02.tif", "left_B8A.tif+right_B8A.tif"])
        #expect(sources.map(\.files) == [["x_B02.tif"], ["left_B8A.tif", "right_B8A.tif"]])
        #expect(sources[1].resampling == .nearest && sources[1].nodata == 0 && sources[1].name == "B8A")
        let error = #expect(throws: RasterError.self) { try recipe.sources(for: ["a.tif", "b.tif", "c.tif"]) }
        #expect(error?.description.contains("the model was trained on 2 band sources (B02, B8A) but the scene gives 3") == true)
        #expect(SentinelBands.name(in: "/s/T31TCJ_20200101T103431_B8A_20m.jp2") == "B8A")
        #expect(SentinelBands.name(in: "LC08_L1TP_B2.TIF") == nil)
    }
}
