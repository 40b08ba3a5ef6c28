import Core
import Engine
@testable import Models
import Testing
import TestSupport

// u8 chained between int8 layers (`Int8UNetChain`, `ByteKernels`) against the unchained int8
// path, the Float32 kernels and fp32 inference. The u8 kernels need no VNNI; the networks do.

private func bytes(_ shape: Shape, seed: UInt64) -> ByteTensor {
    var rng = SplitMix64(seed: seed)
    let b = ByteTensor(shape: shape)
    for (i, v) in rng.uniform(shape.count, 0, 256).enumerated() { b.data[i] = UInt8(min(255, v)) }
    return b
}

/// The codes of `b` (N, C, H, W) as a Float32 tensor in `layout`.
private func floats(_ b: ByteTensor, layout: Layout = .nhwc) -> Tensor {
    let s = b.shape, t = Tensor(shape: s, layout: layout)
    for n in 0..<s.n { for c in 0..<s.c { for h in 0..<s.h { for w in 0..<s.w {
        t.data[t.offset(n, c, h, w)] = Float(b[n, c, h, w])
    } } } }
    return t
}

@Test func bytePoolingAndCopiesEqualTheFloatKernels() {
    let x = bytes(Shape(2, 24, 6, 8), seed: 1)
    let pooled = ByteTensor(shape: Shape(2, 24, 3, 4))
    ByteKernels.maxPool2x2(x, into: pooled)
    let fx = floats(x), fp = Tensor(shape: pooled.shape, layout: .nhwc)
    MaxPool2x2.forward(input: fx, output: fp, indices: PoolIndices(outputView: fp.spatialView))
    #expect(floats(pooled).nchwValues() == fp.nchwValues())

    for skip in [x, bytes(Shape(2, 32, 6, 8), seed: 3)] {  // byte copies and 16-byte vectors
        let cat = ByteTensor(shape: Shape(2, skip.shape.c + 16, 6, 8))
        ByteKernels.copyChannels(skip, into: cat, offset: 16)
        #expect((0..<2).allSatisfy { n in (0..<skip.shape.c).allSatisfy { c in (0..<6).allSatisfy { h in (0..<8).allSatisfy { w in
            cat[n, c + 16, h, w] == skip[n, c, h, w] } } } })
    }

    let cropped = ByteTensor(shape: Shape(2, 24, 3, 5))
    ByteKernels.crop(x.data, x.shape, row: 2, column: 1, into: cropped.data, cropped.shape, elementBytes: 1)
    #expect(cropped[1, 7, 2, 4] == x[1, 7, 4, 5] && cropped[0, 0, 0, 0] == x[0, 0, 2, 1])
}

/// 20 channels: 16 vectorised and 4 scalar. Codes of one step copy exactly.
@Test(arguments: [Upsample2xKind.nearest, .nails])
func byteUpsamplingFollowsTheFloatKernel(_ kind: Upsample2xKind) {
    let x = bytes(Shape(2, 20, 5, 6), seed: 2)
    let expected = Tensor(shape: Shape(2, 20, 10, 12), layout: .nhwc)
    Upsample2x.forward(kind, input: floats(x), output: expected)
    let cat = ByteTensor(shape: Shape(2, 36, 10, 12))
    ByteKernels.upsample2x(kind, x, into: cat)
    var worst: Float = 0
    for n in 0..<2 { for c in 0..<20 { for h in 0..<10 { for w in 0..<12 {
        worst = max(worst, abs(Float(cat[n, c, h, w]) - expected.data[expected.offset(n, c, h, w)]))
    } } } }
    #expect(worst == 0, "\(kind) off by \(worst) codes")
}

/// A junction in one pass: upsampling with the skip fills the whole concat, as upsampling and
/// then `copyChannels` do (16-byte and byte copies of the skip: 32 and 20 channels).
@Test(arguments: [Upsample2xKind.nearest, .nails])
func byteUpsamplingWithTheSkipFillsTheConcat(_ kind: Upsample2xKind) {
    let x = bytes(Shape(2, 20, 5, 6), seed: 5)
    for skipChannels in [32, 20] {
        let skip = bytes(Shape(2, skipChannels, 10, 12), seed: 6)
        let apart = ByteTensor(shape: Shape(2, 20 + skipChannels, 10, 12)), fused = ByteTensor(shape: apart.shape)
        ByteKernels.upsample2x(kind, x, into: apart)
        ByteKernels.upsample2x(kind, x, into: fused, skip: skip)
        ByteKernels.copyChannels(skip, into: apart, offset: 20)
        #expect((0..<apart.shape.count).allSatisfy { apart.data[$0] == fused.data[$0] }, "\(kind), \(skipChannels) skip channels")
    }
}

