import Core
@testable import Engine
import Testing

// bf16 training convolutions (`ConvolutionKernel.bf16`): forward, backward-data and
// backward-weights with bf16 operands and Float32 results, against the fp32 kernel. bf16 keeps
// 8 bits of mantissa (relative rounding ≤ 2⁻⁹ per operand), so each result is within about
// 2·2⁻⁹ normwise; the sums are Float32.

private func randomTensor(_ shape: Shape, seed: UInt64, layout: Layout) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let t = Tensor(shape: shape, layout: layout)
    t.setNCHW(rng.uniform(shape.count, -1, 1).map(Float.init))
    return t
}

private func normwise(_ a: [Float], _ b: [Float]) -> Double {
    let d = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
    return (d / max(1e-30, b.reduce(0.0) { $0 + Double($1) * Double($1) })).squareRoot()
}

/// One training step (forward, backward-data, backward-weights) in fp32 and in bf16.
private func step(_ g: ConvGeometry, bf16: Bool, layout: Layout) -> (y: [Float], dx: [Float], dw: [Float], db: [Float], impl: [String]) {
    let kernel = ConvolutionKernel(g)
    kernel.bf16 = bf16
    let weight = Parameter(shape: g.weightShape), bias = Parameter(shape: Shape(g.outputChannels, 1, 1, 1))
    var rng = SplitMix64(seed: 3)
    weight.set(rng.uniform(g.weightShape.count, -0.2, 0.2).map(Float.init))
    bias.set(rng.uniform(g.outputChannels, -0.2, 0.2).map(Float.init))
    let x = randomTensor(Shape(2, g.inputChannels, 14, 12), seed: 5, layout: layout)
    let y = Tensor(shape: g.outputShape(x.shape), layout: .nChw16c)
    kernel.forward(input: x, weight: weight, bias: bias, output: y, training: true)
    let dy = randomTensor(y.shape, seed: 6, layout: .nChw16c), dx = Tensor(shape: x.shape, layout: layout)
    kernel.backwardData(dOutput: dy, weight: weight, dInput: dx)
    kernel.backwardWeights(input: x, dOutput: dy, weight: weight, bias: bias)
    return (y.nchwValues(), dx.nchwValues(), weight.grad.nchwValues(), bias.grad.nchwValues(), kernel.implementations)
}

/// Every pass within bf16 rounding of fp32 (and not equal: bf16 did run), dilated or not, for
/// blocked and plain inputs; the bias gradient sums Float32 output gradients, which bf16 rounds.
@Test(.enabled(if: CPUFeatures.hasBF16), arguments: [(1, Layout.nChw16c), (2, .nChw16c), (1, .nchw)])
func bf16TrainingPassesFollowFloat(_ dilation: Int, _ layout: Layout) {
    let g = ConvGeometry(inputChannels: 16, outputChannels: 32, kernel: 3, padding: dilation, dilation: dilation, bias: true)
    let f = step(g, bf16: false, layout: layout), b = step(g, bf16: true, layout: layout)
    // Plain NCHW input gradients: oneDNN's bf16 GEMM convolution ("gemm:jit"), else its bf16 JIT kernels.
    #expect(b.impl[0].contains("bf16") && b.impl[2].contains("bf16") && (b.impl[1].contains("bf16") || layout == .nchw), "oneDNN's bf16 kernels, not \(b.impl)")
    for (name, got, want) in [("forward", b.y, f.y), ("backward-data", b.dx, f.dx), ("backward-weights", b.dw, f.dw)] {
        let e = normwise(got, want)
        #expect(e > 0 && e < 4 * 0x1p-9, "bf16 \(name) off by \(e) normwise")
    }
    #expect(normwise(b.db, f.db) < 4 * 0x1p-9, "bias gradient")
}
