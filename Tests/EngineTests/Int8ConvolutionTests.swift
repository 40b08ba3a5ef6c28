import Core
import Engine
import Testing
import TestSupport

// oneDNN's int8 convolution (u8 activations, s8 per-channel weights, fused ReLU and
// requantization) against the naive integer reference: u8 outputs within one code (rounding of
// the Float32 scale product), Float32 outputs within 1e-5 relative. Only where the CPU has
// u8×s8 dot products (VNNI): without them (DNNL_MAX_CPU_ISA=AVX2 or AVX512_CORE) oneDNN 2.6
// sums pairs of products in saturating 16-bit lanes and is off by up to ~100 codes here, which is
// why prediction refuses int8 there (`CPUFeatures.hasInt8DotProduct`).

private func randomBytes(_ shape: Shape, seed: UInt64) -> (ByteTensor, RefTensor) {
    var rng = SplitMix64(seed: seed)
    let t = ByteTensor(shape: shape)
    var r = RefTensor(zeros: shape)
    for n in 0..<shape.n { for c in 0..<shape.c { for h in 0..<shape.h { for w in 0..<shape.w {
        let v = UInt8(min(255, rng.uniform(1, 0, 256)[0]))
        t[n, c, h, w] = v
        r[n, c, h, w] = Double(v)
    } } } }
    return (t, r)
}

private func referenceInputs(_ kernel: Int8ConvolutionKernel) -> (RefTensor, [Double]) {
    let q = kernel.quantizedWeights
    return (RefTensor(kernel.geometry.weightShape, q.values.map(Double.init)), q.steps.map(Double.init))
}

struct Int8Case: CustomTestStringConvertible, Sendable {
    var inC: Int, outC: Int, k: Int, pad: Int, dil: Int, relu: Bool
    var testDescription: String { "I\(inC) O\(outC) k\(k) p\(pad) d\(dil) relu=\(relu)" }
}

@Test(.enabled(if: CPUFeatures.hasInt8DotProduct), arguments: [
    Int8Case(inC: 16, outC: 32, k: 3, pad: 1, dil: 1, relu: true),
    Int8Case(inC: 32, outC: 16, k: 3, pad: 2, dil: 2, relu: true),
    Int8Case(inC: 64, outC: 6, k: 1, pad: 0, dil: 1, relu: false),
    Int8Case(inC: 3, outC: 16, k: 3, pad: 1, dil: 1, relu: false),
])
func int8ConvolutionMatchesReference(_ c: Int8Case) {
    let g = ConvGeometry(inputChannels: c.inC, outputChannels: c.outC, kernel: c.k, padding: c.pad, dilation: c.dil)
    let w = randomRef(g.weightShape, seed: 71, -0.3, 0.3)
    let bias = (0..<c.outC).map { Float($0) * 0.05 - 0.3 }
    let (x, xr) = randomBytes(Shape(2, c.inC, 9, 11), seed: 72)
    let outShape = g.outputShape(x.shape)

    let toBytes = Int8ConvolutionKernel(g, weight: w.values.map(Float.init), bias: bias, inputStep: 0.02,
                                        outputStep: 0.01, relu: c.relu)
    let y = ByteTensor(shape: outShape)
    toBytes.forward(input: x, output: y)
    let (wq, steps) = referenceInputs(toBytes)
    let ref = ReferenceInt8Conv.forward(xr, inputStep: 0.02, wq, weightSteps: steps, bias.map(Double.init), g,
                                        relu: c.relu, outputStep: 0.01)
    var worst = 0.0
    for n in 0..<outShape.n { for o in 0..<outShape.c { for h in 0..<outShape.h { for x in 0..<outShape.w {
        worst = max(worst, abs(Double(y[n, o, h, x]) - ref[n, o, h, x]))
    } } } }
    #expect(worst <= 1, "u8 output off by \(worst) codes (\(toBytes.implementation))")
    #expect(ref.values.contains(0) && ref.values.contains(255), "the case exercises saturation")

    let toFloats = Int8ConvolutionKernel(g, weight: w.values.map(Float.init), bias: bias, inputStep: 0.02,
                                         outputStep: nil, relu: c.relu)
    let yf = Tensor(shape: outShape, layout: .nChw16c)
    toFloats.forward(input: x, output: yf)
    let reff = ReferenceInt8Conv.forward(xr, inputStep: 0.02, wq, weightSteps: steps, bias.map(Double.init), g,
                                         relu: c.relu, outputStep: nil)
    #expect(relativeError(values(yf), reff.values) < 1e-5, "Float32 output (\(toFloats.implementation))")
    #expect(!toBytes.implementation.hasPrefix("ref") && !toFloats.implementation.hasPrefix("ref"),
            "fast kernels: \(toBytes.implementation), \(toFloats.implementation)")
}

