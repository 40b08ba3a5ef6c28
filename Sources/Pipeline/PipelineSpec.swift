import GeoRaster
import Inference
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
    public var data = DataSpec()
    public var normalization = NormalizationMethod.standardize
    public var tiling = TilingSpec()
    public var model = ModelSpec()
    public var loss = LossOptions()
    public var optimizer = OptimizerOptions()
    public var schedule = ScheduleOptions()
    public var training = TrainingLoopSpec()
    public var augmentation = Augmentation()
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
        o.optimizer = optimizer
        o.schedule = schedule
        o.loss = loss
        o.augmentation = augmentation
        return o
    }
}

public struct TilingSpec: Codable, Sendable, Equatable {
    public var patch = 128
    public var stride: Int? = nil
    public var maxInvalid = 0.5
    public var split = SplitOptions()
    public init() {}
}

public struct TrainingLoopSpec: Codable, Sendable, Equatable {
    public var epochs = 20
    public var batchSize = 8
    public var seed: UInt64 = 42
    public var cacheMegabytes = 1024
    public init() {}
}

public struct PredictionSpec: Codable, Sendable, Equatable {
    public var enabled = true
    /// Scenes to map (each a path or a list of band files); default: the training images.
    public var scenes: [[String]]? = nil
    public var tile = 512
    public var margin: Int? = nil
    public var batchSize = 2
    public var blend = BlendMode.centre
    public var tta = false
    public var cog = false
    public var probabilities = false
    public var confidence = false
    public var compression = "deflate"
    public init() {}
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
