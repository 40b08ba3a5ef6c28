/// A K×K confusion matrix over class indices 0..<K (rows: reference, columns: prediction),
/// accumulated pixel by pixel and turned into the usual segmentation scores.
public struct ConfusionMatrix: Codable, Hashable, Sendable {
    public let classCount: Int
    /// Row-major counts: counts[truth * K + predicted].
    public private(set) var counts: [Int]

    public init(classCount: Int) {
        precondition(classCount > 0)
        self.classCount = classCount
        counts = Array(repeating: 0, count: classCount * classCount)
    }

    public subscript(truth: Int, predicted: Int) -> Int { counts[truth * classCount + predicted] }

    /// Adds one pixel; indices outside 0..<K are ignored (ignore values, nodata).
    public mutating func add(truth: Int, predicted: Int, count: Int = 1) {
        guard truth >= 0, truth < classCount, predicted >= 0, predicted < classCount else { return }
        counts[truth * classCount + predicted] += count
    }

    /// Adds paired buffers of class indices; negative or out-of-range entries are skipped.
    public mutating func add(truth: UnsafeBufferPointer<Int32>, predicted: UnsafeBufferPointer<Int32>) {
        precondition(truth.count == predicted.count)
        let k = classCount
        counts.withUnsafeMutableBufferPointer { c in
            for i in 0..<truth.count {
                let t = Int(truth[i]), p = Int(predicted[i])
                if t >= 0, t < k, p >= 0, p < k { c[t * k + p] += 1 }
            }
        }
    }

    public mutating func merge(_ other: ConfusionMatrix) {
        precondition(other.classCount == classCount)
        for i in counts.indices { counts[i] += other.counts[i] }
    }

    public var total: Int { counts.reduce(0, +) }
    public func truePositives(_ c: Int) -> Int { self[c, c] }
    public func referenceCount(_ c: Int) -> Int { (0..<classCount).reduce(0) { $0 + self[c, $1] } }
    public func predictedCount(_ c: Int) -> Int { (0..<classCount).reduce(0) { $0 + self[$1, c] } }

    public var overallAccuracy: Double {
        let t = total
        return t == 0 ? .nan : Double((0..<classCount).reduce(0) { $0 + self[$1, $1] }) / Double(t)
    }

    /// Cohen's kappa: agreement beyond chance.
    public var kappa: Double {
        let t = Double(total)
        guard t > 0 else { return .nan }
        let po = overallAccuracy
        let pe = (0..<classCount).reduce(0.0) { $0 + Double(referenceCount($1)) * Double(predictedCount($1)) } / (t * t)
        return pe == 1 ? (po == 1 ? 1 : .nan) : (po - pe) / (1 - pe)
    }

    /// Precision of class c (NaN when nothing was predicted as c).
    public func precision(_ c: Int) -> Double {
        let p = predictedCount(c)
        return p == 0 ? .nan : Double(truePositives(c)) / Double(p)
    }

    /// Recall of class c (NaN when the reference has no pixel of c).
    public func recall(_ c: Int) -> Double {
        let r = referenceCount(c)
        return r == 0 ? .nan : Double(truePositives(c)) / Double(r)
    }

    public func f1(_ c: Int) -> Double {
        let denom = referenceCount(c) + predictedCount(c)
        return denom == 0 ? .nan : 2 * Double(truePositives(c)) / Double(denom)
    }

    /// Intersection over union of class c (NaN when c appears in neither).
    public func iou(_ c: Int) -> Double {
        let union = referenceCount(c) + predictedCount(c) - truePositives(c)
        return union == 0 ? .nan : Double(truePositives(c)) / Double(union)
    }

    /// Mean IoU over the classes present in the reference or the prediction.
    public var meanIoU: Double {
        let values = (0..<classCount).map(iou).filter { !$0.isNaN }
        return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }

    public var meanF1: Double {
        let values = (0..<classCount).map(f1).filter { !$0.isNaN }
        return values.isEmpty ? .nan : values.reduce(0, +) / Double(values.count)
    }
}

/// Scores of one evaluation, ready to print or encode as JSON.
public struct SegmentationReport: Codable, Sendable {
    public struct ClassScore: Codable, Sendable {
        enum CodingKeys: String, CodingKey {
            case index, value, name, referencePixels = "reference_pixels", predictedPixels = "predicted_pixels"
            case precision, recall, f1, iou
        }

