import Engine

/// Inference over a whole scene in strips of rows, each feature computed once (line buffers).
///
/// Every layer keeps, between strips, only the rows of its input that its next output rows
/// still need: a 3×3 convolution with dilation d keeps 2d rows (its halo) and runs with no row
/// padding over [kept rows; new rows], so no output row is ever computed twice; a 2×2 pooling
/// keeps an odd last row; a bilinear ×2 upsampling keeps one coarse row on each side; a
/// decoder junction keeps the skip rows that the slower upsampled branch has not reached yet.
/// The top and bottom of the scene are zero rows the stream adds itself, so the result equals
/// the network over the whole strip-stacked input in one window, whatever the strip heights
/// (pooling phases follow absolute row numbers). Columns are whole: each strip is full width.
///
/// On every push each layer computes every row it can, in calls of at most `rows` rows (at full
/// resolution, halved per level): with strips of `rows` rows every layer then sees one shape
/// per strip (others only for the scene's first and last strips), and the layers lag each
/// other only by their halos, so a junction's skip queue holds tens of rows, not strips
/// (waiting for full chunks instead made every stage lag a chunk: the queues held the scene).
///
/// input (1, C, rows, W) NCHW per `push`, W a multiple of the network's alignment; the rows
/// of all pushes together are the scene, their count a multiple of the alignment.
public final class RowStream {
    private let body: (Tensor?, Bool, Emit) -> Void
    /// A 1×1 head run on each chunk of the last stage's rows; nil when a stage is the head.
    private let head: Conv2d?
    private let stages: [any RowStage]
    private let toPlain = LayoutConverter()
    private var logits: Tensor?, headOutput: Tensor?

    init(stages: [any RowStage], head: Conv2d?, body: @escaping (Tensor?, Bool, Emit) -> Void) {
        self.stages = stages
        self.head = head
        self.body = body
    }

    /// Feeds the scene's next rows (nil with `final` when there are no more) and calls `emit`
    /// with the logits (1, K, rows', W) NCHW of each chunk of rows that became computable, in
    /// order (owned by the stream, valid during the call). With `final` every remaining row
    /// comes out and the stream is ready for a new scene.
    public func push(_ rows: Tensor?, final: Bool, emit: (Tensor) -> Void) {
        if let rows { precondition(rows.layout == .nchw && rows.shape.n == 1, "RowStream input \(rows.shape) \(rows.layout)") }
        body(rows, final) { features, _ in
            guard let features else { return }
            var out = features
            if let head {
                out = reuseRows(headOutput, head.geometry.outputShape(features.shape), head.outputLayout(reading: features.layout))
                headOutput = out
                head.kernel.forward(input: features, weight: head.weight, bias: head.bias, output: out, training: false)
            }
            let l = reuseRows(logits, out.shape, .nchw)
            logits = l
            toPlain.convert(out, into: l)
            emit(l)
        }
    }

    /// Forgets every held row (a scene abandoned half way).
    public func reset() { for s in stages { s.reset() } }

    /// Each convolution stage's (input channels, output channels, layout), in stage order (tests).
    var convolutionLayouts: [(Int, Int, Layout)] {
        stages.compactMap { $0 as? ConvolutionRows }.map { ($0.kernel.geometry.inputChannels, $0.kernel.geometry.outputChannels, $0.layout) }
    }
    /// Each convolution stage's line-buffer layout, in stage order (tests).
    var convolutionInputLayouts: [Layout] { stages.compactMap { $0 as? ConvolutionRows }.map(\.inputLayout) }
}

/// Where a stage sends each output chunk: (rows or nil, last of the scene). A stage calls it
/// with `true` exactly once after a final push (with its last chunk, or nil).
typealias Emit = (Tensor?, Bool) -> Void

/// One layer of a `RowStream`: takes its input's next rows, emits the output rows that became
/// computable (owned by the stage, valid during the call).
protocol RowStage: AnyObject {
    func push(_ rows: Tensor?, final: Bool, _ next: Emit)
    func reset()
}

