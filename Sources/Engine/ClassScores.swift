/// Per-pixel class scores laid out one plane per class (NCHW): the one home of "the best class
/// of a pixel" (validation, the predictor's tile writer, the Hann blender).
public enum ClassScores {
    /// The class with the highest score and that score, at `scores[0]`, `scores[stride]`, …,
    /// `scores[(classes − 1) · stride]`, each multiplied by `scale` (a blender's 1 / weight).
    /// Ties go to the lower class.
    @inlinable
    public static func best(_ scores: UnsafePointer<Float>, classes: Int, stride: Int, scale: Float = 1) -> (index: Int, score: Float) {
        var best = 0
        var bestScore = scores[0] * scale
        for k in 1..<max(classes, 1) where scores[k * stride] * scale > bestScore {
            best = k
            bestScore = scores[k * stride] * scale
        }
        return (best, bestScore)
    }
}
