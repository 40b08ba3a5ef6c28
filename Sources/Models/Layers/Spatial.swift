import Engine

/// 2×2 max pooling, stride 2, keeping the argmax indices (for `MaxUnpool2d` and backward).
public final class MaxPool2d: UnaryLayer {
    public var isTraining = true
    public private(set) var indices: PoolIndices?
    private var inputShape: Shape?, inputLayout: Layout = .nchw
    private var output: Tensor?, dInput: Tensor?
    public init() {}

    /// input (N, C, H, W) with even H, W → (N, C, H/2, W/2), same layout.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        precondition(x.shape.h % 2 == 0 && x.shape.w % 2 == 0, "MaxPool2d needs even H and W, got \(x.shape)")
        let out = reuse(output, Shape(x.shape.n, x.shape.c, x.shape.h / 2, x.shape.w / 2), x.layout)
        output = out
        if indices == nil || indices!.view != out.spatialView { indices = PoolIndices(outputView: out.spatialView) }
        MaxPool2x2.forward(input: x, output: out, indices: indices!)
        inputShape = x.shape; inputLayout = x.layout
        return out
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let s = inputShape else { preconditionFailure("MaxPool2d.backward before forward") }
        let dx = reuse(dInput, s, inputLayout)
        dInput = dx
        MaxPool2x2.backward(dOutput: dOutput, indices: indices!, dInput: dx)
        return dx
    }

    /// Adds this pooling's input gradient into `gradient` (a skip connection's other branch).
    public func backward(_ dOutput: Tensor, accumulatingInto gradient: Tensor) {
        MaxPool2x2.backward(dOutput: dOutput, indices: indices!, dInput: gradient, accumulate: true)
    }
}

/// Max-unpooling ×2 with the indices of a `MaxPool2d`: each value goes back to where its
/// window's maximum was, zeros elsewhere.
public final class MaxUnpool2d: UnaryLayer {
    public var isTraining = true
    public let pool: MaxPool2d
    private var output: Tensor?, dInput: Tensor?
    public init(indicesFrom pool: MaxPool2d) { self.pool = pool }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard let idx = pool.indices else { preconditionFailure("MaxUnpool2d before its pooling ran") }
        let out = reuse(output, Shape(x.shape.n, x.shape.c, 2 * x.shape.h, 2 * x.shape.w), x.layout)
        output = out
        MaxUnpool2x2.forward(input: x, indices: idx, output: out)
        return out
    }
    public func backward(_ dOutput: Tensor) -> Tensor {
        let s = dOutput.shape
        let dx = reuse(dInput, Shape(s.n, s.c, s.h / 2, s.w / 2), dOutput.layout)
        dInput = dx
        MaxUnpool2x2.backward(dOutput: dOutput, indices: pool.indices!, dInput: dx)
        return dx
    }
}

/// ×2 upsampling modes of the decoder. The raw values are what users write (YAML, CLI, model.json).
public enum UpsamplingMode: String, Sendable, Codable, CaseIterable {
    /// Bilinear, PyTorch align_corners=False.
    case bilinear
    case nearest
    /// Bed-of-nails: value at the top-left of its 2×2 block, zeros elsewhere.
    case nails
    /// Learned: a 2×2 stride-2 transposed convolution to the skip's width.
    case transposed
    /// SegNet-style: a 1×1 convolution to the skip's width, then max-unpooling with the
    /// indices of the encoder's pooling at that level.
    case maxUnpooling = "max-unpooling"

    /// Whether the mode has parameters (a layer of its own between decoder levels, see
    /// `LearnedUpsampleConcat`) rather than a fixed resampling.
    public var isLearned: Bool { self == .transposed || self == .maxUnpooling }

    /// The fixed resampling kernel; nil for learned modes.
    var fixedKind: Upsample2xKind? {
        switch self {
        case .bilinear: .bilinear
        case .nearest: .nearest
        case .nails: .nails
        case .transposed, .maxUnpooling: nil
        }
    }
}

/// Decoder junction: upsample ×2 straight into the first channels of the concat buffer and
/// copy the skip into the rest, so the upsampled tensor and its gradient never exist on their
/// own (saves a tensor, a gradient and two copies per level). Backward reads the upsampled
/// part's gradient in place. Hand-written kernels for every mode (they write strided slices).
public final class UpsampleConcat: Layer {
    public var isTraining = true
    public let mode: UpsamplingMode
    public var gradientPool: BufferPool?
    private var output: Tensor?, dSkip: Tensor?, dInput: Tensor?
    private var inputShape: Shape?

    private let kind: Upsample2xKind

    public init(mode: UpsamplingMode) {
        guard let kind = mode.fixedKind else { preconditionFailure("\(mode.rawValue) upsampling has parameters: use LearnedUpsampleConcat") }
        self.mode = mode
        self.kind = kind
    }

