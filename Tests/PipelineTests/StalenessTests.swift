import Foundation
import Testing
import TestSupport

/// `terraseg run` never keeps a model made from other inputs or settings: a label raster
/// rewritten in place (same size, same modification time) retrains from scratch, so does a
/// changed setting, and --force always retrains; nothing else is redone.
@Suite struct StalenessTests {
    /// A synthetic pipeline run once: its folder, scene, job file, weights file and trained weights.
    func firstRun() throws -> (dir: TemporaryDirectory, scene: SyntheticScene, job: String, weights: String, trained: [UInt8]) {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 120, height: 100, bands: 3)
        try scene.writeUncompressedLabels(swapped: false, inPlace: false)
        let job = dir.file("job.yaml"), weights = dir.file("run/model/model.safetensors")
        try SyntheticPipeline.yaml(learningRate: 0.01).write(toFile: job, atomically: true, encoding: .utf8)
        let first = try Tool.run(Tool.terraseg, ["run", job])
        #expect(first.status == 0 && !first.crashed, "\(first.stderr)")
        return (dir, scene, job, weights, try FileChanges.bytes(weights))
    }

    @Test func aChangedInputOrSettingRetrainsAndForceAlwaysDoes() throws {
        let (dir, scene, job, weights, trained) = try firstRun()

        // Classes swapped in the label raster, in place, size and mtime kept.
        try scene.writeUncompressedLabels(swapped: true, inPlace: true)
        let relabelled = try Tool.run(Tool.terraseg, ["run", job])
        #expect(relabelled.status == 0, "\(relabelled.stderr)")
        #expect(!relabelled.stdout.contains("skipped: train"), "\(relabelled.stdout)")
        #expect(relabelled.stderr.contains("Training from scratch: the training data changed"), "\(relabelled.stderr)")
        let retrained = try FileChanges.bytes(weights)
        #expect(retrained != trained)

        let again = try Tool.run(Tool.terraseg, ["run", job])
        #expect(again.stdout.contains("Up to date, skipped: train, predict"), "\(again.stdout)")

        let forced = try Tool.run(Tool.terraseg, ["run", "--force", job])
        #expect(forced.status == 0 && !forced.stdout.contains("skipped"), "\(forced.stdout)")
        #expect(forced.stderr.contains("--force: from scratch") && forced.stderr.contains("Discarding the checkpoint"), "\(forced.stderr)")
        #expect(try FileChanges.bytes(weights) == retrained, "the same data and settings train the same weights")

        try SyntheticPipeline.yaml(learningRate: 0.02).write(toFile: job, atomically: true, encoding: .utf8)
        let changed = try Tool.run(Tool.terraseg, ["run", job])
        #expect(changed.status == 0 && !changed.stderr.contains("--resume"), "\(changed.stderr)")
        #expect(changed.stderr.contains("Training from scratch: the training settings changed"), "\(changed.stderr)")
        #expect(try FileChanges.bytes(weights) != retrained)
        withExtendedLifetime(dir) {}  // the run's folder stays until here
    }

    /// Maps made by another build of TerraSeg are made again, with the same model (its data and
    /// settings decide training), and the run says why.
    @Test func anotherBuildMapsAgainWithTheSameModel() throws {
        let (dir, _, job, weights, trained) = try firstRun()

        let rebuilt = dir.file("terraseg")  // the same program as another executable file
        try FileManager.default.copyItem(atPath: Tool.terraseg, toPath: rebuilt)
        let other = try Tool.run(rebuilt, ["run", job])
        #expect(other.status == 0, "\(other.stderr)")
        #expect(other.stdout.contains("skipped: train") && !other.stdout.contains("skipped: train, predict"), "\(other.stdout)")
        #expect(other.stderr.contains("TerraSeg changed since the maps were made"), "\(other.stderr)")
        #expect(try FileChanges.bytes(weights) == trained, "the model is kept")

        let again = try Tool.run(rebuilt, ["run", job])
        #expect(again.stdout.contains("Up to date, skipped: train, predict"), "\(again.stdout)")
    }

    @Test func trainTakesResumeOrRestartNotBoth() throws {
        let r = try Tool.run(Tool.terraseg, ["train", "--resume", "--restart", "--image", "a.tif", "--labels", "b.tif",
                                             "--classes", "1=a", "--output", "/tmp/none"])
        #expect(r.status != 0 && !r.crashed)
        #expect(r.stderr.contains("give --resume (continue the interrupted run) or --restart (discard it), not both"), "\(r.stderr)")
    }
}
