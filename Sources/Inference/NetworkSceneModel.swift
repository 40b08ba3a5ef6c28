import Core
import Engine
import Foundation
import ModelIO
import Models
import Tiling

/// A trained network from a model bundle, as the stitcher's `SceneModel`: NCHW input
/// batches in, softmax probabilities out. Input and output buffers are reused per shape.
public final class NetworkSceneModel: SceneModel {
    public let bundle: ModelBundle
    let network: any SegmentationNetwork
    private var input: Tensor?, regionProbabilities: Tensor?

    public init(bundleDirectory: String) throws {
        bundle = try ModelBundle.read(bundleDirectory)
        network = try bundle.network(directory: bundleDirectory)
    }

    public init(bundle: ModelBundle, network: any SegmentationNetwork) {
        self.bundle = bundle
        self.network = network
        network.isTraining = false
    }

    public var inputChannels: Int { bundle.architecture.inputChannels }
    public var classCount: Int { bundle.architecture.classes }
    public var alignment: Int { bundle.architecture.alignment }
    public var receptiveRadius: Int { bundle.architecture.receptiveRadius }

    /// The network's row stream for strips of `rows` rows, kept for the next scene: a batch of
    /// scenes creates its primitives, transforms its weights (R1's Winograd weights: 0.15 s)
    /// and touches its buffers once, not per scene. A stream is ready for a new scene after its
    /// last strip (or `reset()`); another width brings its own buffers and plans; weights that
    /// change are refolded and reordered (parameter versions).
    public func rowStream(rows: Int) -> RowStream? {
        if let kept, kept.rows == rows { return kept.stream }
        let stream = network.rowStream(rows: rows)
        kept = stream.map { (rows, $0) }
        return stream
    }
    private var kept: (rows: Int, stream: RowStream)?
    public var windowsOnly: String { bundle.architecture.windowsOnly ?? "it has no row kernels" }
    public var streamBytesPerPixel: Int { bundle.architecture.streamBytesPerPixel }

    /// What the stitcher needs besides the network, from the bundle.
    public var inputs: ModelInputs {
        ModelInputs(bands: bundle.bands, normalizer: bundle.normalization, classMap: bundle.classes,
                    profile: bundle.sceneProfile, statistics: bundle.statistics, recipe: bundle.recipe)
    }

    public func predict(_ values: UnsafeBufferPointer<Float>, batch: Int, size: Int,
                        into output: UnsafeMutableBufferPointer<Float>) throws {
        try predictScores(values, batch: batch, size: size, region: Window(column: 0, row: 0, width: size, height: size),
                          probabilities: true, into: output)
    }

    /// The network runs only as far as `region` needs (a U-Net skips its decoder's work in the
    /// windows' margins); without `probabilities` the logits are returned and the softmax skipped.
    public func predictScores(_ values: UnsafeBufferPointer<Float>, batch: Int, size: Int, region: Window,
                              probabilities: Bool, into output: UnsafeMutableBufferPointer<Float>) throws {
        let shape = Shape(batch, inputChannels, size, size)
        let x = (input?.shape == shape) ? input! : Tensor(shape: shape)
        input = x
        x.data.update(from: values.baseAddress!, count: shape.count)
        var scores = network.logits(x, region: region)
        if probabilities {
            let p = reuse(regionProbabilities, scores.shape, .nchw)
            regionProbabilities = p
            ChannelSoftmax.forward(input: scores, output: p)
            scores = p
        }
        // Into each window's scores at the region's place.
        let K = classCount, n = size * size, rn = region.height * region.width, width = region.width
        let src = UncheckedSendable(scores.data), dst = UncheckedSendable(output.baseAddress!)
        parallelFor(batch * K * region.height, minChunk: 64) { range in
            for job in range {
                let plane = job / region.height, y = job % region.height  // plane = b * K + k
                (dst.value + plane * n + (region.row + y) * size + region.column)
                    .update(from: src.value + plane * rn + y * width, count: width)
            }
        }
    }
}
