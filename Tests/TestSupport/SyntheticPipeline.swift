import Foundation

/// A small `terraseg run` job on a `SyntheticScene` (no shared data): its three classes, a
/// tiny U-Net, a split by rows. The one set-up of the pipeline tests (PipelineTests,
/// StacPipelineTests, StalenessTests, DistributedPipelineTests); each changes only what it tests.
public enum SyntheticPipeline {
    /// The job's YAML, reading `scene.tif` and `scene_labels.tif` beside it. `image` is the
    /// scene's image value (a file, or a flow list of band files); `dataExtra` and `extra` are
    /// lines added to the data section and after the prediction section.
    public static func yaml(name: String = "synthetic", image: String = "scene.tif", stride: Int = 16, learningRate: Double = 0.01,
                            epochs: Int = 2, prediction: String = "tile: 64", dataExtra: String? = nil, extra: String? = nil) -> String {
        let classes = SyntheticScene.classes.map { "    - {value: \($0.value), name: \($0.name)}" }.joined(separator: "\n")
        return """
            name: \(name)
            output: run
            data:
              scenes: [{image: \(image), labels: scene_labels.tif}]
            \(dataExtra.map { "  " + $0 + "\n" } ?? "")  classes:
            \(classes)
              ignore: [\(SyntheticScene.ignoreValue)]
            tiling: {patch: 32, stride: \(stride), split: {method: rows, train_fraction: 0.7}}
            model: {widths: [8, 16], bottleneck_width: 16, bottleneck_dilations: [1]}
            optimizer: {learning_rate: \(learningRate)}
            training: {epochs: \(epochs), batch_size: 4}
            prediction: {\(prediction)}
            """ + (extra.map { "\n" + $0 } ?? "") + "\n"
    }

    /// Writes a 3-band `scene.tif` (+ labels) of `width`×`height` and `yaml` as `job.yaml` into
    /// `directory`; returns the scene and the job file's path.
    @discardableResult
    public static func write(in directory: String, width: Int, height: Int, yaml: String = yaml()) throws -> (scene: SyntheticScene, job: String) {
        let scene = try SyntheticScene(in: directory, width: width, height: height, bands: 3)
        let job = (directory as NSString).appendingPathComponent("job.yaml")
        try yaml.write(toFile: job, atomically: true, encoding: .utf8)
        return (scene, job)
    }
}