/// The chain's bilinear junction: oneDNN's resampling of Float32 NHWC values (in steps) into
/// u8 rounds the Float32 kernel's bilinear ×2 once, to the nearest code, saturating at 0 and
/// 255; `concatenate` then writes [up, skip] as two channel copies do.
@Test func byteResamplingRoundsTheFloatBilinearAndConcatenates() {
    var rng = SplitMix64(seed: 8)
    let x = Tensor(shape: Shape(2, 20, 5, 6), layout: .nhwc)
    x.setNCHW(rng.uniform(x.shape.count, -20, 280).map(Float.init))
    let expected = Tensor(shape: Shape(2, 20, 10, 12), layout: .nhwc)
    Upsample2x.forward(.bilinear, input: x, output: expected)
    let up = ByteTensor(shape: expected.shape)
    let resampler = ResamplingKernel(.linear)
    resampler.forward(input: x, output: up)
    #expect(!resampler.byteImplementation.hasPrefix("ref"), "oneDNN resampling \(resampler.byteImplementation)")
    var worst: Float = 0
    for n in 0..<2 { for c in 0..<20 { for h in 0..<10 { for w in 0..<12 {
        worst = max(worst, abs(Float(up[n, c, h, w]) - min(255, max(0, expected.data[expected.offset(n, c, h, w)]))))
    } } } }
    #expect(worst <= 0.5 + 1e-3, "u8 resampling off by \(worst) codes")

    let skip = bytes(Shape(2, 32, 10, 12), seed: 9)
    let cat = ByteTensor(shape: Shape(2, 52, 10, 12)), apart = ByteTensor(shape: cat.shape)
    ByteKernels.concatenate(up, skip, into: cat)
    ByteKernels.copyChannels(up, into: apart, offset: 0)
    ByteKernels.copyChannels(skip, into: apart, offset: 20)
    #expect((0..<cat.shape.count).allSatisfy { cat.data[$0] == apart.data[$0] })
}

private func relative(_ a: [Float], _ b: [Float]) -> Double {
    let d = zip(a, b).reduce(0.0) { $0 + Double($1.0 - $1.1) * Double($1.0 - $1.1) }
    return (d / max(1e-30, b.reduce(0.0) { $0 + Double($1) * Double($1) })).squareRoot()
}

private func input(_ seed: UInt64) -> Tensor {
    var rng = SplitMix64(seed: seed)
    let t = Tensor(shape: Shape(2, 4, 32, 32))
    t.setNCHW(rng.uniform(t.shape.count, -2, 2).map(Float.init))
    return t
}

/// A small bilinear U-Net in inference, calibrated on one batch and chained in int8.
private func chainedUNet() -> UNet {
    let net = UNet(UNetConfiguration(inputChannels: 4, classes: 3, widths: [16, 32], bottleneckWidth: 32,
                                     bottleneckDilations: [1, 2], upsampling: .bilinear), seed: 11)
    net.isTraining = false
    Int8Calibration.install(Int8Calibration.calibrate(net, batches: [input(30)]), in: net)
    return net
}

