import Core
import Engine
@testable import Models
import Testing
import TestSupport

/// Streams `input` (1, C, H, W) through `stream` in strips whose heights cycle through
/// `strips`; returns the logits rows in order (1, K, H, W) as NCHW values.
private func streamed(_ stream: RowStream, _ input: Tensor, strips: [Int]) -> [Float] {
    let s = input.shape
    var rows: [[Float]] = []  // per output chunk, NCHW (1, K, h, W)
    var heights: [Int] = []
    var y = 0, i = 0
    while y < s.h {
        let h = min(strips[i % strips.count], s.h - y)
        let strip = Tensor(shape: Shape(1, s.c, h, s.w))
        RowCopy.copy(input, rows: y, count: h, into: strip, at: 0)
        y += h; i += 1
        stream.push(strip, final: y == s.h) { out in rows.append(out.nchwValues()); heights.append(out.shape.h) }
    }
    let K = rows.first.map { $0.count / (heights[0] * s.w) } ?? 0
    #expect(heights.reduce(0, +) == s.h, "every row comes out once")
    var out = [Float](repeating: .nan, count: K * s.h * s.w)
    var top = 0
    for (chunk, h) in zip(rows, heights) {
        for k in 0..<K { for r in 0..<h { for c in 0..<s.w {
            out[(k * s.h + top + r) * s.w + c] = chunk[(k * h + r) * s.w + c]
        } } }
        top += h
    }
    return out
}

private func randomInput(c: Int, h: Int, w: Int, seed: UInt64) -> Tensor {
    var rng = SplitMix64(seed: seed)
    return Tensor(shape: Shape(1, c, h, w), values: rng.uniform(c * h * w).map { Float($0) * 2 - 1 })
}

/// Moves the batch-norm running statistics off their defaults with one training forward.
private func settle(_ net: any SegmentationNetwork, channels: Int, size: Int) {
    net.isTraining = true
    _ = net(randomInput(c: channels, h: size, w: size, seed: 3))
    net.isTraining = false
}

private func maxDifference(_ a: [Float], _ b: [Float]) -> Float { zip(a, b).reduce(0) { max($0, abs($1.0 - $1.1)) } }

/// The dilated CNN in strips of any height (1 row, odd heights, mixed, one strip), computed in
/// chunks of several heights, equals one window over the whole odd-sized input, to float rounding.
@Test(arguments: [[1], [4], [7, 2, 13], [3, 11], [200]])
func dilatedStreamEqualsOneWindow(_ strips: [Int]) throws {
    let net = DilatedNet(DilatedNetConfiguration(inputChannels: 3, classes: 4, width: 16, dilations: [1, 2, 4, 2, 1]), seed: 5)
    settle(net, channels: 3, size: 24)
    let x = randomInput(c: 3, h: 37, w: 29, seed: 8)
    let whole = net(x).nchwValues()
    #expect((whole.max()! - whole.min()!) > 0.1, "the logits vary")
    for chunk in [1, 5, 16, 64] {
        let stream = try #require(net.rowStream(rows: chunk))
        #expect(maxDifference(streamed(stream, x, strips: strips), whole) < 1e-5, "strips \(strips), chunks of \(chunk)")
        // The stream is ready for the next scene after the last strip.
        #expect(maxDifference(streamed(stream, x, strips: [5]), whole) < 1e-5)
    }
}

