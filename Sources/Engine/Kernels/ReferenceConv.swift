/// Naive convolution and transposed convolution, forward and backward.
public enum ReferenceConv {
    /// y (N, O, H', W') = conv(x (N, I, H, W), w (O, I, k, k)) + b (O).
    public static func forward(_ x: RefTensor, _ w: RefTensor, _ b: [Double]?, _ g: ConvGeometry) -> RefTensor {
        precondition(!g.transposed)
        var y = RefTensor(zeros: g.outputShape(x.shape))
        let s = x.shape, k = g.kernel
        for n in 0..<s.n { for o in 0..<g.outputChannels { for oy in 0..<y.shape.h { for ox in 0..<y.shape.w {
            var acc = b?[o] ?? 0
            for i in 0..<s.c { for ky in 0..<k { for kx in 0..<k {
                let iy = oy * g.stride - g.padding + ky * g.dilation
                let ix = ox * g.stride - g.padding + kx * g.dilation
                if iy >= 0 && iy < s.h && ix >= 0 && ix < s.w { acc += x[n, i, iy, ix] * w[o, i, ky, kx] }
            } } }
            y[n, o, oy, ox] = acc
        } } } }
        return y
    }

    /// (dx, dw, db) for the forward above.
    public static func backward(_ x: RefTensor, _ w: RefTensor, _ dy: RefTensor, _ g: ConvGeometry)
        -> (dx: RefTensor, dw: RefTensor, db: [Double]) {
        var dx = RefTensor(zeros: x.shape), dw = RefTensor(zeros: w.shape)
        var db = [Double](repeating: 0, count: g.outputChannels)
        let s = x.shape, k = g.kernel
        for n in 0..<s.n { for o in 0..<g.outputChannels { for oy in 0..<dy.shape.h { for ox in 0..<dy.shape.w {
            let d = dy[n, o, oy, ox]
            db[o] += d
            for i in 0..<s.c { for ky in 0..<k { for kx in 0..<k {
                let iy = oy * g.stride - g.padding + ky * g.dilation
                let ix = ox * g.stride - g.padding + kx * g.dilation
                if iy >= 0 && iy < s.h && ix >= 0 && ix < s.w {
                    dx[n, i, iy, ix] += d * w[o, i, ky, kx]
                    dw[o, i, ky, kx] += d * x[n, i, iy, ix]
                }
            } } }
        } } } }
        return (dx, dw, db)
    }

    /// Transposed convolution (PyTorch ConvTranspose2d): x (N, I, H, W), w (I, O, k, k):
    /// y[n, o, iy·s − p + ky·d, ix·s − p + kx·d] += x[n, i, iy, ix] · w[i, o, ky, kx].
    public static func transposedForward(_ x: RefTensor, _ w: RefTensor, _ b: [Double]?, _ g: ConvGeometry) -> RefTensor {
        precondition(g.transposed)
        var y = RefTensor(zeros: g.outputShape(x.shape))
        let s = x.shape, k = g.kernel, O = g.outputChannels
        for n in 0..<s.n {
            if let b { for o in 0..<O { for yy in 0..<y.shape.h { for xx in 0..<y.shape.w { y[n, o, yy, xx] = b[o] } } } }
            for i in 0..<s.c { for iy in 0..<s.h { for ix in 0..<s.w { for o in 0..<O { for ky in 0..<k { for kx in 0..<k {
                let oy = iy * g.stride - g.padding + ky * g.dilation, ox = ix * g.stride - g.padding + kx * g.dilation
                if oy >= 0 && oy < y.shape.h && ox >= 0 && ox < y.shape.w { y[n, o, oy, ox] += x[n, i, iy, ix] * w[i, o, ky, kx] }
            } } } } } }
        }
        return y
    }

    public static func transposedBackward(_ x: RefTensor, _ w: RefTensor, _ dy: RefTensor, _ g: ConvGeometry)
        -> (dx: RefTensor, dw: RefTensor, db: [Double]) {
        var dx = RefTensor(zeros: x.shape), dw = RefTensor(zeros: w.shape)
        var db = [Double](repeating: 0, count: g.outputChannels)
        let s = x.shape, k = g.kernel, O = g.outputChannels
        for n in 0..<s.n {
            for o in 0..<O { for yy in 0..<dy.shape.h { for xx in 0..<dy.shape.w { db[o] += dy[n, o, yy, xx] } } }
            for i in 0..<s.c { for iy in 0..<s.h { for ix in 0..<s.w { for o in 0..<O { for ky in 0..<k { for kx in 0..<k {
                let oy = iy * g.stride - g.padding + ky * g.dilation, ox = ix * g.stride - g.padding + kx * g.dilation
                if oy >= 0 && oy < dy.shape.h && ox >= 0 && ox < dy.shape.w {
                    dx[n, i, iy, ix] += dy[n, o, oy, ox] * w[i, o, ky, kx]
                    dw[i, o, ky, kx] += dy[n, o, oy, ox] * x[n, i, iy, ix]
                }
            } } } } } }
        }
        return (dx, dw, db)
    }
}
