import Core
import Engine

/// segmentation_models_pytorch's `Unet` with a ResNet-18/34/50 encoder, layer for layer, with
/// smp's parameter names (`encoder.layer1.0.conv1.weight`, `decoder.blocks.0.conv1.0.weight`,
/// `segmentation_head.0.weight`, …), so its state dict moves both ways.
///
/// Encoder: 7×7 stride-2 conv–BN–ReLU stem, 3×3 stride-2 max pooling (padding 1), four stages
/// of residual blocks (`ResidualBlock`). Decoder, deepest first: nearest ×2 (the identity where
/// the stage was dilated) + concat of the skip, two 3×3 conv–BN–ReLU; the fifth block has no
/// skip. Head: 3×3 convolution with bias. Input (N, C, H, W) NCHW with H, W multiples of the
/// output stride; logits (N, K, H, W) NCHW; blocked (`Layout.blocked`) in between.
public final class ResNetUNet: SegmentationNetwork {
    public let configuration: ResNetUNetConfiguration
    public let stem: ConvBNReLU
    public let pool = PaddedMaxPool2d(kernelSize: 3, stride: 2, padding: 1)
    public let stages: [[ResidualBlock]]
    /// Decoder blocks 0–3 (deepest first): bring the level below to the skip's resolution, concat.
    public let junctions: [any DecoderJunction]
    /// Decoder block 4: nearest ×2 to the input's resolution, no skip.
    public let lastUpsample = Upsample2d(mode: .nearest)
    /// Per decoder block, its two conv–BN–ReLU units (smp's `conv1`, `conv2`).
    public let decoderBlocks: [[ConvBNReLU]]
    public let head: Conv2d
    public var isTraining = true {
        didSet {
            stem.isTraining = isTraining
            for b in stages.joined() { b.isTraining = isTraining }
            for u in decoderBlocks.joined() { u.isTraining = isTraining }
            head.isTraining = isTraining
        }
    }

    private let toPlain = LayoutConverter(), toBlocked = LayoutConverter()
    private var logits: Tensor?, dHeadOutput: Tensor?

    public init(_ c: ResNetUNetConfiguration, seed: UInt64 = 1) {
        configuration = c
        stem = ConvBNReLU(inputChannels: c.inputChannels, outputChannels: 64, kernelSize: 7, stride: 2, seed: seed &+ 100)
        stem.conv.computesInputGradient = false
        stages = c.stages.enumerated().map { i, stage in
            stage.enumerated().map { b, spec in
                ResidualBlock(spec, bottleneck: c.encoder.usesBottleneck, seed: seed &+ UInt64(1000 * (i + 1) + 10 * b))
            }
        }
        let strides = c.featureStrides
        junctions = (0..<4).map { i -> any DecoderJunction in
            // Block i reads the feature at strides[4 − i] and the skip at strides[3 − i].
            strides[4 - i] > strides[3 - i] ? UpsampleConcat(mode: .nearest) : SkipConcat()
        }
        decoderBlocks = c.decoderBlocks.enumerated().map { i, d in
            [ConvBNReLU(inputChannels: d.input + d.skip, outputChannels: d.output, seed: seed &+ UInt64(5000 + 10 * i)),
             ConvBNReLU(inputChannels: d.output, outputChannels: d.output, seed: seed &+ UInt64(5001 + 10 * i))]
        }
        head = Conv2d(inputChannels: c.decoderChannels.last!, outputChannels: c.classes, kernelSize: 3, bias: true, seed: seed &+ 9000)
        stem.label = "encoder.conv1"; stem.conv.label = stem.label
        for (i, stage) in stages.enumerated() {
            for (b, block) in stage.enumerated() {
                for (k, u) in block.allUnits.enumerated() { u.label = "layer\(i + 1).\(b).\(k + 1)"; u.conv.label = u.label }
            }
        }
        for (i, units) in decoderBlocks.enumerated() {
            for (k, u) in units.enumerated() { u.label = "decoder.\(i).conv\(k + 1)"; u.conv.label = u.label }
        }
        head.label = "segmentation_head"
    }

    /// smp's names, in its `state_dict` order (see `ResNetUNetConfiguration.parameterShapes`).
    public var namedParameters: [(String, Parameter)] {
        var out = scoped("encoder.conv1", stem.conv.namedParameters) + scoped("encoder.bn1", stem.bn.namedParameters)
        for (i, stage) in stages.enumerated() {
            for (b, block) in stage.enumerated() { out += scoped("encoder.layer\(i + 1).\(b)", block.namedParameters) }
        }
        for (i, units) in decoderBlocks.enumerated() {
            for (k, u) in units.enumerated() {
                out += scoped("decoder.blocks.\(i).conv\(k + 1)", scoped("0", u.conv.namedParameters) + scoped("1", u.bn.namedParameters))
            }
        }
        return out + scoped("segmentation_head.0", head.namedParameters)
    }

