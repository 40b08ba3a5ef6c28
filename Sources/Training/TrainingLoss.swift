import Core
import Engine
import Models

/// The training objective. The default Dice + focal (both weight 1, no Dice smoothing) runs
/// as the fused `FocalDiceLoss` (one softmax, multi-threaded; what `terraseg-bench` times);
/// any other mix of terms as `CompositeLoss`. The two agree to float rounding, not bit for bit
/// (the fused loss sums in Double): see `fusedLossMatchesCompositeLoss` in TrainingTests.
final class TrainingLoss {
    private let fused: FocalDiceLoss?
    private let composite: CompositeLoss?

    init(_ options: LossOptions) {
        if TrainingLoss.isFusable(options) {
            fused = FocalDiceLoss(gamma: options.gamma, alpha: options.alpha, classWeights: options.classWeights)
            composite = nil
        } else {
            fused = nil
            composite = CompositeLoss(options)
        }
    }

    /// Whether `options` is exactly focal + Dice, weights 1, no smoothing.
    static func isFusable(_ options: LossOptions) -> Bool {
        options.smoothing == 0 && options.terms.count == 2 && Set(options.terms.map(\.kind)) == [.focal, .dice]
            && options.terms.allSatisfy { $0.weight == 1 }
    }

    var isFused: Bool { fused != nil }

    /// Loss value and dL/dlogits (NCHW; a buffer reused by the next call).
    func callAsFunction(logits: Tensor, target: SegmentationTarget) -> (value: Float, gradient: Tensor) {
        if let fused {
            let r = fused(logits: logits, target: target)
            return (r.value, r.gradient)
        }
        let r = composite!(logits: logits, target: target)
        return (r.value, r.gradient)
    }
}
