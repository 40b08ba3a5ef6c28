import CDNNL

/// oneDNN ×factor resampling: `.linear` (bilinear, half-pixel centres, i.e. PyTorch
/// align_corners=False) or `.nearest`. Backward is used for nearest; the bilinear ×2
/// backward has a faster hand-written kernel (Native/Upsample.swift).
public final class ResamplingKernel {
    public enum Algorithm: Sendable { case linear, nearest }
    public let algorithm: Algorithm
    public let factor: Int
    private var key: (Shape, Layout)?
    private var fwd: (Primitive, Memory, Memory)?
    private var bwd: (Primitive, Memory, Memory)?

    public init(_ algorithm: Algorithm, factor: Int = 2) {
        self.algorithm = algorithm; self.factor = factor
    }
    private var alg: dnnl_alg_kind_t { algorithm == .linear ? dnnl_resampling_linear : dnnl_resampling_nearest }

    /// input (N, C, H, W), output (N, C, fH, fW), same layout.
    public func forward(input: Tensor, output: Tensor) {
        if key == nil || key!.0 != input.shape || key!.1 != input.layout {
            key = (input.shape, input.layout); bwd = nil
            var s = input.memoryDesc.raw, d = output.memoryDesc.raw
            var factors: [Float] = [Float(factor), Float(factor)]
            var desc = dnnl_resampling_desc_t()
            dnnlCheck(dnnl_resampling_forward_desc_init(&desc, dnnl_forward_training, alg, &factors, &s, &d),
                      "dnnl_resampling_forward_desc_init")
            let pd = PrimitiveDesc(&desc, "resampling forward")
            fwd = (Primitive(pd), Memory(input.memoryDesc), Memory(output.memoryDesc))
        }
        let f = fwd!
        f.0.execute([(DNNL_ARG_SRC, f.1.bind(input.raw)), (DNNL_ARG_DST, f.2.bind(output.raw))])
    }

    /// Plans of the u8 forward for recent input shapes, newest first (row streaming feeds a few
    /// heights: the steady chunk, the scene's first and last, partial chunks).
    private var toBytes: [(shape: Shape, primitive: Primitive, src: Memory, dst: Memory)] = []

    /// input (N, C, H, W) Float32 NHWC in units of a u8 step → output (N, C, fH, fW) u8 NHWC:
    /// the interpolated values rounded half to even and saturated to 0…255 by oneDNN's
    /// conversion (the int8 chain's bilinear junction; its input convolution writes in steps).
    public func forward(input: Tensor, output: ByteTensor) {
        precondition(input.layout == .nhwc, "u8 resampling reads NHWC")
        forward(nhwc: input.data, input.shape, output: output)
    }

    /// `forward(input:output:)` of the Float32 NHWC values of `shape` at `source`, which may
    /// be rows held inside a larger buffer (row streaming); neighbours clamp to these rows.
    public func forward(nhwc source: UnsafePointer<Float>, _ shape: Shape, output: ByteTensor) {
        precondition(output.shape == Shape(shape.n, shape.c, factor * shape.h, factor * shape.w), "u8 resampling shapes")
        let plan: (shape: Shape, primitive: Primitive, src: Memory, dst: Memory)
        if let k = toBytes.firstIndex(where: { $0.shape == shape }) {
            plan = toBytes.remove(at: k)
        } else {
            var s = MemoryDesc(shape, .nhwc).raw, d = output.memoryDesc.raw
            var factors: [Float] = [Float(factor), Float(factor)]
            var desc = dnnl_resampling_desc_t()
            dnnlCheck(dnnl_resampling_forward_desc_init(&desc, dnnl_forward_inference, alg, &factors, &s, &d),
                      "dnnl_resampling_forward_desc_init")
            let pd = PrimitiveDesc(&desc, "u8 resampling forward")
            plan = (shape, Primitive(pd), Memory(MemoryDesc(shape, .nhwc)), Memory(output.memoryDesc))
            if toBytes.count == 4 { toBytes.removeLast() }
        }
        toBytes.insert(plan, at: 0)
        plan.primitive.execute([(DNNL_ARG_SRC, plan.src.bind(UnsafeMutableRawPointer(mutating: source))),
                                (DNNL_ARG_DST, plan.dst.bind(UnsafeMutableRawPointer(output.data)))])
    }

    /// oneDNN's implementation of the u8 forward (after the first call).
    public var byteImplementation: String { toBytes.first?.primitive.desc.implementation ?? "-" }

    public func backward(dOutput: Tensor, dInput: Tensor) {
        guard let f = fwd else { preconditionFailure("resampling backward before forward") }
        if bwd == nil {
            var s = dInput.memoryDesc.raw, d = dOutput.memoryDesc.raw
            var factors: [Float] = [Float(factor), Float(factor)]
            var desc = dnnl_resampling_desc_t()
            dnnlCheck(dnnl_resampling_backward_desc_init(&desc, alg, &factors, &s, &d),
                      "dnnl_resampling_backward_desc_init")
            let pd = PrimitiveDesc(&desc, hint: f.0.desc, "resampling backward")
            bwd = (Primitive(pd), Memory(dOutput.memoryDesc), Memory(dInput.memoryDesc))
        }
        let b = bwd!
        b.0.execute([(DNNL_ARG_DIFF_DST, b.1.bind(dOutput.raw)), (DNNL_ARG_DIFF_SRC, b.2.bind(dInput.raw))])
    }
}
