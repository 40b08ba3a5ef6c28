import Core
import Engine

/// The ResNet encoders of segmentation_models_pytorch (smp 0.6, torchvision's ResNet v1.5:
/// the stride of a bottleneck sits on its 3×3 convolution).
public enum ResNetEncoder: String, Sendable, Codable, CaseIterable {
    case resnet18, resnet34, resnet50

    /// Residual blocks per stage (torchvision's `layers`).
    public var blockCounts: [Int] {
        switch self {
        case .resnet18: [2, 2, 2, 2]
        case .resnet34, .resnet50: [3, 4, 6, 3]
        }
    }

    /// Bottleneck blocks (1×1, 3×3, 1×1; expansion 4) rather than basic ones (3×3, 3×3).
    public var usesBottleneck: Bool { self == .resnet50 }
    public var expansion: Int { usesBottleneck ? 4 : 1 }

    /// Channels of the encoder's features: the stem's, then each stage's output.
    public var featureChannels: [Int] { [64] + (0..<4).map { (64 << $0) * expansion } }
}

/// smp's `Unet(encoder_name:, in_channels:, classes:, decoder_channels:, encoder_output_stride:)`
/// with a ResNet encoder, batch-norm decoder, nearest upsampling and a 3×3 segmentation head.
public struct ResNetUNetConfiguration: Sendable, Codable, Equatable {
    public var inputChannels: Int
    public var classes: Int
    public var encoder: ResNetEncoder
    /// Output channels of the five decoder blocks (smp default [256, 128, 64, 32, 16]).
    public var decoderChannels: [Int]
    /// 32 (default), 16 or 8: smp's `make_dilated` replaces the strides of the stages below
    /// this resolution with dilation (layer4 dilated 2 at 16; layer3 by 2 and layer4 by 4 at 8).
    public var outputStride: Int

    public static let defaultDecoderChannels = [256, 128, 64, 32, 16]
    public static let outputStrides = [8, 16, 32]

    public init(inputChannels: Int, classes: Int, encoder: ResNetEncoder,
                decoderChannels: [Int] = [256, 128, 64, 32, 16], outputStride: Int = 32) {
        self.inputChannels = inputChannels; self.classes = classes; self.encoder = encoder
        self.decoderChannels = decoderChannels; self.outputStride = outputStride
    }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        inputChannels = try c.decode(Int.self, forKey: .inputChannels)
        classes = try c.decode(Int.self, forKey: .classes)
        encoder = try c.decode(ResNetEncoder.self, forKey: .encoder)
        decoderChannels = try c.decodeIfPresent([Int].self, forKey: .decoderChannels) ?? Self.defaultDecoderChannels
        outputStride = try c.decodeIfPresent(Int.self, forKey: .outputStride) ?? 32
    }
}

/// One residual block as torchvision builds it and smp dilates it.
public struct ResidualBlockSpec: Sendable, Equatable {
    public var inputChannels: Int
    /// Channels inside the block (torchvision's `planes`; the output is width × expansion).
    public var width: Int
    public var outputChannels: Int
    /// 2 on the first block of stages 2–4 unless smp's output stride replaced it by dilation.
    public var stride: Int
    /// Dilation of every convolution of the stage (1, or smp's rate; padding = dilation).
    public var dilation: Int
    /// A 1×1 convolution + batch norm shortcut (`downsample.0`, `downsample.1`): torchvision
    /// adds it where the original stride is 2 or the channels change, and smp keeps it.
    public var hasProjection: Bool
}

extension ResNetUNetConfiguration {
    /// Strides of the features that the decoder reads: stem, layer1, …, layer4 (2, 4, 8, 16, 32
    /// at output stride 32; the last ones stay at the output stride when dilated).
    public var featureStrides: [Int] { [2, 4, 8, 16, 32].map { min($0, outputStride) } }

    /// Stride and dilation of stage `i` (0…3) after smp's `make_dilated`.
    private func strideAndDilation(stage i: Int) -> (stride: Int, dilation: Int) {
        let stageStride = 4 << i
        guard i >= 2, stageStride > outputStride else { return (i == 0 ? 1 : 2, 1) }
        return (1, stageStride / outputStride)
    }

    /// The encoder's four stages, block by block (torchvision's `_make_layer`).
    public var stages: [[ResidualBlockSpec]] {
        var inC = 64
        return (0..<4).map { i in
            let width = 64 << i, out = width * encoder.expansion
            let (stride, dilation) = strideAndDilation(stage: i)
            let originalStride = i == 0 ? 1 : 2
            let blocks = (0..<encoder.blockCounts[i]).map { b in
                ResidualBlockSpec(inputChannels: b == 0 ? inC : out, width: width, outputChannels: out,
                                  stride: b == 0 ? stride : 1, dilation: dilation,
                                  hasProjection: b == 0 && (originalStride != 1 || inC != out))
            }
            inC = out
            return blocks
        }
    }

