import Core
import Engine
import Models
import Testing
import TestSupport

@Test func r1HasTheReferenceParameterCount() {
    let net = UNet(.r1)
    #expect(net.parameterCount == 10_210_374)
    let names = net.namedParameters.map(\.0)
    #expect(Set(names).count == names.count, "parameter names are unique")
    #expect(names.first == "enc1.conv1.weight")
    #expect(names.contains("bottleneck.conv3.weight"))
    #expect(names.contains("dec4.bn2.bias"))
    #expect(names.suffix(2) == ["head.weight", "head.bias"])
    #expect(UNet(.r1Nails).parameterCount == 10_210_374)
    #expect(UNetConfiguration.preset("r1-nails") == .r1Nails)
}

/// R1 with learned upsampling adds, per level with skip width w over b channels below, a
/// 2×2 transposed convolution (b·w·4 + w) or a 1×1 convolution (b·w + w), and the decoder's
/// first convolution reads 2w instead of b + w channels.
@Test(arguments: [UpsamplingMode.transposed, .maxUnpooling])
func learnedUpsamplingParameters(_ mode: UpsamplingMode) {
    var c = UNetConfiguration.r1
    c.upsampling = mode
    let net = UNet(c)
    let kernel = mode == .transposed ? 4 : 1
    var added = 0, below = c.bottleneckWidth
    for w in c.widths.reversed() {
        added += below * w * kernel + w  // dec{L}.up.weight and .bias
        added += (w - below) * w * 9     // dec{L}.conv1 reads 2w channels instead of below + w
        below = w
    }
    #expect(net.parameterCount == 10_210_374 + added)
    #expect(net.parameterCount == (mode == .transposed ? 10_123_814 : 9_601_574))  // torch_models.UNet's count
    let params = Dictionary(uniqueKeysWithValues: net.namedParameters.map { ($0.0, $0.1) })
    #expect(params.count == net.namedParameters.count, "parameter names are unique")
    // PyTorch shapes: ConvTranspose2d (in, out, 2, 2), Conv2d (out, in, 1, 1).
    #expect(params["dec4.up.weight"]?.value.shape == (mode == .transposed ? Shape(512, 256, 2, 2) : Shape(256, 512, 1, 1)))
    #expect(params["dec1.up.weight"]?.value.shape == (mode == .transposed ? Shape(64, 32, 2, 2) : Shape(32, 64, 1, 1)))
    #expect(params["dec1.up.bias"]?.count == 32)
    #expect(params["dec4.conv1.weight"]?.value.shape == Shape(256, 512, 3, 3))
    let names = net.namedParameters.map(\.0)
    #expect(names.firstIndex(of: "dec4.up.weight")! < names.firstIndex(of: "dec4.conv1.weight")!)
    #expect(net.namedBuffers.map(\.0) == UNet(.r1).namedBuffers.map(\.0))
    #expect(ModelArchitecture.unet(c).receptiveField == ModelArchitecture.unet(.r1Nails).receptiveField)
}

private func tinyConfig(_ mode: UpsamplingMode, widths: [Int] = [16, 32]) -> UNetConfiguration {
    UNetConfiguration(inputChannels: 3, classes: 3, widths: widths, bottleneckWidth: widths.last!,
                      bottleneckDilations: [1, 2], upsampling: mode)
}

private func fixedBatch(n: Int, c: Int, h: Int, w: Int, k: Int) -> (Tensor, SegmentationTarget) {
    var rng = SplitMix64(seed: 42)
    let x = Tensor(shape: Shape(n, c, h, w), values: rng.uniform(n * c * h * w).map(Float.init))
    // Labels: a pattern the input does not trivially encode, so the net must memorise.
    let labels = (0..<(n * h * w)).map { p in Int32((p / 3 + p % 5) % k) }
    return (x, SegmentationTarget(n: n, h: h, w: w, labels: labels))
}

@Test(arguments: [UpsamplingMode.bilinear, .nails, .transposed, .maxUnpooling])
func smallUNetOverfitsOneBatch(_ mode: UpsamplingMode) {
    let net = UNet(tinyConfig(mode), seed: 3)
    let (x, target) = fixedBatch(n: 2, c: 3, h: 16, w: 16, k: 3)
    let loss = FocalDiceLoss()
    let adam = Adam(parameters: net.namedParameters, learningRate: 1e-2)
    var first: Float = 0, last: Float = 0
    for step in 0..<150 {
        let l = loss(logits: net(x), target: target)
        if step == 0 { first = l.value }
        last = l.value
        net.backward(l.gradient)
        adam.update()
    }
    #expect(first > 0.5)
    #expect(last < 0.05, "loss \(first) → \(last)")
}

/// The whole network's backward against a finite difference of its forward along the
/// gradient direction of each parameter tensor (robust to Float noise and ReLU kinks):
/// (L(w + εu) − L(w − εu)) / 2ε ≈ |g| for u = g / |g|.
/// Widths 8-16: learned upsampling to 8 channels concatenates in NCHW (the blocked concat
/// cannot place the skip at channel 8). With max-unpooling the loss jumps wherever a step in
/// the encoder's weights moves a pooling argmax (ties at ReLU zeros are common), so encoder
/// gradients are checked against PyTorch instead (`learnedUpsamplingUNetMatchesPyTorch`).
@Test(arguments: [(UpsamplingMode.bilinear, [16, 32]), (.nails, [16, 32]), (.nearest, [16, 32]),
                  (.transposed, [16, 32]), (.maxUnpooling, [16, 32]), (.transposed, [8, 16]), (.maxUnpooling, [8, 16])])