/// Runs `rows` through `stages` in order, then `next`.
func chain(_ stages: ArraySlice<any RowStage>, _ rows: Tensor?, _ final: Bool, _ next: Emit) {
    guard let first = stages.first else { return next(rows, final) }
    first.push(rows, final: final) { out, last in chain(stages.dropFirst(), out, last, next) }
}

/// The rows a stage holds, in a buffer that only grows: rows [start, start + count) of
/// `storage`; appending past its end first moves the held rows to its front (in place), and
/// only rows that do not fit then make a larger buffer (the old one is freed at once). Shapes
/// stay fixed, so nothing is reallocated (or zero-filled) per strip, and a skip queue holds one
/// buffer, not two.
final class RowWindow {
    private var storage: Tensor?
    private var span = HeldRows()
    /// Rows held.
    var count: Int { span.count }

    /// Appends `zerosBefore` zero rows, `rows`, then `zerosAfter` zero rows.
    func append(_ rows: Tensor?, zerosBefore: Int = 0, zerosAfter: Int = 0) {
        let added = (rows?.shape.h ?? 0) + zerosBefore + zerosAfter
        guard added > 0 else { return }
        guard let like = rows ?? storage else { preconditionFailure("RowWindow: zero rows of an unknown shape") }
        let same = storage.map { $0.shape.c == like.shape.c && $0.shape.w == like.shape.w && $0.layout == like.layout } ?? false
        precondition(same || count == 0, "RowWindow: rows of another shape while rows are held")
        switch span.room(for: added, capacity: same ? storage!.shape.h : 0) {
        case .fits: break
        case .grow(let rows):
            let next = Tensor(shape: Shape(like.shape.n, like.shape.c, rows, like.shape.w), layout: like.layout)
            if let storage, count > 0 { RowCopy.copy(storage, rows: span.start, count: count, into: next, at: 0) }
            storage = next
            span.movedToFront()
        case .compact:
            RowCopy.moveToFront(storage!, rows: span.start, count: count)
            span.movedToFront()
        }
        let t = storage!
        var at = span.end
        RowCopy.zero(t, rows: at, count: zerosBefore)
        at += zerosBefore
        if let rows { RowCopy.copy(rows, rows: 0, count: rows.shape.h, into: t, at: at) }
        at += rows?.shape.h ?? 0
        RowCopy.zero(t, rows: at, count: zerosAfter)
        span.appended(added)
    }

    /// The buffer and where the held rows start in it (for copies out of the window).
    var held: (tensor: Tensor, row: Int)? { storage.map { ($0, span.start) } }

    func drop(_ rows: Int) { span.drop(rows) }

    /// Forgets the held rows (keeps the buffer for the next scene).
    func reset() { span.reset() }
}

/// Which rows of a buffer that only grows are held, [start, start + count), and what the buffer
/// must do before rows are appended after them (`RowWindow`, `ByteRowQueue`): fit them, move
/// the held rows to its front, or grow (by half at least, so a queue that fills up reallocates
/// rarely).
struct HeldRows {
    enum Room: Equatable { case fits, compact, grow(rows: Int) }

    private(set) var start = 0
    private(set) var count = 0
    var end: Int { start + count }

    func room(for added: Int, capacity: Int) -> Room {
        if count + added > capacity { return .grow(rows: max(count + added, capacity + capacity / 2)) }
        return end + added > capacity ? .compact : .fits
    }

    mutating func movedToFront() { start = 0 }
    mutating func appended(_ rows: Int) { count += rows }

    mutating func drop(_ rows: Int) {
        precondition(rows <= count)
        start += rows
        count -= rows
        if count == 0 { start = 0 }
    }

    mutating func reset() { (start, count) = (0, 0) }
}

/// Rows that their consumer has written where it wants them (a line buffer), so a producer of
/// our own (a junction) writes its output there instead of into a buffer of its own that the
/// consumer then copies: `shape` (h = the rows), `layout`, and `write(destination, row, first,
/// count)`, which puts rows [first, first + count) at `row` of `destination` (same channels,
/// width and layout). Consumers write every row once, in order, during the call they get it in.
struct RowSource {
    let shape: Shape, layout: Layout
    let write: (Tensor, Int, Int, Int) -> Void