        public func encode(to encoder: Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(index, forKey: .index)
            try c.encode(value, forKey: .value)
            try c.encode(name, forKey: .name)
            try c.encode(referencePixels, forKey: .referencePixels)
            try c.encode(predictedPixels, forKey: .predictedPixels)
            try c.encode(precision.isNaN ? nil : precision, forKey: .precision)
            try c.encode(recall.isNaN ? nil : recall, forKey: .recall)
            try c.encode(f1.isNaN ? nil : f1, forKey: .f1)
            try c.encode(iou.isNaN ? nil : iou, forKey: .iou)
        }

        public var index: Int
        public var value: Int
        public var name: String
        public var referencePixels: Int
        public var predictedPixels: Int
        public var precision: Double
        public var recall: Double
        public var f1: Double
        public var iou: Double
    }

    public var pixels: Int
    public var overallAccuracy: Double
    public var kappa: Double
    public var meanIoU: Double
    public var meanF1: Double
    public var classes: [ClassScore]
    /// Rows: reference class, columns: predicted class, in `classes` order.
    public var confusionMatrix: [[Int]]

    enum CodingKeys: String, CodingKey {
        case pixels, overallAccuracy = "overall_accuracy", kappa, meanIoU = "mean_iou", meanF1 = "mean_f1"
        case classes, confusionMatrix = "confusion_matrix"
    }

    /// NaN scores (a class absent from both maps) are written as null.
    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(pixels, forKey: .pixels)
        try c.encode(overallAccuracy.isNaN ? nil : overallAccuracy, forKey: .overallAccuracy)
        try c.encode(kappa.isNaN ? nil : kappa, forKey: .kappa)
        try c.encode(meanIoU.isNaN ? nil : meanIoU, forKey: .meanIoU)
        try c.encode(meanF1.isNaN ? nil : meanF1, forKey: .meanF1)
        try c.encode(classes, forKey: .classes)
        try c.encode(confusionMatrix, forKey: .confusionMatrix)
    }

    /// Reads what `encode` writes (null scores back to NaN).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        pixels = try c.decode(Int.self, forKey: .pixels)
        overallAccuracy = try c.decodeIfPresent(Double.self, forKey: .overallAccuracy) ?? .nan
        kappa = try c.decodeIfPresent(Double.self, forKey: .kappa) ?? .nan
        meanIoU = try c.decodeIfPresent(Double.self, forKey: .meanIoU) ?? .nan
        meanF1 = try c.decodeIfPresent(Double.self, forKey: .meanF1) ?? .nan
        classes = try c.decode([ClassScore].self, forKey: .classes)
        confusionMatrix = try c.decode([[Int]].self, forKey: .confusionMatrix)
    }

    /// `values[i]` and `names[i]` describe class index i.
    public init(matrix m: ConfusionMatrix, values: [Int], names: [String]) {
        pixels = m.total
        overallAccuracy = m.overallAccuracy
        kappa = m.kappa
        meanIoU = m.meanIoU
        meanF1 = m.meanF1
        classes = (0..<m.classCount).map { c in
            ClassScore(index: c, value: values[c], name: names[c], referencePixels: m.referenceCount(c),
                       predictedPixels: m.predictedCount(c), precision: m.precision(c), recall: m.recall(c),
                       f1: m.f1(c), iou: m.iou(c))
        }
        confusionMatrix = (0..<m.classCount).map { t in (0..<m.classCount).map { p in m[t, p] } }
    }
}

extension SegmentationReport.ClassScore {
    /// Reads what `encode` writes (null scores back to NaN).
    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        index = try c.decode(Int.self, forKey: .index)
        value = try c.decode(Int.self, forKey: .value)
        name = try c.decode(String.self, forKey: .name)
        referencePixels = try c.decode(Int.self, forKey: .referencePixels)
        predictedPixels = try c.decode(Int.self, forKey: .predictedPixels)
        precision = try c.decodeIfPresent(Double.self, forKey: .precision) ?? .nan
        recall = try c.decodeIfPresent(Double.self, forKey: .recall) ?? .nan
        f1 = try c.decodeIfPresent(Double.self, forKey: .f1) ?? .nan
        iou = try c.decodeIfPresent(Double.self, forKey: .iou) ?? .nan
    }
}
