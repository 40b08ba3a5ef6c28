import Core
import Engine

// Row streaming of a chained int8 U-Net (`Int8UNetChain`): the stages of `RowStream`
// (convolution line buffers, pooling, junctions) on u8 NHWC rows, so that no layer converts
// its input from Float32 or its output back (the unchained `ConvolutionRows` does both around
// every int8 unit). Same u8 math as the chain's windows: streamed logits equal one chained
// window over the scene (`chainedInt8StreamEqualsOneChainedWindow`).

/// Where a u8 stage sends each output chunk (rows or nil, last of the scene), like `Emit`.
typealias ByteEmit = (Int8UNetChain.Activation?, Bool) -> Void

/// One layer over u8 (or, into a bilinear junction, Float32 NHWC) rows, like `RowStage`.
protocol ByteRowStage: AnyObject {
    func push(_ rows: Int8UNetChain.Activation?, final: Bool, _ next: ByteEmit)
    func reset()
}

func chainBytes(_ stages: ArraySlice<any ByteRowStage>, _ rows: Int8UNetChain.Activation?, _ final: Bool, _ next: ByteEmit) {
    guard let first = stages.first else { return next(rows, final) }
    first.push(rows, final: final) { out, last in chainBytes(stages.dropFirst(), out, last, next) }
}

/// Held rows of one image (n = 1) as bytes, `rowBytes` each (u8 codes, or Float32 NHWC):
/// rows [start, start + count) of one buffer that only grows; appending past its end first
/// moves the held rows to its front. Layers read the held rows in place.
final class ByteRowQueue {
    private var storage: ByteTensor?
    private var span = HeldRows()
    var count: Int { span.count }
    private(set) var rowBytes = 0
    /// Rows the first buffer holds at least (the most its owner holds at once), so that the
    /// first strips, shorter or longer, do not each allocate, copy and fault in a bigger buffer.
    let reserve: Int
    /// Buffers allocated so far (tests).
    private(set) var allocations = 0

    init(reserve: Int = 0) { self.reserve = max(0, reserve) }

    /// Appends `rows` rows copied from `source` (nothing to copy when it is `tail`'s view), or
    /// zero rows when it is nil.
    func append(_ source: UnsafeRawPointer?, rows: Int, rowBytes length: Int) {
        guard rows > 0 else { return }
        makeRoom(rows: rows, rowBytes: length)
        let at = storage!.data + span.end * length
        if let source {
            if source != UnsafeRawPointer(at) { ByteKernels.copy(source, into: at, count: rows * length) }
        } else {
            at.update(repeating: 0, count: rows * length)
        }
        span.appended(rows)
    }

    /// Where rows of `shape` go next, for a producer to write them in place; `append` of this
    /// view (before any other change to the queue) then only counts them.
    func tail(_ shape: Shape) -> ByteTensor {
        let length = shape.w * shape.c
        makeRoom(rows: shape.h, rowBytes: length)
        return ByteTensor(viewing: storage!, offset: span.end * length, shape: shape)
    }

    private func makeRoom(rows: Int, rowBytes length: Int) {
        precondition(length > 0 && (count == 0 || length == rowBytes), "ByteRowQueue: rows of another width while rows are held")
        rowBytes = length
        switch span.room(for: rows, capacity: (storage?.shape.count ?? 0) / length) {
        case .fits: break
        case .grow(let capacity):
            let next = ByteTensor(uninitialized: Shape(1, length, max(capacity, reserve), 1))
            allocations += 1
            if let storage, count > 0 { ByteKernels.copy(storage.data + span.start * length, into: next.data, count: count * length) }
            storage = next
            span.movedToFront()
        case .compact:
            let base = UnsafeMutableRawPointer(storage!.data)
            if span.start >= count {  // apart: on all threads when big
                ByteKernels.copy(base + span.start * length, into: base, count: count * length)
            } else {
                base.copyMemory(from: base + span.start * length, byteCount: count * length)  // memmove
            }
            span.movedToFront()
        }
    }

    func append(_ rows: ByteTensor) { append(rows.data, rows: rows.shape.h, rowBytes: rows.shape.w * rows.shape.c) }