/// The int8 result is the fp32 convolution within the quantization error: per output, at most
/// half an input step times Σ|w| plus half a weight step times Σ|x|.
@Test(.enabled(if: CPUFeatures.hasInt8DotProduct)) func int8ConvolutionIsFloatConvolutionWithinQuantization() {
    let g = ConvGeometry(inputChannels: 16, outputChannels: 16, kernel: 3, padding: 1)
    let w = randomRef(g.weightShape, seed: 73, -0.3, 0.3)
    let (x, xr) = randomBytes(Shape(1, 16, 8, 8), seed: 74)
    let step = 0.01
    let kernel = Int8ConvolutionKernel(g, weight: w.values.map(Float.init), bias: nil, inputStep: Float(step),
                                       outputStep: nil, relu: false)
    let y = Tensor(shape: g.outputShape(x.shape), layout: .nchw)
    kernel.forward(input: x, output: y)
    let real = RefTensor(xr.shape, xr.values.map { $0 * step })
    let exact = ReferenceConv.forward(real, w, nil, g)
    let maxAbsW = w.values.map(abs).max()!, perOutput = Double(16 * 9)
    let bound = perOutput * 255 * step * (maxAbsW / 127) / 2 + 1e-4
    let worst = zip(values(y), exact.values).map { abs($0 - $1) }.max()!
    #expect(worst <= bound, "int8 vs fp32: \(worst) > \(bound)")
}

@Test func activationQuantizerRoundsAndSaturates() {
    let t = Tensor(shape: Shape(1, 3, 1, 2), values: [-1, 0.049, 0.051, 0.25, 12.7, 100])
    let q = ByteTensor(shape: t.shape)
    let quantizer = ActivationQuantizer(step: 0.1)
    quantizer.quantize(t.converted(to: .nChw16c), into: q)
    let codes = (0..<3).flatMap { c in (0..<2).map { q[0, c, 0, $0] } }
    #expect(codes == [0, 0, 1, 2, 127, 255])
    let back = Tensor(shape: t.shape, layout: .nchw)
    quantizer.dequantize(q, into: back)
    #expect(relativeError(values(back), codes.map { Double($0) * 0.1 }) < 1e-6)
}

