import Engine

/// bf16 inference of a network's conv–BN–ReLU units (`--precision bf16`): each unit's folded
/// weights are rounded to bf16 once, its Float32 input is reordered to bf16 by oneDNN, sums,
/// bias and output stay Float32 (`Bf16ConvolutionKernel`). The 1×1 head, pooling, upsampling
/// and concat stay Float32. No calibration: bf16 keeps Float32's range (8 bits of mantissa).
public enum Bf16Inference {
    /// Runs every unit in bf16 (weights as they are now; later changes are not seen).
    public static func install(in network: any SegmentationNetwork) {
        for (_, unit) in Int8Calibration.units(of: network) { unit.bf16 = kernel(unit) }
    }

    /// `unit`'s bf16 convolution with its folded batch norm and fused ReLU.
    public static func kernel(_ unit: ConvBNReLU) -> Bf16ConvolutionKernel {
        var g = unit.conv.geometry
        g.bias = true
        let (w, b) = unit.inferenceWeights()
        return Bf16ConvolutionKernel(g, weight: w.value.nchwValues(), bias: b.value.nchwValues(), relu: true)
    }

    /// Back to Float32 everywhere.
    public static func uninstall(from network: any SegmentationNetwork) {
        for (_, unit) in Int8Calibration.units(of: network) { unit.bf16 = nil }
    }
}