/// Chained u8 against the unchained int8 path (each unit quantizing its Float32 input) and
/// fp32: the chain adds at most a coarser shared step at the skips and one rounding in the
/// bilinear upsampling, so its logits stay within the unchained path's 1 % of fp32 and within
/// 0.5 % of the unchained logits (measured 0.1–0.3 %); a region's logits equal the whole's.
@Test(.enabled(if: CPUFeatures.hasInt8DotProduct), arguments: [UpsamplingMode.bilinear, .nearest, .nails])
func chainedInt8FollowsUnchained(_ mode: UpsamplingMode) throws {
    let net = UNet(UNetConfiguration(inputChannels: 4, classes: 3, widths: [16, 32], bottleneckWidth: 32,
                                     bottleneckDilations: [1, 2], upsampling: mode), seed: 11)
    for s in 0..<3 { _ = net(input(20 + UInt64(s))) }  // moves running statistics
    net.isTraining = false
    let steps = Int8Calibration.calibrate(net, batches: (0..<3).map { input(30 + UInt64($0)) })
    let x = input(40)
    let fp32 = net(x).nchwValues()
    Int8Calibration.install(steps, in: net, chained: false)
    #expect(net.int8Chain == nil)
    let unchained = net(x).nchwValues()
    Int8Calibration.install(steps, in: net)
    let chain = try #require(net.int8Chain)
    #expect(chain.skipSteps.count == 2 && chain.encoderStages[0].count == 1)
    let chained = net(x).nchwValues()
    #expect(!chain.implementation.hasPrefix("ref"), "oneDNN kernel \(chain.implementation)")
    let e = relative(chained, unchained), e32 = relative(chained, fp32)
    #expect(e > 0 && e < 0.005, "chained vs unchained \(e)")
    #expect(e32 < 0.01, "chained vs fp32 \(e32)")

    let region = Window(column: 5, row: 9, width: 14, height: 11)
    let part = net.logits(x, region: region).nchwValues()
    var worst: Float = 0
    for n in 0..<2 { for k in 0..<3 { for r in 0..<11 { for c in 0..<14 {
        worst = max(worst, abs(part[((n * 3 + k) * 11 + r) * 14 + c] - chained[((n * 3 + k) * 32 + r + 9) * 32 + c + 5]))
    } } } }
    #expect(worst < 1e-4, "region logits differ by \(worst)")
    Int8Calibration.uninstall(from: net)
    #expect(net.int8Chain == nil && net(x).nchwValues() == fp32)
}

/// A chained U-Net quantizes each unit's weights once: the unchained `Int8ConvUnit`s it installs
/// beside the chain stay unprepared (windows and rows never run them), and a streamed unit's
/// convolution reads its stage's quantized weights (`withRowPadding`), not a second copy.
/// Before, predict's start-up folded and quantized every unit three times, serially.
@Test(.enabled(if: CPUFeatures.hasInt8DotProduct))
func chainedUnitsQuantizeTheirWeightsOnce() throws {
    let net = chainedUNet()
    let chain = try #require(net.int8Chain)
    let before = net(input(40)).nchwValues()
    _ = try #require(net.rowStream(rows: 8))
    for (name, unit) in Int8Calibration.quantizable(net) {
        #expect(unit.int8?.isPrepared == false, "\(name): the unchained kernel was quantized beside the chain")
    }
    for stage in chain.encoderStages.flatMap({ $0 }) + chain.bottleneckStages + chain.decoderStages.flatMap({ $0 }) {
        let rows = Int8ConvolutionRows(stage, chunk: 4)
        #expect(rows.kernel.sharesWeights(with: stage.kernel), "\(stage.label): rows quantized their own weights")
        #expect(rows.kernel.geometry.rowPadding == 0 && stage.kernel.geometry.rowPadding == nil)
        #expect(rows.kernel.quantizedWeights == stage.kernel.quantizedWeights)
    }
    #expect(net(input(40)).nchwValues() == before)
    Int8Calibration.install(Int8Calibration.calibrate(net, batches: [input(30)]), in: net, chained: false)
    _ = net(input(40))
    #expect(Int8Calibration.quantizable(net).allSatisfy { $0.unit.int8?.isPrepared == true }, "unchained units prepare at first use")
}

/// A streamed int8 unit allocates its line buffer and output once, however the strips' heights
/// vary (a shorter first strip, then longer ones, a short last one): each buffer is sized for the
/// most rows it holds at once. Before, the line buffer grew (allocated, zeroed, copied) three
/// times and the output twice in the first strips, serial page faults on predict's critical path.
@Test(.enabled(if: CPUFeatures.hasInt8DotProduct))
func streamedInt8UnitsAllocateTheirBuffersOnce() throws {
    let net = chainedUNet()
    let stage = try #require(net.int8Chain?.encoderStages[0].first)
    let rows = Int8ConvolutionRows(stage, chunk: 16)
    let channels = stage.kernel.geometry.inputChannels
    var emitted = 0
    for (i, h) in [7, 16, 16, 16, 5].enumerated() {
        rows.push(.bytes(bytes(Shape(1, channels, h, 24), seed: UInt64(i))), final: i == 4) { out, _ in
            if case .bytes(let b)? = out { emitted += b.shape.h }
        }
    }
    #expect(emitted == 60)
    #expect(rows.held.allocations == 1 && rows.bytes.allocations == 1,
            "line buffer allocated \(rows.held.allocations)×, output \(rows.bytes.allocations)×")
}

