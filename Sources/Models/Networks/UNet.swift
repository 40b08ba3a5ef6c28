import Core
import Engine

/// Hyper-parameters of a U-Net.
public struct UNetConfiguration: Sendable, Codable, Equatable {
    public var inputChannels: Int
    public var classes: Int
    /// Encoder widths, one per level (the decoder mirrors them).
    public var widths: [Int]
    public var bottleneckWidth: Int
    /// One 3×3 conv–BN–ReLU per entry in the bottleneck, with that dilation (padding = dilation).
    public var bottleneckDilations: [Int]
    /// How each decoder level brings the level below to its resolution; the learned modes
    /// (transposed, max-unpooling) add `dec{L}.up.weight`/`bias` per level.
    public var upsampling: UpsamplingMode

    public init(inputChannels: Int, classes: Int, widths: [Int], bottleneckWidth: Int,
                bottleneckDilations: [Int] = [1, 2, 4], upsampling: UpsamplingMode = .bilinear) {
        self.inputChannels = inputChannels; self.classes = classes; self.widths = widths
        self.bottleneckWidth = bottleneckWidth; self.bottleneckDilations = bottleneckDilations
        self.upsampling = upsampling
    }

    /// The reference network R1 (shared/R1.md): 4 bands, 6 classes, widths 32–256,
    /// bottleneck 512 with dilations 1-2-4, bilinear upsampling. 10,210,374 parameters.
    public static let r1 = UNetConfiguration(inputChannels: 4, classes: 6, widths: [32, 64, 128, 256],
                                             bottleneckWidth: 512, bottleneckDilations: [1, 2, 4], upsampling: .bilinear)
    /// R1 with bed-of-nails upsampling.
    public static let r1Nails: UNetConfiguration = {
        var c = r1
        c.upsampling = .nails
        return c
    }()

    /// A preset by its command-line name ("r1", "r1-nails").
    public static func preset(_ name: String) -> UNetConfiguration? {
        switch name {
        case "r1": return .r1
        case "r1-nails": return .r1Nails
        default: return nil
        }
    }
}

/// Conv (no bias; 3×3 by default) → BatchNorm → ReLU (fused into the batch norm). Without
/// `relu` it is a conv–BN unit (a residual branch's last, whose ReLU follows the sum).
public final class ConvBNReLU: UnaryLayer {
    public let conv: Conv2d
    public let bn: BatchNorm2d
    public let relu: Bool
    public var isTraining = true { didSet { conv.isTraining = isTraining; bn.isTraining = isTraining } }
    /// Name used in profiles ("enc1.1").
    public var label = ""

    public init(inputChannels: Int, outputChannels: Int, kernelSize: Int = 3, stride: Int = 1, dilation: Int = 1,
                relu: Bool = true, seed: UInt64) {
        conv = Conv2d(inputChannels: inputChannels, outputChannels: outputChannels, kernelSize: kernelSize,
                      stride: stride, dilation: dilation, bias: false, seed: seed)
        bn = BatchNorm2d(channels: outputChannels, fusedReLU: relu)
        self.relu = relu
    }
    /// Inference: the batch norm folded into the convolution's weights and bias, ReLU fused as
    /// a oneDNN post-op: one pass instead of two. Refolded when any source parameter changes.
    private var folded: (kernel: ConvolutionKernel, weight: Parameter, bias: Parameter, versions: [Int])?
    private var foldedOutput: Tensor?
    /// May run NHWC at Float32 inference, windows and row streams, where its geometry gains by
    /// it for the input's size (`ConvGeometry.runsChannelsLast(pixels:)`; set by `UNet`, cleared
    /// while an `Int8Calibrator` watches); int8 and bf16 units stay blocked.
    public var channelsLast = false
    /// Whether an inference input of `shape` runs NHWC.
    public func runsChannelsLast(_ shape: Shape) -> Bool {
        channelsLast && int8 == nil && bf16 == nil && conv.geometry.runsChannelsLast(pixels: shape.h * shape.w)
    }
    private let toReadable = LayoutConverter()
    private var readableInput: Tensor?

