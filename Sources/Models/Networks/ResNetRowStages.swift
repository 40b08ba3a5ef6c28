import Core
import Engine

/// A layer of stride S and row extent K (a k×k convolution with dilation d: K = d·(k−1)+1, or
/// a k×k pooling) over rows, whose scene is padded with P rows above (PyTorch's symmetric
/// padding): output row r reads input rows S·r − P … S·r − P + K − 1. Holds those rows in a
/// line buffer of (chunk − 1)·S + K rows and runs `body` on whole row sets of it without row
/// padding, every output row it can on each push, `chunk` at most per call. Rows above the
/// scene and below it (as many as the one-window layer pads and reads) are `padding` rows
/// (zero for convolutions, −∞ for max pooling); a buffer shorter than S after a run (1×1
/// stride-2: K < S) skips the input rows no output reads. Phases follow absolute row numbers.
final class StridedRows: RowStage {
    let stride: Int, extent: Int, top: Int, chunk: Int
    private let padding: Float
    /// input rows ((n − 1)·S + K, owned by the stage) → n output rows (owned by `body`'s owner).
    private let body: (Tensor) -> Tensor
    private let window: LineBuffer
    private var started = false
    /// Scene rows seen, output rows emitted, incoming rows to skip (no output reads them).
    private var seen = 0, emitted = 0, skip = 0

    init(stride: Int, extent: Int, padding top: Int, chunk: Int, paddingValue: Float = 0, _ body: @escaping (Tensor) -> Tensor) {
        precondition(stride >= 1 && extent >= 1 && top >= 0 && top < extent, "strided rows: stride \(stride), extent \(extent), padding \(top)")
        self.stride = stride; self.extent = extent; self.top = top
        self.chunk = max(1, chunk)
        padding = paddingValue
        self.body = body
        window = LineBuffer(capacity: (self.chunk - 1) * stride + extent)
    }

    /// A conv–BN(–ReLU) unit at inference (batch norm folded, ReLU fused when the unit has one),
    /// any stride: the rows of the one-window convolution.
    convenience init(_ unit: ConvBNReLU, chunk: Int) {
        var g = unit.conv.geometry
        g.bias = true
        g.rowPadding = 0
        let kernel = ConvolutionKernel(g, winograd: .off)
        kernel.fusedReLU = unit.relu
        var output: Tensor?
        self.init(stride: g.stride, extent: g.dilation * (g.kernel - 1) + 1, padding: g.padding, chunk: chunk) { input in
            let out = reuse(output, g.outputShape(input.shape), .blocked)
            output = out
            let (weight, bias) = unit.inferenceWeights()
            kernel.forward(input: input, weight: weight, bias: bias, output: out, training: false)
            return out
        }
    }

    /// smp's encoder pooling (3×3, stride 2, padding 1; the padding never wins a maximum).
    static func maxPool(_ pool: PaddedMaxPool2d, chunk: Int) -> StridedRows {
        let k = pool.kernel
        precondition(k.kind == .max && k.kernel == 3 && k.stride == 2 && k.padding == 1, "row streaming pools 3×3 with stride 2 and padding 1")
        var output: Tensor?
        return StridedRows(stride: 2, extent: 3, padding: 1, chunk: chunk, paddingValue: -.infinity) { input in
            let out = reuse(output, Shape(input.shape.n, input.shape.c, (input.shape.h - 1) / 2, (input.shape.w - 1) / 2 + 1), input.layout)
            output = out
            ResNetRowKernels.maxPool3x3Stride2(input, into: out)
            return out
        }
    }

    func push(_ rows: Tensor?, final: Bool, _ next: Emit) {
        if let rows {
            if !started { feed(nil, padding: top, like: rows, next) }
            started = true
            seen += rows.shape.h
            feed(rows, padding: 0, like: rows, next)
        }
        guard final else {
            let n = computable
            if n > 0 { run(n, next, last: false) }
            return
        }
        if started {
            // The one-window layer's output rows, and the padding rows below the scene its last one reads.
            let outputs = (seen + 2 * top - extent) / stride + 1
            feed(nil, padding: max(0, stride * (outputs - 1) - top + extent - seen), like: nil, next)
            let n = computable
            precondition(emitted + n == outputs, "strided rows: \(emitted + n) rows out of \(outputs)")
        }
        let n = computable
        if n > 0 { run(n, next, last: true) } else { next(nil, true) }
        reset()
    }

