import Core
import Engine

/// What training and prediction need from a segmentation network, whatever its shape.
public protocol SegmentationNetwork: Layer {
    /// Batch-norm running statistics and other non-trained state, named like parameters.
    var namedBuffers: [(String, Parameter)] { get }
    /// input (N, C, H, W) NCHW → logits (N, K, H, W) NCHW, owned by the network.
    func callAsFunction(_ input: Tensor) -> Tensor
    /// Backward from dL/dlogits: writes every parameter's gradient.
    func backward(_ dLogits: Tensor)
    /// Inference logits of `region` only (N, K, region.height, region.width) NCHW, equal to
    /// that part of the whole input's logits. A network may skip work outside the region.
    func logits(_ input: Tensor, region: Window) -> Tensor
    /// Inference over a scene in strips of rows, each feature computed once, `rows` at a time
    /// (see `RowStream`); nil when the network cannot stream (learned upsampling), by default.
    func rowStream(rows: Int) -> RowStream?
}

extension SegmentationNetwork {
    /// The whole input's logits, cropped.
    public func logits(_ input: Tensor, region: Window) -> Tensor {
        let full = self(input)
        if region == Window(column: 0, row: 0, width: input.shape.w, height: input.shape.h) { return full }
        let out = Tensor(shape: Shape(full.shape.n, full.shape.c, region.height, region.width))
        SpatialCrop.copy(full, row: region.row, column: region.column, into: out)
        return out
    }
}

extension SegmentationNetwork {
    public func rowStream(rows: Int) -> RowStream? { nil }

    /// Every batch norm of the network (synchronised batch norm sets them all).
    public var batchNorms: [BatchNorm2d] {
        switch self {
        case let u as UNet: (u.encoders + [u.bottleneck] + u.decoders).flatMap { $0.units.map(\.bn) }
        case let d as DilatedNet: d.body.units.map(\.bn)
        case let r as ResNetUNet: r.batchNormLayers
        default: []
        }
    }
}

extension UNet: SegmentationNetwork {}

/// A network's description, stored in model bundles and rebuilt from them.
public enum ModelArchitecture: Sendable, Codable, Equatable {
    case unet(UNetConfiguration)
    case dilated(DilatedNetConfiguration)
    /// segmentation_models_pytorch's `Unet` with a ResNet encoder (model.json kind "resnet-unet").
    case resnetUNet(ResNetUNetConfiguration)

    public var inputChannels: Int {
        switch self {
        case .unet(let c): c.inputChannels
        case .dilated(let c): c.inputChannels
        case .resnetUNet(let c): c.inputChannels
        }
    }

    public var classes: Int {
        switch self {
        case .unet(let c): c.classes
        case .dilated(let c): c.classes
        case .resnetUNet(let c): c.classes
        }
    }

    public var name: String {
        switch self {
        case .unet(let c): "U-Net \(c.widths.map(String.init).joined(separator: "-"))/\(c.bottleneckWidth) (\(c.upsampling.rawValue))"
        case .dilated(let c): "dilated CNN, width \(c.width), dilations \(c.dilations.map(String.init).joined(separator: "-"))"
        case .resnetUNet(let c):
            "U-Net \(c.encoder.rawValue) (smp), decoder \(c.decoderChannels.map(String.init).joined(separator: "-"))"
                + (c.outputStride == 32 ? "" : ", output stride \(c.outputStride)")
        }
    }

    /// Input sizes and window offsets must be multiples of this (2^levels for a U-Net).
    public var alignment: Int {
        switch self {
        case .unet(let c): 1 << c.widths.count
        case .dilated: 1
        case .resnetUNet(let c): c.outputStride
        }
    }

    /// Receptive-field size in pixels (odd), from the layer geometry: each k×k convolution
    /// with dilation d at sampling step j widens it by (k−1)·d·j, each 2×2 pooling by j, each
    /// bilinear ×2 upsampling by one coarse step. The other modes read one coarse pixel per
    /// output pixel (nearest, bed-of-nails, 2×2 stride-2 transposed convolution, and
    /// max-unpooling, whose argmax lies in the pooling window already counted) and add nothing.
    public var receptiveField: Int {
        switch self {
        case .unet(let c):
            var rf = 1, jump = 1
            for _ in c.widths {
                rf += 2 * 2 * jump  // two 3×3 convolutions
                rf += jump          // 2×2 max pooling
                jump *= 2
            }
            for d in c.bottleneckDilations { rf += 2 * d * jump }
            for _ in c.widths {
                if c.upsampling == .bilinear { rf += jump }
                jump /= 2
                rf += 2 * 2 * jump
            }
            return rf
        case .dilated(let c):
            return 1 + c.dilations.reduce(0) { $0 + 2 * $1 }
        case .resnetUNet(let c):
            let e = c.receptiveExtent
            return 1 + 2 * max(e.left, e.right)
        }
    }

    /// Why the network predicts in windows, not in streamed rows (`RowStream`); nil when it streams.
    public var windowsOnly: String? {
        switch self {
        case .unet(let c): c.upsampling.isLearned ? "learned upsampling" : nil
        case .dilated: nil
        case .resnetUNet: nil
        }
    }

    /// Half-width of the receptive field: the margin that makes tiled prediction exact.
    public var receptiveRadius: Int { receptiveField / 2 }

