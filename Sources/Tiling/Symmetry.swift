/// One of the 8 symmetries of the square: an optional horizontal flip, then `quarterTurns`
/// counter-clockwise quarter turns. The one home of this geometry: training augmentation
/// (`Augmentation`) and test-time augmentation (`TTABuffers` in Inference) both use it.
/// (Pure index maths with no dependency: it belongs in the shared leaf target.)
public struct Symmetry: Hashable, Sendable {
    public var quarterTurns: Int
    public var flip: Bool

    public init(quarterTurns: Int, flip: Bool) {
        self.quarterTurns = quarterTurns
        self.flip = flip
    }

    /// All 8, in the order test-time augmentation averages them (turns 0–3, each without and with flip).
    public static let all: [Symmetry] = (0..<4).flatMap { k in [false, true].map { Symmetry(quarterTurns: k, flip: $0) } }

    public var isIdentity: Bool { quarterTurns % 4 == 0 && !flip }

    /// Source index of the destination pixel (r, c) in a `size`×`size` square.
    @inlinable
    public func source(row r: Int, column c: Int, size: Int) -> Int {
        var (rr, cc) = (r, c)
        for _ in 0..<(quarterTurns % 4) { (rr, cc) = (cc, size - 1 - rr) }
        if flip { cc = size - 1 - cc }
        return rr * size + cc
    }

    /// For every destination pixel (row-major), the index of its source pixel.
    public func sourceMap(size: Int) -> [Int] {
        var map = [Int](repeating: 0, count: size * size)
        for r in 0..<size { for c in 0..<size { map[r * size + c] = source(row: r, column: c, size: size) } }
        return map
    }
}
