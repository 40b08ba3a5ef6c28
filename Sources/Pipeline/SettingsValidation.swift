import Core
import Foundation
import GeoRaster
import Inference
import ModelIO
import Models
import Training

// The range checks of the typed settings, keyed by their pipeline keys. Every numeric check
// goes through `PipelineSchema.check`, the same code the loader runs on YAML values, so the
// CLI (which builds these types from flags) refuses what the schema refuses, with the same
// message. Checks that span sections (patch vs. the network's alignment) live here too.

/// Collects the issues of one settings value.
struct IssueList {
    var issues: [SettingIssue] = []

    mutating func check(_ key: String, _ value: Double) {
        if let issue = PipelineSchema.check(key, value) { issues.append(issue) }
    }
    mutating func check(_ key: String, _ value: Int) { check(key, Double(value)) }
    mutating func check(_ key: String, _ value: Float) { check(key, Double(value)) }
    mutating func check<T: BinaryInteger>(_ key: String, each values: [T]) {
        for (i, v) in values.enumerated() { check("\(key)[\(i)]", Double(v)) }
    }
    mutating func check(_ key: String, each values: [Float]) {
        for (i, v) in values.enumerated() { check("\(key)[\(i)]", Double(v)) }
    }
}

extension PipelineSpec {
    /// Every range problem of the spec, including those that span sections.
    public func issues() -> [SettingIssue] {
        var list = IssueList()
        list.check("data.bands", each: data.bands ?? [])
        if let resolution = data.resolution { list.check("data.resolution", resolution) }
        for (i, v) in data.nodata.enumerated() { list.check("data.nodata[\(i)]", v) }
        for (i, v) in (data.bounds ?? []).enumerated() { list.check("data.bounds[\(i)]", v) }
        if let memory { list.check("memory", memory) }
        list.issues += trainingOptions.issues()
        list.issues += model.issues(patchSize: tiling.patch)
        // Pretrained and frozen encoders are the ResNet U-Net's.
        if model.kind != .resnetUNet {
            if model.encoderWeights != nil {
                list.issues.append(SettingIssue(key: "model.encoder_weights", problem: "is given but model.kind is \(model.kind.rawValue), which has no pretrained encoder",
                                                fix: "Use model.kind: resnet-unet (--model resnet-unet), or remove it"))
            }
            if training.freezeEncoderEpochs > 0 {
                list.issues.append(SettingIssue(key: "training.freeze_encoder_epochs", problem: "is \(training.freezeEncoderEpochs) but model.kind is \(model.kind.rawValue), which has no encoder to freeze",
                                                fix: "Use model.kind: resnet-unet (--model resnet-unet), or set it to 0"))
            }
        }
        list.issues += prediction.issues()
        if let problem = PipelineSpec.nameProblem(name) {
            list.issues.append(SettingIssue(key: "name", problem: problem, fix: "Use a plain name such as nc-landcover (the run folder is runs/<name>; output: sets another folder)"))
        }
        if list.issues.isEmpty {
            // Input bands unknown before the scenes are opened count as one: a lower estimate.
            let classes = max(2, data.classes.count)
            if let a = try? model.architecture(inputChannels: data.bands?.count ?? 1, classes: classes) {
                let budget = MemoryBudget(memory: memory)
                list.issues += budget.trainingIssues(a, options: trainingOptions)
                if prediction.enabled {
                    var windows = prediction.options  // bf16 predicts in windows: the estimate follows (`windowsForBf16`)
                    _ = windows.windowsForBf16(prediction.bf16Effective, a)
                    list.issues += budget.predictionIssues(a, tile: prediction.tile, margin: prediction.margin, batch: prediction.batchSize,
                                                          blend: windows.blend)
                }
            }
        }
        return list.issues
    }

    /// Why `name` cannot name the default run folder `runs/<name>`: it must stay one folder
    /// inside `runs/`, so no path separators, no `.` or `..`, nothing empty or hidden.
    static func nameProblem(_ name: String) -> String? {
        if name.isEmpty { return "is empty" }
        if name.contains("/") || name.contains("\\") || name.contains("\0") { return "'\(name)' contains a path separator" }
        if name.hasPrefix(".") { return "'\(name)' starts with '.' (a hidden or parent folder)" }
        return nil
    }
}

extension TrainingOptions {
    /// Range problems of the trainer's settings (tiling, split, loss, optimiser, schedule,
    /// training loop, augmentation), keyed by their pipeline keys.
    public func issues() -> [SettingIssue] {
        var list = IssueList()
        list.check("tiling.patch", patchSize)
        if let stride { list.check("tiling.stride", stride) }
        list.check("tiling.max_invalid", maxInvalidFraction)
        list.issues += split.issues()
        list.check("training.epochs", epochs)
        list.check("training.batch_size", batchSize)
        list.check("training.seed", Double(seed))
        list.check("training.cache_megabytes", cacheMegabytes)
        if let freezeEncoderEpochs { list.check("training.freeze_encoder_epochs", freezeEncoderEpochs) }
        list.check("training.reader_threads", readerThreads)
        if precision == .int8 {
            list.issues.append(SettingIssue(key: "training.precision", problem: "int8 is for prediction only",
                                            fix: "Train with fp32, bf16 or auto; then `terraseg quantize` makes an int8 bundle"))
        }
        list.issues += loss.issues() + optimizer.issues() + schedule.issues()
        list.check("augmentation.gain_jitter", augmentation.gainJitter)
        list.check("augmentation.offset_jitter", augmentation.offsetJitter)
        return list.issues
    }
}