/// The int8 row stream ends in its own head: the last decoder's Float32 NHWC rows go straight
/// into NCHW logits (`PointwiseLogits`, as the chain's windows), so no reorder of the 32-channel
/// full-resolution rows into the blocked layout of the fp32 head, and no reorder of its output
/// (before: `Int8UNetRows` emitted blocked features for `RowStream`'s head). The logits equal
/// one chained window (`chainedInt8StreamEqualsOneChainedWindow`).
@Test(.enabled(if: CPUFeatures.hasInt8DotProduct))
func int8RowsEmitNCHWLogits() throws {
    let net = chainedUNet()
    let rows = Int8UNetRows(try #require(net.int8Chain), rows: 16)
    var rng = SplitMix64(seed: 3)
    var shapes: [Shape] = [], layouts: [Layout] = []
    for (i, h) in [16, 16].enumerated() {
        let t = Tensor(shape: Shape(1, 16, h, 32), layout: .nChw16c)  // the fp32 first unit's rows (ReLU: ≥ 0)
        t.setNCHW(rng.uniform(t.shape.count, 0, 2).map(Float.init))
        rows.push(t, final: i == 1) { out, _ in
            if let out { shapes.append(out.shape); layouts.append(out.layout) }
        }
    }
    #expect(shapes.reduce(0) { $0 + $1.h } == 32 && shapes.allSatisfy { $0.c == 3 && $0.w == 32 } && layouts.allSatisfy { $0 == .nchw },
            "emitted \(shapes) \(layouts)")
}

/// A u8 row queue keeps its rows through appends, a move to its front and growth with rows of
/// 1.5 MB (copied on all threads) and of a few bytes (on one).
@Test(arguments: [3 << 19, 24])
func byteRowQueueKeepsItsRowsInOrder(_ rowBytes: Int) {
    let queue = ByteRowQueue(reserve: 3)
    var rng = SplitMix64(seed: 7)
    let rows = (0..<6).map { _ in (0..<rowBytes).map { _ in UInt8(truncatingIfNeeded: rng.next()) } }
    func append(_ r: Range<Int>) { for i in r { rows[i].withUnsafeBytes { queue.append($0.baseAddress!, rows: 1, rowBytes: rowBytes) } } }
    func held() -> [[UInt8]] {
        let view = queue.view(0..<queue.count, channels: rowBytes, width: 1)
        return (0..<queue.count).map { Array(UnsafeBufferPointer(start: view.data + $0 * rowBytes, count: rowBytes)) }
    }
    append(0..<3)
    queue.drop(2)
    append(3..<5)  // moves row 2 to the front (apart from where it was), then appends
    #expect(held() == Array(rows[2..<5]))
    append(5..<6)  // grows, copying the held rows
    #expect(held() == Array(rows[2..<6]) && queue.allocations == 2)
}

/// A u8 convolution writes its rows straight into the next one's line buffer (`sink`): the pair
/// gives the rows it gives through the first one's own buffer and a copy, and that buffer is
/// never allocated.
@Test(.enabled(if: CPUFeatures.hasInt8DotProduct))
func linkedInt8UnitsWriteInPlace() throws {
    let stages = try #require(chainedUNet().int8Chain?.encoderStages[1])
    try #require(stages.count == 2 && stages[0].outputStep != nil)
    func run(linked: Bool) -> (out: [UInt8], allocations: Int) {
        let a = Int8ConvolutionRows(stages[0], chunk: 8), b = Int8ConvolutionRows(stages[1], chunk: 8)
        if linked { a.sink = b }
        var out: [UInt8] = []
        for (i, h) in [5, 8, 8, 3].enumerated() {
            a.push(.bytes(bytes(Shape(1, stages[0].kernel.geometry.inputChannels, h, 12), seed: UInt64(i))), final: i == 3) { rows, last in
                b.push(rows, final: last) { o, _ in
                    if case .bytes(let t)? = o { out += Array(UnsafeBufferPointer(start: t.data, count: t.shape.count)) }
                }
            }
        }
        return (out, a.bytes.allocations)
    }
    let copied = run(linked: false), inPlace = run(linked: true)
    #expect(copied.out.count == 24 * 12 * stages[1].kernel.geometry.outputChannels && inPlace.out == copied.out)
    #expect(copied.allocations == 1 && inPlace.allocations == 0)
}
