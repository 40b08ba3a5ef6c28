/// Deterministic random numbers for engine tests (SplitMix64).
public struct EngineRandom: RandomNumberGenerator, Sendable {
    private var state: UInt64
    public init(seed: UInt64) { state = seed &+ 0x9E37_79B9_7F4A_7C15 }
    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
    /// Uniform values in [lo, hi).
    public mutating func uniform(_ count: Int, _ lo: Double = -1, _ hi: Double = 1) -> [Double] {
        (0..<count).map { _ in Double.random(in: lo..<hi, using: &self) }
    }
}
