// Hand-written memory-bound kernels: channel concat/split, add, dropout, softmax.

public enum ChannelConcat {
    /// output (N, C1+C2+…, H, W) = [inputs...] along channels. All tensors share one layout;
    /// in a blocked layout every input but the last must have a multiple of 16 channels, so
    /// each input is one contiguous slab per image (a plain copy, no reorder).
    public static func forward(inputs: [Tensor], output: Tensor) {
        let slabs = check(inputs, output)
        let out = UncheckedSendable(output.data)
        let ptrs = UncheckedSendable(inputs.map { $0.data })
        let total = slabs.reduce(0, +)
        parallelFor(output.shape.n * inputs.count) { range in
            for job in range {
                let n = job / slabs.count, t = job % slabs.count
                let before = slabs[..<t].reduce(0, +)
                (out.value + n * total + before).update(from: ptrs.value[t] + n * slabs[t], count: slabs[t])
            }
        }
    }

    /// The backward of concat: splits dOutput into the per-input gradients.
    public static func backward(dOutput: Tensor, dInputs: [Tensor]) {
        let slabs = check(dInputs, dOutput)
        let src = UncheckedSendable(dOutput.data)
        let ptrs = UncheckedSendable(dInputs.map { $0.data })
        let total = slabs.reduce(0, +)
        parallelFor(dOutput.shape.n * dInputs.count) { range in
            for job in range {
                let n = job / slabs.count, t = job % slabs.count
                let before = slabs[..<t].reduce(0, +)
                (ptrs.value[t] + n * slabs[t]).update(from: src.value + n * total + before, count: slabs[t])
            }
        }
    }

    /// Copies `part` into channels [offset, offset + part.c) of every image of `whole`
    /// (or back out with `extract`). offset must be a multiple of the layout's block.
    public static func copy(_ part: Tensor, channelOffset offset: Int, of whole: Tensor, extract: Bool = false) {
        precondition(part.layout == whole.layout && whole.layout != .nhwc && offset % whole.layout.channelBlock == 0)
        precondition(part.shape.n == whole.shape.n && part.shape.h == whole.shape.h && part.shape.w == whole.shape.w
                     && offset + part.shape.c <= whole.shape.c, "channel slice shapes")
        let hw = whole.shape.h * whole.shape.w
        let slab = part.paddedChannels * hw, wholeImage = whole.paddedChannels * hw
        let p = UncheckedSendable(part.data), w = UncheckedSendable(whole.data + offset * hw)
        parallelFor(part.shape.n) { r in
            for n in r {
                if extract { (p.value + n * slab).update(from: w.value + n * wholeImage, count: slab) }
                else { (w.value + n * wholeImage).update(from: p.value + n * slab, count: slab) }
            }
        }
    }

    public static func outputShape(_ inputs: [Shape]) -> Shape {
        var s = inputs[0]
        s.c = inputs.reduce(0) { $0 + $1.c }
        return s
    }

    private static func check(_ parts: [Tensor], _ whole: Tensor) -> [Int] {
        let layout = whole.layout
        precondition(layout != .nhwc, "channel concat supports nchw and blocked layouts")
        precondition(whole.shape == outputShape(parts.map(\.shape)), "concat shapes")
        for (i, p) in parts.enumerated() {
            precondition(p.layout == layout, "concat inputs must share the output's layout")
            if i < parts.count - 1 { precondition(p.shape.c % layout.channelBlock == 0, "blocked concat needs whole channel blocks") }
        }
        return parts.map { $0.paddedChannels * $0.shape.h * $0.shape.w }
    }
}

public enum Elementwise {
    /// output = a + b (same shape and layout).
    public static func add(_ a: Tensor, _ b: Tensor, into output: Tensor) {
        precondition(a.matches(b.shape, b.layout) && output.matches(a.shape, a.layout))
        let pa = UncheckedSendable(a.data), pb = UncheckedSendable(b.data), po = UncheckedSendable(output.data)
        parallelFor(a.physicalCount, minChunk: 1 << 14) { r in
            for i in r { po.value[i] = pa.value[i] + pb.value[i] }
        }
    }
    /// a += b.
    public static func accumulate(_ b: Tensor, into a: Tensor) { add(a, b, into: a) }

    /// output = max(a + b, 0): a residual block's sum and ReLU in one pass (same shape and layout).
    public static func addReLU(_ a: Tensor, _ b: Tensor, into output: Tensor) {
        precondition(a.matches(b.shape, b.layout) && output.matches(a.shape, a.layout))
        let pa = UncheckedSendable(a.data), pb = UncheckedSendable(b.data), po = UncheckedSendable(output.data)
        parallelFor(a.physicalCount, minChunk: 1 << 14) { r in
            for i in r { po.value[i] = max(pa.value[i] + pb.value[i], 0) }
        }
    }

