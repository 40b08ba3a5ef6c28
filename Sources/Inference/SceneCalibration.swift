import Core
import Foundation
import ModelIO
import Models

/// int8 calibration of a bundle on scenes: `terraseg quantize` and a pipeline's
/// `prediction.precision: int8|auto` both map the scenes in fp32 exactly as prediction does
/// (centre windows of `tile`) while `Int8Calibrator` records what each convolution sees; the
/// maps go to a temporary folder beside `scratch` and are discarded.
public enum SceneCalibration {
    /// The `quantization` section for `bundle` from `jobs` mapped with `network` (fp32, the
    /// bundle's). Refuses a scene that fails and scenes without valid pixels.
    public static func quantization(bundle: ModelBundle, network: any SegmentationNetwork, jobs: [SceneJob],
                                    tile: Int, scratch: String) throws -> ModelQuantization {
        let scenes = NetworkSceneModel(bundle: bundle, network: network)
        var options = PredictionOptions()
        options.tileSize = tile
        options.overwrite = true
        options.blend = .centre  // the calibrator records windows of `tile`
        let predictor = try ScenePredictor(model: scenes, inputs: scenes.inputs, options: options)
        let maps = try AtomicFile.createTemporaryDirectory(for: scratch)
        defer { try? FileManager.default.removeItem(atPath: maps) }
        let calibrator = Int8Calibrator(network)
        let reports = try predictor.run(jobs: jobs, directory: maps) { _ in }
        let steps = calibrator.finish()
        if let failed = reports.first(where: { if case .failed = $0.status { return true } else { return false } }) {
            throw TerraSegError(.readFailed, path: failed.job.name, problem: "the calibration scene could not be mapped",
                                 hint: "Fix or leave out that scene (see the message above)")
        }
        guard calibrator.images > 0 else {
            throw TerraSegError(.invalidArgument, path: jobs.map(\.name).joined(separator: " "), problem: "no valid pixels to calibrate on",
                                 hint: "Give scenes with data the model maps")
        }
        return ModelQuantization(architecture: bundle.architecture, steps: steps, scenes: jobs.map(\.name), patches: calibrator.images)
    }
}
