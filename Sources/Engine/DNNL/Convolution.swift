import CDNNL
import Core

/// Geometry of a 2-D convolution or transposed convolution (square kernels).
public struct ConvGeometry: Hashable, Sendable {
    public var inputChannels: Int
    public var outputChannels: Int
    public var kernel: Int
    public var stride: Int
    public var padding: Int
    /// PyTorch convention: 1 means no dilation (oneDNN gets `dilation - 1`).
    public var dilation: Int
    public var bias: Bool
    /// ConvTranspose2d: weight stored (I, O, kH, kW) as in PyTorch.
    public var transposed: Bool
    /// Top and bottom padding when it differs from `padding` (inference only): 0 for row
    /// streaming, whose strips bring their neighbours' rows (see `RowStream`).
    public var rowPadding: Int?

    public init(inputChannels: Int, outputChannels: Int, kernel: Int, stride: Int = 1,
                padding: Int = 0, dilation: Int = 1, bias: Bool = true, transposed: Bool = false) {
        self.inputChannels = inputChannels; self.outputChannels = outputChannels
        self.kernel = kernel; self.stride = stride; self.padding = padding
        self.dilation = dilation; self.bias = bias; self.transposed = transposed
    }

    /// Whether inference runs this convolution NHWC (`ConvBNReLU.channelsLast`) on images of
    /// `pixels` pixels (H × W). oneDNN's direct NHWC kernel beats Winograd on a 16-channel block
    /// that is half empty (one 512² image, 2 cores: 8→8 3.9×, 8→16 2.9×; Winograd's transforms
    /// run on one thread per block) and on a full one where oneDNN takes its 4×3 Winograd, from
    /// about 256² (16→16: 2.3× at 256², 2× at 362² and 724²), not its 2×3 below (0.6 against
    /// 0.7 ms at 181²; 0.69 against 0.90 ms per 1024 × 34 strip). From 24 channels on a side
    /// Winograd wins (24→8 1.1×, 32→16 1.5×, 48→16 1.6×). A first layer reading a few bands
    /// (under 8 input channels) writes blocked from the plain bands (oneDNN's direct kernel for
    /// few input channels; 4→8 over the 2048² mosaic's strips: 30 ms, as fast as NHWC's 28),
    /// and the full suite gave wrong rows now and then with NHWC 3→16 layers in every failing case.
    public func runsChannelsLast(pixels: Int) -> Bool {
        guard stride == 1, !transposed, !readsFewBands, max(inputChannels, outputChannels) <= 16 else { return false }
        return min(inputChannels, outputChannels) < 16 || pixels >= 1 << 16
    }

    /// A first layer reading a few bands (under 8 input channels): it reads them plain, in
    /// windows and row streams (`ConvolutionRows.inputLayout`), never NHWC or a mostly empty block.
    public var readsFewBands: Bool { inputChannels < 8 }

    /// Whether `runsChannelsLast(pixels:)` holds for some image size.
    public var mayRunChannelsLast: Bool { runsChannelsLast(pixels: Int.max) }

    /// Shape of the weight parameter: (O, I, k, k), or (I, O, k, k) when transposed.
    public var weightShape: Shape {
        transposed ? Shape(inputChannels, outputChannels, kernel, kernel)
                   : Shape(outputChannels, inputChannels, kernel, kernel)
    }

    public func outputSize(_ size: Int) -> Int {
        let span = dilation * (kernel - 1) + 1
        if transposed { return (size - 1) * stride - 2 * padding + span }
        return (size + 2 * padding - span) / stride + 1
    }
    public func outputShape(_ input: Shape) -> Shape {
        guard let rowPadding else { return Shape(input.n, outputChannels, outputSize(input.h), outputSize(input.w)) }
        var rows = self
        rows.padding = rowPadding
        rows.rowPadding = nil
        return Shape(input.n, outputChannels, rows.outputSize(input.h), outputSize(input.w))
    }

    /// Right padding so oneDNN's shape arithmetic matches `outputSize` exactly.
    func paddingRight(_ inSize: Int) -> Int {
        let span = dilation * (kernel - 1) + 1
        if transposed { return padding }  // stride-exact for the transposed case we support
        let out = outputSize(inSize)
        return (out - 1) * stride + span - inSize - padding
    }

