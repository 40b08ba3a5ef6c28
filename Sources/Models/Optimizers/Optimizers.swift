import Engine
import RealModule

/// What the trainer needs from an optimiser: a learning rate to schedule, one update from
/// the current gradients (of every element, or of some: a data-parallel rank updates its
/// shard), and its state as named buffers for checkpoints.
public protocol Optimizer: AnyObject {
    var learningRate: Float { get set }
    /// Updates taken so far (restored on resume: Adam's bias correction depends on it).
    var step: Int { get set }
    /// What it updates, by name (the names of its state buffers).
    var parameters: [(String, Parameter)] { get }
    /// One step over `parts` only, each gradient read as `gradientScale` × its value; the
    /// other elements (and their state) stay as they are. Element-wise, so the parts' values
    /// are those of a whole update, bit for bit. `afterEach(k)` runs once part k is updated.
    func update(_ parts: [OptimizerPart], gradientScale: Float, afterEach: (Int) -> Void)
    /// Per-parameter state buffers, named "<kind>/<parameter name>" (e.g. "adam.m/enc1.conv1.weight").
    var stateBuffers: [(name: String, storage: Storage, count: Int)] { get }
}

/// Elements `range` of the optimiser's parameter `parameter` (its index in `parameters`),
/// their gradient read from `gradient` (element `range.lowerBound`'s, then the next ones).
public struct OptimizerPart {
    public var parameter: Int
    public var range: Range<Int>
    public var gradient: UnsafePointer<Float>

    public init(parameter: Int, range: Range<Int>, gradient: UnsafePointer<Float>) {
        self.parameter = parameter
        self.range = range
        self.gradient = gradient
    }

    /// Every element of each of `parameters`, from its own `grad`.
    public static func whole(_ parameters: [(String, Parameter)]) -> [OptimizerPart] {
        parameters.enumerated().map { OptimizerPart(parameter: $0.offset, range: 0..<$0.element.1.count, gradient: $0.element.1.grad.data) }
    }
}

extension Optimizer {
    /// One update of every parameter from its own gradient.
    public func update() { update(OptimizerPart.whole(parameters), gradientScale: 1) }

    public func update(_ parts: [OptimizerPart], gradientScale: Float) { update(parts, gradientScale: gradientScale) { _ in } }
}

/// Adam (Kingma & Ba), state keyed by parameter name so it can be checkpointed. With
/// `decoupledWeightDecay` it is AdamW (Loshchilov & Hutter): the decay shrinks the weights
/// directly instead of being added to the gradient.
/// Reads each part's gradient, updates `value` in place and bumps its version.
public final class Adam: Optimizer {
    public var learningRate: Float
    public var beta1: Float, beta2: Float, epsilon: Float
    public var weightDecay: Float
    public var decoupledWeightDecay: Bool
    public let parameters: [(String, Parameter)]
    /// First and second moments per parameter name.
    public private(set) var moments: [String: (m: Storage, v: Storage)] = [:]
    public var step = 0

    public init(parameters: [(String, Parameter)], learningRate: Float = 1e-3, beta1: Float = 0.9,
                beta2: Float = 0.999, epsilon: Float = 1e-8, weightDecay: Float = 0, decoupledWeightDecay: Bool = false) {
        self.parameters = parameters
        self.learningRate = learningRate; self.beta1 = beta1; self.beta2 = beta2
        self.epsilon = epsilon; self.weightDecay = weightDecay
        self.decoupledWeightDecay = decoupledWeightDecay
        for (name, p) in parameters {
            precondition(moments[name] == nil, "duplicate parameter name \(name)")
            moments[name] = (Storage(capacity: p.count), Storage(capacity: p.count))
        }
    }

    /// One update of `parts` from their gradients (× `gradientScale`).
    public func update(_ parts: [OptimizerPart], gradientScale: Float, afterEach: (Int) -> Void) {
        step += 1
        let c1 = 1 - Float.pow(beta1, Float(step)), c2 = 1 - Float.pow(beta2, Float(step))
        let lr = learningRate, b1 = beta1, b2 = beta2, eps = epsilon, scale = gradientScale
        let wd = decoupledWeightDecay ? 0 : weightDecay
        let shrink = decoupledWeightDecay ? 1 - lr * weightDecay : 1
        for (k, part) in parts.enumerated() {
            let (name, p) = parameters[part.parameter]
            let (m, v) = moments[name]!
            let lo = part.range.lowerBound
            let w = UncheckedSendable(p.value.data + lo), g = UncheckedSendable(part.gradient)
            let mp = UncheckedSendable(m.pointer + lo), vp = UncheckedSendable(v.pointer + lo)
            parallelFor(part.range.count, minChunk: 1 << 15) { r in
                // Pointers as locals (not fields of captured boxes) so the loop vectorises.
                let wp = w.value, gp = g.value, m = mp.value, v = vp.value
                let ic1 = 1 / c1, ic2 = 1 / c2
                for i in r {
                    let gi = gp[i] * scale + wd * wp[i]
                    let mi = b1 * m[i] + (1 - b1) * gi
                    let vi = b2 * v[i] + (1 - b2) * gi * gi
                    m[i] = mi; v[i] = vi
                    wp[i] = wp[i] * shrink - lr * (mi * ic1) / ((vi * ic2).squareRoot() + eps)
                }
            }
            p.markChanged()
            afterEach(k)
        }
    }
}

extension Adam {
    public var stateBuffers: [(name: String, storage: Storage, count: Int)] {
        parameters.flatMap { name, p in
            [("adam.m/" + name, moments[name]!.m, p.count), ("adam.v/" + name, moments[name]!.v, p.count)]
        }
    }
}

/// Stochastic gradient descent with (optional) momentum, Nesterov momentum and L2 weight
/// decay, state keyed by parameter name.
public final class SGD: Optimizer {
    public var learningRate: Float
    public var momentum: Float
    public var nesterov: Bool
    public var weightDecay: Float
    public var step = 0
    public let parameters: [(String, Parameter)]
    public private(set) var velocities: [String: Storage] = [:]

    public init(parameters: [(String, Parameter)], learningRate: Float = 1e-2, momentum: Float = 0.9,
                nesterov: Bool = false, weightDecay: Float = 0) {
        self.parameters = parameters; self.learningRate = learningRate; self.momentum = momentum
        self.nesterov = nesterov; self.weightDecay = weightDecay
        for (name, p) in parameters { velocities[name] = Storage(capacity: p.count) }
    }

    /// g' = g + λw; v = μ v + g'; w −= lr · (Nesterov ? g' + μ v : v) (PyTorch's formulation), over `parts`.
    public func update(_ parts: [OptimizerPart], gradientScale: Float, afterEach: (Int) -> Void) {
        step += 1
        for (k, part) in parts.enumerated() {
            let (name, p) = parameters[part.parameter]
            let lo = part.range.lowerBound
            let v = velocities[name]!.pointer + lo, w = p.value.data + lo, g = part.gradient
            for i in 0..<part.range.count {
                let gi = g[i] * gradientScale + weightDecay * w[i]
                v[i] = momentum * v[i] + gi
                w[i] -= learningRate * (nesterov ? gi + momentum * v[i] : v[i])
            }
            p.markChanged()
            afterEach(k)
        }
    }

    public var stateBuffers: [(name: String, storage: Storage, count: Int)] {
        parameters.map { name, p in ("sgd.v/" + name, velocities[name]!, p.count) }
    }
}
