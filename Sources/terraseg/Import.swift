import ArgumentParser
import Core
import Foundation
import GeoRaster
import ModelIO
import Models
import Pipeline
import Tiling
import Training

extension TerraSegCommand {
    struct Import: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Make a model bundle from weights trained with another framework.",
            subcommands: [SMP.self])
    }
}

extension TerraSegCommand.Import {
    struct SMP: ParsableCommand {
        static let configuration = CommandConfiguration(
            commandName: "smp",
            abstract: "Make a model bundle from a segmentation_models_pytorch Unet (ResNet encoder) saved as safetensors.",
            discussion: """
                Save the state dict in Python: `from safetensors.torch import save_file; save_file(model.state_dict(), "w.safetensors")`. \
                Input bands, classes and decoder channels are read from the weights; every tensor name and shape is checked \
                against the network they describe. The bundle normalises each band as (x - mean) / std, as the PyTorch side \
                did: give those values with --mean and --std, or compute them from a scene with --statistics-from. \
                Its model.safetensors loads back into smp.Unet with load_state_dict(strict=True).
                """)

        @Option(help: "The state dict of smp's Unet, saved with safetensors.torch.save_file.")
        var weights: String

        @Option(help: "The encoder the Unet was built with (smp's encoder_name).")
        var encoder: ResNetEncoder

        @Option(help: "Classes in output-channel order: VALUE=NAME[:#rrggbb],… e.g. 1=developed,2=water.", transform: ClassSpec.parseList)
        var classes: [ClassSpec]

        @Option(help: "Per-band means the network's inputs were normalised with, comma-separated.", transform: DoubleList.parse)
        var mean: [Double]?

        @Option(help: "Per-band standard deviations (positive), comma-separated.", transform: DoubleList.parse)
        var std: [Double]?

        @Option(name: .customLong("statistics-from"), help: "A scene (one raster, or band files joined by commas) whose per-band mean and std normalise the inputs, instead of --mean/--std.",
                transform: PathList.parse)
        var statisticsFrom: [String]?

        @Option(help: "1-based bands of the scenes the network takes, in order, comma-separated (default: 1 to N).", transform: IntList.parse)
        var bands: [Int]?

        @Option(name: .customLong("output-stride"), help: "smp's encoder_output_stride the Unet was built with (32, 16 or 8; weights do not record it).")
        var outputStride = 32

        @Option(help: "The model bundle directory to write.")
        var output: String

        @OptionGroup var global: GlobalOptions

        func run() throws {
            global.bootstrapLogging()
            if let line = flagProblem() { throw ValidationError(line) }
            let source = try SMPImport(path: weights, encoder: encoder, outputStride: outputStride)
            let c = source.configuration
            let scene = try statisticsFrom.map { try openScene(SceneSources.make($0, bandNames: nil, resampling: [], nodata: [])) }
            let selected = try bands ?? scene.map { try $0.resolveBands(nil) } ?? Array(1...c.inputChannels)
            let problems = countProblems(bands: c.inputChannels, classes: c.classes, selected: selected)
            if !problems.isEmpty { throw SettingsRefused(lines: problems) }
            let classMap = try DataSpec(classes: classes).classMap()
            let (normalizer, statistics) = try normalization(scene: scene, bands: selected)
            let info = scene?.info
            var bundle = ModelBundle(
                architecture: .resnetUNet(c), bands: selected,
                bandDescriptions: selected.map { Self.description(of: $0, in: info) },
                normalization: normalizer, statistics: statistics, classes: classMap, patchSize: 256,
                provenance: ModelBundle.Provenance(terrasegVersion: terrasegVersion, trainingData: ["smp Unet state dict \(weights)"], epochs: 0, seed: 0))
            bundle.sceneProfile = info.map(SceneProfile.init(info:))
            if let issue = bundle.issues().first {
                throw TerraSegError(.invalidArgument, path: weights, problem: "\(issue.key) \(issue.problem)", hint: issue.fix)
            }
            if let problem = bundle.consistencyProblem() {
                throw TerraSegError(.invalidArgument, path: weights, problem: problem, hint: "Check --bands, --classes, --mean and --std")
            }
            try bundle.write(network: try source.network(), to: output)
            print("Wrote \(output): \(bundle.architecture.name), \(c.inputChannels) bands \(selected), \(c.classes) classes")
        }