    /// oneDNN's forward descriptor of this (not transposed) convolution with its row padding
    /// (`rowPadding` on top and bottom when set, else `padding`), for any data types: the fp32,
    /// bf16 and int8 kernels build it here alike. `weights` (O, I, k, k) of the wanted type
    /// (usually `any` layout), `bias` a vector or `MemoryDesc.zero`. nil when oneDNN refuses it.
    func forwardDescriptor(_ prop: dnnl_prop_kind_t, _ alg: dnnl_alg_kind_t, src: MemoryDesc, weights: MemoryDesc,
                           bias: MemoryDesc, dst: MemoryDesc) -> dnnl_convolution_desc_t? {
        precondition(!transposed, "row padding is for convolutions")
        var rows = self
        rows.padding = rowPadding ?? padding
        rows.rowPadding = nil
        var s = src.raw, w = weights.raw, b = bias.raw, d = dst.raw
        var desc = dnnl_convolution_desc_t()
        guard ts_conv_forward_desc_rows(&desc, prop, alg, &s, &w, &b, &d, stride, dilation - 1, rows.padding, padding,
                                        rows.paddingRight(Int(src.raw.dims.2)), paddingRight(Int(src.raw.dims.3))) == dnnl_success
        else { return nil }
        return desc
    }
}

/// oneDNN convolution / deconvolution forward, backward-data and backward-weights.
/// Primitives are created on first use for an input shape and layout, then reused; weights are
/// reordered into each primitive's preferred layout only when the parameter's version changes.
public final class ConvolutionKernel {
    public let geometry: ConvGeometry
    /// Which passes may use Winograd (3×3 stride-1 convolutions where oneDNN has it).
    public var winograd: WinogradUse
    /// Inference only: apply ReLU to the output inside the convolution (a oneDNN post-op), e.g.
    /// after folding a batch norm into the weights.
    public var fusedReLU = false
    /// Training in bf16 (`train --precision bf16`): forward, backward-data and backward-weights
    /// read bf16 activations, weights and output gradients (reordered from the Float32 tensors
    /// and Float32 master weights) and write Float32 outputs, input and weight gradients; direct
    /// algorithms (oneDNN 2.6 has no bf16 Winograd). Not for transposed convolutions.
    public var bf16 = false {
        didSet { precondition(!(bf16 && geometry.transposed), "bf16 training is for convolutions") }
    }

    private final class Plan {
        let inShape: Shape, inLayout: Layout, outLayout: Layout, training: Bool
        var bf16 = false
        let fwd: Primitive
        let fwdSrc: Operand, fwdWeights: Operand, fwdDst: ResultOperand
        let biasMemory: Memory?
        var bwdData: (prim: Primitive, weights: Operand, dst: Operand, src: ResultOperand)?
        var bwdWeights: (prim: Primitive, src: Operand, diffDst: Operand, diffWeights: ResultOperand, diffBias: Memory?)?
        init(inShape: Shape, inLayout: Layout, outLayout: Layout, training: Bool, fwd: Primitive,
             fwdSrc: Operand, fwdWeights: Operand, fwdDst: ResultOperand, biasMemory: Memory?) {
            self.inShape = inShape; self.inLayout = inLayout; self.outLayout = outLayout
            self.training = training; self.fwd = fwd; self.fwdSrc = fwdSrc
            self.fwdWeights = fwdWeights; self.fwdDst = fwdDst; self.biasMemory = biasMemory
        }
    }
    private var plan: Plan?
    /// Plans of recent other input shapes (a row stream's first, steady and last strips).
    private var recentPlans: [Plan] = []

    public init(_ geometry: ConvGeometry, winograd: WinogradUse = Runtime.winograd) {
        self.geometry = geometry
        self.winograd = winograd
    }

    /// Algorithms to try in order for a pass.
    private func algorithms(weightsPass: Bool) -> [dnnl_alg_kind_t] {
        if geometry.transposed { return [dnnl_deconvolution_direct] }
        if bf16 { return [dnnl_convolution_direct] }
        let use = weightsPass ? winograd != .off : winograd == .all
        return use ? [dnnl_convolution_winograd, dnnl_convolution_direct] : [dnnl_convolution_direct]
    }