/// A dilated CNN 8 channels wide runs its units but the first NHWC (blocked, oneDNN has only its reference
/// kernel for a dilated convolution under 16 channels): streamed equals one window, and the
/// window equals the all-blocked network's.
@Test func narrowDilatedNetRunsChannelsLast() throws {
    let net = DilatedNet(DilatedNetConfiguration(inputChannels: 3, classes: 4, width: 8, dilations: [1, 2, 4, 1]), seed: 6)
    settle(net, channels: 3, size: 24)
    let x = randomInput(c: 3, h: 37, w: 29, seed: 9)
    #expect(net.body.units.dropFirst().allSatisfy { $0.runsChannelsLast(x.shape) } && !net.body.units[0].runsChannelsLast(x.shape))
    let whole = net(x).nchwValues()
    let stream = try #require(net.rowStream(rows: 8))
    #expect(maxDifference(streamed(stream, x, strips: [7, 13]), whole) < 1e-5)
    #expect(stream.convolutionLayouts.dropFirst().allSatisfy { $0.2 == .nhwc })
    #expect(stream.convolutionInputLayouts.first == .nchw, "the bands are read plain")
    for u in net.body.units { u.channelsLast = false }
    #expect(maxDifference(net(x).nchwValues(), whole) < 1e-5, "all blocked")
}

/// The U-Net in strips (heights unrelated to its alignment) and chunks of several heights
/// equals one window over the whole input, for every fixed upsampling mode and a dilated
/// bottleneck.
@Test(arguments: [UpsamplingMode.bilinear, .nearest, .nails], [[8], [3, 5, 17], [13], [1], [64]])
func unetStreamEqualsOneWindow(_ mode: UpsamplingMode, _ strips: [Int]) throws {
    let net = UNet(UNetConfiguration(inputChannels: 3, classes: 3, widths: [16, 16, 32], bottleneckWidth: 32,
                                     bottleneckDilations: [1, 2], upsampling: mode), seed: 11)
    settle(net, channels: 3, size: 32)
    let x = randomInput(c: 3, h: 56, w: 40, seed: 9)
    let whole = net(x).nchwValues()
    for chunk in [8, 16, 24, 64] {
        let stream = try #require(net.rowStream(rows: chunk))
        #expect(maxDifference(streamed(stream, x, strips: strips), whole) < 1e-5, "\(mode) strips \(strips), chunks of \(chunk)")
    }
}

/// Channels that do not fill their blocks (a first level of 8, as in the small U-Net
/// 8-16-32-64) stream equal to one window too, through strips whose heights change and a next
/// scene in other strips: outputs reused across heights (`reuseRows`) keep their padding zero.
@Test(arguments: [[3, 5, 17], [13]])
func unetWithPaddedChannelsStreamsEqualToOneWindow(_ strips: [Int]) throws {
    let net = UNet(UNetConfiguration(inputChannels: 3, classes: 3, widths: [8, 16, 32], bottleneckWidth: 32,
                                     bottleneckDilations: [1, 2], upsampling: .bilinear), seed: 12)
    settle(net, channels: 3, size: 32)
    let x = randomInput(c: 3, h: 56, w: 40, seed: 10)
    let whole = net(x).nchwValues()
    for chunk in [8, 24] {
        let stream = try #require(net.rowStream(rows: chunk))
        #expect(maxDifference(streamed(stream, x, strips: strips), whole) < 1e-5, "strips \(strips), chunks of \(chunk)")
        #expect(maxDifference(streamed(stream, x, strips: [7, 30]), whole) < 1e-5, "the next scene in other strips")
    }
}

/// The small U-Net's narrow convolutions (fewer than 16 channels on a side, at most 16 on the
/// other) run NHWC in the stream; the rest, a decoder level's first convolution (a junction
/// writes its line buffer) and a deeper decoder level's last (a junction upsamples its rows)
/// stay blocked.
@Test func narrowConvolutionsStreamChannelsLast() throws {
    let net = UNet(UNetConfiguration(inputChannels: 4, classes: 3, widths: [8, 16, 32], bottleneckWidth: 64, upsampling: .bilinear), seed: 12)
    let stream = try #require(net.rowStream(rows: 16))
    _ = streamed(stream, randomInput(c: 4, h: 32, w: 64, seed: 3), strips: [16])  // layouts are chosen at the first rows
    let nhwc = stream.convolutionLayouts.filter { $0.2 == .nhwc }.map { "\($0.0)→\($0.1)" }
    // Encoders 4→8 (a first layer: blocked), 8→8 | 8→16, 16→16 | 16→32, 32→32; bottleneck; decoders…
    #expect(nhwc == ["8→8", "8→16", "8→8"], "NHWC stages: \(nhwc)")
    // The first layer reads the bands plain (oneDNN's direct kernel for a few input channels),
    // not a 16-channel block of 4 bands and 12 zeros; every other line buffer is its stage's layout.
    #expect(stream.convolutionInputLayouts.first == .nchw)
    #expect(zip(stream.convolutionInputLayouts, stream.convolutionLayouts).dropFirst().allSatisfy { $0 == $1.2 })
    #expect(ConvGeometry(inputChannels: 24, outputChannels: 8, kernel: 3, padding: 1).mayRunChannelsLast == false)
}

