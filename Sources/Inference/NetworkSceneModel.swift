import Engine
import Foundation
import Models
import Tiling

/// A trained network from a model bundle, as the stitcher's `SceneModel`: NCHW input
/// batches in, softmax probabilities out. Input and output buffers are reused per shape.
public final class NetworkSceneModel: SceneModel {
    public let bundle: ModelBundle
    let network: any SegmentationNetwork
    private var input: Tensor?

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

    /// What the stitcher needs besides the network, from the bundle.
    public var inputs: ModelInputs {
        ModelInputs(bands: bundle.bands, normalizer: bundle.normalization, classMap: bundle.classes)
    }

    public func predict(_ values: UnsafeBufferPointer<Float>, batch: Int, size: Int,
                        into output: UnsafeMutableBufferPointer<Float>) throws {
        try predictScores(values, batch: batch, size: size, region: PixelRegion(row: 0, column: 0, height: size, width: size),
                          probabilities: true, into: output)
    }

    /// The network runs only as far as `region` needs (a U-Net skips its decoder's work in the
    /// windows' margins); without `probabilities` the logits are returned and the softmax skipped.
    public func predictScores(_ values: UnsafeBufferPointer<Float>, batch: Int, size: Int, region: PixelRegion,
                              probabilities: Bool, into output: UnsafeMutableBufferPointer<Float>) throws {
        let shape = Shape(batch, inputChannels, size, size)
        let x = (input?.shape == shape) ? input! : Tensor(shape: shape)
        input = x
        x.data.update(from: values.baseAddress!, count: shape.count)
        let logits = network.logits(x, region: region)
        let K = classCount, n = size * size, rn = region.height * region.width
        let l = UncheckedSendable(logits.data), o = UncheckedSendable(output.baseAddress!)
        // Into each window's scores at the region's place; softmax over classes if asked.
        let rows = batch * region.height, width = region.width
        parallelFor(rows, minChunk: 16) { range in
            for job in range {
                let b = job / region.height, y = job % region.height
                let src = l.value + b * K * rn + y * width
                let dst = o.value + b * K * n + (region.row + y) * size + region.column
                guard probabilities else {
                    for k in 0..<K { (dst + k * n).update(from: src + k * rn, count: width) }
                    continue
                }
                for p in 0..<width {
                    var m = -Float.infinity
                    for k in 0..<K { m = max(m, src[k * rn + p]) }
                    var z: Float = 0
                    for k in 0..<K {
                        let e = expf(src[k * rn + p] - m)
                        dst[k * n + p] = e
                        z += e
                    }
                    let inv = 1 / z
                    for k in 0..<K { dst[k * n + p] *= inv }
                }
            }
        }
    }
}