extension SplitOptions {
    public func issues() -> [SettingIssue] {
        var list = IssueList()
        switch method {
        case .rows, .columns: list.check("tiling.split.train_fraction", trainFraction)
        case .blocks:
            if let blockSize { list.check("tiling.split.block_size", blockSize) }
            list.check("tiling.split.validation_fraction", validationFraction)
        case .none: break
        }
        return list.issues
    }
}

extension LossOptions {
    public func issues() -> [SettingIssue] {
        var list = IssueList()
        for (i, t) in terms.enumerated() { list.check("loss.terms[\(i)].weight", t.weight) }
        list.check("loss.gamma", gamma)
        list.check("loss.alpha", each: alpha ?? [])
        list.check("loss.class_weights", each: classWeights ?? [])
        list.check("loss.smoothing", smoothing)
        return list.issues
    }
}

extension OptimizerOptions {
    public func issues() -> [SettingIssue] {
        var list = IssueList()
        list.check("optimizer.learning_rate", learningRate)
        list.check("optimizer.weight_decay", weightDecay)
        list.check("optimizer.momentum", momentum)
        list.check("optimizer.beta1", beta1)
        list.check("optimizer.beta2", beta2)
        list.check("optimizer.epsilon", epsilon)
        return list.issues
    }
}

extension ScheduleOptions {
    public func issues() -> [SettingIssue] {
        var list = IssueList()
        list.check("schedule.warmup_epochs", warmupEpochs)
        list.check("schedule.step_epochs", stepEpochs)
        list.check("schedule.gamma", gamma)
        list.check("schedule.minimum_factor", minimumFactor)
        return list.issues
    }
}

extension ModelSpec {
    /// Range problems of the network's settings, and a training patch that the network's
    /// down-sampling does not divide (keyed `tiling.patch`).
    public func issues(patchSize: Int) -> [SettingIssue] {
        var list = IssueList()
        list.check("model.widths", each: widths)
        if let bottleneckWidth { list.check("model.bottleneck_width", bottleneckWidth) }
        list.check("model.bottleneck_dilations", each: bottleneckDilations)
        list.check("model.width", width)
        list.check("model.dilations", each: dilations)
        if kind == .unet && preset == nil && widths.isEmpty {
            list.issues.append(SettingIssue(key: "model.widths", problem: "is empty", fix: "List one width per U-Net level, e.g. [32, 64, 128, 256]"))
        }
        // 2^levels must divide a patch of at most 4096 pixels (and fit the alignment's shift).
        if kind == .unet && preset == nil && widths.count > ModelSpec.maximumLevels {
            list.issues.append(SettingIssue(key: "model.widths", problem: "has \(widths.count) levels, more than \(ModelSpec.maximumLevels)",
                                            fix: "List at most \(ModelSpec.maximumLevels) widths (each level halves the resolution)"))
        }
        if kind == .unet && preset == nil && bottleneckDilations.isEmpty {
            list.issues.append(SettingIssue(key: "model.bottleneck_dilations", problem: "is empty", fix: "List at least one dilation, e.g. [1, 2, 4]"))
        }
        list.issues += resNetIssues()
        if kind == .dilated && dilations.isEmpty {
            list.issues.append(SettingIssue(key: "model.dilations", problem: "is empty", fix: "List at least one dilation, e.g. [1, 2, 4, 8, 4, 2, 1]"))
        }
        // The fixed junctions upsample the level below straight into oneDNN's blocked concat
        // buffer (blocks of 16 channels with AVX-512, 8 with AVX2: the rule is 16 on every CPU,
        // so that a model runs wherever it is taken); the learned ones fall back to NCHW.
        if kind == .unet && preset == nil && !upsampling.isLearned && !widths.isEmpty {
            let below = Array(widths.dropFirst()) + [bottleneckWidth ?? 2 * widths.last!]
            if let bad = below.first(where: { $0 % 16 != 0 }) {
                list.issues.append(SettingIssue(key: "model.widths",
                    problem: "\(bad) channels feed a \(upsampling.rawValue) decoder junction, which needs a multiple of 16 (every width after the first, and the bottleneck width)",
                    fix: "Use multiples of 16 after the first width, e.g. [8, 16, 32], or upsampling: transposed"))
            }
        }
        if list.issues.isEmpty, let alignment = try? architecture(inputChannels: 1, classes: 2).alignment, patchSize % alignment != 0 {
            let up = (patchSize / alignment + 1) * alignment
            list.issues.append(SettingIssue(key: "tiling.patch", problem: "\(patchSize) is not a multiple of \(alignment), the network's down-sampling factor",
                                            fix: "Use \(up) (or another multiple of \(alignment)), or fewer U-Net levels"))
        }
        return list.issues
    }
}

