import Core
import Foundation
import Models

/// The network of a state dict saved from segmentation_models_pytorch's `Unet` with a ResNet
/// encoder (`terraseg import smp`): input bands from `encoder.conv1.weight` (O, N, 7, 7),
/// classes from `segmentation_head.0.weight` (K, C, 3, 3), decoder channels from each
/// `decoder.blocks.i.conv1.0.weight`; then every name, shape and value checked against the
/// network those describe (`ModelBundle.load`). `num_batches_tracked` scalars are not used.
/// The output stride cannot be read from weights (dilation changes no shape): it is given.
public struct SMPImport {
    public let path: String
    public let configuration: ResNetUNetConfiguration
    let contents: SafeTensors.Contents

    static let firstConv = "encoder.conv1.weight", head = "segmentation_head.0.weight"
    static func decoderConv(_ i: Int) -> String { "decoder.blocks.\(i).conv1.0.weight" }
    /// Channel counts outside this range are refused (the pipeline's widest layer).
    static let channelRange = 1...4096

    /// Reads `path` and works out the configuration; missing key tensors are listed.
    public init(path: String, encoder: ResNetEncoder, outputStride: Int = 32) throws {
        let contents = try SafeTensors.contents(path)
        let hint = Self.hint(encoder)
        let keys = [Self.firstConv, Self.head] + (0..<5).map(Self.decoderConv)
        if let problem = ModelBundle.namesProblem(missing: keys.filter { contents.tensors[$0] == nil }, unexpected: []) {
            throw TerraSegError(.invalidArgument, path: path, problem: problem, hint: hint)
        }
        func channels(_ name: String, dimension: Int) throws -> Int {
            let shape = contents.tensors[name]!.shape
            guard shape.count == 4, Self.channelRange.contains(shape[dimension]) else {
                throw TerraSegError(.invalidArgument, path: path,
                                    problem: "tensor '\(name)' has shape \(shape); a convolution weight (out, in, kh, kw) of 1 to 4096 channels is expected",
                                    hint: hint)
            }
            return shape[dimension]
        }
        let configuration = ResNetUNetConfiguration(
            inputChannels: try channels(Self.firstConv, dimension: 1), classes: try channels(Self.head, dimension: 0), encoder: encoder,
            decoderChannels: try (0..<5).map { try channels(Self.decoderConv($0), dimension: 0) }, outputStride: outputStride)
        self.path = path
        self.contents = contents
        self.configuration = configuration
    }

    /// The network with the file's weights; unknown and missing names are listed, a wrong
    /// shape named (e.g. weights of another encoder than `--encoder`).
    public func network() throws -> any SegmentationNetwork {
        let net = ModelArchitecture.resnetUNet(configuration).build(seed: 0)
        try ModelBundle.load(contents.tensors, integers: contents.integers, into: net, path: path, hint: Self.hint(configuration.encoder))
        net.isTraining = false
        return net
    }

    static func hint(_ encoder: ResNetEncoder) -> String {
        "Give the state dict of smp.Unet(encoder_name=\"\(encoder.rawValue)\", …) with its default decoder (5 blocks, batch norm, no attention), "
            + "saved by save_file(model.state_dict(), …); check --encoder"
    }
}
