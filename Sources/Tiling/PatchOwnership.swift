import Core

/// Gives every pixel covered by a set of patches to exactly one of them, so that counts and
/// metrics over overlapping patches see each pixel once. Rule: a pixel belongs to the patch
/// (of the same scene) whose centre is nearest in Chebyshev distance, ties to the patch listed
/// first. On a regular patch grid these are disjoint cores, one stride wide, around the centres.
public struct PatchOwnership: Sendable {
    public let refs: [PatchRef]
    /// For each patch, the other patches of its scene whose windows intersect it.
    let neighbours: [[Int]]

    public init(refs: [PatchRef]) {
        self.refs = refs
        // Bucket patches by scene and a coarse cell so neighbours are found without n² pairs.
        let cell = max(1, refs.map { max($0.window.width, $0.window.height) }.max() ?? 1)
        struct Key: Hashable { var scene: Int, column: Int, row: Int }
        var buckets: [Key: [Int]] = [:]
        for (i, r) in refs.enumerated() {
            buckets[Key(scene: r.scene, column: r.window.column / cell, row: r.window.row / cell), default: []].append(i)
        }
        neighbours = refs.enumerated().map { i, r in
            var out: [Int] = []
            let c0 = r.window.column / cell, r0 = r.window.row / cell
            for dr in -1...1 {
                for dc in -1...1 {
                    for j in buckets[Key(scene: r.scene, column: c0 + dc, row: r0 + dr)] ?? [] where j != i {
                        if r.window.intersection(refs[j].window) != nil { out.append(j) }
                    }
                }
            }
            return out.sorted()
        }
    }

    /// Twice the Chebyshev distance from pixel (x, y) to the centre of `w` (integers throughout).
    static func distance(_ x: Int, _ y: Int, to w: Window) -> Int {
        max(abs(2 * x + 1 - (2 * w.column + w.width)), abs(2 * y + 1 - (2 * w.row + w.height)))
    }

    /// Marks with 1 the pixels of patch `i` (row-major over its window) that it owns, 0 the others.
    public func ownedMask(_ i: Int, into mask: inout [UInt8]) {
        let w = refs[i].window
        if mask.count != w.pixelCount { mask = [UInt8](repeating: 0, count: w.pixelCount) }
        let others = neighbours[i].map { refs[$0].window }
        let order = neighbours[i]
        for y in 0..<w.height {
            for x in 0..<w.width {
                let gx = w.column + x, gy = w.row + y
                let mine = PatchOwnership.distance(gx, gy, to: w)
                var owned = true
                for (k, o) in others.enumerated() where gx >= o.column && gx < o.endColumn && gy >= o.row && gy < o.endRow {
                    let d = PatchOwnership.distance(gx, gy, to: o)
                    if d < mine || (d == mine && order[k] < i) { owned = false; break }
                }
                mask[y * w.width + x] = owned ? 1 : 0
            }
        }
    }
}