    init(shape: Shape, layout: Layout, write: @escaping (Tensor, Int, Int, Int) -> Void) {
        self.shape = shape; self.layout = layout; self.write = write
    }

    /// The rows of a tensor (copied).
    init(copying rows: Tensor) {
        self.init(shape: rows.shape, layout: rows.layout) { RowCopy.copy(rows, rows: $2, count: $3, into: $0, at: $1) }
    }
}

/// A fixed-height buffer of rows that a layer reads in place: rows are copied in until it is
/// full (`capacity` rows = one chunk plus the halos), the layer runs on the whole buffer, then
/// the last `keep` rows slide to the top. One copy per input row, no reallocation.
final class LineBuffer {
    let capacity: Int
    private(set) var tensor: Tensor?
    private(set) var count = 0

    init(capacity: Int) { self.capacity = capacity }

    /// Copies rows [from, …) of `rows` (or `zeros` zero rows) until full; returns how many.
    func fill(_ rows: Tensor?, from: Int = 0, zeros: Int = 0, like: Tensor? = nil) -> Int {
        fill(rows.map(RowSource.init(copying:)), from: from, zeros: zeros, like: (rows ?? like).map { ($0.shape, $0.layout) })
    }

    /// Has `source` write its rows [from, …) (or `zeros` zero rows) until full; returns how many.
    func fill(_ source: RowSource?, from: Int = 0, zeros: Int = 0, like: (shape: Shape, layout: Layout)? = nil) -> Int {
        guard let like = like ?? source.map({ ($0.shape, $0.layout) }) ?? tensor.map({ ($0.shape, $0.layout) }) else {
            preconditionFailure("LineBuffer: rows of an unknown shape")
        }
        let shape = Shape(like.shape.n, like.shape.c, capacity, like.shape.w)
        if tensor == nil || !tensor!.matches(shape, like.layout) { tensor = Tensor(shape: shape, layout: like.layout); count = 0 }
        let n = min(capacity - count, source.map { $0.shape.h - from } ?? zeros)
        guard n > 0 else { return 0 }
        if let source { source.write(tensor!, count, from, n) } else { RowCopy.zero(tensor!, rows: count, count: n) }
        count += n
        return n
    }

    /// The first `rows` held rows as one tensor: the buffer itself when full, else a tensor of
    /// that height in the buffer's own memory where it can be (the scene's first and last calls):
    /// the top of a single plane per image (NHWC, one block of 16, one channel), or all the held
    /// rows with every plane moved up against the one before (in place, until `keepLast`); else
    /// (rows stay held after them) a copy. Fresh copies cost R1's 2048² stream 22,000 page
    /// faults (90 MB first touched) per scene.
    func front(_ rows: Int) -> Tensor {
        guard let tensor, rows <= count, compacted == nil else { preconditionFailure("LineBuffer.front(\(rows)) of \(count)") }
        if rows == capacity { return tensor }
        let view = tensor.spatialView, plane = view.w * view.inner
        let shape = Shape(tensor.shape.n, tensor.shape.c, rows, tensor.shape.w)
        if view.outer == 1 { return Tensor(shape: shape, layout: tensor.layout, sharing: tensor.storage) }
        guard rows == count, tensor.shape.n == 1 else {
            let out = Tensor(shape: shape, layout: tensor.layout)
            RowCopy.copy(tensor, rows: 0, count: rows, into: out, at: 0)
            return out
        }
        for p in 1..<view.outer {  // upwards: a plane's new place ends before the next one's rows
            (tensor.data + p * rows * plane).update(from: tensor.data + p * capacity * plane, count: rows * plane)
        }
        compacted = rows
        return Tensor(shape: shape, layout: tensor.layout, sharing: tensor.storage)
    }
    /// The height of the tensor `front` made in place, until `keepLast` moves rows back.
    private var compacted: Int?

