import ArgumentParser
import Foundation
import GeoRaster
import Models
import Pipeline
import Tiling
import Training

extension TerraSegCommand {
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a segmentation model on labelled scenes or tile sets and write a model bundle.",
            discussion: """
                Give scenes with --image/--labels pairs (band files of one scene joined by commas), or a tile set \
                with --tiles/--tile-images/--tile-mask. Training patches are split spatially into training and \
                validation; normalisation statistics come from the training patches and go into the bundle. \
                Ctrl-C stops cleanly after saving a checkpoint; --resume continues the same run.
                """)

        @Option(help: "A pipeline file (YAML): its data, model, tiling, loss, optimizer, schedule, training and augmentation sections; flags given here override it.")
        var config: String?

        @Option(name: .long, help: "Image of a scene (repeatable; band files of one scene joined by commas).")
        var image: [String] = []

        @Option(name: .long, help: "Label raster of the matching --image, on its grid (repeatable).")
        var labels: [String] = []

        @Option(name: .customLong("vector-labels"), help: "Polygons with a class attribute instead of --labels (one per --image).")
        var vectorLabels: [String] = []

        @Option(name: .customLong("label-attribute"), help: "Attribute of --vector-labels holding the class value or name.")
        var labelAttribute: String?

        @Option(help: "Tile set root folder (chips and masks).")
        var tiles: String?

        @Option(name: .customLong("tile-images"), help: "Chip templates with {id}, comma-separated per band file, e.g. images/{id}.tif.")
        var tileImages: String?

        @Option(name: .customLong("tile-mask"), help: "Mask template with {id}, e.g. masks/{id}_m.png.")
        var tileMask: String?

        @Option(help: "Classes: VALUE=NAME[:#rrggbb],… e.g. 1=developed:#e31a1c,2=water.")
        var classes: String?

        @Option(help: "Label values to ignore, comma-separated (e.g. 0 or -1).")
        var ignore: String?

        @Option(help: "Bands to use, 1-based, comma-separated (default: all non-alpha bands).")
        var bands: String?

        @Option(help: "unet, dilated, r1 or r1-nails.")
        var model = "unet"

        @Option(help: "U-Net widths per level, comma-separated.")
        var widths = "32,64,128,256"

        @Option(help: "U-Net decoder upsampling: \(UpsamplingMode.choices).")
        var upsampling = "bilinear"

        @Option(help: "Epochs (default 20).") var epochs: Int?
        @Option(name: .customLong("batch-size"), help: "Patches per step (default 8).") var batchSize: Int?
        @Option(name: .customLong("patch-size"), help: "Patch side in pixels (a multiple of 16 for a 4-level U-Net).") var patchSize = 128
        @Option(help: "Stride between patches (default: half a patch).") var stride: Int?
        @Option(name: .customLong("max-invalid"), help: "Skip patches with more invalid pixels than this fraction.") var maxInvalid = 0.5

        @Option(help: "Validation split: rows:F (top F trains), columns:F, blocks[:SIZE[:FRACTION]] or none.")
        var split = "blocks"

        @Option(help: "Loss terms with weights, e.g. focal+dice, dice*0.5+focal, cross_entropy.")
        var loss = "focal+dice"

        @Option(help: "adam, adamw or sgd.") var optimizer = "adam"
        @Option(name: .customLong("lr"), help: "Learning rate.") var learningRate: Float = 1e-3
        @Option(name: .customLong("weight-decay"), help: "Weight decay.") var weightDecay: Float = 0
        @Option(help: "constant, step or cosine.") var schedule = "constant"
        @Option(help: "Warm-up epochs.") var warmup = 0.0
        @Option(help: "standardize or percentile_clip.") var normalization = "standardize"
        @Flag(name: .customLong("no-augment"), help: "No flips/rotations.") var noAugment = false
        @Option(help: "Random seed (default 42).") var seed: UInt64?

        @Option(help: "Model bundle directory to write (default with --config: <run directory>/model).")
        var output: String?

        @Flag(help: "Continue the run from its last checkpoint (<output>.training/).")
        var resume = false

        @Option(name: .customLong("export-patches"), help: ArgumentHelp("Write the normalised train/validation patches to this safetensors file and exit (for side-by-side runs with other frameworks).", visibility: .hidden))
        var exportPatches: String?

        @OptionGroup var global: GlobalOptions

        func ints(_ s: String, _ flag: String) throws -> [Int] {
            try s.split(separator: ",").map { part in
                guard let v = Int(part.trimmingCharacters(in: .whitespaces)) else { throw ValidationError("\(flag): '\(part)' is not an integer") }
                return v
            }
        }

        func run() throws {
            global.bootstrapLogging()
            if let config {
                // The pipeline file's training sections, with the flags given here on top.
                let loaded = try PipelineLoader.load(config)
                var o = loaded.spec.trainingOptions
                if let epochs { o.epochs = epochs }
                if let batchSize { o.batchSize = batchSize }
                if let seed { o.seed = seed }
                let out = output ?? loaded.output + "/model"
                let result = try TrainCommandRunner.run(data: loaded.spec.data, model: loaded.spec.model, options: o, output: out, resume: resume)
                if result.interrupted { throw ExitCode(130) }
                return
            }
            guard let classes else { throw ValidationError("give --classes (or a pipeline file with --config)") }
            guard let output else { throw ValidationError("give --output (the model bundle directory to write)") }
            var data = DataSpec()
            data.classes = try ClassSpec.parseList(classes)
            data.ignore = try ignore.map { try ints($0, "--ignore") } ?? []
            data.bands = try bands.map { try ints($0, "--bands") }
            if !labels.isEmpty && labels.count != image.count {
                throw ValidationError("give one --labels per --image (\(image.count) images, \(labels.count) labels)")
            }
            if !vectorLabels.isEmpty && vectorLabels.count != image.count {
                throw ValidationError("give one --vector-labels per --image")
            }
            for (i, img) in image.enumerated() {
                data.scenes.append(SceneSpec(image: img.split(separator: ",").map(String.init),
                                             labels: labels.isEmpty ? nil : labels[i],
                                             vectorLabels: vectorLabels.isEmpty ? nil : vectorLabels[i], labelAttribute: labelAttribute))
            }
            if let tiles {
                guard let tileImages, let tileMask else { throw ValidationError("--tiles needs --tile-images and --tile-mask") }
                data.tileSets.append(TileSetSpec(root: tiles, images: tileImages.split(separator: ",").map(String.init), mask: tileMask))
            }
            var spec = ModelSpec()
            switch model {
            case "unet": spec.kind = .unet
            case "dilated": spec.kind = .dilated
            case "r1", "r1-nails": spec.preset = model
            default: throw ValidationError("--model must be unet, dilated, r1 or r1-nails")
            }
            spec.widths = try ints(widths, "--widths")
            guard let up = UpsamplingMode(rawValue: upsampling) else {
                throw ValidationError("--upsampling must be \(UpsamplingMode.choices)")
            }
            spec.upsampling = up

            var o = TrainingOptions()
            o.epochs = epochs ?? o.epochs
            o.batchSize = batchSize ?? o.batchSize
            o.patchSize = patchSize
            o.stride = stride
            o.maxInvalidFraction = maxInvalid
            o.split = try Train.parseSplit(split)
            o.loss.terms = try Train.parseLoss(loss)
            guard let kind = OptimizerOptions.Kind(rawValue: optimizer) else { throw ValidationError("--optimizer must be adam, adamw or sgd") }
            o.optimizer.kind = kind
            o.optimizer.learningRate = learningRate
            o.optimizer.weightDecay = weightDecay
            guard let sk = ScheduleOptions.Kind(rawValue: schedule) else { throw ValidationError("--schedule must be constant, step or cosine") }
            o.schedule.kind = sk
            o.schedule.warmupEpochs = warmup
            guard let nm = NormalizationMethod(rawValue: normalization) else { throw ValidationError("--normalization must be standardize or percentile_clip") }
            o.normalization = nm
            if noAugment { o.augmentation = .none }
            o.seed = seed ?? o.seed

            if let exportPatches {
                let scenes = try data.openScenes(validationFraction: o.split.validationFraction, seed: o.seed)
                let arch = try spec.architecture(inputChannels: scenes[0].bands.count, classes: scenes[0].classMap.count)
                try Trainer(scenes: scenes, architecture: arch, options: o, output: output).exportPatches(to: exportPatches)
                print(exportPatches)
                return
            }
            let result = try TrainCommandRunner.run(data: data, model: spec, options: o, output: output, resume: resume)
            if result.interrupted { throw ExitCode(130) }
        }

        static func parseSplit(_ s: String) throws -> SplitOptions {
            let parts = s.split(separator: ":").map(String.init)
            guard let method = SplitOptions.Method(rawValue: parts[0]) else {
                throw ValidationError("--split must be rows:F, columns:F, blocks[:SIZE[:FRACTION]] or none")
            }
            var o = SplitOptions(method: method)
            switch method {
            case .rows, .columns:
                if parts.count > 1 {
                    guard let f = Double(parts[1]), f > 0, f < 1 else { throw ValidationError("--split \(s): the fraction must be between 0 and 1") }
                    o.trainFraction = f
                }
            case .blocks:
                if parts.count > 1 { o.blockSize = Int(parts[1]) }
                if parts.count > 2 { o.validationFraction = Double(parts[2]) ?? o.validationFraction }
            case .none: break
            }
            return o
        }

        static func parseLoss(_ s: String) throws -> [LossOptions.Term] {
            try s.split(separator: "+").map { term in
                let p = term.split(separator: "*").map { $0.trimmingCharacters(in: .whitespaces) }
                guard let kind = LossOptions.Kind(rawValue: p[0] == "ce" ? "cross_entropy" : p[0]) else {
                    throw ValidationError("--loss: unknown term '\(p[0])' (dice, focal, cross_entropy)")
                }
                let w = p.count > 1 ? Float(p[1]) : 1
                guard let weight = w else { throw ValidationError("--loss: '\(p[1])' is not a weight") }
                return LossOptions.Term(kind, weight: weight)
            }
        }
    }
}

/// Shared by `terraseg train` and `terraseg run`: opens the data, trains, prints the outcome.
enum TrainCommandRunner {
    static func run(data: DataSpec, model: ModelSpec, options: TrainingOptions, output: String, resume: Bool) throws -> TrainingResult {
        let result = try Trainer.train(data: data, model: model, options: options, output: output, resume: resume,
                                       terrasegVersion: terrasegVersion)
        if let bundle = result.bundle {
            var line = "Model bundle: \(bundle)  (\(result.epochsCompleted) epochs, \(String(format: "%.0f", result.wallSeconds)) s"
            if let b = result.best, let miou = b.meanIoU, let oa = b.overallAccuracy {
                line += String(format: "; best epoch %d: validation mIoU %.3f, OA %.3f", b.epoch, miou, oa)
            }
            print(line + ")")
        }
        return result
    }
}

extension UpsamplingMode {
    /// "bilinear, nearest, …, or max-unpooling", for help and errors.
    static var choices: String {
        let names = allCases.map(\.rawValue)
        return names.dropLast().joined(separator: ", ") + " or " + names.last!
    }
}
