import Engine

/// 2-D convolution (square kernel) on oneDNN. Weight (O, I, k, k), optional bias (O).
/// Output is produced in `outputLayout` (`Layout.blocked` by default, so consecutive oneDNN
/// layers never reorder); the input may be in any layout.
public final class Conv2d: UnaryLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let geometry: ConvGeometry
    public var isTraining = true
    public var outputLayout: Layout = .blocked
    /// False for a network's first layer: its input needs no gradient, so backward skips it.
    public var computesInputGradient = true
    public let kernel: ConvolutionKernel
    /// Name used in profiles.
    public var label = ""
    /// Where input gradients come from when set (shared by a network's layers).
    public var gradientPool: BufferPool?
    /// bf16 training with a per-layer choice (`Bf16Training`): at the first training input of
    /// each shape, one forward + backward in each precision is timed and the faster kept
    /// (`kernel.bf16`), and the other precision's plans are released. nil: the kernel's precision as set.
    public var bf16Choice: Bf16Choice?

    private var input: Tensor?
    private var output: Tensor?
    private var dInput: Tensor?

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int, stride: Int = 1,
                padding: Int? = nil, dilation: Int = 1, bias: Bool = true, seed: UInt64 = 0) {
        geometry = ConvGeometry(inputChannels: inputChannels, outputChannels: outputChannels, kernel: kernelSize,
                                stride: stride, padding: padding ?? dilation * (kernelSize - 1) / 2,
                                dilation: dilation, bias: bias)
        weight = Parameter(shape: geometry.weightShape)
        self.bias = bias ? Parameter(shape: Shape(outputChannels, 1, 1, 1)) : nil
        kernel = ConvolutionKernel(geometry)
        let bound = 1 / Float(inputChannels * kernelSize * kernelSize).squareRoot()
        weight.fillUniform(bound: bound, seed: seed)
        self.bias?.fillUniform(bound: bound, seed: seed &+ 1)
    }

    public var namedParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// The layout an input of `layout` is convolved into: `outputLayout`, but NHWC after NHWC
    /// rows at inference (a channels-last unit's; oneDNN's kernels want both sides alike).
    public func outputLayout(reading layout: Layout) -> Layout { !isTraining && layout == .nhwc ? .nhwc : outputLayout }

    /// input (N, I, H, W) → output (N, O, H', W').
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = reuse(output, geometry.outputShape(x.shape), outputLayout(reading: x.layout))
        output = out
        if isTraining, let choice = bf16Choice {
            kernel.bf16 = choice.usesBF16(x.shape, x.layout, fp32: { trial(x, out, bf16: false) }, bf16: { trial(x, out, bf16: true) },
                                          dropLoser: { kernel.releasePlans(inputShape: x.shape, layout: x.layout, bf16: $0) })
        }
        kernel.forward(input: x, weight: weight, bias: bias, output: out, training: isTraining)
        input = x
        return out
    }

    /// One timed training step of the convolution at a precision: forward, backward-weights and
    /// backward-data with the output as the output gradient (the gradients written here are
    /// overwritten by the real backward).
    private func trial(_ x: Tensor, _ out: Tensor, bf16: Bool) {
        kernel.bf16 = bf16
        kernel.forward(input: x, weight: weight, bias: bias, output: out, training: true)
        kernel.backwardWeights(input: x, dOutput: out, weight: weight, bias: bias)
        if computesInputGradient { kernel.backwardData(dOutput: out, weight: weight, dInput: reuse(nil, x.shape, x.layout)) }
    }

    /// Writes weight.grad (and bias.grad); returns dInput in the input's layout.
    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("Conv2d.backward before forward") }
        let prof = Profiler.shared
        prof.measure("\(label) conv bwd-weights") {
            kernel.backwardWeights(input: x, dOutput: dOutput, weight: weight, bias: bias)
        }
        let dx = gradientPool?.take(x.shape, x.layout) ?? reuse(dInput, x.shape, x.layout)
        if gradientPool == nil { dInput = dx }
        if computesInputGradient {
            prof.measure("\(label) conv bwd-data") { kernel.backwardData(dOutput: dOutput, weight: weight, dInput: dx) }
        }
        return dx
    }
}

/// Transposed convolution (PyTorch ConvTranspose2d); weight (I, O, k, k), bias (O).
/// Typically kernelSize 2, stride 2: a learned ×2 upsampling.
public final class ConvTranspose2d: UnaryLayer {
    public let weight: Parameter
    public let bias: Parameter?
    public let geometry: ConvGeometry
    public var isTraining = true
    public let kernel: ConvolutionKernel
    private var input: Tensor?, output: Tensor?, dInput: Tensor?

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int = 2, stride: Int = 2,
                bias: Bool = true, seed: UInt64 = 0) {
        geometry = ConvGeometry(inputChannels: inputChannels, outputChannels: outputChannels, kernel: kernelSize,
                                stride: stride, padding: 0, dilation: 1, bias: bias, transposed: true)
        weight = Parameter(shape: geometry.weightShape)
        self.bias = bias ? Parameter(shape: Shape(outputChannels, 1, 1, 1)) : nil
        kernel = ConvolutionKernel(geometry)
        let bound = 1 / Float(outputChannels * kernelSize * kernelSize).squareRoot()
        weight.fillUniform(bound: bound, seed: seed)
        self.bias?.fillUniform(bound: bound, seed: seed &+ 1)
    }

    public var namedParameters: [(String, Parameter)] {
        [("weight", weight)] + (bias.map { [("bias", $0)] } ?? [])
    }

    /// input (N, I, H, W) → output (N, O, sH, sW), same layout as the input.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = reuse(output, geometry.outputShape(x.shape), x.layout)
        output = out
        kernel.forward(input: x, weight: weight, bias: bias, output: out, training: isTraining)
        input = x
        return out
    }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("ConvTranspose2d.backward before forward") }
        kernel.backwardWeights(input: x, dOutput: dOutput, weight: weight, bias: bias)
        let dx = reuse(dInput, x.shape, x.layout)
        dInput = dx
        kernel.backwardData(dOutput: dOutput, weight: weight, dInput: dx)
        return dx
    }
}