    private func foldedForward(_ x: Tensor) -> Tensor {
        let (weight, bias) = inferenceWeights()
        let out = reuse(foldedOutput, conv.geometry.outputShape(x.shape), runsChannelsLast(x.shape) ? .nhwc : conv.outputLayout)
        foldedOutput = out
        folded!.kernel.forward(input: x, weight: weight, bias: bias, output: out, training: false)
        return out
    }

    /// `x` in a layout this unit's inference kernels read alongside their output's: NHWC for a
    /// channels-last unit, blocked for the others when `x` is NHWC (a narrow unit's output).
    private func readable(_ x: Tensor) -> Tensor {
        let wanted: Layout = runsChannelsLast(x.shape) ? .nhwc : (x.layout == .nhwc ? .blocked : x.layout)
        guard wanted != x.layout else { return x }
        let t = reuse(readableInput, x.shape, wanted)
        readableInput = t
        toReadable.convert(x, into: t)
        return t
    }

    /// The convolution's weights and bias with the batch norm folded in (refolded when a source
    /// parameter changed): what inference convolves with, here and in `RowStream`.
    func inferenceWeights() -> (weight: Parameter, bias: Parameter) {
        let versions = [conv.weight.version, bn.weight.version, bn.bias.version,
                        bn.runningMean.version, bn.runningVariance.version]
        if folded == nil {
            var g = conv.geometry
            g.bias = true
            let k = ConvolutionKernel(g)
            k.fusedReLU = relu
            folded = (k, Parameter(shape: g.weightShape), Parameter(shape: Shape(g.outputChannels, 1, 1, 1)), [])
        }
        if folded!.versions != versions {
            let f = folded!
            let O = conv.geometry.outputChannels, per = conv.weight.count / O
            let w = conv.weight.value.data, fw = f.weight.value.data, fb = f.bias.value.data
            for o in 0..<O {
                let scale = bn.weight.value.data[o] / (bn.runningVariance.value.data[o] + bn.kernel.epsilon).squareRoot()
                for i in 0..<per { fw[o * per + i] = w[o * per + i] * scale }
                fb[o] = bn.bias.value.data[o] - bn.runningMean.value.data[o] * scale
            }
            f.weight.markChanged(); f.bias.markChanged()
            folded!.versions = versions
        }
        return (folded!.weight, folded!.bias)
    }

    /// Inference in int8 when set (a quantized bundle at `--precision int8`; see `Int8ConvUnit`).
    public var int8: Int8ConvUnit?
    /// Sees each inference input (calibration of activation steps, `Int8Calibration`).
    public var inputObserver: ((Tensor) -> Void)?
    /// Inference in bf16 when set (`--precision bf16`; see `Bf16Inference`).
    public var bf16: Bf16ConvolutionKernel?
    /// With `bf16`: bf16 only where it measured faster than fp32 for the input's shape (`Bf16Choice`).
    public var bf16Choice: Bf16Choice?

    private func bf16Forward(_ x: Tensor, _ kernel: Bf16ConvolutionKernel) -> Tensor {
        let out = reuse(foldedOutput, conv.geometry.outputShape(x.shape), conv.outputLayout)
        foldedOutput = out
        kernel.forward(input: x, output: out)
        return out
    }

    /// After the per-layer choice for `x`'s shape: the losing precision's plans go.
    private func dropPlans(_ x: Tensor, bf16Lost: Bool) {
        if bf16Lost { bf16?.releasePlan() } else { folded?.kernel.releasePlans(inputShape: x.shape, layout: x.layout, bf16: nil) }
    }
    /// The folded inference convolution (for tests).
    var foldedKernel: ConvolutionKernel? { folded?.kernel }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let p = Profiler.shared
        if !isTraining {
            inputObserver?(x)
            let x = readable(x)
            if let int8 { return p.measure("\(label) int8 conv+bn+relu fwd") { int8(x, layout: conv.outputLayout) } }
            if let bf16, bf16Choice?.usesBF16(x.shape, x.layout, fp32: { _ = foldedForward(x) }, bf16: { _ = bf16Forward(x, bf16) },
                                              dropLoser: { dropPlans(x, bf16Lost: $0) }) ?? true {
                return p.measure("\(label) bf16 conv+bn+relu fwd") { bf16Forward(x, bf16) }
            }
            return p.measure("\(label) conv+bn+relu fwd") { foldedForward(x) }
        }
        let y = p.measure("\(label) conv fwd") { conv(x) }
        return p.measure("\(label) bn+relu fwd") { bn(y) }
    }
    public func backward(_ dOutput: Tensor) -> Tensor {
        let p = Profiler.shared
        let d = p.measure("\(label) bn+relu bwd") { bn.backward(dOutput) }
        return conv.backward(d)
    }
}