    /// The first held row.
    var front: UnsafeMutablePointer<UInt8> { storage!.data + span.start * rowBytes }

    /// Held rows `rows` as a u8 tensor (1, channels, rows.count, width), read in place.
    func view(_ rows: Range<Int>, channels: Int, width: Int) -> ByteTensor {
        precondition(rows.upperBound <= count && channels * width == rowBytes, "ByteRowQueue view")
        return ByteTensor(viewing: storage!, offset: (span.start + rows.lowerBound) * rowBytes, shape: Shape(1, channels, rows.count, width))
    }

    func drop(_ rows: Int) { span.drop(rows) }

    func reset() { span.reset() }
}

/// An output buffer that only grows; each call views its front with the wanted shape (values
/// undefined: the caller writes them). A new buffer holds at least `rows` rows of the shape.
final class ByteScratch {
    private var buffer: ByteTensor?
    let rows: Int
    /// Buffers allocated so far (tests).
    private(set) var allocations = 0

    init(rows: Int = 0) { self.rows = rows }

    func view(_ shape: Shape) -> ByteTensor {
        if (buffer?.shape.count ?? -1) < shape.count {
            var biggest = shape
            biggest.h = max(shape.h, rows)
            buffer = ByteTensor(uninitialized: biggest)
            allocations += 1
        }
        return ByteTensor(viewing: buffer!, offset: 0, shape: shape)
    }
}

/// A chained int8 unit over u8 rows (`ConvolutionRows` without Float32): keeps the last 2·halo
/// input rows and convolves [kept; new] without row padding, at most `chunk` output rows per
/// call, zero halo rows at the scene's top and bottom; writes u8 at the next layer's step, or
/// Float32 (`Stage.floatLayout`) into a bilinear junction or the head.
final class Int8ConvolutionRows: ByteRowStage {
    let kernel: Int8ConvolutionKernel
    let label: String, halo: Int, chunk: Int, floatLayout: Layout
    let held: ByteRowQueue, bytes: ByteScratch
    private var floats: Tensor?
    private var started = false, width = 0
    /// The next convolution of its level, when this one writes u8: outputs go straight into its
    /// line buffer (`destination`), not through `bytes` and a copy.
    var sink: Int8ConvolutionRows?

    init(_ stage: Int8UNetChain.Stage, chunk: Int) {
        let g = stage.unit.conv.geometry
        precondition(g.stride == 1 && g.padding == g.dilation * (g.kernel - 1) / 2, "row streaming needs stride-1 same-padded convolutions")
        kernel = stage.kernel.withRowPadding(0)
        label = stage.label; halo = g.padding; self.chunk = max(1, chunk); floatLayout = stage.floatLayout
        held = ByteRowQueue(reserve: self.chunk + 2 * halo); bytes = ByteScratch(rows: self.chunk)
    }

    func push(_ rows: Int8UNetChain.Activation?, final: Bool, _ next: ByteEmit) {
        if let rows {
            guard case .bytes(let b) = rows else { preconditionFailure("\(label): int8 rows read u8") }
            width = b.shape.w
            begin(rowBytes: b.shape.w * b.shape.c)
            held.append(b)
        }
        if final && started { held.append(nil, rows: halo, rowBytes: held.rowBytes) }
        var ready = held.count - 2 * halo, ended = false
        while ready > 0 {
            let n = min(chunk, ready)
            ready -= n
            let out = convolve(held.view(0..<(n + 2 * halo), channels: kernel.geometry.inputChannels, width: width))
            held.drop(n)
            ended = final && ready == 0
            next(out, ended)
        }
        if final {
            if !ended { next(nil, true) }
            reset()
        }
    }

    /// Where the rows of this stage's next push can be written in place (a producer's output):
    /// the end of its line buffer, after the scene's top zero rows. Push that view next.
    func destination(_ shape: Shape) -> ByteTensor {
        begin(rowBytes: shape.w * shape.c)
        return held.tail(shape)
    }

    /// The scene's top zero rows, before its first rows.
    private func begin(rowBytes: Int) {
        guard !started else { return }
        held.append(nil, rows: halo, rowBytes: rowBytes)
        started = true
    }

