import Core
import Engine
import Models
import Testing
import TestSupport

private func roundUp(_ v: Int, _ a: Int) -> Int { (v + a - 1) / a * a }

private func randomInput(_ shape: Shape, seed: UInt64) -> Tensor {
    var rng = SplitMix64(seed: seed)
    return Tensor(shape: shape, values: rng.uniform(shape.count).map(Float.init))
}

// Every parameter's gradient (basic blocks, projection shortcuts, padded max pooling, residual
// sums, the decoder junctions: nearest ×2 + concat, the identity concat of dilated stages, the
// skip-less last block, the 3×3 head) against a finite difference along the gradient.
@Test(arguments: [32, 8])
func resNetUNetBackwardMatchesFiniteDifferences(_ outputStride: Int) {
    let c = ResNetUNetConfiguration(inputChannels: 3, classes: 3, encoder: .resnet18,
                                    decoderChannels: [32, 16, 16, 16, 16], outputStride: outputStride)
    let net = ResNetUNet(c, seed: 5)
    let x = randomInput(Shape(2, 3, 64, 64), seed: 42)
    let labels: [Int32] = (0..<(2 * 64 * 64)).map { (p: Int) -> Int32 in Int32((p / 3 + p % 5) % 3) }
    let target = SegmentationTarget(n: 2, h: 64, w: 64, labels: labels)
    func loss() -> Double { Double(crossEntropyLoss(logits: net(x), target: target).value) }
    net.backward(crossEntropyLoss(logits: net(x), target: target).gradient)
    let checks = directionalDerivatives(net.namedParameters.enumerated().filter { i, p in i % 3 == 0 || p.0.contains("downsample") || p.0.hasPrefix("seg") }.map(\.element)) { loss() }
    // 10 %: the deep encoder layers' finite differences fall 5–7 % short of the analytic
    // gradient in blocks of 8 and of 16 alike (layer3.0.conv2: 0.0486 / 0.0488 against 0.0523;
    // a fourth-order stencil gives the same, a smaller eps only more noise): the ReLUs and
    // poolings the whole-tensor step crosses, not the layout. The gradients themselves are
    // held to PyTorch's within 1e-5 by resNetUNetMatchesSMP.
    for c in checks {
        #expect(abs(c.numeric - c.analytic) <= 0.1 * c.analytic + 1e-3, "\(c.name): |g| = \(c.analytic), finite difference \(c.numeric)")
    }
    #expect(checks.count >= 20, "only \(checks.count) parameters had a gradient to check")
}

// Prediction cuts scenes into windows with margin = receptive radius at offsets that are
// multiples of the alignment: two such windows' cores equal one window over the whole input.
// (Whether an input pixel changes an output cannot be measured bit for bit: Winograd
// convolutions spread rounding a few pixels beyond the true dependency. The extent is counted
// by hand in resNetUNetReceptiveFieldAndAlignment.)
@Test(arguments: [(ResNetEncoder.resnet18, 32), (.resnet50, 16)])
func resNetUNetWindowsStitchExactly(_ encoder: ResNetEncoder, _ outputStride: Int) {
    let c = ResNetUNetConfiguration(inputChannels: 3, classes: 2, encoder: encoder,
                                    decoderChannels: [32, 16, 16, 16, 16], outputStride: outputStride)
    let architecture = ModelArchitecture.resnetUNet(c)
    let net = ResNetUNet(c, seed: 9)
    let A = architecture.alignment, radius = architecture.receptiveRadius
    let width = roundUp(2 * radius + 4 * A, A), height = A * 2
    let x = randomInput(Shape(1, 3, height, width), seed: 3)
    _ = net(randomInput(Shape(2, 3, height, width), seed: 4))  // moves the running statistics
    net.isTraining = false
    let whole = net(x).nchwValues()
    let cut = width / 2
    let windows = [(0, roundUp(cut + radius, A)), ((cut - radius) / A * A, width)]
    for (i, (lo, hi)) in windows.enumerated() {
        let part = Tensor(shape: Shape(1, 3, height, hi - lo))
        SpatialCrop.copy(x, row: 0, column: lo, into: part)
        let got = net(part).nchwValues()
        let core = i == 0 ? 0..<cut : cut..<width
        var ours: [Float] = [], expected: [Float] = []
        for k in 0..<2 { for y in 0..<height { for col in core {
            ours.append(got[(k * height + y) * (hi - lo) + col - lo])
            expected.append(whole[(k * height + y) * width + col])
        } } }
        #expect(relativeError(ours, expected.map(Double.init)) < 1e-5, "\(encoder) window \(lo)..<\(hi)")
    }
}

@Test func resNetUNetReceptiveFieldAndAlignment() {
    let c = ResNetUNetConfiguration(inputChannels: 4, classes: 3, encoder: .resnet34)
    let a = ModelArchitecture.resnetUNet(c)
    #expect(a.alignment == 32)
    // Hand count (docs of receptiveExtent): stem 3, pooling 2, layer1 6 × 4, layer2 4 + 7 × 8,
    // layer3 8 + 11 × 16, layer4 16 + 5 × 32 = 449 both ways; decoder 2 × (16 + 8 + 4 + 2 + 1) = 62 both
    // ways, its nearest ×2 16 + 8 + 4 + 2 + 1 = 31 on the left only; head 1.
    #expect(c.receptiveExtent.left == 449 + 62 + 31 + 1 && c.receptiveExtent.right == 449 + 62 + 1)
    #expect(a.receptiveField == 2 * 543 + 1)
    #expect(a.parameterValues == Double((c.parameterShapes + c.bufferShapes).reduce(0) { $0 + $1.shape.reduce(1, *) }))
    #expect(ModelArchitecture.resnetUNet(ResNetUNetConfiguration(inputChannels: 4, classes: 3, encoder: .resnet34, outputStride: 8)).alignment == 8)
}

/// Region inference (the decoder only over what the region's logits read) gives the whole
/// input's logits of that region: inside, at the edges, and one pixel wide.
@Test(arguments: [(ResNetEncoder.resnet18, 32), (.resnet18, 16), (.resnet50, 8)])
func resNetUNetRegionLogitsEqualTheWholeInputs(_ encoder: ResNetEncoder, _ outputStride: Int) {
    let c = ResNetUNetConfiguration(inputChannels: 3, classes: 2, encoder: encoder,
                                    decoderChannels: [32, 16, 16, 16, 16], outputStride: outputStride)
    let net = ResNetUNet(c, seed: 11)
    let (height, width) = (96, 128)
    let x = randomInput(Shape(2, 3, height, width), seed: 5)
    _ = net(randomInput(Shape(2, 3, height, width), seed: 6))
    net.isTraining = false
    let whole = net(x).nchwValues()
    for region in [Window(column: 40, row: 33, width: 37, height: 21), Window(column: 0, row: 0, width: 64, height: 32),
                   Window(column: 100, row: 70, width: 28, height: 26), Window(column: 63, row: 47, width: 1, height: 1)] {
        let got = net.logits(x, region: region).nchwValues()
        var expected: [Float] = []
        for n in 0..<2 { for k in 0..<2 { for y in region.row..<(region.row + region.height) {
            for col in region.column..<(region.column + region.width) { expected.append(whole[((n * 2 + k) * height + y) * width + col]) }
        } } }
        #expect(got.count == expected.count && relativeError(got, expected.map(Double.init)) < 1e-5, "\(encoder)/\(outputStride) \(region)")
    }
}
