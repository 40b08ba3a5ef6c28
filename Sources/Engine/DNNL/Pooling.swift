import CDNNL

/// oneDNN average pooling (square window, exclude-padding average) forward and backward.
public final class AvgPoolKernel {
    public let kernel: Int, stride: Int, padding: Int
    private var key: (Shape, Layout)?
    private var fwd: (Primitive, Memory, Memory)?
    private var bwd: (Primitive, Memory, Memory)?

    public init(kernel: Int, stride: Int, padding: Int = 0) {
        self.kernel = kernel; self.stride = stride; self.padding = padding
    }
    public func outputShape(_ s: Shape) -> Shape {
        Shape(s.n, s.c, (s.h + 2 * padding - kernel) / stride + 1, (s.w + 2 * padding - kernel) / stride + 1)
    }

    /// input (N, C, H, W), output (N, C, H', W'), same layout.
    public func forward(input: Tensor, output: Tensor) {
        if key == nil || key!.0 != input.shape || key!.1 != input.layout {
            key = (input.shape, input.layout); bwd = nil
            var s = input.memoryDesc.raw, d = output.memoryDesc.raw
            var desc = dnnl_pooling_desc_t()
            dnnlCheck(ts_pooling_forward_desc(&desc, dnnl_forward_training, dnnl_pooling_avg_exclude_padding, &s, &d,
                                              stride, kernel, padding), "dnnl_pooling_forward_desc_init")
            let pd = PrimitiveDesc(&desc, "avg pooling forward")
            fwd = (Primitive(pd), Memory(input.memoryDesc), Memory(output.memoryDesc))
        }
        let f = fwd!
        f.0.execute([(DNNL_ARG_SRC, f.1.bind(input.raw)), (DNNL_ARG_DST, f.2.bind(output.raw))])
    }

    public func backward(dOutput: Tensor, dInput: Tensor) {
        guard let f = fwd else { preconditionFailure("pooling backward before forward") }
        if bwd == nil {
            var s = dInput.memoryDesc.raw, d = dOutput.memoryDesc.raw
            var desc = dnnl_pooling_desc_t()
            dnnlCheck(ts_pooling_backward_desc(&desc, dnnl_pooling_avg_exclude_padding, &s, &d, stride, kernel, padding),
                      "dnnl_pooling_backward_desc_init")
            let pd = PrimitiveDesc(&desc, hint: f.0.desc, "avg pooling backward")
            bwd = (Primitive(pd), Memory(dOutput.memoryDesc), Memory(dInput.memoryDesc))
        }
        let b = bwd!
        b.0.execute([(DNNL_ARG_DIFF_DST, b.1.bind(dOutput.raw)), (DNNL_ARG_DIFF_SRC, b.2.bind(dInput.raw))])
    }
}
