import Core

extension SplitMix64 {
    /// Uniform values in [lo, hi): random inputs for engine and model tests.
    public mutating func uniform(_ count: Int, _ lo: Double = -1, _ hi: Double = 1) -> [Double] {
        (0..<count).map { _ in Double.random(in: lo..<hi, using: &self) }
    }
}
