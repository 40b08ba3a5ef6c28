/// Naive pooling, upsampling, unpooling, concatenation and elementwise kernels.
public enum ReferenceSpatial {
    /// 2×2 max pooling, stride 2; indices 0…3 (row-major in the window), first maximum wins.
    public static func maxPool2x2(_ x: RefTensor) -> (y: RefTensor, indices: [Int]) {
        let s = x.shape
        var y = RefTensor(zeros: Shape(s.n, s.c, s.h / 2, s.w / 2))
        var idx = [Int](repeating: 0, count: y.shape.count)
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<s.h / 2 { for j in 0..<s.w / 2 {
            var best = -Double.infinity, at = 0
            for t in 0..<4 where x[n, c, 2 * i + t / 2, 2 * j + t % 2] > best { best = x[n, c, 2 * i + t / 2, 2 * j + t % 2]; at = t }
            y[n, c, i, j] = best; idx[y.index(n, c, i, j)] = at
        } } } }
        return (y, idx)
    }
    /// Max-unpooling (also max-pool backward): y (N, C, 2H, 2W) with x at the recorded positions.
    public static func maxUnpool2x2(_ x: RefTensor, _ indices: [Int]) -> RefTensor {
        let s = x.shape
        var y = RefTensor(zeros: Shape(s.n, s.c, 2 * s.h, 2 * s.w))
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<s.h { for j in 0..<s.w {
            let t = indices[x.index(n, c, i, j)]
            y[n, c, 2 * i + t / 2, 2 * j + t % 2] = x[n, c, i, j]
        } } } }
        return y
    }
    /// Max-unpool backward (also what max-pool forward does with fixed indices): gather.
    public static func maxUnpool2x2Backward(_ dy: RefTensor, _ indices: [Int]) -> RefTensor {
        let s = dy.shape
        var dx = RefTensor(zeros: Shape(s.n, s.c, s.h / 2, s.w / 2))
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<s.h / 2 { for j in 0..<s.w / 2 {
            let t = indices[dx.index(n, c, i, j)]
            dx[n, c, i, j] = dy[n, c, 2 * i + t / 2, 2 * j + t % 2]
        } } } }
        return dx
    }

    /// Max pooling, square window, padding never wins (PyTorch `MaxPool2d`); the first
    /// maximum of each window in row-major order gets the gradient.
    public static func maxPool(_ x: RefTensor, kernel k: Int, stride st: Int, padding p: Int) -> (y: RefTensor, argmax: [Int]) {
        let s = x.shape
        var y = RefTensor(zeros: Shape(s.n, s.c, (s.h + 2 * p - k) / st + 1, (s.w + 2 * p - k) / st + 1))
        var argmax = [Int](repeating: -1, count: y.shape.count)
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<y.shape.h { for j in 0..<y.shape.w {
            var best = -Double.infinity, at = -1
            for a in 0..<k { for b in 0..<k {
                let yy = i * st - p + a, xx = j * st - p + b
                if yy >= 0 && yy < s.h && xx >= 0 && xx < s.w && x[n, c, yy, xx] > best { best = x[n, c, yy, xx]; at = x.index(n, c, yy, xx) }
            } }
            y[n, c, i, j] = best
            argmax[y.index(n, c, i, j)] = at
        } } } }
        return (y, argmax)
    }
    public static func maxPoolBackward(_ x: RefTensor, _ dy: RefTensor, kernel k: Int, stride st: Int, padding p: Int) -> RefTensor {
        let argmax = maxPool(x, kernel: k, stride: st, padding: p).argmax
        var dx = RefTensor(zeros: x.shape)
        for (o, i) in argmax.enumerated() { dx.values[i] += dy.values[o] }
        return dx
    }

    /// Average pooling, square window, exclude-padding average.
    public static func avgPool(_ x: RefTensor, kernel k: Int, stride st: Int, padding p: Int) -> RefTensor {
        let s = x.shape
        var y = RefTensor(zeros: Shape(s.n, s.c, (s.h + 2 * p - k) / st + 1, (s.w + 2 * p - k) / st + 1))
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<y.shape.h { for j in 0..<y.shape.w {
            var sum = 0.0, cnt = 0.0
            for a in 0..<k { for b in 0..<k {
                let yy = i * st - p + a, xx = j * st - p + b
                if yy >= 0 && yy < s.h && xx >= 0 && xx < s.w { sum += x[n, c, yy, xx]; cnt += 1 }
            } }
            y[n, c, i, j] = sum / cnt
        } } } }
        return y
    }
    public static func avgPoolBackward(_ x: RefTensor, _ dy: RefTensor, kernel k: Int, stride st: Int, padding p: Int) -> RefTensor {
        let s = x.shape
        var dx = RefTensor(zeros: s)
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<dy.shape.h { for j in 0..<dy.shape.w {
            var cnt = 0.0
            for a in 0..<k { for b in 0..<k {
                let yy = i * st - p + a, xx = j * st - p + b
                if yy >= 0 && yy < s.h && xx >= 0 && xx < s.w { cnt += 1 }
            } }
            for a in 0..<k { for b in 0..<k {
                let yy = i * st - p + a, xx = j * st - p + b
                if yy >= 0 && yy < s.h && xx >= 0 && xx < s.w { dx[n, c, yy, xx] += dy[n, c, i, j] / cnt }
            } }
        } } } }
        return dx
    }

    /// PyTorch's source index and weights for one output coordinate (align_corners=False).
    static func linearTaps(_ o: Int, inSize: Int, scale: Double) -> (Int, Int, Double) {
        let src = max((Double(o) + 0.5) / scale - 0.5, 0)
        let i0 = min(Int(src), inSize - 1)
        let i1 = i0 + (i0 < inSize - 1 ? 1 : 0)
        let l1 = src - Double(i0)
        return (i0, i1, l1)
    }
    /// Bilinear ×2, PyTorch `interpolate(scale_factor=2, mode="bilinear", align_corners=False)`.
    public static func bilinear2x(_ x: RefTensor) -> RefTensor {
        let s = x.shape
        var y = RefTensor(zeros: Shape(s.n, s.c, 2 * s.h, 2 * s.w))
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<2 * s.h { for j in 0..<2 * s.w {
            let (y0, y1, ly) = linearTaps(i, inSize: s.h, scale: 2), (x0, x1, lx) = linearTaps(j, inSize: s.w, scale: 2)
            y[n, c, i, j] = (1 - ly) * ((1 - lx) * x[n, c, y0, x0] + lx * x[n, c, y0, x1])
                + ly * ((1 - lx) * x[n, c, y1, x0] + lx * x[n, c, y1, x1])
        } } } }
        return y
    }
    public static func bilinear2xBackward(_ dy: RefTensor) -> RefTensor {
        let s = dy.shape
        var dx = RefTensor(zeros: Shape(s.n, s.c, s.h / 2, s.w / 2))
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<s.h { for j in 0..<s.w {
            let (y0, y1, ly) = linearTaps(i, inSize: s.h / 2, scale: 2), (x0, x1, lx) = linearTaps(j, inSize: s.w / 2, scale: 2)
            let g = dy[n, c, i, j]
            dx[n, c, y0, x0] += (1 - ly) * (1 - lx) * g; dx[n, c, y0, x1] += (1 - ly) * lx * g
            dx[n, c, y1, x0] += ly * (1 - lx) * g; dx[n, c, y1, x1] += ly * lx * g
        } } } }
        return dx
    }
    /// Nearest ×2.
    public static func nearest2x(_ x: RefTensor) -> RefTensor {
        let s = x.shape
        var y = RefTensor(zeros: Shape(s.n, s.c, 2 * s.h, 2 * s.w))
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<2 * s.h { for j in 0..<2 * s.w { y[n, c, i, j] = x[n, c, i / 2, j / 2] } } } }
        return y
    }
    public static func nearest2xBackward(_ dy: RefTensor) -> RefTensor {
        let s = dy.shape
        var dx = RefTensor(zeros: Shape(s.n, s.c, s.h / 2, s.w / 2))
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<s.h { for j in 0..<s.w { dx[n, c, i / 2, j / 2] += dy[n, c, i, j] } } } }
        return dx
    }
    /// Bed-of-nails ×2: value at the top-left of its 2×2 block.
    public static func nails2x(_ x: RefTensor) -> RefTensor {
        let s = x.shape
        var y = RefTensor(zeros: Shape(s.n, s.c, 2 * s.h, 2 * s.w))
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<s.h { for j in 0..<s.w { y[n, c, 2 * i, 2 * j] = x[n, c, i, j] } } } }
        return y
    }
    public static func nails2xBackward(_ dy: RefTensor) -> RefTensor {
        let s = dy.shape
        var dx = RefTensor(zeros: Shape(s.n, s.c, s.h / 2, s.w / 2))
        for n in 0..<s.n { for c in 0..<s.c { for i in 0..<s.h / 2 { for j in 0..<s.w / 2 { dx[n, c, i, j] = dy[n, c, 2 * i, 2 * j] } } } }
        return dx
    }

    /// Concatenation along channels and its backward (split).
    public static func concat(_ parts: [RefTensor]) -> RefTensor {
        var s = parts[0].shape
        s.c = parts.reduce(0) { $0 + $1.shape.c }
        var y = RefTensor(zeros: s)
        for n in 0..<s.n {
            var c0 = 0
            for p in parts {
                for c in 0..<p.shape.c { for h in 0..<s.h { for w in 0..<s.w { y[n, c0 + c, h, w] = p[n, c, h, w] } } }
                c0 += p.shape.c
            }
        }
        return y
    }
    public static func split(_ dy: RefTensor, channels: [Int]) -> [RefTensor] {
        let s = dy.shape
        var c0 = 0
        return channels.map { ch in
            var p = RefTensor(zeros: Shape(s.n, ch, s.h, s.w))
            for n in 0..<s.n { for c in 0..<ch { for h in 0..<s.h { for w in 0..<s.w { p[n, c, h, w] = dy[n, c0 + c, h, w] } } } }
            c0 += ch
            return p
        }
    }
}

/// Naive elementwise kernels: sum and dropout with a fixed mask.
public enum ReferenceElementwise {
    public static func add(_ a: RefTensor, _ b: RefTensor) -> RefTensor { RefTensor(a.shape, zip(a.values, b.values).map(+)) }
    /// Dropout with a fixed keep-mask (0 or 1/(1−p) per element); its backward applies the same mask.
    public static func dropout(_ x: RefTensor, mask: [Double]) -> RefTensor { RefTensor(x.shape, zip(x.values, mask).map(*)) }
}