    private var computable: Int { window.count >= extent ? (window.count - extent) / stride + 1 : 0 }

    /// Copies rows (or padding rows) in, skipping what no output reads and running a full
    /// chunk whenever the buffer fills (a chunk that ends the input waits for the next push,
    /// so that a final push marks it last).
    private func feed(_ rows: Tensor?, padding count: Int, like: Tensor?, _ next: Emit) {
        var done = 0
        let total = rows?.shape.h ?? count
        while done < total {
            if skip > 0 {
                let n = min(skip, total - done)
                skip -= n
                done += n
                continue
            }
            if window.count == window.capacity { run(chunk, next, last: false); continue }
            let at = window.count
            let n = window.fill(rows, from: done, zeros: total - done, like: like)
            if rows == nil && padding != 0 { ResNetRowKernels.fill(window.tensor!, rows: at, count: n, with: padding) }
            done += n
        }
    }

    private func run(_ n: Int, _ next: Emit, last: Bool) {
        let out = body(window.front((n - 1) * stride + extent))
        let keep = window.count - n * stride
        window.keepLast(max(0, keep))
        skip = max(0, -keep)
        emitted += n
        next(out, last)
    }

    func reset() {
        window.reset()
        started = false
        seen = 0; emitted = 0; skip = 0
    }
}

/// A residual block over rows: the input goes to the shortcut (the identity, or the 1×1
/// projection's rows) and to the main branch; the shortcut's rows wait in a queue (a delay
/// line: the main branch lags by its halos) until the main branch gives the same rows, then
/// max(main + shortcut, 0) goes on.
final class ResidualRows: RowStage {
    private let main: [any RowStage], shortcut: [any RowStage]
    private let queue = RowWindow()
    private var output: Tensor?

    init(_ block: ResidualBlock, chunk: Int) {
        main = block.units.map { rowStage($0, chunk: chunk) }
        shortcut = block.projection.map { [rowStage($0, chunk: chunk)] } ?? []
    }

    func push(_ rows: Tensor?, final: Bool, _ next: Emit) {
        chain(shortcut[...], rows, final) { rows, _ in queue.append(rows) }
        chain(main[...], rows, final) { rows, last in
            guard let rows else { return next(nil, last) }
            guard let (held, at) = queue.held, queue.count >= rows.shape.h else { preconditionFailure("the main branch ran ahead of the shortcut") }
            let out = reuse(output, rows.shape, rows.layout)
            output = out
            ResNetRowKernels.addReLU(rows, held, row: at, into: out)
            queue.drop(rows.shape.h)
            next(out, last)
        }
        if final {
            precondition(queue.count == 0, "shortcut rows left at the end")
            queue.reset()
        }
    }

    func reset() {
        for s in main + shortcut { s.reset() }
        queue.reset()
    }
}

/// A decoder junction that takes skips (`JunctionRows`, `ConcatRows`).
protocol SkipJunctionRows: RowStage {
    /// Queues the encoder's next skip rows.
    func addSkip(_ rows: Tensor?)
}

extension JunctionRows: SkipJunctionRows {}

/// smp's junction where the encoder stage was dilated (the upsampling to the same size is the
/// identity): [rows, the same skip rows] along channels.
final class ConcatRows: SkipJunctionRows {
    private let skips = RowWindow()
    private var output: Tensor?

    func addSkip(_ rows: Tensor?) { skips.append(rows) }

    func push(_ rows: Tensor?, final: Bool, _ next: Emit) {
        guard let rows else {
            if final { finish() }
            return next(nil, final)
        }
        let n = rows.shape.h
        guard let (skip, at) = skips.held, skips.count >= n, skip.layout == rows.layout else {
            preconditionFailure("the decoder ran ahead of the skip")
        }
        let out = reuse(output, Shape(rows.shape.n, rows.shape.c + skip.shape.c, n, rows.shape.w), rows.layout)
        output = out
        RowCopy.copy(rows, rows: 0, count: n, into: out, at: 0)
        RowCopy.copy(skip, rows: at, count: n, into: out, at: 0, channelOffset: rows.shape.c)
        skips.drop(n)
        if final { finish() }
        next(out, final)
    }