    /// (input, skip, output) channels of the five decoder blocks, deepest first (the last has no skip).
    public var decoderBlocks: [(input: Int, skip: Int, output: Int)] {
        let f = encoder.featureChannels
        let inputs = [f[4]] + decoderChannels.dropLast()
        let skips = [f[3], f[2], f[1], f[0], 0]
        return (0..<5).map { (inputs[$0], skips[$0], decoderChannels[$0]) }
    }

    /// smp's trained tensors, in `state_dict` order, with PyTorch shapes: what
    /// `ResNetUNet.namedParameters` holds (batch-norm weight and bias included).
    public var parameterShapes: [(name: String, shape: [Int])] { stateShapes(buffers: false) }

    /// smp's batch-norm running statistics (`running_mean`, `running_var`), in `state_dict`
    /// order: what `ResNetUNet.namedBuffers` holds. smp's `num_batches_tracked` are not listed.
    public var bufferShapes: [(name: String, shape: [Int])] { stateShapes(buffers: true) }

    private func stateShapes(buffers: Bool) -> [(name: String, shape: [Int])] {
        var out: [(name: String, shape: [Int])] = []
        func conv(_ name: String, _ o: Int, _ i: Int, _ k: Int) { if !buffers { out.append(("\(name).weight", [o, i, k, k])) } }
        func bn(_ name: String, _ c: Int) {
            let keys = buffers ? ["running_mean", "running_var"] : ["weight", "bias"]
            for k in keys { out.append(("\(name).\(k)", [c])) }
        }
        conv("encoder.conv1", 64, inputChannels, 7)
        bn("encoder.bn1", 64)
        for (i, stage) in stages.enumerated() {
            for (b, s) in stage.enumerated() {
                let p = "encoder.layer\(i + 1).\(b)"
                if encoder.usesBottleneck {
                    conv("\(p).conv1", s.width, s.inputChannels, 1); bn("\(p).bn1", s.width)
                    conv("\(p).conv2", s.width, s.width, 3); bn("\(p).bn2", s.width)
                    conv("\(p).conv3", s.outputChannels, s.width, 1); bn("\(p).bn3", s.outputChannels)
                } else {
                    conv("\(p).conv1", s.width, s.inputChannels, 3); bn("\(p).bn1", s.width)
                    conv("\(p).conv2", s.outputChannels, s.width, 3); bn("\(p).bn2", s.outputChannels)
                }
                if s.hasProjection {
                    conv("\(p).downsample.0", s.outputChannels, s.inputChannels, 1); bn("\(p).downsample.1", s.outputChannels)
                }
            }
        }
        for (i, d) in decoderBlocks.enumerated() {
            conv("decoder.blocks.\(i).conv1.0", d.output, d.input + d.skip, 3); bn("decoder.blocks.\(i).conv1.1", d.output)
            conv("decoder.blocks.\(i).conv2.0", d.output, d.output, 3); bn("decoder.blocks.\(i).conv2.1", d.output)
        }
        conv("segmentation_head.0", classes, decoderChannels.last ?? 0, 3)
        if !buffers { out.append(("segmentation_head.0.bias", [classes])) }
        return out
    }
}

extension ResNetUNetConfiguration {
    /// How far left (up) and right (down) of an output pixel the input pixels that reach it
    /// lie, at most. Every convolution and pooling is centred (padding k/2·d), so a feature at
    /// stride s reads [s·p − l, s·p + r]; a k×k layer with dilation d adds (k−1)/2·d·s to both.
    /// Nearest ×2 upsampling gives fine pixel q the coarse pixel ⌊q/2⌋, centred at q or q − 1
    /// (in fine steps t): it adds t on the left only. A concat takes the wider of its inputs.
    public var receptiveExtent: (left: Int, right: Int) {
        var s = 1, l = 0, r = 0
        func layer(_ k: Int, stride: Int = 1, dilation: Int = 1) {
            l += (k - 1) / 2 * dilation * s; r += (k - 1) / 2 * dilation * s
            s *= stride
        }
        layer(7, stride: 2)
        var skips = [(l, r)]
        layer(3, stride: 2)  // max pooling
        for stage in stages {
            for b in stage {
                // The main branch is at least as wide as the 1×1 shortcut.
                if encoder.usesBottleneck {
                    layer(3, stride: b.stride, dilation: b.dilation)
                } else {
                    layer(3, stride: b.stride, dilation: b.dilation)
                    layer(3, dilation: b.dilation)
                }
            }
            skips.append((l, r))
        }
        skips.removeLast()
        for (i, t) in (featureStrides.dropLast().reversed() + [1]).enumerated() {
            if t < s { l += t; s = t }
            if i < 4 { l = max(l, skips[3 - i].0); r = max(r, skips[3 - i].1) }
            layer(3); layer(3)
        }
        layer(3)  // segmentation head
        return (l, r)
    }
}
