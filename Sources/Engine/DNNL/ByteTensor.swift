import CDNNL

/// Unsigned 8-bit activations in NHWC order, 64-byte aligned: what int8 convolutions read and
/// write between layers. A value `q` stands for the real value `q · step` (step from calibration;
/// activations after ReLU are non-negative, so no zero point).
public final class ByteTensor: @unchecked Sendable {
    public let shape: Shape
    public let data: UnsafeMutablePointer<UInt8>
    /// The tensor whose memory a view reads (kept alive by it); nil for a tensor owning its memory.
    private let owner: ByteTensor?

    /// Zeros.
    public convenience init(shape: Shape) {
        self.init(uninitialized: shape)
        data.initialize(repeating: 0, count: max(shape.count, 64))
    }

    /// Values undefined until written: for buffers every user writes before reading (row
    /// streaming's scratch and line buffers), so that their pages are first touched by the
    /// writer (often oneDNN's threads), not by a serial zero fill.
    public init(uninitialized shape: Shape) {
        self.shape = shape
        data = UnsafeMutableRawPointer.allocate(byteCount: max(shape.count, 64), alignment: 64).bindMemory(to: UInt8.self, capacity: max(shape.count, 64))
        owner = nil
    }

    /// A view of `shape` on `owner`'s memory from byte `offset` (row streaming reads a line
    /// buffer's held rows in place).
    public init(viewing owner: ByteTensor, offset: Int, shape: Shape) {
        precondition(offset >= 0 && offset + shape.count <= owner.shape.count, "ByteTensor view outside its buffer")
        self.shape = shape
        data = owner.data + offset
        self.owner = owner
    }
    deinit { if owner == nil { UnsafeMutableRawPointer(data).deallocate() } }

    /// Value at (n, c, h, w) (tests and references; hot paths use `data`).
    public subscript(n: Int, c: Int, h: Int, w: Int) -> UInt8 {
        get { data[((n * shape.h + h) * shape.w + w) * shape.c + c] }
        set { data[((n * shape.h + h) * shape.w + w) * shape.c + c] = newValue }
    }

    var memoryDesc: MemoryDesc { MemoryDesc(shape, type: dnnl_u8, tag: dnnl_nhwc) }
}

extension MemoryDesc {
    /// A 4-D descriptor of any data type (`dnnl_memory_desc_init_by_tag`).
    init(_ shape: Shape, type: dnnl_data_type_t, tag: dnnl_format_tag_t) {
        raw = dnnl_memory_desc_t()
        let dims: [Int64] = [Int64(shape.n), Int64(shape.c), Int64(shape.h), Int64(shape.w)]
        dnnlCheck(dnnl_memory_desc_init_by_tag(&raw, 4, dims, type, tag), "dnnl_memory_desc_init_by_tag")
    }
}

extension PrimitiveAttr {
    /// `dnnl_primitive_attr_set_output_scales`: one scale (mask 0) or one per output channel (mask 2).
    func setOutputScales(_ scales: [Float]) {
        dnnlCheck(dnnl_primitive_attr_set_output_scales(handle, Int64(scales.count), scales.count == 1 ? 0 : 1 << 1, scales),
                  "dnnl_primitive_attr_set_output_scales")
    }
    func setPostOps(_ ops: PostOps) {
        dnnlCheck(dnnl_primitive_attr_set_post_ops(handle, ops.handle), "dnnl_primitive_attr_set_post_ops")
    }
}

/// Converts between Float32 tensors and u8 activations with a oneDNN reorder that scales and
/// saturates: q = clamp(round(x / step), 0, 255), and back x = q · step. Cached per shape.
public final class ActivationQuantizer {
    public let step: Float
    private var toBytes: (Shape, Layout, Reorder)?
    private var toFloats: (Shape, Layout, Reorder)?

    public init(step: Float) {
        precondition(step.isFinite && step > 0, "quantization step must be finite and positive")
        self.step = step
    }

    /// output (N, C, H, W) u8 = quantized input (any layout).
    public func quantize(_ input: Tensor, into output: ByteTensor) {
        precondition(input.shape == output.shape, "quantize needs equal shapes")
        if toBytes == nil || toBytes!.0 != input.shape || toBytes!.1 != input.layout {
            toBytes = (input.shape, input.layout, Reorder(from: input.memoryDesc, to: output.memoryDesc, scale: 1 / step))
        }
        toBytes!.2.run(input.raw, UnsafeMutableRawPointer(output.data))
    }

    /// output (any layout) = input · step.
    public func dequantize(_ input: ByteTensor, into output: Tensor) {
        precondition(input.shape == output.shape, "dequantize needs equal shapes")
        if toFloats == nil || toFloats!.0 != output.shape || toFloats!.1 != output.layout {
            toFloats = (output.shape, output.layout, Reorder(from: input.memoryDesc, to: output.memoryDesc, scale: step))
        }
        toFloats!.2.run(UnsafeMutableRawPointer(input.data), output.raw)
    }
}

extension Reorder {
    /// A reorder that multiplies by `scale` on the way (rounding and saturating to the target type).
    convenience init(from: MemoryDesc, to: MemoryDesc, scale: Float) {
        let attr = PrimitiveAttr()
        attr.setOutputScales([scale])
        self.init(from: from, to: to, attr: attr)
    }
}
