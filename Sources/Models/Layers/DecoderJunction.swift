import Engine

/// Where a U-Net decoder level begins: brings the level below to the skip's resolution and
/// concatenates [up, skip] along channels.
public protocol DecoderJunction: Layer {
    /// Where transient input gradients come from when set (shared by a network's layers).
    var gradientPool: BufferPool? { get set }
    /// x (N, B, H, W), skip (N, S, 2H, 2W) → [up(x), skip] (N, U + S, 2H, 2W), owned by the junction.
    func callAsFunction(_ x: Tensor, skip: Tensor) -> Tensor
    /// (dX, dSkip) from the concat's gradient. dSkip is owned by the junction (the encoder
    /// adds its pooling gradient into it).
    func backward(_ dOutput: Tensor) -> (Tensor, Tensor)
}

/// Fixed resampling (bilinear, nearest, bed-of-nails), fused with the concat: U = B.
extension UpsampleConcat: DecoderJunction {}

/// Learned ×2 upsampling to the skip's width, then [up, skip] (the classic U-Net): U = S.
///
/// - transposed: `ConvTranspose2d` (B → S, kernel 2, stride 2, bias);
/// - max-unpooling (SegNet): `Conv2d` 1×1 (B → S, bias), then `MaxUnpool2d` with the indices of
///   the encoder's pooling of that skip (the projection runs at the coarse resolution).
///
/// The blocked concat needs the skip to start at a whole channel block (16 channels with
/// AVX-512, 8 below); when S is not (widths 8-16-… on AVX-512), the concat is built in NCHW —
/// the decoder's convolution reads any layout — and its gradient is split in NCHW and
/// reordered back to the blocked layout.
public final class LearnedUpsampleConcat: DecoderJunction {
    public let mode: UpsamplingMode
    /// The learned part: `ConvTranspose2d` or a 1×1 `Conv2d`; its parameters are the junction's.
    public let conv: any UnaryLayer
    public let unpool: MaxUnpool2d?
    public var gradientPool: BufferPool? {
        didSet { (conv as? Conv2d)?.gradientPool = gradientPool }
    }
    public var isTraining = true {
        didSet { conv.isTraining = isTraining; unpool?.isTraining = isTraining }
    }
    /// Name used in profiles ("dec1.up"; the 1×1 convolution's backward reports under it).
    public var label = "" {
        didSet { (conv as? Conv2d)?.label = label }
    }

    private let toPlain = LayoutConverter(), toBlocked = LayoutConverter()
    private var output: Tensor?, dUp: Tensor?, dSkip: Tensor?
    /// The NCHW fallback's copies of up, skip and their gradients.
    private var plainUp: Tensor?, plainSkip: Tensor?, dPlainUp: Tensor?, dPlainSkip: Tensor?
    private var upShape: Shape?, upLayout: Layout = .blocked, concatenatesPlain = false

    /// Transposed convolution B → S, kernel 2, stride 2; PyTorch's initialisation.
    public static func transposed(inputChannels: Int, outputChannels: Int, seed: UInt64) -> LearnedUpsampleConcat {
        LearnedUpsampleConcat(.transposed, conv: ConvTranspose2d(inputChannels: inputChannels, outputChannels: outputChannels,
                                                                 kernelSize: 2, stride: 2, bias: true, seed: seed), unpool: nil)
    }

    /// 1×1 convolution B → S, then max-unpooling with `pool`'s indices (the pooling of the skip).
    public static func maxUnpooling(inputChannels: Int, outputChannels: Int, indicesFrom pool: MaxPool2d,
                                    seed: UInt64) -> LearnedUpsampleConcat {
        LearnedUpsampleConcat(.maxUnpooling, conv: Conv2d(inputChannels: inputChannels, outputChannels: outputChannels,
                                                          kernelSize: 1, bias: true, seed: seed),
                              unpool: MaxUnpool2d(indicesFrom: pool))
    }

    private init(_ mode: UpsamplingMode, conv: any UnaryLayer, unpool: MaxUnpool2d?) {
        self.mode = mode; self.conv = conv; self.unpool = unpool
    }

