import Engine

/// Central finite differences of a scalar function of many Doubles.
/// Used by the engine and model tests to check analytic gradients.
public func numericalGradient(of f: ([Double]) -> Double, at x: [Double], step: Double = 1e-6) -> [Double] {
    var x = x
    var g = [Double](repeating: 0, count: x.count)
    for i in x.indices {
        let keep = x[i]
        x[i] = keep + step; let up = f(x)
        x[i] = keep - step; let down = f(x)
        x[i] = keep
        g[i] = (up - down) / (2 * step)
    }
    return g
}

/// Normwise relative error: max |a − b| / max(max |b|, floor). Zero when both are zero.
public func relativeError(_ a: [Double], _ b: [Double], floor: Double = 1e-12) -> Double {
    precondition(a.count == b.count, "relativeError: \(a.count) vs \(b.count) values")
    var diff = 0.0, scale = 0.0
    for (x, y) in zip(a, b) { diff = max(diff, abs(x - y)); scale = max(scale, abs(y)) }
    return diff / max(scale, floor)
}

public func relativeError(_ a: [Float], _ b: [Double]) -> Double { relativeError(a.map(Double.init), b) }

/// Σ weights · values: the scalar "loss" whose gradient w.r.t. values is `weights`.
public func dot(_ a: [Double], _ b: [Double]) -> Double { zip(a, b).reduce(0) { $0 + $1.0 * $1.1 } }

/// Each parameter's gradient g checked along its own direction: |g| against the central
/// finite difference (L(w + ε·g/|g|) − L(w − ε·g/|g|)) / 2ε of `loss` (one direction per
/// parameter tensor, so whole networks are checked in a few forward passes). Parameters with
/// |g| ≤ 1e-4 are left out; every value is restored.
public func directionalDerivatives(_ parameters: [(String, Parameter)], eps: Double = 2e-3,
                                   loss: () -> Double) -> [(name: String, analytic: Double, numeric: Double)] {
    parameters.compactMap { name, p in
        let g = (0..<p.count).map { Double(p.grad.data[$0]) }
        let norm = g.reduce(0) { $0 + $1 * $1 }.squareRoot()
        guard norm > 1e-4 else { return nil }
        let w0 = (0..<p.count).map { p.value.data[$0] }
        func shifted(_ s: Double) -> Double {
            for i in 0..<p.count { p.value.data[i] = w0[i] + Float(s * g[i] / norm) }
            p.markChanged()
            return loss()
        }
        let numeric = (shifted(eps) - shifted(-eps)) / (2 * eps)
        for i in 0..<p.count { p.value.data[i] = w0[i] }
        p.markChanged()
        return (name, norm, numeric)
    }
}