    private func convolve(_ input: ByteTensor) -> Int8UNetChain.Activation {
        .convolve(kernel, input, profile: "\(label) int8 rows fwd", bytes: sink?.destination ?? bytes.view, floats: &floats,
                  floatLayout: floatLayout, maxRows: chunk)
    }

    func reset() {
        held.reset()
        started = false
    }
}

/// 2×2 max pooling over u8 rows (exact on codes), at most `chunk` output rows per call; an odd
/// last row waits for its partner. Pools the pushed rows in place when nothing is held.
final class Int8PoolingRows: ByteRowStage {
    let chunk: Int
    private let held = ByteRowQueue(), output: ByteScratch

    init(chunk: Int) {
        self.chunk = max(1, chunk)
        output = ByteScratch(rows: self.chunk)
    }

    func push(_ rows: Int8UNetChain.Activation?, final: Bool, _ next: ByteEmit) {
        var ended = false
        if let rows {
            guard case .bytes(let b) = rows else { preconditionFailure("pooling rows read u8") }
            let fromHeld = held.count > 0
            if fromHeld { held.append(b) }
            let source = fromHeld ? held.view(0..<held.count, channels: b.shape.c, width: b.shape.w) : b
            let pairs = source.shape.h / 2, s = source.shape, rowBytes = s.w * s.c
            var done = 0
            while done < pairs {
                let n = min(chunk, pairs - done)
                let input = ByteTensor(viewing: source, offset: 2 * done * rowBytes, shape: Shape(1, s.c, 2 * n, s.w))
                let out = output.view(Shape(1, s.c, n, s.w / 2))
                Profiler.shared.measure("pool u8 rows fwd") { ByteKernels.maxPool2x2(input, into: out) }
                done += n
                ended = final && done == pairs && s.h % 2 == 0
                next(.bytes(out), ended)
            }
            if fromHeld { held.drop(2 * pairs) } else if s.h % 2 == 1 { held.append(b.data + (s.h - 1) * rowBytes, rows: 1, rowBytes: rowBytes) }
        }
        guard final else { return }
        precondition(held.count == 0, "pooled rows must end on an even row")
        if !ended { next(nil, true) }
        reset()
    }

    func reset() { held.reset() }
}

/// A decoder junction over rows (`JunctionRows`) in u8: [up(below), skip] along channels, each
/// concat row written once. Nearest and nails copy u8 codes; bilinear keeps the Float32 NHWC
/// rows below (in units of the skip's step) one coarse row on each side of those it emits, and
/// upsamples them as `Int8UNetChain`'s junction does (`BilinearJunction`).
final class Int8JunctionRows: ByteRowStage {
    let kind: Upsample2xKind
    let chunk: Int
    private let coarse: ByteRowQueue, skips: ByteRowQueue, output: ByteScratch
    private let bilinear: Int8UNetChain.BilinearJunction
    /// The decoder level's first convolution: concat rows are written into its line buffer.
    var sink: Int8ConvolutionRows?
    /// Scene row of the coarse queue's first row; next coarse row to emit.
    private var first = 0, nextRow = 0
    private var skipChannels = 0, coarseChannels = 0, coarseWidth = 0

    init(_ kind: Upsample2xKind, chunk: Int) {
        self.kind = kind; self.chunk = max(1, chunk)
        // Coarse rows held: a chunk and one on each side; fine rows: twice that.
        coarse = ByteRowQueue(reserve: self.chunk + 2); skips = ByteRowQueue(reserve: 2 * (self.chunk + 2))
        output = ByteScratch(rows: 2 * self.chunk); bilinear = Int8UNetChain.BilinearJunction(rows: 2 * (self.chunk + 2))
    }

    /// Queues the encoder's next skip rows.
    func addSkip(_ rows: Int8UNetChain.Activation?) {
        guard let rows else { return }
        guard case .bytes(let b) = rows else { preconditionFailure("skips are u8") }
        skipChannels = b.shape.c
        skips.append(b)
    }