    /// dInput = dOutput · [output > 0]: the ReLU's backward from its output (which is positive
    /// exactly where its input was).
    public static func reluBackward(output: Tensor, dOutput: Tensor, into dInput: Tensor) {
        precondition(output.matches(dOutput.shape, dOutput.layout) && dInput.matches(output.shape, output.layout))
        let py = UncheckedSendable(output.data), pd = UncheckedSendable(dOutput.data), pi = UncheckedSendable(dInput.data)
        parallelFor(output.physicalCount, minChunk: 1 << 14) { r in
            for i in r { pi.value[i] = py.value[i] > 0 ? pd.value[i] : 0 }
        }
    }

    /// output = input · mask where mask holds 0 or 1/(1−p) per element.
    public static func multiply(_ input: Tensor, _ mask: UnsafeMutablePointer<Float>, into output: Tensor) {
        let pa = UncheckedSendable(input.data), pm = UncheckedSendable(mask), po = UncheckedSendable(output.data)
        parallelFor(input.physicalCount, minChunk: 1 << 14) { r in
            for i in r { po.value[i] = pa.value[i] * pm.value[i] }
        }
    }
}

/// Softmax and log-softmax over channels of plain NCHW tensors (used at the network's edge).
public enum ChannelSoftmax {
    /// output[n, :, p] = softmax(input[n, :, p]) (or log-softmax).
    public static func forward(input: Tensor, output: Tensor, log: Bool = false) {
        precondition(input.layout == .nchw && output.matches(input.shape, .nchw))
        let s = input.shape, hw = s.h * s.w
        let x = UncheckedSendable(input.data), y = UncheckedSendable(output.data)
        parallelFor(s.n * hw, minChunk: 1024) { range in
            for job in range {
                let n = job / hw, p = job % hw
                let base = n * s.c * hw + p
                var m = -Float.infinity
                for c in 0..<s.c { m = max(m, x.value[base + c * hw]) }
                var sum: Float = 0
                for c in 0..<s.c { sum += _exp(x.value[base + c * hw] - m) }
                let lse = m + _log(sum)
                for c in 0..<s.c {
                    let v = x.value[base + c * hw] - lse
                    y.value[base + c * hw] = log ? v : _exp(v)
                }
            }
        }
    }

    /// dInput from dOutput and the forward's output:
    /// softmax: dx = y · (dy − Σ y·dy); log-softmax: dx = dy − exp(y) · Σ dy.
    public static func backward(output: Tensor, dOutput: Tensor, dInput: Tensor, log: Bool = false) {
        let s = output.shape, hw = s.h * s.w
        let y = UncheckedSendable(output.data), dy = UncheckedSendable(dOutput.data), dx = UncheckedSendable(dInput.data)
        parallelFor(s.n * hw, minChunk: 1024) { range in
            for job in range {
                let n = job / hw, p = job % hw
                let base = n * s.c * hw + p
                var dot: Float = 0
                for c in 0..<s.c {
                    let i = base + c * hw
                    dot += log ? dy.value[i] : y.value[i] * dy.value[i]
                }
                for c in 0..<s.c {
                    let i = base + c * hw
                    dx.value[i] = log ? dy.value[i] - _exp(y.value[i]) * dot : y.value[i] * (dy.value[i] - dot)
                }
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
@usableFromInline func _exp(_ x: Float) -> Float { expf(x) }
@usableFromInline func _log(_ x: Float) -> Float { logf(x) }
#else
import Darwin
@usableFromInline func _exp(_ x: Float) -> Float { expf(x) }
@usableFromInline func _log(_ x: Float) -> Float { logf(x) }
#endif

/// Copies a spatial sub-window of every channel plane: `output` (N, C, h, w) = `input`
/// (N, C, H, W) rows [row, row + h), columns [column, column + w). Same layout.
public enum SpatialCrop {
    public static func copy(_ input: Tensor, row: Int, column: Int, into output: Tensor) {
        precondition(input.layout == output.layout && input.shape.n == output.shape.n
                     && input.shape.c == output.shape.c, "crop shapes \(input.shape) → \(output.shape)")
        precondition(row >= 0 && column >= 0 && row + output.shape.h <= input.shape.h && column + output.shape.w <= input.shape.w,
                     "crop window outside the tensor")
        let src = input.spatialView, dst = output.spatialView
        let s = UncheckedSendable(input.data), d = UncheckedSendable(output.data)
        let rowLength = dst.w * dst.inner, h = dst.h
        parallelFor(dst.outer * h, minChunk: 16) { r in
            for job in r {
                let o = job / h, y = job % h
                (d.value + dst.row(o, y)).update(from: s.value + src.row(o, row + y) + column * src.inner, count: rowLength)
            }
        }
    }
}