    /// Batch-norm running statistics with smp's names (`….running_mean`, `….running_var`).
    public var namedBuffers: [(String, Parameter)] {
        var out = scoped("encoder.bn1", stem.bn.namedBuffers)
        for (i, stage) in stages.enumerated() {
            for (b, block) in stage.enumerated() { out += scoped("encoder.layer\(i + 1).\(b)", block.namedBuffers) }
        }
        for (i, units) in decoderBlocks.enumerated() {
            for (k, u) in units.enumerated() { out += scoped("decoder.blocks.\(i).conv\(k + 1).1", u.bn.namedBuffers) }
        }
        return out
    }

    /// Every batch norm, in forward order.
    public var batchNormLayers: [BatchNorm2d] {
        ([stem] + stages.joined().flatMap(\.allUnits) + decoderBlocks.joined()).map(\.bn)
    }

    /// input (N, C, H, W) NCHW → logits (N, K, H, W) NCHW (owned by the network).
    public func callAsFunction(_ input: Tensor) -> Tensor {
        let c = configuration
        precondition(input.layout == .nchw && input.shape.c == c.inputChannels, "ResNetUNet input \(input.shape)")
        precondition(input.shape.h % c.outputStride == 0 && input.shape.w % c.outputStride == 0,
                     "ResNetUNet input H and W must be multiples of \(c.outputStride)")
        let prof = Profiler.shared
        let features = encode(input)
        var x = features[4]
        for i in 0..<4 {
            let below = x
            let cat = prof.measure("up+concat\(i) fwd") { junctions[i](below, skip: features[3 - i]) }
            x = decoderBlocks[i].reduce(cat) { $1($0) }
        }
        x = prof.measure("up\(4) fwd") { lastUpsample(x) }
        x = decoderBlocks[4].reduce(x) { $1($0) }
        let out = prof.measure("head fwd") { head(x) }
        let l = reuse(logits, out.shape, .nchw)
        logits = l
        prof.measure("logits reorder") { toPlain.convert(out, into: l) }
        return l
    }

    /// The encoder's five features: the stem's (stride 2) and each stage's.
    private func encode(_ input: Tensor) -> [Tensor] {
        var features = [stem(input)]
        var x = Profiler.shared.measure("maxpool fwd") { pool(features[0]) }
        for stage in stages {
            x = stage.reduce(x) { $1($0) }
            features.append(x)
        }
        return features
    }

    private var regionBuffers: [Int: Tensor] = [:]

    /// Inference logits of `region` only. The encoder sees the whole input (the region's
    /// context), but each decoder block runs only over what the blocks above it read: the
    /// region plus 1 pixel for the 3×3 head, plus 2 per block for its two 3×3 convolutions,
    /// taken to the coarser level by the nearest ×2 (which reads one coarse pixel per output
    /// pixel and adds no margin). At a prediction window's margin this skips most of the
    /// decoder, whose full-resolution blocks cost as much as the encoder; the region's logits
    /// equal the whole input's (up to convolution rounding). Training computes everything.
    public func logits(_ input: Tensor, region: Window) -> Tensor {
        let whole = Window(column: 0, row: 0, width: input.shape.w, height: input.shape.h)
        guard !isTraining, region != whole else {
            let full = self(input)
            if region == whole { return full }
            return crop(full, rows: region.row..<(region.row + region.height),
                        columns: region.column..<(region.column + region.width), origin: (0, 0), slot: 0)
        }
        precondition(region.row >= 0 && region.column >= 0 && region.row + region.height <= input.shape.h
                     && region.column + region.width <= input.shape.w && region.height > 0 && region.width > 0, "region outside the input")
        let strides = configuration.featureStrides
        let rows = Self.decoderPlan(region.row..<(region.row + region.height), size: input.shape.h, strides: strides)
        let cols = Self.decoderPlan(region.column..<(region.column + region.width), size: input.shape.w, strides: strides)
        let features = encode(input)
        var x = crop(features[4], rows: rows.below[0], columns: cols.below[0], origin: (0, 0), slot: 1)
        for i in 0..<4 {
            let skip = crop(features[3 - i], rows: rows.run[i], columns: cols.run[i], origin: (0, 0), slot: 2 + i)
            x = decoderBlocks[i].reduce(junctions[i](x, skip: skip)) { $1($0) }
            x = crop(x, rows: rows.below[i + 1], columns: cols.below[i + 1], origin: (rows.run[i].lowerBound, cols.run[i].lowerBound), slot: 6 + i)
        }
        x = decoderBlocks[4].reduce(lastUpsample(x)) { $1($0) }
        x = crop(x, rows: rows.head, columns: cols.head, origin: (rows.run[4].lowerBound, cols.run[4].lowerBound), slot: 10)
        let out = head(x)
        let plain = reuse(regionBuffers[11], out.shape, .nchw)
        regionBuffers[11] = plain
        toPlain.convert(out, into: plain)
        return crop(plain, rows: region.row..<(region.row + region.height), columns: region.column..<(region.column + region.width),
                    origin: (rows.head.lowerBound, cols.head.lowerBound), slot: 12)
    }

