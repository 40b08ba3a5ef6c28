import Core
import Engine
import Testing
import TestSupport

// The fast kernels (oneDNN and hand-written) equal the Double reference kernels within 1e-4
// normwise relative error, in plain and blocked layouts.

private let tol = 1e-4

private func expectMatch(_ fast: Tensor, _ ref: RefTensor, _ what: String) {
    #expect(fast.shape == ref.shape, "\(what): shape \(fast.shape) vs \(ref.shape)")
    let e = relativeError(values(fast), ref.values)
    #expect(e < tol, "\(what): relative error \(e)")
}
private func expectMatch(_ fast: [Double], _ ref: [Double], _ what: String) {
    let e = relativeError(fast, ref)
    #expect(e < tol, "\(what): relative error \(e)")
}

struct ConvCase: CustomTestStringConvertible, Sendable {
    var inC: Int, outC: Int, k: Int, stride: Int, pad: Int, dil: Int, bias: Bool, layout: Layout
    var testDescription: String { "I\(inC) O\(outC) k\(k) s\(stride) p\(pad) d\(dil) bias=\(bias) \(layout)" }
}

@Test(arguments: [
    ConvCase(inC: 16, outC: 16, k: 3, stride: 1, pad: 1, dil: 1, bias: false, layout: .nChw16c),
    ConvCase(inC: 16, outC: 32, k: 3, stride: 1, pad: 2, dil: 2, bias: true, layout: .nChw16c),
    ConvCase(inC: 16, outC: 16, k: 3, stride: 1, pad: 4, dil: 4, bias: false, layout: .nChw16c),
    ConvCase(inC: 4, outC: 16, k: 3, stride: 1, pad: 1, dil: 1, bias: false, layout: .nchw),
    ConvCase(inC: 3, outC: 5, k: 3, stride: 2, pad: 1, dil: 1, bias: true, layout: .nchw),
    ConvCase(inC: 32, outC: 6, k: 1, stride: 1, pad: 0, dil: 1, bias: true, layout: .nChw16c),
    ConvCase(inC: 8, outC: 8, k: 3, stride: 1, pad: 2, dil: 2, bias: true, layout: .nChw16c),
    ConvCase(inC: 8, outC: 12, k: 3, stride: 1, pad: 4, dil: 4, bias: false, layout: .nChw16c),
])
func convolutionMatchesReference(_ c: ConvCase) {
    let g = ConvGeometry(inputChannels: c.inC, outputChannels: c.outC, kernel: c.k, stride: c.stride,
                         padding: c.pad, dilation: c.dil, bias: c.bias)
    let x = randomRef(Shape(2, c.inC, 12, 12), seed: 31), w = randomRef(g.weightShape, seed: 32, -0.3, 0.3)
    let b = c.bias ? (0..<c.outC).map { Double($0) * 0.1 - 0.2 } : nil
    let dy = randomRef(g.outputShape(x.shape), seed: 33)
    let kernel = ConvolutionKernel(g)
    let weight = parameter(w), bias = b.map(vectorParameter)
    let input = x.tensor(layout: c.layout)
    let outLayout: Layout = .nChw16c
    let output = Tensor(shape: g.outputShape(x.shape), layout: outLayout)
    kernel.forward(input: input, weight: weight, bias: bias, output: output, training: true)
    expectMatch(output, ReferenceConv.forward(x, w, b, g), "conv forward")

    let (rdx, rdw, rdb) = ReferenceConv.backward(x, w, dy, g)
    let dOut = dy.tensor(layout: outLayout), dIn = Tensor(shape: x.shape, layout: c.layout)
    kernel.backwardData(dOutput: dOut, weight: weight, dInput: dIn)
    expectMatch(dIn, rdx, "conv backward data")
    kernel.backwardWeights(input: input, dOutput: dOut, weight: weight, bias: bias)
    expectMatch(weight.grad, rdw, "conv backward weights")
    if let bias { expectMatch(values(bias.grad), rdb, "conv backward bias") }
    // Never oneDNN's reference loops where another layout has a vectorised kernel (a blocked
    // dilated convolution under 16 channels: reordered in and out instead, 30× faster to train).
    #expect(kernel.implementations.allSatisfy { !$0.hasPrefix("ref") }, "\(kernel.implementations)")
    // Second step with changed weights: cached primitives, weights re-reordered.
    weight.set(w.values.map { Float(-$0) })
    kernel.forward(input: input, weight: weight, bias: bias, output: output, training: true)
    expectMatch(output, ReferenceConv.forward(x, RefTensor(w.shape, w.values.map { -$0 }), b, g), "conv forward after update")
}

