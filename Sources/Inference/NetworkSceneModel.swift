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
        run(values, batch: batch, size: size, into: output, softmax: true)
    }

    /// The logits: their maximum is the class, and the softmax is skipped.
    public func predictClassScores(_ values: UnsafeBufferPointer<Float>, batch: Int, size: Int,
                                   into output: UnsafeMutableBufferPointer<Float>) throws {
        run(values, batch: batch, size: size, into: output, softmax: false)
    }

    private func run(_ values: UnsafeBufferPointer<Float>, batch: Int, size: Int,
                     into output: UnsafeMutableBufferPointer<Float>, softmax: Bool) {
        let shape = Shape(batch, inputChannels, size, size)
        let x = (input?.shape == shape) ? input! : Tensor(shape: shape)
        input = x
        x.data.update(from: values.baseAddress!, count: shape.count)
        let logits = network(x)
        let K = classCount, n = size * size
        guard softmax else {
            output.baseAddress!.update(from: logits.data, count: batch * K * n)
            return
        }
        // Softmax over classes, pixel by pixel, rows of pixels in parallel.
        let l = UncheckedSendable(logits.data), o = UncheckedSendable(output.baseAddress!)
        let rows = batch * size
        parallelFor(rows, minChunk: 16) { range in
            for row in range {
                let b = row / size, first = (row % size) * size
                let lb = l.value + b * K * n, ob = o.value + b * K * n
                for p in first..<(first + size) {
                    var m = -Float.infinity
                    for k in 0..<K { m = max(m, lb[k * n + p]) }
                    var z: Float = 0
                    for k in 0..<K {
                        let e = expf(lb[k * n + p] - m)
                        ob[k * n + p] = e
                        z += e
                    }
                    let inv = 1 / z
                    for k in 0..<K { ob[k * n + p] *= inv }
                }
            }
        }
    }
}
