import RealModule

/// Naive batch normalisation (per channel over N, H, W) and ReLU.
public enum ReferenceBatchNorm {
    /// Training: y = γ (x − μ_B) / sqrt(σ²_B + ε) + β with batch mean and biased variance.
    public static func forwardTraining(_ x: RefTensor, _ gamma: [Double], _ beta: [Double], eps: Double, relu: Bool = false)
        -> (y: RefTensor, mean: [Double], variance: [Double]) {
        let s = x.shape, m = Double(s.n * s.h * s.w)
        var mean = [Double](repeating: 0, count: s.c), variance = mean
        for c in 0..<s.c {
            var sum = 0.0
            for n in 0..<s.n { for h in 0..<s.h { for w in 0..<s.w { sum += x[n, c, h, w] } } }
            mean[c] = sum / m
            var sq = 0.0
            for n in 0..<s.n { for h in 0..<s.h { for w in 0..<s.w { sq += (x[n, c, h, w] - mean[c]) * (x[n, c, h, w] - mean[c]) } } }
            variance[c] = sq / m
        }
        return (forwardInference(x, gamma, beta, mean, variance, eps: eps, relu: relu), mean, variance)
    }

    public static func forwardInference(_ x: RefTensor, _ gamma: [Double], _ beta: [Double], _ mean: [Double],
                                        _ variance: [Double], eps: Double, relu: Bool = false) -> RefTensor {
        var y = x
        let s = x.shape
        for n in 0..<s.n { for c in 0..<s.c { for h in 0..<s.h { for w in 0..<s.w {
            let v = gamma[c] * (x[n, c, h, w] - mean[c]) / (variance[c] + eps).squareRoot() + beta[c]
            y[n, c, h, w] = relu ? max(v, 0) : v
        } } } }
        return y
    }

    /// Training-mode backward (statistics depend on x). With `relu`, dy is the gradient of the
    /// post-ReLU output and is masked by the pre-ReLU sign first.
    public static func backward(_ x: RefTensor, _ gamma: [Double], _ beta: [Double], _ dy: RefTensor, eps: Double, relu: Bool = false)
        -> (dx: RefTensor, dGamma: [Double], dBeta: [Double]) {
        let s = x.shape, m = Double(s.n * s.h * s.w)
        let (yPre, mean, variance) = forwardTraining(x, gamma, beta, eps: eps, relu: false)
        var g = dy
        if relu { for i in g.values.indices where yPre.values[i] <= 0 { g.values[i] = 0 } }
        var dx = RefTensor(zeros: s)
        var dGamma = [Double](repeating: 0, count: s.c), dBeta = dGamma
        for c in 0..<s.c {
            let inv = 1 / (variance[c] + eps).squareRoot()
            var sumG = 0.0, sumGX = 0.0
            for n in 0..<s.n { for h in 0..<s.h { for w in 0..<s.w {
                let xhat = (x[n, c, h, w] - mean[c]) * inv
                sumG += g[n, c, h, w]; sumGX += g[n, c, h, w] * xhat
            } } }
            dBeta[c] = sumG; dGamma[c] = sumGX
            for n in 0..<s.n { for h in 0..<s.h { for w in 0..<s.w {
                let xhat = (x[n, c, h, w] - mean[c]) * inv
                dx[n, c, h, w] = gamma[c] * inv * (g[n, c, h, w] - sumG / m - xhat * sumGX / m)
            } } }
        }
        return (dx, dGamma, dBeta)
    }
}

public enum ReferenceActivation {
    public static func relu(_ x: RefTensor) -> RefTensor { RefTensor(x.shape, x.values.map { max($0, 0) }) }
    public static func reluBackward(_ x: RefTensor, _ dy: RefTensor) -> RefTensor {
        RefTensor(x.shape, zip(x.values, dy.values).map { $0 > 0 ? $1 : 0 })
    }

    /// Softmax (or log-softmax) over channels.
    public static func softmax(_ x: RefTensor, log: Bool = false) -> RefTensor {
        var y = x
        let s = x.shape
        for n in 0..<s.n { for h in 0..<s.h { for w in 0..<s.w {
            var m = -Double.infinity
            for c in 0..<s.c { m = max(m, x[n, c, h, w]) }
            var sum = 0.0
            for c in 0..<s.c { sum += Double.exp(x[n, c, h, w] - m) }
            for c in 0..<s.c {
                let l = x[n, c, h, w] - m - Double.log(sum)
                y[n, c, h, w] = log ? l : Double.exp(l)
            }
        } } }
        return y
    }
    public static func softmaxBackward(_ x: RefTensor, _ dy: RefTensor, log: Bool = false) -> RefTensor {
        let p = softmax(x)
        var dx = x
        let s = x.shape
        for n in 0..<s.n { for h in 0..<s.h { for w in 0..<s.w {
            var dot = 0.0
            for c in 0..<s.c { dot += log ? dy[n, c, h, w] : p[n, c, h, w] * dy[n, c, h, w] }
            for c in 0..<s.c {
                dx[n, c, h, w] = log ? dy[n, c, h, w] - p[n, c, h, w] * dot : p[n, c, h, w] * (dy[n, c, h, w] - dot)
            }
        } } }
        return dx
    }
}
