// Hand-written ×2 upsampling kernels on the [outer][h][w][inner] view.

public enum BilinearUpsample2x {
    /// dInput (N, C, H, W) from dOutput (N, C, 2H, 2W) for bilinear ×2 with half-pixel centres
    /// (PyTorch align_corners=False). Each input row/column receives the fixed 4-tap stencil
    /// (¼, ¾, ¾, ¼) from output rows/columns (2i−1, 2i, 2i+1, 2i+2), clamped at the borders;
    /// applied separably: rows first into a per-thread line buffer, then columns.
    public static func backward(dOutput: Tensor, dInput: Tensor) {
        let ov = dOutput.spatialView, iv = dInput.spatialView
        precondition(ov.h == 2 * iv.h && ov.w == 2 * iv.w && ov.outer == iv.outer && ov.inner == iv.inner)
        let go = UncheckedSendable(dOutput.data), gi = UncheckedSendable(dInput.data)
        parallelFor(iv.outer * iv.h) { range in
            let inner = iv.inner, W = iv.w, OW = ov.w, OH = ov.h
            let line = UnsafeMutablePointer<Float>.allocate(capacity: OW * inner)
            defer { line.deallocate() }
            for row in range {
                let o = row / iv.h, i = row % iv.h
                let plane = go.value + o * OH * OW * inner
                let r0 = plane + max(2 * i - 1, 0) * OW * inner
                let r1 = plane + (2 * i) * OW * inner
                let r2 = plane + (2 * i + 1) * OW * inner
                let r3 = plane + min(2 * i + 2, OH - 1) * OW * inner
                for e in 0..<(OW * inner) {
                    line[e] = 0.25 * (r0[e] + r3[e]) + 0.75 * (r1[e] + r2[e])
                }
                let d = gi.value + row * W * inner
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

/// Bed-of-nails ×2: each value at the top-left of its 2×2 block, zeros elsewhere.
public enum NailsUpsample2x {
    /// output (N, C, 2H, 2W) from input (N, C, H, W), same layout.
    public static func forward(input: Tensor, output: Tensor) {
        let iv = input.spatialView, ov = output.spatialView
        precondition(ov.h == 2 * iv.h && ov.w == 2 * iv.w && ov.outer == iv.outer && ov.inner == iv.inner)
        let src = UncheckedSendable(input.data), dst = UncheckedSendable(output.data)
        parallelFor(iv.outer * iv.h) { range in
            let inner = iv.inner
            for row in range {
                let o = row / iv.h, y = row % iv.h
                let d0 = dst.value + (o * ov.h + 2 * y) * ov.w * inner
                let d1 = d0 + ov.w * inner
                let s = src.value + row * iv.w * inner
                d1.update(repeating: 0, count: ov.w * inner)
                for x in 0..<iv.w {
                    let dp = d0 + 2 * x * inner, sp = s + x * inner
                    for k in 0..<inner { dp[k] = sp[k]; dp[k + inner] = 0 }
                }
            }
        }
    }

    /// dInput (N, C, H, W) = dOutput at the top-left of each 2×2 block.
    public static func backward(dOutput: Tensor, dInput: Tensor) {
        let ov = dOutput.spatialView, iv = dInput.spatialView
        precondition(ov.h == 2 * iv.h && ov.w == 2 * iv.w && ov.outer == iv.outer && ov.inner == iv.inner)
        let src = UncheckedSendable(dOutput.data), dst = UncheckedSendable(dInput.data)
        parallelFor(iv.outer * iv.h) { range in
            let inner = iv.inner
            for row in range {
                let o = row / iv.h, y = row % iv.h
                let s0 = src.value + (o * ov.h + 2 * y) * ov.w * inner
                let d = dst.value + row * iv.w * inner
                for x in 0..<iv.w {
                    let sp = s0 + 2 * x * inner, dp = d + x * inner
                    for k in 0..<inner { dp[k] = sp[k] }
                }
            }
        }
    }
}
