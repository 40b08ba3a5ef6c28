// Hand-written 2×2 max pooling with indices and max-unpooling. All kernels work on the
// [outer][h][w][inner] view shared by every layout (a blocked layout vectorises over inner = its block).

/// Indices of a 2×2 max pooling: for each output element, which of the four window
/// positions (0 top-left, 1 top-right, 2 bottom-left, 3 bottom-right) held the maximum.
public final class PoolIndices {
    public let view: SpatialView     // of the pooled output
    public let storage: UnsafeMutablePointer<UInt8>
    public let count: Int
    public init(outputView: SpatialView) {
        view = outputView
        count = outputView.outer * outputView.planeStride
        storage = .allocate(capacity: max(count, 1))
        storage.initialize(repeating: 0, count: max(count, 1))
    }
    deinit { storage.deallocate() }
}

public enum MaxPool2x2 {
    /// output (N, C, H/2, W/2) = max over 2×2 windows of input (N, C, H, W); records indices.
    /// H and W must be even. input, output same layout.
    public static func forward(input: Tensor, output: Tensor, indices: PoolIndices) {
        let iv = input.spatialView, ov = output.spatialView
        precondition(iv.h == 2 * ov.h && iv.w == 2 * ov.w && iv.outer == ov.outer && iv.inner == ov.inner)
        let src = UncheckedSendable(input.data), dst = UncheckedSendable(output.data)
        let idx = UncheckedSendable(indices.storage)
        parallelFor(ov.outer * ov.h) { range in
            let inner = iv.inner, ow = ov.w, iw = iv.w
            for row in range {
                let o = row / ov.h, y = row % ov.h
                let s0 = src.value + (o * iv.h + 2 * y) * iw * inner
                let s1 = s0 + iw * inner
                let d = dst.value + row * ow * inner
                let ix = idx.value + row * ow * inner
                for x in 0..<ow {
                    let a = s0 + 2 * x * inner, b = s1 + 2 * x * inner
                    let dx = d + x * inner, ii = ix + x * inner
                    for k in 0..<inner {
                        var m = a[k]; var at: UInt8 = 0
                        if a[k + inner] > m { m = a[k + inner]; at = 1 }
                        if b[k] > m { m = b[k]; at = 2 }
                        if b[k + inner] > m { m = b[k + inner]; at = 3 }
                        dx[k] = m; ii[k] = at
                    }
                }
            }
        }
    }

    /// dInput (N, C, H, W): dOutput routed to each window's argmax, zeros elsewhere.
    /// With `accumulate`, adds into dInput instead of overwriting (skip connections).
    public static func backward(dOutput: Tensor, indices: PoolIndices, dInput: Tensor, accumulate: Bool = false) {
        scatter(dOutput.data, dOutput.spatialView, indices, dInput.data, dInput.spatialView, accumulate: accumulate)
    }

    /// Shared by max-pool backward and max-unpool forward: big[2y+dy, 2x+dx] += small[y, x]
    /// at the recorded position.
    static func scatter(_ small: UnsafeMutablePointer<Float>, _ sv: SpatialView, _ indices: PoolIndices,
                        _ big: UnsafeMutablePointer<Float>, _ bv: SpatialView, accumulate: Bool) {
        precondition(bv.h == 2 * sv.h && bv.w == 2 * sv.w && bv.outer == sv.outer && bv.inner == sv.inner)
        precondition(indices.view == sv, "indices come from a pooling of another shape")
        let s = UncheckedSendable(small), b = UncheckedSendable(big), idx = UncheckedSendable(indices.storage)
        parallelFor(sv.outer * sv.h) { range in
            let inner = sv.inner
            for row in range {
                let o = row / sv.h, y = row % sv.h
                let b0 = b.value + (o * bv.h + 2 * y) * bv.w * inner
                let b1 = b0 + bv.w * inner
                let sr = s.value + row * sv.w * inner, ir = idx.value + row * sv.w * inner
                for x in 0..<sv.w {
                    let p0 = b0 + 2 * x * inner, p1 = b1 + 2 * x * inner
                    let sp = sr + x * inner, ip = ir + x * inner
                    for k in 0..<inner {
                        let v = sp[k], at = ip[k]
                        if accumulate {
                            switch at {
                            case 0: p0[k] += v
                            case 1: p0[k + inner] += v
                            case 2: p1[k] += v
                            default: p1[k + inner] += v
                            }
                        } else {
                            p0[k] = at == 0 ? v : 0
                            p0[k + inner] = at == 1 ? v : 0
                            p1[k] = at == 2 ? v : 0
                            p1[k + inner] = at == 3 ? v : 0
                        }
                    }
                }
            }
        }
    }

    /// Gather: small[y, x] = big[2y+dy, 2x+dx] at the recorded position (max-unpool backward).
    static func gather(_ big: UnsafeMutablePointer<Float>, _ bv: SpatialView, _ indices: PoolIndices,
                       _ small: UnsafeMutablePointer<Float>, _ sv: SpatialView) {
        precondition(bv.h == 2 * sv.h && bv.w == 2 * sv.w && bv.outer == sv.outer && bv.inner == sv.inner)
        precondition(indices.view == sv, "indices come from a pooling of another shape")
        let s = UncheckedSendable(small), b = UncheckedSendable(big), idx = UncheckedSendable(indices.storage)
        parallelFor(sv.outer * sv.h) { range in
            let inner = sv.inner
            for row in range {
                let o = row / sv.h, y = row % sv.h
                let b0 = b.value + (o * bv.h + 2 * y) * bv.w * inner
                let b1 = b0 + bv.w * inner
                let sr = s.value + row * sv.w * inner, ir = idx.value + row * sv.w * inner
                for x in 0..<sv.w {
                    let p0 = b0 + 2 * x * inner, p1 = b1 + 2 * x * inner
                    let sp = sr + x * inner, ip = ir + x * inner
                    for k in 0..<inner {
                        switch ip[k] {
                        case 0: sp[k] = p0[k]
                        case 1: sp[k] = p0[k + inner]
                        case 2: sp[k] = p1[k]
                        default: sp[k] = p1[k + inner]
                        }
                    }
                }
            }
        }
    }
}

public enum MaxUnpool2x2 {
    /// output (N, C, 2H, 2W): each input value placed where its pooling found the maximum.
    public static func forward(input: Tensor, indices: PoolIndices, output: Tensor) {
        MaxPool2x2.scatter(input.data, input.spatialView, indices, output.data, output.spatialView, accumulate: false)
    }
    /// dInput (N, C, H, W) = dOutput gathered at the recorded positions.
    public static func backward(dOutput: Tensor, indices: PoolIndices, dInput: Tensor) {
        MaxPool2x2.gather(dOutput.data, dOutput.spatialView, indices, dInput.data, dInput.spatialView)
    }
}
