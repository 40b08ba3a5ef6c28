import Engine

/// The end of a residual block: output = max(main + shortcut, 0), one native pass; its
/// backward gives both branches the same gradient, dOutput · [output > 0].
public final class ResidualAddReLU: Layer {
    public var isTraining = true
    private var output: Tensor?, dSum: Tensor?
    public init() {}

    /// main, shortcut (N, C, H, W), same layout → (N, C, H, W).
    public func callAsFunction(_ main: Tensor, _ shortcut: Tensor) -> Tensor {
        let out = reuse(output, main.shape, main.layout)
        output = out
        Elementwise.addReLU(main, shortcut, into: out)
        return out
    }

    /// The gradient of the sum (both branches'), owned by this layer.
    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let y = output else { preconditionFailure("ResidualAddReLU.backward before forward") }
        let d = reuse(dSum, y.shape, y.layout)
        dSum = d
        Elementwise.reluBackward(output: y, dOutput: dOutput, into: d)
        return d
    }
}

/// A ResNet block as torchvision builds it: basic (3×3, 3×3) or bottleneck (1×1, 3×3, 1×1;
/// the stride on the 3×3), each convolution followed by batch norm and, except the last, ReLU;
/// the shortcut is the input or a 1×1 convolution + batch norm (with the block's stride);
/// then sum and ReLU. Parameters: conv1/bn1, conv2/bn2[, conv3/bn3][, downsample.0/downsample.1].
public final class ResidualBlock: UnaryLayer {
    public let spec: ResidualBlockSpec
    public let units: [ConvBNReLU]
    public let projection: ConvBNReLU?
    public let sum = ResidualAddReLU()
    public var isTraining = true {
        didSet { for u in units { u.isTraining = isTraining }; projection?.isTraining = isTraining }
    }

    public init(_ s: ResidualBlockSpec, bottleneck: Bool, seed: UInt64) {
        spec = s
        let d = s.dilation
        if bottleneck {
            units = [ConvBNReLU(inputChannels: s.inputChannels, outputChannels: s.width, kernelSize: 1, seed: seed),
                     ConvBNReLU(inputChannels: s.width, outputChannels: s.width, stride: s.stride, dilation: d, seed: seed &+ 1),
                     ConvBNReLU(inputChannels: s.width, outputChannels: s.outputChannels, kernelSize: 1, relu: false, seed: seed &+ 2)]
        } else {
            units = [ConvBNReLU(inputChannels: s.inputChannels, outputChannels: s.width, stride: s.stride, dilation: d, seed: seed),
                     ConvBNReLU(inputChannels: s.width, outputChannels: s.outputChannels, dilation: d, relu: false, seed: seed &+ 1)]
        }
        projection = s.hasProjection
            ? ConvBNReLU(inputChannels: s.inputChannels, outputChannels: s.outputChannels, kernelSize: 1, stride: s.stride,
                         relu: false, seed: seed &+ 3)
            : nil
    }

    public var allUnits: [ConvBNReLU] { units + (projection.map { [$0] } ?? []) }

    public var namedParameters: [(String, Parameter)] {
        var out = units.enumerated().flatMap { i, u in
            scoped("conv\(i + 1)", u.conv.namedParameters) + scoped("bn\(i + 1)", u.bn.namedParameters)
        }
        if let p = projection { out += scoped("downsample.0", p.conv.namedParameters) + scoped("downsample.1", p.bn.namedParameters) }
        return out
    }
    public var namedBuffers: [(String, Parameter)] {
        var out = units.enumerated().flatMap { i, u in scoped("bn\(i + 1)", u.bn.namedBuffers) }
        if let p = projection { out += scoped("downsample.1", p.bn.namedBuffers) }
        return out
    }

    /// x (N, I, H, W) → (N, O, H/stride, W/stride).
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let main = units.reduce(x) { $1($0) }
        return sum(main, projection?(x) ?? x)
    }

    /// dInput: the main branch's plus the shortcut's.
    public func backward(_ dOutput: Tensor) -> Tensor {
        let d = sum.backward(dOutput)
        let dx = units.reversed().reduce(d) { $1.backward($0) }
        Elementwise.accumulate(projection?.backward(d) ?? d, into: dx)
        return dx
    }
}
