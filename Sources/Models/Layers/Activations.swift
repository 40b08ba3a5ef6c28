import Core
import Engine

/// ReLU on oneDNN (prefer `BatchNorm2d(fusedReLU: true)` after a batch norm).
public final class ReLU: UnaryLayer {
    public var isTraining = true
    private let kernel = ReLUKernel()
    private var input: Tensor?, output: Tensor?, dInput: Tensor?
    public init() {}

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = reuse(output, x.shape, x.layout)
        output = out
        kernel.forward(input: x, output: out)
        input = x
        return out
    }
    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let x = input else { preconditionFailure("ReLU.backward before forward") }
        let dx = reuse(dInput, x.shape, x.layout)
        dInput = dx
        kernel.backward(input: x, dOutput: dOutput, dInput: dx)
        return dx
    }
}

/// Softmax (or log-softmax) over channels; plain NCHW tensors (a network's output edge).
public final class Softmax: UnaryLayer {
    public var isTraining = true
    public let log: Bool
    private var output: Tensor?, dInput: Tensor?
    public init(log: Bool = false) { self.log = log }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = reuse(output, x.shape, .nchw)
        output = out
        ChannelSoftmax.forward(input: x, output: out, log: log)
        return out
    }
    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let y = output else { preconditionFailure("Softmax.backward before forward") }
        let dx = reuse(dInput, y.shape, .nchw)
        dInput = dx
        ChannelSoftmax.backward(output: y, dOutput: dOutput, dInput: dx, log: log)
        return dx
    }
}

/// Dropout: in training zeroes each element with probability p and scales the rest by 1/(1−p);
/// identity in inference.
public final class Dropout: UnaryLayer {
    public var isTraining = true
    public let probability: Float
    private var generator: SplitMix64
    private var mask: Storage?
    private var output: Tensor?, dInput: Tensor?

    public init(probability: Float = 0.5, seed: UInt64 = 0) {
        precondition(probability >= 0 && probability < 1)
        self.probability = probability
        generator = SplitMix64(seed: seed, stream: .parameters)
    }

    public func callAsFunction(_ x: Tensor) -> Tensor {
        guard isTraining, probability > 0 else { return x }
        let out = reuse(output, x.shape, x.layout)
        output = out
        if mask == nil || mask!.capacity != x.physicalCount { mask = Storage(capacity: x.physicalCount) }
        let m = mask!.pointer, keep = 1 / (1 - probability)
        for i in 0..<x.physicalCount { m[i] = Float.random(in: 0..<1, using: &generator) < probability ? 0 : keep }
        Elementwise.multiply(x, m, into: out)
        return out
    }

    /// The mask of the last training forward (0 or 1/(1−p) per element).
    public var lastMask: UnsafeMutablePointer<Float>? { mask?.pointer }

    public func backward(_ dOutput: Tensor) -> Tensor {
        guard isTraining, probability > 0 else { return dOutput }
        let dx = reuse(dInput, dOutput.shape, dOutput.layout)
        dInput = dx
        Elementwise.multiply(dOutput, mask!.pointer, into: dx)
        return dx
    }
}
