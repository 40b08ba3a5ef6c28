/// Float32 nChw16c → u8 NHWC with q = clamp(round-half-even(x · scale), 0, 255): what
/// `ActivationQuantizer` does between a blocked fp32 layer and an int8 convolution. oneDNN 2.6's
/// reorder for this pair took about a quarter of R1's int8 inference; this loop streams each
/// 16-channel block once, 16 lanes at a time, threads over rows.
enum NativeQuantize {
    /// input (N, C, H, W) nChw16c, output (N, C, H, W) NHWC u8.
    static func blockedToBytes(_ input: Tensor, _ output: UnsafeMutablePointer<UInt8>, scale: Float) {
        precondition(input.layout == .nChw16c)
        let s = input.shape, blocks = (s.c + 15) / 16, plane = s.h * s.w
        let src = UncheckedSendable(input.data), dst = UncheckedSendable(output)
        parallelFor(s.n * s.h, minChunk: 4) { rows in
            let x = src.value, y = dst.value
            for nh in rows {
                let n = nh / s.h, h = nh % s.h
                for b in 0..<blocks {
                    let lanes = min(16, s.c - 16 * b)
                    var from = ((n * blocks + b) * plane + h * s.w) * 16
                    var to = (nh * s.w) * s.c + 16 * b
                    for _ in 0..<s.w {
                        let v = UnsafeRawPointer(x + from).loadUnaligned(as: SIMD16<Float>.self) * scale
                        let q = SIMD16<Int32>(v.rounded(.toNearestOrEven).clamped(lowerBound: .zero, upperBound: SIMD16(repeating: 255)))
                        let bytes = SIMD16<UInt8>(truncatingIfNeeded: q)
                        if lanes == 16 {
                            UnsafeMutableRawPointer(y + to).storeBytes(of: bytes, as: SIMD16<UInt8>.self)
                        } else {
                            for l in 0..<lanes { y[to + l] = bytes[l] }
                        }
                        from += 16
                        to += s.c
                    }
                }
            }
        }
    }
}