        /// The scene's name of band `b` (1-based), else "band b".
        static func description(of b: Int, in info: RasterInfo?) -> String {
            guard let info, b <= info.bands.count, !info.bands[b - 1].description.isEmpty else { return "band \(b)" }
            return info.bands[b - 1].description
        }

        /// What the flags say wrong before the weights are read: the normalisation source, the stride.
        func flagProblem() -> String? {
            if !ResNetUNetConfiguration.outputStrides.contains(outputStride) {
                return "--output-stride must be 8, 16 or 32, got \(outputStride)"
            }
            switch (mean != nil, std != nil, statisticsFrom != nil) {
            case (false, false, false): return "give --mean and --std (the values the PyTorch side normalised each band with), or --statistics-from SCENE"
            case (true, false, _): return "--mean needs --std (one standard deviation per band)"
            case (false, true, _): return "--std needs --mean (one mean per band)"
            case (true, true, true): return "give --mean/--std or --statistics-from, not both"
            default: return nil
            }
        }

        /// The flags that must agree with the weights: band and class counts, finite means and
        /// positive standard deviations (within Float32: the bundle stores mean and 1/std).
        func countProblems(bands n: Int, classes k: Int, selected: [Int]) -> [String] {
            var out: [String] = []
            let from = "the weights take \(n) bands (encoder.conv1.weight of \(weights))"
            for (flag, values) in [("--mean", mean), ("--std", std)] {
                if let values, values.count != n { out.append("\(flag) has \(values.count) values but \(from)") }
            }
            for (i, m) in (mean ?? []).enumerated() where !Float(m).isFinite {
                out.append("--mean value \(i + 1) (\(m)) is not a finite number")
            }
            for (i, s) in (std ?? []).enumerated() where !(s > 0) || !Float(s).isFinite || !Float(1 / s).isFinite {
                out.append("--std value \(i + 1) (\(s)) must be a positive number (at least 1e-38, at most 3e38)")
            }
            if classes.count != k {
                out.append("--classes lists \(classes.count) classes but the weights output \(k) (segmentation_head.0.weight of \(weights))")
            }
            if selected.count != n {
                out.append("\(bands != nil ? "--bands lists" : "--statistics-from's scene has") \(selected.count) bands but \(from)"
                           + (bands == nil ? "; choose them with --bands" : ""))
            }
            for (i, b) in selected.enumerated() where bands != nil {
                if let issue = PipelineSchema.check("data.bands[\(i)]", Double(b)) { out.append("--bands: \(issue.problem). \(issue.fix)") }
            }
            return out
        }

        /// (x − mean) / std per band, from the flags or from the scene's statistics.
        func normalization(scene: (any RasterSource)?, bands: [Int]) throws -> (Normalizer, BandStatistics?) {
            guard let scene else {
                return (Normalizer(method: .standardize, offset: mean!.map(Float.init), scale: std!.map { Float(1 / $0) }), nil)
            }
            let stats = try BandStatistics.compute(scene, bands: bands)
            for (i, b) in bands.enumerated() where !(stats.std[i] > 0) || !Float(1 / stats.std[i]).isFinite {
                throw RasterError(.badBand, path: scene.info.path, band: b,
                                  problem: stats.count[i] == 0 ? "the band has no valid pixel" : "the band is constant (std \(stats.std[i]))",
                                  hint: "Its statistics cannot normalise it; give --mean and --std instead")
            }
            return (Normalizer(statistics: stats, method: .standardize), stats)
        }
    }
}
