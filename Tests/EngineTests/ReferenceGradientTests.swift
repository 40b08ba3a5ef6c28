import Engine
import Testing
import TestSupport

// Finite-difference checks (in Double) of the reference kernels' input and parameter
// gradients. Scalar loss L = Σ r · y with a fixed random r, so dL/dy = r.

private func expectClose(_ analytic: [Double], _ numeric: [Double], _ what: String, tol: Double = 1e-6) {
    let e = relativeError(analytic, numeric)
    #expect(e < tol, "\(what): relative error \(e)")
}

@Test(arguments: [(1, 1, 1), (2, 1, 2), (4, 1, 4), (1, 2, 1)])
func convGradients(dilation: Int, stride: Int, padding: Int) {
    let g = ConvGeometry(inputChannels: 2, outputChannels: 3, kernel: 3, stride: stride, padding: padding,
                         dilation: dilation, bias: true)
    let x = randomRef(Shape(2, 2, 9, 9), seed: 1), w = randomRef(g.weightShape, seed: 2)
    let b = [0.1, -0.2, 0.3]
    let r = randomRef(g.outputShape(x.shape), seed: 3)
    let (dx, dw, db) = ReferenceConv.backward(x, w, r, g)
    expectClose(dx.values, numericalGradient(of: { dot(ReferenceConv.forward(RefTensor(x.shape, $0), w, b, g).values, r.values) }, at: x.values), "conv dx d=\(dilation)")
    expectClose(dw.values, numericalGradient(of: { dot(ReferenceConv.forward(x, RefTensor(w.shape, $0), b, g).values, r.values) }, at: w.values), "conv dw d=\(dilation)")
    expectClose(db, numericalGradient(of: { dot(ReferenceConv.forward(x, w, $0, g).values, r.values) }, at: b), "conv db")
}

@Test func transposedConvGradients() {
    let g = ConvGeometry(inputChannels: 3, outputChannels: 2, kernel: 2, stride: 2, bias: true, transposed: true)
    let x = randomRef(Shape(2, 3, 3, 4), seed: 4), w = randomRef(g.weightShape, seed: 5)
    let b = [0.5, -0.5]
    let r = randomRef(g.outputShape(x.shape), seed: 6)
    let (dx, dw, db) = ReferenceConv.transposedBackward(x, w, r, g)
    expectClose(dx.values, numericalGradient(of: { dot(ReferenceConv.transposedForward(RefTensor(x.shape, $0), w, b, g).values, r.values) }, at: x.values), "deconv dx")
    expectClose(dw.values, numericalGradient(of: { dot(ReferenceConv.transposedForward(x, RefTensor(w.shape, $0), b, g).values, r.values) }, at: w.values), "deconv dw")
    expectClose(db, numericalGradient(of: { dot(ReferenceConv.transposedForward(x, w, $0, g).values, r.values) }, at: b), "deconv db")
}

@Test func batchNormTrainingGradients() {
    let x = randomRef(Shape(3, 2, 3, 3), seed: 7)
    let gamma = [1.5, 0.7], beta = [0.2, -0.1]
    let r = randomRef(x.shape, seed: 8)
    let eps = 1e-5
    let (dx, dg, dbt) = ReferenceBatchNorm.backward(x, gamma, beta, r, eps: eps)
    func loss(_ x: RefTensor, _ g: [Double], _ b: [Double]) -> Double {
        dot(ReferenceBatchNorm.forwardTraining(x, g, b, eps: eps).y.values, r.values)
    }
    expectClose(dx.values, numericalGradient(of: { loss(RefTensor(x.shape, $0), gamma, beta) }, at: x.values), "bn dx", tol: 1e-5)
    expectClose(dg, numericalGradient(of: { loss(x, $0, beta) }, at: gamma), "bn dgamma")
    expectClose(dbt, numericalGradient(of: { loss(x, gamma, $0) }, at: beta), "bn dbeta")
}

@Test func batchNormReLUGradients() {
    let x = distinctRef(Shape(2, 2, 3, 3), seed: 9)
    let gamma = [1.5, 0.7], beta = [0.013, -0.017]
    let r = randomRef(x.shape, seed: 10)
    let (dx, dg, _) = ReferenceBatchNorm.backward(x, gamma, beta, r, eps: 1e-5, relu: true)
    func loss(_ x: RefTensor, _ g: [Double]) -> Double {
        dot(ReferenceBatchNorm.forwardTraining(x, g, beta, eps: 1e-5, relu: true).y.values, r.values)
    }
    expectClose(dx.values, numericalGradient(of: { loss(RefTensor(x.shape, $0), gamma) }, at: x.values, step: 1e-7), "bn+relu dx", tol: 1e-5)
    expectClose(dg, numericalGradient(of: { loss(x, $0) }, at: gamma, step: 1e-7), "bn+relu dgamma", tol: 1e-5)
}