    /// "weight", "bias" of the learned convolution.
    public var namedParameters: [(String, Parameter)] { conv.namedParameters }

    /// x (N, B, H, W), skip (N, S, 2H, 2W) → [up(x), skip] (N, 2S, 2H, 2W): blocked like the
    /// skip when S is a multiple of its block, NCHW otherwise.
    public func callAsFunction(_ x: Tensor, skip: Tensor) -> Tensor {
        var up = conv(x)
        if let unpool { up = unpool(up) }
        precondition(up.shape == skip.shape, "learned upsampling gives \(up.shape), the skip is \(skip.shape)")
        upShape = up.shape; upLayout = up.layout
        dSkip = reuse(dSkip, skip.shape, skip.layout)
        let catShape = ChannelConcat.outputShape([up.shape, skip.shape])
        concatenatesPlain = up.layout != skip.layout || up.shape.c % up.layout.channelBlock != 0
        if !concatenatesPlain {
            let cat = reuse(output, catShape, skip.layout)
            output = cat
            ChannelConcat.forward(inputs: [up, skip], output: cat)
            return cat
        }
        let u = reuse(plainUp, up.shape, .nchw), s = reuse(plainSkip, skip.shape, .nchw)
        plainUp = u; plainSkip = s
        toPlain.convert(up, into: u)
        toPlain.convert(skip, into: s)
        let cat = reuse(output, catShape, .nchw)
        output = cat
        ChannelConcat.forward(inputs: [u, s], output: cat)
        return cat
    }

    public func backward(_ dOutput: Tensor) -> (Tensor, Tensor) {
        guard let s = upShape, let dSkip else { preconditionFailure("LearnedUpsampleConcat.backward before forward") }
        let du = gradientPool?.take(s, upLayout) ?? reuse(dUp, s, upLayout)
        if gradientPool == nil { dUp = du }
        if !concatenatesPlain {
            ChannelConcat.backward(dOutput: dOutput, dInputs: [du, dSkip])
        } else {
            let pu = reuse(dPlainUp, s, .nchw), ps = reuse(dPlainSkip, dSkip.shape, .nchw)
            dPlainUp = pu; dPlainSkip = ps
            ChannelConcat.backward(dOutput: dOutput, dInputs: [pu, ps])
            toBlocked.convert(pu, into: du)
            toBlocked.convert(ps, into: dSkip)
        }
        let dConv = unpool?.backward(du) ?? du
        return (conv.backward(dConv), dSkip)
    }
}

/// A junction whose level below is already at the skip's resolution (smp's dilated encoder
/// stages, where the upsampling to the same size is the identity): [x, skip].
public final class SkipConcat: DecoderJunction {
    public var isTraining = true
    public var gradientPool: BufferPool?
    private var output: Tensor?, dX: Tensor?, dSkip: Tensor?
    private var shapes: (Shape, Shape)?

    public init() {}

    /// x (N, B, H, W), skip (N, S, H, W) → (N, B + S, H, W) in their layout (B a multiple of its block).
    public func callAsFunction(_ x: Tensor, skip: Tensor) -> Tensor {
        precondition(x.shape.h == skip.shape.h && x.shape.w == skip.shape.w, "SkipConcat needs equal resolutions")
        let cat = reuse(output, ChannelConcat.outputShape([x.shape, skip.shape]), x.layout)
        output = cat
        ChannelConcat.forward(inputs: [x, skip], output: cat)
        shapes = (x.shape, skip.shape)
        return cat
    }

    public func backward(_ dOutput: Tensor) -> (Tensor, Tensor) {
        guard let (xs, ss) = shapes else { preconditionFailure("SkipConcat.backward before forward") }
        let dx = reuse(dX, xs, dOutput.layout), ds = reuse(dSkip, ss, dOutput.layout)
        dX = dx; dSkip = ds
        ChannelConcat.backward(dOutput: dOutput, dInputs: [dx, ds])
        return (dx, ds)
    }
}
