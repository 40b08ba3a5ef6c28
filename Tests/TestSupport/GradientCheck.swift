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