    private var deconv: Int32 { geometry.transposed ? 1 : 0 }
    /// What a primitive reads for an activation or gradient: bf16 (any layout) in bf16 training,
    /// else `user`, the tensor's own Float32 descriptor.
    private func readDesc(_ shape: Shape, _ user: MemoryDesc) -> MemoryDesc {
        bf16 ? MemoryDesc(shape, type: dnnl_bf16, tag: dnnl_format_tag_any) : user
    }
    /// What a primitive reads for the weights (any layout).
    private var weightsDesc: MemoryDesc {
        let shape = Shape(geometry.outputChannels, geometry.inputChannels, geometry.kernel, geometry.kernel)
        return bf16 ? MemoryDesc(shape, type: dnnl_bf16, tag: dnnl_format_tag_any) : MemoryDesc.any(shape)
    }
    private var userWeightsDesc: MemoryDesc {
        let g = geometry
        let logical = Shape(g.outputChannels, g.inputChannels, g.kernel, g.kernel)
        return MemoryDesc(logical, tag: g.transposed ? dnnl_iohw : dnnl_oihw)
    }
    private func forwardDesc(_ prop: dnnl_prop_kind_t, _ src: MemoryDesc, _ dst: MemoryDesc) -> PrimitiveDesc {
        let g = geometry
        var s = src.raw, d = dst.raw
        var w = weightsDesc.raw
        var b = g.bias ? MemoryDesc.vector(g.outputChannels).raw : MemoryDesc.zero.raw
        for alg in algorithms(weightsPass: false) {
            var desc = dnnl_convolution_desc_t()
            if g.rowPadding != nil {
                guard var rowsDesc = g.forwardDescriptor(prop, alg, src: src, weights: MemoryDesc(raw: w), bias: MemoryDesc(raw: b), dst: dst)
                else { continue }
                if let pd = PrimitiveDesc.attempt(&rowsDesc, attr: fusedReLU ? .withReLU() : nil) { return pd }
                continue
            }
            guard ts_conv_forward_desc(deconv, &desc, prop, alg, &s, &w, &b, &d, g.stride, g.dilation - 1, g.padding,
                                       g.paddingRight(Int(src.raw.dims.2))) == dnnl_success else { continue }
            if let pd = PrimitiveDesc.attempt(&desc, attr: fusedReLU ? .withReLU() : nil) { return pd }
        }
        fatalError("oneDNN: no convolution forward implementation for \(g)")
    }

    private func makePlan(input: Tensor, outLayout: Layout, training: Bool) -> Plan {
        let g = geometry
        precondition(input.shape.c == g.inputChannels, "conv expects \(g.inputChannels) input channels, got \(input.shape)")
        let outShape = g.outputShape(input.shape)
        precondition(!(training && g.rowPadding != nil), "row padding is for inference only")
        precondition(!(fusedReLU && training), "a fused ReLU is for inference only (its backward is not computed)")
        let prop = training ? dnnl_forward_training : dnnl_forward_inference
        var pd = forwardDesc(prop, readDesc(input.shape, input.memoryDesc), MemoryDesc(outShape, outLayout))
        if pd.isReference { pd = forwardDesc(prop, readDesc(input.shape, .any(input.shape)), .any(outShape)) }
        let plan = Plan(inShape: input.shape, inLayout: input.layout, outLayout: outLayout, training: training,
                    fwd: Primitive(pd),
                    fwdSrc: Operand(user: input.memoryDesc, wanted: pd.md(dnnl_query_src_md)),
                    fwdWeights: weightsOperand(wanted: pd.md(dnnl_query_weights_md)),
                    fwdDst: ResultOperand(produced: pd.md(dnnl_query_dst_md), user: MemoryDesc(outShape, outLayout)),
                    biasMemory: g.bias ? Memory(MemoryDesc.vector(g.outputChannels)) : nil)
        plan.bf16 = bf16
        return plan
    }

    /// The forward weights in `wanted`'s layout, shared by every plan that wants it (a row
    /// stream's first, steady and last strips): one reordered copy, not one per plan (R1's
    /// Winograd-transformed 512-channel weights are 38 MB each).
    private func weightsOperand(wanted: MemoryDesc) -> Operand {
        let plans = (plan.map { [$0] } ?? []) + recentPlans
        return plans.first { $0.fwdWeights.memory.desc == wanted }?.fwdWeights ?? Operand(user: userWeightsDesc, wanted: wanted)
    }

    private func weights(_ op: Operand, _ p: Parameter) -> Memory {
        if op.needsReorder {
            if op.version != p.version { _ = op.prepare(p.value.raw); op.version = p.version }
            return op.memory
        }
        return op.memory.bind(p.value.raw)
    }