/// A sequence of conv–BN–ReLU units named conv1/bn1, conv2/bn2, ...
public final class ConvBlock: UnaryLayer {
    public let units: [ConvBNReLU]
    public var isTraining = true { didSet { for u in units { u.isTraining = isTraining } } }

    public init(_ channels: [Int], dilations: [Int]? = nil, seed: UInt64) {
        units = (0..<channels.count - 1).map { i in
            ConvBNReLU(inputChannels: channels[i], outputChannels: channels[i + 1],
                       dilation: dilations?[i] ?? 1, seed: seed &+ UInt64(i) &* 7919)
        }
    }
    public var namedParameters: [(String, Parameter)] {
        units.enumerated().flatMap { i, u in
            scoped("conv\(i + 1)", u.conv.namedParameters) + scoped("bn\(i + 1)", u.bn.namedParameters)
        }
    }
    public var namedBuffers: [(String, Parameter)] {
        units.enumerated().flatMap { i, u in scoped("bn\(i + 1)", u.bn.namedBuffers) }
    }
    public func callAsFunction(_ x: Tensor) -> Tensor { units.reduce(x) { $1($0) } }
    public func backward(_ dOutput: Tensor) -> Tensor { units.reversed().reduce(dOutput) { $1.backward($0) } }
}

/// A U-Net with a dilated bottleneck.
///
/// Input (N, inputChannels, H, W) in plain NCHW (H, W divisible by 2^levels); logits
/// (N, classes, H, W) in plain NCHW. Everything in between stays in oneDNN's blocked
/// layout (`Layout.blocked`): the first convolution reads NCHW directly and the head's output is
/// reordered once at the end (and its gradient once at the start of backward) — except a
/// learned-upsampling level whose width is not a whole number of channel blocks, which
/// concatenates in NCHW.
public final class UNet: Layer {
    public let configuration: UNetConfiguration
    public let encoders: [ConvBlock]
    public let pools: [MaxPool2d]
    public let bottleneck: ConvBlock
    /// Per level (shallowest first): bring the level below to the skip's resolution and
    /// concatenate [up, skip]. Fixed modes upsample straight into the concat buffer
    /// (`UpsampleConcat`); learned modes map to the skip's width first (`LearnedUpsampleConcat`).
    public let junctions: [any DecoderJunction]
    public let decoders: [ConvBlock]
    public let head: Conv2d
    public var isTraining = true {
        didSet {
            for b in encoders + [bottleneck] + decoders { b.isTraining = isTraining }
            for j in junctions { j.isTraining = isTraining }
            head.isTraining = isTraining
        }
    }

    private let toPlain = LayoutConverter(), toBlocked = LayoutConverter()
    /// Backward's transient gradients, two per (shape, layout).
    public let gradientPool = BufferPool(depth: 2)
    private var logits: Tensor?, dHeadOutput: Tensor?
    /// Region inference: its logits and cropped inputs of the decoder levels.
    private var regionLogits: Tensor?
    private var cropBuffers: [[Tensor?]] = []
    private var skips: [Tensor] = []
    /// Inference with u8 chained between int8 layers, when installed (`Int8Calibration.install`).
    public var int8Chain: Int8UNetChain?