/// 16 → 16 convolutions run NHWC on chunks of 2¹⁶ pixels and more (oneDNN's 4×3 Winograd
/// loses there), blocked below; a stream of a wide scene that takes both equals one window,
/// and NHWC windows equal blocked ones.
@Test func fullBlocksRunChannelsLastOnLargeChunks() throws {
    let g = ConvGeometry(inputChannels: 16, outputChannels: 16, kernel: 3, padding: 1)
    #expect(g.runsChannelsLast(pixels: 256 * 256) && !g.runsChannelsLast(pixels: 181 * 181))
    let net = UNet(UNetConfiguration(inputChannels: 3, classes: 3, widths: [16, 32], bottleneckWidth: 32, upsampling: .bilinear), seed: 14)
    settle(net, channels: 3, size: 32)
    let x = randomInput(c: 3, h: 32, w: 4096, seed: 15)
    let whole = net(x).nchwValues()
    let stream = try #require(net.rowStream(rows: 16))
    #expect(maxDifference(streamed(stream, x, strips: [16, 16]), whole) < 1e-5)
    // 16 rows + 2 halo rows × 4096 px ≥ 2¹⁶ at full resolution; the half-width level stays blocked.
    let nhwc = stream.convolutionLayouts.filter { $0.2 == .nhwc }.map { "\($0.0)→\($0.1)" }
    #expect(nhwc == ["16→16", "16→16"], "NHWC stages: \(nhwc)")
    for u in (net.encoders + [net.bottleneck] + net.decoders).flatMap(\.units) { u.channelsLast = false }
    #expect(maxDifference(net(x).nchwValues(), whole) < 1e-5, "all blocked")
}

@Test(arguments: [UpsamplingMode.transposed, .maxUnpooling])
func learnedUpsamplingDoesNotStream(_ mode: UpsamplingMode) {
    let net = UNet(UNetConfiguration(inputChannels: 3, classes: 3, widths: [16, 16], bottleneckWidth: 32, upsampling: mode))
    #expect(net.rowStream(rows: 16) == nil)
}

/// Rows come out as soon as their receptive field is in: with strips of the stream's own
/// height, the rows out trail the rows in by at most the receptive radius (plus one alignment
/// step), however tall the scene, so a junction's skip queue holds tens of rows, not strips.
/// (Layers that waited for full chunks made every stage lag a chunk: the queues held the scene.)
@Test(arguments: [UpsamplingMode.bilinear, .nearest])
func unetStreamLagsOnlyByItsReceptiveRadius(_ mode: UpsamplingMode) throws {
    let configuration = UNetConfiguration(inputChannels: 3, classes: 3, widths: [16, 16, 32], bottleneckWidth: 32,
                                          bottleneckDilations: [1, 2], upsampling: mode)
    let net = UNet(configuration, seed: 11)
    let architecture = ModelArchitecture.unet(configuration)
    let strip = 16, x = randomInput(c: 3, h: 320, w: 24, seed: 4)
    let stream = try #require(net.rowStream(rows: strip))
    var fed = 0, out = 0, worstLag = 0
    while fed < x.shape.h {
        let rows = Tensor(shape: Shape(1, 3, strip, x.shape.w))
        RowCopy.copy(x, rows: fed, count: strip, into: rows, at: 0)
        fed += strip
        stream.push(rows, final: fed == x.shape.h) { out += $0.shape.h }
        if fed < x.shape.h { worstLag = max(worstLag, fed - out) }
    }
    #expect(out == x.shape.h)
    #expect(worstLag <= architecture.receptiveRadius + architecture.alignment,
            "rows out trail rows in by \(worstLag) (radius \(architecture.receptiveRadius))")
}

