import CDNNL

/// A head's 1×1 convolution C → K (K a few classes) from Float32 NHWC features straight into
/// NCHW logits, as one oneDNN matmul: per image, logits (K × HW) = W (K × C) · Xᵀ + b, where
/// X (HW × C) is the image's NHWC pixels read transposed (strides, no copy; oneDNN's
/// `brg:avx512_core` matmul), then the bias added per class plane. The int8 chain's
/// last decoder writes NHWC; a 1×1 convolution there writes NHWC with K = 3 channels (a
/// padded, strided output) that then needs a reorder into NCHW.
public final class PointwiseLogits {
    private struct Plan {
        let shape: Shape, primitive: Primitive, weights: Memory, features: Memory, logits: Memory
    }
    private var plan: Plan?

    public init() {}

    /// oneDNN's implementation (after the first call), e.g. "gemm:jit".
    public var implementation: String { plan?.primitive.desc.implementation ?? "-" }

    /// logits (N, K, H, W) NCHW = conv1×1(features (N, C, H, W) NHWC; weight (K, C, 1, 1), bias (K)).
    public func forward(features x: Tensor, weight: Parameter, bias: Parameter, into logits: Tensor) {
        let s = x.shape, k = weight.value.shape.n
        precondition(x.layout == .nhwc && logits.layout == .nchw && logits.shape == Shape(s.n, k, s.h, s.w)
                     && weight.value.shape == Shape(k, s.c, 1, 1) && weight.value.layout == .nchw && bias.value.shape.count == k,
                     "pointwise logits: NHWC \(s) × (\(k), \(s.c)) → NCHW")
        if plan?.shape != s { plan = Self.makePlan(s, classes: k) }
        let p = plan!
        p.primitive.execute([(DNNL_ARG_SRC, p.weights.bind(weight.value.raw)), (DNNL_ARG_WEIGHTS, p.features.bind(x.raw)),
                             (DNNL_ARG_DST, p.logits.bind(logits.raw))])
        // oneDNN 2.6's fast matmul adds a bias per column only; here it is per row (class).
        let plane = s.h * s.w, y = logits.data, b = bias.value.data
        for image in 0..<s.n {
            for c in 0..<k {
                let row = y + (image * k + c) * plane, v = b[c]
                for i in 0..<plane { row[i] += v }
            }
        }
    }

    private static func makePlan(_ s: Shape, classes k: Int) -> Plan {
        let (n, c, hw, k) = (Int64(s.n), Int64(s.c), Int64(s.h * s.w), Int64(k))
        let w = strided([1, k, c], [k * c, c, 1])         // W (K × C), shared by the images
        let x = strided([n, c, hw], [hw * c, 1, c])       // Xᵀ (C × HW) per image
        let y = strided([n, k, hw], [k * hw, hw, 1])          // NCHW logits
        var desc = dnnl_matmul_desc_t()
        var (wr, xr, yr) = (w.raw, x.raw, y.raw)
        dnnlCheck(dnnl_matmul_desc_init(&desc, &wr, &xr, nil, &yr), "dnnl_matmul_desc_init")
        guard let pd = PrimitiveDesc.attempt(&desc) else { fatalError("oneDNN: no matmul for pointwise logits \(s) → \(k)") }
        return Plan(shape: s, primitive: Primitive(pd), weights: Memory(w), features: Memory(x), logits: Memory(y))
    }

    private static func strided(_ dims: [Int64], _ strides: [Int64]) -> MemoryDesc {
        var md = dnnl_memory_desc_t()
        dnnlCheck(dnnl_memory_desc_init_by_strides(&md, Int32(dims.count), dims, dnnl_f32, strides), "dnnl_memory_desc_init_by_strides")
        return MemoryDesc(raw: md)
    }
}
