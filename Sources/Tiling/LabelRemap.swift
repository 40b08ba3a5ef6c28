import Core
import GeoRaster

/// Label values rewritten before the class map reads them (`data.remap`), e.g. CDL crop codes
/// to a few classes. Many source values may map to one value. A labelled pixel whose value no
/// rule maps is an error, unless the value is listed under `data.ignore` (the pixel is then
/// excluded from loss and metrics).
public struct LabelRemap: Sendable, Hashable {
    /// Source label value → the value the class map reads.
    public let table: [Int: Int]
    /// Source values that are excluded instead of mapped.
    public let ignore: Set<Int>

    /// `rules`: (source values, target value) pairs; a source value in two rules with
    /// different targets is refused.
    public init(rules: [(from: [Int], to: Int)], ignore: [Int] = []) throws {
        var table: [Int: Int] = [:]
        for rule in rules {
            for v in rule.from {
                if let old = table[v], old != rule.to {
                    throw TerraSegError(.invalidArgument, path: "data.remap",
                                        problem: "label value \(v) is mapped both to \(old) and to \(rule.to)",
                                        hint: "List every source value in one remap rule only")
                }
                table[v] = rule.to
            }
        }
        self.table = table
        self.ignore = Set(ignore)
    }

    /// Rewrites band 0 of `block` in place: mapped values replaced, ignored values marked
    /// invalid; an unmapped valid value throws, naming the file, the value and the fix.
    public func apply(to block: inout RasterBlock, labelPath: String) throws {
        let n = block.window.pixelCount
        for i in 0..<n where block.valid[i] != 0 {
            let v = block.values[i]
            let iv = Int(exactly: v)
            if let iv, let target = table[iv] {
                block.values[i] = Float(target)
            } else if let iv, ignore.contains(iv) {
                block.valid[i] = 0
            } else {
                let c = block.window.column + i % block.window.width, r = block.window.row + i / block.window.width
                throw RasterError(.invalidArgument, path: labelPath, band: 1,
                                  problem: "label value \(v.formatted()) at column \(c), row \(r) has no remap rule",
                                  hint: "Add \(v.formatted()) to the from: list of a data.remap rule, or list it under data.ignore to exclude it")
            }
        }
    }
}
