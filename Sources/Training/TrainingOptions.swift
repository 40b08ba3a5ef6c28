import Core
import ModelIO
import Models
import Tiling

/// Every training hyper-parameter, with the defaults a newcomer gets. Codable so pipelines
/// (YAML) and bundles (JSON) carry them.
public struct TrainingOptions: Codable, Sendable, Equatable {
    public var patchSize = 128
    /// Distance between training patches; nil = half a patch.
    public var stride: Int? = nil
    /// Patches with more invalid (nodata or unlabelled) pixels than this fraction are skipped.
    public var maxInvalidFraction = 0.5
    public var split = SplitOptions()
    public var normalization = NormalizationMethod.standardize
    public var epochs = 20
    public var batchSize = 8
    public var seed: UInt64 = 42
    public var optimizer = OptimizerOptions()
    public var schedule = ScheduleOptions()
    public var loss = LossOptions()
    public var augmentation = Augmentation()
    /// Keep normalised patches in memory when they fit in this many MiB (0 = always read).
    public var cacheMegabytes = 1024
    /// Threads reading patches ahead of the network (each with its own file handles); the
    /// result does not depend on it.
    public var readerThreads = 2
    /// Under mpirun/srun: batch norm over the global batch (statistics summed over the ranks;
    /// equal to one process), instead of each rank's own shard (faster; docs/cluster.md).
    public var syncBatchNorm = false
    /// Epochs at the start whose steps leave the encoder unchanged (`EncoderFreeze`); nil: none.
    /// Optional so that runs without it keep their settings fingerprint.
    public var freezeEncoderEpochs: Int? = nil
    /// Arithmetic of the convolutions (`Bf16Training`): bf16, or auto (bf16 where the CPU has
    /// it); per layer the faster of bf16 and fp32. nil: fp32 (optional so that fp32 runs keep
    /// their settings fingerprint; a changed precision retrains).
    public var precision: Precision? = nil

    public init() {}

    public var effectiveStride: Int { stride ?? max(1, patchSize / 2) }
}

/// How training and validation patches are separated (always spatially).
public struct SplitOptions: Codable, Sendable, Equatable {
    public enum Method: String, Codable, Sendable, CaseIterable { case rows, columns, blocks, none }
    public var method = Method.blocks
    /// rows/columns: fraction of the scene (from the top/left) that trains.
    public var trainFraction = 0.8
    /// blocks: side of the square blocks, in pixels (nil = 4 patches).
    public var blockSize: Int? = nil
    /// blocks: share of blocks used for validation.
    public var validationFraction = 0.2

    public init(method: Method = .blocks, trainFraction: Double = 0.8, blockSize: Int? = nil, validationFraction: Double = 0.2) {
        self.method = method
        self.trainFraction = trainFraction
        self.blockSize = blockSize
        self.validationFraction = validationFraction
    }

    public func spatialSplit(patchSize: Int, seed: UInt64) -> SpatialSplit {
        switch method {
        case .rows: .rows(trainFraction: trainFraction)
        case .columns: .columns(trainFraction: trainFraction)
        case .blocks: .blocks(blockSize: blockSize ?? 4 * patchSize, validationFraction: validationFraction, seed: seed)
        case .none: .none
        }
    }
}

public struct OptimizerOptions: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case adam, adamw, sgd }
    public var kind = Kind.adam
    public var learningRate: Float = 1e-3
    public var weightDecay: Float = 0
    public var momentum: Float = 0.9
    public var nesterov = false
    public var beta1: Float = 0.9
    public var beta2: Float = 0.999
    public var epsilon: Float = 1e-8

    public init() {}

    public func make(parameters: [(String, Engine.Parameter)]) -> any Optimizer {
        switch kind {
        case .adam, .adamw:
            Adam(parameters: parameters, learningRate: learningRate, beta1: beta1, beta2: beta2, epsilon: epsilon,
                 weightDecay: weightDecay, decoupledWeightDecay: kind == .adamw)
        case .sgd:
            SGD(parameters: parameters, learningRate: learningRate, momentum: momentum, nesterov: nesterov, weightDecay: weightDecay)
        }
    }
}

/// Learning-rate schedule over the whole run, evaluated every step.
public struct ScheduleOptions: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case constant, step, cosine }
    public var kind = Kind.constant
    /// Linear warm-up from 0 over this many epochs (may be fractional).
    public var warmupEpochs = 0.0
    /// step: multiply by `gamma` every `stepEpochs` epochs.
    public var stepEpochs = 10
    public var gamma: Float = 0.1
    /// cosine: final learning rate as a fraction of the initial one.
    public var minimumFactor: Float = 0

    public init() {}

    /// Learning-rate factor at fractional epoch `t` of `epochs`.
    public func factor(at t: Double, epochs: Int) -> Float {
        if warmupEpochs > 0 && t < warmupEpochs { return Float(t / warmupEpochs) }
        switch kind {
        case .constant: return 1
        case .step: return Float.pow(gamma, Float(Int(t) / max(1, stepEpochs)))
        case .cosine:
            let span = max(1e-9, Double(epochs) - warmupEpochs)
            let p = min(1, max(0, (t - warmupEpochs) / span))
            return minimumFactor + (1 - minimumFactor) * Float(0.5 * (1 + cos(Double.pi * p)))
        }
    }
}

/// A weighted sum of segmentation losses (default: Dice + focal, as in R1).
public struct LossOptions: Codable, Sendable, Equatable {
    public enum Kind: String, Codable, Sendable, CaseIterable { case dice, focal, crossEntropy = "cross_entropy" }
    public struct Term: Codable, Sendable, Equatable {
        /// The weight of a term written without one (`- kind: dice`, `--loss dice`).
        public static let defaultWeight: Float = 1
        public var kind: Kind
        public var weight: Float
        public init(_ kind: Kind, weight: Float = Term.defaultWeight) {
            self.kind = kind
            self.weight = weight
        }

        public init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: CodingKeys.self)
            kind = try c.decode(Kind.self, forKey: .kind)
            weight = try c.decodeIfPresent(Float.self, forKey: .weight) ?? Term.defaultWeight
        }
    }

    public var terms: [Term] = [Term(.focal), Term(.dice)]
    /// Focal loss focusing parameter.
    public var gamma: Float = 2
    /// Per-class focal/cross-entropy weights (alpha); nil = none.
    public var alpha: [Float]? = nil
    /// Per-class Dice weights; nil = equal.
    public var classWeights: [Float]? = nil
    /// Dice smoothing added to numerator and denominator.
    public var smoothing: Float = 0

    public init() {}
}

import Engine
import Foundation