    /// Scratch memory oneDNN asked for, in bytes, per created primitive (for profiles).
    public var scratchpadBytes: [Int] {
        guard let plan else { return [] }
        return [plan.fwd.desc.md(dnnl_query_scratchpad_md).byteCount,
                plan.bwdData?.prim.desc.md(dnnl_query_scratchpad_md).byteCount ?? 0,
                plan.bwdWeights?.prim.desc.md(dnnl_query_scratchpad_md).byteCount ?? 0]
    }

    /// Reordered copies of the weights that the forward plans hold (for profiles and tests):
    /// plans of other input shapes share one.
    public var forwardWeightCopies: Int {
        let operands = ((plan.map { [$0] } ?? []) + recentPlans).map(\.fwdWeights).filter(\.needsReorder)
        return Set(operands.map(ObjectIdentifier.init)).count
    }

    /// The cached plans' precisions (bf16 or not), current first (for tests and profiles).
    public var cachedPlanPrecisions: [Bool] { ((plan.map { [$0] } ?? []) + recentPlans).map(\.bf16) }

    /// Drops the cached plans for input `shape` and `layout` in the precision a per-layer choice
    /// rejected (`bf16`; nil: either): their primitives, reordered weights and bf16 buffers.
    /// Returns how many were dropped.
    @discardableResult
    public func releasePlans(inputShape shape: Shape, layout: Layout, bf16: Bool?) -> Int {
        func loses(_ p: Plan) -> Bool { p.inShape == shape && p.inLayout == layout && (bf16 == nil || p.bf16 == bf16) }
        let before = cachedPlanPrecisions.count
        recentPlans.removeAll(where: loses)
        if let current = plan, loses(current) { plan = recentPlans.isEmpty ? nil : recentPlans.removeFirst() }
        return before - cachedPlanPrecisions.count
    }

    /// Implementation names chosen by oneDNN (for profiles): forward, backward-data, backward-weights.
    public var implementations: [String] {
        guard let plan else { return [] }
        return [plan.fwd.desc.implementation, plan.bwdData?.prim.desc.implementation ?? "-",
                plan.bwdWeights?.prim.desc.implementation ?? "-"]
    }

    /// output = conv(input, weight) + bias.
    /// input (N, I, H, W) any layout; weight (O, I, k, k); output (N, O, H', W') in its own layout.
    public func forward(input: Tensor, weight: Parameter, bias: Parameter?, output: Tensor, training: Bool) {
        precondition(output.shape == geometry.outputShape(input.shape), "conv output shape")
        func fits(_ p: Plan) -> Bool {
            p.inShape == input.shape && p.inLayout == input.layout && p.outLayout == output.layout && p.training == training
                && p.bf16 == bf16
        }
        if let current = plan, !fits(current) {
            recentPlans.insert(current, at: 0)
            plan = recentPlans.firstIndex(where: fits).map { recentPlans.remove(at: $0) }
            if recentPlans.count > 3 { recentPlans.removeLast() }
        }
        if plan == nil { plan = makePlan(input: input, outLayout: output.layout, training: training) }
        let p = plan!
        var args: [(Int32, Memory)] = [
            (DNNL_ARG_SRC, p.fwdSrc.prepare(input.raw)),
            (DNNL_ARG_WEIGHTS, weights(p.fwdWeights, weight)),
            (DNNL_ARG_DST, p.fwdDst.target(output.raw)),
        ]
        if let bm = p.biasMemory, let bias { args.append((DNNL_ARG_BIAS, bm.bind(bias.value.raw))) }
        p.fwd.execute(args)
        p.fwdDst.finish(output.raw)
    }

    /// dInput = conv_backward_data(dOutput, weight). Call after `forward` for the same shapes.
    public func backwardData(dOutput: Tensor, weight: Parameter, dInput: Tensor) {
        guard let p = plan, p.training else { preconditionFailure("conv backward needs a training forward first") }
        precondition(dInput.shape == p.inShape)
        if p.bwdData == nil {
            var pd = backwardDataDesc(diffSrc: dInput.memoryDesc, diffDst: readDesc(dOutput.shape, dOutput.memoryDesc), hint: p.fwd.desc)
            if pd.isReference { pd = backwardDataDesc(diffSrc: .any(dInput.shape), diffDst: readDesc(dOutput.shape, .any(dOutput.shape)), hint: p.fwd.desc) }
            p.bwdData = (Primitive(pd), Operand(user: userWeightsDesc, wanted: pd.md(dnnl_query_weights_md)),
                         Operand(user: dOutput.memoryDesc, wanted: pd.md(dnnl_query_diff_dst_md)),
                         ResultOperand(produced: pd.md(dnnl_query_diff_src_md), user: dInput.memoryDesc))
        }
        let b = p.bwdData!
        b.prim.execute([(DNNL_ARG_DIFF_DST, b.dst.prepare(dOutput.raw)),
                        (DNNL_ARG_WEIGHTS, weights(b.weights, weight)),
                        (DNNL_ARG_DIFF_SRC, b.src.target(dInput.raw))])
        b.src.finish(dInput.raw)
    }

