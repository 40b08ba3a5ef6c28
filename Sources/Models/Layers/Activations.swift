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
