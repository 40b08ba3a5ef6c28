// Memory-bound kernels on u8 NHWC activations (`ByteTensor`), so that int8 layers pass u8 to
// each other (`Int8UNetChain`): 2×2 max pooling (exact on codes of one step), channel copies
// into a concat buffer, ×2 upsampling into a concat's leading channels (from u8 for nearest and
// nails, from Float32 NHWC with quantization for bilinear) and spatial crops. References: the
// Float32 kernels they mirror (`MaxPool2x2`, `Upsample2x`), held to in Int8ChainTests.

public enum ByteKernels {
    /// output (N, C, H/2, W/2) = max over 2×2 windows of input (N, C, H, W), same step.
    public static func maxPool2x2(_ input: ByteTensor, into output: ByteTensor) {
        let i = input.shape, o = output.shape
        precondition(i.h == 2 * o.h && i.w == 2 * o.w && i.n == o.n && i.c == o.c, "u8 pooling shapes \(i) → \(o)")
        let src = UncheckedSendable(input.data), dst = UncheckedSendable(output.data)
        let C = i.c, ow = o.w, iw = i.w
        parallelFor(o.n * o.h, minChunk: 4) { range in
            for row in range {
                let n = row / o.h, y = row % o.h
                let s0 = src.value + ((n * i.h + 2 * y) * iw) * C, s1 = s0 + iw * C
                let d = dst.value + row * ow * C
                for x in 0..<ow {
                    let a = s0 + 2 * x * C, b = s1 + 2 * x * C, dx = d + x * C
                    for k in 0..<C { dx[k] = max(max(a[k], a[k + C]), max(b[k], b[k + C])) }
                }
            }
        }
    }

    /// Copies input (N, S, H, W) into channels offset..<offset+S of output (N, T, H, W).
    public static func copyChannels(_ input: ByteTensor, into output: ByteTensor, offset: Int) {
        let i = input.shape, o = output.shape
        precondition(i.n == o.n && i.h == o.h && i.w == o.w && offset >= 0 && offset + i.c <= o.c, "u8 concat shapes")
        let src = UncheckedSendable(input.data), dst = UncheckedSendable(output.data)
        let S = i.c, T = o.c, pixels = i.w
        parallelFor(i.n * i.h, minChunk: 8) { range in
            for row in range {
                copyPixels(src.value + row * pixels * S, channels: S, into: dst.value + row * pixels * T + offset, channels: T, pixels)
            }
        }
    }

    /// [first, second] along channels into output (N, C₁ + C₂, H, W), each row written once.
    public static func concatenate(_ first: ByteTensor, _ second: ByteTensor, into output: ByteTensor) {
        let a = first.shape, b = second.shape, o = output.shape
        precondition(a.n == o.n && b.n == o.n && a.h == o.h && b.h == o.h && a.w == o.w && b.w == o.w && a.c + b.c == o.c,
                     "u8 concat shapes \(a) + \(b) → \(o)")
        let p = UncheckedSendable(first.data), q = UncheckedSendable(second.data), dst = UncheckedSendable(output.data)
        parallelFor(o.n * o.h, minChunk: 8) { range in
            for row in range {
                let d = dst.value + row * o.w * o.c
                copyPixels(p.value + row * o.w * a.c, channels: a.c, into: d, channels: o.c, o.w)
                copyPixels(q.value + row * o.w * b.c, channels: b.c, into: d + a.c, channels: o.c, o.w)
            }
        }
    }

    /// `pixels` pixels of S channels from `s` (dense) into the first S channels of `d`'s pixels
    /// of T channels: one row of a skip into its concat.
    @inline(__always) static func copyPixels(_ s: UnsafePointer<UInt8>, channels S: Int, into d: UnsafeMutablePointer<UInt8>,
                                             channels T: Int, _ pixels: Int) {
        if S % 16 == 0 {  // per-pixel memcpy calls cost more than the copy itself
            for x in 0..<pixels {
                let a = UnsafeRawPointer(s + x * S), b = UnsafeMutableRawPointer(d + x * T)
                for k in stride(from: 0, to: S, by: 16) {
                    b.storeBytes(of: a.loadUnaligned(fromByteOffset: k, as: SIMD16<UInt8>.self), toByteOffset: k, as: SIMD16<UInt8>.self)
                }
            }
        } else {
            for x in 0..<pixels { (d + x * T).update(from: s + x * S, count: S) }
        }
    }