    /// Bytes a `RowStream` of this network holds per pixel of strip, roughly (the feature rows
    /// of every layer at its resolution, with their line buffers, channels padded to oneDNN's
    /// blocks of 16: AVX-512's, an upper bound for AVX2's 8), for sizing strips. Measured on a
    /// 2048-wide scene: U-Net 8-16-32-64 about 2.5 kB (this gives 1.9), R1 3.9 kB (this gives 4.9).
    public var streamBytesPerPixel: Int {
        func padded(_ c: Int) -> Int { (c + 15) / 16 * 16 }
        switch self {
        case .unet(let c):
            var floats = 2 * c.inputChannels, scale = 1
            for w in c.widths {
                floats += 20 * padded(w) / scale
                scale *= 4
            }
            floats += 7 * padded(c.bottleneckWidth) / scale
            return 4 * floats
        case .dilated(let c):
            return 4 * (2 * c.inputChannels + 3 * c.width * c.dilations.count + 2 * c.classes)
        case .resnetUNet(let c):
            // Each layer holds about a strip of its input and output rows at its stride (a window's activations, twice).
            return 4 * Int((c.activationValuesPerPixel(perConvolution: 2, training: false) + Double(2 * (c.inputChannels + c.classes))).rounded(.up))
        }
    }

    public func build(seed: UInt64) -> any SegmentationNetwork {
        switch self {
        case .unet(let c): UNet(c, seed: seed)
        case .dilated(let c): DilatedNet(c, seed: seed)
        case .resnetUNet(let c): ResNetUNet(c, seed: seed)
        }
    }

    /// The configuration's key is "resnet_unet" in model.json (keys are snake case there).
    enum CodingKeys: String, CodingKey { case kind, unet, dilated, resnetUNet = "resnetUnet" }

    public init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        switch try c.decode(String.self, forKey: .kind) {
        case "unet": self = .unet(try c.decode(UNetConfiguration.self, forKey: .unet))
        case "dilated": self = .dilated(try c.decode(DilatedNetConfiguration.self, forKey: .dilated))
        case "resnet-unet": self = .resnetUNet(try c.decode(ResNetUNetConfiguration.self, forKey: .resnetUNet))
        case let other:
            throw DecodingError.dataCorruptedError(forKey: .kind, in: c, debugDescription: "unknown architecture '\(other)' (unet, dilated, resnet-unet)")
        }
    }

    public func encode(to encoder: Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        switch self {
        case .unet(let u):
            try c.encode("unet", forKey: .kind)
            try c.encode(u, forKey: .unet)
        case .dilated(let d):
            try c.encode("dilated", forKey: .kind)
            try c.encode(d, forKey: .dilated)
        case .resnetUNet(let r):
            try c.encode("resnet-unet", forKey: .kind)
            try c.encode(r, forKey: .resnetUNet)
        }
    }
}

/// A dilated CNN without down-sampling (Hamaguchi et al. 2018): 3×3 conv–BN–ReLU units with
/// dilations rising (1-2-4) to widen the context, then falling (4-2-1) to remove the
/// gridding artefacts of dilation, then a 1×1 head. Full resolution throughout.
public struct DilatedNetConfiguration: Sendable, Codable, Equatable {
    public var inputChannels: Int
    public var classes: Int
    public var width: Int
    public var dilations: [Int]

    public init(inputChannels: Int, classes: Int, width: Int = 32, dilations: [Int] = [1, 2, 4, 8, 4, 2, 1]) {
        self.inputChannels = inputChannels
        self.classes = classes
        self.width = width
        self.dilations = dilations
    }
}

public final class DilatedNet: SegmentationNetwork {
    public let configuration: DilatedNetConfiguration
    public let body: ConvBlock
    public let head: Conv2d
    private let toPlain = LayoutConverter(), toBlocked = LayoutConverter()
    private var logits: Tensor?, dHeadOutput: Tensor?
    public var isTraining = true {
        didSet { body.isTraining = isTraining; head.isTraining = isTraining }
    }

    public init(_ c: DilatedNetConfiguration, seed: UInt64 = 1) {
        configuration = c
        body = ConvBlock([c.inputChannels] + c.dilations.map { _ in c.width }, dilations: c.dilations, seed: seed &+ 100)
        body.units[0].conv.computesInputGradient = false
        head = Conv2d(inputChannels: c.width, outputChannels: c.classes, kernelSize: 1, bias: true, seed: seed &+ 3000)
        // Narrow units run NHWC at inference: blocked, a dilated convolution under 16 channels
        // has only oneDNN's reference kernel (8→8 at 362², dilation 2: 1.1 s against 1.5 ms).
        for u in body.units { u.channelsLast = u.conv.geometry.mayRunChannelsLast }
    }

    /// body.conv1.weight, body.bn1.weight, …, head.weight, head.bias.
    public var namedParameters: [(String, Parameter)] {
        scoped("body", body.namedParameters) + scoped("head", head.namedParameters)
    }

    public var namedBuffers: [(String, Parameter)] { scoped("body", body.namedBuffers) }

    public func callAsFunction(_ input: Tensor) -> Tensor {
        precondition(input.layout == .nchw && input.shape.c == configuration.inputChannels, "DilatedNet input \(input.shape)")
        let out = head(body(input))
        let l = reuse(logits, out.shape, .nchw)
        logits = l
        toPlain.convert(out, into: l)
        return l
    }

    public func backward(_ dLogits: Tensor) {
        let dh = reuse(dHeadOutput, dLogits.shape, head.outputLayout)
        dHeadOutput = dh
        toBlocked.convert(dLogits, into: dh)
        _ = body.backward(head.backward(dh))
    }
}