    /// `t` (whose first pixel is at `origin` of its level) cut to `rows` × `columns`, in the
    /// reusable buffer `slot`; `t` itself when it is that already.
    private func crop(_ t: Tensor, rows: Range<Int>, columns: Range<Int>, origin: (Int, Int), slot: Int) -> Tensor {
        if rows.lowerBound == origin.0 && columns.lowerBound == origin.1 && rows.count == t.shape.h && columns.count == t.shape.w { return t }
        let out = reuse(regionBuffers[slot], Shape(t.shape.n, t.shape.c, rows.count, columns.count), t.layout)
        regionBuffers[slot] = out
        SpatialCrop.copy(t, row: rows.lowerBound - origin.0, column: columns.lowerBound - origin.1, into: out)
        return out
    }

    /// Along one axis of an input of `size` pixels, for the logits of `r`: the rows (or columns)
    /// the head runs over (`head`, at full resolution), and per decoder block i (0 deepest … 4)
    /// where it runs (`run[i]`, at its output's resolution) and the part of the level below that
    /// feeds it (`below[i]`, at that level's resolution; `run[i]` is it upsampled).
    static func decoderPlan(_ r: Range<Int>, size: Int, strides: [Int]) -> (head: Range<Int>, run: [Range<Int>], below: [Range<Int>]) {
        func clipped(_ lo: Int, _ hi: Int, _ n: Int) -> Range<Int> { max(0, lo)..<min(n, hi) }
        // Block i's output is at strides[3 − i] (block 4: 1), its input from below at strides[4 − i] (block 4: strides[0]).
        let output = (0..<4).map { strides[3 - $0] } + [1], input = (0..<5).map { strides[4 - $0] }
        let head = clipped(r.lowerBound - 1, r.upperBound + 1, size)
        var run = [Range<Int>](repeating: 0..<0, count: 5), below = run, need = head
        for i in (0..<5).reversed() {
            let n = size / output[i], f = input[i] / output[i]
            let want = clipped(need.lowerBound - 2, need.upperBound + 2, n)
            below[i] = (want.lowerBound / f)..<((want.upperBound + f - 1) / f)
            run[i] = (below[i].lowerBound * f)..<(below[i].upperBound * f)
            need = below[i]
        }
        return (head, run, below)
    }

    /// Backward from dL/dlogits (N, K, H, W) NCHW: writes every parameter's gradient. Each
    /// encoder feature feeds the next stage and a decoder concat: both gradients are summed.
    public func backward(_ dLogits: Tensor) {
        let dh = reuse(dHeadOutput, dLogits.shape, head.outputLayout)
        dHeadOutput = dh
        toBlocked.convert(dLogits, into: dh)
        var d = head.backward(dh)
        d = decoderBlocks[4].reversed().reduce(d) { $1.backward($0) }
        d = lastUpsample.backward(d)
        var dSkips = [Tensor?](repeating: nil, count: 4)
        for i in (0..<4).reversed() {
            let dCat = decoderBlocks[i].reversed().reduce(d) { $1.backward($0) }
            let (dBelow, dSkip) = junctions[i].backward(dCat)
            dSkips[3 - i] = dSkip
            d = dBelow
        }
        for (i, stage) in stages.enumerated().reversed() {
            d = stage.reversed().reduce(d) { $1.backward($0) }
            if i == 0 { d = pool.backward(d) }
            Elementwise.accumulate(dSkips[i]!, into: d)
        }
        _ = stem.backward(d)
    }
}