    public init(_ c: UNetConfiguration, seed: UInt64 = 1) {
        configuration = c
        var enc: [ConvBlock] = []
        var inC = c.inputChannels
        for (i, w) in c.widths.enumerated() {
            enc.append(ConvBlock([inC, w, w], seed: seed &+ UInt64(100 * (i + 1))))
            inC = w
        }
        encoders = enc
        encoders[0].units[0].conv.computesInputGradient = false
        pools = c.widths.map { _ in MaxPool2d() }
        bottleneck = ConvBlock([inC] + c.bottleneckDilations.map { _ in c.bottleneckWidth },
                               dilations: c.bottleneckDilations, seed: seed &+ 1000)
        var dec: [ConvBlock] = []
        var below = c.bottleneckWidth
        var junctions: [any DecoderJunction] = []
        for (i, w) in c.widths.enumerated().reversed() {
            let junctionSeed = seed &+ UInt64(4000 + 100 * i)
            switch c.upsampling {
            case .transposed, .maxUnpooling:
                let j = c.upsampling == .transposed
                    ? LearnedUpsampleConcat.transposed(inputChannels: below, outputChannels: w, seed: junctionSeed)
                    : LearnedUpsampleConcat.maxUnpooling(inputChannels: below, outputChannels: w,
                                                         indicesFrom: pools[i], seed: junctionSeed)
                j.label = "dec\(i + 1).up"
                junctions.append(j)
            case .bilinear, .nearest, .nails:
                junctions.append(UpsampleConcat(mode: c.upsampling))
            }
            let upChannels = c.upsampling.isLearned ? w : below
            dec.append(ConvBlock([upChannels + w, w, w], seed: seed &+ UInt64(2000 + 100 * i)))
            below = w
        }
        decoders = dec  // deepest first
        self.junctions = junctions.reversed()
        head = Conv2d(inputChannels: c.widths[0], outputChannels: c.classes, kernelSize: 1, bias: true, seed: seed &+ 3000)
        for (name, block) in zip(blockNames, encoders + [bottleneck] + decoders) {
            for (i, u) in block.units.enumerated() {
                u.label = "\(name).\(i + 1)"; u.conv.label = u.label
                u.conv.gradientPool = gradientPool; u.bn.gradientPool = gradientPool
            }
        }
        head.gradientPool = gradientPool; head.label = "head"
        for u in junctions { u.gradientPool = gradientPool }
        markChannelsLastUnits()
    }

    /// Narrow units (`ConvGeometry.mayRunChannelsLast`) run NHWC at inference, except where a
    /// junction needs blocked rows: a decoder level's first unit reads the blocked concat (in a
    /// row stream the junction writes its line buffer) and a deeper level's last unit is the
    /// one upsampled. Fixed upsampling only (learned junctions concatenate in their own way).
    private func markChannelsLastUnits() {
        guard !configuration.upsampling.isLearned else { return }
        for u in (encoders + [bottleneck]).flatMap(\.units) { u.channelsLast = u.conv.geometry.mayRunChannelsLast }
        for (j, block) in decoders.enumerated() {  // deepest first
            let shallowest = j == decoders.count - 1
            for (i, u) in block.units.enumerated() where i > 0 && (shallowest || i < block.units.count - 1) {
                u.channelsLast = u.conv.geometry.mayRunChannelsLast
            }
        }
    }

    /// oneDNN implementation chosen for each convolution (forward, backward-data,
    /// backward-weights), for profiles.
    public var convolutionImplementations: [(String, [String])] {
        var out: [(String, [String])] = []
        for (name, block) in zip(blockNames, encoders + [bottleneck] + decoders) {
            for (i, u) in block.units.enumerated() {
                let mb = u.conv.kernel.scratchpadBytes.map { String($0 / 1_000_000) }.joined(separator: "/")
                out.append(("\(name).conv\(i + 1)", u.conv.kernel.implementations + ["scratch MB \(mb)"]))
            }
        }
        out.append(("head", head.kernel.implementations))
        return out
    }

    private var blockNames: [String] {
        let levels = encoders.count
        return (1...levels).map { "enc\($0)" } + ["bottleneck"] + (1...levels).reversed().map { "dec\($0)" }
    }

