/// Row ranges of feature maps, for row streaming: copies rows between tensors of the same width
/// and layout (NCHW or blocked), optionally into a channel slice of a wider tensor (a decoder's
/// concat), and zeroes row ranges (the padding above and below a scene).
public enum RowCopy {
    /// `destination` rows [destinationRow, +rows), channels [channelOffset, +source.c) =
    /// `source` rows [sourceRow, +rows). channelOffset is a multiple of the layout's block.
    public static func copy(_ source: Tensor, rows sourceRow: Int, count rows: Int,
                            into destination: Tensor, at destinationRow: Int, channelOffset: Int = 0) {
        guard rows > 0 else { return }
        let block = source.layout.channelBlock
        precondition(source.layout == destination.layout && source.layout != .nhwc && source.shape.n == destination.shape.n
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
        precondition(tensor.layout != .nhwc && row + rows <= tensor.shape.h, "row move outside the tensor")
        let view = tensor.spatialView
        for plane in 0..<view.outer {
            // memmove semantics: `update(from:count:)` copies front to back when the source follows.
            (tensor.data + view.row(plane, 0)).update(from: tensor.data + view.row(plane, row), count: rows * view.w * view.inner)
        }
    }

    /// Zeroes rows [row, row + rows) of every channel (blocked padding included).
    public static func zero(_ tensor: Tensor, rows row: Int, count rows: Int) {
        guard rows > 0 else { return }
        precondition(tensor.layout != .nhwc && row >= 0 && row + rows <= tensor.shape.h, "row zero outside the tensor")
        let view = tensor.spatialView
        for plane in 0..<view.outer {
            (tensor.data + view.row(plane, row)).update(repeating: 0, count: rows * view.w * view.inner)
        }
    }
}
