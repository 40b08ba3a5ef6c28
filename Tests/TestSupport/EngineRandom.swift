import Tiling

/// Deterministic random numbers for engine tests (SplitMix64).
public struct EngineRandom: RandomNumberGenerator, Sendable {
    private var base: SplitMix64
    public init(seed: UInt64) { base = SplitMix64(seed: seed &+ 0x9E37_79B9_7F4A_7C15) }
    public mutating func next() -> UInt64 { base.next() }
    /// Uniform values in [lo, hi).
    public mutating func uniform(_ count: Int, _ lo: Double = -1, _ hi: Double = 1) -> [Double] {
        (0..<count).map { _ in Double.random(in: lo..<hi, using: &self) }
    }
}
