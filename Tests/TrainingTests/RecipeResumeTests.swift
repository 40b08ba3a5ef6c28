import Core
import Foundation
import GeoRaster
import Testing
import TestSupport
import Tiling
import Training

/// A run resumed with its band sources put together differently (here the resampling of a
/// 20 m band) is refused: the checkpoint was trained on other pixels.
@Suite(.enabled(if: Tool.exists("gdal_translate"), "needs gdal-bin"))
struct RecipeResumeTests {
    func trainer(_ data: DataSpec, output: String) throws -> Trainer {
        let opened = try data.openScenes()
        let architecture = try TinyModel.model.architecture(inputChannels: opened[0].bands.count, classes: SyntheticScene.classes.count)
        let t = try Trainer(scenes: opened, architecture: architecture, options: TinyModel.options(), output: output)
        t.progress.quiet = true
        t.terrasegVersion = "test"
        return t
    }

    @Test func resumingWithAnotherResamplingIsRefused() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 96, height: 80, bands: 2)
        let coarse = dir.file("b2_20m.tif")
        let r = try Tool.run("gdal_translate", ["-q", "-b", "2", "-tr", "20", "20", "-r", "average", scene.image, coarse])
        try #require(r.status == 0, "\(r.stderr)")
        var data = TinyModel.data([scene])
        data.scenes[0].image = [scene.image, coarse]
        let out = dir.file("model")
        let t = try trainer(data, output: out)
        var stopNow = false
        t.stopRequested = { stopNow }
        t.afterStep = { epoch, batch in if epoch == 1 && batch == 0 { stopNow = true } }
        #expect(try t.run().interrupted)
        data.resampling = [.cubic]
        let error = #expect(throws: (any Error).self) { try trainer(data, output: out).run(resume: true) }
        #expect(error.map { "\($0)" }?.contains("the checkpoint belongs to a run with other data") == true, "\(String(describing: error))")
        data.resampling = []
        #expect(try trainer(data, output: out).run(resume: true).history.count == 2)
    }
}
