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
/// input (1, C, rows, W) NCHW per `push`, W a multiple of the network's alignment; the rows
/// of all pushes together are the scene, their count a multiple of the alignment.
public final class RowStream {
    private let body: (Tensor?, Bool) -> Tensor?
    private let head: Conv2d
    private let stages: [any RowStage]
    private let toPlain = LayoutConverter()
    private var logits: Tensor?

    init(stages: [any RowStage], head: Conv2d, body: @escaping (Tensor?, Bool) -> Tensor?) {
        self.stages = stages
        self.head = head
        self.body = body
    }

    /// Feeds the scene's next rows (nil with `final` when there are no more); returns the logits
    /// (1, K, rows', W) NCHW of the next rows that became computable, owned by the stream, or
    /// nil. With `final` every remaining row comes out and the stream is ready for a new scene.
    public func push(_ rows: Tensor?, final: Bool) -> Tensor? {
        if let rows { precondition(rows.layout == .nchw && rows.shape.n == 1, "RowStream input \(rows.shape) \(rows.layout)") }
        guard let features = body(rows, final) else { return nil }
        let out = head(features)
        let l = reuse(logits, out.shape, .nchw)
        logits = l
        toPlain.convert(out, into: l)
        return l
    }

    /// Forgets every held row (a scene abandoned half way).
    public func reset() { for s in stages { s.reset() } }
}

/// One layer of a `RowStream`: takes its input's next rows, returns the output rows that
/// became computable (owned by the stage, valid until its next push), or nil.
protocol RowStage: AnyObject {
    func push(_ rows: Tensor?, final: Bool) -> Tensor?
    func reset()
}

/// The rows a stage holds: what it kept from earlier pushes followed by the new rows, in one
/// tensor of exactly that height (what a convolution reads without a copy). Two buffers
/// alternate, so appending copies the kept rows once.
final class RowWindow {
    private var held: Tensor?
    private var spare: Tensor?
    private var scratch: Tensor?
    private var dropped = 0
    /// Rows held.
    var count: Int { (held?.shape.h ?? 0) - dropped }

    /// Appends `zerosBefore` zero rows, `rows`, then `zerosAfter` zero rows.
    func append(_ rows: Tensor?, zerosBefore: Int = 0, zerosAfter: Int = 0) {
        let added = (rows?.shape.h ?? 0) + zerosBefore + zerosAfter
        guard added > 0 else { return }
        guard let like = rows ?? held else { preconditionFailure("RowWindow: zero rows of an unknown shape") }
        let kept = count
        let shape = Shape(like.shape.n, like.shape.c, kept + added, like.shape.w)
        let next = reuse(spare, shape, like.layout)
        if let held { RowCopy.copy(held, rows: dropped, count: kept, into: next, at: 0) }
        RowCopy.zero(next, rows: kept, count: zerosBefore)
        if let rows { RowCopy.copy(rows, rows: 0, count: rows.shape.h, into: next, at: kept + zerosBefore) }
        RowCopy.zero(next, rows: kept + zerosBefore + (rows?.shape.h ?? 0), count: zerosAfter)
        spare = held
        held = next
        dropped = 0
    }

    /// The first `rows` rows held, as a tensor of that height (the held tensor itself when it
    /// holds exactly those).
    func front(_ rows: Int) -> Tensor {
        guard let held, rows <= count else { preconditionFailure("RowWindow.front(\(rows)) of \(count)") }
        if dropped == 0 && rows == held.shape.h { return held }
        let out = reuse(scratch, Shape(held.shape.n, held.shape.c, rows, held.shape.w), held.layout)
        scratch = out
        RowCopy.copy(held, rows: dropped, count: rows, into: out, at: 0)
        return out
    }

    /// The held tensor and where the held rows start in it (for copies out of the window).
    var storage: (tensor: Tensor, row: Int)? { held.map { ($0, dropped) } }

    func drop(_ rows: Int) {
        precondition(rows <= count)
        dropped += rows
    }

    func reset() {
        held = nil
        dropped = 0
    }
}

/// A k×k convolution (stride 1, "same" padding) over rows, with its bias and ReLU: keeps the
/// last 2·halo input rows (halo = dilation·(k−1)/2) and convolves [kept; new] without row
/// padding; the scene's top and bottom get halo zero rows, as the one-window padding.
final class ConvolutionRows: RowStage {
    let kernel: ConvolutionKernel
    let halo: Int
    private let weights: () -> (weight: Parameter, bias: Parameter?)
    private let window = RowWindow()
    private var started = false
    private var output: Tensor?