    /// Keeps the last `rows` rows, moved to the top of every plane (a plane's rows are
    /// contiguous: one overlapping move each); after `front` made a shorter tensor in place,
    /// from its planes, the last first (each one's place in the buffer starts beyond the
    /// shorter planes before it).
    func keepLast(_ rows: Int) {
        guard let tensor else { return }
        let height = compacted ?? capacity, keep = min(rows, count)
        compacted = nil
        guard keep < count || height != capacity else { return }
        let view = tensor.spatialView, plane = view.w * view.inner
        for p in (0..<view.outer).reversed() {
            (tensor.data + p * capacity * plane).update(from: tensor.data + (p * height + count - keep) * plane, count: keep * plane)
        }
        count = keep
    }

    func reset() {
        count = 0
        compacted = nil
    }
}

/// A k×k convolution (stride 1, "same" padding) over rows, with its bias and ReLU: keeps the
/// last 2·halo input rows (halo = dilation·(k−1)/2) and convolves [kept; new] without row
/// padding, `chunk` output rows at a time; the scene's top and bottom get halo zero rows, as
/// the one-window padding.
final class ConvolutionRows: RowStage {
    let kernel: ConvolutionKernel
    let halo: Int, chunk: Int
    private let weights: () -> (weight: Parameter, bias: Parameter?)
    private let window: LineBuffer
    private var started = false
    private var output: Tensor?
    /// Where every output also goes (a decoder junction's skips): handed off, not copied.
    var skipQueue: SkipQueue?
    /// The line buffer's and the output's layout: blocked, or NHWC for a narrow convolution
    /// (`ConvBNReLU.runsChannelsLast` for a full chunk of the scene's width, decided at its
    /// first rows), whose rows are converted as they are copied in.
    private(set) var layout = Layout.blocked
    private var layoutFor: ((Shape) -> Layout)?
    /// The line buffer's layout: the output's, but plain for a blocked convolution fed plain
    /// rows of a few bands (`ConvGeometry.readsFewBands`, as windows read them), which oneDNN's direct
    /// kernel reads as they are (4→8 per 2048 × 64 strip: about 1 ms, against 5.3 ms of Winograd
    /// on a 16-channel block three quarters zeros).
    private(set) var inputLayout = Layout.blocked

    init(_ geometry: ConvGeometry, chunk: Int, fusedReLU: Bool, weights: @escaping () -> (weight: Parameter, bias: Parameter?)) {
        precondition(geometry.stride == 1 && !geometry.transposed && geometry.padding == geometry.dilation * (geometry.kernel - 1) / 2,
                     "row streaming needs stride-1 same-padded convolutions")
        var g = geometry
        g.rowPadding = 0
        kernel = ConvolutionKernel(g)
        kernel.fusedReLU = fusedReLU
        halo = geometry.padding
        self.chunk = max(1, chunk)
        window = LineBuffer(capacity: self.chunk + 2 * geometry.padding)
        self.weights = weights
    }

    /// A conv–BN–ReLU unit at inference: the folded weights, ReLU fused.
    convenience init(_ unit: ConvBNReLU, chunk: Int) {
        var g = unit.conv.geometry
        g.bias = true
        self.init(g, chunk: chunk, fusedReLU: true) { let w = unit.inferenceWeights(); return (w.weight, w.bias) }
        int8 = unit.int8.map { Int8ConvUnit(unit, inputStep: $0.inputStep, rowPadding: 0) }
        layoutFor = { unit.runsChannelsLast($0) ? .nhwc : .blocked }
    }
    /// The unit's int8 execution over rows, when it runs in int8.
    private var int8: Int8ConvUnit?

    func push(_ rows: Tensor?, final: Bool, _ next: Emit) { push(rows.map(RowSource.init(copying:)), final: final, next) }

