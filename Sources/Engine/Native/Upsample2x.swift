// Hand-written ×2 upsampling kernels on the [outer][h][w][inner] view. Each takes raw pointers
// with views, so the upsampled side may be a channel slice of a larger tensor (the decoder's
// concat buffer); the Tensor overloads cover the dense case.

/// How a ×2 upsampling fills its output.
public enum Upsample2xKind: Sendable {
    /// Bilinear, half-pixel centres (PyTorch align_corners=False).
    case bilinear
    /// Nearest neighbour.
    case nearest
    /// Bed-of-nails: value at the top-left of its 2×2 block, zeros elsewhere.
    case nails
}

public enum Upsample2x {
    /// output (N, C, 2H, 2W) from input (N, C, H, W).
    public static func forward(_ kind: Upsample2xKind, input: Tensor, output: Tensor) {
        forward(kind, input.data, input.spatialView, output.data, output.spatialView)
    }
    /// dInput (N, C, H, W) from dOutput (N, C, 2H, 2W).
    public static func backward(_ kind: Upsample2xKind, dOutput: Tensor, dInput: Tensor) {
        backward(kind, dOutput.data, dOutput.spatialView, dInput.data, dInput.spatialView)
    }

    public static func forward(_ kind: Upsample2xKind, _ src: UnsafeMutablePointer<Float>, _ iv: SpatialView,
                               _ dst: UnsafeMutablePointer<Float>, _ ov: SpatialView) {
        precondition(ov.h == 2 * iv.h && ov.w == 2 * iv.w && ov.outer == iv.outer && ov.inner == iv.inner, "upsample ×2 shapes")
        forwardRows(kind, src, iv, coarse: 0..<iv.h, fine: 0..<ov.h, dst, ov)
    }

    /// Fine rows `fine` (of the ×2 upsampling of input rows `coarse`) into dst rows 0..<fine.count,
    /// for row streaming: input rows outside `coarse` are never read, bilinear clamps at its
    /// ends (the scene's edges), and iv's planes may hold more rows than `coarse` (a line buffer).
    /// dst (ov: fine.count rows, 2·iv.w columns) may be a channel slice of a concat buffer.
    public static func forwardRows(_ kind: Upsample2xKind, _ src: UnsafeMutablePointer<Float>, _ iv: SpatialView, coarse: Range<Int>,
                                   fine: Range<Int>, _ dst: UnsafeMutablePointer<Float>, _ ov: SpatialView) {
        precondition(ov.h == fine.count && ov.w == 2 * iv.w && ov.outer == iv.outer && ov.inner == iv.inner
                     && coarse.lowerBound >= 0 && coarse.upperBound <= iv.h
                     && fine.lowerBound >= 2 * coarse.lowerBound && fine.upperBound <= 2 * coarse.upperBound, "upsample ×2 rows")
        let s = UncheckedSendable(src), d = UncheckedSendable(dst)
        let rows = fine.count, y0 = fine.lowerBound, top = coarse.lowerBound, bottom = coarse.upperBound - 1
        parallelFor(ov.outer * rows, minChunk: 8) { range in
            let inner = iv.inner, W = iv.w, OW = ov.w
            let line = UnsafeMutablePointer<Float>.allocate(capacity: W * inner)
            defer { line.deallocate() }
            for r in range {
                let o = r / rows, y = y0 + r % rows, i = y / 2
                let out = d.value + ov.row(o, r % rows)
                switch kind {
                case .nails:
                    if y % 2 == 1 { out.update(repeating: 0, count: OW * inner); continue }
                    let a = s.value + iv.row(o, i)
                    for x in 0..<W {
                        let dp = out + 2 * x * inner, sp = a + x * inner
                        for k in 0..<inner { dp[k] = sp[k]; dp[k + inner] = 0 }
                    }
                case .nearest:
                    let a = s.value + iv.row(o, i)
                    for x in 0..<W {
                        let dp = out + 2 * x * inner, sp = a + x * inner
                        for k in 0..<inner { dp[k] = sp[k]; dp[k + inner] = sp[k] }
                    }
                case .bilinear:
                    let near = s.value + iv.row(o, i)
                    let far = s.value + iv.row(o, y % 2 == 0 ? max(i - 1, top) : min(i + 1, bottom))
                    for e in 0..<(W * inner) { line[e] = 0.75 * near[e] + 0.25 * far[e] }
                    for x in 0..<W {
                        let c = line + x * inner
                        let l = line + max(x - 1, 0) * inner, rr = line + min(x + 1, W - 1) * inner
                        let d0 = out + 2 * x * inner, d1 = d0 + inner
                        for k in 0..<inner {
                            d0[k] = 0.75 * c[k] + 0.25 * l[k]
                            d1[k] = 0.75 * c[k] + 0.25 * rr[k]
                        }
                    }
                }
            }
        }
    }

