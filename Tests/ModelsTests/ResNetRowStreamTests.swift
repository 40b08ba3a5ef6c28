import Core
import Engine
@testable import Models
import Testing
import TestSupport

/// Streams `input` (1, C, H, W) through `stream` in strips whose heights cycle through
/// `strips`; returns the logits (1, K, H, W) as NCHW values and the most rows out at once behind the rows in.
private func streamedLogits(_ stream: RowStream, _ input: Tensor, strips: [Int]) -> (values: [Float], lag: Int) {
    let s = input.shape
    var chunks: [(values: [Float], rows: Int)] = []
    var y = 0, i = 0, out = 0, lag = 0
    while y < s.h {
        let h = min(strips[i % strips.count], s.h - y)
        let strip = Tensor(shape: Shape(1, s.c, h, s.w))
        RowCopy.copy(input, rows: y, count: h, into: strip, at: 0)
        y += h; i += 1
        stream.push(strip, final: y == s.h) { chunks.append(($0.nchwValues(), $0.shape.h)); out += $0.shape.h }
        if y < s.h { lag = max(lag, y - out) }
    }
    #expect(out == s.h, "every row comes out once")
    let K = chunks.first.map { $0.values.count / ($0.rows * s.w) } ?? 0
    var values = [Float](repeating: .nan, count: K * s.h * s.w)
    var top = 0
    for (chunk, h) in chunks {
        for k in 0..<K { for r in 0..<h { for c in 0..<s.w { values[(k * s.h + top + r) * s.w + c] = chunk[(k * h + r) * s.w + c] } } }
        top += h
    }
    return (values, lag)
}

private func noise(_ shape: Shape, seed: UInt64) -> Tensor {
    var rng = SplitMix64(seed: seed)
    return Tensor(shape: shape, values: rng.uniform(shape.count).map { Float($0) * 2 - 1 })
}

/// smp's U-Net streamed in strips of heights unrelated to its alignment (one row, odd heights
/// mixed, one alignment step, taller than the scene) and chunks of several heights equals one
/// window over the whole input: basic blocks at output stride 32 (strided 7×7 stem, −∞-padded
/// 3×3 pooling, 3×3 and 1×1 stride-2 projections, nearest junctions), basic blocks at 16 (a
/// dilated layer4 and an identity junction), bottleneck blocks at 8 (1×1 stride-1 projections,
/// two dilated stages).
@Test(arguments: [(ResNetEncoder.resnet18, 32), (.resnet18, 16), (.resnet50, 8)])
func resNetUNetStreamEqualsOneWindow(_ encoder: ResNetEncoder, _ outputStride: Int) throws {
    let c = ResNetUNetConfiguration(inputChannels: 3, classes: 3, encoder: encoder, decoderChannels: [32, 16, 16, 16, 16], outputStride: outputStride)
    let net = ResNetUNet(c, seed: 7)
    _ = net(noise(Shape(2, 3, 64, 64), seed: 3))  // moves the running statistics off their defaults
    net.isTraining = false
    let x = noise(Shape(1, 3, 160, 96), seed: 8)
    let whole = net(x).nchwValues()
    #expect((whole.max()! - whole.min()!) > 0.01, "the logits vary")
    let radius = ModelArchitecture.resnetUNet(c).receptiveRadius
    for (strips, chunk) in [([7, 2, 13], 8), ([32], 32), ([1], 16), ([45, 19], 64), ([400], 24)] {
        let stream = try #require(net.rowStream(rows: chunk))
        let (rows, lag) = streamedLogits(stream, x, strips: strips)
        let worst = zip(rows, whole).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
        #expect(worst < 1e-5, "\(encoder)/\(outputStride), strips \(strips), chunks of \(chunk): logits differ by \(worst)")
        #expect(lag <= radius + c.outputStride + strips.max()!, "rows out trail rows in by \(lag)")
        // The stream is ready for the next scene after the last strip.
        #expect(zip(streamedLogits(stream, x, strips: [16]).values, whole).allSatisfy { abs($0 - $1) < 1e-5 })
    }
}

/// The max pooling's padding rows are −∞, not zero: a feature that is negative everywhere (a
/// stem without ReLU would give one) keeps its maximum at the scene's top and bottom rows.
@Test func paddedPoolingRowsNeverWin() {
    let input = Tensor(shape: Shape(1, 16, 8, 6), values: (0..<(16 * 8 * 6)).map { -1 - Float($0 % 7) })
    let pool = PaddedMaxPool2d(kernelSize: 3, stride: 2, padding: 1)
    pool.isTraining = false
    let whole = pool(input).nchwValues()
    let rows = StridedRows.maxPool(pool, chunk: 2)
    var out: [[Float]] = []
    for (at, h) in [(0, 3), (3, 5)] {
        let strip = Tensor(shape: Shape(1, 16, h, 6))
        RowCopy.copy(input, rows: at, count: h, into: strip, at: 0)
        rows.push(strip, final: at + h == 8) { t, _ in if let t { out.append(t.nchwValues()) } }
    }
    // Chunks hold whole rows of every channel: put them back in (C, H, W) order.
    var joined = [Float](repeating: .nan, count: whole.count), top = 0
    for chunk in out {
        let h = chunk.count / (16 * 3)
        for c in 0..<16 { for r in 0..<h { for x in 0..<3 { joined[(c * 4 + top + r) * 3 + x] = chunk[(c * h + r) * 3 + x] } } }
        top += h
    }
    #expect(top == 4 && joined == whole)
    #expect(whole.allSatisfy { $0 < 0 })
}

/// The configuration of a bundle imported from smp (resnet34, 4 bands: a 7×7 stride-2 stem on
/// channels not a multiple of 16, 6 classes, smp's default decoder 256-128-64-32-16, batch
/// norms at smp's initial statistics) on inputs of several times N(0, 1) scale: the stream
/// equals one window (its map's difference from predict's windows is their edge padding, see
/// `rowStream`).
@Test(arguments: [(4, [256, 128, 64, 32, 16], 3.0), (3, [32, 16, 16, 16, 16], 1.0)])
func resNetUNetStreamEqualsOneWindowSmpDefaults(_ bands: Int, _ decoder: [Int], _ scale: Float) throws {
    let c = ResNetUNetConfiguration(inputChannels: bands, classes: 6, encoder: .resnet34, decoderChannels: decoder, outputStride: 32)
    let net = ResNetUNet(c, seed: 11)
    net.isTraining = false
    let x = noise(Shape(1, bands, 64, 96), seed: 5)
    for i in 0..<x.shape.count { x.data[i] *= scale }
    let whole = net(x).nchwValues()
    let spread = whole.max()! - whole.min()!
    for (strips, chunk) in [([32], 32), ([7, 2, 13], 8), ([64], 64)] {
        let stream = try #require(net.rowStream(rows: chunk))
        let (rows, _) = streamedLogits(stream, x, strips: strips)
        let worst = zip(rows, whole).reduce(Float(0)) { max($0, abs($1.0 - $1.1)) }
        let bad = zip(rows, whole).filter { abs($0 - $1) > 1e-4 * max(1, spread) }.count
        #expect(worst <= 1e-4 * max(1, spread), "bands \(bands), decoder \(decoder), scale \(scale), strips \(strips), chunks \(chunk): logits differ by \(worst) (spread \(spread)) at \(bad) of \(rows.count)")
    }
}