    /// `push` of rows that go straight into the line buffer (a junction's, `RowSource`).
    func push(_ rows: RowSource?, final: Bool, _ next: Emit) {
        if let rows {
            if !started {
                if let layoutFor { layout = layoutFor(Shape(rows.shape.n, rows.shape.c, chunk + 2 * halo, rows.shape.w)) }
                let readsPlain = layout.isBlocked && rows.layout == .nchw && kernel.geometry.readsFewBands && int8 == nil
                inputLayout = readsPlain ? .nchw : layout
            }
            let like = (rows.shape, inputLayout)
            if !started { fillAll(nil, zeros: halo, like: like, next) }
            started = true
            fillAll(rows, zeros: 0, like: like, next)
        }
        guard final else {
            // Every row computable now goes on: the rows behind wait for nothing but halos.
            let n = window.count - 2 * halo
            if n > 0 { convolve(n, next, last: false) }
            return
        }
        if started { fillAll(nil, zeros: halo, like: nil, next) }
        let n = window.count - 2 * halo
        if n > 0 { convolve(n, next, last: true) } else { next(nil, true) }
        reset()
    }

    /// Copies rows (or zero rows) in, running a full chunk whenever the buffer fills. A chunk
    /// that ends the input exactly waits, so that the final push can mark it last.
    private func fillAll(_ rows: RowSource?, zeros: Int, like: (shape: Shape, layout: Layout)?, _ next: Emit) {
        var done = 0
        let total = rows?.shape.h ?? zeros
        while done < total {
            if window.count == window.capacity { convolve(chunk, next, last: false) }
            done += window.fill(rows, from: done, zeros: total - done, like: like)
        }
    }

    private func convolve(_ n: Int, _ next: Emit, last: Bool) {
        let input = window.front(n + 2 * halo)
        let out: Tensor
        if let int8 {
            out = int8(input, layout: .blocked)
            skipQueue?.append(out)
        } else {
            let shape = kernel.geometry.outputShape(input.shape)
            if let skipQueue { out = skipQueue.buffer(shape, layout, maxRows: chunk) } else {
                out = reuseRows(output, shape, layout, maxRows: chunk)
                output = out
            }
            let (weight, bias) = weights()
            kernel.forward(input: input, weight: weight, bias: bias, output: out, training: false)
            skipQueue?.adopt(out)
        }
        window.keepLast(2 * halo)
        next(out, last)
    }

    func reset() {
        window.reset()
        started = false
    }
}

/// 2×2 max pooling over rows, `chunk` output rows at a time, from a line buffer of 2·chunk rows.
final class PoolingRows: RowStage {
    let chunk: Int
    private let window: LineBuffer
    private var output: Tensor?, indices: PoolIndices?

    init(chunk: Int) {
        self.chunk = max(1, chunk)
        window = LineBuffer(capacity: 2 * self.chunk)
    }

    func push(_ rows: Tensor?, final: Bool, _ next: Emit) {
        if let rows, window.count == 0, rows.shape.h % 2 == 0, rows.shape.h <= window.capacity {
            // Whole row pairs and nothing held (every strip of an even height): pooled in place.
            pool(rows, next, last: final)
            if final { reset() }
            return
        }
        if let rows {
            var done = 0
            while done < rows.shape.h {
                if window.count == window.capacity { pool(window.count, next, last: false) }
                done += window.fill(rows, from: done)
            }
        }
        guard final else {
            // Every complete row pair goes on now; an odd last row waits for its partner.
            if window.count >= 2 { pool(window.count / 2 * 2, next, last: false) }
            return
        }
        precondition(window.count % 2 == 0, "pooled rows must end on an even row")
        if window.count > 0 { pool(window.count, next, last: true) } else { next(nil, true) }
        reset()
    }

    /// Pools the first n held rows, keeps the rest.
    private func pool(_ n: Int, _ next: Emit, last: Bool) {
        let out = pooled(window.front(n))
        window.keepLast(window.count - n)
        next(out, last)
    }

    private func pool(_ input: Tensor, _ next: Emit, last: Bool) { next(pooled(input), last) }