extension ModelSpec {
    /// The ResNet U-Net's keys: output stride one of smp's, five decoder blocks whose widths
    /// fit oneDNN's blocked concat on every CPU (multiples of 16, AVX-512's block).
    func resNetIssues() -> [SettingIssue] {
        var list = IssueList()
        list.check("model.output_stride", outputStride)
        list.check("model.decoder_channels", each: decoderChannels)
        guard kind == .resnetUNet, list.issues.isEmpty else { return list.issues }
        if !ResNetUNetConfiguration.outputStrides.contains(outputStride) {
            list.issues.append(SettingIssue(key: "model.output_stride", problem: "\(outputStride) is not 8, 16 or 32",
                                            fix: "Use 32 (smp's default), 16 or 8 (dilated last stages)"))
        }
        if decoderChannels.count != 5 {
            list.issues.append(SettingIssue(key: "model.decoder_channels", problem: "has \(decoderChannels.count) entries; the ResNet U-Net has 5 decoder blocks",
                                            fix: "List five widths, e.g. [256, 128, 64, 32, 16]"))
        } else if let bad = decoderChannels.first(where: { $0 % 16 != 0 }) {
            list.issues.append(SettingIssue(key: "model.decoder_channels", problem: "\(bad) is not a multiple of 16 (each block's output is concatenated in oneDNN's blocks of 16 channels)",
                                            fix: "Use multiples of 16, e.g. [256, 128, 64, 32, 16]"))
        }
        return list.issues
    }

    /// The most U-Net levels: 2^12 is the largest patch (`tiling.patch` ≤ 4096).
    public static let maximumLevels = 12
}

extension ModelBundle {
    /// Range problems of a bundle's model.json, through the checks of the YAML keys that
    /// set them (`data.bands`, `model.*`, `tiling.patch`), then the stored receptive field
    /// and alignment against the architecture's. Run before the network is built.
    public func issues() -> [SettingIssue] {
        var list = IssueList()
        list.check("data.bands", each: bands)
        list.issues += ModelSpec(architecture: architecture).issues(patchSize: patchSize)
        if list.issues.isEmpty && (receptiveField != architecture.receptiveField || alignment != architecture.alignment) {
            list.issues.append(SettingIssue(key: "receptive_field",
                problem: "\(receptiveField) (alignment \(alignment)) does not match the architecture's \(architecture.receptiveField) (\(architecture.alignment))",
                fix: "The bundle was altered; retrain or restore it"))
        }
        return list.issues
    }

    /// Reads the bundle at `path` for prediction: model.json read (its parts must agree) and
    /// range-checked like the YAML keys, so that its network can be built. Problems name model.json.
    public static func readChecked(_ path: String) throws -> ModelBundle {
        let bundle = try ModelBundle.read(path)
        if let issue = bundle.issues().first {
            let json = path.hasSuffix(".json") ? path : path + "/" + ModelBundle.metadataFile
            throw TerraSegError(.readFailed, path: json, problem: "\(issue.key) \(issue.problem)",
                                 hint: "\(issue.fix); a bundle written by `terraseg train` never has this: it may be damaged or altered, retrain or restore it")
        }
        return bundle
    }
}

extension PredictionOptions {
    /// Range problems of whole-scene prediction, keyed by their pipeline keys.
    public func issues() -> [SettingIssue] {
        var list = IssueList()
        list.check("prediction.tile", tileSize)
        if let margin { list.check("prediction.margin", margin) }
        list.check("prediction.batch_size", batchSize)
        list.check("prediction.min_mapping_unit", minMappingUnit)
        list.check("prediction.polygon_simplify", polygonSimplify)
        return list.issues
    }
}

extension PredictionSpec {
    public func issues() -> [SettingIssue] { options.issues() }

    /// The library's prediction options from this section (`overwrite` stays false: the
    /// pipeline decides what is up to date).
    public var options: PredictionOptions {
        var o = PredictionOptions()
        o.tileSize = tile
        o.margin = margin
        o.batchSize = batchSize
        o.blend = blend
        o.tta = tta
        o.probabilities = probabilities
        o.confidence = confidence
        o.creation.cog = cog
        o.creation.compression = compression.codec
        o.allowMismatch = allowMismatch
        o.minMappingUnit = minMappingUnit
        o.mmuConnectedness = mmuConnectedness
        o.polygons = polygons
        o.polygonSimplify = polygonSimplify
        return o
    }
}

/// The GeoTIFF compressions a user may ask for, as written in YAML and on the command line.
public enum CompressionChoice: String, Codable, Sendable, CaseIterable {
    case deflate, zstd, lzw, none

    public init?(codec: Compression) {
        guard let c = Self.allCases.first(where: { $0.codec == codec }) else { return nil }
        self = c
    }

    public var codec: Compression {
        switch self {
        case .deflate: .deflate
        case .zstd: .zstd
        case .lzw: .lzw
        case .none: .none
        }
    }
}