@Test(arguments: layouts)
func transposedConvolutionMatchesReference(_ layout: Layout) {
    let g = ConvGeometry(inputChannels: 16, outputChannels: 16, kernel: 2, stride: 2, bias: true, transposed: true)
    let x = randomRef(Shape(2, 16, 5, 6), seed: 34), w = randomRef(g.weightShape, seed: 35)
    let b = (0..<16).map { Double($0) * 0.05 }
    let dy = randomRef(g.outputShape(x.shape), seed: 36)
    let kernel = ConvolutionKernel(g)
    let weight = parameter(w), bias = vectorParameter(b)
    let input = x.tensor(layout: layout), output = Tensor(shape: g.outputShape(x.shape), layout: layout)
    kernel.forward(input: input, weight: weight, bias: bias, output: output, training: true)
    expectMatch(output, ReferenceConv.transposedForward(x, w, b, g), "deconv forward")
    let (rdx, rdw, rdb) = ReferenceConv.transposedBackward(x, w, dy, g)
    let dOut = dy.tensor(layout: layout), dIn = Tensor(shape: x.shape, layout: layout)
    kernel.backwardData(dOutput: dOut, weight: weight, dInput: dIn)
    expectMatch(dIn, rdx, "deconv backward data")
    kernel.backwardWeights(input: input, dOutput: dOut, weight: weight, bias: bias)
    expectMatch(weight.grad, rdw, "deconv backward weights")
    expectMatch(values(bias.grad), rdb, "deconv backward bias")
}

@Test(arguments: [(Layout.nchw, false), (.nChw16c, false), (.nChw16c, true), (.nchw, true)])
func batchNormMatchesReference(_ layout: Layout, _ relu: Bool) {
    let C = 16
    let x = randomRef(Shape(2, C, 5, 5), seed: 37, -2, 3)
    let gamma = (0..<C).map { 0.5 + Double($0) * 0.1 }, beta = (0..<C).map { Double($0) * 0.03 - 0.2 }
    let dy = randomRef(x.shape, seed: 38)
    let k = BatchNormKernel(channels: C, epsilon: 1e-5, fuseReLU: relu)
    var scale = gamma.map(Float.init), shift = beta.map(Float.init)
    var mean = [Float](repeating: 0, count: C), variance = mean, dScale = mean, dShift = mean
    let input = x.tensor(layout: layout), output = Tensor(shape: x.shape, layout: layout)
    k.forward(input: input, output: output, scale: &scale, shift: &shift, mean: &mean, variance: &variance, training: true)
    let ref = ReferenceBatchNorm.forwardTraining(x, gamma, beta, eps: 1e-5, relu: relu)
    expectMatch(output, ref.y, "bn forward")
    expectMatch(mean.map(Double.init), ref.mean, "bn mean")
    expectMatch(variance.map(Double.init), ref.variance, "bn variance")
    let dIn = Tensor(shape: x.shape, layout: layout)
    k.backward(input: input, dOutput: dy.tensor(layout: layout), dInput: dIn, scale: &scale, shift: &shift, mean: &mean,
               variance: &variance, dScale: &dScale, dShift: &dShift)
    let rb = ReferenceBatchNorm.backward(x, gamma, beta, dy, eps: 1e-5, relu: relu)
    expectMatch(dIn, rb.dx, "bn backward")
    expectMatch(dScale.map(Double.init), rb.dGamma, "bn dgamma")
    expectMatch(dShift.map(Double.init), rb.dBeta, "bn dbeta")
    // Inference with given statistics.
    var rm = (0..<C).map { Float($0) * 0.1 }, rv = (0..<C).map { 1 + Float($0) * 0.2 }
    k.forward(input: input, output: output, scale: &scale, shift: &shift, mean: &rm, variance: &rv, training: false)
    expectMatch(output, ReferenceBatchNorm.forwardInference(x, gamma, beta, rm.map(Double.init), rv.map(Double.init), eps: 1e-5, relu: relu), "bn inference")
}