    private func pooled(_ input: Tensor) -> Tensor {
        let out = reuseRows(output, Shape(input.shape.n, input.shape.c, input.shape.h / 2, input.shape.w / 2), input.layout, maxRows: chunk)
        output = out
        // Indices of any earlier view hold this one's when large enough (the kernel indexes by its output).
        let view = out.spatialView
        if (indices?.count ?? -1) < view.outer * view.planeStride { indices = PoolIndices(outputView: view) }
        MaxPool2x2.forward(input: input, output: out, indices: indices!)
        return out
    }

    func reset() { window.reset() }
}

/// A decoder junction over rows: the coarser branch upsampled ×2 straight into the buffer its
/// rows go to, the same rows of the skip beside it ([up, skip] along channels, no other copy):
/// the next convolution's line buffer in a U-Net (`push(_:final:into:)`), else an output of
/// its own. Nearest and bed-of-nails map each coarse row to two fine rows on their own;
/// bilinear (half-pixel centres) mixes each coarse row with its neighbours, so it keeps one
/// coarse row before the next to emit and emits a row's fine rows once the row below it is
/// known (or the scene ended: then the edge clamp is the true one), at most `chunk` coarse rows
/// per call. The skip (from the encoder) runs ahead of the upsampled branch: its rows wait here.
final class JunctionRows: RowStage {
    let kind: Upsample2xKind
    let chunk: Int
    private let coarse = RowWindow()
    /// The skip rows (a U-Net's encoder convolution hands its outputs off to it).
    let skips = SkipQueue()
    /// Scene row of the coarse window's first row; next coarse row to emit.
    private var first = 0, nextRow = 0
    private var output: Tensor?

    init(_ kind: Upsample2xKind, chunk: Int) {
        self.kind = kind
        self.chunk = max(1, chunk)
    }

    /// Queues the encoder's next skip rows.
    func addSkip(_ rows: Tensor?) { skips.append(rows) }

    func push(_ below: Tensor?, final: Bool, _ next: Emit) {
        junctionRows(below, final: final) { rows, last in
            guard let rows else { return next(nil, last) }
            let out = reuseRows(output, rows.shape, rows.layout, maxRows: 2 * chunk)
            output = out
            rows.write(out, 0, 0, rows.shape.h)
            next(out, last)
        }
    }

    /// `push` whose rows `convolution` writes into its line buffer.
    func push(_ below: Tensor?, final: Bool, into convolution: ConvolutionRows, _ next: Emit) {
        junctionRows(below, final: final) { rows, last in convolution.push(rows, final: last, next) }
    }

    /// Calls `next` with each chunk of junction rows that became computable, which it must
    /// write (all, in order) before it returns.
    private func junctionRows(_ below: Tensor?, final: Bool, _ next: (RowSource?, Bool) -> Void) {
        guard kind == .bilinear else {
            next(below.map { junction($0, coarse: 0..<$0.shape.h, fine: 0..<(2 * $0.shape.h)) }, final)
            if final { finish() }
            return
        }
        coarse.append(below)
        let end = first + coarse.count  // coarse rows held: [first, end)
        while true {
            let ready = end - (final ? 0 : 1) - nextRow  // rows whose lower neighbour is known
            let n = min(chunk, ready)
            guard n > 0, let (held, start) = coarse.held else { break }
            // Coarse rows [lo, hi): the rows to emit and their neighbours (none past the scene's edges).
            let lo = max(first, nextRow - 1), hi = min(end, nextRow + n + 1), at = start - first
            let rows = junction(held, coarse: (at + lo)..<(at + hi), fine: (2 * (at + nextRow))..<(2 * (at + nextRow + n)))
            nextRow += n
            let last = final && nextRow == end
            next(rows, last)
            let drop = max(0, nextRow - 1 - first)
            coarse.drop(drop)
            first += drop
            if last { return finish() }
        }
        if final {
            next(nil, true)
            finish()
        }
    }

    /// The scene ended: every skip row went out.
    private func finish() {
        precondition(skips.count == 0, "skip rows left at the end")
        reset()
    }