    /// Stable parameter names: enc1.conv1.weight, enc1.bn1.weight, ..., bottleneck.conv3.weight,
    /// dec4.up.weight and dec4.up.bias (learned upsampling only), dec4.conv1.weight (deepest
    /// decoder level is 4), ..., head.weight, head.bias.
    public var namedParameters: [(String, Parameter)] {
        let levels = encoders.count
        var out: [(String, Parameter)] = []
        for (i, e) in encoders.enumerated() { out += scoped("enc\(i + 1)", e.namedParameters) }
        out += scoped("bottleneck", bottleneck.namedParameters)
        for (j, d) in decoders.enumerated() {
            let level = levels - j
            out += scoped("dec\(level)", scoped("up", junctions[level - 1].namedParameters) + d.namedParameters)
        }
        out += scoped("head", head.namedParameters)
        return out
    }
    /// Batch-norm running statistics, named like the parameters (….running_mean, ….running_var).
    public var namedBuffers: [(String, Parameter)] {
        let levels = encoders.count
        var out: [(String, Parameter)] = []
        for (i, e) in encoders.enumerated() { out += scoped("enc\(i + 1)", e.namedBuffers) }
        out += scoped("bottleneck", bottleneck.namedBuffers)
        for (j, d) in decoders.enumerated() { out += scoped("dec\(levels - j)", d.namedBuffers) }
        return out
    }

    /// input (N, C_in, H, W) NCHW → logits (N, K, H, W) NCHW (owned by the network).
    public func callAsFunction(_ input: Tensor) -> Tensor {
        if !isTraining, let int8Chain { return int8Chain(input) }
        let levels = encoders.count
        let prof = Profiler.shared
        var x = encode(input)
        for j in 0..<levels {
            let level = levels - 1 - j
            let below = x
            let cat = prof.measure("up+concat\(level + 1) fwd") { junctions[level](below, skip: skips[level]) }
            x = decoders[j](cat)
        }
        return headLogits(x, into: &logits)
    }

    /// Encoder and bottleneck over the whole input: fills `skips`, returns the bottleneck's output.
    private func encode(_ input: Tensor) -> Tensor {
        precondition(input.layout == .nchw && input.shape.c == configuration.inputChannels, "UNet input \(input.shape)")
        let levels = encoders.count
        precondition(input.shape.h % (1 << levels) == 0 && input.shape.w % (1 << levels) == 0,
                     "UNet input H and W must be divisible by \(1 << levels)")
        var x = input
        skips = []
        for i in 0..<levels {
            let s = encoders[i](x)
            skips.append(s)
            x = Profiler.shared.measure("pool\(i + 1) fwd") { pools[i](s) }
        }
        return bottleneck(x)
    }

    /// The 1×1 head, then the logits reordered to NCHW into `buffer` (reused).
    func headLogits(_ x: Tensor, into buffer: inout Tensor?) -> Tensor {
        let prof = Profiler.shared
        let out = prof.measure("head fwd") { head(x) }
        let l = reuse(buffer, out.shape, .nchw)
        buffer = l
        prof.measure("logits reorder") { toPlain.convert(out, into: l) }
        return l
    }

    /// Inference logits of `region` only. The encoder and the bottleneck see the whole input
    /// (that is what the region's context needs), but each decoder level runs only over the
    /// part the levels above it read: the region plus 2 pixels for its two 3×3 convolutions,
    /// then at the coarser level half of that plus 1 pixel for the bilinear ×2 (whose outermost
    /// output pixel is wrong at a cut and falls inside that margin). At a prediction window's
    /// margin this skips most of the decoder's full-resolution work; the region's logits equal
    /// the whole input's (bit for bit up to convolution rounding). Fixed upsampling modes only;
    /// learned ones (and training) compute everything and crop.
    public func logits(_ input: Tensor, region: Window) -> Tensor {
        let levels = encoders.count
        let whole = Window(column: 0, row: 0, width: input.shape.w, height: input.shape.h)
        guard !isTraining, !configuration.upsampling.isLearned, region != whole else {
            let full = self(input)
            if region == whole { return full }
            let out = reuse(regionLogits, Shape(full.shape.n, full.shape.c, region.height, region.width), .nchw)
            regionLogits = out
            SpatialCrop.copy(full, row: region.row, column: region.column, into: out)
            return out
        }
        precondition(region.row >= 0 && region.column >= 0 && region.row + region.height <= input.shape.h
                     && region.column + region.width <= input.shape.w && region.height > 0 && region.width > 0, "region outside the input")
        if let int8Chain { return int8Chain.logits(input, region: region) }
        let prof = Profiler.shared
        var x = encode(input)
        let rows = UNet.decoderPlan(region.row..<(region.row + region.height), size: input.shape.h, levels: levels)
        let cols = UNet.decoderPlan(region.column..<(region.column + region.width), size: input.shape.w, levels: levels)
        if cropBuffers.count != levels + 1 { cropBuffers = [[Tensor?]](repeating: [nil, nil], count: levels + 1) }
        func crop(_ t: Tensor, _ r: Range<Int>, _ c: Range<Int>, origin: (Int, Int), slot: (Int, Int)) -> Tensor {
            if r.lowerBound == origin.0 && c.lowerBound == origin.1 && r.count == t.shape.h && c.count == t.shape.w { return t }
            let out = reuse(cropBuffers[slot.0][slot.1], Shape(t.shape.n, t.shape.c, r.count, c.count), t.layout)
            cropBuffers[slot.0][slot.1] = out
            SpatialCrop.copy(t, row: r.lowerBound - origin.0, column: c.lowerBound - origin.1, into: out)
            return out
        }
        var origin = (0, 0)  // where x starts, in its level's pixels
        for j in (0..<levels).reversed() {
            let below = crop(x, rows.need[j + 1], cols.need[j + 1], origin: origin, slot: (j + 1, 0))
            let skip = crop(skips[j], rows.cat[j], cols.cat[j], origin: (0, 0), slot: (j, 1))
            let cat = prof.measure("up+concat\(j + 1) fwd") { junctions[j](below, skip: skip) }
            x = decoders[levels - 1 - j](cat)
            origin = (rows.cat[j].lowerBound, cols.cat[j].lowerBound)
        }
        x = crop(x, rows.need[0], cols.need[0], origin: origin, slot: (0, 0))
        return headLogits(x, into: &regionLogits)
    }

