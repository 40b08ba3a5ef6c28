import Engine

/// Batch normalisation over channels with affine weight (γ) and bias (β), optionally fused
/// with the ReLU that follows (one oneDNN pass forward and backward instead of three).
/// Training uses batch statistics and updates the running ones (PyTorch: momentum 0.1,
/// unbiased running variance); inference uses the running statistics.
public final class BatchNorm2d: UnaryLayer {
    public let weight: Parameter
    public let bias: Parameter
    /// Running statistics (C): checkpointed with the parameters, not trained.
    public let runningMean: Parameter
    public let runningVariance: Parameter
    public let momentum: Float
    public var isTraining = true
    public let kernel: BatchNormKernel
    /// Where input gradients come from when set (shared by a network's layers).
    public var gradientPool: BufferPool?
    /// Sums values in place over the ranks of a data-parallel run. Set: synchronised batch
    /// norm (training statistics of the global batch, and their gradient); nil: each rank's own.
    public var crossReplicaSum: ((UnsafeMutableBufferPointer<Double>) -> Void)? {
        didSet { kernel.givenStatistics = crossReplicaSum != nil }
    }
    /// Pixels per channel behind the last training statistics (all ranks' when synchronised).
    private var statisticsCount = 0.0

    private let batchMean: Storage, batchVariance: Storage
    private var input: Tensor?, output: Tensor?, dInput: Tensor?

    public init(channels: Int, epsilon: Float = 1e-5, momentum: Float = 0.1, fusedReLU: Bool = false) {
        weight = Parameter(shape: Shape(channels, 1, 1, 1))
        bias = Parameter(shape: Shape(channels, 1, 1, 1))
        runningMean = Parameter(shape: Shape(channels, 1, 1, 1))
        runningVariance = Parameter(shape: Shape(channels, 1, 1, 1))
        weight.fill(1); runningVariance.fill(1)
        self.momentum = momentum
        kernel = BatchNormKernel(channels: channels, epsilon: epsilon, fuseReLU: fusedReLU)
        batchMean = Storage(capacity: channels); batchVariance = Storage(capacity: channels)
    }

    public var channels: Int { kernel.channels }
    public var namedParameters: [(String, Parameter)] { [("weight", weight), ("bias", bias)] }
    /// Non-trainable state saved in checkpoints.
    public var namedBuffers: [(String, Parameter)] { [("running_mean", runningMean), ("running_var", runningVariance)] }

    /// input (N, C, H, W) → output, same shape and layout.
    public func callAsFunction(_ x: Tensor) -> Tensor {
        let out = reuse(output, x.shape, x.layout)
        output = out
        if isTraining {
            if let crossReplicaSum { globalStatistics(x, crossReplicaSum) }
            statisticsCount = crossReplicaSum == nil ? Double(x.shape.n * x.shape.h * x.shape.w) : statisticsCount
            kernel.forward(input: x, output: out, scale: weight.value.data, shift: bias.value.data,
                           mean: batchMean.pointer, variance: batchVariance.pointer, training: true)
            let m = Float(statisticsCount)
            let unbias = m > 1 ? m / (m - 1) : 1
            let rm = runningMean.value.data, rv = runningVariance.value.data
            for c in 0..<channels {
                rm[c] = (1 - momentum) * rm[c] + momentum * batchMean.pointer[c]
                rv[c] = (1 - momentum) * rv[c] + momentum * batchVariance.pointer[c] * unbias
            }
            runningMean.markChanged(); runningVariance.markChanged()
        } else {
            kernel.forward(input: x, output: out, scale: weight.value.data, shift: bias.value.data,
                           mean: runningMean.value.data, variance: runningVariance.value.data, training: false)
        }
        input = x
        return out
    }

    /// dOutput is the gradient of this layer's output (after the fused ReLU when fused).
    public func backward(_ dOutput: Tensor) -> Tensor {
        guard let x = input, isTraining else { preconditionFailure("BatchNorm2d.backward needs a training forward") }
        let dx = gradientPool?.take(x.shape, x.layout) ?? reuse(dInput, x.shape, x.layout)
        if gradientPool == nil { dInput = dx }
        kernel.backward(input: x, dOutput: dOutput, dInput: dx, scale: weight.value.data, shift: bias.value.data,
                        mean: batchMean.pointer, variance: batchVariance.pointer,
                        dScale: weight.grad.data, dShift: bias.grad.data)
        if let crossReplicaSum { addStatisticsGradient(dx, x, crossReplicaSum) }
        return dx
    }

    /// Mean and biased variance of every rank's batch into batchMean/batchVariance.
    private func globalStatistics(_ x: Tensor, _ sum: (UnsafeMutableBufferPointer<Double>) -> Void) {
        var m = ChannelSums.moments(x)
        m.withUnsafeMutableBufferPointer { sum($0) }
        let C = channels, count = m[2 * C]
        statisticsCount = count
        for c in 0..<C {
            let mean = m[c] / count
            batchMean.pointer[c] = Float(mean)
            batchVariance.pointer[c] = Float(max(0, m[C + c] / count - mean * mean))
        }
    }

    /// With given statistics the kernel's dInput is γ/σ·dy; this adds the terms through the
    /// mean and variance of the global batch, from every rank's Σdy and Σdy·x̂ (dShift, dScale):
    /// dx = γ/σ·(dy − Σdy/M − x̂·Σdy·x̂/M). dScale and dShift stay this rank's (averaged later).
    private func addStatisticsGradient(_ dx: Tensor, _ x: Tensor, _ sum: (UnsafeMutableBufferPointer<Double>) -> Void) {
        let C = channels
        var g = (0..<C).map { Double(weight.grad.data[$0]) } + (0..<C).map { Double(bias.grad.data[$0]) }
        g.withUnsafeMutableBufferPointer { sum($0) }
        var a = [Double](repeating: 0, count: C), b = a
        for c in 0..<C {
            let sigma = (Double(batchVariance.pointer[c]) + Double(kernel.epsilon)).squareRoot(), gamma = Double(weight.value.data[c])
            b[c] = -gamma * g[c] / (sigma * sigma * statisticsCount)
            a[c] = -gamma * g[C + c] / (sigma * statisticsCount) - b[c] * Double(batchMean.pointer[c])
        }
        ChannelSums.addAffine(to: dx, of: x, a: a, b: b)
    }
}
