import Core
import Engine
import Testing
import TestSupport

// The row kernels of row streaming: `RowCopy` (one thread for small copies, both for big ones)
// and `Upsample2x.forwardRows` (fine rows of a range of coarse rows, into a concat's slice).

private func filled(_ shape: Shape, _ layout: Layout, seed: UInt64) -> Tensor {
    let t = Tensor(shape: shape, layout: layout)
    var rng = SplitMix64(seed: seed)
    t.setNCHW(rng.uniform(shape.count).map { Float($0) })
    return t
}

/// Rows of a tensor land in a channel slice of a taller, wider-channelled one, unchanged,
/// for a small copy and one big enough (≥ 4 MB) to be split over threads.
@Test(arguments: [Layout.nChw16c, .nchw], [8, 600])
func rowCopyMovesRowsIntoAChannelSlice(_ layout: Layout, rows: Int) {
    let source = filled(Shape(1, 32, rows + 5, 96), layout, seed: 1)
    let destination = Tensor(shape: Shape(1, 48, rows + 9, 96), layout: layout)
    RowCopy.copy(source, rows: 3, count: rows, into: destination, at: 7, channelOffset: 16)
    var wrong = 0
    for c in 0..<32 { for r in 0..<rows { for x in 0..<96 {
        if destination.data[destination.offset(0, 16 + c, 7 + r, x)] != source.data[source.offset(0, c, 3 + r, x)] { wrong += 1 }
    } } }
    #expect(wrong == 0)
    #expect(destination.data[destination.offset(0, 0, 7, 0)] == 0, "channels before the slice untouched")
}

/// NHWC rows (a narrow convolution's output) land unchanged in a channel slice of a blocked or
/// NCHW concat (the decoder's), or in an NHWC tensor of their channels; nothing else changes.
@Test(arguments: [Layout.nChw16c, .nchw, .nhwc])
func channelsLastRowsCopyIntoEveryLayout(_ destinationLayout: Layout) {
    let source = filled(Shape(2, 8, 11, 37), .nhwc, seed: 5)
    let offset = destinationLayout == .nhwc ? 0 : 16, channels = destinationLayout == .nhwc ? 8 : 24
    let destination = Tensor(shape: Shape(2, channels, 14, 37), layout: destinationLayout)
    RowCopy.copy(source, rows: 2, count: 6, into: destination, at: 5, channelOffset: offset)
    var wrong = 0, touched = 0
    for n in 0..<2 { for c in 0..<channels { for r in 0..<14 { for x in 0..<37 {
        let value = destination.data[destination.offset(n, c, r, x)]
        let copied = c >= offset && (5..<11).contains(r)
        if copied, value != source.data[source.offset(n, c - offset, r - 3, x)] { wrong += 1 }
        if !copied, value != 0 { touched += 1 }
    } } } }
    #expect(wrong == 0)
    #expect(touched == 0, "only the slice's rows are written")
}

/// Rows change layout unchanged in value on every path of `RowCopy`'s conversion: the same
/// bytes (16 NHWC channels and one full block), one block's channels side by side (8 blocked
/// channels into NHWC), and channel by channel (NCHW into NHWC).
@Test(arguments: [(Layout.nhwc, Layout.nChw16c, 16), (.nChw16c, .nhwc, 16), (.nChw16c, .nhwc, 8), (.nchw, .nhwc, 4), (.nhwc, .nchw, 5)])
func rowsConvertBetweenLayouts(_ from: Layout, _ to: Layout, _ channels: Int) {
    let source = filled(Shape(1, channels, 70, 40), from, seed: 6)
    let destination = Tensor(shape: Shape(1, channels, 9, 40), layout: to)
    RowCopy.copy(source, rows: 61, count: 8, into: destination, at: 1)
    var wrong = 0
    for c in 0..<channels { for r in 0..<9 { for x in 0..<40 {
        let expected: Float = r == 0 ? 0 : source.data[source.offset(0, c, 60 + r, x)]
        if destination.data[destination.offset(0, c, r, x)] != expected { wrong += 1 }
    } } }
    #expect(wrong == 0, "\(from) → \(to), \(channels) channels")
}

/// Rows moved to the top of their own tensor (overlapping ranges, as a skip queue compacts)
/// keep their values in every channel; the rows below stay as they were.
@Test(arguments: [Layout.nChw16c, .nchw, .nhwc])
func rowsMoveToTheFrontInPlace(_ layout: Layout) {
    let t = filled(Shape(1, 32, 12, 9), layout, seed: 3)
    let before = t.nchwValues()
    RowCopy.moveToFront(t, rows: 2, count: 7)
    let after = t.nchwValues()
    var wrong = 0
    for c in 0..<32 { for r in 0..<12 { for x in 0..<9 {
        let expected = r < 7 ? before[(c * 12 + r + 2) * 9 + x] : before[(c * 12 + r) * 9 + x]
        if after[(c * 12 + r) * 9 + x] != expected { wrong += 1 }
    } } }
    #expect(wrong == 0)
}

