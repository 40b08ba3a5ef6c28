import Core
import Engine
import Metrics
import Models
import Tiling

/// Scores the network on the validation patches after each epoch: the loss weighted by each
/// batch's valid pixels, and the confusion matrix of every labelled pixel's best class.
/// Overlapping patches share pixels; each validation pixel is scored once, by the patch that
/// owns it (`PatchOwnership`: the patch whose centre is nearest), so the scores are those of
/// the validation area. Across ranks, rank r scores batches r, r + N, …, and the sums are
/// added up, so every rank gets the single-process scores (to the order of Double sums).
struct Validator {
    let refs: [PatchRef]
    let batchSize: Int
    let patchSize: Int
    let channels: Int
    let classNames: [String]
    let ownership: PatchOwnership
    var parallel: DataParallel?

    init(refs: [PatchRef], batchSize: Int, patchSize: Int, channels: Int, classNames: [String], parallel: DataParallel? = nil) {
        self.refs = refs
        self.batchSize = batchSize
        self.patchSize = patchSize
        self.channels = channels
        self.classNames = classNames
        ownership = PatchOwnership(refs: refs)
        self.parallel = parallel
    }

    /// Adds validation loss, accuracy, IoU/F1 per class and the confusion matrix to `m`.
    func score(into m: inout EpochMetrics, network: any SegmentationNetwork, loss: TrainingLoss, batches: BatchAssembler) throws {
        let v = try evaluate(network: network, loss: loss, batches: batches)
        m.validationLoss = v.loss
        m.overallAccuracy = v.matrix.overallAccuracy
        m.meanIoU = v.matrix.meanIoU
        m.perClassIoU = Dictionary(uniqueKeysWithValues: classNames.enumerated().compactMap { i, n in v.matrix.iou(i).isNaN ? nil : (n, v.matrix.iou(i)) })
        m.perClassF1 = Dictionary(uniqueKeysWithValues: classNames.enumerated().compactMap { i, n in v.matrix.f1(i).isNaN ? nil : (n, v.matrix.f1(i)) })
        m.confusionMatrix = (0..<v.matrix.classCount).map { t in (0..<v.matrix.classCount).map { v.matrix[t, $0] } }
    }

    func evaluate(network: any SegmentationNetwork, loss: TrainingLoss, batches: BatchAssembler) throws -> (loss: Double, matrix: ConfusionMatrix) {
        network.isTraining = false
        defer { network.isTraining = true }
        let P = patchSize
        var matrix = ConfusionMatrix(classCount: classNames.count)
        var lossSum = 0.0, weight = 0.0
        var start = 0
        var input: Tensor? = nil
        var owned: [UInt8] = []
        var batch = 0
        while start < refs.count {
            let B = min(batchSize, refs.count - start)
            defer { start += B; batch += 1 }
            if let parallel, batch % parallel.ranks != parallel.rank { continue }
            let x = (input?.shape.n == B) ? input! : Tensor(shape: Shape(B, channels, P, P))
            input = x
            var labels = [Int32](repeating: -1, count: B * P * P)
            for k in 0..<B {
                try batches.place(refs[start + k], slot: k, into: x, labels: &labels)
                ownership.ownedMask(start + k, into: &owned)
                for p in 0..<P * P where owned[p] == 0 { labels[k * P * P + p] = -1 }
            }
            let logits = network(x)
            let valid = labels.reduce(0) { $0 + ($1 >= 0 ? 1 : 0) }
            if valid > 0 {
                let target = SegmentationTarget(n: B, h: P, w: P, labels: labels, ignoreIndex: -1)
                lossSum += Double(loss(logits: logits, target: target).value) * Double(valid)
                weight += Double(valid)
            }
            Validator.count(logits, labels: labels, into: &matrix)
        }
        if let parallel {
            let sums = try parallel.sum([lossSum, weight])
            (lossSum, weight) = (sums[0], sums[1])
            matrix = try parallel.sum(matrix)
        }
        return (weight > 0 ? lossSum / weight : .nan, matrix)
    }

    /// Adds each labelled pixel's (truth, best class) to `matrix`; logits (B, K, P, P).
    static func count(_ logits: Tensor, labels: [Int32], into matrix: inout ConfusionMatrix) {
        let s = logits.shape, n = s.h * s.w
        for b in 0..<s.n {
            for p in 0..<n {
                let t = labels[b * n + p]
                guard t >= 0 else { continue }
                let best = ClassScores.best(logits.data + b * s.c * n + p, classes: s.c, stride: n).index
                matrix.add(truth: Int(t), predicted: best)
            }
        }
    }
}
