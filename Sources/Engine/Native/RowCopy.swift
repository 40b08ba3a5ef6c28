/// Row ranges of feature maps, for row streaming: copies rows between tensors of the same width
/// and layout (NCHW, NHWC or blocked), optionally into a channel slice of a wider tensor (a
/// decoder's concat; from NHWC rows also into NCHW or blocked ones), and zeroes row ranges
/// (the padding above and below a scene).
public enum RowCopy {
    /// `destination` rows [destinationRow, +rows), channels [channelOffset, +source.c) =
    /// `source` rows [sourceRow, +rows). channelOffset is a multiple of the layout's block.
    public static func copy(_ source: Tensor, rows sourceRow: Int, count rows: Int,
                            into destination: Tensor, at destinationRow: Int, channelOffset: Int = 0) {
        guard rows > 0 else { return }
        if source.layout != destination.layout || source.layout == .nhwc {
            return convert(source, rows: sourceRow, count: rows, into: destination, at: destinationRow, channelOffset: channelOffset)
        }
        let block = source.layout.channelBlock
        precondition(source.layout == destination.layout && source.shape.n == destination.shape.n
                     && source.shape.w == destination.shape.w && channelOffset % block == 0
                     && channelOffset + source.shape.c <= destination.shape.c, "row copy \(source.shape) → \(destination.shape)")
        precondition(sourceRow >= 0 && sourceRow + rows <= source.shape.h && destinationRow >= 0
                     && destinationRow + rows <= destination.shape.h, "row copy outside the tensors")
        let planes = source.paddedChannels / block, destinationPlanes = destination.paddedChannels / block
        let rowLength = source.shape.w * block
        let sourceH = source.shape.h, destinationH = destination.shape.h, skip = channelOffset / block
        let src = UncheckedSendable(source.data), dst = UncheckedSendable(destination.data)
        // Each plane's rows in `pieces` parts. Small copies on one thread: a parallel region per
        // copy costs more than it saves when the stream makes many small ones (and far more on a
        // loaded machine); big ones (≥ 1 MB) on all, whose threads would otherwise spin.
        let jobs = source.shape.n * planes
        let pieces = jobs * rows * rowLength >= 1 << 18 ? max(1, Runtime.threads) : 1
        func run(_ range: Range<Int>) {
            for job in range {
                let n = job / pieces / planes, plane = job / pieces % planes, piece = job % pieces
                let lo = rows * piece / pieces, hi = rows * (piece + 1) / pieces
                let from = ((n * planes + plane) * sourceH + sourceRow + lo) * rowLength
                let to = ((n * destinationPlanes + skip + plane) * destinationH + destinationRow + lo) * rowLength
                (dst.value + to).update(from: src.value + from, count: (hi - lo) * rowLength)
            }
        }
        if pieces == 1 { run(0..<jobs) } else { parallelFor(jobs * pieces) { run($0) } }
    }

    /// Moves rows [row, row + rows) of every channel to the top of `tensor` (in place, the
    /// ranges may overlap).
    public static func moveToFront(_ tensor: Tensor, rows row: Int, count rows: Int) {
        guard rows > 0, row > 0 else { return }
        precondition(row + rows <= tensor.shape.h, "row move outside the tensor")
        let view = tensor.spatialView
        for plane in 0..<view.outer {
            // memmove semantics: `update(from:count:)` copies front to back when the source follows.
            (tensor.data + view.row(plane, 0)).update(from: tensor.data + view.row(plane, row), count: rows * view.w * view.inner)
        }
    }

    /// Zeroes rows [row, row + rows) of every channel (blocked padding included).
    public static func zero(_ tensor: Tensor, rows row: Int, count rows: Int) {
        guard rows > 0 else { return }
        precondition(row >= 0 && row + rows <= tensor.shape.h, "row zero outside the tensor")
        let view = tensor.spatialView
        for plane in 0..<view.outer {
            (tensor.data + view.row(plane, row)).update(repeating: 0, count: rows * view.w * view.inner)
        }
    }

