import Core
import GeoRaster
import Inference
import ModelIO
import Models
import Tiling
import Training

/// A whole job declared once: data, classes, normalisation, tiling, model, loss, optimiser,
/// schedule, training, augmentation, prediction and evaluation. Every field has a default;
/// `PipelineSchema` documents them and validates YAML files before any work starts.
public struct PipelineSpec: Codable, Sendable, Equatable {
    public var name = "pipeline"
    /// Run directory (model bundle, maps, report); default runs/<name> beside the pipeline file.
    public var output: String? = nil
    /// Memory budget in bytes for training and prediction; nil: the machine's physical memory.
    public var memory: Int? = nil
    public var data = DataSpec()
    public var normalization = TrainingOptions().normalization
    public var tiling = TilingSpec()
    public var model = ModelSpec()
    public var loss = TrainingOptions().loss
    public var optimizer = TrainingOptions().optimizer
    public var schedule = TrainingOptions().schedule
    public var training = TrainingLoopSpec()
    public var augmentation = TrainingOptions().augmentation
    public var prediction = PredictionSpec()
    public var evaluation = EvaluationSpec()

    public init() {}

    /// The trainer's options from the sections that concern it.
    public var trainingOptions: TrainingOptions {
        var o = TrainingOptions()
        o.patchSize = tiling.patch
        o.stride = tiling.stride
        o.maxInvalidFraction = tiling.maxInvalid
        o.split = tiling.split
        o.normalization = normalization
        o.epochs = training.epochs
        o.batchSize = training.batchSize
        o.seed = training.seed
        o.cacheMegabytes = training.cacheMegabytes
        o.readerThreads = training.readerThreads
        o.syncBatchNorm = training.syncBatchnorm
        o.freezeEncoderEpochs = training.freezeEncoderEpochs == 0 ? nil : training.freezeEncoderEpochs
        o.precision = training.precision == .fp32 ? nil : training.precision
        o.optimizer = optimizer
        o.schedule = schedule
        o.loss = loss
        o.augmentation = augmentation
        return o
    }
}

// The sections below group the library's settings as the YAML does; their defaults are the
// library's (`TrainingOptions`, `PredictionOptions`), defined there once.

public struct TilingSpec: Codable, Sendable, Equatable {
    public var patch = TrainingOptions().patchSize
    public var stride = TrainingOptions().stride
    public var maxInvalid = TrainingOptions().maxInvalidFraction
    public var split = TrainingOptions().split
    public init() {}
}

public struct TrainingLoopSpec: Codable, Sendable, Equatable {
    public var epochs = TrainingOptions().epochs
    public var batchSize = TrainingOptions().batchSize
    public var seed = TrainingOptions().seed
    public var cacheMegabytes = TrainingOptions().cacheMegabytes
    public var readerThreads = TrainingOptions().readerThreads
    public var syncBatchnorm = TrainingOptions().syncBatchNorm
    public var freezeEncoderEpochs = TrainingOptions().freezeEncoderEpochs ?? 0
    public var precision = TrainingOptions().precision ?? .fp32
    public init() {}
}

public struct PredictionSpec: Codable, Sendable, Equatable {
    public var enabled = true
    /// Scenes to map (each a path or a list of band files); default: the training images.
    public var scenes: [[String]]? = nil
    public var tile = PredictionOptions().tileSize
    public var margin = PredictionOptions().margin
    public var batchSize = PredictionOptions().batchSize
    public var blend = PredictionOptions().blend
    public var tta = PredictionOptions().tta
    public var precision = Precision.fp32
    public var cog = PredictionOptions().creation.cog
    public var probabilities = PredictionOptions().probabilities
    public var confidence = PredictionOptions().confidence
    public var compression = CompressionChoice(codec: PredictionOptions().creation.compression) ?? .deflate
    public var allowMismatch = PredictionOptions().allowMismatch
    public var minMappingUnit = PredictionOptions().minMappingUnit
    public var mmuConnectedness = PredictionOptions().mmuConnectedness
    public var polygons = PredictionOptions().polygons
    public var polygonSimplify = PredictionOptions().polygonSimplify
    public init() {}

    /// Whether prediction runs in bf16 here (a pipeline calibrates int8 itself, so `auto` is
    /// int8 where the CPU has VNNI): bf16 predicts in windows even with `blend: stream`.
    public var bf16Effective: Bool { precision.effective(int8Ready: Precision.int8Unavailable == nil) == .bf16 }
}

public struct EvaluationSpec: Codable, Sendable, Equatable {
    public enum Region: String, Codable, Sendable, CaseIterable { case validation, all }
    public var enabled = true
    /// Label rasters, one per predicted scene; default: the training labels.
    public var labels: [String]? = nil
    /// Score only the validation part of the split (honest), or the whole map.
    public var region = Region.validation
    public init() {}
}
