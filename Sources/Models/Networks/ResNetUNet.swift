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
/// output stride; logits (N, K, H, W) NCHW; blocked nChw16c in between.
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
        var features = [stem(input)]
        var x = prof.measure("maxpool fwd") { pool(features[0]) }
        for stage in stages {
            x = stage.reduce(x) { $1($0) }
            features.append(x)
        }
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