    /// Nearest or bed-of-nails ×2 of input (N, C, H, W) u8 into channels 0..<C of output
    /// (N, T, 2H, 2W), same step (both only copy or zero codes); with `skip` (N, T − C, 2H, 2W),
    /// its rows into channels C..<T in the same pass (a decoder's whole concat, each row once).
    public static func upsample2x(_ kind: Upsample2xKind, _ input: ByteTensor, into output: ByteTensor, skip: ByteTensor? = nil) {
        precondition(kind != .bilinear, "bilinear upsampling reads Float32 (upsample2x(_:step:into:))")
        let i = input.shape, o = output.shape
        precondition(o.h == 2 * i.h && o.w == 2 * i.w && o.n == i.n && i.c <= o.c, "u8 upsample shapes \(i) → \(o)")
        let rest = skipRows(skip, output, upChannels: i.c)
        let src = UncheckedSendable(input.data), dst = UncheckedSendable(output.data)
        let C = i.c, T = o.c
        parallelFor(o.n * o.h, minChunk: 8) { range in
            for row in range {
                let n = row / o.h, y = row % o.h
                let s = src.value + (n * i.h + y / 2) * i.w * C, d = dst.value + row * o.w * T
                for x in 0..<o.w {
                    let dp = d + x * T
                    if kind == .nails && (y % 2 == 1 || x % 2 == 1) { dp.update(repeating: 0, count: C) } else { dp.update(from: s + (x / 2) * C, count: C) }
                }
                if let rest { copyPixels(rest.value + row * o.w * (T - C), channels: T - C, into: d + C, channels: T, o.w) }
            }
        }
    }

    /// The skip's data when it fills channels upChannels..<T of `output` (same N, H, W), else nil.
    private static func skipRows(_ skip: ByteTensor?, _ output: ByteTensor, upChannels: Int) -> UncheckedSendable<UnsafeMutablePointer<UInt8>>? {
        guard let skip else { return nil }
        let s = skip.shape, o = output.shape
        precondition(s.n == o.n && s.h == o.h && s.w == o.w && upChannels + s.c == o.c, "u8 concat shapes \(s) → \(o)")
        return UncheckedSendable(skip.data)
    }

    /// Bilinear ×2 (half-pixel centres, like `Upsample2x`) of input (N, C, H, W) Float32 NHWC,
    /// quantized at `step` (q = clamp(round-half-even(v / step), 0, 255)), into channels
    /// 0..<C of output (N, T, 2H, 2W).
    public static func upsample2x(_ kind: Upsample2xKind, _ input: Tensor, step: Float, into output: ByteTensor, skip: ByteTensor? = nil) {
        let i = input.shape, o = output.shape
        precondition(input.layout == .nhwc && o.h == 2 * i.h && o.w == 2 * i.w && o.n == i.n && i.c <= o.c,
                     "bilinear u8 upsample shapes \(i) \(input.layout) → \(o)")
        precondition(kind == .bilinear, "nearest and nails upsample u8 (upsample2x(_:_:into:))")
        let rest = skipRows(skip, output, upChannels: i.c)
        for n in 0..<i.n {
            upsample2xRows(input.data + n * i.h * i.w * i.c, channels: i.c, width: i.w, coarse: 0..<i.h, fine: 0..<o.h,
                           step: step, into: output.data + n * o.h * o.w * o.c, channels: o.c,
                           skip: rest.map { UnsafePointer($0.value + n * o.h * o.w * (o.c - i.c)) })
        }
    }

