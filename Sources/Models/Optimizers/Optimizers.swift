import Engine
import RealModule

/// Adam (Kingma & Ba), state keyed by parameter name so it can be checkpointed.
/// Reads each parameter's `grad`, updates `value` in place and bumps its version.
public final class Adam {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float
    public var weightDecay: Float
    public let parameters: [(String, Parameter)]
    /// First and second moments per parameter name.
    public private(set) var moments: [String: (m: Storage, v: Storage)] = [:]
    public private(set) var step = 0

    public init(parameters: [(String, Parameter)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0) {
        self.parameters = parameters
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2
        self.epsilon = epsilon; self.weightDecay = weightDecay
        for (name, p) in parameters {
            precondition(moments[name] == nil, "duplicate parameter name \(name)")
            moments[name] = (Storage(capacity: p.count), Storage(capacity: p.count))
        }
    }

    /// One update of every parameter from its current gradient.
    public func update() {
        step += 1
        let c1 = 1 - Float.pow(beta1, Float(step)), c2 = 1 - Float.pow(beta2, Float(step))
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon, wd = weightDecay
        for (name, p) in parameters {
            let (m, v) = moments[name]!
            let w = UncheckedSendable(p.value.data), g = UncheckedSendable(p.grad.data)
            let mp = UncheckedSendable(m.pointer), vp = UncheckedSendable(v.pointer)
            parallelFor(p.count, minChunk: 1 << 15) { r in
                for i in r {
                    let gi = g.value[i] + wd * w.value[i]
                    let mi = b1 * mp.value[i] + (1 - b1) * gi
                    let vi = b2 * vp.value[i] + (1 - b2) * gi * gi
                    mp.value[i] = mi; vp.value[i] = vi
                    w.value[i] -= lr * (mi / c1) / ((vi / c2).squareRoot() + eps)
                }
            }
            p.markChanged()
        }
    }
}

/// Stochastic gradient descent with (optional) momentum, state keyed by parameter name.
public final class SGD {
    public var learningRate: Float
    public var momentum: Float
    public let parameters: [(String, Parameter)]
    public private(set) var velocities: [String: Storage] = [:]

    public init(parameters: [(String, Parameter)], learningRate: Float = 1e-2, momentum: Float = 0.9) {
        self.parameters = parameters; self.learningRate = learningRate; self.momentum = momentum
        for (name, p) in parameters { velocities[name] = Storage(capacity: p.count) }
    }

    /// v = μ v + g; w −= lr · v (PyTorch's formulation).
    public func update() {
        for (name, p) in parameters {
            let v = velocities[name]!.pointer, w = p.value.data, g = p.grad.data
            for i in 0..<p.count {
                v[i] = momentum * v[i] + g[i]
                w[i] -= learningRate * v[i]
            }
            p.markChanged()
        }
    }
}