/// Any fine-row range of a coarse-row range equals those rows of the whole upsampling when the
/// range brings the rows' neighbours, and clamps at the range's ends like the whole does at its
/// edges; the rows land in the leading channels of a wider tensor.
@Test(arguments: [Upsample2xKind.bilinear, .nearest, .nails])
func upsampleRowsEqualTheWholeUpsampling(_ kind: Upsample2xKind) {
    let input = filled(Shape(1, 16, 12, 10), .nChw16c, seed: 2)
    let whole = Tensor(shape: Shape(1, 16, 24, 20), layout: .nChw16c)
    Upsample2x.forward(kind, input: input, output: whole)
    for (coarse, fine) in [(0..<12, 0..<24), (0..<5, 0..<8), (3..<9, 8..<16), (7..<12, 16..<24), (4..<6, 9..<11)] {
        let out = Tensor(shape: Shape(1, 32, fine.count, 20), layout: .nChw16c)
        Upsample2x.forwardRows(kind, input.data, input.spatialView, coarse: coarse, fine: fine, out.data, out.leadingChannelsView(16))
        var worst: Float = 0
        for c in 0..<16 { for r in 0..<fine.count { for x in 0..<20 {
            worst = max(worst, abs(out.data[out.offset(0, c, r, x)] - whole.data[whole.offset(0, c, fine.lowerBound + r, x)]))
        } } }
        #expect(worst == 0, "\(kind) coarse \(coarse) fine \(fine): differs by \(worst)")
    }
}

/// A row stream's output whose height changes keeps one buffer (a new one costs page faults):
/// a shorter height shares the storage, the first allocation holds `maxRows` rows, and only a
/// taller height allocates again; a blocked layout's channel padding is zero in the new shape.
@Test func rowOutputsOfChangingHeightsShareOneBuffer() {
    let first = reuseRows(nil, Shape(1, 8, 4, 6), .nChw16c, maxRows: 10)
    first.data.update(repeating: 7, count: first.physicalCount)  // the padding too
    let shorter = reuseRows(first, Shape(1, 8, 3, 6), .nChw16c)
    #expect(shorter.storage === first.storage && shorter.shape.h == 3)
    let tallest = reuseRows(shorter, Shape(1, 8, 10, 6), .nChw16c)
    #expect(tallest.storage === first.storage, "maxRows held from the first allocation")
    var padding = 0
    for i in 0..<tallest.physicalCount where i % 16 >= 8 && tallest.data[i] != 0 { padding += 1 }
    #expect(padding == 0, "channel padding zero in the new shape")
    let taller = reuseRows(tallest, Shape(1, 8, 11, 6), .nChw16c)
    #expect(taller.storage !== first.storage && taller.shape.h == 11)
    #expect(reuseRows(taller, taller.shape, .nChw16c) === taller)
}

/// Plans for other input heights (a row stream's first, steady and last strips) share one
/// reordered copy of the weights (R1's 512-channel Winograd weights are 38 MB each), Winograd
/// and direct (dilated) alike, and each still convolves right: the rows of a shorter input
/// equal the first rows of the taller one's.
@Test(arguments: [1, 2])
func convolutionPlansOfOtherHeightsShareTheirWeights(dilation: Int) {
    var g = ConvGeometry(inputChannels: 32, outputChannels: 32, kernel: 3, padding: dilation, dilation: dilation)
    g.rowPadding = 0
    let kernel = ConvolutionKernel(g)
    let weight = parameter(randomRef(g.weightShape, seed: 4, -0.3, 0.3)), bias = vectorParameter((0..<32).map { Double($0) * 0.01 })
    let input = filled(Shape(1, 32, 40, 64), .nChw16c, seed: 5)
    let tall = Tensor(shape: g.outputShape(input.shape), layout: .nChw16c)
    kernel.forward(input: input, weight: weight, bias: bias, output: tall, training: false)
    let short = Tensor(shape: Shape(1, 32, 13, 64), layout: .nChw16c)
    RowCopy.copy(input, rows: 0, count: 13, into: short, at: 0)
    let shortOut = Tensor(shape: g.outputShape(short.shape), layout: .nChw16c)
    kernel.forward(input: short, weight: weight, bias: bias, output: shortOut, training: false)
    #expect(kernel.forwardWeightCopies == 1, "one reordered copy for both heights (\(kernel.implementations[0]))")
    var worst: Float = 0
    for c in 0..<32 { for r in 0..<shortOut.shape.h { for x in 0..<64 {
        worst = max(worst, abs(shortOut.data[shortOut.offset(0, c, r, x)] - tall.data[tall.offset(0, c, r, x)]))
    } } }
    #expect(worst < 1e-5)
}

/// Fine rows written through `leadingChannelsView(_:rows:)` land at those rows of the leading
/// channels of a taller buffer (a decoder convolution's line buffer, which a junction now
/// writes into), equal to the dense upsampling's rows, and nothing else is written.
@Test(arguments: [Layout.nChw16c, .nchw])
func upsampleRowsLandInARowRangeOfALineBuffer(_ layout: Layout) {
    let input = filled(Shape(1, 32, 6, 10), layout, seed: 6)
    let whole = Tensor(shape: Shape(1, 32, 12, 20), layout: layout)
    Upsample2x.forward(.bilinear, input: input, output: whole)
    let buffer = Tensor(shape: Shape(1, 48, 15, 20), layout: layout)
    let (offset, view) = buffer.leadingChannelsView(32, rows: 9..<14)
    Upsample2x.forwardRows(.bilinear, input.data, input.spatialView, coarse: 0..<6, fine: 4..<9, buffer.data + offset, view)
    var wrong = 0, written = 0
    for c in 0..<48 { for r in 0..<15 { for x in 0..<20 {
        let value = buffer.data[buffer.offset(0, c, r, x)]
        if c < 32 && (9..<14).contains(r) {
            if value != whole.data[whole.offset(0, c, r - 5, x)] { wrong += 1 }
        } else if value != 0 { written += 1 }
    } } }
    #expect(wrong == 0 && written == 0)
}