    func push(_ below: Int8UNetChain.Activation?, final: Bool, _ next: ByteEmit) {
        guard kind == .bilinear else {
            var out: Int8UNetChain.Activation?
            if let below {
                guard case .bytes(let b) = below else { preconditionFailure("\(kind) junction rows read u8") }
                let cat = concat(rows: 2 * b.shape.h, up: b.shape.c, width: 2 * b.shape.w)
                Profiler.shared.measure("up+concat u8 rows fwd") { ByteKernels.upsample2x(kind, b, into: cat, skip: takeSkips(cat.shape.h)) }
                out = .bytes(cat)
            }
            if final { finish() }
            return next(out, final)
        }
        if let below {
            guard case .floats(let t) = below, t.layout == .nhwc else { preconditionFailure("bilinear junction rows read Float32 NHWC") }
            coarseChannels = t.shape.c; coarseWidth = t.shape.w
            coarse.append(t.data, rows: t.shape.h, rowBytes: t.shape.w * t.shape.c * 4)
        }
        let end = first + coarse.count
        while true {
            let n = min(chunk, end - (final ? 0 : 1) - nextRow)  // rows whose lower neighbour is known
            guard n > 0 else { break }
            let out = Profiler.shared.measure("up+concat u8 rows fwd") { bilinearRows(nextRow..<(nextRow + n), held: first..<end) }
            nextRow += n
            let drop = max(0, nextRow - 1 - first)
            coarse.drop(drop)
            first += drop
            if final && nextRow == end {
                finish()
                return next(.bytes(out), true)
            }
            next(.bytes(out), false)
        }
        if final {
            finish()
            next(nil, true)
        }
    }

    /// The concat rows of coarse scene rows `rows`, from them and their neighbours among the
    /// `held` ones (none past the scene's edges, where the ×2 clamps as over the whole scene).
    private func bilinearRows(_ rows: Range<Int>, held: Range<Int>) -> ByteTensor {
        let lo = max(held.lowerBound, rows.lowerBound - 1), hi = min(held.upperBound, rows.upperBound + 1)
        let cat = concat(rows: 2 * rows.count, up: coarseChannels, width: 2 * coarseWidth)
        let source = UnsafeRawPointer(coarse.front).assumingMemoryBound(to: Float.self) + (lo - held.lowerBound) * coarseWidth * coarseChannels
        bilinear(source, Shape(1, coarseChannels, hi - lo, coarseWidth), fine: (2 * (rows.lowerBound - lo))..<(2 * (rows.upperBound - lo)),
                 skip: takeSkips(cat.shape.h), into: cat)
        return cat
    }

    private func concat(rows: Int, up: Int, width: Int) -> ByteTensor {
        let shape = Shape(1, up + skipChannels, rows, width)
        return sink?.destination(shape) ?? output.view(shape)
    }

    /// The next `rows` skip rows, read in place; taken off the queue (valid until the next append).
    private func takeSkips(_ rows: Int) -> ByteTensor {
        precondition(skips.count >= rows, "the upsampled branch ran ahead of the skip")
        defer { skips.drop(rows) }
        return skips.view(0..<rows, channels: skipChannels, width: skips.rowBytes / max(1, skipChannels))
    }

    /// The scene ended: every skip row went out.
    private func finish() {
        precondition(skips.count == 0, "skip rows left at the end")
        reset()
    }

    func reset() {
        coarse.reset()
        skips.reset()
        first = 0
        nextRow = 0
    }
}

/// The u8 part of a chained int8 U-Net over rows, as one `RowStage` after the fp32 first unit:
/// quantizes its rows, runs encoders, pooling, bottleneck, junctions and decoders on u8 (the
/// chain's stages and steps, without row padding), then the head from the last decoder's
/// Float32 NHWC rows straight into NCHW logits (`PointwiseLogits`, as the chain's windows).
final class Int8UNetRows: RowStage {
    private let quantizer: ActivationQuantizer
    private let first: ByteScratch
    private let encoders: [[any ByteRowStage]], pools: [Int8PoolingRows], bottleneck: [any ByteRowStage]
    private let junctions: [Int8JunctionRows], decoders: [[any ByteRowStage]]
    private let head: Conv2d, pointwise = PointwiseLogits(), maxRows: Int
    private var logits: Tensor?

