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
    struct Train: ParsableCommand {
        static let configuration = CommandConfiguration(
            abstract: "Train a segmentation model on labelled scenes or tile sets and write a model bundle.",
            discussion: """
                Give scenes with --image/--labels pairs (band files of one scene joined by commas), or a tile set \
                with --tiles/--tile-images/--tile-mask. Training patches are split spatially into training and \
                validation; normalisation statistics come from the training patches and go into the bundle. \
                Ctrl-C stops cleanly after saving a checkpoint; --resume continues the same run, --restart \
                discards it and starts over (without either, an interrupted run's checkpoint is refused, never lost).
                """)

        @Option(help: "A pipeline file (YAML): its data, model, tiling, loss, optimizer, schedule, training and augmentation sections; flags given here override it.")
        var config: String?

        @Option(name: .long, help: "Image of a scene (repeatable): one raster, band files joined by commas (a band's adjacent files joined by +), or a folder of band files with --band-names.", transform: PathList.parse)
        var image: [[String]] = []

        @Option(name: .long, help: "Label raster of the matching --image, on its grid (repeatable).")
        var labels: [String] = []

        @Option(name: .customLong("vector-labels"), help: "Polygons with a class attribute instead of --labels (one per --image).")
        var vectorLabels: [String] = []

        @Option(name: .customLong("label-attribute"), help: "Attribute of --vector-labels holding the class value or name.")
        var labelAttribute: String?

        @OptionGroup var tileSet: TileSetOptions

        @Option(help: "Classes: VALUE=NAME[:#rrggbb],… e.g. 1=developed:#e31a1c,2=water.", transform: ClassSpec.parseList)
        var classes: [ClassSpec]?

        @Option(parsing: .unconditional,  // `--ignore -1` is a value, not a flag
                help: keyHelp("Label values (and, for colour-coded masks, colours) to ignore, comma-separated (e.g. 0 or -1, or 0,#000000).", key: "data.ignore"),
                transform: IgnoreList.parse)
        var ignore: IgnoreList?

        @Option(help: keyHelp("Bands to use, 1-based, comma-separated.", key: "data.bands"), transform: IntList.parse)
        var bands: [Int]?

        @Option(name: .customLong("band-names"), help: keyHelp("Sentinel-2 band names of the sources in order, e.g. B02,B03,B04,B8A.", key: "data.band_names"),
                transform: NameList.parse)
        var bandNames: [String]?

        @Option(help: keyHelp("Resampling of sources not on the scene grid, one for all or one per source.", key: "data.resampling"),
                transform: ResamplingList.parse)
        var resampling: [Resampling]?

        @Option(help: keyHelp("Nodata of the sources (files without a nodata tag), one for all or one per source.", key: "data.nodata"),
                transform: DoubleList.parse)
        var nodata: [Double]?

        @Option(help: keyHelp("A raster whose grid the scenes are read on.", key: "data.grid"))
        var grid: String?

        @Option(help: keyHelp("Pixel size of the scene grid, in its CRS's units.", key: "data.resolution"))
        var resolution: Double?

        @Option(help: keyHelp("CRS of the --resolution grid, e.g. EPSG:32631.", key: "data.crs"))
        var crs: String?

        @Option(help: keyHelp("Area of the --resolution grid: west,south,east,north in its CRS.", key: "data.bounds"), transform: DoubleList.parse)
        var bounds: [Double]?

        @Option(help: keyHelp("The network: a kind, or a preset of the reference network R1.", key: "model.kind"))
        var model: ModelChoice?

        @Option(help: keyHelp("U-Net widths per level, comma-separated.", key: "model.widths"), transform: IntList.parse)
        var widths: [Int]?

        @Option(help: keyHelp("U-Net decoder upsampling.", key: "model.upsampling"))
        var upsampling: UpsamplingMode?

        @Option(help: keyHelp("ResNet U-Net (--model resnet-unet) encoder.", key: "model.encoder"))
        var encoder: ResNetEncoder?
        @Option(name: .customLong("output-stride"), help: keyHelp("ResNet U-Net output stride: 32, 16 or 8.", key: "model.output_stride"))
        var outputStride: Int?
        @Option(name: .customLong("decoder-channels"), help: keyHelp("ResNet U-Net decoder block widths, comma-separated (five).", key: "model.decoder_channels"),
                transform: IntList.parse)
        var decoderChannels: [Int]?

        @Option(help: keyHelp("Epochs.", key: "training.epochs")) var epochs: Int?
        @Flag(name: .customLong("sync-batchnorm"), help: keyHelp("Under mpirun/srun, batch norm over the global batch instead of each rank's shard.", key: "training.sync_batchnorm"))
        var syncBatchnorm = false
        @Option(name: .customLong("batch-size"), help: keyHelp("Patches per step.", key: "training.batch_size")) var batchSize: Int?
        @Option(name: .customLong("patch-size"), help: keyHelp("Patch side in pixels (a multiple of 16 for a 4-level U-Net).", key: "tiling.patch"))
        var patchSize: Int?
        @Option(help: keyHelp("Stride between patches.", key: "tiling.stride")) var stride: Int?
        @Option(name: .customLong("max-invalid"), help: keyHelp("Skip patches with more invalid pixels than this fraction.", key: "tiling.max_invalid"))
        var maxInvalid: Double?

        @Option(help: keyHelp("Validation split: rows:F (top F trains), columns:F, blocks[:SIZE[:FRACTION]] or none.", key: "tiling.split.method"),
                transform: SplitOptions.init(parsing:))
        var split: SplitOptions?

        @Option(help: keyHelp("Loss terms with weights, e.g. focal+dice, dice*0.5+focal, cross_entropy.", key: "loss.terms"),
                transform: LossOptions.Term.parseList)
        var loss: [LossOptions.Term]?

        @Option(help: keyHelp("Optimiser.", key: "optimizer.kind")) var optimizer: OptimizerOptions.Kind?
        @Option(name: .customLong("lr"), help: keyHelp("Learning rate.", key: "optimizer.learning_rate")) var learningRate: Float?
        @Option(name: .customLong("weight-decay"), help: keyHelp("Weight decay.", key: "optimizer.weight_decay")) var weightDecay: Float?
        @Option(help: keyHelp("Learning-rate schedule.", key: "schedule.kind")) var schedule: ScheduleOptions.Kind?
        @Option(help: keyHelp("Warm-up epochs.", key: "schedule.warmup_epochs")) var warmup: Double?
        @Option(help: keyHelp("Per-band scaling.", key: "normalization")) var normalization: NormalizationMethod?
        @Option(help: keyHelp("Convolution arithmetic: fp32, bf16 or auto (per layer the faster of bf16 and fp32).", key: "training.precision"))
        var precision: Precision?
        @Flag(name: .customLong("no-augment"), help: "No flips/rotations.") var noAugment = false
        @Option(help: keyHelp("Random seed.", key: "training.seed")) var seed: Int?
        @Option(name: .customLong("cache-megabytes"), help: keyHelp("Normalised patches kept in memory (0: read every patch from disk each epoch, ahead of the network).", key: "training.cache_megabytes"))
        var cacheMegabytes: Int?
        @Option(name: .customLong("encoder-weights"), help: keyHelp("Pretrained encoder weights (safetensors of a torchvision/timm ResNet, or with smp's encoder. names) for a ResNet U-Net.", key: "model.encoder_weights"))
        var encoderWeights: String?
        @Option(name: .customLong("freeze-encoder-epochs"), help: keyHelp("Epochs at the start that leave the encoder unchanged.", key: "training.freeze_encoder_epochs"))
        var freezeEncoderEpochs: Int?
        @Option(name: .customLong("reader-threads"), help: keyHelp("Threads reading uncached tile-set patches ahead of the network (the result does not depend on it).", key: "training.reader_threads"))
        var readerThreads: Int?

        @Option(help: "Model bundle directory to write (default with --config: <run directory>/model).")
        var output: String?

        @Flag(help: "Continue the run from its last checkpoint (<output>.training/).")
        var resume = false

        @Flag(help: "Discard the checkpoint of an interrupted run (<output>.training/) and start over.")
        var restart = false

        @Option(name: .customLong("export-patches"), help: ArgumentHelp("Write the normalised train/validation patches to this safetensors file and exit (for side-by-side runs with other frameworks).", visibility: .hidden))
        var exportPatches: String?

        @Option(help: keyHelp("Memory training may use, e.g. 8G: settings that need more are refused before any work.", key: "memory"),
                transform: ByteSize.parse)
        var memory: Int?

        @OptionGroup var global: GlobalOptions

        /// The pipeline key each settings flag sets (key prefixes for structured values).
        static let flags = [
            "data.bands": "--bands", "data.resolution": "--resolution", "data.nodata": "--nodata", "data.bounds": "--bounds", "model.widths": "--widths", "tiling.patch": "--patch-size", "tiling.stride": "--stride",
            "model.output_stride": "--output-stride", "model.decoder_channels": "--decoder-channels",
            "tiling.max_invalid": "--max-invalid", "tiling.split": "--split", "loss.terms": "--loss",
            "optimizer.learning_rate": "--lr", "optimizer.weight_decay": "--weight-decay", "schedule.warmup_epochs": "--warmup",
            "training.epochs": "--epochs", "training.batch_size": "--batch-size", "training.seed": "--seed", "memory": "--memory",
            "training.sync_batchnorm": "--sync-batchnorm",
            "training.cache_megabytes": "--cache-megabytes",
            "training.freeze_encoder_epochs": "--freeze-encoder-epochs", "model.encoder_weights": "--encoder-weights",
            "training.reader_threads": "--reader-threads", "training.precision": "--precision",
        ]

        func run() throws {
            global.bootstrapLogging()
            // Settings first: a pipeline file's (or the defaults), the flags given on top,
            // refused with the schema's messages before any data is read.
            let loaded = try config.map { try PipelineLoader.load($0) }
            var spec = loaded?.spec ?? PipelineSpec()
            let flagIssues = try apply(to: &spec)
            try SettingsRefused.check(flagIssues + spec.issues(), flags: Self.flags)
            let options = spec.trainingOptions

            if resume && restart { throw ValidationError("give --resume (continue the interrupted run) or --restart (discard it), not both") }
            guard !spec.data.classes.isEmpty else { throw ValidationError("give --classes (or a pipeline file with --config)") }
            guard let output = output ?? loaded.map({ $0.output + "/model" }) else {
                throw ValidationError("give --output (the model bundle directory to write)")
            }
            if let exportPatches {
                let scenes = try spec.data.openScenes(validationFraction: options.split.validationFraction, seed: options.seed)
                let arch = try spec.model.architecture(inputChannels: scenes[0].bands.count, classes: scenes[0].classMap.count)
                try Trainer(scenes: scenes, architecture: arch, options: options, output: output).exportPatches(to: exportPatches)
                print(exportPatches)
                return
            }
            let result = try stoppable {
                try TrainCommandRunner.run(data: spec.data, model: spec.model, options: options, output: output,
                                           start: restart ? .restart : resume ? .resume : .fresh)
            }
            // The trainer has said where its checkpoint is; 130 for SIGINT, 143 for SIGTERM.
            if result.interrupted { throw ExitCode(Interrupted().exitStatus) }
        }

        /// The flags given, written into the pipeline sections they override; returns the
        /// problems of flags that the spec cannot hold (a negative seed).
        func apply(to spec: inout PipelineSpec) throws -> [SettingIssue] {
            var issues: [SettingIssue] = []
            try applyData(to: &spec.data)
            model?.apply(to: &spec.model)
            if let widths { spec.model.widths = widths }
            if let upsampling { spec.model.upsampling = upsampling }
            if let encoder { spec.model.encoder = encoder }
            if let outputStride { spec.model.outputStride = outputStride }
            if let decoderChannels { spec.model.decoderChannels = decoderChannels }
            if let epochs { spec.training.epochs = epochs }
            if syncBatchnorm { spec.training.syncBatchnorm = true }
            if let batchSize { spec.training.batchSize = batchSize }
            if let cacheMegabytes { spec.training.cacheMegabytes = cacheMegabytes }
            if let freezeEncoderEpochs { spec.training.freezeEncoderEpochs = freezeEncoderEpochs }
            if let encoderWeights { spec.model.encoderWeights = encoderWeights }
            if let readerThreads { spec.training.readerThreads = readerThreads }
            if let precision { spec.training.precision = precision }
            if let seed {
                // Read as Int so that a negative seed meets the schema's check (training.seed ≥ 0).
                if let issue = PipelineSchema.check("training.seed", Double(seed)) { issues.append(issue) } else { spec.training.seed = UInt64(seed) }
            }
            if let patchSize { spec.tiling.patch = patchSize }
            if let stride { spec.tiling.stride = stride }
            if let maxInvalid { spec.tiling.maxInvalid = maxInvalid }
            if let split { spec.tiling.split = split }
            if let loss { spec.loss.terms = loss }
            if let optimizer { spec.optimizer.kind = optimizer }
            if let learningRate { spec.optimizer.learningRate = learningRate }
            if let weightDecay { spec.optimizer.weightDecay = weightDecay }
            if let schedule { spec.schedule.kind = schedule }
            if let warmup { spec.schedule.warmupEpochs = warmup }
            if let normalization { spec.normalization = normalization }
            if noAugment { spec.augmentation = .none }
            if let memory { spec.memory = memory }
            return issues
        }

        /// Scenes and tile sets given as flags replace the pipeline file's; classes, bands
        /// and ignored values given replace its own.
        func applyData(to data: inout DataSpec) throws {
            if let classes { data.classes = classes }
            if let ignore { data.ignore = ignore.values; data.ignoreColors = ignore.colors }
            if let bands { data.bands = bands }
            if let bandNames { data.bandNames = bandNames }
            if let resampling { data.resampling = resampling }
            if let nodata { data.nodata = nodata }
            if let grid { data.grid = grid }
            if let resolution { data.resolution = resolution }
            if let crs { data.crs = crs }
            if let bounds { data.bounds = bounds }
            if !labels.isEmpty && labels.count != image.count {
                throw ValidationError("give one --labels per --image (\(image.count) images, \(labels.count) labels)")
            }
            if !vectorLabels.isEmpty && vectorLabels.count != image.count {
                throw ValidationError("give one --vector-labels per --image")
            }
            let tiles = try tileSet.spec()
            if !image.isEmpty || tiles != nil { data.scenes = []; data.tileSets = [] }
            for (i, img) in image.enumerated() {
                data.scenes.append(SceneSpec(image: img,
                                             labels: labels.isEmpty ? nil : labels[i],
                                             vectorLabels: vectorLabels.isEmpty ? nil : vectorLabels[i], labelAttribute: labelAttribute))
            }
            if let tiles { data.tileSets.append(tiles) }
        }
    }
}

/// Shared by `terraseg train` and `terraseg run`: opens the data, trains, prints the outcome.
enum TrainCommandRunner {
    static func run(data: DataSpec, model: ModelSpec, options: TrainingOptions, output: String, start: TrainingStart) throws -> TrainingResult {
        let result = try Trainer.train(data: data, model: model, options: options, output: output, start: start,
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