    /// `copy` between layouts (or NHWC ones), pixel by pixel: NHWC rows (a narrow convolution's)
    /// into a blocked concat's channel slice, a strip's NCHW rows into a narrow convolution's NHWC
    /// line buffer; whole rows between NHWC tensors of the same channels.
    private static func convert(_ source: Tensor, rows sourceRow: Int, count rows: Int,
                                into destination: Tensor, at destinationRow: Int, channelOffset: Int) {
        let (n, c, w) = (source.shape.n, source.shape.c, source.shape.w)
        precondition(n == destination.shape.n && w == destination.shape.w && channelOffset >= 0 && channelOffset + c <= destination.shape.c,
                     "row copy \(source.shape) \(source.layout) → \(destination.shape) \(destination.layout) at channel \(channelOffset)")
        precondition(sourceRow >= 0 && sourceRow + rows <= source.shape.h && destinationRow >= 0
                     && destinationRow + rows <= destination.shape.h, "row copy outside the tensors")
        let from = PixelSteps(source), to = PixelSteps(destination)
        if source.layout == .nhwc, destination.layout == .nhwc, c == destination.shape.c {  // whole rows
            for image in 0..<n {
                (destination.data + image * to.image + destinationRow * to.row)
                    .update(from: source.data + image * from.image + sourceRow * from.row, count: rows * from.row)
            }
            return
        }
        let lanes = UnsafeMutableBufferPointer<Int>.allocate(capacity: 2 * c)  // source lanes, then destination lanes
        defer { lanes.deallocate() }
        for channel in 0..<c { lanes[channel] = from.lane(channel); lanes[c + channel] = to.lane(channelOffset + channel) }
        // Each pixel's channels side by side on both sides (NHWC, or one channel block).
        let adjacent = (0..<c).allSatisfy { lanes[$0] == lanes[0] + $0 && lanes[c + $0] == lanes[c] + $0 }
        let src = UncheckedSendable(source.data), dst = UncheckedSendable(destination.data), table = UncheckedSendable(lanes.baseAddress!)
        // One job per image row; copies of ≥ 64 Ki values on all threads.
        parallelFor(n * rows, minChunk: max(1, (1 << 16) / max(1, w * c))) { range in
            for job in range {
                let image = job / rows, r = job % rows
                let s = src.value + image * from.image + (sourceRow + r) * from.row
                let d = dst.value + image * to.image + (destinationRow + r) * to.row
                if adjacent, from.pixel == c, to.pixel == c {  // the same bytes (NHWC and one full block)
                    (d + table.value[c]).update(from: s + table.value[0], count: w * c)
                } else if adjacent {
                    let sp = s + table.value[0], dp = d + table.value[c]
                    for x in 0..<w { for channel in 0..<c { dp[x * to.pixel + channel] = sp[x * from.pixel + channel] } }
                } else {
                    for channel in 0..<c {
                        let sp = s + table.value[channel], dp = d + table.value[c + channel]
                        for x in 0..<w { dp[x * to.pixel] = sp[x * from.pixel] }
                    }
                }
            }
        }
    }
}

/// Where a one-layout tensor keeps channel `lane(c)` of pixel 0, row 0, and the steps to the
/// next pixel, row and image.
private struct PixelSteps {
    let pixel: Int, row: Int, image: Int, plane: Int, block: Int, channels: Int

    init(_ t: Tensor) {
        let (h, w) = (t.shape.h, t.shape.w)
        switch t.layout {
        case .nchw: (pixel, row, plane, block, channels) = (1, w, h * w, 1, 0)
        case .nhwc: (pixel, row, plane, block, channels) = (t.shape.c, w * t.shape.c, 0, 0, 1)
        case .nChw16c, .nChw8c:
            let b = t.layout.channelBlock
            (pixel, row, plane, block, channels) = (b, w * b, h * w * b, b, 0)
        }
        image = t.physicalCount / max(1, t.shape.n)
    }

    /// Channel c: its plane's offset and its lane in the block (NHWC: c itself).
    func lane(_ c: Int) -> Int { block == 0 ? c * channels : (c / block) * plane + c % block }
}