@Test(arguments: layouts)
func reluAndAvgPoolMatchReference(_ layout: Layout) {
    let x = distinctRef(Shape(2, 16, 6, 6), seed: 39)
    let dy = randomRef(x.shape, seed: 40)
    let relu = ReLUKernel()
    let input = x.tensor(layout: layout), out = Tensor(shape: x.shape, layout: layout), dIn = Tensor(shape: x.shape, layout: layout)
    relu.forward(input: input, output: out)
    expectMatch(out, ReferenceActivation.relu(x), "relu forward")
    relu.backward(input: input, dOutput: dy.tensor(layout: layout), dInput: dIn)
    expectMatch(dIn, ReferenceActivation.reluBackward(x, dy), "relu backward")

    let pool = PoolingKernel(.average, kernel: 3, stride: 2, padding: 1)
    let ps = pool.outputShape(x.shape)
    let pOut = Tensor(shape: ps, layout: layout)
    pool.forward(input: input, output: pOut)
    expectMatch(pOut, ReferenceSpatial.avgPool(x, kernel: 3, stride: 2, padding: 1), "avgpool forward")
    let pdy = randomRef(ps, seed: 41)
    pool.backward(dOutput: pdy.tensor(layout: layout), dInput: dIn)
    expectMatch(dIn, ReferenceSpatial.avgPoolBackward(x, pdy, kernel: 3, stride: 2, padding: 1), "avgpool backward")
}

@Test(arguments: layouts)
func maxPoolAndUnpoolMatchReference(_ layout: Layout) {
    let x = distinctRef(Shape(2, 16, 6, 8), seed: 42)
    let (ry, ridx) = ReferenceSpatial.maxPool2x2(x)
    let input = x.tensor(layout: layout), out = Tensor(shape: ry.shape, layout: layout)
    let idx = PoolIndices(outputView: out.spatialView)
    MaxPool2x2.forward(input: input, output: out, indices: idx)
    expectMatch(out, ry, "maxpool forward")
    let dy = randomRef(ry.shape, seed: 43)
    let dIn = Tensor(shape: x.shape, layout: layout)
    MaxPool2x2.backward(dOutput: dy.tensor(layout: layout), indices: idx, dInput: dIn)
    expectMatch(dIn, ReferenceSpatial.maxUnpool2x2(dy, ridx), "maxpool backward")
    // Accumulating backward adds on top (skip connections).
    MaxPool2x2.backward(dOutput: dy.tensor(layout: layout), indices: idx, dInput: dIn, accumulate: true)
    let twice = ReferenceSpatial.maxUnpool2x2(dy, ridx).values.map { 2 * $0 }
    expectMatch(values(dIn), twice, "maxpool backward accumulate")
    // Max-unpooling with those indices.
    let u = randomRef(ry.shape, seed: 44), ud = randomRef(x.shape, seed: 45)
    let uOut = Tensor(shape: x.shape, layout: layout)
    MaxUnpool2x2.forward(input: u.tensor(layout: layout), indices: idx, output: uOut)
    expectMatch(uOut, ReferenceSpatial.maxUnpool2x2(u, ridx), "unpool forward")
    let uIn = Tensor(shape: ry.shape, layout: layout)
    MaxUnpool2x2.backward(dOutput: ud.tensor(layout: layout), indices: idx, dInput: uIn)
    expectMatch(uIn, ReferenceSpatial.maxUnpool2x2Backward(ud, ridx), "unpool backward")
}