    public static func backward(_ kind: Upsample2xKind, _ gOut: UnsafeMutablePointer<Float>, _ ov: SpatialView,
                                _ gIn: UnsafeMutablePointer<Float>, _ iv: SpatialView) {
        precondition(ov.h == 2 * iv.h && ov.w == 2 * iv.w && ov.outer == iv.outer && ov.inner == iv.inner, "upsample ×2 shapes")
        let go = UncheckedSendable(gOut), gi = UncheckedSendable(gIn)
        parallelFor(iv.outer * iv.h) { range in
            let inner = iv.inner, W = iv.w, OW = ov.w, OH = ov.h
            let line = UnsafeMutablePointer<Float>.allocate(capacity: OW * inner)
            defer { line.deallocate() }
            for row in range {
                let o = row / iv.h, i = row % iv.h
                let d = gi.value + iv.row(o, i)
                switch kind {
                case .nails:
                    let s0 = go.value + ov.row(o, 2 * i)
                    for x in 0..<W {
                        let sp = s0 + 2 * x * inner, dp = d + x * inner
                        for k in 0..<inner { dp[k] = sp[k] }
                    }
                case .nearest:
                    let r0 = go.value + ov.row(o, 2 * i), r1 = go.value + ov.row(o, 2 * i + 1)
                    for x in 0..<W {
                        let a = r0 + 2 * x * inner, b = r1 + 2 * x * inner, dp = d + x * inner
                        for k in 0..<inner { dp[k] = a[k] + a[k + inner] + b[k] + b[k + inner] }
                    }
                case .bilinear:
                    // Each input row/column receives the fixed 4-tap stencil (¼, ¾, ¾, ¼) from output
                    // rows/columns (2i−1, 2i, 2i+1, 2i+2), clamped at the borders: rows first, then columns.
                    let r0 = go.value + ov.row(o, max(2 * i - 1, 0))
                    let r1 = go.value + ov.row(o, 2 * i)
                    let r2 = go.value + ov.row(o, 2 * i + 1)
                    let r3 = go.value + ov.row(o, min(2 * i + 2, OH - 1))
                    for e in 0..<(OW * inner) { line[e] = 0.25 * (r0[e] + r3[e]) + 0.75 * (r1[e] + r2[e]) }
                    for j in 0..<W {
                        let c0 = line + max(2 * j - 1, 0) * inner, c1 = line + 2 * j * inner
                        let c2 = c1 + inner, c3 = line + min(2 * j + 2, OW - 1) * inner
                        let dj = d + j * inner
                        for k in 0..<inner { dj[k] = 0.25 * (c0[k] + c3[k]) + 0.75 * (c1[k] + c2[k]) }
                    }
                }
            }
        }
    }
}

/// Bilinear ×2 backward (the oneDNN forward's partner; oneDNN's own backward is slow).
public enum BilinearUpsample2x {
    public static func backward(dOutput: Tensor, dInput: Tensor) { Upsample2x.backward(.bilinear, dOutput: dOutput, dInput: dInput) }
}

/// Bed-of-nails ×2: each value at the top-left of its 2×2 block, zeros elsewhere.
public enum NailsUpsample2x {
    public static func forward(input: Tensor, output: Tensor) { Upsample2x.forward(.nails, input: input, output: output) }
    public static func backward(dOutput: Tensor, dInput: Tensor) { Upsample2x.backward(.nails, dOutput: dOutput, dInput: dInput) }
}