@Test func reluAndSoftmaxGradients() {
    let x = distinctRef(Shape(2, 3, 2, 3), seed: 11)
    let r = randomRef(x.shape, seed: 12)
    expectClose(ReferenceActivation.reluBackward(x, r).values,
                numericalGradient(of: { dot(ReferenceActivation.relu(RefTensor(x.shape, $0)).values, r.values) }, at: x.values), "relu")
    for log in [false, true] {
        expectClose(ReferenceActivation.softmaxBackward(x, r, log: log).values,
                    numericalGradient(of: { dot(ReferenceActivation.softmax(RefTensor(x.shape, $0), log: log).values, r.values) }, at: x.values),
                    "softmax log=\(log)")
    }
}

@Test func poolingGradients() {
    let x = distinctRef(Shape(2, 2, 4, 6), seed: 13)
    let (y, idx) = ReferenceSpatial.maxPool2x2(x)
    let r = randomRef(y.shape, seed: 14)
    expectClose(ReferenceSpatial.maxUnpool2x2(r, idx).values,
                numericalGradient(of: { dot(ReferenceSpatial.maxPool2x2(RefTensor(x.shape, $0)).y.values, r.values) }, at: x.values), "maxpool")
    let ra = randomRef(ReferenceSpatial.avgPool(x, kernel: 3, stride: 2, padding: 1).shape, seed: 15)
    expectClose(ReferenceSpatial.avgPoolBackward(x, ra, kernel: 3, stride: 2, padding: 1).values,
                numericalGradient(of: { dot(ReferenceSpatial.avgPool(RefTensor(x.shape, $0), kernel: 3, stride: 2, padding: 1).values, ra.values) }, at: x.values), "avgpool")
}

@Test func maxUnpoolGradients() {
    let pooled = distinctRef(Shape(2, 2, 4, 4), seed: 16)
    let idx = ReferenceSpatial.maxPool2x2(pooled).indices
    let x = randomRef(Shape(2, 2, 2, 2), seed: 17)
    let r = randomRef(Shape(2, 2, 4, 4), seed: 18)
    expectClose(ReferenceSpatial.maxUnpool2x2Backward(r, idx).values,
                numericalGradient(of: { dot(ReferenceSpatial.maxUnpool2x2(RefTensor(x.shape, $0), idx).values, r.values) }, at: x.values), "unpool")
}

@Test func upsamplingGradients() {
    let x = randomRef(Shape(2, 2, 3, 5), seed: 19)
    let r = randomRef(Shape(2, 2, 6, 10), seed: 20)
    expectClose(ReferenceSpatial.bilinear2xBackward(r).values,
                numericalGradient(of: { dot(ReferenceSpatial.bilinear2x(RefTensor(x.shape, $0)).values, r.values) }, at: x.values), "bilinear")
    expectClose(ReferenceSpatial.nearest2xBackward(r).values,
                numericalGradient(of: { dot(ReferenceSpatial.nearest2x(RefTensor(x.shape, $0)).values, r.values) }, at: x.values), "nearest")
    expectClose(ReferenceSpatial.nails2xBackward(r).values,
                numericalGradient(of: { dot(ReferenceSpatial.nails2x(RefTensor(x.shape, $0)).values, r.values) }, at: x.values), "nails")
}

@Test func bilinearMatchesPyTorchCorners() {
    // torch.nn.functional.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), scale_factor=2,
    //                                 mode="bilinear", align_corners=False)
    let x = RefTensor(Shape(1, 1, 2, 2), [1, 2, 3, 4])
    let expected: [Double] = [1.0, 1.25, 1.75, 2.0, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3.0, 3.25, 3.75, 4.0]
    #expect(ReferenceSpatial.bilinear2x(x).values == expected)
}

@Test func concatGradients() {
    let a = randomRef(Shape(2, 2, 2, 3), seed: 21), b = randomRef(Shape(2, 3, 2, 3), seed: 22)
    let r = randomRef(Shape(2, 5, 2, 3), seed: 23)
    let parts = ReferenceSpatial.split(r, channels: [2, 3])
    expectClose(parts[0].values, numericalGradient(of: { dot(ReferenceSpatial.concat([RefTensor(a.shape, $0), b]).values, r.values) }, at: a.values), "concat a")
    expectClose(parts[1].values, numericalGradient(of: { dot(ReferenceSpatial.concat([a, RefTensor(b.shape, $0)]).values, r.values) }, at: b.values), "concat b")
}