func unetBackwardMatchesFiniteDifferences(_ mode: UpsamplingMode, _ widths: [Int]) {
    let net = UNet(tinyConfig(mode, widths: widths), seed: 5)
    let (x, target) = fixedBatch(n: 2, c: 3, h: 16, w: 16, k: 3)
    func loss() -> Double { Double(crossEntropyLoss(logits: net(x), target: target).value) }
    net.backward(crossEntropyLoss(logits: net(x), target: target).gradient)
    let checks = directionalDerivatives(net.namedParameters.filter { !(mode == .maxUnpooling && $0.0.hasPrefix("enc")) }) { loss() }
    for c in checks {
        #expect(abs(c.numeric - c.analytic) <= 0.05 * c.analytic + 1e-3, "\(c.name): |g| = \(c.analytic), finite difference \(c.numeric)")
    }
    #expect(checks.count >= 4, "only \(checks.count) parameters had a gradient to check")
}

@Test func inferenceUsesRunningStatistics() {
    let net = UNet(tinyConfig(.nearest), seed: 7)
    let (x, _) = fixedBatch(n: 2, c: 3, h: 8, w: 8, k: 3)
    _ = net(x)
    net.isTraining = false
    let a = net(x).nchwValues()
    let b = net(x).nchwValues()
    #expect(a == b)
    #expect(a.allSatisfy { $0.isFinite })
}

/// Inference folds each batch norm into its convolution (ReLU fused as a post-op); the result
/// equals running them separately.
@Test func foldedInferenceEqualsSeparateLayers() {
    let unit = ConvBNReLU(inputChannels: 16, outputChannels: 32, dilation: 2, seed: 4)
    var rng = SplitMix64(seed: 9)
    let x = Tensor(shape: Shape(2, 16, 8, 8), values: rng.uniform(2 * 16 * 64).map(Float.init)).converted(to: .nChw16c)
    for _ in 0..<3 { _ = unit(x) }  // training steps move the running statistics
    unit.bn.weight.set((0..<32).map { 0.5 + Float($0) * 0.05 })
    unit.bn.bias.set((0..<32).map { Float($0) * 0.02 - 0.3 })
    unit.isTraining = false
    let folded = unit(x).nchwValues()
    let separate = unit.bn(unit.conv(x)).nchwValues()
    #expect(relativeError(folded, separate.map(Double.init)) < 1e-5)
    #expect(folded.contains { $0 == 0 } && folded.contains { $0 > 0 })
}

/// A U-Net (3 bands, a dilated bottleneck) after one training step, set to inference, and a
/// batch of two 64 × 48 inputs.
private func inferenceNet(widths: [Int], _ mode: UpsamplingMode, seed: UInt64) -> (UNet, Tensor) {
    let net = UNet(UNetConfiguration(inputChannels: 3, classes: 3, widths: widths, bottleneckWidth: 32,
                                     bottleneckDilations: [1, 2], upsampling: mode), seed: seed)
    let (x, _) = fixedBatch(n: 2, c: 3, h: 64, w: 48, k: 3)
    _ = net(x)  // a training step moves the running statistics off their defaults
    net.isTraining = false
    return (net, x)
}

/// Region inference (decoder levels cropped to what the region reads) equals the whole
/// input's logits in that region, inside the input and against its borders, for every mode
/// (learned modes compute everything and crop).
@Test(arguments: UpsamplingMode.allCases)
func regionLogitsEqualTheWholeInputs(_ mode: UpsamplingMode) {
    let (net, x) = inferenceNet(widths: [16, 16, 32], mode, seed: 11)
    let whole = net(x).nchwValues()
    for r in [Window(column: 13, row: 21, width: 11, height: 19), Window(column: 0, row: 0, width: 17, height: 64),
              Window(column: 30, row: 50, width: 18, height: 14), Window(column: 0, row: 0, width: 48, height: 64)] {
        let part = net.logits(x, region: r)
        #expect(part.shape == Shape(2, 3, r.height, r.width))
        let got = part.nchwValues()
        var expected: [Double] = []
        for b in 0..<2 { for k in 0..<3 { for y in r.row..<(r.row + r.height) { for c in r.column..<(r.column + r.width) {
            expected.append(Double(whole[((b * 3 + k) * 64 + y) * 48 + c]))
        } } } }
        #expect(relativeError(got, expected) < 1e-5, "\(mode) region \(r)")
    }
    #expect(net(x).nchwValues() == whole, "the whole-input path is unchanged after region calls")
}

/// A narrow U-Net (8-16-32) at inference runs its narrow units NHWC (`channelsLast`); its
/// logits, whole and by region, equal the same network's with every unit blocked.
@Test(arguments: [UpsamplingMode.bilinear, .nails])
func channelsLastUnitsGiveTheBlockedLogits(_ mode: UpsamplingMode) {
    let (net, x) = inferenceNet(widths: [8, 16, 32], mode, seed: 13)
    let units = (net.encoders + [net.bottleneck] + net.decoders).flatMap(\.units)
    // 8→8 | 8→16 | and the shallowest decoder's 8→8 (3→8, a first layer, stays blocked).
    #expect(units.filter { $0.runsChannelsLast(x.shape) }.map { "\($0.conv.geometry.inputChannels)→\($0.conv.geometry.outputChannels)" }
            == ["8→8", "8→16", "8→8"])
    let region = Window(column: 13, row: 21, width: 11, height: 19)
    let fast = net(x).nchwValues(), fastRegion = net.logits(x, region: region).nchwValues()
    for u in units { u.channelsLast = false }
    #expect(relativeError(fast, net(x).nchwValues().map(Double.init)) < 1e-5)
    #expect(relativeError(fastRegion, net.logits(x, region: region).nchwValues().map(Double.init)) < 1e-5)
}
