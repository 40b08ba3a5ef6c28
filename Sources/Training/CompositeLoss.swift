import Core
import Engine
import Models

/// Σ weightᵢ · lossᵢ over the configured terms, with one gradient buffer per term and one
/// for the sum, all reused between steps.
final class CompositeLoss {
    let options: LossOptions
    private var termGradients: [Tensor?]
    private var total: Tensor?

    init(_ options: LossOptions) {
        self.options = options
        termGradients = Array(repeating: nil, count: options.terms.count)
    }

    /// Loss value (and each term's value) and dL/dlogits, NCHW.
    func callAsFunction(logits: Tensor, target: SegmentationTarget) -> (value: Float, terms: [Float], gradient: Tensor) {
        let g = reuse(total, logits.shape, .nchw)
        total = g
        g.zero()
        var value: Float = 0
        var parts: [Float] = []
        for (i, term) in options.terms.enumerated() {
            let r: LossValue
            switch term.kind {
            case .dice:
                r = diceLoss(logits: logits, target: target, classWeights: options.classWeights, smoothing: options.smoothing,
                             gradient: termGradients[i])
            case .focal:
                r = focalLoss(logits: logits, target: target, gamma: options.gamma, alpha: options.alpha, gradient: termGradients[i])
            case .crossEntropy:
                r = crossEntropyLoss(logits: logits, target: target, classWeights: options.alpha, gradient: termGradients[i])
            }
            termGradients[i] = r.gradient
            parts.append(r.value)
            value += term.weight * r.value
            let w = term.weight, src = r.gradient.data, dst = g.data
            for j in 0..<logits.shape.count { dst[j] += w * src[j] }
        }
        return (value, parts, g)
    }
}
