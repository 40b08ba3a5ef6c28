import CDNNL

/// Convolution weights quantized symmetrically per output channel: w[o, …] ≈ values[o, …] · steps[o]
/// with values in −127…127 and steps[o] = max |w[o, …]| / 127 (a channel of zeros gets step 1).
public struct Int8Weights: Sendable, Equatable {
    public var values: [Int8]
    public var steps: [Float]

    /// weights (O, I, k, k) row-major Float32, `outputChannels` = O.
    public init(quantizing weights: [Float], outputChannels: Int) {
        precondition(outputChannels > 0 && weights.count % outputChannels == 0, "weights per channel")
        let per = weights.count / outputChannels
        var steps = [Float](repeating: 1, count: outputChannels)
        // One pass of plain loops over buffers (predict's start-up quantizes every unit):
        // w / step is within ±127 (+ rounding), where adding and removing 1.5·2²³ rounds to
        // nearest, ties to even, like `rounded(.toNearestOrEven)`.
        let values = [Int8](unsafeUninitializedCapacity: weights.count) { out, initialized in
            weights.withUnsafeBufferPointer { w in
                for o in 0..<outputChannels {
                    let base = o * per
                    var top: Float = 0
                    for i in base..<(base + per) { top = Swift.max(top, abs(w[i])) }
                    let step: Float = top > 0 ? top / 127 : 1
                    steps[o] = step
                    for i in base..<(base + per) {
                        let r = (w[i] / step + 12_582_912) - 12_582_912
                        out[i] = Int8(truncatingIfNeeded: Int32(Swift.max(-127, Swift.min(127, r))))
                    }
                }
            }
            initialized = weights.count
        }
        self.values = values; self.steps = steps
    }
}

/// A oneDNN int8 convolution for inference: u8 activations (NHWC, step `inputStep`) × s8 weights
/// (per-channel steps) accumulated in s32, then bias, requantization and an optional fused ReLU:
///   y[o] = relu?((Σ q_in · q_w[o]) · inputStep · weightStep[o] + bias[o])
/// written as u8 with step `outputStep` (saturating), or as Float32 when `outputStep` is nil.
/// oneDNN 2.6 adds the bias in the accumulator's units, so it is passed divided by the product
/// of steps. Uses VNNI (`vpdpbusd`) where `CPUFeatures.hasInt8DotProduct`.
public final class Int8ConvolutionKernel {
    public let geometry: ConvGeometry
    public let inputStep: Float
    public let outputStep: Float?
    public let relu: Bool
    private let weights: Int8Weights
    /// bias[o] / (inputStep · weightStep[o]), Float32, at a stable address for oneDNN.
    private let scaledBias: ByteBuffer

    private final class Plan {
        let inShape: Shape, outLayout: Layout?
        let primitive: Primitive
        let src: Memory, weights: Operand, bias: Memory, dst: ResultOperand
        init(inShape: Shape, outLayout: Layout?, primitive: Primitive, src: Memory, weights: Operand, bias: Memory, dst: ResultOperand) {
            self.inShape = inShape; self.outLayout = outLayout; self.primitive = primitive
            self.src = src; self.weights = weights; self.bias = bias; self.dst = dst
        }
    }
    /// Plans of the recent input shapes, newest first (row streaming feeds a few heights:
    /// the steady chunk, the first and last strips', a junction's partial chunks).
    private var plans: [Plan] = []
    private var plan: Plan? { plans.first }
    /// The s8 weights (O, I, k, k) at a stable address (bound directly when oneDNN wants oihw).
    private let weightBytes: ByteBuffer

    /// weight (O, I, k, k) Float32 row-major (batch norm already folded in), bias (O) or nil.
    public init(_ geometry: ConvGeometry, weight: [Float], bias: [Float]?, inputStep: Float, outputStep: Float?, relu: Bool) {
        precondition(!geometry.transposed, "int8 convolutions are not transposed")
        precondition(weight.count == geometry.weightShape.count, "int8 conv weight count")
        precondition(inputStep.isFinite && inputStep > 0 && (outputStep.map { $0.isFinite && $0 > 0 } ?? true),
                     "int8 conv steps must be finite and positive")
        self.geometry = geometry; self.inputStep = inputStep; self.outputStep = outputStep; self.relu = relu
        let q = Int8Weights(quantizing: weight, outputChannels: geometry.outputChannels)
        weights = q
        weightBytes = ByteBuffer(byteCount: q.values.count)
        weightBytes.pointer.copyMemory(from: q.values, byteCount: q.values.count)
        let b = bias ?? [Float](repeating: 0, count: geometry.outputChannels)
        precondition(b.count == geometry.outputChannels, "int8 conv bias count")
        scaledBias = ByteBuffer(byteCount: b.count * 4)
        let target = scaledBias.pointer.bindMemory(to: Float.self, capacity: b.count)
        for o in b.indices { target[o] = b[o] / (inputStep * q.steps[o]) }
    }

