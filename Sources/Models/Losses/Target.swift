import Engine

/// How a loss reduces its per-element terms.
public enum Reduction: String, Sendable, Codable {
    /// Focal / cross-entropy: average over valid pixels; Dice: weighted mean over classes.
    case mean
    /// Focal / cross-entropy: sum over valid pixels; Dice: weighted sum over classes.
    case sum
}

/// Class labels per pixel, (N, H, W), with the pixels to leave out of the loss: those where
/// `mask` is false (nodata, outside the scene) and those labelled `ignoreIndex`.
public struct SegmentationTarget: Sendable {
    public var n: Int, h: Int, w: Int
    public var labels: [Int32]
    public var mask: [Bool]?
    public var ignoreIndex: Int32?

    public init(n: Int, h: Int, w: Int, labels: [Int32], mask: [Bool]? = nil, ignoreIndex: Int32? = nil) {
        precondition(labels.count == n * h * w, "expected \(n * h * w) labels, got \(labels.count)")
        precondition(mask == nil || mask!.count == labels.count, "mask and labels differ in size")
        self.n = n; self.h = h; self.w = w
        self.labels = labels; self.mask = mask; self.ignoreIndex = ignoreIndex
    }

    /// True when pixel p (flat index n·H·W + y·W + x) counts in the loss.
    @inlinable public func isValid(_ p: Int) -> Bool {
        if let mask, !mask[p] { return false }
        if let ignoreIndex, labels[p] == ignoreIndex { return false }
        return true
    }
    public var validCount: Int { (0..<labels.count).reduce(0) { $0 + (isValid($1) ? 1 : 0) } }
}

/// A loss value and its gradient with respect to the logits (N, K, H, W), plain NCHW.
public struct LossValue {
    public var value: Float
    public var gradient: Tensor
}