@Test(arguments: layouts)
func upsamplingMatchesReference(_ layout: Layout) {
    let x = randomRef(Shape(2, 16, 5, 7), seed: 46)
    let big = Shape(2, 16, 10, 14)
    let dy = randomRef(big, seed: 47)
    let input = x.tensor(layout: layout), out = Tensor(shape: big, layout: layout)
    let dOut = dy.tensor(layout: layout), dIn = Tensor(shape: x.shape, layout: layout)

    let bilinear = ResamplingKernel(.linear)
    bilinear.forward(input: input, output: out)
    expectMatch(out, ReferenceSpatial.bilinear2x(x), "bilinear forward (oneDNN)")
    BilinearUpsample2x.backward(dOutput: dOut, dInput: dIn)
    expectMatch(dIn, ReferenceSpatial.bilinear2xBackward(dy), "bilinear backward (native)")
    bilinear.backward(dOutput: dOut, dInput: dIn)
    expectMatch(dIn, ReferenceSpatial.bilinear2xBackward(dy), "bilinear backward (oneDNN)")

    let nearest = ResamplingKernel(.nearest)
    nearest.forward(input: input, output: out)
    expectMatch(out, ReferenceSpatial.nearest2x(x), "nearest forward")
    nearest.backward(dOutput: dOut, dInput: dIn)
    expectMatch(dIn, ReferenceSpatial.nearest2xBackward(dy), "nearest backward")

    NailsUpsample2x.forward(input: input, output: out)
    expectMatch(out, ReferenceSpatial.nails2x(x), "nails forward")
    NailsUpsample2x.backward(dOutput: dOut, dInput: dIn)
    expectMatch(dIn, ReferenceSpatial.nails2xBackward(dy), "nails backward")
}

@Test(arguments: layouts)
func concatAndAddMatchReference(_ layout: Layout) {
    let a = randomRef(Shape(2, 16, 3, 4), seed: 48), b = randomRef(Shape(2, layout == .nchw ? 5 : 32, 3, 4), seed: 49)
    let ref = ReferenceSpatial.concat([a, b])
    let out = Tensor(shape: ref.shape, layout: layout)
    ChannelConcat.forward(inputs: [a.tensor(layout: layout), b.tensor(layout: layout)], output: out)
    expectMatch(out, ref, "concat forward")
    let dy = randomRef(ref.shape, seed: 50)
    let da = Tensor(shape: a.shape, layout: layout), db = Tensor(shape: b.shape, layout: layout)
    ChannelConcat.backward(dOutput: dy.tensor(layout: layout), dInputs: [da, db])
    let parts = ReferenceSpatial.split(dy, channels: [a.shape.c, b.shape.c])
    expectMatch(da, parts[0], "split a")
    expectMatch(db, parts[1], "split b")

    let sum = Tensor(shape: a.shape, layout: layout)
    let a2 = randomRef(a.shape, seed: 51)
    Elementwise.add(a.tensor(layout: layout), a2.tensor(layout: layout), into: sum)
    expectMatch(sum, RefTensor(a.shape, zip(a.values, a2.values).map(+)), "add")
}

@Test func softmaxMatchesReference() {
    let x = randomRef(Shape(2, 6, 3, 5), seed: 52, -3, 3), dy = randomRef(x.shape, seed: 53)
    for log in [false, true] {
        let out = Tensor(shape: x.shape), dIn = Tensor(shape: x.shape)
        ChannelSoftmax.forward(input: x.tensor(), output: out, log: log)
        expectMatch(out, ReferenceActivation.softmax(x, log: log), "softmax forward log=\(log)")
        ChannelSoftmax.backward(output: out, dOutput: dy.tensor(), dInput: dIn, log: log)
        expectMatch(dIn, ReferenceActivation.softmaxBackward(x, dy, log: log), "softmax backward log=\(log)")
    }
}

@Test func layoutRoundTrip() {
    let x = randomRef(Shape(2, 20, 3, 3), seed: 54)
    let t = x.tensor(layout: .nchw)
    let blocked = t.converted(to: .nChw16c)
    #expect(blocked.paddedChannels == 32)
    #expect(values(blocked) == x.values.map { Double(Float($0)) })
    #expect(values(blocked.converted(to: .nhwc)) == values(t))
}

