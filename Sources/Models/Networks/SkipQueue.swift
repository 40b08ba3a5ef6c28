import Engine

/// A decoder junction's skip rows, queued as the tensors they came in (rows [start, h) of each
/// piece) until the upsampled branch reaches them. The U-Net's encoder convolution hands its
/// outputs off to the queue (`adopt`: no copy) and takes spent pieces back for its next ones
/// (`buffer`), so each skip row is copied once, into the decoder's line buffer (`take`); rows
/// from elsewhere are copied in (`append`). Holds the rows the decoder lags by, in a few
/// chunk-sized buffers (as the one growing buffer it replaces: `RowWindow`).
final class SkipQueue {
    private var pieces: [(tensor: Tensor, start: Int)] = []
    private var spare: [Tensor] = []
    /// Rows held.
    private(set) var count = 0
    /// A held piece (its channels and layout are the skip's).
    var front: Tensor? { pieces.first?.tensor }

    /// A buffer for an output of `shape` (a spent piece when one holds it; new ones hold `maxRows`).
    func buffer(_ shape: Shape, _ layout: Layout, maxRows: Int) -> Tensor {
        if let i = spare.firstIndex(where: { Tensor.physicalCount(shape, layout) <= $0.storage.capacity }) {
            return reuseRows(spare.remove(at: i), shape, layout)
        }
        return reuseRows(nil, shape, layout, maxRows: maxRows)
    }

    /// Queues `rows` itself: its owner must not write it again (it takes a `buffer` instead).
    func adopt(_ rows: Tensor?) {
        guard let rows, rows.shape.h > 0 else { return }
        precondition(front.map { $0.shape.c == rows.shape.c && $0.shape.w == rows.shape.w && $0.layout == rows.layout } ?? true,
                     "skip rows of another shape while rows are held")
        pieces.append((rows, 0))
        count += rows.shape.h
    }

    /// Queues a copy of `rows`.
    func append(_ rows: Tensor?) {
        guard let rows, rows.shape.h > 0 else { return }
        let copy = buffer(rows.shape, rows.layout, maxRows: rows.shape.h)
        RowCopy.copy(rows, rows: 0, count: rows.shape.h, into: copy, at: 0)
        adopt(copy)
    }

    /// Copies the first `rows` rows into `destination` rows [at, at + rows), channels from
    /// `channelOffset`, and drops them.
    func take(_ rows: Int, into destination: Tensor, at: Int, channelOffset: Int) {
        precondition(rows <= count, "skip rows taken before they came")
        var done = 0
        while done < rows {
            let (piece, start) = pieces[0]
            let n = min(rows - done, piece.shape.h - start)
            RowCopy.copy(piece, rows: start, count: n, into: destination, at: at + done, channelOffset: channelOffset)
            done += n
            if start + n == piece.shape.h { retire(pieces.removeFirst().tensor) } else { pieces[0].start += n }
        }
        count -= rows
    }

    /// Forgets the held rows (keeps their buffers for the next scene).
    func reset() {
        for piece in pieces { retire(piece.tensor) }
        pieces = []
        count = 0
    }

    /// Keeps a spent piece for the next `buffer` (a few at most).
    private func retire(_ tensor: Tensor) {
        spare.append(tensor)
        if spare.count > 4 { spare.removeFirst() }
    }
}
