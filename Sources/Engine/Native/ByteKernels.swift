// Memory-bound kernels on u8 NHWC activations (`ByteTensor`), so that int8 layers pass u8 to
// each other (`Int8UNetChain`): 2×2 max pooling (exact on codes of one step), channel copies
// into a concat buffer, nearest and nails ×2 upsampling into a concat's leading channels and
// spatial crops (bilinear into u8 is oneDNN's: `ResamplingKernel`). References: the Float32
// kernels they mirror (`MaxPool2x2`, `Upsample2x`), held to in Int8ChainTests.

public enum ByteKernels {
    /// Copies `count` bytes between non-overlapping buffers; from 1 MiB on all threads (a row
    /// stream's u8 rows: copied on one thread, they left the other spinning, 8 % of R1's
    /// int8 stream).
    public static func copy(_ source: UnsafeRawPointer, into destination: UnsafeMutableRawPointer, count: Int) {
        let pieces = count >= 1 << 20 ? max(1, Runtime.threads) : 1
        guard pieces > 1 else { return destination.copyMemory(from: source, byteCount: count) }
        let s = UncheckedSendable(source), d = UncheckedSendable(destination)
        parallelFor(pieces) { range in
            for piece in range {
                let lo = count * piece / pieces, hi = count * (piece + 1) / pieces
                (d.value + lo).copyMemory(from: s.value + lo, byteCount: hi - lo)
            }
        }
    }

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
        precondition(kind != .bilinear, "bilinear upsampling into u8 is ResamplingKernel's")
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
