import Engine
import Foundation
import Testing
import TestSupport

// Forward and backward values of dilated convolution, batch normalisation (training) and
// bilinear ×2 upsampling equal PyTorch's on small fixed inputs. The fixtures were generated
// once by Fixtures/make_fixtures.py (PyTorch 2.15); the tests need no PyTorch.

private func fixture(_ name: String) throws -> [String: Any] {
    let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures/\(name)")
    let data = try Data(contentsOf: url)
    return try #require(JSONSerialization.jsonObject(with: data) as? [String: Any])
}
private func doubles(_ o: [String: Any], _ key: String) -> [Double] { (o[key] as? [NSNumber])?.map(\.doubleValue) ?? [] }
private func shape(_ o: [String: Any], _ key: String) -> Shape {
    let s = (o[key] as? [NSNumber])!.map(\.intValue)
    return Shape(s[0], s[1], s[2], s[3])
}
private func expectTorch(_ ours: [Double], _ torch: [Double], _ what: String) {
    #expect(ours.count == torch.count, "\(what): \(ours.count) vs \(torch.count) values")
    let e = relativeError(ours, torch)
    #expect(e < 1e-4, "\(what): relative error \(e) against PyTorch")
}

@Test(arguments: layouts)
func dilatedConvolutionMatchesPyTorch(_ layout: Layout) throws {
    let cases = try #require(try fixture("conv_dilated.json")["cases"] as? [[String: Any]])
    #expect(cases.count == 2)
    for c in cases {
        let d = (c["dilation"] as! NSNumber).intValue, p = (c["padding"] as! NSNumber).intValue
        let xs = shape(c, "x_shape"), ws = shape(c, "w_shape")
        let g = ConvGeometry(inputChannels: ws.c, outputChannels: ws.n, kernel: ws.h, padding: p, dilation: d, bias: true)
        let kernel = ConvolutionKernel(g)
        let weight = parameter(RefTensor(ws, doubles(c, "w"))), bias = vectorParameter(doubles(c, "b"))
        let x = RefTensor(xs, doubles(c, "x")).tensor(layout: layout)
        let y = Tensor(shape: g.outputShape(xs), layout: .nChw16c)
        kernel.forward(input: x, weight: weight, bias: bias, output: y, training: true)
        expectTorch(values(y), doubles(c, "y"), "conv d=\(d) forward")
        let dy = RefTensor(g.outputShape(xs), doubles(c, "dy")).tensor(layout: .nChw16c)
        let dx = Tensor(shape: xs, layout: layout)
        kernel.backwardData(dOutput: dy, weight: weight, dInput: dx)
        kernel.backwardWeights(input: x, dOutput: dy, weight: weight, bias: bias)
        expectTorch(values(dx), doubles(c, "dx"), "conv d=\(d) dx")
        expectTorch(values(weight.grad), doubles(c, "dw"), "conv d=\(d) dw")
        expectTorch(values(bias.grad), doubles(c, "db"), "conv d=\(d) db")
    }
}

@Test(arguments: layouts)
func batchNormMatchesPyTorch(_ layout: Layout) throws {
    let f = try fixture("batchnorm.json")
    let xs = shape(f, "x_shape"), C = xs.c
    let k = BatchNormKernel(channels: C, epsilon: Float((f["eps"] as! NSNumber).doubleValue))
    var scale = doubles(f, "gamma").map(Float.init), shift = doubles(f, "beta").map(Float.init)
    var mean = [Float](repeating: 0, count: C), variance = mean, dScale = mean, dShift = mean
    let x = RefTensor(xs, doubles(f, "x")).tensor(layout: layout), y = Tensor(shape: xs, layout: layout)
    k.forward(input: x, output: y, scale: &scale, shift: &shift, mean: &mean, variance: &variance, training: true)
    expectTorch(values(y), doubles(f, "y"), "batch norm forward")
    // PyTorch's running statistics after one step: momentum 0.1, unbiased variance.
    let m = Double(xs.n * xs.h * xs.w)
    expectTorch(mean.map { 0.1 * Double($0) }, doubles(f, "running_mean"), "running mean")
    expectTorch(variance.map { 0.9 + 0.1 * Double($0) * m / (m - 1) }, doubles(f, "running_var"), "running variance")
    let dx = Tensor(shape: xs, layout: layout)
    k.backward(input: x, dOutput: RefTensor(xs, doubles(f, "dy")).tensor(layout: layout), dInput: dx,
               scale: &scale, shift: &shift, mean: &mean, variance: &variance, dScale: &dScale, dShift: &dShift)
    expectTorch(values(dx), doubles(f, "dx"), "batch norm dx")
    expectTorch(dScale.map(Double.init), doubles(f, "dgamma"), "batch norm dgamma")
    expectTorch(dShift.map(Double.init), doubles(f, "dbeta"), "batch norm dbeta")
}

@Test(arguments: layouts)
func bilinearUpsamplingMatchesPyTorch(_ layout: Layout) throws {
    let f = try fixture("bilinear.json")
    let xs = shape(f, "x_shape"), big = Shape(xs.n, xs.c, 2 * xs.h, 2 * xs.w)
    let x = RefTensor(xs, doubles(f, "x")).tensor(layout: layout)
    let y = Tensor(shape: big, layout: layout)
    ResamplingKernel(.linear).forward(input: x, output: y)
    expectTorch(values(y), doubles(f, "y"), "bilinear forward (oneDNN)")
    Upsample2x.forward(.bilinear, input: x, output: y)
    expectTorch(values(y), doubles(f, "y"), "bilinear forward (native)")
    let dx = Tensor(shape: xs, layout: layout)
    Upsample2x.backward(.bilinear, dOutput: RefTensor(big, doubles(f, "dy")).tensor(layout: layout), dInput: dx)
    expectTorch(values(dx), doubles(f, "dx"), "bilinear backward (native)")
    #expect(relativeError(ReferenceSpatial.bilinear2x(RefTensor(xs, doubles(f, "x"))).values, doubles(f, "y")) < 1e-6)
}
