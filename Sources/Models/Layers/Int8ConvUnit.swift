import Engine

/// A conv–BN–ReLU unit run in int8 at inference: its Float32 input is quantized to u8 at the
/// calibrated `inputStep` (inputs are ReLU outputs, pooled or upsampled, so non-negative), then
/// one oneDNN int8 convolution with the folded batch norm (per-channel s8 weights), bias and
/// fused ReLU writes Float32 in the unit's output layout. Requantizing at each input rather than
/// chaining u8 between layers keeps every other layer (pooling, upsampling, concat, row
/// streaming) unchanged; the extra reorder is memory-bound and small beside the convolution.
public final class Int8ConvUnit {
    public let inputStep: Float
    private let quantizer: ActivationQuantizer
    private var bytes: ByteTensor?
    private var output: Tensor?
    /// Folds and quantizes the unit's inference weights at first use: a chained U-Net
    /// (`Int8UNetChain`) never runs this unchained path, so it never pays for it.
    private var kernel: Int8ConvolutionKernel {
        if let prepared { return prepared }
        let k = unit.int8Kernel(inputStep: inputStep, outputStep: nil, rowPadding: rowPadding)
        prepared = k
        return k
    }
    private var prepared: Int8ConvolutionKernel?
    private unowned let unit: ConvBNReLU
    private let rowPadding: Int?

    /// `unit`'s folded inference weights are quantized at the first call (weights must not
    /// change after that). `rowPadding` 0: for row streaming, whose strips bring their halo rows (`RowStream`).
    public init(_ unit: ConvBNReLU, inputStep: Float, rowPadding: Int? = nil) {
        self.inputStep = inputStep
        quantizer = ActivationQuantizer(step: inputStep)
        self.unit = unit; self.rowPadding = rowPadding
    }

    /// Whether the weights are quantized yet (at the first call or `implementation`).
    public var isPrepared: Bool { prepared != nil }

    /// oneDNN's implementation, e.g. "brg:avx512_core_vnni" (after the first call).
    public var implementation: String { kernel.implementation }

    /// input (N, I, H, W) Float32 ≥ 0, any layout → output (N, O, H, W) in `layout` (owned, reused).
    public func callAsFunction(_ x: Tensor, layout: Layout) -> Tensor {
        if bytes?.shape != x.shape { bytes = ByteTensor(shape: x.shape) }
        let prof = Profiler.shared
        prof.measure("int8 quantize inputs") { quantizer.quantize(x, into: bytes!) }
        let out = reuse(output, kernel.geometry.outputShape(x.shape), layout)
        output = out
        prof.measure("int8 conv (+ f32 reorder)") { kernel.forward(input: bytes!, output: out) }
        return out
    }
}

extension ConvBNReLU {
    /// This unit's folded inference weights quantized into an int8 convolution with its ReLU
    /// fused: u8 input at `inputStep`, u8 output at `outputStep` or Float32 when nil, in units
    /// of `floatStep` (weights and bias scaled by 1/floatStep: per-channel quantization and ReLU
    /// commute with a positive scale). The one folding of the unchained and chained paths.
    func int8Kernel(inputStep: Float, outputStep: Float?, rowPadding: Int? = nil, floatStep: Float = 1) -> Int8ConvolutionKernel {
        var g = conv.geometry
        g.bias = true
        g.rowPadding = rowPadding
        let (w, b) = inferenceWeights()
        let scale = 1 / floatStep
        func scaled(_ v: [Float]) -> [Float] { scale == 1 ? v : v.map { $0 * scale } }
        return Int8ConvolutionKernel(g, weight: scaled(w.value.nchwValues()), bias: scaled(b.value.nchwValues()),
                                     inputStep: inputStep, outputStep: outputStep, relu: relu)
    }
}