    /// Fine rows `fine` of the bilinear ×2 of one image's Float32 NHWC rows (`src` holds coarse
    /// rows from 0, C channels, W wide; neighbours clamp to the rows `coarse`, as at the image's
    /// edges), quantized at `step` into channels 0..<C of `dst` (fine.count rows of 2W pixels
    /// of T channels). Row streaming passes the coarse rows it holds (`Int8JunctionRows`).
    /// `skip`: fine.count rows of 2W pixels of T − C channels, copied into channels C..<T of
    /// each row as it is written.
    public static func upsample2xRows(_ src: UnsafePointer<Float>, channels C: Int, width W: Int, coarse: Range<Int>,
                                      fine: Range<Int>, step: Float, into dst: UnsafeMutablePointer<UInt8>, channels T: Int,
                                      skip: UnsafePointer<UInt8>? = nil) {
        precondition(C <= T && fine.lowerBound >= 2 * coarse.lowerBound && fine.upperBound <= 2 * coarse.upperBound,
                     "bilinear u8 upsample rows")
        let s = UncheckedSendable(UnsafeMutablePointer(mutating: src)), d = UncheckedSendable(dst)
        let rest = skip.map { UncheckedSendable(UnsafeMutablePointer(mutating: $0)) }
        let inv = 1 / step, top = coarse.lowerBound, bottom = coarse.upperBound - 1, y0 = fine.lowerBound
        parallelFor(fine.count, minChunk: 8) { range in
            let line = UnsafeMutablePointer<Float>.allocate(capacity: W * C)
            defer { line.deallocate() }
            for row in range {
                let y = y0 + row, r = y / 2
                let near = s.value + r * W * C
                let far = s.value + (y % 2 == 0 ? max(r - 1, top) : min(r + 1, bottom)) * W * C
                for e in 0..<(W * C) { line[e] = (0.75 * near[e] + 0.25 * far[e]) * inv }
                let out = d.value + row * 2 * W * T
                for x in 0..<W {
                    let c = line + x * C, l = line + max(x - 1, 0) * C, rr = line + min(x + 1, W - 1) * C
                    let d0 = out + 2 * x * T, d1 = d0 + T
                    for k in 0..<C {
                        d0[k] = code(0.75 * c[k] + 0.25 * l[k])
                        d1[k] = code(0.75 * c[k] + 0.25 * rr[k])
                    }
                }
                if let rest { copyPixels(rest.value + row * 2 * W * (T - C), channels: T - C, into: out + C, channels: T, 2 * W) }
            }
        }
    }

    /// clamp(round-half-even(v), 0, 255) without a rounding call or a checked conversion (the
    /// baseline x86-64 target has no vector rounding, and either stops the loop vectorising,
    /// measured 10× slower): adding 1.5·2²³ leaves the rounded integer in the low mantissa bits.
    @inline(__always) static func code(_ v: Float) -> UInt8 {
        UInt8(truncatingIfNeeded: (min(255, max(0, v)) + 12_582_912).bitPattern)
    }

    /// Rows row..<row+H', columns column..<column+W' of an NHWC array of `elementBytes`-byte
    /// values (N, C, H, W) into a dense NHWC (N, C, H', W'): crops of u8 and Float32 NHWC.
    public static func crop(_ src: UnsafeRawPointer, _ shape: Shape, row: Int, column: Int,
                            into dst: UnsafeMutableRawPointer, _ out: Shape, elementBytes: Int) {
        precondition(shape.n == out.n && shape.c == out.c && row >= 0 && column >= 0
                     && row + out.h <= shape.h && column + out.w <= shape.w, "NHWC crop outside \(shape)")
        let s = UncheckedSendable(src), d = UncheckedSendable(dst)
        let pixel = shape.c * elementBytes, length = out.w * pixel
        parallelFor(out.n * out.h, minChunk: 16) { range in
            for r in range {
                let n = r / out.h, y = r % out.h
                (d.value + r * length).copyMemory(from: s.value + ((n * shape.h + row + y) * shape.w + column) * pixel, byteCount: length)
            }
        }
    }
}

extension ByteTensor {
    /// `existing` when it has this shape, else a new tensor (buffers reused across calls).
    public static func reuse(_ existing: ByteTensor?, _ shape: Shape) -> ByteTensor {
        if let existing, existing.shape == shape { return existing }
        return ByteTensor(shape: shape)
    }
}
