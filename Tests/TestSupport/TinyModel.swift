import ModelIO
import Foundation
import GeoRaster
import Models
import Tiling
import Training

/// Tiny U-Nets for tests, made through the public Trainer and ModelBundle API: trained on a
/// `SyntheticScene` in seconds (debug build), or with seeded weights at once.
public enum TinyModel {
    /// Two levels, 8 and 16 channels, an undilated 16-channel bottleneck: alignment 4,
    /// receptive radius 21. Narrow layers are undilated 3×3, so Winograd keeps them fast.
    /// (Widths [4, 8] stop at a precondition in UpsampleConcat: "UpsampleConcat layouts".)
    public static var model: ModelSpec {
        var m = ModelSpec()
        m.widths = [8, 16]
        m.bottleneckWidth = 16
        m.bottleneckDilations = [1]
        return m
    }

    public static var classMap: ClassMap {
        try! ClassMap(values: SyntheticScene.classes.map { ($0.value, $0.name) }, ignoreValues: [SyntheticScene.ignoreValue])
    }

    /// The scenes as `terraseg train` and pipelines declare them.
    public static func data(_ scenes: [SyntheticScene]) -> DataSpec {
        DataSpec(scenes: scenes.map { SceneSpec(image: [$0.image], labels: $0.labels) },
                 classes: SyntheticScene.classes.map { ClassSpec(value: $0.value, name: $0.name) },
                 ignore: [SyntheticScene.ignoreValue])
    }

    /// 32-pixel patches every 16 pixels, batches of 4, the top 70 % of the scene trains and
    /// the rest validates; a learning rate high enough to learn the pattern in 2–3 epochs.
    public static func options(epochs: Int = 2, seed: UInt64 = 7) -> TrainingOptions {
        var o = TrainingOptions()
        o.patchSize = 32
        o.stride = 16
        o.epochs = epochs
        o.batchSize = 4
        o.split = SplitOptions(method: .rows, trainFraction: 0.7)
        o.seed = seed
        o.optimizer.learningRate = 0.01
        return o
    }

    /// A quiet trainer writing its bundle to `output`.
    public static func trainer(_ scenes: [SyntheticScene], output: String, options: TrainingOptions = TinyModel.options()) throws -> Trainer {
        let opened = try data(scenes).openScenes()
        let architecture = try model.architecture(inputChannels: scenes[0].bands, classes: SyntheticScene.classes.count)
        let trainer = try Trainer(scenes: opened, architecture: architecture, options: options, output: output)
        trainer.progress.quiet = true
        trainer.terrasegVersion = "test"
        return trainer
    }

    /// Trains on `scene` and writes the bundle to `output`.
    @discardableResult
    public static func train(_ scene: SyntheticScene, output: String, epochs: Int = 2) throws -> TrainingResult {
        try trainer([scene], output: output, options: options(epochs: epochs)).run()
    }

    /// A bundle with seeded, untrained weights and `scene`'s band statistics, written to
    /// `output` without training (instant); returns what it wrote.
    @discardableResult
    public static func seeded(_ scene: SyntheticScene, output: String, seed: UInt64 = 5) throws -> ModelBundle {
        let architecture = try model.architecture(inputChannels: scene.bands, classes: SyntheticScene.classes.count)
        let statistics = try BandStatistics.compute(Dataset(path: scene.image))
        let bundle = ModelBundle(architecture: architecture, bands: Array(1...scene.bands),
                                 bandDescriptions: (1...scene.bands).map { "synthetic band \($0)" },
                                 normalization: Normalizer(statistics: statistics, method: .standardize), statistics: statistics,
                                 classes: classMap, patchSize: 32,
                                 provenance: .init(terrasegVersion: "test", trainingData: [], epochs: 0, seed: seed))
        try bundle.write(network: architecture.build(seed: seed), to: output)
        return bundle
    }
}
