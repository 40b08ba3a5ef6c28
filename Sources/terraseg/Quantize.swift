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
            guard !Int8Calibration.unitNames(bundle.architecture).isEmpty else {
                throw TerraSegError(.invalidArgument, path: model, problem: "the \(bundle.architecture.name) has no int8 layers (quantization covers the U-Net and the dilated CNN)",
                                     hint: "Predict with this model in fp32 (the default)")
            }
            let net = try bundle.network(directory: model)
            let jobs = try SceneJob.expand(calibration, foldersAreScenes: bundle.recipe?.bandNames != nil)
            bundle.quantization = try stoppable {
                try SceneCalibration.quantization(bundle: bundle, network: net, jobs: jobs, tile: tile, scratch: output + ".calibration")
            }
            try bundle.write(network: net, to: output, extraFiles: try Self.otherFiles(of: model))
            let int8 = bundle.quantization!.int8Steps.count
            print("Wrote \(output): int8 in \(int8) of \(bundle.quantization!.layers.count) layers, calibrated on \(bundle.quantization!.calibrationPatches) windows of \(jobs.count) scene(s)")
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
