/// A 1×1 convolution of Float32 NHWC input written straight into NCHW output: a U-Net's head
/// after int8 layers (`Int8UNetChain`), which then needs no blocked output (a few classes
/// padded to 16 channels) and no reorder of the logits. Reference: `ConvolutionKernel` with a
/// 1×1 kernel (Int8ChainTests).
public enum PointwiseConvolution {
    /// input (N, C, H, W) NHWC, weights (K, C) row-major, bias (K) → output (N, K, H, W) NCHW.
    public static func forward(_ input: Tensor, weights: [Float], bias: [Float], into output: Tensor) {
        let s = input.shape, K = output.shape.c, C = s.c, plane = s.h * s.w, W = s.w
        precondition(input.layout == .nhwc && output.layout == .nchw && output.shape == Shape(s.n, K, s.h, s.w)
                     && weights.count == K * C && bias.count == K, "pointwise convolution shapes \(s) → \(output.shape)")
        let x = UncheckedSendable(input.data), out = UncheckedSendable(output.data)
        weights.withUnsafeBufferPointer { wb in
            let w = UncheckedSendable(wb.baseAddress!)
            parallelFor(s.n * s.h, minChunk: 8) { rows in
                for row in rows {
                    let n = row / s.h, y = row % s.h, line = x.value + row * W * C
                    for k in 0..<K {
                        let wk = UnsafeRawPointer(w.value + k * C), b = bias[k]
                        let dst = out.value + (n * K + k) * plane + y * W
                        for i in 0..<W {
                            let p = UnsafeRawPointer(line + i * C)
                            var acc = SIMD16<Float>(), c = 0
                            while c + 16 <= C {
                                acc += wk.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
                                    * p.loadUnaligned(fromByteOffset: 4 * c, as: SIMD16<Float>.self)
                                c += 16
                            }
                            var sum = acc.sum()
                            while c < C { sum += wk.load(fromByteOffset: 4 * c, as: Float.self) * p.load(fromByteOffset: 4 * c, as: Float.self); c += 1 }
                            dst[i] = sum + b
                        }
                    }
                }
            }
        }
    }
}
