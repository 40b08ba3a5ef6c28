/// A trainable tensor with its gradient, addressed by a stable name such as
/// "enc1.conv1.weight" (the key used by optimisers and checkpoints).
///
/// `value` is stored in plain NCHW (for a convolution weight: O, I, kH, kW); layers keep
/// their own reordered copies for oneDNN and refresh them when `version` changes.
public final class Parameter: @unchecked Sendable {
    public var name: String
    public let value: Tensor
    public let grad: Tensor
    /// Incremented whenever `value` changes (optimiser step, checkpoint load).
    public private(set) var version: Int = 0

    public init(name: String = "", shape: Shape) {
        self.name = name
        value = Tensor(shape: shape, layout: .nchw)
        grad = Tensor(shape: shape, layout: .nchw)
    }

    public var count: Int { value.shape.count }

    /// Call after writing `value` in place.
    public func markChanged() { version &+= 1 }

    /// Copies values in (NCHW order) and marks the parameter changed.
    public func set(_ values: [Float]) {
        value.setNCHW(values)
        markChanged()
    }
}