/// int8 units stream too: the streamed int8 logits equal one unchained int8 window over the input
/// (measured bit for bit; 1e-5 normwise allowed, while fp32 streaming is ~1e-3 away from int8).
/// Streaming runs each unit unchained (Float32 between layers); the chained window is held to
/// the unchained one in Int8ChainTests.
@Test(.enabled(if: CPUFeatures.hasInt8DotProduct), arguments: [
    ModelArchitecture.dilated(DilatedNetConfiguration(inputChannels: 3, classes: 4, width: 16, dilations: [1, 2, 4, 2, 1])),
    .unet(UNetConfiguration(inputChannels: 3, classes: 3, widths: [16, 16, 32], bottleneckWidth: 32, bottleneckDilations: [1, 2])),
])
func int8StreamEqualsOneInt8Window(_ architecture: ModelArchitecture) throws {
    let net = architecture.build(seed: 5)
    settle(net, channels: 3, size: 32)
    let x = randomInput(c: 3, h: 56, w: 40, seed: 8)
    Int8Calibration.install(Int8Calibration.calibrate(net, batches: [x]), in: net, chained: false)
    let whole = net(x).nchwValues()
    let stream = try #require(net.rowStream(rows: 16))
    let rows = streamed(stream, x, strips: [7, 13])
    let error = zip(rows, whole).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot()
        / whole.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
    #expect(error < 1e-5, "\(architecture.name): streamed int8 differs by \(error) normwise")
}

/// A chained int8 U-Net streams on u8 (`Int8UNetRows`: u8 line buffers, pooling and junctions):
/// the streamed logits equal one chained int8 window over the input (the same codes, steps and
/// bilinear rounding), for every fixed upsampling, strips of any height and several chunk
/// heights. (Streaming the unchained units instead differs from the chained window by its
/// finer skip steps and Float32 upsampling: ~1e-3 normwise.)
@Test(.enabled(if: CPUFeatures.hasInt8DotProduct), arguments: [UpsamplingMode.bilinear, .nearest, .nails], [[7, 13], [1], [64]])
func chainedInt8StreamEqualsOneChainedWindow(_ mode: UpsamplingMode, _ strips: [Int]) throws {
    let net = UNet(UNetConfiguration(inputChannels: 3, classes: 3, widths: [16, 16, 32], bottleneckWidth: 32,
                                     bottleneckDilations: [1, 2], upsampling: mode), seed: 11)
    settle(net, channels: 3, size: 32)
    let x = randomInput(c: 3, h: 56, w: 40, seed: 8)
    Int8Calibration.install(Int8Calibration.calibrate(net, batches: [x]), in: net)
    #expect(net.int8Chain != nil)
    let whole = net(x).nchwValues()
    let norm = whole.reduce(0.0) { $0 + Double($1 * $1) }.squareRoot()
    for chunk in [8, 16, 64] {
        let stream = try #require(net.rowStream(rows: chunk))
        let rows = streamed(stream, x, strips: strips)
        let error = zip(rows, whole).reduce(0.0) { $0 + Double(($1.0 - $1.1) * ($1.0 - $1.1)) }.squareRoot() / norm
        #expect(error < 1e-5, "\(mode) strips \(strips), chunks of \(chunk): streamed u8 differs by \(error) normwise")
    }
}

