import Core
import Foundation
import ModelIO
import Models
import Testing
import TestSupport
import Training

/// Pretrained encoders in training: `encoder_weights` initialises the encoder and
/// `freeze_encoder_epochs` keeps it unchanged (weights and batch-norm statistics) for the
/// first epochs, also across an interruption; the weights file is part of the fingerprint.
/// In the serialized `TrainerTests` suite (StopSignal is process-wide).
extension TrainerTests {
    static let resnet = ModelArchitecture.resnetUNet(ResNetUNetConfiguration(
        inputChannels: 4, classes: SyntheticScene.classes.count, encoder: .resnet18, decoderChannels: [32, 16, 16, 16, 16]))

    /// Pretrained weights: the encoder of a ResNet U-Net with other seeds, under smp's names.
    static func pretrained(_ path: String, seed: UInt64 = 11) throws -> [String: SafeTensors.Entry] {
        let net = resnet.build(seed: seed)
        let encoder = ModelBundle.tensors(of: net).filter { $0.name.hasPrefix("encoder.") }
        try SafeTensors.write(encoder, to: path)
        return Dictionary(uniqueKeysWithValues: encoder.map { ($0.name, $0.entry) })
    }

    static func resnetTrainer(_ scene: SyntheticScene, _ out: String, weights: String, freeze: Int?, epochs: Int) throws -> Trainer {
        var o = TinyModel.options(epochs: epochs)
        o.patchSize = 64
        o.stride = 48
        o.batchSize = 2
        o.split = SplitOptions(method: .none)  // the bundle holds the last epoch's weights
        o.freezeEncoderEpochs = freeze
        let t = try Trainer(scenes: try TinyModel.data([scene]).openScenes(), architecture: resnet, options: o, output: out)
        t.progress.quiet = true
        t.encoderWeights = try EncoderWeights(path: weights)
        return t
    }

    static func encoder(_ bundle: String) throws -> [String: SafeTensors.Entry] {
        try weights(bundle).filter { $0.key.hasPrefix("encoder.") }
    }

    @Test func aFrozenEncoderKeepsItsPretrainedWeightsAndStatistics() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 176, height: 128, bands: 4, seed: 5)
        let file = dir.file("encoder.safetensors")
        let given = try Self.pretrained(file)
        let frozen = try Self.resnetTrainer(scene, dir.file("frozen"), weights: file, freeze: 1, epochs: 1).run()
        #expect(frozen.epochsCompleted == 1 && frozen.history[0].trainLoss.isFinite)
        #expect(try Self.encoder(dir.file("frozen")) == given, "weights, running means and variances unchanged")
        let start = Self.resnet.build(seed: TinyModel.options().seed)
        let head = try #require(try Self.weights(dir.file("frozen"))["segmentation_head.0.weight"])
        #expect(head.values != ModelBundle.tensors(of: start).first { $0.name == "segmentation_head.0.weight" }?.entry.values, "the head trained")
        // After the frozen epoch the encoder trains; without freezing it trains at once.
        _ = try Self.resnetTrainer(scene, dir.file("thawed"), weights: file, freeze: 1, epochs: 2).run()
        _ = try Self.resnetTrainer(scene, dir.file("free"), weights: file, freeze: nil, epochs: 1).run()
        for bundle in ["thawed", "free"] {
            let trained = try Self.encoder(dir.file(bundle))
            #expect(trained["encoder.layer1.0.conv1.weight"] != given["encoder.layer1.0.conv1.weight"], "\(bundle)")
            #expect(trained["encoder.bn1.running_mean"] != given["encoder.bn1.running_mean"], "\(bundle)")
        }
    }

    /// Stopped inside the frozen epoch and resumed: the same weights as the uninterrupted run.
    /// A weights file rewritten in place is a changed setting: `--resume` refuses it.
    @Test func aFrozenRunResumesExactlyAndAChangedWeightsFileIsRefused() throws {
        let dir = TemporaryDirectory()
        let scene = try SyntheticScene(in: dir.path, width: 176, height: 128, bands: 4, seed: 6)
        let file = dir.file("encoder.safetensors")
        _ = try Self.pretrained(file)
        _ = try Self.resnetTrainer(scene, dir.file("full"), weights: file, freeze: 1, epochs: 2).run()
        let out = dir.file("resumed")
        let t = try Self.resnetTrainer(scene, out, weights: file, freeze: 1, epochs: 2)
        var stopNow = false
        t.stopRequested = { stopNow }
        t.afterStep = { epoch, batch in if epoch == 0 && batch == 0 { stopNow = true } }
        #expect(try t.run().interrupted)
        let resumed = try Self.resnetTrainer(scene, out, weights: file, freeze: 1, epochs: 2).run(start: .resume)
        #expect(!resumed.interrupted && resumed.epochsCompleted == 2)
        #expect(try Self.weights(out) == Self.weights(dir.file("full")))

        let again = dir.file("again")
        let u = try Self.resnetTrainer(scene, again, weights: file, freeze: 1, epochs: 2)
        var stopAgain = false
        u.stopRequested = { stopAgain }
        u.afterStep = { epoch, batch in if epoch == 0 && batch == 0 { stopAgain = true } }
        #expect(try u.run().interrupted)
        _ = try Self.pretrained(file, seed: 12)  // same size, other values
        let refused = #expect(throws: TerraSegError.self) {
            try Self.resnetTrainer(scene, again, weights: file, freeze: 1, epochs: 2).run(start: .resume)
        }
        #expect(refused?.problem.contains("the training settings changed") == true, "\(String(describing: refused))")
    }
}