/// The Winograd paths (backward-weights by default; every pass with `.all`) against the
/// reference: the transforms change rounding, not results (direct where there is no Winograd).
@Test(arguments: [WinogradUse.backwardWeights, .all])
func winogradMatchesReference(_ use: WinogradUse) {
    let g = ConvGeometry(inputChannels: 32, outputChannels: 32, kernel: 3, stride: 1, padding: 1, bias: true)
    let x = randomRef(Shape(2, 32, 16, 16), seed: 60), w = randomRef(g.weightShape, seed: 61, -0.2, 0.2)
    let b = (0..<32).map { Double($0) * 0.01 }
    let dy = randomRef(g.outputShape(x.shape), seed: 62)
    let kernel = ConvolutionKernel(g, winograd: use)
    let weight = parameter(w), bias = vectorParameter(b)
    let input = x.tensor(layout: .nChw16c), output = Tensor(shape: g.outputShape(x.shape), layout: .nChw16c)
    kernel.forward(input: input, weight: weight, bias: bias, output: output, training: true)
    let dOut = dy.tensor(layout: .nChw16c), dIn = Tensor(shape: x.shape, layout: .nChw16c)
    kernel.backwardData(dOutput: dOut, weight: weight, dInput: dIn)
    kernel.backwardWeights(input: input, dOutput: dOut, weight: weight, bias: bias)
    let impl = kernel.implementations
    if CPUFeatures.hasWinograd {  // else every pass runs direct, and must still match
        #expect(impl[2].contains("wino"), "backward-weights uses \(impl[2])")
        if use == .all { #expect(impl[0].contains("wino") && impl[1].contains("wino"), "\(impl)") }
    }
    let (rdx, rdw, rdb) = ReferenceConv.backward(x, w, dy, g)
    expectMatch(output, ReferenceConv.forward(x, w, b, g), "winograd forward")
    expectMatch(dIn, rdx, "winograd backward data")
    expectMatch(weight.grad, rdw, "winograd backward weights")
    expectMatch(values(bias.grad), rdb, "winograd backward bias")
}

/// The hand-written ×2 kernels, dense and writing into / reading from a channel slice of a
/// larger tensor (how the U-Net fills its concat buffer without a copy).
@Test(arguments: layouts)
func nativeUpsamplingMatchesReference(_ layout: Layout) {
    let x = randomRef(Shape(2, 16, 5, 7), seed: 70)
    let big = Shape(2, 16, 10, 14)
    let dy = randomRef(big, seed: 71)
    let cases: [(Upsample2xKind, RefTensor, RefTensor)] = [
        (.bilinear, ReferenceSpatial.bilinear2x(x), ReferenceSpatial.bilinear2xBackward(dy)),
        (.nearest, ReferenceSpatial.nearest2x(x), ReferenceSpatial.nearest2xBackward(dy)),
        (.nails, ReferenceSpatial.nails2x(x), ReferenceSpatial.nails2xBackward(dy)),
    ]
    for (kind, fwd, bwd) in cases {
        let out = Tensor(shape: big, layout: layout), dIn = Tensor(shape: x.shape, layout: layout)
        Upsample2x.forward(kind, input: x.tensor(layout: layout), output: out)
        expectMatch(out, fwd, "\(kind) forward")
        Upsample2x.backward(kind, dOutput: dy.tensor(layout: layout), dInput: dIn)
        expectMatch(dIn, bwd, "\(kind) backward")
        // Into the first 16 channels of a 48-channel tensor, and back out of it.
        let cat = Tensor(shape: Shape(2, 48, 10, 14), layout: layout)
        let input = x.tensor(layout: layout)
        withExtendedLifetime(input) {
            Upsample2x.forward(kind, input.data, input.spatialView, cat.data, cat.leadingChannelsView(16))
        }
        let catValues = RefTensor(cat)
        let firstChannels = ReferenceSpatial.split(catValues, channels: [16, 32])[0]
        expectMatch(firstChannels.values, fwd.values, "\(kind) forward into a slice")
        let gcat = ReferenceSpatial.concat([dy, randomRef(Shape(2, 32, 10, 14), seed: 72)]).tensor(layout: layout)
        withExtendedLifetime(gcat) {
            Upsample2x.backward(kind, gcat.data, gcat.leadingChannelsView(16), dIn.data, dIn.spatialView)
        }
        expectMatch(dIn, bwd, "\(kind) backward from a slice")
    }
}

/// `ClassScores.best` is the argmax of every map and of validation: ties go to the lower
/// class, `scale` multiplies every score, `stride` steps between class planes.
@Test func classScoresBestTakesTheFirstMaximum() {
    let scores: [Float] = [0.2, 9, 0.5, 9, 0.5, 9, 0.3, 9]  // classes at stride 2: 0.2, 0.5, 0.5, 0.3
    scores.withUnsafeBufferPointer { s in
        let (index, score) = ClassScores.best(s.baseAddress!, classes: 4, stride: 2)
        #expect(index == 1 && score == 0.5)
        let scaled = ClassScores.best(s.baseAddress!, classes: 4, stride: 2, scale: 0.5)
        #expect(scaled.index == 1 && scaled.score == 0.25)
        #expect(ClassScores.best(s.baseAddress!, classes: 1, stride: 2).index == 0)
    }
}

@Test(arguments: [
    ConvCase(inC: 4, outC: 16, k: 7, stride: 2, pad: 3, dil: 1, bias: false, layout: .nchw),
    ConvCase(inC: 6, outC: 16, k: 7, stride: 2, pad: 3, dil: 1, bias: false, layout: .nchw),
    ConvCase(inC: 16, outC: 32, k: 3, stride: 2, pad: 1, dil: 1, bias: false, layout: .nChw16c),
    ConvCase(inC: 16, outC: 32, k: 1, stride: 2, pad: 0, dil: 1, bias: false, layout: .nChw16c),
    ConvCase(inC: 32, outC: 16, k: 1, stride: 1, pad: 0, dil: 2, bias: false, layout: .nChw16c),
])
func resNetConvolutionsMatchReference(_ c: ConvCase) {
    convolutionMatchesReference(c)
}

@Test(arguments: layouts)
func paddedMaxPoolMatchesReference(_ layout: Layout) {
    for shape in [Shape(2, 16, 8, 8), Shape(1, 16, 7, 9)] {
        let x = distinctRef(shape, seed: 44)
        let pool = PoolingKernel(.max, kernel: 3, stride: 2, padding: 1)
        let ps = pool.outputShape(x.shape)
        let out = Tensor(shape: ps, layout: layout)
        pool.forward(input: x.tensor(layout: layout), output: out)
        expectMatch(out, ReferenceSpatial.maxPool(x, kernel: 3, stride: 2, padding: 1).y, "padded maxpool forward \(shape)")
        let dy = randomRef(ps, seed: 45)
        let dIn = Tensor(shape: x.shape, layout: layout)
        pool.backward(dOutput: dy.tensor(layout: layout), dInput: dIn)
        expectMatch(dIn, ReferenceSpatial.maxPoolBackward(x, dy, kernel: 3, stride: 2, padding: 1), "padded maxpool backward \(shape)")
    }
}

@Test(arguments: layouts)
func residualAddReLUMatchesReference(_ layout: Layout) {
    let a = randomRef(Shape(2, 16, 5, 6), seed: 46), b = randomRef(a.shape, seed: 47)
    let dy = randomRef(a.shape, seed: 48)
    let out = Tensor(shape: a.shape, layout: layout), dIn = Tensor(shape: a.shape, layout: layout)
    Elementwise.addReLU(a.tensor(layout: layout), b.tensor(layout: layout), into: out)
    let y = ReferenceActivation.relu(ReferenceElementwise.add(a, b))
    expectMatch(out, y, "add+relu forward")
    Elementwise.reluBackward(output: out, dOutput: dy.tensor(layout: layout), into: dIn)
    expectMatch(dIn, ReferenceActivation.reluBackward(ReferenceElementwise.add(a, b), dy), "add+relu backward")
}