    private func finish() {
        precondition(skips.count == 0, "skip rows left at the end")
        reset()
    }

    func reset() { skips.reset() }
}

/// Nearest ×2 upsampling over rows (smp's last decoder block, which has no skip).
final class NearestUpsampleRows: RowStage {
    private var output: Tensor?

    func push(_ rows: Tensor?, final: Bool, _ next: Emit) {
        guard let rows else { return next(nil, final) }
        let h = rows.shape.h
        let out = reuse(output, Shape(rows.shape.n, rows.shape.c, 2 * h, 2 * rows.shape.w), rows.layout)
        output = out
        Upsample2x.forwardRows(.nearest, rows.data, rows.spatialView, coarse: 0..<h, fine: 0..<(2 * h), out.data, out.spatialView)
        next(out, final)
    }

    func reset() {}
}

/// A conv–BN(–ReLU) unit's rows: stride 1 keeps its halo (`ConvolutionRows`), others `StridedRows`.
/// Direct convolutions, not Winograd: each row shape's plan holds its own transformed weights
/// (four times the 3×3 weights) and workspace, which doubled the ResNet stream's peak memory
/// and made it slower (resnet34, 1024×2048 mosaic, 2 rounds each: 1.56 GB, 34–42 s direct;
/// 3.17 GB, 51–55 s Winograd).
func rowStage(_ unit: ConvBNReLU, chunk: Int) -> any RowStage {
    let g = unit.conv.geometry
    guard g.stride == 1 else { return StridedRows(unit, chunk: chunk) }
    var folded = g
    folded.bias = true
    let rows = ConvolutionRows(folded, chunk: chunk, fusedReLU: unit.relu) { let w = unit.inferenceWeights(); return (w.weight, w.bias) }
    rows.kernel.winograd = .off
    return rows
}

extension ResNetUNet {
    /// The ResNet U-Net as a row stream (`rows` per chunk at full resolution, divided by each
    /// feature's stride): stem, pooling, the residual blocks (dilated ones at output stride 16
    /// and 8), each feature's rows queued at its decoder junction, the five decoder blocks and
    /// the 3×3 head, all over rows (the logits equal one window over the scene, smp's
    /// `model(scene)`, on smp bundles too: resnet34, 4 bands, decoder 256-128-64-32-16).
    /// This is predict's default (`--blend stream`). Its edges are the network's own zero padding
    /// at the scene's border; windows (`--blend centre`, as smp's sliding-window peer) read zeros
    /// beyond the scene out to the receptive radius (544 px for resnet34), where every layer then
    /// sees computed features, so the two maps differ near the edges (6 % of the 2048² mosaic
    /// with random smp weights, in a band about 32 px wide).
    public func rowStream(rows: Int) -> RowStream? {
        isTraining = false
        let strides = configuration.featureStrides
        func chunk(_ stride: Int) -> Int { max(1, rows / stride) }
        var encoder: [[any RowStage]] = [[StridedRows(stem, chunk: chunk(2))], [StridedRows.maxPool(pool, chunk: chunk(4))]]
        for (i, stage) in stages.enumerated() { encoder.append(stage.map { ResidualRows($0, chunk: chunk(strides[i + 1])) }) }
        // Block i reads the feature at strides[4 − i] and the skip at strides[3 − i] (as `junctions`).
        let joins: [any SkipJunctionRows] = (0..<4).map { i -> any SkipJunctionRows in
            guard strides[4 - i] > strides[3 - i] else { return ConcatRows() }
            return JunctionRows(.nearest, chunk: chunk(strides[4 - i]))
        }
        var decoder: [any RowStage] = []
        for i in 0..<4 { decoder += [joins[i]] + decoderBlocks[i].map { rowStage($0, chunk: chunk(strides[3 - i])) } }
        decoder += [NearestUpsampleRows()] + decoderBlocks[4].map { rowStage($0, chunk: chunk(1)) }
        let headRows = ConvolutionRows(head.geometry, chunk: chunk(1), fusedReLU: false) { [head] in (head.weight, head.bias) }
        headRows.kernel.winograd = .off
        decoder.append(headRows)
        // Features 0 (stem) … 4 (layer4): 0–3 are skips; the pooling joins layer1's blocks.
        let levels: [[any RowStage]] = [encoder[0], encoder[1] + encoder[2], encoder[3], encoder[4], encoder[5]]
        func run(_ level: Int, _ input: Tensor?, _ final: Bool, _ emit: Emit) {
            chain(levels[level][...], input, final) { feature, final in
                guard level < 4 else { return chain(decoder[...], feature, final, emit) }
                joins[3 - level].addSkip(feature)
                run(level + 1, feature, final, emit)
            }
        }
        return RowStream(stages: encoder.flatMap { $0 } + decoder, head: nil) { input, final, emit in run(0, input, final, emit) }
    }
}

