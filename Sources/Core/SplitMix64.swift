/// The project's one seedable generator (splitmix64): small, fast, and the same on every
/// platform, used wherever TerraSeg needs repeatable randomness (parameter initialisation,
/// dropout, sampling, splits, augmentation, test inputs). `Codable` so checkpoints can
/// store a stream's position.
public struct SplitMix64: RandomNumberGenerator, Sendable, Codable, Hashable {
    public var state: UInt64

    public init(seed: UInt64) { state = seed }

    /// An independent stream for one purpose from a user's seed: `stream` is XORed into the
    /// seed so that, say, parameter initialisation and dropout never share draws.
    public init(seed: UInt64, stream: Stream) { state = seed ^ stream.rawValue }

    public mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Seed offsets that separate the streams drawn from one seed.
    public struct Stream: RawRepresentable, Sendable, Hashable {
        public var rawValue: UInt64
        public init(rawValue: UInt64) { self.rawValue = rawValue }

        /// Parameter initialisation and dropout masks (Models).
        public static let parameters = Stream(rawValue: 0x5DEE_CE66_D1CE_4E5B)
        /// The order of training patches in each epoch.
        public static let epochOrder = Stream(rawValue: 0x5EED)
        /// Training-time augmentation (symmetries, gain and offset jitter).
        public static let augmentation = Stream(rawValue: 0xA11CE)
    }
}