    init(_ chain: Int8UNetChain, rows: Int) {
        let levels = chain.encoderStages.count
        func chunk(_ level: Int) -> Int { max(1, rows >> level) }
        quantizer = chain.firstQuantizer
        first = ByteScratch(rows: rows)
        encoders = chain.encoderStages.enumerated().map { l, s in s.map { Int8ConvolutionRows($0, chunk: chunk(l)) } }
        pools = (0..<levels).map { Int8PoolingRows(chunk: chunk($0 + 1)) }
        bottleneck = chain.bottleneckStages.map { Int8ConvolutionRows($0, chunk: chunk(levels)) }
        junctions = (0..<levels).map { Int8JunctionRows(chain.kind, chunk: chunk($0 + 1)) }
        decoders = (0..<levels).map { l in chain.decoderStages[levels - 1 - l].map { Int8ConvolutionRows($0, chunk: chunk(l)) } }
        head = chain.net.head; maxRows = max(1, rows)
        // u8 rows go straight into the next convolution's line buffer: no copy per row.
        for stages in encoders + [bottleneck] + decoders {
            for (a, b) in zip(stages, stages.dropFirst()) {
                if let a = a as? Int8ConvolutionRows, let b = b as? Int8ConvolutionRows, a.kernel.outputStep != nil { a.sink = b }
            }
        }
        for (j, d) in zip(junctions, decoders) { j.sink = d.first as? Int8ConvolutionRows }
        firstSink = encoders.first?.first as? Int8ConvolutionRows
    }
    /// The second unit of the first level: the quantized input rows are written into its line buffer.
    private var firstSink: Int8ConvolutionRows?

    func push(_ rows: Tensor?, final: Bool, _ next: Emit) {
        var input: Int8UNetChain.Activation?
        if let rows {
            let q = firstSink?.destination(rows.shape) ?? first.view(rows.shape)
            Profiler.shared.measure("int8 quantize enc1.1 rows") { quantizer.quantize(rows, into: q) }
            input = .bytes(q)
        }
        run(0, input, final) { out, last in
            guard let out else { return next(nil, last) }
            guard case .floats(let t) = out, t.layout == .nhwc else { preconditionFailure("the head reads Float32 NHWC") }
            let l = reuseRows(logits, Shape(t.shape.n, head.geometry.outputChannels, t.shape.h, t.shape.w), .nchw, maxRows: maxRows)
            logits = l
            Profiler.shared.measure("head (1×1 NHWC → NCHW) rows fwd") { pointwise.forward(features: t, weight: head.weight, bias: head.bias!, into: l) }
            next(l, last)
        }
    }

    private func run(_ level: Int, _ input: Int8UNetChain.Activation?, _ final: Bool, _ next: ByteEmit) {
        chainBytes(encoders[level][...], input, final) { skip, final in
            self.junctions[level].addSkip(skip)
            self.pools[level].push(skip, final: final) { pooled, final in
                let decode: ByteEmit = { below, final in
                    self.junctions[level].push(below, final: final) { cat, final in chainBytes(self.decoders[level][...], cat, final, next) }
                }
                if level + 1 < self.encoders.count { self.run(level + 1, pooled, final, decode) } else { chainBytes(self.bottleneck[...], pooled, final, decode) }
            }
        }
    }

    func reset() {
        for s in encoders.flatMap({ $0 }) + bottleneck + decoders.flatMap({ $0 }) { s.reset() }
        for p in pools { p.reset() }
        for j in junctions { j.reset() }
    }
}

extension Int8UNetChain {
    /// The chained int8 U-Net as a row stream (`rows` per chunk at full resolution): the fp32
    /// first unit's `ConvolutionRows`, then `Int8UNetRows` (with the head: NCHW logits out).
    func rowStream(rows: Int) -> RowStream {
        net.isTraining = false
        let stages: [any RowStage] = [ConvolutionRows(net.encoders[0].units[0], chunk: max(1, rows)), Int8UNetRows(self, rows: rows)]
        return RowStream(stages: stages, head: nil) { input, final, emit in chain(stages[...], input, final, emit) }
    }
}
