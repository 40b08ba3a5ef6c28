import Core
import GeoRaster

/// The classes of a task: label raster values → class indices 0..<K, with names and colours,
/// and label values to ignore (nodata, "unlabelled", -1 in Sen1Floods11, …).
public struct ClassMap: Codable, Hashable, Sendable {
    /// Class index i is `classes[i]`; `value` is its value in label rasters and output maps.
    public var classes: [ClassEntry]
    public var ignoreValues: [Int]

    public var count: Int { classes.count }
    public var names: [String] { classes.map(\.name) }

    /// A qualitative palette (ColorBrewer Paired/Set1-like) for classes given without colours.
    public static let palette: [RGBA] = [
        "#e31a1c", "#ffff99", "#b2df8a", "#cab2d6", "#33a02c", "#1f78b4", "#b15928", "#fb9a99",
        "#fdbf6f", "#a6cee3", "#ff7f00", "#6a3d9a", "#8dd3c7", "#bebada", "#80b1d3", "#fccde5",
    ].map { RGBA(hex: $0)! }

    public init(classes: [ClassEntry], ignoreValues: [Int] = []) throws {
        guard !classes.isEmpty else {
            throw TerraSegError(.invalidArgument, path: "classes", problem: "no classes given", hint: "List at least two classes with their label values")
        }
        var seenValues = Set<Int>(), seenNames = Set<String>()
        for c in classes {
            if !seenValues.insert(c.value).inserted {
                throw TerraSegError(.invalidArgument, path: "classes", problem: "label value \(c.value) is used by two classes",
                                     hint: "Give every class its own value")
            }
            if !seenNames.insert(c.name).inserted {
                throw TerraSegError(.invalidArgument, path: "classes", problem: "class name '\(c.name)' is used twice",
                                     hint: "Give every class its own name")
            }
            if ignoreValues.contains(c.value) {
                throw TerraSegError(.invalidArgument, path: "classes", problem: "value \(c.value) is both class '\(c.name)' and ignored",
                                     hint: "Remove it from one of the lists")
            }
        }
        self.classes = classes
        self.ignoreValues = ignoreValues
    }

    /// Classes from (value, name) pairs, coloured from the palette.
    public init(values: [(Int, String)], ignoreValues: [Int] = []) throws {
        try self.init(classes: values.enumerated().map { i, v in
            ClassEntry(value: v.0, name: v.1, color: ClassMap.palette[i % ClassMap.palette.count])
        }, ignoreValues: ignoreValues)
    }

    /// Class index of a label value; -1 for ignored values; nil for values not in the map.
    public func index(ofLabel value: Int) -> Int? {
        if let i = classes.firstIndex(where: { $0.value == value }) { return i }
        return ignoreValues.contains(value) ? -1 : nil
    }

    /// A lookup table for label values in `range` (built once per scene).
    func lookup(minValue: Int, maxValue: Int) -> [Int32] {
        (minValue...maxValue).map { v in index(ofLabel: v).map(Int32.init) ?? Int32.min }
    }

    /// Converts a label block (band 0) to class indices: -1 where the label is invalid or
    /// ignored, or `invalid` marks the pixel unusable. Unknown values throw, naming the file.
    public func classIndices(labels block: RasterBlock, labelPath: String, invalid: UnsafeBufferPointer<UInt8>? = nil,
                             into out: inout [Int32]) throws {
        let n = block.window.pixelCount
        if out.count != n { out = [Int32](repeating: -1, count: n) }
        let lo = min(classes.map(\.value).min()!, ignoreValues.min() ?? 0)
        let hi = max(classes.map(\.value).max()!, ignoreValues.max() ?? 0)
        let table = lookup(minValue: lo, maxValue: hi)
        for i in 0..<n {
            if block.valid[i] == 0 || (invalid.map { $0[i] == 0 } ?? false) { out[i] = -1; continue }
            let v = block.values[i]
            let iv = Int(v)
            let idx: Int32 = (Float(iv) == v && iv >= lo && iv <= hi) ? table[iv - lo] : Int32.min
            if idx == Int32.min {
                let c = block.window.column + i % block.window.width, r = block.window.row + i / block.window.width
                throw RasterError(.invalidArgument, path: labelPath, band: 1,
                                  problem: "label value \(v.formatted()) at column \(c), row \(r) is not in the class map",
                                  hint: "Add a class with value \(v.formatted()) under classes, or list it under ignore")
            }
            out[i] = idx
        }
    }
}

extension Float {
    /// "3" for integral values, "2.5" otherwise.
    func formatted() -> String { self == rounded() && abs(self) < 1e9 ? String(Int(self)) : String(self) }
}