    /// [fine rows `fine` of upsampling `source`'s rows `coarse`; the next as many skip rows],
    /// written where the consumer wants them; each write takes its skip rows off the queue.
    private func junction(_ source: Tensor, coarse: Range<Int>, fine: Range<Int>) -> RowSource {
        let up = source.shape.c
        guard let skip = skips.front, skips.count >= fine.count, source.layout != .nhwc else {
            preconditionFailure("the upsampled branch ran ahead of the skip (or is not blocked)")
        }
        let shape = Shape(source.shape.n, up + skip.shape.c, fine.count, 2 * source.shape.w)
        return RowSource(shape: shape, layout: source.layout) { [kind, skips] out, at, from, n in
            let (offset, view) = out.leadingChannelsView(up, rows: at..<(at + n))
            let rows = (fine.lowerBound + from)..<(fine.lowerBound + from + n)
            Upsample2x.forwardRows(kind, source.data, source.spatialView, coarse: coarse, fine: rows, out.data + offset, view)
            skips.take(n, into: out, at: at, channelOffset: up)
        }
    }

    func reset() {
        coarse.reset()
        skips.reset()
        first = 0
        nextRow = 0
    }
}

extension DilatedNet {
    /// The dilated CNN as a row stream (`rows` per chunk): its conv–BN–ReLU units, then the head.
    public func rowStream(rows: Int) -> RowStream? {
        isTraining = false
        let units: [any RowStage] = body.units.map { ConvolutionRows($0, chunk: rows) }
        return RowStream(stages: units, head: head) { input, final, emit in chain(units[...], input, final, emit) }
    }
}

extension UNet {
    /// The U-Net as a row stream (`rows` per chunk at full resolution, halved per level):
    /// encoder levels, pooling, bottleneck, then each decoder level's upsampling, junction and
    /// convolutions. Fixed upsampling modes only (nil for learned ones, which the caller
    /// predicts in windows).
    public func rowStream(rows: Int) -> RowStream? {
        guard let kind = configuration.upsampling.fixedKind else { return nil }
        if let int8Chain { return int8Chain.rowStream(rows: rows) }  // u8 between int8 layers (Int8RowStream)
        isTraining = false
        let levels = encoders.count
        func chunk(_ level: Int) -> Int { max(1, rows >> level) }
        let encoderRows = encoders.enumerated().map { l, e in e.units.map { ConvolutionRows($0, chunk: chunk(l)) } }
        let poolRows = (0..<levels).map { PoolingRows(chunk: chunk($0 + 1)) }
        let bottleneckRows: [any RowStage] = bottleneck.units.map { ConvolutionRows($0, chunk: chunk(levels)) }
        let junctionRows = (0..<levels).map { JunctionRows(kind, chunk: chunk($0 + 1)) }
        // Each level's last encoder convolution queues its outputs at the junction itself.
        for l in 0..<levels { encoderRows[l].last!.skipQueue = junctionRows[l].skips }
        let encoderChains: [[any RowStage]] = encoderRows.map { $0.map { $0 } }
        let decoderRows = (0..<levels).map { l in decoders[levels - 1 - l].units.map { ConvolutionRows($0, chunk: chunk(l)) } }
        let decoderRest: [[any RowStage]] = decoderRows.map { $0.dropFirst().map { $0 } }
        func run(_ level: Int, _ input: Tensor?, _ final: Bool, _ next: Emit) {
            chain(encoderChains[level][...], input, final) { skip, final in
                poolRows[level].push(skip, final: final) { pooled, final in
                    let decode: Emit = { below, final in
                        // The junction writes into the first convolution's line buffer.
                        junctionRows[level].push(below, final: final, into: decoderRows[level][0]) { rows, final in
                            chain(decoderRest[level][...], rows, final, next)
                        }
                    }
                    if level + 1 < levels { run(level + 1, pooled, final, decode) } else { chain(bottleneckRows[...], pooled, final, decode) }
                }
            }
        }
        var stages: [any RowStage] = encoderChains.flatMap { $0 } + poolRows + bottleneckRows + junctionRows
        stages += decoderRows.flatMap { $0 as [any RowStage] }
        return RowStream(stages: stages, head: head) { input, final, emit in run(0, input, final, emit) }
    }
}
