import ArgumentParser
import Core
import Foundation
import Inference
import ModelIO
import Models
import Pipeline

extension TerraSegCommand {
    struct Quantize: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Calibrate a trained model for int8 prediction (predict --precision int8).",
            discussion: """
                Maps the calibration scenes in fp32 as `predict --blend centre` does (windows of --tile) while recording \
                what each convolution sees; each int8 layer's input step is the 99.99th percentile of its inputs / 255. \
                Weights get per-output-channel symmetric int8 steps at load (after folding batch norm). The first \
                convolution and the head stay fp32. The output bundle is the input bundle plus a `quantization` \
                section in model.json (weights unchanged, still fp32); the calibration maps are discarded.
                """)

        @Option(name: .long, help: "The model bundle directory (from terraseg train).")
        var model: String

        @Option(name: .long, parsing: .upToNextOption, help: "Scenes to calibrate on (as for predict), typical of those to map.")
        var calibration: [String]

        @Option(name: .long, help: "The quantized bundle directory to write.")
        var output: String

        @Option(help: "Core tile size of the calibration windows in pixels.")
        var tile = 512

        @OptionGroup var global: GlobalOptions

        func run() throws {
            global.bootstrapLogging()
            var spec = PredictionSpec()
            spec.tile = tile
            try SettingsRefused.check(spec.issues(), flags: ["prediction.tile": "--tile"])
            var bundle = try ModelBundle.readChecked(model)
            let net = try bundle.network(directory: model)
            let scenes = NetworkSceneModel(bundle: bundle, network: net)
            var options = spec.options
            options.overwrite = true
            options.blend = .centre  // the calibrator records windows of --tile
            let predictor = try ScenePredictor(model: scenes, inputs: scenes.inputs, options: options)
            let jobs = try SceneJob.expand(calibration, foldersAreScenes: scenes.inputs.recipe?.bandNames != nil)
            let maps = try AtomicFile.createTemporaryDirectory(for: output + ".calibration")
            defer { try? FileManager.default.removeItem(atPath: maps) }
            let calibrator = Int8Calibrator(net)
            let reports = try stoppable { try predictor.run(jobs: jobs, directory: maps) { _ in } }
            let steps = calibrator.finish()
            if let failed = reports.first(where: { if case .failed = $0.status { return true } else { return false } }) {
                throw TerraSegError(.readFailed, path: failed.job.name, problem: "the calibration scene could not be mapped",
                                     hint: "Fix or leave out that scene (see the message above)")
            }
            guard calibrator.images > 0 else {
                throw TerraSegError(.invalidArgument, path: calibration.joined(separator: " "), problem: "no valid pixels to calibrate on",
                                     hint: "Give scenes with data the model maps")
            }
            bundle.quantization = ModelQuantization(architecture: bundle.architecture, steps: steps,
                                                    scenes: jobs.map(\.name), patches: calibrator.images)
            try bundle.write(network: net, to: output, extraFiles: try Self.otherFiles(of: model))
            let int8 = bundle.quantization!.int8Steps.count
            print("Wrote \(output): int8 in \(int8) of \(bundle.quantization!.layers.count) layers, calibrated on \(calibrator.images) windows of \(jobs.count) scene(s)")
        }
    
        /// The bundle's files besides weights and model.json (training log, options), kept as they are.
        static func otherFiles(of bundle: String) throws -> [String: Data] {
            var files: [String: Data] = [:]
            for name in try FileManager.default.contentsOfDirectory(atPath: bundle)
            where name != ModelBundle.weightsFile && name != ModelBundle.metadataFile && !name.hasPrefix(".") {
                var isDirectory: ObjCBool = false
                guard FileManager.default.fileExists(atPath: bundle + "/" + name, isDirectory: &isDirectory), !isDirectory.boolValue else { continue }
                files[name] = try InputFile.read(bundle + "/" + name)
            }
            return files
        }
    }
}

extension Precision: ExpressibleByArgument {}
