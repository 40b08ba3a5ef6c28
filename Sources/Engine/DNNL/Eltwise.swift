import CDNNL

/// oneDNN ReLU forward and backward (backward uses the forward's input).
public final class ReLUKernel {
    private var key: (Shape, Layout)?
    private var fwd: (Primitive, Memory, Memory)?
    private var bwd: (Primitive, Memory, Memory, Memory)?

    public init() {}

    /// output = max(input, 0). input, output (N, C, H, W) same layout.
    public func forward(input: Tensor, output: Tensor) {
        if key == nil || key!.0 != input.shape || key!.1 != input.layout {
            key = (input.shape, input.layout); bwd = nil
            var md = input.memoryDesc.raw
            var d = dnnl_eltwise_desc_t()
            dnnlCheck(dnnl_eltwise_forward_desc_init(&d, dnnl_forward_training, dnnl_eltwise_relu, &md, 0, 0),
                      "dnnl_eltwise_forward_desc_init")
            let pd = PrimitiveDesc(&d, "relu forward")
            fwd = (Primitive(pd), Memory(input.memoryDesc), Memory(input.memoryDesc))
        }
        let f = fwd!
        f.0.execute([(DNNL_ARG_SRC, f.1.bind(input.raw)), (DNNL_ARG_DST, f.2.bind(output.raw))])
    }

    /// dInput = dOutput · [input > 0].
    public func backward(input: Tensor, dOutput: Tensor, dInput: Tensor) {
        guard let f = fwd else { preconditionFailure("relu backward before forward") }
        if bwd == nil {
            var md = input.memoryDesc.raw, dmd = input.memoryDesc.raw
            var d = dnnl_eltwise_desc_t()
            dnnlCheck(dnnl_eltwise_backward_desc_init(&d, dnnl_eltwise_relu, &dmd, &md, 0, 0),
                      "dnnl_eltwise_backward_desc_init")
            let pd = PrimitiveDesc(&d, hint: f.0.desc, "relu backward")
            bwd = (Primitive(pd), Memory(input.memoryDesc), Memory(input.memoryDesc), Memory(input.memoryDesc))
        }
        let b = bwd!
        b.0.execute([(DNNL_ARG_SRC, b.1.bind(input.raw)), (DNNL_ARG_DIFF_DST, b.2.bind(dOutput.raw)),
                     (DNNL_ARG_DIFF_SRC, b.3.bind(dInput.raw))])
    }
}
