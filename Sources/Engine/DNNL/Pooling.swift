import CDNNL

/// oneDNN pooling (square window) forward and backward: max (PyTorch's `MaxPool2d`: padding
/// never wins, the gradient goes to the first maximum of each window, through oneDNN's
/// workspace of argmax positions) or exclude-padding average.
public final class PoolingKernel {
    public enum Kind: Sendable { case max, average }
    public let kind: Kind
    public let kernel: Int, stride: Int, padding: Int
    private var key: (Shape, Layout)?
    private var fwd: (Primitive, Memory, Memory)?
    private var bwd: (Primitive, Memory, Memory)?
    /// Max pooling's argmax positions, written by the forward and read by the backward.
    private var workspace: (Memory, ByteBuffer)?

    public init(_ kind: Kind, kernel: Int, stride: Int, padding: Int = 0) {
        self.kind = kind; self.kernel = kernel; self.stride = stride; self.padding = padding
    }
    public func outputShape(_ s: Shape) -> Shape {
        Shape(s.n, s.c, (s.h + 2 * padding - kernel) / stride + 1, (s.w + 2 * padding - kernel) / stride + 1)
    }

    private var algorithm: dnnl_alg_kind_t { kind == .max ? dnnl_pooling_max : dnnl_pooling_avg_exclude_padding }

    /// input (N, C, H, W), output (N, C, H', W'), same layout.
    public func forward(input: Tensor, output: Tensor) {
        if key == nil || key!.0 != input.shape || key!.1 != input.layout {
            key = (input.shape, input.layout); bwd = nil; workspace = nil
            var s = input.memoryDesc.raw, d = output.memoryDesc.raw
            var desc = dnnl_pooling_desc_t()
            dnnlCheck(ts_pooling_forward_desc(&desc, dnnl_forward_training, algorithm, &s, &d, stride, kernel, padding),
                      "dnnl_pooling_forward_desc_init")
            let pd = PrimitiveDesc(&desc, "pooling forward")
            let wsmd = pd.md(dnnl_query_workspace_md)
            if !wsmd.isZero {
                let buf = ByteBuffer(byteCount: wsmd.byteCount)
                workspace = (Memory(wsmd).bind(buf.pointer), buf)
            }
            fwd = (Primitive(pd), Memory(input.memoryDesc), Memory(output.memoryDesc))
        }
        let f = fwd!
        var args = [(DNNL_ARG_SRC, f.1.bind(input.raw)), (DNNL_ARG_DST, f.2.bind(output.raw))]
        if let ws = workspace { args.append((DNNL_ARG_WORKSPACE, ws.0)) }
        f.0.execute(args)
    }

    /// dInput (N, C, H, W) from dOutput (N, C, H', W') of the last forward (overwritten).
    public func backward(dOutput: Tensor, dInput: Tensor) {
        guard let f = fwd else { preconditionFailure("pooling backward before forward") }
        if bwd == nil {
            var s = dInput.memoryDesc.raw, d = dOutput.memoryDesc.raw
            var desc = dnnl_pooling_desc_t()
            dnnlCheck(ts_pooling_backward_desc(&desc, algorithm, &s, &d, stride, kernel, padding),
                      "dnnl_pooling_backward_desc_init")
            let pd = PrimitiveDesc(&desc, hint: f.0.desc, "pooling backward")
            bwd = (Primitive(pd), Memory(dOutput.memoryDesc), Memory(dInput.memoryDesc))
        }
        let b = bwd!
        var args = [(DNNL_ARG_DIFF_DST, b.1.bind(dOutput.raw)), (DNNL_ARG_DIFF_SRC, b.2.bind(dInput.raw))]
        if let ws = workspace { args.append((DNNL_ARG_WORKSPACE, ws.0)) }
        b.0.execute(args)
    }
}
