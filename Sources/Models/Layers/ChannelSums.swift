import Engine

/// Per-channel sums and per-channel affine updates in any layout, for synchronised batch norm
/// (`BatchNorm2d.crossReplicaSum`): the statistics of a rank's batch go out as sums (Double),
/// and the gradient terms of the global statistics come back as dx += a[c] + b[c]·x.
enum ChannelSums {
    /// [Σx (C), Σx² (C), count]: x (N, C, H, W) in its layout (blocked padding excluded).
    static func moments(_ x: Tensor) -> [Double] {
        let C = x.shape.c
        var out = [Double](repeating: 0, count: 2 * C + 1)
        forEachRun(x) { offset, channel, count in
            var s = 0.0, q = 0.0
            for i in 0..<count {
                let v = Double(x.data[offset + i * stride(x)])
                s += v
                q += v * v
            }
            out[channel] += s
            out[C + channel] += q
        }
        out[2 * C] = Double(x.shape.n * x.shape.h * x.shape.w)
        return out
    }

    /// dx[i] += a[c] + b[c] · x[i] for every element i of channel c; dx and x share shape and layout.
    static func addAffine(to dx: Tensor, of x: Tensor, a: [Double], b: [Double]) {
        precondition(dx.shape == x.shape && dx.layout == x.layout)
        forEachRun(x) { offset, channel, count in
            let ac = Float(a[channel]), bc = Float(b[channel]), step = stride(x)
            for i in 0..<count {
                let j = offset + i * step
                dx.data[j] += ac + bc * x.data[j]
            }
        }
    }

    /// Distance between consecutive elements of one channel's run.
    private static func stride(_ x: Tensor) -> Int {
        switch x.layout {
        case .nchw: 1
        case .nhwc: x.shape.c
        case .nChw16c, .nChw8c: x.layout.channelBlock
        }
    }

    /// Calls body(first element, channel, element count) for runs of one channel's elements
    /// spaced `stride(x)` apart.
    private static func forEachRun(_ x: Tensor, _ body: (Int, Int, Int) -> Void) {
        let s = x.shape, hw = s.h * s.w
        switch x.layout {
        case .nchw:
            for n in 0..<s.n { for c in 0..<s.c { body((n * s.c + c) * hw, c, hw) } }
        case .nhwc:
            for n in 0..<s.n { for c in 0..<s.c { body(n * hw * s.c + c, c, hw) } }
        case .nChw16c, .nChw8c:
            let b = x.layout.channelBlock, blocks = x.paddedChannels / b
            for n in 0..<s.n {
                for cb in 0..<blocks {
                    for k in 0..<b where cb * b + k < s.c { body((n * blocks + cb) * hw * b + k, cb * b + k, hw) }
                }
            }
        }
    }
}