@Test func effectiveISAIsNamed() {
    #expect(!CPUFeatures.effectiveISA.isEmpty)
    if CPUFeatures.hasInt8DotProduct { #expect(CPUFeatures.effectiveISA.contains("vnni") || CPUFeatures.effectiveISA.contains("bf16") || CPUFeatures.effectiveISA.contains("amx")) }
}

/// Quantizing from the blocked layout gives the codes of the plain-layout reorder, for
/// channel counts with and without a partial 16-channel block.
@Test(arguments: [16, 20, 35])
func blockedQuantizeEqualsPlainReorder(_ channels: Int) {
    let shape = Shape(2, channels, 5, 7)
    let x = randomRef(shape, seed: 75, -0.5, 3)
    let quantizer = ActivationQuantizer(step: 0.01)
    let fromBlocked = ByteTensor(shape: shape), fromPlain = ByteTensor(shape: shape)
    quantizer.quantize(x.tensor(layout: .nChw16c), into: fromBlocked)
    quantizer.quantize(x.tensor(layout: .nchw), into: fromPlain)
    let a = Array(UnsafeBufferPointer(start: fromBlocked.data, count: shape.count))
    let b = Array(UnsafeBufferPointer(start: fromPlain.data, count: shape.count))
    #expect(a == b)
    #expect(b.contains(0) && b.contains(255) && b.contains { $0 > 0 && $0 < 255 })
}

/// Per-channel weight quantization (a buffer loop rounding with 1.5·2²³, so predict's start-up
/// quantizes R1 in one fast pass) gives exactly the plain rule: step = max |w| / 127 (1 for a
/// zero channel), q = w / step rounded to nearest, ties to even, the channel's largest at ±127.
@Test func int8WeightsFollowThePlainRoundingRule() {
    var rng = SplitMix64(seed: 5)
    let per = 37
    var w = rng.uniform(5 * per, -0.7, 0.7).map(Float.init)
    for i in 0..<per { w[per + i] = 0 }                                        // a zero channel
    w[2 * per] = 1.27; for i in 1..<per { w[2 * per + i] = Float(i - 18) * 0.025 }  // ties: k + ½ codes
    w[3 * per + 4] = -2                                                        // a negative maximum
    let q = Int8Weights(quantizing: w, outputChannels: 5)
    for o in 0..<5 {
        let row = w[(o * per)..<((o + 1) * per)]
        let top = row.map(abs).max()!
        let step: Float = top > 0 ? top / 127 : 1
        #expect(q.steps[o] == step)
        for i in row.indices {
            #expect(q.values[i] == Int8(max(-127, min(127, (w[i] / step).rounded(.toNearestOrEven)))), "channel \(o) weight \(i)")
        }
    }
    #expect(q.values[3 * per + 4] == -127 && q.values[2 * per] == 127 && q.values[(per)..<(2 * per)].allSatisfy { $0 == 0 })
    #expect(q.values[(2 * per)..<(3 * per)].contains { abs(Float($0)).truncatingRemainder(dividingBy: 2) == 0 && $0 != 0 })
}

/// The int8 chain's head (`PointwiseLogits`: NHWC features × (K, C) weights by one oneDNN
/// matmul straight into NCHW logits, bias per class) equals the naive 1×1 convolution, on a
/// fast oneDNN kernel, not `ref` (a oneDNN 1×1 convolution NHWC → NCHW is `ref`, ~20× slower;
/// NHWC → NHWC plus a reorder was what the chain paid before).
@Test func pointwiseLogitsMatchTheReferenceConvolution() {
    let g = ConvGeometry(inputChannels: 32, outputChannels: 3, kernel: 1, padding: 0)
    let x = randomRef(Shape(2, 32, 7, 9), seed: 81), w = randomRef(g.weightShape, seed: 82)
    let bias: [Double] = [0.5, -1.25, 2]
    let weight = Parameter(shape: g.weightShape), b = Parameter(shape: Shape(3, 1, 1, 1))
    weight.value.setNCHW(w.values.map(Float.init)); b.value.setNCHW(bias.map(Float.init))
    let head = PointwiseLogits(), out = Tensor(shape: Shape(2, 3, 7, 9), layout: .nchw)
    for _ in 0..<2 { head.forward(features: x.tensor(layout: .nhwc), weight: weight, bias: b, into: out) }  // the plan is reused
    let expected = ReferenceConv.forward(x, w, bias, g)
    let got = out.nchwValues()
    let worst = zip(got, expected.values).map { abs(Double($0) - $1) }.max()!
    #expect(worst < 1e-5, "pointwise logits differ by \(worst)")
    #expect(!head.implementation.hasPrefix("ref"), "oneDNN matmul \(head.implementation)")
}