    /// Per level j: `need[j]` = rows (or columns) of decoder j's output that are read, `cat[j]` =
    /// where decoder j runs (twice the coarser level's `need`, so its concat is [up(x), skip] exactly).
    static func decoderPlan(_ r: Range<Int>, size: Int, levels: Int) -> (need: [Range<Int>], cat: [Range<Int>]) {
        var need = [r], cat: [Range<Int>] = []
        for j in 0..<levels {
            let coarse = size >> (j + 1)
            let lo = need[j].lowerBound - 2, hi = need[j].upperBound + 2
            let next = max(0, Int((Double(lo) / 2).rounded(.down)) - 1)..<min(coarse, (hi + 1) / 2 + 1)
            need.append(next)
            cat.append((2 * next.lowerBound)..<(2 * next.upperBound))
        }
        return (need, cat)
    }

    /// Called during `backward` with each block whose parameters' gradients are final (head,
    /// each decoder and junction, bottleneck, each encoder, in that order), so data-parallel
    /// training can all-reduce them while the rest of the backward pass runs.
    public var gradientsReady: ((any Layer) -> Void)?

    /// Backward from dL/dlogits (N, K, H, W) NCHW: writes every parameter's gradient.
    public func backward(_ dLogits: Tensor) {
        let levels = encoders.count
        let dh = reuse(dHeadOutput, dLogits.shape, head.outputLayout)
        dHeadOutput = dh
        let prof = Profiler.shared
        gradientPool.rewind()
        prof.measure("dlogits reorder") { toBlocked.convert(dLogits, into: dh) }
        var d = prof.measure("head bwd") { head.backward(dh) }
        gradientsReady?(head)
        var dSkips = [Tensor?](repeating: nil, count: levels)
        for level in 0..<levels {  // shallowest decoder first: reverse of the forward
            let j = levels - 1 - level
            let dCat = decoders[j].backward(d)
            gradientsReady?(decoders[j])
            let (dBelow, dSkip) = prof.measure("up+concat\(level + 1) bwd") { junctions[level].backward(dCat) }
            gradientsReady?(junctions[level])
            dSkips[level] = dSkip
            d = dBelow
        }
        d = bottleneck.backward(d)
        gradientsReady?(bottleneck)
        for level in (0..<levels).reversed() {
            // The skip tensor feeds both the pooling and the decoder's concat: sum both gradients.
            let dSkip = dSkips[level]!
            prof.measure("pool\(level + 1) bwd") { pools[level].backward(d, accumulatingInto: dSkip) }
            d = encoders[level].backward(dSkip)
            gradientsReady?(encoders[level])
        }
    }
}