/// The u8 stream's bilinear junction (`Int8JunctionRows`) writes the chain's junction's bytes
/// exactly: each chunk upsamples the coarse rows it emits with one held row on each side
/// (clamped only at the scene's top and bottom), whatever pieces the rows below arrive in and
/// whatever the chunk height.
@Test(arguments: [[9], [1], [4, 2, 3]], [1, 2, 4])
func int8BilinearJunctionRowsEqualTheWholeJunction(_ pieces: [Int], _ chunk: Int) {
    var rng = SplitMix64(seed: 21)
    let below = Tensor(shape: Shape(1, 20, 9, 6), layout: .nhwc)  // Float32 in units of the step
    below.setNCHW(rng.uniform(below.shape.count, -20, 280).map(Float.init))
    let skip = ByteTensor(shape: Shape(1, 16, 18, 12))
    for (i, v) in rng.uniform(skip.shape.count, 0, 256).enumerated() { skip.data[i] = UInt8(min(255, v)) }
    let whole = ByteTensor(shape: Shape(1, 36, 18, 12))
    Int8UNetChain.BilinearJunction()(below.data, below.shape, fine: 0..<18, skip: skip, into: whole)

    let junction = Int8JunctionRows(.bilinear, chunk: chunk)
    junction.addSkip(.bytes(skip))
    var streamed: [UInt8] = [], start = 0, i = 0
    while start < 9 {
        let n = min(pieces[i % pieces.count], 9 - start), rowFloats = 6 * 20
        let piece = Tensor(shape: Shape(1, 20, n, 6), layout: .nhwc)
        piece.data.update(from: below.data + start * rowFloats, count: n * rowFloats)
        start += n; i += 1
        junction.push(.floats(piece), final: start == 9) { out, _ in
            guard case .bytes(let b)? = out else { return }
            streamed += UnsafeBufferPointer(start: b.data, count: b.shape.count)
        }
    }
    let expected = Array(UnsafeBufferPointer(start: whole.data, count: whole.shape.count))
    #expect(streamed.count == expected.count)
    #expect(streamed == expected, "pieces \(pieces), chunks of \(chunk): \(zip(streamed, expected).filter { $0 != $1 }.count) bytes differ")
}

/// A skip queue that drops rows from its front and appends behind them moves the held rows to
/// the top of its one buffer when they fit, instead of into a second buffer (which doubled the
/// queues' memory), and keeps every row in order.
@Test func aRowWindowCompactsInPlace() {
    let first = randomInput(c: 16, h: 8, w: 5, seed: 4), second = randomInput(c: 16, h: 4, w: 5, seed: 5)
    let window = RowWindow()
    window.append(first)
    let buffer = window.held?.tensor
    window.drop(6)
    window.append(second, zerosAfter: 1)
    #expect(window.held?.tensor === buffer, "the held rows fit: no second buffer")
    #expect(window.held?.row == 0 && window.count == 7)
    let held = window.held!.tensor.nchwValues(), a = first.nchwValues(), b = second.nchwValues()
    var wrong = 0
    for c in 0..<16 { for r in 0..<7 { for x in 0..<5 {
        let expected: Float = r < 2 ? a[(c * 8 + 6 + r) * 5 + x] : r < 6 ? b[(c * 4 + r - 2) * 5 + x] : 0
        if held[(c * 8 + r) * 5 + x] != expected { wrong += 1 }
    } } }
    #expect(wrong == 0)
}

/// The growth policy row buffers share (`HeldRows`): rows that fit after the held ones are
/// appended in place, rows that fit only at the front move the held rows there, others grow
/// the buffer by half at least.
@Test func heldRowsFitCompactOrGrow() {
    var rows = HeldRows()
    #expect(rows.room(for: 4, capacity: 0) == .grow(rows: 4))
    rows.appended(4)
    rows.drop(3)
    #expect(rows.start == 3 && rows.count == 1 && rows.end == 4)
    #expect(rows.room(for: 2, capacity: 6) == .fits)
    #expect(rows.room(for: 3, capacity: 6) == .compact)
    #expect(rows.room(for: 6, capacity: 6) == .grow(rows: 9))
    #expect(rows.room(for: 10, capacity: 6) == .grow(rows: 11))
    rows.drop(1)
    #expect(rows.start == 0 && rows.count == 0, "an emptied buffer starts at its front")
}