@Test func addAndDropoutGradients() {
    let a = randomRef(Shape(2, 2, 3, 3), seed: 24), b = randomRef(a.shape, seed: 25), r = randomRef(a.shape, seed: 26)
    let mask = (0..<a.shape.count).map { $0 % 3 == 0 ? 0.0 : 1.5 }
    expectClose(r.values, numericalGradient(of: { dot(ReferenceElementwise.add(RefTensor(a.shape, $0), b).values, r.values) }, at: a.values), "add a")
    expectClose(r.values, numericalGradient(of: { dot(ReferenceElementwise.add(a, RefTensor(b.shape, $0)).values, r.values) }, at: b.values), "add b")
    expectClose(ReferenceElementwise.dropout(r, mask: mask).values,
                numericalGradient(of: { dot(ReferenceElementwise.dropout(RefTensor(a.shape, $0), mask: mask).values, r.values) }, at: a.values), "dropout")
}

@Test func paddedMaxPoolGradients() {
    // ResNet's stem pooling: 3×3, stride 2, padding 1 (odd and even sizes).
    for shape in [Shape(2, 2, 7, 6), Shape(1, 3, 8, 8)] {
        let x = distinctRef(shape, seed: 21)
        let y = ReferenceSpatial.maxPool(x, kernel: 3, stride: 2, padding: 1).y
        let r = randomRef(y.shape, seed: 22)
        expectClose(ReferenceSpatial.maxPoolBackward(x, r, kernel: 3, stride: 2, padding: 1).values,
                    numericalGradient(of: { dot(ReferenceSpatial.maxPool(RefTensor(x.shape, $0), kernel: 3, stride: 2, padding: 1).y.values, r.values) },
                                      at: x.values), "padded maxpool \(shape)")
    }
}

@Test(arguments: [(7, 2, 3), (1, 2, 0), (3, 2, 1)])
func stridedConvGradients(kernel: Int, stride: Int, padding: Int) {
    // ResNet's stem (7×7, stride 2), projection shortcut (1×1, stride 2) and downsampling 3×3.
    let g = ConvGeometry(inputChannels: 2, outputChannels: 3, kernel: kernel, stride: stride, padding: padding, dilation: 1, bias: true)
    let x = randomRef(Shape(2, 2, 10, 9), seed: 23), w = randomRef(g.weightShape, seed: 24)
    let b = [0.1, -0.2, 0.3]
    let r = randomRef(g.outputShape(x.shape), seed: 25)
    let (dx, dw, db) = ReferenceConv.backward(x, w, r, g)
    expectClose(dx.values, numericalGradient(of: { dot(ReferenceConv.forward(RefTensor(x.shape, $0), w, b, g).values, r.values) }, at: x.values), "conv \(kernel)×\(kernel) dx")
    expectClose(dw.values, numericalGradient(of: { dot(ReferenceConv.forward(x, RefTensor(w.shape, $0), b, g).values, r.values) }, at: w.values), "conv \(kernel)×\(kernel) dw")
    expectClose(db, numericalGradient(of: { dot(ReferenceConv.forward(x, w, $0, g).values, r.values) }, at: b), "conv \(kernel)×\(kernel) db")
}

@Test func residualAddReLUGradients() {
    // y = relu(a + b): both inputs get dy · [y > 0].
    let a = distinctRef(Shape(2, 3, 2, 3), seed: 26), b = randomRef(a.shape, seed: 27, -0.001, 0.001)
    let r = randomRef(a.shape, seed: 28)
    let y = ReferenceActivation.relu(ReferenceElementwise.add(a, b))
    let analytic = RefTensor(a.shape, zip(y.values, r.values).map { $0 > 0 ? $1 : 0 })
    func loss(_ a: RefTensor, _ b: RefTensor) -> Double { dot(ReferenceActivation.relu(ReferenceElementwise.add(a, b)).values, r.values) }
    expectClose(analytic.values, numericalGradient(of: { loss(RefTensor(a.shape, $0), b) }, at: a.values), "residual d(main)")
    expectClose(analytic.values, numericalGradient(of: { loss(a, RefTensor(b.shape, $0)) }, at: b.values), "residual d(shortcut)")
}