    /// [upsample(x), skip] along channels: x (N, C, H, W), skip (N, S, 2H, 2W) → (N, C+S, 2H, 2W).
    public func callAsFunction(_ x: Tensor, skip: Tensor) -> Tensor {
        precondition((x.layout == skip.layout || skip.layout == .nhwc) && x.layout != .nhwc && x.shape.c % x.layout.channelBlock == 0,
                     "UpsampleConcat layouts \(x.layout), \(skip.layout)")
        precondition(skip.shape.h == 2 * x.shape.h && skip.shape.w == 2 * x.shape.w && skip.shape.n == x.shape.n)
        let cat = reuse(output, Shape(x.shape.n, x.shape.c + skip.shape.c, skip.shape.h, skip.shape.w), x.layout)
        output = cat
        Upsample2x.forward(kind, x.data, x.spatialView, cat.data, cat.leadingChannelsView(x.shape.c))
        if skip.layout == .nhwc {  // a channels-last unit's skip, at inference
            RowCopy.copy(skip, rows: 0, count: skip.shape.h, into: cat, at: 0, channelOffset: x.shape.c)
        } else {
            ChannelConcat.copy(skip, channelOffset: x.shape.c, of: cat)
        }
        inputShape = x.shape
        dSkip = reuse(dSkip, skip.shape, skip.layout)
        return cat
    }

    /// (dX, dSkip) from dOutput. dSkip is owned by this layer (the encoder adds its pooling
    /// gradient into it).
    public func backward(_ dOutput: Tensor) -> (Tensor, Tensor) {
        guard let s = inputShape, let dSkip else { preconditionFailure("UpsampleConcat.backward before forward") }
        let dx = gradientPool?.take(s, dOutput.layout) ?? reuse(dInput, s, dOutput.layout)
        if gradientPool == nil { dInput = dx }
        Upsample2x.backward(kind, dOutput.data, dOutput.leadingChannelsView(s.c), dx.data, dx.spatialView)
        ChannelConcat.copy(dSkip, channelOffset: s.c, of: dOutput, extract: true)
        return (dx, dSkip)
    }
}

/// Max pooling with any square window, stride and padding on oneDNN (PyTorch `MaxPool2d`:
/// padding never wins; ResNet's stem uses 3×3, stride 2, padding 1). The 2×2 `MaxPool2d`
/// above keeps its indices for unpooling; this one keeps oneDNN's workspace for its backward.
public final class PaddedMaxPool2d: UnaryLayer {
    public var isTraining = true
    public let kernel: PoolingKernel
    private var inputShape: Shape?, inputLayout: Layout = .nchw
    private var output: Tensor?, dInput: Tensor?

    public init(kernelSize: Int = 3, stride: Int = 2, padding: Int = 1) {
        precondition(2 * padding <= kernelSize, "pooling padding beyond half the window")
        kernel = PoolingKernel(.max, kernel: kernelSize, stride: stride, padding: padding)
    }

    /// input (N, C, H, W) → (N, C, ⌊(H + 2p − k)/s⌋ + 1, …), same layout.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = reuse(output, kernel.outputShape(x.shape), x.layout)
        output = out
        kernel.forward(input: x, output: out)
        inputShape = x.shape; inputLayout = x.layout
        return out
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let s = inputShape else { preconditionFailure("PaddedMaxPool2d.backward before forward") }
        let dx = reuse(dInput, s, inputLayout)
        dInput = dx
        kernel.backward(dOutput: dOutput, dInput: dx)
        return dx
    }
}

/// Fixed ×2 upsampling on its own (a decoder level without a skip, e.g. smp's last block).
public final class Upsample2d: UnaryLayer {
    public var isTraining = true
    public let mode: UpsamplingMode
    private let kind: Upsample2xKind
    private var output: Tensor?, dInput: Tensor?
    private var inputShape: Shape?

    public init(mode: UpsamplingMode) {
        guard let kind = mode.fixedKind else { preconditionFailure("\(mode.rawValue) upsampling has parameters") }
        self.mode = mode; self.kind = kind
    }

    /// x (N, C, H, W) → (N, C, 2H, 2W), same layout.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = reuse(output, Shape(x.shape.n, x.shape.c, 2 * x.shape.h, 2 * x.shape.w), x.layout)
        output = out
        Upsample2x.forward(kind, input: x, output: out)
        inputShape = x.shape
        return out
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let s = inputShape else { preconditionFailure("Upsample2d.backward before forward") }
        let dx = reuse(dInput, s, dOutput.layout)
        dInput = dx
        Upsample2x.backward(kind, dOutput: dOutput, dInput: dx)
        return dx
    }
}
