/// Random flips, 90° rotations and per-band gain/offset jitter of square patches: the eight
/// symmetries of the square leave land cover unchanged, so they are free training data.
public struct Augmentation: Codable, Hashable, Sendable {
    public var flips = true
    public var rotations = true
    /// Multiply each band by 1 + U(−gain, gain) (0 = off).
    public var gainJitter: Float = 0
    /// Add U(−offset, offset) to each band, in normalised units (0 = off).
    public var offsetJitter: Float = 0

    public init(flips: Bool = true, rotations: Bool = true, gainJitter: Float = 0, offsetJitter: Float = 0) {
        self.flips = flips
        self.rotations = rotations
        self.gainJitter = gainJitter
        self.offsetJitter = offsetJitter
    }

    public static let none = Augmentation(flips: false, rotations: false)

    /// Applies a random symmetry (and jitter) drawn from `rng` to `patch` in place; returns the
    /// symmetry drawn (flip first, then counter-clockwise quarter turns).
    @discardableResult
    public func apply<R: RandomNumberGenerator>(to patch: inout Patch, using rng: inout R) -> (quarterTurns: Int, flip: Bool) {
        let k = rotations ? Int.random(in: 0..<4, using: &rng) : 0
        let flip = flips && Bool.random(using: &rng)
        if k != 0 || flip { Augmentation.transform(&patch, quarterTurns: k, flip: flip) }
        if gainJitter > 0 || offsetJitter > 0 {
            let n = patch.window.pixelCount
            for c in 0..<patch.channels {
                let g = 1 + (gainJitter > 0 ? Float.random(in: -gainJitter...gainJitter, using: &rng) : 0)
                let o = offsetJitter > 0 ? Float.random(in: -offsetJitter...offsetJitter, using: &rng) : 0
                for i in 0..<n where patch.target[i] >= 0 || patch.image[c * n + i] != 0 {
                    patch.image[c * n + i] = patch.image[c * n + i] * g + o
                }
            }
        }
        return (k, flip)
    }

    /// Draws from `rng` exactly what `apply` draws for a patch of `channels` bands, without a
    /// patch: a training rank skips the other ranks' slots of a global batch this way, so every
    /// rank's generator stays where one process's would be. Returns the symmetry drawn.
    @discardableResult
    public func skip<R: RandomNumberGenerator>(channels: Int, using rng: inout R) -> (quarterTurns: Int, flip: Bool) {
        let k = rotations ? Int.random(in: 0..<4, using: &rng) : 0
        let flip = flips && Bool.random(using: &rng)
        if gainJitter > 0 || offsetJitter > 0 {
            for _ in 0..<channels {
                if gainJitter > 0 { _ = Float.random(in: -gainJitter...gainJitter, using: &rng) }
                if offsetJitter > 0 { _ = Float.random(in: -offsetJitter...offsetJitter, using: &rng) }
            }
        }
        return (k, flip)
    }

    /// One of the 8 symmetries of the square: optional horizontal flip, then `quarterTurns`
    /// counter-clockwise rotations. Image and target move together.
    public static func transform(_ patch: inout Patch, quarterTurns: Int, flip: Bool) {
        let s = patch.window.width
        precondition(patch.window.height == s, "augmentation needs square patches")
        let n = s * s
        let map = Symmetry(quarterTurns: quarterTurns, flip: flip).sourceMap(size: s)
        let oldImage = patch.image, oldTarget = patch.target
        for ch in 0..<patch.channels {
            for i in 0..<n { patch.image[ch * n + i] = oldImage[ch * n + map[i]] }
        }
        for i in 0..<n { patch.target[i] = oldTarget[map[i]] }
    }
}
