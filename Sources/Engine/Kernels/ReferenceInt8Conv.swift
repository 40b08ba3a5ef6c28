/// Naive int8 convolution with the arithmetic `Int8ConvolutionKernel` promises (tests only):
/// exact integer accumulation, then y = acc · inputStep · weightStep[o] + bias[o], optional ReLU,
/// and, for u8 output, q = clamp(round-half-even(y / outputStep), 0, 255).
public enum ReferenceInt8Conv {
    /// x (N, I, H, W) u8 values as Doubles, w (O, I, k, k) s8 values; returns y in real units
    /// (Float32 output) or as u8 codes (when `outputStep` is given).
    public static func forward(_ x: RefTensor, inputStep: Double, _ w: RefTensor, weightSteps: [Double],
                               _ bias: [Double]?, _ g: ConvGeometry, relu: Bool, outputStep: Double?) -> RefTensor {
        var acc = ReferenceConv.forward(x, w, nil, g)  // integer-valued, exact in Double
        let plane = acc.shape.h * acc.shape.w
        for i in acc.values.indices {
            let o = (i / plane) % acc.shape.c
            var y = acc.values[i] * inputStep * weightSteps[o] + (bias?[o] ?? 0)
            if relu { y = max(0, y) }
            if let outputStep { y = min(255, max(0, (y / outputStep).rounded(.toNearestOrEven))) }
            acc.values[i] = y
        }
        return acc
    }
}