/// The native row kernels of the ResNet stream (`Elementwise` and `PaddedMaxPool2d` are their
/// one-window forms: the stream must give the same values).
enum ResNetRowKernels {
    /// output (N, C, n, ⌊(W − 1)/2⌋ + 1) = max over 3×3 windows, stride 2, of input (N, C, 2n + 1,
    /// W) (rows unpadded: the caller brings the padding rows; columns padded by −∞). Any
    /// non-NHWC layout, same for both.
    static func maxPool3x3Stride2(_ input: Tensor, into output: Tensor) {
        let iv = input.spatialView, ov = output.spatialView
        precondition(input.layout == output.layout && input.layout != .nhwc && iv.outer == ov.outer && iv.inner == ov.inner
                     && iv.h == 2 * ov.h + 1 && ov.w == (iv.w - 1) / 2 + 1, "3×3 stride-2 pooling rows \(input.shape) → \(output.shape)")
        let src = UncheckedSendable(input.data), dst = UncheckedSendable(output.data)
        parallelFor(ov.outer * ov.h) { range in
            let inner = iv.inner, iw = iv.w
            for job in range {
                let o = job / ov.h, y = job % ov.h
                let d = dst.value + ov.row(o, y)
                for x in 0..<ov.w {
                    let lo = max(0, 2 * x - 1), hi = min(iw - 1, 2 * x + 1), dx = d + x * inner
                    for k in 0..<inner { dx[k] = -.infinity }
                    for dy in 0..<3 {
                        let s = src.value + iv.row(o, 2 * y + dy)
                        for c in lo...hi {
                            let sp = s + c * inner
                            for k in 0..<inner { dx[k] = max(dx[k], sp[k]) }
                        }
                    }
                }
            }
        }
    }

    /// output = max(main + shortcut rows [row, row + main.h), 0): `Elementwise.addReLU` on rows.
    static func addReLU(_ main: Tensor, _ shortcut: Tensor, row: Int, into output: Tensor) {
        let mv = main.spatialView, sv = shortcut.spatialView, ov = output.spatialView
        precondition(main.layout == shortcut.layout && output.matches(main.shape, main.layout) && main.layout != .nhwc
                     && mv.outer == sv.outer && mv.w == sv.w && mv.inner == sv.inner && row >= 0 && row + mv.h <= sv.h,
                     "residual rows \(main.shape) + \(shortcut.shape)")
        let a = UncheckedSendable(main.data), b = UncheckedSendable(shortcut.data), d = UncheckedSendable(output.data)
        let length = mv.h * mv.w * mv.inner
        parallelFor(mv.outer) { range in
            for o in range {
                let pa = a.value + mv.row(o, 0), pb = b.value + sv.row(o, row), pd = d.value + ov.row(o, 0)
                for i in 0..<length { pd[i] = max(pa[i] + pb[i], 0) }
            }
        }
    }

    /// Sets rows [row, row + count) of every channel to `value` (blocked padding included).
    static func fill(_ tensor: Tensor, rows row: Int, count: Int, with value: Float) {
        guard count > 0 else { return }
        let view = tensor.spatialView
        for plane in 0..<view.outer { (tensor.data + view.row(plane, row)).update(repeating: value, count: count * view.w * view.inner) }
    }
}
