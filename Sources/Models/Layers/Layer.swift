import Core
import Engine

/// A layer: parameters as stored properties, forward as `callAsFunction`, and an explicit
/// `backward` that returns the input gradient and overwrites its parameters' gradients.
///
/// Backpropagation is explicit per layer (no tape): each layer keeps the few tensors its
/// backward needs from the last forward and owns its output and input-gradient buffers,
/// which are allocated once per input shape and reused every step. A network's backward
/// calls its layers' backward in reverse order (see `UNet.backward`).
public protocol Layer: AnyObject {
    /// Parameters with names relative to this layer ("weight", "conv1.weight", ...).
    var namedParameters: [(String, Parameter)] { get }
    /// Training mode (batch statistics, dropout active) or inference.
    var isTraining: Bool { get set }
}

public protocol UnaryLayer: Layer {
    /// Forward pass. The returned tensor is owned by the layer and overwritten by its next call.
    func callAsFunction(_ input: Tensor) -> Tensor
    /// Backward pass for the last forward: returns dInput, writes parameter gradients.
    func backward(_ dOutput: Tensor) -> Tensor
}

extension Layer {
    public var namedParameters: [(String, Parameter)] { [] }
    /// Total number of trainable scalars.
    public var parameterCount: Int { namedParameters.reduce(0) { $0 + $1.1.count } }
}

/// Prefixes child parameter names: ("conv1", [("weight", p)]) → [("conv1.weight", p)].
func scoped(_ prefix: String, _ params: [(String, Parameter)]) -> [(String, Parameter)] {
    params.map { ("\(prefix).\($0.0)", $0.1) }
}

extension Parameter {
    /// Fills with U(−bound, bound) (PyTorch's default conv initialisation uses 1/sqrt(fan_in)).
    func fillUniform(bound: Float, seed: UInt64) {
        var g = SplitMix64(seed: seed, stream: .parameters)
        let p = value.data
        for i in 0..<count {
            let u = Float(g.next() >> 40) * 0x1p-24  // [0, 1) from 24 random bits
            p[i] = (2 * u - 1) * bound
        }
        markChanged()
    }
    func fill(_ v: Float) {
        value.data.update(repeating: v, count: count)
        markChanged()
    }
}
