import CDNNL

/// oneDNN batch normalisation over channels, with scale and shift, optionally fused with ReLU.
/// Training computes batch mean and (biased) variance; inference uses given statistics.
public final class BatchNormKernel {
    public let channels: Int
    public let epsilon: Float
    public let fuseReLU: Bool
    /// Training normalises with the mean and variance passed in (computed over several ranks:
    /// synchronised batch norm) instead of the batch's own; backward then gives γ/σ·dOutput
    /// and the caller adds the terms of the statistics' gradient.
    public var givenStatistics = false

    private final class Plan {
        let shape: Shape, layout: Layout, training: Bool
        var given = false
        let fwd: Primitive
        let src: Memory, dst: Memory, scale: Memory, shift: Memory, mean: Memory, variance: Memory
        let workspace: (Memory, ByteBuffer)?
        var bwd: (prim: Primitive, diffDst: Memory, diffSrc: Memory, diffScale: Memory, diffShift: Memory)?
        init(shape: Shape, layout: Layout, training: Bool, fwd: Primitive, src: Memory, dst: Memory, scale: Memory,
             shift: Memory, mean: Memory, variance: Memory, workspace: (Memory, ByteBuffer)?) {
            self.shape = shape; self.layout = layout; self.training = training; self.fwd = fwd
            self.src = src; self.dst = dst; self.scale = scale; self.shift = shift
            self.mean = mean; self.variance = variance; self.workspace = workspace
        }
    }
    private var plan: Plan?

    public init(channels: Int, epsilon: Float = 1e-5, fuseReLU: Bool = false) {
        self.channels = channels; self.epsilon = epsilon; self.fuseReLU = fuseReLU
    }

    private var flags: UInt32 {
        var f = dnnl_use_scale.rawValue | dnnl_use_shift.rawValue
        if fuseReLU { f |= dnnl_fuse_norm_relu.rawValue }
        return f
    }

    private func ensurePlan(_ input: Tensor, training: Bool) -> Plan {
        if let p = plan, p.shape == input.shape, p.layout == input.layout, p.training == training, p.given == givenStatistics { return p }
        var md = input.memoryDesc.raw
        var desc = dnnl_batch_normalization_desc_t()
        let f = training && !givenStatistics ? flags : flags | dnnl_use_global_stats.rawValue
        dnnlCheck(dnnl_batch_normalization_forward_desc_init(
            &desc, training ? dnnl_forward_training : dnnl_forward_inference, &md, epsilon, f),
                  "dnnl_batch_normalization_forward_desc_init")
        let pd = PrimitiveDesc(&desc, "batch normalization forward")
        var ws: (Memory, ByteBuffer)?
        let wsmd = pd.md(dnnl_query_workspace_md)
        if !wsmd.isZero {
            let buf = ByteBuffer(byteCount: wsmd.byteCount)
            ws = (Memory(wsmd).bind(buf.pointer), buf)
        }
        let v = MemoryDesc.vector(channels)
        let p = Plan(shape: input.shape, layout: input.layout, training: training, fwd: Primitive(pd),
                     src: Memory(input.memoryDesc), dst: Memory(input.memoryDesc), scale: Memory(v), shift: Memory(v),
                     mean: Memory(v), variance: Memory(v), workspace: ws)
        p.given = givenStatistics
        plan = p
        return p
    }

    /// output = [relu](scale · (input − mean) / sqrt(var + eps) + shift).
    /// Training writes the batch mean and biased variance into `mean` and `variance` (C each);
    /// inference reads them. input, output (N, C, H, W) same layout.
    public func forward(input: Tensor, output: Tensor, scale: UnsafeMutablePointer<Float>,
                        shift: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                        variance: UnsafeMutablePointer<Float>, training: Bool) {
        precondition(input.shape.c == channels && output.shape == input.shape && output.layout == input.layout)
        let p = ensurePlan(input, training: training)
        var args: [(Int32, Memory)] = [
            (DNNL_ARG_SRC, p.src.bind(input.raw)), (DNNL_ARG_DST, p.dst.bind(output.raw)),
            (DNNL_ARG_SCALE, p.scale.bind(scale)), (DNNL_ARG_SHIFT, p.shift.bind(shift)),
            (DNNL_ARG_MEAN, p.mean.bind(mean)), (DNNL_ARG_VARIANCE, p.variance.bind(variance)),
        ]
        if let ws = p.workspace { args.append((DNNL_ARG_WORKSPACE, ws.0)) }
        p.fwd.execute(args)
    }

    /// dInput, dScale, dShift from dOutput (gradient of the post-ReLU output when fused).
    /// mean/variance are the batch statistics written by the training forward.
    public func backward(input: Tensor, dOutput: Tensor, dInput: Tensor,
                         scale: UnsafeMutablePointer<Float>, shift: UnsafeMutablePointer<Float>, mean: UnsafeMutablePointer<Float>,
                         variance: UnsafeMutablePointer<Float>,
                         dScale: UnsafeMutablePointer<Float>, dShift: UnsafeMutablePointer<Float>) {
        guard let p = plan, p.training, p.shape == input.shape else { preconditionFailure("batch norm backward needs a training forward") }
        precondition(dOutput.layout == input.layout && dInput.layout == input.layout)
        if p.bwd == nil {
            var md = input.memoryDesc.raw, dmd = input.memoryDesc.raw
            var desc = dnnl_batch_normalization_desc_t()
            let f = p.given ? flags | dnnl_use_global_stats.rawValue : flags
            dnnlCheck(dnnl_batch_normalization_backward_desc_init(&desc, dnnl_backward, &dmd, &md, epsilon, f),
                      "dnnl_batch_normalization_backward_desc_init")
            let pd = PrimitiveDesc(&desc, hint: p.fwd.desc, "batch normalization backward")
            let v = MemoryDesc.vector(channels)
            p.bwd = (Primitive(pd), Memory(input.memoryDesc), Memory(input.memoryDesc), Memory(v), Memory(v))
        }
        let b = p.bwd!
        var args: [(Int32, Memory)] = [
            (DNNL_ARG_SRC, p.src.bind(input.raw)), (DNNL_ARG_DIFF_DST, b.diffDst.bind(dOutput.raw)),
            (DNNL_ARG_SCALE, p.scale.bind(scale)), (DNNL_ARG_SHIFT, p.shift.bind(shift)), (DNNL_ARG_MEAN, p.mean.bind(mean)),
            (DNNL_ARG_VARIANCE, p.variance.bind(variance)), (DNNL_ARG_DIFF_SRC, b.diffSrc.bind(dInput.raw)),
            (DNNL_ARG_DIFF_SCALE, b.diffScale.bind(dScale)), (DNNL_ARG_DIFF_SHIFT, b.diffShift.bind(dShift)),
        ]
        if let ws = p.workspace { args.append((DNNL_ARG_WORKSPACE, ws.0)) }
        b.prim.execute(args)
    }
}