    init(_ geometry: ConvGeometry, fusedReLU: Bool, weights: @escaping () -> (weight: Parameter, bias: Parameter?)) {
        precondition(geometry.stride == 1 && !geometry.transposed && geometry.padding == geometry.dilation * (geometry.kernel - 1) / 2,
                     "row streaming needs stride-1 same-padded convolutions")
        var g = geometry
        g.rowPadding = 0
        kernel = ConvolutionKernel(g)
        kernel.fusedReLU = fusedReLU
        halo = geometry.padding
        self.weights = weights
    }

    /// A conv–BN–ReLU unit at inference: the folded weights, ReLU fused.
    convenience init(_ unit: ConvBNReLU) {
        var g = unit.conv.geometry
        g.bias = true
        self.init(g, fusedReLU: true) { let w = unit.inferenceWeights(); return (w.weight, w.bias) }
    }

    func push(_ rows: Tensor?, final: Bool) -> Tensor? {
        defer { if final { reset() } }
        guard rows != nil || started else { return nil }
        window.append(rows, zerosBefore: started ? 0 : halo, zerosAfter: final ? halo : 0)
        started = true
        let n = window.count
        guard n > 2 * halo else { return nil }
        let input = window.front(n)
        let out = reuse(output, kernel.geometry.outputShape(input.shape), .nChw16c)
        output = out
        let (weight, bias) = weights()
        kernel.forward(input: input, weight: weight, bias: bias, output: out, training: false)
        window.drop(n - 2 * halo)
        return out
    }

    func reset() {
        window.reset()
        started = false
    }
}

/// 2×2 max pooling over rows: pools pairs of rows, keeps an odd last row for the next push.
final class PoolingRows: RowStage {
    private let window = RowWindow()
    private var output: Tensor?, indices: PoolIndices?

    func push(_ rows: Tensor?, final: Bool) -> Tensor? {
        window.append(rows)
        defer { if final { reset() } }
        precondition(!final || window.count % 2 == 0, "pooled rows must end on an even row")
        let n = window.count / 2 * 2
        guard n > 0 else { return nil }
        let input = window.front(n)
        let out = reuse(output, Shape(input.shape.n, input.shape.c, n / 2, input.shape.w / 2), input.layout)
        output = out
        if indices?.view != out.spatialView { indices = PoolIndices(outputView: out.spatialView) }
        MaxPool2x2.forward(input: input, output: out, indices: indices!)
        window.drop(n)
        return out
    }

    func reset() { window.reset() }
}

/// Fixed ×2 upsampling over rows. Nearest and bed-of-nails map each coarse row to two fine
/// rows on its own; bilinear (half-pixel centres) mixes each coarse row with its neighbours,
/// so it keeps one coarse row before the next to emit, and emits a coarse row's fine rows only
/// once the row below it is known (or the scene ended: then the edge clamp is the true one).
final class UpsamplingRows: RowStage {
    let kind: Upsample2xKind
    private let window = RowWindow()
    /// Scene row of the window's first row; next coarse row to emit.
    private var first = 0, next = 0
    private var upsampled: Tensor?, output: Tensor?

    init(_ kind: Upsample2xKind) { self.kind = kind }

    func push(_ rows: Tensor?, final: Bool) -> Tensor? {
        defer { if final { reset() } }
        guard kind == .bilinear else {
            guard let rows else { return nil }
            let out = reuse(output, Shape(rows.shape.n, rows.shape.c, 2 * rows.shape.h, 2 * rows.shape.w), rows.layout)
            output = out
            Upsample2x.forward(kind, input: rows, output: out)
            return out
        }
        window.append(rows)
        let end = first + window.count - (final ? 0 : 1)  // coarse rows [next, end) can be emitted
        guard end > next else { return nil }
        let coarse = window.front(window.count)
        let fine = reuse(upsampled, Shape(coarse.shape.n, coarse.shape.c, 2 * coarse.shape.h, 2 * coarse.shape.w), coarse.layout)
        upsampled = fine
        Upsample2x.forward(.bilinear, input: coarse, output: fine)
        let out = reuse(output, Shape(fine.shape.n, fine.shape.c, 2 * (end - next), fine.shape.w), fine.layout)
        output = out
        RowCopy.copy(fine, rows: 2 * (next - first), count: 2 * (end - next), into: out, at: 0)
        let drop = end - 1 - first
        window.drop(drop)
        first += drop
        next = end
        return out
    }