/// A junction's skip queue keeps the tensors handed to it (no copy), gives their rows out in
/// order across pieces into a channel slice of a line buffer, and hands a spent piece's storage
/// back for the producer's next output (no new buffer, so no new pages); copied rows alike.
@Test func aSkipQueueHandsItsPiecesBack() {
    let queue = SkipQueue()
    let first = queue.buffer(Shape(1, 16, 4, 5), .nChw16c, maxRows: 6)
    let a = randomInput(c: 16, h: 4, w: 5, seed: 6), b = randomInput(c: 16, h: 3, w: 5, seed: 7)
    RowCopy.copy(toBlocked(a), rows: 0, count: 4, into: first, at: 0)
    queue.adopt(first)
    queue.append(toBlocked(b))
    #expect(queue.count == 7)
    let line = Tensor(shape: Shape(1, 32, 9, 5), layout: .nChw16c)
    queue.take(5, into: line, at: 2, channelOffset: 16)
    #expect(queue.count == 2)
    let next = queue.buffer(Shape(1, 16, 6, 5), .nChw16c, maxRows: 6)
    #expect(next.storage === first.storage, "the spent piece's storage comes back")
    queue.take(2, into: line, at: 7, channelOffset: 16)
    let got = line.nchwValues(), av = a.nchwValues(), bv = b.nchwValues()
    var wrong = 0
    for c in 0..<16 { for r in 0..<7 { for x in 0..<5 {
        let expected = r < 4 ? av[(c * 4 + r) * 5 + x] : bv[(c * 3 + r - 4) * 5 + x]
        if got[((16 + c) * 9 + 2 + r) * 5 + x] != expected { wrong += 1 }
    } } }
    #expect(wrong == 0 && queue.count == 0)
}

private func toBlocked(_ t: Tensor) -> Tensor {
    let out = Tensor(shape: t.shape, layout: .nChw16c)
    out.setNCHW(t.nchwValues())
    return out
}

/// A line buffer that is not full gives its held rows as one tensor in its own memory (planes
/// moved up against each other, or the top of its single plane), equal to those rows; the rows
/// it keeps afterwards are the last ones, in place for the next rows, in every layout.
@Test(arguments: [(Layout.nChw16c, 20), (.nChw16c, 16), (.nChw8c, 20), (.nchw, 3), (.nhwc, 20)])
func partialLineBufferGivesItsRowsInPlace(_ layout: Layout, _ channels: Int) {
    func rows(_ h: Int, seed: UInt64) -> (Tensor, [Float]) {
        let plain = randomInput(c: channels, h: h, w: 5, seed: seed)
        let t = Tensor(shape: plain.shape, layout: layout)
        LayoutConverter().convert(plain, into: t)
        return (t, plain.nchwValues())
    }
    let buffer = LineBuffer(capacity: 10)
    let (first, firstValues) = rows(7, seed: 4)
    #expect(buffer.fill(first) == 7)
    let front = buffer.front(7)
    #expect(front.storage === buffer.tensor!.storage, "no copy")
    #expect(front.nchwValues() == firstValues)
    buffer.keepLast(2)
    let (next, nextValues) = rows(8, seed: 5)
    #expect(buffer.fill(next) == 8)
    var expected: [Float] = []
    for c in 0..<channels {
        expected += firstValues[(c * 7 + 5) * 5..<(c * 7 + 7) * 5]
        expected += nextValues[c * 8 * 5..<(c + 1) * 8 * 5]
    }
    #expect(buffer.front(10).nchwValues() == expected, "the last two rows, then the next eight")
}