    private init(_ other: Int8ConvolutionKernel, rowPadding: Int?) {
        var g = other.geometry
        g.rowPadding = rowPadding
        geometry = g
        inputStep = other.inputStep; outputStep = other.outputStep; relu = other.relu
        weights = other.weights; weightBytes = other.weightBytes; scaledBias = other.scaledBias
    }

    /// This convolution with another `rowPadding` (row streaming: 0), sharing its quantized
    /// weights and bias (read-only), so a unit's weights are quantized once.
    public func withRowPadding(_ rowPadding: Int?) -> Int8ConvolutionKernel { Int8ConvolutionKernel(self, rowPadding: rowPadding) }

    /// Whether `other` reads the same quantized weight bytes (not a copy).
    public func sharesWeights(with other: Int8ConvolutionKernel) -> Bool { weightBytes === other.weightBytes }

    /// The quantized weights (for references and bundle checks).
    public var quantizedWeights: Int8Weights { weights }

    /// oneDNN's implementation name, e.g. "brg:avx512_core_vnni" (for profiles and tests).
    public var implementation: String { plan?.primitive.desc.implementation ?? "-" }

    /// output (N, O, H', W') u8 = conv(input (N, I, H, W) u8). Needs `outputStep`.
    public func forward(input: ByteTensor, output: ByteTensor) {
        precondition(outputStep != nil, "this int8 conv writes Float32")
        precondition(output.shape == geometry.outputShape(input.shape), "int8 conv output shape")
        run(input, outLayout: nil, UnsafeMutableRawPointer(output.data))
    }

    /// output (N, O, H', W') Float32 in its own layout = conv(input u8). Needs `outputStep == nil`.
    public func forward(input: ByteTensor, output: Tensor) {
        precondition(outputStep == nil, "this int8 conv writes u8")
        precondition(output.shape == geometry.outputShape(input.shape), "int8 conv output shape")
        run(input, outLayout: output.layout, output.raw)
    }

    private func run(_ input: ByteTensor, outLayout: Layout?, _ out: UnsafeMutableRawPointer) {
        let p: Plan
        if let i = plans.firstIndex(where: { $0.inShape == input.shape && $0.outLayout == outLayout }) {
            p = plans.remove(at: i)
        } else {
            p = makePlan(input.shape, outLayout)
            if plans.count == 4 { plans.removeLast() }
        }
        plans.insert(p, at: 0)
        p.primitive.execute([(DNNL_ARG_SRC, p.src.bind(UnsafeMutableRawPointer(input.data))),
                             (DNNL_ARG_WEIGHTS, p.weights.memory),
                             (DNNL_ARG_BIAS, p.bias),
                             (DNNL_ARG_DST, p.dst.target(out))])
        p.dst.finish(out)
    }

    private func makePlan(_ inShape: Shape, _ outLayout: Layout?) -> Plan {
        let g = geometry
        precondition(inShape.c == g.inputChannels, "int8 conv expects \(g.inputChannels) input channels, got \(inShape)")
        let outShape = g.outputShape(inShape)
        let src = MemoryDesc(inShape, type: dnnl_u8, tag: dnnl_nhwc)
        // Float32 output: let oneDNN pick (NHWC for its VNNI kernels; a blocked f32 destination
        // falls back to the slow reference kernel) and reorder into the caller's layout.
        let user = outLayout.map { MemoryDesc(outShape, $0) } ?? MemoryDesc(outShape, type: dnnl_u8, tag: dnnl_nhwc)
        let pd = primitiveDesc(src, outLayout == nil ? user : MemoryDesc(outShape, type: dnnl_f32, tag: dnnl_format_tag_any))
        let userWeights = MemoryDesc(g.weightShape, type: dnnl_s8, tag: dnnl_oihw)
        let w = Operand(user: userWeights, wanted: pd.md(dnnl_query_weights_md))
        _ = w.prepare(weightBytes.pointer)
        let bias = Memory(MemoryDesc.vector(g.outputChannels))
        bias.bind(scaledBias.pointer)
        return Plan(inShape: inShape, outLayout: outLayout, primitive: Primitive(pd), src: Memory(src),
                    weights: w, bias: bias, dst: ResultOperand(produced: pd.md(dnnl_query_dst_md), user: user))
    }

    private func primitiveDesc(_ src: MemoryDesc, _ dst: MemoryDesc) -> PrimitiveDesc {
        let g = geometry
        guard var desc = g.forwardDescriptor(dnnl_forward_inference, dnnl_convolution_direct, src: src,
                                             weights: MemoryDesc(g.weightShape, type: dnnl_s8, tag: dnnl_format_tag_any),
                                             bias: MemoryDesc.vector(g.outputChannels), dst: dst)
        else { fatalError("oneDNN: no int8 convolution descriptor for \(g)") }
        let attr = PrimitiveAttr()
        attr.setOutputScales((0..<g.outputChannels).map { inputStep * weights.steps[$0] / (outputStep ?? 1) })
        if relu { let ops = PostOps(); ops.appendReLU(); attr.setPostOps(ops) }
        guard let pd = PrimitiveDesc.attempt(&desc, attr: attr) else {
            fatalError("oneDNN: no int8 convolution implementation for \(g)")
        }
        return pd
    }
}