    func reset() {
        window.reset()
        first = 0
        next = 0
    }
}

/// A decoder junction over rows: [up, skip] along channels. The skip (from the encoder) runs
/// ahead of the upsampled branch, so its rows wait here until the upsampled rows reach them.
final class ConcatenationRows {
    private let skips = RowWindow()
    private var output: Tensor?

    /// Queues the encoder's next skip rows.
    func addSkip(_ rows: Tensor?) { skips.append(rows) }

    /// [up rows; the same rows of the skip] (1, U + S, rows, W).
    func push(_ up: Tensor?, final: Bool) -> Tensor? {
        defer { if final { precondition(skips.count == 0, "skip rows left at the end"); skips.reset() } }
        guard let up, let (skip, row) = skips.storage else { return nil }
        let n = up.shape.h
        precondition(skips.count >= n && skip.layout == up.layout, "the upsampled branch ran ahead of the skip")
        let out = reuse(output, Shape(up.shape.n, up.shape.c + skip.shape.c, n, up.shape.w), up.layout)
        output = out
        RowCopy.copy(up, rows: 0, count: n, into: out, at: 0)
        RowCopy.copy(skip, rows: row, count: n, into: out, at: 0, channelOffset: up.shape.c)
        skips.drop(n)
        return out
    }

    func reset() { skips.reset() }
}

extension DilatedNet {
    /// The dilated CNN as a row stream: its conv–BN–ReLU units, then the 1×1 head.
    public func rowStream() -> RowStream? {
        isTraining = false
        let units = body.units.map { ConvolutionRows($0) }
        return RowStream(stages: units, head: head) { rows, final in
            units.reduce(rows) { $1.push($0, final: final) }
        }
    }
}

extension UNet {
    /// The U-Net as a row stream: encoder levels, pooling, bottleneck, then each decoder level's
    /// upsampling, junction and convolutions. Fixed upsampling modes only (nil for learned
    /// ones, which the caller predicts in windows).
    public func rowStream() -> RowStream? {
        guard let kind = configuration.upsampling.fixedKind else { return nil }
        isTraining = false
        let levels = encoders.count
        let encoderRows = encoders.map { $0.units.map { ConvolutionRows($0) } }
        let poolRows = (0..<levels).map { _ in PoolingRows() }
        let bottleneckRows = bottleneck.units.map { ConvolutionRows($0) }
        let upRows = (0..<levels).map { _ in UpsamplingRows(kind) }
        let junctionRows = (0..<levels).map { _ in ConcatenationRows() }
        let decoderRows = (0..<levels).map { level in decoders[levels - 1 - level].units.map { ConvolutionRows($0) } }
        func run(_ level: Int, _ rows: Tensor?, _ final: Bool) -> Tensor? {
            let skip = encoderRows[level].reduce(rows) { $1.push($0, final: final) }
            junctionRows[level].addSkip(skip)
            let pooled = poolRows[level].push(skip, final: final)
            let below = level + 1 < levels ? run(level + 1, pooled, final)
                                           : bottleneckRows.reduce(pooled) { $1.push($0, final: final) }
            let up = upRows[level].push(below, final: final)
            let cat = junctionRows[level].push(up, final: final)
            return decoderRows[level].reduce(cat) { $1.push($0, final: final) }
        }
        var stages: [any RowStage] = encoderRows.flatMap { $0 } + poolRows + bottleneckRows + upRows
        stages += decoderRows.flatMap { $0 }
        stages.append(JunctionResetter(junctionRows))
        return RowStream(stages: stages, head: head) { rows, final in run(0, rows, final) }
    }
}

/// Lets `RowStream.reset` reach the junctions' queued skips.
private final class JunctionResetter: RowStage {
    let junctions: [ConcatenationRows]
    init(_ junctions: [ConcatenationRows]) { self.junctions = junctions }
    func push(_ rows: Tensor?, final: Bool) -> Tensor? { rows }
    func reset() { for j in junctions { j.reset() } }
}
