import CDNNL

/// A oneDNN bf16 convolution for inference: the Float32 input is reordered to bf16 in the
/// primitive's layout, the weights are rounded to bf16 once, bias and accumulation stay
/// Float32, ReLU is fused, and the output is Float32 in the caller's layout:
///   y[o] = relu?(Σ bf16(x) · bf16(w[o]) + bias[o])   (Float32 sums)
/// Native on AVX512_BF16 or AMX (`CPUFeatures.hasBF16`); oneDNN 2.6 has no bf16 Winograd.
public final class Bf16ConvolutionKernel {
    public let geometry: ConvGeometry
    public let relu: Bool
    /// weight (O, I, k, k) and bias (O), Float32, at stable addresses for oneDNN.
    private let weightValues: ByteBuffer, biasValues: ByteBuffer

    private final class Plan {
        let inShape: Shape, inLayout: Layout, outLayout: Layout
        let primitive: Primitive
        let src: Operand, weights: Operand, bias: Memory, dst: ResultOperand
        init(inShape: Shape, inLayout: Layout, outLayout: Layout, primitive: Primitive, src: Operand, weights: Operand, bias: Memory, dst: ResultOperand) {
            self.inShape = inShape; self.inLayout = inLayout; self.outLayout = outLayout; self.primitive = primitive
            self.src = src; self.weights = weights; self.bias = bias; self.dst = dst
        }
    }
    private var plan: Plan?

    /// weight (O, I, k, k) Float32 row-major (batch norm already folded in), bias (O) or nil.
    public init(_ geometry: ConvGeometry, weight: [Float], bias: [Float]?, relu: Bool) {
        precondition(!geometry.transposed, "bf16 convolutions are not transposed")
        precondition(weight.count == geometry.weightShape.count, "bf16 conv weight count")
        let b = bias ?? [Float](repeating: 0, count: geometry.outputChannels)
        precondition(b.count == geometry.outputChannels, "bf16 conv bias count")
        self.geometry = geometry; self.relu = relu
        weightValues = ByteBuffer(byteCount: weight.count * 4)
        weightValues.pointer.copyMemory(from: weight, byteCount: weight.count * 4)
        biasValues = ByteBuffer(byteCount: b.count * 4)
        biasValues.pointer.copyMemory(from: b, byteCount: b.count * 4)
    }

    /// oneDNN's implementation name, e.g. "brgconv:avx512_core_bf16" (after the first call).
    public var implementation: String { plan?.primitive.desc.implementation ?? "-" }

    /// Drops the cached plan (primitive, bf16 weights and input buffer), as when a per-layer
    /// choice kept fp32; the next `forward` makes it again.
    public func releasePlan() { plan = nil }

    /// output (N, O, H', W') Float32 in its layout = conv(input (N, I, H, W) Float32, any layout).
    public func forward(input: Tensor, output: Tensor) {
        precondition(output.shape == geometry.outputShape(input.shape), "bf16 conv output shape")
        if plan == nil || plan!.inShape != input.shape || plan!.inLayout != input.layout || plan!.outLayout != output.layout {
            plan = makePlan(input.shape, input.layout, output.layout)
        }
        let p = plan!
        p.primitive.execute([(DNNL_ARG_SRC, p.src.prepare(input.raw)),
                             (DNNL_ARG_WEIGHTS, p.weights.memory),
                             (DNNL_ARG_BIAS, p.bias),
                             (DNNL_ARG_DST, p.dst.target(output.raw))])
        p.dst.finish(output.raw)
    }

    private func makePlan(_ inShape: Shape, _ inLayout: Layout, _ outLayout: Layout) -> Plan {
        let g = geometry
        precondition(inShape.c == g.inputChannels, "bf16 conv expects \(g.inputChannels) input channels, got \(inShape)")
        let outShape = g.outputShape(inShape)
        let src = MemoryDesc(inShape, type: dnnl_bf16, tag: dnnl_format_tag_any)
        let dst = MemoryDesc(outShape, type: dnnl_f32, tag: dnnl_format_tag_any)
        guard var desc = g.forwardDescriptor(dnnl_forward_inference, dnnl_convolution_direct, src: src,
                                             weights: MemoryDesc(g.weightShape, type: dnnl_bf16, tag: dnnl_format_tag_any),
                                             bias: MemoryDesc.vector(g.outputChannels), dst: dst)
        else { fatalError("oneDNN: no bf16 convolution descriptor for \(g)") }
        let attr = PrimitiveAttr()
        if relu { let ops = PostOps(); ops.appendReLU(); attr.setPostOps(ops) }
        guard let pd = PrimitiveDesc.attempt(&desc, attr: attr) else {
            fatalError("oneDNN: no bf16 convolution implementation for \(g)")
        }
        let weights = Operand(user: MemoryDesc(g.weightShape, type: dnnl_f32, tag: dnnl_oihw), wanted: pd.md(dnnl_query_weights_md))
        _ = weights.prepare(weightValues.pointer)
        let bias = Memory(MemoryDesc.vector(g.outputChannels))
        bias.bind(biasValues.pointer)
        return Plan(inShape: inShape, inLayout: inLayout, outLayout: outLayout, primitive: Primitive(pd),
                    src: Operand(user: MemoryDesc(inShape, inLayout), wanted: pd.md(dnnl_query_src_md)), weights: weights, bias: bias,
                    dst: ResultOperand(produced: pd.md(dnnl_query_dst_md), user: MemoryDesc(outShape, outLayout)))
    }
}