    private func backwardDataDesc(diffSrc: MemoryDesc, diffDst: MemoryDesc, hint: PrimitiveDesc) -> PrimitiveDesc {
        let g = geometry
        var ds = diffSrc.raw, dd = diffDst.raw, w = weightsDesc.raw
        for alg in algorithms(weightsPass: false) {
            var desc = dnnl_convolution_desc_t()
            guard ts_conv_backward_data_desc(deconv, &desc, alg, &ds, &w, &dd, g.stride, g.dilation - 1,
                                             g.padding, g.paddingRight(Int(diffSrc.raw.dims.2))) == dnnl_success else { continue }
            if let pd = PrimitiveDesc.attempt(&desc, hint: hint) { return pd }
        }
        fatalError("oneDNN: no convolution backward-data implementation for \(g)")
    }

    /// weight.grad = dL/dW, bias.grad = dL/db (overwritten). input is the forward's input.
    public func backwardWeights(input: Tensor, dOutput: Tensor, weight: Parameter, bias: Parameter?) {
        guard let p = plan, p.training else { preconditionFailure("conv backward needs a training forward first") }
        if p.bwdWeights == nil {
            let g = geometry
            // Activations as `any` too: for a few-channel first layer oneDNN's fast kernel wants
            // other layouts than the network keeps (nChw8c); the operands reorder when needed.
            var s = readDesc(p.inShape, MemoryDesc.any(p.inShape)).raw
            var dd = readDesc(dOutput.shape, MemoryDesc.any(dOutput.shape)).raw
            var dw = MemoryDesc.any(Shape(g.outputChannels, g.inputChannels, g.kernel, g.kernel)).raw
            var db = g.bias ? MemoryDesc.vector(g.outputChannels).raw : MemoryDesc.zero.raw
            // Winograd explicitly: `auto` declines it at batch ≤ 8 on 2 cores, yet it makes this
            // pass 1.4-3.4× faster at R1's shapes.
            let algs = algorithms(weightsPass: true)
            var chosen: PrimitiveDesc?
            for alg in algs where chosen == nil {
                var desc = dnnl_convolution_desc_t()
                guard ts_conv_backward_weights_desc(deconv, &desc, alg, &s, &dw, &db, &dd, g.stride, g.dilation - 1,
                                                    g.padding, g.paddingRight(p.inShape.h)) == dnnl_success else { continue }
                chosen = PrimitiveDesc.attempt(&desc, hint: p.fwd.desc)
            }
            guard let pd = chosen else { fatalError("oneDNN: no convolution backward-weights implementation for \(g)") }
            p.bwdWeights = (Primitive(pd),
                            Operand(user: input.memoryDesc, wanted: pd.md(dnnl_query_src_md)),
                            Operand(user: dOutput.memoryDesc, wanted: pd.md(dnnl_query_diff_dst_md)),
                            ResultOperand(produced: pd.md(dnnl_query_diff_weights_md), user: userWeightsDesc),
                            g.bias ? Memory(MemoryDesc.vector(g.outputChannels)) : nil)
        }
        let b = p.bwdWeights!
        var args: [(Int32, Memory)] = [
            (DNNL_ARG_SRC, b.src.prepare(input.raw)),
            (DNNL_ARG_DIFF_DST, b.diffDst.prepare(dOutput.raw)),
            (DNNL_ARG_DIFF_WEIGHTS, b.diffWeights.target(weight.grad.raw)),
        ]
        if let m = b.diffBias, let bias { args.append((DNNL_ARG_DIFF_BIAS, m.bind(bias.grad.raw))) }
        b.prim.execute(args)
        b.diffWeights.finish(weight.grad.raw)
    }
}
