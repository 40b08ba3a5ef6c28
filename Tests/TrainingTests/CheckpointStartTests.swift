import Core
import Foundation
import ModelIO
import Testing
import TestSupport
import Training

/// How a run treats an earlier run's checkpoint (`TrainingStart`): a changed input or setting
/// is never resumed as if it were the same run, an interrupted run is never discarded without
/// a word, and the run's wall time counts every session. In the serialized `TrainerTests`
/// suite (StopSignal is process-wide).
extension TrainerTests {
    /// Counts the training steps a trainer takes.
    final class Steps: @unchecked Sendable {
        var count = 0
    }

    static func trainer(_ scene: SyntheticScene, _ out: String, options: TrainingOptions = TinyModel.options(),
                        steps: Steps? = nil) throws -> Trainer {
        let t = try TinyModel.trainer([scene], output: out, options: options)
        if let steps { t.afterStep = { _, _ in steps.count += 1 } }
        return t
    }

    static func weights(_ bundle: String) throws -> [String: SafeTensors.Entry] {
        try SafeTensors.read(bundle + "/" + ModelBundle.weightsFile).0
    }

    /// Class values swapped in the label raster in place (same size, same modification time):
    /// `--resume` refuses, naming the change; `terraseg run`'s mode trains from scratch on the
    /// new labels instead of keeping the finished run's weights. Unchanged, it trains nothing.
    @Test func aLabelRasterChangedInPlaceIsNotTakenForTheFinishedRun() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 120, height: 100, bands: 3, seed: 3)
        try scene.writeUncompressedLabels(swapped: false, inPlace: false)
        let out = dir.file("model")
        let first = try Self.trainer(scene, out).run()
        let weights = try Self.weights(out)

        let unchanged = Steps()
        let same = try Self.trainer(scene, out, steps: unchanged).run(start: .resumeIfCurrent)
        #expect(unchanged.count == 0 && same.history.map(\.trainLoss) == first.history.map(\.trainLoss))
        #expect(try Self.weights(out) == weights)

        try scene.writeUncompressedLabels(swapped: true, inPlace: true)
        let refused = #expect(throws: TerraSegError.self) { try Self.trainer(scene, out).run(start: .resume) }
        #expect(refused?.problem.contains("the training data changed") == true, "\(String(describing: refused))")
        #expect(refused?.hint?.contains("--restart") == true)
        let retrained = Steps()
        let again = try Self.trainer(scene, out, steps: retrained).run(start: .resumeIfCurrent)
        #expect(retrained.count > 0 && again.history.count == 2 && !again.interrupted)
        #expect(again.history.map(\.trainLoss) != first.history.map(\.trainLoss))
        #expect(try Self.weights(out) != weights)
    }

    /// A changed setting starts over in `terraseg run`'s mode (never "start afresh without
    /// --resume"), is refused by `--resume`, and `restart` always trains.
    @Test func aChangedSettingStartsOverAndRestartAlwaysTrains() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 120, height: 100, bands: 3, seed: 4)
        let out = dir.file("model")
        let first = try Self.trainer(scene, out).run()
        var options = TinyModel.options()
        options.optimizer.learningRate = 0.02

        let refused = #expect(throws: TerraSegError.self) { try Self.trainer(scene, out, options: options).run(start: .resume) }
        #expect(refused?.problem.contains("the training settings changed") == true, "\(String(describing: refused))")
        let changed = Steps()
        let again = try Self.trainer(scene, out, options: options, steps: changed).run(start: .resumeIfCurrent)
        #expect(changed.count > 0 && again.history.map(\.trainLoss) != first.history.map(\.trainLoss))

        let forced = Steps()
        let restarted = try Self.trainer(scene, out, options: options, steps: forced).run(start: .restart)
        #expect(forced.count == changed.count && restarted.history.map(\.trainLoss) == again.history.map(\.trainLoss))
    }

    /// `terraseg train` without --resume does not delete an interrupted run's checkpoint: it
    /// refuses, naming --resume and --restart; --restart discards it; a finished run's
    /// checkpoint is replaced without asking.
    @Test func aNewRunRefusesToDiscardAnInterruptedOne() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 120, height: 100, bands: 3, seed: 5)
        let out = dir.file("model")
        let t = try Self.trainer(scene, out)
        let before = Steps()
        var stopNow = false
        t.stopRequested = { stopNow }
        t.afterStep = { epoch, batch in
            before.count += 1
            if epoch == 1 && batch == 0 { stopNow = true }
        }
        #expect(try t.run().interrupted)
        let stepsPerEpoch = before.count - 1

        let refused = #expect(throws: TerraSegError.self) { try Self.trainer(scene, out).run() }
        #expect(refused?.problem == "an interrupted run is here (stopped in epoch 2 of 2, batch 2)", "\(String(describing: refused))")
        #expect(refused?.hint == "Continue it with --resume, or discard it and start over with --restart")
        #expect(FileManager.default.fileExists(atPath: out + ".training/last.ckpt"))

        let steps = Steps()
        let restarted = try Self.trainer(scene, out, steps: steps).run(start: .restart)
        #expect(!restarted.interrupted && restarted.history.count == 2 && steps.count == 2 * stepsPerEpoch, "from scratch, not resumed")
        #expect(try !Self.trainer(scene, out).run().interrupted, "a finished run's checkpoint is replaced")
    }

    /// The bundle's wall_seconds counts the sessions before a resume: a finished checkpoint
    /// resumed (bundle deleted) reports at least the time the first session slept in its steps.
    @Test func wallSecondsCountEverySession() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 120, height: 100, bands: 3, seed: 6)
        let out = dir.file("model")
        let steps = Steps()
        let t = try Self.trainer(scene, out)
        t.afterStep = { _, _ in
            steps.count += 1
            Thread.sleep(forTimeInterval: 0.05)
        }
        let first = try t.run()
        let slept = 0.05 * Double(steps.count)
        #expect(first.wallSeconds >= slept)
        try FileManager.default.removeItem(atPath: out)

        let none = Steps()
        let again = try Self.trainer(scene, out, steps: none).run(start: .resumeIfCurrent)
        #expect(none.count == 0)
        #expect(again.wallSeconds >= slept, "wall seconds \(again.wallSeconds), slept \(slept) in the first session")
        #expect(try ModelBundle.read(out).provenance.wallSeconds == again.wallSeconds)
    }
}
